"""Watchlists over real HTTP, and the alerts a new product version raises on watched enterprises.

A real SQLite ledger seeded through the project's own functions (tests/console_seed.py: a grant
and a published credit_risk@1), a real uvicorn server, the real CLI through CliRunner.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from pdo.cli import app
from pdo.delivery.identity import shown_as
from pdo.delivery.objections import objection_redactor, raise_objection, resolve_objection
from pdo.delivery.version_events import alerts_for_new_version
from pdo.delivery.watchlists import in_portfolio
from pdo.lake import Lake
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    Alert,
    AuditEvent,
    Authorization,
    Objection,
    ProductVersion,
    ServedScore,
    UsageEvent,
    WatchlistMember,
)
from pdo.privacy.checksums import uscc_check_char
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.registration import revoke_authorization
from pdo.settings import Settings
from pdo.subscribers import add_subscriber
from pdo.workspace import Workspace
from tests.console_seed import LIVE_AS_OF as SEED_AS_OF
from tests.console_seed import seed_console
from tests.live_api import serve_api


def uscc(body: str) -> str:
    """A valid USCC from its first 17 characters."""
    return body + uscc_check_char(body)


STEADY = uscc("91310000MA1K4A0B1")  # a company whose grade holds
FALLING = uscc("91310000MA1K4A0B2")  # a company that drops B → D
DEBTOR = uscc("91310000MA1K4A0B3")  # becomes a dishonest judgment debtor (KO03)
INDIVIDUAL = uscc("92330106MA2H4K7L3")  # a 个体工商户: a natural person's code
UNWATCHED = uscc("91310000MA1K4A0B4")
V1, V2 = "credit_risk@1", "credit_risk@2"
LISTED = {"code": "R13", "factor": "abnormal_listings_open", "label_zh": "在列经营异常名录数",
          "bin": "[0.50, inf)", "points_lost": 60}  # fmt: skip
KO03 = {"code": "KO03", "label_zh": "失信被执行人"}


def details(
    reasons: list[dict[str, Any]] | None = None, knockouts: list[Any] | None = None
) -> dict:
    return {"reasons": reasons or [], "knockouts": knockouts or []}


# (score, grade, details) per enterprise in credit_risk@1 and credit_risk@2
SCORES_V1 = {
    STEADY: (700, "A", details()),
    FALLING: (640, "B", details()),
    DEBTOR: (600, "C", details()),
    INDIVIDUAL: (610, "C", details()),
    UNWATCHED: (650, "B", details()),
}
SCORES_V2 = {
    STEADY: (705, "A", details()),
    FALLING: (560, "D", details()),
    DEBTOR: (590, "E", details(knockouts=[KO03])),
    INDIVIDUAL: (580, "C", details(reasons=[LISTED])),
    UNWATCHED: (500, "E", details(knockouts=[KO03])),
}


@dataclass(frozen=True)
class Home:
    """The seeded home and three banks: one watching, another subscribed, one not subscribed."""

    settings: Settings
    engine: Engine
    pseudo: Pseudonymizer
    bank_key: str
    bank_id: str
    other_key: str
    unsubscribed_key: str


def served(version_id: str, scores: dict[str, tuple[int, str, dict]], pseudo: Pseudonymizer):
    """Serving-store rows as publishing writes them: keyed by entity key."""
    return [
        ServedScore(product_version_id=version_id, uscc=entity_key(code, pseudo), score=score,
                    grade=grade, details=copy.deepcopy(extra))
        for code, (score, grade, extra) in scores.items()
    ]  # fmt: skip


def seed_home(tmp_path: Path) -> Home:
    """seed_console's ledger, credit_risk@1 scores, and the banks."""
    seed_console(tmp_path)
    settings = Settings(home=tmp_path, database_url=None)
    engine = Workspace.open(settings).engine
    pseudo = Pseudonymizer.from_settings(settings)
    with session_scope(engine) as s:
        s.add_all(served(V1, SCORES_V1, pseudo))
        bank, bank_key = add_subscriber(s, "观察银行", "admin", ["credit_risk"])
        _, other_key = add_subscriber(s, "他行", "admin", ["credit_risk"])
        _, unsubscribed_key = add_subscriber(s, "无订阅银行", "admin", [])
    return Home(settings, engine, pseudo, bank_key, bank.id, other_key, unsubscribed_key)


def publish_v2(home: Home) -> int:
    """What publishing credit_risk@2 does to the serving store, then the version's alerts."""
    with session_scope(home.engine) as s:
        v1 = s.get(ProductVersion, V1)
        assert v1 is not None
        v1.status = "superseded"
        v2 = ProductVersion(id=V2, product_name="credit_risk", version=2, run_id=v1.run_id,
                            signoff_id=v1.signoff_id, output_hash="c" * 64,
                            as_of=v1.as_of + dt.timedelta(days=31))  # fmt: skip
        s.add_all([v1, v2])
        s.flush()
        s.add_all(served(V2, SCORES_V2, home.pseudo))
        s.flush()
        return alerts_for_new_version(s, v2)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return seed_home(tmp_path)


@pytest.fixture
def api(home: Home) -> Iterator[str]:
    with serve_api(home.settings) as base:
        yield base


def call(method: str, url: str, key: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url, json=body, headers={"X-API-Key": key}, timeout=10)


def create(api: str, key: str, name: str = "贷后组合", **extra: Any) -> httpx.Response:
    return call(
        "POST", f"{api}/v1/watchlists", key, {"name": name, "product": "credit_risk"} | extra
    )


def watch_all(api: str, key: str, watchlist_id: str) -> httpx.Response:
    members = [
        {"uscc": c, "reference": f"LN-{i}"} for i, c in enumerate(SCORES_V1) if c != UNWATCHED
    ]
    return call("PUT", f"{api}/v1/watchlists/{watchlist_id}/members", key, members)


def alerts_in(engine: Engine) -> list[Alert]:
    with Session(engine) as s:
        return list(s.exec(select(Alert).order_by(col(Alert.kind))))


def test_watchlist_crud_over_http(home: Home, api: str) -> None:
    """Create (secret once), add members (idempotently), list, page, and remove one."""
    created = create(api, home.bank_key, webhook_url="https://bank.example/hooks/pdo")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["purpose"] == "贷后管理" and body["members"] == 0
    assert len(body["webhook_secret"]) == 64
    wid = body["id"]

    added = watch_all(api, home.bank_key, wid)
    assert added.json() == {"added": 4, "updated": 0, "total": 4}
    again = call("PUT", f"{api}/v1/watchlists/{wid}/members", home.bank_key,
                 [{"uscc": STEADY, "reference": "LN-new"}, {"uscc": FALLING}])  # fmt: skip
    assert again.json() == {"added": 0, "updated": 1, "total": 4}

    listed = call("GET", f"{api}/v1/watchlists", home.bank_key).json()
    assert [(w["id"], w["members"]) for w in listed] == [(wid, 4)]
    one = call("GET", f"{api}/v1/watchlists/{wid}", home.bank_key).json()
    assert "webhook_secret" not in one and one["webhook_url"] == "https://bank.example/hooks/pdo"
    members = call("GET", f"{api}/v1/watchlists/{wid}/members", home.bank_key).json()
    assert [m["enterprise"] for m in members] == [STEADY, FALLING, DEBTOR, shown_as(INDIVIDUAL)]
    assert members[0]["reference"] == "LN-new"
    page = call("GET", f"{api}/v1/watchlists/{wid}/members?limit=2&offset=2", home.bank_key)
    assert [m["enterprise"] for m in page.json()] == [DEBTOR, shown_as(INDIVIDUAL)]

    removed = call("DELETE", f"{api}/v1/watchlists/{wid}/members/{INDIVIDUAL}", home.bank_key)
    assert removed.status_code == 204
    gone = call("DELETE", f"{api}/v1/watchlists/{wid}/members/{INDIVIDUAL}", home.bank_key)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "member_not_found"
    assert call("GET", f"{api}/v1/watchlists/{wid}", home.bank_key).json()["members"] == 3

    with Session(home.engine) as s:
        actions = [(e.action, e.details) for e in s.exec(select(AuditEvent)).all()
                   if e.action.startswith("watchlist.")]  # fmt: skip
    assert [a for a, _ in actions] == ["watchlist.create"] + ["watchlist.members.add"] * 2 + [
        "watchlist.members.remove"
    ]
    assert INDIVIDUAL not in json.dumps(actions, ensure_ascii=False)


def test_members_are_stored_by_entity_key_and_shown_masked(home: Home, api: str) -> None:
    """The ledger holds a 个体工商户 by pseudonym; the bank sees its code masked, never whole."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    with Session(home.engine) as s:
        keys = set(s.exec(select(WatchlistMember.uscc)))
        assert INDIVIDUAL not in keys and entity_key(INDIVIDUAL, home.pseudo) in keys
        assert in_portfolio(s, home.bank_id, "credit_risk", entity_key(INDIVIDUAL, home.pseudo))
        assert not in_portfolio(s, home.bank_id, "credit_risk", UNWATCHED)
        assert not in_portfolio(s, home.bank_id, "operating_status", STEADY)
    text = call("GET", f"{api}/v1/watchlists/{wid}/members", home.bank_key).text
    assert INDIVIDUAL not in text and shown_as(INDIVIDUAL) in text


def test_another_banks_watchlist_is_not_found(home: Home, api: str) -> None:
    """Ids do not leak: every route answers 404 for a watchlist the caller does not own."""
    wid = create(api, home.bank_key).json()["id"]
    for method, path, body in (
        ("GET", f"/v1/watchlists/{wid}", None),
        ("GET", f"/v1/watchlists/{wid}/members", None),
        ("PUT", f"/v1/watchlists/{wid}/members", [{"uscc": STEADY}]),
        ("DELETE", f"/v1/watchlists/{wid}/members/{STEADY}", None),
        ("GET", f"/v1/alerts?watchlist={wid}", None),
    ):
        response = call(method, api + path, home.other_key, body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "watchlist_not_found"
    assert call("GET", f"{api}/v1/watchlists", home.other_key).json() == []


def test_no_subscription_no_invalid_input(home: Home, api: str) -> None:
    """No subscription → 403; bad codes, unknown product, duplicate name → clear JSON errors."""
    refused = create(api, home.unsubscribed_key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "no_subscription"
    assert call("GET", f"{api}/v1/watchlists", "pdo_nope_nope").status_code == 401

    unknown = call("POST", f"{api}/v1/watchlists", home.bank_key, {"name": "x", "product": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_product"
    purpose = create(api, home.bank_key, purpose="营销")
    assert purpose.status_code == 403 and purpose.json()["error"]["code"] == "purpose_not_allowed"
    # a pre-loan check needs the enterprise's consent, which a portfolio does not carry
    pre_loan = create(api, home.bank_key, purpose="贷前审查")
    assert pre_loan.status_code == 403
    assert pre_loan.json()["error"]["code"] == "purpose_not_allowed"
    assert "贷后管理" in pre_loan.json()["error"]["message"]
    bad_hook = create(api, home.bank_key, webhook_url="ftp://bank.example/")
    assert bad_hook.json()["error"]["code"] == "invalid_webhook_url"

    wid = create(api, home.bank_key).json()["id"]
    assert create(api, home.bank_key).json()["error"]["code"] == "watchlist_exists"
    bad = call("PUT", f"{api}/v1/watchlists/{wid}/members", home.bank_key,
               [{"uscc": STEADY}, {"uscc": "91310000MA1K4A0BIO"}])  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert call("GET", f"{api}/v1/watchlists/{wid}", home.bank_key).json()["members"] == 0

    with session_scope(home.engine) as s:  # the subscription lapses: no more additions
        from pdo.ledger.models import Subscription
        from pdo.ledger.types import utcnow

        for sub in s.exec(select(Subscription).where(Subscription.subscriber_id == home.bank_id)):
            sub.valid_until = utcnow() - dt.timedelta(seconds=1)
            s.add(sub)
    lapsed = watch_all(api, home.bank_key, wid)
    assert lapsed.status_code == 403 and lapsed.json()["error"]["code"] == "no_subscription"


def test_a_webhook_url_naming_an_inward_address_is_refused_at_registration(
    home: Home, api: str
) -> None:
    """Loopback, the metadata address, private networks: 422 at once, naming no address, and
    nothing created; a private line the operator allows is registered."""
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "https://10.8.1.1/hook",
        "http://[::1]/hook",
    ):
        refused = create(api, home.bank_key, webhook_url=url)
        assert refused.status_code == 422, url
        error = refused.json()["error"]
        assert error["code"] == "webhook_url_not_public", url
        assert httpx.URL(url).host not in error["message"]
    assert call("GET", f"{api}/v1/watchlists", home.bank_key).json() == []
    assert create(api, home.bank_key, webhook_url="https://bank.example/hooks").status_code == 201

    private_line = home.settings.model_copy(update={"webhook_allowed_networks": ["10.8.0.0/16"]})
    with serve_api(private_line) as allowing:
        inside = create(allowing, home.bank_key, name="专线组合", webhook_url="https://10.8.1.1/h")
        assert inside.status_code == 201, inside.text
        outside = create(allowing, home.bank_key, name="他网组合", webhook_url="https://10.9.0.1/h")
        assert outside.json()["error"]["code"] == "webhook_url_not_public"


def test_a_new_version_alerts_on_what_changed(home: Home, api: str) -> None:
    """credit_risk@2 alerts every watched member, plus grade drops, new KO03 and new listings."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    other = create(api, home.other_key, name="他行组合").json()["id"]
    call("PUT", f"{api}/v1/watchlists/{other}/members", home.other_key, [{"uscc": FALLING}])

    # mine: 4 new_version, grade drops of FALLING (B→D) and DEBTOR (C→E), DEBTOR's KO03, the
    # 个体工商户's new listing; the other bank's: FALLING's new_version and grade drop
    assert publish_v2(home) == 8 + 2
    raised = alerts_in(home.engine)
    by_kind: dict[str, list[Alert]] = {}
    for a in raised:
        by_kind.setdefault(a.kind, []).append(a)
    mine = [a for a in raised if a.watchlist_id == wid]
    assert len(mine) == 8 and {a.product_version_id for a in raised} == {V2}
    drops = sorted(a.payload["enterprise"] for a in by_kind["grade_drop"])
    assert drops == sorted([DEBTOR, FALLING, FALLING])
    drop = next(a.payload for a in by_kind["grade_drop"] if a.payload["enterprise"] == FALLING)
    assert (drop["old_grade"], drop["new_grade"], drop["previous_version"]) == ("B", "D", V1)
    assert [a.payload["enterprise"] for a in by_kind["dishonest_debtor"]] == [DEBTOR]
    assert [a.payload["enterprise"] for a in by_kind["abnormal_listing"]] == [shown_as(INDIVIDUAL)]
    new_version = {a.payload["enterprise"]: a.payload for a in by_kind["new_version"]
                   if a.watchlist_id == wid}  # fmt: skip
    as_of = (SEED_AS_OF + dt.timedelta(days=31)).isoformat()
    assert new_version[STEADY] == {"enterprise": STEADY, "reference": "LN-0", "version": V2,
                                   "as_of": as_of, "score": 705, "grade": "A"}  # fmt: skip
    assert all(a.next_attempt_at is None for a in raised)  # no webhook: pull only
    assert INDIVIDUAL not in json.dumps([a.payload for a in raised], ensure_ascii=False)

    with session_scope(home.engine) as s:  # raising the same version again creates nothing
        v2 = s.get(ProductVersion, V2)
        assert v2 is not None
        assert alerts_for_new_version(s, v2) == 0
        assert s.exec(select(func.count()).select_from(Alert)).one() == len(raised)
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "alerts.raise")).one()
        assert audit.details["n_grade_drop"] == 3 and audit.details["previous"] == V1


def test_operator_lists_watchlists(home: Home, api: str) -> None:
    """`pdo watchlist list --json` shows every bank's watchlists, without member codes."""
    wid = create(api, home.bank_key, webhook_url="https://bank.example/hooks/pdo").json()["id"]
    watch_all(api, home.bank_key, wid)
    env = {"PDO_HOME": str(home.settings.resolved_home), "PDO_DATABASE_URL": None}
    result = CliRunner().invoke(app, ["watchlist", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["subscriber"], r["members"], r["webhook"]) for r in rows] == [
        (wid, "观察银行", 4, True)
    ]
    plain = CliRunner().invoke(app, ["watchlist", "list"], env=env)
    assert wid in plain.output and "4 members" in plain.output


def dispute(home: Home, code: str) -> None:
    """The operator records the enterprise's objection to a court case behind its result."""
    with session_scope(home.engine) as s:
        raise_objection(
            s,
            uscc=code,
            pseudonymizer=home.pseudo,
            product_name="credit_risk",
            item="court_cases:case_no=(2019)浙0105执13号",
            reason="企业称该案已结",
            actor="olga",
            lake=Lake(home.settings.lake_dir),
            redact=objection_redactor(home.settings.models_dir),
        )


def test_a_disputed_result_stays_withheld_in_the_new_versions_alerts(home: Home, api: str) -> None:
    """An open objection on FALLING: credit_risk@2 says a version exists, not its result."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    dispute(home, FALLING)
    publish_v2(home)
    falling = [a for a in alerts_in(home.engine) if a.payload["enterprise"] == FALLING]
    assert sorted(a.kind for a in falling) == ["dispute_opened", "new_version"]  # no grade_drop
    payload = next(a.payload for a in falling if a.kind == "new_version")
    assert payload["status"] == "disputed_withheld"
    assert payload["score"] is None and payload["grade"] is None
    steady = [a for a in alerts_in(home.engine) if a.payload["enterprise"] == STEADY]
    assert [(a.kind, a.payload["grade"]) for a in steady] == [("new_version", "A")]


def test_pulled_alerts_stop_while_the_grant_is_revoked(home: Home, api: str) -> None:
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)
    before = call("GET", f"{api}/v1/alerts", home.bank_key)
    assert before.status_code == 200 and len(before.json()) == 8
    with session_scope(home.engine) as s:
        grant = s.exec(select(Authorization)).one()
        revoke_authorization(s, grant.id, "authority", "超范围使用")
    after = call("GET", f"{api}/v1/alerts", home.bank_key)
    assert after.status_code == 200 and after.json() == []


def test_an_objection_withdraws_undelivered_alerts_that_disclose_the_result(
    home: Home, api: str
) -> None:
    """credit_risk@2's alerts wait, not yet pulled; then FALLING's result is disputed: its
    new_version and grade_drop alerts are withdrawn (not listed, not ackable, not billed)."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)
    before = alerts_in(home.engine)
    disclosing = [a.id for a in before if a.payload["enterprise"] == FALLING]
    assert len(disclosing) == 2  # new_version and grade_drop (B → D)
    dispute(home, FALLING)
    after = call("GET", f"{api}/v1/alerts", home.bank_key).json()
    assert [a["kind"] for a in after if a["enterprise"] == FALLING] == ["dispute_opened"]
    assert {a["id"] for a in after} >= {a.id for a in before} - set(disclosing)
    refused = call("POST", f"{api}/v1/alerts/{disclosing[0]}/ack", home.bank_key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "alert_withdrawn")
    steady = next(a["id"] for a in after if a["enterprise"] == STEADY)
    assert call("POST", f"{api}/v1/alerts/{steady}/ack", home.bank_key).status_code == 200
    with Session(home.engine) as s:
        statuses = {a.id: a.status for a in s.exec(select(Alert))}
        billed = s.exec(
            select(func.count()).select_from(UsageEvent).where(UsageEvent.kind == "alert")
        ).one()
    assert [statuses[i] for i in disclosing] == ["withdrawn", "withdrawn"]
    assert billed == len(after)  # the listed alerts, each once; the withdrawn ones never


def test_alerts_released_by_a_rejected_objection_come_after_the_banks_cursor(
    home: Home, api: str
) -> None:
    """A pull-only bank polls past dispute_opened; the objection is then rejected: FALLING's
    withdrawn result alerts are listable again and its next `after=` / `since=` poll has them."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)
    dispute(home, FALLING)  # before the bank's first poll: FALLING's result alerts withdrawn
    seen = call("GET", f"{api}/v1/alerts", home.bank_key).json()
    assert [a["kind"] for a in seen if a["enterprise"] == FALLING] == ["dispute_opened"]
    cursor = seen[-1]["id"]

    with session_scope(home.engine) as s:
        objection = s.exec(select(Objection)).one()
        resolve_objection(s, objection.id, outcome="rejected", note="记录有效", actor="rita",
                          lake=Lake(home.settings.lake_dir),
                          redact=objection_redactor(home.settings.models_dir))  # fmt: skip

    resumed = call("GET", f"{api}/v1/alerts?after={cursor}", home.bank_key).json()
    assert {"new_version", "grade_drop"} <= {
        a["kind"] for a in resumed if a["enterprise"] == FALLING
    }
    assert {a["id"] for a in resumed}.isdisjoint(a["id"] for a in seen)
    since = seen[-1]["queued_at"]  # when the bank's last seen alert became listable
    queued_since = httpx.get(
        f"{api}/v1/alerts", params={"since": since}, headers={"X-API-Key": home.bank_key}
    ).json()
    assert [a["id"] for a in queued_since] == [a["id"] for a in resumed]


def test_a_cursor_on_a_removed_members_alert_still_resumes(home: Home, api: str) -> None:
    """The bank drops the enterprise its last seen alert was about (the loan is repaid): its
    next `after=` poll resumes after that alert, without the dropped member's alerts (not
    listed, not ackable), instead of answering 404 for good."""
    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)
    queue = sorted(alerts_in(home.engine), key=lambda a: (a.queued_at, a.id))
    page = call("GET", f"{api}/v1/alerts?limit=3", home.bank_key).json()
    cursor = page[-1]
    code = {shown_as(c): c for c in SCORES_V1}[cursor["enterprise"]]
    dropped = call("DELETE", f"{api}/v1/watchlists/{wid}/members/{code}", home.bank_key)
    assert dropped.status_code == 204

    resumed = call("GET", f"{api}/v1/alerts?after={cursor['id']}", home.bank_key)
    assert resumed.status_code == 200, resumed.text
    later = queue[[a.id for a in queue].index(cursor["id"]) + 1 :]
    assert [a["id"] for a in resumed.json()] == [
        a.id for a in later if a.payload["enterprise"] != cursor["enterprise"]
    ]
    theirs = [a.id for a in queue if a.payload["enterprise"] == cursor["enterprise"]]
    listed = call("GET", f"{api}/v1/alerts", home.bank_key).json()
    assert {a["id"] for a in listed}.isdisjoint(theirs)
    refused = call("POST", f"{api}/v1/alerts/{theirs[0]}/ack", home.bank_key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "alert_not_found")


def test_many_simultaneous_keyed_calls_all_answer(home: Home, api: str) -> None:
    """Each keyed call holds one pooled connection at a time: 40 polls at once all get their
    page promptly (the key check once held a second connection and the pool ran dry: 500s)."""
    from concurrent.futures import ThreadPoolExecutor

    wid = create(api, home.bank_key).json()["id"]
    watch_all(api, home.bank_key, wid)
    publish_v2(home)

    def poll(_: int) -> int:
        headers = {"X-API-Key": home.bank_key}
        return httpx.get(f"{api}/v1/alerts", headers=headers, timeout=25).status_code

    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(poll, range(40)))
    assert statuses == [200] * 40
