"""Append-only, hash-chained audit events: any later change to a row breaks the chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import text, type_coerce
from sqlalchemy.types import NullType
from sqlmodel import Session, col, select

from pdo.ledger.models import AuditEvent
from pdo.ledger.types import utcnow

GENESIS = "0" * 64


CHAIN_LOCK = 7301  # PostgreSQL advisory lock serializing appends: one tail, no fork


# One encoder for every call: json.dumps with options builds a new one each time (measured
# 8.3 µs against 6.8 µs for a usage event's details, hashed once per metered answer).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form every hash on the chain is taken of."""
    return _CANONICAL.encode(value)


def digest(
    seq: int,
    at: dt.datetime | str,
    actor: str,
    action: str,
    subject: str,
    details: Any,
    prev_hash: str,
    *,
    details_json: str | None = None,
) -> str:
    """The hash of one event: canonical JSON of its fields and the previous event's hash.

    Equal to the canonical JSON of {"seq", "at", "actor", "action", "subject", "details",
    "prev"} (tested), spelled out so a batch can hand over the details it already serialized.
    """
    stamp = at if isinstance(at, str) else at.isoformat()
    inner = canonical(details) if details_json is None else details_json
    # The string fields as json.dumps(text, ensure_ascii=False) writes them: its own C quoting,
    # without building an encoder for each of them.
    quote = encode_basestring
    text = (
        f'{{"action":{quote(action)},"actor":{quote(actor)},"at":{quote(stamp)},'
        f'"details":{inner},"prev":{quote(prev_hash)},"seq":{int(seq)},'
        f'"subject":{quote(subject)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(event: AuditEvent) -> str:
    return digest(
        event.seq,
        event.at,
        event.actor,
        event.action,
        event.subject,
        event.details,
        event.prev_hash,
    )


def plain(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as they read back from the ledger's JSON column (dates and ids as text)."""
    loaded: dict[str, Any] = json.loads(json.dumps(details, default=str, ensure_ascii=False))
    return loaded


@dataclass(frozen=True)
class Entry:
    """One consequential action to append: who, what, on which subject, with what details."""

    actor: str
    action: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Linked:
    """An entry placed on the chain: its sequence number, previous hash and own hash."""

    seq: int
    at: dt.datetime
    entry: Entry
    prev_hash: str
    hash: str
    details_json: str  # the details as hashed (canonical JSON), to store as they are


def link(tail: tuple[int, str] | None, at: dt.datetime, entries: Sequence[Entry]) -> list[Linked]:
    """Chain entries after the tail (seq, hash) of the chain; a pure function of its inputs."""
    seq, prev = tail if tail is not None else (0, GENESIS)
    stamp = at.isoformat()
    linked = []
    for e in entries:
        seq += 1
        details = canonical(e.details)
        h = digest(seq, stamp, e.actor, e.action, e.subject, None, prev, details_json=details)
        linked.append(Linked(seq, at, e, prev, h, details))
        prev = h
    return linked


def hold_chain(session: Session) -> None:
    """Take the chain's lock until the transaction ends (PostgreSQL; SQLite's writers are
    serialized already). Serving batches take it before reading quotas and budgets, so a
    transaction holding it also reads their counters as no batch is changing them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))


def record(session: Session, actor: str, action: str, subject: str, **details: Any) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    hold_chain(session)
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    (placed,) = link(
        (last.seq, last.hash) if last else None,
        utcnow(),
        [Entry(actor, action, subject, plain(details))],
    )
    event = AuditEvent(
        seq=placed.seq,
        at=placed.at,
        actor=actor,
        action=action,
        subject=subject,
        details=placed.entry.details,
        prev_hash=placed.prev_hash,
        hash=placed.hash,
    )
    session.add(event)
    session.flush()
    return event


# --- verification ------------------------------------------------------------------------

CHUNK = 5_000  # rows fetched at a time: a chain of millions never sits in memory
MAX_FINDINGS = 50  # a rewritten chain breaks at every event: keep the first ones and a count
_DIAGNOSED = 10  # prev_hash mismatches looked up to tell an insert or a reorder from an edit


@dataclass(frozen=True)
class Finding:
    """One thing wrong: the record it concerns (seq, action) when there is one, and what.

    A finding with `through` is about the range seq..through as a whole (a checkpoint's Merkle
    root or head no longer matches): something in it changed, not necessarily record `seq`.
    """

    seq: int | None
    action: str | None
    reason: str
    source: str = "chain"  # "chain", "ledger checkpoint #3" or "checkpoint file cp.json"
    through: int | None = None

    def describe(self) -> str:
        where = f"{self.source}: " if self.source != "chain" else ""
        if self.seq is None or self.through is not None or self.action is None:
            return f"{where}{self.reason}"
        return f"{where}event {self.seq} ({self.action}): {self.reason}"


def rank(findings: Sequence[Finding]) -> list[Finding]:
    """Findings with the first broken record first, then in seq order; those about no record last.

    A range finding ranks by its first seq unless a finding about one record lies in its range
    and explains it (an altered event 7 is why a checkpoint over 1..29 no longer matches).
    """
    exact = [f.seq for f in findings if f.seq is not None and f.through is None]

    def key(f: Finding) -> tuple[int, int]:
        if f.seq is None:
            return (2, 0)
        if f.through is not None and any(f.seq <= s <= f.through for s in exact):
            return (1, f.seq)
        return (0, f.seq)

    return sorted(findings, key=key)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verifying the chain: ok, how many events, and where it broke.

    `broken_at` is the seq of the first broken record (None when what is wrong is not one record,
    e.g. a checkpoint's signature); `findings` lists the problems in seq order (at most
    MAX_FINDINGS of `problems`); `checkpoints` names the checkpoints checked against the chain.
    """

    ok: bool
    events: int
    broken_at: int | None = None
    reason: str = ""
    action: str | None = None
    findings: tuple[Finding, ...] = ()
    problems: int = 0
    checkpoints: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Unreadable:
    """A stored value its column type cannot decode (SQLite keeps whatever text is written):
    it stands in the row so verification names that event instead of crashing."""

    column: str


_DECODED = {1: "at", 5: "details"}  # row positions read raw and decoded row by row

_COLUMNS = (
    col(AuditEvent.seq),
    type_coerce(col(AuditEvent.at), NullType()).label("at"),
    col(AuditEvent.actor),
    col(AuditEvent.action),
    col(AuditEvent.subject),
    type_coerce(col(AuditEvent.details), NullType()).label("details"),
    col(AuditEvent.prev_hash),
    col(AuditEvent.hash),
)


def _tolerant(
    decode: Callable[[Any], Any] | None, column: str, expected: type | None
) -> Callable[[Any], Any]:
    """A column's decoding that yields Unreadable instead of raising; a value the backend hands
    back undecoded must already be of the column's type (SQLite keeps 'x150' in an integer)."""

    def read(value: Any) -> Any:
        try:
            decoded = value if decode is None else decode(value)
        except (ValueError, TypeError):  # JSONDecodeError is a ValueError
            return Unreadable(column)
        if (
            decode is None
            and expected is not None
            and not isinstance(value, (expected, type(None)))
        ):
            return Unreadable(column)
        return decoded

    return read


def _python_type(column_type: Any) -> type | None:
    """The Python type a column's values have, if its type declares one."""
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def decoder(session: Session, column: str, table: Any = AuditEvent) -> Callable[[Any], Any]:
    """The typed column's own result processing on this backend, applied to one raw value at a
    time (selected as type_coerce(column, NullType())); what it cannot decode is Unreadable."""
    dialect = session.get_bind().dialect
    column_type = table.__table__.c[column].type
    process = column_type.dialect_impl(dialect).result_processor(dialect, None)
    return _tolerant(process, column, _python_type(column_type))


def _decoded(row: Sequence[Any], decoders: Mapping[int, Callable[[Any], Any]]) -> tuple[Any, ...]:
    """The row with `at` and `details` decoded (or Unreadable)."""
    values = list(row)
    for position, decode in decoders.items():
        values[position] = decode(values[position])
    return tuple(values)


def unreadable(row: Sequence[Any]) -> str | None:
    """The name of the row's first column that could not be decoded, if any."""
    return next((v.column for v in row if isinstance(v, Unreadable)), None)


def events(session: Session, first: int = 1, last: int | None = None) -> Iterator[Sequence[Any]]:
    """Events first..last as plain rows (seq, at, actor, action, subject, details, prev_hash,
    hash) in seq order, streamed in chunks of CHUNK; a value that cannot be decoded is
    Unreadable, not an exception ending the stream."""
    stmt = sa_select(*_COLUMNS).where(col(AuditEvent.seq) >= first)
    if last is not None:
        stmt = stmt.where(col(AuditEvent.seq) <= last)
    stmt = stmt.order_by(col(AuditEvent.seq)).execution_options(yield_per=CHUNK)
    decoders = {position: decoder(session, name) for position, name in _DECODED.items()}
    for row in session.connection().execute(stmt):
        yield _decoded(row, decoders)


def head(session: Session) -> int:
    """The seq of the chain's last event (0 when empty)."""
    last = session.exec(select(AuditEvent.seq).order_by(col(AuditEvent.seq).desc()).limit(1))
    return last.first() or 0


def row_digest(row: Sequence[Any]) -> str:
    """The hash an event row should have, from its content and prev_hash ("" if unreadable)."""
    if unreadable(row) is not None:
        return ""
    seq, at, actor, action, subject, details, prev_hash = row[:7]
    return digest(seq, at, actor, action, subject, details, prev_hash)


def check_link(
    row: Sequence[Any], expected_seq: int, prev: str, computed: str | None = None
) -> str | None:
    """What is wrong with one event read in order after (expected_seq - 1, prev), or None.
    `computed` is its row_digest when the caller has it already."""
    seq, prev_hash, stored = row[0], row[6], row[7]
    if seq != expected_seq:
        missing = f"{expected_seq}..{seq - 1}" if seq - 1 > expected_seq else f"{expected_seq}"
        return f"gap: expected seq {expected_seq}, found {seq} (event {missing} deleted)"
    if prev_hash != prev:
        return "prev_hash does not match the previous event's hash"
    column = unreadable(row)
    if column is not None:
        return f"unreadable: its {column} is not a valid stored value (content changed)"
    if (computed or row_digest(row)) != stored:
        return "content does not match its hash"
    return None


class _HashSeqs:
    """Where hashes occur in the chain (their seqs, in order), read for many hashes at once.

    The hash column is not indexed (it cost every append a random index page), so each query
    reads the whole table: the diagnosis asks for all its hashes in two queries, not three per
    finding.
    """

    CHUNK = 500  # hashes per IN list, well under every backend's parameter limit

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seqs: dict[str, list[int]] = {}

    def prefetch(self, hashes: Iterable[str | None]) -> None:
        wanted = sorted({h for h in hashes if h is not None and h not in self.seqs})
        for h in wanted:
            self.seqs[h] = []
        for start in range(0, len(wanted), self.CHUNK):
            chunk = wanted[start : start + self.CHUNK]
            found = self.session.exec(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(col(AuditEvent.hash).in_(chunk))
                .order_by(col(AuditEvent.seq))
            )
            for seq, h in found:
                self.seqs[h].append(seq)

    def first(self, h: str, other_than: int | None = None) -> int | None:
        """The lowest seq holding hash h (besides other_than), or None."""
        self.prefetch([h])
        return next((s for s in self.seqs[h] if s != other_than), None)


def _prefetched(session: Session, rows: Sequence[Sequence[Any]]) -> _HashSeqs:
    """The lookups the diagnosis of rows will make: their own and previous hashes, then the
    previous hash of each event a mismatched link points to."""
    seqs = _HashSeqs(session)
    seqs.prefetch(h for row in rows for h in (row[6], row[7]))
    targets = {t for row in rows if (t := seqs.first(row[6])) is not None}
    moved = [session.get(AuditEvent, t) for t in sorted(targets)]
    seqs.prefetch(m.prev_hash for m in moved if m is not None)
    return seqs


def _diagnose(session: Session, seqs: _HashSeqs, found: Finding, row: Sequence[Any]) -> Finding:
    """Where a mismatched prev_hash points: to a later event, or to an earlier one that was moved
    (reordered); to an earlier one otherwise (an insert before it, when it was hashed under the
    earlier seq; a forged branch, when it was hashed as it stands); or to no event (the previous
    event was altered or deleted)."""
    seq, prev_hash, stored = row[0], row[6], row[7]
    if unreadable(row) is not None:  # its content cannot be rehashed under another seq
        return found
    # The hash is not unique in the table (it is not indexed): a replayed copy can be stored.
    original = seqs.first(stored, other_than=seq)
    if original is not None:
        return Finding(seq, found.action, f"duplicated: a copy of event {original}")
    target = seqs.first(prev_hash)
    if target is None:
        return Finding(seq, found.action, f"{found.reason} (it links to no event in the ledger)")
    if target > seq:
        return Finding(
            seq, found.action, f"reordered: its prev_hash links to the later event {target}"
        )
    if target >= seq - 1:
        return found
    span = f"{target + 1}..{seq - 1}" if target + 1 < seq - 1 else f"{target + 1}"
    if digest(target + 1, *row[1:7]) == stored:  # it was event target + 1 once
        first = session.get(AuditEvent, target + 1)
        if first is not None and first.prev_hash == stored:  # which now comes after it
            reason = f"reordered: it was hashed as event {target + 1}, which now precedes it"
            return Finding(seq, found.action, reason)
        reason = (
            f"inserted: not part of the chain (event {seq} was hashed as event {target + 1} and "
            f"links to event {target}, so event {span} was inserted before it)"
        )
        return Finding(target + 1, first.action if first else None, reason)
    moved = session.get(AuditEvent, target)
    if moved is not None:
        came_from = seqs.first(moved.prev_hash)
        if (came_from or 0) > target:  # the event it follows was moved up to target
            reason = f"reordered: its prev_hash links to event {target}, which was moved there"
            return Finding(seq, found.action, reason)
    if row_digest(row) == stored:
        reason = f"forged: its prev_hash links back to event {target}, skipping event {span}"
        return Finding(seq, found.action, reason)
    reason = f"prev_hash links to event {target}, not to event {seq - 1}; content altered too"
    return Finding(seq, found.action, reason)


def verify(
    session: Session,
    checkpoints: Sequence[tuple[str, Mapping[str, Any]]] = (),
    pinned_public_key: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChainReport:
    """Recompute every hash in order, and check the chain against every checkpoint the ledger
    stored plus the (label, document) checkpoints given; the first broken record is reported.

    One streamed pass: each event's link and hash are checked and the hash its content gives is
    fed to the Merkle root of every checkpoint covering it. A pinned public key must have signed
    every checkpoint. `progress(events_read)` is called every CHUNK events.
    """
    from pdo import checkpoints as cps  # it builds on this module

    ledger = cps.ledger_checks(session, pinned_public_key)
    given = [cps.RangeCheck(label, doc, pinned_public_key) for label, doc in checkpoints]
    ranges = cps.Dispatch([*ledger.checks, *given])
    chain: list[Finding] = []
    problems = 0
    suspects: list[tuple[int, Sequence[Any]]] = []  # (index in chain, row) to look up afterwards
    announced: dict[str, int] = {}  # checkpoint id -> seq of its audit.checkpoint record
    prev, expected, count, last_seq = GENESIS, 1, 0, 0
    for row in events(session):
        seq, action, stored = row[0], row[3], row[7]
        count += 1
        computed = row_digest(row)
        problem = check_link(row, expected, prev, computed)
        if problem is not None:
            problems += 1
            if len(chain) < MAX_FINDINGS:
                if problem.startswith("prev_hash") and len(suspects) < _DIAGNOSED:
                    suspects.append((len(chain), row))
                chain.append(Finding(seq, action, problem))
        ranges.feed(seq, action, computed)
        if action == cps.ANNOUNCE:
            announced[row[4]] = seq
        prev, expected, last_seq = stored, seq + 1, seq
        if progress is not None and count % CHUNK == 0:
            progress(count)
    if progress is not None:
        progress(count)
    seqs = _prefetched(session, [row for _, row in suspects])
    for index, suspect in suspects:
        chain[index] = _diagnose(session, seqs, chain[index], suspect)
    tail = ledger.tail(session, last_seq, announced)
    rest = [*ledger.findings, *tail, *ranges.finish(gaps=False)]
    problems += len(rest)
    findings = rank([*chain, *rest])
    labels = tuple(c.label for c in [*ledger.checks, *given])
    if not findings:
        return ChainReport(True, count, checkpoints=labels)
    first = findings[0]
    return ChainReport(
        False,
        count,
        broken_at=first.seq,
        reason=first.reason if first.source == "chain" else f"{first.source}: {first.reason}",
        action=first.action,
        findings=tuple(findings[:MAX_FINDINGS]),
        problems=problems,
        checkpoints=labels,
    )
