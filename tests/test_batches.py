"""Batch delivery: a bank's portfolio file, its manifest and checksum, billed once, never leaking.

A real SQLite ledger seeded through the project's own functions (tests/console_seed.py), a real
uvicorn server over HTTP, files read back with polars and the csv module, output scanned with
the project's recognizers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from pdo import audit
from pdo.delivery.identity import shown_as
from pdo.ledger.db import session_scope
from pdo.ledger.models import (
    AuditEvent,
    Authorization,
    BatchFile,
    Objection,
    RefusedCall,
    ScoreCorrection,
    ServedScore,
    Subscription,
    UsageEvent,
    Watchlist,
    WatchlistMember,
)
from pdo.ledger.types import utcnow
from pdo.privacy.analyzer import build_analyzer
from pdo.privacy.checksums import uscc_check_char
from pdo.privacy.entity_key import entity_key
from pdo.privacy.fastscan import FastScanner
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.registration import revoke_authorization
from pdo.settings import Settings
from pdo.subscribers import add_subscriber
from pdo.workspace import Workspace
from tests.console_seed import PRICE_FEN, seed_console
from tests.live_api import serve_api

VERSION = "credit_risk@1"


def uscc(first17: str) -> str:
    """A valid GB 32100 code: the recognizers only report codes whose check character holds."""
    return first17 + uscc_check_char(first17)


SERVED = uscc("91310000MA1K20001")  # a company, served as signed
INDIVIDUAL = uscc("92310115MA1K23456")  # a 个体工商户: a natural person's code
DISPUTED = uscc("91310000MA1K20003")  # an open objection: withheld
MISSING = uscc("91310000MA1K20004")  # not in the version
CORRECTED = uscc("91310000MA1K20005")  # re-scored after an upheld objection
LATER = uscc("91310000MA1K20006")  # added to the watchlist later
# The bank's own references, each a formula a spreadsheet would run if written as is.
REFERENCES = {
    SERVED: '=HYPERLINK("http://evil.example","x")',
    INDIVIDUAL: "+1+cmd|' /C calc'!A0",
    DISPUTED: "-2+3",
    MISSING: "@SUM(A1:A9)",
    CORRECTED: "\tloan-5",
}


@dataclass(frozen=True)
class Bank:
    """A seeded home with one bank, its key and its watchlist of five enterprises."""

    settings: Settings
    engine: Engine
    pseudo: Pseudonymizer
    api_key: str
    subscriber_id: str
    watchlist_id: str


@pytest.fixture
def bank(tmp_path: Path) -> Bank:
    """seed_console's ledger, scores for the version, an objection, a correction, a watchlist."""
    seed_console(tmp_path)
    settings = Settings(home=tmp_path, database_url=None)
    engine = Workspace.open(settings).engine
    pseudo = Pseudonymizer.from_settings(settings)
    key = {code: entity_key(code, pseudo) for code in (*REFERENCES, LATER)}
    with session_scope(engine) as s:
        for code, score, grade in (
            (SERVED, 642, "B"),
            (INDIVIDUAL, 588, "C"),
            (DISPUTED, 701, "A"),
            (CORRECTED, 520, "D"),
            (LATER, 660, "B"),
        ):
            s.add(
                ServedScore(
                    product_version_id=VERSION,
                    uscc=key[code],
                    score=score,
                    grade=grade,
                    details={"reasons": ["R01", "R07"]},
                )
            )
        s.add(_objection(key[DISPUTED], "open"))
        upheld = _objection(key[CORRECTED], "resolved")
        s.add(upheld)
        s.flush()
        s.add(
            ScoreCorrection(
                product_version_id=VERSION,
                uscc=key[CORRECTED],
                objection_id=upheld.id,
                score=610,
                grade="B",
                details={"reasons": ["R02"]},
            )
        )
        subscriber, api_key = add_subscriber(s, "测试银行", "admin", ["credit_risk"])
        watchlist = Watchlist(
            name="贷后组合", product_name="credit_risk", subscriber_id=subscriber.id
        )
        s.add(watchlist)
        s.flush()
        for code, reference in REFERENCES.items():
            s.add(
                WatchlistMember(
                    watchlist_id=watchlist.id,
                    uscc=key[code],
                    shown_as=shown_as(code),
                    reference=reference,
                )
            )
    return Bank(settings, engine, pseudo, api_key, subscriber.id, watchlist.id)


def _objection(entity: str, status: str) -> Objection:
    return Objection(
        uscc=entity,
        product_name="credit_risk",
        item="factor:tax_arrears",
        reason="企业称欠税记录已结清",
        status=status,
        raised_by="olga",
    )


@pytest.fixture
def api(bank: Bank) -> Iterator[str]:
    with serve_api(bank.settings) as base:
        yield base


def _order(base: str, bank: Bank, fmt: str, api_key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/watchlists/{bank.watchlist_id}/batches",
        json={"format": fmt},
        headers={"X-API-Key": api_key or bank.api_key},
        timeout=30,  # a busy machine (CI installing packages) can take longer than httpx's 5 s
    )


def _fetch(base: str, bank: Bank, batch_id: str) -> httpx.Response:
    return httpx.get(
        f"{base}/v1/batches/{batch_id}/file", headers={"X-API-Key": bank.api_key}, timeout=30
    )


def _batch_usage(bank: Bank) -> list[UsageEvent]:
    with session_scope(bank.engine) as s:
        return list(
            s.exec(
                select(UsageEvent).where(
                    UsageEvent.subscriber_id == bank.subscriber_id, UsageEvent.kind == "batch"
                )
            )
        )


def _expected_rows() -> dict[str, dict[str, Any]]:
    """What the bank must read per enterprise (shown as the bank sees it)."""
    reasons = json.dumps({"reasons": ["R01", "R07"]}, separators=(",", ":"))
    return {
        shown_as(SERVED): {"status": "served", "score": 642, "grade": "B", "details": reasons},
        shown_as(INDIVIDUAL): {"status": "served", "score": 588, "grade": "C", "details": reasons},
        shown_as(DISPUTED): {
            "status": "disputed_withheld",
            "score": None,
            "grade": None,
            "details": None,
        },
        shown_as(MISSING): {"status": "not_found", "score": None, "grade": None, "details": None},
        shown_as(CORRECTED): {
            "status": "served",
            "score": 610,
            "grade": "B",
            "details": '{"reasons":["R02"]}',
        },
    }


def test_parquet_batch_matches_manifest_and_checksum(bank: Bank, api: str) -> None:
    """The file's bytes hash to the manifest's and the header's; rows say what the ledger says."""
    ordered = _order(api, bank, "parquet")
    assert ordered.status_code == 201, ordered.text
    manifest = ordered.json()
    assert manifest["product_version"] == VERSION
    assert manifest["as_of"] == "2025-12-31"
    assert manifest["rows"] == 5
    assert manifest["counts"] == {"served": 3, "not_found": 1, "disputed_withheld": 1}
    assert manifest["units"] == 3 and manifest["price_fen"] == 3 * PRICE_FEN
    assert manifest["schema"]["score"] == "Int64" and manifest["schema"]["as_of"] == "Date"

    got = _fetch(api, bank, manifest["batch"])
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/vnd.apache.parquet"
    digest = hashlib.sha256(got.content).hexdigest()
    assert digest == manifest["sha256"] == got.headers["x-pdo-sha256"]
    assert len(got.content) == manifest["bytes"]
    assert f'filename="{manifest["batch"]}.parquet"' in got.headers["content-disposition"]

    frame = pl.read_parquet(io.BytesIO(got.content))
    assert frame.columns == list(manifest["schema"])
    assert {name: str(dtype) for name, dtype in frame.schema.items()} == manifest["schema"]
    rows = {r["enterprise"]: r for r in frame.to_dicts()}
    for enterprise, expected in _expected_rows().items():
        assert {k: rows[enterprise][k] for k in expected} == expected, enterprise
    assert rows[shown_as(SERVED)]["reference"] == REFERENCES[SERVED]  # parquet keeps values
    assert set(frame["product_version"]) == {VERSION}

    headers = {"X-API-Key": bank.api_key}
    assert httpx.get(f"{api}/v1/batches/{manifest['batch']}", headers=headers).json() == manifest
    assert httpx.get(f"{api}/v1/batches", headers=headers).json() == [manifest]
    with session_scope(bank.engine) as s:
        stored = s.get(BatchFile, manifest["batch"])
        assert stored is not None and stored.sha256 == digest and stored.rows == 5
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "batch.deliver")).one()
        assert event.subject == manifest["batch"]
        assert event.details["rows"] == 5 and event.details["sha256"] == digest
        assert audit.verify(s).ok


def test_rerequest_returns_the_same_batch_and_bills_once(bank: Bank, api: str) -> None:
    """Unchanged → the same batch, one usage event; a change in members or disputes → a new one."""
    first = _order(api, bank, "parquet")
    again = _order(api, bank, "parquet")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    usage = _batch_usage(bank)
    assert len(usage) == 1
    assert usage[0].delivery_key == f"batch:{first.json()['batch']}"
    assert (usage[0].units, usage[0].price_fen) == (3, 3 * PRICE_FEN)
    assert usage[0].purpose == "贷后管理" and usage[0].uscc is None
    with session_scope(bank.engine) as s:
        chained = s.exec(select(AuditEvent).where(AuditEvent.subject == usage[0].id)).one()
    assert chained.action == "delivery.batch" and chained.details["price_fen"] == 3 * PRICE_FEN

    with session_scope(bank.engine) as s:  # the portfolio grows by one enterprise
        s.add(
            WatchlistMember(
                watchlist_id=bank.watchlist_id,
                uscc=entity_key(LATER, bank.pseudo),
                shown_as=shown_as(LATER),
                reference="L-6",
            )
        )
    grown = _order(api, bank, "parquet")
    assert grown.status_code == 201
    assert grown.json()["batch"] != first.json()["batch"]
    assert grown.json()["counts"]["served"] == 4

    with session_scope(bank.engine) as s:  # the open objection is resolved (rejected)
        objection = s.exec(select(Objection).where(Objection.status == "open")).one()
        objection.status, objection.outcome = "resolved", "rejected"
        s.add(objection)
    resolved = _order(api, bank, "parquet")
    assert resolved.status_code == 201
    assert resolved.json()["counts"] == {"served": 5, "not_found": 1, "disputed_withheld": 0}
    assert _order(api, bank, "parquet").json()["batch"] == resolved.json()["batch"]

    assert [u.units for u in sorted(_batch_usage(bank), key=lambda u: u.served_at)] == [3, 4, 5]
    listed = httpx.get(f"{api}/v1/batches", headers={"X-API-Key": bank.api_key}).json()
    assert len(listed) == 3 and listed[0]["batch"] == resolved.json()["batch"]


def test_csv_round_trips_and_escapes_formula_cells(bank: Bank, api: str) -> None:
    """CSV says what parquet says; no cell starts with a character a spreadsheet would run."""
    parquet = _order(api, bank, "parquet").json()
    ordered = _order(api, bank, "csv")
    assert ordered.status_code == 201
    manifest = ordered.json()
    assert manifest["batch"] != parquet["batch"]  # a format is a batch of its own, billed once
    assert len(_batch_usage(bank)) == 2
    got = _fetch(api, bank, manifest["batch"])
    assert got.headers["content-type"].startswith("text/csv")
    assert (
        hashlib.sha256(got.content).hexdigest() == manifest["sha256"] == got.headers["x-pdo-sha256"]
    )

    text = got.content.decode("utf-8-sig")
    cells = list(csv.reader(io.StringIO(text)))
    assert cells[0] == list(manifest["schema"])
    leads = ("=", "+", "-", "@", "\t", "\r")
    assert not [c for row in cells for c in row if c.startswith(leads)]
    references = {row[0]: row[1] for row in cells[1:]}
    for code, reference in REFERENCES.items():
        assert references[shown_as(code)] == "'" + reference

    frame = pl.read_csv(io.BytesIO(got.content), schema=pl.Schema(_schema_of(manifest)))
    rows = {r["enterprise"]: r for r in frame.to_dicts()}
    for enterprise, expected in _expected_rows().items():
        assert {k: rows[enterprise][k] for k in expected} == expected, enterprise
    withheld = next(row for row in cells if row[4] == "disputed_withheld")
    assert withheld[5:] == ["", "", ""]  # score, grade and details are empty


def _schema_of(manifest: dict[str, Any]) -> dict[str, pl.DataType]:
    types = {"String": pl.String(), "Int64": pl.Int64(), "Date": pl.Date()}
    return {name: types[kind] for name, kind in manifest["schema"].items()}


def test_another_bank_sees_nothing(bank: Bank, api: str) -> None:
    """Another bank's watchlist or batch answers 404 like an unknown id; the probe is flagged."""
    batch = _order(api, bank, "parquet").json()["batch"]
    with session_scope(bank.engine) as s:
        _, other_key = add_subscriber(s, "第三银行", "admin", ["credit_risk"])
    other = {"X-API-Key": other_key}

    refused = _order(api, bank, "parquet", api_key=other_key)
    assert refused.status_code == 404
    assert refused.json() == {
        "error": {"code": "unknown_watchlist", "message": "no such watchlist of yours"}
    }
    for path in (f"/v1/batches/{batch}", f"/v1/batches/{batch}/file"):
        got = httpx.get(api + path, headers=other)
        assert got.status_code == 404 and got.json()["error"]["code"] == "unknown_batch"
    assert httpx.get(f"{api}/v1/batches", headers=other).json() == []
    assert httpx.get(f"{api}/v1/batches/{batch}").status_code == 401
    with session_scope(bank.engine) as s:
        probes = s.exec(select(RefusedCall).where(col(RefusedCall.status) == 404)).all()
        assert sorted(p.code for p in probes) == [
            "unknown_batch",
            "unknown_batch",
            "unknown_watchlist",
        ]
        assert all(p.flagged and p.subscriber_id != bank.subscriber_id for p in probes)
    assert len(_batch_usage(bank)) == 1  # refusals are not billed


def test_no_valid_subscription_is_refused_and_not_billed(bank: Bank, api: str) -> None:
    """A cancelled subscription: 403 no_subscription, recorded, no file and no usage event."""
    with session_scope(bank.engine) as s:
        for subscription in s.exec(
            select(Subscription).where(Subscription.subscriber_id == bank.subscriber_id)
        ):
            subscription.cancelled_at = utcnow()
            s.add(subscription)
    refused = _order(api, bank, "csv")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "no_subscription"
    assert _batch_usage(bank) == []
    assert not (bank.settings.lake_dir / "deliveries").exists()
    with session_scope(bank.engine) as s:
        assert s.exec(select(func.count()).select_from(BatchFile)).one() == 0
        assert s.exec(
            select(col(RefusedCall.code)).where(RefusedCall.subscriber_id == bank.subscriber_id)
        ).all() == ["no_subscription"]


def test_a_revoked_authorization_stops_batch_delivery(bank: Bank, api: str) -> None:
    """The grant behind the version is read at every request: revoked → 403, nothing billed."""
    with session_scope(bank.engine) as s:
        auth = s.exec(select(Authorization)).one()
        revoke_authorization(s, auth.id, "regina", "超范围使用")
    refused = _order(api, bank, "parquet")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "authorization_revoked"
    assert _batch_usage(bank) == []


def _cancel_subscriptions(bank: Bank) -> None:
    with session_scope(bank.engine) as s:
        for subscription in s.exec(
            select(Subscription).where(Subscription.subscriber_id == bank.subscriber_id)
        ):
            subscription.cancelled_at = utcnow()
            s.add(subscription)


def _revoke_grant(bank: Bank) -> None:
    with session_scope(bank.engine) as s:
        auth = s.exec(select(Authorization)).one()
        revoke_authorization(s, auth.id, "regina", "超范围使用")


@pytest.mark.parametrize(
    ("stop", "code"),
    [(_cancel_subscriptions, "no_subscription"), (_revoke_grant, "authorization_revoked")],
    ids=["subscription-ended", "grant-revoked"],
)
def test_a_built_file_is_not_handed_out_once_delivery_stopped(
    bank: Bank, api: str, stop: Any, code: str
) -> None:
    """Ending the subscription or revoking the grant stops delivery of files built before too;
    the manifest stays readable (counts and checksum, no results)."""
    batch_id = _order(api, bank, "csv").json()["batch"]
    assert _fetch(api, bank, batch_id).status_code == 200
    stop(bank)
    refused = _fetch(api, bank, batch_id)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == code
    assert "csv" not in refused.headers["content-type"]
    manifest = httpx.get(f"{api}/v1/batches/{batch_id}", headers={"X-API-Key": bank.api_key})
    assert manifest.status_code == 200 and manifest.json()["batch"] == batch_id
    with session_scope(bank.engine) as s:
        recorded = s.exec(
            select(col(RefusedCall.code)).where(RefusedCall.subscriber_id == bank.subscriber_id)
        ).all()
    assert recorded == [code]
    assert len(_batch_usage(bank)) == 1  # the file was billed once, when built


def test_an_unsupported_format_is_refused(bank: Bank, api: str) -> None:
    """The one error shape for a request the API cannot read."""
    refused = _order(api, bank, "xlsx")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_request"


def test_no_file_or_manifest_holds_a_personal_identifier(
    bank: Bank, api: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A 个体工商户 appears masked; neither its code nor its pseudonym leaves the ledger."""
    scanner = FastScanner(build_analyzer(tmp_path_factory.mktemp("models")))
    assert scanner.count_personal([f"统一社会信用代码 {INDIVIDUAL}"])  # the scan can see it
    pseudonym = entity_key(INDIVIDUAL, bank.pseudo)
    texts = []
    for fmt in ("parquet", "csv"):
        manifest = _order(api, bank, fmt)
        content = _fetch(api, bank, manifest.json()["batch"]).content
        readable = (
            pl.read_parquet(io.BytesIO(content)).write_csv()
            if fmt == "parquet"
            else content.decode("utf-8-sig")
        )
        texts += [manifest.text, readable]
    listed = httpx.get(f"{api}/v1/batches", headers={"X-API-Key": bank.api_key})
    texts.append(listed.text)
    assert all(shown_as(INDIVIDUAL) in t for t in texts[1::2])  # present, masked
    for text in texts:
        assert INDIVIDUAL not in text and pseudonym not in text
    assert scanner.count_personal(texts) == {}
    stored = sorted((bank.settings.lake_dir / "deliveries").rglob("*"))
    files = [p for p in stored if p.is_file()]
    assert len(files) == 2 and not [p for p in files if p.name.endswith(".tmp")]
    assert all(INDIVIDUAL.encode() not in p.read_bytes() for p in files)


def test_simultaneous_identical_requests_bill_once(bank: Bank, api: str) -> None:
    """Banks retry: identical requests racing each other all get the one batch, billed once."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: _order(api, bank, "csv"), range(4)))
    assert [a.status_code in (200, 201) for a in answers] == [True] * 4, [a.text for a in answers]
    assert len({a.json()["batch"] for a in answers}) == 1
    assert len(_batch_usage(bank)) == 1
    with session_scope(bank.engine) as s:
        assert s.exec(select(func.count()).select_from(BatchFile)).one() == 1
        assert audit.verify(s).ok


def test_a_lost_file_is_restored_byte_for_byte_without_billing(bank: Bank, api: str) -> None:
    """A missing file answers 410; asking for the unchanged batch again restores the same bytes."""
    manifest = _order(api, bank, "parquet").json()
    with session_scope(bank.engine) as s:
        stored = s.get(BatchFile, manifest["batch"])
        assert stored is not None
    path = bank.settings.lake_dir / stored.path
    path.unlink()
    gone = _fetch(api, bank, manifest["batch"])
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "batch_file_gone"

    again = _order(api, bank, "parquet")
    assert again.status_code == 200 and again.json() == manifest
    restored = _fetch(api, bank, manifest["batch"])
    assert hashlib.sha256(restored.content).hexdigest() == manifest["sha256"]
    assert len(_batch_usage(bank)) == 1


def _tells_the_score(answer: httpx.Response, bank: Bank, batch_id: str) -> bool:
    """Whether a refusal shows SERVED's score (642): the ids it names are random hex, which
    may hold those digits too."""
    text = answer.text.replace(bank.watchlist_id, "").replace(batch_id, "")
    return "642" in text


def _dispute_served(bank: Bank) -> None:
    with session_scope(bank.engine) as s:
        s.add(_objection(entity_key(SERVED, bank.pseudo), "open"))


def _correct_served(bank: Bank, score: int = 575, grade: str = "C", *reasons: str) -> None:
    """An upheld objection re-scored SERVED (by default to a new result, 575 C for R03)."""
    with session_scope(bank.engine) as s:
        upheld = _objection(entity_key(SERVED, bank.pseudo), "resolved")
        s.add(upheld)
        s.flush()
        s.add(
            ScoreCorrection(
                product_version_id=VERSION,
                uscc=entity_key(SERVED, bank.pseudo),
                objection_id=upheld.id,
                score=score,
                grade=grade,
                details={"reasons": list(reasons or ["R03"])},
            )
        )


@pytest.mark.parametrize(
    ("change", "now_reads"),
    [(_dispute_served, {"status": "disputed_withheld"}), (_correct_served, {"score": "575"})],
    ids=["objection-opened", "result-corrected"],
)
def test_a_file_made_before_a_result_was_disputed_or_corrected_is_not_handed_out(
    bank: Bank, api: str, change: Any, now_reads: dict[str, str]
) -> None:
    """The old file would disclose a withheld result or one found wrong: 409 batch_superseded,
    and a new order gives a new file that says what holds now."""
    old = _order(api, bank, "csv").json()["batch"]
    assert _fetch(api, bank, old).status_code == 200
    change(bank)
    refused = _fetch(api, bank, old)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "batch_superseded"
    assert not _tells_the_score(refused, bank, old)
    new = _order(api, bank, "csv")
    assert new.status_code == 201 and new.json()["batch"] != old
    fetched = _fetch(api, bank, new.json()["batch"])
    assert fetched.status_code == 200
    rows = {r["enterprise"]: r for r in csv.DictReader(io.StringIO(fetched.text.lstrip("\ufeff")))}
    assert {k: rows[shown_as(SERVED)][k] for k in now_reads} == now_reads


def test_a_second_objection_on_a_withheld_result_leaves_the_file_deliverable(
    bank: Bank, api: str
) -> None:
    """The file already withholds a disputed result: another objection on it changes nothing
    there, so the file is still handed out (a re-order returns it, and it must be fetchable)."""
    _dispute_served(bank)
    made = _order(api, bank, "csv")
    assert made.status_code == 201 and made.json()["counts"]["disputed_withheld"] >= 1
    _dispute_served(bank)  # a second item of the same enterprise disputed
    assert _fetch(api, bank, made.json()["batch"]).status_code == 200
    again = _order(api, bank, "csv")
    assert again.status_code == 200 and again.json()["batch"] == made.json()["batch"]
    assert _fetch(api, bank, again.json()["batch"]).status_code == 200
    assert len(_batch_usage(bank)) == 1


def test_an_objection_rejected_after_the_file_was_made_leaves_it_deliverable(
    bank: Bank, api: str
) -> None:
    """A rejected objection leaves the result as the file states it: the file is still served."""
    batch_id = _order(api, bank, "csv").json()["batch"]
    with session_scope(bank.engine) as s:
        s.add(_objection(entity_key(SERVED, bank.pseudo), "resolved"))
    assert _fetch(api, bank, batch_id).status_code == 200


def test_a_watchlist_kept_for_a_consent_purpose_delivers_no_batch(bank: Bank, api: str) -> None:
    """贷前审查 needs each enterprise's consent, which a portfolio file does not check: a
    watchlist stored for it (before watchlists were limited to 贷后管理) gets no file, unbilled."""
    with session_scope(bank.engine) as s:
        watchlist = s.get(Watchlist, bank.watchlist_id)
        assert watchlist is not None
        watchlist.purpose = "贷前审查"
        s.add(watchlist)
    refused = _order(api, bank, "csv")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "purpose_not_allowed"
    assert "贷后管理" in refused.json()["error"]["message"]
    assert _batch_usage(bank) == []


def test_a_grant_without_the_product_is_named_as_such(bank: Bank, api: str) -> None:
    """Batches answer the lookup's code when the grant lacks the product, not a purpose code."""
    from pdo.ledger.models import PipelineRun, ProductVersion
    from pdo.registration import grant_authorization

    with session_scope(bank.engine) as s:
        narrow = grant_authorization(
            s,
            reference="授权-其他产品",
            tables=["tax_credit"],
            purposes=["贷前审查", "贷后管理"],
            products=["sme_loan_pricing"],
            days=30,
            actor="authority",
        )
        version = s.get(ProductVersion, VERSION)
        assert version is not None
        run = s.get(PipelineRun, version.run_id)
        assert run is not None
        run.authorization_id = narrow.id
        s.add(run)
    refused = _order(api, bank, "csv")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "product_not_authorized"


def _hold_the_ledger(bank: Bank) -> Any:
    """Another writer's unit of work: SQLite's write lock, held until released."""
    import sqlite3

    holder = sqlite3.connect(bank.settings.db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_reading_batches_does_not_wait_for_another_writer(bank: Bank, api: str) -> None:
    """A long settlement or publish holds the write lock: listing and fetching go on."""
    batch_id = _order(api, bank, "csv").json()["batch"]
    holder = _hold_the_ledger(bank)
    try:
        headers = {"X-API-Key": bank.api_key}
        listed = httpx.get(f"{api}/v1/batches", headers=headers, timeout=10)
        fetched = _fetch(api, bank, batch_id)
    finally:
        holder.rollback()
        holder.close()
    assert listed.status_code == 200 and [b["batch"] for b in listed.json()] == [batch_id]
    assert fetched.status_code == 200


@pytest.mark.slow
def test_a_write_that_cannot_get_the_ledger_answers_503_to_retry(bank: Bank, api: str) -> None:
    """After the ledger's 30 s busy timeout the order fails unrecorded: 503 with Retry-After,
    the documented answer (it was a bare 500), and nothing billed."""
    holder = _hold_the_ledger(bank)
    try:
        refused = httpx.post(
            f"{api}/v1/watchlists/{bank.watchlist_id}/batches",
            json={"format": "csv"},
            headers={"X-API-Key": bank.api_key},
            timeout=90,
        )
    finally:
        holder.rollback()
        holder.close()
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "ledger_unavailable"
    assert refused.headers["retry-after"] == "1"
    assert _batch_usage(bank) == []


def test_a_ledger_missing_a_column_is_an_internal_error_not_a_retry(bank: Bank, api: str) -> None:
    """A schema error (a ledger older than the code) will not pass by retrying: 500, not the
    503 ledger_unavailable that tells the bank's system to try again."""
    import sqlite3

    with sqlite3.connect(bank.settings.db_url.removeprefix("sqlite:///")) as ledger:
        ledger.execute("ALTER TABLE batch_file DROP COLUMN rows")
    answer = httpx.get(f"{api}/v1/batches", headers={"X-API-Key": bank.api_key})
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "retry-after" not in answer.headers


def test_a_correction_that_left_the_result_as_it_was_still_allows_a_new_file(
    bank: Bank, api: str
) -> None:
    """An upheld objection whose re-scoring changed nothing still supersedes older files; the
    re-order must then make a new one, not return the superseded batch for ever."""
    old = _order(api, bank, "csv").json()["batch"]
    _correct_served(bank, 642, "B", "R01", "R07")  # as signed
    assert _fetch(api, bank, old).status_code == 409
    new = _order(api, bank, "csv")
    assert new.status_code == 201 and new.json()["batch"] != old
    assert _fetch(api, bank, new.json()["batch"]).status_code == 200


def test_a_file_stops_when_an_enterprise_taken_off_the_watchlist_is_then_disputed(
    bank: Bank, api: str
) -> None:
    """The file still holds a member the bank removed since: its dispute stops the file too."""
    old = _order(api, bank, "csv").json()["batch"]
    removed = httpx.delete(
        f"{api}/v1/watchlists/{bank.watchlist_id}/members/{SERVED}",
        headers={"X-API-Key": bank.api_key},
    )
    assert removed.status_code == 204
    assert _fetch(api, bank, old).status_code == 200  # removing it changes nothing in the file
    _dispute_served(bank)
    refused = _fetch(api, bank, old)
    assert refused.status_code == 409 and not _tells_the_score(refused, bank, old)
