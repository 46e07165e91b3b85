"""Benchmark of live domain snapshots: how long the guest is paused, and the whole command.

A real ``qemu-system-x86_64`` under TCG with 256 MiB of RAM and two qcow2 disks is
snapshotted by ``xlsnap snapshot-create`` (toolstack qemu) and, in the same run and
alternately, by a minimal script that drives the same QMP steps over one connection
(``qemu.qmp``, no ledger, no checks):

- ``internal``: ``stop``, ``snapshot-save`` job (RAM into the first disk, both disks
  tagged), ``cont`` (xlsnap's default for a running QEMU);
- ``external``: ``stop``, one ``transaction`` of two ``blockdev-snapshot-sync``,
  ``migrate`` to a file whose descriptor is handed over with ``getfd`` (bandwidth limit
  lifted for it, then put back), ``cont`` (a snapshot config with ``type="external"``).

xlsnap must also record the memory image's sha256 (an external snapshot's image is a
file); it hashes it after the guest resumes. The script hashes it too, timed apart, so
the external command overhead is given next to the QMP steps alone and next to the QMP
steps plus the sha256.

Paused time is measured from the ``stop`` reply to the ``cont`` reply (xlsnap records it
in its ``domain-unpause`` step as ``paused_ms``; its "glue" is the part of it outside the
side effects: the ledger's intent and outcome records and the code between steps);
command time is the wall time of the whole process (interpreter start included), for
xlsnap and for the script alike. The guest's RAM is filled with random bytes first
(``--idle`` leaves it mostly zero, which QEMU's migration compresses away). Each round
runs both, in alternating order, each after a ``sync`` (so that neither pays for
writing back the other's 256 MiB); overhead is the median over rounds of xlsnap's time
minus the script's in the same round.

Usage::

    python3 bench/bench_live.py                 # 7 rounds of each
    python3 bench/bench_live.py --rounds 3 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from commands.drivers.qmp import Qmp  # noqa: E402
from commands.bootstrap import open_services  # noqa: E402
from commands.config.settings import Settings  # noqa: E402

QEMU = "qemu-system-x86_64"
RAM_MIB = 256

BASELINE = r'''
import asyncio, hashlib, json, os, sys, time
from qemu.qmp import QMPClient

async def main(sock, mode, tag, files):
    t0 = time.perf_counter()
    qmp = QMPClient("baseline")
    await qmp.connect(sock)
    await qmp.execute("stop")
    paused = time.perf_counter()
    if mode == "internal":
        await qmp.execute("snapshot-save", {"job-id": "b", "tag": tag, "vmstate": "disk0",
                                            "devices": ["disk0", "disk1"]})
        while True:
            jobs = [j for j in await qmp.execute("query-jobs") if j["id"] == "b"]
            if jobs and jobs[0]["status"] == "concluded":
                break
            await asyncio.sleep(0.02)
        await qmp.execute("job-dismiss", {"id": "b"})
    else:
        await qmp.execute("transaction", {"actions": [
            {"type": "blockdev-snapshot-sync", "data": {"device": d, "snapshot-file": f,
             "snapshot-node-name": f"b{tag}{i}", "format": "qcow2"}}
            for i, (d, f) in enumerate(zip(["drv0", "drv1"], files[1:]))]})
        old = (await qmp.execute("query-migrate-parameters"))["max-bandwidth"]
        await qmp.execute("migrate-set-parameters", {"max-bandwidth": 1 << 40})
        fd = os.open(files[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        qmp.send_fd_scm(fd)
        await qmp.execute("getfd", {"fdname": "m"})
        os.close(fd)
        await qmp.execute("migrate", {"uri": "fd:m"})
        while (await qmp.execute("query-migrate"))["status"] not in ("completed", "failed"):
            await asyncio.sleep(0.02)
        while (await qmp.execute("query-status"))["status"] == "finish-migrate":
            await asyncio.sleep(0.02)  # until then QEMU refuses cont
        await qmp.execute("migrate-set-parameters", {"max-bandwidth": old})
    await qmp.execute("cont")
    resumed = time.perf_counter()
    await qmp.disconnect()
    hash_ms = 0.0
    if mode == "external":  # what xlsnap must also do: the memory image's sha256
        start = time.perf_counter()
        digest = hashlib.sha256()
        with open(files[0], "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        hash_ms = (time.perf_counter() - start) * 1000
    print(json.dumps({"paused_ms": (resumed - paused) * 1000, "hash_ms": hash_ms,
                      "inner_ms": (time.perf_counter() - t0) * 1000}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
'''


def start_qemu(folder: Path, idle: bool) -> tuple[subprocess.Popen[bytes], Path, list[Path]]:
    qmp_dir = folder / "qmp"
    qmp_dir.mkdir()
    disks = []
    for k in range(2):
        disk = folder / f"disk{k}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
        disks.append(disk)
    ram = folder / "guest.ram"
    with ram.open("wb") as handle:
        if idle:
            handle.truncate(RAM_MIB << 20)
        else:
            for _ in range(RAM_MIB):
                handle.write(os.urandom(1 << 20))
    sock = qmp_dir / "web.qmp"
    argv = [QEMU, "-machine", "q35,accel=tcg,memory-backend=ram", "-m", f"{RAM_MIB}",
            "-object", f"memory-backend-file,id=ram,size={RAM_MIB}M,mem-path={ram},share=on",
            "-nographic", "-nodefaults", "-qmp", f"unix:{sock},server=on,wait=off"]
    for k, disk in enumerate(disks):
        argv += ["-drive", f"file={disk},format=qcow2,if=none,id=drv{k},node-name=disk{k}",
                 "-device", f"virtio-blk-pci,drive=drv{k}"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("QEMU did not start")
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, sock, disks


def run_xlsnap(env: dict[str, str], argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "commands", *argv], env=env, cwd=REPO,
                          capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"xlsnap failed: {proc.stderr}")
    return elapsed


def paused_ms_of_last(home: Path, config_dir: Path) -> tuple[float, float]:
    """``(paused_ms, glue_ms)`` of the last snapshot: the recorded pause, and the part of it
    spent outside the steps' side effects (ledger writes, planning code between steps)."""
    svc = open_services(Settings.resolve(str(home), None, str(config_dir)))
    try:
        events = [e for _, e in svc.app.iter_log()]
    finally:
        svc.close()
    start = max(i for i, e in enumerate(events) if type(e).__name__ == "OperationStarted")
    done = [e.result for e in events[start:] if type(e).__name__ == "StepFinished"]
    actions = [e.action for e in events[start:] if type(e).__name__ == "StepStarted"]
    paused = next(float(r["paused_ms"]) for r in done if r.get("paused_ms") is not None)
    first = actions.index("domain-pause") + 1
    last = actions.index("domain-unpause")
    # paused_ms runs from the end of the stop step to the end of the cont step
    effects = sum(float(r.get("duration_ms", 0)) for r in done[first:last + 1])
    return paused, round(paused - effects, 1)


def run_baseline(script: Path, sock: Path, mode: str, tag: str, files: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), str(sock), mode, tag, *files],
                          capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"baseline failed: {proc.stderr}")
    return {**json.loads(proc.stdout), "command_ms": elapsed}


def startup_ms(argv: list[str], rounds: int) -> float:
    """Median wall time of a process that only starts and imports (the interpreter floor)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, capture_output=True, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def compile_sources() -> None:
    """Byte-compile xlsnap as an install would: with ``PYTHONDONTWRITEBYTECODE`` set (as
    here), every edited module would otherwise be compiled again on every run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "commands", "ledger",
                    "projections"], cwd=REPO, check=True)


def bench(rounds: int, idle: bool, keep: bool,
          modes: tuple[str, ...] = ("internal", "external")) -> dict:
    compile_sources()
    folder = Path(tempfile.mkdtemp(prefix="xlsnap-bench-live-"))
    proc, sock, disks = start_qemu(folder, idle)
    home, config_dir = folder / "home", folder / "xen"
    config_dir.mkdir()
    env = {**os.environ, "XLSNAP_HOME": str(home), "XLSNAP_CONFIG_DIR": str(config_dir),
           "XLSNAP_QMP_DIR": str(sock.parent), "XLSNAP_TOOLSTACK": "qemu"}
    script = folder / "baseline.py"
    script.write_text(BASELINE)
    ext_cfg = folder / "ext.cfg"
    ext_cfg.write_text('type = "external"\n')
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for mode in modes:
            rows = results[mode] = {k: [] for k in (
                "xlsnap_paused_ms", "xlsnap_glue_in_pause_ms", "xlsnap_command_ms",
                "baseline_paused_ms", "baseline_command_ms", "baseline_hash_ms")}
            for r in range(rounds):
                for who in (("xlsnap", "baseline") if r % 2 == 0 else ("baseline", "xlsnap")):
                    os.sync()
                    if who == "xlsnap":
                        extra = [str(ext_cfg)] if mode == "external" else []
                        rows["xlsnap_command_ms"].append(run_xlsnap(
                            env, ["snapshot-create", "-n", f"x{mode[0]}{r}", "web", *extra]))
                        paused, glue = paused_ms_of_last(home, config_dir)
                        rows["xlsnap_paused_ms"].append(paused)
                        rows["xlsnap_glue_in_pause_ms"].append(glue)
                        continue
                    live = {d.device: d.filename for d in Qmp(str(sock)).query_block()}
                    files = [str(folder / f"b{mode[0]}{r}.save")]
                    files += [str(Path(live[d]).with_name(f"b{mode[0]}{r}-{d}.qcow2"))
                              for d in ("drv0", "drv1")]
                    base = run_baseline(script, sock, mode, f"b{mode[0]}{r}", files)
                    Path(files[0]).unlink(missing_ok=True)  # only xlsnap's images are kept
                    rows["baseline_paused_ms"].append(base["paused_ms"])
                    # the QMP steps alone; the sha256 is timed apart (external only)
                    rows["baseline_command_ms"].append(base["command_ms"] - base["hash_ms"])
                    rows["baseline_hash_ms"].append(base["hash_ms"])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    figures: dict[str, dict[str, float]] = {}
    for mode, rows in results.items():
        med = {k: round(statistics.median(v), 1) for k, v in rows.items()}
        # Overhead: the median of the differences within each round (the guest's disks
        # grow round after round, so rounds differ more than the two sides of one round).
        for what in ("paused", "command"):
            diffs = [x - b for x, b in zip(rows[f"xlsnap_{what}_ms"], rows[f"baseline_{what}_ms"])]
            med[f"{what}_overhead_ms"] = round(statistics.median(diffs), 1)
        # The same split per round: time outside the pause (xlsnap's own work, start-up
        # included) and inside it. QEMU's snapshot-save time varies by hundreds of ms
        # from run to run (its writes and flushes), which swamps a paired difference of
        # whole commands; the sum of the two paired medians does not carry that noise
        # twice. Inside the pause, xlsnap's share is its glue.
        outside = [(x - xp) - (b - bp) for x, xp, b, bp in zip(
            rows["xlsnap_command_ms"], rows["xlsnap_paused_ms"],
            rows["baseline_command_ms"], rows["baseline_paused_ms"])]
        med["outside_pause_overhead_ms"] = round(statistics.median(outside), 1)
        med["command_overhead_split_ms"] = round(
            med["outside_pause_overhead_ms"] + med["xlsnap_glue_in_pause_ms"], 1)
        if mode == "external":  # next to a script that also hashes the memory image
            diffs = [x - b - h for x, b, h in zip(rows["xlsnap_command_ms"],
                                                  rows["baseline_command_ms"],
                                                  rows["baseline_hash_ms"])]
            med["command_overhead_beyond_sha256_ms"] = round(statistics.median(diffs), 1)
        figures[mode] = med
    starts = {"xlsnap_startup_ms": startup_ms([sys.executable, "-m", "commands",
                                               "snapshot-create", "--help"], rounds),
              "baseline_startup_ms": startup_ms([sys.executable, "-c", "import qemu.qmp"],
                                                rounds)}
    for med in figures.values():  # the paired overhead less the difference in start-up
        med["command_overhead_after_startup_ms"] = round(
            med["command_overhead_ms"]
            - (starts["xlsnap_startup_ms"] - starts["baseline_startup_ms"]), 1)
    return {"machine": platform.machine(), "python": platform.python_version(), **starts,
            "cpus": os.cpu_count(), "guest_ram_mib": RAM_MIB, "ram": "idle" if idle else "random",
            "rounds": rounds, "figures": figures, "raw": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--idle", action="store_true", help="leave the guest's RAM zero")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--mode", choices=("internal", "external"), action="append",
                        help="measure only this mode (repeatable; default both)")
    args = parser.parse_args()
    if shutil.which(QEMU) is None:
        raise SystemExit(f"{QEMU} is not installed")
    out = bench(args.rounds, args.idle, args.keep, tuple(args.mode or ("internal", "external")))
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{RAM_MIB} MiB guest ({out['ram']} RAM), two qcow2 disks, TCG; median of "
          f"{args.rounds} rounds; times in ms")
    print(f"{'mode':<9} {'paused':>8} {'baseline':>9} {'overhead':>9}   "
          f"{'command':>8} {'baseline':>9} {'overhead':>9}")
    for mode, f in out["figures"].items():
        print(f"{mode:<9} {f['xlsnap_paused_ms']:>8} {f['baseline_paused_ms']:>9} "
              f"{f['paused_overhead_ms']:>9}   {f['xlsnap_command_ms']:>8} "
              f"{f['baseline_command_ms']:>9} {f['command_overhead_ms']:>9}")
    print("command overhead as time outside the pause plus xlsnap's glue inside it: " +
          ", ".join(f"{m} {f['outside_pause_overhead_ms']} + {f['xlsnap_glue_in_pause_ms']}"
                    f" = {f['command_overhead_split_ms']} ms"
                    for m, f in out["figures"].items()))
    ext = out["figures"].get("external")
    if ext:
        print(f"external: the memory image's sha256 took the script "
              f"{ext['baseline_hash_ms']} ms; xlsnap's command overhead next to a script "
              f"that also hashes it: {ext['command_overhead_beyond_sha256_ms']} ms")
    print("xlsnap's pause outside QEMU's work (ledger records, code between steps): " +
          ", ".join(f"{m} {f['xlsnap_glue_in_pause_ms']} ms" for m, f in out["figures"].items()))
    print(f"process start and imports: xlsnap {out['xlsnap_startup_ms']} ms, script "
          f"{out['baseline_startup_ms']} ms; command overhead beyond them: " + ", ".join(
              f"{m} {f['command_overhead_after_startup_ms']} ms"
              for m, f in out["figures"].items()))


if __name__ == "__main__":
    main()
