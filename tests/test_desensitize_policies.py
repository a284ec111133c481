"""Column policies, classification rules, deny-by-default and determinism of desensitization."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.desensitize import (
    REDACT_ROUNDS,
    ResidualPIIError,
    ResidualScan,
    amount_band,
    desensitize,
    redact_again,
    scan_residual,
)
from flows.ingest import ingest_file
from pdo.cli import app
from pdo.lake import Lake
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.checksums import resident_id_check_char, uscc_check_char
from pdo.privacy.fastscan import FastScanner, Result
from pdo.privacy.ner import lac_backend
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.sources.contract import (
    Classification,
    Column,
    ColumnType,
    ContractError,
    Policy,
    SourceTable,
    check_contract,
    matches_code_format,
)
from pdo.sources.tables import (
    BANK_LOANS,
    COURT_CASES,
    ENTERPRISE_REGISTRY,
    PENALTIES,
    SOURCE_TABLES,
    TAX_CREDIT,
    table,
)


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> FastScanner:
    return FastScanner(build_analyzer(tmp_path_factory.mktemp("models")), ner=True)


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pdo.gen import generate

    out = tmp_path_factory.mktemp("policies") / "city"
    generate(out, enterprises=300, seed=5, progress=False)
    return out


PSEUDO = Pseudonymizer("test-key", b"k" * 32)


def _desensitize(delivery: Path, name: str, scanner) -> pl.DataFrame:
    contract = table(name)
    clean = ingest_file(delivery / contract.file_name, contract).clean
    return desensitize(clean, contract, PSEUDO, scanner).frame


@pytest.mark.parametrize("contract", SOURCE_TABLES, ids=lambda t: t.name)
def test_every_contract_respects_its_classification(contract: SourceTable) -> None:
    check_contract(contract)


def _one_column_table(column: Column, level: Classification) -> SourceTable:
    return SourceTable(
        name="t",
        department="market",
        label_zh="t",
        label_en="t",
        file_name="t.csv",
        file_format="csv",
        columns=(column,),
        classification=level,
    )


@pytest.mark.parametrize(
    ("column", "level", "message"),
    [
        (
            Column("n", ColumnType.STRING, "", "", Policy.PSEUDONYMIZE),
            Classification.CORE,
            "never leaves",
        ),
        (
            Column("m", ColumnType.STRING, "", "", Policy.KEEP, pii="CN_MOBILE"),
            Classification.GENERAL,
            "policy keep is not allowed",
        ),
        (
            Column(
                "m", ColumnType.STRING, "", "", Policy.MASK, mask_kind="mobile", pii="CN_MOBILE"
            ),
            Classification.IMPORTANT,
            "partial mobile mask",
        ),
        (
            Column("x", ColumnType.STRING, "", "", Policy.MASK),
            Classification.GENERAL,
            "needs a mask_kind",
        ),
        (
            Column(
                "p",
                ColumnType.STRING,
                "",
                "",
                Policy.MASK,
                mask_kind="name",
                pii="PERSON",
                disclosed=("PERSON",),
            ),
            Classification.GENERAL,
            "only a kept column without personal data is disclosed",
        ),
        (
            Column("c", ColumnType.STRING, "", "", code_format=r"(\d"),
            Classification.GENERAL,
            "is not a regex",
        ),
        (
            Column("c", ColumnType.INTEGER, "", "", code_format=r"\d+"),
            Classification.GENERAL,
            "a code format is for kept string columns",
        ),
        (
            Column("c", ColumnType.STRING, "", "", Policy.REDACT, code_format=r"\d+"),
            Classification.GENERAL,
            "a code format is for kept string columns",
        ),
    ],
)
def test_classification_forbids_policies(
    column: Column, level: Classification, message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        check_contract(_one_column_table(column, level))


def test_core_column_may_only_be_dropped() -> None:
    column = Column("n", ColumnType.STRING, "", "", Policy.DROP, pii="CN_RESIDENT_ID")
    check_contract(_one_column_table(column, Classification.CORE))


def _table(name: str, *columns: Column) -> SourceTable:
    """A delivered CSV table of these columns (internal classification)."""
    return SourceTable(
        name=name,
        department="market",
        label_zh=name,
        label_en=name,
        file_name="x.csv",
        file_format="csv",
        columns=columns,
    )


def test_undeclared_personal_column_is_refused_without_showing_values(scanner) -> None:
    mobiles = ["13812345678", "13987654321", "15012345678"]
    contract = _table(
        "new_table",
        Column("id", ColumnType.STRING, "编号", "id"),
        Column("contact", ColumnType.STRING, "联系方式", "contact"),
    )
    frame = pl.DataFrame({"id": ["a", "b", "c"], "contact": mobiles})
    with pytest.raises(ResidualPIIError) as info:
        desensitize(frame, contract, PSEUDO, scanner)
    message = str(info.value)
    assert "'contact'" in message and "CN_MOBILE × 3" in message and "no policy" in message
    assert not any(m in message for m in mobiles)


def test_integer_columns_are_scanned_too(scanner) -> None:
    contract = _table("ints", Column("phone", ColumnType.INTEGER, "", ""))
    with pytest.raises(ResidualPIIError, match="'phone'"):
        desensitize(pl.DataFrame({"phone": [13812345678]}), contract, PSEUDO, scanner)


# Synthetic penalty summaries (generated at 1M enterprises) where a name only shows once the text
# around it is redacted: a legal representative read as part of an organisation, and two trade
# names read as organisations until the shop's details became placeholders.
REDACTED_TWICE = [
    "2023年5月1日,执法人员对位于杭州市萧山区排岭巷261号15幢619室的杭州乐润建筑工程有限公司进行检查,"
    "发现未取得食品经营许可从事食品经营活动。当事人法定代表人柏丽(电话13814129664)到场配合调查。"
    "依据《中华人民共和国食品安全法》第一百二十二条,决定没收违法所得26539.15元,并处罚款50000元。",
    "当事人杭州市西湖区杰轩餐饮管理餐馆(经营者董想,身份证号330102198710173979,联系电话15749042665,"
    "住所杭州市西湖区人民大道69号一楼商铺)于2021年4月11日经营者未按照规定明码标价,违反了《中华人民共和国"
    "价格法》第十三条的规定。依据《中华人民共和国价格法》第四十二条,杭州市西湖区市场监督管理局决定给予警告,"
    "并处罚款2000元。",
    "当事人杭州市余杭区安铭家电维修服务部(统一社会信用代码92330110MA989385XW,经营者单鑫,"
    "联系电话13856627889,住所杭州市余杭区洋溪大道44号1613室)于2023年12月23日销售不符合保障人体健康和人身、"
    "财产安全的国家标准的产品,违反了《中华人民共和国产品质量法》第十三条的规定。依据《中华人民共和国产品质量法》"
    "第四十九条,杭州市余杭区市场监督管理局决定没收违法所得14034.13元,并处罚款3000元。",
]


CLEAN_AFTER_ONE_PASS = [
    "经营者张伟于2020年10月4日销售不合格产品，联系电话13812345678。",
    "当事人李桂花在杭州市西湖区文三路开设门店，未按规定公示年度报告。",
]


def _summaries() -> SourceTable:
    return _table(
        "summaries",
        Column("case_no", ColumnType.STRING, "", ""),
        Column("summary", ColumnType.STRING, "", "", Policy.REDACT),
    )


def test_names_the_residual_scan_finds_in_redacted_text_are_redacted_again(scanner) -> None:
    once = scanner.fast_redact(REDACTED_TWICE)
    assert scanner.count_personal(once) == {"PERSON": 3}  # one redaction pass is not enough
    frame = pl.DataFrame(
        {"case_no": ["a", "b", "c", "d"], "summary": [*REDACTED_TWICE, REDACTED_TWICE[0]]}
    )
    done = desensitize(frame, _summaries(), PSEUDO, scanner)
    assert done.residual == {}
    assert done.redacted_again == {"summary": 3}  # distinct values, not rows
    summaries = done.frame["summary"].to_list()
    assert scanner.count_personal(summaries) == {}
    assert summaries[3] == summaries[0] and done.frame["case_no"].to_list() == ["a", "b", "c", "d"]
    for before, after in zip(once, summaries, strict=False):
        assert after != before and after.count("〈姓名〉") == before.count("〈姓名〉") + 1
    assert all(name not in " ".join(summaries) for name in ("柏丽", "杰轩", "安铭"))


def test_the_residual_scan_takes_the_findings_of_the_redactions_own_rescan(
    scanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = pl.Series("summary", [*REDACTED_TWICE, *CLEAN_AFTER_ONE_PASS, None])
    redacted, rescanned = scanner.redact_and_rescan(series)
    frame = pl.DataFrame({"summary": redacted})
    own = scan_residual(frame, scanner, redacted=["summary"], scanned={"summary": rescanned})
    assert own == scan_residual(frame, scanner, redacted=["summary"])
    assert len(own.redacted_again["summary"]) == 3 and own.found == {}

    read: list[str] = []
    decode = lac_backend._decode

    def reading(model, pieces: list[str]):  # the real model, its input noted
        read.extend(pieces)
        return decode(model, pieces)

    monkeypatch.setattr(lac_backend, "_decode", reading)
    clean = frame.tail(len(CLEAN_AFTER_ONE_PASS) + 1)
    lac_backend.piece_paths.clear()
    assert scan_residual(clean, scanner, redacted=["summary"], scanned={"summary": rescanned}) == (
        ResidualScan()
    )
    assert read == []  # nothing the redaction scanned went through the model again
    assert scan_residual(clean, scanner, redacted=["summary"]) == ResidualScan()
    assert "".join(read).count("〈姓名〉") >= len(CLEAN_AFTER_ONE_PASS)


def test_redacting_again_stops_after_its_rounds_and_reports_what_is_left() -> None:
    stubborn = "经营者〈姓名〉"  # a detector that keeps finding its first two characters
    calls: list[list[str]] = []

    def rescan(values: pl.Series) -> dict[str, list[Result]]:
        calls.append(values.to_list())
        return {v: [Result("PERSON", 0, 2, 0.85)] for v in values.to_list()}

    final, left = redact_again({stubborn: [Result("PERSON", 0, 2, 0.85)]}, rescan)
    assert len(calls) == REDACT_ROUNDS
    assert final[stubborn].startswith("〈姓名〉") and final[stubborn] != stubborn
    assert list(left) == [stubborn] and left[stubborn][0].entity_type == "PERSON"


def _registry_names(names: list[str]) -> pl.DataFrame:
    row = {"uscc": "91330106MA2B3C4D5E", "legal_rep_name": "张三", "status": "存续"}
    return (
        pl.DataFrame([{**row, "name": n} for n in names])
        .with_columns(
            [pl.lit(None, pl.String).alias(c) for c in ("legal_rep_id", "legal_rep_mobile")]
            + [pl.lit(None, pl.String).alias(c) for c in ("address", "district")]
            + [pl.lit(None, pl.String).alias(c) for c in ("industry_section", "industry_division")]
            + [pl.lit(None, pl.Int64).alias("registered_capital")]
            + [pl.lit(None, pl.Date).alias("established_on")]
        )
        .select(ENTERPRISE_REGISTRY.column_names)
    )


def test_disclosed_enterprise_names_pass_but_identifiers_in_them_do_not(scanner) -> None:
    # 企业名称 is public: a place and a trade name that reads like a person are accepted ...
    names = ["杭州市西湖区苑记酒店店", "杭州市上城区方嘉餐饮管理餐馆", "杭州市余杭区苑记供应链商行"]
    frame = _registry_names(names)
    assert desensitize(frame, ENTERPRISE_REGISTRY, PSEUDO, scanner).frame["name"].to_list() == names
    # ... without the declaration the same names are refused,
    undeclared = dataclasses.replace(
        ENTERPRISE_REGISTRY,
        columns=tuple(
            dataclasses.replace(c, disclosed=()) if c.name == "name" else c
            for c in ENTERPRISE_REGISTRY.columns
        ),
    )
    with pytest.raises(ResidualPIIError, match="'name'"):
        desensitize(frame, undeclared, PSEUDO, scanner)
    # ... and an identifier hidden in a name is still found.
    leaking = _registry_names(["杭州市西湖区13812345678商行"])
    with pytest.raises(ResidualPIIError, match=r"'name' holds personal information \(CN_MOBILE"):
        desensitize(leaking, ENTERPRISE_REGISTRY, PSEUDO, scanner)


def _cases(code_format: str | None) -> SourceTable:
    return _table("cases", Column("case_no", ColumnType.STRING, "", "", code_format=code_format))


def test_code_shaped_values_skip_ner_but_not_the_patterns_and_others_get_both(scanner) -> None:
    court = COURT_CASES.column("case_no").code_format
    # A case number in its shape passes; prose in a case-number column is read by NER ...
    fine = pl.DataFrame({"case_no": ["(2019)浙0182执15号", "(2020)京01执恢3号"]})
    assert desensitize(fine, _cases(court), PSEUDO, scanner).residual == {}
    prose = pl.DataFrame(
        {"case_no": ["(2019)浙0182执15号", "被执行人张伟住杭州市西湖区文三路90号"]}
    )
    with pytest.raises(ResidualPIIError, match=r"'case_no' holds personal information \(.*PERSON"):
        desensitize(prose, _cases(court), PSEUDO, scanner)
    # ... a value of the declared shape is not (which is why a shape must leave no room for a
    # name: this one does, and the name in it passes) ...
    loose = pl.DataFrame({"case_no": ["张伟"]})
    with pytest.raises(ResidualPIIError, match="PERSON"):
        desensitize(loose, _cases(None), PSEUDO, scanner)
    assert desensitize(loose, _cases(r"\p{Han}{2}"), PSEUDO, scanner).residual == {}
    # ... but the patterns still read it: an ID number in the shape is refused.
    with pytest.raises(ResidualPIIError, match="CN_RESIDENT_ID"):
        desensitize(
            pl.DataFrame({"case_no": ["330102198710173979"]}),
            _cases(r"\d{17}[\dX]"),
            PSEUDO,
            scanner,
        )


@pytest.mark.parametrize(
    ("column", "value", "in_format"),
    [
        (COURT_CASES.column("case_no"), "(2019)浙0182执15号", True),
        (COURT_CASES.column("case_no"), "(2020)京01执恢3号", True),
        (COURT_CASES.column("case_no"), "(2021)沪执异12号", True),
        (COURT_CASES.column("case_no"), "(2019)浙江0182执15号", False),  # two free characters
        (COURT_CASES.column("case_no"), "(2019)浙0182民初15号", False),  # not an enforcement case
        (COURT_CASES.column("case_no"), "被执行人张伟(2019)浙0182执15号", False),
        (COURT_CASES.column("case_no"), "(19)浙0182执15号", False),
        (BANK_LOANS.column("loan_id"), "HZB2023010000001", True),
        (BANK_LOANS.column("loan_id"), "HZB202301000001", False),
        (BANK_LOANS.column("loan_id"), "ZHANGWEI20230100", False),
        (BANK_LOANS.column("loan_id"), "HZB2023010000001 张伟", False),
    ],
)
def test_code_formats_of_the_contracts(column: Column, value: str, in_format: bool) -> None:
    assert column.code_format is not None
    assert matches_code_format(pl.Series([value]), column.code_format).item() is in_format


def test_registry_policies(delivery: Path, scanner) -> None:
    out = _desensitize(delivery, "enterprise_registry", scanner)
    assert "legal_rep_mobile" not in out.columns  # dropped
    assert out["legal_rep_id"].str.contains(r"^p_[0-9a-f]{24}$").all()
    assert out["legal_rep_name"].str.contains(r"^.\*+$").all()
    individual = out.filter(pl.col("uscc").str.starts_with("p_"))
    assert individual.height > 0 and not out["uscc"].str.starts_with("92").any()
    assert out["address"].str.contains(r"\d+号").sum() == 0  # no street numbers left


def test_pseudonyms_join_across_tables(delivery: Path, scanner) -> None:
    raw = {
        name: ingest_file(delivery / table(name).file_name, table(name)).clean
        for name in ("enterprise_registry", TAX_CREDIT.name)
    }
    raw_joins = raw[TAX_CREDIT.name].join(raw["enterprise_registry"].select("uscc"), on="uscc")
    registry = _desensitize(delivery, "enterprise_registry", scanner)
    tax = _desensitize(delivery, TAX_CREDIT.name, scanner)
    assert tax.filter(pl.col("uscc").str.starts_with("p_")).height > 0
    # exactly the rows that joined before desensitization still join after it
    assert tax.join(registry.select("uscc"), on="uscc").height == raw_joins.height > 0


def test_same_input_gives_byte_identical_output(delivery: Path, scanner, tmp_path: Path) -> None:
    contract = ENTERPRISE_REGISTRY
    blobs = []
    for attempt in ("a", "b"):
        frame = _desensitize(delivery, contract.name, scanner)
        m = Lake(tmp_path / attempt).write(
            frame, table=contract.name, zone="desensitized", stage="desensitize"
        )
        blobs.append((m.id, (Lake(tmp_path / attempt).dir_for(m) / m.file_name).read_bytes()))
    assert blobs[0] == blobs[1]


def _delivered(directory: Path, contract: SourceTable, rows: list[list[str]]) -> pl.DataFrame:
    """The clean frame of a CSV delivery of these rows, read as the pipeline reads it."""
    path = directory / contract.file_name
    with path.open("w", newline="", encoding=contract.encoding or "utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(contract.column_names)
        writer.writerows(rows)
    return ingest_file(path, contract).clean


SYNTHETIC_RID = "33010619850412301" + resident_id_check_char("33010619850412301")
SYNTHETIC_MOBILE = "13912345678"
SYNTHETIC_USCC = "91330106MA2B7K3Q4" + uscc_check_char("91330106MA2B7K3Q4")


def test_numbers_written_in_groups_inside_free_text_are_redacted(scanner, tmp_path: Path) -> None:
    r, m = SYNTHETIC_RID, SYNTHETIC_MOBILE
    seps = ["\t", "  ", "\u2013", " \n"]  # NFKC at ingest folds none of these
    summaries = [
        f"法定代表人身份证号{r[:6]} {r[6:14]} {r[14:]}，责令改正。",
        f"法定代表人身份证号{r[:6]}-{r[6:14]}-{r[14:]}，责令改正。",
        f"法定代表人身份证号{r[:10]}\n{r[10:]}，责令改正。",
        *[f"法定代表人身份证号{r[:6]}{sep}{r[6:14]}{sep}{r[14:]}，责令改正。" for sep in seps],
        f"联系电话{m[:3]}.{m[3:7]}.{m[7:]}，责令改正。",
        f"联系电话{m[:3]}\n{m[3:7]}\n{m[7:]}，责令改正。",
        *[f"联系电话{m[:3]}{sep}{m[3:7]}{sep}{m[7:]}，责令改正。" for sep in seps],
    ]
    out = desensitize(_penalties(tmp_path, summaries), PENALTIES, PSEUDO, scanner)
    redacted = out.frame["summary"].to_list()
    assert out.residual == {}
    assert all(re.sub(r"[^0-9Xx]", "", text) == "" for text in redacted), redacted
    assert redacted == [
        *["法定代表人身份证号〈身份证号〉,责令改正。"] * 7,  # NFKC at ingest
        *["联系电话〈手机号〉,责令改正。"] * 6,
    ]


def test_amounts_of_mobile_shape_in_fen_are_money_not_personal_data(
    scanner, tmp_path: Path
) -> None:
    """1.5亿 yuan is 15000000000 fen: 11 digits starting 15, yet an amount, not a mobile."""
    court = [
        [
            "(2024)浙0106执1号",
            SYNTHETIC_USCC,
            "执行案件",
            "2024-01-05",
            "",
            "150000000.00",
            "执行中",
        ],
        ["(2024)浙0106执2号", SYNTHETIC_USCC, "执行案件", "2024-02-05", "", "20000.00", "执行中"],
    ]
    tax = [[SYNTHETIC_USCC, "2024", "A", "138500000.00"], [SYNTHETIC_USCC, "2023", "A", "90000.00"]]
    for contract, rows, column, fen in (
        (COURT_CASES, court, "amount", [15_000_000_000, 2_000_000]),
        (TAX_CREDIT, tax, "tax_paid", [13_850_000_000, 9_000_000]),
    ):
        clean = _delivered(tmp_path, contract, rows)
        assert clean[column].to_list() == fen
        out = desensitize(clean, contract, PSEUDO, scanner)
        assert out.residual == {} and out.frame[column].to_list() == fen


def test_an_amount_ending_a_line_and_a_year_starting_the_next_are_kept(
    scanner, tmp_path: Path
) -> None:
    summaries = [
        "责令改正，处以罚款1500000\n2024年3月1日前缴清。",
        "没收违法所得1380000\n2023年度经营额核减。",
    ]
    out = desensitize(_penalties(tmp_path, summaries), PENALTIES, PSEUDO, scanner)
    assert out.frame["summary"].to_list() == [s.replace("，", ",") for s in summaries]  # NFKC


def _penalties(tmp_path: Path, summaries: list[str]) -> pl.DataFrame:
    """A delivered penalties table with one decision per summary."""
    rows = [
        [f"杭市监罚〔2026〕{i}号", SYNTHETIC_USCC, "2026-03-01", "", "杭州市市场监督管理局",
         "1000.00", summary]
        for i, summary in enumerate(summaries, 1)
    ]  # fmt: skip
    return _delivered(tmp_path, PENALTIES, rows)


def test_amount_bands() -> None:
    fen = pl.Series([0, 999_999, 1_000_000, 50_000_000_00, None], dtype=pl.Int64)
    assert amount_band(fen).to_list() == ["<1万", "<1万", "1万-10万", "1000万-1亿", None]


def test_pii_scan_cli(tmp_path: Path) -> None:
    lines = (
        "\n".join(
            json.dumps({"text": t}, ensure_ascii=False)
            for t in ["联系电话13812345678。", "无个人信息", "联系电话１３８１２３４５６７８。"]
        )
        + "\n"
    )
    result = CliRunner().invoke(
        app, ["pii", "scan", "--json"], input=lines, env={"PDO_HOME": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    first, second, wide = (json.loads(x) for x in result.output.strip().splitlines())
    assert first["entities"] == [{"type": "CN_MOBILE", "start": 4, "end": 15, "score": 0.5}]
    assert second["entities"] == []
    assert wide["entities"] == first["entities"]  # typed in full width: found at the same place
    bad = CliRunner().invoke(
        app, ["pii", "scan"], input="not json\n", env={"PDO_HOME": str(tmp_path)}
    )
    assert bad.exit_code == 1 and "line 1" in bad.output


def test_dataclass_contracts_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENTERPRISE_REGISTRY.name = "x"  # type: ignore[misc]
