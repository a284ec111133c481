"""Immutable, content-addressed dataset versions: Parquet plus a manifest, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

ZONES = ("raw", "quarantine", "desensitized", "release", "product")


@dataclass(frozen=True)
class Manifest:
    """What a dataset version is: its id is a hash over data, lineage, policy and code."""

    id: str
    table: str
    zone: str
    stage: str
    row_count: int
    data_hash: str
    schema: dict[str, str]
    parents: list[str] = field(default_factory=list)
    policy_hash: str = ""
    code_hash: str = ""

    @property
    def file_name(self) -> str:
        return "part-0.parquet"


def frame_hash(df: pl.DataFrame) -> str:
    """A stable hash of a frame's schema and values (canonical CSV, independent of file layout)."""
    h = hashlib.sha256()
    h.update(json.dumps({k: str(v) for k, v in df.schema.items()}).encode())
    nested = any(isinstance(t, pl.List | pl.Struct | pl.Array) for t in df.schema.values())
    # CSV cannot hold nested values (reason codes): those frames are hashed as JSON lines
    h.update(df.write_ndjson().encode() if nested else df.write_csv(null_value="\\N").encode())
    return h.hexdigest()


def version_id(
    zone: str, table: str, data_hash: str, parents: list[str], policy_hash: str, code_hash: str
) -> str:
    """Same input, same policy, same code, same data → same id."""
    body = json.dumps([zone, table, data_hash, sorted(parents), policy_hash, code_hash])
    return hashlib.sha256(body.encode()).hexdigest()


class Lake:
    """The zones on disk; a version directory appears whole (rename) or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir_for(self, manifest: Manifest) -> Path:
        return self.root / manifest.zone / manifest.table / manifest.id

    def write(
        self,
        df: pl.DataFrame,
        *,
        table: str,
        zone: str,
        stage: str,
        parents: list[str] | None = None,
        policy_hash: str = "",
        code_hash: str = "",
    ) -> Manifest:
        """Write a version unless an identical one exists (a re-run is a no-op)."""
        if zone not in ZONES:
            raise ValueError(f"unknown zone {zone!r}")
        parents = parents or []
        data_hash = frame_hash(df)
        manifest = Manifest(
            id=version_id(zone, table, data_hash, parents, policy_hash, code_hash),
            table=table,
            zone=zone,
            stage=stage,
            row_count=df.height,
            data_hash=data_hash,
            schema={k: str(v) for k, v in df.schema.items()},
            parents=sorted(parents),
            policy_hash=policy_hash,
            code_hash=code_hash,
        )
        final = self.dir_for(manifest)
        if (final / "manifest.json").exists():
            return manifest
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            df.write_parquet(tmp / manifest.file_name, compression="zstd", statistics=True)
            (tmp / "manifest.json").write_text(
                json.dumps(asdict(manifest), ensure_ascii=False, indent=2)
            )
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "manifest.json").exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return manifest

    def manifest(self, zone: str, table: str, dataset_id: str) -> Manifest:
        path = self.root / zone / table / dataset_id / "manifest.json"
        return Manifest(**json.loads(path.read_text()))

    def read(self, manifest: Manifest) -> pl.DataFrame:
        return pl.read_parquet(self.dir_for(manifest) / manifest.file_name)

    def verify(self, manifest: Manifest) -> bool:
        """True when the data on disk still hashes to what the manifest says."""
        path = self.dir_for(manifest) / manifest.file_name
        return path.exists() and frame_hash(pl.read_parquet(path)) == manifest.data_hash
