"""Signed checkpoints of the audit chain: a Merkle root over a run of events, for the authority.

A checkpoint covers the events after the previous checkpoint up to the chain's head. Its document
is a small JSON the authority keeps elsewhere:

    {"format": "pdo-audit-checkpoint/1", "first_seq", "last_seq", "events", "head_hash",
     "merkle_root", "prev_checkpoint", "created_at", "created_by", "public_key", "signature"}

`merkle_root` is the RFC 6962 Merkle tree hash over the events' hashes in seq order (32 bytes each,
as recomputed from the event: an edited event changes the root even if its stored hash is left):
leaf = sha256(0x00 || hash), node = sha256(0x01 || left || right), the left subtree holding the
largest power of two smaller than n leaves. `prev_checkpoint` is the sha256 of the previous
document's canonical JSON (null for the first), so the checkpoints form a chain of their own.
`signature` is Ed25519 by `public_key` (raw, hex) over the canonical JSON of the document without
"signature" (sort_keys, ensure_ascii=False, separators (",", ":"), UTF-8).

Whoever can write the ledger can rewrite the whole hash chain consistently; they cannot make it
match a checkpoint exported before the rewrite, nor sign a new one without the operator's key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import text
from sqlmodel import Session, col, select

from pdo import audit
from pdo.audit import Finding
from pdo.ledger.models import AuditCheckpoint, AuditEvent
from pdo.ledger.types import utcnow

FORMAT = "pdo-audit-checkpoint/1"
ANNOUNCE = "audit.checkpoint"  # the chain event that records each new checkpoint


# --- Merkle tree (RFC 6962) --------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").hexdigest()  # RFC 6962: the hash of an empty tree


class MerkleAccumulator:
    """The RFC 6962 tree hash of a stream of leaves in O(log n) memory.

    It keeps the roots of the complete subtrees so far (sizes strictly decreasing, like the binary
    digits of n); folding them right to left yields the left-balanced tree RFC 6962 defines.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        size, h = 1, leaf_hash(data)
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            size, h = size * 2, node_hash(left, h)
        self._stack.append((size, h))
        self.size += 1

    def root(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h.hex()


def leaf_bytes(event_hash: str) -> bytes:
    """An event's hash as a leaf: its 32 bytes (a forged non-hex value is hashed as text)."""
    try:
        raw = bytes.fromhex(event_hash)
    except ValueError:
        return event_hash.encode()
    return raw if len(raw) == 32 else event_hash.encode()


def merkle_root(event_hashes: Iterable[str]) -> str:
    """The Merkle root (hex) over event hashes in order."""
    acc = MerkleAccumulator()
    for h in event_hashes:
        acc.add(leaf_bytes(h))
    return acc.root()


# --- documents and signatures ------------------------------------------------------------


def canonical(document: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and hashed."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def document_digest(document: Mapping[str, Any]) -> str:
    """sha256 of a whole (signed) document: what the next checkpoint's prev_checkpoint holds."""
    return hashlib.sha256(canonical(document)).hexdigest()


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _unsigned(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "signature"}


def sign(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The document with its public key and signature set."""
    body = _unsigned(document) | {"public_key": public_key_hex(key)}
    return body | {"signature": key.sign(canonical(body)).hex()}


def signature_valid(document: Mapping[str, Any]) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(document["public_key"]))
        public.verify(bytes.fromhex(document["signature"]), canonical(_unsigned(document)))
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
    return True


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "first_seq": int,
    "last_seq": int,
    "events": int,
    "head_hash": str,
    "merkle_root": str,
    "prev_checkpoint": (str, type(None)),
    "created_at": str,
    "created_by": str,
    "public_key": str,
    "signature": str,
}


def malformed(document: Any) -> str | None:
    """What makes this not a checkpoint document, or None."""
    if not isinstance(document, Mapping):
        return "not a checkpoint (not a JSON object)"
    if document.get("format") != FORMAT:
        return f"not a checkpoint (format is not {FORMAT!r})"
    for name, kind in _FIELDS.items():
        value = document.get(name)
        if name not in document or not isinstance(value, kind) or isinstance(value, bool):
            return f"malformed checkpoint: field {name!r} missing or of the wrong type"
    first, last = document["first_seq"], document["last_seq"]
    if not 1 <= first <= last or document["events"] != last - first + 1:
        return f"malformed checkpoint: range {first}..{last} of {document['events']} events"
    return None


def dumps(document: Mapping[str, Any]) -> str:
    """A document as the file the authority keeps (readable; the signature covers its content,
    not its layout)."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


# --- creating checkpoints ----------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint cannot be made: an empty or broken chain is never signed."""


def stored(session: Session) -> list[AuditCheckpoint]:
    """The ledger's checkpoints, oldest first."""
    return list(session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.last_seq))))


def latest(session: Session) -> AuditCheckpoint | None:
    query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.last_seq).desc()).limit(1)
    return session.exec(query).first()


def create_checkpoint(
    session: Session, signing_key: Ed25519PrivateKey, actor: str
) -> AuditCheckpoint:
    """Sign a checkpoint over the events since the last one and record it on the chain.

    Idempotent: with no new events (the previous checkpoint's own audit.checkpoint record does not
    count) the last checkpoint is returned unchanged. The range's links and hashes are checked
    first: a broken chain is refused (CheckpointError), never signed. The audit.checkpoint record
    is appended after the checkpoint is computed, so the next checkpoint covers it.
    """
    if session.get_bind().dialect.name == "postgresql":  # SQLite: the write lock is already held
        session.execute(text(f"SELECT pg_advisory_xact_lock({audit.CHAIN_LOCK})"))
    previous = latest(session)
    top = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    if top is None:
        raise CheckpointError("the audit chain is empty: nothing to checkpoint")
    if previous is not None:
        if top.seq < previous.last_seq:
            raise CheckpointError(
                f"the chain ends at event {top.seq} but checkpoint #{previous.id} covers events "
                f"up to {previous.last_seq}: events were deleted"
            )
        own = top.action == ANNOUNCE and top.subject == str(previous.id)
        if top.seq == previous.last_seq or (top.seq == previous.last_seq + 1 and own):
            return previous
    first = previous.last_seq + 1 if previous else 1
    prev = previous.head_hash if previous else audit.GENESIS
    acc = MerkleAccumulator()
    for row in audit.events(session, first, top.seq):
        computed = audit.row_digest(row)
        problem = audit.check_link(row, first + acc.size, prev, computed)
        if problem is not None:
            raise CheckpointError(f"refusing to sign a broken chain: event {row[0]}: {problem}")
        prev = row[7]
        acc.add(leaf_bytes(computed))
    now = utcnow()
    document = sign(
        {
            "format": FORMAT,
            "first_seq": first,
            "last_seq": top.seq,
            "events": top.seq - first + 1,
            "head_hash": top.hash,
            "merkle_root": acc.root(),
            "prev_checkpoint": document_digest(previous.document) if previous else None,
            "created_at": now.isoformat(),
            "created_by": actor,
        },
        signing_key,
    )
    checkpoint = AuditCheckpoint(
        first_seq=first,
        last_seq=top.seq,
        head_hash=top.hash,
        merkle_root=document["merkle_root"],
        prev_checkpoint=document["prev_checkpoint"],
        created_at=now,
        created_by=actor,
        document=document,
    )
    session.add(checkpoint)
    session.flush()
    audit.record(
        session,
        actor,
        ANNOUNCE,
        str(checkpoint.id),
        last_seq=top.seq,
        merkle_root=document["merkle_root"],
    )
    return checkpoint


# --- verifying checkpoints ---------------------------------------------------------------


@dataclass
class RangeCheck:
    """One checkpoint document checked against the events it covers, fed in seq order.

    Its own findings (malformed, signature, pinned key) come at construction; only an authentic
    document (`trusted`) is compared with the chain: an edited file says nothing about the chain.
    """

    label: str
    document: Any
    pinned_public_key: str | None = None
    findings: list[Finding] = field(default_factory=list)
    first: int = 0
    last: int = -1
    _expected: int = 0
    _missing: tuple[int, int] | None = None
    _head: tuple[str, str] | None = None
    _acc: MerkleAccumulator = field(default_factory=MerkleAccumulator)

    def __post_init__(self) -> None:
        problem = malformed(self.document)
        if problem is None and not signature_valid(self.document):
            problem = "signature invalid"
        pinned = (self.pinned_public_key or "").lower()
        if problem is None and pinned and self.document["public_key"].lower() != pinned:
            key = self.document["public_key"][:16]
            problem = f"signed by another key ({key}…), not the pinned public key"
        if problem is not None:
            self.findings.append(Finding(None, None, problem, self.label))
            return
        self.first, self.last = self.document["first_seq"], self.document["last_seq"]
        self._expected = self.first

    @property
    def trusted(self) -> bool:
        return not self.findings

    def feed(self, seq: int, action: str, event_hash: str) -> None:
        if seq != self._expected and self._missing is None:
            self._missing = (self._expected, seq - 1)
        self._expected = seq + 1
        self._acc.add(leaf_bytes(event_hash))
        if seq == self.last:
            self._head = (action, event_hash)

    def finish(self, gaps: bool = True) -> list[Finding]:
        """What the chain's events first..last do not match, in seq order (none when they do).

        `gaps=False` leaves missing events inside the range to the chain's own check (which names
        the event after the gap, as it does where no checkpoint covers it).
        """
        if not self.trusted:
            return list(self.findings)
        found = []
        first, last = self.first, self.last
        if self._missing is not None and gaps:
            a, b = self._missing
            found.append(Finding(a, None, f"events {a}..{b} missing", self.label))
        if self._expected <= last:
            a = self._expected
            reason = f"events {a}..{last} missing (chain shorter than checkpoint)"
            found.append(Finding(a, None, reason, self.label))
        elif self._acc.root() != self.document["merkle_root"]:
            reason = f"events {first}..{last} no longer match the checkpoint (merkle root differs)"
            found.append(Finding(first, None, reason, self.label, through=last))
        if self._head is not None and self._head[1] != self.document["head_hash"]:
            action, h = self._head
            reason = (
                f"event {last} ({action}): its hash {h[:12]}… is not the checkpoint's head hash "
                f"{self.document['head_hash'][:12]}…"
            )
            found.append(Finding(last, action, reason, self.label, through=last))
        return found


class Dispatch:
    """Feeds each event to the trusted checks whose range covers it (ranges sorted by start)."""

    def __init__(self, checks: Sequence[RangeCheck]) -> None:
        self._all = list(checks)
        self._fed = sorted((c for c in checks if c.trusted), key=lambda c: c.first)
        self._next = 0
        self._active: list[RangeCheck] = []

    def feed(self, seq: int, action: str, event_hash: str) -> None:
        while self._next < len(self._fed) and self._fed[self._next].first <= seq:
            self._active.append(self._fed[self._next])
            self._next += 1
        if self._active and any(c.last < seq for c in self._active):
            self._active = [c for c in self._active if c.last >= seq]
        for check in self._active:
            check.feed(seq, action, event_hash)

    def finish(self, gaps: bool = True) -> list[Finding]:
        return [f for c in self._all for f in c.finish(gaps)]


@dataclass
class LedgerChecks:
    """The ledger's stored checkpoints as checks, plus what is wrong with them as stored."""

    checks: list[RangeCheck]
    findings: list[Finding]
    rows: list[tuple[int, int]]  # (id, last_seq) of each stored checkpoint

    def tail(
        self, session: Session, chain_last: int, announced: Mapping[str, int]
    ) -> list[Finding]:
        """Deleted tail events and deleted checkpoints, from what the chain records of them."""
        found = []
        ids = {str(cid) for cid, _ in self.rows}
        for subject in set(announced) - ids:  # made while the chain was read (PostgreSQL)?
            if subject.isdigit() and session.get(AuditCheckpoint, int(subject)) is not None:
                ids.add(subject)
        if self.rows:
            cid, top = max(self.rows, key=lambda r: r[1])
            if chain_last < top:
                reason = f"events after {chain_last} deleted (checkpoint covers events up to {top})"
                found.append(Finding(chain_last + 1, None, reason, f"ledger checkpoint #{cid}"))
        for cid, last in self.rows:
            if str(cid) in announced or chain_last < last:
                continue
            record = f"the {ANNOUNCE} record of checkpoint #{cid} (event {last + 1}) is missing"
            reason = f"events after {last} deleted: {record}" if chain_last == last else record
            found.append(Finding(last + 1, None, reason))
        for subject, seq in announced.items():
            if subject not in ids:
                reason = f"records checkpoint #{subject}, which is no longer in the ledger"
                found.append(Finding(seq, ANNOUNCE, reason))
        return found


def ledger_checks(session: Session, pinned_public_key: str | None = None) -> LedgerChecks:
    """Each stored checkpoint as a RangeCheck, its row checked against its signed document and
    against the previous checkpoint (prev_checkpoint digest, contiguous ranges)."""
    checks, findings, rows = [], [], []
    previous: AuditCheckpoint | None = None
    for cp in stored(session):
        label = f"ledger checkpoint #{cp.id}"
        check = RangeCheck(label, cp.document, pinned_public_key)
        checks.append(check)
        rows.append((cp.id or 0, cp.last_seq))
        doc = cp.document if check.trusted else {}
        for name in ("first_seq", "last_seq", "head_hash", "merkle_root", "prev_checkpoint"):
            if doc and doc.get(name) != getattr(cp, name):
                findings.append(
                    Finding(None, None, f"stored {name} differs from its signed document", label)
                )
        expected_prev = document_digest(previous.document) if previous else None
        if doc and doc["prev_checkpoint"] != expected_prev:
            after = f"checkpoint #{previous.id}" if previous else "no checkpoint (it is the first)"
            findings.append(Finding(None, None, f"does not follow {after}", label))
        expected_first = previous.last_seq + 1 if previous else 1
        if cp.first_seq != expected_first:
            reason = f"starts at event {cp.first_seq}, expected {expected_first}"
            findings.append(Finding(None, None, reason, label))
        previous = cp
    return LedgerChecks(checks, findings, rows)


@dataclass(frozen=True)
class CheckpointReport:
    """One checkpoint document against the ledger: ok, its range, and what does not match."""

    ok: bool
    first_seq: int | None
    last_seq: int | None
    findings: tuple[Finding, ...] = ()

    @property
    def reason(self) -> str:
        return self.findings[0].describe() if self.findings else ""


def verify_checkpoint(
    session: Session, document: Any, pinned_public_key: str | None = None, label: str = "checkpoint"
) -> CheckpointReport:
    """Check a document's signature (and key, when pinned), then recompute the Merkle root over
    the ledger's events first_seq..last_seq and compare it and the head hash; each event's link
    and hash in the range are checked too, to name the first that no longer fits."""
    check = RangeCheck(label, document, pinned_public_key)
    links: list[Finding] = []
    if check.trusted:
        expected, prev = check.first, audit.GENESIS
        for row in audit.events(session, max(1, check.first - 1), check.last):
            if row[0] < check.first:  # the event before the range: what the first links to
                prev = row[7]
                continue
            if row[0] == check.first and check.first > 1 and prev == audit.GENESIS:
                prev = row[6]  # the event before is gone: the chain's own check says so
            computed = audit.row_digest(row)
            problem = audit.check_link(row, expected, prev, computed)
            if problem is not None and len(links) < audit.MAX_FINDINGS:
                links.append(Finding(row[0], row[3], problem, label))
            check.feed(row[0], row[3], computed)
            expected, prev = row[0] + 1, row[7]
    findings = audit.rank([*links, *check.finish(gaps=False)])
    first = document.get("first_seq") if isinstance(document, Mapping) else None
    last = document.get("last_seq") if isinstance(document, Mapping) else None
    return CheckpointReport(not findings, first, last, tuple(findings))


def load(path: Any) -> Any:
    """A checkpoint file's document (whatever JSON it holds; verification says if it is one)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
