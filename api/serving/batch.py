"""One serving transaction for a batch of lookups: decide each, write usage and refusals, commit.

Every decision reads committed state inside the transaction that records it, so a served answer
and its usage event are one atomic fact; a refusal is recorded, never billed. Per batch the
worker runs a fixed number of statements whatever the batch size (group commit).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections import defaultdict
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from api.serving.requests import (
    PORTFOLIO_PURPOSES,
    Refusal,
    RefusedElsewhere,
    ScoreLookup,
    recordable,
)
from api.serving.snapshot import KeyEntry, Snapshot, read_generation
from api.serving.sql import Plan, Query, Reads, Rows, Statements
from pdo import audit
from pdo.delivery.metering import USAGE_ACTIONS, usage_details
from pdo.delivery.periods import business_day, business_month
from pdo.ledger.models import new_id
from pdo.registration import authorization_state, state_message
from pdo.subscribers import hash_secret, split_key

INVALID_KEY = "the API key is unknown or revoked"
# An answer's JSON, by one encoder (json.dumps with options builds a new one per call).
_ANSWER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


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
        return Refusal(401, "invalid_api_key", INVALID_KEY)
    return entry


@dataclass
class Admitted:
    """A lookup that passed the checks needing no per-enterprise data."""

    job: ScoreLookup
    key: KeyEntry
    subscription_id: int
    price_fen: int
    monthly_quota: int | None
    overage_price_fen: int | None
    refunds_withheld: bool
    version_id: str
    as_of: dt.date


def admit(
    snapshot: Snapshot, job: ScoreLookup, key: KeyEntry, now: dt.datetime
) -> Admitted | Refusal:
    """Product, purpose, subscription scope and the grant behind the live version, in that order."""
    product = snapshot.products.get(job.product)
    if product is None or product.live is None:
        published = ", ".join(sorted(n for n, p in snapshot.products.items() if p.live))
        return Refusal(404, "unknown_product", f"no published product by that name: {published}")
    if job.purpose not in product.purposes:
        return Refusal(
            403,
            "purpose_not_allowed",
            f"the declared purpose is not allowed for {job.product}; "
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
    state = authorization_state(grant, now)
    if state != "active":
        return Refusal(
            403,
            f"authorization_{state}",
            f"{state_message(grant, state)}; {live.id} 暂停交付 / is not delivered",
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
            f"authorization {grant.reference} does not allow the declared purpose",
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
        sub.overage_price_fen,
        sub.refunds_withheld,
        live.id,
        live.as_of,
    )


@dataclass(frozen=True)
class Consented:
    """A registered consent, as the lookup needs it."""

    id: str
    uscc: str
    purposes: tuple[str, ...]
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None


def _consent_refusal(consent: Consented | None, a: Admitted, now: dt.datetime) -> Refusal | None:
    """None when the bank's consent with this reference covers the call right now.

    Messages never quote the reference or purpose the bank sent: a mixed-up field could carry a
    person's identifier, which an error must not echo into logs.
    """
    if consent is None:
        return Refusal(403, "consent_not_found", "no consent of yours has this reference", True)
    if consent.uscc != a.job.entity:
        return Refusal(
            403, "consent_other_enterprise", "this consent is for another enterprise", True
        )
    if consent.revoked_at is not None:
        return Refusal(403, "consent_revoked", "this consent was withdrawn", True)
    if a.job.purpose not in consent.purposes:
        return Refusal(
            403,
            "consent_purpose",
            "this consent does not cover the declared purpose",
            True,
        )
    assert consent.valid_from is not None and consent.valid_until is not None
    if not consent.valid_from <= now <= consent.valid_until:
        return Refusal(403, "consent_expired", "this consent is not valid today", True)
    return None


def _lookup_refusal(
    a: Admitted,
    *,
    in_portfolio: bool,
    found: bool,
    free: bool,
    used: int,
    period: str,
    new_today: bool,
    disclosed_today: int,
    day: dt.date,
) -> Refusal | None:
    """Portfolio, existence, monthly quota and the daily disclosure budget, in that order.

    A free answer (withheld under an objection, refunded by the plan) takes no call of the
    quota, so a quota used up does not refuse it."""
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
    quota_left = a.monthly_quota is None or used < a.monthly_quota
    if not (free or quota_left or a.overage_price_fen is not None):
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


USAGE_COLUMNS = (
    ("id", "text"),
    ("subscriber_id", "text"),
    ("api_key_id", "text"),
    ("subscription_id", "int"),
    ("product_version_id", "text"),
    ("kind", "text"),
    ("status", "text"),
    ("uscc", "text"),
    ("purpose", "text"),
    ("consent_id", "text"),
    ("units", "int"),
    ("price_fen", "int"),
    ("overage", "boolean"),
    ("delivery_key", "text"),
    ("served_at", "timestamptz"),
)
AUDIT_COLUMNS = (
    ("seq", "int"),
    ("at", "timestamptz"),
    ("actor", "text"),
    ("action", "text"),
    ("subject", "text"),
    ("details", "json"),
    ("prev_hash", "text"),
    ("hash", "text"),
)
DISCLOSED_COLUMNS = (("subscriber_id", "text"), ("day", "date"), ("uscc", "text"))
REFUSED_COLUMNS = (
    ("at", "timestamptz"),
    ("subscriber_id", "text"),
    ("api_key_id", "text"),
    ("endpoint", "text"),
    ("product_name", "text"),
    ("uscc", "text"),
    ("purpose", "text"),
    ("status", "int"),
    ("code", "text"),
    ("flagged", "boolean"),
)


class ServingBatch:
    """Decides one batch: its plan asks for the reads it needs and leaves its writes in `db`.

    The caller runs the plan, then the writes, inside one transaction (`api.serving.worker`).
    """

    def __init__(self, sqlite: bool, snapshot: Snapshot, now: dt.datetime) -> None:
        self.db, self.snapshot, self.now = Statements(sqlite), snapshot, now
        self.stamp = self.db.ts_in(now)
        self.usage: list[tuple[Any, ...]] = []
        self.refused: list[tuple[Any, ...]] = []
        self.entries: list[audit.Entry] = []  # for the audit chain, in decision order
        self.tail: list[tuple[Any, ...]] | None = None  # the chain's last (seq, hash), once read

    def plan(self, jobs: list[ScoreLookup | RefusedElsewhere]) -> Plan:
        """Decide every job; yields the reads it needs (see `api.serving.sql.Plan`)."""
        admitted: list[Admitted] = []
        for job in jobs:
            if isinstance(job, RefusedElsewhere):
                self._refuse_elsewhere(job)
                continue
            if job.authenticated is not None and job.checked_on is self.snapshot:
                key: KeyEntry | Refusal = job.authenticated
            else:
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
            yield from self._lookups(admitted)
        self.db.insert("usage_event", USAGE_COLUMNS, self.usage)
        self.db.insert("refused_call", REFUSED_COLUMNS, self.refused)
        yield from self._chain()

    def _read(
        self, queries: list[Query], locks: list[Query]
    ) -> Generator[Reads, list[Rows], list[Rows]]:
        """Ask the runner for these reads after these locks (one round trip on PostgreSQL)."""
        sql = self.db.sql
        rows: list[Rows] = yield Reads(
            [(sql(q), params) for q, params in queries], [(sql(q), params) for q, params in locks]
        )
        return rows

    TAIL: Query = ("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1", [])

    def _chain_lock(self) -> list[Query]:
        """The lock that fixes the audit chain's tail for this transaction.

        On PostgreSQL the chain lock is taken before the tail is read and held to commit, so no
        other writer appends meanwhile; on SQLite the transaction began IMMEDIATE, which already
        excludes them.
        """
        return [] if self.db.sqlite else [(f"SELECT pg_advisory_xact_lock({audit.CHAIN_LOCK})", [])]

    def _chain(self) -> Generator[Reads, list[Rows], None]:
        """Append this batch's decisions to the audit chain after its tail (one statement)."""
        if not self.entries:
            return
        if self.tail is None:  # no lookup read it along with its other reads
            self.tail = (yield from self._read([self.TAIL], self._chain_lock()))[-1]
        start = self.tail[0] if self.tail else None
        linked = audit.link(start, self.now.astimezone(dt.UTC), self.entries)
        self.db.insert(
            "audit_event",
            AUDIT_COLUMNS,
            [
                (
                    e.seq,
                    self.stamp,
                    e.entry.actor,
                    e.entry.action,
                    e.entry.subject,
                    e.details_json,
                    e.prev_hash,
                    e.hash,
                )
                for e in linked
            ],
        )

    def _lookups(self, admitted: list[Admitted]) -> Generator[Reads, list[Rows], None]:
        db = self.db
        subscribers = sorted({a.key.subscriber_id for a in admitted})
        entities = sorted({a.job.entity for a in admitted})
        day, period = business_day(self.now), business_month(self.now)
        quota_ids = sorted({a.subscription_id for a in admitted if a.monthly_quota is not None})
        wanted = {f"disclosed:{sid}": day.isoformat() for sid in subscribers} | {
            f"quota:{sub_id}": period for sub_id in quota_ids
        }
        subs_in, subs_args = db.isin("subscriber_id", subscribers)
        entities_in, entities_args = db.isin("uscc", entities)
        counters_in, counters_args = db.isin("counter", sorted(wanted))
        reads: dict[str, Query] = {}
        columns = (
            "id, subscriber_id, reference, uscc, purposes, valid_from, valid_until, revoked_at"
        )
        if db.sqlite:
            refs_in, refs_args = db.isin(
                "reference", sorted({a.job.consent_ref or "" for a in admitted})
            )
            reads["consents"] = (
                f"SELECT {columns} FROM consent WHERE {subs_in} AND {refs_in}",
                [*subs_args, *refs_args],
            )
        else:
            reads["consents"] = db.probe_each(
                ("subscriber_id", "reference"),
                sorted({(a.key.subscriber_id, a.job.consent_ref or "") for a in admitted}),
                f"SELECT {columns} FROM consent x WHERE x.subscriber_id = k.subscriber_id "
                "AND x.reference = k.reference",
            )
        if any(a.job.purpose in PORTFOLIO_PURPOSES for a in admitted):
            owner_in, owner_args = db.isin("w.subscriber_id", subscribers)
            member_in, member_args = db.isin("m.uscc", entities)
            reads["portfolio"] = (
                "SELECT w.subscriber_id, w.product_name, m.uscc FROM watchlist_member m "
                f"JOIN watchlist w ON w.id = m.watchlist_id WHERE {owner_in} AND {member_in}",
                [*owner_args, *member_args],
            )
        # details as stored text: the answer embeds them without a parse and a re-dump
        served_sql = (
            "SELECT s.product_version_id, s.uscc, s.score, s.grade, CAST(s.details AS TEXT) "
            "AS details, c.objection_id, c.score AS c_score, c.grade AS c_grade, "
            "CAST(c.details AS TEXT) AS c_details FROM served_score s "
            "LEFT JOIN score_correction c ON c.product_version_id = s.product_version_id "
            "AND c.uscc = s.uscc WHERE "
        )
        if db.sqlite:
            versions_in, versions_args = db.isin(
                "s.product_version_id", sorted({a.version_id for a in admitted})
            )
            served_in, served_args = db.isin("s.uscc", entities)
            reads["served"] = (
                served_sql + f"{versions_in} AND {served_in}",
                [*versions_args, *served_args],
            )
        else:
            reads["served"] = db.probe_each(
                ("version", "uscc"),
                sorted({(a.version_id, a.job.entity) for a in admitted}),
                f"{served_sql}s.product_version_id = k.version AND s.uscc = k.uscc",
            )
        reads["disputed"] = (
            f"SELECT product_name, uscc FROM objection WHERE status = 'open' AND {entities_in}",
            entities_args,
        )
        if db.sqlite:
            reads["disclosed"] = (
                "SELECT subscriber_id, uscc FROM disclosed_enterprise "
                f"WHERE day = ? AND {subs_in} AND {entities_in}",
                [db.day_in(day), *subs_args, *entities_args],
            )
        else:  # `uscc = ANY(?)` read the bank's whole day on every batch
            probe, probe_args = db.probe_each(
                ("subscriber_id", "uscc"),
                sorted({(a.key.subscriber_id, a.job.entity) for a in admitted}),
                "SELECT x.subscriber_id, x.uscc FROM disclosed_enterprise x WHERE "
                "x.subscriber_id = k.subscriber_id AND x.day = ? AND x.uscc = k.uscc",
            )
            reads["disclosed"] = (probe, [*probe_args, db.day_in(day)])
        reads["counters"] = (
            "SELECT counter, period, used FROM serving_counter "
            f"WHERE {counters_in} AND period IN (?, ?)",
            [*counters_args, day.isoformat(), period],
        )
        # The chain's tail in the same round trip. Its lock, taken before these reads and held
        # to commit, is what serializes batches across API processes: every serving batch
        # takes it before reading the counters, so no two read the same quota or budget.
        results = yield from self._read([*reads.values(), self.TAIL], self._chain_lock())
        self.tail = results[-1]
        got = dict(zip(reads, results[: len(reads)], strict=True))
        consents = {
            (r[1], r[2]): Consented(
                r[0],
                r[3],
                tuple(db.json_out(r[4])),
                db.ts_out(r[5]),
                db.ts_out(r[6]),
                db.ts_out(r[7]),
            )
            for r in got["consents"]
        }
        portfolio = set(got.get("portfolio", []))
        served = {(r[0], r[1]): r for r in got["served"]}
        disputed = set(got["disputed"])
        disclosed = set(got["disclosed"])
        counts: dict[str, int] = {
            name: used for name, at, used in got["counters"] if wanted[name] == at
        }
        known = set(counts)
        disclosed_count: dict[str, int] = defaultdict(int)
        used: dict[int, int] = {}
        for sid in subscribers:
            disclosed_count[sid] = counts.get(f"disclosed:{sid}", 0)
        for sub_id in quota_ids:
            used[sub_id] = counts.get(f"quota:{sub_id}", 0)
        new_disclosures: list[tuple[str, Any, str]] = []
        for a in admitted:
            seen = (a.key.subscriber_id, a.job.entity)
            found = served.get((a.version_id, a.job.entity))
            consent = consents.get((a.key.subscriber_id, a.job.consent_ref or ""))
            withheld = (a.job.product, a.job.entity) in disputed
            free = withheld and a.refunds_withheld  # takes no call of the quota
            refusal = _consent_refusal(consent, a, self.now) or _lookup_refusal(
                a,
                in_portfolio=(a.key.subscriber_id, a.job.product, a.job.entity) in portfolio,
                found=found is not None,
                free=free,
                used=used.get(a.subscription_id, 0),
                period=period,
                new_today=seen not in disclosed,
                disclosed_today=disclosed_count[a.key.subscriber_id],
                day=day,
            )
            if refusal is not None:
                self._refuse(a.job, a.key, refusal)
                continue
            assert found is not None and consent is not None
            if seen not in disclosed:
                disclosed.add(seen)
                disclosed_count[a.key.subscriber_id] += 1
                new_disclosures.append((seen[0], db.day_in(day), seen[1]))
            overage = False
            if a.monthly_quota is not None and not free:
                overage = used.get(a.subscription_id, 0) >= a.monthly_quota
                used[a.subscription_id] = used.get(a.subscription_id, 0) + 1
            self._serve(a, found, withheld, consent.id, overage=overage)
        db.insert("disclosed_enterprise", DISCLOSED_COLUMNS, new_disclosures)
        after = {f"disclosed:{sid}": disclosed_count[sid] for sid in subscribers} | {
            f"quota:{sub_id}": used[sub_id] for sub_id in quota_ids
        }
        for name, value in after.items():
            if name in known and value != counts[name]:
                db.run(
                    "UPDATE serving_counter SET used = ? WHERE counter = ? AND period = ?",
                    (value, name, wanted[name]),
                )
            elif name not in known and value:
                db.run(
                    "INSERT INTO serving_counter (counter, period, used) VALUES (?, ?, ?)",
                    (name, wanted[name], value),
                )

    def _serve(
        self,
        a: Admitted,
        row: tuple[Any, ...],
        disputed: bool,
        consent_id: str,
        *,
        overage: bool,
    ) -> None:
        usage_id = new_id()
        price_fen = (
            a.overage_price_fen if overage and a.overage_price_fen is not None else a.price_fen
        )
        stored_status = "withheld" if disputed else "served"
        _, _, score, grade, details, objection_id, c_score, c_grade, c_details = row
        if disputed:
            status, score, grade, details = "disputed_withheld", None, None, None
        elif objection_id is not None:
            status, score, grade, details = "corrected", c_score, c_grade, c_details
        else:
            status = "served"
        self.usage.append(
            (
                usage_id,
                a.key.subscriber_id,
                a.key.key_id,
                a.subscription_id,
                a.version_id,
                "query",
                stored_status,
                a.job.entity,
                a.job.purpose,
                consent_id,
                1,
                price_fen,
                overage,
                None,
                self.stamp,
            )
        )
        self.entries.append(
            audit.Entry(
                f"subscriber:{a.key.subscriber_id}",
                USAGE_ACTIONS["query"],
                usage_id,
                usage_details(
                    usage_id=usage_id,
                    subscriber_id=a.key.subscriber_id,
                    subscription_id=a.subscription_id,
                    product_version_id=a.version_id,
                    kind="query",
                    status=stored_status,
                    entity=a.job.entity,
                    purpose=a.job.purpose,
                    consent_id=consent_id,
                    units=1,
                    price_fen=price_fen,
                    overage=overage,
                    served_at=self.now,
                ),
            )
        )
        head = _ANSWER.encode(
            {
                "uscc": a.job.shown_as,
                "product": a.job.product,
                "product_version": a.version_id,
                "as_of": a.as_of.isoformat(),
                "status": status,
                "score": score,
                "grade": grade,
                "purpose": a.job.purpose,
                "consent": a.job.consent_ref,
                "usage_id": usage_id,
                "price_fen": price_fen,
            }
        )
        a.job.outcome = f'{head[:-1]},"details":{_json_text(details)}}}'.encode()

    def _refuse(self, job: ScoreLookup, key: KeyEntry | None, refusal: Refusal) -> None:
        job.outcome = refusal
        self._record_refusal(
            key.subscriber_id if key else None,
            key.key_id if key else None,
            job.endpoint,
            job.product,
            job.entity,
            job.purpose,
            refusal.status,
            refusal.code,
            refusal.flagged,
        )

    def _refuse_elsewhere(self, job: RefusedElsewhere) -> None:
        if job.api_key_id is not None and job.api_key_id not in self.snapshot.keys:
            # Revoked since the endpoint's snapshot (say, throttled just after): answered and
            # recorded as any revoked key is, against nobody.
            job.status, job.code, job.flagged = 401, "invalid_api_key", False
            job.subscriber_id = job.api_key_id = job.entity = None
        job.outcome = Refusal(job.status, job.code, "")
        self._record_refusal(
            job.subscriber_id,
            job.api_key_id,
            job.endpoint,
            job.product,
            job.entity,
            job.purpose,
            job.status,
            job.code,
            job.flagged,
        )

    def _record_refusal(
        self,
        subscriber_id: str | None,
        key_id: str | None,
        endpoint: str,
        product: str | None,
        entity: str | None,
        purpose: str | None,
        status: int,
        code: str,
        flagged: bool,
    ) -> None:
        """Into refused_call; a known bank's attempt also onto the audit chain (anonymous noise
        stays in refused_call only). The bank's own text is kept as `recordable` shows it."""
        product, purpose = recordable(product), recordable(purpose)
        self.refused.append(
            (
                self.stamp,
                subscriber_id,
                key_id,
                endpoint,
                product,
                entity,
                purpose,
                status,
                code,
                flagged,
            )
        )
        if subscriber_id is None:
            return
        self.entries.append(
            audit.Entry(
                f"subscriber:{subscriber_id}",
                "query.refused",
                endpoint,
                {
                    "key": key_id,
                    "product": product,
                    "entity": entity,
                    "purpose": purpose,
                    "status": status,
                    "code": code,
                    "flagged": flagged,
                    "at": self.now.astimezone(dt.UTC).isoformat(),
                },
            )
        )


def _json_text(details: Any) -> str:
    """A stored details value as JSON text: SQLite hands back the text itself, psycopg a dict."""
    if isinstance(details, str) and details not in ("", "null"):
        return details
    return _ANSWER.encode(details or {})


def current_snapshot(conn: Connection, held: Snapshot | None, now: dt.datetime) -> Snapshot:
    """The held snapshot if the generation has not moved, else a fresh one."""
    generation = read_generation(conn)
    if held is not None and held.generation == generation:
        return held
    return Snapshot.load(conn, generation, now)
