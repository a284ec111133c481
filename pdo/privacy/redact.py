"""Free-text redaction: personal spans become typed placeholders that readers can still follow."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

from presidio_analyzer import AnalyzerEngine, PatternRecognizer, RecognizerResult
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig

from pdo.privacy.recognizers import LANGUAGE, RECOGNIZERS

# Entity → placeholder; None means "not personal data, keep as is". New recognizers add entries.
PLACEHOLDERS: dict[str, str | None] = {
    "CN_RESIDENT_ID": "〈身份证号〉",
    "CN_MOBILE": "〈手机号〉",
    "CN_USCC": None,  # an enterprise's public registration code, not personal data
    "CN_USCC_INDIVIDUAL": "〈个体工商户代码〉",  # type 92: identifies a natural person
    "CN_ORG_CODE": None,  # an organization's code (GB 11714), likewise kept
    "CN_LANDLINE": "〈固定电话〉",
    "CN_BANK_CARD": "〈银行卡号〉",
    "CN_VEHICLE_PLATE": "〈车牌号〉",
    "CN_PASSPORT": "〈护照号〉",
    "CN_TRAVEL_PERMIT": "〈通行证号〉",
    "EMAIL_ADDRESS": "〈电子邮箱〉",
    "IP_ADDRESS": "〈IP地址〉",
    "PERSON": "〈姓名〉",
    "CN_ADDRESS": "〈地址〉",  # a specific address; plain place names are not reported
    "ORGANIZATION": None,  # organisation names are not personal data: detected, kept
}
# Any personal entity a later recognizer finds before it gets its own entry.
DEFAULT_PLACEHOLDER = "〈个人信息〉"


def kept_entities() -> frozenset[str]:
    """Entities that are detected but deliberately left in the text."""
    return frozenset(entity for entity, placeholder in PLACEHOLDERS.items() if placeholder is None)


def personal_results(analyzer: AnalyzerEngine, text: str) -> list[RecognizerResult]:
    """Detected spans that are personal data (everything except kept entities)."""
    keep = kept_entities()
    results = analyzer.analyze(text=text, language=LANGUAGE)
    return [r for r in results if r.entity_type not in keep]


def _operators() -> dict[str, OperatorConfig]:
    operators = {
        entity: OperatorConfig("replace", {"new_value": placeholder})
        for entity, placeholder in PLACEHOLDERS.items()
        if placeholder is not None
    }
    operators["DEFAULT"] = OperatorConfig("replace", {"new_value": DEFAULT_PLACEHOLDER})
    return operators


def redact_text(analyzer: AnalyzerEngine, anonymizer: AnonymizerEngine, text: str) -> str:
    """The text with every personal span replaced by its placeholder (e.g. 〈身份证号〉)."""
    results = personal_results(analyzer, text)
    if not results:
        return text
    # Kept entities never reach the anonymizer, so they cannot shadow an overlapping personal span.
    return anonymizer.anonymize(
        text=text,
        analyzer_results=results,  # type: ignore[arg-type]
        operators=_operators(),
    ).text


def residual_pii(analyzer: AnalyzerEngine, texts: Iterable[str]) -> Counter[str]:
    """Counts of personal entities still detectable in texts; empty proves desensitization held."""
    counts: Counter[str] = Counter()
    for text in texts:
        if text:
            counts.update(r.entity_type for r in personal_results(analyzer, text))
    return counts


@functools.cache
def _anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()


@functools.cache
def _pattern_recognizers() -> tuple[PatternRecognizer, ...]:
    return tuple(r for r in (cls() for cls in RECOGNIZERS) if isinstance(r, PatternRecognizer))


# Full-width forms of ASCII (an input method's １３８…, ＡＢ, －) and the ideographic space: one
# character for one, so what is found in the half-width probe is replaced in the text as typed.
_HALF_WIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
)


def half_width(text: str) -> str:
    """The text for recognizers that read ASCII digits: full-width forms made half-width, each
    at its own offset (pipeline values are NFKC-normalized at ingest; typed text is not)."""
    return text.translate(_HALF_WIDTH)


def redact_numbers(text: str) -> str:
    """The text with every personal value the registry's pattern recognizers find (身份证号,
    手机号, 个体工商户代码, 银行卡号, …, typed in full width too) replaced by its placeholder;
    no NLP model is loaded, so a reviewer's comment is redacted at the click that records it.
    Names are not caught."""
    keep = kept_entities()
    probe = half_width(text)
    results = [
        found
        for recognizer in _pattern_recognizers()
        for found in recognizer.analyze(probe, recognizer.supported_entities, None)
        if found.score > 0 and found.entity_type not in keep
    ]
    if not results:
        return text
    return (
        _anonymizer()
        .anonymize(text=text, analyzer_results=results, operators=_operators())  # type: ignore[arg-type]
        .text
    )
