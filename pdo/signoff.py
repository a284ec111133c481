"""The compliance gate: decisions bound to the review package hash and the datasets it covers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session, col, select

from pdo import audit
from pdo.lake import Lake, version_id
from pdo.ledger.models import Authorization, PipelineRun, SignOff, User
from pdo.ledger.types import utcnow
from pdo.registration import authorization_state, state_message
from pdo.sources.contract import Classification
from pdo.sources.tables import SOURCE_TABLES
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
        # the id is recomputed from the manifest's own data hash: a manifest edited to match
        # changed data no longer yields the id the reviewers signed
        signed = version_id(
            manifest.zone,
            manifest.table,
            manifest.data_hash,
            manifest.parents,
            manifest.policy_hash,
            manifest.code_hash,
        )
        if manifest.id != ds["id"] or signed != ds["id"] or not lake.verify(manifest):
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


APPROVALS_BY_CLASSIFICATION = {
    Classification.GENERAL: 1,
    Classification.IMPORTANT: 2,  # 重要数据: two distinct reviewers (four-eyes)
    Classification.CORE: 2,
}


_CONTRACT_CLASSIFICATION = {t.name: t.classification for t in SOURCE_TABLES}
_CLASSIFICATIONS = {c.value: c for c in Classification}


def required_approvals(package: dict[str, Any]) -> int:
    """Distinct approvals a run needs: the most any of its tables' classification demands.

    The contract's classification counts, whatever the package says (it can only raise it).
    """
    levels = set()
    for t in package.get("tables", []):
        if t.get("table") in _CONTRACT_CLASSIFICATION:
            levels.add(_CONTRACT_CLASSIFICATION[t["table"]])
        if t.get("classification") in _CLASSIFICATIONS:
            levels.add(_CLASSIFICATIONS[t["classification"]])
    return max((APPROVALS_BY_CLASSIFICATION[c] for c in levels), default=1)


def approvals(session: Session, run: PipelineRun) -> list[SignOff]:
    """Approvals that cover the run's current review package, one per reviewer, oldest first."""
    rows = session.exec(
        select(SignOff)
        .where(
            SignOff.run_id == run.id,
            SignOff.decision == "approved",
            SignOff.covers_hash == (run.review_package_hash or ""),
        )
        .order_by(col(SignOff.decided_at))
    ).all()
    seen: dict[str, SignOff] = {}
    for row in rows:
        seen.setdefault(row.reviewer, row)
    return list(seen.values())


def progress(session: Session, run: PipelineRun) -> tuple[int, int]:
    """(approvals given, approvals needed) for the run's current review package."""
    return len(approvals(session, run)), required_approvals(run.review_package or {})


def pending(session: Session) -> list[PipelineRun]:
    """Runs waiting at the gate, oldest first."""
    stmt = select(PipelineRun).where(PipelineRun.status == "awaiting_signoff")
    return list(session.exec(stmt.order_by(col(PipelineRun.started_at))))


def decide(
    session: Session, lake: Lake, run_id: str, reviewer: str, approve: bool, comment: str
) -> SignOff:
    """Record a reviewer's decision; refuses non-reviewers, self-approval and changed data."""
    # The run's row first, held to commit: of two decisions at once (PostgreSQL; SQLite's
    # units of work begin IMMEDIATE), the second waits and then reads the first's outcome.
    run = session.get(PipelineRun, run_id, with_for_update=True, populate_existing=True)
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
    given = approvals(session, run)
    if approve and any(a.reviewer == reviewer for a in given):
        raise SignOffError(f"{reviewer!r} already approved run {run_id}; a second reviewer must")
    needed = required_approvals(run.review_package or {})
    from pdo.privacy.redact import redact_numbers  # Presidio: loaded at a decision, not before

    comment = redact_numbers(comment)  # a reviewer may quote the value that leaked
    decision = SignOff(
        run_id=run_id,
        reviewer=reviewer,
        role=user.role,
        decision="approved" if approve else "rejected",
        comment=comment,
        covers_hash=run.review_package_hash or "",
    )
    session.add(decision)
    if not approve:
        run.status, run.finished_at = "rejected", utcnow()
    elif len(given) + 1 >= needed:
        run.status = "approved"
    # else: still awaiting_signoff, one more distinct reviewer to go
    session.add(run)
    session.flush()
    audit.record(
        session,
        reviewer,
        f"signoff.{decision.decision}",
        run_id,
        covers_hash=decision.covers_hash,
        comment=comment,
        approvals=f"{len(given) + 1}/{needed}" if approve else None,
    )
    return decision


def require_approval(session: Session, lake: Lake, run_id: str) -> SignOff:
    """Checked at the moment of publishing: an approval that still covers exactly this data."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise SignOffError(f"no run {run_id}")
    given = approvals(session, run)
    if not given or run.status not in ("approved", "published"):
        raise SignOffError(f"run {run_id} has no approval (status: {run.status}); publish refused")
    needed = required_approvals(run.review_package or {})
    if len(given) < needed:
        raise SignOffError(
            f"run {run_id} has {len(given)} of {needed} approvals covering its review package;"
            " publish refused"
        )
    grant = session.get(Authorization, run.authorization_id)
    state = authorization_state(grant) if grant is not None else "missing"
    if grant is None or state != "active":
        why = state_message(grant, state) if grant is not None else "no authorization on record"
        raise SignOffError(f"run {run_id}: {why}; publish refused")
    _check_integrity(lake, run)
    return given[-1]
