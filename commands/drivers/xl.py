"""The ``xl`` driver (Xen 4.17 toolstack): argv lists, timeouts, typed errors."""

from __future__ import annotations

import enum
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from commands.drivers.process import DriverError, ProcessResult, run

XL = "xl"
QMP_DIR = "/var/run/xen"
#: ``xl save``/``restore`` move the guest's whole memory and may take minutes: they never
#: get the generic tool timeout, but this many seconds plus one per ``SAVE_RATE`` bytes
#: of memory (a 128 MiB PV guest took 1.5 s to save under TCG, ~85 MiB/s).
SAVE_BASE = 600.0
SAVE_RATE = 16 * 2**20


def save_timeout(memory_bytes: int) -> float:
    """Seconds ``xl save`` or ``xl restore`` of a guest of ``memory_bytes`` may take."""
    return SAVE_BASE + max(0, memory_bytes) / SAVE_RATE
_NO_HYPERVISOR = ("Can't find hypervisor information in sysfs", "Hypervisor is not xen",
                  "Can't read hypervisor type from sysfs", "cannot init xl context",
                  "Could not obtain handle on privileged command interface")
_NOT_FOUND = re.compile(r"is an invalid domain identifier|Can't get domid of domain name|"
                        r"Can't get domain name of domain id|Error: Domain '.*' does not exist"
                        r"|Non-existant domain")
_NOT_MADE = re.compile(r"cannot make domain|cannot \(re-\)build domain")
_LIST_LINE = re.compile(r"^(?P<name>.*?)\s+(?P<domid>\d+)\s+(?P<mem>\d+)\s+(?P<vcpus>\d+)\s+"
                        r"(?P<flags>[-rbpsSwcd?]{6})\s+(?P<time>[\d.]+)")


class XlError(DriverError):
    """xl failed; the message is its most telling stderr line."""


class NoHypervisor(XlError):
    """No Xen hypervisor is running on this host, so xl cannot work here."""


class NotPrivileged(XlError):
    """xl runs on a Xen host but may not use it: it needs root."""


class DomainNotFound(XlError):
    """xl knows no domain by that name or id."""


class XlOutputError(XlError):
    """xl's output is not what this driver can read (e.g. SXP instead of JSON)."""


class DomainState(enum.Enum):
    """The state column of ``xl list`` (``r-----`` etc.), reduced to one word."""

    RUNNING = "running"   # r, or runnable and waiting for a CPU (------)
    BLOCKED = "blocked"   # b: idle, waiting for an event
    PAUSED = "paused"     # p
    SHUTDOWN = "shutdown"  # s (the reason letter follows: r s c w S, or - for poweroff)
    DYING = "dying"       # d

    @classmethod
    def from_flags(cls, flags: str) -> DomainState:
        if len(flags) != 6:
            raise ValueError(f"not an xl state column: {flags!r}")
        if flags[5] == "d":
            return cls.DYING
        if flags[3] == "s":
            return cls.SHUTDOWN
        if flags[2] == "p":
            return cls.PAUSED
        if flags[1] == "b" and flags[0] != "r":
            return cls.BLOCKED
        return cls.RUNNING


class DomainInfo(NamedTuple):
    """One row of ``xl list``."""

    name: str
    domid: int
    memory_mib: int
    vcpus: int
    flags: str
    cpu_time: float

    @property
    def state(self) -> DomainState:
        return DomainState.from_flags(self.flags)


class XlDisk(NamedTuple):
    """One ``config.disks[]`` entry of ``xl list -l``, defaults filled in as libxl's."""

    pdev_path: str | None
    vdev: str | None
    format: str = "unknown"
    backend: str = "unknown"
    readwrite: bool = False
    is_cdrom: bool = False
    removable: bool = False
    script: str | None = None
    backend_domid: int = 0


@dataclass(frozen=True)
class XlDomain:
    """One element of ``xl list -l``: domid, a few config facts, and the raw config."""

    domid: int
    name: str
    uuid: str | None
    type: str | None
    disks: tuple[XlDisk, ...]
    config: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


def flag(value: Any, default: bool = False) -> bool:
    """A libxl boolean as printed: 1/0, true/false, or defbool strings "True"/"False"."""
    if value is None or value == "<default>":
        return default
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no", ""):
            return False
        raise ValueError(f"not a libxl boolean: {value!r}")
    return bool(value)


def parse_list_long(stdout: str) -> list[XlDomain]:
    """Parse ``xl list -l`` JSON; refuse SXP (xl.conf ``output_format="sxp"``)."""
    text = stdout.strip()
    if not text:
        return []
    if text.startswith("("):
        raise XlOutputError('xl printed SXP, not JSON: remove output_format="sxp" from '
                            "/etc/xen/xl.conf", ProcessResult(["xl", "list", "-l"], 0, stdout))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise XlOutputError(f"xl list -l printed invalid JSON: {exc}",
                            ProcessResult(["xl", "list", "-l"], 0, stdout)) from None
    if not isinstance(data, list):
        data = [data]
    return [_domain(item) for item in data]


def parse_list(stdout: str) -> list[DomainInfo]:
    """Parse the short ``xl list`` table (header line first)."""
    rows = []
    for line in stdout.splitlines()[1:]:
        match = _LIST_LINE.match(line)
        if match:
            rows.append(DomainInfo(match["name"], int(match["domid"]), int(match["mem"]),
                                   int(match["vcpus"]), match["flags"], float(match["time"])))
    return rows


class Xl:
    """Typed wrapper around the ``xl`` executable.

    Behaviour it relies on, from xl's source and the Debian package: ``xl list -l`` prints a
    JSON array of ``{"domid", "config"}`` whose default-valued fields are omitted and whose
    defbools are the strings "True"/"False" (SXP instead when xl.conf says so: refused);
    name look-ups fail with ``NAME is an invalid domain identifier (rc=-6)``; ``xl pause``
    and ``xl unpause`` exit 0 even when libxl failed (only a ``libxl: error:`` line says so);
    without a hypervisor Debian's wrapper prints ``Can't find hypervisor information in
    sysfs!`` and the bare binary ``cannot init xl context``, both with exit 1.

        xl = Xl()
        xl.save("web", "/var/lib/xlsnap/web/mem.save", pause=True)   # xl save -p web FILE
        ...disk snapshots...
        xl.unpause("web")
    """

    def __init__(self, binary: str = XL, timeout: float = 120.0, qmp_dir: str = QMP_DIR) -> None:
        self.binary = binary
        self.timeout = timeout
        self.qmp_dir = qmp_dir

    def list_short(self, domain: str | int | None = None) -> list[DomainInfo]:
        """``xl list [DOMAIN]``: name, id, memory, vcpus, state, cpu time."""
        return parse_list(self._run("list", *_opt(domain)).stdout)

    def state(self, domain: str | int) -> DomainState:
        rows = self.list_short(domain)
        if len(rows) != 1:
            raise XlOutputError(f"xl list {domain} printed {len(rows)} rows",
                                ProcessResult([self.binary, "list", str(domain)], 0))
        return rows[0].state

    def list_long(self, domain: str | int | None = None) -> list[XlDomain]:
        """``xl list -l [DOMAIN]`` as typed domains (JSON only)."""
        return parse_list_long(self._run("list", "-l", *_opt(domain)).stdout)

    def domid(self, name: str) -> int:
        return int(self._run("domid", name).stdout.strip())

    def domname(self, domid: int) -> str:
        return self._run("domname", str(domid)).stdout.strip()

    def save(self, domain: str | int, path: str, pause: bool = True, checkpoint: bool = False,
             config: str | None = None, memory_bytes: int = 0) -> ProcessResult:
        """``xl save [-c] [-p] DOMAIN FILE [CONFIG]``: memory and device state, not disks.

        With neither ``pause`` nor ``checkpoint`` xl destroys the domain after saving.
        Its timeout is ``save_timeout(memory_bytes)``, not the generic one.
        """
        flags = (["-c"] if checkpoint else []) + (["-p"] if pause else [])
        return self._run("save", *flags, str(domain), path, *_opt(config),
                         timeout=save_timeout(memory_bytes))

    def restore(self, path: str, paused: bool = True, config: str | None = None) -> ProcessResult:
        """``xl restore [-p] [CONFIG] FILE``: a new domain (new domid); the old must be gone.

        Its timeout is ``save_timeout`` of the image's size, not the generic one."""
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        return self._run("restore", *(["-p"] if paused else []), *_opt(config), path,
                         timeout=save_timeout(size))

    def pause(self, domain: str | int) -> ProcessResult:
        return self._run("pause", str(domain), libxl_errors_fail=True)

    def unpause(self, domain: str | int) -> ProcessResult:
        return self._run("unpause", str(domain), libxl_errors_fail=True)

    def destroy(self, domain: str | int) -> ProcessResult:
        return self._run("destroy", str(domain))

    def qmp_socket_path(self, domid: int) -> str:
        """libxl's QMP socket of a domain's device model: ``<qmp_dir>/qmp-libxl-<domid>``."""
        return os.path.join(self.qmp_dir, f"qmp-libxl-{int(domid)}")

    def _run(self, *args: str, libxl_errors_fail: bool = False,
             timeout: float | None = None) -> ProcessResult:
        result = run([self.binary, *args], timeout=timeout or self.timeout)
        failed = not result.ok or (libxl_errors_fail and "libxl: error:" in result.stderr)
        if failed:
            raise _error(result)
        return result


def _error(result: ProcessResult) -> XlError:
    stderr = result.stderr
    denied = re.search(r"Could not obtain handle on privileged command interface: "
                       r"(Permission denied|Operation not permitted)", stderr)
    if denied:  # tools/libs/call/linux.c:54, xl.c:346: Xen is there, the user is not root
        return NotPrivileged(f"xl needs root: it could not open Xen's privileged command "
                             f"interface ({denied[1]}); run xlsnap as root", result)
    if any(marker in stderr for marker in _NO_HYPERVISOR):
        reason = _last_line(stderr).removeprefix("ERROR:").strip()
        return NoHypervisor(f"no Xen hypervisor is running on this host (xl: {reason})", result)
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    made = next((k for k, ln in enumerate(lines) if _NOT_MADE.search(ln)), None)
    if made is not None:
        # A create or restore that failed: libxl then destroys the domid it never made
        # (libxl__destroy_domid) and logs 'Non-existant domain', 'Unable to destroy guest',
        # 'Destruction of domain failed' (real xl 4.17, the real-Xen tier). Those are
        # consequences: the message is the first error before them (the cause).
        cause = next((ln for ln in lines[:made + 1] if "error" in ln.lower()), lines[made])
        return XlError(cause, result)
    found = [ln for ln in lines if _NOT_FOUND.search(ln)]
    if found:
        return DomainNotFound(found[-1], result)
    return XlError(_last_line(stderr) or f"xl exited with {result.returncode}", result)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "fail" in ln.lower()
              or "can't" in ln.lower() or "cannot" in ln.lower()]
    return (errors or lines or [""])[-1]


def _opt(value: str | int | None) -> list[str]:
    return [] if value is None else [str(value)]


def _domain(item: dict[str, Any]) -> XlDomain:
    config = item.get("config") or {}
    c_info = config.get("c_info") or {}
    disks = tuple(_disk(d) for d in config.get("disks") or [])
    domid = item.get("domid")
    return XlDomain(domid=int(domid) if domid is not None else -1,
                    name=str(c_info.get("name", "")), uuid=c_info.get("uuid"),
                    type=c_info.get("type"), disks=disks, config=config)


def _disk(d: dict[str, Any]) -> XlDisk:
    return XlDisk(pdev_path=d.get("pdev_path"), vdev=d.get("vdev"),
                  format=str(d.get("format", "unknown")), backend=str(d.get("backend", "unknown")),
                  readwrite=flag(d.get("readwrite")), is_cdrom=flag(d.get("is_cdrom")),
                  removable=flag(d.get("removable")), script=d.get("script"),
                  backend_domid=int(d.get("backend_domid", 0)))
