"""A small real ledger and lake for the console tests, built through the project's own functions."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlmodel import Session

from pdo import audit
from pdo.delivery.metering import details_of
from pdo.lake import Lake, Manifest
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import (
    PipelineRun,
    Product,
    ProductVersion,
    SignOff,
    UsageEvent,
)
from pdo.privacy.risk import assess
from pdo.registration import grant_authorization, grant_rights, register_departments
from pdo.revenue import RevenueRule
from pdo.settings import Settings
from pdo.signoff import package_hash
from pdo.sources.tables import table
from pdo.subscribers import add_subscriber
from pdo.users import Role, add_user
from pdo.workspace import Workspace

PASSWORD = "password-123"
PRICE_FEN = 200
SHARES_BP = {
    "market": 1500,
    "tax": 1500,
    "hrss": 1000,
    "utilities": 800,
    "credit": 600,
    "court": 600,
}
STARTED_AT = dt.datetime(2026, 1, 5, 2, 0, tzinfo=dt.UTC)  # 10:00:00 in Asia/Shanghai
VALID_UNTIL = "2027-01-05T02:00:00+00:00"  # 2027-01-05 10:00:00 in Asia/Shanghai
PSEUDONYM_KEY_ID = "3f9a1c2b7d4e"
RISK_K_TARGET = 5  # flows.desensitize.RISK_K_TARGET (not imported: keeps the seed light)
USERS = {
    "olga": Role.OPERATOR,
    "rita": Role.REVIEWER,
    "rick": Role.REVIEWER,
    "rosa": Role.REVIEWER,
    "regina": Role.REGULATOR,
}
CALLS = {"示范银行": (3, "贷前审查"), "第二银行": (1, "贷后管理")}
CITY_SEED = 3  # a small generated city whose out-of-time loans include defaults (AUC defined)
CITY_ENTERPRISES = 400
LIVE_AS_OF = dt.date(2025, 12, 31)  # credit_risk@1, the version the pending run would replace


@dataclass(frozen=True)
class Seed:
    """What was seeded, and the figures the console must show for it."""

    home: Path
    pending_run_id: str
    package_hash: str
    dataset_id: str

    @property
    def total_calls(self) -> int:
        return sum(n for n, _ in CALLS.values())

    @property
    def billed_fen(self) -> int:
        return self.total_calls * PRICE_FEN


@dataclass(frozen=True)
class CreditRiskBuild:
    """A real credit-risk build of a generated city: the candidate and the live version's card."""

    as_of: str
    card: dict[str, Any]  # the candidate's model card, as plain JSON (as the ledger keeps it)
    model: dict[str, Any]
    model_sha256: str
    scores: pl.DataFrame
    live_card: dict[str, Any]  # the same scorecard scored as of LIVE_AS_OF
    drift: dict[str, Any]  # PSI of the candidate's scores against the live version's


@functools.cache
def credit_risk_build() -> CreditRiskBuild:
    """Generate a small city, ingest its tables, build the product twice (cached per session).

    Heavy imports stay in here: a seed without runs needs none of them.
    """
    from flows.ingest import ingest_file
    from flows.package import model_sha256, plain_json, scoring_date
    from pdo.gen import generate
    from pdo.scorecard.metrics import PSI_DRIFT, psi
    from products.credit_risk import SPEC, build

    with tempfile.TemporaryDirectory() as tmp:
        city = Path(tmp)
        generate(city, enterprises=CITY_ENTERPRISES, seed=CITY_SEED, progress=False)
        inputs = {
            name: ingest_file(city / table(name).file_name, table(name)).clean
            for name in SPEC.inputs
        }
    as_of = scoring_date(inputs)
    candidate, live = build(inputs, as_of), build(inputs, LIVE_AS_OF)
    value = round(psi(live.scores["score"].to_numpy(), candidate.scores["score"].to_numpy()), 4)
    return CreditRiskBuild(
        as_of=as_of.isoformat(),
        card=plain_json(candidate.metrics),
        model=plain_json(candidate.model),
        model_sha256=str(model_sha256(candidate.model)),
        scores=candidate.scores,
        live_card=plain_json(live.metrics),
        drift={"against": "credit_risk@1", "psi": value, "threshold": PSI_DRIFT,
               "flagged": value > PSI_DRIFT},
    )  # fmt: skip


def _product_entry(lake: Lake) -> tuple[dict[str, Any], Manifest]:
    """The package's credit_risk entry: spec, live version and this run's real build."""
    from products.credit_risk import SPEC

    built = credit_risk_build()
    out = lake.write(
        built.scores,
        table=SPEC.name,
        zone="product",
        stage="package",
        policy_hash=built.model_sha256,
    )
    validation = _suite_report(SPEC.name, "product", out.row_count) | {
        "evaluated": 7,
        "successful": 7,
    }
    entry = {
        "product": SPEC.name,
        "title_zh": SPEC.title_zh,
        "inputs": list(SPEC.inputs),
        "purposes": list(SPEC.purposes),
        "outputs": list(SPEC.outputs),
        "price_fen": SPEC.price_fen,
        "revenue_rule": SPEC.revenue.describe(),
        "revenue_weights": SPEC.revenue_weights(),
        "live_version": {
            "id": "credit_risk@1",
            "as_of": LIVE_AS_OF.isoformat(),
            "metrics": live_metrics(),
        },
        "candidate": {
            "product": SPEC.name,
            "dataset": out.id,
            "rows": out.row_count,
            "as_of": built.as_of,
            "model_card": copy.deepcopy(built.card),
            "model": copy.deepcopy(built.model),
            "model_sha256": built.model_sha256,
            "validation": validation,
            "drift": dict(built.drift),
        },
    }
    return entry, out


def live_metrics() -> dict[str, Any]:
    """credit_risk@1's metrics as publishing stores them: its model card plus its drift."""
    drift = {"against": None, "psi": None, "flagged": False}  # the first version: nothing before
    return copy.deepcopy(credit_risk_build().live_card) | {"drift": drift}


def _run_package(lake: Lake, run_id: str) -> tuple[dict[str, Any], str]:
    """A review package shaped like the pipeline's, over real (tiny, non-personal) datasets."""
    m = lake.write(
        pl.DataFrame(
            {"uscc": ["91310000MA1K000001"], "year": [2025], "grade": ["A"], "tax_paid": [1234.5]}
        ),
        table="tax_credit",
        zone="desensitized",
        stage="desensitize",
    )
    tables: list[dict[str, Any]] = [
        {
            "table": name,
            "label_zh": table(name).label_zh,
            "classification": table(name).classification.value,
            "file_sha256": "0" * 64,
            "rows_in": rows_in,
            "rows_out": rows_out,
            "rows_quarantined": rows_in - rows_out,
            "policies": {},
        }
        for name, rows_in, rows_out in (("tax_credit", 120, 117), ("enterprise_registry", 100, 100))
    ]
    _add_quarantine_and_policies(tables)
    registry = _registry_dataset(lake)
    product, scores = _product_entry(lake)
    validation = [
        {
            "table": "tax_credit",
            "suite": "tax_credit",
            "success": True,
            "evaluated": 7,
            "successful": 6,
            "failures": [],
            "warnings": [
                {
                    "expectation": "expect_column_values_to_be_in_set",
                    "column": "g",
                    "severity": "warning",
                    "dimension": "consistency",
                    "success": False,
                    "element_count": 117,
                    "unexpected_count": 2,
                    "missing_count": 0,
                    "observed": None,
                }
            ],
            "rows": 117,
            "quarantined": 0,
            "quarantine_reasons": {},
            "quality": {
                "completeness": 1.0,
                "validity": 0.9925,
                "uniqueness": None,
                "consistency": None,
                "timeliness": None,
            },
            "skipped": [],
        },
        _suite_report("enterprise_registry", "desensitized", registry.row_count),
    ]
    package = {
        "run_id": run_id,
        "authorization": {
            "reference": "授权〔2026〕1号",
            "tables": ["enterprise_registry", "tax_credit"],
            "purposes": ["贷前审查", "贷后管理"],
            "products": ["credit_risk"],
            "rights": grant_rights(["enterprise_registry", "tax_credit"], "授权运营单位"),
            "valid_until": VALID_UNTIL,
        },
        "products": [product],
        "tables": tables,
        "datasets": [
            {"table": d.table, "zone": d.zone, "id": d.id, "rows": d.row_count}
            for d in (m, registry, scores)
        ],
        "privacy": {
            "enterprise_registry": _privacy(lake, registry),
            "tax_credit": _privacy(lake, m),
        },
        "validation": validation,
        "data_docs": f"docs/{run_id}/index.html",
        "validation_raw": [
            _suite_report("tax_credit", "raw", 119, quarantined=2),
            _suite_report("enterprise_registry", "raw", 100),
        ],
        # tax_credit only: the quality page's test indexes this table's rows by zone
        "quality": {
            "tax_credit": {
                "raw": {
                    "completeness": 0.975,
                    "validity": 1.0,
                    "uniqueness": None,
                    "consistency": 0.9832,
                    "timeliness": 1.0,
                },
                "desensitized": validation[0]["quality"],
            }
        },
    }
    return package, m.id


QUARANTINED = {"tax_credit": (1, {"expect_column_values_to_be_valid_uscc(uscc)": 2})}
INGEST_REASONS = {"tax_credit": {"year: cannot parse as integer": 1}}


def _add_quarantine_and_policies(tables: list[dict[str, Any]]) -> None:
    """Quarantine split by stage, its reasons and column policies, as the pipeline keeps them."""
    for t in tables:
        ingest, reasons = QUARANTINED.get(t["table"], (0, {}))
        t |= {
            "rows_quarantined_ingest": ingest,
            "quarantine_reasons_ingest": INGEST_REASONS.get(t["table"], {}),
            "rows_quarantined_validation": t["rows_quarantined"] - ingest,
            "quarantine_reasons": reasons,
            "policies": {c.name: c.policy.value for c in table(t["table"]).columns},
        }


def _registry_dataset(lake: Lake) -> Manifest:
    """A tiny released registry (enterprises only, no personal data): two classes of three."""
    frame = pl.DataFrame(
        {
            "uscc": [f"91310000MA1K0001{i}X" for i in range(6)],
            "district": ["浦东新区"] * 3 + ["徐汇区"] * 3,
            "industry_section": ["C"] * 3 + ["I"] * 3,
            "industry_division": ["39"] * 3 + ["64"] * 3,
            "established_on": [dt.date(2015, 3, 1)] * 3 + [dt.date(2018, 6, 1)] * 3,
            "registered_capital": [100_000_000] * 3 + [50_000_000] * 3,
            # l = 2 in both classes; 吊销/注销 stay out: they are words of the knock-out rules
            # the model card names, and the page must show no value of a reviewed dataset
            "status": ["存续", "存续", "在业", "存续", "在业", "在业"],
        }
    )
    return lake.write(frame, table="enterprise_registry", zone="desensitized", stage="desensitize")


def _privacy(lake: Lake, m: Manifest) -> dict[str, Any]:
    """The desensitize stage's privacy details: nothing left to find, and the k-anonymity report."""
    contract = table(m.table)
    risk: dict[str, Any] = {}
    if contract.quasi_identifiers:
        frame = lake.read(m)
        risk = assess(
            frame, contract.quasi_identifiers, contract.sensitive, k_target=RISK_K_TARGET
        ).to_dict()
    return {"residual_pii": {}, "pseudonym_key_id": PSEUDONYM_KEY_ID, "risk": risk}


def _suite_report(name: str, zone: str, rows: int, quarantined: int = 0) -> dict[str, Any]:
    """A passing suite report shaped like `flows.validate.summary`'s."""
    reasons = QUARANTINED.get(name, (0, {}))[1] if zone == "raw" else {}
    return {
        "table": name,
        "suite": f"{name}.{zone}",
        "success": True,
        "rows": rows,
        "evaluated": 5,
        "successful": 5 - bool(quarantined),
        "failures": [],
        "warnings": [],
        "quarantined": quarantined,
        "quarantine_reasons": reasons,
        "quality": {
            "completeness": 1.0,
            "validity": 1.0,
            "uniqueness": 1.0,
            "consistency": None,
            "timeliness": None,
        },
        "skipped": [],
    }


def seed_console(home: Path, *, with_runs: bool = True, with_docs: bool = False) -> Seed:
    """Users, departments and an authorization; optionally a pending run, a product and usage.

    with_docs validates the pending run's dataset with its real suite and builds the run's Data
    Docs through the pipeline's own stage functions (imports GX: a few seconds).
    """
    settings = Settings(home=home)
    engine = make_engine(settings.db_url)
    pending_id, pkg_hash, dataset_id = "", "", ""
    try:
        with session_scope(engine) as s:
            register_departments(s, "admin")
            auth = grant_authorization(
                s,
                reference="授权〔2026〕1号",
                tables=["tax_credit", "enterprise_registry"],
                purposes=["贷前审查", "贷后管理"],
                days=365,
                actor="authority",
            )
            for name, role in USERS.items():
                add_user(s, name, role, PASSWORD, "admin")
            if with_runs:
                pending_id, pkg_hash, dataset_id = _seed_runs_and_usage(
                    s, Lake(settings.lake_dir), auth.id
                )
        if with_runs and with_docs:
            _seed_docs(Workspace(settings, engine, Lake(settings.lake_dir)), pending_id, dataset_id)
    finally:
        engine.dispose()
    return Seed(home=home, pending_run_id=pending_id, package_hash=pkg_hash, dataset_id=dataset_id)


def _seed_docs(ws: Workspace, run_id: str, dataset_id: str) -> None:
    """Validate the run's dataset as the pipeline does and build the run's Data Docs."""
    from flows.stages import build_run_docs, validate_table

    manifest = ws.lake.manifest("desensitized", "tax_credit", dataset_id)
    validate_table(ws, run_id, table("tax_credit"), manifest)
    build_run_docs(ws, run_id)


def _seed_runs_and_usage(s: Session, lake: Lake, authorization_id: str) -> tuple[str, str, str]:
    """A published run with its approval and product version, a pending run, and billed calls."""
    published = PipelineRun(
        source_dir="/deliveries/2025-12",
        authorization_id=authorization_id,
        started_by="olga",
        status="published",
        review_package_hash="a" * 64,
        started_at=STARTED_AT - dt.timedelta(days=30),
    )
    s.add(published)
    s.flush()
    approval = SignOff(
        run_id=published.id,
        reviewer="rita",
        role=Role.REVIEWER.value,
        decision="approved",
        comment="首批数据核对无误",
        covers_hash="a" * 64,
    )
    s.add(approval)
    s.flush()
    assert approval.id is not None

    pending_run = PipelineRun(
        source_dir="/deliveries/2026-01",
        authorization_id=authorization_id,
        started_by="rick",
        status="awaiting_signoff",
        started_at=STARTED_AT,
    )
    package, dataset_id = _run_package(lake, pending_run.id)
    pending_run.review_package = package
    pending_run.review_package_hash = pkg_hash = package_hash(package)
    s.add(pending_run)

    s.add(
        Product(
            name="credit_risk",
            title_zh="中小企业信用风险评分",
            title_en="SME credit-risk score",
            purposes=["贷前审查", "贷后管理"],
            price_fen=PRICE_FEN,
        )
    )
    s.flush()
    s.add(
        ProductVersion(
            id="credit_risk@1",
            product_name="credit_risk",
            version=1,
            run_id=published.id,
            signoff_id=approval.id,
            output_hash="b" * 64,
            as_of=LIVE_AS_OF,
            metrics=live_metrics(),
            model=copy.deepcopy(credit_risk_build().model),
            revenue_weights=RevenueRule(departments_bp=SHARES_BP).weights([]),
        )
    )
    s.flush()
    for bank, (calls, purpose) in CALLS.items():
        subscriber, key = add_subscriber(s, bank, "admin", ["credit_risk"])
        for i in range(calls):
            usage = UsageEvent(
                subscriber_id=subscriber.id,
                api_key_id=key.split("_")[1],
                product_version_id="credit_risk@1",
                uscc=f"91310000MA1K00000{i}",
                purpose=purpose,
                price_fen=PRICE_FEN,
            )
            s.add(usage)
            s.flush()  # on the audit chain as the API would have put it
            audit.record(
                s, f"subscriber:{subscriber.id}", "query.serve", usage.id, **details_of(usage)
            )
    return pending_run.id, pkg_hash, dataset_id
