"""Immutable, content-addressed dataset versions: Parquet plus a manifest, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
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
    parts: int = 1  # partitions by entity-key hash, stored in order as part-<i>.parquet

    @property
    def file_name(self) -> str:
        return "part-0.parquet"

    @property
    def file_names(self) -> list[str]:
        return [f"part-{i}.parquet" for i in range(self.parts)]


HASH_SLICE_ROWS = 500_000  # rows rendered at a time, so hashing never holds a whole table's text


def _hash_frames(frames: Iterable[pl.DataFrame]) -> tuple[str, int, dict[str, str]]:
    """Hash, row count and schema of frames taken as one table in order (the bytes hashed are
    those of the whole table's canonical CSV, or JSON lines when values are nested)."""
    h = hashlib.sha256()
    schema: dict[str, str] | None = None
    rows = 0
    header = True
    for frame in frames:
        this = {k: str(v) for k, v in frame.schema.items()}
        if schema is None:
            schema = this
            h.update(json.dumps(schema).encode())
        elif this != schema:
            raise ValueError(f"partitions disagree on the schema: {this} vs {schema}")
        # CSV cannot hold nested values (reason codes): those frames are hashed as JSON lines
        nested = any(isinstance(t, pl.List | pl.Struct | pl.Array) for t in frame.schema.values())
        for start in range(0, max(frame.height, 1), HASH_SLICE_ROWS):
            piece = frame.slice(start, HASH_SLICE_ROWS)
            if nested:
                h.update(piece.write_ndjson().encode())
            else:
                h.update(piece.write_csv(null_value="\\N", include_header=header).encode())
                header = False
        rows += frame.height
    return h.hexdigest(), rows, schema or {}


def frame_hash(df: pl.DataFrame) -> str:
    """A stable hash of a frame's schema and values (canonical CSV, independent of file layout)."""
    return _hash_frames([df])[0]


def partition_ids(keys: pl.Series, partitions: int) -> pl.Series:
    """Which partition each entity key falls in: the same key always lands in the same one, so
    every table of one enterprise shares its partition and per-partition joins stay whole."""
    return (keys.cast(pl.String).fill_null("").hash(seed=20261201) % partitions).cast(pl.UInt32)


def split_partitions(df: pl.DataFrame, key: str, partitions: int) -> list[pl.DataFrame]:
    """The frame split by its entity key's partition, each part in the frame's row order."""
    if partitions <= 1:
        return [df]
    ids = partition_ids(df[key], partitions)
    return [df.filter(ids == i) for i in range(partitions)]


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
        partition_key: str | None = None,
        partitions: int = 1,
    ) -> Manifest:
        """Write a version unless an identical one exists (a re-run is a no-op); with a
        partition key and partitions > 1 it is stored as that many parts by key hash."""
        parts = split_partitions(df, partition_key, partitions) if partition_key else [df]
        return self.write_parts(
            parts,
            table=table,
            zone=zone,
            stage=stage,
            parents=parents,
            policy_hash=policy_hash,
            code_hash=code_hash,
        )

    def write_parts(
        self,
        parts: Sequence[pl.DataFrame | Path],
        *,
        table: str,
        zone: str,
        stage: str,
        parents: list[str] | None = None,
        policy_hash: str = "",
        code_hash: str = "",
    ) -> Manifest:
        """A version made of ordered parts: frames, or Parquet files (moved in, read one at a
        time, so a table larger than memory can be stored part by part)."""
        if zone not in ZONES:
            raise ValueError(f"unknown zone {zone!r}")
        if not parts:
            raise ValueError("a dataset version has at least one part")
        parents = parents or []
        data_hash, rows, schema = _hash_frames(
            pl.read_parquet(p) if isinstance(p, Path) else p for p in parts
        )
        manifest = Manifest(
            id=version_id(zone, table, data_hash, parents, policy_hash, code_hash),
            table=table,
            zone=zone,
            stage=stage,
            row_count=rows,
            data_hash=data_hash,
            schema=schema,
            parents=sorted(parents),
            policy_hash=policy_hash,
            code_hash=code_hash,
            parts=len(parts),
        )
        final = self.dir_for(manifest)
        if (final / "manifest.json").exists():  # stored before, maybe in another number of parts
            return self.manifest(zone, table, manifest.id)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
        try:
            for name, part in zip(manifest.file_names, parts, strict=True):
                if isinstance(part, Path):
                    shutil.copyfile(part, tmp / name)
                else:
                    part.write_parquet(tmp / name, compression="zstd", statistics=True)
            (tmp / "manifest.json").write_text(
                json.dumps(asdict(manifest), ensure_ascii=False, indent=2)
            )
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "manifest.json").exists():
                    raise
                return self.manifest(zone, table, manifest.id)  # another writer stored it first
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return manifest

    def manifest(self, zone: str, table: str, dataset_id: str) -> Manifest:
        path = self.root / zone / table / dataset_id / "manifest.json"
        return Manifest(**json.loads(path.read_text()))

    def part_paths(self, manifest: Manifest) -> list[Path]:
        return [self.dir_for(manifest) / name for name in manifest.file_names]

    def read(self, manifest: Manifest) -> pl.DataFrame:
        """The whole version, its parts in order."""
        frames = [pl.read_parquet(p) for p in self.part_paths(manifest)]
        return frames[0] if len(frames) == 1 else pl.concat(frames)

    def scan(self, manifest: Manifest) -> pl.LazyFrame:
        """The whole version, lazily: a query reads only the columns and row groups it needs."""
        return pl.scan_parquet(self.part_paths(manifest))

    def read_part(self, manifest: Manifest, part: int) -> pl.DataFrame:
        return pl.read_parquet(self.part_paths(manifest)[part])

    def verify(self, manifest: Manifest) -> bool:
        """True when the data on disk still hashes to what the manifest says."""
        paths = self.part_paths(manifest)
        if not all(p.exists() for p in paths):
            return False
        return _hash_frames(pl.read_parquet(p) for p in paths)[0] == manifest.data_hash
