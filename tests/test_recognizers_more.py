"""The remaining PRC pattern recognizers through the real zh AnalyzerEngine: found and not found."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from presidio_analyzer import AnalyzerEngine
from presidio_anonymizer import AnonymizerEngine

from pdo.privacy.analyzer import build_analyzer, find_pii
from pdo.privacy.checksums import (
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    luhn_ok,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)
from pdo.privacy.recognizers import (
    RECOGNIZERS,
    BankCardRecognizer,
    EmailRecognizer,
    IpAddressRecognizer,
    LandlineRecognizer,
    OrgCodeRecognizer,
    PassportRecognizer,
    PlateRecognizer,
    TravelPermitRecognizer,
)
from pdo.privacy.redact import PLACEHOLDERS, kept_entities, redact_text, residual_pii

NEW_RECOGNIZERS = (
    OrgCodeRecognizer,
    LandlineRecognizer,
    BankCardRecognizer,
    PlateRecognizer,
    PassportRecognizer,
    TravelPermitRecognizer,
    EmailRecognizer,
    IpAddressRecognizer,
)
# Every checksum/pattern entity, old and new: the collision tables look at these only
# (NER-backed entities such as PERSON are other recognizers' business).
PATTERN_ENTITIES = frozenset(
    {"CN_RESIDENT_ID", "CN_USCC", "CN_MOBILE"} | {cls.ENTITY for cls in NEW_RECOGNIZERS}
)


def luhn(prefix: str) -> str:
    """prefix plus the digit that makes it Luhn-valid."""
    return next(prefix + d for d in "0123456789" if luhn_ok(prefix + d))


def not_luhn(prefix: str) -> str:
    """prefix plus a digit that leaves it Luhn-invalid."""
    return next(prefix + d for d in "0123456789" if not luhn_ok(prefix + d))


def rid(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def org(body8: str, dash: bool = True) -> str:
    return body8 + ("-" if dash else "") + org_code_check_char(body8)


def group4(digits: str, sep: str = " ") -> str:
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


# --- values -------------------------------------------------------------------------------
ORG = org("80210043")  # 80210043-3, the code inside USCC 91110000802100433B
ORG_LETTERS = org("M000100Y")
ORG_X = org("71090002")
ORG_BAD = ORG[:-1] + next(c for c in "0123456789X" if c != ORG[-1])
USCC_WITH_ORG = uscc("91110000802100433")
USCC_WITH_G = uscc("91330100G12345678")  # a passport-shaped run inside a USCC
USCC_DIGITS_62 = uscc("62330100000000038")  # all digits, 62…, and Luhn-valid too

RID = rid("11010519900307123")
RID_LUHN = rid("11010519900307006")  # a resident ID that also passes Luhn
RID_GANSU = rid("62010219850612055")  # 62… like UnionPay, and Luhn-valid
MOBILE = "13812345678"

CARD_16 = luhn("622202123456789")
CARD_19 = luhn("621700123456789012")
CARD_62_NO_LUHN = not_luhn("622202123456789")
VISA = luhn("411111111111111")
VISA_NO_LUHN = not_luhn("411111111111111")
MASTERCARD_2 = luhn("222100123456789")
ICBC_9558 = luhn("955880123456789012")
ORDER_NO = luhn("100000123456789")  # Luhn-valid by chance, but no card issuer starts with 1
TIMESTAMP = luhn("202403151230450")

PASSPORT_G = "G12345678"  # also a valid undashed organization code (G1234567 → check 8)


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> AnalyzerEngine:
    return build_analyzer(tmp_path_factory.mktemp("models_more"))


def found(analyzer: AnalyzerEngine, text: str, entity: str) -> list[str]:
    return [text[r.start : r.end] for r in find_pii(analyzer, text) if r.entity_type == entity]


def score_of(analyzer: AnalyzerEngine, text: str, entity: str) -> float:
    (result,) = [r for r in find_pii(analyzer, text) if r.entity_type == entity]
    return float(result.score)


def test_fixture_values_are_what_they_claim() -> None:
    assert ORG == "80210043-3" and USCC_WITH_ORG == "91110000802100433B"
    assert is_valid_org_code("M000100Y4") and ORG_X.endswith("X")
    assert not is_valid_org_code(ORG_BAD.replace("-", ""))
    assert is_valid_org_code(PASSPORT_G)
    assert is_valid_uscc(USCC_WITH_G) and is_valid_uscc(USCC_DIGITS_62)
    assert luhn_ok(USCC_DIGITS_62) and not is_valid_resident_id(USCC_DIGITS_62)
    assert all(is_valid_resident_id(v) for v in (RID, RID_LUHN, RID_GANSU))
    assert luhn_ok(RID_LUHN) and luhn_ok(RID_GANSU) and RID_GANSU.startswith("62")
    assert all(luhn_ok(v) for v in (CARD_16, CARD_19, VISA, MASTERCARD_2, ICBC_9558, ORDER_NO))
    assert not luhn_ok(CARD_62_NO_LUHN) and not luhn_ok(VISA_NO_LUHN)
    assert (len(CARD_16), len(CARD_19)) == (16, 19)


# --- CN_ORG_CODE --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ORG, [ORG]),
        (ORG.replace("-", ""), [ORG.replace("-", "")]),
        (ORG_LETTERS, [ORG_LETTERS]),
        (ORG_X, [ORG_X]),
        (f"组织机构代码：{ORG}，", [ORG]),
        (f"（组织机构代码{ORG_X}）已换发营业执照", [ORG_X]),
        (f"代码{ORG}与{ORG_LETTERS}", [ORG, ORG_LETTERS]),
        # must not match
        (ORG_BAD, []),
        (USCC_WITH_ORG, []),  # the code sits inside the USCC: not a code of its own
        (USCC_WITH_G, []),
        ("9" + ORG.replace("-", ""), []),
        (ORG + "0", []),
        (f"2024-{ORG}", []),  # one link of a dashed chain
        (f"{ORG}-1", []),
        (ORG_LETTERS.lower(), []),  # codes are issued upper-case
        (org("ABCDEFGH"), []),  # a word, not a code: the body needs a digit
        (PASSPORT_G, []),  # passport-shaped: the personal reading wins
        (RID, []),
        (MOBILE, []),
        ("罚款人民币123456789元", []),  # 123456789 fails the check
    ],
)
def test_org_code(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_ORG_CODE") == expected


def test_org_code_scores(analyzer: AnalyzerEngine) -> None:
    assert score_of(analyzer, ORG, "CN_ORG_CODE") == 1.0
    assert score_of(analyzer, ORG.replace("-", ""), "CN_ORG_CODE") == pytest.approx(0.4)


# --- CN_LANDLINE --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(010)12345678", ["(010)12345678"]),
        ("（010）62345678", ["（010）62345678"]),
        ("0755-12345678", ["0755-12345678"]),
        ("021 6123 4567", ["021 6123 4567"]),
        ("0571-8812345", ["0571-8812345"]),  # 7-digit local number
        ("010-62345678转123", ["010-62345678转123"]),
        ("0571-88123456-8001", ["0571-88123456-8001"]),
        ("+86 10 6234 5678", ["+86 10 6234 5678"]),
        ("0086-21-61234567", ["0086-21-61234567"]),
        ("01062345678", ["01062345678"]),
        ("办公电话：0571-88123456，传真（0571）88123457。", ["0571-88123456", "（0571）88123457"]),
        (f"电话0755-12345678或{MOBILE}", ["0755-12345678"]),
        # must not match
        (MOBILE, []),
        ("+86 138 1234 5678", []),
        ("013812345678", []),  # trunk 0 before a mobile: 01x is no area code except 010
        ("0755-13812345678", []),  # area code + mobile
        ("400-123-4567", []),
        ("95588", []),
        ("2024-03-15", []),
        ("9010-12345678", []),  # inside a longer digit run
        ("0755-123456789", []),  # local number too long
        ("12-0755-12345678", []),  # one link of a dashed chain
        ("0755-12345678a", []),
        ("01012345678", []),  # bare form: issued local numbers never begin with 1
        ("邮编310000，罚款20000元", []),
        ("发票代码：044031900111", []),
        (RID, []),
        (CARD_16, []),
    ],
)
def test_landline(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_LANDLINE") == expected


def test_landline_scores_are_moderate(analyzer: AnalyzerEngine) -> None:
    assert score_of(analyzer, "0755-12345678", "CN_LANDLINE") == pytest.approx(0.5)
    assert score_of(analyzer, "01062345678", "CN_LANDLINE") == pytest.approx(0.3)


# --- CN_BANK_CARD -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CARD_16, [CARD_16]),
        (CARD_19, [CARD_19]),
        (group4(CARD_16), [group4(CARD_16)]),
        (group4(CARD_16, "-"), [group4(CARD_16, "-")]),
        (group4(CARD_19), [group4(CARD_19)]),  # 4-4-4-4-3
        (CARD_62_NO_LUHN, [CARD_62_NO_LUHN]),
        (VISA, [VISA]),
        (MASTERCARD_2, [MASTERCARD_2]),
        (ICBC_9558, [ICBC_9558]),
        (f"银行卡号：{CARD_16}，开户行某某银行杭州分行。", [CARD_16]),
        (f"卡号{group4(CARD_19)}，手机{MOBILE}", [group4(CARD_19)]),
        (f"{CARD_16} {VISA}", [CARD_16, VISA]),
        # must not match
        (VISA_NO_LUHN, []),  # not UnionPay and not Luhn-valid
        (ORDER_NO, []),  # Luhn-valid, but 1… is no issuer prefix
        (TIMESTAMP, []),  # 2024… neither
        (CARD_16[:15], []),
        ("6" + CARD_19, []),  # 20 digits
        ("x" + CARD_16, []),
        (CARD_16 + "a", []),
        (f"订单号{CARD_16}8888", []),  # 20 digits
        (group4(CARD_16 + "1234"), []),  # a 20-digit grouped run is no card with a tail
        (CARD_16[:4] + " " + CARD_16[4:8] + "-" + CARD_16[8:12] + " " + CARD_16[12:], []),
        (f"12-{CARD_16}", []),
        ("0000000000000000", []),
        ("6666666666666666", []),  # one repeated digit
        (RID, []),
        (RID_LUHN, []),  # an ID that happens to pass Luhn stays an ID
        (RID_GANSU, []),  # 62… and Luhn-valid, but a valid resident ID
        (USCC_DIGITS_62, []),  # 62… and Luhn-valid, but a valid USCC
        (MOBILE, []),
    ],
)
def test_bank_card(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_BANK_CARD") == expected


@pytest.mark.parametrize(
    ("card", "score"),
    [
        (CARD_16, 1.0),  # UnionPay and Luhn
        (group4(CARD_19), 1.0),
        (VISA, BankCardRecognizer.OTHER_SCORE),  # Luhn, other issuer
        (ICBC_9558, BankCardRecognizer.OTHER_SCORE),
        (CARD_62_NO_LUHN, BankCardRecognizer.UNCHECKED_UNIONPAY_SCORE),  # 62… without Luhn
    ],
)
def test_bank_card_scores(analyzer: AnalyzerEngine, card: str, score: float) -> None:
    assert score_of(analyzer, card, "CN_BANK_CARD") == pytest.approx(score)
    assert BankCardRecognizer.UNCHECKED_UNIONPAY_SCORE < BankCardRecognizer.OTHER_SCORE < 1.0


# --- CN_VEHICLE_PLATE ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("京A12345", ["京A12345"]),
        ("京A·12345", ["京A·12345"]),
        ("京A 12345", ["京A 12345"]),
        ("苏E·AB123", ["苏E·AB123"]),
        ("粤B·D12345", ["粤B·D12345"]),  # new energy, small
        ("沪AFA1234", ["沪AFA1234"]),  # D/F, then a letter or digit, then 4 digits
        ("粤B12345D", ["粤B12345D"]),  # new energy, large
        ("浙A1234学", ["浙A1234学"]),
        ("鲁B5678挂", ["鲁B5678挂"]),
        ("当事人驾驶浙A·8B2C7号小型轿车", ["浙A·8B2C7"]),
        ("车牌号川A12345、藏AC1234", ["川A12345", "藏AC1234"]),
        # must not match
        ("京I12345", []),  # no I as office letter
        ("京AO1234", []),  # no O in the serial
        ("京A1234", []),
        ("京A1234567", []),
        ("京a12345", []),
        ("京A·BCD12", []),  # three letters in an ordinary serial
        ("新ABCDEF", []),
        ("台A12345", []),  # 台 is no mainland province abbreviation
        ("港A12345", []),
        ("粤B·12345DF", []),
        ("京A12345x", []),
    ],
)
def test_vehicle_plate(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_VEHICLE_PLATE") == expected


# --- CN_PASSPORT --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("E12345678", ["E12345678"]),
        ("EA1234567", ["EA1234567"]),
        ("EH7654321", ["EH7654321"]),
        (PASSPORT_G, [PASSPORT_G]),
        ("护照号码：E12345678。", ["E12345678"]),
        ("持中华人民共和国护照（EB1234567）入境", ["EB1234567"]),
        (f"护照{PASSPORT_G}已过期，新护照E87654321", [PASSPORT_G, "E87654321"]),
        # must not match
        ("E1234567", []),
        ("E123456789", []),
        ("e12345678", []),
        ("EI1234567", []),
        ("EO1234567", []),
        ("P12345678", []),
        ("保健食品批准文号国食健注G20190001", []),
        ("AE12345678", []),
        ("E12345678X", []),
        ("2E12345678", []),
        (USCC_WITH_G, []),
        (RID, []),
    ],
)
def test_passport(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_PASSPORT") == expected


def test_passport_score_is_low(analyzer: AnalyzerEngine) -> None:
    assert score_of(analyzer, "E12345678", "CN_PASSPORT") == pytest.approx(0.3)


# --- CN_TRAVEL_PERMIT ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("H12345678", ["H12345678"]),
        ("M12345678", ["M12345678"]),
        ("H1234567890", ["H1234567890"]),
        ("C12345678", ["C12345678"]),
        ("CA1234567", ["CA1234567"]),
        ("港澳居民来往内地通行证号码H87654321，", ["H87654321"]),
        ("往来港澳通行证：CB7654321。", ["CB7654321"]),
        ("台胞证号：12345678", ["12345678"]),
        ("台湾居民来往大陆通行证 87654321，", ["87654321"]),
        # must not match
        ("H1234567", []),
        ("H123456789", []),
        ("H12345678901", []),
        ("h12345678", []),
        ("CI1234567", []),
        ("XH12345678", []),
        ("H12345678A", []),
        ("12345678", []),  # a bare 8-digit number is no 台胞证
        ("罚款12345678元", []),
        ("销售国药准字H20003001药品", []),  # a drug approval number
        ("台胞证号：123456789", []),
        (USCC_WITH_G, []),
    ],
)
def test_travel_permit(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "CN_TRAVEL_PERMIT") == expected


# --- EMAIL_ADDRESS ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zhangsan@example.com", ["zhangsan@example.com"]),
        ("zhang.san+tag@mail.example.com.cn", ["zhang.san+tag@mail.example.com.cn"]),
        ("电子邮箱：li_si@163.com。", ["li_si@163.com"]),
        (f"邮箱{MOBILE}@qq.com，", [f"{MOBILE}@qq.com"]),
        ("a-b@sub-domain.org", ["a-b@sub-domain.org"]),
        ("USER@EXAMPLE.CN", ["USER@EXAMPLE.CN"]),
        ("user@example.xn--fiqs8s", ["user@example.xn--fiqs8s"]),
        ("联系邮箱wang@example.com.", ["wang@example.com"]),
        ("x@a.example.accountants", ["x@a.example.accountants"]),
        # must not match
        ("logo@2x.png", []),
        ("foo@bar", []),
        ("foo@.com", []),
        ("foo@bar.c", []),
        ("foo@bar.123", []),
        ("@example.com", []),
        ("foo@-bar.com", []),
        ("foo..bar@example.com", []),
        ("罚款20000元@杭州", []),
    ],
)
def test_email(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "EMAIL_ADDRESS") == expected


def test_email_scores_by_tld(analyzer: AnalyzerEngine) -> None:
    assert score_of(analyzer, "li_si@163.com", "EMAIL_ADDRESS") == 1.0
    assert score_of(analyzer, "li@example.de", "EMAIL_ADDRESS") == 1.0
    assert score_of(analyzer, "x@example.accountants", "EMAIL_ADDRESS") == pytest.approx(0.5)


def test_email_never_touches_the_network(
    analyzer: AnalyzerEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert found(analyzer, "邮箱zhangsan@example.com", "EMAIL_ADDRESS") == ["zhangsan@example.com"]
    (email_recognizer,) = [
        r for r in analyzer.registry.recognizers if "EMAIL_ADDRESS" in r.supported_entities
    ]
    assert type(email_recognizer) is EmailRecognizer  # never Presidio's tldextract one


# --- IP_ADDRESS ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.1", ["192.168.1.1"]),
        ("10.0.0.255", ["10.0.0.255"]),
        ("10.1.2.3", ["10.1.2.3"]),
        ("255.255.255.255", ["255.255.255.255"]),
        ("登录IP：202.96.128.86，", ["202.96.128.86"]),
        ("访问地址192.168.1.1:8080", ["192.168.1.1"]),
        ("2001:db8::1", ["2001:db8::1"]),
        ("fe80::1ff:fe23:4567:890a", ["fe80::1ff:fe23:4567:890a"]),
        ("::ffff:192.168.1.1", ["::ffff:192.168.1.1"]),
        (
            "IPv6地址2001:0db8:85a3:0000:0000:8a2e:0370:7334。",
            ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
        ),
        # must not match
        ("256.1.1.1", []),
        ("192.168.1", []),
        ("1.2.3.4.5", []),
        ("192.168.01.1", []),  # leading zero
        ("a192.168.1.1", []),
        ("192.168.1.1a", []),
        ("会议于12:30:45开始", []),
        ("::", []),
        ("2001:db8:::1", []),
        ("1:2:3:4:5:6:7:8:9", []),
        ("罚款12.5万元", []),
        ("依据标准第4.1.2.3条", []),  # clause numbers, not addresses
        ("版本1.2.3.4", []),
        ("8.8.8.8", []),
    ],
)
def test_ip_address(analyzer: AnalyzerEngine, text: str, expected: list[str]) -> None:
    assert found(analyzer, text, "IP_ADDRESS") == expected


# --- cross-entity collisions --------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "entity"),
    [
        (RID, "CN_RESIDENT_ID"),
        (RID_LUHN, "CN_RESIDENT_ID"),
        (RID_GANSU, "CN_RESIDENT_ID"),
        (USCC_WITH_ORG, "CN_USCC"),
        (USCC_WITH_G, "CN_USCC"),
        (USCC_DIGITS_62, "CN_USCC"),
        (MOBILE, "CN_MOBILE"),
        ("+86 138 1234 5678", "CN_MOBILE"),
        ("0755-12345678", "CN_LANDLINE"),
        ("+86 10 6234 5678", "CN_LANDLINE"),
        (ORG, "CN_ORG_CODE"),
        (CARD_16, "CN_BANK_CARD"),
        (CARD_19, "CN_BANK_CARD"),
        (PASSPORT_G, "CN_PASSPORT"),
        ("E12345678", "CN_PASSPORT"),
        ("H12345678", "CN_TRAVEL_PERMIT"),
        ("C12345678", "CN_TRAVEL_PERMIT"),
        ("京A·12345", "CN_VEHICLE_PLATE"),
        ("192.168.1.1", "IP_ADDRESS"),
    ],
)
def test_each_value_is_exactly_one_entity(
    analyzer: AnalyzerEngine, value: str, entity: str
) -> None:
    text = f"编号{value}。"
    hits = {
        (r.entity_type, text[r.start : r.end])
        for r in find_pii(analyzer, text)
        if r.entity_type in PATTERN_ENTITIES
    }
    assert hits == {(entity, value)}


# --- registry and redaction ---------------------------------------------------------------
def test_new_recognizers_are_registered_with_placeholders() -> None:
    assert set(NEW_RECOGNIZERS) <= set(RECOGNIZERS)
    assert {cls.ENTITY for cls in NEW_RECOGNIZERS} <= set(PLACEHOLDERS)
    assert PLACEHOLDERS["CN_ORG_CODE"] is None and "CN_ORG_CODE" in kept_entities()
    assert {e: PLACEHOLDERS[e] for e in sorted(PATTERN_ENTITIES - kept_entities())} == {
        "CN_BANK_CARD": "〈银行卡号〉",
        "CN_LANDLINE": "〈固定电话〉",
        "CN_MOBILE": "〈手机号〉",
        "CN_PASSPORT": "〈护照号〉",
        "CN_RESIDENT_ID": "〈身份证号〉",
        "CN_TRAVEL_PERMIT": "〈通行证号〉",
        "CN_VEHICLE_PLATE": "〈车牌号〉",
        "EMAIL_ADDRESS": "〈电子邮箱〉",
        "IP_ADDRESS": "〈IP地址〉",
    }


PERSONAL_VALUES = {
    RID: "〈身份证号〉",
    MOBILE: "〈手机号〉",
    "0571-88123456": "〈固定电话〉",
    group4(CARD_19): "〈银行卡号〉",
    "浙A·8B2C7": "〈车牌号〉",
    "EA1234567": "〈护照号〉",
    "H87654321": "〈通行证号〉",
    "zhang.wei@example.com.cn": "〈电子邮箱〉",
    "202.96.128.86": "〈IP地址〉",
    "2001:db8::8a2e:370:7334": "〈IP地址〉",
}
PENALTY = (
    f"当事人某某科技有限公司（统一社会信用代码{USCC_WITH_ORG}，原组织机构代码{ORG}，"
    f"法定代表人张伟，身份证号{RID}，联系电话{MOBILE}，办公电话0571-88123456，"
    f"电子邮箱zhang.wei@example.com.cn）于2024年3月15日通过IP地址202.96.128.86及"
    "2001:db8::8a2e:370:7334登录网店后台发布虚假广告，其名下浙A·8B2C7号车辆用于运输；"
    f"张伟持护照EA1234567、港澳居民来往内地通行证H87654321，违法所得经银行卡"
    f"{group4(CARD_19)}收取。违反《中华人民共和国广告法》第二十八条，依据第五十五条，"
    "决定罚款人民币20000元，案号杭市监罚〔2024〕88号。"
)


def test_penalty_summary_keeps_no_raw_personal_value(analyzer: AnalyzerEngine) -> None:
    out = redact_text(analyzer, AnonymizerEngine(), PENALTY)
    for value, placeholder in PERSONAL_VALUES.items():
        assert value not in out
        assert placeholder in out
    assert out.count("〈IP地址〉") == 2
    # organization codes are kept, and the ordinary numbers around them are untouched
    for kept in (USCC_WITH_ORG, ORG, "2024年3月15日", "20000元", "〔2024〕88号", "第二十八条"):
        assert kept in out
    residue = residual_pii(analyzer, [out])
    assert {e: n for e, n in residue.items() if e in PATTERN_ENTITIES} == {}
