"""Every data product, registered in one visible list (a new product is a package plus a line)."""

from __future__ import annotations

from products.credit_risk import SPEC as CREDIT_RISK
from products.operating_status import SPEC as OPERATING_STATUS
from products.spec import ProductSpec

PRODUCTS: tuple[ProductSpec, ...] = (CREDIT_RISK, OPERATING_STATUS)


def product(name: str) -> ProductSpec:
    """Look a product up by name with a clear error."""
    for spec in PRODUCTS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown product {name!r}; known: {[p.name for p in PRODUCTS]}")
