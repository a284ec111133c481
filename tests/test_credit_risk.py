"""The credit-risk product: no leakage, exact reason codes, knock-outs, an out-of-time card."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows.ingest import ingest_file
from flows.package import FutureMonthError, scoring_date
from pdo.scorecard.fit import ScorecardDataError
from pdo.scorecard.frozen import FrozenScorecard
from pdo.sources.tables import table
from products.credit_risk import SPEC, build, score_frame
from products.credit_risk.features import FEATURES, build_features

AS_OF = dt.date(2024, 6, 30)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    from pdo.gen import generate

    out = tmp_path_factory.mktemp("credit") / "city"
    generate(out, enterprises=3000, seed=11, progress=False)
    return {t: ingest_file(out / table(t).file_name, table(t)).clean for t in SPEC.inputs}


@pytest.fixture(scope="module")
def built(inputs):
    return build(inputs, scoring_date(inputs))


def _later_records(inputs: dict[str, pl.DataFrame], as_of: dt.date) -> dict[str, pl.DataFrame]:
    """Every kind of record, about every enterprise, made public only after the date."""
    usccs = inputs["enterprise_registry"]["uscc"]
    n, day = len(usccs), as_of + dt.timedelta(days=1)
    month = f"{(as_of + dt.timedelta(days=31)).strftime('%Y-%m')}"

    def more(name: str, rows: dict) -> pl.DataFrame:
        frame = inputs[name]
        extra = pl.DataFrame(rows).with_columns(
            [pl.lit(None, dtype=t).alias(c) for c, t in frame.schema.items() if c not in rows]
        )
        return pl.concat([frame, extra.select(frame.columns).cast(frame.schema)])

    later = dict(inputs)
    later["penalties"] = more(
        "penalties",
        {
            "uscc": usccs,
            "decided_on": [as_of - dt.timedelta(days=30)] * n,
            "published_on": [day] * n,
        },
    )
    later["court_cases"] = more(
        "court_cases",
        {
            "uscc": usccs,
            "kind": ["执行案件"] * n,
            "filed_on": [as_of] * n,
            "published_on": [day] * n,
        },
    )
    later["tax_credit"] = more(  # the grade of the as-of year is released next April
        "tax_credit", {"uscc": usccs, "year": [as_of.year] * n, "grade": ["D"] * n}
    )
    later["social_insurance"] = more(
        "social_insurance", {"uscc": usccs, "month": [month] * n, "insured_headcount": [0] * n}
    )
    later["utility_payments"] = more(
        "utility_payments",
        {"uscc": usccs, "utility": ["电费"] * n, "month": [month] * n, "arrears": [99_999] * n},
    )
    later["abnormal_operations"] = more(
        "abnormal_operations", {"uscc": usccs, "listed_on": [day] * n}
    )
    return later


def test_a_record_published_after_the_date_never_changes_a_feature_or_score(inputs, built) -> None:
    frozen = FrozenScorecard.from_dict(built.model)
    before = build_features(inputs, AS_OF).sort("uscc")
    after = build_features(_later_records(inputs, AS_OF), AS_OF).sort("uscc")
    assert before.select(FEATURES).equals(after.select(FEATURES))
    assert (frozen.score(before) == frozen.score(after)).all()


def test_the_same_records_published_by_the_date_do_change_features(inputs) -> None:
    """The control: the leakage test above would notice if dates were ignored."""
    earlier = _later_records(inputs, AS_OF - dt.timedelta(days=400))
    before = build_features(inputs, AS_OF).sort("uscc")
    after = build_features(earlier, AS_OF).sort("uscc")
    for name in ("penalties_3y", "enforcement_cases_3y", "tax_grade", "arrears_months_12m"):
        assert not before[name].equals(after[name]), name


def test_reason_codes_add_up_exactly_for_every_enterprise(built) -> None:
    frozen = FrozenScorecard.from_dict(built.model)
    scores = built.scores
    lost = scores["reasons"].list.eval(pl.element().struct.field("points_lost")).list.sum()
    assert (lost.fill_null(0) == frozen.max_score - scores["score"]).all()
    codes = scores["reasons"].explode().drop_nulls().struct.field("code")
    assert codes.str.contains(r"^R\d{2}$").all()


def test_knockouts_carry_their_codes_and_the_worst_grade(inputs, built) -> None:
    reg = inputs["enterprise_registry"].select("uscc", "status")
    out = built.scores.join(reg, on="uscc")
    codes = out["knockouts"].list.eval(pl.element().struct.field("code"))
    revoked = out.filter(pl.col("status") == "吊销")
    assert revoked.height > 0 and (revoked["grade"] == "E").all()
    assert codes.filter(out["status"] == "吊销").list.contains("KO01").all()
    assert codes.filter(out["status"] == "注销").list.contains("KO02").all()
    clean = out.filter(pl.col("knockouts").list.len() == 0)
    assert set(clean["status"].unique()) <= {"存续", "在业"}


def test_dishonest_debtor_listed_after_the_date_is_no_knockout(inputs, built) -> None:
    frozen = FrozenScorecard.from_dict(built.model)
    court = inputs["court_cases"]
    listed = court.filter((pl.col("kind") == "失信被执行人") & (pl.col("status") != "已全部履行"))
    assert listed.height > 0
    first = listed.sort("published_on").row(0, named=True)
    before = first["published_on"] - dt.timedelta(days=1)
    scored = score_frame(frozen, inputs, before)
    row = scored.filter(pl.col("uscc") == first["uscc"])
    codes = row["knockouts"].list.eval(pl.element().struct.field("code")).to_list()[0]
    assert "KO03" not in codes
    on_the_day = score_frame(frozen, inputs, first["published_on"])
    row = on_the_day.filter(pl.col("uscc") == first["uscc"])
    assert "KO03" in row["knockouts"].list.eval(pl.element().struct.field("code")).to_list()[0]


def test_a_dishonest_debtor_who_has_paid_in_full_is_no_knockout(inputs, built) -> None:
    """已全部履行 takes an enterprise off the 失信 list: no grade E, no KO03 to alert banks on
    (an entry with no status stays listed)."""
    entries = inputs["court_cases"].filter(pl.col("kind") == "失信被执行人")
    paid_off = pl.col("status").fill_null("") == "已全部履行"
    per_firm = entries.group_by("uscc").agg(paid=paid_off.all())
    paid, unpaid = per_firm.filter("paid")["uscc"], per_firm.filter(~pl.col("paid"))["uscc"]
    assert paid.len() > 0 and unpaid.len() > 0
    codes = built.scores.select(
        "uscc", ko03=pl.col("knockouts").list.eval(pl.element().struct.field("code") == "KO03")
    ).with_columns(pl.col("ko03").list.any())
    assert not codes.filter(pl.col("uscc").is_in(paid))["ko03"].any()
    assert codes.filter(pl.col("uscc").is_in(unpaid))["ko03"].all()


def test_a_month_after_the_run_does_not_redate_the_products(inputs) -> None:
    """One mistyped billing month (2062-06) is refused, never taken as the products' as-of date."""
    run_at = dt.datetime(2026, 12, 3, 8, tzinfo=dt.UTC)
    assert scoring_date(inputs, run_at) == dt.date(2026, 6, 30)
    util = inputs["utility_payments"]
    typo = pl.concat([util, util.head(1).with_columns(month=pl.lit("2062-06"))])
    with pytest.raises(FutureMonthError, match=r"utility_payments reports month 2062-06, after"):
        scoring_date(dict(inputs, utility_payments=typo), run_at)


def _with_loans(inputs: dict[str, pl.DataFrame], loans: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return dict(inputs, bank_loans=loans)


def test_degenerate_loan_tables_are_refused_with_a_reason(inputs) -> None:
    """No model rather than a traceback, a misleading message, or one score for everyone."""
    loans, as_of = inputs["bank_loans"], scoring_date(inputs)
    with pytest.raises(ScorecardDataError, match="no loan with an outcome"):
        build(_with_loans(inputs, loans.head(0)), as_of)
    same_day = loans.with_columns(issued_on=pl.lit(dt.date(2024, 3, 1)))
    with pytest.raises(ScorecardDataError, match="loans issued on more than one date"):
        build(_with_loans(inputs, same_day), as_of)
    first_bad = loans.filter(pl.col("defaulted") == 1).sort("issued_on").head(1)
    later_goods = loans.filter(
        (pl.col("defaulted") == 0) & (pl.col("issued_on") > first_bad["issued_on"].item())
    )
    one_default = pl.concat([first_bad, later_goods.sort("issued_on").head(29)])
    with pytest.raises(ScorecardDataError, match=r"1 bads \(1\) and \d+ goods"):
        build(_with_loans(inputs, one_default), as_of)


def test_card_holds_an_out_of_time_validation(built) -> None:
    card = built.metrics
    dev, oot = card["sample"]["development"], card["sample"]["out_of_time"]
    assert dev["to"] < oot["from"]  # out of time: every held-out loan is later
    assert oot["n"] > 0 and card["out_of_time"]["auc"] > 0.6
    assert card["out_of_time"]["gini"] == pytest.approx(
        2 * card["out_of_time"]["auc"] - 1, abs=2e-4
    )
    assert {c["grade"] for c in card["calibration_out_of_time"]} <= set("ABCDE")
    assert set(card["csi_out_of_time"]) == {v["variable"] for v in card["bin_tables"]}
    assert set(card["segments_out_of_time"]) == {"district", "industry_section", "size"}
    assert card["scoring"]["n_scored"] == built.scores.height
    assert {f["name"] for f in card["feature_dictionary"]} == set(FEATURES)


def test_same_data_same_model(inputs, built) -> None:
    again = build(inputs, scoring_date(inputs))
    assert again.model == built.model and again.scores.equals(built.scores)


def test_monthly_tables_scanned_lazily_give_the_same_product(inputs, built, tmp_path) -> None:
    """The pipeline hands a build the monthly tables as scans of the lake (MONTHLY_TABLES)."""
    from products.spec import MONTHLY_TABLES

    lazy: dict[str, pl.DataFrame | pl.LazyFrame] = dict(inputs)
    for name in MONTHLY_TABLES:
        inputs[name].write_parquet(tmp_path / f"{name}.parquet")
        lazy[name] = pl.scan_parquet(tmp_path / f"{name}.parquet")
    again = build(lazy, scoring_date(lazy))
    assert again.model == built.model and again.scores.equals(built.scores)


def test_grades_follow_scores(built) -> None:
    frozen = FrozenScorecard.from_dict(built.model)
    plain = built.scores.filter(pl.col("knockouts").list.len() == 0)
    expected = [frozen.scaling.grade(int(s)) for s in plain["score"]]
    assert plain["grade"].to_list() == expected
    order = np.argsort(-plain["score"].to_numpy(), kind="stable")
    grades = plain["grade"].to_numpy()[order]
    assert list(grades) == sorted(grades)  # better scores never get worse grades


def test_product_is_trained_with_the_generic_trainer(tmp_path: Path, inputs) -> None:
    """The same code as `pdo scorecard fit`: the product's training table fits there too."""
    from pdo.scorecard.fit import cross_validate
    from products.credit_risk.model import LABEL, loan_points

    points = loan_points(inputs).select(*FEATURES, LABEL)
    cv = cross_validate(points, LABEL, folds=3, seed=1)
    assert 0.55 < cv["auc_mean"] < 0.95
