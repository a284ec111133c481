"""Batch files for banks: a watchlist scored by the live version, with a manifest, billed once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.deps import ApiKeyDep, ReadSessionDep, SessionDep, committed
from api.errors import KEYED, ApiError, refusals
from pdo.delivery.batches import (
    BatchFormat,
    BatchRefused,
    batch_path,
    build_batch,
    check_still_deliverable,
    media_type,
)
from pdo.ledger.models import ApiKey, BatchFile, Watchlist
from pdo.ledger.types import utcnow

router = APIRouter(prefix="/v1", tags=["batches"], responses=KEYED)
UNKNOWN_BATCH = "unknown_batch: no such batch of yours (another bank's is not found either)"


class BatchRequest(BaseModel):
    """What a bank asks for: the file format of its portfolio file."""

    format: BatchFormat = "parquet"


class BatchCounts(BaseModel):
    """Rows by status: served, not found in the version, withheld while disputed (异议)."""

    served: int
    not_found: int
    disputed_withheld: int


class BatchManifest(BaseModel):
    """A batch file's manifest: what it holds, for which version, its checksum and its price."""

    batch: str
    subscriber: str
    watchlist: str
    product: str
    product_version: str
    as_of: dt.date
    purpose: str
    format: BatchFormat
    file_name: str
    media_type: str
    rows: int
    counts: BatchCounts
    units: int  # rows served with a result: what is billed
    price_fen: int
    sha256: str
    bytes: int
    created_at: dt.datetime
    schema_: dict[str, str] = Field(alias="schema", description="column → type")

    @classmethod
    def of(cls, batch: BatchFile) -> BatchManifest:
        """The manifest stored with the batch, as the API shows it."""
        return cls.model_validate(batch.manifest)


def get_lake_dir(request: Request) -> Path:
    """The lake of this API's pdo home, where delivered files are kept."""
    lake_dir: Path = request.app.state.settings.lake_dir
    return lake_dir


LakeDirDep = Annotated[Path, Depends(get_lake_dir)]


def _own_batch(session: Session, key: ApiKey, batch_id: str) -> BatchFile:
    """The caller's batch; another bank's id answers like an unknown one (and is flagged)."""
    batch = session.get(BatchFile, batch_id)
    if batch is None or batch.subscriber_id != key.subscriber_id:
        foreign = batch is not None
        raise ApiError(404, "unknown_batch", "no such batch of yours", flagged=foreign)
    return batch


def _refusal(session: Session, key: ApiKey, watchlist_id: str, refused: BatchRefused) -> ApiError:
    """The answer to a refused batch request; a probe of another bank's watchlist is flagged."""
    session.rollback()
    watchlist = session.get(Watchlist, watchlist_id)
    foreign = watchlist is not None and watchlist.subscriber_id != key.subscriber_id
    return ApiError(refused.status, refused.code, refused.message, flagged=foreign)


def _build_and_commit(
    session: Session, key: ApiKey, watchlist_id: str, fmt: BatchFormat, lake_dir: Path
) -> tuple[BatchFile, bool]:
    """Build (or find) the batch and commit it with its usage and audit events (see committed);
    whether this request made it (a racing twin that lost finds the winner's: not made)."""

    def build() -> tuple[BatchFile, bool]:
        try:
            return build_batch(
                session,
                lake_dir,
                subscriber_id=key.subscriber_id,
                watchlist_id=watchlist_id,
                fmt=fmt,
                actor=f"apikey:{key.id}",
            )
        except BatchRefused as refused:
            raise _refusal(session, key, watchlist_id, refused) from None

    return committed(session, build)


@router.post(
    "/watchlists/{watchlist_id}/batches",
    response_model=BatchManifest,
    status_code=201,
    responses={
        200: {"model": BatchManifest, "description": "unchanged: the existing batch"},
        **refusals(
            {
                403: "no_subscription; purpose_not_subscribed; purpose_not_allowed (also a "
                "watchlist for a purpose other than 贷后管理); authorization_missing / _revoked / "
                "_expired / _not_yet_valid; product_not_authorized; purpose_not_authorized",
                404: "unknown_watchlist: not one of yours; unknown_product",
                409: "batch_file_lost: the file of an unchanged batch cannot be restored",
                422: "invalid_request: a malformed body or an unsupported format",
                503: "no_published_version",
            }
        ),
    },
)
def create_batch(
    watchlist_id: str,
    body: BatchRequest,
    key: ApiKeyDep,
    session: SessionDep,
    lake_dir: LakeDirDep,
    response: Response,
) -> BatchManifest:
    """Build the watchlist's file for the live version and bill it once (201).

    Asking again while nothing changed (members, version, format, objections, corrections)
    returns the same batch with 200 and bills nothing.
    """
    batch, made = _build_and_commit(session, key, watchlist_id, body.format, lake_dir)
    if not made:
        response.status_code = 200
    return BatchManifest.of(batch)


@router.get("/batches", response_model=list[BatchManifest])
def list_batches(
    key: ApiKeyDep,
    session: ReadSessionDep,
    watchlist_id: Annotated[str | None, Query(description="only this watchlist's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[BatchManifest]:
    """The caller's batches, newest first."""
    query = select(BatchFile).where(BatchFile.subscriber_id == key.subscriber_id)
    if watchlist_id is not None:
        query = query.where(BatchFile.watchlist_id == watchlist_id)
    found = session.exec(query.order_by(col(BatchFile.created_at).desc()).limit(limit)).all()
    return [BatchManifest.of(batch) for batch in found]


@router.get(
    "/batches/{batch_id}", response_model=BatchManifest, responses=refusals({404: UNKNOWN_BATCH})
)
def get_batch(batch_id: str, key: ApiKeyDep, session: ReadSessionDep) -> BatchManifest:
    """One of the caller's batches: its manifest, with the file's SHA-256."""
    return BatchManifest.of(_own_batch(session, key, batch_id))


@router.get(
    "/batches/{batch_id}/file",
    response_class=FileResponse,
    responses={
        200: {
            "content": {media_type("parquet"): {}, media_type("csv"): {}},
            "description": "the file; X-PDO-SHA256 carries its checksum",
        },
        **refusals(
            {
                403: "no_subscription; purpose_not_subscribed; purpose_not_allowed; "
                "authorization_missing / _revoked / _expired / _not_yet_valid; "
                "product_not_authorized; purpose_not_authorized: delivery has stopped",
                404: UNKNOWN_BATCH,
                409: "batch_superseded: a result in it was disputed or corrected since it was "
                "made; order a new batch",
                410: "batch_file_gone: the file is no longer kept",
            }
        ),
    },
)
def get_batch_file(
    batch_id: str, key: ApiKeyDep, session: ReadSessionDep, lake_dir: LakeDirDep
) -> FileResponse:
    """The batch's bytes; compare their SHA-256 with the X-PDO-SHA256 header and the manifest."""
    batch = _own_batch(session, key, batch_id)
    try:
        check_still_deliverable(session, batch, utcnow())
    except BatchRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message) from None
    path = batch_path(lake_dir, batch)
    if not path.is_file():
        raise ApiError(410, "batch_file_gone", f"batch {batch_id}'s file is no longer kept")
    return FileResponse(
        path,
        media_type=media_type(batch.format),
        filename=path.name,
        headers={"X-PDO-SHA256": batch.sha256},
    )
