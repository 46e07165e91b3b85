"""Benchmark of the forensics issue on a ledger of 1,000,000 events (SQLite).

Targets (whole ``xlsnap`` processes, as an investigator runs them):
  - ``replay DOMAIN --as-of T`` for any moment T: under 1 s (the worst moments too:
    just before a checkpoint of the busiest domain, which applies the most events);
  - ``verify`` of the whole log: at least 100,000 events/s;
  - ``history --since 1h``: under 300 ms;
and the storage per event, by table.

The ledger is generated with the ledger API: real ``DomainLedger`` events (creates,
reverts, deletes, failed operations, shaped like the commands' own), their
timestamps from a simulated clock spread over a year and ending now (with a writer
whose clock lags now and then), mapped by the application's own mapper and
inserted in large transactions; aggregate snapshots every 200 versions, as the
application takes them. Then the CLI rebuilds the projection and seals it.

Usage::

    python3 bench/bench_forensics.py                 # 1,000,000 events
    python3 bench/bench_forensics.py --quick         # 100,000 events, a smoke test
    python3 bench/bench_forensics.py --cache-dir /var/tmp/xlsnap-bench --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REPLAY_TARGET_MS = 1000.0
VERIFY_TARGET_EPS = 100_000
HISTORY_TARGET_MS = 300.0
TIMEOUT_S = 900.0
SPAN_DAYS = 365
BIG = "big"
DOMAINS = 50
BIG_SHARE = 0.3
MAX_SNAPSHOTS = 40
INSERT_BATCH = 5000
SNAPSHOT_EVERY = 200  # LedgerApp.snapshotting_intervals
NS = uuid.UUID("2f1d0c3b-4a5e-4f60-8b7a-9c0d1e2f3a4b")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- generating the ledger ---------------------------------------------------------


class SimulatedClock:
    """Event times spread evenly (by event count) over ``SPAN_DAYS`` up to ``end``, with
    jitter between operations (that does not add up) and a writer whose clock lags now
    and then."""

    def __init__(self, end: datetime, events: int, rnd: random.Random) -> None:
        self.per_event = timedelta(days=SPAN_DAYS) / events
        self.start = self.now = end - timedelta(days=SPAN_DAYS)
        self.rnd = rnd
        self.lag = timedelta(0)

    def next_operation(self, written: int) -> None:
        """Move to the time of the operation after ``written`` events, give or take."""
        due = self.start + self.per_event * (written + 10 * (self.rnd.random() - 0.5))
        self.now = max(self.now, due)
        self.lag = timedelta(seconds=5) if self.rnd.random() < 0.001 else timedelta(0)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=2)
        return self.now - self.lag


@dataclass
class Generator:
    """Operations on many domains, shaped like the commands' own events."""

    app: Any
    rnd: random.Random
    actor: dict[str, Any]

    def __post_init__(self) -> None:
        from ledger.domain import DomainLedger

        names = [BIG] + [f"vm-{i:02d}" for i in range(1, DOMAINS)]
        self.ledgers = {n: DomainLedger(domain_key=str(uuid.uuid5(NS, n)), domain_name=n,
                                        domain_uuid=str(uuid.uuid5(NS, n)), actor=self.actor)
                        for n in names}
        self.counters = dict.fromkeys(names, 0)
        self.pending: list[Any] = []
        self.events = 0
        self.snapshotted = dict.fromkeys(names, 0)

    def operation(self) -> None:
        domain = BIG if self.rnd.random() < BIG_SHARE else \
            f"vm-{self.rnd.randrange(1, DOMAINS):02d}"
        ledger = self.ledgers[domain]
        names = list(ledger.entries)
        roll = self.rnd.random()
        user = self.rnd.choice(["root", "alice", "bob"])
        actor = {**self.actor, "user": user, "sudo_user": "alice" if user == "root" else None,
                 "pid": self.rnd.randrange(1000, 60000)}
        if len(names) >= MAX_SNAPSHOTS or (names and roll < 0.2):
            self._run(ledger, actor, "delete", names[0], 3,
                      lambda op: ledger.record_removed(op, names[0], actor))
        elif names and roll < 0.35:
            name = self.rnd.choice(names)
            self._run(ledger, actor, "revert", name, 6,
                      lambda op: ledger.record_reverted(op, name, actor))
        elif roll > 0.98:
            self._run(ledger, actor, "create", f"failed-{self.events}", 1, None)
        else:
            self.counters[domain] += 1
            name = f"snap-{self.counters[domain]:06d}"
            record = _record(domain, name)
            self._run(ledger, actor, "create", name, 3,
                      lambda op: ledger.record_taken(op, name, record, actor))
        self.pending += ledger.collect_events()
        self._snapshot(domain, ledger)
        if len(self.pending) >= INSERT_BATCH:
            self.flush()

    def _run(self, ledger: Any, actor: dict[str, Any], kind: str, name: str, steps: int,
             fact: Any) -> None:
        op = str(uuid.uuid4())
        argv = ["xlsnap", f"snapshot-{kind}", "-n", name, ledger.domain_name]
        actor = {**actor, "argv": argv}
        ledger.begin(op, kind, name, actor, {"domain": ledger.domain_name})
        for step in range(1, steps + 1):
            disk = f"/var/lib/xen/images/{ledger.domain_name}-{'ab'[step % 2]}.qcow2"
            cmd = ["qemu-img", "snapshot", "-c" if kind == "create" else "-a", name, disk]
            ledger.step_started(op, step, "do", f"{kind}-step", disk, cmd, actor)
            ok = fact is not None or step < steps
            ledger.step_finished(op, step, "do", ok, {
                "argv": cmd, "returncode": 0 if ok else 1, "stdout": "",
                "stderr": "" if ok else "qemu-img: Could not create snapshot: No space left",
                "seconds": round(self.rnd.random() / 10, 4)}, actor)
        if fact is not None:
            fact(op)
            ledger.finish(op, "completed", "", actor)
        else:
            ledger.finish(op, "compensated", "what was done has been undone", actor)

    def _snapshot(self, domain: str, ledger: Any) -> None:
        if ledger.version // SNAPSHOT_EVERY > self.snapshotted[domain]:
            self.snapshotted[domain] = ledger.version // SNAPSHOT_EVERY
            self.flush()
            self.app.snapshots.put([type(ledger).Snapshot.take(ledger)])

    def flush(self) -> None:
        if self.pending:
            stored = [self.app.mapper.to_stored_event(e) for e in self.pending]
            self.app.recorder.insert_events(stored)
            self.events += len(self.pending)
            self.pending.clear()


def _record(domain: str, name: str) -> dict[str, Any]:
    disks = [f"/var/lib/xen/images/{domain}-{x}.qcow2" for x in "ab"]
    return {"name": name, "description": "", "creation_time": 0, "claimed_creation_time": None,
            "memory": "no", "type": "internal", "state": "shutoff", "running": False,
            "blocked": False, "paused": False, "shutdown": True, "dying": False,
            "disks": [{"device": dev, "name": name, "file": path, "format": "qcow2",
                       "path": path, "type": "internal"}
                      for dev, path in zip(("xvda", "xvdb"), disks, strict=True)],
            "domain": {"name": domain, "uuid": str(uuid.uuid5(NS, domain))}}


def generate(path: Path, target: int, seed: int = 3) -> dict[str, Any]:
    """Write a ledger of about ``target`` events at ``path``."""
    import eventsourcing.domain

    from ledger.actor import current_actor
    from ledger.app import LedgerApp

    start = time.perf_counter()
    rnd = random.Random(seed)
    clock = SimulatedClock(datetime.now(timezone.utc), target, rnd)
    saved = eventsourcing.domain.CanCreateTimestamp.__dict__["create_timestamp"]
    eventsourcing.domain.CanCreateTimestamp.create_timestamp = staticmethod(clock)
    try:
        app = LedgerApp(str(path))
        gen = Generator(app, rnd, current_actor(["xlsnap"]))
        while gen.events + len(gen.pending) < target:
            clock.next_operation(gen.events + len(gen.pending))
            gen.operation()
        gen.flush()
        app.close()
    finally:
        eventsourcing.domain.CanCreateTimestamp.create_timestamp = saved
    return {"events": gen.events, "generate_s": round(time.perf_counter() - start, 1),
            "domains": DOMAINS, "generated_at": time.time()}


def cached_ledger(folder: Path, target: int) -> tuple[Path, dict[str, Any]]:
    path = folder / f"forensics-{target}.sqlite"
    marker = path.with_suffix(".json")
    if path.exists() and marker.exists():
        return path, {**json.loads(marker.read_text()), "cached": True}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    log(f"generating a ledger of {target:,} events in {path}")
    facts = generate(path, target)
    marker.write_text(json.dumps(facts))
    return path, {**facts, "cached": False}


# ---- measuring -----------------------------------------------------------------------


def launcher() -> list[str]:
    beside = Path(sys.executable).parent / "xlsnap"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "commands"]


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=TIMEOUT_S, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode().strip()}")
    return elapsed, proc.stdout.decode(errors="replace")


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1), "p90_ms": round(p90, 1),
            "min_ms": round(ms[0], 1), "max_ms": round(ms[-1], 1)}


def replay_moments(db: sqlite3.Connection, count: int, rnd: random.Random
                   ) -> list[tuple[str, str, str]]:
    """(label, domain, --as-of value): random moments, and the worst ones for BIG."""
    from ledger.domain import domain_ledger_id
    from projections.checkpoints import EVERY

    low, high = db.execute("SELECT MIN(high_water), MAX(high_water) FROM view_timeline"
                           ).fetchone()
    domain_id = str(domain_ledger_id(str(uuid.uuid5(NS, BIG))))
    moments = [("random", rnd.choice([BIG, "vm-07", "vm-33"]),
                f"@{low + rnd.random() * (high - low):.6f}") for _ in range(count)]
    points = [p for (p,) in db.execute(
        "SELECT position FROM view_checkpoints WHERE domain_id=? ORDER BY position",
        (domain_id,))]
    for position in points[-3:]:  # just before a checkpoint: EVERY - 1 events to apply
        before = db.execute("SELECT MAX(t.position) FROM view_timeline t JOIN "
                            "view_timeline_domains d ON d.id = t.domain WHERE d.domain_id=? "
                            "AND t.position < ?", (domain_id, position)).fetchone()[0]
        stamp = db.execute("SELECT high_water FROM view_timeline WHERE position=?",
                           (before,)).fetchone()[0]
        nxt = db.execute("SELECT MIN(high_water) FROM view_timeline WHERE high_water > ?",
                         (stamp,)).fetchone()[0]
        moments.append((f"worst (checkpoint every {EVERY})", BIG,
                        f"@{(stamp + nxt) / 2 if nxt else stamp:.6f}"))
    return moments


def table_sizes(path: Path, events: int) -> dict[str, Any]:
    db = sqlite3.connect(path)
    rows = db.execute("SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m "
                      "ON m.name = d.name GROUP BY m.tbl_name").fetchall()
    db.close()
    groups = {"events": ("stored_events",), "aggregate snapshots": ("stored_snapshots",),
              "tree view": ("view_domains", "view_snapshots", "view_tracking"),
              "time index": ("view_timeline", "view_timeline_domains", "view_operations",
                             "view_actors"),
              "replay checkpoints": ("view_checkpoints",),
              "leaf hashes": ("ledger_leaves",), "tree heads": ("ledger_tree_heads",)}
    parts = {k: 0 for k in groups} | {"other": 0}
    for table, size in rows:
        key = next((k for k, v in groups.items() if table in v), "other")
        parts[key] += int(size)
    wal = Path(f"{path}-wal")
    total = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {"file_bytes": total, "bytes_per_event": round(total / events, 1),
            "per_event": {k: round(v / events, 1) for k, v in parts.items()}}


def measure(path: Path, facts: dict[str, Any], work: Path, runs: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLSNAP_")}
    env.update({"XLSNAP_HOME": str(work / "home"), "XLSNAP_LEDGER": str(path),
                "XLSNAP_CONFIG_DIR": str(work / "xen")})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    (work / "xen").mkdir(parents=True, exist_ok=True)
    xl = launcher()
    events = facts["events"]
    out: dict[str, Any] = {"events": events}

    log("projections rebuild (time index and checkpoints included)")
    seconds, _ = run([*xl, "projections", "rebuild"], env)
    out["rebuild"] = {"seconds": round(seconds, 1), "events_per_s": round(events / seconds)}
    log("seal (the whole log, first time)")
    seconds, _ = run([*xl, "seal", "--out", str(work / "head.json")], env)
    out["seal"] = {"seconds": round(seconds, 2), "events_per_s": round(events / seconds)}
    run([*xl, "snapshot-list", BIG], env)  # warm the bytecode cache

    log(f"verify x{runs}")
    samples = [run([*xl, "verify", "--head", str(work / "head.json")], env)[0]
               for _ in range(runs)]
    best = statistics.median(samples)
    out["verify"] = {**stats(samples), "events_per_s": round(events / best),
                     "pass": events / best >= VERIFY_TARGET_EPS}
    log("verify --deep (checkpoints derived again)")
    seconds, _ = run([*xl, "verify", "--deep"], env)
    out["verify_deep"] = {"seconds": round(seconds, 2), "events_per_s": round(events / seconds)}

    db = sqlite3.connect(path)
    moments = replay_moments(db, 3 * runs, random.Random(5))
    since = time.time() - 3600
    last = db.execute("SELECT MAX(high_water) FROM view_timeline").fetchone()[0]
    db.close()
    log(f"replay --as-of x{len(moments)}")
    replay: dict[str, list[float]] = {}
    for label, domain, moment in moments:
        seconds, _ = run([*xl, "replay", domain, "--as-of", moment], env)
        replay.setdefault(label, []).append(seconds)
    everything = [s for v in replay.values() for s in v]
    out["replay"] = {label: stats(v) for label, v in replay.items()}
    out["replay_all"] = {**stats(everything),
                         "pass": max(everything) * 1000 < REPLAY_TARGET_MS}

    window = "1h" if last >= since else f"@{last - 3600:.3f}"
    log(f"history --since {window} x{runs}")
    samples, lines = [], 0
    for _ in range(runs):
        seconds, text = run([*xl, "history", "--since", window], env)
        samples.append(seconds)
        lines = text.count("\n")
    out["history"] = {**stats(samples), "since": window, "events_shown": lines,
                      "pass": statistics.median(samples) * 1000 < HISTORY_TARGET_MS}
    floor = [run([*xl, "history", "--since", "@9999999999"], env)[0] for _ in range(runs)]
    out["history_floor"] = stats(floor)
    seconds, text = run([sys.executable, "-c", HISTORY_IN_PROCESS, window, str(runs)], env)
    out["history_in_process"] = {**json.loads(text),
                                 "pass": json.loads(text)["median_ms"] < HISTORY_TARGET_MS}

    log("prove, export --since 1d")
    seconds, _ = run([*xl, "prove", BIG, _some_snapshot(path)], env)
    out["prove_s"] = round(seconds, 2)
    seconds, _ = run([*xl, "export", "--since", "1d", "--out", str(work / "day.jsonl")], env)
    out["export_1d_s"] = round(seconds, 2)
    out["sizes"] = table_sizes(path, events)
    return out


#: ``history --since`` inside one process, after start-up: open the ledger, catch the
#: view up, select through the time index, decode, render (what this issue controls).
HISTORY_IN_PROCESS = """
import contextlib, io, json, statistics, sys, time
import typer
import commands.cli.main as cli
cli._register()
command = typer.main.get_command(cli.app)

def history(since):
    command.main(args=["history", "--since", since], prog_name="xlsnap",
                 standalone_mode=False)

with contextlib.redirect_stdout(io.StringIO()):
    history("@9999999999")  # imports, and typer's first parse
samples = []
for _ in range(int(sys.argv[2])):
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        history(sys.argv[1])
    samples.append((time.perf_counter() - start) * 1000)
print(json.dumps({"median_ms": round(statistics.median(samples), 1),
                  "max_ms": round(max(samples), 1), "lines": out.getvalue().count(chr(10))}))
"""


def _some_snapshot(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT s.name FROM view_snapshots s JOIN view_domains d ON "
                         "d.domain_id = s.domain_id WHERE d.name=? ORDER BY s.position LIMIT 1",
                         (BIG,)).fetchone()
        return str(row[0])
    finally:
        db.close()


# ---- report ----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def line(label: str, s: dict[str, float]) -> str:
    return (f"  {label:<44} median {s['median_ms']:8.1f} ms  p90 {s['p90_ms']:8.1f} ms  "
            f"max {s['max_ms']:8.1f} ms  (n={s['n']})")


def render(result: dict[str, Any]) -> str:
    m, g = result["measures"], result["generation"]
    per = m["sizes"]["per_event"]
    out = [f"xlsnap forensics benchmark: python {result['python']}, {result['cpus']} CPUs, "
           f"load {result['load_start']} at start, {result['load_end']} at end",
           f"ledger: {m['events']:,} events, {g['domains']} domains, spread over {SPAN_DAYS} "
           f"days, generated in {g['generate_s']} s{' (cached)' if g.get('cached') else ''}",
           f"  projections rebuild: {m['rebuild']['seconds']} s "
           f"({m['rebuild']['events_per_s']:,} events/s); first seal: {m['seal']['seconds']} s "
           f"({m['seal']['events_per_s']:,} events/s)", "",
           "replay DOMAIN --as-of T (whole process):"]
    for label, s in m["replay"].items():
        out.append(line(label, s))
    out.append(f"  slowest of all {m['replay_all']['n']}: {m['replay_all']['max_ms']:.1f} ms, "
               f"target < {REPLAY_TARGET_MS:.0f} ms  {verdict(m['replay_all']['pass'])}")
    v = m["verify"]
    out += ["", "verify (whole log, whole process):", line("verify --head HEAD", v),
            f"  {v['events_per_s']:,} events/s, target >= {VERIFY_TARGET_EPS:,}  "
            f"{verdict(v['pass'])}",
            f"  verify --deep (every checkpoint derived again): {m['verify_deep']['seconds']} s "
            f"= {m['verify_deep']['events_per_s']:,} events/s (no target)"]
    h = m["history"]
    out += ["", f"history --since {h['since']} ({h['events_shown']} events shown):",
            line("history --since", h),
            line("floor: history with nothing to show", m["history_floor"]),
            f"  whole process: target < {HISTORY_TARGET_MS:.0f} ms (median)  "
            f"{verdict(h['pass'])}",
            f"  in one process after start-up (open, catch up, select, decode, render): "
            f"median {m['history_in_process']['median_ms']} ms, max "
            f"{m['history_in_process']['max_ms']} ms  "
            f"{verdict(m['history_in_process']['pass'])}",
            "", f"prove {BIG} SNAPSHOT: {m['prove_s']} s; export --since 1d: "
            f"{m['export_1d_s']} s", "",
            f"storage: {m['sizes']['file_bytes'] / 1e6:,.1f} MB = "
            f"{m['sizes']['bytes_per_event']:,.0f} bytes/event, of which "
            + ", ".join(f"{k} {v:,.0f}" for k, v in per.items() if v)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    parser.add_argument("--events", type=int, help="ledger size (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per timed command")
    parser.add_argument("--cache-dir", type=Path, help="keep and reuse generated ledgers here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    target = args.events or (100_000 if args.quick else 1_000_000)
    work = Path(tempfile.mkdtemp(prefix="xlsnap-forensics-"))
    try:
        cache = args.cache_dir or work / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        cached, facts = cached_ledger(cache, target)
        ledger = work / "ledger.sqlite"  # a fresh copy: rebuild and seal write to it
        shutil.copyfile(cached, ledger)
        result = {"python": platform.python_version(), "cpus": os.cpu_count(),
                  "load_start": [round(x, 2) for x in os.getloadavg()], "generation": facts}
        result["measures"] = measure(ledger, facts, work, args.runs)
        result["load_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
