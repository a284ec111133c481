"""Alerts a newly published version raises for watched enterprises: what changed since the last.

One query per table however large the portfolios: the watched members, the new version's rows
for them, the previous version's rows and corrections for them (what the banks were told), and
the alerts already raised for the version.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, NamedTuple

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from pdo import audit
from pdo.delivery.alerts import (
    AlertDraft,
    member_refs,
    raise_alerts_bulk,
    result_alerts,
    withdrawal_note,
)
from pdo.delivery.queueing import queue_on_commit
from pdo.ledger.models import (
    Objection,
    ProductVersion,
    ScoreCorrection,
    ServedScore,
    Watchlist,
    WatchlistMember,
)
from pdo.ledger.types import utcnow

GRADES = ("A", "B", "C", "D", "E")  # best first
DISHONEST_DEBTOR = "KO03"  # credit_risk's 失信被执行人 knock-out
ABNORMAL_FACTOR = "abnormal_listings_open"  # credit_risk's feature; operating_status's column
_LOWER_BOUND = re.compile(r"^[\[(]\s*([-+]?(?:inf|[0-9.eE+-]+))\s*,")


def previous_version(session: Session, version: ProductVersion) -> ProductVersion | None:
    """The highest-numbered earlier version of the same product, if any."""
    return session.exec(
        select(ProductVersion)
        .where(
            ProductVersion.product_name == version.product_name,
            ProductVersion.version < version.version,
        )
        .order_by(col(ProductVersion.version).desc())
    ).first()


class Served(NamedTuple):
    """The parts of a served row the comparison reads."""

    score: int | None
    grade: str | None
    details: dict[str, Any]


def results_served(
    session: Session, version_id: str, keys: Collection[str] | SelectOfScalar[str]
) -> dict[str, Served]:
    """What a version serves now for the enterprises (entity keys, or a query of them): the
    correction an upheld objection made where there is one, else the signed row, so alerts
    compare with the result the banks were told, not the one the correction replaced."""
    signed = session.exec(
        select(ServedScore.uscc, ServedScore.score, ServedScore.grade, ServedScore.details).where(
            ServedScore.product_version_id == version_id, col(ServedScore.uscc).in_(keys)
        )
    )
    corrected = session.exec(
        select(
            ScoreCorrection.uscc,
            ScoreCorrection.score,
            ScoreCorrection.grade,
            ScoreCorrection.details,
        ).where(
            ScoreCorrection.product_version_id == version_id, col(ScoreCorrection.uscc).in_(keys)
        )
    )
    return {
        uscc: Served(score, grade, dict(details))
        for uscc, score, grade, details in [*signed, *corrected]  # a correction wins
    }


def _rows_for_watched(session: Session, version_id: str, product_name: str) -> dict[str, Served]:
    """A version's results for every enterprise watched on the product, by entity key."""
    watched = (
        select(WatchlistMember.uscc)
        .join(Watchlist, col(Watchlist.id) == col(WatchlistMember.watchlist_id))
        .where(Watchlist.product_name == product_name)
    )
    return results_served(session, version_id, watched)


def _grade_rank(grade: str | None) -> int | None:
    return GRADES.index(grade) if grade in GRADES else None


def grade_dropped(old: Served | None, new: Served | None) -> bool:
    """Whether the grade letter got worse (A best … E worst); no old grade, no drop."""
    before = _grade_rank(old.grade if old else None)
    after = _grade_rank(new.grade if new else None)
    return before is not None and after is not None and after > before


def _knockout_codes(row: Served | None) -> set[str]:
    knockouts = (row.details.get("knockouts") if row else None) or []
    return {str(k.get("code")) for k in knockouts if isinstance(k, dict)}


def _listed_bin(label: object) -> bool:
    """A scorecard bin holding only enterprises with an open listing (its lower bound > 0)."""
    match = _LOWER_BOUND.match(str(label))
    if match is None:
        return False
    try:
        return float(match.group(1)) > 0
    except ValueError:
        return False


def abnormally_listed(row: Served | None) -> bool:
    """Whether the served row shows an open 经营异常 listing.

    operating_status and credit_risk serve the count (operating_status also status "abnormal");
    rows credit_risk published before it served the count show it only as a reason code on the
    abnormal-listing factor whose bin lies above zero listings (when the model split it).
    """
    if row is None:
        return False
    details = row.details
    if details.get("status") == "abnormal" or int(details.get(ABNORMAL_FACTOR) or 0) > 0:
        return True
    reasons = details.get("reasons") or []
    return any(
        isinstance(r, dict) and r.get("factor") == ABNORMAL_FACTOR and _listed_bin(r.get("bin"))
        for r in reasons
    )


def _changes(
    version: ProductVersion,
    previous: ProductVersion | None,
    old: Served | None,
    new: Served | None,
) -> list[tuple[str, dict[str, Any]]]:
    """The kinds of alert one watched enterprise gets for this version, with their payloads."""
    base = {"version": version.id, "as_of": version.as_of.isoformat()}
    changes: list[tuple[str, dict[str, Any]]] = [
        ("new_version", base | {"score": new.score if new else None,
                                "grade": new.grade if new else None})
    ]  # fmt: skip
    if grade_dropped(old, new):
        assert old is not None and new is not None
        changes.append(
            ("grade_drop", base | {"previous_version": previous.id if previous else None,
                                   "old_grade": old.grade, "new_grade": new.grade})
        )  # fmt: skip
    if DISHONEST_DEBTOR in _knockout_codes(new) - _knockout_codes(old):
        changes.append(("dishonest_debtor", base | {"knockout": DISHONEST_DEBTOR,
                                                    "label_zh": "失信被执行人"}))  # fmt: skip
    if abnormally_listed(new) and not abnormally_listed(old):
        changes.append(("abnormal_listing", base | {"label_zh": "列入经营异常名录"}))
    return changes


def _disputed(session: Session, product_name: str) -> set[str]:
    """Entity keys with an open objection on the product: their results are withheld."""
    return set(
        session.exec(
            select(Objection.uscc).where(
                Objection.product_name == product_name, Objection.status == "open"
            )
        )
    )


def _withheld(version: ProductVersion) -> list[tuple[str, dict[str, Any]]]:
    """A disputed enterprise's only alert: the version exists, its result is withheld.

    Grade drops, knock-outs and listings would disclose the disputed result; resolving the
    objection tells the watchers what it is (a dispute_resolved alert).
    """
    return [
        ("new_version", {"version": version.id, "as_of": version.as_of.isoformat(),
                         "status": "disputed_withheld", "score": None, "grade": None})
    ]  # fmt: skip


def alerts_for_new_version(session: Session, version: ProductVersion) -> int:
    """Raise the version's alerts on every watched member; returns how many were created.

    Idempotent: calling it again for the same version creates nothing (dedupe keys).
    """
    product_name = version.product_name
    previous = previous_version(session, version)
    watchlists = {
        w.id: w
        for w in session.exec(select(Watchlist).where(Watchlist.product_name == product_name))
    }
    watched = member_refs(session, list(watchlists))
    if not watched:
        return 0
    new_rows = _rows_for_watched(session, version.id, product_name)
    old_rows = _rows_for_watched(session, previous.id, product_name) if previous else {}
    disputed = _disputed(session, product_name)
    drafts = [
        AlertDraft(watchlists[member.watchlist_id], member, kind, payload)
        for member in watched
        for kind, payload in (
            _withheld(version)
            if member.uscc in disputed
            else _changes(version, previous, old_rows.get(member.uscc), new_rows.get(member.uscc))
        )
    ]
    counts = raise_alerts_bulk(session, drafts, event_key=version.id, product_version_id=version.id)
    total = sum(counts.values())
    if total:
        audit.record(
            session,
            "system",
            "alerts.raise",
            version.id,
            previous=previous.id if previous else None,
            watched=len(watched),
            **{f"n_{kind}": n for kind, n in sorted(counts.items())},
        )
    return total


def alerts_for_released_result(
    session: Session, version: ProductVersion, entity: str, now_served: Served | None, outcome: str
) -> int:
    """What a dispute held back from an enterprise's watchers, once its last objection closed.

    Rejected, the result served before the dispute stands: the result alerts its objections
    withdrew go out again, but never those an upheld objection withdrew (their result was
    corrected away; the correction's dispute_resolved and result alerts said so). Either way,
    a version published during the dispute raised only a withheld new_version; its grade drop,
    knock-out or listing alerts are raised now from the result served now (kinds already
    raised for the version are skipped). Returns the alerts released.
    """
    released = 0
    if outcome == "rejected":
        upheld = session.exec(
            select(Objection.id).where(
                Objection.uscc == entity,
                Objection.product_name == version.product_name,
                Objection.outcome == "upheld",
            )
        ).all()
        superseded = {withdrawal_note(objection_id) for objection_id in upheld}
        withdrawn = [
            alert
            for alert in result_alerts(
                session, version.product_name, entity, ("withdrawn",), version_id=version.id
            )
            if alert.last_error not in superseded
        ]
        for alert in withdrawn:
            alert.status, alert.next_attempt_at, alert.last_error = "pending", utcnow(), None
            alert.attempts = 0  # queued anew, as a requeue is: a fresh budget of pushes
            session.add(alert)
        queue_on_commit(session, (alert.id for alert in withdrawn))  # after the banks' cursors
        released += len(withdrawn)
    watchlists = {
        w.id: w
        for w in session.exec(
            select(Watchlist).where(Watchlist.product_name == version.product_name)
        )
    }
    members = [m for m in member_refs(session, list(watchlists)) if m.uscc == entity]
    previous = previous_version(session, version)
    old = results_served(session, previous.id, [entity]).get(entity) if previous else None
    drafts = [
        AlertDraft(watchlists[member.watchlist_id], member, kind, payload)
        for member in members
        for kind, payload in _changes(version, previous, old, now_served)
        if kind != "new_version"  # raised during the dispute, withheld; dispute_resolved says
    ]
    counts = raise_alerts_bulk(session, drafts, event_key=version.id, product_version_id=version.id)
    released += sum(counts.values())
    if released:
        audit.record(session, "system", "alerts.release", version.id, alerts=released)
    return released
