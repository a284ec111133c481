"""The metered lookup: consent, purpose, portfolio, quota, budget, disputes — over real HTTP.

A real ledger (SQLite; the marked tests on PostgreSQL) seeded by tests/delivery_seed.py, the real
app under uvicorn, real HTTP calls; usage events, refusals and revenue read back from the ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from api.errors import LedgerUnavailable
from api.serving.requests import Refusal, ScoreLookup
from api.serving.worker import ServingWorker, serving_engine
from pdo import audit
from pdo.delivery.metering import details_of
from pdo.delivery.plans import add_plan
from pdo.delivery.version_events import alerts_for_new_version
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    Alert,
    ApiKey,
    AuditEvent,
    Consent,
    Objection,
    Plan,
    ProductVersion,
    RefusedCall,
    ScoreCorrection,
    UsageEvent,
    Watchlist,
    WatchlistMember,
)
from pdo.subscribers import find_subscriber, revoke_key, subscribe
from tests.delivery_seed import (
    BANKS,
    COMPANIES,
    INDIVIDUAL,
    PRICE_FEN,
    VERSION,
    DeliveryLedger,
    delivery_ledger,
    lookups,
    seed_delivery,
)
from tests.live_api import serve_api
from tests.pg import fresh_database

A, B = BANKS


@pytest.fixture
def ledger(tmp_path: Path) -> DeliveryLedger:
    return seed_delivery(tmp_path)


@pytest.fixture
def api(ledger: DeliveryLedger) -> Iterator[str]:
    with serve_api(ledger.settings) as base:
        yield base


def ask(
    base: str,
    key: str | None,
    uscc: str = COMPANIES[0],
    purpose: str = "贷前审查",
    consent: str | None = "C-1",
) -> httpx.Response:
    params = {"purpose": purpose} | ({"consent": consent} if consent else {})
    headers = {"X-API-Key": key} if key else {}
    return httpx.get(
        f"{base}/v1/products/credit_risk/scores/{uscc}", params=params, headers=headers
    )


def count(ledger: DeliveryLedger, model: type, *where: object) -> int:
    with Session(ledger.engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def test_a_consented_lookup_is_answered_and_metered_once(ledger: DeliveryLedger, api: str) -> None:
    ledger.consent(A, COMPANIES[0], "C-1")
    answer = ask(api, ledger.keys[A])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["uscc"] == COMPANIES[0] and body["status"] == "served"
    assert body["product_version"] == VERSION and body["as_of"] == "2026-11-01"
    assert body["score"] == 560 and body["grade"] == "A" and body["consent"] == "C-1"
    assert body["details"]["reasons"][0]["code"] == "R01" and body["price_fen"] == PRICE_FEN
    with Session(ledger.engine) as s:
        usage = s.exec(select(UsageEvent)).one()
        chained = s.exec(select(AuditEvent).where(AuditEvent.subject == usage.id)).one()
        assert audit.verify(s).ok
    assert usage.id == body["usage_id"] and usage.consent_id is not None
    assert (usage.kind, usage.status, usage.price_fen) == ("query", "served", 150)
    assert chained.action == "query.serve" and chained.details == details_of(usage)
    assert count(ledger, RefusedCall) == 0


def test_the_lookup_answers_get_alone_and_records_refusals_by_its_path_template(
    ledger: DeliveryLedger, api: str
) -> None:
    """HEAD (an answer billed whose body is never sent) and POST are 405 and bill nothing; every
    refusal on the lookup path names the endpoint by its template, never a 个体工商户's code."""
    ledger.consent(A, INDIVIDUAL, "C-P")
    url = f"{api}/v1/products/credit_risk/scores/{INDIVIDUAL}"
    params, headers = {"purpose": "贷前审查", "consent": "C-P"}, {"X-API-Key": ledger.keys[A]}
    for method in ("HEAD", "POST"):
        answer = httpx.request(method, url, params=params, headers=headers)
        assert answer.status_code == 405, (method, answer.text)
    assert ask(api, ledger.keys[A], INDIVIDUAL, purpose="营销", consent="C-P").status_code == 403
    assert ask(api, ledger.keys[A], INDIVIDUAL, consent="C" * 500).status_code == 422
    assert count(ledger, UsageEvent) == 0
    with Session(ledger.engine) as s:  # the worker's refusal, then the endpoint's own
        recorded = sorted((r.status, r.endpoint) for r in s.exec(select(RefusedCall)))
    template = "/v1/products/{product}/scores/{uscc}"
    assert recorded == [(403, f"GET {template}"), (422, f"GET {template}")]  # 405s: not recorded


def test_a_sole_traders_code_never_comes_back_and_is_stored_only_as_a_pseudonym(
    ledger: DeliveryLedger, api: str
) -> None:
    ledger.consent(A, INDIVIDUAL, "C-P")
    answer = ask(api, ledger.keys[A], INDIVIDUAL, consent="C-P")
    assert answer.status_code == 200, answer.text
    assert INDIVIDUAL not in answer.text and answer.json()["uscc"].count("*") == 8
    with Session(ledger.engine) as s:
        stored = s.exec(select(UsageEvent.uscc)).one()
    assert stored == ledger.entity(INDIVIDUAL) != INDIVIDUAL


def _revoke_first_key(ledger: DeliveryLedger) -> None:
    with session_scope(ledger.engine) as s:
        key = s.exec(select(ApiKey).where(ApiKey.subscriber_id == ledger.subscriber_ids[A])).one()
        revoke_key(s, key.id, "operator")


def _consent_elsewhere(ledger: DeliveryLedger) -> None:
    ledger.consent(B, COMPANIES[0], "C-1")  # 乙银行's consent, presented by 甲银行


Setup = Callable[[DeliveryLedger], None]
REFUSALS: list[tuple[str, Setup | None, dict[str, object], int, str, bool]] = [
    ("no key", None, {"key": None}, 401, "missing_api_key", False),
    ("unknown key", None, {"key": "pdo_abc_nope"}, 401, "invalid_api_key", False),
    ("revoked key", _revoke_first_key, {}, 401, "invalid_api_key", False),
    ("unlawful purpose", None, {"purpose": "营销"}, 403, "purpose_not_allowed", False),
    ("no consent named", None, {"consent": None}, 403, "consent_required", True),
    ("unregistered consent", None, {"consent": "C-404"}, 403, "consent_not_found", True),
    ("another bank's consent", _consent_elsewhere, {}, 403, "consent_not_found", True),
    (
        "consent for another enterprise",
        lambda led: led.consent(A, COMPANIES[1], "C-1"),
        {},
        403,
        "consent_other_enterprise",
        True,
    ),
    (
        "expired consent",
        lambda led: led.consent(A, COMPANIES[0], "C-1", days=5, starts_days_ago=10),
        {},
        403,
        "consent_expired",
        True,
    ),
    (
        "consent for another purpose",
        lambda led: led.consent(A, COMPANIES[0], "C-1", purposes=("贷后管理",)),
        {},
        403,
        "consent_purpose",
        True,
    ),
    (
        "post-loan check outside the portfolio",
        lambda led: led.consent(A, COMPANIES[0], "C-1"),
        {"purpose": "贷后管理"},
        403,
        "not_in_portfolio",
        True,
    ),
    (
        "enterprise without a result",
        lambda led: led.consent(A, "91310000MA1KYYYYXA", "C-1"),
        {"uscc": "91310000MA1KYYYYXA"},
        404,
        "unknown_enterprise",
        False,
    ),
]


@pytest.mark.parametrize(
    ("setup", "change", "status", "code", "flagged"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_refusals_are_clear_audited_and_never_billed(
    ledger: DeliveryLedger,
    api: str,
    setup: Setup | None,
    change: dict[str, object],
    status: int,
    code: str,
    flagged: bool,
) -> None:
    if setup is not None:
        setup(ledger)
    args: dict[str, object] = {"key": ledger.keys[A]} | change
    answer = ask(api, **args)  # type: ignore[arg-type]
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]
    assert count(ledger, UsageEvent) == 0
    with Session(ledger.engine) as s:
        refused = s.exec(select(RefusedCall)).one()
        attempts = s.exec(select(AuditEvent).where(AuditEvent.action == "query.refused")).all()
    # a bank's refused attempt is on the audit chain; an anonymous one only in refused_call
    assert [(e.details["code"], e.details["flagged"]) for e in attempts] == (
        [] if status == 401 else [(code, flagged)]
    )
    assert (refused.status, refused.code, refused.flagged) == (status, code, flagged)
    assert refused.subscriber_id == (ledger.subscriber_ids[A] if status != 401 else None)


def test_a_post_loan_check_is_served_for_the_banks_own_watchlist(
    ledger: DeliveryLedger, api: str
) -> None:
    ledger.consent(A, COMPANIES[2], "C-2")
    ledger.consent(B, COMPANIES[2], "C-2B")
    with session_scope(ledger.engine) as s:
        book = Watchlist(
            subscriber_id=ledger.subscriber_ids[A], name="贷款台账", product_name="credit_risk"
        )
        s.add(book)
        s.flush()
        s.add(WatchlistMember(watchlist_id=book.id, uscc=COMPANIES[2], shown_as=COMPANIES[2]))
    mine = ask(api, ledger.keys[A], COMPANIES[2], "贷后管理", "C-2")
    theirs = ask(api, ledger.keys[B], COMPANIES[2], "贷后管理", "C-2B")
    assert mine.status_code == 200, mine.text
    assert theirs.json()["error"]["code"] == "not_in_portfolio"  # 甲银行's book is not 乙银行's


def _on_trial_plan(ledger: DeliveryLedger, bank: str, monthly_quota: int) -> None:
    """Subscribe the bank to a 50-fen plan with a small monthly quota (replacing its standard)."""
    with session_scope(ledger.engine) as s:
        plan = add_plan(
            s,
            product_name="credit_risk",
            name="trial",
            title_zh="试用套餐",
            price_fen=50,
            monthly_quota=monthly_quota,
            validity_days=30,
            refund_withheld=True,
            actor="operator",
        )
        subscribe(s, find_subscriber(s, bank), plan.id, "operator")


def test_the_monthly_quota_stops_the_call_after_the_last_one_paid_for(
    ledger: DeliveryLedger, api: str
) -> None:
    _on_trial_plan(ledger, A, monthly_quota=3)
    ledger.consent(A, COMPANIES[0], "C-1")
    answers = [ask(api, ledger.keys[A]) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].json()["price_fen"] == 50
    assert answers[3].json()["error"]["code"] == "quota_exceeded"
    assert count(ledger, UsageEvent) == 3


def test_subscribing_again_within_the_month_starts_no_fresh_quota(
    ledger: DeliveryLedger, api: str
) -> None:
    """Re-subscribed mid-month (to narrow its purposes), the bank's calls so far still count."""
    _on_trial_plan(ledger, A, monthly_quota=2)
    ledger.consent(A, COMPANIES[0], "C-1")
    assert [ask(api, ledger.keys[A]).status_code for _ in range(2)] == [200, 200]
    with session_scope(ledger.engine) as s:
        bank = find_subscriber(s, A)
        (trial,) = s.exec(select(Plan.id).where(Plan.name == "trial"))
        subscribe(s, bank, trial, "operator", ["贷前审查"])
    refused = ask(api, ledger.keys[A])
    assert refused.json()["error"]["code"] == "quota_exceeded", refused.text
    assert count(ledger, UsageEvent) == 2


def _open_objection(ledger: DeliveryLedger, uscc: str, item: str, reason: str) -> None:
    """An open objection to a credit_risk result, as the operator records it."""
    with session_scope(ledger.engine) as s:
        s.add(
            Objection(
                uscc=uscc,
                product_name="credit_risk",
                item=item,
                reason=reason,
                raised_by="operator",
            )
        )


def test_a_used_up_quota_still_answers_a_withheld_result_the_plan_refunds(
    ledger: DeliveryLedger, api: str
) -> None:
    """A withheld answer the plan refunds takes no call of the quota, so it is not refused."""
    _on_trial_plan(ledger, A, monthly_quota=1)
    ledger.consent(A, COMPANIES[0], "C-1")
    ledger.consent(A, COMPANIES[1], "C-2")
    _open_objection(ledger, COMPANIES[1], "tax_credit:2024", "企业称纳税信用等级有误")
    paid = ask(api, ledger.keys[A])
    withheld = ask(api, ledger.keys[A], COMPANIES[1], consent="C-2")
    over = ask(api, ledger.keys[A])
    assert paid.status_code == 200, paid.text
    assert withheld.status_code == 200, withheld.text
    assert withheld.json()["status"] == "disputed_withheld"
    assert over.json()["error"]["code"] == "quota_exceeded"


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_daily_budget_counts_distinct_enterprises(tmp_path: Path, backend: str) -> None:
    with delivery_ledger(tmp_path, backend, daily_enterprise_budget=2) as ledger:
        for i in range(3):
            ledger.consent(A, COMPANIES[i], f"C-{i}")
        with serve_api(ledger.settings) as base:
            codes = [
                ask(base, ledger.keys[A], COMPANIES[i], consent=f"C-{i}").status_code
                for i in (0, 1, 0, 1, 2)
            ]
            refused = ask(base, ledger.keys[A], COMPANIES[2], consent="C-2").json()
        assert codes == [200, 200, 200, 200, 429]  # a disclosed one again costs no budget
        assert refused["error"]["code"] == "disclosure_budget_exceeded"
        assert count(ledger, RefusedCall, col(RefusedCall.flagged)) == 2


def test_a_disputed_result_is_withheld_and_a_corrected_one_served(
    ledger: DeliveryLedger, api: str
) -> None:
    ledger.consent(A, COMPANIES[0], "C-1")
    ledger.consent(A, COMPANIES[1], "C-2")
    _open_objection(ledger, COMPANIES[0], "court_dishonest_debtors:row=7", "已履行完毕")
    with session_scope(ledger.engine) as s:
        upheld = Objection(
            uscc=COMPANIES[1],
            product_name="credit_risk",
            item="abnormal_operations:row=3",
            reason="已移出经营异常名录",
            raised_by="operator",
            status="resolved",
            outcome="upheld",
        )
        s.add(upheld)
        s.flush()
        s.add(
            ScoreCorrection(
                product_version_id=VERSION,
                uscc=COMPANIES[1],
                objection_id=upheld.id,
                score=700,
                grade="A",
            )
        )
    withheld = ask(api, ledger.keys[A]).json()
    corrected = ask(api, ledger.keys[A], COMPANIES[1], consent="C-2").json()
    assert withheld["status"] == "disputed_withheld"
    assert withheld["score"] is None and withheld["grade"] is None and withheld["details"] == {}
    assert (corrected["status"], corrected["score"], corrected["grade"]) == ("corrected", 700, "A")
    with Session(ledger.engine) as s:
        statuses = sorted(s.exec(select(UsageEvent.status)))
    assert statuses == ["served", "withheld"]  # answered, so metered; refunds follow the plan


def test_the_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    ledger = seed_delivery(tmp_path, rate_limit_per_second=2)
    ledger.consent(A, COMPANIES[0], "C-1")
    with serve_api(ledger.settings) as base:
        ask(base, ledger.keys[A])  # the first call loads the keys the limiter reads
        answers = [ask(base, ledger.keys[A]) for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.json()["error"]["code"] == "rate_limited" for a in limited)
    assert int(limited[0].headers["Retry-After"]) >= 1
    served = 7 - len(limited)
    assert count(ledger, UsageEvent) == served
    assert count(ledger, RefusedCall, RefusedCall.code == "rate_limited") == len(limited)


def test_the_rate_limit_holds_on_every_keyed_endpoint(tmp_path: Path) -> None:
    """The key's calls per second count on consents, watchlists, alerts and batches too (a
    batch order rescores the whole portfolio), in the one bucket lookups draw on."""
    ledger = seed_delivery(tmp_path, rate_limit_per_second=1)
    ledger.consent(A, COMPANIES[0], "C-1")
    key = {"X-API-Key": ledger.keys[A]}
    with serve_api(ledger.settings) as base:
        ask(base, ledger.keys[A])  # the first call loads the keys the lookup's limiter reads
        time.sleep(1.1)  # the bucket refills: one call this second
        looked_up = ask(base, ledger.keys[A])
        others = [
            httpx.get(f"{base}{path}", headers=key)
            for path in ("/v1/consents", "/v1/watchlists", "/v1/alerts")
        ]
    assert looked_up.status_code == 200
    assert [a.status_code for a in others] == [429, 429, 429]  # the lookup spent the second
    assert all(a.json()["error"]["code"] == "rate_limited" for a in others)
    assert int(others[0].headers["Retry-After"]) >= 1
    with Session(ledger.engine) as s:
        refused = s.exec(select(RefusedCall).where(RefusedCall.code == "rate_limited")).all()
    assert [r.subscriber_id for r in refused] == [ledger.subscriber_ids[A]] * 3


def test_a_key_revoked_while_throttled_answers_401_not_429(tmp_path: Path) -> None:
    """The endpoint throttles on its held snapshot, but the key was revoked since: the serving
    batch reads the new generation, so the call is a revoked key's, recorded against nobody."""
    ledger = seed_delivery(tmp_path, rate_limit_per_second=1)
    ledger.consent(A, COMPANIES[0], "C-1")
    with serve_api(ledger.settings) as base:
        ask(base, ledger.keys[A])  # the first call loads the keys the limiter reads
        time.sleep(1.1)  # the bucket refills
        assert ask(base, ledger.keys[A]).status_code == 200  # spends this second's token
        _revoke_first_key(ledger)
        after = ask(base, ledger.keys[A])
    assert (after.status_code, after.json()["error"]["code"]) == (401, "invalid_api_key")
    with Session(ledger.engine) as s:
        refused = s.exec(select(RefusedCall)).all()
    assert [(r.status, r.code, r.subscriber_id) for r in refused] == [
        (401, "invalid_api_key", None)
    ]
    assert count(ledger, UsageEvent) == 2


def test_a_forged_secret_neither_spends_the_banks_rate_limit_nor_is_recorded_as_the_bank(
    tmp_path: Path,
) -> None:
    """Key ids are not secret (audit records show them): only the secret makes a call the bank's."""
    ledger = seed_delivery(tmp_path, rate_limit_per_second=2)
    ledger.consent(A, COMPANIES[0], "C-1")
    key_id = ledger.keys[A].split("_")[1]
    forged = f"pdo_{key_id}_" + "x" * 43
    with serve_api(ledger.settings) as base:
        ask(base, ledger.keys[A])  # the first call loads the keys the limiter reads
        time.sleep(1.1)  # the bucket refills
        forgeries = [ask(base, forged) for _ in range(6)]
        genuine = ask(base, ledger.keys[A])
    assert {(f.status_code, f.json()["error"]["code"]) for f in forgeries} == {
        (401, "invalid_api_key")
    }
    assert genuine.status_code == 200, genuine.text
    with Session(ledger.engine) as s:
        refused = s.exec(select(RefusedCall)).all()
    assert [(r.code, r.subscriber_id) for r in refused] == [("invalid_api_key", None)] * 6


def test_a_banks_malformed_lookup_is_recorded_against_the_bank(
    ledger: DeliveryLedger, api: str
) -> None:
    ledger.consent(A, COMPANIES[0], "C-1")
    assert ask(api, ledger.keys[A]).status_code == 200  # the serving snapshot holds the key now
    malformed = ask(api, ledger.keys[A], uscc="91310000ma1kxxxxx0")
    assert malformed.status_code == 422
    with Session(ledger.engine) as s:
        refused = s.exec(select(RefusedCall)).one()
    assert (refused.code, refused.subscriber_id) == ("invalid_request", ledger.subscriber_ids[A])


RESIDENT_ID = "11010519491231002X"  # a 身份证号 a bank typed into the wrong field
PERSONAL = (RESIDENT_ID, INDIVIDUAL, "13812345678")
MISPLACED: list[tuple[str, str, str, object]] = [
    ("GET", "/v1/products/credit_risk/scores/{company}?purpose={x}&consent=C-1", "purpose", None),
    (
        "GET",
        "/v1/products/credit_risk/scores/{company}?purpose=贷前审查&consent={x}",
        "consent",
        None,
    ),
    ("GET", "/v1/products/{x}/scores/{company}?purpose=贷前审查&consent=C-1", "product", None),
    ("GET", "/v1/products/credit_risk/scores/{x}?purpose=贷前审查&consent=C-1", "uscc", None),
    ("DELETE", "/v1/consents/{x}", "consent id", None),
    ("GET", "/v1/alerts?watchlist={x}", "watchlist", None),
    ("POST", "/v1/alerts/{x}/ack", "alert id", None),
    ("GET", "/v1/batches/{x}", "batch id", None),
    ("POST", "/v1/watchlists", "watchlist product", {"name": "w", "product": "{x}"}),
    (
        "POST",
        "/v1/watchlists",
        "watchlist purpose",
        {"name": "w", "product": "credit_risk", "purpose": "{x}"},
    ),
    (
        "POST",
        "/v1/consents",
        "consent uscc",
        {"uscc": "{x}", "reference": "R-9", "purposes": ["贷前审查"]},
    ),
    ("PUT", "/v1/watchlists/{watchlist}/members", "member uscc", [{"uscc": "{x}"}]),
    (
        "PUT",
        "/v1/watchlists/{watchlist}/members",
        "member reference",
        [{"uscc": "{company}", "reference": "L-{x}"}],
    ),
    ("POST", "/v1/watchlists", "watchlist name", {"name": "组合{x}", "product": "credit_risk"}),
    (
        "POST",
        "/v1/consents",
        "consent reference",
        {"uscc": "{company}", "reference": "SQ-{x}", "purposes": ["贷前审查"]},
    ),
    (
        "POST",
        "/v1/consents",
        "consent purpose",
        {"uscc": "{company}", "reference": "R-9", "purposes": ["{x}"]},
    ),
]


USCC_SLOTS = ("uscc", "consent uscc", "member uscc")


@pytest.mark.parametrize("personal", PERSONAL, ids=["resident id", "sole trader", "mobile"])
@pytest.mark.parametrize(
    ("method", "path", "field", "body"), MISPLACED, ids=[m[2] for m in MISPLACED]
)
def test_a_refusal_never_echoes_an_identifier_the_bank_sent(
    ledger: DeliveryLedger,
    api: str,
    personal: str,
    method: str,
    path: str,
    field: str,
    body: object,
) -> None:
    ledger.consent(A, COMPANIES[0], "C-1")
    now = dt.datetime.now(dt.UTC)
    fill = {"x": personal, "company": COMPANIES[0]}
    if "{watchlist}" in path:
        made = httpx.post(
            f"{api}/v1/watchlists",
            json={"name": "贷后", "product": "credit_risk"},
            headers={"X-API-Key": ledger.keys[A]},
        )
        fill["watchlist"] = made.json()["id"]
    content = None
    if body is not None:
        text = json.dumps(body, ensure_ascii=False)
        filled = json.loads(text.replace("{x}", personal).replace("{company}", COMPANIES[0]))
        if isinstance(filled, dict) and "purposes" in filled:
            filled |= {"valid_from": now.isoformat(), "valid_until": (now + dt.timedelta(days=9))
                       .isoformat()}  # fmt: skip
        content = json.dumps(filled, ensure_ascii=False).encode()
    answer = httpx.request(
        method,
        api + path.format_map(fill),
        content=content,
        headers={"X-API-Key": ledger.keys[A], "Content-Type": "application/json"},
    )
    if personal == INDIVIDUAL and field in USCC_SLOTS:
        assert answer.status_code < 500, answer.text  # a lawful code: taken, shown masked
    else:
        assert answer.status_code >= 400, answer.text
        assert answer.json()["error"]["message"]
    assert personal not in answer.text, f"{field} echoed: {answer.text}"
    with Session(ledger.engine) as s:  # nor kept where the console shows refusals
        kept = [json.dumps(e.details, ensure_ascii=False) for e in s.exec(select(AuditEvent))]
        kept += [f"{r.product_name} {r.purpose} {r.uscc}" for r in s.exec(select(RefusedCall))]
        kept += [f"{c.uscc} {c.reference} {c.purposes}" for c in s.exec(select(Consent))]
        kept += [f"{m.uscc} {m.shown_as}" for m in s.exec(select(WatchlistMember))]
    assert not [k for k in kept if personal in k], f"{field} kept raw"


@contextmanager
def another_writer(ledger: DeliveryLedger) -> Iterator[None]:
    """Another process's write transaction on the SQLite ledger, held while the block runs."""
    writer = sqlite3.connect(ledger.settings.db_url.removeprefix("sqlite:///"), timeout=30)
    writer.isolation_level = None
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_failed_serving_batch_answers_503_in_the_error_shape_and_bills_nothing(
    ledger: DeliveryLedger, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger cannot record the call (here: another writer holds SQLite's lock too long)."""
    import api.serving.worker as worker

    monkeypatch.setattr(worker, "LOCK_WAIT_S", 0.3)
    ledger.consent(A, COMPANIES[0], "C-1")
    assert ask(api, ledger.keys[A]).status_code == 200
    with another_writer(ledger):
        failed = ask(api, ledger.keys[A])
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "ledger_unavailable"
    assert int(failed.headers["Retry-After"]) >= 1
    assert ask(api, ledger.keys[A]).status_code == 200  # served again once the ledger is free
    assert count(ledger, UsageEvent) == 2


@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_instant_with_no_utc_time_is_a_422_not_a_crash(
    ledger: DeliveryLedger, api: str, instant: str
) -> None:
    key = {"X-API-Key": ledger.keys[A]}
    now = dt.datetime.now(dt.UTC).isoformat()
    body = {"uscc": COMPANIES[0], "reference": "R-1", "purposes": ["贷前审查"]}
    as_end = httpx.post(
        f"{api}/v1/consents", json=body | {"valid_from": now, "valid_until": instant}, headers=key
    )
    as_start = httpx.post(
        f"{api}/v1/consents", json=body | {"valid_from": instant, "valid_until": now}, headers=key
    )
    since = httpx.get(f"{api}/v1/alerts", params={"since": instant}, headers=key)
    for answer in (as_end, as_start, since):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_revocation_takes_effect_on_the_next_call(tmp_path: Path, backend: str) -> None:
    with delivery_ledger(tmp_path, backend) as ledger:
        ledger.consent(A, COMPANIES[0], "C-1")
        with serve_api(ledger.settings) as base:
            assert ask(base, ledger.keys[A]).status_code == 200
            _revoke_first_key(ledger)
            refused = ask(base, ledger.keys[A])
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert count(ledger, UsageEvent) == 1
        assert count(ledger, RefusedCall, RefusedCall.code == "invalid_api_key") == 1


def test_a_lookup_waiting_for_sqlites_write_lock_leaves_the_api_answering(
    ledger: DeliveryLedger, api: str
) -> None:
    """Another writer holds the ledger: the lookup waits its turn without stalling the loop
    (the writer may be this API's own request thread, whose answer only the loop can send)."""
    ledger.consent(A, COMPANIES[0], "C-1")
    assert ask(api, ledger.keys[A]).status_code == 200
    writer = sqlite3.connect(ledger.settings.db_url.removeprefix("sqlite:///"), timeout=30)
    writer.isolation_level = None
    writer.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(ask, api, ledger.keys[A])
            time.sleep(0.5)
            assert not waiting.done()  # no answer before its usage event can be written
            assert httpx.get(f"{api}/openapi.json", timeout=5).status_code == 200
            writer.execute("ROLLBACK")
            assert waiting.result(timeout=30).status_code == 200
    finally:
        writer.close()
    assert count(ledger, UsageEvent) == 2


def test_the_health_check_answers_while_another_writer_holds_the_ledger(
    ledger: DeliveryLedger, api: str
) -> None:
    """A settlement or a pipeline holding SQLite's write lock must not fail the health check."""
    with another_writer(ledger):
        started = time.monotonic()
        answer = httpx.get(f"{api}/healthz", timeout=10)
        waited = time.monotonic() - started
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert waited < 2  # it did not wait out the 30 s busy timeout behind the writer


NUL_REQUESTS = [  # (method, path with query, JSON body): a NUL where a bank may put text
    ("GET", "/v1/products/credit_risk/scores/{uscc}?purpose=%E8%B4%B7%00&consent=C-1", None),
    ("GET", "/v1/products/credit_risk/scores/{uscc}?purpose=贷前审查&consent=C-1%00", None),
    ("GET", "/v1/products/credit%00risk/scores/{uscc}?purpose=贷前审查&consent=C-1", None),
    ("GET", "/v1/alerts?watchlist=w%00", None),
    ("GET", "/v1/batches/b%00", None),
    ("POST", "/v1/consents", {"reference": "授权书\u0000"}),
    ("POST", "/v1/consents", {"purposes": ["贷前审查\u0000"]}),
    ("POST", "/v1/watchlists", {"name": "贷后\u0000"}),
    ("POST", "/v1/watchlists", {"name": "贷后\ud800"}),  # a lone surrogate (pydantic refuses it)
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nul_character_is_refused_before_it_reaches_the_ledger(
    tmp_path: Path, backend: str
) -> None:
    """PostgreSQL text cannot hold NUL: one such lookup failed its whole serving batch (500)."""
    now = dt.datetime.now(dt.UTC)
    consent = {
        "uscc": COMPANIES[1],
        "reference": "C-2",
        "purposes": ["贷前审查"],
        "valid_from": (now - dt.timedelta(hours=1)).isoformat(),
        "valid_until": (now + dt.timedelta(days=90)).isoformat(),
    }
    watchlist = {"name": "贷后", "product": "credit_risk"}
    with delivery_ledger(tmp_path, backend) as ledger:
        ledger.consent(A, COMPANIES[0], "C-1")
        key = {"X-API-Key": ledger.keys[A]}
        with serve_api(ledger.settings) as base:
            for method, path, body in NUL_REQUESTS:
                base_body = consent if "consents" in path else watchlist
                payload = None if body is None else base_body | body
                answer = httpx.request(  # JSON with \u escapes: a lone surrogate has no UTF-8
                    method,
                    base + path.format(uscc=COMPANIES[0]),
                    content=None if payload is None else json.dumps(payload),
                    headers=key | {"Content-Type": "application/json"},
                )
                assert answer.status_code == 422, (path, answer.text)
                assert answer.json()["error"]["code"] == "invalid_request"
                assert "\x00" not in answer.text and "\\u0000" not in answer.text
            assert ask(base, ledger.keys[A]).status_code == 200  # still serving
        assert count(ledger, UsageEvent) == 1
        assert count(ledger, Consent, Consent.reference == "C-2") == 0
        # audited like any refusal, the NUL shown as U+FFFD
        assert count(ledger, RefusedCall, RefusedCall.code == "invalid_request") == len(
            NUL_REQUESTS
        )
        assert count(ledger, RefusedCall, col(RefusedCall.purpose).contains("\ufffd")) == 1


def _hammer(ledger: DeliveryLedger, base: str, calls: int) -> list[httpx.Response]:
    for i in range(10):
        ledger.consent(A, COMPANIES[i], f"C-{i}")
    return lookups(ledger, A, base, calls)


def _assert_exactly_once(ledger: DeliveryLedger, answers: list[httpx.Response]) -> None:
    assert {a.status_code for a in answers} == {200}
    ids = {a.json()["usage_id"] for a in answers}
    with Session(ledger.engine) as s:
        stored = set(s.exec(select(UsageEvent.id)))
        billed = s.exec(select(func.sum(UsageEvent.price_fen))).one()
        chained = s.exec(select(AuditEvent.subject).where(AuditEvent.action == "query.serve"))
        chain = audit.verify(s)
    assert stored == ids and len(ids) == len(answers)
    assert billed == PRICE_FEN * len(answers)
    assert sorted(chained) == sorted(ids) and chain.ok  # concurrent batches never fork it


def test_a_delivered_result_alert_is_listed_withheld_while_its_result_is_disputed(
    ledger: DeliveryLedger, api: str
) -> None:
    """A bank re-syncing its alerts during a dispute gets no more of the result than a lookup
    would: the payload says disputed_withheld, until the objection is resolved."""
    key = {"X-API-Key": ledger.keys[A]}
    book = httpx.post(
        f"{api}/v1/watchlists", json={"name": "book", "product": "credit_risk"}, headers=key
    ).json()["id"]
    httpx.put(f"{api}/v1/watchlists/{book}/members", json=[{"uscc": COMPANIES[3]}], headers=key)
    with session_scope(ledger.engine) as s:
        version = s.get(ProductVersion, VERSION)
        assert version is not None
        alerts_for_new_version(s, version)
    (first,) = [a for a in httpx.get(f"{api}/v1/alerts", headers=key).json()]
    assert first["kind"] == "new_version" and first["payload"]["grade"] is not None
    with session_scope(ledger.engine) as s:
        dispute = Objection(
            uscc=COMPANIES[3],
            product_name="credit_risk",
            item="court_dishonest_debtors:row=7",
            reason="已履行完毕",
            raised_by="operator",
        )
        s.add(dispute)
    listed = {a["id"]: a for a in httpx.get(f"{api}/v1/alerts", headers=key).json()}
    acked = httpx.post(f"{api}/v1/alerts/{first['id']}/ack", headers=key).json()
    withheld = {
        "version": VERSION,
        "as_of": first["payload"]["as_of"],
        "status": "disputed_withheld",
    }
    assert listed[first["id"]]["payload"] == withheld == acked["alert"]["payload"]
    with session_scope(ledger.engine) as s:
        s.exec(select(Objection)).one().status = "resolved"
    after = {a["id"]: a for a in httpx.get(f"{api}/v1/alerts", headers=key).json()}
    assert after[first["id"]]["payload"]["grade"] == first["payload"]["grade"]
    assert count(ledger, UsageEvent) == 1  # delivered once, billed once


def test_concurrent_calls_each_get_exactly_one_usage_event(
    ledger: DeliveryLedger, api: str
) -> None:
    _assert_exactly_once(ledger, _hammer(ledger, api, 300))


def _from_two_servers(ledger: DeliveryLedger, calls: int) -> list[httpx.Response]:
    """`calls` lookups by bank A, half through each of two API processes, all at once."""
    for i in range(10):
        ledger.consent(A, COMPANIES[i], f"C-{i}")
    with (
        serve_api(ledger.settings) as one,
        serve_api(ledger.settings) as two,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        halves = pool.map(lambda base: lookups(ledger, A, base, calls // 2), (one, two))
        return [answer for half in halves for answer in half]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_api_processes_at_once_never_serve_past_the_quota_or_the_budget(
    tmp_path: Path, backend: str
) -> None:
    """Counters are read and advanced under one lock shared by every API process."""
    with delivery_ledger(tmp_path, backend) as ledger:
        _on_trial_plan(ledger, A, monthly_quota=25)
        answers = _from_two_servers(ledger, 120)
        assert sum(a.status_code == 200 for a in answers) == count(ledger, UsageEvent) == 25
        assert {a.json()["error"]["code"] for a in answers if a.status_code != 200} == {
            "quota_exceeded"
        }
    with delivery_ledger(tmp_path / "budget", backend, daily_enterprise_budget=4) as ledger:
        answers = _from_two_servers(ledger, 120)
        served = {a.json()["uscc"] for a in answers if a.status_code == 200}
        with Session(ledger.engine) as s:
            billed = set(s.exec(select(UsageEvent.uscc)))
        assert len(served) == len(billed) == 4
        assert {a.json()["error"]["code"] for a in answers if a.status_code != 200} == {
            "disclosure_budget_exceeded"
        }


def test_consents_are_registered_listed_and_withdrawn_by_the_bank(
    ledger: DeliveryLedger, api: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    body = {
        "uscc": INDIVIDUAL,
        "reference": "授权书-0001",
        "purposes": ["贷前审查"],
        "valid_from": (now - dt.timedelta(hours=1)).isoformat(),
        "valid_until": (now + dt.timedelta(days=90)).isoformat(),
    }
    a_key, b_key = {"X-API-Key": ledger.keys[A]}, {"X-API-Key": ledger.keys[B]}
    made = httpx.post(f"{api}/v1/consents", json=body, headers=a_key)
    assert made.status_code == 201, made.text
    assert INDIVIDUAL not in made.text
    again = httpx.post(f"{api}/v1/consents", json=body, headers=a_key)
    naive = httpx.post(
        f"{api}/v1/consents", json=body | {"valid_from": "2026-11-01T00:00:00"}, headers=a_key
    )
    assert again.json()["error"]["code"] == "invalid_consent"
    assert naive.status_code == 422 and naive.json()["error"]["code"] == "invalid_request"
    assert ask(api, ledger.keys[A], INDIVIDUAL, consent="授权书-0001").status_code == 200
    listed = httpx.get(f"{api}/v1/consents", headers=a_key).json()
    assert [c["reference"] for c in listed] == ["授权书-0001"]
    assert httpx.get(f"{api}/v1/consents", headers=b_key).json() == []
    consent_id = made.json()["id"]
    stolen = httpx.delete(f"{api}/v1/consents/{consent_id}", headers=b_key)
    assert stolen.status_code == 404
    withdrawn = httpx.delete(f"{api}/v1/consents/{consent_id}", headers=a_key)
    assert withdrawn.status_code == 200 and withdrawn.json()["revoked_at"]
    after = ask(api, ledger.keys[A], INDIVIDUAL, consent="授权书-0001")
    assert after.json()["error"]["code"] == "consent_revoked"


def test_the_openapi_schema_documents_every_refusal(api: str) -> None:
    schema = httpx.get(f"{api}/openapi.json").json()
    lookup = schema["paths"]["/v1/products/{product}/scores/{uscc}"]["get"]
    assert {"200", "401", "403", "404", "429", "422"} <= set(lookup["responses"])
    assert {p["name"] for p in lookup["parameters"]} >= {"purpose", "consent", "X-API-Key"}
    assert "/v1/consents" in schema["paths"]


def _lookups(ledger: DeliveryLedger, companies: list[str]) -> list[ScoreLookup]:
    """One consented lookup by bank A per company."""
    for i, uscc in enumerate(companies):
        ledger.consent(A, uscc, f"C-{i}")
    return [
        ScoreLookup(ledger.keys[A], "credit_risk", u, ledger.entity(u), "贷前审查", f"C-{i}", "t")
        for i, u in enumerate(companies)
    ]


def _batch_sizes(ledger: DeliveryLedger) -> list[int]:
    """A batch stamps its usage events with one `served_at`: the batch sizes, read back."""
    with Session(ledger.engine) as s:
        stamps = s.exec(select(UsageEvent.served_at).order_by(col(UsageEvent.served_at)))
        return list(Counter(stamps).values())


def _in_two_waves(
    ledger: DeliveryLedger, first: list[ScoreLookup], second: list[ScoreLookup]
) -> list[Any]:
    """Submit `first` in one turn of the loop and `second` once the worker has taken `first`
    as its batch (its first round trip under way); what each submission returned or raised."""
    worker = ServingWorker(serving_engine(ledger.settings.db_url))

    async def waves() -> list[Any]:
        one = [asyncio.ensure_future(worker.submit(job)) for job in first]
        while not worker._pending:  # the submissions start in the next turns
            await asyncio.sleep(0)
        while worker._pending:  # until the worker took them
            await asyncio.sleep(0)
        two = [asyncio.ensure_future(worker.submit(job)) for job in second]
        return await asyncio.gather(*one, *two, return_exceptions=True)

    try:
        return asyncio.run(waves())
    finally:
        worker.stop()


def test_on_sqlite_a_burst_is_one_batch(ledger: DeliveryLedger) -> None:
    """Requests submitted in one turn of the loop are decided and metered together."""
    jobs = _lookups(ledger, COMPANIES[:32])
    worker = ServingWorker(serving_engine(ledger.settings.db_url))

    async def burst() -> None:
        await asyncio.gather(*(worker.submit(job) for job in jobs))

    try:
        asyncio.run(burst())
    finally:
        worker.stop()
    assert all(isinstance(job.outcome, bytes) for job in jobs)
    assert _batch_sizes(ledger) == [32]


@pytest.mark.postgres
def test_on_postgresql_a_batch_queued_behind_another_reads_what_that_one_wrote(
    tmp_path: Path,
) -> None:
    """The second wave's reads are queued behind the first wave's COMMIT, and see its usage:
    a monthly quota of 20 serves 16 of the first wave and then only 4 of the second."""
    with fresh_database() as url:
        ledger = seed_delivery(tmp_path, url)
        try:
            _on_trial_plan(ledger, A, monthly_quota=20)
            jobs = _lookups(ledger, COMPANIES[:32])
            _in_two_waves(ledger, jobs[:16], jobs[16:])
            refused = [job.outcome for job in jobs if isinstance(job.outcome, Refusal)]
            assert sum(isinstance(job.outcome, bytes) for job in jobs[:16]) == 16
            assert sum(isinstance(job.outcome, bytes) for job in jobs[16:]) == 4
            assert [r.code for r in refused] == ["quota_exceeded"] * 12
            assert _batch_sizes(ledger) == [16, 4]
        finally:
            ledger.engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_failed_batch_fails_alone(tmp_path: Path) -> None:
    """The first wave's writes fail (a trigger refuses one of its usage rows): its callers get
    LedgerUnavailable and nothing of it is billed; the wave queued behind it is still served."""
    with fresh_database() as url:
        ledger = seed_delivery(tmp_path, url)
        try:
            jobs = _lookups(ledger, COMPANIES[:32])
            with ledger.engine.begin() as conn:
                conn.execute(text(POISON_TRIGGER.format(entity=jobs[0].entity)))
            answers = _in_two_waves(ledger, jobs[:16], jobs[16:])
            assert all(isinstance(a, LedgerUnavailable) for a in answers[:16])
            assert all(isinstance(job.outcome, bytes) for job in jobs[16:])
            with Session(ledger.engine) as s:
                billed = set(s.exec(select(UsageEvent.uscc)))
            assert billed == {job.entity for job in jobs[16:]}
        finally:
            ledger.engine.dispose()


POISON_TRIGGER = """
CREATE FUNCTION refuse_poisoned_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.uscc = '{entity}' THEN RAISE EXCEPTION 'refused by the test'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poisoned_usage BEFORE INSERT ON usage_event
    FOR EACH ROW EXECUTE FUNCTION refuse_poisoned_usage();
"""


@pytest.mark.postgres
def test_on_postgresql_concurrent_calls_and_the_quota_hold(tmp_path: Path) -> None:
    with fresh_database() as url:
        ledger = seed_delivery(tmp_path, url)
        try:
            with serve_api(ledger.settings) as base:
                _assert_exactly_once(ledger, _hammer(ledger, base, 200))
                _on_trial_plan(ledger, B, monthly_quota=2)
                ledger.consent(B, COMPANIES[0], "C-B")
                codes = [ask(base, ledger.keys[B], consent="C-B").status_code for _ in range(3)]
            assert codes == [200, 200, 429]
        finally:
            ledger.engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_alert_acked_through_two_servers_at_once_is_answered_twice_and_billed_once(
    tmp_path: Path, backend: str
) -> None:
    """A bank's retry or second client is safe: the race's loser finds the winner's usage event."""
    with delivery_ledger(tmp_path, backend) as ledger:
        bank = ledger.subscriber_ids[A]
        with session_scope(ledger.engine) as s:
            book = Watchlist(name="book", product_name="credit_risk", subscriber_id=bank)
            s.add(book)
            s.flush()
            member = WatchlistMember(
                watchlist_id=book.id, uscc=ledger.entity(COMPANIES[0]), shown_as=COMPANIES[0]
            )
            s.add(member)
            s.flush()
            alerts = [
                Alert(watchlist_id=book.id, subscriber_id=bank, member_id=member.id,
                      kind="grade_drop", product_version_id=VERSION, dedupe_key=f"race-{i}")
                for i in range(20)
            ]  # fmt: skip
            s.add_all(alerts)
            s.flush()
            ids = [a.id for a in alerts]
        key = {"X-API-Key": ledger.keys[A]}
        with serve_api(ledger.settings) as one, serve_api(ledger.settings) as two:

            def ack_twice(alert_id: str) -> list[httpx.Response]:
                start = threading.Barrier(2)

                def ack(base: str) -> httpx.Response:
                    start.wait()
                    return httpx.post(f"{base}/v1/alerts/{alert_id}/ack", headers=key, timeout=30)

                with ThreadPoolExecutor(max_workers=2) as pool:
                    return list(pool.map(ack, (one, two)))

            answers = [ack_twice(alert_id) for alert_id in ids]
        assert [[a.status_code for a in pair] for pair in answers] == [[200, 200]] * len(ids)
        assert all(len({a.json()["usage_id"] for a in pair}) == 1 for pair in answers)
        assert count(ledger, UsageEvent) == len(ids)
        with Session(ledger.engine) as s:
            assert audit.verify(s).ok


def _both_at_once(calls: tuple[Callable[[], httpx.Response], ...]) -> list[int]:
    """Start the calls at the same moment; their status codes, sorted."""
    start = threading.Barrier(len(calls))

    def go(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        answers = list(pool.map(go, calls))
    for answer in answers:  # every answer in the one JSON shape
        assert "error" in answer.json() or answer.status_code < 400, answer.text
    return sorted(a.status_code for a in answers)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_same_request_through_two_servers_at_once_gets_a_clear_answer_each(
    tmp_path: Path, backend: str
) -> None:
    """A bank's retry racing its first try: the duplicate is refused as a duplicate (422/409)
    or taken twice harmlessly (members), never 500; a withdrawal is done and audited once; a
    batch file is made and billed once, and only its maker is told 201."""
    pairs = 8
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=9)
    window = {"valid_from": now.isoformat(), "valid_until": until.isoformat()}
    with delivery_ledger(tmp_path, backend) as ledger:
        key = {"X-API-Key": ledger.keys[A]}
        with serve_api(ledger.settings) as one, serve_api(ledger.settings) as two:
            book = httpx.post(
                f"{one}/v1/watchlists", json={"name": "book", "product": "credit_risk"}, headers=key
            ).json()["id"]

            def twice(method: str, path: str, body: object = None) -> list[int]:
                return _both_at_once(
                    tuple(
                        functools.partial(
                            httpx.request, method, base + path, json=body, headers=key, timeout=30
                        )
                        for base in (one, two)
                    )
                )

            consents = [
                twice("POST", "/v1/consents", {"uscc": COMPANIES[i], "reference": f"R-{i}",
                                               "purposes": ["贷前审查"]} | window)
                for i in range(pairs)
            ]  # fmt: skip
            named = [
                twice("POST", "/v1/watchlists", {"name": f"W-{i}", "product": "credit_risk"})
                for i in range(pairs)
            ]
            members = [
                twice("PUT", f"/v1/watchlists/{book}/members", [{"uscc": COMPANIES[i]}])
                for i in range(pairs)
            ]
            listed = httpx.get(f"{one}/v1/consents", headers=key).json()
            withdrawn = [twice("DELETE", f"/v1/consents/{c['id']}") for c in listed]
            batches = []
            for i in range(pairs):  # each pair asks for a new file: one more member each time
                httpx.put(f"{one}/v1/watchlists/{book}/members", json=[{"uscc": COMPANIES[10 + i]}],
                          headers=key).raise_for_status()  # fmt: skip
                batches.append(twice("POST", f"/v1/watchlists/{book}/batches", {"format": "csv"}))
        with Session(ledger.engine) as s:
            stored = len(s.exec(select(WatchlistMember)).all()) - pairs
            billed = len(s.exec(select(UsageEvent).where(UsageEvent.kind == "batch")).all())
            revokes = s.exec(select(AuditEvent).where(AuditEvent.action == "consent.revoke"))
            audited, intact = len(revokes.all()), audit.verify(s).ok
    assert consents == [[201, 422]] * pairs
    assert named == [[201, 409]] * pairs
    assert members == [[200, 200]] * pairs
    assert withdrawn == [[200, 409]] * pairs
    assert batches == [[200, 201]] * pairs  # 201 to the one that made it, 200: the same file
    assert (stored, audited, billed, intact) == (pairs, pairs, pairs, True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lone_surrogate_in_a_members_reference_is_refused(tmp_path: Path, backend: str) -> None:
    """It has no UTF-8 form: writing it failed with 500; now 422 like any other text field."""
    with delivery_ledger(tmp_path, backend) as ledger:
        key = {"X-API-Key": ledger.keys[A], "Content-Type": "application/json"}
        with serve_api(ledger.settings) as base:
            book = httpx.post(
                f"{base}/v1/watchlists",
                content=json.dumps({"name": "book", "product": "credit_risk"}),
                headers=key,
            ).json()["id"]
            answer = httpx.put(
                f"{base}/v1/watchlists/{book}/members",
                content=json.dumps([{"uscc": COMPANIES[0], "reference": "L-\ud800"}]),
                headers=key,
            )
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request"
        assert count(ledger, WatchlistMember) == 0


@pytest.mark.postgres
def test_an_ack_and_a_push_of_the_same_alert_at_once_settle_it_once(tmp_path: Path) -> None:
    """The ack and the dispatcher both take the alert's row first: the second waits, finds it
    delivered and leaves it (they used to lock alert and usage event in opposite orders and
    PostgreSQL killed the dispatch pass as a deadlock after the push had gone out)."""
    from sqlalchemy import text

    from pdo.delivery.alerts import raise_alerts_for
    from pdo.delivery.webhooks import dispatch_due
    from tests.webhook_receiver import LOOPBACK, allowing_loopback, receiver

    with delivery_ledger(tmp_path, "postgres") as ledger, receiver(verify=False) as hook:
        headers = {"X-API-Key": ledger.keys[A]}
        with serve_api(allowing_loopback(ledger.settings)) as base:
            book = httpx.post(f"{base}/v1/watchlists", headers=headers, json={
                "name": "推送组合", "product": "credit_risk", "webhook_url": hook.url,
            }).json()["id"]  # fmt: skip
            httpx.put(f"{base}/v1/watchlists/{book}/members", headers=headers,
                      json=[{"uscc": COMPANIES[0]}]).raise_for_status()  # fmt: skip
            with session_scope(ledger.engine) as s:
                (alert,) = raise_alerts_for(
                    s, product_name="credit_risk", uscc=ledger.entity(COMPANIES[0]),
                    kind="new_version", event_key=VERSION, product_version_id=VERSION,
                )  # fmt: skip
                alert_id = alert.id

            def waiting_on_locks() -> int:
                with ledger.engine.connect() as c:
                    return int(c.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    )).scalar_one())  # fmt: skip

            def until(condition: Callable[[], bool]) -> None:
                deadline = time.monotonic() + 20
                while not condition():
                    assert time.monotonic() < deadline, "the interleaving did not happen"
                    time.sleep(0.05)

            results: dict[str, object] = {}

            def ack() -> None:
                results["ack"] = httpx.post(
                    f"{base}/v1/alerts/{alert_id}/ack", headers=headers, timeout=60
                )

            def dispatch() -> None:
                try:
                    results["dispatch"] = dispatch_due(
                        ledger.engine, ledger.settings.read_pseudonym_key()[1], egress=LOOPBACK
                    )
                except Exception as exc:  # the failure this test is about
                    results["dispatch"] = exc

            with ledger.engine.connect() as holder, holder.begin():
                # the chain's lock held elsewhere: the ack stops halfway, with what it locked
                holder.execute(text(f"SELECT pg_advisory_xact_lock({audit.CHAIN_LOCK})"))
                threads = [threading.Thread(target=ack), threading.Thread(target=dispatch)]
                threads[0].start()
                until(lambda: waiting_on_locks() >= 1)
                threads[1].start()  # it waits for the alert, or passes it by as taken
                until(lambda: waiting_on_locks() >= 2 or not threads[1].is_alive())
            for thread in threads:
                thread.join(timeout=60)
        acked = results["ack"]
        assert isinstance(acked, httpx.Response) and acked.status_code == 200, acked
        assert not isinstance(results["dispatch"], Exception), results["dispatch"]
        with Session(ledger.engine) as s:
            billed = s.exec(
                select(UsageEvent).where(UsageEvent.delivery_key == f"alert:{alert_id}")
            ).all()
            settled = s.get(Alert, alert_id)
            assert len(billed) == 1 and settled is not None and settled.status == "delivered"
            assert audit.verify(s).ok


def test_consents_are_listed_newest_first_a_page_at_a_time(
    ledger: DeliveryLedger, api: str
) -> None:
    for i, company in enumerate(COMPANIES[:5]):
        ledger.consent(A, company, f"PAGE-{i}")
    ledger.consent(B, COMPANIES[0], "OTHER-BANK")
    key = {"X-API-Key": ledger.keys[A]}
    everything = httpx.get(f"{api}/v1/consents", headers=key).json()
    pages, before = [], None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        page = httpx.get(f"{api}/v1/consents", params=params, headers=key).json()
        if not page:
            break
        pages.append(page)
        before = page[-1]["id"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [c["id"] for p in pages for c in p] == [c["id"] for c in everything]
    assert [c["reference"] for c in everything] == [f"PAGE-{i}" for i in range(4, -1, -1)]
    with Session(ledger.engine) as s:
        theirs = s.exec(select(Consent).where(Consent.reference == "OTHER-BANK")).one()
    other = httpx.get(f"{api}/v1/consents", params={"before": theirs.id}, headers=key)
    assert other.status_code == 404 and other.json()["error"]["code"] == "unknown_consent"
    too_many = httpx.get(f"{api}/v1/consents", params={"limit": 1001}, headers=key)
    assert too_many.status_code == 422
