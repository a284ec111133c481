"""Our custom GX expectations, registered in one place so stored suites that name them load.

GX registers an expectation class under its snake_case name when the class is defined, and
``gx.ExpectationSuite(expectations=[{"type": ...}])`` silently drops a type it does not know.
Importing this package (or calling :func:`register`) defines them all. It imports Great
Expectations (5–6 s): import it lazily, never at console start-up.
"""

from __future__ import annotations

# Not in CUSTOM_EXPECTATIONS (stored suites never name it): imported so GX knows the twin the
# runner hands GX in place of expect_column_pair_values_to_be_in_set (see runner.TWINS).
from pdo.validation.expectations import pair_in_set  # noqa: F401
from pdo.validation.expectations.month_not_after import ExpectColumnValuesToBeMonthNotAfter
from pdo.validation.expectations.no_personal_information import (
    ExpectColumnValuesToHoldNoPersonalInformation,
    configure,
)
from pdo.validation.expectations.valid_resident_id import ExpectColumnValuesToBeValidResidentId
from pdo.validation.expectations.valid_uscc import ExpectColumnValuesToBeValidUscc

CUSTOM_EXPECTATIONS: tuple[type, ...] = (
    ExpectColumnValuesToBeMonthNotAfter,
    ExpectColumnValuesToBeValidResidentId,
    ExpectColumnValuesToBeValidUscc,
    ExpectColumnValuesToHoldNoPersonalInformation,
)


def register() -> None:
    """Ensure every custom expectation is registered with GX (idempotent: imports did it)."""
    from great_expectations.expectations.registry import get_expectation_impl

    for cls in CUSTOM_EXPECTATIONS:
        name = cls.expectation_type  # type: ignore[attr-defined]
        if get_expectation_impl(name) is not cls:  # pragma: no cover - another class took it
            raise RuntimeError(f"GX expectation {name!r} is not {cls.__qualname__}")


__all__ = [
    "CUSTOM_EXPECTATIONS",
    "ExpectColumnValuesToBeMonthNotAfter",
    "ExpectColumnValuesToBeValidResidentId",
    "ExpectColumnValuesToBeValidUscc",
    "ExpectColumnValuesToHoldNoPersonalInformation",
    "configure",
    "register",
]
