"""The helpers of the live actions: how QMP and xl calls are run and recorded as steps."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from commands.drivers.process import DriverError, ProcessResult
from commands.drivers.qmp import MIGRATION_FD, Qmp, QmpError, UnsafePath
from commands.drivers.xl import DomainNotFound, XlError
from commands.engine.actions import Evidence, Tools

#: Seconds to wait for a QEMU to exit after ``quit``, or for a new one's QMP socket.
PROCESS_WAIT = 30.0


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


def remove_file_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
