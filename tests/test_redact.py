"""Redaction leaves typed placeholders, keeps enterprise codes and nothing personal behind."""

from __future__ import annotations

from collections import Counter

import pytest
from presidio_analyzer import AnalyzerEngine
from presidio_anonymizer import AnonymizerEngine

from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.checksums import resident_id_check_char, uscc_check_char
from pdo.privacy.recognizers import RECOGNIZERS
from pdo.privacy.redact import PLACEHOLDERS, kept_entities, redact_text, residual_pii

RID = "11010519900307123" + resident_id_check_char("11010519900307123")
USCC = "91350100M000100Y4" + uscc_check_char("91350100M000100Y4")
MOBILE = "13812345678"
PENALTY = (
    f"当事人某某科技有限公司（统一社会信用代码{USCC}，法定代表人张伟，身份证号{RID}，"
    f"联系电话{MOBILE}）在其网店发布虚假广告，违反《中华人民共和国广告法》第二十八条，"
    "依据第五十五条，决定罚款人民币贰万元整。"
)


@pytest.fixture(scope="session")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerEngine:
    return build_analyzer(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()


def test_penalty_summary_is_redacted(
    analyzer: AnalyzerEngine, anonymizer: AnonymizerEngine
) -> None:
    out = redact_text(analyzer, anonymizer, PENALTY)
    assert out == (
        f"当事人某某科技有限公司（统一社会信用代码{USCC}，法定代表人〈姓名〉，身份证号〈身份证号〉，"
        "联系电话〈手机号〉）在其网店发布虚假广告，违反《中华人民共和国广告法》第二十八条，"
        "依据第五十五条，决定罚款人民币贰万元整。"
    )
    assert RID not in out and MOBILE not in out
    assert USCC in out
    assert residual_pii(analyzer, [out]) == Counter()


def test_residual_pii_counts_personal_entities_only(analyzer: AnalyzerEngine) -> None:
    counts = residual_pii(analyzer, [PENALTY, "另一联系电话+86 139-1234-5678", "", USCC])
    assert counts == Counter({"CN_RESIDENT_ID": 1, "CN_MOBILE": 2, "PERSON": 1})


def test_many_spans_and_formats(analyzer: AnalyzerEngine, anonymizer: AnonymizerEngine) -> None:
    text = f"{RID}、+86 138 1234 5678、{RID.lower()}；旧证110105491231002"
    out = redact_text(analyzer, anonymizer, text)
    assert out == "〈身份证号〉、〈手机号〉、〈身份证号〉；旧证〈身份证号〉"
    assert residual_pii(analyzer, [out]) == Counter()


def test_text_without_pii_is_unchanged(
    analyzer: AnalyzerEngine, anonymizer: AnonymizerEngine
) -> None:
    text = f"统一社会信用代码{USCC}的企业于2024年3月15日被罚款20000元，案号杭市监罚〔2024〕88号。"
    assert redact_text(analyzer, anonymizer, text) == text
    assert redact_text(analyzer, anonymizer, "") == ""


def test_every_registered_entity_has_a_placeholder_decision() -> None:
    assert {cls.ENTITY for cls in RECOGNIZERS} <= set(PLACEHOLDERS)
    assert kept_entities() == {"CN_USCC", "CN_ORG_CODE", "ORGANIZATION"}
    assert PLACEHOLDERS["CN_RESIDENT_ID"] == "〈身份证号〉"
    assert PLACEHOLDERS["CN_MOBILE"] == "〈手机号〉"


def test_desensitized_values_leave_no_residue(analyzer: AnalyzerEngine) -> None:
    """Pseudonyms, masks and generalized addresses must not look like PII to the residual scan."""
    from pdo.privacy.masks import mask_mobile, mask_resident_id
    from pdo.privacy.pseudonym import Pseudonymizer

    pz = Pseudonymizer("k", b"residual-test-key")
    values = [pz.pseudonym(f"{RID}{i}") for i in range(500)]
    values += [mask_resident_id(RID), mask_mobile(MOBILE), "北京市朝阳区****", "2024-03"]
    assert residual_pii(analyzer, values) == Counter()
