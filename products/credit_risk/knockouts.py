"""Knock-out rules: facts that decide the grade whatever the points, each with its own code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from products.credit_risk.lists import lists_per_row
from products.spec import Inputs, eager

KNOCKED_OUT_GRADE = "E"
KNOCKOUT = pl.Struct({"code": pl.String, "label_zh": pl.String})


@dataclass(frozen=True)
class Knockout:
    """A rule: its code, its words, and which enterprises it strikes as of a date."""

    code: str
    label_zh: str
    label_en: str
    source: str

    def strikes(self, inputs: Inputs, as_of: dt.date) -> pl.Series:
        """The USCCs (entity keys) the rule applies to."""
        raise NotImplementedError


@dataclass(frozen=True)
class StatusKnockout(Knockout):
    """The register shows the enterprise revoked or cancelled (the register as delivered)."""

    status: str = ""

    def strikes(self, inputs: Inputs, as_of: dt.date) -> pl.Series:
        reg = eager(inputs, "enterprise_registry")
        return reg.filter(pl.col("status") == self.status)["uscc"]


FULLY_PERFORMED = "已全部履行"  # the debtor has paid: the court takes the entry off the list


@dataclass(frozen=True)
class DishonestDebtorKnockout(Knockout):
    """Listed by a court as a dishonest judgment debtor (失信被执行人), published by the date and
    still in force: an entry whose obligation is fully performed (已全部履行) no longer lists."""

    def strikes(self, inputs: Inputs, as_of: dt.date) -> pl.Series:
        court = eager(inputs, "court_cases")
        listed = court.filter(
            (pl.col("kind") == "失信被执行人")
            & (pl.col("published_on") <= as_of)
            & (pl.col("status").fill_null("") != FULLY_PERFORMED)
        )
        return listed["uscc"].unique()


KNOCKOUTS: tuple[Knockout, ...] = (
    StatusKnockout("KO01", "已吊销营业执照", "Business licence revoked", "market", status="吊销"),
    StatusKnockout("KO02", "已注销", "Deregistered", "market", status="注销"),
    DishonestDebtorKnockout("KO03", "失信被执行人", "Dishonest judgment debtor", "court"),
)


def knockouts_of(inputs: Inputs, as_of: dt.date, usccs: pl.Series) -> pl.Series:
    """Per enterprise (in the order given), the rules that strike it, in rule order."""
    rows = pl.DataFrame({"uscc": usccs}).with_row_index("row")
    struck = [
        rows.filter(pl.col("uscc").is_in(rule.strikes(inputs, as_of))).select(
            pl.col("row").cast(pl.Int64),
            pl.struct(code=pl.lit(rule.code), label_zh=pl.lit(rule.label_zh)).alias("item"),
        )
        for rule in KNOCKOUTS
    ]
    items = pl.concat(struck).sort("row", maintain_order=True)  # stable: rule order kept
    return lists_per_row(items, usccs.len(), KNOCKOUT)
