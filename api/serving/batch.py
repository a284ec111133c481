"""One serving transaction for a batch of lookups: decide each, write usage and refusals, commit.

Every decision reads committed state inside the transaction that records it, so a served answer
and its usage event are one atomic fact; a refusal is recorded, never billed. Per batch the
worker runs a fixed number of statements whatever the batch size (group commit).
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from api.serving.requests import PORTFOLIO_PURPOSES, Refusal, RefusedElsewhere, ScoreLookup
from api.serving.snapshot import KeyEntry, Snapshot, read_generation
from pdo.delivery.periods import business_day, business_month
from pdo.ledger.models import (
    Consent,
    DisclosedEnterprise,
    Objection,
    QuotaUsage,
    RefusedCall,
    RevenueAllocation,
    ScoreCorrection,
    ServedScore,
    Subscriber,
    UsageEvent,
    Watchlist,
    WatchlistMember,
)
from pdo.revenue import split_fen
from pdo.subscribers import hash_secret, split_key

T_CONSENT = Consent.__table__  # type: ignore[attr-defined]
T_DISCLOSED = DisclosedEnterprise.__table__  # type: ignore[attr-defined]
T_OBJECTION = Objection.__table__  # type: ignore[attr-defined]
T_QUOTA = QuotaUsage.__table__  # type: ignore[attr-defined]
T_REFUSED = RefusedCall.__table__  # type: ignore[attr-defined]
T_ALLOCATION = RevenueAllocation.__table__  # type: ignore[attr-defined]
T_CORRECTION = ScoreCorrection.__table__  # type: ignore[attr-defined]
T_SERVED = ServedScore.__table__  # type: ignore[attr-defined]
T_SUBSCRIBER = Subscriber.__table__  # type: ignore[attr-defined]
T_USAGE = UsageEvent.__table__  # type: ignore[attr-defined]
T_WATCHLIST = Watchlist.__table__  # type: ignore[attr-defined]
T_MEMBER = WatchlistMember.__table__  # type: ignore[attr-defined]


def authenticate(snapshot: Snapshot, presented: str | None) -> KeyEntry | Refusal:
    """The caller's key, or the 401 that says why not (unknown and revoked look the same)."""
    if not presented:
        return Refusal(401, "missing_api_key", "send your API key in the X-API-Key header")
    parts = split_key(presented)
    entry = snapshot.keys.get(parts[0]) if parts else None
    if (
        parts is None
        or entry is None
        or not hmac.compare_digest(entry.key_hash, hash_secret(parts[1]))
    ):
        return Refusal(401, "invalid_api_key", "the API key is unknown or revoked")
    return entry


@dataclass
class Admitted:
    """A lookup that passed the checks needing no per-enterprise data."""

    job: ScoreLookup
    key: KeyEntry
    subscription_id: int
    price_fen: int
    monthly_quota: int | None
    version_id: str
    as_of: dt.date
    shares: dict[str, int]


def admit(
    snapshot: Snapshot, job: ScoreLookup, key: KeyEntry, now: dt.datetime
) -> Admitted | Refusal:
    """Product, purpose, subscription scope and the grant behind the live version, in that order."""
    product = snapshot.products.get(job.product)
    if product is None or product.live is None:
        return Refusal(404, "unknown_product", f"no published product {job.product!r}")
    if job.purpose not in product.purposes:
        return Refusal(
            403,
            "purpose_not_allowed",
            f"purpose {job.purpose!r} is not allowed for {job.product}; "
            f"allowed: {', '.join(product.purposes)}",
        )
    sub = snapshot.subscriptions.get((key.subscriber_id, job.product))
    if sub is None or not sub.valid_from <= now <= sub.valid_until:
        return Refusal(403, "no_subscription", f"no valid subscription to {job.product}")
    if job.purpose not in sub.purposes:
        return Refusal(
            403,
            "purpose_not_subscribed",
            f"your subscription to {job.product} covers {', '.join(sub.purposes)} only",
        )
    live, grant = product.live, product.live.grant
    if grant is None:
        return Refusal(403, "authorization_missing", f"{live.id} has no authorization on record")
    state = grant.status
    if state == "active" and now > grant.valid_until:
        state = "expired"
    elif state == "active" and now < grant.valid_from:
        state = "not_yet_valid"
    if state != "active":
        return Refusal(
            403,
            f"authorization_{state}",
            f"授权 {grant.reference} 已撤销或不在有效期 / authorization {grant.reference} is "
            f"{state}; {live.id} 暂停交付 / is not delivered",
        )
    if job.product not in grant.products:
        return Refusal(
            403,
            "product_not_authorized",
            f"authorization {grant.reference} grants no 数据产品经营权 for {job.product}",
        )
    if job.purpose not in grant.purposes:
        return Refusal(
            403,
            "purpose_not_authorized",
            f"authorization {grant.reference} does not allow purpose {job.purpose!r}",
        )
    if not job.consent_ref:
        return Refusal(
            403,
            "consent_required",
            "name the enterprise's consent in the `consent` parameter (register it first)",
            flagged=True,
        )
    return Admitted(
        job,
        key,
        sub.id,
        sub.price_fen,
        sub.monthly_quota,
        live.id,
        live.as_of,
        product.revenue_shares_bp,
    )


def _consent_refusal(rows: list[Any], a: Admitted, now: dt.datetime) -> Refusal | None:
    """None when one of the bank's consents with this reference covers the call right now."""
    ref = a.job.consent_ref
    mine = [r for r in rows if r.subscriber_id == a.key.subscriber_id and r.reference == ref]
    if not mine:
        return Refusal(403, "consent_not_found", f"no consent {ref!r} registered for you", True)
    consent = mine[0]
    if consent.uscc != a.job.entity:
        return Refusal(
            403, "consent_other_enterprise", f"consent {ref!r} is for another enterprise", True
        )
    if consent.revoked_at is not None:
        return Refusal(403, "consent_revoked", f"consent {ref!r} was withdrawn", True)
    if a.job.purpose not in consent.purposes:
        return Refusal(
            403,
            "consent_purpose",
            f"consent {ref!r} does not cover purpose {a.job.purpose!r}",
            True,
        )
    if not consent.valid_from <= now <= consent.valid_until:
        return Refusal(403, "consent_expired", f"consent {ref!r} is not valid today", True)
    return None


def _lookup_refusal(
    a: Admitted,
    *,
    in_portfolio: bool,
    found: bool,
    used: int,
    period: str,
    new_today: bool,
    disclosed_today: int,
    day: dt.date,
) -> Refusal | None:
    """Portfolio, existence, monthly quota and the daily disclosure budget, in that order."""
    if a.job.purpose in PORTFOLIO_PURPOSES and not in_portfolio:
        return Refusal(
            403,
            "not_in_portfolio",
            f"{a.job.purpose} is for enterprises on your {a.job.product} watchlists",
            flagged=True,
        )
    if not found:
        return Refusal(
            404, "unknown_enterprise", f"no result for this enterprise in {a.version_id}"
        )
    if a.monthly_quota is not None and used >= a.monthly_quota:
        return Refusal(
            429,
            "quota_exceeded",
            f"monthly quota of {a.monthly_quota} calls to {a.job.product} used up ({period})",
        )
    budget = a.key.daily_enterprise_budget
    if new_today and disclosed_today >= budget:
        return Refusal(
            429,
            "disclosure_budget_exceeded",
            f"daily budget of {budget} distinct enterprises reached ({day})",
            flagged=True,
        )
    return None


class ServingBatch:
    """Runs one batch on one connection inside the caller's transaction."""

    def __init__(self, conn: Connection, snapshot: Snapshot, now: dt.datetime) -> None:
        self.conn, self.snapshot, self.now = conn, snapshot, now
        self.usage: list[dict[str, Any]] = []
        self.allocations: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []

    def run(self, jobs: list[ScoreLookup | RefusedElsewhere]) -> None:
        admitted: list[Admitted] = []
        for job in jobs:
            if isinstance(job, RefusedElsewhere):
                self._refuse_elsewhere(job)
                continue
            key = authenticate(self.snapshot, job.presented_key)
            if isinstance(key, Refusal):
                self._refuse(job, None, key)
                continue
            decided = admit(self.snapshot, job, key, self.now)
            if isinstance(decided, Refusal):
                self._refuse(job, key, decided)
            else:
                admitted.append(decided)
        if admitted:
            self._lookups(admitted)
        if self.usage:
            self.conn.execute(insert(T_USAGE), self.usage)
            self.conn.execute(insert(T_ALLOCATION), self.allocations)
        if self.refused:
            self.conn.execute(insert(T_REFUSED), self.refused)

    def _lookups(self, admitted: list[Admitted]) -> None:
        subscribers = sorted({a.key.subscriber_id for a in admitted})
        entities = sorted({a.job.entity for a in admitted})
        if self.conn.dialect.name == "postgresql":  # one bank's batches in turn, across workers
            self.conn.execute(
                select(T_SUBSCRIBER.c.id)
                .where(T_SUBSCRIBER.c.id.in_(subscribers))
                .order_by(T_SUBSCRIBER.c.id)
                .with_for_update()
            )
        consents = list(
            self.conn.execute(
                select(T_CONSENT).where(
                    T_CONSENT.c.subscriber_id.in_(subscribers),
                    T_CONSENT.c.reference.in_({a.job.consent_ref for a in admitted}),
                )
            )
        )
        portfolio: set[tuple[str, str, str]] = set()
        if any(a.job.purpose in PORTFOLIO_PURPOSES for a in admitted):
            portfolio = {
                (r.subscriber_id, r.product_name, r.uscc)
                for r in self.conn.execute(
                    select(T_WATCHLIST.c.subscriber_id, T_WATCHLIST.c.product_name, T_MEMBER.c.uscc)
                    .join(T_MEMBER, T_MEMBER.c.watchlist_id == T_WATCHLIST.c.id)
                    .where(
                        T_WATCHLIST.c.subscriber_id.in_(subscribers), T_MEMBER.c.uscc.in_(entities)
                    )
                )
            }
        served = {
            (r.product_version_id, r.uscc): r
            for r in self.conn.execute(
                select(
                    T_SERVED.c.product_version_id,
                    T_SERVED.c.uscc,
                    T_SERVED.c.score,
                    T_SERVED.c.grade,
                    T_SERVED.c.details,
                    T_CORRECTION.c.objection_id,
                    T_CORRECTION.c.score.label("c_score"),
                    T_CORRECTION.c.grade.label("c_grade"),
                    T_CORRECTION.c.details.label("c_details"),
                )
                .join(
                    T_CORRECTION,
                    and_(
                        T_CORRECTION.c.product_version_id == T_SERVED.c.product_version_id,
                        T_CORRECTION.c.uscc == T_SERVED.c.uscc,
                    ),
                    isouter=True,
                )
                .where(
                    T_SERVED.c.product_version_id.in_({a.version_id for a in admitted}),
                    T_SERVED.c.uscc.in_(entities),
                )
            )
        }
        disputed = {
            (r.product_name, r.uscc)
            for r in self.conn.execute(
                select(T_OBJECTION.c.product_name, T_OBJECTION.c.uscc).where(
                    T_OBJECTION.c.status == "open", T_OBJECTION.c.uscc.in_(entities)
                )
            )
        }
        day, period = business_day(self.now), business_month(self.now)
        disclosed = {
            (r.subscriber_id, r.uscc)
            for r in self.conn.execute(
                select(T_DISCLOSED.c.subscriber_id, T_DISCLOSED.c.uscc).where(
                    T_DISCLOSED.c.day == day,
                    T_DISCLOSED.c.subscriber_id.in_(subscribers),
                    T_DISCLOSED.c.uscc.in_(entities),
                )
            )
        }
        disclosed_count: dict[str, int] = defaultdict(int)
        disclosed_count.update(
            self.conn.execute(
                select(T_DISCLOSED.c.subscriber_id, func.count())
                .where(T_DISCLOSED.c.day == day, T_DISCLOSED.c.subscriber_id.in_(subscribers))
                .group_by(T_DISCLOSED.c.subscriber_id)
            ).all()
        )
        quota_ids = sorted({a.subscription_id for a in admitted if a.monthly_quota is not None})
        used: dict[int, int] = {}
        if quota_ids:
            used = dict(
                self.conn.execute(
                    select(T_QUOTA.c.subscription_id, T_QUOTA.c.used).where(
                        T_QUOTA.c.period == period, T_QUOTA.c.subscription_id.in_(quota_ids)
                    )
                ).all()
            )
        known_quota = set(used)
        new_disclosures: list[dict[str, Any]] = []
        for a in admitted:
            seen = (a.key.subscriber_id, a.job.entity)
            row = served.get((a.version_id, a.job.entity))
            refusal = _consent_refusal(consents, a, self.now) or _lookup_refusal(
                a,
                in_portfolio=(a.key.subscriber_id, a.job.product, a.job.entity) in portfolio,
                found=row is not None,
                used=used.get(a.subscription_id, 0),
                period=period,
                new_today=seen not in disclosed,
                disclosed_today=disclosed_count[a.key.subscriber_id],
                day=day,
            )
            if refusal is not None:
                self._refuse(a.job, a.key, refusal)
                continue
            assert row is not None
            if seen not in disclosed:
                disclosed.add(seen)
                disclosed_count[a.key.subscriber_id] += 1
                new_disclosures.append({"subscriber_id": seen[0], "day": day, "uscc": seen[1]})
            if a.monthly_quota is not None:
                used[a.subscription_id] = used.get(a.subscription_id, 0) + 1
            consent_id = next(
                r.id
                for r in consents
                if r.subscriber_id == a.key.subscriber_id and r.reference == a.job.consent_ref
            )
            self._serve(a, row, (a.job.product, a.job.entity) in disputed, consent_id)
        if new_disclosures:
            self.conn.execute(insert(T_DISCLOSED), new_disclosures)
        for sub_id in quota_ids:
            if sub_id in known_quota:
                self.conn.execute(
                    update(T_QUOTA)
                    .where(T_QUOTA.c.subscription_id == sub_id, T_QUOTA.c.period == period)
                    .values(used=used[sub_id])
                )
            elif used.get(sub_id):
                self.conn.execute(
                    insert(T_QUOTA).values(subscription_id=sub_id, period=period, used=used[sub_id])
                )

    def _serve(self, a: Admitted, row: Any, disputed: bool, consent_id: str) -> None:
        usage_id = uuid.uuid4().hex
        if disputed:
            status, score, grade, details = "disputed_withheld", None, None, {}
        elif row.objection_id is not None:
            status, score, grade, details = "corrected", row.c_score, row.c_grade, row.c_details
        else:
            status, score, grade, details = "served", row.score, row.grade, row.details
        self.usage.append(
            {
                "id": usage_id,
                "subscriber_id": a.key.subscriber_id,
                "api_key_id": a.key.key_id,
                "subscription_id": a.subscription_id,
                "product_version_id": a.version_id,
                "kind": "query",
                "status": "withheld" if disputed else "served",
                "uscc": a.job.entity,
                "purpose": a.job.purpose,
                "consent_id": consent_id,
                "units": 1,
                "price_fen": a.price_fen,
                "delivery_key": None,
                "served_at": self.now,
            }
        )
        for party, fen in split_fen(a.price_fen, a.shares).items():
            self.allocations.append({"usage_event_id": usage_id, "party": party, "amount_fen": fen})
        a.job.outcome = {
            "uscc": a.job.shown_as,
            "product": a.job.product,
            "product_version": a.version_id,
            "as_of": a.as_of.isoformat(),
            "status": status,
            "score": score,
            "grade": grade,
            "details": details or {},
            "purpose": a.job.purpose,
            "consent": a.job.consent_ref,
            "usage_id": usage_id,
            "price_fen": a.price_fen,
        }

    def _refuse(self, job: ScoreLookup, key: KeyEntry | None, refusal: Refusal) -> None:
        job.outcome = refusal
        self.refused.append(
            {
                "at": self.now,
                "subscriber_id": key.subscriber_id if key else None,
                "api_key_id": key.key_id if key else None,
                "endpoint": job.endpoint,
                "product_name": job.product,
                "uscc": job.entity,
                "purpose": job.purpose,
                "status": refusal.status,
                "code": refusal.code,
                "flagged": refusal.flagged,
            }
        )

    def _refuse_elsewhere(self, job: RefusedElsewhere) -> None:
        job.outcome = Refusal(job.status, job.code, "")
        self.refused.append(
            {
                "at": self.now,
                "subscriber_id": job.subscriber_id,
                "api_key_id": job.api_key_id,
                "endpoint": job.endpoint,
                "product_name": job.product,
                "uscc": job.entity,
                "purpose": job.purpose,
                "status": job.status,
                "code": job.code,
                "flagged": job.flagged,
            }
        )


def current_snapshot(conn: Connection, held: Snapshot | None, now: dt.datetime) -> Snapshot:
    """The held snapshot if the generation has not moved, else a fresh one."""
    generation = read_generation(conn)
    if held is not None and held.generation == generation:
        return held
    return Snapshot.load(conn, generation, now)
