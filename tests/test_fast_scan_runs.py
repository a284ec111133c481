"""The fast scanner's run machinery and checksum fast paths give exactly the plain results."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from presidio_analyzer import AnalyzerEngine

from pdo.privacy import checksums
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.checksums import resident_id_check_char, uscc_check_char
from pdo.privacy.fastscan import FastScanner, Result
from pdo.privacy.fastscan.patterns import analyze_pattern
from pdo.privacy.fastscan.runs import Joined, Runs
from pdo.privacy.recognizers import LANGUAGE

RID = "11010519491231002" + resident_id_check_char("11010519491231002")
USCC = "91330106MA2CFXXX0" + uscc_check_char("91330106MA2CFXXX0")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# Label characters next to digits, separators the scanner itself uses, full-width forms,
# runs repeated in one text or hidden inside longer runs, several findings in one run.
TRICKY = [
    "台胞证12345678",
    "台胞证号码：12345678，台湾居民来往大陆通行证号 87654321",
    "台湾居民来往大陆通行证：\u300012345678",
    "台胞 证12345678",  # not the label: 台 and 证 apart
    "证台12345678",
    "平台证明12345678",
    f"号码：{RID}）号码：13812345678）",
    f"身份证号码{RID}，又{RID}",
    "A13812345678，13812345678，13812345678",  # the run inside a longer run comes first
    "x13812345678y 13812345678",
    "13812345678\x0013912345678",
    "13812345678\uffff13912345678",
    "\x00\x00号码：13812345678\x00",
    f"{RID}\x00{USCC}",
    f"统一社会信用代码{USCC}，组织机构代码MA2CFXXX-0",
    f"{USCC.lower()}；{RID.lower()}",
    "银行卡6222 0212 3456 7890 128，6222-0212-3456-7890-128",
    "卡号62220212345678901286222021234567890128",
    "电话0571-88886666转123，(0571)88886666，（010）12345678",
    "代码：057188886666，代码057188886666，0571888866661",
    "１３８１２３４５６７８，" + RID.translate(FULL_WIDTH),
    "浙A12345，浙A·12345，浙AD12345，粤B12345学",
    "IP 192.168.1.1，2001:db8::1，1.2.3.4，::",
    "邮箱 a.b@example.com，a@b",
    "护照E12345678，EA1234567，G12345678，注E12345678，字E12345678",
    "港澳通行证C12345678，H1234567890，M12345678",
    "1" * 40,
    "",
]


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerEngine:
    return build_analyzer(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def patterns(analyzer: AnalyzerEngine) -> FastScanner:
    return FastScanner(analyzer)


def _presidio(analyzer: AnalyzerEngine, text: str, entities: list[str]) -> list[Result]:
    found = analyzer.analyze(text=text, language=LANGUAGE, entities=entities)
    return [Result(r.entity_type, r.start, r.end, r.score) for r in found]


def test_one_batch_of_tricky_texts_equals_presidio(
    analyzer: AnalyzerEngine, patterns: FastScanner
) -> None:
    """All texts in one call: runs are shared between texts and mapped back to each."""
    rng = random.Random(5)
    texts = TRICKY + [a + "，" + b for a in TRICKY[:12] for b in rng.sample(TRICKY, 3)]
    entities = list(patterns.entities)
    assert patterns.scan_many(texts) == [_presidio(analyzer, t, entities) for t in texts]


def test_tricky_texts_do_find_things(patterns: FastScanner) -> None:
    found = {r.entity_type for results in patterns.scan_many(TRICKY) for r in results}
    assert {"CN_TRAVEL_PERMIT", "CN_RESIDENT_ID", "CN_MOBILE", "CN_USCC", "CN_LANDLINE"} <= found


def test_the_required_characters_select_the_runs_scanned(patterns: FastScanner) -> None:
    taiwan = [p for p in patterns._programs if "台胞证" in p.source]
    assert [p.required for p in taiwan] == [("台", "证")]


@pytest.mark.parametrize(
    ("source", "required"),
    [
        (r"(?<=(?:台胞证|台湾居民证)(?:号码)?[：:]?)[0-9]{8}", {"台", "证"}),
        (r"(?<!台胞证)[0-9]{8}", set()),  # a negative lookaround requires nothing
        (r"x(?=y)z?", {"x", "y"}),
        (r"(?:ab|cb){2}", {"b"}),
        (r"a?b*c{0}d{1,}", {"d"}),
        (r"(?:[0-9]{1,3}\.){3}", {r"\."}),
        (r"[台][0-9]", set()),  # classes are not literals
        (r"(?i)abc", set()),  # inline flags: nothing is claimed
    ],
)
def test_required_literals(source: str, required: set[str]) -> None:
    assert set(analyze_pattern(source).required) == required


def test_runs_select_the_prefix_and_the_runs_with_a_rare_character() -> None:
    filler = [str(1000 + i) for i in range(20)]
    labelled = ["台胞证12345678", "证号12345678", "台9", "证1"]
    runs = Runs(["12", "123456789", *labelled, *filler], "\x00")
    assert runs.parts[0] == "台胞证12345678"
    assert runs.at_least(9) == 3
    assert runs.text[: runs.end(3)] == "台胞证12345678\x00证号12345678\x00123456789"
    chosen = runs.containing(len(runs.parts), ("证", "台"))  # by 台, the rarer
    assert [runs.parts[i] for i in chosen or []] == ["台胞证12345678", "台9"]
    assert runs.containing(3, ("台",)) is None  # 1 run in 3: not worth selecting by
    assert runs.containing(len(runs.parts), ("1",)) is None
    assert runs.containing(len(runs.parts), ()) is None
    assert runs.containing(len(runs.parts), ("胞", "@")) == []
    joined = Joined(["ab", "", "cde"], "\x00")
    assert [joined.locate(i) for i in (0, 1, 3, 4, 6)] == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 2)]


def test_a_run_is_located_where_it_stands_alone(patterns: FastScanner) -> None:
    text = "A13812345678，13812345678"
    assert patterns._finder.position(text, "13812345678", 0) == 13


# -- checksums: the fast paths against the definitions ---------------------------------------


def _reference_rid_check(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def _reference_resident_id(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdecimal() or value[17].upper() not in "10X98765432":
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100 and _reference_rid_check(value[:17]) == value[17].upper()


def _reference_legacy(value: str) -> bool:
    if len(value) != 15 or not value.isdecimal():
        return False
    try:
        dt.date(1900 + int(value[6:8]), int(value[8:10]), int(value[10:12]))
    except ValueError:
        return False
    return True


def _reference_uscc(code: str) -> bool:
    alphabet = checksums.USCC_ALPHABET
    if len(code) != 18 or any(c not in alphabet for c in code):
        return False
    total = sum(alphabet.index(c) * 3**i for i, c in enumerate(code[:17]))
    return alphabet[-total % 31] == code[17]


def _reference_luhn(digits: str) -> bool:
    if not digits.isdecimal():
        return False
    doubled = [int(c) * (1 + i % 2) for i, c in enumerate(reversed(digits))]
    return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0


def _reference_org_code(code: str) -> bool:
    alphabet = checksums.ORG_CODE_ALPHABET
    if len(code) != 9 or any(c not in alphabet for c in code[:8]):
        return False
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    check = 11 - sum(alphabet.index(c) * w for c, w in zip(code, weights, strict=False)) % 11
    return code[8] == {10: "X", 11: "0"}.get(check, str(check))


def _candidates(rng: random.Random) -> list[str]:
    """Valid and nearly valid identifiers, in ASCII, full-width and Arabic-Indic digits."""
    body = f"{rng.randint(100000, 999999)}{rng.randint(1890, 2110)}"
    body += f"{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}"
    uscc = "".join(rng.choice(checksums.USCC_ALPHABET) for _ in range(17))
    card = "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 19)))
    plain = [
        body + resident_id_check_char(body),
        body + rng.choice("0123456789Xx"),
        uscc + uscc_check_char(uscc),
        uscc + rng.choice(checksums.USCC_ALPHABET),
        card,
        body[:6] + body[8:17],
        "".join(rng.choice("0123456789ABXZ-a ") for _ in range(rng.choice([8, 9, 15, 18]))),
    ]
    arabic = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    return plain + [v.translate(FULL_WIDTH) for v in plain] + [v.translate(arabic) for v in plain]


def test_checksum_fast_paths_equal_the_definitions() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        for value in _candidates(rng):
            assert checksums.is_valid_resident_id(value) == _reference_resident_id(value), value
            assert checksums.is_valid_uscc(value) == _reference_uscc(value), value
            assert checksums.luhn_ok(value) == _reference_luhn(value), value
            assert checksums.is_valid_org_code(value[:9]) == _reference_org_code(value[:9])
            legacy = value[:15]
            assert checksums.is_valid_legacy_resident_id(legacy) == _reference_legacy(legacy)
            if len(value) >= 17 and value[:17].isdecimal():
                assert resident_id_check_char(value[:17]) == _reference_rid_check(value[:17])


def test_check_characters_still_refuse_what_they_cannot_read() -> None:
    with pytest.raises(ValueError):
        resident_id_check_char("1234")
    with pytest.raises(ValueError):
        resident_id_check_char("1234567890123456A")
    with pytest.raises(ValueError):
        uscc_check_char("I" * 17)
