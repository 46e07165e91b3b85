"""Fault injection for the crash and failure tests, switched on by one environment variable."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "XLSNAP_FAULT_INJECT"
DIR = "XLSNAP_FAULT_DIR"


def inject(step: int, phase: str, point: str) -> None:
    """Kill or fail here if the environment asks for this step and point.

    ``XLSNAP_FAULT_INJECT="kill:STEP:POINT"`` sends SIGKILL to this process, and
    ``"fail:STEP:intent"`` makes the side effect fail with an ``OSError``, when step STEP
    (1-based, phase ``do``) reaches POINT: ``intent`` (its intent is recorded, the side
    effect not yet run), ``effect`` (the side effect ran, its outcome is not recorded) or
    ``outcome`` (both are recorded). ``"pause:STEP:POINT"`` creates the file ``paused`` in
    the folder ``XLSNAP_FAULT_DIR`` there and waits (at most a minute) until the test
    creates ``resume`` in it: a test can then signal a process it knows to be mid-operation.
    Unset, it does nothing.
    """
    spec = os.environ.get(ENV)
    if not spec or phase != "do":
        return
    how, _, where = spec.partition(":")
    if where != f"{step}:{point}":
        return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "fail":
        raise OSError(f"injected failure at step {step} ({point})")
    if how == "pause":
        _pause(Path(os.environ[DIR]))


def _pause(folder: Path) -> None:
    """Say ``paused`` and wait for ``resume`` (a minute at most)."""
    (folder / "paused").touch()
    for _ in range(600):
        if (folder / "resume").exists():
            return
        time.sleep(0.1)
