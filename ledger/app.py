"""The eventsourcing Application holding every domain's ledger."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import PersistenceError, Recording, Transcoder

from ledger.domain import DomainLedger, domain_ledger_id
from ledger.errors import LedgerUnavailable
from ledger.storage.location import is_postgres, parse_postgres, shown
from ledger.transcoder import MsgpackTranscoder

#: Seconds a writer waits for SQLite's lock before giving up.
DEFAULT_LOCK_TIMEOUT = 30


def persistence_env(location: str, lock_timeout: int = DEFAULT_LOCK_TIMEOUT) -> dict[str, str]:
    """The library's persistence settings for a ledger ``location`` (a path or a URL)."""
    if is_postgres(location):
        return parse_postgres(location).library_env(lock_timeout)
    if not location:
        raise LedgerUnavailable("ledger location is empty")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": location,
        "SQLITE_LOCK_TIMEOUT": str(lock_timeout),
    }


@contextmanager
def _threads_without_interrupts() -> Iterator[None]:
    """Threads started meanwhile (the library's connection pool) block SIGINT/SIGTERM.

    A signal goes to any thread that does not block it, and Python then raises in the
    main thread whatever that thread's mask: a pool thread left open would let Ctrl-C cut
    an operation that holds its signals in half.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def project_events(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply ``events`` to ``aggregate`` in order: the library's projector without its
    per-event ``isinstance`` against a runtime Protocol (~40 us each, 16 ms a command)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class LedgerApp(Application[UUID]):
    """Stores ``DomainLedger`` aggregates; commands mutate them, ``get_*`` read them."""

    name = "xlsnap"
    #: The library's aggregate snapshots (derived state, not in the log) every 100 events;
    #: only the newest is kept, so a domain loads from at most 99 events (each command
    #: loads its domain once: 1000 let a busy domain's load cost 30-80 ms).
    snapshotting_intervals: ClassVar[dict[type, int]] = {DomainLedger: 100}

    def __init__(self, location: str, lock_timeout: int = DEFAULT_LOCK_TIMEOUT) -> None:
        self.location = location
        self.after_record: list[Callable[[], None]] = []
        env = persistence_env(location, lock_timeout)
        if is_postgres(location):
            from ledger.storage.schema import tables_guard

            # A clear error before the library's pool retries; the library's tables made
            # by one process at a time (concurrent DDL collides in PostgreSQL's catalog).
            with tables_guard(location, env), _threads_without_interrupts():
                self._init_library(env)
        else:
            self._init_library(env)

    def _init_library(self, env: dict[str, str]) -> None:
        try:
            super().__init__(env=env)
        except (PersistenceError, OSError) as exc:
            raise LedgerUnavailable(f"cannot open ledger {shown(self.location)}: {exc}"
                                    ) from None

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        for callback in self.after_record:
            callback()

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None,
                      projector_func: Any = None) -> None:
        """Store an aggregate snapshot, then drop the older ones of that aggregate."""
        super().take_snapshot(aggregate_id, version, projector_func or project_events)
        recorder = getattr(self.snapshots, "recorder", None)
        datastore = getattr(recorder, "datastore", None)
        if version is None or datastore is None:
            return
        postgres = is_postgres(self.location)
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"DELETE FROM {recorder.events_table_name} "  # type: ignore[union-attr]
                "WHERE originator_id=%s AND originator_version<%s" if postgres else
                f"DELETE FROM {recorder.events_table_name} "  # type: ignore[union-attr]
                "WHERE originator_id=? AND originator_version<?",
                (aggregate_id if postgres else aggregate_id.hex, version),
            )

    def load(self, aggregate_id: UUID) -> Any:
        """The aggregate ``aggregate_id`` (from its newest snapshot and the events after)."""
        return self.repository.get(aggregate_id, projector_func=project_events)

    def get_domain(self, domain_key: str) -> DomainLedger | None:
        """The ledger of the domain with this key (uuid or name), or ``None``."""
        try:
            return self.load(domain_ledger_id(domain_key))
        except AggregateNotFoundError:
            return None

    def domain_events(self, domain_key: str) -> Sequence[DomainEventProtocol[UUID]]:
        """Every event of one domain, oldest first."""
        return list(self.events.get(domain_ledger_id(domain_key)))

    def iter_log(
        self, start: int = 1, stop: int | None = None, batch: int = 1000
    ) -> Iterator[tuple[int, Any]]:
        """Every event in commit order as ``(position, event)``."""
        position = start
        while True:
            notes = self.recorder.select_notifications(position, batch, stop=stop)
            if not notes:
                return
            for note in notes:
                yield note.id, self.mapper.to_domain_event(note)
            position = notes[-1].id + 1

    def max_position(self) -> int:
        """Position of the newest event in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0


class LazyApp:
    """A ``LedgerApp`` opened on first use (``get``): a read whose view is already up
    to date never starts the library's persistence (on PostgreSQL, its pool)."""

    name = LedgerApp.name

    def __init__(self, location: str, opener: Callable[[], LedgerApp]) -> None:
        self.location = location
        self._opener = opener
        self._app: LedgerApp | None = None

    @property
    def opened(self) -> bool:
        return self._app is not None

    def get(self) -> LedgerApp:
        if self._app is None:
            self._app = self._opener()
        return self._app

    def iter_log(self, start: int = 1, stop: int | None = None, batch: int = 1000
                 ) -> Iterator[tuple[int, Any]]:
        return self.get().iter_log(start, stop, batch)

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
