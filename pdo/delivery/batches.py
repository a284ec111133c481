"""Batch delivery: a bank's portfolio scored by the live version, as one file, billed once.

Idempotence: a batch is named by its content. Its id is a hash over the subscriber, the
watchlist, the product version, the format and every row exactly as it would be written (member
entity keys, what the bank sees, its references, each status, score, grade and details, and when
each correction was made). Asking
again while nothing changed — same members, same version, same format, and no objection opened or
resolved, no correction filed — yields the same id, so the stored batch is returned and nothing is
billed. Any change yields a new id, a new file and one new usage event. Two identical requests at
the same moment collide on the batch's primary key and the usage event's unique delivery key, so
at most one of them commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Literal, get_args

import polars as pl
from sqlalchemy import and_, insert, or_, union
from sqlmodel import Session, col, select

from pdo import audit
from pdo.delivery.metering import meter_delivery
from pdo.delivery.watchlists import (
    PORTFOLIO_PURPOSES,
    Refusal,
    active_subscription,
    not_a_portfolio_purpose,
)
from pdo.exports import csv_bytes, write_atomically
from pdo.ledger.models import (
    Authorization,
    BatchEntity,
    BatchFile,
    Objection,
    PipelineRun,
    Product,
    ProductVersion,
    ScoreCorrection,
    ServedScore,
    Subscription,
    Watchlist,
    WatchlistMember,
)
from pdo.ledger.types import utcnow
from pdo.registration import authorization_state, state_message

BatchFormat = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = get_args(BatchFormat)
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}
STATUSES = ("served", "not_found", "disputed_withheld")
DELIVERIES_DIR = "deliveries"
SCHEMA = {
    "enterprise": pl.String,
    "reference": pl.String,
    "product_version": pl.String,
    "as_of": pl.Date,
    "status": pl.String,
    "score": pl.Int64,
    "grade": pl.String,
    "details": pl.String,
}


class BatchRefused(Refusal):
    """A portfolio delivery (a batch file, an alert) that may not be made: status, code, message."""


def batch_path(lake_dir: Path, batch: BatchFile) -> Path:
    """Where a batch's bytes live; the ledger keeps the path relative to the lake."""
    return Path(lake_dir) / batch.path


def media_type(fmt: str) -> str:
    """The Content-Type a batch file is served with."""
    return MEDIA_TYPES[fmt]


def build_batch(
    session: Session,
    lake_dir: Path,
    *,
    subscriber_id: str,
    watchlist_id: str,
    fmt: str,
    actor: str,
) -> tuple[BatchFile, bool]:
    """The portfolio file for the live version, written and metered once; unchanged → the same
    (the flag says whether this call made it).

    Flushes but does not commit: the caller commits the batch row, its usage event and its audit
    event as one transaction.
    """
    if fmt not in FORMATS:
        raise BatchRefused(422, "unsupported_format", f"format must be one of {', '.join(FORMATS)}")
    watchlist = session.get(Watchlist, watchlist_id)
    if watchlist is None or watchlist.subscriber_id != subscriber_id:
        raise BatchRefused(404, "unknown_watchlist", "no such watchlist of yours")
    now = utcnow()
    subscription = valid_subscription(session, watchlist, now)
    version = authorized_version(session, watchlist.product_name, watchlist.purpose, now)
    rows, members, corrected = _portfolio_rows(session, watchlist, version)
    batch_id = _content_id(subscriber_id, watchlist.id, version.id, fmt, rows, members, corrected)
    existing = session.get(BatchFile, batch_id)
    if existing is not None and batch_path(lake_dir, existing).exists():
        return existing, False
    data = _encode(rows, fmt)
    sha256 = hashlib.sha256(data).hexdigest()
    relative = Path(DELIVERIES_DIR) / subscriber_id / f"{batch_id}.{fmt}"
    if existing is not None:  # its file was lost: restore it only if the bytes are the same
        if sha256 != existing.sha256:
            raise BatchRefused(
                409, "batch_file_lost", f"batch {batch_id}'s file cannot be restored"
            )
        write_atomically(batch_path(lake_dir, existing), data)
        return existing, False
    write_atomically(Path(lake_dir) / relative, data)
    counts = {status: sum(r["status"] == status for r in rows) for status in STATUSES}
    units = counts["served"]
    usage = meter_delivery(
        session,
        subscription=subscription,
        product_version_id=version.id,
        kind="batch",
        purpose=watchlist.purpose,
        units=units,
        delivery_key=f"batch:{batch_id}",
        served_at=now,
    )
    batch = BatchFile(
        id=batch_id,
        subscriber_id=subscriber_id,
        watchlist_id=watchlist.id,
        product_version_id=version.id,
        format=fmt,
        path=relative.as_posix(),
        sha256=sha256,
        rows=len(rows),
        created_at=now,
        manifest={
            "batch": batch_id,
            "subscriber": subscriber_id,
            "watchlist": watchlist.id,
            "product": watchlist.product_name,
            "product_version": version.id,
            "as_of": version.as_of.isoformat(),
            "purpose": watchlist.purpose,
            "format": fmt,
            "file_name": relative.name,
            "media_type": media_type(fmt),
            "rows": len(rows),
            "counts": counts,
            "units": units,
            "price_fen": usage.price_fen,
            "sha256": sha256,
            "bytes": len(data),
            "created_at": now.isoformat(),
            "schema": {name: str(dtype) for name, dtype in SCHEMA.items()},
        },
    )
    session.add(batch)
    session.flush()
    if members:
        session.execute(insert(BatchEntity), [{"batch_id": batch_id, "uscc": m} for m in members])
    audit.record(
        session,
        actor,
        "batch.deliver",
        batch_id,
        subscriber=subscriber_id,
        watchlist=watchlist.id,
        product_version=version.id,
        format=fmt,
        rows=len(rows),
        units=units,
        sha256=sha256,
    )
    return batch, True


def valid_subscription(session: Session, watchlist: Watchlist, now: dt.datetime) -> Subscription:
    """The bank's live subscription to the watchlist's product, covering its purpose (batch
    files and alerts alike); a watchlist kept from before purposes were limited serves nothing."""
    if watchlist.purpose not in PORTFOLIO_PURPOSES:
        raise BatchRefused(403, "purpose_not_allowed", not_a_portfolio_purpose(watchlist.purpose))
    subscription = active_subscription(
        session, watchlist.subscriber_id, watchlist.product_name, now
    )
    if subscription is None:
        raise BatchRefused(
            403, "no_subscription", f"no valid subscription to {watchlist.product_name}"
        )
    if watchlist.purpose not in subscription.purposes:
        raise BatchRefused(
            403,
            "purpose_not_subscribed",
            f"your subscription to {watchlist.product_name} does not cover {watchlist.purpose!r}",
        )
    return subscription


def authorized_version(
    session: Session, product_name: str, purpose: str, now: dt.datetime
) -> ProductVersion:
    """The published version, refused unless its product, purpose and grant all hold now."""
    product = session.get(Product, product_name)
    if product is None:
        raise BatchRefused(404, "unknown_product", "no published product by that name")
    if purpose not in product.purposes:
        raise BatchRefused(
            403, "purpose_not_allowed", f"the purpose is not allowed for {product_name}"
        )
    found = session.exec(
        select(ProductVersion, Authorization)
        .join(PipelineRun, col(PipelineRun.id) == col(ProductVersion.run_id))
        .join(
            Authorization,
            col(Authorization.id) == col(PipelineRun.authorization_id),
            isouter=True,
        )
        .where(ProductVersion.product_name == product_name, ProductVersion.status == "published")
        .order_by(col(ProductVersion.version).desc())
    ).first()
    if found is None:
        raise BatchRefused(503, "no_published_version", f"{product_name} has no published version")
    version, auth = found
    _check_grant(version, auth, product_name, purpose, now)
    return version


def check_still_deliverable(session: Session, batch: BatchFile, now: dt.datetime) -> None:
    """A built file is handed out only while the bank's subscription and the version's grant
    still hold and no result in it has been disputed or corrected since it was made."""
    watchlist = session.get(Watchlist, batch.watchlist_id)
    version = session.get(ProductVersion, batch.product_version_id)
    assert watchlist is not None and version is not None  # the batch's foreign keys
    valid_subscription(session, watchlist, now)
    run = session.get(PipelineRun, version.run_id)
    auth = None
    if run is not None and run.authorization_id is not None:
        auth = session.get(Authorization, run.authorization_id)
    _check_grant(version, auth, watchlist.product_name, watchlist.purpose, now)
    if _results_changed_since(session, batch, watchlist):
        raise BatchRefused(
            409,
            "batch_superseded",
            f"a result in batch {batch.id} has been disputed or corrected since it was made; "
            f"order a new batch (POST /v1/watchlists/{watchlist.id}/batches)",
        )


def _results_changed_since(session: Session, batch: BatchFile, watchlist: Watchlist) -> bool:
    """Whether a member's result was disputed (still open) or corrected after the batch was made:
    its file would hand out a withheld or a wrong result. A new objection on a member the file
    already withholds (disputed when it was made) changes nothing in it."""
    members = union(  # those it holds (a member since removed too) and, for a batch made
        # before its enterprises were recorded, the watchlist's members now
        select(BatchEntity.uscc).where(BatchEntity.batch_id == batch.id),
        select(WatchlistMember.uscc).where(WatchlistMember.watchlist_id == watchlist.id),
    )
    made = batch.created_at
    withheld_then = select(Objection.uscc).where(  # rows the file already withholds
        Objection.product_name == watchlist.product_name,
        col(Objection.raised_at) <= made,
        or_(col(Objection.status) == "open", col(Objection.resolved_at) > made),
    )
    disputed = select(Objection.id).where(
        Objection.product_name == watchlist.product_name,
        Objection.status == "open",
        col(Objection.raised_at) > made,
        col(Objection.uscc).in_(members),
        col(Objection.uscc).not_in(withheld_then),
    )
    corrected = select(ScoreCorrection.id).where(
        ScoreCorrection.product_version_id == batch.product_version_id,
        col(ScoreCorrection.created_at) > batch.created_at,
        col(ScoreCorrection.uscc).in_(members),
    )
    return (
        session.exec(disputed.limit(1)).first() is not None
        or session.exec(corrected.limit(1)).first() is not None
    )


def _check_grant(
    version: ProductVersion,
    auth: Authorization | None,
    product_name: str,
    purpose: str,
    now: dt.datetime,
) -> None:
    """BatchRefused unless the grant behind the version covers the product and purpose now."""
    if auth is None:
        raise BatchRefused(
            403, "authorization_missing", f"{version.id} has no authorization on record"
        )
    state = authorization_state(auth, now)
    if state != "active":
        raise BatchRefused(
            403, f"authorization_{state}", f"{state_message(auth, state)}; {version.id} 暂停交付"
        )
    if product_name not in auth.products:
        raise BatchRefused(
            403,
            "product_not_authorized",
            f"authorization {auth.reference} grants no 数据产品经营权 for {product_name}",
        )
    if purpose not in auth.purposes:
        raise BatchRefused(
            403,
            "purpose_not_authorized",
            f"authorization {auth.reference} does not allow the purpose {purpose!r}",
        )


def _portfolio_rows(
    session: Session, watchlist: Watchlist, version: ProductVersion
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Every member with its result, correction and open objection, read in one query; and when
    each correction was made (a file older than one is not handed out, so a re-order after a
    correction that left the result as it was must still make a new file)."""
    disputed = (
        select(Objection.uscc)
        .where(Objection.product_name == watchlist.product_name, Objection.status == "open")
        .distinct()
        .subquery()
    )
    member_key = col(WatchlistMember.uscc)
    found = session.exec(
        select(WatchlistMember, ServedScore, ScoreCorrection, disputed.c.uscc)
        .outerjoin(
            ServedScore,
            and_(
                col(ServedScore.product_version_id) == version.id,
                col(ServedScore.uscc) == member_key,
            ),
        )
        .outerjoin(
            ScoreCorrection,
            and_(
                col(ScoreCorrection.product_version_id) == version.id,
                col(ScoreCorrection.uscc) == member_key,
            ),
        )
        .outerjoin(disputed, disputed.c.uscc == member_key)
        .where(WatchlistMember.watchlist_id == watchlist.id)
        .order_by(col(WatchlistMember.shown_as), col(WatchlistMember.id))
    ).all()
    rows = []
    for member, served, correction, dispute in found:
        result: ServedScore | ScoreCorrection | None = correction or served
        status = "disputed_withheld" if dispute else "served" if result else "not_found"
        shown = result if status == "served" else None
        rows.append(
            {
                "enterprise": member.shown_as,
                "reference": member.reference,
                "product_version": version.id,
                "as_of": version.as_of,
                "status": status,
                "score": shown.score if shown else None,
                "grade": shown.grade if shown else None,
                "details": _json_text(shown.details) if shown else None,
            }
        )
    corrected = sorted(
        f"{c.uscc}@{c.created_at.isoformat()}" for _, _, c, _ in found if c is not None
    )
    return rows, sorted(member.uscc for member, *_ in found), corrected


def _json_text(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _content_id(
    subscriber_id: str,
    watchlist_id: str,
    version_id: str,
    fmt: str,
    rows: list[dict[str, Any]],
    members: list[str],
    corrected: list[str],
) -> str:
    """The batch id: a hash of everything the file says and whom it is for (see module doc), and
    of its corrections' times when it has any."""
    content: dict[str, Any] = {
        "subscriber": subscriber_id,
        "watchlist": watchlist_id,
        "product_version": version_id,
        "format": fmt,
        "members": members,
        "rows": rows,
    }
    if corrected:  # absent otherwise: ids of batches without corrections stay as they were
        content["corrected"] = corrected
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _encode(rows: list[dict[str, Any]], fmt: str) -> bytes:
    """The file's bytes; a CSV cell a spreadsheet would execute gets a leading apostrophe."""
    frame = pl.DataFrame(rows, schema=SCHEMA)
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.write_parquet(buffer)
    else:
        return csv_bytes(frame)  # formula-safe, with the BOM Excel needs for Chinese text
    return buffer.getvalue()
