"""The departments of the demo city that deliver data to the operator."""

from pdo.sources.contract import Department

MARKET = Department("market", "市场监督管理局", "Market Regulation Bureau")
TAX = Department("tax", "税务局", "Tax Bureau")
HRSS = Department("hrss", "人力资源和社会保障局", "Human Resources and Social Security Bureau")
UTILITIES = Department("utilities", "水务集团与供电公司", "Water and Power Utilities")
CREDIT = Department("credit", "社会信用体系建设办公室", "Social Credit Office")
COURT = Department("court", "中级人民法院", "Intermediate People's Court")
PARTNER_BANK = Department(
    "partner_bank", "合作银行（历史贷款表现）", "Partner bank (loan outcomes)"
)

DEPARTMENTS: tuple[Department, ...] = (MARKET, TAX, HRSS, UTILITIES, CREDIT, COURT, PARTNER_BANK)
