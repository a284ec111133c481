"""Objections (异议): an enterprise disputes a data item; its results are withheld until resolved.

The disputed item names source records of the enterprise in one of the product's input tables:

    <table>:<column>=<value>[;<column>=<value>...]   e.g. "court_cases:case_no=(2019)浙0105执13号",
                                                        "utility_payments:utility=电;month=2025-06"
    <table>:<record id>                              the record's id among the enterprise's: the
                                                     one key column besides uscc (case_no of
                                                     penalties and court_cases, loan_id, year of
                                                     tax_credit), e.g. "tax_credit:2023"

The table must be one of the product's inputs, each column a kept, non-personal column of its
contract (never the uscc: the records are always the objecting enterprise's own), and values
are compared as text (dates as YYYY-MM-DD, months as YYYY-MM). When an objection is upheld the
matching records are left out of the re-score; in a table that holds one record per enterprise
(the register, keyed by uscc alone) the named columns are cleared instead, since dropping the
record would drop the enterprise itself.

While an objection is open the serving path answers for (product, enterprise) with the status
"disputed_withheld" and no score. Resolving it rejected serves the signed result again; upheld
re-scores the enterprise with the live version's frozen model and inputs, as of its date, into
a ScoreCorrection served beside the immutable signed version.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import polars as pl
from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery import generation
from pdo.delivery.alerts import raise_alerts_for, withdraw_undelivered_results
from pdo.delivery.identity import CODE_IN_TEXT, shown_as
from pdo.delivery.version_events import Served, alerts_for_released_result
from pdo.lake import Lake
from pdo.ledger.models import (
    DatasetVersion,
    Objection,
    Product,
    ProductVersion,
    ScoreCorrection,
    ServedScore,
)
from pdo.ledger.types import utcnow
from pdo.privacy.checksums import is_individual_business, is_valid_uscc
from pdo.privacy.entity_key import entity_key
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.sources.contract import Policy, SourceTable
from pdo.sources.tables import table as source_table

if TYPE_CHECKING:
    from pdo.privacy.fastscan import FastScanner
    from products.spec import ProductSpec

Outcome = Literal["upheld", "rejected"]
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
OUTCOMES: tuple[str, ...] = ("upheld", "rejected")
NOT_A_USCC = "the code given is not a valid unified social credit code (GB 32100)"
ITEM_FORMAT = "<table>:<column>=<value>[;<column>=<value>...] or <table>:<record id>"


class ObjectionError(ValueError):
    """An objection that cannot be raised or resolved as asked; the message says why."""


def product_spec(name: str) -> ProductSpec:
    """The product's declaration (imported here, not at module level: pdo sits below products)."""
    from products.registry import product

    try:
        return product(name)
    except KeyError as exc:
        raise ObjectionError(str(exc.args[0])) from exc


@dataclass(frozen=True)
class DisputedItem:
    """A parsed item: the input table and the column values that pick the disputed records."""

    table: str
    criteria: tuple[tuple[str, str], ...]

    def matches(self, uscc: str) -> pl.Expr:
        """The enterprise's records whose named columns all equal the values (as text)."""
        expr = pl.col("uscc") == uscc
        for column, value in self.criteria:
            expr &= pl.col(column).cast(pl.String) == value
        return expr

    def exclude(self, frame: Frame, uscc: str) -> tuple[Frame, int]:
        """The frame without the disputed records (or with the disputed values cleared, for a
        one-record-per-enterprise table), and how many records were affected; a lazy frame
        stays lazy (the count is one pass over the enterprise's rows)."""
        hit = self.matches(uscc)
        n = int(frame.lazy().select(hit.sum()).collect().item() or 0)
        if source_table(self.table).key == ("uscc",):
            cleared = [
                pl.when(hit).then(None).otherwise(pl.col(c)).alias(c) for c, _ in self.criteria
            ]
            return frame.with_columns(cleared), n
        return frame.filter(~hit), n

    def describe(self) -> dict[str, Any]:
        contract = source_table(self.table)
        action = "cleared" if contract.key == ("uscc",) else "excluded"
        return {"table": self.table, "columns": dict(self.criteria), "action": action}


def parse_item(spec: ProductSpec, item: str) -> DisputedItem:
    """Parse and check an item against the product's inputs and the table's contract."""
    name, sep, rest = item.strip().partition(":")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise ObjectionError(f"the item is not of the form {ITEM_FORMAT}")  # typed text not echoed
    if name not in spec.inputs:
        raise ObjectionError(
            f"the item's table is not an input of {spec.name}; its inputs: {', '.join(spec.inputs)}"
        )
    contract = source_table(name)
    if "=" not in rest:
        record_key = [k for k in contract.key if k != "uscc"]
        if len(record_key) != 1:
            raise ObjectionError(
                f"{name} has no single record id; name the record as <column>=<value> "
                f"(its key: {', '.join(contract.key)})"
            )
        return DisputedItem(name, ((record_key[0], rest),))
    criteria: list[tuple[str, str]] = []
    for part in rest.split(";"):
        column, _, value = part.partition("=")
        column, value = column.strip(), value.strip()
        _check_column(contract, column)
        if not value:
            raise ObjectionError(f"the item's column {column} has no value")
        criteria.append((column, value))
    return DisputedItem(name, tuple(criteria))


def _check_column(contract: SourceTable, column: str) -> None:
    """A kept column without personal data: the item is stored and shown, so it holds none."""
    if column == "uscc":
        raise ObjectionError("the item must not name the uscc: records are the enterprise's own")
    if column not in contract.column_names:
        raise ObjectionError(
            f"{contract.name} has no such column; its columns: "
            f"{', '.join(c for c in contract.column_names if c != 'uscc')}"
        )
    spec = contract.column(column)
    if spec.policy is not Policy.KEEP or spec.pii is not None:
        raise ObjectionError(
            f"{contract.name}.{column} holds personal data ({spec.policy.value}): "
            "name the record by another column"
        )


Redact = Callable[[str], str]


def free_text_redactor(scanner: FastScanner) -> Redact:
    """How an objection's reason or note is stored: a 个体工商户's code masked, then what the
    project's recognizers find (身份证号, 手机号, 银行卡号; names and addresses with a NER scanner)
    replaced by its placeholder. The operator types these from an enterprise's letter."""

    from pdo.privacy.fastscan.anonymize import anonymize
    from pdo.privacy.redact import half_width, kept_entities

    keep = kept_entities()

    def redact(text: str) -> str:
        masked = mask_codes(text)
        found = scanner.scan(half_width(masked))  # full-width digits typed from the letter too
        return anonymize(masked, [r for r in found if r.entity_type not in keep])

    return redact


def objection_redactor(models_dir: Path) -> Redact:
    """free_text_redactor over the recognizers with the NER model, scanning in this process
    (one letter's text is short)."""
    from pdo.privacy.analyzer import build_analyzer
    from pdo.privacy.fastscan import get_scanner

    return free_text_redactor(get_scanner(build_analyzer(models_dir), ner=True, processes=1))


def mask_codes(text: str) -> str:
    """Free text with any 个体工商户 USCC masked, so a reason or note never stores one."""

    def masked(match: re.Match[str]) -> str:
        code = unicodedata.normalize("NFKC", match.group(0)).upper()
        return shown_as(code) if is_individual_business(code) else match.group(0)

    return CODE_IN_TEXT.sub(masked, text)


def live_version(session: Session, product_name: str) -> ProductVersion | None:
    """The product's published version (the one the API serves)."""
    return session.exec(
        select(ProductVersion).where(
            ProductVersion.product_name == product_name, ProductVersion.status == "published"
        )
    ).first()


def served_result(session: Session, version_id: str, key: str) -> dict[str, Any] | None:
    """What the version serves for the enterprise now (score, grade, details): its correction
    if an upheld objection made one, else the signed row."""
    row: ScoreCorrection | ServedScore | None = session.exec(
        select(ScoreCorrection).where(
            ScoreCorrection.product_version_id == version_id, ScoreCorrection.uscc == key
        )
    ).first()
    if row is None:
        row = session.exec(
            select(ServedScore).where(
                ServedScore.product_version_id == version_id, ServedScore.uscc == key
            )
        ).first()
    return None if row is None else {"score": row.score, "grade": row.grade, "details": row.details}


def _headline(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {"score": row["score"], "grade": row["grade"]}


def raise_objection(
    session: Session,
    *,
    uscc: str,
    pseudonymizer: Pseudonymizer,
    product_name: str,
    item: str,
    reason: str,
    actor: str,
    lake: Lake,
    redact: Redact,
) -> Objection:
    """Record an enterprise's objection to a data item behind a product's result; from now on
    the result is withheld as disputed and the banks watching the enterprise are told."""
    code = unicodedata.normalize("NFKC", uscc).strip().upper()
    if not is_valid_uscc(code):  # not echoed: it may be a person's number typed in by mistake
        raise ObjectionError(NOT_A_USCC)
    if session.get(Product, product_name) is None:
        raise ObjectionError(f"product {product_name!r} is not published")
    spec = product_spec(product_name)
    disputed = parse_item(spec, item)
    if not reason.strip():
        raise ObjectionError("an objection needs the enterprise's reason")
    version = live_version(session, product_name)
    if version is None:
        raise ObjectionError(f"{product_name} has no published version to object to")
    key = entity_key(code, pseudonymizer)
    if not _is_served(session, version.id, key):
        raise ObjectionError(f"{version.id} serves no result for {shown_as(code)}")
    if _records_named(session, lake, version, disputed, key) == 0:
        raise ObjectionError(
            f"the item names no record of {shown_as(code)} in {version.id}'s {disputed.table} "
            f"(by {', '.join(c for c, _ in disputed.criteria)}): check the item ({ITEM_FORMAT})"
        )
    normalized = f"{disputed.table}:" + ";".join(f"{c}={v}" for c, v in disputed.criteria)
    duplicate = session.exec(
        select(Objection.id).where(
            Objection.uscc == key,
            Objection.product_name == product_name,
            Objection.item == normalized,
            Objection.status == "open",
        )
    ).first()
    if duplicate is not None:
        raise ObjectionError(f"objection {duplicate} on this item is already open")
    objection = Objection(
        uscc=key,
        product_name=product_name,
        item=normalized,
        reason=redact(reason.strip()),
        raised_by=actor,
        resolution={"enterprise": shown_as(code)},  # how the console names it; never raw
    )
    session.add(objection)
    session.flush()
    withdraw_undelivered_results(session, product_name, key, objection.id)
    raise_alerts_for(
        session,
        product_name=product_name,
        uscc=key,
        kind="dispute_opened",
        event_key=objection.id,
        product_version_id=version.id,
        payload={"status": "disputed_withheld"},
    )
    generation.bump(session)  # the API must withhold the result from its next request on
    audit.record(
        session,
        actor,
        "objection.raise",
        objection.id,
        product=product_name,
        version=version.id,
        table=disputed.table,
    )
    return objection


def _records_named(
    session: Session, lake: Lake, version: ProductVersion, disputed: DisputedItem, key: str
) -> int | None:
    """How many of the enterprise's records in the version's input the item names, so a typo
    does not withhold a result; None when the version does not record that input."""
    for dataset_id in version.input_hashes:
        dataset = session.get(DatasetVersion, dataset_id)
        if dataset is not None and dataset.table_name == disputed.table:
            manifest = lake.manifest(dataset.zone, dataset.table_name, dataset.id)
            named = lake.scan(manifest).filter(disputed.matches(key)).select(pl.len()).collect()
            return int(named.item())
    return None


def _is_served(session: Session, version_id: str, key: str) -> bool:
    """The version holds a row for the enterprise (even one without a score)."""
    row = session.exec(
        select(ServedScore.id).where(
            ServedScore.product_version_id == version_id, ServedScore.uscc == key
        )
    ).first()
    return row is not None


def version_inputs(
    session: Session, lake: Lake, version: ProductVersion
) -> dict[str, pl.DataFrame]:
    """The datasets a version was built from, read back from the lake by their ids."""
    frames: dict[str, pl.DataFrame] = {}
    for dataset_id in version.input_hashes:
        dataset = session.get(DatasetVersion, dataset_id)
        if dataset is None:
            raise ObjectionError(f"{version.id}: input dataset {dataset_id[:12]} is not recorded")
        manifest = lake.manifest(dataset.zone, dataset.table_name, dataset.id)
        frames[dataset.table_name] = lake.read(manifest)
    return frames


def resolve_objection(
    session: Session,
    objection_id: str,
    *,
    outcome: Outcome,
    note: str,
    actor: str,
    lake: Lake,
    redact: Redact,
) -> Objection:
    """Close an objection: rejected, the signed result is served again; upheld, the disputed
    records are excluded and the enterprise re-scored into a correction. Watchers are told."""
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise ObjectionError(f"no objection {objection_id!r}")
    if objection.status != "open":
        at = objection.resolved_at.date().isoformat() if objection.resolved_at else "?"
        raise ObjectionError(
            f"objection {objection.id} was already resolved ({objection.outcome}) "
            f"by {objection.resolved_by} on {at}"
        )
    if outcome not in OUTCOMES:
        raise ObjectionError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if not note.strip():
        raise ObjectionError("a resolution needs a note saying what was found")
    version = live_version(session, objection.product_name)
    if version is None:
        raise ObjectionError(f"{objection.product_name} has no published version")
    old = served_result(session, version.id, objection.uscc)
    resolution: dict[str, Any] = {
        "note": redact(note.strip()),
        "version": version.id,
        "old": _headline(old),
        "new": None,
        "changed": False,
    }
    payload: dict[str, Any] = {"outcome": outcome, "changed": False}
    if outcome == "upheld":
        new, excluded = _rescore(session, lake, version, objection)
        changed = new != old
        resolution |= excluded | {"new": _headline(new), "changed": changed}
        payload["changed"] = changed
        new_grade = None if new is None else new["grade"]
        if old is None or new_grade != old["grade"]:
            payload["grade"] = new_grade
    grade_changed = "grade" in payload
    still_withheld = _others_open(session, objection)
    if still_withheld:  # nothing of the result goes out yet
        payload = {"outcome": outcome, "status": "disputed_withheld"}
    objection.status, objection.outcome = "resolved", outcome
    objection.resolved_by, objection.resolved_at = actor, utcnow()
    objection.resolution = dict(objection.resolution) | resolution
    session.add(objection)
    session.flush()
    raise_alerts_for(
        session,
        product_name=objection.product_name,
        uscc=objection.uscc,
        kind="dispute_resolved",
        event_key=objection.id,
        product_version_id=version.id,
        payload=payload,
    )
    if not still_withheld:
        now = served_result(session, version.id, objection.uscc)
        alerts_for_released_result(
            session,
            version,
            objection.uscc,
            None if now is None else Served(now["score"], now["grade"], dict(now["details"])),
            outcome,
        )
    generation.bump(session)  # the API serves the result (or its correction) again
    audit.record(
        session,
        actor,
        "objection.resolve",
        objection.id,
        product=objection.product_name,
        version=version.id,
        outcome=outcome,
        grade_changed=grade_changed,
    )
    return objection


def _others_open(session: Session, objection: Objection) -> bool:
    """Another objection still withholds this enterprise's result for the product."""
    return (
        session.exec(
            select(Objection.id).where(
                Objection.uscc == objection.uscc,
                Objection.product_name == objection.product_name,
                Objection.status == "open",
                col(Objection.id) != objection.id,
            )
        ).first()
        is not None
    )


def _rescore(
    session: Session, lake: Lake, version: ProductVersion, objection: Objection
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Exclude every upheld item of the enterprise (this one included), score it again and
    store the correction; returns the new served fields and what was excluded."""
    spec = product_spec(objection.product_name)
    if spec.rescore is None:
        raise ObjectionError(f"{spec.name} cannot re-score an enterprise; reject or rebuild")
    inputs = version_inputs(session, lake, version)
    missing = [t for t in spec.inputs if t not in inputs]
    if missing:
        raise ObjectionError(f"{version.id} does not record its inputs {missing}: cannot re-score")
    earlier = session.exec(
        select(Objection).where(
            Objection.uscc == objection.uscc,
            Objection.product_name == objection.product_name,
            Objection.outcome == "upheld",
            col(Objection.id) != objection.id,
        )
    ).all()
    inputs, affected = _excluding(spec, inputs, objection.uscc, objection.item)
    if affected == 0:
        raise ObjectionError(
            f"item {objection.item!r} matches no record of the enterprise in {version.id}'s "
            "inputs: correct the item or reject the objection"
        )
    for prior in earlier:
        inputs, _ = _excluding(spec, inputs, objection.uscc, prior.item)
    row = spec.rescore(inputs, version.as_of, dict(version.model), objection.uscc)
    correction = session.exec(
        select(ScoreCorrection).where(
            ScoreCorrection.product_version_id == version.id,
            ScoreCorrection.uscc == objection.uscc,
        )
    ).first() or ScoreCorrection(
        product_version_id=version.id, uscc=objection.uscc, objection_id=objection.id
    )
    correction.objection_id = objection.id
    correction.score = None if row is None else row["score"]
    correction.grade = None if row is None else row["grade"]
    correction.details = {} if row is None else row["details"]
    correction.created_at = utcnow()
    session.add(correction)
    disputed = parse_item(spec, objection.item).describe() | {"records": affected}
    return row, {
        "excluded": disputed,
        "also_excluded": [prior.item for prior in earlier],
        "as_of": version.as_of.isoformat(),
    }


def _excluding(
    spec: ProductSpec, inputs: Mapping[str, pl.DataFrame], uscc: str, item: str
) -> tuple[dict[str, pl.DataFrame], int]:
    disputed = parse_item(spec, item)
    frame, affected = disputed.exclude(inputs[disputed.table], uscc)
    return dict(inputs) | {disputed.table: frame}, affected


def list_objections(session: Session, status: str | None = None) -> list[Objection]:
    """Objections, newest first, optionally only open or resolved ones."""
    query = select(Objection).order_by(col(Objection.raised_at).desc())
    if status is not None:
        query = query.where(Objection.status == status)
    return list(session.exec(query).all())


def describe(objection: Objection, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the operator sees: the enterprise as shown outside, item, age and time to resolve."""
    now = now or utcnow()
    end = objection.resolved_at or now
    return {
        "id": objection.id,
        "enterprise": objection.resolution.get("enterprise") or shown_as(objection.uscc),
        "product": objection.product_name,
        "item": objection.item,
        "reason": objection.reason,
        "status": objection.status,
        "outcome": objection.outcome,
        "raised_by": objection.raised_by,
        "raised_at": objection.raised_at.isoformat(),
        "age_days": round((now - objection.raised_at).total_seconds() / 86400, 2),
        "resolved_by": objection.resolved_by,
        "resolved_at": objection.resolved_at.isoformat() if objection.resolved_at else None,
        "days_to_resolve": (
            round((end - objection.raised_at).total_seconds() / 86400, 2)
            if objection.resolved_at
            else None
        ),
        "resolution": {k: v for k, v in objection.resolution.items() if k != "enterprise"},
    }


def carry_upheld(
    session: Session, spec: ProductSpec, inputs: Mapping[str, pl.DataFrame | pl.LazyFrame]
) -> tuple[dict[str, pl.DataFrame | pl.LazyFrame], list[dict[str, Any]]]:
    """A new build's inputs without the records upheld objections excluded (or cleared) before.

    The department's data still holds them until it corrects its delivery, so every later
    version leaves them out as the correction did; a record the department has since changed
    no longer matches and nothing is left out. Returns the inputs and, per objection, what was
    left out (for the review package and the stage's record).
    """
    upheld = session.exec(
        select(Objection)
        .where(Objection.product_name == spec.name, Objection.outcome == "upheld")
        .order_by(col(Objection.raised_at), col(Objection.id))
    ).all()
    carried: list[dict[str, Any]] = []
    frames = dict(inputs)
    for objection in upheld:
        disputed = parse_item(spec, objection.item)
        frame = frames[disputed.table]
        if isinstance(frame, pl.LazyFrame):  # a monthly table, scanned: it stays a scan
            frames[disputed.table], records = disputed.exclude(frame, objection.uscc)
        else:
            frames[disputed.table], records = disputed.exclude(frame, objection.uscc)
        carried.append({"objection": objection.id, "item": objection.item, "records": records})
    return frames, carried
