"""Rule layer for people, places and organisations on top of a model's spans.

- a name right after a role title ("法定代表人：粟帅", "经营者：由帅", "总裁和广北"), right
  before identity details ("申健（身份证号码…）"), before a colon at the start of a line
  ("姜山：..."), or marked "（化名）" is a PERSON even where the model said something else;
- a name found once is a name everywhere in the same text;
- Latin names tied to a name are people too: "沃尔贝克（gertjanverbeek）", "Sky(李晓峰)",
  "ryze和aze";
- a name followed by a place word is a place ("范登堡空军基地"), and organisation-tagged
  venues are places ("金泰地产大厦", "北海宾馆"); so is a "name" ending like a place ("阮冲村")
  or one the sentence puts somewhere ("留在安菲尔德", "在中国电竞馆举行", "马久邑附近");
- registered business names are organisations: an administrative place chain + trade name +
  suffix ("杭州市" + "西湖区" + "创优" + "小吃店"), and 字号（行政区划）行业 + 组织形式
  ("睿凤（杭州）五金有限公司", whose brand LAC would otherwise read as a person's name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pdo.privacy.ner.base import CN_ADDRESS, LOCATION, ORGANIZATION, PERSON, Span
from pdo.privacy.ner.lexicon import (
    COMPOUND_SURNAMES,
    NAME_FOLLOWERS,
    NAMED_PLACE_SUFFIXES,
    ORG_SUFFIXES,
    PLACE_NAME_ENDINGS,
    ROLE_TITLES,
    SURNAMES,
    VAGUE_ORG_SUFFIXES,
    VENUE_SUFFIXES,
)

if TYPE_CHECKING:
    from pdo.privacy.ner.tokens import Token

RULE_PERSON_SCORE = 0.8
PROPAGATED_SCORE = 0.75
RULE_ORG_SCORE = 0.8

_HAN = re.compile(r"[\u4e00-\u9fff]")
_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + "|[" + "".join(sorted(SURNAMES)) + "])"
_ROLES = "|".join(sorted(ROLE_TITLES, key=len, reverse=True))
_FOLLOWERS = "|".join(sorted(NAME_FOLLOWERS, key=len, reverse=True))
# Role title, optional colon, then a surname and up to two given-name characters.
_AFTER_ROLE = re.compile(rf"(?:{_ROLES})[：:\s]*(?={_SURNAME})")
# "姜山：" at the start of a line or after a sentence end; "【朱克】：" too.
_SPEAKER = re.compile(
    rf"(?:^|(?<=[\n。！？；!?】\]]))\s*[【\[]?(?P<name>{_SURNAME}[\u4e00-\u9fff]{{1,2}})[】\]]?[：:]"
)
# "申健（身份证号码…）", "张三（男，…）": an identity detail in brackets follows a name.
_BEFORE_ID_DETAILS = re.compile(
    r"(?=[（(](?:身份证|公民身份|居民身份|证件号|电话|手机|联系电话|联系方式|男|女|曾用名|化名))"
)
# "钱海洋（化名）": news marks a changed name, which is still a name.
_ALIAS_MARK = re.compile(r"(?P<name>[\u4e00-\u9fff]{2,3})[（(](?:化名|音|假名)[）)]")
_BOUNDARY = re.compile(rf"(?:$|[^\u4e00-\u9fff]|{_FOLLOWERS})")
_FOLLOWER = re.compile(_FOLLOWERS)
# A Latin alias in brackets; news cuts sentences mid-bracket, so the close may be missing.
_ALIAS = re.compile(r"\s*[（(]\s*([A-Za-z][A-Za-z .·•'\-]{1,40}?)\s*(?:[）),，]|$)")
_LATIN_NAME = r"(?P<name>(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]{1,20})"
_HANDLE_BEFORE = re.compile(_LATIN_NAME + r"\s*[（(]$")
_LATIN_LISTED_BEFORE = re.compile(_LATIN_NAME + r"\s*(?:[、和与及]|或者?)$")
_LATIN_LISTED_AFTER = re.compile(
    r"\s*(?:[、和与及]|或者?)\s*(?P<name>[A-Za-z][A-Za-z0-9]{1,20})(?![A-Za-z0-9])"
)
# After a role title: a Latin given name or handle ("创意总监Eric", "选手Sky").
# Registry and enforcement roles name a person next, whatever the surname: "经营者：亓帅；".
_DOC_ROLES = "法定代表人|经营者|投资人|户主|被执行人|申请执行人|委托代理人|联系人|负责人"
_AFTER_DOC_ROLE = re.compile(
    rf"(?:{_DOC_ROLES})[：:]?(?P<name>[\u4e00-\u9fff]{{2,3}})(?=[，,；;。）)（(、\s]|$)"
)
_NOT_NAMES = frozenset(("介绍", "认为", "表示", "称", "指出", "透露", "签字"))
_LATIN_AFTER_ROLE = re.compile(
    rf"(?:{_ROLES})[：:\s]*(?P<name>[A-Za-z][A-Za-z0-9]{{1,24}})(?![A-Za-z0-9])"
)
# Between a name and a place word: at most a few characters that are not function words.
_NAMED_PLACE = re.compile(
    r"[·•\u4e00-\u9fff]{0,4}?(?:"
    + "|".join(sorted(NAMED_PLACE_SUFFIXES, key=len, reverse=True))
    + ")"
)
_NOT_IN_PLACE_NAME = frozenset("的在到去和与从于回进出是被把对向给为了着过也都又")
_COMPOUND = re.compile("|".join(COMPOUND_SURNAMES))


def _name_at(text: str, start: int, token_ends: set[int]) -> int | None:
    """End of the name that starts at start (surname + one or two chars), if it is clear."""
    surname = 2 if _COMPOUND.match(text, start) else 1
    one, two = start + surname + 1, start + surname + 2
    # "李和平，" is a three-character name; "李成说，" is 李成 followed by 说.
    if (
        two <= len(text)
        and all(_HAN.match(c) for c in text[start:two])
        and _BOUNDARY.match(text, two)
        and not _FOLLOWER.match(text, one)
    ):
        return two
    if (
        one <= len(text)
        and all(_HAN.match(c) for c in text[start:one])
        and _BOUNDARY.match(text, one)
    ):
        return one
    for given in (2, 1):  # no clear boundary: trust the tokenizer's word ends
        end = start + surname + given
        if end in token_ends and end <= len(text):
            return end
    return None


def _name_before(text: str, end: int, token_starts: set[int]) -> int | None:
    """Start of the name (surname + one or two chars) that ends at end, if it is clear."""
    for length in (3, 2):
        start = end - length
        if start < 0 or not all(_HAN.match(c) for c in text[start:end]):
            continue
        surname_ok = text[start] in SURNAMES or _COMPOUND.match(text, start)
        clear_start = start == 0 or not _HAN.match(text[start - 1]) or start in token_starts
        if surname_ok and clear_start:
            return start
    return None


def person_rule_spans(text: str, tokens: Sequence[Token]) -> list[Span]:
    """Names marked by their context: role titles, speaker labels, identity details."""
    token_ends = {t.end for t in tokens}
    token_starts = {t.start for t in tokens}
    found: list[Span] = []
    for m in _BEFORE_ID_DETAILS.finditer(text):
        start = _name_before(text, m.start(), token_starts)
        if start is not None:
            found.append(Span(PERSON, start, m.start(), RULE_PERSON_SCORE))
    for m in _AFTER_ROLE.finditer(text):
        end = _name_at(text, m.end(), token_ends)
        if end is not None:
            found.append(Span(PERSON, m.end(), end, RULE_PERSON_SCORE))
    for m in _AFTER_DOC_ROLE.finditer(text):
        if not _FOLLOWER.match(m.group("name")) and m.group("name") not in _NOT_NAMES:
            found.append(Span(PERSON, m.start("name"), m.end("name"), RULE_PERSON_SCORE))
    for m in _SPEAKER.finditer(text):
        found.append(Span(PERSON, m.start("name"), m.end("name"), RULE_PERSON_SCORE))
    for m in _ALIAS_MARK.finditer(text):
        found.append(Span(PERSON, m.start("name"), m.end("name"), RULE_PERSON_SCORE))
    for m in _LATIN_AFTER_ROLE.finditer(text):
        found.append(Span(PERSON, m.start("name"), m.end("name"), RULE_PERSON_SCORE))
    return found


def named_places(text: str, spans: Iterable[Span]) -> list[Span]:
    """A name followed by a place word is a place named after someone: 范登堡空军基地."""
    out: list[Span] = []
    for s in spans:
        if s.entity != PERSON:
            continue
        m = _NAMED_PLACE.match(text, s.end)
        if m and not _NOT_IN_PLACE_NAME.intersection(m.group()):
            out.append(Span(LOCATION, s.start, m.end(), s.score))
    return out


def misread_places(text: str, spans: Iterable[Span]) -> list[Span]:
    """A "name" of three or more characters ending like a place (阮冲村, 于玉几岛) is a place."""
    return [
        Span(LOCATION, s.start, s.end, s.score)
        if s.entity == PERSON and s.end - s.start >= 3 and text[s.end - 1] in PLACE_NAME_ENDINGS
        else s
        for s in spans
    ]


# Where things are held or where one goes: "在中国电竞馆举行", "留在安菲尔德", "马久邑附近".
_VENUE_BEFORE = re.compile(r"(?:在|于)$")
_VENUE_AFTER = re.compile(r"举行|举办|召开|开幕|揭幕|闭幕|落幕|开赛")
_GOES_TO = re.compile(
    r"(?:位于|坐落于|地处|前往|抵达|到达|飞往|直飞|途经|留在|远赴|赶赴|赶往|去往|移居|定居)$"
)
_PERSON_PLACE = re.compile(r"家|身边|身旁|面前|身后|处|那里|这里|那儿|这儿|手")
_PLACE_AFTER = re.compile(r"附近|境内|一带|市区|郊区|近郊|以北|以南|以东|以西")


def _in_place_frame(text: str, span: Span) -> bool:
    """Whether the words around span say it is a place (a person is not "held at")."""
    before = text[max(0, span.start - 3) : span.start]
    if _VENUE_BEFORE.search(before) and _VENUE_AFTER.match(text, span.end):
        return True
    if span.entity != PERSON:
        return False
    if _PLACE_AFTER.match(text, span.end):
        return True
    return bool(_GOES_TO.search(before)) and not _PERSON_PLACE.match(text, span.end)


def places_by_context(text: str, spans: Iterable[Span]) -> list[Span]:
    """Names and organisations that the sentence puts somewhere are places: venues of events,
    destinations (飞往, 留在 ...), things with surroundings (附近, 境内)."""
    return [
        Span(LOCATION, s.start, s.end, s.score)
        if s.entity in (PERSON, ORGANIZATION) and _in_place_frame(text, s)
        else s
        for s in spans
    ]


def propagate_names(text: str, spans: Iterable[Span]) -> list[Span]:
    """Every other occurrence of a detected name (two or more characters) in the same text."""
    names = {s.text(text) for s in spans if s.entity == PERSON and s.end - s.start >= 2}
    taken = {(s.start, s.end) for s in spans if s.entity == PERSON}
    out: list[Span] = []
    for name in names:
        if not name.strip():
            continue
        for m in re.finditer(re.escape(name), text):
            if (m.start(), m.end()) not in taken:
                out.append(Span(PERSON, m.start(), m.end(), PROPAGATED_SCORE))
    return out


def alias_spans(text: str, spans: Iterable[Span]) -> list[Span]:
    """Latin names tied to a detected name: a bracketed alias after it ("保罗·盖蒂（j.paulgetty）"),
    a handle before its bracketed real name ("Sky(李晓峰)"), a Latin item listed with it
    ("ryze和aze", "小苍、BBC、MagicYang、雪妍")."""
    people = [s for s in spans if s.entity == PERSON]
    out: list[Span] = []
    for s in people:
        m = _ALIAS.match(text, s.end)
        if m:
            out.append(Span(PERSON, m.start(1), m.end(1), s.score))
        for pattern in (_HANDLE_BEFORE, _LATIN_LISTED_BEFORE):
            m = pattern.search(text, max(0, s.start - 30), s.start)
            if m and m.end() == s.start:
                out.append(Span(PERSON, m.start("name"), m.end("name"), PROPAGATED_SCORE))
        m = _LATIN_LISTED_AFTER.match(text, s.end)
        if m:
            out.append(Span(PERSON, m.start("name"), m.end("name"), PROPAGATED_SCORE))
    return out


def venues_to_places(text: str, spans: Iterable[Span]) -> list[Span]:
    """Organisation-tagged buildings, venues and parks become places."""
    return [
        Span(LOCATION, s.start, s.end, s.score)
        if s.entity == ORGANIZATION and s.text(text).endswith(VENUE_SUFFIXES)
        else s
        for s in spans
    ]


# Words that cannot continue an organisation name after a place ("创优" v + "小吃店" n can).
_NOT_ORG_PART_TAGS = frozenset(
    {"w", "x", "p", "u", "uj", "ul", "uz", "ud", "c", "r", "m", "q", "f", "xc"} | {"TIME", "ORG"}
)  # a PER token may be a trade name: "杭州市上城区" + "翔星" + "供应链店"
_ORG_MAX_CHARS = 24
_ADMIN_UNIT = re.compile("省|市|区|县|旗|镇|乡|州")
_VERB_TAGS = frozenset({"v", "vd", "vn", "ad", "d"})
_CLAUSE_VERBS = frozenset({"设立", "成立", "举办", "承办", "创办", "开设", "位于", "拥有", "共有"})
_HAN_WORD = re.compile(r"[\u4e00-\u9fff]+")


def org_suffix_spans(text: str, tokens: Sequence[Token], spans: Sequence[Span]) -> list[Span]:
    """A registered business name: an administrative place chain, then a trade name, then an
    organisation suffix — "杭州市" + "余杭区傅记贸易便利店" (LAC calls the shop a place),
    "杭州市" + "西湖区" + "创优" + "小吃店". News clauses ("济南设立分行", "武汉市举办") and
    venues ("北京展览馆") are left alone."""
    starts = {s.start for s in spans if s.entity == LOCATION}
    out: list[Span] = []
    for i, token in enumerate(tokens):
        if token.start not in starts:
            continue
        end = None
        admin = False
        name_chars = 0  # characters after the place chain
        for j, nxt in enumerate(tokens[i:], start=i):
            if (
                (j > i and nxt.tag in _NOT_ORG_PART_TAGS)
                or nxt.end - token.start > _ORG_MAX_CHARS
                or not _HAN_WORD.fullmatch(nxt.word)
                or (j > i and nxt.start != tokens[j - 1].end)
                or nxt.word in _CLAUSE_VERBS
            ):
                break
            in_chain = j == i or (nxt.tag == "LOC" and name_chars == 0)
            if in_chain:
                admin = admin or bool(_ADMIN_UNIT.search(nxt.word))
            if (
                admin
                and nxt.tag not in _VERB_TAGS
                and nxt.word.endswith(ORG_SUFFIXES)
                and (nxt.word not in VAGUE_ORG_SUFFIXES or name_chars >= 2)
                and not nxt.word.endswith(VENUE_SUFFIXES)
            ):
                end = nxt.end
            if not in_chain:
                name_chars += len(nxt.word)
        if end is not None:
            out.append(Span(ORGANIZATION, token.start, end, RULE_ORG_SCORE))
    return out


# PRC enterprise names: 字号（行政区划）行业 + 组织形式, e.g. "睿凤（杭州）五金有限公司".
_ORG_FORMS = "股份有限公司|有限责任公司|有限公司|合伙企业|集团|公司"
_BRACKETED_ORG = re.compile(
    rf"[（(][\u4e00-\u9fff]{{2,6}}[）)][\u4e00-\u9fff]{{0,16}}?(?:{_ORG_FORMS})"
)
_BRAND_MAX = 4


def bracketed_org_spans(text: str, tokens: Sequence[Token]) -> list[Span]:
    """Enterprise names with the place in brackets; the brand is the word(s) before "（"."""
    by_end = {t.end: t for t in tokens}
    out: list[Span] = []
    for m in _BRACKETED_ORG.finditer(text):
        start = m.start()
        token = by_end.get(start)
        while (
            token is not None
            and _HAN_WORD.fullmatch(token.word)
            and m.start() - token.start <= _BRAND_MAX
        ):
            start = token.start
            if m.start() - start >= 2:
                break
            token = by_end.get(start)
        if start < m.start():
            out.append(Span(ORGANIZATION, start, m.end(), RULE_ORG_SCORE))
    return out


# Masked or withheld names are no longer names: 张*, 李**, 罗×, 王某, 郭某某, 方xx.
_MASK_CHARS = frozenset("*＊×某○〇")
_LATIN_MASK = re.compile(r"[\u4e00-\u9fff][xX]+(?![A-Za-z])")
_X_MASK = re.compile(r"[xX]+(?![A-Za-z])")
_NAME_CHARS = re.compile(r"[\u4e00-\u9fffA-Za-z]")
# Document numbers (文号): 机关代字〔年份〕序号, e.g. 萧市监处罚〔2021〕14号, 杭环罚〔2024〕2号.
_DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,12}[〔\[［(（][0-9０-９]{4}[〕\]］)）][0-9０-９]+号")
# Court case numbers (案号): （2023）浙0109执860号, (2022)京01民终123号.
_CASE_NUMBER = re.compile(
    r"[〔\[［(（][0-9０-９]{4}[〕\]］)）][\u4e00-\u9fff]{1,2}[0-9０-９]{0,6}"
    r"[\u4e00-\u9fff]{1,4}[0-9０-９]+号(?:之[一二三四五六七八九十0-9]+)?"
)
# A trade name runs into the business it names: "林恒超市" + "店", "翔星" + "供应链店".
# A one-character suffix only counts at the end of the text or before punctuation: not 所说.
_TRADE_SUFFIX = re.compile(
    r"[\u4e00-\u9fff]{0,4}?(?:(?:"
    + "|".join(sorted((s for s in ORG_SUFFIXES if len(s) > 1), key=len, reverse=True))
    + r")|(?:"
    + "|".join(s for s in ORG_SUFFIXES if len(s) == 1)
    + r")(?![\u4e00-\u9fff]))"
)


_COMPOUND_SURNAMES = frozenset(COMPOUND_SURNAMES)


def whole_compound_names(text: str, spans: Iterable[Span], tokens: Sequence[Token]) -> list[Span]:
    """A person span that is only a compound surname (the model stopped at 司马 in
    "司马相如经营的…") takes its given name too: where it ends is read as for a name after a
    role title (a boundary, or the tokenizer's word end), and when that is unclear, up to two
    Han characters (a name half left costs more than a redacted word)."""
    token_ends = {t.end for t in tokens}
    out: list[Span] = []
    for s in spans:
        if s.entity == PERSON and s.text(text) in _COMPOUND_SURNAMES:
            end = _name_at(text, s.start, token_ends)
            if end is not None and not all(_HAN.match(c) for c in text[s.end : end]):
                end = None  # a word end after punctuation or a letter ("欧阳，男") is no name
            if end is None:
                end = s.end
                while end < min(len(text), s.end + 2) and _HAN.match(text[end]):
                    end += 1
            s = Span(PERSON, s.start, end, s.score)
        out.append(s)
    return out


def drop_non_names(text: str, spans: Iterable[Span]) -> list[Span]:
    """Last checks. Names and addresses inside a document or case number go; masked names
    go (张*, 王某, 方xx); a "name" that ends with an organisation suffix ("林祥供应链店") or,
    right after a district, runs into one ("上城区" + "林恒超市" + "店") is a trade name."""
    doc_numbers = [(m.start(), m.end()) for m in _DOC_NUMBER.finditer(text)]
    doc_numbers += [(m.start(), m.end()) for m in _CASE_NUMBER.finditer(text)]
    out: list[Span] = []
    for s in spans:
        if s.entity in (PERSON, CN_ADDRESS) and any(
            a <= s.start and s.end <= b for a, b in doc_numbers
        ):
            continue
        if s.entity != PERSON:
            out.append(s)
            continue
        value = s.text(text)
        masked = (
            bool(_MASK_CHARS.intersection(value))
            or (s.end < len(text) and text[s.end] in _MASK_CHARS)
            or bool(_LATIN_MASK.search(value))
            or bool(_HAN_WORD.fullmatch(value) and _X_MASK.match(text, s.end))
        )
        if masked or not _NAME_CHARS.search(value):
            continue
        if len(value) >= 4 and value.endswith(ORG_SUFFIXES):
            out.append(Span(ORGANIZATION, s.start, s.end, s.score))
            continue
        trade = _TRADE_SUFFIX.match(text, s.end)
        after_admin = s.start > 0 and text[s.start - 1] in "区县市旗镇乡"
        if trade and after_admin and not _NOT_IN_PLACE_NAME.intersection(trade.group()):
            out.append(Span(ORGANIZATION, s.start, trade.end(), s.score))
            continue
        out.append(s)
    return out


def overlay(base: Sequence[Span], extra: Iterable[Span]) -> list[Span]:
    """base plus extra spans; an extra span replaces the base spans it covers or partly
    overlaps, unless one of those is longer than it."""
    result = list(base)
    for span in sorted(extra, key=lambda s: -(s.end - s.start)):
        clashing = [s for s in result if s.overlaps(span)]
        if any(
            not (span.start <= s.start and s.end <= span.end)
            and (s.end - s.start) > (span.end - span.start)
            for s in clashing
        ):
            continue
        if any((s.start, s.end, s.entity) == (span.start, span.end, span.entity) for s in clashing):
            continue
        covered = [s for s in clashing if span.start <= s.start and s.end <= span.end]
        partial = [s for s in clashing if s not in covered]
        result = [s for s in result if s not in covered and s not in partial]
        result.append(span)
    return sorted(result, key=lambda s: (s.start, s.end))
