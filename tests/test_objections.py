"""Objections (异议): raised and resolved through the real CLI on a real seeded home.

The home is tests/console_seed.py's (a grant and a published credit_risk@1 whose frozen
scorecard was really trained on a generated city). Here the same city's tables are ingested,
keyed as the desensitize stage keys them (a 个体工商户 by its pseudonym; personal columns left
out), written to the lake as the version's input datasets, and scored with the version's
scorecard into the serving store, so a re-score can be checked against a full rebuild.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from typer.testing import CliRunner

from flows.ingest import ingest_file
from flows.publish import served_rows
from flows.stages import record_dataset
from pdo.cli import app
from pdo.delivery.alerts import alert_view, disputed_now, list_alerts
from pdo.delivery.identity import shown_as
from pdo.delivery.objections import (
    ObjectionError,
    objection_redactor,
    parse_item,
    resolve_objection,
)
from pdo.delivery.version_events import alerts_for_new_version
from pdo.delivery.webhooks import MAX_ATTEMPTS, dispatch_due, webhook_secret
from pdo.gen import generate
from pdo.lake import Lake
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    Alert,
    AuditEvent,
    DatasetVersion,
    Objection,
    Product,
    ProductVersion,
    ScoreCorrection,
    ServedScore,
    Watchlist,
    WatchlistMember,
)
from pdo.ledger.types import utcnow
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.entity_key import entity_key, entity_key_series
from pdo.privacy.fastscan import FastScanner
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.scorecard.frozen import FrozenScorecard
from pdo.settings import Settings
from pdo.sources.contract import Policy
from pdo.sources.tables import SOURCE_TABLES, table
from pdo.subscribers import add_subscriber
from pdo.workspace import Workspace
from products import credit_risk, operating_status
from products.operating_status.rule import verify
from tests.console_seed import CITY_ENTERPRISES, CITY_SEED, LIVE_AS_OF, seed_console
from tests.webhook_receiver import LOOPBACK, Receiver, receiver

CREDIT = "credit_risk@1"
STATUS = "operating_status@1"
THREE_YEARS_BEFORE = LIVE_AS_OF.replace(year=LIVE_AS_OF.year - 3)


@functools.cache
def city() -> dict[str, pl.DataFrame]:
    """The generated city behind credit_risk@1, ingested (raw zone: codes as delivered)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, enterprises=CITY_ENTERPRISES, seed=CITY_SEED, progress=False)
        return {t.name: ingest_file(root / t.file_name, t).clean for t in SOURCE_TABLES}


def keyed(name: str, frame: pl.DataFrame, pseudo: Pseudonymizer) -> pl.DataFrame:
    """The table as products read it: entity keys, only the columns kept as they are."""
    kept = [c.name for c in table(name).columns if c.policy is Policy.KEEP and c.name in frame]
    return frame.select(entity_key_series(frame["uscc"], pseudo), *kept)


@dataclass(frozen=True)
class Home:
    """The seeded home, its pseudonymizer, and the inputs both versions were built from."""

    settings: Settings
    engine: Engine
    lake: Lake
    pseudo: Pseudonymizer
    inputs: dict[str, pl.DataFrame]  # entity-keyed, as in the lake
    model: dict[str, Any]

    def key(self, uscc: str) -> str:
        return entity_key(uscc, self.pseudo)

    def served(self, version: str, uscc: str) -> ServedScore:
        with session_scope(self.engine) as s:
            return s.exec(
                select(ServedScore).where(
                    ServedScore.product_version_id == version, ServedScore.uscc == self.key(uscc)
                )
            ).one()

    def correction(self, version: str, uscc: str) -> ScoreCorrection | None:
        with session_scope(self.engine) as s:
            return s.exec(
                select(ScoreCorrection).where(
                    ScoreCorrection.product_version_id == version,
                    ScoreCorrection.uscc == self.key(uscc),
                )
            ).first()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """credit_risk@1 and operating_status@1 on the city's datasets, their rows served."""
    seed_console(tmp_path)
    settings = Settings(home=tmp_path, database_url=None)
    ws = Workspace.open(settings)
    pseudo = Pseudonymizer.from_settings(settings)
    inputs = {name: keyed(name, frame, pseudo) for name, frame in city().items()}
    with session_scope(ws.engine) as s:
        ids = {}
        for name, frame in inputs.items():
            m = ws.lake.write(frame, table=name, zone="desensitized", stage="desensitize")
            record_dataset(s, m, ws.lake.dir_for(m))
            ids[name] = m.id
        live = s.get(ProductVersion, CREDIT)
        assert live is not None
        live.input_hashes = [ids[t] for t in credit_risk.SPEC.inputs]
        s.add(live)
        scored = credit_risk.score_frame(FrozenScorecard.from_dict(live.model), inputs, live.as_of)
        rows = served_rows(CREDIT, credit_risk.SPEC.outputs, scored.to_dicts())
        s.execute(insert(ServedScore), rows)
        spec = operating_status.SPEC
        s.add(
            Product(name=spec.name, title_zh=spec.title_zh, title_en=spec.title_en,
                    purposes=list(spec.purposes), price_fen=spec.price_fen)
        )  # fmt: skip
        s.flush()
        s.add(
            ProductVersion(
                id=STATUS, product_name=spec.name, version=1, run_id=live.run_id,
                signoff_id=live.signoff_id, input_hashes=[ids[t] for t in spec.inputs],
                output_hash="c" * 64, as_of=LIVE_AS_OF,
            )
        )  # fmt: skip
        s.flush()
        checked = verify(inputs["enterprise_registry"], inputs["abnormal_operations"], LIVE_AS_OF)
        s.execute(insert(ServedScore), served_rows(STATUS, spec.outputs, checked.to_dicts()))
        model = dict(live.model)
    return Home(settings, ws.engine, ws.lake, pseudo, inputs, model)


def pdo(home: Home, *args: str) -> tuple[int, str]:
    """The real CLI against the seeded home."""
    env = {"PDO_HOME": str(home.settings.resolved_home), "PDO_DATABASE_URL": None}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def pdo_json(home: Home, *args: str) -> Any:
    code, out = pdo(home, *args, "--json")
    assert code == 0, out
    return json.loads(out)


def dishonest_individual() -> tuple[str, str]:
    """A 个体工商户 (raw code) knocked out only by one 失信被执行人 listing, and its case."""
    raw = city()
    listed = raw["court_cases"].filter(
        (pl.col("kind") == "失信被执行人")
        & (pl.col("published_on") <= LIVE_AS_OF)
        & (pl.col("status") != "已全部履行")  # paid in full: off the list, no KO03
    )
    once = listed.group_by("uscc").len().filter(pl.col("len") == 1)["uscc"]
    operating = raw["enterprise_registry"].filter(
        pl.col("status").is_in(["存续", "在业"]) & pl.col("uscc").str.starts_with("92")
    )["uscc"]
    uscc = sorted(set(once) & set(operating))[0]
    return uscc, listed.filter(pl.col("uscc") == uscc)["case_no"].item()


def penalised_company(home: Home) -> tuple[str, str, int]:
    """A company losing points for exactly one recent penalty: its code, the case, points lost."""
    raw = city()["penalties"]
    recent = raw.filter(
        (pl.col("published_on") <= LIVE_AS_OF) & (pl.col("published_on") > THREE_YEARS_BEFORE)
    )
    once = recent.group_by("uscc").len().filter(pl.col("len") == 1)["uscc"].to_list()
    for uscc in sorted(u for u in once if u.startswith("91")):
        row = home.served(CREDIT, uscc)
        lost = [r["points_lost"] for r in row.details["reasons"] if r["factor"] == "penalties_3y"]
        if lost and lost[0] > 0 and not row.details["knockouts"]:
            return uscc, recent.filter(pl.col("uscc") == uscc)["case_no"].item(), lost[0]
    raise AssertionError("the city has no company penalised once")


def rebuilt(home: Home, uscc: str, table_name: str, drop: pl.Expr) -> dict[str, Any]:
    """The oracle: the whole city scored again with the records dropped, one row picked."""
    inputs = dict(home.inputs) | {table_name: home.inputs[table_name].filter(~drop)}
    scores = credit_risk.score_frame(FrozenScorecard.from_dict(home.model), inputs, LIVE_AS_OF)
    return scores.filter(pl.col("uscc") == home.key(uscc)).row(0, named=True)


def watch(home: Home, uscc: str, product_name: str = "credit_risk") -> str:
    """A bank's watchlist holding the enterprise; returns the watchlist id."""
    with session_scope(home.engine) as s:
        bank, _ = add_subscriber(s, f"观察银行{product_name}", "admin", [product_name])
        watchlist = Watchlist(name="贷后组合", product_name=product_name, subscriber_id=bank.id)
        s.add(watchlist)
        s.flush()
        s.add(
            WatchlistMember(watchlist_id=watchlist.id, uscc=home.key(uscc), shown_as=shown_as(uscc))
        )
        return watchlist.id


def alerts(home: Home, watchlist_id: str) -> list[Alert]:
    with session_scope(home.engine) as s:
        return list(s.exec(select(Alert).where(Alert.watchlist_id == watchlist_id)).all())


def test_upheld_objection_lifts_a_knockout_and_tells_the_watchers(home: Home) -> None:
    uscc, case = dishonest_individual()
    signed = home.served(CREDIT, uscc)
    assert signed.grade == "E" and [k["code"] for k in signed.details["knockouts"]] == ["KO03"]
    watched = watch(home, uscc)

    raised = pdo_json(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", f"court_cases:{case}", "--reason", "失信记录已于判决后撤销", "--as", "olga",
    )  # fmt: skip
    assert raised["status"] == "open" and raised["enterprise"] == shown_as(uscc)
    assert raised["item"] == f"court_cases:case_no={case}"
    with session_scope(home.engine) as s:
        stored = s.get(Objection, raised["id"])
        assert stored is not None and stored.uscc == home.key(uscc) != uscc
    [opened] = alerts(home, watched)
    assert opened.kind == "dispute_opened" and opened.payload["enterprise"] == shown_as(uscc)
    assert opened.payload["status"] == "disputed_withheld"

    resolved = pdo_json(
        home, "objection", "resolve", raised["id"], "--outcome", "upheld",
        "--note", "法院确认已撤销失信决定", "--as", "olga",
    )  # fmt: skip
    r = resolved["resolution"]
    assert resolved["status"] == "resolved" and resolved["outcome"] == "upheld"
    assert r["old"] == {"score": signed.score, "grade": "E"}
    assert r["excluded"] == {
        "table": "court_cases", "columns": {"case_no": case}, "action": "excluded", "records": 1
    }  # fmt: skip
    expected = rebuilt(home, uscc, "court_cases", pl.col("case_no") == case)
    assert expected["knockouts"] == [] and expected["grade"] != "E"
    corrected = home.correction(CREDIT, uscc)
    assert corrected is not None and corrected.objection_id == raised["id"]
    assert (corrected.score, corrected.grade) == (expected["score"], expected["grade"])
    assert corrected.details == {
        "reasons": expected["reasons"], "knockouts": [],
        "abnormal_listings_open": expected["abnormal_listings_open"],
    }  # fmt: skip
    assert r["new"] == {"score": expected["score"], "grade": expected["grade"]}
    assert home.served(CREDIT, uscc).grade == "E"  # the signed version is left as signed

    kinds = {a.kind: a for a in alerts(home, watched)}
    assert set(kinds) == {"dispute_opened", "dispute_resolved"}
    assert kinds["dispute_resolved"].payload["outcome"] == "upheld"
    assert kinds["dispute_resolved"].payload["grade"] == expected["grade"]


def test_upheld_objection_to_a_penalty_recovers_its_points(home: Home) -> None:
    uscc, case, lost = penalised_company(home)
    signed = home.served(CREDIT, uscc)
    raised = pdo_json(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", f"penalties:case_no={case}", "--reason", "处罚决定已被复议撤销", "--as", "olga",
    )  # fmt: skip
    code, out = pdo(
        home, "objection", "resolve", raised["id"], "--outcome", "upheld",
        "--note", "复议决定书核实无误", "--as", "olga",
    )  # fmt: skip
    assert code == 0, out
    expected = rebuilt(home, uscc, "penalties", pl.col("case_no") == case)
    corrected = home.correction(CREDIT, uscc)
    assert corrected is not None and corrected.score == expected["score"]
    assert signed.score is not None and corrected.score is not None
    assert signed.score < corrected.score <= signed.score + lost
    assert f"{signed.score} / {signed.grade} → {expected['score']} / {expected['grade']}" in out


def test_rejected_objection_leaves_the_signed_result_and_refuses_a_second_resolution(
    home: Home,
) -> None:
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    raised = pdo_json(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", f"court_cases:case_no={case}", "--reason", "不认可", "--as", "olga",
    )  # fmt: skip
    resolved = pdo_json(
        home, "objection", "resolve", raised["id"], "--outcome", "rejected",
        "--note", "法院复函确认记录有效", "--as", "rita",
    )  # fmt: skip
    assert resolved["outcome"] == "rejected" and resolved["resolution"]["changed"] is False
    assert home.correction(CREDIT, uscc) is None
    with session_scope(home.engine) as s:
        assert s.exec(select(ScoreCorrection)).all() == []
    done = [a for a in alerts(home, watched) if a.kind == "dispute_resolved"]
    assert [a.payload["outcome"] for a in done] == ["rejected"] and "grade" not in done[0].payload

    code, out = pdo(
        home, "objection", "resolve", raised["id"], "--outcome", "upheld",
        "--note", "again", "--as", "olga",
    )  # fmt: skip
    assert code == 1 and "already resolved (rejected) by rita" in out
    assert home.correction(CREDIT, uscc) is None
    with session_scope(home.engine) as s, pytest.raises(ObjectionError, match="already resolved"):
        resolve_objection(
            s,
            raised["id"],
            outcome="rejected",
            note="x",
            actor="olga",
            lake=home.lake,
            redact=objection_redactor(home.settings.models_dir),
        )


@pytest.mark.parametrize(
    ("product_name", "item", "says"),
    [
        ("operating_status", "court_cases:case_no=(2019)浙0105执13号", "not an input of"),
        ("credit_risk", "land_registry:parcel=1", "not an input of"),
        ("credit_risk", "enterprise_registry:legal_rep_name=张三", "holds personal data"),
        ("credit_risk", "tax_credit:uscc=91330102MAGXE9HN35", "must not name the uscc"),
        ("credit_risk", "utility_payments:2025-06", "no single record id"),
        ("credit_risk", "penalties", "not of the form"),
    ],
)
def test_an_item_outside_the_products_inputs_is_refused(
    home: Home, product_name: str, item: str, says: str
) -> None:
    uscc, _ = dishonest_individual()
    code, out = pdo(
        home, "objection", "add", uscc, "--product", product_name, "--item", item,
        "--reason", "r", "--as", "olga",
    )  # fmt: skip
    assert code == 1 and says in out
    with session_scope(home.engine) as s:
        assert s.exec(select(Objection)).all() == []


@pytest.mark.parametrize(
    "item",
    [
        "11010519491231002X",  # a resident ID pasted into --item
        "11010519491231002X:1",  # as the table
        "penalties:11010519491231002X=1",  # as a column
        "court_cases:case_no=11010519491231002X",  # as a value naming no record
    ],
)
def test_a_personal_number_typed_into_the_item_is_not_echoed(home: Home, item: str) -> None:
    uscc, _ = dishonest_individual()
    code, out = pdo(
        home, "objection", "add", uscc, "--product", "credit_risk", "--item", item,
        "--reason", "r", "--as", "olga",
    )  # fmt: skip
    assert code == 1 and "error:" in out and "11010519491231002X" not in out, out


def test_an_item_that_names_no_record_of_the_enterprise_is_refused(home: Home) -> None:
    """A mistyped record withholds nothing: the item is checked against the version's inputs."""
    uscc, case_no = dishonest_individual()
    for item in ("penalties:case_no=杭市监罚〔2099〕1号", f"court_cases:case_no={case_no}x"):
        code, out = pdo(
            home, "objection", "add", uscc, "--product", "credit_risk",
            "--item", item, "--reason", "r", "--as", "olga",
        )  # fmt: skip
        assert code == 1 and "names no record of" in out and "credit_risk@1" in out, out
        assert uscc not in out  # a 个体工商户's code is shown masked
    with session_scope(home.engine) as s:
        assert s.exec(select(Objection)).all() == []
    assert pdo_json(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", f"court_cases:case_no={case_no}", "--reason", "r", "--as", "olga",
    )["status"] == "open"  # fmt: skip


def test_operating_status_reverifies_without_a_disputed_listing(home: Home) -> None:
    """The same generic path on another product: its own re-scoring hook, no model."""
    listings = city()["abnormal_operations"]
    open_now = listings.filter(
        (pl.col("listed_on") <= LIVE_AS_OF)
        & (pl.col("removed_on").is_null() | (pl.col("removed_on") > LIVE_AS_OF))
    )
    once = open_now.group_by("uscc").len().filter(pl.col("len") == 1)["uscc"].to_list()
    uscc = next(u for u in sorted(once) if home.served(STATUS, u).details["status"] == "abnormal")
    listed_on = open_now.filter(pl.col("uscc") == uscc)["listed_on"].item()
    watched = watch(home, uscc, "operating_status")
    raised = pdo_json(
        home, "objection", "add", uscc, "--product", "operating_status",
        "--item", f"abnormal_operations:listed_on={listed_on:%Y-%m-%d}",
        "--reason", "已补报年报并移出", "--as", "olga",
    )  # fmt: skip
    resolved = pdo_json(
        home, "objection", "resolve", raised["id"], "--outcome", "upheld", "--note", "核实",
        "--as", "olga",
    )  # fmt: skip
    assert resolved["resolution"]["changed"] is True
    corrected = home.correction(STATUS, uscc)
    assert corrected is not None and corrected.score is None
    assert (
        corrected.details["status"] == "active" and corrected.details["abnormal_listings_open"] == 0
    )
    [done] = [a for a in alerts(home, watched) if a.kind == "dispute_resolved"]
    assert done.payload == done.payload | {"outcome": "upheld", "changed": True}


def test_rescore_of_untouched_inputs_reproduces_the_signed_rows(home: Home) -> None:
    """The one-enterprise hooks agree with the full builds they stand in for."""
    uscc, _ = dishonest_individual()
    key = home.key(uscc)
    signed = home.served(CREDIT, uscc)
    again = credit_risk.SPEC.rescore
    assert again is not None
    row = again(home.inputs, LIVE_AS_OF, home.model, key)
    assert row == {"score": signed.score, "grade": signed.grade, "details": signed.details}
    assert again(home.inputs, LIVE_AS_OF, home.model, "p_" + "0" * 24) is None
    status = operating_status.SPEC.rescore
    assert status is not None
    assert status(home.inputs, LIVE_AS_OF, {}, key) == {
        "score": None, "grade": None, "details": home.served(STATUS, uscc).details
    }  # fmt: skip
    registry = city()["enterprise_registry"]
    surviving = registry.filter(pl.col("status") == "存续")["uscc"].sort()[0]
    cleared = parse_item(operating_status.SPEC, "enterprise_registry:status=存续")
    frame, n = cleared.exclude(home.inputs["enterprise_registry"], home.key(surviving))
    assert n == 1 and cleared.describe()["action"] == "cleared"
    unverifiable = dict(home.inputs) | {"enterprise_registry": frame}
    assert status(unverifiable, LIVE_AS_OF, {}, home.key(surviving)) is None  # never a guess


def test_no_output_audit_or_alert_holds_an_individuals_code(
    home: Home, tmp_path_factory: pytest.TempPathFactory
) -> None:
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    outputs = []
    code, out = pdo(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", f"court_cases:{case}", "--reason", f"经营者称 {uscc} 的失信记录有误",
        "--as", "olga",
    )  # fmt: skip
    assert code == 0, out
    outputs.append(out)
    [listed] = pdo_json(home, "objection", "list", "--status", "open")
    outputs += [json.dumps(listed, ensure_ascii=False), pdo(home, "objection", "list")[1]]
    assert listed["enterprise"] == shown_as(uscc) and listed["days_to_resolve"] is None
    assert shown_as(uscc) in listed["reason"]  # the code typed into the reason is masked
    outputs.append(
        pdo(home, "objection", "resolve", listed["id"], "--outcome", "upheld", "--note",
            f"核实 {uscc}", "--as", "olga")[1]
    )  # fmt: skip
    [done] = pdo_json(home, "objection", "list", "--status", "resolved")
    assert done["days_to_resolve"] is not None and done["age_days"] >= done["days_to_resolve"]
    outputs += [json.dumps(done, ensure_ascii=False), pdo(home, "objection", "list")[1]]
    with session_scope(home.engine) as s:
        audit = [
            json.dumps([e.subject, e.details], ensure_ascii=False)
            for e in s.exec(
                select(AuditEvent).where(col(AuditEvent.action).startswith("objection"))
            )
        ]
        objection = s.exec(select(Objection)).one()
        stored = json.dumps(
            [objection.item, objection.reason, objection.resolution], ensure_ascii=False
        )
    assert len(audit) == 2
    payloads = [json.dumps(a.payload, ensure_ascii=False) for a in alerts(home, watched)]
    texts = outputs + audit + payloads + [stored]
    pseudonym = home.key(uscc)
    for text in texts:
        assert uscc not in text
    for text in outputs + audit + payloads:
        assert pseudonym not in text
    scanner = FastScanner(build_analyzer(tmp_path_factory.mktemp("models")))
    assert scanner.count_personal([f"统一社会信用代码 {uscc}"])  # the scan can see one
    assert scanner.count_personal(texts) == {}


def _second_record(uscc: str) -> str:
    """An item naming another real record of the enterprise, outside court_cases."""
    for name, column in (("tax_credit", "year"), ("penalties", "case_no"), ("bank_loans", "id")):
        values = city()[name].filter(pl.col("uscc") == uscc)[column]
        if len(values):
            return f"{name}:{column}={values[0]}"
    raise AssertionError("the enterprise has no second record")


def _object(home: Home, uscc: str, item: str) -> dict[str, Any]:
    return pdo_json(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", item, "--reason", "记录有误", "--as", "olga",
    )  # fmt: skip


def _resolve(home: Home, objection_id: str, outcome: str, note: str, actor: str) -> None:
    """Resolve an objection through the CLI, as the operator does; it must succeed."""
    code, out = pdo(
        home, "objection", "resolve", objection_id, "--outcome", outcome, "--note", note,
        "--as", actor,
    )  # fmt: skip
    assert code == 0, out


def test_resolving_one_of_two_objections_tells_watchers_nothing_of_the_withheld_result(
    home: Home,
) -> None:
    """Upholding the first of two open objections re-scores the enterprise, but the second still
    withholds the result: its dispute_resolved alert carries no grade; the last one does."""
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    first = _object(home, uscc, f"court_cases:case_no={case}")
    second = _object(home, uscc, _second_record(uscc))
    for objection in (first, second):
        _resolve(home, objection["id"], "upheld", "核实", "olga")
        done = [a.payload for a in alerts(home, watched) if a.kind == "dispute_resolved"]
        if objection is first:
            assert [
                (p["outcome"], p.get("status"), "grade" in p, "changed" in p) for p in done
            ] == [("upheld", "disputed_withheld", False, False)]
    released = done[-1]
    assert released["outcome"] == "upheld" and "status" not in released
    corrected = home.correction(CREDIT, uscc)
    assert corrected is not None
    assert released.get("grade", corrected.grade) == corrected.grade


def test_a_rejected_objection_releases_the_alerts_a_new_version_held_back(home: Home) -> None:
    """credit_risk@2 drops a disputed company to E with the 失信 knock-out while its objection is
    open: its watchers get only a withheld new_version. Rejected, the result stands, and they
    get the grade drop and the knock-out then, as the watchers of an undisputed company did."""
    disputed, case, _ = penalised_company(home)
    held_back = {"dishonest_debtor"} | (
        {"grade_drop"} if home.served(CREDIT, disputed).grade != "E" else set()
    )
    undisputed = next(
        u
        for u in sorted(city()["enterprise_registry"]["uscc"].to_list())
        if u.startswith("91") and u != disputed and home.served(CREDIT, u).grade in ("A", "B")
    )
    watched = watch(home, disputed)
    with session_scope(home.engine) as s:
        s.add(WatchlistMember(watchlist_id=watched, uscc=home.key(undisputed), shown_as=undisputed))
    raised = _object(home, disputed, f"penalties:case_no={case}")
    _publish_v2_knocking_out(home, disputed, undisputed)

    def kinds(code: str) -> set[str]:
        with session_scope(home.engine) as s:
            member = s.exec(
                select(WatchlistMember.id).where(WatchlistMember.uscc == home.key(code))
            ).one()
            return {a.kind for a in s.exec(select(Alert).where(Alert.member_id == member))}

    assert {"grade_drop", "dishonest_debtor"} <= kinds(undisputed)
    assert not held_back & kinds(disputed)  # withheld while the objection is open
    _resolve(home, raised["id"], "rejected", "处罚决定有效", "rita")
    assert held_back <= kinds(disputed)
    with session_scope(home.engine) as s:
        released = s.exec(
            select(Alert).where(
                Alert.kind == "dishonest_debtor", Alert.product_version_id == "credit_risk@2"
            )
        ).all()
    assert len(released) == 2 and {a.status for a in released} == {"pending"}


def _alerted(home: Home, uscc: str) -> str:
    """A bank watching the enterprise, alerted of the live version's result; the watchlist."""
    watched = watch(home, uscc)
    with session_scope(home.engine) as s:
        version = s.get(ProductVersion, CREDIT)
        assert version is not None
        alerts_for_new_version(s, version)
    return watched


@pytest.mark.parametrize("outcome", ["rejected", "upheld"])
def test_alerts_withdrawn_by_an_objection_go_out_again_only_if_it_is_rejected(
    home: Home, outcome: str
) -> None:
    """Rejected, the signed result stands and its withdrawn alerts are pending again; upheld,
    they stay withdrawn (their result was corrected) and dispute_resolved says what it is now."""
    uscc, case = dishonest_individual()
    watched = _alerted(home, uscc)
    raised = _object(home, uscc, f"court_cases:case_no={case}")
    statuses = {a.kind: a.status for a in alerts(home, watched) if a.kind != "dispute_opened"}
    assert set(statuses.values()) == {"withdrawn"}
    _resolve(home, raised["id"], outcome, "核实", "rita")
    after = {a.kind: a.status for a in alerts(home, watched) if a.kind in statuses}
    assert after == {kind: "pending" if outcome == "rejected" else "withdrawn" for kind in statuses}


def test_a_later_rejected_objection_never_releases_what_an_upheld_one_corrected(
    home: Home,
) -> None:
    """Upheld, the first objection corrected the result and withdrew the alerts of the signed
    one for good; a second objection, rejected, restores the corrected result: the signed
    result's alerts must not go out again beside it."""
    uscc, case = dishonest_individual()
    watched = _alerted(home, uscc)
    signed = home.served(CREDIT, uscc)
    for item, outcome in (
        (f"court_cases:case_no={case}", "upheld"),
        (_second_record(uscc), "rejected"),
    ):
        raised = _object(home, uscc, item)
        _resolve(home, raised["id"], outcome, "核实", "rita")
    corrected = home.correction(CREDIT, uscc)
    assert corrected is not None and corrected.grade != signed.grade
    live = [a for a in alerts(home, watched) if a.status in ("pending", "delivered")]
    shown = {(a.kind, a.payload.get("grade")) for a in live}
    assert ("new_version", signed.grade) not in shown
    assert "dishonest_debtor" not in {kind for kind, _ in shown}  # the listing was corrected away
    assert any(a.kind == "dispute_resolved" for a in live)


def test_a_new_dispute_withholds_the_grade_an_earlier_resolution_told(home: Home) -> None:
    """dispute_resolved told the corrected grade; while a second objection disputes that result,
    a bank listing its alerts again gets the outcome, not the grade (nor any result alert's)."""
    uscc, case = dishonest_individual()
    watched = _alerted(home, uscc)
    first = _object(home, uscc, f"court_cases:case_no={case}")
    _resolve(home, first["id"], "upheld", "核实", "rita")
    told = [a for a in alerts(home, watched) if a.kind == "dispute_resolved"]
    assert [a.payload.get("grade") for a in told] == [home.correction(CREDIT, uscc).grade]
    _object(home, uscc, _second_record(uscc))
    with session_scope(home.engine) as s:
        bank = s.exec(select(Watchlist.subscriber_id).where(Watchlist.id == watched)).one()
        listed = list_alerts(s, bank, watchlist_id=watched)
        views = [alert_view(a, a.id in disputed_now(s, listed)) for a in listed]
    resolved = [v["payload"] for v in views if v["kind"] == "dispute_resolved"]
    assert resolved and all(
        "grade" not in p and p["status"] == "disputed_withheld" for p in resolved
    )
    assert all(
        v["payload"].get("status") == "disputed_withheld"
        for v in views
        if v["kind"] not in ("dispute_opened",)
    )


def _hooked(home: Home, watched: str, hook: Receiver, server_key: bytes) -> None:
    """The watchlist pushes to hook; the live version's alerts are raised for it."""
    hook.secret = webhook_secret(server_key, watched)
    with session_scope(home.engine) as s:
        watchlist = s.get(Watchlist, watched)
        version = s.get(ProductVersion, CREDIT)
        assert watchlist is not None and version is not None
        watchlist.webhook_url = hook.url
        s.add(watchlist)
        s.flush()
        alerts_for_new_version(s, version)


def test_a_push_withholds_the_grade_a_new_dispute_withholds(home: Home) -> None:
    """Pushed as a pull shows it: a dispute_resolved still pending when a second objection
    disputes the result is sent with the outcome, not the corrected grade."""
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    server_key = home.settings.read_pseudonym_key()[1]
    with receiver() as hook:
        _hooked(home, watched, hook, server_key)
        assert (
            dispatch_due(home.engine, server_key, egress=LOOPBACK).delivered >= 1
        )  # the version's alerts
        first = _object(home, uscc, f"court_cases:case_no={case}")
        _resolve(home, first["id"], "upheld", "核实", "rita")  # dispute_resolved, with the grade
        _object(home, uscc, _second_record(uscc))
        dispatch_due(home.engine, server_key, egress=LOOPBACK)
    pushed = [b["payload"] for b in hook.bodies() if b["kind"] == "dispute_resolved"]
    assert pushed == [{"outcome": "upheld", "changed": True, "status": "disputed_withheld"}]


def test_a_released_alert_is_pushed_with_a_fresh_budget_of_attempts(home: Home) -> None:
    """A result alert dead-lettered before the dispute, withdrawn by it and released when the
    objection is rejected, is queued anew (as a requeue is): a failed push leaves it pending
    for its retries, not dead again at once."""
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    server_key = home.settings.read_pseudonym_key()[1]
    with receiver(default=500) as hook:
        _hooked(home, watched, hook, server_key)
        start = utcnow()
        for attempt in range(MAX_ATTEMPTS):  # each after the backoff before it (at most minutes)
            dispatch_due(
                home.engine,
                server_key,
                egress=LOOPBACK,
                now=start + dt.timedelta(hours=attempt + 1),
            )
        dead = {a.id for a in alerts(home, watched) if a.status == "dead"}
        assert dead
        raised = _object(home, uscc, f"court_cases:case_no={case}")
        _resolve(home, raised["id"], "rejected", "核实", "rita")
        dispatch_due(
            home.engine,
            server_key,
            egress=LOOPBACK,
            now=start + dt.timedelta(hours=MAX_ATTEMPTS + 1),
        )
    released = [a for a in alerts(home, watched) if a.id in dead]
    assert [(a.status, a.attempts) for a in released] == [("pending", 1)] * len(dead)


@pytest.mark.parametrize("typed", ["ascii", "full width"])
def test_personal_data_typed_into_a_reason_or_note_is_not_stored(home: Home, typed: str) -> None:
    """The operator copies an enterprise's letter (with a Chinese input method's full-width
    digits too): a 身份证号, a mobile, a name or an address in it are replaced by placeholders
    before the objection is stored, listed or audited."""
    uscc, case = dishonest_individual()
    resident_id, mobile = "11010519491231002X", "13812345678"
    if typed == "full width":
        wide = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
        resident_id, mobile = resident_id.translate(wide), mobile.translate(wide)
    personal = (resident_id, mobile, "张伟", "文三路100号")
    raised = pdo_json(
        home, "objection", "add", uscc, "--product", "credit_risk",
        "--item", f"court_cases:case_no={case}", "--as", "olga", "--reason",
        f"法定代表人张伟（身份证 {resident_id}，手机 {mobile}）称该案已结",
    )  # fmt: skip
    assert "〈身份证号〉" in raised["reason"] and "〈手机号〉" in raised["reason"]
    resolved = pdo_json(
        home, "objection", "resolve", raised["id"], "--outcome", "rejected", "--as", "rita",
        "--note", f"致电 {mobile} 张伟核实，住址浙江省杭州市西湖区文三路100号，记录有效",
    )  # fmt: skip
    shown = json.dumps([raised, resolved], ensure_ascii=False) + pdo(home, "objection", "list")[1]
    with session_scope(home.engine) as s:
        shown += json.dumps(
            [o.model_dump(mode="json") for o in s.exec(select(Objection))], ensure_ascii=False
        )
        shown += json.dumps([e.details for e in s.exec(select(AuditEvent))], ensure_ascii=False)
    assert [p for p in personal if p in shown] == []
    assert "称该案已结" in raised["reason"] and "记录有效" in resolved["resolution"]["note"]


def test_an_upheld_objections_records_stay_out_of_the_next_build(home: Home) -> None:
    """The department's data still holds the disputed 失信 listing: the next version built from
    it leaves the record out as the correction did, and says so in what reviewers sign."""
    from flows.package import build_candidate

    uscc, case = dishonest_individual()
    raised = _object(home, uscc, f"court_cases:case_no={case}")
    _resolve(home, raised["id"], "upheld", "法院确认已撤销", "olga")
    ws = Workspace.open(home.settings)
    with session_scope(home.engine) as s:
        live = s.get(ProductVersion, CREDIT)
        assert live is not None
        datasets = {}
        for dataset_id in live.input_hashes:
            row = s.get(DatasetVersion, dataset_id)
            assert row is not None
            datasets[row.table_name] = home.lake.manifest(row.zone, row.table_name, row.id)
        run_id = live.run_id
    candidate = build_candidate(ws, run_id, "credit_risk", datasets)
    assert candidate["corrections_carried"] == [
        {"objection": raised["id"], "item": f"court_cases:case_no={case}", "records": 1}
    ]
    built = home.lake.read(home.lake.manifest("product", "credit_risk", candidate["dataset"]))
    row = built.filter(pl.col("uscc") == home.key(uscc)).row(0, named=True)
    assert "KO03" not in json.dumps(row, default=str)  # its only knock-out came from the case
    signed = home.served(CREDIT, uscc)
    assert [k["code"] for k in signed.details["knockouts"]] == ["KO03"]  # v1 is unchanged


def _publish_v2_knocking_out(home: Home, *usccs: str) -> None:
    """credit_risk@2 newly lists the enterprises as 失信被执行人 (a new case): E with KO03."""
    knocked_out = {"reasons": [], "knockouts": [{"code": "KO03", "label_zh": "失信被执行人"}]}
    with session_scope(home.engine) as s:
        v1 = s.get(ProductVersion, CREDIT)
        assert v1 is not None
        v2 = ProductVersion(
            id="credit_risk@2", product_name="credit_risk", version=2, run_id=v1.run_id,
            signoff_id=v1.signoff_id, input_hashes=list(v1.input_hashes), output_hash="d" * 64,
            as_of=v1.as_of, model=dict(v1.model), revenue_weights=dict(v1.revenue_weights),
        )  # fmt: skip
        v1.status = "superseded"
        s.add_all([v1, v2])
        s.flush()
        for uscc in usccs:
            s.add(ServedScore(product_version_id=v2.id, uscc=home.key(uscc), score=300,
                              grade="E", details=knocked_out))  # fmt: skip
        s.flush()
        alerts_for_new_version(s, v2)


def _v2_kinds(home: Home, watchlist_id: str) -> set[str]:
    return {a.kind for a in alerts(home, watchlist_id) if a.product_version_id == "credit_risk@2"}


def test_a_new_version_is_compared_with_the_corrected_result_the_bank_was_told(
    home: Home,
) -> None:
    """An upheld objection lifted the enterprise's KO03 (the bank was told its corrected grade);
    a new 失信 listing in credit_risk@2 is news to that bank: knock-out and grade drop alerts."""
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    raised = _object(home, uscc, f"court_cases:case_no={case}")
    pdo_json(home, "objection", "resolve", raised["id"], "--outcome", "upheld",
             "--note", "法院确认已撤销失信决定", "--as", "olga")  # fmt: skip
    corrected = home.correction(CREDIT, uscc)
    assert corrected is not None and corrected.grade != "E" and corrected.details["knockouts"] == []

    _publish_v2_knocking_out(home, uscc)

    assert {"new_version", "dishonest_debtor", "grade_drop"} <= _v2_kinds(home, watched)
    [drop] = [a.payload for a in alerts(home, watched) if a.kind == "grade_drop"]
    assert (drop["old_grade"], drop["new_grade"]) == (corrected.grade, "E")


def test_alerts_released_after_a_dispute_compare_with_the_corrected_result(home: Home) -> None:
    """A first objection corrected the enterprise's result on credit_risk@1; credit_risk@2 lists
    it as a 失信被执行人 while a second objection is open. Rejected, the held-back knock-out and
    grade drop go out, measured against the corrected result, not the signed one."""
    uscc, case = dishonest_individual()
    watched = watch(home, uscc)
    first = _object(home, uscc, f"court_cases:case_no={case}")
    pdo_json(home, "objection", "resolve", first["id"], "--outcome", "upheld",
             "--note", "法院确认已撤销失信决定", "--as", "olga")  # fmt: skip
    second = _object(home, uscc, _second_record(uscc))
    _publish_v2_knocking_out(home, uscc)
    assert _v2_kinds(home, watched) == {"new_version"}  # withheld while disputed

    pdo_json(home, "objection", "resolve", second["id"], "--outcome", "rejected",
             "--note", "记录有效", "--as", "rita")  # fmt: skip

    assert {"dishonest_debtor", "grade_drop"} <= _v2_kinds(home, watched)


def test_a_new_listing_raises_abnormal_listing_whatever_the_model_made_of_it(home: Home) -> None:
    """credit_risk@2 scored before a company's 经营异常 listing, credit_risk@3 after, both with
    the trained scorecard (which may put every listing count in one bin, never a reason): the
    company's watchers get abnormal_listing for @3, and only for @3."""
    listed = city()["abnormal_operations"].filter(
        (pl.col("listed_on") <= LIVE_AS_OF)
        & (pl.col("removed_on").is_null() | (pl.col("removed_on") > LIVE_AS_OF))
    )["uscc"]
    company = sorted(u for u in set(listed) if u.startswith("91"))[0]
    key = home.key(company)
    watched = watch(home, company)
    listings = home.inputs["abnormal_operations"]
    before = dict(home.inputs) | {"abnormal_operations": listings.filter(pl.col("uscc") != key)}
    model = FrozenScorecard.from_dict(home.model)
    with session_scope(home.engine) as s:
        v1 = s.get(ProductVersion, CREDIT)
        assert v1 is not None
        for n, inputs in ((2, before), (3, home.inputs)):
            version = ProductVersion(
                id=f"credit_risk@{n}", product_name="credit_risk", version=n, run_id=v1.run_id,
                signoff_id=v1.signoff_id, input_hashes=list(v1.input_hashes),
                output_hash=str(n) * 64, as_of=v1.as_of, model=dict(v1.model),
            )  # fmt: skip
            s.add(version)
            s.flush()
            scored = credit_risk.score_frame(model, inputs, v1.as_of).filter(pl.col("uscc") == key)
            rows = served_rows(version.id, credit_risk.SPEC.outputs, scored.to_dicts())
            s.execute(insert(ServedScore), rows)
            s.flush()
            alerts_for_new_version(s, version)

    by_version = {
        a.product_version_id for a in alerts(home, watched) if a.kind == "abnormal_listing"
    }
    assert by_version == {"credit_risk@3"}
    assert home.served("credit_risk@3", company).details["abnormal_listings_open"] > 0
