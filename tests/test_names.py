"""Names operators give banks, plans and users: a table of names taken and refused, via the CLI.

A bank's name is shown in consoles and audit records and used to find it again (`pdo key issue
NAME`); a plan's name becomes its id `product/name`, which `pdo subscribe --plan` parses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pdo.cli import app
from tests.console_seed import seed_console

SUBSCRIBER_NAMES = [
    ("chinese", "杭州银行股份有限公司", None),
    ("latin with spaces inside", "Bank of Ningbo", None),
    ("120 characters", "银" * 120, None),
    ("empty", "", "must not be empty"),
    ("blank", "   ", "must not be empty"),
    ("trailing space", "杭州银行 ", "must not begin or end with whitespace"),
    ("121 characters", "银" * 121, "at most 120 characters"),
    ("newline", "杭州\n银行", "control, invisible or unassigned"),
    ("escape sequence", "bank\x1b[31m", "control, invisible or unassigned"),
    ("zero-width space", "杭州\u200b银行", "control, invisible or unassigned"),
    ("right-to-left override", "bank\u202eknab", "control, invisible or unassigned"),
]

PLAN_NAMES = [
    ("latin", "gold", None),
    ("digits dash dot underscore", "v2.1-2026_q4", None),
    ("chinese", "金卡", None),
    ("40 characters", "p" * 40, None),
    ("empty", "", "a plan name has 1 to 40"),
    ("slash", "a/b", "a plan name has 1 to 40"),
    ("lone slash", "/", "a plan name has 1 to 40"),
    ("space", "gold plan", "a plan name has 1 to 40"),
    ("41 characters", "p" * 41, "a plan name has 1 to 40"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("names")
    seed_console(path)
    return path


def pdo(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"PDO_HOME": str(home)})


@pytest.mark.parametrize(
    ("name", "refusal"), [c[1:] for c in SUBSCRIBER_NAMES], ids=[c[0] for c in SUBSCRIBER_NAMES]
)
def test_subscriber_names(home: Path, name: str, refusal: str | None) -> None:
    added = pdo(home, "subscriber", "add", name, "--json")
    if refusal is None:
        assert added.exit_code == 0, added.output
        again = pdo(home, "key", "issue", name, "--json")  # found again by the same name
        assert again.exit_code == 0 and "pdo_" in again.output, again.output
    else:
        assert added.exit_code == 1 and refusal in added.output, added.output
        assert "Traceback" not in added.output and "pdo_" not in added.output
        assert pdo(home, "key", "issue", name).exit_code == 1  # nothing was saved


@pytest.mark.parametrize(
    ("name", "refusal"), [c[1:] for c in PLAN_NAMES], ids=[c[0] for c in PLAN_NAMES]
)
def test_plan_names(home: Path, name: str, refusal: str | None) -> None:
    added = pdo(home, "plan", "add", "credit_risk", name, "--price-fen", "200")
    listed = pdo(home, "plan", "list", "--json").output
    if refusal is None:
        assert added.exit_code == 0 and f"plan credit_risk/{name} added" in added.output
        assert pdo(home, "subscriber", "add", f"bank for {name}").exit_code == 0
        subscribed = pdo(home, "subscribe", f"bank for {name}", "--plan", f"credit_risk/{name}")
        assert subscribed.exit_code == 0, subscribed.output
    else:
        assert added.exit_code == 1 and refusal in added.output, added.output
        assert f'"credit_risk/{name}"' not in listed


def test_a_user_name_with_a_control_character_is_refused(home: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["user", "add", "ol\x07ga", "--role", "reviewer"],
        input="a-long-password\n",
        env={"PDO_HOME": str(home)},
    )
    assert result.exit_code == 1 and "control, invisible or unassigned" in result.output
