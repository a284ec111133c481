"""The operator CLI on bad input: one clear line and a non-zero exit, never a traceback.

A seeded ledger (tests/console_seed.py: a grant and a published credit_risk@1), the real CLI
through CliRunner.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pdo.cli import app
from pdo.delivery.objections import mask_codes
from pdo.privacy.checksums import uscc_check_char
from tests.console_seed import seed_console

COMPANY = "91110105MA01ABCD2" + uscc_check_char("91110105MA01ABCD2")
SOLE_TRADER = "92330112459651923" + uscc_check_char("92330112459651923")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    seed_console(tmp_path)
    return tmp_path


def pdo(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"PDO_HOME": str(home)})


def clean_exit(result: Result) -> bool:
    """Ended by the CLI itself (typer.Exit or a usage error), not by an uncaught exception."""
    return result.exception is None or isinstance(result.exception, SystemExit)


def test_a_name_with_markup_is_printed_as_typed_and_its_key_shown_once(home: Path) -> None:
    """rich read `[/]` in a bank's name as a closing tag and crashed after the bank was saved,
    before its key was printed: the key was lost."""
    added = pdo(home, "subscriber", "add", "bank[/]")
    assert added.exit_code == 0 and clean_exit(added), added.output
    assert "subscriber bank[/] added" in added.output and "pdo_" in added.output
    again = pdo(home, "subscriber", "add", "bank[/]")
    assert again.exit_code == 1 and clean_exit(again)
    assert "error: subscriber 'bank[/]' already exists" in again.output


BAD_INPUT = [
    (
        "consent for a code with a wrong check digit",
        ["consent", "add", COMPANY[:-1] + ("0" if COMPANY[-1] != "0" else "1"),
         "--subscriber", "bank", "--reference", "R-1", "--until", "2027-01-01"],
        "is not a valid unified social credit code",
    ),
    (
        "consent for an empty code",
        ["consent", "add", "", "--subscriber", "bank", "--reference", "R-1",
         "--until", "2027-01-01"],
        "is not a valid unified social credit code",
    ),
    (
        "consent with a missing evidence file",
        ["consent", "add", COMPANY, "--subscriber", "bank", "--reference", "R-1",
         "--until", "2027-01-01", "--evidence", "/nonexistent/letter.pdf"],
        "no evidence file at /nonexistent/letter.pdf",
    ),
    (
        "a database source that is not a URL",
        ["run", "--from-db", "enterprise_registry=notaurl#t"],
        "not a valid SQLAlchemy database URL",
    ),
    ("settling a period typed in full-width digits", ["settle", "--period", "２０２６-10"],
     "period must look like 2026-11"),
    ("settling a period with a trailing newline", ["settle", "--period", "2026-10\n"],
     "period must look like 2026-11"),
    ("settling year 1", ["settle", "--period", "0001-01"], "years 1970–9998"),
    ("a statement for year 1", ["statement", "--period", "0001-01"], "years 1970–9998"),
    ("a plan valid for 4,000,000 days",
     ["plan", "add", "credit_risk", "long", "--price-fen", "1", "--days", "4000000"],
     "validity must be 1 to 36,500 days"),
    ("a price beyond a 64-bit column",
     ["plan", "add", "credit_risk", "dear", "--price-fen", "10000000000000000000"],
     "price must be 0 to"),
    ("a quota beyond a 64-bit column",
     ["plan", "add", "credit_risk", "many", "--price-fen", "1",
      "--monthly-quota", "10000000000000000000"],
     "a monthly quota must be 1 to"),
    ("a rate limit beyond a 64-bit column",
     ["subscriber", "add", "丙银行", "--rate-limit", "9223372036854775808"],
     "a rate limit must be 1 to"),
    ("a daily budget beyond a 64-bit column",
     ["subscriber", "add", "丙银行", "--daily-budget", "9223372036854775808"],
     "a daily budget must be 1 to"),
    ("a consent reference no lookup can name",
     ["consent", "add", COMPANY, "--subscriber", "bank", "--reference", "SQ-" + "x" * 118,
      "--until", "2027-01-01"],
     "a consent reference is at most 120 characters"),
    (
        "a negative dispatch interval",
        ["alerts", "dispatch", "--interval", "-1"],
        "greater than or equal to 0",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "says"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_gets_one_clear_line_and_a_failing_exit(
    home: Path, args: list[str], says: str
) -> None:
    assert pdo(home, "subscriber", "add", "bank").exit_code == 0
    result = pdo(home, *args)
    assert result.exit_code != 0 and clean_exit(result), result.output
    assert says in result.output and "Traceback" not in result.output


FULL_WIDTH = SOLE_TRADER.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})


@pytest.mark.parametrize(
    "written",
    [SOLE_TRADER, SOLE_TRADER.lower(), FULL_WIDTH],
    ids=["upper", "lower", "full-width"],
)
def test_a_sole_traders_code_in_an_objections_text_is_masked_in_any_case(written: str) -> None:
    masked = mask_codes(f"企业称 {written} 的处罚已撤销")
    assert written not in masked and SOLE_TRADER not in masked
    assert "923301*" in masked
    assert COMPANY in mask_codes(f"企业 {COMPANY} 称")  # a company's code is public: kept


RESIDENT_ID = "11010519491231002X"  # a 身份证号 typed where the enterprise's code belongs


@pytest.mark.parametrize(
    "args",
    [
        ["consent", "add", RESIDENT_ID, "--subscriber", "bank", "--reference", "R-1",
         "--until", "2027-01-01"],
        ["objection", "add", RESIDENT_ID, "--product", "credit_risk", "--item",
         "tax_credit:2023", "--reason", "r", "--as", "olga"],
        ["objection", "add", FULL_WIDTH[:-1] + "０", "--product", "credit_risk", "--item",
         "tax_credit:2023", "--reason", "r", "--as", "olga"],
    ],
    ids=["consent", "objection", "objection full-width"],
)  # fmt: skip
def test_a_code_that_is_not_a_uscc_is_refused_without_being_echoed(
    home: Path, args: list[str]
) -> None:
    assert pdo(home, "subscriber", "add", "bank").exit_code == 0
    result = pdo(home, *args)
    assert result.exit_code == 1 and "not a valid unified social credit code" in result.output
    assert args[2] not in result.output and "Traceback" not in result.output


def test_a_full_width_code_is_read_as_its_ascii_form(home: Path) -> None:
    """An input method's full-width code names the same enterprise; shown masked if a person's."""
    result = pdo(home, "objection", "add", FULL_WIDTH, "--product", "credit_risk", "--item",
                 "tax_credit:2023", "--reason", "r", "--as", "olga")  # fmt: skip
    assert result.exit_code == 1 and "serves no result for 923301*" in result.output
    assert FULL_WIDTH not in result.output and SOLE_TRADER not in result.output


def test_a_reviewers_comment_is_stored_without_the_numbers_it_quotes(tmp_path: Path) -> None:
    """A rejection quotes the value that leaked: stored, shown and chained with placeholders."""
    import json

    from sqlmodel import select

    from pdo.ledger.db import session_scope
    from pdo.ledger.models import AuditEvent, SignOff
    from pdo.settings import Settings
    from pdo.workspace import Workspace

    seed = seed_console(tmp_path)
    quoted = (SOLE_TRADER, RESIDENT_ID, "13812345678")
    comment = f"第3行仍含个体户代码 {quoted[0]}、身份证 {quoted[1]}、手机 {quoted[2]}，驳回"
    result = pdo(tmp_path, "signoff", "reject", seed.pending_run_id, "--as", "rosa",
                 "--comment", comment)  # fmt: skip
    assert result.exit_code == 0, result.output
    with session_scope(Workspace.open(Settings(home=tmp_path)).engine) as s:
        (decision,) = s.exec(select(SignOff).where(SignOff.run_id == seed.pending_run_id)).all()
        chained = json.dumps([e.details for e in s.exec(select(AuditEvent))], ensure_ascii=False)
    assert decision.comment.startswith("第3行仍含个体户代码 〈个体工商户代码〉")
    assert [q for q in quoted if q in decision.comment + chained + result.output] == []
