"""Contracts of every source table, in one visible list (add a table here and nowhere else)."""

import polars as pl

from pdo.privacy.risk import Generalization, Level, QuasiIdentifier, cuts, dates, scaled, suppress
from pdo.sources.contract import Classification, Column, ReleaseRule, SourceTable
from pdo.sources.contract import ColumnType as T
from pdo.sources.contract import Policy as P

# Every table names its enterprise by USCC; a 个体工商户's code is personal data (entity_key).
USCC = Column(
    "uscc",
    T.STRING,
    "统一社会信用代码",
    "Unified social credit code",
    P.ENTITY_KEY,
    required=True,
    pii="CN_USCC_INDIVIDUAL",
)


def _district_kind() -> Generalization:
    """区 → 市辖区, 县 and county-level 市 → 县（市）, then '*'."""
    return Generalization(
        (
            Level(
                "市辖区 / 县（市）",
                lambda e: (
                    pl.when(e.str.ends_with("区"))
                    .then(pl.lit("市辖区"))
                    .otherwise(pl.lit("县（市）"))
                ),
            ),
        )
    )


ENTERPRISE_REGISTRY = SourceTable(
    name="enterprise_registry",
    department="market",
    label_zh="企业登记信息",
    label_en="Enterprise registry",
    file_name="market_enterprise_registry.csv",
    file_format="csv",
    classification=Classification.IMPORTANT,
    key=("uscc",),
    quasi_identifiers=(
        "district",
        "industry_section",
        "industry_division",
        "established_on",
        "registered_capital",
    ),
    sensitive=("status",),
    # 企业登记微观数据: no name, code, representative or address; k = 5 and 2 statuses per class.
    release=ReleaseRule(
        columns=(
            "district",
            "industry_section",
            "industry_division",
            "registered_capital",
            "established_on",
            "status",
        ),
        quasi_identifiers=(
            QuasiIdentifier("district", _district_kind()),
            QuasiIdentifier("industry_section", suppress()),
            QuasiIdentifier("industry_division", suppress()),
            QuasiIdentifier("established_on", dates()),
            QuasiIdentifier(
                "registered_capital",  # stored in 万元 × 100
                scaled(cuts((10, 50, 100, 500, 1000, 5000), (100, 1000)), 100),
            ),
        ),
        k=5,
        l=2,
        max_suppression=0.05,
    ),
    columns=(
        USCC,
        Column(
            "name",
            T.STRING,
            "企业名称",
            "Enterprise name",
            required=True,
            disclosed=("CN_ADDRESS", "PERSON"),
        ),
        Column(
            "legal_rep_name",
            T.STRING,
            "法定代表人姓名",
            "Legal representative name",
            P.MASK,
            mask_kind="name",
            pii="PERSON",
        ),
        Column(
            "legal_rep_id",
            T.STRING,
            "法定代表人身份证号",
            "Legal representative resident ID",
            P.PSEUDONYMIZE,
            pii="CN_RESIDENT_ID",
        ),
        Column(
            "legal_rep_mobile",
            T.STRING,
            "法定代表人手机号",
            "Legal representative mobile",
            P.DROP,
            pii="CN_MOBILE",
        ),
        Column("address", T.STRING, "住所", "Registered address", P.GENERALIZE, pii="CN_ADDRESS"),
        Column("district", T.STRING, "所属区县", "District"),
        Column("industry_section", T.STRING, "行业门类", "Industry section (GB/T 4754)"),
        Column("industry_division", T.STRING, "行业大类", "Industry division (GB/T 4754)"),
        Column(
            "registered_capital", T.DECIMAL, "注册资本（万元）", "Registered capital (10k yuan)"
        ),
        Column("established_on", T.DATE, "成立日期", "Establishment date", required=True),
        Column("status", T.STRING, "登记状态", "Registration status", required=True),
    ),
)

ABNORMAL_OPERATIONS = SourceTable(
    name="abnormal_operations",
    department="market",
    label_zh="经营异常名录",
    label_en="Abnormal-operation list",
    file_name="market_abnormal_operations.csv",
    file_format="csv",
    key=("uscc", "listed_on"),
    columns=(
        USCC,
        Column("listed_on", T.DATE, "列入日期", "Listed on", required=True),
        Column("reason", T.STRING, "列入原因", "Reason"),
        Column("removed_on", T.DATE, "移出日期", "Removed on"),
    ),
)

TAX_CREDIT = SourceTable(
    name="tax_credit",
    department="tax",
    label_zh="纳税信用等级",
    label_en="Tax credit grade",
    file_name="tax_credit_grades.csv",
    file_format="csv",
    encoding="gbk",
    key=("uscc", "year"),
    columns=(
        USCC,
        Column("year", T.INTEGER, "评价年度", "Assessment year", required=True),
        Column("grade", T.STRING, "纳税信用等级", "Tax credit grade (A/B/M/C/D)", required=True),
        Column("tax_paid", T.DECIMAL, "年度纳税额（元）", "Tax paid in the year (yuan)"),
    ),
)

SOCIAL_INSURANCE = SourceTable(
    name="social_insurance",
    department="hrss",
    label_zh="社会保险参保人数",
    label_en="Social insurance headcount",
    file_name="hrss_social_insurance.xlsx",
    file_format="xlsx",
    key=("uscc", "month"),
    columns=(
        USCC,
        Column("month", T.MONTH, "所属月份", "Month", required=True),
        Column("insured_headcount", T.INTEGER, "参保人数", "Insured headcount", required=True),
    ),
)

UTILITY_PAYMENTS = SourceTable(
    name="utility_payments",
    department="utilities",
    label_zh="水电缴费",
    label_en="Utility payments",
    file_name="utilities_payments.parquet",
    file_format="parquet",
    key=("uscc", "utility", "month"),
    columns=(
        USCC,
        Column("utility", T.STRING, "缴费类型", "Utility (water/electricity)", required=True),
        Column("month", T.MONTH, "账期", "Billing month", required=True),
        Column("amount_due", T.DECIMAL, "应缴金额（元）", "Amount due (yuan)"),
        Column("amount_paid", T.DECIMAL, "实缴金额（元）", "Amount paid (yuan)"),
        Column("arrears", T.DECIMAL, "欠费金额（元）", "Arrears (yuan)"),
    ),
)

PENALTIES = SourceTable(
    name="penalties",
    department="credit",
    label_zh="行政处罚信息",
    label_en="Administrative penalties",
    file_name="credit_penalties.csv",
    file_format="csv",
    key=("case_no",),
    columns=(
        Column("case_no", T.STRING, "处罚决定书文号", "Decision number", required=True),
        USCC,
        Column("decided_on", T.DATE, "处罚决定日期", "Decision date", required=True),
        Column("published_on", T.DATE, "公示日期", "Publication date"),
        Column("authority", T.STRING, "处罚机关", "Deciding authority"),
        Column("amount", T.DECIMAL, "罚没金额（元）", "Fine (yuan)"),
        Column(
            "summary",
            T.STRING,
            "处罚决定书摘要",
            "Decision summary (free text)",
            P.REDACT,
            pii="FREE_TEXT",
        ),
    ),
)

COURT_CASES = SourceTable(
    name="court_cases",
    department="court",
    label_zh="执行案件与失信被执行人",
    label_en="Enforcement cases and dishonest debtors",
    file_name="court_enforcement.csv",
    file_format="csv",
    classification=Classification.IMPORTANT,
    key=("case_no",),
    columns=(
        Column(
            "case_no",
            T.STRING,
            "案号",
            "Case number",
            required=True,
            # （2019）浙0182执15号: year, court (province, code), 执 (恢/异/复/监/保), number
            code_format=r"\(\d{4}\)\p{Han}\d{0,4}执[恢异复监保]?\d{1,6}号",
        ),
        USCC,
        Column("kind", T.STRING, "类型", "Kind (执行案件/失信被执行人)", required=True),
        Column("filed_on", T.DATE, "立案日期", "Filing date", required=True),
        Column("published_on", T.DATE, "发布日期", "Publication date"),
        Column("amount", T.DECIMAL, "执行标的（元）", "Amount in enforcement (yuan)"),
        Column("status", T.STRING, "案件状态", "Case status"),
    ),
)

BANK_LOANS = SourceTable(
    name="bank_loans",
    department="partner_bank",
    label_zh="合作银行历史贷款表现",
    label_en="Partner bank loan outcomes",
    file_name="partner_bank_loan_outcomes.csv",
    file_format="csv",
    key=("loan_id",),
    columns=(
        Column(
            "loan_id",
            T.STRING,
            "贷款编号",
            "Loan id",
            required=True,
            code_format=r"HZB\d{13}",  # the partner bank's numbering: HZB, year and month, 7 digits
        ),
        USCC,
        Column("issued_on", T.DATE, "放款日期", "Issue date", required=True),
        Column("amount", T.DECIMAL, "贷款金额（元）", "Loan amount (yuan)"),
        Column(
            "defaulted",
            T.INTEGER,
            "是否违约（12个月内逾期90天以上）",
            "Default within 12 months (90+ dpd)",
            required=True,
        ),
    ),
)

SOURCE_TABLES: tuple[SourceTable, ...] = (
    ENTERPRISE_REGISTRY,
    ABNORMAL_OPERATIONS,
    TAX_CREDIT,
    SOCIAL_INSURANCE,
    UTILITY_PAYMENTS,
    PENALTIES,
    COURT_CASES,
    BANK_LOANS,
)


def table(name: str) -> SourceTable:
    """Look a source table's contract up by name."""
    for t in SOURCE_TABLES:
        if t.name == name:
            return t
    raise KeyError(f"unknown source table {name!r}")
