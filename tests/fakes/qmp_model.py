"""An in-memory QEMU behind a QMP socket: the commands xlsnap sends, answered as QEMU 7.2.

It replaces the connection, not ``Qmp``: ``model_qmp`` gives a real ``commands.drivers.qmp.Qmp``
whose channel hands its steps a ``MonitorModel`` in place of ``qemu.qmp.QMPClient``
(``execute`` and ``send_fd_scm``), so the driver's transactions, job polling, migration
and error typing run as they do against QEMU. Replies and errors follow QEMU's schema and
code: ``query-status`` (qapi/run-state.json StatusInfo), ``query-block`` (qapi/block.json
BlockInfo; ``inserted.image.snapshots`` as SnapshotInfo), ``transaction`` all-or-nothing
with ``blockdev-snapshot-internal-sync`` / ``blockdev-snapshot-sync`` (qapi/transaction.json;
errors as block/qapi-sysemu.c and blockdev.c word them), ``snapshot-save/-load/-delete``
and ``block-commit`` as jobs (qapi/job.json: ``query-jobs``, ``job-complete``,
``job-dismiss``), ``migrate`` to ``fd:NAME`` after ``getfd`` (migration/migration.c: the
VM ends in ``postmigrate``). Disk content and internal tags live in the shared
``ImageModel`` (tests/fakes/qemu_img_model.py), so what qemu-img sees after QMP is the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from qemu.qmp import ExecuteError
from qemu.qmp.message import Message
from qemu.qmp.models import ErrorResponse

from commands.drivers.qmp import Qmp
from commands.drivers.qmp_channel import QmpChannel
from commands.drivers.qmp_errors import QmpBusy
from tests.fakes.qemu_img_model import Image, ImageModel


@dataclass
class Drive:
    """One ``-drive``/``-blockdev`` of the VM: its backend name, node and current file."""

    device: str
    node: str
    file: str
    read_only: bool = False
    backing: str | None = None


@dataclass
class MonitorModel:
    """One QEMU: run state, RAM (a string), drives over ``images``, jobs, passed fds."""

    images: ImageModel
    drives: list[Drive]
    status: str = "running"
    ram: str = "ram-0"
    uuid: str = "00000000-0000-0000-0000-000000000000"
    memory: int = 256 << 20
    #: QMP command names (or transaction action types) that fail with GenericError.
    fail_on: set[str] = field(default_factory=set)
    #: Answer no greeting: another client holds the socket (``QmpBusy`` from the channel).
    busy: bool = False
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    vm_states: dict[tuple[str, str], str] = field(default_factory=dict)  # (node, tag) -> RAM
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    fds: dict[str, int] = field(default_factory=dict)
    _passed: list[int] = field(default_factory=list)
    _migration: dict[str, Any] = field(default_factory=lambda: {})

    # -- what QMPClient offers ------------------------------------------------------------

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        args = dict(arguments or {})
        self.calls.append((command, args))
        if command in self.fail_on:
            self._refuse(command, args, f"{command}: injected failure")
        handler: Callable[[dict[str, Any]], Any] | None = getattr(
            self, "_" + command.replace("-", "_"), None)
        if handler is None:
            self._refuse(command, args, f"The command {command} has not been found",
                         "CommandNotFound")
        return handler(args)

    def send_fd_scm(self, fd: int) -> None:
        self._passed.append(os.dup(fd))

    # -- errors as QEMU sends them --------------------------------------------------------

    @staticmethod
    def _refuse(command: str, args: dict[str, Any], desc: str,
                cls: str = "GenericError") -> None:
        raw = {"error": {"class": cls, "desc": desc}}
        raise ExecuteError(ErrorResponse(raw), Message({"execute": command, "arguments": args}),
                           Message(raw))

    def drive(self, name: str, command: str = "") -> Drive:
        """The drive whose backend or node is ``name`` (QEMU's ``bdrv_lookup_bs``)."""
        for d in self.drives:
            if name in (d.device, d.node):
                return d
        self._refuse(command, {}, f"Cannot find device='{name}' nor node-name='{name}'")
        raise AssertionError

    def image(self, d: Drive) -> Image:
        return self.images.images[d.file]

    # -- queries --------------------------------------------------------------------------

    def _query_status(self, _a: dict[str, Any]) -> dict[str, Any]:
        return {"status": self.status, "running": self.status == "running", "singlestep": False}

    def _query_uuid(self, _a: dict[str, Any]) -> dict[str, Any]:
        return {"UUID": self.uuid}

    def _query_memory_size_summary(self, _a: dict[str, Any]) -> dict[str, Any]:
        return {"base-memory": self.memory, "plugged-memory": 0}

    def _query_block(self, _a: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for d in self.drives:
            image = self.image(d)
            snaps = [{"id": str(n), "name": tag, "date-sec": 0, "date-nsec": 0,
                      "vm-clock-sec": 0, "vm-clock-nsec": 0, "icount": 0,
                      "vm-state-size": len(self.vm_states.get((d.node, tag), ""))}
                     for n, (tag, _) in enumerate(image.tags, 1)]
            info: dict[str, Any] = {"filename": d.file, "format": image.format,
                                    "virtual-size": 1 << 20, "snapshots": snaps}
            if d.backing:
                info.update({"backing-filename": d.backing,
                             "full-backing-filename": d.backing})
            found.append({"device": d.device, "qdev": f"/machine/peripheral/{d.node}",
                          "locked": False, "removable": False, "type": "unknown",
                          "inserted": {"node-name": d.node, "file": d.file,
                                       "drv": image.format, "ro": d.read_only,
                                       "image": info}})
        return found

    def _query_jobs(self, _a: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(job) for job in self.jobs.values()]

    def _query_migrate(self, _a: dict[str, Any]) -> dict[str, Any]:
        return dict(self._migration)

    def _query_migrate_parameters(self, _a: dict[str, Any]) -> dict[str, Any]:
        return {"max-bandwidth": 134217728}

    def _migrate_set_parameters(self, _a: dict[str, Any]) -> dict[str, Any]:
        return {}

    # -- run state ------------------------------------------------------------------------

    def _stop(self, _a: dict[str, Any]) -> dict[str, Any]:
        if self.status != "inmigrate":
            self.status = "paused"
        return {}

    def _cont(self, a: dict[str, Any]) -> dict[str, Any]:
        if self.status == "inmigrate":   # qmp_cont, monitor/qmp-cmds.c
            self._refuse("cont", a, "Migration is expected")
        self.status = "running"
        return {}

    # -- disks ----------------------------------------------------------------------------

    def _transaction(self, a: dict[str, Any]) -> dict[str, Any]:
        """Check every action first: one refused action leaves every disk as it was."""
        actions = a["actions"]
        for act in actions:
            kind, data = act["type"], act["data"]
            if kind in self.fail_on:
                self._refuse("transaction", a, f"{kind}: injected failure")
            if kind == "blockdev-snapshot-internal-sync":
                d = self.drive(data["device"], "transaction")
                if self.image(d).format != "qcow2":
                    self._refuse("transaction", a, f"Block format '{self.image(d).format}' "
                                 f"used by device '{data['device']}' does not support "
                                 "internal snapshots")
                if any(t == data["name"] for t, _ in self.image(d).tags):
                    self._refuse("transaction", a,
                                 f"Snapshot with name '{data['name']}' already exists")
            elif kind == "blockdev-snapshot-sync":
                self.drive(data["node-name"], "transaction")
            else:
                self._refuse("transaction", a, f"Invalid parameter '{kind}'")
        for act in actions:
            data = act["data"]
            if act["type"] == "blockdev-snapshot-internal-sync":
                image = self.image(self.drive(data["device"]))
                image.tags.append((data["name"], image.content))
            else:
                d = self.drive(data["node-name"])
                with open(data["snapshot-file"], "w"):   # QEMU creates (overwrites) the file
                    pass
                self.images.images[data["snapshot-file"]] = Image("qcow2", self.image(d).content)
                d.backing, d.file, d.node = d.file, data["snapshot-file"], data[
                    "snapshot-node-name"]
        return {}

    def _blockdev_snapshot_delete_internal_sync(self, a: dict[str, Any]) -> dict[str, Any]:
        d = self.drive(a["device"], "blockdev-snapshot-delete-internal-sync")
        image = self.image(d)
        named = [t for t in image.tags if t[0] == a["name"]]
        if not named:
            self._refuse("blockdev-snapshot-delete-internal-sync", a,
                         f"Snapshot with id 'null' and name '{a['name']}' does not exist on "
                         f"device '{a['device']}'")
        image.tags.remove(named[0])
        self.vm_states.pop((d.node, a["name"]), None)   # the RAM goes with the tag
        return {"id": "1", "name": a["name"], "date-sec": 0, "date-nsec": 0,
                "vm-clock-sec": 0, "vm-clock-nsec": 0, "vm-state-size": 0}

    # -- jobs (qapi/job.json): they conclude at once here ---------------------------------

    def _job(self, a: dict[str, Any], kind: str, effect: Callable[[], None],
             status: str = "concluded") -> dict[str, Any]:
        job: dict[str, Any] = {"id": a["job-id"], "type": kind, "status": status,
                               "current-progress": 1, "total-progress": 1}
        try:
            effect()
        except ValueError as exc:
            job["error"] = str(exc)
        self.jobs[a["job-id"]] = job
        return {}

    def _snapshot_save(self, a: dict[str, Any]) -> dict[str, Any]:
        def save() -> None:
            drives = [self.drive(n) for n in a["devices"]]
            if any(t == a["tag"] for d in drives for t, _ in self.image(d).tags):
                raise ValueError(f"Snapshot '{a['tag']}' already exists in one or more devices")
            for d in drives:
                self.image(d).tags.append((a["tag"], self.image(d).content))
            self.vm_states[(a["vmstate"], a["tag"])] = self.ram
        return self._job(a, "snapshot-save", save)

    def _snapshot_load(self, a: dict[str, Any]) -> dict[str, Any]:
        def load() -> None:
            drives = [self.drive(n) for n in a["devices"]]
            if (a["vmstate"], a["tag"]) not in self.vm_states:
                self.status = "restore-vm"   # load_snapshot stops the VM first
                raise ValueError(f"Snapshot '{a['tag']}' does not exist in one or more devices")
            for d in drives:
                self.image(d).content = dict(self.image(d).tags)[a["tag"]]
            self.ram = self.vm_states[(a["vmstate"], a["tag"])]
        return self._job(a, "snapshot-load", load)

    def _snapshot_delete(self, a: dict[str, Any]) -> dict[str, Any]:
        def delete() -> None:
            for d in (self.drive(n) for n in a["devices"]):
                image = self.image(d)
                image.tags[:] = [t for t in image.tags if t[0] != a["tag"]]
                self.vm_states.pop((d.node, a["tag"]), None)
        return self._job(a, "snapshot-delete", delete)

    def _block_commit(self, a: dict[str, Any]) -> dict[str, Any]:
        """An active commit: ``ready``, then ``job-complete`` drops the top overlay."""
        d = self.drive(a["device"], "block-commit")
        self.jobs[a["job-id"]] = {"id": a["job-id"], "type": "commit", "status": "ready",
                                  "current-progress": 1, "total-progress": 1,
                                  "drive": d}
        return {}

    def _job_complete(self, a: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs[a["id"]]
        d: Drive = job.pop("drive")
        assert d.backing is not None
        self.images.images[d.backing].content = self.image(d).content
        d.file, d.backing = d.backing, None
        job["status"] = "concluded"
        return {}

    def _job_dismiss(self, a: dict[str, Any]) -> dict[str, Any]:
        self.jobs.pop(a["id"])
        return {}

    # -- memory to a file -----------------------------------------------------------------

    def _getfd(self, a: dict[str, Any]) -> dict[str, Any]:
        self.fds[a["fdname"]] = self._passed.pop()
        return {}

    def _closefd(self, a: dict[str, Any]) -> dict[str, Any]:
        os.close(self.fds.pop(a["fdname"]))
        return {}

    def _migrate(self, a: dict[str, Any]) -> dict[str, Any]:
        fd = self.fds.pop(a["uri"].removeprefix("fd:"))
        try:
            data = b"QEVM" + self.ram.encode()
            os.write(fd, data)
        finally:
            os.close(fd)
        self.status = "postmigrate"
        self._migration = {"status": "completed", "total-time": 1,
                           "ram": {"transferred": len(data)}}
        return {}


class ModelChannel(QmpChannel):
    """A channel whose conversation is with ``model`` (no socket, no greeting wait)."""

    def __init__(self, socket_path: str, model: MonitorModel) -> None:
        super().__init__(socket_path)
        self.model = model

    def run(self, steps: Callable[[Any], Awaitable[Any]], total: float) -> Any:
        if self.model.busy:   # as QmpChannel._connect when no greeting comes
            raise QmpBusy(f"no QMP greeting on {self.socket_path} within 5s "
                          "(busy with another client?)", "Timeout")
        return asyncio.run(steps(self.model))


def model_qmp(models: dict[str, MonitorModel]) -> Callable[[str], Qmp]:
    """A ``Tools.qmp`` factory: the real ``Qmp`` over the model of each socket path."""
    return lambda path: Qmp(path, channel=ModelChannel(path, models[path]))
