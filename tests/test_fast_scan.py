"""FastScanner gives exactly what Presidio gives (patterns, checksums, NER, redaction), faster."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerResult
from presidio_anonymizer import AnonymizerEngine

from pdo.privacy import fastscan
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.checksums import resident_id_check_char, uscc_check_char
from pdo.privacy.fastscan import FastScanner, Result, anonymize, remove_duplicates
from pdo.privacy.fastscan.patterns import UnsupportedPattern, analyze_pattern
from pdo.privacy.recognizers import LANGUAGE
from pdo.privacy.redact import _operators, redact_text, residual_pii

NER_ENTITIES = ["PERSON", "CN_ADDRESS", "ORGANIZATION"]


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerEngine:
    return build_analyzer(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def patterns(analyzer: AnalyzerEngine) -> FastScanner:
    return FastScanner(analyzer)


@pytest.fixture(scope="module")
def full(analyzer: AnalyzerEngine) -> FastScanner:
    return FastScanner(analyzer, ner=True)


def _rid(body17: str) -> str:
    return body17 + resident_id_check_char(body17)


def _uscc(body17: str) -> str:
    return body17 + uscc_check_char(body17)


RID = _rid("11010519491231002")
USCC = _uscc("91330106MA2CFXXX0")
PERSONAL_USCC = _uscc("92330106MA2CFXXX0")

EDGE_TEXTS = [
    f"当事人张伟（身份证号{RID}，手机13812345678）",
    f"{RID}{RID}",  # two IDs back to back: neither stands alone
    f"证件号：{RID.lower()}；统一社会信用代码{USCC}",
    f"个体工商户{PERSONAL_USCC}经营者",
    "电话：１３８１２３４５６７８，＋８６ １３９-1234-5678",
    "+86 138-1234-5678 / 0086 13912345678 / 8613812345678",
    "联系电话0571-88886666，传真(010)12345678",
    "银行卡号6222021234567890128，另一张6217000010001234567",
    "车辆浙A12345与粤B·D12345、京AD12345发生事故",
    "护照E12345678，港澳通行证C12345678，台胞证12345678",
    "邮箱 zhang.wei+tag@example.com.cn，IP 192.168.1.1 与 2001:db8::1",
    "IP 10.0.0.256 不合法；999.1.1.1 也不是",
    "组织机构代码 12345678-9 与 MA2CFXXX-0",
    "",
    "没有任何数字的纯中文文本。",
    "1" * 40,
    "x" * 500 + "13812345678" + "y" * 500,
    "金额100000元，罚款3000元，2020年10月4日，第十三条",
    "\u3000\u00a013812345678\u2028",
    f"身份证号{RID[:6]} {RID[6:14]} {RID[14:]}，{RID[:6]}-{RID[6:14]}-{RID[14:]}",
    f"{RID[:6]}.{RID[6:]}，{RID[:6]}.{RID[6:14]}.{RID[14:]}，{RID[:6]} {RID[6:14]} {RID[14:]} 1",
    f"证件号{RID[:10]}\n{RID[10:]}；{RID[:6]}\r\n{RID[6:14]}\r\n{RID[14:]}；{RID[:4]}\n\n{RID[4:]}",
    "联系电话139.1234.5678，138\n1234\n5678，139 1234\n5678；不是：138.12345678，1.139.1234.5678",
    "处以罚款1500000\n2024年3月1日前缴清；没收1380000\n2023年度；1591234\n5678元；139\n1234 5678",
    f"{RID[:6]}\t{RID[6:14]}\t{RID[14:]}，{RID[:6]} \n{RID[6:14]} \n{RID[14:]}，"
    f"{RID[:6]}\u2013{RID[6:14]}\u2013{RID[14:]}，{RID[:6]}  {RID[6:14]}  {RID[14:]}",
    f"不是：{RID[:6]}\u2013{RID[6:14]}\t{RID[14:]}，1\u2013{RID[:6]}\u2013{RID[6:14]}\u2013{RID[14:]}",
    "电话139\t1234\t5678，139  1234  5678，139\u20131234\u20135678，139 \n1234 \n5678；"
    "不是：0755\u201313912345678，139    1234    5678",
]


def _presidio(analyzer: AnalyzerEngine, text: str, entities: list[str] | None) -> list[Result]:
    found = analyzer.analyze(text=text, language=LANGUAGE, entities=entities)
    return [Result(r.entity_type, r.start, r.end, r.score) for r in found]


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_pattern_findings_equal_presidio(
    analyzer: AnalyzerEngine, patterns: FastScanner, text: str
) -> None:
    assert patterns.scan(text) == _presidio(analyzer, text, list(patterns.entities))


def test_edge_texts_do_find_things(patterns: FastScanner) -> None:
    """The table above is not vacuous: most texts hold findings of several types."""
    found = Counter(r.entity_type for text in EDGE_TEXTS for r in patterns.scan(text))
    for entity in ("CN_RESIDENT_ID", "CN_MOBILE", "CN_USCC", "CN_USCC_INDIVIDUAL", "CN_LANDLINE"):
        assert found[entity] >= 1, entity
    assert sum(found.values()) >= 20


FRAGMENTS = [
    RID,
    RID[:-1] + "X",
    USCC,
    PERSONAL_USCC,
    "13812345678",
    "+86",
    "0571-",
    "88886666",
    "6222021234567890128",
    "浙A",
    "12345",
    "E1234",
    "5678",
    "@example.com",
    "a.b",
    "192.168.",
    "1.1",
    "::",
    "-",
    " ",
    "：",
    "，",
    "x",
    "X",
    "张伟",
    "杭州市西湖区",
    "文三路1号",
    "有限公司",
    "１３８",
    "\n",
    "\r\n",
    ".",
    RID[:6] + " ",
    RID[6:14] + "-",
    "139.1234.",
    "\t",
    "\u2013",
    "\u3000",
    RID[:6] + "\t",
    "139 \n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_pattern_findings_equal_presidio_on_generated_mixtures(
    analyzer: AnalyzerEngine, patterns: FastScanner, text: str
) -> None:
    assert patterns.scan(text) == _presidio(analyzer, text, list(patterns.entities))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_pattern_findings_equal_presidio_on_any_text(
    analyzer: AnalyzerEngine, patterns: FastScanner, text: str
) -> None:
    assert patterns.scan(text) == _presidio(analyzer, text, list(patterns.entities))


@pytest.fixture(scope="module")
def city_values(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every distinct text of a small generated city, plus its penalty summaries."""
    from pdo.gen import generate

    out = tmp_path_factory.mktemp("fastscan") / "city"
    generate(out, enterprises=300, seed=7, progress=False)
    values: set[str] = set()
    for path in sorted(out.glob("*.csv")):
        frame = pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
        for column in frame.columns:
            values.update(frame[column].drop_nulls().to_list())
    return sorted(values)


def test_batch_scan_of_a_city_equals_presidio_text_by_text(
    analyzer: AnalyzerEngine, patterns: FastScanner, city_values: list[str]
) -> None:
    assert len(city_values) > 3_000
    entities = list(patterns.entities)
    # duplicates and empties in the input come back in place
    texts = [*city_values, city_values[0], "", None]
    got = patterns.scan_many(texts)
    assert got[-2:] == [[], []] and got[-3] == got[0]
    disagreements = [
        text
        for text, found in zip(city_values, got, strict=False)
        if found != _presidio(analyzer, text, entities)
    ]
    assert disagreements == []
    assert sum(map(len, got)) > 500  # the city is full of identifiers


SENTENCES = [
    f"当事人李桂花，身份证号{RID}，住所杭州市萧山区启潮大道303号4幢2605室，联系电话13812345678。",
    "杭州萧山腾隆供应链有限责任公司法定代表人王建国于2020年10月4日销售不合格产品。",
    "张伟和欧阳娜娜在北京市朝阳区建国路88号见面，随后前往上海。",
    "浙江省杭州市西湖区文三路1号的居民陈明反映情况。",
    "本案无个人信息。",
    "",
]


def test_ner_findings_equal_presidio(analyzer: AnalyzerEngine, full: FastScanner) -> None:
    got = full.scan_many(SENTENCES)
    assert got == [_presidio(analyzer, text, None) for text in SENTENCES]
    entities = Counter(r.entity_type for found in got for r in found)
    assert entities["PERSON"] >= 4 and entities["CN_ADDRESS"] >= 2


def test_ner_only_entities_select_like_presidio(analyzer: AnalyzerEngine) -> None:
    scanner = FastScanner(analyzer, entities=NER_ENTITIES)
    assert scanner.pattern_entities == frozenset()
    assert scanner.scan_many(SENTENCES) == [
        _presidio(analyzer, text, NER_ENTITIES) for text in SENTENCES
    ]


def test_redaction_and_residual_counts_equal_presidio(
    analyzer: AnalyzerEngine, full: FastScanner
) -> None:
    anonymizer = AnonymizerEngine()
    texts = [*SENTENCES, *EDGE_TEXTS]
    redacted = full.fast_redact(texts)
    assert redacted == [redact_text(analyzer, anonymizer, t) for t in texts]
    assert full.count_personal(texts) == residual_pii(analyzer, texts)
    assert full.count_personal(r for r in redacted if r) == Counter()
    series = pl.Series("summary", [*texts, None])
    assert full.redact_series(series).to_list() == [*redacted, None]
    assert full.redact_series(series).name == "summary"


def test_redact_and_rescan_gives_the_redaction_and_the_findings_of_what_came_out(
    full: FastScanner,
) -> None:
    texts = [*SENTENCES, *EDGE_TEXTS]
    series = pl.Series("summary", [*texts, None, SENTENCES[0]])
    redacted, findings = full.redact_and_rescan(series)
    assert redacted.to_list() == full.redact_series(series).to_list()
    assert redacted.name == "summary"
    out = sorted({t for t in redacted.to_list() if t})
    assert findings == dict(zip(out, full.scan_many(out), strict=True))
    assert any(r.entity_type == "CN_USCC" for found in findings.values() for r in found)


def test_redact_and_rescan_in_worker_processes_gives_the_same(
    analyzer: AnalyzerEngine, full: FastScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastscan.scanner, "POOL_MIN_TEXTS_NER", 4)
    monkeypatch.setattr(fastscan.scanner, "POOL_CHUNK_NER", 3)
    texts = [f"{text}（{i}）" for i in range(30) for text in [*SENTENCES, *EDGE_TEXTS]]
    series = pl.Series("summary", [*texts, None])
    # the first batch calibrates the patterns in this process; the rest goes to the workers
    assert series.n_unique() > fastscan.scanner.BATCH + 100
    scanner = FastScanner(analyzer, ner=True)
    try:
        redacted, findings = scanner.redact_and_rescan(series, processes=2)
        assert scanner._pool is not None
    finally:
        scanner.close()
    alone, alone_findings = full.redact_and_rescan(series, processes=1)
    assert redacted.to_list() == alone.to_list()
    assert findings == alone_findings


def test_worker_processes_give_the_same_findings(
    analyzer: AnalyzerEngine, city_values: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastscan.scanner, "POOL_MIN_TEXTS", 1_000)
    monkeypatch.setattr(fastscan.scanner, "POOL_CHUNK", 1_000)
    scanner = FastScanner(analyzer)
    try:
        assert scanner.scan_many(city_values, processes=2) == scanner.scan_many(city_values)
    finally:
        scanner.close()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.integers(0, 30),
            st.integers(1, 8),
            st.sampled_from([0.0, 0.3, 0.5, 0.85, 1.0]),
        ),
        max_size=8,
    )
)
def test_remove_duplicates_equals_presidio(items: list[tuple[str, int, int, float]]) -> None:
    results = [Result(e, s, s + n, score) for e, s, n, score in items]
    theirs = EntityRecognizer.remove_duplicates(
        [RecognizerResult(r.entity_type, r.start, r.end, r.score) for r in results]
    )
    assert sorted(remove_duplicates(results)) == sorted(
        Result(r.entity_type, r.start, r.end, r.score) for r in theirs
    )


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab 张三", min_size=1, max_size=30).flatmap(
        lambda text: st.tuples(
            st.just(text),
            st.lists(
                st.tuples(
                    st.sampled_from(["PERSON", "CN_MOBILE", "CN_RESIDENT_ID"]),
                    st.integers(0, len(text) - 1),
                    st.integers(1, 6),
                    st.sampled_from([0.5, 0.85, 1.0]),
                ),
                max_size=6,
            ),
        )
    )
)
def test_anonymize_equals_presidio_anonymizer(
    case: tuple[str, list[tuple[str, int, int, float]]],
) -> None:
    text, items = case
    results = [Result(e, s, min(len(text), s + n), score) for e, s, n, score in items]
    ordered = sorted(results, key=lambda r: (-r.score, r.start, -(r.end - r.start)))
    theirs = AnonymizerEngine().anonymize(
        text=text,
        analyzer_results=[
            RecognizerResult(r.entity_type, r.start, r.end, r.score)  # type: ignore[misc]
            for r in ordered
        ],
        operators=_operators(),
    )
    assert anonymize(text, ordered) == theirs.text


@pytest.mark.parametrize(
    ("source", "relaxed", "min_length"),
    [
        (r"(?<!\d)1[3-9]\d{9}(?!\d)", r"1[3-9]\d{9}", 11),
        (r"\b\d{6}\b", r"\d{6}", 6),
        (r"(?:ab|c){2,3}", r"(?:ab|c){2,3}", 2),
        (r"[A-Z]{2}\d+", r"[A-Z]{2}\d+", 3),
        (r"x(?=y)", "x", 1),
        (r"\d{17}[\dXx]", r"\d{17}[\dXx]", 18),
    ],
)
def test_pattern_relaxation(source: str, relaxed: str, min_length: int) -> None:
    shape = analyze_pattern(source)
    assert (shape.relaxed, shape.min_length) == (relaxed, min_length)


@pytest.mark.parametrize("source", [r"^abc", r"abc$", r"(?>a)b", r"a++", r"\Gx", r"\Kx"])
def test_patterns_the_analysis_cannot_model_are_refused(source: str) -> None:
    with pytest.raises(UnsupportedPattern):
        analyze_pattern(source)


def test_relaxation_never_misses_a_match() -> None:
    """Removing assertions only relaxes: wherever the pattern matches, the relaxation does."""
    import regex

    rng = random.Random(3)
    sources = [r"(?<!\d)1[3-9]\d{9}(?!\d)", r"\b\d{6}\b", r"x(?=y)", r"(?<![A-Z])[A-Z]\d{2}"]
    for source in sources:
        pattern = regex.compile(source)
        relaxed = regex.compile(analyze_pattern(source).relaxed)
        for _ in range(300):
            text = "".join(rng.choice("0123456789xyAB ") for _ in range(rng.randint(0, 20)))
            for m in pattern.finditer(text):
                assert relaxed.match(text, m.start()) is not None


def test_scanner_pickles_without_engine_or_workers(patterns: FastScanner) -> None:
    import pickle

    clone = pickle.loads(pickle.dumps(patterns))
    assert clone.scan(EDGE_TEXTS[0]) == patterns.scan(EDGE_TEXTS[0])


def test_unused_path_reports_itself(patterns: FastScanner, tmp_path: Path) -> None:
    described = patterns.describe()
    assert described["context_inert"] is True and described["other"] == []
    assert patterns.exact_fast_path
