"""Stopping and starting a domain for a revert: Xen's ``xl destroy``/``xl restore -p``,
QEMU's ``quit`` and a new QEMU from its own command line, and the overlay swap that
reverts an external snapshot.

Same contract as ``commands.engine.actions``; see ``commands.engine.actions_live`` for the helpers.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from commands.engine.actions import Action, Evidence, Params, Tools
from commands.engine.actions_live import FileRemove
from commands.engine.live_helpers import (
    PROCESS_WAIT,
    elapsed_ms,
    migration_argv,
    ok_result,
    qmp_argv,
    qmp_step,
    run_xl,
    xen_state,
)
from commands.toolstacks.device_model import exit_wait, socket_process, wait_released
from commands.drivers.open_files import holders
from commands.drivers.process import DriverError, ProcessResult, run
from commands.drivers.qmp import QmpError, QmpUnavailable
from commands.drivers.xl import DomainNotFound, XlError
from commands.toolstacks.base import one_node, peer_process




class DomainDestroy(Action):
    """``xl destroy DOMID``; undone by ``xl restore -p`` of the safety image saved before.

    It ends when the device model has exited and no process has the domain's ``images``
    open (``commands.toolstacks.device_model``): only then may qemu-img touch them.
    """

    name = "domain-destroy"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "destroy", str(p["domid"])]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "restore", "-p", p["safety"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        if not _domid_exists(tools, p["domid"]):
            result = ok_result(self.argv(p, tools), absent=True)
        else:
            dm = socket_process(p["socket"]) if p.get("socket") else None
            result = run_xl(self.argv(p, tools), lambda: tools.xl.destroy(p["domid"]))
            result.detail["device_model"] = dm[0] if dm else None
            _released(p, dm, tools)
            return result
        _released(p, None, tools)
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if xen_state(tools, p["domain"]) is not None:
            return ok_result(self.undo_argv(p, tools), present=True)
        _released(p, None, tools)  # the old device model must be gone before a new one
        with tools.watch(f"restoring {p['domain']}", None, None):
            return run_xl(self.undo_argv(p, tools),
                       lambda: tools.xl.restore(p["safety"], paused=True))

    def probe(self, p: Params, tools: Tools) -> Evidence:
        gone = not _domid_exists(tools, p["domid"])
        return Evidence(gone, {"domid_gone": gone})


def _released(p: Params, dm: tuple[int, int] | None, tools: Tools) -> None:
    with tools.watch(f"waiting for the device model of {p['domain']} to exit", None, None):
        wait_released(f"domain {p['domain']!r}", dm, list(p.get("images", [])), exit_wait())


def _domid_exists(tools: Tools, domid: int) -> bool:
    try:
        tools.xl.list_short(domid)
    except DomainNotFound:
        return False
    except XlError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return True


class DomainRestore(Action):
    """``xl restore -p FILE``: the domain back from a memory image, paused; undone by destroy."""

    name = "domain-restore"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "restore", "-p", p["path"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return [tools.xl.binary, "destroy", p["domain"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        if xen_state(tools, p["domain"]) is not None:
            raise OSError(f"a domain named {p['domain']!r} exists already; not restoring")
        with tools.watch(f"restoring {p['domain']}", None, None):
            result = run_xl(self.argv(p, tools), lambda: tools.xl.restore(p["path"], paused=True))
        result.detail["domid"] = tools.xl.domid(p["domain"])
        return result

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if xen_state(tools, p["domain"]) is None:
            _released(p, None, tools)
            return ok_result(self.undo_argv(p, tools), absent=True)
        dm = socket_process(tools.xl.qmp_socket_path(tools.xl.domid(p["domain"])))
        result = run_xl(self.undo_argv(p, tools), lambda: tools.xl.destroy(p["domain"]))
        _released(p, dm, tools)
        return result

    def probe(self, p: Params, tools: Tools) -> Evidence:
        state = xen_state(tools, p["domain"])
        return Evidence(state is not None, {"state": state})


class XenSafetyTagDelete(Action):
    """Remove a revert's safety tag once the domain is restored: through the restored
    device model's QMP (the node ``one_node`` picks), since it has the image open and
    would not see a change made behind its back; with qemu-img only when no process has
    the image open. A clean-up: its failure fails nothing."""

    name = "xen-safety-tag-delete"
    reversible = False
    best_effort = True

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["qmp", f"qmp-libxl-<domid of {p['domain']}>",
                "blockdev-snapshot-delete-internal-sync", p["path"], p["tag"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        try:
            socket = tools.xl.qmp_socket_path(tools.xl.domid(p["domain"]))
        except XlError:
            socket = ""
        if socket and os.path.exists(socket):
            def effect(q: Any) -> dict[str, Any]:
                opened = [d for d in q.query_block()
                          if os.path.realpath(d.filename) == os.path.realpath(p["path"])]
                if not opened:
                    raise QmpError(f"{p['path']} is not open in the device model", "NotOpen")
                dev, _ = one_node(p.get("vdev", ""), opened)
                if p["tag"] not in dev.snapshots:
                    return {"absent": True, "node": dev.qmp_id}
                q.delete_internal(dev.qmp_id, p["tag"])
                return {"node": dev.qmp_id}

            argv = qmp_argv(socket, "blockdev-snapshot-delete-internal-sync",
                            {"file": p["path"], "name": p["tag"]})
            return qmp_step(tools, socket, argv, effect)
        open_by = holders([p["path"]])
        if open_by:
            raise OSError(f"{p['path']} is open (pid {', '.join(map(str, open_by[p['path']]))}) "
                          "but not through the domain's QMP socket: not deleting its safety "
                          f"tag {p['tag']!r} with qemu-img")
        argv = [tools.qemu_img.binary, "snapshot", "-d", p["tag"], p["path"]]
        if not tools.qemu_img.info(p["path"]).find(p["tag"]):
            return ok_result(argv, absent=True)
        return tools.qemu_img.snapshot_delete(p["path"], p["tag"])

    def probe(self, p: Params, tools: Tools) -> Evidence:
        try:
            present = bool(tools.qemu_img.info(p["path"], force_share=True).find(p["tag"]))
        except DriverError as exc:
            return Evidence(None, {"error": str(exc)})
        return Evidence(not present, {"present": present})


# ---- QEMU: stop the process, start it again ---------------------------------------------


def socket_pid(socket: str) -> int | None:
    """The pid serving ``socket``, or None when nothing answers there."""
    try:
        return peer_process(socket)[0]
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def launch(argv: list[str], socket: str, tools: Tools) -> ProcessResult:
    """Start a QEMU (its argv has ``-daemonize``) and wait until its QMP socket answers."""
    if socket_pid(socket) is not None:
        raise OSError(f"a process answers on {socket} already; not starting another QEMU")
    result = run(argv, timeout=PROCESS_WAIT)
    if not result.ok:
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        raise DriverError(lines[-1] if lines else f"QEMU exited with {result.returncode}",
                          result)
    deadline = time.monotonic() + PROCESS_WAIT
    while (pid := socket_pid(socket)) is None:
        if time.monotonic() > deadline:
            raise OSError(f"the new QEMU's QMP socket {socket} did not answer in time")
        time.sleep(0.02)
    return ProcessResult(result.argv, 0, "", result.stderr, result.duration_ms, {"pid": pid})


def quit_qemu(socket: str, tools: Tools, pid: int | None) -> dict[str, Any]:
    """``quit`` the QEMU on ``socket`` and wait until the process is gone."""
    serving = socket_pid(socket)
    if serving is None or (pid is not None and serving != pid):
        return {"absent": True}
    try:
        tools.qmp(socket).execute("quit")
    except QmpUnavailable:
        pass  # it hung up while quitting
    deadline = time.monotonic() + PROCESS_WAIT
    while _alive(serving):
        if time.monotonic() > deadline:
            raise OSError(f"QEMU pid {serving} did not exit within {PROCESS_WAIT:g}s of quit")
        time.sleep(0.01)
    return {"pid": serving}


class QemuQuit(Action):
    """``quit`` the running QEMU (its disks become free for qemu-img).

    Undone by starting it again as it was (``resume_argv``: its current disk files,
    ``-incoming defer``) and loading the safety memory image taken just before: the
    guest is back exactly, paused until the pause step's undo resumes it.
    """

    name = "qemu-quit"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "quit")

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return [*p["resume_argv"], ";",
                *migration_argv(p["socket"], "migrate-incoming", p["resume_from"])]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        start = time.perf_counter()
        detail = quit_qemu(p["socket"], tools, p.get("pid"))
        return ProcessResult(self.argv(p, tools), 0, "", "", elapsed_ms(start), detail)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if socket_pid(p["socket"]) is not None:
            return ok_result(self.undo_argv(p, tools), running=True)
        started = launch(p["resume_argv"], p["socket"], tools)
        loaded = qmp_step(tools, p["socket"], self.undo_argv(p, tools),
                           lambda q: {"status": q.migrate_incoming(p["resume_from"]).status})
        loaded.detail["pid"] = started.detail.get("pid")
        return loaded

    def probe(self, p: Params, tools: Tools) -> Evidence:
        pid = p.get("pid")
        gone = pid is not None and not _alive(int(pid))
        return Evidence(gone if pid is not None else None, {"pid": pid, "gone": gone})


class QemuLaunch(Action):
    """Start QEMU from a recorded command line (``-daemonize``); undone by ``quit``."""

    name = "qemu-launch"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return list(p["argv"])

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return qmp_argv(p["socket"], "quit")

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        return launch(list(p["argv"]), p["socket"], tools)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        start = time.perf_counter()
        detail = quit_qemu(p["socket"], tools, None)
        stopped = []
        for pid in starting(p["argv"]):   # still starting: the guest never ran in it
            os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
        deadline = time.monotonic() + PROCESS_WAIT
        while any(_alive(pid) for pid in stopped) and time.monotonic() < deadline:
            time.sleep(0.01)
        if stopped:
            detail["killed_while_starting"] = stopped
        return ProcessResult(self.undo_argv(p, tools), 0, "", "", elapsed_ms(start), detail)

    def probe(self, p: Params, tools: Tools) -> Evidence:
        """Whether the QEMU answers; one still starting (the launching process was killed
        while it started) is waited for, so it cannot take the socket after recovery."""
        deadline = time.monotonic() + PROCESS_WAIT
        while (pid := socket_pid(p["socket"])) is None:
            pending = starting(p["argv"])
            if not pending:
                return Evidence(False, {"pid": None})
            if time.monotonic() > deadline:
                return Evidence(None, {"pid": None, "starting": pending})
            time.sleep(0.02)
        return Evidence(True, {"pid": pid})


def starting(argv: list[str]) -> list[int]:
    """Live processes whose command line is exactly ``argv`` (a QEMU being launched)."""
    wanted = b"".join(a.encode() + b"\0" for a in argv)
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                if handle.read() != wanted:
                    continue
        except OSError:
            continue
        if _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class OverlaySwap(Action):
    """Move the current overlay aside and put a fresh one on the snapshot's base.

    Reverting an external snapshot: what was written since is set aside (removed at the
    end), the disk starts again from the base as it was at the snapshot. Undone by
    putting the old overlay back. No longer planned (a revert now keeps the old overlay,
    a leaf); kept so that ``recover`` can finish a revert an earlier xlsnap recorded.
    """

    name = "overlay-swap"

    def argv(self, p: Params, tools: Tools) -> list[str]:
        return ["rename", p["overlay"], p["aside"], ";", tools.qemu_img.binary, "create",
                "-q", "-f", "qcow2", "-F", p["base_format"], "-b", p["base"], p["overlay"]]

    def undo_argv(self, p: Params, tools: Tools) -> list[str]:
        return ["rename", p["aside"], p["overlay"]]

    def do(self, p: Params, tools: Tools) -> ProcessResult:
        overlay, aside = p["overlay"], p["aside"]
        if os.path.lexists(aside):
            raise FileExistsError(f"{aside} exists already")
        os.rename(overlay, aside)
        created = tools.qemu_img.create_overlay(p["base"], p["base_format"], overlay)
        return ProcessResult(self.argv(p, tools), 0, "", created.stderr, created.duration_ms)

    def undo(self, p: Params, tools: Tools) -> ProcessResult:
        if os.path.lexists(p["aside"]):
            os.replace(p["aside"], p["overlay"])
        return ok_result(self.undo_argv(p, tools))

    def probe(self, p: Params, tools: Tools) -> Evidence:
        aside = os.path.lexists(p["aside"])
        return Evidence(aside, {"aside_exists": aside})


class OverlayAsideRemove(FileRemove):
    """Remove the overlay a revert set aside: a clean-up whose failure fails nothing."""

    name = "overlay-aside-remove"
    best_effort = True
    param = "aside"


#: The actions of this module, for ``commands.engine.step_registry``.
RESTART_ACTIONS: tuple[Action, ...] = (
    XenSafetyTagDelete(), DomainDestroy(), DomainRestore(), QemuQuit(), QemuLaunch(),
    OverlaySwap(), OverlayAsideRemove())
