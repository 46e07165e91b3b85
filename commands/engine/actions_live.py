"""Pausing a running domain and saving its memory, as actions (per toolstack: ``domain_control``).

Same contract as ``commands.engine.actions``: plain-data parameters, ``do``/``undo`` safe to
repeat, ``probe`` reads reality so that ``recover`` can decide after a crash.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

from commands.drivers.process import ProcessResult
from commands.engine.actions import Action, Evidence, Params, Tools
from commands.engine.domain_control import control_of
from commands.engine.live_helpers import migration_argv, ok_result, qemu_status, qmp_step, run_xl
from commands.state.atomic_files import remove_file
from commands.state.private_folders import UnsafeFolder, secret_dir

_RUNNING = "running"


def _paused_ms(tools: Tools) -> float | None:
    paused = tools.clock.pop("paused", None)
    return None if paused is None else round((time.monotonic() - paused) * 1000.0, 3)


# ---- pausing ----------------------------------------------------------------------------


class DomainPause(Action):
    """Stop the guest's vCPUs (QMP ``stop``, ``xl pause``); undone by resuming them.

    ``was_running`` False (the domain was paused already): nothing to do or undo.
    """

    name = "domain-pause"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return control_of(p).pause_argv(p, tools)

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return control_of(p).resume_argv(p, tools)

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        argv = self.argv(p, tools)
        if not p["was_running"]:
            return ok_result(argv, skipped="the domain was not running")
        result = control_of(p).pause(p, tools, argv)
        tools.clock["paused"] = time.monotonic()
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return resume(p, tools, self.undo_argv(p, tools))

    def probe(self, p: Params, tools: Tools) -> Evidence:
        if not p["was_running"]:
            return Evidence(True, {"skipped": True})
        state = domain_state(p, tools)
        return Evidence(None if state is None else state != _RUNNING, {"state": state})


def domain_state(p: Params, tools: Tools) -> str | None:
    return control_of(p).state(p, tools)


def resume(p: Params, tools: Tools, argv: list[str]) -> ProcessResult:
    """Resume the guest if it should run (``resume``, else ``was_running``) and does not."""
    if not p.get("resume", p["was_running"]):
        return ok_result(argv, skipped="the domain is to stay paused")
    # This process paused it a moment ago: resume at once (no state query in the pause).
    state = "paused" if "paused" in tools.clock else domain_state(p, tools)
    if state == _RUNNING:
        return ok_result(argv, already="running", paused_ms=_paused_ms(tools))
    if state is None:  # no such domain, or no QEMU answering: nothing to resume
        return ok_result(argv, absent=True)
    result = control_of(p).resume(p, tools, argv)
    result.detail["paused_ms"] = _paused_ms(tools)
    return result


class DomainUnpause(DomainPause):
    """Resume the guest after the snapshot (if it ran before); nothing to undo.

    On Xen, for a domain that was paused already, ``drop_pause`` takes back the one pause
    ``xl save -p`` added (Xen counts pauses): the domain stays paused by its own.
    """

    name = "domain-unpause"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return super().undo_argv(p, tools)

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return []

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        argv = self.argv(p, tools)
        if p.get("drop_pause"):
            return run_xl(argv, lambda: tools.xl.unpause(p["domain"]))
        return resume(p, tools, argv)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return ok_result([], nothing="a resumed domain is not paused again")

    def probe(self, p: Params, tools: Tools) -> Evidence:
        if p.get("drop_pause"):
            return Evidence(None, {"reason": "a pause count is not observable"})
        if not p.get("resume", p["was_running"]):
            return Evidence(True, {"skipped": True})
        state = domain_state(p, tools)
        return Evidence(None if state is None else state == _RUNNING, {"state": state})


# ---- memory images ----------------------------------------------------------------------


class MemorySave(Action):
    """Save the guest's memory to a new 0600 file: QMP ``migrate`` or ``xl save -p``.

    QEMU must be stopped first (``domain-pause``); ``xl save -p`` pauses the Xen domain
    itself, so its undo resumes it. A failed save leaves no file behind.
    """

    name = "memory-save"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return control_of(p).save_argv(p, tools)

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["unlink", p["path"], *control_of(p).save_undo_argv(p, tools)]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        path, argv = p["path"], self.argv(p, tools)
        label = f"saving memory of {p.get('domain') or 'the domain'}"
        try:
            shared = secret_dir(Path(path).parent)  # never re-moded (private_folders)
        except UnsafeFolder as exc:
            raise OSError(str(exc)) from None
        result = control_of(p).save(p, tools, argv, label, shared)
        os.chmod(path, 0o600)
        result.detail["size"] = os.path.getsize(path)
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if p.get("safety") and domain_state(p, tools) is None:
            raise OSError(f"domain {p.get('domain')!r} is not running: its safety image "
                          f"{p['path']} is kept to bring it back ('xlsnap recover')")
        removed = remove_file(Path(p["path"]))
        control_of(p).after_save_undone(p, tools)
        return ok_result(self.undo_argv(p, tools), removed=removed)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        return control_of(p).save_probe(p, tools, os.path.exists(p["path"]))


class FileRemove(Action):
    """Delete the file the step's ``param`` names: cannot be taken back."""

    reversible = False
    param: ClassVar[str] = "path"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["unlink", p[self.param]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return ok_result(self.argv(p, tools), removed=remove_file(Path(p[self.param])))

    def probe(self, p: Params, tools: Tools) -> Evidence:
        exists = os.path.lexists(p[self.param])
        return Evidence(not exists, {"exists": exists})


class MemoryRemove(FileRemove):
    """Delete a snapshot's memory image: cannot be taken back."""

    name = "memory-remove"


class MemorySafetyRemove(MemoryRemove):
    """Removing a revert's safety memory image: a clean-up whose failure fails nothing."""

    name = "memory-safety-remove"
    best_effort = True


class MemoryLoad(Action):
    """Load a memory image into a QEMU started with ``-incoming defer``; it lands paused."""

    name = "memory-load"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return migration_argv(p["socket"], "migrate-incoming", p["path"])

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        with tools.watch("restoring memory", None, None):
            return qmp_step(tools, p["socket"], self.argv(p, tools),
                             lambda q: {"status": q.migrate_incoming(p["path"]).status})

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        return ok_result([], nothing="undone by stopping the QEMU it was loaded into")

    def probe(self, p: Params, tools: Tools) -> Evidence:
        status = qemu_status(tools, p["socket"])
        return Evidence(None if status is None else status != "inmigrate", {"status": status})


#: The actions of this module, for ``commands.engine.step_registry``.
LIVE_ACTIONS: tuple[Action, ...] = (
    DomainPause(), DomainUnpause(), MemorySave(), MemoryRemove(), MemorySafetyRemove(),
    MemoryLoad())
