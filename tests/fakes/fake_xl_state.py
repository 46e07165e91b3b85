"""The state of the fake ``xl`` (tests/fakes/xl), and helpers for tests to set it up.

The state folder (env ``XLSNAP_FAKE_XL_STATE``) holds one JSON file per domain under
``domains/``, ``meta.json`` (the next domid: Xen hands out new ids, never reused
ones), ``calls.log`` (one JSON argv per line, every invocation) and optionally
``xl.conf`` (``output_format="sxp"`` switches ``list -l`` to SXP, as /etc/xen/xl.conf
does). Domain-0 always exists.

    fake = FakeXl(tmp_path / "xl")
    fake.add_domain("web", disks=[FakeDisk("/images/a.qcow2", "xvda")])
    Xl(binary=str(FAKE_XL)).save("web", "/tmp/web.save")      # with the env from fake.env()
    assert fake.calls()[-1] == ["save", "-p", "web", "/tmp/web.save"]
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAKE_XL = Path(__file__).resolve().parent / "xl"
STATES = ("running", "blocked", "paused", "shutdown", "dying", "idle")


@dataclass(frozen=True)
class FakeDisk:
    """A disk as libxl stores it; ``access="ro"`` omits ``readwrite`` like libxl does, and
    ``backend`` is printed only when the config chose one (``backendtype=``): libxl picks
    the backend at run time and real ``xl list -l`` shows none (reference/xen-in-qemu.md)."""

    target: str
    vdev: str
    format: str = "qcow2"
    access: str = "rw"
    backend: str = ""
    cdrom: bool = False
    backend_domid: int = 0
    script: str = ""

    def libxl(self) -> dict[str, Any]:
        # real xl 4.17's list -l prints colo_restore_enable (a defbool) for every disk, and
        # no backend (libxl picks it at run time): the real-Xen tier's transcript
        disk: dict[str, Any] = {"pdev_path": self.target, "vdev": self.vdev,
                                "format": self.format, "colo_restore_enable": "False"}
        if self.backend:
            disk["backend"] = self.backend
        if self.backend_domid:
            disk["backend_domid"] = self.backend_domid
        if self.script:
            disk["script"] = self.script
        if self.cdrom:
            disk.update(removable=1, is_cdrom=1)
        if self.access in ("rw", "w"):
            disk["readwrite"] = 1
        return disk


def libxl_config(name: str, uuid: str, memory_mib: int, vcpus: int,
                 disks: Sequence[dict[str, Any]], type: str = "hvm") -> dict[str, Any]:
    """A domain config shaped like libxl's JSON: defaults omitted, defbools as strings."""
    type_info = ({"acpi": "True", "nographic": "True", "vga": {}} if type == "hvm" else {})
    config: dict[str, Any] = {
        # c_info.domid is INVALID_DOMID in the stored config (real xl list -l, the tier)
        "c_info": {"type": type, "name": name, "domid": 4294967295, "uuid": uuid,
                   "run_hotplug_scripts": "True"},
        "b_info": {"max_vcpus": vcpus, "avail_vcpus": list(range(vcpus)),
                   "max_memkb": memory_mib * 1024, "target_memkb": memory_mib * 1024,
                   "device_model_version": "qemu_xen",
                   f"type.{type}": type_info},
    }
    if disks:
        config["disks"] = [dict(d) for d in disks]
    config["on_reboot"] = "restart"
    return config


def dom0() -> dict[str, Any]:
    """Domain-0 with the stub config that xen-init-dom0 stores for it."""
    return {"domid": 0, "name": "Domain-0", "state": "running", "memory_mib": 4096,
            "vcpus": 2, "cpu_time": 123.4, "memory_image": "dom0",
            "config": {"c_info": {"type": "pv", "name": "Domain-0"},
                       "b_info": {"max_memkb": 4194304, "target_memkb": 4194304,
                                  "type.pv": {}}}}


class Store:
    """The state folder: domains as JSON files, the next domid, the calls log."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.domains_dir = self.root / "domains"

    @contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the folder's lock (real xl serialises on a lock file too)."""
        self.domains_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if not (self.domains_dir / "0.json").exists():
                    self.put(dom0())
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def all(self) -> list[dict[str, Any]]:
        doms = [json.loads(p.read_text()) for p in self.domains_dir.glob("*.json")]
        return sorted(doms, key=lambda d: d["domid"])

    def by_name(self, name: str) -> dict[str, Any] | None:
        return next((d for d in self.all() if d["name"] == name), None)

    def by_id(self, domid: int) -> dict[str, Any] | None:
        path = self.domains_dir / f"{domid}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, dom: dict[str, Any]) -> None:
        path = self.domains_dir / f"{dom['domid']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dom, indent=2))
        os.replace(tmp, path)

    def remove(self, domid: int) -> None:
        (self.domains_dir / f"{domid}.json").unlink(missing_ok=True)

    def new_domid(self) -> int:
        meta_path = self.root / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        used = max([d["domid"] for d in self.all()] + [meta.get("next_domid", 1) - 1])
        domid = used + 1
        meta_path.write_text(json.dumps({"next_domid": domid + 1}))
        return domid

    def log_call(self, argv: Sequence[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "calls.log", "a") as handle:
            handle.write(json.dumps(list(argv)) + "\n")

    def remember_pid(self, pid: int) -> None:
        with open(self.root / "device-models", "a") as handle:
            handle.write(f"{pid}\n")

    def output_format(self) -> str:
        conf = self.root / "xl.conf"
        if conf.exists() and 'output_format="sxp"' in conf.read_text().replace(" ", ""):
            return "sxp"
        return "json"


class FakeXl:
    """Test-side handle on a fake xl state folder."""

    def __init__(self, root: Path | str) -> None:
        self.store = Store(root)
        self.root = self.store.root
        self.binary = str(FAKE_XL)

    def env(self) -> dict[str, str]:
        return {"XLSNAP_FAKE_XL_STATE": str(self.root)}

    def add_domain(self, name: str, domid: int | None = None, disks: Sequence[FakeDisk] = (),
                   state: str = "running", memory_mib: int = 512, vcpus: int = 1,
                   uuid: str | None = None, type: str = "hvm",
                   b_info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a domain as if ``xl create`` had run; returns its record."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        with self.store.locked() as store:
            if store.by_name(name):
                raise ValueError(f"a fake domain {name!r} exists already")
            domid = store.new_domid() if domid is None else domid
            dom = {"domid": domid, "name": name, "state": state,
                   "pause_count": 1 if state == "paused" else 0, "memory_mib": memory_mib,
                   "vcpus": vcpus, "cpu_time": 1.5, "memory_image": secrets.token_hex(16),
                   "config": libxl_config(name, uuid or str(uuidlib.uuid4()), memory_mib,
                                          vcpus, [d.libxl() for d in disks], type)}
            dom["config"]["b_info"].update(b_info or {})
            store.put(dom)
            return dom

    def domain(self, name: str) -> dict[str, Any] | None:
        with self.store.locked() as store:
            return store.by_name(name)

    def domains(self) -> list[dict[str, Any]]:
        with self.store.locked() as store:
            return store.all()

    def set_memory(self, name: str, token: str) -> None:
        """Stand in for the guest changing its RAM (what ``save`` captures)."""
        with self.store.locked() as store:
            dom = store.by_name(name)
            assert dom is not None, name
            dom["memory_image"] = token
            store.put(dom)

    def attach_device_model(self, name: str, argv: Sequence[str], pid: int, qmp: str,
                            log: str) -> None:
        """Say which process serves the domain's disks (the fake then stops, continues,
        restarts and ends it as libxl would its device model)."""
        with self.store.locked() as store:
            dom = store.by_name(name)
            assert dom is not None, name
            dom["device_model"] = {"argv": list(argv), "pid": pid, "qmp": qmp, "log": log}
            store.put(dom)
            store.remember_pid(pid)

    def device_model_pids(self) -> list[int]:
        """Every device model the fake was told of or started (for the tests' clean-up)."""
        path = self.root / "device-models"
        return [int(x) for x in path.read_text().split()] if path.exists() else []

    def set_output_format(self, fmt: str) -> None:
        (self.root / "xl.conf").write_text(f'output_format="{fmt}"\n')

    def calls(self) -> list[list[str]]:
        path = self.root / "calls.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]
