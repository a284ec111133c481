"""The console in a real Chromium over a real pipeline run: two reviewers approve the run at the
gate, it is published in the background, and every page is photographed for each role.

Screenshots go to $PDO_SCREENSHOT_DIR when set (kept for the record), else to the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from dashboard.registry import pages_for
from pdo.cli import app
from pdo.ledger.db import make_engine
from pdo.ledger.models import PipelineRun, ProductVersion
from pdo.settings import Settings
from tests.test_console_browser import CHROMIUM, CHROMIUM_ARGS, serve_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PASSWORD = "correct horse battery"
USERS = (("alice", "operator"), ("rita", "reviewer"), ("rick", "reviewer"), ("regina", "regulator"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium"),
]


@pytest.fixture
def gated(prefect_harness: None, tmp_path: Path) -> dict[str, object]:
    """A generated city run through the real pipeline to the sign-off gate."""
    from pdo.gen import generate

    home, source = tmp_path / "home", tmp_path / "delivery"
    generate(source, enterprises=300, seed=11, progress=False)
    env = {"PDO_HOME": str(home), "PDO_DATABASE_URL": None}
    runner = CliRunner()

    def pdo(*args: str, input: str | None = None) -> str:
        result = runner.invoke(app, list(args), env=env, input=input)
        assert result.exit_code == 0, result.output
        return result.output

    pdo("department", "register")
    for name, role in USERS:
        pdo("user", "add", name, "--role", role, input=PASSWORD + "\n")
    pdo("authorization", "grant", "--reference", "数授〔2026〕B1号", "--as", "authority")
    out = pdo("run", "--source", str(source), "--as", "alice", "--json")
    run_id = json.loads(out[out.index("{") :])["run_id"]
    return {"home": home, "run_id": run_id}


@pytest.fixture
def console(gated: dict[str, object], tmp_path: Path) -> Iterator[str]:
    """The console over that home; a final approval continues the run in the background."""
    home = Path(str(gated["home"]))
    with serve_console(home, tmp_path / "streamlit.log", PDO_CONSOLE_CONTINUES_RUNS="true") as url:
        yield url


def _run_status(home: Path, run_id: str) -> str:
    with Session(make_engine(Settings(home=home).db_url)) as s:
        run = s.get(PipelineRun, run_id)
        return run.status if run is not None else "missing"


def test_reviewers_approve_the_run_it_is_published_and_every_page_is_photographed(
    gated: dict[str, object], console: str, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    home, run_id = Path(str(gated["home"])), str(gated["run_id"])
    shots = Path(os.environ.get("PDO_SCREENSHOT_DIR") or tmp_path / "screens")
    shots.mkdir(parents=True, exist_ok=True)

    def log_in(page: Page, name: str) -> None:
        page.goto(console)
        page.get_by_label("用户名").fill(name)
        page.get_by_label("密码", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page.get_by_role("button", name="退出登录")).to_be_visible(timeout=30_000)

    def approve(page: Page, name: str) -> None:
        log_in(page, name)
        expect(page.get_by_role("heading", name="合规审查")).to_be_visible(timeout=30_000)
        expect(page.get_by_text(f"运行 {run_id[:12]}")).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="批准", exact=True).click()
        expect(page.get_by_text(f"已批准运行 {run_id[:12]}")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / f"signoff-approved-by-{name}.png"), full_page=True)
        page.get_by_role("button", name="退出登录").click()

    def open_page(page: Page, title: str) -> None:
        """Through the sidebar menu: a reload would start a new, logged-out session."""
        nav = page.get_by_test_id("stSidebarNav")
        more = nav.get_by_role("button", name="View")  # Streamlit folds long menus
        if more.count() and "more" in (more.first.inner_text() or ""):
            more.first.click()
        nav.get_by_role("link", name=title, exact=True).click()

    def photograph_every_page(page: Page, role: str) -> list[Path]:
        taken = []
        for entry in pages_for(role):
            open_page(page, entry.title_zh)
            expect(page.get_by_role("heading", name=entry.title_zh).first).to_be_visible(
                timeout=30_000
            )
            page.wait_for_timeout(1_500)  # charts and data grids finish drawing
            shot = shots / f"{role}-{entry.key}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000, shot
            taken.append(shot)
        return taken

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600}, locale="zh-CN")
            approve(page, "rita")
            assert _run_status(home, run_id) == "awaiting_signoff"  # important data: two
            approve(page, "rick")
            deadline = time.monotonic() + 300
            while _run_status(home, run_id) != "published" and time.monotonic() < deadline:
                time.sleep(2)
            assert _run_status(home, run_id) == "published", (home / "logs").glob("*.log")

            log_in(page, "rita")  # the reviewer sees what she approved published
            open_page(page, "数据产品")
            expect(page.get_by_text("credit_risk@1").first).to_be_visible(timeout=30_000)
            taken = photograph_every_page(page, "reviewer")
            page.get_by_role("button", name="退出登录").click()
            for name, role in (("regina", "regulator"), ("alice", "operator")):
                log_in(page, name)
                taken += photograph_every_page(page, role)
                page.get_by_role("button", name="退出登录").click()
        finally:
            browser.close()
    with Session(make_engine(Settings(home=home).db_url)) as s:
        published = s.exec(select(ProductVersion).where(ProductVersion.run_id == run_id)).all()
    assert {v.id for v in published} >= {"credit_risk@1"}
    assert len(taken) == sum(len(pages_for(r)) for r in ("reviewer", "regulator", "operator"))
