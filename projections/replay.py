"""A domain's snapshot tree as it was at any log position, rebuilt from the log."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ledger.app import LedgerApp
from ledger.entries import iter_rows
from projections import checkpoints
from projections.log_reader import decode, domain_rows
from projections.projector import apply_to_tree
from projections.tree_view import TreeTables, open_memory_tables


@dataclass
class PastState:
    """One domain's tables as of a log position."""

    domain_id: str
    position: int
    tables: TreeTables
    version: int = 0
    applied: int = 0
    checkpoint: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def current(self) -> str | None:
        row = self.tables.domain(self.domain_id)
        return row["current"] if row else None

    def rows(self) -> list[sqlite3.Row]:
        return self.tables.snapshot_rows(self.domain_id)

    def records(self) -> list[dict[str, Any]]:
        return self.tables.records(self.domain_id)

    def close(self) -> None:
        self.tables.db.close()


def replay_domain(app: LedgerApp, db: Any, domain_id: str, position: int,
                  use_checkpoints: bool = True) -> PastState:
    """The state of ``domain_id`` after the event at log ``position``.

    The past is projected with the projection's own code (``apply_to_tree``, the tree
    half of ``apply_event``) into in-memory tables with the view's own schema, and read
    with the view's own queries (``TreeTables``), so a replay and the live view cannot
    drift apart. Only the
    domain's events are read (by its aggregate id, in version order); a checkpoint,
    when one holds (``checkpoints.fault``), saves applying the events before it. The
    projection tables themselves are never read: with no checkpoints, the log alone
    gives the same answer, only slower.
    """
    past = PastState(domain_id, position, open_memory_tables())
    cur = past.tables.db.cursor()
    cur.execute("BEGIN")
    if use_checkpoints:
        _start_from_checkpoint(db, cur, past)
    for row in domain_rows(db, domain_id, past.version, position):
        at, event = decode(app, row)
        apply_to_tree(cur, at, event)
        past.version = event.originator_version
        past.applied += 1
    cur.execute("COMMIT")
    return past


def _start_from_checkpoint(db: Any, cur: Any, past: PastState) -> None:
    checkpoint = checkpoints.latest(db, past.domain_id, past.position)
    if checkpoint is None:
        return
    fault = checkpoints.fault(db, checkpoint)
    if fault is not None:
        past.warnings.append(f"{fault}; replayed from the log instead (run 'xlsnap verify')")
        return
    checkpoints.restore(cur, checkpoint)
    past.version = checkpoint.version
    past.checkpoint = checkpoint.position


def position_as_of_log(app: LedgerApp, db: Any, when: float) -> int:
    """``timeline.position_as_of`` computed from the log alone (a full scan)."""
    high_water = float("-inf")
    last = 0
    for row in iter_rows(db):
        position, event = decode(app, row)
        high_water = max(high_water, event.timestamp.timestamp())
        if high_water > when:
            break
        last = position
    return last


def recheck_checkpoints(app: LedgerApp, db: Any) -> list[str]:
    """Derive every checkpoint again from the log and compare (``verify --deep``)."""
    problems: list[str] = []
    by_domain: dict[str, dict[int, checkpoints.Checkpoint]] = {}
    for point in checkpoints.all_checkpoints(db):
        by_domain.setdefault(point.domain_id, {})[point.position] = point
    for domain_id, wanted in by_domain.items():
        tables = open_memory_tables()
        cur = tables.db.cursor()
        cur.execute("BEGIN")
        try:
            for row in domain_rows(db, domain_id, 0, max(wanted)):
                at, event = decode(app, row)
                apply_to_tree(cur, at, event)
                point = wanted.pop(at, None)
                if point is not None and (point.version != event.originator_version
                                          or checkpoints.capture(cur, domain_id) != point.state
                                          or checkpoints.fault(db, point) is not None):
                    problems.append(f"{point.label()} differs from the state derived from the "
                                    "log")
        except Exception as exc:  # noqa: BLE001 - an undecodable event is a finding here
            problems.append(f"cannot derive the checkpoints of domain {domain_id} from the "
                            f"log: {type(exc).__name__}: {exc}")
            wanted.clear()
        finally:
            tables.db.close()
        problems += [f"{p.label()} is not at an event of its domain" for p in wanted.values()]
    return problems
