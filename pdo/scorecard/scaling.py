"""Score scaling: points from odds, and risk grades by probability of default.

Odds convention (optbinning's): odds are good:bad. At ``base_score`` the odds are ``base_odds``
to 1, and every ``pdo`` points double them, so a higher score means a safer enterprise:
score = base_score + pdo · log2(odds / base_odds), with odds = (1 - PD) / PD.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# Grades by probability of default: A < 2% ≤ B < 5% ≤ C < 10% ≤ D < 20% ≤ E.
PD_BANDS: tuple[tuple[float, str], ...] = ((0.02, "A"), (0.05, "B"), (0.10, "C"), (0.20, "D"))
WORST_GRADE = "E"


@dataclass(frozen=True)
class Scaling:
    """Base score at base odds (good:bad) and points to double the odds."""

    base_score: int = 600
    base_odds: float = 50.0
    pdo: float = 20.0

    def points_at_pd(self, pd_: float) -> float:
        """The score whose good:bad odds equal (1 - pd) / pd."""
        return self.base_score + self.pdo * math.log2((1 - pd_) / pd_ / self.base_odds)

    def pd_at(self, score: float) -> float:
        """The probability of default the scaling gives a score."""
        odds = self.base_odds * 2 ** ((score - self.base_score) / self.pdo)
        return 1.0 / (1.0 + odds)

    def grade_floors(self) -> tuple[tuple[int, str], ...]:
        """(lowest score of the grade, grade), best first; E takes everything below D."""
        return tuple((math.ceil(self.points_at_pd(p)), g) for p, g in PD_BANDS)

    def grade(self, score: int) -> str:
        for floor, name in self.grade_floors():
            if score >= floor:
                return name
        return WORST_GRADE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
