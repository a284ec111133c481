"""The whole loop through the CLI, the real Prefect engine, the real API over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest
from sqlalchemy import text
from sqlmodel import select
from typer.testing import CliRunner

from pdo.cli import app
from pdo.ledger.db import session_scope
from pdo.ledger.models import AuditEvent, ServedScore, UsageEvent
from pdo.settings import Settings
from pdo.sources.tables import ENTERPRISE_REGISTRY, SOURCE_TABLES
from pdo.workspace import Workspace
from tests.live_api import serve_api

PASSWORD = "correct horse battery"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loop(
    request: pytest.FixtureRequest,
    prefect_harness: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, object]]:
    """Generate a small city and run it to the gate once per ledger backend."""
    if request.param == "postgres":
        from tests.pg import fresh_database

        with fresh_database() as url:
            yield _run_to_gate(tmp_path_factory, url)
    else:
        yield _run_to_gate(tmp_path_factory, None)


def _run_to_gate(tmp_path_factory: pytest.TempPathFactory, database_url: str | None) -> dict:
    from pdo.gen import generate

    home = tmp_path_factory.mktemp("home")
    source = tmp_path_factory.mktemp("source") / "delivery"
    generate(source, enterprises=400, seed=7, progress=False)
    env = {"PDO_HOME": str(home), "PDO_DATABASE_URL": database_url}
    runner = CliRunner()

    def pdo(*args: str, input: str | None = None) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env, input=input)
        return result.exit_code, result.output

    assert pdo("department", "register")[0] == 0
    for name, role in (("alice", "operator"), ("rita", "reviewer"), ("rick", "reviewer")):
        code, out = pdo("user", "add", name, "--role", role, input=PASSWORD + "\n")
        assert code == 0, out
    code, out = pdo(
        "authorization",
        "grant",
        "--reference",
        "数授〔2026〕T1号",
        "--as",
        "authority",
        "--product",
        "credit_risk",
        "--product",
        "operating_status",
    )
    assert code == 0, out
    code, out = pdo("run", "--source", str(source), "--as", "alice", "--json")
    assert code == 0, out
    cli_output = out
    result = json.loads(out[out.index("{") :])
    return {
        "home": home,
        "source": source,
        "pdo": pdo,
        "run_id": result["run_id"],
        "status": result["status"],
        "settings": Settings(home=home, database_url=database_url),
        "cli_output": cli_output,
    }


def _raw_identifiers(source: Path) -> set[str]:
    registry = pl.read_csv(source / "market_enterprise_registry.csv", infer_schema=False)
    values = set(registry["legal_rep_id"].drop_nulls()) | set(
        registry["legal_rep_mobile"].drop_nulls()
    )
    return {v for v in values if len(v) >= 11}


def _personal_values(source: Path) -> set[str]:
    """Raw IDs, mobiles, longer names and 个体工商户 codes as delivered (the leak oracle)."""
    registry = pl.read_csv(source / "market_enterprise_registry.csv", infer_schema=False)
    names = {n for n in registry["legal_rep_name"].drop_nulls() if len(n) >= 3}
    individual = {u for u in registry["uscc"].drop_nulls() if u.startswith("92")}
    return _raw_identifiers(source) | names | individual


def test_ledger_and_logs_hold_no_personal_data(loop: dict) -> None:
    ws = Workspace.open(loop["settings"])
    with ws.engine.connect() as c:
        dumps = [
            str(row)
            for query in (
                "SELECT details FROM audit_event",
                "SELECT details FROM stage_run",
                "SELECT review_package, error FROM pipeline_run",
                "SELECT statistics FROM validation_result",
            )
            for row in c.execute(text(query))
        ]
    haystack = "\n".join(dumps) + loop["cli_output"]
    leaked = [v for v in _personal_values(loop["source"]) if v in haystack]
    assert leaked == []


def test_review_package_reports_privacy_per_table(loop: dict) -> None:
    ws = Workspace.open(loop["settings"])
    with session_scope(ws.engine) as s:
        from pdo.ledger.models import PipelineRun

        run = s.get(PipelineRun, loop["run_id"])
        assert run is not None
        privacy = run.review_package["privacy"]
    assert set(privacy) == {t.name for t in SOURCE_TABLES}
    assert all(p["residual_pii"] == {} for p in privacy.values())
    risk = privacy["enterprise_registry"]["risk"]
    # the registry's record-level release is k-anonymous; the desensitized zone was not
    assert risk["enforced"] and risk["k"] >= 5 and risk["l"]["status"] >= 2
    assert risk["rows"] + risk["rows_suppressed"] == risk["rows_in"] > 300
    assert risk["before"]["k"] == 1 and risk["share_suppressed"] <= 0.05
    release = [d for d in run.review_package["datasets"] if d["zone"] == "release"]
    assert release == [
        {
            "table": "enterprise_registry",
            "zone": "release",
            "id": privacy["enterprise_registry"]["release"]["id"],
            "rows": risk["rows"],
        }
    ]
    frame = ws.lake.read(ws.lake.manifest("release", "enterprise_registry", release[0]["id"]))
    assert frame.columns == list(ENTERPRISE_REGISTRY.release.columns)  # no name, code, address


def test_data_docs_are_built_once_per_run_and_show_no_personal_value(loop: dict) -> None:
    from pdo.ledger.models import AuditEvent, PipelineRun
    from pdo.validation.docs import pages

    ws = Workspace.open(loop["settings"])
    run_id = loop["run_id"]
    with session_scope(ws.engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None
        assert run.review_package["data_docs"] == f"docs/{run_id}/index.html"
        built = s.exec(
            select(AuditEvent).where(
                AuditEvent.action == "docs.built", AuditEvent.subject == run_id
            )
        ).all()
    assert len(built) == 1
    site = loop["home"] / "docs" / run_id
    assert (site / "index.html").is_file()
    names = {t.name for t in SOURCE_TABLES}
    assert sorted(p.batch for p in pages(site)) == sorted(
        f"{n}-{zone}" for n in names for zone in ("raw", "desensitized")
    )
    text = "\n".join(p.read_text("utf-8") for p in site.rglob("*.html"))
    assert [v for v in _personal_values(loop["source"]) if v in text] == []


def test_the_ledger_url_is_not_readable_from_prefect(loop: dict) -> None:
    """A flow run's parameters are open to anyone with the Prefect UI: the ledger URL (and any
    password in it) is stored masked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    url = loop["settings"].database_url
    if url is None:
        pytest.skip("the SQLite ledger is found by PDO_HOME, not by a URL")
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(sort=FlowRunSort.ID_DESC, limit=200)
    ours = [r for r in runs if r.parameters.get("run_id") == loop["run_id"]]
    assert ours, "the pipeline's flow run is recorded by Prefect"
    for run in ours:
        assert run.parameters["ledger_url"] == "**********"
        assert url not in json.dumps(run.parameters)


def test_run_stops_at_the_gate(loop: dict) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    from pdo.ledger.models import PipelineRun

    assert loop["status"] == "awaiting_signoff"
    with session_scope(Workspace.open(loop["settings"]).engine) as s:
        run = s.get(PipelineRun, loop["run_id"])
        assert run is not None and run.prefect_flow_run_id
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run.prefect_flow_run_id)).state
    assert state is not None and state.is_paused()  # what the Prefect UI shows: waiting
    assert loop["run_id"] in (state.message or "")
    code, out = loop["pdo"]("signoff", "list", "--json")
    assert code == 0
    assert [r["run_id"] for r in json.loads(out)] == [loop["run_id"]]


def test_no_raw_resident_id_or_mobile_in_the_desensitized_zone(loop: dict) -> None:
    raw = _raw_identifiers(loop["source"])
    assert len(raw) > 500
    zone = Path(loop["home"]) / "lake" / "desensitized"
    files = list(zone.rglob("*.parquet"))
    assert len(files) == 8
    leaked = []
    for f in files:
        frame = pl.read_parquet(f)
        for name, dtype in frame.schema.items():
            if dtype == pl.String:
                joined = "\n".join(frame[name].drop_nulls().to_list())
                leaked += [v for v in raw if v in joined]
    assert leaked == []


def test_no_route_publishes_without_approval(loop: dict) -> None:
    """CLI, the Prefect flow, its plain function, the deliver task, a pipeline re-run: refused."""
    from flows.pipeline import pipeline_flow
    from flows.publish import deliver_task, publish_flow
    from pdo.ledger.models import AuditEvent, ProductVersion
    from pdo.signoff import SignOffError

    run_id, settings = loop["run_id"], loop["settings"]
    home, url = str(settings.resolved_home), settings.database_url
    code, out = loop["pdo"]("publish", run_id)
    assert code != 0 and "no approval" in out
    attempts = {
        "flow": lambda: publish_flow(run_id, home, url, "alice"),
        "flow function": lambda: publish_flow.fn(run_id, home, url, "alice"),
        "deliver task": lambda: deliver_task.fn(home, url, run_id, candidate, "alice"),
    }
    ws = Workspace.open(settings)
    with session_scope(ws.engine) as s:
        from pdo.ledger.models import PipelineRun

        run = s.get(PipelineRun, run_id)
        assert run is not None
        candidate = run.review_package["products"][0]["candidate"]
    for route, attempt in attempts.items():
        with pytest.raises(SignOffError, match="no approval"):
            attempt()
            pytest.fail(f"{route} published without approval")
    assert pipeline_flow(run_id, home, url) == "awaiting_signoff"  # a re-run stops at the gate
    with session_scope(ws.engine) as s:
        assert s.exec(select(ProductVersion)).all() == []
        assert s.exec(select(ServedScore)).all() == []
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "product.publish")).all() == []
    # the reviewed builds wait in the product zone; none is served
    built = {p.parent.parent.name for p in (loop["home"] / "lake" / "product").rglob("*.parquet")}
    assert built == {"credit_risk", "operating_status"}


def test_publish_refused_before_approval_then_served_and_metered(loop: dict) -> None:
    pdo, run_id = loop["pdo"], loop["run_id"]
    code, out = pdo("publish", run_id)
    assert code != 0 and "no approval" in out
    code, out = pdo("signoff", "approve", run_id, "--as", "alice")
    assert code != 0 and "not a reviewer" in out
    code, out = pdo("signoff", "approve", run_id, "--as", "rita", "--comment", "ok")
    assert code == 0 and "1 of 2 approvals" in out, out  # the registry is 重要 data
    code, out = pdo("publish", run_id)
    assert code != 0 and "no approval" in out  # one of two is not an approval
    code, out = pdo("signoff", "approve", run_id, "--as", "rita")
    assert code != 0 and "already approved" in out
    code, out = pdo("signoff", "approve", run_id, "--as", "rick", "--comment", "复核通过")
    assert code == 0 and "approvals" not in out, out
    assert "Prefect run of" in out and "Completed" in out  # the paused flow run is closed
    assert "continued: published credit_risk@1" in out  # the decision continues the run
    code, out = pdo("publish", run_id, "--json")  # idempotent: the same version
    assert code == 0, out
    published = json.loads(out[out.index("{") :])["product_versions"]
    assert published == ["credit_risk@1", "operating_status@1"]

    code, out = pdo(
        "subscriber", "add", "测试银行", "--products", "credit_risk,operating_status", "--json"
    )
    assert code == 0, out
    key = json.loads(out[out.index("{") :])["api_key"]

    settings = loop["settings"]
    ws = Workspace.open(settings)
    # A bank asks with the USCC it knows; a 个体工商户's is found through its pseudonym.
    registry = ws.lake.read(_raw_manifest(ws, "enterprise_registry"))
    company = registry.filter(~pl.col("uscc").str.starts_with("92"))["uscc"][0]
    individual = registry.filter(pl.col("uscc").str.starts_with("92"))["uscc"][0]
    for uscc, ref in ((company, "C-1"), (individual, "C-2")):  # the enterprises' consents
        code, out = pdo(
            "consent", "add", uscc, "--subscriber", "测试银行", "--reference", ref,
            "--purposes", "贷前审查,贷后管理", "--until", "2099-12-31",
        )  # fmt: skip
        assert code == 0 and individual not in out, out
    with serve_api(settings) as base:
        url = f"{base}/v1/products/credit_risk/scores/{company}"
        consented = {"purpose": "贷前审查", "consent": "C-1"}
        ok = httpx.get(url, params=consented, headers={"X-API-Key": key})
        person = httpx.get(
            f"{base}/v1/products/credit_risk/scores/{individual}",
            params={"purpose": "贷前审查", "consent": "C-2"},
            headers={"X-API-Key": key},
        )
        status = httpx.get(
            f"{base}/v1/products/operating_status/scores/{company}",
            params=consented,
            headers={"X-API-Key": key},
        )
        no_key = httpx.get(url, params=consented)
        bad_purpose = httpx.get(
            url, params={"purpose": "营销", "consent": "C-1"}, headers={"X-API-Key": key}
        )
        no_purpose = httpx.get(url, headers={"X-API-Key": key})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["uscc"] == company and body["product_version"] == "credit_risk@1"
    assert body["grade"] in "ABCDE" and set(body) >= {"score", "grade", "product_version", "as_of"}
    reasons = body["details"]["reasons"]  # points lost against the best bins, largest first
    assert [r["points_lost"] for r in reasons] == sorted(
        (r["points_lost"] for r in reasons), reverse=True
    )
    with session_scope(Workspace.open(loop["settings"]).engine) as s:
        from pdo.ledger.models import ProductVersion
        from pdo.scorecard.frozen import FrozenScorecard

        version = s.get(ProductVersion, "credit_risk@1")
        assert version is not None
        card = FrozenScorecard.from_dict(version.model)
    assert sum(r["points_lost"] for r in reasons) == card.max_score - body["score"]
    assert person.status_code == 200 and individual not in person.text  # answered, code masked
    assert person.json()["uscc"] == individual[:6] + "*" * 8 + individual[-4:]
    assert status.status_code == 200, status.text
    answer = status.json()
    assert answer["product_version"] == "operating_status@1" and answer["score"] is None
    assert answer["details"]["status"] in {"active", "abnormal", "revoked", "cancelled"}
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "missing_api_key"
    assert bad_purpose.status_code == 403
    assert bad_purpose.json()["error"]["code"] == "purpose_not_allowed"
    assert no_purpose.status_code == 422 and "purpose" in no_purpose.json()["error"]["message"]
    with session_scope(ws.engine) as s:
        events = {e.id: e for e in s.exec(select(UsageEvent)).all()}
        assert set(events) == {body["usage_id"], person.json()["usage_id"], answer["usage_id"]}
        assert events[person.json()["usage_id"]].uscc.startswith("p_")  # no personal code stored
        chained = s.exec(select(AuditEvent).where(AuditEvent.subject == body["usage_id"])).one()
        assert chained.details["price_fen"] == body["price_fen"] == 200
        served = set(s.exec(select(ServedScore.uscc)).all())
    assert company in served and individual not in served
    assert not any(u.startswith("92") for u in served)


def test_a_published_versions_objection_can_be_upheld_and_re_scores(loop: dict) -> None:
    """A version records the desensitized tables it was built from (not their k-anonymous
    releases, listed under the same names), so an upheld objection re-scores the enterprise."""
    from pdo.ledger.models import DatasetVersion, ProductVersion

    pdo, ws = loop["pdo"], Workspace.open(loop["settings"])
    with session_scope(ws.engine) as s:
        version = s.get(ProductVersion, "credit_risk@1")
        assert version is not None
        recorded = [s.get(DatasetVersion, h) for h in version.input_hashes]
    assert recorded and {d.zone if d else None for d in recorded} == {"desensitized"}
    registry = ws.lake.read(_raw_manifest(ws, "enterprise_registry"))
    company = registry.filter(~pl.col("uscc").str.starts_with("92")).row(0, named=True)
    code, out = pdo(
        "objection", "add", company["uscc"], "--product", "credit_risk",
        "--item", f"enterprise_registry:status={company['status']}",
        "--reason", "企业称登记状态有误", "--as", "alice", "--json",
    )  # fmt: skip
    assert code == 0, out
    objection_id = json.loads(out[out.index("{") :])["id"]
    code, out = pdo(
        "objection", "resolve", objection_id, "--outcome", "upheld", "--note", "核实有误",
        "--as", "alice", "--json",
    )  # fmt: skip
    assert code == 0, out
    resolved = json.loads(out[out.index("{") :])
    assert resolved["status"] == "resolved" and resolved["outcome"] == "upheld"


def test_a_second_run_is_a_new_version_with_drift_and_the_first_is_left_as_published(
    loop: dict, tmp_path: Path
) -> None:
    from pdo.gen import generate
    from pdo.ledger.models import PipelineRun, ProductVersion

    pdo, ws = loop["pdo"], Workspace.open(loop["settings"])

    def served(version: str) -> list[tuple]:
        with session_scope(ws.engine) as s:
            rows = s.exec(
                select(ServedScore).where(ServedScore.product_version_id == version)
            ).all()
            return sorted((r.uscc, r.score, r.grade, json.dumps(r.details)) for r in rows)

    first = served("credit_risk@1")
    generate(tmp_path / "later", enterprises=400, seed=8, progress=False)
    code, out = pdo("run", "--source", str(tmp_path / "later"), "--as", "alice", "--json")
    assert code == 0, out
    run_id = json.loads(out[out.index("{") :])["run_id"]
    with session_scope(ws.engine) as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None and run.status == "awaiting_signoff"
        products = {p["product"]: p for p in run.review_package["products"]}
        entry = products["credit_risk"]
        assert products["operating_status"]["candidate"]["drift"]["psi"] is None  # no score
        reviewed = {d["id"] for d in run.review_package["datasets"]}
    drift = entry["candidate"]["drift"]
    assert entry["live_version"]["id"] == drift["against"] == "credit_risk@1"
    assert drift["psi"] >= 0 and drift["flagged"] == (drift["psi"] > 0.25)
    for reviewer in ("rita", "rick"):
        code, out = pdo("signoff", "approve", run_id, "--as", reviewer)
        assert code == 0, out
    assert "published credit_risk@2" in out
    with session_scope(ws.engine) as s:
        v1, v2 = s.get(ProductVersion, "credit_risk@1"), s.get(ProductVersion, "credit_risk@2")
        assert v1 is not None and v2 is not None
        assert (v1.status, v2.status) == ("superseded", "published")
        assert v2.run_id == run_id and v2.metrics["drift"] == drift
        assert v2.output_hash == entry["candidate"]["dataset"] != v1.output_hash
        assert set(v2.input_hashes) <= reviewed
    assert served("credit_risk@1") == first  # a published version never changes


def _raw_manifest(ws: Workspace, table: str):
    """The raw rows that passed validation (the raw zone also keeps ingest's version)."""
    root = ws.lake.root / "raw" / table
    versions = [ws.lake.manifest("raw", table, p.name) for p in root.iterdir()]
    (validated,) = [m for m in versions if m.stage == "validate"]
    return validated


def test_audit_verify_passes_then_fails_after_tampering(loop: dict) -> None:
    pdo = loop["pdo"]
    code, out = pdo("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"]
    ws = Workspace.open(loop["settings"])
    with ws.engine.begin() as c:
        c.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2"))
    code, out = pdo("audit", "verify", "--json")
    assert code == 1 and json.loads(out)["broken_at"] == 2


def test_quarantine_reconciles_and_the_cli_shows_reasons_not_values(loop: dict) -> None:
    pdo = loop["pdo"]
    ws = Workspace.open(loop["settings"])
    with session_scope(ws.engine) as s:
        from pdo.ledger.models import PipelineRun

        run = s.get(PipelineRun, loop["run_id"])
        assert run is not None
        tables = run.review_package["tables"]
        quality = run.review_package["quality"]
    for t in tables:  # in = passed + quarantined, at ingest and at validation together
        assert t["rows_in"] == t["rows_out"] + t["rows_quarantined"], t["table"]
        assert quality[t["table"]]["raw"]["validity"] is not None
    registry = next(t for t in tables if t["table"] == "enterprise_registry")
    assert registry["rows_quarantined_validation"] > 0  # the planted checksum dirt

    code, out = pdo("quarantine", "list", loop["run_id"], "--json")
    assert code == 0, out
    listed = json.loads(out[out.index("[") :])
    by_stage = {(c["table"], c["stage"]): c["rows_quarantined"] for c in listed}
    assert (
        by_stage[("enterprise_registry", "validate_raw")]
        == (registry["rows_quarantined_validation"])
    )
    code, out = pdo(
        "quarantine", "show", loop["run_id"], "--table", "enterprise_registry", "--json"
    )
    assert code == 0, out
    shown = json.loads(out[out.index("[") :])
    assert len(shown) == registry["rows_quarantined"]
    assert {"expect_column_values_to_be_valid_resident_id(legal_rep_id)"} & {
        r["reason"] for r in shown
    }
    assert not [v for v in _personal_values(loop["source"]) if v in out]
    code, out = pdo("quarantine", "show", loop["run_id"], "--json")  # tables with none too
    assert code == 0, out
    assert len(json.loads(out[out.index("[") :])) == sum(t["rows_quarantined"] for t in tables)
    code, out = pdo("quarantine", "list", "no-such-run")
    assert code != 0 and "no run no-such-run" in out


def _operator_home(home: Path, grant: str) -> Callable[..., tuple[int, str]]:
    """A fresh home with the departments, an operator and a default grant: its pdo command."""
    env = {"PDO_HOME": str(home)}
    runner = CliRunner()

    def pdo(*args: str, input: str | None = None) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env, input=input)
        return result.exit_code, result.output

    assert pdo("department", "register")[0] == 0
    assert pdo("user", "add", "alice", "--role", "operator", input=PASSWORD + "\n")[0] == 0
    code, out = pdo("authorization", "grant", "--reference", grant, "--as", "authority")
    assert code == 0, out
    return pdo


def test_a_blocking_validation_failure_stops_the_run_with_nothing_published(
    tmp_path: Path,
) -> None:
    """An empty delivered table fails its blocking row-count check: the run fails at validation."""
    from pdo.gen import generate

    home, source = tmp_path / "home", tmp_path / "delivery"
    generate(source, enterprises=120, seed=3, progress=False)
    penalties = source / "credit_penalties.csv"
    penalties.write_text(penalties.read_text(encoding="utf-8").splitlines()[0] + "\n", "utf-8")
    pdo = _operator_home(home, "数授〔2026〕T2号")
    code, out = pdo("run", "--source", str(source), "--as", "alice", "--json")
    assert code != 0 and "penalties" in out and "blocking" in out
    ws = Workspace.open(Settings(home=home))
    with session_scope(ws.engine) as s:
        from pdo.ledger.models import PipelineRun, ProductVersion

        runs = s.exec(select(PipelineRun)).all()
        assert [r.status for r in runs] == ["failed"]
        assert s.exec(select(ProductVersion)).all() == []
    assert not (home / "lake" / "product").exists()
    from pdo.validation.docs import pages

    (site,) = (home / "docs").iterdir()  # what blocked is documented for the data group
    assert "penalties-raw" in {p.batch for p in pages(site)}


def test_a_month_after_the_runs_month_is_quarantined_and_the_run_reaches_the_gate(
    tmp_path: Path,
) -> None:
    """A utilities month mistyped as next month, still inside a 365-day grant, is quarantined
    with its reason; packaging, which dates products by no month after the run's, goes on."""
    from pdo.delivery.periods import business_month, month_after
    from pdo.gen import generate
    from pdo.ledger.types import utcnow

    home, source = tmp_path / "home", tmp_path / "delivery"
    generate(source, enterprises=120, seed=3, progress=False)
    next_month = month_after(business_month(utcnow()))
    utilities = source / "utilities_payments.parquet"
    delivered = pl.read_parquet(utilities)
    first = pl.int_range(pl.len()) == 0
    delivered.with_columns(
        month=pl.when(first).then(pl.lit(next_month)).otherwise("month")
    ).write_parquet(utilities)
    pdo = _operator_home(home, "数授〔2026〕T3号")
    code, out = pdo("run", "--source", str(source), "--as", "alice", "--json")
    assert code == 0, out
    result = json.loads(out[out.index("{") :])
    assert result["status"] == "awaiting_signoff"
    code, out = pdo("quarantine", "show", result["run_id"], "--table", "utility_payments", "--json")
    assert code == 0, out
    shown = json.loads(out[out.index("[") :])
    assert [r["reason"] for r in shown if "month_not_after" in r["reason"]] == [
        "expect_column_values_to_be_month_not_after(month)"
    ]
    ws = Workspace.open(Settings(home=home))
    with session_scope(ws.engine) as s:
        from pdo.ledger.models import PipelineRun

        run = s.get(PipelineRun, result["run_id"])
        assert run is not None
        tables = {t["table"]: t for t in run.review_package["tables"]}
    utility = tables["utility_payments"]
    assert utility["rows_in"] == utility["rows_out"] + utility["rows_quarantined"]
    assert utility["rows_quarantined_validation"] >= 1
