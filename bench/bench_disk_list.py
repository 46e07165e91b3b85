"""How the time to read a domain config grows with its disk list (issue 9, item 15).

    python3 bench/bench_disk_list.py                # 1,000 .. 100,000 disks
    python3 bench/bench_disk_list.py --sizes 10000 100000

For each size it writes an xl.cfg with that many ``disk`` entries and times
``commands.config.domains.load_domain`` (parse, disk specs, duplicate check), and a snapshot
config with as many disks through ``load_snapshot_cfg``, best of 3 each.
Linear growth shows as a steady time per disk.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.config.snapshot_cfg import load_snapshot_cfg  # noqa: E402
from commands.config.domains import load_domain  # noqa: E402


def config_text(disks: int) -> str:
    entries = "".join(f"  '/img/d{i}.qcow2,qcow2,xvd{i},rw',\n" for i in range(disks))
    return f'name = "web"\nuuid = "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f60"\ndisk = [\n{entries}]\n'


def snapshot_config_text(disks: int) -> str:
    entries = "".join(f"  'xvd{i}=/img/d{i}.snap.qcow2',\n" for i in range(disks))
    return f'name = "s1"\ntype = "external"\ndisk = [\n{entries}]\n'


def best_of(folder: Path, disks: int, rounds: int = 3) -> tuple[float, float]:
    (folder / "web.cfg").write_text(config_text(disks))
    (folder / "s1.cfg").write_text(snapshot_config_text(disks))
    domain_times, snapshot_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        domain = load_domain(folder, "web")
        domain_times.append(time.perf_counter() - start)
        assert len(domain.disks) == disks
        start = time.perf_counter()
        snapcfg = load_snapshot_cfg(folder / "s1.cfg")
        snapshot_times.append(time.perf_counter() - start)
        assert len(snapcfg.disks) == disks
    return min(domain_times), min(snapshot_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'disks':>8}  {'domain s':>9}  {'us/disk':>8}  {'snapcfg s':>9}  {'us/disk':>8}")
        for size in args.sizes:
            domain, snapshot = best_of(Path(tmp), size)
            print(f"{size:>8}  {domain:>9.3f}  {domain / size * 1e6:>8.2f}  "
                  f"{snapshot:>9.3f}  {snapshot / size * 1e6:>8.2f}")


if __name__ == "__main__":
    main()
