"""The progress display: nothing for quick work or a non-terminal, bytes for a growing file."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

from rich.console import Console

from commands.engine.progress import default_watch, quiet, terminal_watch


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_quick_work_shows_nothing(tmp_path: Path) -> None:
    console, out = _console()
    with terminal_watch(console, delay=0.5)("saving memory", str(tmp_path / "m"), 100):
        pass
    assert out.getvalue() == ""


def test_slow_save_shows_the_file_growing(tmp_path: Path) -> None:
    console, out = _console()
    image = tmp_path / "m.save"
    image.write_bytes(b"")

    def grow() -> None:
        for _ in range(6):
            with image.open("ab") as handle:
                handle.write(b"x" * 100_000)
            time.sleep(0.05)

    with terminal_watch(console, delay=0.05)("saving memory of web", str(image), 600_000):
        writer = threading.Thread(target=grow)
        writer.start()
        writer.join()
        time.sleep(0.25)
    shown = out.getvalue()
    assert "saving memory of web" in shown and "600.0 kB" in shown


def test_no_terminal_means_no_display(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert default_watch() is quiet
