"""One typed Settings object, read once at the composition root (CLI, API, console)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _in_dask_worker() -> bool:
    """Whether this code runs inside a Dask worker (which is never so without distributed)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:  # "No worker found"
        return False
    return True


class Settings(BaseSettings):
    """Where pdo keeps state and how its services are reached; every field has a safe default."""

    model_config = SettingsConfigDict(env_prefix="PDO_", extra="ignore")

    home: Path = Path("var")
    database_url: str | None = None
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    # The Ed25519 key (PKCS8 PEM) that signs audit checkpoints; default
    # <home>/secrets/audit-signing.pem, created on first use.
    audit_signing_key_file: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8765
    console_port: int = 8501
    # Worker processes for the name/address detection of large free-text columns (1: in the
    # stage's own process). 0 (the default): one per core on the local runner, one on Dask,
    # whose workers already spread the partitions over the cores (see scan_worker_processes).
    scan_processes: int = Field(default=0, ge=0)
    # A final decision made in the console continues the run in a detached `pdo signoff
    # continue` process (the console records decisions; it is not a worker).
    console_continues_runs: bool = True
    # How `pdo run` executes stages: "local" (threads in one process) or "dask" (prefect-dask
    # on PDO_DASK_ADDRESS, e.g. tcp://scheduler:8786, or a LocalCluster of PDO_WORKERS).
    runner: Literal["local", "dask"] = "local"
    dask_address: str | None = None
    workers: int = Field(default=2, ge=1)
    # Large tables are split into this many partitions by a hash of the entity key; stages
    # map over them (0: one partition per PDO_PARTITION_ROWS rows, or per
    # PDO_PARTITION_TEXT_ROWS for tables with free text, whose NER is the costliest work).
    partitions: int = Field(default=0, ge=0)
    partition_rows: int = Field(default=1_000_000, ge=1)
    partition_text_rows: int = Field(default=20_000, ge=1)
    # Private networks that banks' webhooks may reach besides public addresses (a JSON list of
    # CIDRs, e.g. ["10.8.0.0/16"] for banks on a private line); nothing else private is posted to.
    webhook_allowed_networks: list[str] = Field(default_factory=list)
    # A console login lasts this long; then the user logs in again.
    console_session_minutes: int = Field(default=30, ge=1)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        """A typo in an allowed network stops the dispatcher at start, not at the first push."""
        if value:  # the default (none) imports nothing
            from pdo.delivery.egress import networks

            networks(value)
        return value

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

    def scan_worker_processes(self) -> int:
        """PDO_SCAN_PROCESSES, else one per usable core locally (the model's Python half holds
        the GIL, so the local runner's threads could not share it out) and 1 under Dask."""
        if self.scan_processes:
            return self.scan_processes
        if self.runner == "dask" or _in_dask_worker():  # `pdo run --runner dask` sets no env
            return 1
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )

    def read_pseudonym_key(self) -> tuple[str, bytes]:
        """The HMAC key for pseudonyms and its id; a local key file is created on first use."""
        import hashlib
        import secrets

        if self.pseudonym_key is not None:
            key = self.pseudonym_key.get_secret_value().encode()
        else:
            path = self.pseudonym_key_file or self.resolved_home / "secrets" / "pseudonym.key"
            if not path.exists():
                _create_once(path, secrets.token_hex(32).encode())
            key = path.read_text().strip().encode()
        key_id = hashlib.sha256(b"pdo-key-id:" + key).hexdigest()[:12]
        return key_id, key

    def read_audit_signing_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key that signs audit checkpoints; a local PEM file is made on first use."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = self.audit_signing_key_file or self.resolved_home / "secrets" / "audit-signing.pem"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _create_once(path, pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key


def _create_once(path: Path, content: bytes) -> None:
    """Write a secret file whole (mode 0600) unless another thread or process made it first:
    readers never see it half-written, and a key once made is never replaced."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
