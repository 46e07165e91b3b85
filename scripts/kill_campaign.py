#!/usr/bin/env python3
"""Random-kill campaign: xlsnap killed (SIGKILL) at random moments, then ``recover``, then
every snapshot and the current disks read back against a model of what they must hold.

Two domains: ``stopped`` (two qcow2 disks, qemu-img) and ``live`` (a QEMU under TCG with
two qcow2 disks and shared RAM). Each round writes a distinct byte pattern to every
disk (and, live, a distinct marker into guest RAM), then runs one random operation:
create (internal; external; live also with memory inside qcow2 and disk-only), revert
or delete of a random snapshot, and kills it after a random delay (or lets it finish).
Then ``xlsnap recover``, and the checks: ``check`` exits 0; every snapshot in the
model is in the ledger and vice versa; each internal snapshot reads its pattern
(``qemu-img convert -l snapshot.id=ID``), each external one its base image through
its chain (``qemu-io -r -U``), the current disks the pattern the model says
(reverted or not, as the ledger recorded), and guest RAM its marker.

    python3 scripts/kill_campaign.py --seed 1 --seconds 600
    python3 scripts/kill_campaign.py --modes stopped --rounds 50

Prints its figures (kills, recovers, roll-forwards, rollbacks, refusals, content
mismatches) and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from commands.engine.actions_restart import socket_pid  # noqa: E402
from commands.drivers.qmp import Qmp  # noqa: E402

PATTERN = 65536
RAM_MIB = 64
MARK_AT = 0x2000000
UUID = "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f60"
MANY = 10            # more snapshots than this: deletes become likelier


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def pattern(round_no: int, disk: int) -> int:
    """A byte distinct per round and disk (cycles after 127 rounds)."""
    return 1 + ((round_no * 2 + disk) % 254)


def reads(path: str, byte: int) -> bool:
    """The image (through its backing chain) holds ``byte`` in its first 64 KiB."""
    proc = run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c",
                f"read -P {byte} 0 {PATTERN}", path])
    return proc.returncode == 0 and "Pattern verification failed" not in proc.stdout


def tag_reads(path: str, tag: str, byte: int, scratch: Path) -> str | None:
    """None when internal snapshot ``tag`` of ``path`` holds ``byte``; else what is wrong."""
    proc = run(["qemu-img", "info", "-U", "--output=json", path])
    if proc.returncode != 0:
        return f"info failed: {proc.stderr.strip()}"
    ids = [s["id"] for s in json.loads(proc.stdout).get("snapshots", []) if s["name"] == tag]
    if len(ids) != 1:
        return f"{len(ids)} tags named {tag}"
    out = scratch / "tag.raw"
    out.unlink(missing_ok=True)
    proc = run(["qemu-img", "convert", "-U", "-f", "qcow2", "-l", f"snapshot.id={ids[0]}",
                "-O", "raw", path, str(out)])
    if proc.returncode != 0:
        return f"convert failed: {proc.stderr.strip()}"
    with out.open("rb") as handle:
        data = handle.read(PATTERN)
    out.unlink()
    return None if data == bytes([byte]) * PATTERN else f"holds {data[0]:#x}.. not {byte:#x}"


@dataclass
class Snap:
    """What a snapshot must hold: a pattern per disk, maybe a RAM marker."""

    kind: str
    disks: list[int]
    ram: bytes | None


@dataclass
class Model:
    current: list[int]
    ram: bytes | None = None
    snaps: dict[str, Snap] = field(default_factory=dict)


class Domain:
    """The xlsnap side of a test domain; subclasses say how its disks are read and written."""

    mode = ""
    ops: dict[str, int] = {}

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "state"
        self.config_dir = root / "xen"
        self.config_dir.mkdir(parents=True)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "XLSNAP_HOME": str(self.home),
               "XLSNAP_CONFIG_DIR": str(self.config_dir)}
        env.pop("XLSNAP_FAULT_INJECT", None)
        return env

    def xlsnap(self, *args: str, kill_after: float | None = None) -> tuple[int, str, str, bool]:
        proc = subprocess.Popen([sys.executable, "-m", "commands", *args], cwd=REPO,
                                env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        killed = False
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                killed = True
        out, err = proc.communicate(timeout=300)
        return proc.returncode, out, err, killed

    def snapshot_config(self, name: str, extra: str = "") -> str:
        cfg = self.root / f"{name}.cfg"
        cfg.write_text(f'name = "{name}"\ntype = "external"\n{extra}')
        return str(cfg)

    # what subclasses provide
    def write_current(self, patterns: list[int], ram: bytes) -> None: ...
    def current_problems(self, model: Model) -> list[str]: ...
    def op_argv(self, op: str, name: str) -> list[str]: ...
    def ram_after_revert(self, snap: Snap) -> bytes | None:
        return None

    def top_files(self) -> list[str]:
        """The image each disk writes to now."""
        raise NotImplementedError


class Stopped(Domain):
    mode = "stopped"
    ops = {"create-internal": 3, "create-external": 1, "revert": 3, "delete": 2}

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        images = root / "images"
        images.mkdir()
        self.images = [images / "a.qcow2", images / "b.qcow2"]
        for path in self.images:
            run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"]).check_returncode()
        (self.config_dir / "web.cfg").write_text(
            f'name = "web"\nuuid = "{UUID}"\nmemory = 512\n'
            f"disk = [ '{self.images[0]},qcow2,xvda,rw', '{self.images[1]},qcow2,xvdb,rw' ]\n")

    def env(self) -> dict[str, str]:
        return {**super().env(), "XLSNAP_TOOLSTACK": "offline"}

    def top_files(self) -> list[str]:
        return self.tops()

    def tops(self) -> list[str]:
        text = (self.config_dir / "web.cfg").read_text()
        return re.findall(r"(/[^,'\"\s]+\.qcow2)", text.split("disk", 1)[1])

    def write_current(self, patterns: list[int], ram: bytes) -> None:
        for path, byte in zip(self.tops(), patterns):
            run(["qemu-io", "-f", "qcow2", "-c", f"write -P {byte} 0 {PATTERN}",
                 path]).check_returncode()

    def current_problems(self, model: Model) -> list[str]:
        return [f"current disk {path} does not hold {byte:#x}"
                for path, byte in zip(self.tops(), model.current) if not reads(path, byte)]

    def op_argv(self, op: str, name: str) -> list[str]:
        if op == "create-external":
            return ["snapshot-create", "web", self.snapshot_config(name)]
        return ["snapshot-create", "-n", name, "web"]


class Live(Domain):
    mode = "live"
    ops = {"create-internal": 3, "create-disk-only": 1, "create-external": 1, "revert": 3,
           "delete": 2}

    def __init__(self, root: Path, stack: ExitStack) -> None:
        super().__init__(root)
        from tests.qemu_vm import start_vm
        self.qmp_dir = root / "qmp"
        self.ram = root / "web.ram"
        with self.ram.open("wb") as handle:
            handle.truncate(RAM_MIB << 20)
        extra = ["-object",
                 f"memory-backend-file,id=ram,size={RAM_MIB}M,mem-path={self.ram},share=on",
                 "-machine", "memory-backend=ram"]
        self.vm = stack.enter_context(start_vm(self.qmp_dir, disks=2, name="web", extra=extra))
        stack.callback(self.kill_all)

    @property
    def socket(self) -> str:
        return str(self.qmp_dir / "web.qmp")

    def env(self) -> dict[str, str]:
        return {**super().env(), "XLSNAP_QMP_DIR": str(self.qmp_dir),
                "XLSNAP_TOOLSTACK": "qemu"}

    def qmp(self) -> Qmp:
        return Qmp(self.socket)

    def kill_all(self) -> None:
        pid = socket_pid(self.socket) if os.path.exists(self.socket) else None
        pids = {pid} if pid else set()
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(self.root).encode() in \
                        (proc / "cmdline").read_bytes() and b"qemu-system" in \
                        (proc / "cmdline").read_bytes():
                    pids.add(int(proc.name))
            except OSError:
                continue
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tops(self) -> dict[str, str]:
        return {d.device: d.filename for d in self.qmp().query_block()}

    def top_files(self) -> list[str]:
        return list(self.tops().values())

    def write_current(self, patterns: list[int], ram: bytes) -> None:
        q = self.qmp()
        for k, byte in enumerate(patterns):
            q.human_monitor_command(f'qemu-io drv{k} "write -P {byte} 0 {PATTERN}"')
            q.human_monitor_command(f'qemu-io drv{k} "flush"')
        with self.ram.open("r+b") as handle, mmap.mmap(handle.fileno(), 0) as mem:
            mem[MARK_AT:MARK_AT + len(ram)] = ram
            mem.flush()

    def peek(self, length: int) -> bytes:
        dump = self.root / "peek.bin"
        dump.unlink(missing_ok=True)
        self.qmp().execute("pmemsave", {"val": MARK_AT, "size": length, "filename": str(dump)})
        return dump.read_bytes()

    def current_problems(self, model: Model) -> list[str]:
        problems = []
        q = self.qmp()
        status = q.query_status().status
        if status != "running":
            problems.append(f"QEMU is {status}, not running")
        tops = self.tops()
        for k, byte in enumerate(model.current):
            q.human_monitor_command(f'qemu-io drv{k} "flush"')
            if not reads(tops[f"drv{k}"], byte):
                problems.append(f"current disk drv{k} ({tops[f'drv{k}']}) does not hold "
                                f"{byte:#x}")
        if model.ram is not None and self.peek(len(model.ram)) != model.ram:
            problems.append(f"guest RAM holds {self.peek(len(model.ram))!r}, not {model.ram!r}")
        return problems

    def op_argv(self, op: str, name: str) -> list[str]:
        if op == "create-external":
            return ["snapshot-create", "web", self.snapshot_config(name)]
        if op == "create-disk-only":
            return ["snapshot-create", "--disk-only", "-n", name, "web"]
        return ["snapshot-create", "-n", name, "web"]

    def ram_after_revert(self, snap: Snap) -> bytes | None:
        return snap.ram          # a disk-only snapshot boots cold: RAM not modelled


@dataclass
class Campaign:
    domain: Domain
    rng: random.Random
    figures: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    est: dict[str, float] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    base_deletes: bool = False

    def record(self, name: str) -> dict[str, Any]:
        """A snapshot's record as the ledger said it last (``refresh``)."""
        return self.records.get(name, {})

    def refresh(self) -> None:
        """Read every snapshot's record again: deleting an external snapshot merges images
        and renames the files other snapshots' records name, so a record read once goes
        stale (a stale one named a removed overlay: CI's seed-5 "does not hold 0x21")."""
        code, out, err, _ = self.domain.xlsnap("snapshot-list", "-l", "web")
        if code != 0:
            raise RuntimeError(f"snapshot-list -l failed: {err.strip()}")
        self.records = {r["name"]: r for r in json.loads(out or "[]")}

    def finished(self) -> list[dict[str, Any]]:
        code, out, err, _ = self.domain.xlsnap("history", "--json")
        if code != 0:
            raise RuntimeError(f"history failed: {err.strip()}")
        return [e for e in json.loads(out or "[]") if e["event"] == "OperationFinished"]

    def round(self, r: int, model: Model, forced: tuple[str, str] | None = None) -> None:
        """One round: a random operation killed at a random moment, or ``forced``
        ``(op, name)`` run to its end."""
        d, rng = self.domain, self.rng
        patterns = [pattern(r, k) for k in range(2)]
        ram = f"ram-of-round-{r:05d}".encode()
        d.write_current(patterns, ram)
        model.current, model.ram = patterns, (ram if d.mode == "live" else None)
        weights = dict(d.ops)
        if len(model.snaps) > MANY:
            weights["delete"] *= 4
        ops = list(weights)
        op = rng.choices(ops, [weights[o] for o in ops])[0]
        if op in ("revert", "delete") and not model.snaps:
            op = "create-internal"
        name = None if op.startswith("create") else self.target(op, model)
        if name is None:
            op, name = (op if op.startswith("create") else "create-internal"), f"k{r}"
        if forced is not None:
            op, name = forced
        argv = d.op_argv(op, name) if op.startswith("create") else \
            [f"snapshot-{op}", "-n", name, "web"]
        before = len(self.finished())
        est = self.est.get(op, 2.0 if d.mode == "live" else 0.8)
        kill = rng.random() < 0.8 and forced is None
        delay = rng.uniform(0.25, max(0.3, est * 0.9)) if kill else None
        start = time.monotonic()
        code, out, err, killed = d.xlsnap(*argv, kill_after=delay)
        if not killed:
            self.est[op] = 0.7 * est + 0.3 * (time.monotonic() - start)
        self.figures[f"ops {op}"] += 1
        self.figures["kills"] += killed
        if not killed and code not in (0, 1, 2, 3):
            self.fail(r, f"{' '.join(argv)} exited {code}: {err.strip()[-300:]}")
        if not killed and code != 0:
            self.figures[f"exit {code}"] += 1
        if "Traceback" in err:
            self.fail(r, f"traceback from {' '.join(argv)}: {err.strip()[-300:]}")
        rcode, rout, rerr, _ = d.xlsnap("recover", "web")
        self.figures["recovers"] += 1
        if rcode != 0:
            self.fail(r, f"{' '.join(argv)} killed={killed}; recover exited {rcode}: "
                         f"{rerr.strip()[-1200:]}")
            return
        if "finished" in rout:
            self.figures["roll-forwards"] += 1
        elif "undid" in rout:
            self.figures["rollbacks"] += 1
        self.journal(f"round {r}: {' '.join(argv)} delay={delay} killed={killed} exit={code} "
                     f"recover: {rout.strip()!r} {err.strip()[-200:]!r}")
        self.update_model(r, op, name, model, before)
        self.verify(r, model)

    def journal(self, line: str) -> None:
        """One line per round in ``journal.txt`` beside the domain (kept with --keep)."""
        with (self.domain.root / "journal.txt").open("a") as handle:
            handle.write(line + "\n")

    def target(self, op: str, model: Model) -> str | None:
        """A snapshot to revert or delete: mostly one that can be (an external one
        anywhere in the tree; an internal one whose tags are on the disks in use now),
        sometimes any (refusals are exercised too)."""
        names = sorted(model.snaps)
        tops = set(self.domain.top_files())
        fit = [n for n in names if all(
            disk["type"] == "external" or disk["file"] in tops
            for disk in self.record(n).get("disks", []))]
        if op == "delete" and self.domain.mode == "live" and not self.base_deletes:
            # a live delete of a tag inside a backing image fails on QEMU's image lock
            # and, once killed, cannot be recovered (the ledger stays blocked): left out
            # unless --base-deletes
            return self.rng.choice(fit) if fit else None
        return self.rng.choice(fit if fit and self.rng.random() < 0.85 else names)

    def update_model(self, r: int, op: str, name: str, model: Model, before: int) -> None:
        self.refresh()
        listed = self.records
        if op.startswith("create"):
            if name in listed:
                rec = self.record(name)
                kind = rec.get("type", "internal")
                has_ram = rec.get("memory") == "yes"
                model.snaps[name] = Snap(kind, list(model.current),
                                         model.ram if has_ram else None)
                self.figures["snapshots created"] += 1
        elif op == "delete":
            if name not in listed:
                del model.snaps[name]
                self.figures["snapshots deleted"] += 1
        elif op == "revert":
            new = self.finished()[before:]
            done = [e for e in new if e.get("operation_kind") == "revert"
                    and e["data"]["outcome"] in ("completed", "recovered-forward")]
            if done:
                snap = model.snaps[name]
                model.current = list(snap.disks)
                model.ram = self.domain.ram_after_revert(snap)
                self.figures["reverts done"] += 1
        if set(listed) != set(model.snaps):
            self.fail(r, f"ledger lists {sorted(listed)}, model has {sorted(model.snaps)}")
            model.snaps = {n: s for n, s in model.snaps.items() if n in listed}

    def verify(self, r: int, model: Model) -> None:
        d = self.domain
        code, out, err, _ = d.xlsnap("check", "web")
        if code != 0:
            self.fail(r, f"check exited {code}: {(out + err).strip()[:400]}")
        for problem in d.current_problems(model):
            self.fail(r, problem)
        for name, snap in model.snaps.items():
            rec = self.record(name)
            for k, disk in enumerate(rec.get("disks", [])):
                byte = snap.disks[k]
                if disk["type"] == "internal":
                    wrong = tag_reads(disk["file"], disk["name"], byte, d.root)
                else:
                    wrong = None if reads(disk["file"], byte) else f"does not hold {byte:#x}"
                self.figures["snapshot images read"] += 1
                if wrong:
                    self.fail(r, f"snapshot {name} ({snap.kind}) disk {disk['device']} "
                                 f"{disk['file']}: {wrong}")

    def fail(self, r: int, what: str) -> None:
        """Count and print a finding once (one left standing shows again each round)."""
        if what in self.seen:
            return
        self.seen.add(what)
        self.figures["content or check mismatches"] += 1
        self.problems.append(f"[{self.domain.mode} round {r}] {what}")
        self.journal(f"  MISMATCH {what}")
        print(f"  MISMATCH [{self.domain.mode} round {r}] {what}", flush=True)


def campaign(mode: str, seed: int, seconds: float, rounds: int, root: Path,
             base_deletes: bool = False) -> Campaign:
    rng = random.Random(f"{seed}-{mode}")
    with ExitStack() as stack:
        domain: Domain = Stopped(root) if mode == "stopped" else Live(root, stack)
        c = Campaign(domain, rng, base_deletes=base_deletes)
        model = Model(current=[0, 0])
        deadline = time.monotonic() + seconds
        r = 0
        while r < rounds and time.monotonic() < deadline:
            r += 1
            try:
                c.round(r, model)
            except Exception as exc:  # noqa: BLE001 - a campaign reports and stops
                c.fail(r, f"campaign stopped: {type(exc).__name__}: {exc}")
                break
        c.figures["rounds"] = r
        c.figures["content or check mismatches"] += 0
    return c


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="time budget, shared by the modes (default 300)")
    parser.add_argument("--rounds", type=int, default=10**6, help="at most this many per mode")
    parser.add_argument("--modes", default="stopped,live", help="stopped,live (default both)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--base-deletes", action="store_true",
                        help="live: also delete snapshots whose tags are in backing images")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if "live" in modes and shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 is not installed: live mode skipped")
        modes.remove("live")
    root = Path(tempfile.mkdtemp(prefix="xlsnap-kills-"))
    failed = False
    try:
        for mode in modes:
            start = time.monotonic()
            c = campaign(mode, args.seed, args.seconds / len(modes), args.rounds, root / mode,
                         args.base_deletes)
            print(f"{mode}: seed {args.seed}, {time.monotonic() - start:.0f} s")
            for key in sorted(c.figures):
                print(f"  {key}: {c.figures[key]}")
            failed |= bool(c.problems)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
