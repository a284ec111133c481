"""Rule layer for PRC addresses: 省/市/区 + 路/街 + 号 + 楼/幢/单元/室, as registries write them.

News-trained NER tags the administrative part well (杭州市 / 萧山区 are LOC) but splits the
rest: "2312室", "B座", "5层" come back as numbers and nouns. Starting from the model's place
spans and from road names followed by a house number, this layer grows each candidate to the
right over further places, road names and number+unit parts, then decides whether the result
is a specific address (CN_ADDRESS: finer than a district) or just a place (LOCATION). Named
facilities the model leaves untagged (交通茶馆, 余家头小区) and building numbers with no place
before them (9号楼1单元1302室) are candidates too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pdo.privacy.ner.base import CN_ADDRESS, LOCATION, ORGANIZATION, PERSON, Span
from pdo.privacy.ner.lexicon import (
    ADMIN_SUFFIXES,
    COMMUNITY_SUFFIXES,
    FACILITY_WORDS,
    NUMBER_UNITS,
)

if TYPE_CHECKING:
    from pdo.privacy.ner.tokens import Token

ADDRESS_SCORE = 0.9  # a place chain with a road or a house number is rarely anything else
PLACE_SCORE = 0.85

_HAN = r"\u4e00-\u9fff"
_DIGITS = r"(?<![0-9０-９])[0-9０-９]{1,5}"  # house numbers; longer runs are phone or case numbers
_CN_NUM = r"[一二三四五六七八九十百零〇]+"
_NUM = rf"(?:{_DIGITS}|{_CN_NUM})"
# 号 ends a house number, not 5号线 (a metro line), 3号令, 1号文.
_UNITS = "|".join(
    "号(?![线令文码召称机])" if unit == "号" else unit
    for unit in sorted(NUMBER_UNITS, key=len, reverse=True)
)
# With Chinese numerals only the unambiguous units: 三号楼, 二楼, 一单元, 五组 — not 四座 (four
# bridges), 九层 (a nine-storey pagoda), 五区 (five districts), where they are measure words.
_CN_UNITS = "号楼|号院|号(?![线令文码召称机])|单元|楼|室|组"
# An estate's phase counts only before a building in it: 三期b座, not 公园二期 (a project phase).
_PHASE = rf"{_NUM}期(?=[0-9０-９A-Za-zＡ-Ｚａ-ｚ一二三四五六七八九十])"
_PART = (
    rf"(?:(?:{_DIGITS}(?:[-－—]{_DIGITS})?|[A-Za-zＡ-Ｚａ-ｚ][0-9０-９]{{0,5}})(?:{_UNITS})"
    rf"|{_CN_NUM}(?:{_CN_UNITS})|{_PHASE})"
)
_ID = rf"(?:{_DIGITS}(?:[-－—]{_DIGITS})?|[A-Za-zＡ-Ｚａ-ｚ][0-9０-９]*)"
# One or more "identifier + unit" parts, then maybe a bare room number ("3单元1002").
TAIL = re.compile(rf"{_PART}+(?:[0-9０-９]{{2,5}}(?![0-9０-９]))?")
# 路 / 街 end a road name, not a word like 路桥 (road and bridge works) or 街道 (a sub-district).
_ROADS = r"大道|大街|公路|胡同|路(?![桥政灯面况径线标牌段])|街(?![道头坊])|巷|弄"
ROAD_END = re.compile(rf"(?:{_ROADS})$")
# Inside a candidate: a road or lane, a house number, a community, an administrative unit.
# A road has a name of its own: "余杭区路记便利店" is 余杭区 + 路记 (a shop), not a road.
_HAS_ROAD = re.compile(rf"[{_HAN}0-9](?<![省市区县旗镇乡州])(?:{_ROADS})")
# Words ending in 路 that are not roads: 铁路 (railway), 线路, 道路, 电路, 网路, 思路, 水路 ...
_NOT_ROAD = re.compile(r"[铁线道电网思水陆出销门航套来去走一半]路")
_HAS_NUMBER = re.compile(_PART)
_HAS_COMMUNITY = re.compile(
    "|".join(s for s in COMMUNITY_SUFFIXES if s not in ("中心", "广场", "商务区", "开发区"))
)
# 州 alone (杭州, 广州) names a city in running text but also ends brand words; 自治州 counts.
_HAS_ADMIN = re.compile("|".join(s for s in ADMIN_SUFFIXES if s != "州"))
# After a place chain: a road name reached within a few characters, then a house number.
_ROAD_AHEAD = re.compile(rf"[{_HAN}]{{1,6}}?(?:{_ROADS})(?={_NUM})")
# After a place chain: a named building or compound ("竹围移动大楼", "蓝桥名苑").
_BUILDING_AHEAD = re.compile(
    rf"[{_HAN}A-Za-z0-9]{{1,8}}?(?:大厦|大楼|广场|花园|家园|小区|公寓|新村|名苑|社区|村)"
    rf"(?![{_HAN}])|[{_HAN}A-Za-z0-9]{{1,8}}?(?:大厦|大楼|广场|花园|家园|小区|公寓|新村|名苑|社区)"
    rf"(?={_PART})"
)
# Before a house or floor number, a few words of place may follow a place: "广渠" + "门外" +
# "10号", "朝天宫" + "古玩市场" + "一楼" (not "上海" + "队" + "10号", a shirt number).
_GAP_TAGS = frozenset({"n", "nz", "nw", "s", "f", "LOC", "ORG"})
_GAP_MAX_CHARS = 6
_GAP_PLACE_WORDS = (
    *FACILITY_WORDS,
    *COMMUNITY_SUFFIXES,
    *("市场", "商场", "商城", "校区", "城", "楼", "门外", "门内"),
)
# Building parts with no place before them: "9号楼1单元13楼166号", "12幢7单元".
_BUILDING_UNIT = re.compile("楼|栋|幢|单元|室|座|层")
_UNIT_CHAIN = re.compile(rf"(?:{_PART}){{2,}}(?:[0-9０-９]{{2,5}}(?![0-9０-９]))?")
# Roads named by a number: 62号大街, 1号公路.
_NUMBERED_ROAD = re.compile(rf"{_DIGITS}号(?:大街|大道|公路|路|街(?![道头坊]))")
_NOT_IN_BUILDING_TAGS = frozenset(
    {"v", "vd", "d", "ad", "p", "u", "uj", "ul", "c", "r", "w", "x", "PER"}
)
_WORD_PART = re.compile(rf"[{_HAN}A-Za-z0-9]+")
# Tokens that may continue a place chain on their own: "首南" + "街道", "婺江" + "巷".
_SUFFIX_WORDS = frozenset(
    (*ADMIN_SUFFIXES, *COMMUNITY_SUFFIXES, *"路街巷弄", "大道", "大街", "胡同")
) | {direction + "路" for direction in "东南西北中"}
# Tags that never belong inside an address (verbs, prepositions, particles, punctuation).
_BREAK_TAGS = frozenset({"v", "vd", "vn", "p", "u", "uj", "ul", "c", "w", "x", "r", "d", "PER"})
# A facility word tagged as one of these is a count or a date, not a place: 四家酒店.
_NOT_FACILITY_TAGS = frozenset({"m", "q", "TIME"})


def _road(value: str) -> re.Match[str] | None:
    """The first real road in value ("铁路" is a railway, not a road)."""
    for m in _HAS_ROAD.finditer(value):
        if not _NOT_ROAD.match(value, m.start()):
            return m
    return None


def is_specific_address(value: str) -> bool:
    """Finer than a district: a house number, or a road / community under an admin unit."""
    if _HAS_NUMBER.search(value):
        return True
    local = _road(value) or _HAS_COMMUNITY.search(value)
    return bool(local and _HAS_ADMIN.search(value[: local.start() + 1]))


def _road_seeds(text: str, tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """Road names (by token) directly followed by a house number: 南京路86号."""
    seeds: list[tuple[int, int]] = []
    for i, token in enumerate(tokens):
        if token.tag in _BREAK_TAGS or not ROAD_END.search(token.word):
            continue
        start = token.start
        if len(token.word) == 1 and i > 0:  # "科苑" + "路": take the name before the suffix
            before = tokens[i - 1]
            if before.end != token.start or before.tag in _BREAK_TAGS:
                continue
            if not _WORD_PART.fullmatch(before.word):
                continue
            start = before.start
        elif len(token.word) == 1:
            continue
        if TAIL.match(text, token.end):
            seeds.append((start, token.end))
    return seeds


def _number_seeds(text: str) -> list[tuple[int, int]]:
    """Addresses that start with a number: building parts (9号楼1单元), numbered roads."""
    seeds = [
        (m.start(), m.end()) for m in _UNIT_CHAIN.finditer(text) if _BUILDING_UNIT.search(m.group())
    ]
    return seeds + [(m.start(), m.end()) for m in _NUMBERED_ROAD.finditer(text)]


def _place_words_then_number(text: str, end: int, tokens_at: dict[int, Token]) -> int | None:
    """End of the number after a few place words that follow a place (门外 + 10号)."""
    pos = end
    while (token := tokens_at.get(pos)) is not None and token.tag in _GAP_TAGS:
        if token.end - end > _GAP_MAX_CHARS:
            return None
        pos = token.end
        tail = TAIL.match(text, pos)
        if tail and (token.tag in ("s", "f") or token.word.endswith(_GAP_PLACE_WORDS)):
            return tail.end()
    return None


def _grow(
    text: str, start: int, end: int, places: dict[int, int], tokens_at: dict[int, Token]
) -> int:
    """Extend end over adjacent places, suffix words, roads ahead and number+unit tails."""
    while end < len(text):
        if end in places:
            end = places[end]
            continue
        tail = TAIL.match(text, end)
        if tail:
            end = tail.end()
            continue
        token = tokens_at.get(end)
        if token is not None and token.word in _SUFFIX_WORDS:
            end = token.end
            continue
        road = _ROAD_AHEAD.match(text, end)
        if road and all(c not in "的在于和与及住" for c in road.group()):
            end = road.end()
            continue
        numbered = _place_words_then_number(text, end, tokens_at)
        if numbered is not None:
            end = numbered
            continue
        building = _BUILDING_AHEAD.match(text, end)
        if building and not any(
            t.tag in _NOT_IN_BUILDING_TAGS
            for i in range(end, building.end())
            if (t := tokens_at.get(i)) is not None
        ):
            end = building.end()
            continue
        break
    return end


_ADMIN_END_CHARS = frozenset("省市区县旗镇乡州")
_ROAD_OR_NUMBER = re.compile(rf"(?:{_ROADS})(?:{TAIL.pattern})?|{TAIL.pattern}")


def split_org_addresses(text: str, spans: Sequence[Span]) -> list[Span]:
    """An organisation name that starts with a road or a house number starts with an address:
    "北京市海淀区翠微路" + "瑞诚大酒店", "南京路86号" + "中青网络家园". Without the split, the
    address would be kept along with the (non-personal) organisation name."""
    out: list[Span] = []
    for span in spans:
        if span.entity != ORGANIZATION:
            out.append(span)
            continue
        value = span.text(text)
        cut = 0
        for m in _ROAD_OR_NUMBER.finditer(value):
            named = (
                m.start() > 0
                and value[m.start() - 1] not in _ADMIN_END_CHARS
                and not _NOT_ROAD.match(value, m.start() - 1)
            )
            if named and m.end() >= 3 and len(value) - m.end() >= 2:
                cut = m.end()
        if not cut:
            out.append(span)
            continue
        prefix = value[:cut]
        entity = CN_ADDRESS if is_specific_address(prefix) else LOCATION
        score = ADDRESS_SCORE if entity == CN_ADDRESS else PLACE_SCORE
        out.append(Span(entity, span.start, span.start + cut, score))
        out.append(Span(ORGANIZATION, span.start + cut, span.end, span.score))
    return out


# An administrative chain, a road and a house number, from a known start (an entity's first
# character or right after 住所 / 位于 / 在): found even where the model cut the chain in pieces
# ("杭州市西湖区学院" ORG + "大道48号" + "2楼").
_ADMIN_CHAIN = (
    rf"(?:[{_HAN}]{{2,7}}?(?:省|自治区))?(?:[{_HAN}]{{2,7}}?(?:市|自治州|地区|盟))?"
    rf"(?:[{_HAN}]{{1,7}}?(?:区|县|市|旗))?(?:[{_HAN}]{{1,7}}?(?:镇|乡|街道))?"
)
_STREET_ADDRESS = re.compile(rf"{_ADMIN_CHAIN}[{_HAN}0-9]{{1,10}}?(?:{_ROADS})(?:{TAIL.pattern})")
_NOT_IN_ADDRESS = frozenset("的在住是对从向把被")
_ADDRESS_TRIGGERS = re.compile(r"(?:住所|住址|地址|家住|住在|位于|坐落于|在|于|至)[：:\s]*")


def street_addresses(text: str, tokens: Sequence[Token], spans: Sequence[Span]) -> list[Span]:
    """Road + house-number addresses starting where an entity or an address trigger starts."""
    starts = {s.start for s in spans if s.entity != PERSON}
    starts |= {m.end() for m in _ADDRESS_TRIGGERS.finditer(text)}
    places = {s.start: s.end for s in spans if s.entity in (LOCATION, CN_ADDRESS)}
    tokens_at = {t.start: t for t in tokens}
    out: list[Span] = []
    covered = -1
    for start in sorted(starts):
        if start <= covered:
            continue
        m = _STREET_ADDRESS.match(text, start)
        if m is None or _NOT_IN_ADDRESS.intersection(m.group()):
            continue
        end = _grow(text, start, m.end(), places, tokens_at)
        out.append(Span(CN_ADDRESS, start, end, ADDRESS_SCORE))
        covered = end
    return out


def address_spans(text: str, tokens: Sequence[Token], spans: Sequence[Span]) -> list[Span]:
    """Place and address spans grown from the model's places and from road + number seeds."""
    places = {s.start: s.end for s in spans if s.entity in (LOCATION, CN_ADDRESS)}
    tokens_at = {t.start: t for t in tokens}
    seeds = sorted(set(places.items()) | set(_road_seeds(text, tokens)) | set(_number_seeds(text)))
    out: list[Span] = []
    covered = -1
    for start, end in seeds:
        if start < covered:
            continue
        end = _grow(text, start, end, places, tokens_at)
        covered = end
        entity = CN_ADDRESS if is_specific_address(text[start:end]) else LOCATION
        score = ADDRESS_SCORE if entity == CN_ADDRESS else PLACE_SCORE
        out.append(Span(entity, start, end, score))
    return out


_FACILITY_END = re.compile("(?:" + "|".join(sorted(FACILITY_WORDS, key=len, reverse=True)) + ")$")
# Words that may name a facility: nouns, proper nouns, entities (塞拉图 PER + 哨所).
_FACILITY_NAME_TAGS = frozenset({"n", "nz", "nw", "PER", "ORG", "LOC"})
_FACILITY_MAX_CHARS = 10
_FACILITY_NAME_TOKENS = 2


def _facility_start(tokens: Sequence[Token], i: int, word: str) -> int | None:
    """Start of the name in front of facility word `word` that ends tokens[i], if any."""
    head = tokens[i]
    start = head.start if len(head.word) - len(word) >= 2 else None
    j = i
    while (
        j > 0
        and i - j < _FACILITY_NAME_TOKENS
        and tokens[j - 1].end == tokens[j].start
        and tokens[j - 1].tag in _FACILITY_NAME_TAGS
        and _WORD_PART.fullmatch(tokens[j - 1].word)
        and head.end - tokens[j - 1].start <= _FACILITY_MAX_CHARS
    ):
        j -= 1
        if head.end - len(word) - tokens[j].start >= 2:
            start = tokens[j].start
    return start


def facility_spans(tokens: Sequence[Token]) -> list[Span]:
    """Named facilities and compounds the model reads as plain nouns or as a name: 交通 + 茶馆,
    星域 + 网吧, 中友百货, 塞拉图 + 哨所 are places."""
    out: list[Span] = []
    for i, token in enumerate(tokens):
        if token.tag in _BREAK_TAGS or token.tag in _NOT_FACILITY_TAGS:
            continue
        m = _FACILITY_END.search(token.word)
        if m is None:
            continue
        start = _facility_start(tokens, i, m.group())
        if start is not None:
            out.append(Span(LOCATION, start, token.end, PLACE_SCORE))
    return out
