"""Data Docs for one run: GX's own HTML site, built once from the run's scrubbed results.

Raw-zone suites run over personal data, so nothing GX could copy from a cell reaches a page:
``scrub`` keeps verdicts and counts, drops row ids, value lists and tracebacks, and summarizes
value sets filled in from the run (referential integrity) or too long to read.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdo.validation.runner import gx_context

SITE_NAME = "pdo_run"
MAX_LISTED_VALUES = 50  # a longer value set is summarized by its size
_DROPPED_RESULT_KEYS = (
    "unexpected_list",
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "unexpected_index_list",
    "partial_unexpected_index_list",
    "unexpected_index_query",
    "unexpected_index_column_names",
    "details",
)
# GX pages take Bootstrap from CDNs; inside an authorized domain with no internet, these few rules
# of ours keep the tables readable (they are harmless when Bootstrap does load).
OFFLINE_CSS = """<style id="pdo-offline">
body { font-family: "Noto Sans CJK SC", "Noto Sans", sans-serif; margin: 0 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: left; }
footer, .ge-logo, img[alt="Great Expectations"] { display: none; }
</style>"""
_build_lock = threading.Lock()  # the GX context and its result store are process-wide


@dataclass(frozen=True)
class StoredResult:
    """One suite's scrubbed GX result, as the ledger keeps it for the run's Data Docs."""

    suite: str
    table: str
    zone: str
    validated_at: dt.datetime
    result: Mapping[str, Any]

    @property
    def batch(self) -> str:
        """The page's batch label, also a path component of the site."""
        return f"{self.table}-{self.zone}"


def _scrub_kwargs(kwargs: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    values = out.get("value_set")
    summarized = isinstance(values, list) and len(values) == 1 and str(values[0]).startswith("〈")
    if summarized:
        return out
    if isinstance(values, list) and ("reference" in meta or len(values) > MAX_LISTED_VALUES):
        source = f"本次运行 {meta['reference']} 列" if "reference" in meta else "套件"
        out["value_set"] = [f"〈{len(values)} 个值，取自{source}〉"]
    return out


def _scrub_result(result: Mapping[str, Any], table_level: bool) -> dict[str, Any]:
    out = {k: v for k, v in result.items() if k not in _DROPPED_RESULT_KEYS}
    observed = out.get("observed_value")
    if isinstance(observed, dict | list) and not table_level:
        out.pop("observed_value")  # a column's distinct values or histogram: cells
    return out


def scrub(result: Mapping[str, Any]) -> dict[str, Any]:
    """A GX suite result (JSON dict) with counts and verdicts only, never a cell value."""
    items = []
    for item in result.get("results", []):
        config = item["expectation_config"]
        meta = config.get("meta") or {}
        kwargs = config.get("kwargs") or {}
        raised = bool((item.get("exception_info") or {}).get("raised_exception"))
        items.append(
            {
                **item,
                "expectation_config": {**config, "kwargs": _scrub_kwargs(kwargs, meta)},
                "result": _scrub_result(item.get("result") or {}, "column" not in kwargs),
                "exception_info": {
                    "raised_exception": raised,
                    "exception_message": "see the pipeline log" if raised else None,
                    "exception_traceback": None,
                },
            }
        )
    return {**result, "results": items}


def _site_config(directory: Path) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(directory),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
    }


def build_site(results: Sequence[StoredResult], site_dir: Path, run_id: str) -> Path:
    """Render results as a GX Data Docs site at site_dir (replaced whole); returns index.html."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from pdo.validation.expectations import register

    register()  # pages of our custom expectations render through their classes
    building = site_dir.with_name(site_dir.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    schema = ExpectationSuiteValidationResultSchema()
    with _build_lock:
        context = gx_context()
        store = context.validation_results_store
        for key in store.list_keys():  # results of an earlier build in this process
            store.remove_key(key)
        if SITE_NAME in (context.list_data_docs_sites() or {}):
            context.delete_data_docs_site(SITE_NAME)
        context.add_data_docs_site(SITE_NAME, _site_config(building))
        try:
            for r in results:
                run = RunIdentifier(run_name=run_id, run_time=r.validated_at)
                key = ValidationResultIdentifier(
                    ExpectationSuiteIdentifier(name=r.suite), run, r.batch
                )
                result = scrub(r.result)
                meta = {**result.get("meta", {}), "run_id": run.to_json_dict()}
                meta["validation_time"] = r.validated_at.isoformat()
                meta["batch_kwargs"] = {"data_asset_name": r.batch}
                store.set(key, schema.load({**result, "meta": meta}))
            context.build_data_docs(site_names=[SITE_NAME])
        finally:
            for key in store.list_keys():
                store.remove_key(key)
            context.delete_data_docs_site(SITE_NAME)
    for page in building.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        page.write_text(html.replace("</head>", OFFLINE_CSS + "</head>", 1), encoding="utf-8")
    rendered = len(pages(building))
    if rendered != len(results):  # GX logs a page it cannot render and goes on without it
        shutil.rmtree(building, ignore_errors=True)
        raise RuntimeError(f"Data Docs rendered {rendered} of {len(results)} pages (see the log)")
    shutil.rmtree(site_dir, ignore_errors=True)
    building.rename(site_dir)
    return site_dir / "index.html"


@dataclass(frozen=True)
class DocsPage:
    """One validation page of a built site, labelled for the console."""

    suite: str
    batch: str
    path: Path


def pages(site_dir: Path) -> list[DocsPage]:
    """The validation pages of a built site (validations/<suite parts>/<run>/<time>/<batch>)."""
    found: list[DocsPage] = []
    root = site_dir / "validations"
    for path in sorted(root.rglob("*.html")) if root.is_dir() else []:
        parts = path.relative_to(root).parts
        found.append(DocsPage(".".join(parts[:-3]), path.stem, path))
    return found
