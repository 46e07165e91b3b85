"""Delete an external snapshot in the middle of a chain of a running QEMU: time, and the
longest single pause of the guest's disk I/O during the merge.

The chain is built as ``bench_external_delete.py`` builds it (``--layers`` external
snapshots of a ``--size-gib`` disk, ``--layer-mib`` of a distinct pattern written before
each), then QEMU (TCG, 64 MiB) runs on its top and xlsnap (toolstack qemu, in this
process) deletes the snapshot in the middle (``--victim`` picks another: ``e10`` is the
disk QEMU writes to, an active commit). QEMU merges with ``block-commit`` while the guest
runs.

How the pause is measured: a second QMP monitor of the same QEMU reads 4 KiB of the live
disk (HMP ``qemu-io drv0 "read ..."``, through the drive's BlockBackend as the guest's
requests go) back to back, from before the delete starts until it ends. Any drained
section (the graph changes at the end of a job), a stop, or a main loop held up shows as
one read that takes long: the longest read is the longest I/O pause the guest could
see. The same probe over the same time before the delete gives the baseline (TCG and
the 2 shared cores are noisy). Each read over 20 ms is listed as ``duration@start`` and
each job state change (``JOB_STATUS_CHANGE``) as ``status@time``, in ms from the start
of the delete, so a long read can be told to fall in the job's graph change or not. The current disk's content is compared (``qemu-img
compare``, QEMU quit) with a raw copy taken before.

    PYTHONPATH=. python bench/bench_external_delete_live.py [--size-gib 1 --layer-mib 256
        --layers 10 --victim e5]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from qemu.qmp.legacy import QEMUMonitorProtocol

from bench.bench_external_delete import arguments, build_chain, qemu
from commands.bootstrap import open_services
from commands.config.settings import Settings
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import DeleteSnapshot


class Probe(threading.Thread):
    """Reads 4 KiB of the live disk back to back over its own monitor; keeps each read's
    start and duration (seconds)."""

    def __init__(self, socket: Path) -> None:
        super().__init__(daemon=True)
        self.monitor = QEMUMonitorProtocol(str(socket))
        self.monitor.connect()
        self.reads: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        offset = 0
        while not self.stopped.is_set():
            start = time.perf_counter()
            self.monitor.cmd_raw("human-monitor-command", {
                "command-line": f'qemu-io drv0 "read {offset} 4k"'})
            self.reads.append((start, time.perf_counter() - start))
            offset = (offset + 1024 * 1024) % (64 * 1024 * 1024)

    def window(self, begin: float, end: float) -> list[float]:
        return [d for s, d in self.reads if begin <= s <= end]


def summary(durations: list[float]) -> dict[str, float]:
    ms = sorted(d * 1000.0 for d in durations)
    return {"reads": len(ms), "max_ms": round(ms[-1], 2),
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
            "median_ms": round(statistics.median(ms), 3)}


def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("--victim", default="")
    args = parser.parse_args()
    victim = args.victim or f"e{args.layers // 2}"
    root = Path(tempfile.mkdtemp(prefix="xlsnap-bench-live-"))
    process = None
    try:
        settings, images, top = build_chain(root, args)
        copy = root / "current-before.raw"
        qemu("qemu-img", "convert", "-O", "raw", str(top), str(copy))
        qmp_dir = root / "qmp"
        qmp_dir.mkdir()
        socket, probe_socket = qmp_dir / "bench.qmp", root / "probe.qmp"
        process = subprocess.Popen([
            "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "64", "-nographic",
            "-nodefaults", "-qmp", f"unix:{socket},server=on,wait=off",
            "-qmp", f"unix:{probe_socket},server=on,wait=off",
            "-drive", f"file={top},format=qcow2,if=none,id=drv0",
            "-device", "virtio-blk-pci,drive=drv0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (socket.exists() and probe_socket.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        probe = Probe(probe_socket)
        probe.start()
        time.sleep(0.5)
        live = Settings.resolve(str(settings.home), settings.ledger, str(settings.config_dir),
                                "qemu", str(qmp_dir))
        svc = open_services(live)
        began, began_wall = time.perf_counter(), time.time()
        try:
            freed = delete_snapshot(DeleteSnapshot("bench", victim), svc)
        finally:
            svc.close()
        ended = time.perf_counter()
        time.sleep(0.5)
        probe.stopped.set()
        probe.join(30)
        took = ended - began
        during = probe.window(began, ended)
        baseline = probe.window(began - took - 0.5, began) if took < 30 else []
        idle = [d for s, d in probe.reads if s < began]
        current = probe.monitor.cmd_raw("query-block")["return"][0]["inserted"]["file"]
        events = [(e["event"], e.get("data", {}).get("status"),
                   round((e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6
                          - began_wall) * 1000.0, 1)) for e in probe.monitor.get_events()
                  if e["event"] == "JOB_STATUS_CHANGE"]
        probe.monitor.cmd_raw("quit")
        process.wait(30)
        same = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(copy),
                               current], capture_output=True, timeout=3600).returncode == 0
        print(json.dumps({
            "image_gib": args.size_gib, "layers": args.layers, "layer_mib": args.layer_mib,
            "deleted": victim, "seconds": round(took, 2), "bytes_freed": freed,
            "io_reads_during_delete": summary(during),
            "io_reads_before_delete": summary(baseline or idle),
            "reads_over_20ms": [f"{d * 1000.0:.1f}ms@{(s - began) * 1000.0:.0f}"
                                for s, d in probe.reads if d > 0.02 and s >= began - 1],
            "job_status": [f"{status}@{at:.0f}" for _, status, at in events],
            "current_disk": Path(current).name, "current_disk_unchanged": same,
        }, indent=2))
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
