"""The demo city (杭州市): districts, courts and authorities, so every place name is coherent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

CITY = "杭州市"
CITY_SHORT = "杭州"
PROVINCE = "浙江"
AS_OF = dt.date(2026, 6, 30)


@dataclass(frozen=True)
class District:
    """A county-level division: its GB/T 2260 code, name, basic court code and weight."""

    code: str
    name: str
    court: str  # basic people's court code in case numbers, e.g. 浙0106
    weight: float
    doc_prefix: str  # abbreviation in the district bureaus' document numbers, e.g. 杭西


DISTRICTS: tuple[District, ...] = (
    District("330102", "上城区", "浙0102", 0.10, "杭上"),
    District("330105", "拱墅区", "浙0105", 0.10, "杭拱"),
    District("330106", "西湖区", "浙0106", 0.12, "杭西"),
    District("330108", "滨江区", "浙0108", 0.09, "杭滨"),
    District("330109", "萧山区", "浙0109", 0.14, "萧"),
    District("330110", "余杭区", "浙0110", 0.13, "余"),
    District("330111", "富阳区", "浙0111", 0.06, "富"),
    District("330112", "临安区", "浙0112", 0.05, "临"),
    District("330113", "临平区", "浙0113", 0.07, "临平"),
    District("330114", "钱塘区", "浙0114", 0.06, "钱塘"),
    District("330122", "桐庐县", "浙0122", 0.03, "桐"),
    District("330127", "淳安县", "浙0127", 0.02, "淳"),
    District("330182", "建德市", "浙0182", 0.03, "建"),
)

INTERMEDIATE_COURT = "浙01"

# Region codes seen in legal representatives' resident IDs: local (including the codes of
# districts merged in 2021, still printed on older cards), the rest of the province, elsewhere.
LOCAL_ID_REGIONS: tuple[str, ...] = (
    *(d.code for d in DISTRICTS),
    "330103",
    "330104",
)
PROVINCE_ID_REGIONS: tuple[str, ...] = (
    "330203",
    "330302",
    "330402",
    "330502",
    "330602",
    "330702",
    "330802",
    "331002",
    "330681",
    "330782",
    "330381",
    "330282",
)
OTHER_ID_REGIONS: tuple[str, ...] = (
    "110101",
    "110105",
    "310101",
    "320102",
    "320106",
    "340104",
    "341222",
    "360102",
    "410102",
    "420102",
    "430102",
    "440103",
    "440304",
    "500103",
    "510104",
    "610102",
    "350102",
    "370102",
    "130102",
    "220102",
    "230102",
    "450102",
    "520102",
    "530102",
)


@dataclass(frozen=True)
class Authority:
    """An administrative body that issues penalty decisions, with its document-number stem."""

    name: str
    stem: str  # e.g. 杭市监处罚 → 杭市监处罚〔2025〕123号
    field: str  # which violation catalogue applies: market | env | safety | tax | urban
    weight: float


def district_market_authority(d: District) -> Authority:
    """The district market regulation bureau (most decisions are made at district level)."""
    return Authority(f"{CITY}{d.name}市场监督管理局", f"{d.doc_prefix}市监处罚", "market", 0.0)


CITY_AUTHORITIES: tuple[Authority, ...] = (
    Authority(f"{CITY}市场监督管理局", "杭市监处罚", "market", 0.08),
    Authority(f"{CITY}生态环境局", "杭环罚", "env", 0.12),
    Authority(f"{CITY}应急管理局", "杭应急罚", "safety", 0.10),
    Authority("国家税务总局杭州市税务局第一稽查局", "杭税一稽罚", "tax", 0.06),
    Authority(f"{CITY}城市管理局", "杭城管罚", "urban", 0.08),
)
DISTRICT_MARKET_SHARE = 0.52  # the remaining share goes to the enterprise's district bureau
