"""Ledgers written through the ledger API (no disks), with a clock the test controls."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import eventsourcing.domain

from ledger.app import LedgerApp
from ledger.domain import DomainLedger

ACTOR = {"uid": 1000, "user": "alice", "sudo_user": None, "host": "xen1", "pid": 4242,
         "argv": ["xlsnap", "snapshot-create"], "version": "0.1.0"}
START = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@contextmanager
def fixed_clock(times: Callable[[], datetime]) -> Iterator[None]:
    """Make every new event take its timestamp from ``times()``."""
    cls = eventsourcing.domain.CanCreateTimestamp
    saved = cls.__dict__["create_timestamp"]
    cls.create_timestamp = staticmethod(times)  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.create_timestamp = saved  # type: ignore[method-assign]


class Clock:
    """Advances ``step`` per event; ``jump`` moves it (even backwards, as a skewed writer)."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def jump(self, delta: timedelta) -> None:
        self.now += delta


class LedgerBuilder:
    """Records whole operations (start, a step, the fact, finish) on domain ledgers."""

    def __init__(self, path: Path, actor: dict[str, Any] | None = None) -> None:
        self.app = LedgerApp(str(path))
        self.actor = dict(actor or ACTOR)
        self.ledgers: dict[str, DomainLedger] = {}
        self.counter = 0

    def close(self) -> None:
        self.app.close()

    def ledger(self, domain: str) -> DomainLedger:
        if domain not in self.ledgers:
            self.ledgers[domain] = DomainLedger(
                domain_key=f"name:{domain}", domain_name=domain,
                domain_uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, domain)), actor=self.actor)
        return self.ledgers[domain]

    def _operation(self, domain: str, kind: str, name: str,
                   fact: Callable[[DomainLedger, str], None] | None, ok: bool = True) -> None:
        ledger = self.ledger(domain)
        op = str(uuid.uuid4())
        actor = {**self.actor, "argv": ["xlsnap", f"snapshot-{kind}", "-n", name, domain]}
        ledger.begin(op, kind, name, actor, {"domain": domain})
        argv = ["qemu-img", "snapshot", "-c", name, f"/images/{domain}.qcow2"]
        ledger.step_started(op, 1, "do", "internal-snapshot-create", f"/images/{domain}.qcow2",
                            argv, actor)
        ledger.step_finished(op, 1, "do", ok, {"returncode": 0 if ok else 1,
                                               "stderr": "" if ok else "boom"}, actor)
        if ok and fact is not None:
            fact(ledger, op)
        ledger.finish(op, "completed" if ok else "compensated", "" if ok else "boom", actor)
        self.app.save(ledger)

    def create(self, domain: str, name: str) -> None:
        record = {"name": name, "description": "", "type": "internal", "memory": "no",
                  "state": "shutoff", "disks": [{"device": "xvda", "name": name,
                                                  "file": f"/images/{domain}.qcow2"}]}
        self._operation(domain, "create", name,
                        lambda lg, op: lg.record_taken(op, name, record, self.actor))

    def revert(self, domain: str, name: str) -> None:
        self._operation(domain, "revert", name,
                        lambda lg, op: lg.record_reverted(op, name, self.actor))

    def delete(self, domain: str, name: str) -> None:
        self._operation(domain, "delete", name,
                        lambda lg, op: lg.record_removed(op, name, self.actor))

    def fail(self, domain: str, name: str) -> None:
        """A create that failed and was compensated: events, no snapshot."""
        self._operation(domain, "create", name, None, ok=False)


    def busy(self, operations: int, seed: int = 7) -> None:
        """Operations on several domains: creates, reverts, deletes and failures."""
        rnd = random.Random(seed)
        for i in range(operations):
            domain = rnd.choice(["web", "db", "cache"])
            names = list(self.ledger(domain).entries)
            roll = rnd.random()
            if names and roll < 0.2:
                self.delete(domain, rnd.choice(names))
            elif names and roll < 0.4:
                self.revert(domain, rnd.choice(names))
            elif i % 17 == 16:
                self.fail(domain, f"failed-{seed}-{i}")
            else:
                self.counter += 1
                self.create(domain, f"s{self.counter}")


def build_busy_ledger(path: Path, operations: int = 60, seed: int = 7,
                      actor: dict[str, Any] | None = None) -> LedgerBuilder:
    """A ledger of several domains with creates, reverts, deletes and failures."""
    builder = LedgerBuilder(path, actor)
    builder.busy(operations, seed)
    return builder
