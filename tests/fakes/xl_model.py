"""An in-memory ``xl`` (Xen 4.17): the real ``Xl`` driver over a model instead of a process.

``XlModel`` replaces ``Xl._run`` (commands/drivers/xl.py): each call gets the stdout,
stderr and exit code real xl gives, so the driver's parsing and error typing run as
they do on a Xen host. The semantics are those of the process fake tests/fakes/xl (which
cites tools/xl/xl_info.c, xl_vmcontrol.c, xl_saverestore.c and xl_cmdtable.c): the short
``list`` table and ``list -l`` JSON (``{"domid", "config": {"c_info", "b_info",
"disks"}}``); Xen's pause count (``unpause`` of an unpaused domain is EINVAL, and xl 4.17
exits 0 from ``pause``/``unpause`` even when libxl failed, a ``libxl: error:`` line tells);
``save -p`` leaves the domain paused (xl_saverestore.c:155-158), without -p/-c it is
destroyed; ``restore`` makes a new domid (never reused) and refuses a name that exists.
Each domain's device model is a ``MonitorModel`` at ``<qmp_dir>/qmp-libxl-<domid>``;
``save`` of an HVM domain stops it and ``cont``s it when the domain survives, ``unpause``
sends it ``cont`` first (libxl_domain.c:649-671), ``restore`` gives the new domain one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from commands.drivers.process import ProcessResult
from commands.drivers.xl import Xl, _error
from tests.fakes.qmp_model import MonitorModel

MAGIC = b"Xen saved domain, xl format\n \0 \r"


@dataclass
class XenDomain:
    """One domain as the model's hypervisor holds it."""

    name: str
    domid: int
    uuid: str
    disks: list[tuple[str, str]]          # (target, vdev), qcow2, writable, qdisk
    model: MonitorModel                   # its device model
    pause_count: int = 0
    memory_mib: int = 256
    type: str = "hvm"

    def config(self) -> dict[str, Any]:
        return {"c_info": {"type": self.type, "name": self.name, "uuid": self.uuid},
                "b_info": {"max_memkb": self.memory_mib * 1024,
                           "target_memkb": self.memory_mib * 1024},
                "disks": [{"pdev_path": t, "vdev": v, "format": "qcow2", "readwrite": 1}
                          for t, v in self.disks]}


@dataclass
class XlModel(Xl):
    """xl over ``domains``; ``qmp_models`` (socket path -> MonitorModel) is shared with QMP."""

    qmp_models: dict[str, MonitorModel] = field(default_factory=dict)
    domains: dict[int, XenDomain] = field(default_factory=dict)
    #: Sub-commands that fail as xl does when libxl fails (``save``, ``restore``, ...).
    fail_on: set[str] = field(default_factory=set)
    #: The same, for the next call only.
    fail_once: set[str] = field(default_factory=set)
    calls: list[list[str]] = field(default_factory=list)
    next_domid: int = 1
    #: The device model of each destroyed domain, by name: a restore starts a like one.
    gone: dict[str, MonitorModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Xl.__init__(self, "xl", 120.0, "/var/run/xen")   # settings.XEN_QMP_DIR

    def add(self, dom: XenDomain) -> XenDomain:
        self.domains[dom.domid] = dom
        self.next_domid = max(self.next_domid, dom.domid + 1)
        self.qmp_models[self.qmp_socket_path(dom.domid)] = dom.model
        return dom

    def by_name(self, name: str) -> XenDomain | None:
        found = [d for d in self.domains.values() if d.name == name or str(d.domid) == name]
        return found[0] if found else None

    def _run(self, *args: str, libxl_errors_fail: bool = False,
             timeout: float | None = None) -> ProcessResult:
        argv = [self.binary, *args]
        self.calls.append(list(args))
        once = args[0] in self.fail_once
        if once:
            self.fail_on.add(args[0])
            self.fail_once.discard(args[0])
        try:
            code, out, err = getattr(self, "_" + args[0])(list(args[1:]))
        finally:
            if once:
                self.fail_on.discard(args[0])
        result = ProcessResult(argv, code, out, err)
        if code != 0 or (libxl_errors_fail and "libxl: error:" in err):
            raise _error(result)
        return result

    # -- the sub-commands: (exit code, stdout, stderr) ------------------------------------

    def _list(self, args: list[str]) -> tuple[int, str, str]:
        long = args[:1] == ["-l"]
        names = args[1:] if long else args
        doms = sorted(self.domains.values(), key=lambda d: d.domid)
        if names:
            dom = self.by_name(names[0])
            if dom is None:
                return 1, "", f"{names[0]} is an invalid domain identifier (rc=-6)\n"
            doms = [dom]
        if long:
            return 0, json.dumps([{"domid": d.domid, "config": d.config()} for d in doms],
                                 indent=4) + "\n", ""
        rows = ["Name                                        ID   Mem VCPUs\tState\tTime(s)"]
        for d in doms:
            flags = "--p---" if d.pause_count else "-b----"
            rows.append(f"{d.name:<40} {d.domid:5d} {d.memory_mib:5d} {1:5d}     "
                        f"{flags}  {0.0:8.1f}")
        return 0, "\n".join(rows) + "\n", ""

    def _domid(self, args: list[str]) -> tuple[int, str, str]:
        dom = self.by_name(args[0])
        if dom is None:
            return 1, "", (f"Can't get domid of domain name '{args[0]}', maybe this domain "
                           "does not exist.\n")
        return 0, f"{dom.domid}\n", ""

    def _pause(self, args: list[str], by: int = 1) -> tuple[int, str, str]:
        dom = self.by_name(args[0])
        verb = "Pausing" if by > 0 else "Unpausing"
        if dom is None or args[0] in self.fail_on or ("pause" if by > 0 else "unpause") \
                in self.fail_on or dom.pause_count + by < 0:
            why = "No such process" if dom is None else (
                "Invalid argument" if dom.pause_count + by < 0 else "Operation not permitted")
            return 0, "", f"libxl: error: libxl_domain.c: Domain {args[0]}:{verb} domain: {why}\n"
        if by < 0 and dom.type == "hvm":
            dom.model.status = "running"
        dom.pause_count += by
        return 0, "", ""

    def _unpause(self, args: list[str]) -> tuple[int, str, str]:
        return self._pause(args, -1)

    def _destroy(self, args: list[str]) -> tuple[int, str, str]:
        dom = self.by_name(args[0])
        if dom is None or "destroy" in self.fail_on:
            return 1, "", (f"libxl: error: libxl_domain.c: Domain {args[0]}:Non-existant "
                           "domain\ndestroy failed (rc=-21)\n")
        del self.domains[dom.domid]
        self.gone[dom.name] = dom.model
        self.qmp_models.pop(self.qmp_socket_path(dom.domid), None)
        return 0, "", ""

    def _save(self, args: list[str]) -> tuple[int, str, str]:
        flags = {a for a in args if a.startswith("-")}
        name, path = [a for a in args if not a.startswith("-")][:2]
        dom = self.by_name(name)
        if dom is None:
            return 1, "", "unable to retrieve domain configuration\n"
        with open(path, "wb") as handle:
            handle.write(MAGIC + json.dumps(dom.config()).encode() + b"\0")
            if "save" in self.fail_on:   # the truncated file stays, as with real xl
                return 1, "", (f"libxl: error: libxl_stream_write.c: Domain {dom.domid}:saving"
                               " domain: domain did not respond to suspend request\n"
                               "Failed to save domain, resuming domain\n")
            handle.write(b"FAKE-XEN-MEMORY" + dom.model.ram.encode())
        if "-p" not in flags and "-c" not in flags:
            return self._destroy([name])
        if "-p" in flags:
            dom.pause_count += 1
        return 0, "", f"Saving to {path} new xl format\n"

    def _restore(self, args: list[str]) -> tuple[int, str, str]:
        path = args[-1]
        data = open(path, "rb").read()
        config = json.loads(data[len(MAGIC):data.index(b"\0", len(MAGIC))])
        domid = self.next_domid
        self.next_domid += 1
        name = config["c_info"]["name"]
        if self.by_name(name) is not None or "restore" in self.fail_on:
            return 1, "", (f"libxl: error: libxl_domain.c: Domain {domid}:Domain with name "
                           f"\"{name}\" already exists.\nlibxl: error: libxl_create.c: Domain "
                           f"{domid}:cannot make domain: -6\n")
        ram = data.split(b"FAKE-XEN-MEMORY", 1)[1].decode()
        old = self.gone[name]   # the new device model opens the same images
        model = MonitorModel(old.images, old.drives, ram=ram, uuid=old.uuid)
        self.add(XenDomain(name, domid, config["c_info"]["uuid"],
                           [(d["pdev_path"], d["vdev"]) for d in config["disks"]], model,
                           pause_count=1 if "-p" in args else 0))
        return 0, "", f"Loading new save file {path}\n"
