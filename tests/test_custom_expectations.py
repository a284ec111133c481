"""Our custom GX expectations judge rows exactly as pdo.privacy does, inside real GX validations."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pdo.privacy.checksums import (
    USCC_ALPHABET,
    resident_id_check_char,
    uscc_check_char,
)

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ROW_ID = "row_id"
FIRST_ROW = 100  # row ids start here, so they cannot be mistaken for positions
COMPLETE = {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]}

RID_TYPE = "expect_column_values_to_be_valid_resident_id"
USCC_TYPE = "expect_column_values_to_be_valid_uscc"
PII_TYPE = "expect_column_values_to_hold_no_personal_information"
MONTH_TYPE = "expect_column_values_to_be_month_not_after"
SHORT = {RID_TYPE: "resident-id", USCC_TYPE: "uscc", PII_TYPE: "pii"}


def _rid(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def _uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def _wrong(value: str, alphabet: str) -> str:
    """The same value with a different (wrong) last character."""
    return value[:-1] + next(c for c in alphabet if c != value[-1])


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


RID_X = _rid("11010519491231002")  # check character X
RID_DIGIT = _rid("44030420000229123")  # 29 Feb 2000: a leap day
USCC_A = _uscc("91350100M000100Y4")
USCC_B = _uscc("12100000400000601")  # all digits, check 2

# (value, valid, case id): the rule is pdo.privacy.checksums.is_valid_resident_id.
RESIDENT_IDS: list[tuple[Any, bool, str]] = [
    (RID_X, True, "check-X"),
    (RID_DIGIT, True, "leap-day-2000"),
    (RID_X.lower(), True, "lowercase-x-accepted"),
    (_full_width(RID_DIGIT[:17]) + RID_DIGIT[17], True, "full-width-digits-accepted"),
    (_wrong(RID_X, "0123456789X"), False, "wrong-check-char"),
    (_wrong(RID_DIGIT, "0123456789X"), False, "wrong-check-digit"),
    (_rid("11010519490230002"), False, "30-feb"),
    (_rid("11010519000229002"), False, "29-feb-1900"),
    (_rid("11010521000229002"), False, "29-feb-2100"),
    (_rid("11010518991231002"), False, "born-1899"),
    (_rid("11010519491301002"), False, "month-13"),
    (_rid("11010519491200002"), False, "day-00"),
    (RID_X[:17], False, "17-chars"),
    (RID_X + "1", False, "19-chars"),
    (" " + RID_X, False, "leading-space"),
    ("110105491231002", False, "15-digit-legacy"),
    (RID_DIGIT[:17] + _full_width(RID_DIGIT[17]), False, "full-width-check-digit"),
    (RID_X[:17] + "Ｘ", False, "full-width-X"),
    (RID_X[:5] + "²" + RID_X[6:], False, "superscript-digit"),
    (int(RID_DIGIT), False, "stored-as-int"),
]

# (value, valid, case id): the rule is pdo.privacy.checksums.is_valid_uscc.
USCCS: list[tuple[Any, bool, str]] = [
    (USCC_A, True, "enterprise"),
    (USCC_B, True, "institution"),
    (_wrong(USCC_A, USCC_ALPHABET), False, "wrong-check-char"),
    (USCC_A.lower(), False, "lowercase"),
    (_full_width(USCC_A), False, "full-width"),
    ("91350100I000100Y4" + USCC_A[17], False, "letter-I-not-in-alphabet"),
    (USCC_A[:17], False, "17-chars"),
    (USCC_A + "0", False, "19-chars"),
    (USCC_A + " ", False, "trailing-space"),
    (int(USCC_B), False, "stored-as-int"),
]

# (text, holds no PII, case id): pattern/checksum recognizers; kept entities do not count.
TEXTS: list[tuple[Any, bool, str]] = [
    ("今天下午三点在会议室开会", True, "plain-text"),
    (f"企业统一社会信用代码{USCC_A}，已核验", True, "enterprise-uscc-kept"),
    ("请联系客户，电话13812345678，谢谢", False, "mobile-in-text"),
    (f"申请人身份证号{RID_DIGIT}，材料齐全", False, "resident-id-in-text"),
    (13912345678, False, "mobile-stored-as-int"),
]


@pytest.fixture(scope="module")
def batches() -> Any:
    """One ephemeral context and whole-dataframe batch definition for the module (GX is slow)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from pdo.validation.expectations import register

    register()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


@pytest.fixture(scope="module", autouse=True)
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The composition root's job: a pattern scanner over a models dir, configured once."""
    from pdo.privacy.analyzer import build_analyzer
    from pdo.privacy.fastscan import FastScanner
    from pdo.validation.expectations import configure

    scanner = FastScanner(build_analyzer(Path(tmp_path_factory.mktemp("models"))))
    configure(scanner)
    yield scanner
    scanner.close()


def _validate(batches: Any, kind: str, values: list[Any], **kwargs: Any) -> tuple[bool, set[int]]:
    """(success, unexpected row ids) of one expectation over a column holding values."""
    import great_expectations as gx

    frame = pd.DataFrame(
        {
            ROW_ID: range(FIRST_ROW, FIRST_ROW + len(values)),
            "value": pd.Series(values, dtype=object),
        }
    )
    suite = gx.ExpectationSuite(
        name=kind, expectations=[{"type": kind, "kwargs": {"column": "value", **kwargs}}]
    )
    result = batches.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format=COMPLETE
    )
    (outcome,) = result.results
    assert not outcome.exception_info["raised_exception"], outcome.exception_info
    return outcome.success, {int(row[ROW_ID]) for row in outcome.result["unexpected_index_list"]}


def _cases(kind: str, table: list[tuple[Any, bool, str]]) -> list[Any]:
    return [pytest.param(kind, value, ok, id=f"{SHORT[kind]}-{case}") for value, ok, case in table]


@pytest.mark.parametrize(
    ("kind", "value", "valid"),
    _cases(RID_TYPE, RESIDENT_IDS) + _cases(USCC_TYPE, USCCS) + _cases(PII_TYPE, TEXTS),
)
def test_each_value(batches: Any, kind: str, value: Any, valid: bool) -> None:
    good = {RID_TYPE: RID_X, USCC_TYPE: USCC_A, PII_TYPE: "无个人信息"}[kind]
    success, unexpected = _validate(batches, kind, [good, value, None])
    assert success is valid
    assert unexpected == (set() if valid else {FIRST_ROW + 1})


@pytest.mark.parametrize(
    ("kind", "table"),
    [(RID_TYPE, RESIDENT_IDS), (USCC_TYPE, USCCS), (PII_TYPE, TEXTS)],
    ids=["resident-id", "uscc", "pii"],
)
def test_whole_table_flags_exactly_the_invalid_rows(
    batches: Any, kind: str, table: list[tuple[Any, bool, str]]
) -> None:
    values = [value for value, _, _ in table] * 2 + [None]  # repeats: judged once, flagged twice
    invalid = {FIRST_ROW + i for i, (_, ok, _) in enumerate(table * 2) if not ok}
    success, unexpected = _validate(batches, kind, values)
    assert not success
    assert unexpected == invalid


def test_enterprise_usccs_alone_hold_no_personal_information(batches: Any) -> None:
    success, unexpected = _validate(batches, PII_TYPE, [USCC_A, USCC_B, USCC_A, None])
    assert success and not unexpected


def test_a_month_after_the_bound_or_not_a_month_is_flagged(batches: Any) -> None:
    """A mistyped future billing month (2062-06) fails; the bound month itself passes."""
    months = ["2026-06", "2027-01", "2027-02", "2062-06", "2026-6", None]
    success, unexpected = _validate(batches, MONTH_TYPE, months, max_month="2027-01")
    assert not success
    assert unexpected == {FIRST_ROW + 2, FIRST_ROW + 3, FIRST_ROW + 4}


def test_suite_from_json_resolves_to_the_custom_classes() -> None:
    import great_expectations as gx

    from pdo.validation.expectations import (
        CUSTOM_EXPECTATIONS,
        ExpectColumnValuesToBeValidUscc,
        register,
    )

    register()
    register()  # idempotent
    stored = json.dumps(
        {
            "name": "enterprises",
            "expectations": [
                {"type": USCC_TYPE, "kwargs": {"column": "uscc"}},
                {"type": "expect_column_values_to_be_not_a_real_type", "kwargs": {"column": "x"}},
            ],
        }
    )
    suite = gx.ExpectationSuite(**json.loads(stored))
    # GX logs and drops a type it does not know: only the registered one survives.
    (expectation,) = suite.expectations
    assert type(expectation) is ExpectColumnValuesToBeValidUscc
    assert expectation.column == "uscc"
    assert [cls.expectation_type for cls in CUSTOM_EXPECTATIONS] == [  # type: ignore[attr-defined]
        MONTH_TYPE,
        RID_TYPE,
        USCC_TYPE,
        PII_TYPE,
    ]


def test_configure_sets_the_scanner_the_metric_uses(scanner: Any) -> None:
    from pdo.validation.expectations.no_personal_information import get_scanner

    assert get_scanner() is scanner


def _variants(rng: random.Random, valid: str, alphabet: str, noise: str) -> str:
    """A value near a valid one: sometimes corrupted, cut, extended or case-changed."""
    roll = rng.random()
    if roll < 0.4:
        return valid
    if roll < 0.6:
        return valid[:-1] + rng.choice(alphabet)
    if roll < 0.8:
        at = rng.randrange(len(valid))
        return valid[:at] + rng.choice(noise) + valid[at + 1 :]
    if roll < 0.9:
        return valid.lower()
    return valid[: rng.randrange(len(valid) + 2)] + rng.choice(["", "1"])


def test_vectorized_checks_agree_with_the_checksum_functions() -> None:
    """The numpy paths re-implement the checks, so compare them value for value."""
    from pdo.privacy.checksums import is_valid_resident_id, is_valid_uscc
    from pdo.validation.expectations import valid_resident_id, valid_uscc

    rng = random.Random(11643)
    rids, usccs = [], []
    for _ in range(20_000):
        first17 = f"{rng.randint(100000, 999999)}{rng.randint(1890, 2110)}"
        first17 += f"{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}"
        rids.append(_variants(rng, _rid(first17), "0123456789Xx", "aX²１٣ｘ \x00-"))
        body = "".join(rng.choice(USCC_ALPHABET) for _ in range(17))
        usccs.append(_variants(rng, _uscc(body), USCC_ALPHABET, "IOSVZio１Ａ \x00"))

    def reference(check: Any, value: str) -> bool:
        try:
            return bool(check(value))
        except ValueError:  # is_valid_resident_id raises on digits int() rejects
            return False

    for module, check, values in (
        (valid_resident_id, is_valid_resident_id, rids),
        (valid_uscc, is_valid_uscc, usccs),
    ):
        expected = np.array([reference(check, v) for v in values])
        assert 0.2 < expected.mean() < 0.8  # both outcomes well represented
        got = module.judge(np.array(values, dtype=object))
        differ = [v for v, g, e in zip(values, got, expected, strict=True) if g != e]
        assert not differ, differ[:5]
