"""Enterprise keys outside the raw zone: companies by USCC, natural persons by pseudonym."""

from __future__ import annotations

import polars as pl

from pdo.privacy.checksums import INDIVIDUAL_PREFIX, is_individual_business
from pdo.privacy.pseudonym import Pseudonymizer


def entity_key(uscc: str, pseudo: Pseudonymizer) -> str:
    """A company's public USCC as is; a 个体工商户's USCC replaced by its keyed pseudonym."""
    code = uscc.strip().upper()
    return pseudo.pseudonym(code) if is_individual_business(code) else code


def entity_key_series(series: pl.Series, pseudo: Pseudonymizer) -> pl.Series:
    """The same rule over a column; joins across tables still hold (same key, same pseudonym)."""
    text = series.cast(pl.String)
    individual = text.str.starts_with(INDIVIDUAL_PREFIX).fill_null(False)
    pseudonyms = pseudo.pseudonymize_series(text.filter(individual))
    out = text.scatter(individual.arg_true(), pseudonyms) if pseudonyms.len() else text
    return out.alias(series.name)
