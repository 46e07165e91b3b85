"""Client start-up (issue 14): what one ``xlsnap`` command costs before any work, and what it
imports, in process and through xlsnapd.

Times whole client processes, interleaved (in process, service, in process, ...), medians
of ROUNDS: ``python -c pass`` (the interpreter alone), ``xlsnap domains`` on an empty
ledger (a command with next to no work) and a stopped domain's ``snapshot-list`` (one
snapshot), each with ``--no-service`` and through a service this script starts (root).
Then counts the modules each client imports (``-X importtime``) and their import time.

    python3 bench/bench_service.py               # 21 rounds
    python3 bench/bench_service.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from commands.service.client import write_launcher  # noqa: E402
from tests.service_fixture import start_xlsnapd  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, timeout=120)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()}")
    return elapsed


def imports(argv: list[str], env: dict[str, str]) -> tuple[int, float]:
    """Modules imported and their cumulative import time (ms) in one run."""
    if not argv[0].endswith("python") and not argv[0].startswith(sys.executable):
        argv = [sys.executable, "-IS", *argv]  # the launcher: its interpreter and flags
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    rows = [line for line in proc.stderr.splitlines() if line.startswith("import time:")
            and "imported package" not in line]
    top = [int(m.group(1)) for line in rows
           if (m := re.match(r"import time:\s+\d+ \|\s+(\d+) \| \S", line))]
    return len(rows), sum(top) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xlsnap-bench-svc-"))
    env = {**os.environ, "XLSNAP_HOME": str(work / "home"), "XLSNAP_CONFIG_DIR": str(work)}
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(work / "a.qcow2"), "16M"],
                   check=True)
    (work / "web.cfg").write_text(f'name = "web"\ndisk = ["{work}/a.qcow2,qcow2,xvda,rw"]\n')
    service = start_xlsnapd(env)
    try:
        served = {**env, "XLSNAP_SOCKET": str(service.socket)}
        local = {**env, "XLSNAP_NO_SERVICE": "1"}
        timed([sys.executable, "-m", "commands", "snapshot-create", "-n", "s1", "web"], local)
        py = [sys.executable, "-m", "commands"]
        launcher = str(work / "xlsnap")  # as scripts/setup.sh installs it
        write_launcher(launcher, sys.executable, str(REPO))
        cases = {"python -c pass": ([sys.executable, "-c", "pass"], local),
                 "python -IS -c pass": ([sys.executable, "-IS", "-c", "pass"], local),
                 "domains, in process": ([*py, "domains"], local),
                 "domains, through xlsnapd": ([*py, "domains"], served),
                 "domains, launcher, through xlsnapd": ([launcher, "domains"], served),
                 "snapshot-list web, in process": ([*py, "snapshot-list", "web"], local),
                 "snapshot-list web, through xlsnapd": ([*py, "snapshot-list", "web"], served),
                 "snapshot-list web, launcher, xlsnapd": ([launcher, "snapshot-list", "web"],
                                                          served)}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (argv, case_env) in cases.items():
                times[name].append(timed(argv, case_env))
        print(f"xlsnap client start-up, medians of {args.rounds} interleaved runs (ms)")
        for name, values in times.items():
            print(f"  {name:38} {statistics.median(values):8.1f}")
        print("imports of one 'xlsnap domains' client (modules, cumulative import ms):")
        for name in ("domains, in process", "domains, through xlsnapd",
                     "domains, launcher, through xlsnapd"):
            count, ms = imports(*cases[name])
            print(f"  {name:38} {count:5d} modules {ms:8.1f} ms")
    finally:
        service.stop()


if __name__ == "__main__":
    main()
