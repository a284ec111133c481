"""Pools of names, streets and trade names, built once per seed so rows never call Faker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faker import Faker

from pdo.gen.city import DISTRICTS
from pdo.gen.rng import stream

NAME_POOL = 5000
STREETS_PER_DISTRICT = 240

# Characters that Chinese trade names (字号) are commonly built from.
TRADE_CHARS = (
    "华鑫恒瑞泰达德信诚宏远博盛通安嘉和兴隆佳源润丰锦新创凯天金银东南中海江湖山云星光明辉"
    "腾飞翔龙凤耀永昌富贵祥福康健美雅乐晨阳春秋悦峰启智汇聚合联众正大世纪优品益欣宇航润泽"
    "科亿万方圆顺利豪杰鼎尚川森林朗晟铭轩睿途卓越钱塘之西子"
)
# Roots of street names (own list), combined with 路/街/大道/巷 below.
_STREET_ROOT_TEXT = """
文一 文二 文三 学院 教工 古墩 紫荆 天目山 莫干山 湖墅 凤起 庆春
解放 延安 中山 建国 体育场 江南 滨盛 江陵 长河 闻涛 西兴 钱江 民生
秋涛 望江 复兴 之江 转塘 留下 三墩 丰潭 古翠 益乐 紫金港 余杭塘
文化 五常 良睦 荆长 临平 迎宾 南苑 星桥 塘栖 崇贤 仓前 闲林 良渚
瓶窑 金城 市心 人民 育才 山阴 通惠 萧然 北干 新街 瓜沥 义蓬 富春
江滨 桂花 大桥 金桥 锦城 衣锦 钱王 武肃 天目 横溪 青山湖 下沙 文泽
学源 白杨 幸福 福城 云帆 启潮 江东 桐君 迎春 洋洲 千岛湖 新安 排岭
严州 新安江 洋溪 梅城 康乐 和平 友谊 光明 东新 石桥 半山 拱康
莫衙营 舟山东 上塘 沈半 登云 大关 湖州 香积寺 小河 丽水 花园岗 秋石
九堡 九环 杭海 艮山 机场 笕桥 丁桥 华中 华丰 新塘 近江 婺江 江锦
清江 秋月 四季青 钱潮 市民 富春江 之浦 望潮 青年 南星 鼓楼 河坊
清泰 平海 湖滨
"""
STREET_ROOTS = tuple(_STREET_ROOT_TEXT.split())
STREET_SUFFIXES = ("路", "路", "路", "街", "大道", "巷")


@dataclass(frozen=True)
class Pools:
    """Precomputed value pools; rows sample indices into these with the RNG."""

    male_names: np.ndarray
    female_names: np.ndarray
    trade_names: np.ndarray
    streets_by_district: tuple[np.ndarray, ...]


def _unique(values: list[str]) -> np.ndarray:
    seen: dict[str, None] = dict.fromkeys(values)
    return np.array(list(seen), dtype=object)


def build_pools(seed: int) -> Pools:
    """Draw names from a seeded Faker('zh_CN') and build streets and trade names from word lists."""
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    # zh_CN name_male()/name_female() ignore gender; compose from the gendered given names.
    male = _unique([fake.last_name() + fake.first_name_male() for _ in range(NAME_POOL)])
    female = _unique([fake.last_name() + fake.first_name_female() for _ in range(NAME_POOL)])
    faker_prefixes = [
        p
        for p in dict.fromkeys(fake.company_prefix() for _ in range(400))
        if 2 <= len(p) <= 3 and not any(w in p for w in ("公司", "电子", "科技", "信息", "软件"))
    ]
    chars = list(dict.fromkeys(TRADE_CHARS))
    pairs = [a + b for a in chars for b in chars if a != b]
    trade = _unique(pairs + faker_prefixes)

    rng = stream(seed, "pools", "streets")
    roots = list(dict.fromkeys(STREET_ROOTS))
    faker_roots = list(dict.fromkeys(fake.city_name() for _ in range(300)))
    all_streets = _unique([r + s for r in roots + faker_roots for s in STREET_SUFFIXES])
    rng.shuffle(all_streets)
    per = max(20, min(STREETS_PER_DISTRICT, len(all_streets) // len(DISTRICTS)))
    by_district = tuple(all_streets[i * per : (i + 1) * per] for i in range(len(DISTRICTS)))
    return Pools(male, female, trade, by_district)
