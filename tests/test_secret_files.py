"""Key files made on first use: stages racing for them all get the same, whole key."""

from __future__ import annotations

import threading
from pathlib import Path

from pdo.settings import Settings


def test_racing_threads_all_read_one_whole_pseudonym_key(tmp_path: Path) -> None:
    for attempt in range(20):
        home = tmp_path / str(attempt)
        keys: list[tuple[str, bytes]] = []
        errors: list[Exception] = []

        def read(
            home: Path = home,
            keys: list[tuple[str, bytes]] = keys,
            errors: list[Exception] = errors,
        ) -> None:
            try:
                keys.append(Settings(home=home).read_pseudonym_key())
            except Exception as exc:  # the race shows as any exception
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(set(keys)) == 1
        key_file = home / "secrets" / "pseudonym.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in key_file.parent.iterdir()] == ["pseudonym.key"]  # no temp left


def test_racing_threads_share_one_audit_signing_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    raw = serialization.Encoding.Raw
    public: set[bytes] = set()
    lock = threading.Lock()

    def read() -> None:
        key = Settings(home=tmp_path).read_audit_signing_key().public_key()
        with lock:
            public.add(key.public_bytes(raw, serialization.PublicFormat.Raw))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(public) == 1
