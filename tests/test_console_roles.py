"""Every console page × every role: allowed roles see the page, the others are refused.

Only titles, refusals and navigation are checked here (what `dashboard.registry` promises), not
what each page shows: those have their own tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.registry import PAGES, ConsolePage, landing_page
from pdo.settings import Settings
from pdo.users import Role
from tests.console_seed import PASSWORD, seed_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
USERS = {Role.OPERATOR.value: "olga", Role.REVIEWER.value: "rita", Role.REGULATOR.value: "regina"}
LOGIN_TITLE = "监管与运营控制台"

ALLOWED = [(p, role) for p in PAGES for role in sorted(USERS) if role in p.roles]
REFUSED = [(p, role) for p in PAGES for role in sorted(USERS) if role not in p.roles]


def _id(case: tuple[ConsolePage, str]) -> str:
    page, role = case
    return f"{page.key}-{role}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One seeded ledger (pending run, product, usage) for the whole module."""
    seed = seed_console(tmp_path_factory.mktemp("roles") / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDO_HOME", str(seed.home))
        mp.delenv("PDO_DATABASE_URL", raising=False)
        mp.setenv("PDO_CONSOLE_CONTINUES_RUNS", "false")
        yield seed.home


def _login(role: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.text_input(key="login_name").input(USERS[role])
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert not at.exception, at.exception
    assert at.session_state["pdo_user"]["role"] == role
    return at


@pytest.fixture(scope="module")
def sessions(home: Path) -> Iterator[dict[tuple[str, bool], AppTest]]:
    """One logged-in console per (role, English?), made on first use and shared by the tests
    (the environment above stays set while they run)."""
    made: dict[tuple[str, bool], AppTest] = {}
    yield made


def _session(sessions: dict[tuple[str, bool], AppTest], role: str, english: bool) -> AppTest:
    if (role, english) not in sessions:
        at = _login(role)
        if english:
            at.toggle(key="pdo_lang_en").set_value(True).run()
            assert not at.exception
        sessions[(role, english)] = at
    return sessions[(role, english)]


def _titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


# --- allowed -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALLOWED, ids=_id)
def test_allowed_role_sees_the_page(
    case: tuple[ConsolePage, str], sessions: dict[tuple[str, bool], AppTest]
) -> None:
    page, role = case
    at = _session(sessions, role, english=False)
    at.switch_page(page.path).run()
    assert not at.exception, at.exception
    assert _titles(at)[:1] == [page.title_zh]
    assert not any("无权访问" in e.value for e in at.error)


@pytest.mark.parametrize("case", ALLOWED, ids=_id)
def test_english_toggle_turns_the_title_english(
    case: tuple[ConsolePage, str], sessions: dict[tuple[str, bool], AppTest]
) -> None:
    page, role = case
    at = _session(sessions, role, english=True)
    at.switch_page(page.path).run()
    assert not at.exception, at.exception
    assert _titles(at)[:1] == [page.title_en]


@pytest.mark.parametrize("role", sorted(USERS))
def test_login_lands_on_the_roles_landing_page(role: str, home: Path) -> None:
    at = _login(role)
    landing = next(p for p in PAGES if p.key == landing_page(role))
    assert _titles(at)[:1] == [landing.title_zh]


# --- refused -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_refused_role_is_not_offered_the_page(
    case: tuple[ConsolePage, str], sessions: dict[tuple[str, bool], AppTest]
) -> None:
    page, role = case
    at = _session(sessions, role, english=False)
    with pytest.raises(ValueError):
        at.switch_page(page.path)  # not registered in this role's navigation


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_refused_role_reaching_the_page_sees_the_refusal_and_no_data(
    case: tuple[ConsolePage, str], home: Path
) -> None:
    """The page's own check, for whoever reaches its script without the navigation."""
    page, role = case
    at = AppTest.from_file(str(ROOT / "dashboard" / page.path), default_timeout=60)
    at.session_state["pdo_settings"] = Settings(home=home)
    at.session_state["pdo_user"] = {"name": USERS[role], "role": role, "exp": time.time() + 600}
    at.run()
    assert not at.exception, at.exception
    assert _titles(at) == [page.title_zh]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "无权访问" in errors[0] and page.title_zh in errors[0]
    assert not at.dataframe and not at.metric and not at.table
    assert not at.get("vega_lite_chart") and not at.get("download_button")


# --- navigation and sessions -------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(USERS))
def test_navigation_offers_exactly_the_allowed_pages(
    role: str, sessions: dict[tuple[str, bool], AppTest]
) -> None:
    at = _session(sessions, role, english=False)
    offered = set()
    for page in PAGES:
        try:
            at.switch_page(page.path)
        except ValueError:
            continue
        offered.add(page.key)
    assert offered == {p.key for p in PAGES if role in p.roles}


def test_before_login_only_the_login_page(home: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert _titles(at) == [LOGIN_TITLE]
    for page in PAGES:
        with pytest.raises(ValueError):
            at.switch_page(page.path)


@pytest.mark.parametrize("role", sorted(USERS))
def test_an_expired_session_lands_back_on_the_login_page(role: str, home: Path) -> None:
    at = _login(role)
    allowed = next(p for p in PAGES if role in p.roles and p.key != landing_page(role))
    at.switch_page(allowed.path).run()
    assert _titles(at)[:1] == [allowed.title_zh]
    user = dict(at.session_state["pdo_user"])
    user["exp"] = time.time() - 1
    at.session_state["pdo_user"] = user
    at.run()
    assert not at.exception
    assert _titles(at) == [LOGIN_TITLE]
    assert any("会话已过期" in i.value for i in at.info)
    assert not at.dataframe and not at.metric
    assert "pdo_user" not in at.session_state
    with pytest.raises(ValueError):
        at.switch_page(allowed.path)


def test_session_lasts_the_configured_minutes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDO_CONSOLE_SESSION_MINUTES", "7")
    before = time.time()
    at = _login(Role.REGULATOR.value)
    expires = at.session_state["pdo_user"]["exp"]
    assert before + 7 * 60 <= expires <= time.time() + 7 * 60
