"""PostgreSQL against SQLite: concurrent operations, a big ledger's queries, verify, copy.

    python bench/bench_postgres.py [--seconds 60] [--procs 8] [--events 1000000]
                                   [--snapshots 10000] [--copy-events 200000]
                                   [--catchup-events 100000] [--skip own,shared,...]

Starts a throw-away cluster (tests/pg_cluster.py). Parts:
1. ``procs`` processes, each creating and deleting snapshots of its own stopped domain
   (tiny qcow2 images) for ``seconds``, on PostgreSQL and on SQLite: ops/s, the slowest
   operation, errors.
2. ``procs`` processes on ONE domain: each operation proceeds or is refused busy
   (exit 3); after the run, started == finished operations == successes, nothing in
   flight, and every snapshot the ledger lists is tagged in the image.
3. A ledger of ``events`` events with one domain of ``snapshots`` snapshots (built in
   SQLite with the ledger API, the filler by copying rows under new aggregate ids,
   then moved with ``ledger copy``): ``snapshot-list`` whole process (wall and CPU
   time, with the load average: the wall time counts waiting for a core), ``seal`` and
   ``verify`` (events/s) on PostgreSQL.
4. ``projections rebuild`` of a ``catchup-events`` ledger on SQLite and on PostgreSQL
   (the projection's catch-up speed), and ``ledger copy`` of ``copy-events`` events.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ledger_builder import LedgerBuilder  # noqa: E402
from tests.pg_cluster import PgCluster, pg_bin  # noqa: E402

XLSNAP = [sys.executable, "-m", "commands"]


def xlsnap(env: dict[str, str], *args: str, timeout: float = 3600) -> tuple[int, float, str]:
    start = time.perf_counter()
    proc = subprocess.run([*XLSNAP, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return proc.returncode, time.perf_counter() - start, proc.stdout + proc.stderr


def cpu_of(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one command's whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, took, _ = xlsnap(env, *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def domain(root: Path, name: str) -> None:
    (root / "xen").mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    image = root / "img" / f"{name}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1M"], check=True)
    (root / "xen" / f"{name}.cfg").write_text(
        f'name = "{name}"\nmemory = 64\ndisk = ["{image},qcow2,xvda,rw"]\n')


def env_for(root: Path, ledger: str) -> dict[str, str]:
    return {**os.environ, "XLSNAP_HOME": str(root / "state"),
            "XLSNAP_CONFIG_DIR": str(root / "xen"), "XLSNAP_LEDGER": ledger}


def churn(env: dict[str, str], name: str, seconds: float, worker: int) -> dict[str, object]:
    """Create then delete snapshots of ``name`` until time is up."""
    ok = busy = errors = 0
    slowest = 0.0
    end = time.monotonic() + seconds
    n = 0
    last_error = ""
    while time.monotonic() < end:
        n += 1
        snap = f"w{worker}-{n}"
        for args in (("snapshot-create", "-n", snap, name), ("snapshot-delete", name, snap)):
            code, took, out = xlsnap(env, *args)
            slowest = max(slowest, took)
            if code == 0:
                ok += 1
            elif code == 3 and "busy" in out:
                busy += 1
                break
            else:
                errors += 1
                last_error = out.strip()[-300:]
                break
    return {"ok": ok, "busy": busy, "errors": errors, "slowest": slowest,
            "last_error": last_error}


def concurrent(root: Path, ledger: str, procs: int, seconds: float, shared: bool
               ) -> dict[str, object]:
    names = ["shared"] if shared else [f"d{i}" for i in range(procs)]
    for name in names:
        domain(root, name)
    env = env_for(root, ledger)
    start = time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        results = list(pool.map(
            lambda i: churn(env, names[0] if shared else names[i], seconds, i), range(procs)))
    elapsed = time.perf_counter() - start
    ok = sum(int(r["ok"]) for r in results)
    out: dict[str, object] = {
        "ops": ok, "ops_per_s": round(ok / elapsed, 1),
        "slowest_op_s": round(max(float(r["slowest"]) for r in results), 2),
        "busy_refusals": sum(int(r["busy"]) for r in results),
        "errors": sum(int(r["errors"]) for r in results),
        "last_error": next((r["last_error"] for r in results if r["last_error"]), "")}
    if shared:
        code, _, text = xlsnap(env, "history", "--json", "shared")
        events = json.loads(text) if code == 0 else []
        started = sum(e["event"] == "OperationStarted" for e in events)
        finished = sum(e["event"] == "OperationFinished" for e in events)
        out.update(started=started, finished=finished,
                   adds_up=started == finished == ok, check=xlsnap(env, "check", "shared")[0])
    return out


def build_big(path: Path, events: int, snapshots: int) -> int:
    """One domain with ``snapshots`` snapshots, then filler rows up to ``events``."""
    builder = LedgerBuilder(path)
    for i in range(snapshots):
        builder.create("big", f"s{i}")
    for i in range(40):
        builder.create("filler", f"f{i}")
    builder.close()
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    filler = db.execute("SELECT originator_id FROM stored_events WHERE originator_id != ("
                        "SELECT originator_id FROM stored_events WHERE rowid = 1) LIMIT 1"
                        ).fetchone()[0]
    template = db.execute("SELECT COUNT(*) FROM stored_events WHERE originator_id=?",
                          (filler,)).fetchone()[0]
    have = db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    db.execute("BEGIN")
    while have < events:
        db.execute("INSERT INTO stored_events(originator_id, originator_version, topic, state) "
                   "SELECT ?, originator_version, topic, state FROM stored_events "
                   "WHERE originator_id=? ORDER BY originator_version",
                   (os.urandom(16).hex(), filler))
        have += template
    db.execute("COMMIT")
    db.close()
    return have


def big_ledger(root: Path, cluster: PgCluster, events: int, snapshots: int) -> dict[str, object]:
    source = root / "big.sqlite"
    t = time.perf_counter()
    built = build_big(source, events, snapshots)
    out: dict[str, object] = {"events": built, "built_s": round(time.perf_counter() - t, 1)}
    url = cluster.url(cluster.new_database())
    env = env_for(root, url)
    code, took, text = xlsnap(env, "ledger", "copy", "--from", str(source), "--to", url)
    out.update(copy_s=round(took, 1), copy_ok=code == 0)
    if code:
        out["copy_error"] = text[-300:]
        return out
    xlsnap(env, "snapshot-list", "big")  # first run: nothing to catch up (copy projected)
    samples = [cpu_of(env, "snapshot-list", "big") for _ in range(7)]
    listed = xlsnap(env, "snapshot-list", "--json", "big")[2]
    out.update(list_ms=sorted(round(w * 1000) for w, _ in samples),
               list_cpu_ms=sorted(round(c * 1000) for _, c in samples),
               load=os.getloadavg()[0],
               listed=len(json.loads(listed)) if listed.startswith("[") else listed[-200:])
    code, took, _ = xlsnap(env, "seal")
    out.update(seal_s=round(took, 1), seal_ok=code == 0)
    code, took, text = xlsnap(env, "verify")
    out.update(verify_s=round(took, 1), verify_ok=code == 0,
               verify_events_per_s=round(built / took))
    return out


def catch_up(root: Path, cluster: PgCluster, events: int) -> dict[str, object]:
    """``projections rebuild`` (the whole log projected again) on SQLite and PostgreSQL."""
    source = root / "rebuild.sqlite"
    built = build_big(source, events, 1000)
    url = cluster.url(cluster.new_database())
    xlsnap(env_for(root, url), "ledger", "copy", "--from", str(source), "--to", url)
    out: dict[str, object] = {"events": built}
    for backend, ledger in (("sqlite", str(source)), ("postgresql", url)):
        code, took, text = xlsnap(env_for(root, ledger), "projections", "rebuild")
        out[backend] = {"ok": code == 0, "s": round(took, 1),
                        "events_per_s": round(built / took)}
    return out


def copy_only(root: Path, cluster: PgCluster, events: int) -> dict[str, object]:
    source = root / "copy.sqlite"
    built = build_big(source, events, 10)
    url = cluster.url(cluster.new_database())
    code, took, text = xlsnap(env_for(root, url), "ledger", "copy", "--from", str(source),
                              "--to", url)
    return {"events": built, "copy_s": round(took, 1), "ok": code == 0,
            "events_per_s": round(built / took)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=10_000)
    parser.add_argument("--copy-events", type=int, default=200_000)
    parser.add_argument("--catchup-events", type=int, default=100_000)
    parser.add_argument("--skip", default="", help="parts to skip: own,shared,big,catchup,copy")
    args = parser.parse_args()
    bin_dir = pg_bin()
    if bin_dir is None:
        print("PostgreSQL is not installed", file=sys.stderr)
        return 2
    cluster = PgCluster(bin_dir)
    cluster.init()
    cluster.start()
    result: dict[str, object] = {"args": vars(args)}
    try:
        with tempfile.TemporaryDirectory(prefix="xlsnap-bench-pg-") as tmp:
            work = Path(tmp)
            for part in ("own", "shared"):
                if part in args.skip:
                    continue
                for backend in ("postgresql", "sqlite"):
                    root = work / f"{part}-{backend}"
                    ledger = (cluster.url(cluster.new_database()) if backend == "postgresql"
                              else str(root / "state" / "ledger.sqlite"))
                    result[f"{part}/{backend}"] = concurrent(
                        root, ledger, args.procs, args.seconds, part == "shared")
                    print(part, backend, result[f"{part}/{backend}"], flush=True)
            if "big" not in args.skip:
                result["big"] = big_ledger(work, cluster, args.events, args.snapshots)
                print("big", result["big"], flush=True)
            if "catchup" not in args.skip:
                result["catchup"] = catch_up(work, cluster, args.catchup_events)
                print("catchup", result["catchup"], flush=True)
            if "copy" not in args.skip:
                result["copy"] = copy_only(work, cluster, args.copy_events)
                print("copy", result["copy"], flush=True)
    finally:
        cluster.remove()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
