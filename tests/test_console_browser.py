"""The console served by `streamlit run` and driven in a real Chromium: what users really see."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.console_seed import PASSWORD, Seed, seed_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"console did not answer at {url} within {timeout} s")


def _export_review_package(seed: Seed, out: Path) -> Path:
    """`pdo signoff export` of the pending run, as a reviewer would archive it."""
    from typer.testing import CliRunner

    from pdo.cli import app

    env = {"PDO_HOME": str(seed.home), "PDO_DATABASE_URL": None}
    result = CliRunner().invoke(
        app, ["signoff", "export", seed.pending_run_id, "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    return out.resolve()


@contextmanager
def serve_console(home: Path, log_path: Path, **env_extra: str) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on a free port over PDO_HOME; killed afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PDO_DATABASE_URL"}
    env |= {"PDO_HOME": str(home), **env_extra}
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "minimal",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Seed]]:
    """The console over a seeded PDO_HOME."""
    seed = seed_console(tmp_path / "home", with_docs=True)
    with serve_console(seed.home, tmp_path / "streamlit.log") as url:
        yield url, seed


def test_login_see_the_signoff_queue_and_open_the_runs_data_docs(
    console: tuple[str, Seed], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, seed = console
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700}, locale="zh-CN")
            page.goto(url)
            expect(page.get_by_role("heading", name="监管与运营控制台")).to_be_visible(
                timeout=30_000
            )
            page.get_by_label("用户名").fill("rita")
            page.get_by_label("密码", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="登录", exact=True).click()
            expect(page.get_by_role("heading", name="合规审查")).to_be_visible(timeout=30_000)
            expect(page.get_by_text(f"运行 {seed.pending_run_id[:12]}")).to_be_visible()
            expect(page.get_by_text("审核员").first).to_be_visible()
            expect(page.get_by_role("button", name="批准", exact=True)).to_be_visible()
            page.wait_for_timeout(500)  # let the data grids finish drawing
            shot = tmp_path / "signoff_queue.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            page.get_by_role("link", name="查看质量报告与 Data Docs").click()
            expect(page.get_by_role("heading", name="质量报告")).to_be_visible(timeout=30_000)
            docs = page.frame_locator("iframe").first
            expect(docs.get_by_text("Expectation Validation Result").first).to_be_visible(
                timeout=30_000
            )
            expect(docs.get_by_text("tax_credit.desensitized").first).to_be_visible()
            shot = tmp_path / "quality_report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            exported = _export_review_package(seed, tmp_path / "review_package.html")
            page.goto(exported.as_uri())
            expect(page.get_by_role("heading", name="数据审核包")).to_be_visible(timeout=30_000)
            expect(page.get_by_text(seed.package_hash)).to_be_visible()
            shot = tmp_path / "review_package.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
