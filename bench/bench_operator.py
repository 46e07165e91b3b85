"""The operator's queries on a large ledger (issue 13): whole ``xlsnap`` processes.

Builds a ledger of DOMAINS domains with SNAPSHOTS snapshots each (a chain with a
branch every 10th snapshot, so there are leaves to find) through the ledger API,
projects it once, then times, best of ROUNDS whole processes each:
``xlsnap domains``, ``xlsnap snapshot-list --leaves --name D``, ``snapshot-info D S``.

    python3 bench/bench_operator.py                       # 1,000 x 100
    python3 bench/bench_operator.py --domains 100 --snapshots 100 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ledger_builder import LedgerBuilder  # noqa: E402

#: The list target of bench/bench_issue2.py (README, Benchmarks): a listing in 300 ms.
LIST_TARGET_MS = 300.0


def build(home: Path, domains: int, snapshots: int) -> float:
    """Write the ledger; returns the seconds it took."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = time.perf_counter()
    builder = LedgerBuilder(home / "ledger.sqlite")
    try:
        for d in range(domains):
            name = f"vm{d:04d}"
            for s in range(snapshots):
                if s and s % 10 == 0:          # a branch: back to an older snapshot
                    builder.revert(name, f"s{s - 5}")
                builder.create(name, f"s{s}")
    finally:
        builder.close()
    return time.perf_counter() - start


def timed(argv: list[str], env: dict[str, str], rounds: int) -> tuple[float, str]:
    """Best and median wall time of ``rounds`` runs of the CLI (checks it succeeds)."""
    times, out = [], ""
    for _ in range(rounds):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "commands", *argv], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{argv}: exit {proc.returncode}: {proc.stderr.strip()}")
        out = proc.stdout
    return min(times), f"best {min(times) * 1000:.0f} ms, median " \
                       f"{statistics.median(times) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "state"
        seconds = build(home, args.domains, args.snapshots)
        env = {**os.environ, "XLSNAP_HOME": str(home), "XLSNAP_CONFIG_DIR": str(Path(tmp))}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "commands", "projections", "rebuild"], env=env,
                       cwd=REPO, check=True, capture_output=True, timeout=3600)
        rebuild = time.perf_counter() - start
        size = (home / "ledger.sqlite").stat().st_size
        print(f"ledger: {args.domains} domains x {args.snapshots} snapshots, written in "
              f"{seconds:.0f} s, projected in {rebuild:.0f} s, {size / 2**20:.0f} MiB")
        middle = f"vm{args.domains // 2:04d}"
        for label, argv in (
                ("domains", ["domains"]),
                ("snapshot-list --leaves", ["snapshot-list", "--leaves", "--name", middle]),
                ("snapshot-info", ["snapshot-info", middle, "s5"]),
                ("snapshot-list", ["snapshot-list", middle])):
            best, text = timed(argv, env, args.rounds)
            verdict = "meets" if best * 1000 <= LIST_TARGET_MS else "MISSES"
            print(f"{label:<24} {text}  ({verdict} the README's list target, "
                  f"<= {LIST_TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
