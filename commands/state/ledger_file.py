"""The ledger's file, checked before it is opened: ours, a ledger, and where expected."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid
from contextlib import closing
from datetime import datetime
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar

from commands.errors import LedgerBlocked, OperationFailed, UsageError
from commands.config.settings import Settings
from ledger.storage.location import shown

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The library's event table; every xlsnap ledger has it, from its first open.
EVENT_TABLE = "stored_events"
T = TypeVar("T")


class NotALedger(UsageError):
    """The ledger location holds some other file."""


class LedgerMissing(LedgerBlocked):
    """The home shows snapshots were taken, but their ledger is gone."""


def is_default(settings: Settings) -> bool:
    """True when the ledger is the home's own ``<home>/ledger.sqlite``."""
    return os.path.abspath(settings.ledger) == str(settings.home / "ledger.sqlite")


def domain_folders(home: Path) -> dict[str, float]:
    """The domain folders (``<uuid>``) in ``home`` that hold snapshot files (a regular
    ``snapshotdata-*.libxl-json`` or ``*.save`` file, an earlier ledger's), each with
    the time its oldest one was written."""
    found: dict[str, float] = {}
    try:
        entries = list(os.scandir(home))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        try:
            uuid.UUID(entry.name)
        except ValueError:
            continue
        oldest = _oldest_snapshot_file(Path(entry.path)) \
            if entry.is_dir(follow_symlinks=False) else None
        if oldest is not None:
            found[entry.name] = oldest
    return dict(sorted(found.items()))


def _oldest_snapshot_file(folder: Path) -> float | None:
    try:
        times = [e.stat(follow_symlinks=False).st_mtime for e in os.scandir(folder)
                 if e.is_file(follow_symlinks=False)
                 and (e.name.startswith("snapshotdata-") or e.name.endswith(".save"))]
    except OSError:
        return None
    return min(times) if times else None


def check_is_ledger(location: str) -> None:
    """Refuse an existing, non-empty file that is not an xlsnap ledger (not SQLite, or
    SQLite without the event table), before the library could add its tables to it:
    ``NotALedger``, exit 2. A read-only command never creates a ledger or its folder."""
    st = os.stat(location)
    if not stat.S_ISREG(st.st_mode):
        raise NotALedger(f"not an xlsnap ledger: {location} (not a regular file)")
    if st.st_uid != os.geteuid():
        raise UsageError(f"ledger {location} belongs to uid {st.st_uid}, not to the user "
                         f"running xlsnap (uid {os.geteuid()}); refusing to use it")
    if st.st_size == 0:
        return
    with open(location, "rb") as handle:
        magic = handle.read(len(_SQLITE_MAGIC))
    if magic != _SQLITE_MAGIC:
        raise NotALedger(f"not an xlsnap ledger: {location} (not an SQLite database)")
    try:
        with closing(sqlite3.connect(f"{Path(location).absolute().as_uri()}?mode=ro",
                                     uri=True, timeout=30)) as db:
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise NotALedger(f"not an xlsnap ledger: {location} ({exc})") from None
    if tables and EVENT_TABLE not in tables:
        raise NotALedger(f"not an xlsnap ledger: {location} (an SQLite database without "
                         f"xlsnap's {EVENT_TABLE!r} table)")


def open_shared(location: str, settings: Settings, read_only: bool) -> tuple[Any, Any]:
    """The app (a ``LazyApp``: opened on first use) and view of a PostgreSQL ledger, its
    schema version checked first (the home folder is still ours to check)."""
    from commands.state.private_folders import check_private_dir, private_dir
    from ledger.app import LazyApp, LedgerApp
    from ledger.storage.port import open_db
    from ledger.storage.schema import check_version
    from projections.tree_view import TreeView

    if not read_only:
        private_dir(settings.home, "home folder")
    elif os.path.lexists(settings.home):
        check_private_dir(settings.home, "home folder")

    def app() -> LedgerApp:
        return _shared(location, lambda: LedgerApp(location))

    def view() -> TreeView:
        db = open_db(location)
        try:
            check_version(db, shown(location))
            return TreeView(LazyApp(location, app), db=db)
        except BaseException:
            db.close()
            raise

    found = _shared(location, view)
    return found.app, found


def _shared(location: str, open_it: Callable[[], T]) -> T:
    """``open_it()``, its failures as the exit codes of a shared ledger's."""
    from ledger.errors import LedgerTooNew, LedgerUnavailable, LedgerUnreachable

    try:
        return open_it()
    except LedgerUnreachable as exc:
        raise OperationFailed(str(exc)) from None
    except LedgerTooNew as exc:
        raise LedgerBlocked(str(exc)) from None
    except LedgerUnavailable as exc:
        raise UsageError(str(exc)) from None
    except sqlite3.Error as exc:
        raise LedgerBlocked(f"cannot read ledger {shown(location)}: {exc}") from None


def check_not_missing(settings: Settings) -> None:
    """Refuse to start an empty ledger where one was: a missing ledger at
    ``<home>/ledger.sqlite`` while the home's domain folders (``<home>/<uuid>/``) hold
    snapshot files of an earlier ledger is ``LedgerMissing``, exit 3, unless
    ``--new-ledger`` says so."""
    if settings.new_ledger or not is_default(settings):
        return
    folders = domain_folders(settings.home)
    if folders:
        since = datetime.fromtimestamp(min(folders.values())).isoformat(sep=" ",
                                                                        timespec="seconds")
        raise LedgerMissing(
            f"ledger missing: expected at {settings.ledger}, but {settings.home} holds "
            f"snapshot files of {len(folders)} domain(s) ({', '.join(list(folders)[:3])}), "
            f"written since {since} (local time) by an earlier ledger; "
            "restore it, or start an empty one with 'xlsnap --new-ledger ...'")
