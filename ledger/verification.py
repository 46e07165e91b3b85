"""Verifying a log against signed tree heads, and naming the first bad position."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ledger.entries import MalformedRow, connect_readonly, row_leaf
from ledger.merkle import Frontier
from ledger.signing import key_id
from ledger.storage.port import LedgerDb, event_columns
from ledger.tree_heads import LEAVES_TABLE, TreeHead, has_tables, recorded_heads

#: (position, originator_id, version, topic, state, claimed leaf or None)
Row = tuple[int, object, object, object, object, "bytes | None"]


@dataclass(frozen=True)
class Problem:
    """One finding; ``position`` is the first log position it proves bad, if any."""

    message: str
    position: int | None = None


@dataclass(frozen=True)
class HeadCheck:
    head: TreeHead
    origin: str
    status: str  # "ok", "failed" or "unchecked"


@dataclass
class Report:
    """What a verification found."""

    start: int = 1
    size: int = 0
    checks: list[HeadCheck] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_position(self) -> int | None:
        positions = [p.position for p in self.problems if p.position is not None]
        return min(positions) if positions else None

    def headline(self) -> str:
        """One line: the first bad position and why, or the first problem found."""
        if self.ok:
            return f"{self.size - self.start + 1} events verified"
        ranked = sorted(self.problems, key=lambda p: (p.position is None, p.position or 0))
        first = ranked[0]
        more = f" ({len(ranked) - 1} more problems)" if len(ranked) > 1 else ""
        if first.position is None:
            return f"{first.message}{more}"
        return f"first bad position {first.position}: {first.message}{more}"


def verify_ledger(
    location: str,
    external: Sequence[tuple[str, TreeHead]] = (),
    trusted_key: bytes | None = None,
    local_key: tuple[str, bytes] | None = None,
    bindings: Mapping[int, Sequence[tuple[str, bytes]]] | None = None,
) -> Report:
    """Verify a ledger file against its recorded heads and ``external`` ones, in one
    read transaction (a consistent snapshot while writers go on).

    One pass over the entries in commit order: every leaf is recomputed from the stored
    bytes, positions must run without a gap, and the Merkle root is taken at the size of
    every head. A head whose root differs proves an event at or below its size changed.
    To say *which* one, the pass compares each recomputed leaf with what was claimed for
    it when it was sealed (the ledger's leaf cache, or an export's ``leaf_hash``). Claims
    are untrusted until they fold to a signed root: the first leaf that differs from an
    authenticated claim is the exact first bad position. Heads are checked for their
    signature and for the key that made it: the first head's key, or a key the caller
    trusts (``--pubkey``, or the key of a head file kept off the host).
    """
    db = connect_readonly(location)
    try:
        db.execute("BEGIN")
        return verify_log(_rows_with_cached_leaves(db), recorded_heads(db), external,
                          trusted_key, local_key, bindings=bindings, dense=db.dense,
                          found=_sealed_but_missing(db))
    finally:
        db.close()


def verify_log(
    rows: Iterable[Row],
    ledger_heads: Sequence[TreeHead],
    external: Sequence[tuple[str, TreeHead]] = (),
    trusted_key: bytes | None = None,
    local_key: tuple[str, bytes] | None = None,
    start: int = 1,
    frontier: Frontier | None = None,
    complete: bool = True,
    bindings: Mapping[int, Sequence[tuple[str, bytes]]] | None = None,
    dense: bool = True,
    found: Sequence[Problem] = (),
) -> Report:
    """Check ``rows`` (positions ``start``... in order) against every head.

    ``frontier`` resumes the tree after position ``start - 1`` (a partial export);
    ``complete`` is false when the rows may stop before the log did, so heads beyond
    them are left unchecked instead of proving a truncation. ``bindings`` are other
    leaf claims to check (``position -> [(what, leaf)]``), such as checkpoints'.
    ``dense`` is false for a log whose positions may skip numbers (PostgreSQL): a gap
    is then no finding by itself; the roots still catch a removed event. ``found`` are
    problems already known (sealed positions that hold no event), placed before the scan.
    """
    report = Report(start=start, problems=list(found))
    heads = [("ledger", h) for h in ledger_heads] + list(external)
    report.problems += _check_heads(ledger_heads, external, trusted_key, local_key)
    frontier = frontier if frontier is not None else Frontier()
    if frontier.size != start - 1:
        raise ValueError("the frontier must cover the positions before start")
    scan = _Scan(frontier, {h.tree_size for _, h in heads if h.tree_size >= start - 1},
                 bindings or {})
    scan.dense = dense
    scan.run(rows, start, report)
    report.size = scan.frontier.size
    _judge_heads(heads, scan, report, complete)
    return report


class _Scan:
    """The single pass: leaves, gaps, claims, and the root at every head's size."""

    def __init__(self, frontier: Frontier, sizes: set[int],
                 bindings: Mapping[int, Sequence[tuple[str, bytes]]]) -> None:
        self.frontier = frontier
        self.sizes = sorted(sizes)
        self.bindings = bindings
        self.roots: dict[int, bytes] = {}
        self.claim_roots: dict[int, bytes] = {}
        self.mismatch: tuple[int, bytes, bytes] | None = None
        self.claims: Frontier | None = None
        self.claims_complete = True
        self.dense = True
        #: The mismatching leaf's ordinal (1-based), which heads' sizes count.
        self.mismatch_ordinal = 0
        #: tree size -> the position of the last event in that prefix (positions may skip).
        self.boundary: dict[int, int] = {}
        self.last_position = 0

    def run(self, rows: Iterable[Row], start: int, report: Report) -> None:
        sha256 = hashlib.sha256
        frontier = self.frontier
        hashes = frontier.hashes  # the frontier's append, inlined: this loop is the hot path
        targets: Iterator[int] = iter(self.sizes)
        self.last_position = start - 1
        target = self._take_roots(next(targets, None), targets)
        target = -1 if target is None else target
        expected = start
        gap = False
        for position, oid, version, topic, state, claimed in rows:
            if position != expected and (self.dense or position < expected):
                if not gap:
                    report.problems.append(Problem(
                        f"position {expected} is missing (the next event stored is at "
                        f"position {position}): events were deleted or renumbered", expected))
                    gap = True
                expected = position
            try:
                leaf = row_leaf(oid, version, topic, state)
            except MalformedRow as exc:
                report.problems.append(Problem(f"the stored row is malformed: {exc}", position))
                leaf = sha256(b"\x00").digest()
            if claimed != leaf and claimed is not None and self.mismatch is None:
                self.mismatch = (position, leaf, claimed)
                self.mismatch_ordinal = frontier.size + 1
                self.claims = Frontier(frontier.size, hashes)
            if self.claims is not None:
                if claimed is None:
                    self.claims_complete = False
                self.claims.append(claimed if claimed is not None else leaf)
            size = frontier.size
            hashes.append(leaf)
            while size & 1:
                right = hashes.pop()
                hashes[-1] = sha256(b"\x01" + hashes[-1] + right).digest()
                size >>= 1
            frontier.size += 1
            if self.bindings and position in self.bindings:
                self._check_bindings(position, leaf, report)
            expected += 1
            self.last_position = position
            if frontier.size == target:
                target = self._take_roots(target, targets)
                target = -1 if target is None else target

    def _check_bindings(self, position: int, leaf: bytes, report: Report) -> None:
        for what, bound in self.bindings[position]:
            if bound != leaf:
                report.problems.append(Problem(
                    f"{what} is bound to the event at position {position}, which is not "
                    "the event stored there"))

    def _take_roots(self, target: int | None, targets: Iterator[int]) -> int | None:
        while target is not None and target == self.frontier.size:
            self.roots[target] = self.frontier.root()
            self.boundary[target] = self.last_position
            if self.claims is not None and self.claims_complete:
                self.claim_roots[target] = self.claims.root()
            target = next(targets, None)
        return target


def _check_heads(ledger_heads: Sequence[TreeHead], external: Sequence[tuple[str, TreeHead]],
                 trusted_key: bytes | None, local_key: tuple[str, bytes] | None
                 ) -> list[Problem]:
    problems: list[Problem] = []
    trusted, why = _trusted_key(ledger_heads, external, trusted_key)
    for origin, head in [("the ledger", h) for h in ledger_heads] + list(external):
        where = "" if origin == "the ledger" else f" from {origin}"
        if not head.signature_ok():
            problems.append(Problem(f"{head.label()}{where}: the signature does not verify"))
        elif trusted is not None and head.public_key != trusted:
            problems.append(Problem(
                f"{head.label()}{where} is signed by key {head.key_id[:16]}, not {why} "
                f"{key_id(trusted)[:16]}: the signing key was replaced"))
    for before, after in zip(ledger_heads, ledger_heads[1:]):
        if after.tree_size < before.tree_size or after.timestamp_ms < before.timestamp_ms:
            problems.append(Problem(f"{after.label()} is older or smaller than "
                                    f"{before.label()}: recorded heads were rewritten"))
    recorded = {(h.tree_size, h.root_hash, h.timestamp_ms, h.signature) for h in ledger_heads}
    for origin, head in external:
        if (head.tree_size, head.root_hash, head.timestamp_ms, head.signature) not in recorded:
            problems.append(Problem(f"{head.label()} from {origin} is not recorded in the "
                                    "ledger: recorded heads were removed or rewritten"))
    if local_key is not None and trusted is not None and local_key[1] != trusted:
        problems.append(Problem(
            f"the signing key {local_key[0]} (id {key_id(local_key[1])[:16]}) is not {why} "
            f"{key_id(trusted)[:16]}: the signing key was replaced"))
    return problems


def _trusted_key(ledger_heads: Sequence[TreeHead], external: Sequence[tuple[str, TreeHead]],
                 trusted_key: bytes | None) -> tuple[bytes | None, str]:
    if trusted_key is not None:
        return trusted_key, "the trusted key"
    if external:
        return external[0][1].public_key, "the key of the head file"
    if ledger_heads:
        return ledger_heads[0].public_key, "the key of the first head"
    return None, ""


def _judge_heads(heads: Sequence[tuple[str, TreeHead]], scan: _Scan, report: Report,
                 complete: bool) -> None:
    size = scan.frontier.size
    failed: list[TreeHead] = []
    passed: list[int] = []
    for origin, head in heads:
        if head.tree_size < report.start - 1 or (head.tree_size > size and not complete):
            status = "unchecked"
        elif head.tree_size > size:
            status = "failed"
            report.problems.append(Problem(
                f"the log holds {size} events, but {head.label()} covers "
                f"{head.tree_size}: events after position {scan.last_position} were removed",
                scan.last_position + 1))
        elif scan.roots[head.tree_size] == head.root_hash:
            status = "ok"
            passed.append(head.tree_size)
        else:
            status = "failed"
            failed.append(head)
        report.checks.append(HeadCheck(head, origin, status))
    if failed:
        _locate(min(failed, key=lambda h: h.tree_size), passed, scan, report)
    elif scan.mismatch is not None:
        position, leaf, claimed = scan.mismatch
        report.problems.append(Problem(
            f"the leaf cache says {claimed.hex()[:16]}… but the stored event hashes to "
            f"{leaf.hex()[:16]}…, and the events match every tree head: the cache was altered",
            position))
    covered = max((c.head.tree_size for c in report.checks if c.status == "ok"),
                  default=report.start - 1)
    if report.ok and size > covered:
        report.notes.append(f"{size - covered} events after position {covered} are not covered "
                            "by any tree head yet (run 'xlsnap seal')")


def _locate(head: TreeHead, passed: list[int], scan: _Scan, report: Report) -> None:
    """Name the first bad position below a head whose root differs."""
    low = max([s for s in passed if s < head.tree_size], default=report.start - 1)
    first = scan.boundary.get(low, low) + 1  # positions: the tree's sizes count events
    last = scan.boundary.get(head.tree_size, head.tree_size)
    known = [p.position for p in report.problems
             if p.position is not None and first <= p.position <= last]
    if scan.mismatch is not None:
        position, leaf, claimed = scan.mismatch
        if low < scan.mismatch_ordinal <= head.tree_size and \
                scan.claim_roots.get(head.tree_size) == head.root_hash:
            if position not in known:
                report.problems.append(Problem(
                    f"the stored event differs from the one sealed in {head.label()} "
                    f"(its leaf hash is {leaf.hex()[:16]}…, sealed {claimed.hex()[:16]}…)",
                    position))
            return
    if known:
        return
    report.problems.append(Problem(
        f"{head.label()} does not match the log: an event in positions {first}..."
        f"{last} was altered (the leaf cache does not pin down which)", first))


def _rows_with_cached_leaves(db: LedgerDb) -> Iterator[Row]:
    """Each stored row with the leaf the cache claims for its position (if any)."""
    columns = event_columns(db, "e")
    if not has_tables(db):
        return db.scan(f"SELECT {columns}, NULL FROM {db.events} e ORDER BY e.{db.pos}")
    return db.scan(f"SELECT {columns}, l.leaf FROM {db.events} e LEFT JOIN "
                     f"{LEAVES_TABLE} l ON l.position = e.{db.pos} ORDER BY e.{db.pos}")


def _sealed_but_missing(db: LedgerDb) -> list[Problem]:
    """Positions the leaf cache sealed that hold no event now (a deleted event)."""
    if db.dense or not has_tables(db):
        return []  # on a dense log the scan names the gap itself
    row = db.execute(f"SELECT MIN(l.position), COUNT(*) FROM {LEAVES_TABLE} l WHERE NOT EXISTS "
                     f"(SELECT 1 FROM {db.events} e WHERE e.{db.pos} = l.position)").fetchone()
    if not row or not row[1]:
        return []
    return [Problem(f"the event sealed at position {row[0]} is no longer stored "
                    f"({row[1]} sealed events are missing): events were deleted", int(row[0]))]
