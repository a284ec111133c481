"""Every console page in one place: its title in both languages, its section and who may open it.

Adding a page is a new file under ``app_pages/`` plus one entry here; navigation, the role check
on the page itself and the tests all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdo.users import Role

OPERATOR, REVIEWER, REGULATOR = Role.OPERATOR.value, Role.REVIEWER.value, Role.REGULATOR.value
EVERYONE = frozenset({OPERATOR, REVIEWER, REGULATOR})
SUPERVISORS = frozenset({REVIEWER, REGULATOR})  # who audits the operator, not the operator itself


@dataclass(frozen=True)
class ConsolePage:
    """One page: file ``app_pages/<key>.py``, served at ``/<key>``."""

    key: str
    title_zh: str
    title_en: str
    icon: str
    section: str  # "operation" | "supervision"
    roles: frozenset[str]

    @property
    def path(self) -> str:
        return f"app_pages/{self.key}.py"


PAGES: tuple[ConsolePage, ...] = (
    ConsolePage("overview", "总览", "Overview", ":material/dashboard:", "operation", EVERYONE),
    ConsolePage(
        "authorizations", "授权管理", "Authorizations", ":material/gavel:", "supervision", EVERYONE
    ),
    ConsolePage(
        "lineage", "运行与血缘", "Runs & lineage", ":material/account_tree:", "operation", EVERYONE
    ),
    ConsolePage(
        "signoff", "合规审查", "Sign-off queue", ":material/fact_check:", "operation", EVERYONE
    ),
    ConsolePage("quality", "质量报告", "Quality reports", ":material/rule:", "operation", EVERYONE),
    ConsolePage(
        "products", "数据产品", "Data products", ":material/analytics:", "operation", EVERYONE
    ),
    ConsolePage(
        "usage", "使用审计", "Usage audit", ":material/query_stats:", "supervision", SUPERVISORS
    ),
    ConsolePage(
        "anomalies", "异常告警", "Anomalies", ":material/warning:", "supervision", SUPERVISORS
    ),
    ConsolePage(
        "revenue",
        "收益分配",
        "Revenue",
        ":material/pie_chart:",
        "supervision",
        frozenset({OPERATOR, REGULATOR}),
    ),
    ConsolePage(
        "audit", "审计链", "Audit chain", ":material/verified_user:", "supervision", SUPERVISORS
    ),
    ConsolePage("objections", "异议", "Objections", ":material/feedback:", "operation", EVERYONE),
)

SECTIONS = {"operation": ("运营", "Operation"), "supervision": ("监管", "Supervision")}


def landing_page(role: str) -> str:
    """Where a user lands after logging in: reviewers at their queue, everyone else the overview."""
    return "signoff" if role == REVIEWER else "overview"


def page(key: str) -> ConsolePage:
    """A page by key, with a clear error for a typo."""
    for p in PAGES:
        if p.key == key:
            return p
    raise KeyError(f"no console page {key!r}; known: {[p.key for p in PAGES]}")


def pages_for(role: str) -> list[ConsolePage]:
    """The pages this role may open, in menu order."""
    return [p for p in PAGES if role in p.roles]
