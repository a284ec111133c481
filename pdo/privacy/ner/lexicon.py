"""Word lists behind the rule layer: surnames, role titles, place and organisation suffixes."""

from __future__ import annotations


def _words(spaced: str) -> tuple[str, ...]:
    """A word list written as one space-separated string (keeps the lists compact)."""
    return tuple(spaced.split())


# Common single-character surnames (《百家姓》 and modern frequency tables), most frequent first.
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎"
    "贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧"
    "耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍"
    "华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏"
    "宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈"
    "匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖"
    "练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘"
    "亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信"
    "展阴昝智幸奉植衡富尧闭由"
    # less frequent, but not everyday words either
    "洪赖萧昌凤酆贝贲钮滑荀羿汲邴糜宓蓬郗仰暴钭韶蓟鄂莘贡逄扶堵宰郦璩濮寿郏宦庾暨禄殳蔚夔厍訾毋乜蒯巢竺桓丘畅习"
)
COMPOUND_SURNAMES = _words(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 "
    "司徒 夏侯 轩辕 令狐 钟离 闾丘 澹台 端木 呼延 南宫 西门 "
    "独孤 万俟 百里 东郭 太史 申屠 赫连 拓跋"
)

# Titles and procedural roles that PRC documents and news put right before a person's name.
ROLE_TITLES = _words(
    # enforcement decisions, court and registry records
    "法定代表人 经营者 负责人 主要负责人 投资人 股东 合伙人 执行事务合伙人 "
    "联系人 申请人 被申请人 原告 被告 被执行人 申请执行人 第三人 "
    "委托代理人 代理人 担保人 借款人 户主 监护人 举报人 投诉人 "
    "受害人 嫌疑人 犯罪嫌疑人 驾驶人 驾驶员 执法人员 承办人 经办人 "
    # positions
    "董事长 副董事长 董事 执行董事 监事 总经理 副总经理 经理 总裁 "
    "副总裁 首席执行官 主席 副主席 主任 副主任 主编 总编 总监 "
    "秘书长 理事长 会长 院长 校长 行长 副行长 局长 副局长 处长 "
    "科长 所长 厂长 站长 队长 组长 部长 市长 县长 区长 镇长 "
    "村长 书记 委员 总工程师 工程师 律师 医生 教授 研究员 分析师 "
    "记者 通讯员 编辑 主持人 嘉宾 教练 主教练 选手 球员 作者 "
    "导演 编剧 制片人 发言人 创始人 董秘 主管 副主管 老板 店主 "
    "业主 解说 高手 主角 男主角 女主角 "
    # family members, as statements and judgments name them
    "父亲 母亲 妻子 丈夫 儿子 女儿 哥哥 姐姐 弟弟 妹妹 配偶"
)

# Words that end a name candidate when they follow it.
NAME_FOLLOWERS = _words(
    "表示 说 称 认为 指出 介绍 告诉 透露 强调 坦言 先生 "
    "女士 同志 老师 等 和 与 及 的 在 于 到场 对 因 "
    "被 是 为 也 曾 已 将 向 签 负 出 接受 未 系 "
    "持 担任 作为 同意 承认 涉嫌 本人"
)

# Suffixes of PRC administrative divisions, widest first.
ADMIN_SUFFIXES = _words(
    "特别行政区 自治区 自治州 自治县 自治旗 地区 街道 省 市 州 盟 区 县 旗 镇 乡"
)

# Communities and compounds below a sub-district (roads are matched in addresses.py).
COMMUNITY_SUFFIXES = _words(
    "社区 小区 新村 村 花园 家园 公寓 苑 大厦 大楼 园区 "
    "工业园 产业园 科技园 商务区 开发区 广场 中心"
)
# Units that follow a number: 88号, 3号楼, 7幢, 2单元, 1201室, 5层, 3组.
NUMBER_UNITS = _words("号院 号楼 号 栋 幢 座 单元 层 楼 室 户 组 弄 支弄 铺 门 舍 区")

# Organisation names end with one of these (longest first matters for matching).
ORG_SUFFIXES = _words(
    "股份有限公司 有限责任公司 有限公司 分公司 公司 集团 银行 分行 支行 "
    "委员会 管理局 监督管理局 局 厅 委 办公室 法院 检察院 "
    "公安局 派出所 医院 卫生院 大学 学院 中学 小学 学校 幼儿园 "
    "研究院 研究所 研究中心 协会 学会 商会 基金会 合作社 事务所 "
    "工作室 俱乐部 联合会 联社 车队 中心 厂 店 馆 部 社 所"
)
# As a word of their own these rarely close a name (市 + 中心, 车站 + 所在): only as an ending.
VAGUE_ORG_SUFFIXES = frozenset({"中心", "部", "社", "所", "店", "馆", "厂", "局", "厅", "委"})

# A name directly followed by one of these names a place: 范登堡空军基地, 费拉里斯球场.
NAMED_PLACE_SUFFIXES = _words(
    "球场 体育场 体育馆 公园 广场 基地 大街 大道 机场 大厦 纪念馆 "
    "故居 大桥 码头 水库 车站 火车站 中学 小学 大学 医院"
)

# Organisation-tagged spans with these endings are places (venues, buildings, parks).
VENUE_SUFFIXES = _words(
    "大厦 大楼 广场 体育场 体育馆 体育中心 会展中心 会议中心 展览中心 "
    "贸易中心 酒店 宾馆 饭店 客栈 度假村 球场 基地 "
    "展览馆 博物馆 美术馆 纪念馆 公园 景区 商场 购物中心 商城 市场 "
    "机场 火车站 码头 港 花园 小区 公寓 商务区 开发区 工业园 "
    "产业园 科技园 宫 寺 塔 桥"
)

# Places people go to or live in; a name right before one names that place: 交通茶馆,
# 星域网吧, 丽泽金融商务区, 塞拉图哨所. Words that also name markets or ideas (市场, 家园,
# 花园, 中心) are left out: 股票市场, 精神家园, 研究中心.
FACILITY_WORDS = _words(
    "小区 公寓 新村 公馆 大院 广场 购物中心 超市 百货 餐厅 饭店 酒店 宾馆 茶馆 酒吧 "
    "咖啡馆 网吧 球馆 体育场 体育馆 剧院 影院 会议厅 宴会厅 营业厅 门市部 专卖店 "
    "图书馆 博物馆 美术馆 艺术馆 展览馆 纪念馆 科技馆 会展中心 剧场 音乐厅 "
    "码头 机场 火车站 车站 基地 哨所 商务区 开发区 工业区 工业园 产业园 科技园 "
    "艺术村 度假村 景区 公园 山谷 峡谷 水坝 平原 海岸 海滩"
)

# Last characters of place names that Chinese given names do not end with (河, 港 and 镇 do:
# 王长河): a "name" of three or more characters such as 阮冲村, 于玉几岛, 克劳馥路 is a place
# the model misread.
PLACE_NAME_ENDINGS = frozenset("村岛路湖湾寨街")
