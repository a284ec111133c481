"""Keyed pseudonyms join across tables and hide their key; default masks do what the docs say."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from pdo.privacy.masks import (
    MASKS,
    generalize_address,
    generalize_date_to_month,
    mask,
    mask_address,
    mask_bank_card,
    mask_mobile,
    mask_name,
    mask_resident_id,
)
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.settings import Settings

KEY = b"0123456789abcdef0123456789abcdef"
RID = "11010519491231002X"


@pytest.fixture
def pz() -> Pseudonymizer:
    return Pseudonymizer("k-test", KEY)


def test_pseudonym_shape_and_determinism(pz: Pseudonymizer) -> None:
    p = pz.pseudonym(RID)
    assert re.fullmatch(r"p_[0-9a-f]{24}", p)
    assert pz.pseudonym(RID) == p
    assert Pseudonymizer("k-test", KEY).pseudonym(RID) == p  # another process, same key


@pytest.mark.parametrize(
    "variant",
    [RID.lower(), f"  {RID} ", "１１０１０５１９４９１２３１００２Ｘ", f"\t{RID}\n"],
)
def test_pseudonym_normalizes_before_hashing(pz: Pseudonymizer, variant: str) -> None:
    assert pz.pseudonym(variant) == pz.pseudonym(RID)


def test_different_values_and_keys_differ(pz: Pseudonymizer) -> None:
    assert pz.pseudonym(RID) != pz.pseudonym("110105194912310037")
    other = Pseudonymizer("k-other", KEY[::-1])
    assert other.pseudonym(RID) != pz.pseudonym(RID)


def test_repr_hides_key(pz: Pseudonymizer) -> None:
    for shown in (repr(pz), str(pz), f"{pz}"):
        assert "k-test" in shown
        assert KEY.decode() not in shown and KEY.hex() not in shown
    assert pz.key_id == "k-test"


def test_empty_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        Pseudonymizer("k", b"")


def test_series_keeps_nulls_and_matches_scalar(pz: Pseudonymizer) -> None:
    s = pl.Series("resident_id", [RID, None, RID.lower(), "110105194912310037"])
    out = pz.pseudonymize_series(s)
    assert out.name == "resident_id"
    assert out.dtype == pl.Utf8
    assert out.to_list() == [
        pz.pseudonym(RID),
        None,
        pz.pseudonym(RID),
        pz.pseudonym("110105194912310037"),
    ]
    assert pz.pseudonymize_series(pl.Series("x", [None, None])).to_list() == [None, None]
    assert pz.pseudonymize_series(pl.Series("x", [], dtype=pl.Utf8)).len() == 0


def test_pseudonyms_join_across_tables(pz: Pseudonymizer) -> None:
    """The same person pseudonymized in two departments' tables still joins, with no raw ID."""
    penalties = pl.DataFrame({"rid": [RID, "110105194912310037"], "fine": [500, 800]})
    licences = pl.DataFrame({"rid": [RID.lower(), "440306194912310021"], "licence": ["A", "B"]})
    left = penalties.with_columns(pz.pseudonymize_series(penalties["rid"]))
    right = Pseudonymizer("k-test", KEY).pseudonymize_series(licences["rid"])
    joined = left.join(licences.with_columns(right), on="rid")
    assert joined.select("fine", "licence").rows() == [(500, "A")]
    assert not joined["rid"].str.contains(RID).any()


def test_from_settings_uses_configured_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, pseudonym_key="s3cret")
    pz = Pseudonymizer.from_settings(settings)
    assert pz.key_id == settings.read_pseudonym_key()[0]
    assert pz.pseudonym(RID) == Pseudonymizer(pz.key_id, b"s3cret").pseudonym(RID)
    file_settings = Settings(home=tmp_path)
    assert Pseudonymizer.from_settings(file_settings).pseudonym(RID) == Pseudonymizer.from_settings(
        file_settings
    ).pseudonym(RID)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("name", "张伟", "张*"),
        ("name", "欧阳娜娜", "欧***"),
        ("name", "王小明", "王**"),
        ("name", "李", "*"),
        ("name", " 赵六 ", "赵*"),
        ("name", "", ""),
        ("mobile", "13812345678", "138****5678"),
        ("mobile", "+86 138-1234-5678", "138****5678"),
        ("mobile", "008613812345678", "138****5678"),
        ("mobile", "12345", "*****"),
        ("resident_id", "11010519491231002X", "110105********002X"),
        ("resident_id", "11010519491231002x", "110105********002X"),
        ("resident_id", "110105491231002", "110105*****1002"),
        ("bank_card", "6222 0212 3456 7890 123", "622202*********0123"),
        ("address", "北京市朝阳区建国路88号", "北京市朝阳区****"),
        ("address", "北京市朝阳区", "北京市朝阳区"),
        ("address", "建国路88号院3号楼", "****"),
    ],
)
def test_mask_table(kind: str, value: str, expected: str) -> None:
    assert MASKS[kind](value) == expected
    assert mask(kind, value) == expected


def test_mask_functions_are_the_table() -> None:
    assert MASKS["name"] is mask_name
    assert MASKS["mobile"] is mask_mobile
    assert MASKS["resident_id"] is mask_resident_id
    assert MASKS["bank_card"] is mask_bank_card
    assert MASKS["address"] is mask_address
    with pytest.raises(KeyError, match="no mask for kind"):
        mask("passport", "E12345678")


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("北京市朝阳区建国路88号", "北京市朝阳区"),
        ("浙江省杭州市西湖区文三路1号", "浙江省杭州市西湖区"),
        ("北京市市辖区东城区王府井大街1号", "北京市东城区"),
        ("济南市市中区经四路100号", "济南市市中区"),
        ("河北省石家庄市正定县常山路", "河北省石家庄市正定县"),
        ("江苏省苏州市昆山市玉山镇", "江苏省苏州市昆山市"),
        ("广东省东莞市长安镇振安社区12号", "广东省东莞市"),
        ("杭州市翠苑小区3幢2单元", "杭州市"),
        ("内蒙古自治区鄂尔多斯市伊金霍洛旗阿勒腾席热镇", "内蒙古自治区鄂尔多斯市伊金霍洛旗"),
        ("新疆维吾尔自治区乌鲁木齐市天山区解放路", "新疆维吾尔自治区乌鲁木齐市天山区"),
        ("黑龙江省大兴安岭地区漠河市北极村", "黑龙江省大兴安岭地区漠河市"),
        ("湖北省恩施土家族苗族自治州恩施市舞阳大道", "湖北省恩施土家族苗族自治州恩施市"),
        ("重庆市石柱土家族自治县南宾街道", "重庆市石柱土家族自治县"),
        ("上海市浦东新区陆家嘴环路1000号", "上海市浦东新区"),
        ("中国湖南省永州市道县", "湖南省永州市道县"),
        ("浙江省台州市路桥区", "浙江省台州市路桥区"),
        ("浙江省 杭州市 西湖区 文三路", "浙江省杭州市西湖区"),
        ("建国路88号", ""),
    ],
)
def test_generalize_address(addr: str, expected: str) -> None:
    assert generalize_address(addr) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-15", "2024-03"),
        ("2024/3/5", "2024-03"),
        ("2024年3月15日", "2024-03"),
        ("20241215", "2024-12"),
        ("2024-03", "2024-03"),
        ("2024-03-15T08:30:00", "2024-03"),
        (dt.date(2024, 3, 5), "2024-03"),
        (dt.datetime(2024, 12, 1, 3), "2024-12"),
        (None, None),
    ],
)
def test_generalize_date_to_month(value: str | dt.date | None, expected: str | None) -> None:
    assert generalize_date_to_month(value) == expected


@pytest.mark.parametrize("bad", ["", "三月", "2024-13-01", "24-03-15"])
def test_generalize_date_rejects_non_dates(bad: str) -> None:
    with pytest.raises(ValueError):
        generalize_date_to_month(bad)
