"""Delete an external snapshot in the middle of a chain: time and bytes the merge writes.

A stopped domain with one disk of ``--size-gib``; ``--layers`` external snapshots, the
guest writing ``--layer-mib`` of a distinct pattern before each. The snapshot in the
middle is deleted (in this process, so the qemu-img it runs are its children and
``getrusage(RUSAGE_CHILDREN).ru_oublock`` counts what they wrote). The minimum that must
move is the smaller side of the merge: the data the overlay holds, or its base holds.
The current disk's content is compared (``qemu-img compare``) with a raw copy taken before.

    PYTHONPATH=. python bench/bench_external_delete.py [--size-gib 1 --layer-mib 256 --layers 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from commands.handlers.create import create_snapshot
from commands.handlers.delete import delete_snapshot
from commands.handlers.messages import CreateSnapshot, DeleteSnapshot
from commands.bootstrap import open_services
from commands.config.settings import Settings

UUID = "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f61"
CHUNK = 64 * 1024 * 1024


def qemu(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True,
                          timeout=3600).stdout


def data_bytes(image: Path) -> int:
    """Bytes of data stored in ``image`` itself (not its backing chain)."""
    extents = json.loads(qemu("qemu-img", "map", "--output=json", str(image)))
    return sum(e["length"] for e in extents if e["data"] and e.get("depth", 0) == 0)


def arguments(doc: str) -> argparse.ArgumentParser:
    """The chain's shape: image size, data per layer, number of layers."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--layer-mib", type=int, default=256)
    parser.add_argument("--layers", type=int, default=10)
    return parser


def build_chain(root: Path, args: argparse.Namespace) -> tuple[Settings, Path, Path]:
    """Domain ``bench`` (stopped) with ``args.layers`` external snapshots, each layer
    written with its own pattern first; returns its settings, image folder and top image."""
    size = int(args.size_gib * 1024 ** 3)
    layer = args.layer_mib * 1024 * 1024
    images, configs, home = root / "images", root / "xen", root / "state"
    images.mkdir()
    configs.mkdir()
    disk = images / "a.qcow2"
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(disk), str(size))
    config = configs / "bench.cfg"
    config.write_text(f'name = "bench"\nuuid = "{UUID}"\n'
                      f'disk = ["{disk},qcow2,xvda,rw"]\n')
    snapcfg = root / "ext.cfg"
    settings = Settings.resolve(str(home), None, str(configs), "offline")
    top = disk
    for k in range(1, args.layers + 1):
        start = ((k - 1) * layer) % size
        for off in range(start, start + layer, CHUNK):
            qemu("qemu-io", "-f", "qcow2", "-c",
                 f"write -P {k} {off % size} {min(CHUNK, layer)}", str(top))
        snapcfg.write_text(f'name = "e{k}"\ntype = "external"\n')
        svc = open_services(settings)
        try:
            create_snapshot(CreateSnapshot("bench", None, str(snapcfg)), svc)
        finally:
            svc.close()
        top = images / f"a.e{k}.qcow2"
    qemu("qemu-io", "-f", "qcow2", "-c", f"write -P 99 0 {CHUNK}", str(top))
    return settings, images, top


def main() -> None:
    args = arguments(__doc__ or "").parse_args()
    root = Path(tempfile.mkdtemp(prefix="xlsnap-bench-"))
    try:
        settings, images, top = build_chain(root, args)
        victim = f"e{args.layers // 2}"
        overlay, base = images / f"a.{victim}.qcow2", images / f"a.e{args.layers // 2 - 1}.qcow2"
        minimum = min(data_bytes(overlay), data_bytes(base))
        copy = root / "current-before.raw"
        qemu("qemu-img", "convert", "-O", "raw", str(top), str(copy))
        svc = open_services(settings)
        written_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * 512
        began = time.perf_counter()
        try:
            freed = delete_snapshot(DeleteSnapshot("bench", victim), svc)
        finally:
            svc.close()
        took = time.perf_counter() - began
        written = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * 512 - written_before
        same = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(copy),
                               str(top)],
                              capture_output=True, timeout=3600).returncode == 0
        print(json.dumps({
            "image_gib": args.size_gib, "layers": args.layers, "layer_mib": args.layer_mib,
            "deleted": victim, "seconds": round(took, 2),
            "merge_bytes_written": written, "minimum_to_move": minimum,
            "ratio": round(written / minimum, 3) if minimum else None,
            "bytes_freed": freed, "current_disk_unchanged": same,
        }, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
