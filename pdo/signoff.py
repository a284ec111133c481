"""The compliance gate: decisions bound to the review package hash and the datasets it covers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session, col, select

from pdo import audit
from pdo.lake import Lake
from pdo.ledger.models import PipelineRun, SignOff, User
from pdo.ledger.types import utcnow
from pdo.users import Role


class SignOffError(PermissionError):
    """A decision or a publish that the gate refuses, with the reason."""


def package_hash(package: dict[str, Any]) -> str:
    canonical = json.dumps(package, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _changed_datasets(lake: Lake, package: dict[str, Any]) -> list[str]:
    changed = []
    for ds in package.get("datasets", []):
        try:
            manifest = lake.manifest(ds["zone"], ds["table"], ds["id"])
        except FileNotFoundError:
            changed.append(f"{ds['table']} ({ds['id'][:12]}…) is missing")
            continue
        if manifest.id != ds["id"] or not lake.verify(manifest):
            changed.append(f"{ds['table']} ({ds['id'][:12]}…) changed on disk")
    return changed


def _check_integrity(lake: Lake, run: PipelineRun) -> None:
    if (
        run.review_package_hash is None
        or package_hash(run.review_package) != run.review_package_hash
    ):
        raise SignOffError(f"run {run.id}: the review package changed after it was generated")
    changed = _changed_datasets(lake, run.review_package)
    if changed:
        raise SignOffError(f"run {run.id}: reviewed data changed: {'; '.join(changed)}")


def pending(session: Session) -> list[PipelineRun]:
    """Runs waiting at the gate, oldest first."""
    stmt = select(PipelineRun).where(PipelineRun.status == "awaiting_signoff")
    return list(session.exec(stmt.order_by(col(PipelineRun.started_at))))


def decide(
    session: Session, lake: Lake, run_id: str, reviewer: str, approve: bool, comment: str
) -> SignOff:
    """Record a reviewer's decision; refuses non-reviewers, self-approval and changed data."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise SignOffError(f"no run {run_id}")
    if run.status != "awaiting_signoff":
        raise SignOffError(f"run {run_id} is {run.status}, not awaiting sign-off")
    user = session.get(User, reviewer)
    if user is None or user.role != Role.REVIEWER.value:
        raise SignOffError(f"{reviewer!r} is not a reviewer")
    if reviewer == run.started_by:
        raise SignOffError(f"{reviewer!r} started run {run_id} and cannot decide on it")
    if not approve and not comment.strip():
        raise SignOffError("a rejection needs a comment saying why")
    _check_integrity(lake, run)
    decision = SignOff(
        run_id=run_id,
        reviewer=reviewer,
        role=user.role,
        decision="approved" if approve else "rejected",
        comment=comment,
        covers_hash=run.review_package_hash or "",
    )
    session.add(decision)
    run.status = "approved" if approve else "rejected"
    if not approve:
        run.finished_at = utcnow()
    session.add(run)
    session.flush()
    audit.record(
        session,
        reviewer,
        f"signoff.{decision.decision}",
        run_id,
        covers_hash=decision.covers_hash,
        comment=comment,
    )
    return decision


def require_approval(session: Session, lake: Lake, run_id: str) -> SignOff:
    """Checked at the moment of publishing: an approval that still covers exactly this data."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise SignOffError(f"no run {run_id}")
    approval = session.exec(
        select(SignOff)
        .where(SignOff.run_id == run_id, SignOff.decision == "approved")
        .order_by(col(SignOff.decided_at).desc())
    ).first()
    if approval is None or run.status not in ("approved", "published"):
        raise SignOffError(f"run {run_id} has no approval (status: {run.status}); publish refused")
    if approval.covers_hash != run.review_package_hash:
        raise SignOffError(f"run {run_id}: the approval does not cover the current review package")
    _check_integrity(lake, run)
    return approval
