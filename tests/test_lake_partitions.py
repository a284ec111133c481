"""Dataset versions stored in partitions by entity-key hash: same hash rules as one part."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from pdo.lake import Lake, frame_hash, partition_ids, split_partitions

AT = {"table": "t", "zone": "raw", "stage": "s"}


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "uscc": [f"91330106MA{i:08d}" for i in range(n)],
            "amount": [i * 7 % 1000 for i in range(n)],
            "note": [None if i % 5 == 0 else f"行{i}" for i in range(n)],
        }
    )


def test_one_enterprise_lands_in_one_partition_in_every_table() -> None:
    registry = _frame(2000)
    payments = pl.concat([registry, registry]).sample(fraction=1.0, shuffle=True, seed=3)
    of_registry = dict(zip(registry["uscc"], partition_ids(registry["uscc"], 8), strict=True))
    of_payments = zip(payments["uscc"], partition_ids(payments["uscc"], 8), strict=True)
    assert all(of_registry[key] == part for key, part in of_payments)
    sizes = partition_ids(registry["uscc"], 8).value_counts()["count"]
    assert sizes.min() > 150  # 2000 keys spread over 8 partitions, none starved


def test_split_keeps_every_row_once_in_its_order() -> None:
    frame = _frame(1000)
    parts = split_partitions(frame, "uscc", 4)
    assert sum(p.height for p in parts) == frame.height
    for p in parts:
        assert p["uscc"].to_list() == sorted(p["uscc"].to_list())  # frame order kept
    assert pl.concat(parts).sort("uscc").equals(frame)


def test_a_partitioned_version_hashes_as_its_whole_table(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    frame = _frame(3000)
    m = lake.write(frame, table="t", zone="raw", stage="s", partition_key="uscc", partitions=4)
    assert m.parts == 4 and m.row_count == 3000
    assert [p.name for p in lake.part_paths(m)] == [f"part-{i}.parquet" for i in range(4)]
    whole = lake.read(m)
    assert m.data_hash == frame_hash(whole)  # the parts in order are the table
    assert whole.sort("uscc").equals(frame)
    assert pl.concat([lake.read_part(m, i) for i in range(4)]).equals(whole)
    assert lake.verify(m)
    # a re-write is a no-op with the same id; one part written from files gives the same id
    assert (
        lake.write(frame, table="t", zone="raw", stage="s", partition_key="uscc", partitions=4) == m
    )
    again = lake.write_parts(lake.part_paths(m), table="t", zone="raw", stage="s")
    assert again.id == m.id


def test_tampering_with_one_part_is_found(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    m = lake.write(
        _frame(500), table="t", zone="raw", stage="s", partition_key="uscc", partitions=3
    )
    path = lake.part_paths(m)[1]
    lake.read_part(m, 1).with_columns(pl.col("amount") + 1).write_parquet(path)
    assert not lake.verify(m)
    path.unlink()
    assert not lake.verify(m)


def test_hashing_in_slices_equals_hashing_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import pdo.lake as lake_module

    frame = _frame(2500)
    at_once = frame_hash(frame)
    monkeypatch.setattr(lake_module, "HASH_SLICE_ROWS", 333)
    assert frame_hash(frame) == at_once
    nested = pl.DataFrame({"k": ["a", "b", "c"], "codes": [["R1"], [], ["R2", "R3"]]})
    monkeypatch.setattr(lake_module, "HASH_SLICE_ROWS", 2)
    sliced = frame_hash(nested)
    monkeypatch.setattr(lake_module, "HASH_SLICE_ROWS", 500_000)
    assert frame_hash(nested) == sliced


def test_parts_that_disagree_on_the_schema_are_refused(tmp_path: Path) -> None:
    a = pl.DataFrame({"uscc": ["x"], "n": [1]})
    b = pl.DataFrame({"uscc": ["y"], "n": ["1"]})
    with pytest.raises(ValueError, match="schema"):
        Lake(tmp_path).write_parts([a, b], table="t", zone="raw", stage="s")


def test_free_text_tables_get_more_partitions_than_their_rows_alone_would() -> None:
    from flows.stages import partitions_for
    from pdo.settings import Settings
    from pdo.sources.tables import table

    settings = Settings(partition_rows=1_000_000, partition_text_rows=20_000)
    assert partitions_for(1_450_000, settings, table("utility_payments")) == 2
    assert partitions_for(186_000, settings, table("penalties")) == 10  # summaries: NER
    assert partitions_for(150, settings, table("penalties")) == 1
    assert partitions_for(186_000, Settings(partitions=3), table("penalties")) == 3


@pytest.mark.parametrize(
    ("runner", "configured", "expected"),
    [
        ("local", 0, "cores"),  # the default: the NER model's Python half holds the GIL
        ("dask", 0, 1),  # Dask workers already spread the partitions over the cores
        ("local", 3, 3),
        ("dask", 2, 2),
    ],
)
def test_name_detection_uses_a_process_per_core_unless_told(
    runner: str, configured: int, expected: int | str
) -> None:
    from pdo.settings import Settings

    cores = len(os.sched_getaffinity(0))
    settings = Settings(runner=runner, scan_processes=configured)
    assert settings.scan_worker_processes() == (cores if expected == "cores" else expected)


def test_the_same_rows_written_in_fewer_parts_read_back_whole(tmp_path: Path) -> None:
    """The version id holds the data, not its layout: a re-run with another partition count finds
    the stored version and gets its manifest (its parts), so every row is read back."""
    lake = Lake(tmp_path)
    codes = pl.Series([f"91330106MA{i:08d}" for i in range(10)])
    last = codes.filter(partition_ids(codes, 3) == 2)[0]  # an enterprise in the last partition
    frame = pl.DataFrame({"uscc": [last] * 12, "month": [f"2026-{m:02d}" for m in range(1, 13)]})
    first = lake.write(
        frame, table="t", zone="raw", stage="validate", partition_key="uscc", partitions=3
    )
    again = lake.write(
        frame, table="t", zone="raw", stage="validate", partition_key="uscc", partitions=1
    )
    assert again == first == lake.manifest("raw", "t", first.id) and again.parts == 3
    assert sum(lake.read_part(again, i).height for i in range(again.parts)) == 12
    assert lake.read(again).equals(frame)
