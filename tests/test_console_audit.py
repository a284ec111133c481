"""审计链 page: the chain's state after a signed checkpoint, tampering found on render or by the
full check, the checkpoint file offered to the authority, and who may open the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from pdo import audit
from pdo.checkpoints import create_checkpoint, latest, signature_valid
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import AuditEvent
from pdo.settings import Settings
from tests.console_seed import PASSWORD, Seed, seed_console

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seed:
    """The console ledger with a signed checkpoint over its chain and two events after it."""
    seed = seed_console(tmp_path / "home")
    monkeypatch.setenv("PDO_HOME", str(seed.home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    settings = Settings(home=seed.home)
    engine = make_engine(settings.db_url)
    with session_scope(engine) as s:
        create_checkpoint(s, settings.read_audit_signing_key(), "operator")
    with session_scope(engine) as s:
        audit.record(s, "operator", "plan.add", "credit_risk/extra", price_fen=1)
    return seed


def _engine(seed: Seed) -> Engine:
    return make_engine(Settings(home=seed.home).db_url)


def _as(name: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    at.switch_page("app_pages/audit.py").run()
    assert not at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def test_regulator_sees_an_intact_chain_and_the_signed_checkpoint(sealed: Seed) -> None:
    with session_scope(_engine(sealed)) as s:
        total = len(s.exec(select(AuditEvent.seq)).all())
    at = _as("regina")
    shown = _metrics(at)
    assert shown["审计链"] == "完整" and shown["事件数"] == f"{total:,}"
    assert shown["检查点"] == "1"
    assert shown["检查点之后的事件"] == "2"  # the checkpoint's own record and the plan
    assert any("检查点之后的2 条事件" in m.value for m in at.success)
    (button,) = [b for b in at.get("download_button") if b.proto.id]
    assert "检查点" in button.proto.label


def test_the_offered_checkpoint_file_is_the_signed_document(sealed: Seed) -> None:
    with session_scope(_engine(sealed)) as s:
        cp = latest(s)
        assert cp is not None
        document = cp.document
    assert signature_valid(document)
    assert json.loads(json.dumps(document))["merkle_root"] == cp.merkle_root


def test_tampering_after_the_checkpoint_is_found_while_drawing_the_page(sealed: Seed) -> None:
    with _engine(sealed).begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one()
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = :s"), {"s": last})
    at = _as("rita")
    assert _metrics(at)["审计链"] == "已损坏"
    assert any(f"第 {last} 条事件内容与哈希不符" in e.value for e in at.error)


def test_deleting_the_newest_events_with_the_checkpoints_record_is_found_on_render(
    sealed: Seed,
) -> None:
    with session_scope(_engine(sealed)) as s:
        cp = latest(s)
        assert cp is not None
    with _engine(sealed).begin() as conn:  # the checkpoint's own record and all after it
        conn.execute(text("DELETE FROM audit_event WHERE seq > :s"), {"s": cp.last_seq})
    at = _as("regina")
    assert _metrics(at)["审计链"] == "已损坏"
    assert any(f"第 {cp.last_seq + 1} 条事件" in e.value for e in at.error)
    assert not any("审计链完整" in m.value for m in at.success)


def test_tampering_before_the_checkpoint_is_found_by_the_full_check(sealed: Seed) -> None:
    with _engine(sealed).begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3"))
    at = _as("regina")
    assert _metrics(at)["审计链"] == "完整"  # on render only the tail after the checkpoint
    at.button(key="audit_full_check_button").click().run()
    assert any("第 3 条事件" in e.value for e in at.error)
    with session_scope(_engine(sealed)) as s:
        recorded = s.exec(select(AuditEvent).where(AuditEvent.action == "audit.verify")).one()
    assert recorded.actor == "regina" and recorded.details["ok"] is False
    assert recorded.details["broken_at"] == 3
    assert "上次全面核验" in " ".join(c.value for c in at.caption)


def test_a_tampered_usage_event_fails_the_full_check(sealed: Seed) -> None:
    with _engine(sealed).begin() as conn:
        uid = conn.execute(text("SELECT id FROM usage_event ORDER BY id LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE usage_event SET price_fen = 1 WHERE id = :u"), {"u": uid})
    at = _as("regina")
    at.button(key="audit_full_check_button").click().run()
    assert not at.exception
    assert not any("全面核验通过" in m.value for m in at.success)
    assert any("计费用量核验未通过" in e.value for e in at.error)
    assert any(uid in m.value and "与其审计记录不符" in m.value for m in at.markdown)
    with session_scope(_engine(sealed)) as s:
        recorded = s.exec(select(AuditEvent).where(AuditEvent.action == "audit.verify")).one()
    assert recorded.details["ok"] is True  # the chain itself still matches
    assert recorded.details["usage"]["ok"] is False and recorded.details["usage"]["problems"] == 1
    assert "结果：已损坏" in " ".join(c.value for c in at.caption)


def test_an_unreadable_stored_value_fails_the_full_check_without_crashing(sealed: Seed) -> None:
    with _engine(sealed).begin() as conn:
        conn.execute(text("UPDATE audit_event SET details = '{not json' WHERE seq = 3"))
    at = _as("regina")
    at.button(key="audit_full_check_button").click().run()
    assert not at.exception
    assert any("第 3 条事件存储值无法读取" in e.value for e in at.error)


def test_an_unreadable_usage_event_fails_the_full_check_without_crashing(sealed: Seed) -> None:
    with _engine(sealed).begin() as conn:
        uid = conn.execute(text("SELECT id FROM usage_event ORDER BY id LIMIT 1")).scalar_one()
        conn.execute(
            text("UPDATE usage_event SET served_at = 'yesterday' WHERE id = :u"), {"u": uid}
        )
    at = _as("regina")
    at.button(key="audit_full_check_button").click().run()
    assert not at.exception
    assert any("计费用量核验未通过" in e.value for e in at.error)
    assert any(uid in m.value and "存储值无法读取" in m.value for m in at.markdown)


def test_the_operator_is_refused(sealed: Seed) -> None:
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        _as("olga")  # not in an operator's menu, so not reachable by URL either
    # and the page itself refuses an operator who reaches its script anyway
    page = AppTest.from_file(str(APP.parent / "app_pages" / "audit.py"), default_timeout=30)
    page.session_state["pdo_settings"] = Settings(home=sealed.home)
    page.session_state["pdo_user"] = {"name": "olga", "role": "operator", "exp": 4e9}
    page.run()
    assert any("无权访问" in e.value for e in page.error)
    assert not page.metric and not page.dataframe
