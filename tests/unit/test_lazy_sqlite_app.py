"""On SQLite too, a read whose view is up to date never opens the library's persistence
(2-3 ms of a 20 ms `snapshot-list -l` through xlsnapd); a write, or a view behind the
log, opens it on first use."""

from __future__ import annotations

from pathlib import Path

from commands.bootstrap import open_services
from commands.config.settings import Settings
from tests.ledger_builder import build_busy_ledger


def _services(tmp_path: Path, read_only: bool = True):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    settings = Settings.resolve(str(home), str(tmp_path / "ledger.sqlite"),
                                str(tmp_path / "xen"), "offline", None)
    return open_services(settings, read_only=read_only)


def test_an_up_to_date_read_leaves_the_library_closed(tmp_path: Path) -> None:
    build_busy_ledger(tmp_path / "ledger.sqlite", operations=30).close()
    first = _services(tmp_path)
    first.sync()                        # the view was behind: the log is read
    assert first._app is not None and first._app.opened
    first.close()
    second = _services(tmp_path)
    second.sync()
    rows = second.view.db.execute("SELECT count(*) FROM view_snapshots").fetchone()[0]
    assert rows > 0
    assert second._app is not None and not second._app.opened
    assert second.app.get_domain("name:web") is not None      # opened on first use
    assert second._app.opened
    second.close()

