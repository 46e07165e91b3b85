"""Pausing a running domain and saving its memory, as actions; the helpers of all live actions.

Same contract as ``commands.engine.actions``: parameters are plain data recorded in the plan,
``do``/``undo`` are safe to repeat, ``probe`` reads reality (``query-status``,
``query-block``, ``query-migrate``, ``xl list``, the files) so that ``recover`` can
decide after a crash. A QMP step's argv is ``["qmp", SOCKET, COMMAND, JSON]`` and its
result carries the exact QMP conversation (``qmp``: every command, reply status and
duration). The disk actions are in ``commands.engine.actions_qmp``, stopping and starting a
domain for a revert in ``commands.engine.actions_restart``.

Pausing: on QEMU ``domain-pause`` is ``stop`` and its undo ``cont``. On Xen the pause
is part of ``xl save -p`` (pausing a PV-aware guest before ``xl save`` would make it
miss the suspend request), so ``memory-save``'s undo unpauses. ``domain-unpause``
finishes the pause; its undo does nothing (a domain is never paused again by an undo).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from commands.engine.actions import Action, Evidence, Params, Tools
from commands.drivers.process import DriverError, ProcessResult
from commands.drivers.qmp import MIGRATION_FD, Qmp, QmpError, UnsafePath
from commands.drivers.xl import DomainNotFound, XlError
from commands.state.atomic_files import remove_file
from commands.state.private_folders import UnsafeFolder, create_secret_file, secret_dir
from commands.toolstacks.qemu import qemu_state

#: Seconds to wait for a QEMU to exit after ``quit``, or for a new one's QMP socket.
PROCESS_WAIT = 30.0
_RUNNING = "running"


# ---- helpers ----------------------------------------------------------------------------


def qmp_argv(socket: str, command: str, arguments: dict[str, Any] | None = None) -> list[str]:
    """How a QMP command is recorded: ``qmp SOCKET COMMAND [JSON]``."""
    argv = ["qmp", socket, command]
    if arguments:
        argv.append(json.dumps(arguments, sort_keys=True))
    return argv


def qmp_step(tools: Tools, socket: str, argv: list[str],
              effect: Callable[[Qmp], dict[str, Any] | None]) -> ProcessResult:
    """Run ``effect`` on a QMP client; QEMU's refusals become a failed step's result."""
    qmp = tools.qmp(socket)
    start = time.perf_counter()
    try:
        detail = effect(qmp) or {}
    except (QmpError, UnsafePath) as exc:
        desc = exc.desc if isinstance(exc, QmpError) else str(exc)
        command = exc.command if isinstance(exc, QmpError) else argv[2]
        result = ProcessResult(argv, 1, "", f"QMP {command or argv[2]}: {desc}",
                               elapsed_ms(start), {"qmp": qmp.log})
        raise DriverError(result.stderr, result) from None
    return ProcessResult(argv, 0, "", "", elapsed_ms(start), {"qmp": qmp.log, **detail})


def migration_argv(socket: str, command: str, path: str) -> list[str]:
    """How a migration to (``migrate``) or from (``migrate-incoming``) a file is recorded:
    the file's descriptor handed to QEMU (``getfd``), then the migration to ``fd:``."""
    redirect = ">" if command == "migrate" else "<"
    return [*qmp_argv(socket, "getfd", {"fdname": MIGRATION_FD}), redirect, path, ";",
            *qmp_argv(socket, command, {"uri": f"fd:{MIGRATION_FD}"})]


def ok_result(argv: list[str], **detail: Any) -> ProcessResult:
    return ProcessResult(argv, 0, detail=detail)


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def qemu_status(tools: Tools, socket: str) -> str | None:
    """QEMU's run state, or None when its socket does not answer."""
    try:
        return tools.qmp(socket).query_status().status
    except QmpError:
        return None


def xen_state(tools: Tools, domain: str) -> str | None:
    """The Xen domain's state word, or None when xl does not know it."""
    try:
        return tools.xl.state(domain).value
    except DomainNotFound:
        return None


def run_xl(argv: list[str], effect: Callable[[], ProcessResult]) -> ProcessResult:
    """Run an xl call; on failure the step's message is xl's most telling line (the
    whole of its stderr stays in the recorded result)."""
    try:
        result = effect()
    except XlError as exc:
        failed = exc.result
        raise DriverError(str(exc), ProcessResult(
            argv, failed.returncode or 1, failed.stdout, str(exc), failed.duration_ms,
            {"xl_stderr": failed.stderr[-2048:]})) from None
    return ProcessResult(argv, result.returncode, result.stdout, result.stderr,
                         result.duration_ms, result.detail)


def tags_by_device(tools: Tools, socket: str) -> dict[str, tuple[str, ...]]:
    """Internal snapshot names per QMP device id and per node name (an anonymous
    backend, ``"device": ""``, is known by its node name only)."""
    found: dict[str, tuple[str, ...]] = {}
    for dev in tools.qmp(socket).query_block():
        for key in (dev.device, dev.node_name):
            if key:
                found[key] = dev.snapshots
    return found


def tag_evidence(tools: Tools, socket: str, devices: list[str], tag: str,
                  present_means_done: bool = True) -> Evidence:
    try:
        tags = tags_by_device(tools, socket)
    except QmpError as exc:
        return Evidence(None, {"qmp": exc.desc})
    having = [d for d in devices if tag in tags.get(d, ())]
    detail = {"devices_with_tag": having}
    if len(having) == len(devices):
        return Evidence(present_means_done, detail)
    if not having:
        return Evidence(not present_means_done, detail)
    return Evidence(None, detail)


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
        if p["toolstack"] == "xen":
            return [tools.xl.binary, "pause", p["domain"]]
        return qmp_argv(p["socket"], "stop")

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        if p["toolstack"] == "xen":
            return [tools.xl.binary, "unpause", p["domain"]]
        return qmp_argv(p["socket"], "cont")

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        argv = self.argv(p, tools)
        if not p["was_running"]:
            return ok_result(argv, skipped="the domain was not running")
        if p["toolstack"] == "xen":
            result = run_xl(argv, lambda: tools.xl.pause(p["domain"]))
        else:
            result = qmp_step(tools, p["socket"], argv, lambda q: q.stop())
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
    if p["toolstack"] == "xen":
        state = xen_state(tools, p["domain"])
        return "running" if state == "blocked" else state
    status = qemu_status(tools, p["socket"])
    return None if status is None else qemu_state(status)


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
    if p["toolstack"] == "xen":
        result = run_xl(argv, lambda: tools.xl.unpause(p["domain"]))
    else:
        result = qmp_step(tools, p["socket"], argv, lambda q: q.cont())
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
        if p["toolstack"] == "xen":
            return [tools.xl.binary, "save", "-p", p["domain"], p["path"]]
        return migration_argv(p["socket"], "migrate", p["path"])

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        argv = ["unlink", p["path"]]
        return argv + ([";", tools.xl.binary, "unpause", p["domain"]]
                       if p["toolstack"] == "xen" else [])

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        path, argv = p["path"], self.argv(p, tools)
        label = f"saving memory of {p.get('domain') or 'the domain'}"
        try:
            shared = secret_dir(Path(path).parent)  # never re-moded (private_folders)
        except UnsafeFolder as exc:
            raise OSError(str(exc)) from None
        if p["toolstack"] == "xen":
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
        else:
            with tools.watch(label, path, None):
                result = qmp_step(tools, p["socket"], argv, lambda q: _migrated(q, path))
        os.chmod(path, 0o600)
        result.detail["size"] = os.path.getsize(path)
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if p.get("safety") and domain_state(p, tools) is None:
            raise OSError(f"domain {p.get('domain')!r} is not running: its safety image "
                          f"{p['path']} is kept to bring it back ('xlsnap recover')")
        removed = remove_file(Path(p["path"]))
        if p["toolstack"] == "xen":
            state = xen_state(tools, p["domain"])
            if state == "paused" and (p["was_running"] or p.get("drop_pause")):
                argv = [tools.xl.binary, "unpause", p["domain"]]
                run_xl(argv, lambda: tools.xl.unpause(p["domain"]))
        return ok_result(self.undo_argv(p, tools), removed=removed)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        exists = os.path.exists(p["path"])
        if p["toolstack"] == "xen":  # its pause counts as much as its file
            state = xen_state(tools, p["domain"])
            detail = {"exists": exists, "state": state}
            if state == "paused" and p["was_running"]:
                return Evidence(True, detail)
            return Evidence(None if exists else False, detail)
        if not exists:
            return Evidence(False, {"exists": False})
        try:
            status = tools.qmp(p["socket"]).execute("query-migrate").get("status")
        except QmpError as exc:
            return Evidence(None, {"exists": True, "qmp": exc.desc})
        return Evidence(True if status == "completed" else None,
                        {"exists": True, "migration": status})


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


def remove_file_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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
