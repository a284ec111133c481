"""Authorization lifecycle: 三权分置 rights, revocation, expiry and renewal, and their effects.

A real SQLite ledger seeded through the project's own functions (tests/console_seed.py: users, a
grant, a published credit_risk@1), the real API over HTTP, the real CLI through CliRunner.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select
from typer.testing import CliRunner

from pdo import audit
from pdo.cli import app
from pdo.delivery import generation
from pdo.delivery.consents import register_consent
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    AuditEvent,
    Authorization,
    PipelineRun,
    ServedScore,
    UsageEvent,
)
from pdo.ledger.types import utcnow
from pdo.registration import (
    HOLDING_RIGHT,
    OPERATION_RIGHT,
    PROCESSING_RIGHT,
    AuthorizationError,
    check_authorization,
    grant_authorization,
    renew_authorization,
    revoke_authorization,
)
from pdo.settings import Settings
from pdo.sources.tables import table
from pdo.subscribers import add_subscriber
from pdo.users import Role, add_user
from pdo.workspace import Workspace
from tests.console_seed import PASSWORD, seed_console
from tests.live_api import serve_api

USCC = "91310000MA1K0000X0"  # a company: served under its public code
VERSION = "credit_risk@1"
T = TypeVar("T")


@dataclass(frozen=True)
class Ledger:
    """The seeded home: its settings and engine, the grant behind credit_risk@1, a bank's key."""

    settings: Settings
    engine: Engine
    authorization_id: str
    reference: str
    api_key: str
    subscriber_id: str


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """seed_console's ledger plus one served score and a bank whose key we keep."""
    seed_console(tmp_path)
    settings = Settings(home=tmp_path, database_url=None)
    engine = Workspace.open(settings).engine
    with session_scope(engine) as s:
        s.add(ServedScore(product_version_id=VERSION, uscc=USCC, score=642, grade="B"))
        subscriber, key = add_subscriber(s, "测试银行", "admin", ["credit_risk"])
        register_consent(
            s,
            subscriber=subscriber,
            entity=USCC,
            reference="C-1",
            purposes=["贷前审查", "贷后管理"],
            valid_from=utcnow() - dt.timedelta(days=1),
            valid_until=utcnow() + dt.timedelta(days=30),
            actor="operator",
        )
        auth = s.exec(select(Authorization)).one()
    return Ledger(settings, engine, auth.id, auth.reference, key, subscriber.id)


def _pdo(ledger: Ledger, *args: str) -> tuple[int, str, BaseException | None]:
    """Run the real CLI against the seeded home."""
    env = {"PDO_HOME": str(ledger.settings.resolved_home), "PDO_DATABASE_URL": None}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output, result.exception


def _ask(base: str, ledger: Ledger, purpose: str = "贷前审查") -> httpx.Response:
    """One bank call for the seeded enterprise's score."""
    return httpx.get(
        f"{base}/v1/products/credit_risk/scores/{USCC}",
        params={"purpose": purpose, "consent": "C-1"},
        headers={"X-API-Key": ledger.api_key},
    )


def _billed(ledger: Ledger) -> tuple[int, int]:
    """The bank's usage events and the audit-chain records made of them."""
    with session_scope(ledger.engine) as s:
        events = s.exec(
            select(func.count())
            .select_from(UsageEvent)
            .where(UsageEvent.subscriber_id == ledger.subscriber_id)
        ).one()
        chained = s.exec(
            select(func.count())
            .select_from(AuditEvent)
            .join(UsageEvent, col(UsageEvent.id) == col(AuditEvent.subject))
            .where(UsageEvent.subscriber_id == ledger.subscriber_id)
        ).one()
    return events, chained


def _in_session(ledger: Ledger, fn: Callable[..., T], *args: object) -> T:
    """Call a ledger function in its own unit of work (committed, or rolled back on error)."""
    with session_scope(ledger.engine) as s:
        return fn(s, *args)


def _events(ledger: Ledger, action: str) -> list[AuditEvent]:
    with session_scope(ledger.engine) as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action)
        return list(s.exec(stmt.order_by(col(AuditEvent.seq))))


def _authorization(ledger: Ledger) -> Authorization:
    with session_scope(ledger.engine) as s:
        auth = s.get(Authorization, ledger.authorization_id)
        assert auth is not None
        return auth


def _lapse(ledger: Ledger) -> None:
    """Let the grant's validity run out, as the clock would (its end moved a day into the past).

    The API compares the clock with the cached end date at every call; moving the date instead of
    the clock is a change to the row, so it bumps the serving generation like any other change.
    """
    with session_scope(ledger.engine) as s:
        auth = s.get(Authorization, ledger.authorization_id)
        assert auth is not None
        auth.valid_from = utcnow() - dt.timedelta(days=400)
        auth.valid_until = utcnow() - dt.timedelta(days=1)
        s.add(auth)
        generation.bump(s)


def _refused(response: httpx.Response, code: str, ledger: Ledger) -> None:
    """A clear JSON refusal naming the authorization and carrying no enterprise code."""
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert ledger.reference in error["message"] and VERSION in error["message"]
    assert USCC not in response.text


def _source_dir(tmp_path: Path) -> Path:
    """A delivery holding the tax bureau's file (start_run only looks at which files arrived)."""
    source = tmp_path / "delivery"
    source.mkdir()
    (source / table("tax_credit").file_name).write_bytes(b"")
    return source


def test_grant_records_the_three_rights_and_the_products(ledger: Ledger) -> None:
    auth = _authorization(ledger)
    assert auth.products == ["credit_risk"]
    assert auth.rights == {
        HOLDING_RIGHT: ["市场监督管理局", "税务局"],  # the departments keep holding their data
        PROCESSING_RIGHT: "授权运营单位",
        OPERATION_RIGHT: "授权运营单位",
    }
    assert auth.revoked_at is None and auth.revoked_by is None and auth.revoke_reason is None
    (grant,) = _events(ledger, "authorization.grant")
    assert grant.subject == auth.id
    assert grant.details["rights"] == auth.rights and grant.details["products"] == ["credit_risk"]


def test_revoke_needs_a_reason_and_the_authority_or_a_regulator(ledger: Ledger) -> None:
    # olga operates, rita reviews, mallory is nobody: none of them governs the grant
    for actor in ("olga", "rita", "mallory"):
        with pytest.raises(AuthorizationError, match="may not revoke"):
            _in_session(ledger, revoke_authorization, ledger.authorization_id, actor, "超范围使用")
    with pytest.raises(ValueError, match="needs a reason"):
        _in_session(ledger, revoke_authorization, ledger.authorization_id, "regina", "  ")
    with pytest.raises(LookupError, match="no authorization"):
        _in_session(ledger, revoke_authorization, "no-such-grant", "regina", "超范围使用")
    assert _authorization(ledger).status == "active"
    assert _events(ledger, "authorization.revoke") == []

    with session_scope(ledger.engine) as s:
        revoke_authorization(s, ledger.reference, "regina", "超范围使用")
    auth = _authorization(ledger)
    assert (auth.status, auth.revoked_by, auth.revoke_reason) == ("revoked", "regina", "超范围使用")
    assert auth.revoked_at is not None and auth.revoked_at.tzinfo is not None
    with pytest.raises(ValueError, match="already revoked"):
        _in_session(ledger, revoke_authorization, ledger.authorization_id, "authority", "再次")


FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@pytest.mark.parametrize("typed", ["ascii", "full width"])
def test_personal_numbers_in_a_revocation_reason_are_not_stored(ledger: Ledger, typed: str) -> None:
    """A regulator may quote a complainant's number in the reason, in full width from a Chinese
    input method too: as in a sign-off comment, it is replaced by its placeholder in the grant
    and on the audit chain."""
    mobile, resident_id = "13912345678", "11010519491231002X"
    if typed == "full width":
        mobile, resident_id = mobile.translate(FULL_WIDTH), resident_id.translate(FULL_WIDTH)
    reason = f"举报人 {mobile}（身份证 {resident_id}）投诉：超范围使用"
    with session_scope(ledger.engine) as s:
        revoke_authorization(s, ledger.reference, "regina", reason)
    stored = _authorization(ledger).revoke_reason or ""
    (event,) = _events(ledger, "authorization.revoke")
    assert stored.startswith("举报人 〈手机号〉（身份证 〈身份证号〉）")  # the rest as typed
    for shown in (stored, json.dumps(event.details, ensure_ascii=False)):
        assert mobile not in shown and resident_id not in shown
        assert "〈手机号〉" in shown and "〈身份证号〉" in shown and "超范围使用" in shown


def test_the_authority_may_revoke_unless_a_user_holds_that_name(ledger: Ledger) -> None:
    with session_scope(ledger.engine) as s:
        revoke_authorization(s, ledger.authorization_id, "authority", "数据局决定暂停")
    with session_scope(ledger.engine) as s:
        renew_authorization(s, ledger.authorization_id, 30, "authority")
        add_user(s, "authority", Role.OPERATOR, PASSWORD, "admin")
    with pytest.raises(AuthorizationError, match="may not revoke"):
        _in_session(ledger, revoke_authorization, ledger.authorization_id, "authority", "冒用名义")


def test_a_revoked_authorization_refuses_a_new_run(ledger: Ledger, tmp_path: Path) -> None:
    from flows.pipeline import start_run

    ws = Workspace.open(ledger.settings)
    with session_scope(ledger.engine) as s:
        revoke_authorization(s, ledger.authorization_id, "regina", "超范围使用")
        runs_before = len(s.exec(select(PipelineRun)).all())
    with pytest.raises(AuthorizationError, match=f"authorization {ledger.reference} is revoked"):
        start_run(ws, _source_dir(tmp_path), "olga", ledger.authorization_id)
    with session_scope(ledger.engine) as s:
        assert len(s.exec(select(PipelineRun)).all()) == runs_before


def test_an_expired_authorization_refuses_a_new_run_until_renewed(
    ledger: Ledger, tmp_path: Path
) -> None:
    from flows.pipeline import start_run

    ws = Workspace.open(ledger.settings)
    source = _source_dir(tmp_path)
    _lapse(ledger)
    with pytest.raises(AuthorizationError, match=f"authorization {ledger.reference} expired on"):
        start_run(ws, source, "olga", ledger.authorization_id)
    with session_scope(ledger.engine) as s:
        with pytest.raises(AuthorizationError, match="expired"):
            check_authorization(s, ledger.authorization_id, ["tax_credit"])
        renew_authorization(s, ledger.authorization_id, 30, "regina")
    run = start_run(ws, source, "olga", ledger.authorization_id)
    assert run.status == "running" and run.authorization_id == ledger.authorization_id


def test_revocation_stops_delivery_on_the_next_request_unbilled_and_renewal_restores_it(
    ledger: Ledger,
) -> None:
    with serve_api(ledger.settings) as base:
        served = _ask(base, ledger)
        assert served.status_code == 200, served.text
        assert served.json()["product_version"] == VERSION
        billed = _billed(ledger)
        assert billed[0] == 1 and billed[1] > 0

        code, out, _ = _pdo(
            ledger,
            "authorization",
            "revoke",
            ledger.reference,
            "--as",
            "regina",
            "--reason",
            "违规",
        )
        assert code == 0, out
        assert "delivery suspended: credit_risk@1" in out

        refused = _ask(base, ledger)
        _refused(refused, "authorization_revoked", ledger)
        assert _billed(ledger) == billed  # a refused call is neither metered nor split

        code, out, _ = _pdo(
            ledger,
            "authorization",
            "renew",
            ledger.authorization_id,
            "--days",
            "30",
            "--as",
            "regina",
        )
        assert code == 0, out
        resumed = _ask(base, ledger)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["usage_id"] != served.json()["usage_id"]
    assert _billed(ledger) == (2, 2 * billed[1])


def test_expiry_stops_delivery_until_renewal_from_today(ledger: Ledger) -> None:
    with serve_api(ledger.settings) as base:
        assert _ask(base, ledger).status_code == 200
        billed = _billed(ledger)
        _lapse(ledger)
        _refused(_ask(base, ledger), "authorization_expired", ledger)
        assert _billed(ledger) == billed
        with session_scope(ledger.engine) as s:
            renewed = renew_authorization(s, ledger.authorization_id, 10, "authority")
        # a lapsed grant is extended from today, not from its past end
        assert renewed.valid_until - utcnow() > dt.timedelta(days=9, hours=23)
        assert _ask(base, ledger).status_code == 200
    assert _billed(ledger)[0] == billed[0] + 1


def test_delivery_is_limited_to_the_granted_products_and_purposes(ledger: Ledger) -> None:
    def repoint_published_run(reference: str, products: list[str], purposes: list[str]) -> None:
        """Put credit_risk@1's run under a narrower grant."""
        with session_scope(ledger.engine) as s:
            narrow = grant_authorization(
                s,
                reference=reference,
                tables=["tax_credit"],
                purposes=purposes,
                products=products,
                days=30,
                actor="authority",
            )
            run = s.exec(select(PipelineRun).where(PipelineRun.status == "published")).one()
            run.authorization_id = narrow.id
            s.add(run)

    with serve_api(ledger.settings) as base:
        repoint_published_run("授权-其他产品", ["sme_loan_pricing"], ["贷前审查", "贷后管理"])
        other = _ask(base, ledger)
        repoint_published_run("授权-仅贷前", ["credit_risk"], ["贷前审查"])
        narrow_purpose = _ask(base, ledger, purpose="贷后管理")
        allowed = _ask(base, ledger, purpose="贷前审查")
    assert other.status_code == 403 and other.json()["error"]["code"] == "product_not_authorized"
    assert narrow_purpose.status_code == 403
    assert narrow_purpose.json()["error"]["code"] == "purpose_not_authorized"
    assert allowed.status_code == 200, allowed.text
    assert _billed(ledger)[0] == 1


def test_every_lifecycle_step_is_audited_in_an_intact_chain(ledger: Ledger) -> None:
    before = _authorization(ledger).valid_until
    with session_scope(ledger.engine) as s:
        revoke_authorization(s, ledger.authorization_id, "regina", "超范围使用")
    with session_scope(ledger.engine) as s:
        renew_authorization(s, ledger.authorization_id, 30, "authority")
    (grant,) = _events(ledger, "authorization.grant")
    (revoke,) = _events(ledger, "authorization.revoke")
    (renew,) = _events(ledger, "authorization.renew")
    assert grant.seq < revoke.seq < renew.seq
    assert (revoke.actor, revoke.subject) == ("regina", ledger.authorization_id)
    assert revoke.details["reason"] == "超范围使用"
    assert revoke.details["suspended"] == [VERSION]
    assert renew.actor == "authority" and renew.details["days"] == 30
    assert renew.details["reinstated"]["by"] == "regina"
    assert renew.details["reinstated"]["reason"] == "超范围使用"
    auth = _authorization(ledger)
    assert auth.status == "active" and auth.revoked_at is None and auth.revoke_reason is None
    assert auth.valid_until == before + dt.timedelta(days=30)  # extended from its end
    with session_scope(ledger.engine) as s:
        assert audit.verify(s).ok


def test_cli_lifecycle_commands_with_clear_errors(ledger: Ledger) -> None:
    ref = ledger.reference
    refusals = [
        ("needs a reason", ("revoke", ref, "--as", "regina")),
        ("'olga' may not revoke", ("revoke", ref, "--as", "olga", "--reason", "x")),
        ("no authorization 'nope'", ("revoke", "nope", "--as", "regina", "--reason", "x")),
        ("'rita' may not renew", ("renew", ref, "--days", "5", "--as", "rita")),
        ("--days must be 1 to 36500", ("renew", ref, "--days", "0", "--as", "regina")),
        ("--days must be 1 to 36500", ("renew", ref, "--days", "99999999", "--as", "regina")),
        ("--days must be 1 to 36500", ("grant", "--reference", "R-2", "--days", "-5")),
        ("--days must be 1 to 36500", ("grant", "--reference", "R-2", "--days", "99999999")),
        ("a grant needs its reference and its purposes", ("grant", "--reference", " ")),
        (
            "unknown product credit-risk; known: credit_risk",
            ("grant", "--reference", "R-3", "--product", "credit-risk"),
        ),
        (
            "no granted product serves the purpose 营销",
            ("grant", "--reference", "R-3", "--purposes", "贷前审查,营销"),
        ),
        (
            "a grant needs its reference and its purposes",
            (
                "grant",
                "--reference",
                "R-2",
                "--purposes",
                ",",
            ),
        ),
    ]
    for message, args in refusals:
        code, out, exc = _pdo(ledger, "authorization", *args)
        assert code != 0 and message in out, (args, out)
        assert isinstance(exc, SystemExit) and "Traceback" not in out
    assert _events(ledger, "authorization.revoke") == []

    code, out, _ = _pdo(ledger, "authorization", "list", "--json")
    assert code == 0, out
    (listed,) = json.loads(out)
    assert listed["reference"] == ref and listed["state"] == "active"
    assert listed["rights"][OPERATION_RIGHT] == "授权运营单位"
    assert listed["products"] == ["credit_risk"]
    assert ledger.api_key not in out and "hash" not in out and "password" not in out

    code, out, _ = _pdo(
        ledger, "authorization", "revoke", ref, "--as", "regina", "--reason", "整改"
    )
    assert code == 0, out
    code, out, _ = _pdo(ledger, "authorization", "list")
    assert code == 0 and "revoked" in out and "整改" in out and HOLDING_RIGHT in out

    code, out, _ = _pdo(ledger, "authorization", "renew", ref, "--days", "90", "--as", "regina")
    assert code == 0 and "renewed" in out, out
    code, out, _ = _pdo(ledger, "authorization", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["state"] == "active" and listed["revoke_reason"] is None

    code, out, _ = _pdo(
        ledger,
        "authorization",
        "grant",
        "--reference",
        "授权〔2026〕2号",
        "--product",
        "credit_risk",
        "--product",
        "operating_status",
        "--json",
    )
    assert code == 0, out
    assert json.loads(out)["products"] == ["credit_risk", "operating_status"]
    spaced = ("grant", "--reference", "授权〔2026〕3号", "--purposes", "贷前审查, 贷后管理")
    code, out, _ = _pdo(ledger, "authorization", *spaced, "--json")
    assert code == 0, out  # a space after the comma is how people type lists
    assert json.loads(out)["reference"] == "授权〔2026〕3号"


def test_granting_a_reference_again_says_so_and_refuses_other_terms(ledger: Ledger) -> None:
    """The same grant again changes nothing and says so (a revoked one stays revoked); other
    tables or purposes under a granted reference are refused rather than silently ignored."""
    grant = ("authorization", "grant", "--reference", "R-9", "--purposes", "贷前审查")
    code, out, _ = _pdo(ledger, *grant)
    assert code == 0 and "authorization R-9 granted" in out, out
    code, out, _ = _pdo(ledger, *grant)
    assert code == 0 and "R-9 was already granted" in out and "active" in out, out
    assert "nothing changed" in out
    code, out, exc = _pdo(ledger, *grant[:-1], "贷前审查,贷后管理")
    assert code == 1 and "granted with other purposes" in out and "new reference" in out, out
    assert isinstance(exc, SystemExit)
    code, out, _ = _pdo(ledger, *grant, "--tables", "tax_credit")
    assert code == 1 and "granted with other tables" in out, out
    r9 = [e for e in _events(ledger, "authorization.grant") if e.details["reference"] == "R-9"]
    assert len(r9) == 1

    assert _pdo(ledger, "authorization", "revoke", "R-9", "--as", "regina", "--reason", "x")[0] == 0
    code, out, _ = _pdo(ledger, *grant)
    assert code == 0 and "R-9 was already granted" in out and "revoked" in out, out
    code, out, _ = _pdo(ledger, *grant, "--json")
    shown = json.loads(out)
    assert shown["new"] is False and shown["state"] == "revoked"
