"""`pdo gen`: reproducible files that match the contracts, with exactly the documented dirt."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pdo.cli import app
from pdo.gen import GenerationReport, generate
from pdo.gen.enterprises import build_population
from pdo.gen.loans import loan_frame
from pdo.gen.pools import build_pools
from pdo.privacy.checksums import is_valid_resident_id, is_valid_uscc, uscc_check_char
from pdo.sources.contract import ColumnType, SourceTable
from pdo.sources.tables import (
    BANK_LOANS,
    ENTERPRISE_REGISTRY,
    PENALTIES,
    SOURCE_TABLES,
    TAX_CREDIT,
    UTILITY_PAYMENTS,
)

N = 1000
SEED = 11
FULL_WIDTH = set("０１２３４５６７８９")
# Empty by meaning, not dirt: a listing that has not been removed yet.
NULLABLE_BY_MEANING = {("abnormal_operations", "removed_on")}
CHECKED_KINDS = (
    "invalid_uscc_check",
    "invalid_resident_id_check",
    "missing_value",
    "full_width_digits",
    "mixed_date_format",
    "unparsable_value",
)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationReport]:
    out = tmp_path_factory.mktemp("city")
    return out, generate(out, enterprises=N, seed=SEED, progress=False)


def read_cells(path: Path, table: SourceTable) -> tuple[list[str], list[list[str | None]]]:
    """Header and rows of a delivered file, every cell as text (None when empty)."""
    if table.file_format == "csv":
        text = path.read_bytes().decode(table.encoding)
        rows = list(csv.reader(io.StringIO(text)))
        return rows[0], [[v if v != "" else None for v in r] for r in rows[1:]]
    if table.file_format == "xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        header: list[str] = []
        out: list[list[str | None]] = []
        for ws in wb.worksheets:
            rows = ws.iter_rows(values_only=True)
            header = [str(h) for h in next(rows)]
            out += [[None if v is None else str(v) for v in r] for r in rows]
        wb.close()
        return header, out
    t = pq.read_table(path)
    cols = [t.column(i).to_pylist() for i in range(t.num_columns)]
    return t.column_names, [list(r) for r in zip(*cols, strict=True)]


def _real_date(y: str, m: str, d: str) -> bool:
    try:
        dt.date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def classify(value: str | None, table: SourceTable, column: str) -> str | None:
    """Which kind of dirt a cell shows, judged from the cell alone (None = clean)."""
    col = table.column(column)
    if value is None:
        return None if (table.name, column) in NULLABLE_BY_MEANING else "missing_value"
    if any(ch in FULL_WIDTH for ch in value):
        assert classify(unicodedata.normalize("NFKC", value), table, column) is None, value
        return "full_width_digits"
    if column == "uscc":
        return None if is_valid_uscc(value) else "invalid_uscc_check"
    if column == "legal_rep_id":
        return None if is_valid_resident_id(value) else "invalid_resident_id_check"
    if col.type is ColumnType.DATE:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return None if _real_date(*value.split("-")) else "unparsable_value"
        for pattern in (
            r"(\d{4})/(\d{2})/(\d{2})",
            r"(\d{4})年(\d{1,2})月(\d{1,2})日",
            r"(\d{4})(\d{2})(\d{2})",
        ):
            m = re.fullmatch(pattern, value)
            if m and _real_date(*m.groups()):
                return "mixed_date_format"
        return "unparsable_value"
    if col.type is ColumnType.MONTH:
        if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
            return None
        for pattern in (
            r"\d{4}/(0[1-9]|1[0-2])",
            r"\d{4}年([1-9]|1[0-2])月",
            r"\d{4}(0[1-9]|1[0-2])",
        ):
            if re.fullmatch(pattern, value):
                return "mixed_date_format"
        return "unparsable_value"
    if col.type is ColumnType.DECIMAL:
        return None if re.fullmatch(r"\d+\.\d{2}", value) else "unparsable_value"
    if col.type is ColumnType.INTEGER:
        return None if re.fullmatch(r"\d+", value) else "unparsable_value"
    return None


def dirt_log(out: Path) -> dict[str, Any]:
    return json.loads((out / "dirt.json").read_text(encoding="utf-8"))


def documented(out: Path, file_name: str, kinds: tuple[str, ...]) -> set[tuple[str, int, str]]:
    return {
        (e["kind"], e["row"], e["column"])
        for e in dirt_log(out)["files"][file_name]
        if e["kind"] in kinds
    }


def hashes(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, enterprises=300, seed=5, progress=False)
    generate(b, enterprises=300, seed=5, progress=False)
    generate(c, enterprises=300, seed=6, progress=False)
    ha, hb, hc = hashes(a), hashes(b), hashes(c)
    assert len(ha) == 12
    assert ha == hb
    for t in SOURCE_TABLES:
        assert ha[t.file_name] != hc[t.file_name], t.file_name


def test_files_match_contracts_and_formats(city: tuple[Path, GenerationReport]) -> None:
    out, report = city
    for t in SOURCE_TABLES:
        header, rows = read_cells(out / t.file_name, t)
        assert header == t.column_names, t.name
        assert len(rows) == report.row_counts[t.file_name] > 0, t.name
    gbk = (out / TAX_CREDIT.file_name).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    assert gbk.decode("gbk").splitlines()[0] == ",".join(TAX_CREDIT.column_names)
    xlsx = pd.read_excel(out / "hrss_social_insurance.xlsx", dtype=str)
    assert list(xlsx.columns) == ["uscc", "month", "insured_headcount"]
    assert openpyxl.load_workbook(out / "hrss_social_insurance.xlsx").sheetnames == [
        "社会保险参保人数"
    ]
    assert (
        pq.read_table(out / UTILITY_PAYMENTS.file_name).column_names
        == UTILITY_PAYMENTS.column_names
    )
    manifest = json.loads((out / "generation.json").read_text(encoding="utf-8"))
    assert manifest["params"] == {"enterprises": N, "seed": SEED}
    assert manifest["as_of"] == "2026-06-30"
    assert manifest["row_counts"] == report.row_counts
    dictionary = pd.read_csv(out / "data_dictionary.csv", dtype=str)
    assert len(dictionary) == sum(len(t.columns) for t in SOURCE_TABLES)
    assert set(dictionary["type"]) <= {str(c) for c in ColumnType}
    assert (out / "data_dictionary.md").read_text(encoding="utf-8").count("## ") == len(
        SOURCE_TABLES
    )


def test_every_dirty_cell_is_documented_and_every_documented_cell_is_dirty(
    city: tuple[Path, GenerationReport],
) -> None:
    out, report = city
    log = dirt_log(out)
    found_counts: Counter[str] = Counter()
    for t in SOURCE_TABLES:
        header, rows = read_cells(out / t.file_name, t)
        found = set()
        seen: dict[tuple[str | None, ...], int] = {}
        duplicates = set()
        for i, row in enumerate(rows, start=1):
            key = tuple(row)
            if key in seen:
                duplicates.add(i)
                continue
            seen[key] = i
            for column, value in zip(header, row, strict=True):
                kind = classify(value, t, column)
                if kind:
                    found.add((kind, i, column))
        assert found == documented(out, t.file_name, CHECKED_KINDS), t.name
        assert duplicates == {row for _, row, _ in documented(out, t.file_name, ("duplicate_row",))}
        found_counts.update(k for k, _, _ in found)
        found_counts.update(["duplicate_row"] * len(duplicates))
    assert dict(found_counts) == {k: v for k, v in log["counts"].items() if v}
    assert log["counts"] == report.dirt_counts
    for kind, count in report.dirt_counts.items():
        assert count > 0, f"{kind} was not planted"


def test_duplicates_point_at_identical_earlier_rows(city: tuple[Path, GenerationReport]) -> None:
    out, _ = city
    planted_in = set()
    for t in SOURCE_TABLES:
        _, rows = read_cells(out / t.file_name, t)
        for e in dirt_log(out)["files"][t.file_name]:
            if e["kind"] == "duplicate_row":
                source = int(e["detail"].rsplit(" ", 1)[1])
                assert source < e["row"] and rows[source - 1] == rows[e["row"] - 1]
                planted_in.add(t.name)
    assert {"enterprise_registry", "tax_credit", "penalties"} <= planted_in


def test_checksum_failures_are_exactly_the_documented_ones(
    city: tuple[Path, GenerationReport],
) -> None:
    out, _ = city
    tables_with_bad_uscc = set()
    for t in SOURCE_TABLES:
        header, rows = read_cells(out / t.file_name, t)
        for column, kind, valid in (
            ("uscc", "invalid_uscc_check", is_valid_uscc),
            ("legal_rep_id", "invalid_resident_id_check", is_valid_resident_id),
        ):
            if column not in header:
                continue
            j = header.index(column)
            failing = {
                (kind, i, column)
                for i, r in enumerate(rows, start=1)
                if r[j] is not None and not valid(unicodedata.normalize("NFKC", r[j]))
            }
            assert failing == documented(out, t.file_name, (kind,)), (t.name, column)
            if failing and column == "uscc":
                tables_with_bad_uscc.add(t.name)
    assert "enterprise_registry" in tables_with_bad_uscc and len(tables_with_bad_uscc) >= 2
    registry = read_cells(out / ENTERPRISE_REGISTRY.file_name, ENTERPRISE_REGISTRY)[1]
    bad = [r for r in registry if r[0] and not is_valid_uscc(unicodedata.normalize("NFKC", r[0]))]
    assert 0 < len(bad) <= 0.01 * N + 2


def test_identifiers_in_free_text_pass_their_checksums(city: tuple[Path, GenerationReport]) -> None:
    out, _ = city
    header, rows = read_cells(out / PENALTIES.file_name, PENALTIES)
    j = header.index("summary")
    ids, usccs = [], []
    for r in rows:
        for m in re.finditer(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9A-Z])", r[j] or ""):
            after_code_label = (r[j] or "")[: m.start()].endswith("统一社会信用代码")
            (usccs if after_code_label else ids).append(m.group())
    assert len(ids) > 50 and len(usccs) > 10
    assert all(is_valid_resident_id(v) for v in ids)
    assert all(is_valid_uscc(v) for v in usccs)


def test_penalty_summaries_name_the_legal_representative(
    city: tuple[Path, GenerationReport],
) -> None:
    out, _ = city
    registry = pd.read_csv(out / ENTERPRISE_REGISTRY.file_name, dtype=str, keep_default_na=False)
    registry = registry[registry["legal_rep_id"].map(is_valid_resident_id)]
    reps = registry.drop_duplicates("uscc").set_index("uscc")
    penalties = pd.read_csv(out / PENALTIES.file_name, dtype=str).dropna(subset=["summary"])
    penalties = penalties[penalties["uscc"].isin(reps.index)]
    summaries = penalties["summary"].tolist()
    rep = reps.loc[penalties["uscc"]]
    named = [s for s, n in zip(summaries, rep["legal_rep_name"], strict=True) if n in s]
    with_id = [s for s, i in zip(summaries, rep["legal_rep_id"], strict=True) if i in s]
    with_phone = [
        s for s, p in zip(summaries, rep["legal_rep_mobile"], strict=True) if p and p in s
    ]
    with_address = [s for s, a in zip(summaries, rep["address"], strict=True) if a and a in s]
    assert len(named) > 0.8 * len(summaries)
    assert 0.3 * len(summaries) < len(with_id) < len(summaries)
    assert 0.2 * len(summaries) < len(with_phone) < len(summaries)
    assert 0.2 * len(summaries) < len(with_address) < len(summaries)
    openings = Counter(s[:2] for s in summaries)
    assert len(openings) >= 5


def test_foreign_keys_hold_apart_from_documented_dirt(city: tuple[Path, GenerationReport]) -> None:
    out, _ = city
    _, registry = read_cells(out / ENTERPRISE_REGISTRY.file_name, ENTERPRISE_REGISTRY)
    written = {unicodedata.normalize("NFKC", r[0]) for r in registry if r[0]}
    prefixes = {u[:17] for u in written}
    # A registry code with a wrong check character: the firm exists, others carry the right code.
    mistyped = {u[:17] + uscc_check_char(u[:17]) for u in written if not is_valid_uscc(u)}
    for t in SOURCE_TABLES:
        if t is ENTERPRISE_REGISTRY:
            continue
        header, rows = read_cells(out / t.file_name, t)
        j = header.index("uscc")
        own_dirt = {
            row
            for _, row, _ in documented(out, t.file_name, ("invalid_uscc_check", "missing_value"))
        }
        for i, r in enumerate(rows, start=1):
            if r[j] is None:
                assert i in own_dirt
                continue
            code = unicodedata.normalize("NFKC", r[j])
            assert code[:17] in prefixes, (t.name, i, code)
            assert code in written or code in mistyped or i in own_dirt, (t.name, i, code)


def test_values_are_clean_and_consistent(city: tuple[Path, GenerationReport]) -> None:
    out, _ = city
    registry = pd.read_csv(out / ENTERPRISE_REGISTRY.file_name, dtype=str, keep_default_na=False)
    assert registry["name"].drop_duplicates().size == registry.drop_duplicates().shape[0]
    assert registry["status"].isin(["存续", "在业", "吊销", "注销"]).all()
    assert (registry["status"].isin(["存续", "在业"]).mean()) > 0.75
    mobiles = registry["legal_rep_mobile"].map(lambda s: unicodedata.normalize("NFKC", s))
    assert mobiles[mobiles != ""].str.fullmatch(r"1[3-9]\d{9}").all()
    assert registry["industry_section"].str.fullmatch(r"[A-T]").all()
    codes = registry["uscc"].map(lambda s: unicodedata.normalize("NFKC", s))
    assert codes.str.fullmatch(r"9[123]33\d{4}[0-9A-Z]{10}").all()
    assert all(_organization_code_ok(c[8:17]) for c in codes)
    kind = codes.str[1]
    assert registry.loc[kind == "1", "name"].str.contains("公司").all()
    assert registry.loc[kind == "3", "name"].str.endswith("专业合作社").all()
    assert not registry.loc[kind == "2", "name"].str.contains("公司").any()
    assert (registry["address"].str.startswith("杭州市") | (registry["address"] == "")).all()
    utilities = pq.read_table(out / UTILITY_PAYMENTS.file_name).to_pandas()
    clean = utilities.dropna()
    clean = clean[
        clean[["amount_due", "amount_paid", "arrears"]]
        .apply(lambda c: c.str.fullmatch(r"\d+\.\d{2}"))
        .all(axis=1)
    ]
    fen = clean[["amount_due", "amount_paid", "arrears"]].map(lambda s: int(s.replace(".", "")))
    assert (fen["amount_due"] - fen["amount_paid"] == fen["arrears"]).all()
    assert set(utilities["utility"]) == {"water", "electricity"}
    penalties = pd.read_csv(out / PENALTIES.file_name, dtype=str)
    decided = pd.to_datetime(penalties["decided_on"], format="%Y-%m-%d", errors="coerce")
    published = pd.to_datetime(penalties["published_on"], format="%Y-%m-%d", errors="coerce")
    both = decided.notna() & published.notna()
    assert both.mean() > 0.9
    assert (published[both] > decided[both]).all()
    assert (published[both] <= pd.Timestamp("2026-06-30")).all()
    assert penalties["case_no"].str.fullmatch(r".+〔20\d\d〕\d+号").all()
    courts = pd.read_csv(out / "court_enforcement.csv", dtype=str)
    assert courts["case_no"].is_unique
    assert courts["case_no"].str.fullmatch(r"\(20\d\d\)浙\d{2,4}执\d+号").all()


def _organization_code_ok(code: str) -> bool:
    """GB 11714 MOD 11 check of the 9-character organization code inside a USCC."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c, 36) * w for c, w in zip(code[:8], weights, strict=True))
    check = 11 - total % 11
    return code[8] == {10: "X", 11: "0"}.get(check, str(check))


def _loan_features(out: Path) -> pd.DataFrame:
    loans = pd.read_csv(out / BANK_LOANS.file_name, dtype=str)
    tax = pd.read_csv(out / TAX_CREDIT.file_name, dtype=str, encoding="gbk")
    score = {"A": 0, "B": 1, "M": 1, "C": 3, "D": 4}
    grades = tax.assign(g=tax["grade"].map(score)).groupby("uscc")["g"].mean()
    utilities = pq.read_table(out / UTILITY_PAYMENTS.file_name).to_pandas()
    utilities["arrears"] = pd.to_numeric(utilities["arrears"], errors="coerce")
    arrears = utilities.assign(late=utilities["arrears"] > 0).groupby("uscc")["late"].mean()
    courts = pd.read_csv(out / "court_enforcement.csv", dtype=str).groupby("uscc").size()
    return loans.assign(
        defaulted=loans["defaulted"].astype(int),
        grade=loans["uscc"].map(grades),
        late=loans["uscc"].map(arrears).fillna(0),
        cases=loans["uscc"].map(courts).fillna(0),
    )


def test_default_rate_and_latent_risk_signal(city: tuple[Path, GenerationReport]) -> None:
    out, report = city
    x = _loan_features(out)
    assert 0.2 * N < len(x) < 0.4 * N
    assert 0.04 <= report.default_rate <= 0.15  # ~340 loans: the design rate ± sampling noise
    assert x["defaulted"].mean() == pytest.approx(report.default_rate)
    by = x.groupby("defaulted")[["grade", "late", "cases"]].mean()
    assert by.loc[1, "grade"] > by.loc[0, "grade"] + 0.2
    assert by.loc[1, "late"] > 1.5 * by.loc[0, "late"]
    assert by.loc[1, "cases"] > 1.2 * by.loc[0, "cases"]


def test_design_default_rate_of_a_large_city() -> None:
    """Without writing files: 30,000 firms, about 9,000 loans, default rate near 8%."""
    pop = build_population(SEED, 30_000, build_pools(SEED))
    loans = loan_frame(pop, SEED)
    rate = (loans["defaulted"] == "1").mean()
    assert 0.25 * pop.n < loans.height < 0.35 * pop.n
    assert 0.06 <= rate <= 0.10


def test_cli_writes_and_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "delivery"
    args = ["gen", "--out", str(out), "--enterprises", "300", "--seed", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "market_enterprise_registry.csv" in result.output
    for t in SOURCE_TABLES:
        assert (out / t.file_name).stat().st_size > 0
    before = hashes(out)
    again = runner.invoke(app, args)
    assert again.exit_code != 0
    assert "not empty" in again.output and "--force" in again.output
    assert hashes(out) == before
    forced = runner.invoke(app, [*args, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    report = json.loads(forced.output[forced.output.index("{") :])
    assert report["params"] == {"enterprises": 300, "seed": 1}
    assert report["row_counts"]["market_enterprise_registry.csv"] >= 300
    assert hashes(out) == before
