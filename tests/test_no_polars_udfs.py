"""No polars expression in pdo calls a Python function.

A Python UDF (map_elements, map_batches) runs on polars' worker threads, which must take the
GIL; a pipeline task converting a frame for Great Expectations (`to_pandas`) holds the GIL while
it waits for those same workers. With tasks running in threads, the two hung a CI run for good
(both workers in `python_function_caller_series` waiting for the GIL, the converting thread in
rayon's `LockLatch::wait_and_reset`). The console runs each viewer's page in a thread of one
process, the API its batches in threads: the same holds there. Python-side work is done on the
calling thread instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UDF = re.compile(r"\.(map_elements|map_batches|map_groups)\(")
CODE = sorted(
    p.relative_to(ROOT)
    for folder in ("flows", "pdo", "products", "dashboard", "api", "bench")
    for p in (ROOT / folder).rglob("*.py")
)


def test_the_scan_reads_pipeline_console_and_api() -> None:
    for path in ("flows/ingest.py", "flows/validate.py", "dashboard/data/usage.py", "api/app.py"):
        assert Path(path) in CODE


@pytest.mark.parametrize("path", CODE, ids=str)
def test_no_python_udf_in_polars_expressions(path: Path) -> None:
    found = [
        f"{path}:{n}"
        for n, line in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1)
        if UDF.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
