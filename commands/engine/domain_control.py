"""How the engine drives a running domain, per toolstack: Xen through xl, QEMU through QMP.

The live actions ask ``control_of(params)`` (the toolstack recorded in the step) instead of
testing the toolstack's name; what differs between the two lives in one class each.
"""

from __future__ import annotations

import os
import time
from typing import Any

from commands.drivers.process import DriverError, ProcessResult
from commands.drivers.qmp import Qmp, QmpError
from commands.engine.actions import Evidence, Params, Tools
from commands.engine.live_helpers import (
    migration_argv,
    qemu_status,
    qmp_argv,
    qmp_step,
    remove_file_quietly,
    run_xl,
    xen_state,
)
from commands.state.private_folders import create_secret_file
from commands.toolstacks.qemu import qemu_state


class XenControl:
    """``xl pause``/``unpause``, ``xl save -p``, ``xl list``.

    A memory snapshot never pauses first: ``xl save -p`` pauses the domain itself (a
    PV-aware guest paused before it would miss the suspend request).
    """

    def pause_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "pause", p["domain"]]

    def resume_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "unpause", p["domain"]]

    def pause(self, p: Params, tools: Tools, argv: list[str]) -> ProcessResult:
        return run_xl(argv, lambda: tools.xl.pause(p["domain"]))

    def resume(self, p: Params, tools: Tools, argv: list[str]) -> ProcessResult:
        return run_xl(argv, lambda: tools.xl.unpause(p["domain"]))

    def state(self, p: Params, tools: Tools) -> str | None:
        state = xen_state(tools, p["domain"])
        return "running" if state == "blocked" else state

    def save_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "save", "-p", p["domain"], p["path"]]

    def save_undo_argv(self, p: Params, tools: Tools) -> list[str]:
        """What undoing a save runs after removing the file: the unpause."""
        return [";", tools.xl.binary, "unpause", p["domain"]]

    def save(self, p: Params, tools: Tools, argv: list[str], label: str,
             shared: bool) -> ProcessResult:
        path = p["path"]
        if os.path.lexists(path):
            raise FileExistsError(f"memory image {path} exists already")
        if shared:  # others may write there: the file is ours before xl opens it
            create_secret_file(path)
        old_umask = os.umask(0o077)  # xl creates it 0600 in our 0700 folder (creating
        try:                         # it first would make xl truncate it: slower)
            with tools.watch(label, path, p.get("memory_bytes") or None):
                result = run_xl(argv, lambda: tools.xl.save(
                    p["domain"], path, pause=True, memory_bytes=p.get("memory_bytes", 0)))
            _check_paused(tools, p["domain"], argv, result)
        except BaseException:
            remove_file_quietly(path)
            raise
        finally:
            os.umask(old_umask)
        tools.clock["paused"] = time.monotonic()
        return result

    def after_save_undone(self, p: Params, tools: Tools) -> None:
        """The pause ``xl save -p`` added is taken back."""
        state = xen_state(tools, p["domain"])
        if state == "paused" and (p["was_running"] or p.get("drop_pause")):
            argv = [tools.xl.binary, "unpause", p["domain"]]
            run_xl(argv, lambda: tools.xl.unpause(p["domain"]))

    def save_probe(self, p: Params, tools: Tools, exists: bool) -> Evidence:
        # its pause counts as much as its file
        state = xen_state(tools, p["domain"])
        detail = {"exists": exists, "state": state}
        if state == "paused" and p["was_running"]:
            return Evidence(True, detail)
        return Evidence(None if exists else False, detail)


class QemuControl:
    """QMP ``stop``/``cont``, ``migrate`` to a file (QEMU stopped first), ``query-status``."""

    def pause_argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "stop")

    def resume_argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "cont")

    def pause(self, p: Params, tools: Tools, argv: list[str]) -> ProcessResult:
        return qmp_step(tools, p["socket"], argv, lambda q: q.stop())

    def resume(self, p: Params, tools: Tools, argv: list[str]) -> ProcessResult:
        return qmp_step(tools, p["socket"], argv, lambda q: q.cont())

    def state(self, p: Params, tools: Tools) -> str | None:
        status = qemu_status(tools, p["socket"])
        return None if status is None else qemu_state(status)

    def save_argv(self, p: Params, tools: Tools) -> list[str]:
        return migration_argv(p["socket"], "migrate", p["path"])

    def save_undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return []

    def save(self, p: Params, tools: Tools, argv: list[str], label: str,
             shared: bool) -> ProcessResult:
        path = p["path"]
        with tools.watch(label, path, None):
            return qmp_step(tools, p["socket"], argv, lambda q: _migrated(q, path))

    def after_save_undone(self, p: Params, tools: Tools) -> None:
        """Nothing: the pause step's undo resumes QEMU."""

    def save_probe(self, p: Params, tools: Tools, exists: bool) -> Evidence:
        if not exists:
            return Evidence(False, {"exists": False})
        try:
            status = tools.qmp(p["socket"]).execute("query-migrate").get("status")
        except QmpError as exc:
            return Evidence(None, {"exists": True, "qmp": exc.desc})
        return Evidence(True if status == "completed" else None,
                        {"exists": True, "migration": status})


#: The control of each toolstack that runs domains, by the name its steps record.
CONTROLS: dict[str, XenControl | QemuControl] = {"xen": XenControl(), "qemu": QemuControl()}


def control_of(p: Params) -> XenControl | QemuControl:
    """The control of the toolstack a live step's parameters name."""
    return CONTROLS[p["toolstack"]]


def _check_paused(tools: Tools, domain: str, argv: list[str], result: ProcessResult) -> None:
    """``xl save -p`` exits 0 even when its final pause failed (xl_saverestore.c:155-158
    ignores libxl_domain_pause's result): the domain then runs on. Disks are snapshotted
    only if ``xl list`` shows it paused."""
    state = tools.xl.state(domain).value
    if state != "paused":
        message = (f"xl save -p left domain {domain!r} {state}, not paused: its disks would "
                   "not match the memory image")
        raise DriverError(message, ProcessResult(argv, 1, result.stdout, message,
                                                 result.duration_ms,
                                                 {"xl_stderr": result.stderr[-2048:]}))


#: ``max-bandwidth`` while saving memory to a file: QEMU's default (128 MiB/s) is meant
#: for live migration over a network and would stretch a 256 MiB guest's pause to 2 s.
UNTHROTTLED = 1 << 40


def _migrated(qmp: Qmp, path: str) -> dict[str, Any]:
    """Migrate to ``path`` unthrottled, then give QEMU back its own bandwidth limit."""
    old = qmp.execute("query-migrate-parameters").get("max-bandwidth")
    qmp.execute("migrate-set-parameters", {"max-bandwidth": UNTHROTTLED})
    try:
        done = qmp.migrate_to_file(path)
    finally:
        if old is not None:
            qmp.execute("migrate-set-parameters", {"max-bandwidth": old})
    return {"migration_ms": done.total_time_ms, "transferred": done.transferred}
