"""A small synchronous facade over QEMU's own QMP library (``qemu.qmp``).

Each public call runs its commands with timeouts over a ``QmpChannel`` (its own,
connecting per call, or one a command holds open: see ``qmp_channel``). Every command
sent is appended to ``Qmp.log`` (a list of dicts) so a handler can record the exact
commands in the ledger. Facts this module relies on were checked against QEMU 7.2 (see
the tests in tests/drivers/): e.g. ``blockdev-snapshot-sync`` silently overwrites an
existing overlay file, and a failed ``snapshot-load`` leaves the VM stopped in
``restore-vm``.

    qmp = Qmp("/run/vm/qmp.sock")
    qmp.stop()
    qmp.migrate_to_file("/var/lib/xlsnap/web/mem.save")   # fd passed to QEMU: no shell
    qmp.snapshot_internal(["drv0", "drv1"], "before-upgrade")
    qmp.cont()
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from commands.drivers.qmp_channel import DEFAULT_CONNECT_TIMEOUT, QmpChannel
from commands.drivers.qmp_errors import (
    AmbiguousTag,
    QmpBusy,
    QmpError,
    QmpJobFailed,
    QmpMigrationFailed,
    QmpTimeout,
    QmpUnavailable,
    UnsafePath,
)

if TYPE_CHECKING:  # qemu.qmp loads on first use: most commands never talk QMP
    from qemu.qmp import QMPClient

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "MIGRATION_FD", "BlockDevice", "Migration", "Overlay",
           "Qmp", "QmpBusy", "QmpChannel", "QmpError", "QmpJobFailed", "QmpMigrationFailed",
           "QmpTimeout", "QmpUnavailable", "UnsafePath", "VmStatus", "check_absolute"]

T = TypeVar("T")

DEFAULT_COMMAND_TIMEOUT = 30.0
DEFAULT_JOB_TIMEOUT = 600.0
POLL_INTERVAL = 0.02
#: The name under which a memory image's file descriptor is handed to QEMU (``getfd``).
MIGRATION_FD = "xlsnap-migration"


class VmStatus(NamedTuple):
    """``query-status``: QEMU's run state (``running``, ``paused``, ``restore-vm``...)."""

    status: str
    running: bool


class BlockDevice(NamedTuple):
    """One drive with a medium, from ``query-block``."""

    device: str
    node_name: str
    filename: str
    format: str
    read_only: bool
    backing_file: str | None
    snapshots: tuple[str, ...]
    qdev: str = ""
    snapshot_ids: tuple[str, ...] = ()   # the qcow2 ID of each of ``snapshots``, same order

    @property
    def qmp_id(self) -> str:
        """What QMP's block commands accept for it: the backend name, or the node name
        when the backend is anonymous (``"device": ""``; a QOM path in ``qdev`` is not
        accepted: Xen's qdisk disks, ``-device ...,drive=NODE``)."""
        return self.device or self.node_name


class Overlay(NamedTuple):
    """One ``blockdev-snapshot-sync`` action: ``node_name`` gets a new qcow2 on top."""

    node_name: str
    snapshot_file: str
    snapshot_node_name: str


class Migration(NamedTuple):
    """The end of a migration to or from a file."""

    status: str
    path: str
    total_time_ms: int | None
    transferred: int | None


def check_absolute(path: str) -> str:
    """Return ``path`` if it is absolute, else raise ``UnsafePath``."""
    if not os.path.isabs(path):
        raise UnsafePath(f"refusing path {path!r}: it must be absolute")
    return path


class Qmp:
    """Synchronous QMP client for one socket; ``log`` lists every command sent.

    It talks over ``channel`` (shared, e.g. held for a whole command; its connect
    timeout and client name then apply) or a channel of its own that connects per call.
    """

    def __init__(self, socket_path: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 command_timeout: float = DEFAULT_COMMAND_TIMEOUT, name: str = "xlsnap",
                 channel: QmpChannel | None = None) -> None:
        self.socket_path = str(socket_path)
        self.command_timeout = command_timeout
        self.channel = channel or QmpChannel(self.socket_path,
                                             connect_timeout=connect_timeout, name=name)
        self.log: list[dict[str, Any]] = []

    # -- plain commands -------------------------------------------------------------------

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run one QMP command and return its ``return`` value (escape hatch for tests)."""
        return self._session(lambda s: s.execute(command, arguments))

    def query_status(self) -> VmStatus:
        reply = self.execute("query-status")
        return VmStatus(str(reply["status"]), bool(reply["running"]))

    def query_block(self) -> list[BlockDevice]:
        """Every drive that has a medium, with node names, files, formats, snapshots."""
        return [_block_device(d) for d in self.execute("query-block") if d.get("inserted")]

    def stop(self) -> None:
        self.execute("stop")

    def cont(self) -> None:
        self.execute("cont")

    def human_monitor_command(self, command_line: str) -> str:
        """Run an HMP command; note that ``qemu-io`` prints to QEMU's stdout, not here."""
        return str(self.execute("human-monitor-command", {"command-line": command_line}))

    # -- disk snapshots -------------------------------------------------------------------

    def snapshot_internal(self, devices: Sequence[str], name: str) -> None:
        """Take internal snapshot ``name`` of every device (or node) at once, all or none."""
        self._transaction([{"type": "blockdev-snapshot-internal-sync",
                            "data": {"device": d, "name": name}} for d in devices])

    def delete_internal(self, device: str, name: str) -> dict[str, Any]:
        """Delete internal snapshot ``name`` of one device; returns what was deleted."""
        return dict(self.execute("blockdev-snapshot-delete-internal-sync",
                                 {"device": device, "name": name}))

    def snapshot_external(self, overlays: Sequence[Overlay]) -> None:
        """Put a new qcow2 overlay on top of each node, all or none.

        QEMU creates each overlay file and would silently overwrite an existing one, so
        existing files and relative paths are refused before anything is sent.
        """
        for o in overlays:
            if not os.path.isabs(o.snapshot_file):
                raise UnsafePath(f"overlay path must be absolute: {o.snapshot_file!r}")
            if os.path.lexists(o.snapshot_file):
                raise FileExistsError(f"overlay file already exists: {o.snapshot_file}")
        self._transaction([{"type": "blockdev-snapshot-sync", "data": {
            "node-name": o.node_name, "snapshot-file": o.snapshot_file,
            "snapshot-node-name": o.snapshot_node_name, "format": "qcow2"}} for o in overlays])

    def _transaction(self, actions: list[dict[str, Any]]) -> None:
        self.execute("transaction", {"actions": actions})

    # -- whole-VM internal snapshots (jobs) -----------------------------------------------

    def snapshot_save(self, tag: str, vmstate: str, devices: Sequence[str],
                      timeout: float = DEFAULT_JOB_TIMEOUT) -> None:
        """Save RAM (into node ``vmstate``) and disks ``devices`` (node names) as ``tag``."""
        self._job("snapshot-save", {"tag": tag, "vmstate": vmstate,
                                    "devices": list(devices)}, timeout)

    def snapshot_load(self, tag: str, vmstate: str, devices: Sequence[str],
                      timeout: float = DEFAULT_JOB_TIMEOUT) -> None:
        """Load ``tag``; on failure QEMU leaves the VM stopped (``restore-vm``): cont it.

        Refused (``AmbiguousTag``) when ``tag`` is also the ID of another snapshot on one
        of ``devices``: QEMU would load that one instead.
        """
        clashes = tag_clashes(self.query_block(), tag, devices)
        if clashes:
            raise AmbiguousTag(f"snapshot tag {tag!r} is also the ID of another snapshot "
                               f"({'; '.join(clashes)}); snapshot-load would load that one",
                               "AmbiguousTag", "snapshot-load", {"tag": tag})
        self._job("snapshot-load", {"tag": tag, "vmstate": vmstate,
                                    "devices": list(devices)}, timeout)

    def snapshot_delete(self, tag: str, devices: Sequence[str],
                        timeout: float = DEFAULT_JOB_TIMEOUT) -> None:
        """Delete ``tag`` from ``devices``; a missing tag is not an error in QEMU 7.2."""
        self._job("snapshot-delete", {"tag": tag, "devices": list(devices)}, timeout)

    def _job(self, command: str, arguments: dict[str, Any], timeout: float) -> None:
        job_id = f"xlsnap-{command}-{uuid.uuid4().hex[:8]}"

        async def steps(s: _Session) -> None:
            await s.execute(command, {"job-id": job_id, **arguments})
            started = self.log[-1]
            job = await s.poll(lambda: _find_job(s, job_id),
                               lambda j: j is not None and j.get("status") == "concluded",
                               timeout, f"{command} job {job_id}")
            started["job"] = {k: job[k] for k in ("status", "error") if k in job}
            await s.execute("job-dismiss", {"id": job_id})
            if job and job.get("error"):
                raise QmpJobFailed(str(job["error"]), "JobFailed", command,
                                   {"job-id": job_id, **arguments})

        self._session(steps, timeout)

    # -- memory to and from a file --------------------------------------------------------

    def migrate_to_file(self, path: str, timeout: float = DEFAULT_JOB_TIMEOUT) -> Migration:
        """Write the VM's state to a new file (mode 0600) and wait for the end.

        The file is created here (``O_EXCL``, never through a link) and its descriptor
        handed to QEMU (``getfd``, then ``migrate`` to ``fd:``): no shell and no helper
        process, and QEMU writes straight to the file (about half the pause of
        ``exec:cat`` for 256 MiB). Stop the VM first for a consistent image; QEMU ends in
        ``postmigrate``: ``cont``. A file left empty by a failure is removed. (Hashing
        it while QEMU writes it was tried: it lengthened a 256 MiB guest's pause by ~80 ms,
        so the image is hashed after the guest runs again.)
        """
        check_absolute(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            return self._migrate("migrate", fd, path, timeout)
        except BaseException:
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_size == 0:
                    os.unlink(path)  # nothing was written: leave no trace; partial files stay
            raise
        finally:
            os.close(fd)

    def migrate_incoming(self, path: str, timeout: float = DEFAULT_JOB_TIMEOUT) -> Migration:
        """Load a state file into a QEMU started with ``-incoming defer``; it ends paused.

        The file is opened here (not through a link) and its descriptor handed to QEMU.
        """
        check_absolute(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            raise FileNotFoundError(f"no memory image at {path}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FileNotFoundError(f"no memory image at {path} (not a regular file)")
            return self._migrate("migrate-incoming", fd, path, timeout)
        finally:
            os.close(fd)

    def _migrate(self, command: str, fd: int, path: str, timeout: float) -> Migration:
        arguments = {"uri": f"fd:{MIGRATION_FD}"}

        async def steps(s: _Session) -> Migration:
            await s.pass_fd(fd, MIGRATION_FD)
            try:
                await s.execute(command, arguments)
            except QmpUnavailable:
                raise
            except QmpError:  # not started: QEMU still holds the descriptor
                with contextlib.suppress(QmpError):
                    await s.execute("closefd", {"fdname": MIGRATION_FD})
                raise
            try:
                info = await s.poll(lambda: s.execute("query-migrate", poll=True),
                                    lambda i: i.get("status") in ("completed", "failed",
                                                                  "cancelled"),
                                    timeout, f"{command} with {path}")
            except QmpTimeout:
                if command == "migrate":
                    await s.execute("migrate_cancel")
                raise
            if info["status"] != "completed":
                raise QmpMigrationFailed(str(info.get("error-desc") or info["status"]),
                                         "MigrationFailed", command, arguments)
            if command == "migrate":
                # "completed" comes before QEMU leaves ``finish-migrate``, and until then
                # ``cont`` is refused ("Migration is not finalized yet"): wait for it.
                await s.poll(lambda: s.execute("query-status", poll=True),
                             lambda st: st.get("status") != "finish-migrate",
                             timeout, f"the end of {command} with {path}")
            ram = info.get("ram") or {}
            return Migration(info["status"], path, info.get("total-time"),
                             ram.get("transferred"))

        return self._session(steps, timeout)

    # -- connection machinery -------------------------------------------------------------

    def _session(self, steps: Callable[[_Session], Awaitable[T]], budget: float = 0.0) -> T:
        """Run ``steps`` over the channel, everything within its timeouts."""
        total = self.channel.connect_timeout + self.command_timeout * 4 + budget
        return self.channel.run(lambda client: steps(_Session(client, self)), total)

    def _record(self, entry: dict[str, Any]) -> None:
        last = self.log[-1] if self.log else None
        if (entry.get("poll") and last and last.get("poll")
                and last["execute"] == entry["execute"] and last["ok"] == entry["ok"]):
            last["count"] += 1  # consecutive polls are folded into one entry
            last["duration_ms"] = round(last["duration_ms"] + entry["duration_ms"], 3)
            return
        self.log.append(entry)


class _Session:
    """One open connection: executes, logs and types the errors of each command."""

    def __init__(self, client: QMPClient, owner: Qmp) -> None:
        self.client = client
        self.owner = owner

    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      poll: bool = False) -> Any:
        entry: dict[str, Any] = {"execute": command, "arguments": arguments or {}, "ok": False}
        if poll:
            entry.update(poll=True, count=1)
        if command == "quit":
            self.owner.channel.ending()
        import asyncio

        from qemu.qmp import ExecInterruptedError, ExecuteError, QMPError

        start = time.perf_counter()
        try:
            reply = await asyncio.wait_for(self.client.execute(command, arguments),
                                           self.owner.command_timeout)
            entry["ok"] = True
            return reply
        except ExecuteError as exc:
            entry.update(error_class=exc.error_class, desc=str(exc))
            raise QmpError(str(exc), exc.error_class, command, arguments) from None
        except TimeoutError:
            entry.update(error_class="Timeout", desc="no reply")
            raise QmpTimeout(f"{command}: no reply within {self.owner.command_timeout:g}s",
                             "Timeout", command, arguments) from None
        except (ExecInterruptedError, QMPError, OSError, EOFError) as exc:
            entry.update(error_class="Disconnected", desc=str(exc))
            raise QmpUnavailable(f"{command}: connection lost ({exc or type(exc).__name__}); "
                                 "outcome unknown", "Disconnected", command, arguments) from None
        finally:
            entry["duration_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
            self.owner._record(entry)

    async def pass_fd(self, fd: int, name: str) -> None:
        """Hand QEMU a duplicate of ``fd`` (``SCM_RIGHTS``) and name it (``getfd``)."""
        from qemu.qmp import QMPError

        try:
            self.client.send_fd_scm(fd)
        except (QMPError, OSError) as exc:
            raise QmpUnavailable(f"cannot pass a file descriptor on {self.owner.socket_path}: "
                                 f"{exc}", "Disconnected", "getfd", {"fdname": name}) from None
        await self.execute("getfd", {"fdname": name})

    async def poll(self, query: Callable[[], Awaitable[Any]], done: Callable[[Any], bool],
                   timeout: float, what: str) -> Any:
        """Run ``query`` until ``done`` says so, or raise QmpTimeout after ``timeout``."""
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            value = await query()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise QmpTimeout(f"{what} did not finish within {timeout:g}s", "Timeout")
            await asyncio.sleep(POLL_INTERVAL)


async def _find_job(s: _Session, job_id: str) -> dict[str, Any] | None:
    jobs = await s.execute("query-jobs", poll=True)
    return next((j for j in jobs if j.get("id") == job_id), None)


def tag_clashes(devices: Sequence[BlockDevice], tag: str, wanted: Sequence[str]) -> list[str]:
    """Where ``tag`` names one snapshot but is the ID of another, on the ``wanted`` disks.

    Each clash reads ``NODE: ID TAG is NAME``. Commands that find a snapshot by ID
    before name (``snapshot-load``, ``-loadvm``) would pick that other snapshot there.
    """
    clashes = []
    for dev in devices:
        if dev.device not in wanted and dev.node_name not in wanted:
            continue
        for sid, name in zip(dev.snapshot_ids, dev.snapshots):
            if sid == tag and name != tag:
                clashes.append(f"{dev.node_name or dev.device}: ID {sid} is {name!r}")
    return clashes


def _block_device(raw: dict[str, Any]) -> BlockDevice:
    ins = raw["inserted"]
    image = ins.get("image") or {}
    return BlockDevice(
        device=str(raw.get("device", "")), node_name=str(ins.get("node-name", "")),
        filename=str(ins.get("file", "")), format=str(ins.get("drv", "")),
        read_only=bool(ins.get("ro", False)),
        backing_file=image.get("full-backing-filename") or image.get("backing-filename"),
        snapshots=tuple(str(s["name"]) for s in image.get("snapshots", [])),
        qdev=str(raw.get("qdev", "")),
        snapshot_ids=tuple(str(s.get("id", "")) for s in image.get("snapshots", [])),
    )
