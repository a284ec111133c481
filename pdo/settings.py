"""One typed Settings object, read once at the composition root (CLI, API, console)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where pdo keeps state and how its services are reached; every field has a safe default."""

    model_config = SettingsConfigDict(env_prefix="PDO_", extra="ignore")

    home: Path = Path("var")
    database_url: str | None = None
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8765
    console_port: int = 8501
    # Worker processes for the PII scan of large tables (1: in-process). Names and addresses
    # cost ~1 ms a text; on a many-core box set PDO_SCAN_PROCESSES to the cores you can spare.
    scan_processes: int = Field(default=1, ge=1)
    # A final decision made in the console continues the run in a detached `pdo signoff
    # continue` process (the console records decisions; it is not a worker).
    console_continues_runs: bool = True

    @property
    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def db_url(self) -> str:
        """PostgreSQL when PDO_DATABASE_URL says so, else a SQLite file under PDO_HOME."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_home / 'ledger.db'}"

    @property
    def lake_dir(self) -> Path:
        return self.resolved_home / "lake"

    @property
    def docs_dir(self) -> Path:
        """Where each run's Data Docs site is built (docs/<run id>/index.html)."""
        return self.resolved_home / "docs"

    @property
    def models_dir(self) -> Path:
        return self.resolved_home / "models"

    def read_pseudonym_key(self) -> tuple[str, bytes]:
        """The HMAC key for pseudonyms and its id; a local key file is created on first use."""
        import hashlib
        import secrets

        if self.pseudonym_key is not None:
            key = self.pseudonym_key.get_secret_value().encode()
        else:
            path = self.pseudonym_key_file or self.resolved_home / "secrets" / "pseudonym.key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_hex(32))
                path.chmod(0o600)
            key = path.read_text().strip().encode()
        key_id = hashlib.sha256(b"pdo-key-id:" + key).hexdigest()[:12]
        return key_id, key
