"""What administrative bodies punish, which law they cite, and the fines they usually impose."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """A violation as a decision describes it: facts, the rule broken, the basis, usual fines."""

    field: str  # market | env | safety | tax | urban
    facts: str
    law: str
    article: str  # the article violated
    basis: str  # the article the penalty rests on
    fines: tuple[int, ...]  # yuan
    confiscation: bool = False  # may also confiscate illegal gains
    evasion: bool = False  # tax evasion: fine is a multiple of tax not paid (has cents)


V = Violation

CATALOGUE: tuple[Violation, ...] = (
    V(
        "market",
        "销售超过保质期的食品",
        "《中华人民共和国食品安全法》",
        "第三十四条",
        "第一百二十四条",
        (5000, 10000, 20000, 50000),
        True,
    ),
    V(
        "market",
        "未取得食品经营许可从事食品经营活动",
        "《中华人民共和国食品安全法》",
        "第三十五条",
        "第一百二十二条",
        (10000, 50000, 100000),
        True,
    ),
    V(
        "market",
        "发布含有虚假内容的广告",
        "《中华人民共和国广告法》",
        "第二十八条",
        "第五十五条",
        (20000, 50000, 100000, 200000),
    ),
    V(
        "market",
        "对商品的性能、功能作虚假或者引人误解的商业宣传",
        "《中华人民共和国反不正当竞争法》",
        "第八条",
        "第二十条",
        (50000, 100000, 200000),
    ),
    V(
        "market",
        "销售不符合保障人体健康和人身、财产安全的国家标准的产品",
        "《中华人民共和国产品质量法》",
        "第十三条",
        "第四十九条",
        (3000, 10000, 30000),
        True,
    ),
    V(
        "market",
        "使用未经定期检验的特种设备",
        "《中华人民共和国特种设备安全法》",
        "第四十条",
        "第八十四条",
        (30000, 50000, 100000),
    ),
    V(
        "market",
        "经营者未按照规定明码标价",
        "《中华人民共和国价格法》",
        "第十三条",
        "第四十二条",
        (2000, 5000),
    ),
    V(
        "env",
        "未依法报批建设项目环境影响报告表擅自开工建设",
        "《中华人民共和国环境影响评价法》",
        "第二十五条",
        "第三十一条",
        (50000, 100000, 200000),
    ),
    V(
        "env",
        "超过大气污染物排放标准排放大气污染物",
        "《中华人民共和国大气污染防治法》",
        "第十八条",
        "第九十九条",
        (100000, 200000, 500000),
    ),
    V(
        "env",
        "未按照规定贮存危险废物",
        "《中华人民共和国固体废物污染环境防治法》",
        "第八十一条",
        "第一百一十二条",
        (100000, 200000, 300000),
    ),
    V(
        "env",
        "通过逃避监管的方式排放水污染物",
        "《中华人民共和国水污染防治法》",
        "第三十九条",
        "第八十三条",
        (200000, 500000),
    ),
    V(
        "safety",
        "未按照规定对从业人员进行安全生产教育和培训",
        "《中华人民共和国安全生产法》",
        "第二十八条",
        "第九十七条",
        (10000, 20000, 50000),
    ),
    V(
        "safety",
        "未在有较大危险因素的生产经营场所设置明显的安全警示标志",
        "《中华人民共和国安全生产法》",
        "第三十五条",
        "第九十九条",
        (10000, 30000, 50000),
    ),
    V(
        "safety",
        "未对安全设备进行经常性维护、保养和定期检测",
        "《中华人民共和国安全生产法》",
        "第三十六条",
        "第九十九条",
        (20000, 50000),
    ),
    V(
        "tax",
        "未按照规定的期限办理纳税申报和报送纳税资料",
        "《中华人民共和国税收征收管理法》",
        "第二十五条",
        "第六十二条",
        (200, 500, 1000, 2000),
    ),
    V(
        "tax",
        "进行虚假的纳税申报，少缴应纳税款",
        "《中华人民共和国税收征收管理法》",
        "第六十三条",
        "第六十三条",
        (),
        evasion=True,
    ),
    V(
        "tax",
        "未按照规定开具发票",
        "《中华人民共和国发票管理办法》",
        "第十九条",
        "第三十五条",
        (1000, 5000, 10000),
    ),
    V(
        "urban",
        "未经批准擅自设置户外广告设施",
        "《城市市容和环境卫生管理条例》",
        "第十一条",
        "第三十六条",
        (500, 1000, 2000, 5000),
    ),
    V(
        "urban",
        "超出门窗和外墙经营",
        "《浙江省城市市容和环境卫生管理条例》",
        "第十六条",
        "第四十一条",
        (200, 500, 1000),
    ),
    V(
        "urban",
        "未按照规定分类投放生活垃圾",
        "《杭州市生活垃圾管理条例》",
        "第二十九条",
        "第六十二条",
        (500, 1000, 5000),
    ),
)


def by_field(field: str) -> list[int]:
    """Catalogue indices of a field's violations."""
    return [i for i, v in enumerate(CATALOGUE) if v.field == field]
