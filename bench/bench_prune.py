"""``prune --keep-daily 7 --keep-weekly 4`` over hourly snapshots of a two-disk stopped domain.

Makes SNAPSHOTS real internal snapshots on each of two qcow2 disks with ``qemu-img
snapshot -c``, records them in the ledger in bulk through the ledger API (as ``adopt``
records a tag, with creation times an hour apart ending an hour ago, and their metadata
files), then times one whole ``xlsnap prune`` process and counts the events it wrote.
Checks that what it keeps is still on both disks and what it drops is gone.

    python3 bench/bench_prune.py                    # 2,000 snapshots
    python3 bench/bench_prune.py --snapshots 200
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from commands.state.snapshot_metadata import write_metadata  # noqa: E402
from commands.bootstrap import open_services  # noqa: E402
from commands.config.settings import Settings  # noqa: E402

DISKS = ("xvda", "xvdb")


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True,
                          timeout=600).stdout


def tags(path: Path) -> list[str]:
    """The tag names of an image (``qemu-img snapshot -l``, its name column)."""
    lines = qemu_img("snapshot", "-l", "-U", str(path)).splitlines()[2:]
    return [line.split()[1] for line in lines if line.strip()]


def make_domain(root: Path, snapshots: int) -> tuple[Path, Path, list[Path]]:
    """Two disks with ``snapshots`` tags each and the domain's config; returns the folders."""
    config_dir, images, home = root / "xen", root / "images", root / "state"
    for folder in (config_dir, images):
        folder.mkdir()
    home.mkdir(mode=0o700)
    disks = [images / f"{d}.qcow2" for d in DISKS]
    for disk in disks:
        qemu_img("create", "-q", "-f", "qcow2", str(disk), "16M")
        for k in range(snapshots):
            qemu_img("snapshot", "-c", f"h{k:05d}", str(disk))
    specs = [f"    'format=qcow2, vdev={d}, access=rw, target={p}'," for d, p in zip(DISKS, disks)]
    (config_dir / "web.cfg").write_text('name = "web"\nuuid = "6a1c2f0e-8f7b-4a53-9a0e-'
                                        '2b1d3c4e5f60"\nmemory = 512\ndisk = [\n'
                                        + "\n".join(specs) + "\n]\n")
    return config_dir, home, disks


def record_all(config_dir: Path, home: Path, disks: list[Path], snapshots: int) -> None:
    """Record every tag as an adopted snapshot, an hour apart, through the ledger API."""
    svc = open_services(Settings.resolve(str(home), None, str(config_dir)))
    try:
        domain = svc.resolve("web").domain
        ledger = svc.ledger_for(domain)
        domain_dir = svc.settings.domain_dir(domain.uuid)
        newest = time.time() - 3600
        for k in range(snapshots):
            name = f"h{k:05d}"
            record: dict[str, Any] = {
                "name": name, "description": "bench", "type": "internal", "memory": "no",
                "creation_time": int(newest - (snapshots - 1 - k) * 3600),
                "claimed_creation_time": None, "state": "shutoff", "running": False,
                "domain": {"name": "web", "uuid": domain.uuid}, "adopted": True,
                "disks": [{"device": d, "name": name, "file": str(p), "format": "qcow2",
                           "path": str(p), "type": "internal"} for d, p in zip(DISKS, disks)]}
            op = str(uuid.uuid4())
            ledger.begin(op, "adopt", name, svc.actor, {"domain": "web", "record": record})
            ledger.record_taken(op, name, record, svc.actor)
            ledger.finish(op, "completed", "bench: recorded in bulk", svc.actor)
            write_metadata(domain_dir, name, record)
            if k % 200 == 199 or k == snapshots - 1:
                svc.app.save(ledger)
        svc.sync()
    finally:
        svc.close()


def events(home: Path) -> int:
    with sqlite3.connect(home / "ledger.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        config_dir, home, disks = make_domain(root, args.snapshots)
        made = time.perf_counter() - start
        start = time.perf_counter()
        record_all(config_dir, home, disks, args.snapshots)
        recorded = time.perf_counter() - start
        print(f"set-up: {args.snapshots} tags on each of {len(disks)} disks in {made:.0f} s "
              f"(qemu-img snapshot -c), recorded in {recorded:.1f} s")
        env = {**os.environ, "XLSNAP_HOME": str(home), "XLSNAP_CONFIG_DIR": str(config_dir)}
        before = events(home)
        argv = ["prune", "--keep-daily", "7", "--keep-weekly", "4", "web"]
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "commands", *argv], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=7200)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"prune: exit {proc.returncode}: {proc.stderr.strip()}")
        written = events(home) - before
        kept = [tags(d) for d in disks]
        files = sorted(p.name for p in home.rglob("snapshotdata-*"))
        deleted = args.snapshots - len(kept[0])
        assert kept[0] == kept[1] and len(files) == len(kept[0]), (kept, files)
        print(f"xlsnap {' '.join(argv)}: {proc.stdout.strip()}")
        print(f"  {took:.1f} s whole process, {took / max(deleted, 1) * 1000:.0f} ms per "
              f"deleted snapshot ({len(disks)} tags + metadata file each)")
        print(f"  {written} events written ({written / max(deleted, 1):.1f} per deleted "
              f"snapshot), in one operation; kept: {', '.join(kept[0])}")


if __name__ == "__main__":
    main()
