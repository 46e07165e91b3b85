"""A progress display (rich, on stderr) for memory saves and restores that take a while."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

#: Seconds before the display appears: quick saves print nothing.
DELAY = 1.0

Watch = Callable[[str, "str | None", "int | None"], AbstractContextManager[None]]


@contextmanager
def quiet(label: str, path: str | None = None, total: int | None = None) -> Iterator[None]:
    """No display (stderr is not a terminal)."""
    yield


def terminal_watch(console: Any = None, delay: float = DELAY) -> Watch:
    """A ``watch`` drawing on ``console`` (default: a rich console on stderr)."""

    @contextmanager
    def watch(label: str, path: str | None = None, total: int | None = None) -> Iterator[None]:
        done = threading.Event()
        thread = threading.Thread(target=_draw, args=(done, label, path, total, console, delay),
                                  daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=2)

    return watch


def default_watch() -> Watch:
    """``terminal_watch`` when stderr is a terminal, else ``quiet``.

    Nothing is shown unless stderr is a terminal and the work lasts over ``DELAY`` seconds:
    then a line shows the bytes written so far (a file that grows), against the expected
    size when it is known, or a spinner and the time spent (a restore).

        with watch("saving memory of web", "/var/lib/xen/snapshots/u/s.save", 512 << 20):
            xl.save("web", path)
    """
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return terminal_watch() if tty else quiet


def _draw(done: threading.Event, label: str, path: str | None, total: int | None,
          console: Any, delay: float) -> None:
    if done.wait(delay):
        return
    try:
        from rich.console import Console
    except ImportError:  # rich comes with typer; without it there is simply no display
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    console = console or Console(stderr=True)
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if path is not None:
        columns += [BarColumn(), DownloadColumn(), TransferSpeedColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        while not done.wait(0.1):
            if path is not None:
                try:
                    bar.update(task, completed=os.path.getsize(path))
                except OSError:
                    pass
