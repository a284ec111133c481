"""Every action the code puts on the audit chain has a console label, in 中文 and English.

The actions are read from the source: the action argument of every `audit.record(...)` and
`audit.Entry(...)` call in the packages, plus the action constants those calls name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dashboard.queries import ACTION_LABELS
from pdo.checkpoints import ANNOUNCE
from pdo.delivery.metering import USAGE_ACTIONS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pdo", "api", "flows", "products", "dashboard")


def _literal_actions() -> set[str]:
    """String actions of `audit.record(session, actor, ACTION, …)` and `Entry(actor, ACTION, …)`."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                position = {"record": 2, "Entry": 1}.get(node.func.attr)
                owner = node.func.value
                if position is None or not (isinstance(owner, ast.Name) and owner.id == "audit"):
                    continue
                arg = node.args[position] if len(node.args) > position else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


ACTIONS = sorted(
    _literal_actions()
    | set(USAGE_ACTIONS.values())
    | {ANNOUNCE}
    | {"signoff.approved", "signoff.rejected"}  # f"signoff.{decision}" in pdo/signoff.py
)


def test_the_source_scan_finds_the_actions() -> None:
    assert {"authorization.grant", "settlement.close", "query.refused", "export.usage"} <= set(
        ACTIONS
    )


@pytest.mark.parametrize("action", ACTIONS)
def test_every_recorded_action_has_a_label_in_both_languages(action: str) -> None:
    zh, en = ACTION_LABELS[action]
    assert zh and not zh.isascii() and en and en.isascii()
