"""Benchmark of issue 2: ``snapshot-create`` overhead and ``snapshot-list`` at scale.

Figure 1: wall time of a whole ``xlsnap snapshot-create`` process on a stopped domain
with two qcow2 disks, against a baseline of what it cannot avoid: two
``qemu-img snapshot -c`` calls plus importing its libraries. Target: ratio <= 2.5.

Figure 2: wall time of ``xlsnap snapshot-list DOMAIN`` and ``--tree`` for a domain
with 10,000 snapshots, in a ledger of ~50,000 events (that domain alone) and one of
~200,000 events (other domains' events interleaved). Target: <= 300 ms, and flat as
the ledger grows. The ledgers are generated with the ledger API (no disks).

Usage::

    python3 bench/bench_cli_startup.py            # full sizes
    python3 bench/bench_cli_startup.py --quick    # small sizes, for a smoke test
    python3 bench/bench_cli_startup.py --json     # the figures as JSON on stdout

Other options: ``--keep`` (keep the temporary folder), ``--cache-dir DIR`` (reuse
generated ledgers across runs), ``--settle SECONDS`` (wait for a quiet machine before
each timed part), ``--launcher module`` (``python -m commands`` instead of the
installed script), ``--only 1|2``, ``--save FILE`` (JSON copy of the figures).
Commands run with a bytecode cache under the temporary folder (PYTHONPYCACHEPREFIX),
as an installed xlsnap would have one; ``--no-pyc`` keeps the environment's setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ledger.actor import current_actor  # noqa: E402
from ledger.app import LedgerApp  # noqa: E402
from ledger.domain import DomainLedger  # noqa: E402

CREATE_RATIO_TARGET = 2.5
LIST_TARGET_MS = 300.0
#: "Flat": a listing's median grows at most 20 % (or 25 ms) from the smallest ledger.
FLAT_RATIO_TARGET = 1.2
FLAT_SLACK_MS = 25.0
#: --settle waits for the 1-minute load average to drop below this before timing.
SETTLE_LOAD = 1.0
IMPORT_STATEMENT = "import eventsourcing.application, typer, msgpack"
TIMEOUT_S = 300.0
SAVE_EVERY_EVENTS = 200
EVENTS_PER_SNAPSHOT = 5
BIG_DOMAIN = "big"
BIG_UUID = "5b1e0c3a-7d2f-4e8a-9c61-0f3b2a4d5e6f"
EMPTY_DOMAIN = "empty"
SCRATCH_DOMAIN = "web"
SCRATCH_UUID = "6a1c2f0e-8f7b-4a53-9a0e-2b1d3c4e5f60"
OTHER_NS = uuid.UUID("0b6f4d2e-3c1a-4f5b-8e7d-9a0c1b2d3e4f")
#: The domain state a record of a stopped domain carries
#: (commands/handlers/create.py STOPPED_STATE).
STOPPED_STATE = {"state": "shutoff", "running": False, "blocked": False, "paused": False,
                 "shutdown": True, "dying": False}


class BenchError(RuntimeError):
    """A measured command failed, or a result does not check out."""


# ---- sizes -------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How big a run is."""

    create_runs: int
    list_runs: int
    snapshots: int
    ledger_events: tuple[int, ...]
    other_domains: int


FULL = Sizes(create_runs=30, list_runs=7, snapshots=10_000,
             ledger_events=(50_000, 200_000), other_domains=25)
QUICK = Sizes(create_runs=5, list_runs=3, snapshots=500,
              ledger_events=(2_500, 10_000), other_domains=5)


# ---- timing ------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One run: wall seconds, and CPU seconds (user + sys) of it and its children."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Stats:
    """Summary of samples in milliseconds: wall time, plus the median CPU time."""

    n: int
    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    cpu_median_ms: float

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> Stats:
        ms = sorted(s.wall * 1000.0 for s in samples)
        p90 = statistics.quantiles(ms, n=10, method="inclusive")[-1] if len(ms) > 1 else ms[0]
        cpu = statistics.median(s.cpu * 1000.0 for s in samples)
        return cls(len(ms), round(statistics.median(ms), 2), round(p90, 2),
                   round(ms[0], 2), round(ms[-1], 2), round(cpu, 2))


def log(message: str) -> None:
    """Progress on stderr, so ``--json`` output stays clean."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_checked(argv: list[str], env: dict[str, str], capture: bool = False
                ) -> tuple[Sample, bytes]:
    """Run ``argv`` once; returns its sample and stdout (if captured). Raises on failure."""
    stdout = subprocess.PIPE if capture else subprocess.DEVNULL
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=TIMEOUT_S, check=False)
    sample = Sample(time.perf_counter() - start, children_cpu() - cpu)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise BenchError(f"{argv} exited {proc.returncode}: {err}")
    return sample, proc.stdout or b""


def timed(argv: list[str], env: dict[str, str]) -> Sample:
    """One successful run of ``argv`` (output discarded)."""
    return run_checked(argv, env)[0]


def base_env(pycache: Path | None) -> dict[str, str]:
    """The environment of every timed process: no XLSNAP_* settings; bytecode cached.

    With ``pycache``, compiled modules are written under it (PYTHONPYCACHEPREFIX) even
    when PYTHONDONTWRITEBYTECODE is set, as an installed xlsnap would find them; the
    repository itself is left untouched.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLSNAP_")}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def resolve_launcher(kind: str) -> list[str]:
    """argv prefix that starts xlsnap: the installed console script, or ``-m commands``."""
    if kind == "module":
        return [sys.executable, "-m", "commands"]
    beside = Path(sys.executable).parent / "xlsnap"
    found = str(beside) if beside.exists() else shutil.which("xlsnap")
    if found is None:
        raise BenchError("no xlsnap console script found; use --launcher module")
    return [found]


@dataclass(frozen=True)
class Context:
    """What every measurement needs: how to start xlsnap, its environment, the sizes."""

    launcher: list[str]
    base: dict[str, str]
    sizes: Sizes
    settle_s: float = 0.0


def settle(limit_s: float) -> list[float]:
    """Wait up to ``limit_s`` for the load average to drop below SETTLE_LOAD; returns it."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= SETTLE_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    load = [round(x, 2) for x in os.getloadavg()]
    if limit_s > 0:
        log(f"load average {load}")
    return load


# ---- figure 1: snapshot-create ---------------------------------------------------


@dataclass(frozen=True)
class ScratchDomain:
    """A stopped two-disk domain laid out like tests/conftest.py's Scratch."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "xen"

    @property
    def home(self) -> Path:
        return self.root / "state"

    def disk(self, label: str) -> Path:
        return self.root / "images" / f"{label}.qcow2"

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "XLSNAP_HOME": str(self.home), "XLSNAP_CONFIG_DIR": str(self.config_dir)}


def make_scratch(root: Path, qemu_img: str) -> ScratchDomain:
    """Create the domain's config, its two disks, and two baseline disks (16 MiB qcow2)."""
    scratch = ScratchDomain(root)
    for folder in (scratch.config_dir, scratch.home, root / "images"):
        folder.mkdir(parents=True, exist_ok=True)
    for label in ("a", "b", "base-a", "base-b"):
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(scratch.disk(label)), "16M"],
                       check=True, capture_output=True, timeout=60)
    disks = [f"{scratch.disk('a')},qcow2,xvda,rw",
             f"format=qcow2, vdev=xvdb, access=rw, target={scratch.disk('b')}"]
    body = "\n".join(f"    '{d}'," for d in disks)
    (scratch.config_dir / f"{SCRATCH_DOMAIN}.cfg").write_text(
        f'name = "{SCRATCH_DOMAIN}"\nuuid = "{SCRATCH_UUID}"\nmemory = 512\n'
        f"disk = [\n{body}\n]\n")
    return scratch


def figure1_commands(scratch: ScratchDomain, launcher: list[str], qemu_img: str, tag: str
                     ) -> dict[str, list[str]]:
    """The four commands timed in one round; ``tag`` makes snapshot names fresh."""
    return {
        "create": [*launcher, "snapshot-create", "-n", f"bench-{tag}", SCRATCH_DOMAIN],
        "qemu_img_a": [qemu_img, "snapshot", "-c", f"base-{tag}", str(scratch.disk("base-a"))],
        "qemu_img_b": [qemu_img, "snapshot", "-c", f"base-{tag}", str(scratch.disk("base-b"))],
        "import": [sys.executable, "-c", IMPORT_STATEMENT],
    }


def measure_figure1(root: Path, ctx: Context) -> dict[str, Any]:
    """Time create and its baseline, interleaved round by round (one warm-up round)."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        return {"skipped": "qemu-img is not installed"}
    scratch = make_scratch(root, qemu_img)
    env, runs = scratch.env(ctx.base), ctx.sizes.create_runs
    for argv in figure1_commands(scratch, ctx.launcher, qemu_img, "warmup").values():
        timed(argv, env)
    load = settle(ctx.settle_s)
    samples: dict[str, list[Sample]] = {}
    for i in range(runs):
        for key, argv in figure1_commands(scratch, ctx.launcher, qemu_img, str(i)).items():
            samples.setdefault(key, []).append(timed(argv, env))
        log(f"figure 1: round {i + 1}/{runs}")
    for label in ("a", "b", "base-a", "base-b"):
        check_tag_count(qemu_img, scratch.disk(label), runs + 1)
    return {**summarize_figure1({k: Stats.of(v) for k, v in samples.items()}),
            "load_avg": load}


def check_tag_count(qemu_img: str, disk: Path, expected: int) -> None:
    """Every timed run left its internal snapshot in ``disk``."""
    out = subprocess.run([qemu_img, "info", "--output=json", str(disk)], check=True,
                         capture_output=True, timeout=60).stdout
    found = len(json.loads(out).get("snapshots", []))
    if found != expected:
        raise BenchError(f"{disk} has {found} internal snapshots, expected {expected}")


def summarize_figure1(stats: dict[str, Stats]) -> dict[str, Any]:
    """Baseline, ratio and verdict from the per-command statistics."""
    parts = ("qemu_img_a", "qemu_img_b", "import")
    baseline = sum(stats[k].median_ms for k in parts)
    ratio = stats["create"].median_ms / baseline
    cpu_baseline = sum(stats[k].cpu_median_ms for k in parts)
    return {
        "stats": {k: asdict(v) for k, v in stats.items()},
        "baseline_ms": round(baseline, 2),
        "ratio": round(ratio, 3),
        "cpu_baseline_ms": round(cpu_baseline, 2),
        "cpu_ratio": round(stats["create"].cpu_median_ms / cpu_baseline, 3),
        "target_ratio": CREATE_RATIO_TARGET,
        "pass": ratio <= CREATE_RATIO_TARGET,
    }


# ---- figure 2: generated ledgers ---------------------------------------------------


@dataclass(frozen=True)
class LedgerSpec:
    """A ledger: the listed domain's snapshots plus other domains up to ~target events."""

    snapshots: int
    target_events: int
    other_domains: int
    seed: int = 2

    def big_events(self) -> int:
        return 1 + EVENTS_PER_SNAPSHOT * self.snapshots

    def others(self) -> tuple[int, int]:
        """(number of other domains, snapshots each) filling the rest of the target."""
        rest = self.target_events - self.big_events()
        if rest <= self.other_domains or self.other_domains == 0:
            return 0, 0
        each = round((rest - self.other_domains) / (EVENTS_PER_SNAPSHOT * self.other_domains))
        return self.other_domains, max(each, 1)

    def expected_events(self) -> int:
        domains, each = self.others()
        return self.big_events() + domains * (1 + EVENTS_PER_SNAPSHOT * each)

    def filename(self) -> str:
        domains, each = self.others()
        return f"ledger-{self.snapshots}s-{domains}x{each}-seed{self.seed}.sqlite"


def snapshot_record(domain: str, domain_uuid: str, name: str, disks: tuple[str, str],
                    created: int) -> dict[str, Any]:
    """A record shaped like the one commands/handlers/create.py builds for two internal disks."""
    return {
        "name": name, "description": "", "creation_time": created,
        "claimed_creation_time": None, "memory": "no", "type": "internal",
        **STOPPED_STATE,
        "disks": [{"device": dev, "name": name, "file": path, "format": "qcow2",
                   "path": path, "type": "internal"}
                  for dev, path in zip(("xvda", "xvdb"), disks, strict=True)],
        "domain": {"name": domain, "uuid": domain_uuid},
    }


def domain_disks(domain: str) -> tuple[str, str]:
    """Made-up image paths of a generated domain (never opened)."""
    return (f"/var/lib/xen/images/{domain}-a.qcow2", f"/var/lib/xen/images/{domain}-b.qcow2")


@dataclass
class LedgerWriter:
    """Appends create operations to domain ledgers, saving every ~200 events."""

    app: LedgerApp
    base_actor: dict[str, Any]
    pending: int = 0
    events: int = 0
    dirty: dict[str, DomainLedger] = field(default_factory=dict)

    def register(self, name: str, domain_uuid: str) -> DomainLedger:
        ledger = DomainLedger(domain_key=domain_uuid, domain_name=name,
                              domain_uuid=domain_uuid, actor=self.base_actor)
        self._touched(ledger, name, 1)
        return ledger

    def create(self, ledger: DomainLedger, snapshot: str) -> None:
        """The five events of one successful internal snapshot-create."""
        domain = ledger.domain_name
        actor = {**self.base_actor, "argv": ["xlsnap", "snapshot-create", "-n", snapshot, domain]}
        disks = domain_disks(domain)
        op = str(uuid.uuid4())
        ledger.begin(op, "create", snapshot, actor, {})
        ledger.step_started(op, 1, "do", "internal-snapshot-create", disks[0],
                            ["qemu-img", "snapshot", "-c", snapshot, disks[0]], actor)
        ledger.step_finished(op, 1, "do", True, {"returncode": 0}, actor)
        record = snapshot_record(domain, ledger.domain_uuid, snapshot, disks, int(time.time()))
        ledger.record_taken(op, snapshot, record, actor)
        ledger.finish(op, "completed", "", actor)
        self._touched(ledger, domain, EVENTS_PER_SNAPSHOT)

    def _touched(self, ledger: DomainLedger, name: str, events: int) -> None:
        self.dirty[name] = ledger
        self.pending += events
        self.events += events
        if self.pending >= SAVE_EVERY_EVENTS:
            self.flush()

    def flush(self) -> None:
        if self.dirty:
            self.app.save(*self.dirty.values())
        self.dirty.clear()
        self.pending = 0


def creation_schedule(spec: LedgerSpec) -> list[int]:
    """Which domain takes each snapshot: 0 is the listed one; shuffled, seeded."""
    domains, each = spec.others()
    order = [0] * spec.snapshots + [d for d in range(1, domains + 1) for _ in range(each)]
    random.Random(spec.seed).shuffle(order)
    return order


def build_ledger(spec: LedgerSpec, path: Path) -> dict[str, Any]:
    """Generate ``path`` with the product's LedgerApp (its snapshotting included)."""
    start = time.perf_counter()
    app = LedgerApp(str(path))
    writer = LedgerWriter(app, current_actor(["xlsnap", "snapshot-create"]))
    others = [f"other-{d:02d}" for d in range(1, spec.others()[0] + 1)]
    domains = [(BIG_DOMAIN, BIG_UUID)] + [(n, str(uuid.uuid5(OTHER_NS, n))) for n in others]
    ledgers = [writer.register(name, domain_uuid) for name, domain_uuid in domains]
    counters = [0] * len(ledgers)
    for index in creation_schedule(spec):
        writer.create(ledgers[index], f"snap-{counters[index]:05d}")
        counters[index] += 1
    writer.flush()
    app.close()
    return {"events": writer.events, "generate_s": round(time.perf_counter() - start, 2),
            "domains": len(ledgers), "snapshots_per_other_domain": spec.others()[1]}


def cached_ledger(spec: LedgerSpec, folder: Path) -> tuple[Path, dict[str, Any] | None]:
    """The ledger's path and its generation facts, if a finished copy is cached."""
    path = folder / spec.filename()
    marker = path.with_suffix(".json")
    if path.exists() and marker.exists():
        return path, json.loads(marker.read_text())
    return path, None


def build_and_mark(spec: LedgerSpec, path: Path) -> dict[str, Any]:
    """Build a ledger from scratch and write its marker (run in a worker process)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    facts = build_ledger(spec, path)
    if facts["events"] != spec.expected_events():
        raise BenchError(f"generated {facts['events']} events, expected {spec.expected_events()}")
    path.with_suffix(".json").write_text(json.dumps(facts))
    return facts


def ensure_ledgers(specs: list[LedgerSpec], folder: Path) -> dict[LedgerSpec, tuple[Path, dict]]:
    """Cached or freshly generated ledgers, the missing ones built in parallel."""
    out: dict[LedgerSpec, tuple[Path, dict]] = {}
    missing: list[tuple[LedgerSpec, Path]] = []
    for spec in specs:
        path, facts = cached_ledger(spec, folder)
        if facts is None:
            missing.append((spec, path))
        else:
            out[spec] = (path, {**facts, "cached": True})
    if missing:
        log(f"generating {len(missing)} ledger(s) in {folder} (aggregate snapshots included)")
        with ProcessPoolExecutor(max_workers=min(len(missing), os.cpu_count() or 1)) as pool:
            futures = {spec: pool.submit(build_and_mark, spec, path) for spec, path in missing}
            for spec, path in missing:
                out[spec] = (path, {**futures[spec].result(), "cached": False})
                log(f"ledger {path.name}: {out[spec][1]['generate_s']} s")
    return out


def write_list_config(config_dir: Path, name: str, domain_uuid: str) -> None:
    """A domain's DOMAIN.cfg (name, uuid, two disks), so the CLI resolves it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    a, b = domain_disks(name)
    (config_dir / f"{name}.cfg").write_text(
        f'name = "{name}"\nuuid = "{domain_uuid}"\nmemory = 1024\n'
        f"disk = [ '{a},qcow2,xvda,rw', '{b},qcow2,xvdb,rw' ]\n")


def list_env(root: Path, ledger: Path, base: dict[str, str]) -> dict[str, str]:
    """Environment of a listing: the figure's state and config folders, this ledger."""
    return {**base, "XLSNAP_HOME": str(root / "state"), "XLSNAP_CONFIG_DIR": str(root / "xen"),
            "XLSNAP_LEDGER": str(ledger)}


def ledger_sizes(path: Path, events: int) -> dict[str, Any]:
    """File size per event, and the bytes of events, aggregate snapshots and the view."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d "
            "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name").fetchall()
        snapshots, largest = db.execute(
            "SELECT COUNT(*), MAX(LENGTH(state)) FROM stored_snapshots").fetchone()
    finally:
        db.close()
    parts = {"events": 0, "aggregate_snapshots": 0, "view": 0, "other": 0}
    for table, size in rows:
        key = ("events" if table == "stored_events" else
               "aggregate_snapshots" if table == "stored_snapshots" else
               "view" if table.startswith("view_") else "other")
        parts[key] += int(size)
    wal = Path(f"{path}-wal")
    file_bytes = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {"file_bytes": file_bytes, "bytes_per_event": round(file_bytes / events, 1),
            "aggregate_snapshots": snapshots, "largest_aggregate_snapshot_bytes": largest or 0,
            "table_bytes": parts,
            "table_bytes_per_event": {k: round(v / events, 1) for k, v in parts.items()}}


def rebuild_view(launcher: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Time ``xlsnap projections rebuild`` once (it also brings the view up to date)."""
    sample, out = run_checked([*launcher, "projections", "rebuild"], env, capture=True)
    count, seconds = int(out.decode().split()[1]), sample.wall
    return {"events": count, "seconds": round(seconds, 3),
            "events_per_s": round(count / seconds)}


def check_outputs(launcher: list[str], env: dict[str, str], snapshots: int) -> dict[str, Any]:
    """One captured run of each listing: right number of lines; output sizes."""
    _, flat = run_checked([*launcher, "snapshot-list", BIG_DOMAIN], env, capture=True)
    _, tree = run_checked([*launcher, "snapshot-list", "--tree", BIG_DOMAIN], env, capture=True)
    flat_lines, tree_lines = flat.count(b"\n"), tree.count(b"\n")
    if flat_lines != snapshots + 1 or tree_lines != snapshots:
        raise BenchError(f"listing has {flat_lines} lines, tree {tree_lines}; "
                         f"expected {snapshots + 1} and {snapshots}")
    return {"list_bytes": len(flat), "tree_bytes": len(tree),
            "tree_longest_line": max(len(line) for line in tree.splitlines())}


Timed = tuple[list[str], dict[str, str]]
LISTINGS = ("list", "tree")


def listing_commands(ctx: Context, root: Path, ledgers: list[Path]) -> dict[str, Timed]:
    """``list:I`` and ``tree:I`` of the big domain in ledger I; ``floor``: an empty domain."""
    commands: dict[str, Timed] = {}
    for i, path in enumerate(ledgers):
        env = list_env(root, path, ctx.base)
        commands[f"list:{i}"] = ([*ctx.launcher, "snapshot-list", BIG_DOMAIN], env)
        commands[f"tree:{i}"] = ([*ctx.launcher, "snapshot-list", "--tree", BIG_DOMAIN], env)
    empty_env = list_env(root, root / "empty.sqlite", ctx.base)
    commands["floor"] = ([*ctx.launcher, "snapshot-list", EMPTY_DOMAIN], empty_env)
    return commands


def time_rounds(commands: dict[str, Timed], runs: int) -> dict[str, Stats]:
    """``runs`` rounds of every command, interleaved (stdout discarded), after a warm-up.

    Interleaving puts every command under the same machine load, so comparisons
    between them (ledger sizes, the floor) hold even on a busy machine.
    """
    for argv, env in commands.values():
        timed(argv, env)
    samples: dict[str, list[Sample]] = {k: [] for k in commands}
    for i in range(runs):
        for key, (argv, env) in commands.items():
            samples[key].append(timed(argv, env))
        log(f"figure 2: round {i + 1}/{runs}")
    return {k: Stats.of(v) for k, v in samples.items()}


def prepare_ledger(spec: LedgerSpec, path: Path, facts: dict[str, Any], root: Path,
                   ctx: Context) -> dict[str, Any]:
    """Rebuild the view (timed), check the listings' output, size the file."""
    env = list_env(root, path, ctx.base)
    log(f"{path.name}: projections rebuild")
    rebuild = rebuild_view(ctx.launcher, env)
    if rebuild["events"] != facts["events"]:
        raise BenchError(f"rebuild projected {rebuild['events']} events, ledger has "
                         f"{facts['events']}")
    return {"target_events": spec.target_events, "ledger": str(path), "generation": facts,
            "rebuild": rebuild, "outputs": check_outputs(ctx.launcher, env, spec.snapshots),
            "sizes": ledger_sizes(path, facts["events"])}


def add_listing_stats(entry: dict[str, Any], index: int, stats: dict[str, Stats]) -> None:
    """Put ledger ``index``'s listing times, time above the floor and verdicts in ``entry``."""
    mine = {k: stats[f"{k}:{index}"] for k in LISTINGS}
    entry["stats"] = {k: asdict(v) for k, v in mine.items()}
    entry["over_floor_ms"] = {k: round(v.median_ms - stats["floor"].median_ms, 2)
                              for k, v in mine.items()}
    entry["pass"] = {k: v.median_ms <= LIST_TARGET_MS for k, v in mine.items()}


def flatness(ledgers: list[dict[str, Any]]) -> dict[str, Any]:
    """How each listing's median grows from the smallest ledger to the largest.

    Flat when it grows by at most 20 %, or by at most FLAT_SLACK_MS (noise).
    """
    small, large = ledgers[0]["stats"], ledgers[-1]["stats"]
    out: dict[str, Any] = {"ratio": {}, "growth_ms": {}, "pass": {}}
    for key in LISTINGS:
        ratio = large[key]["median_ms"] / small[key]["median_ms"]
        growth = large[key]["median_ms"] - small[key]["median_ms"]
        out["ratio"][key] = round(ratio, 3)
        out["growth_ms"][key] = round(growth, 2)
        out["pass"][key] = ratio <= FLAT_RATIO_TARGET or growth <= FLAT_SLACK_MS
    return out


def measure_figure2(root: Path, cache: Path, ctx: Context) -> dict[str, Any]:
    """Generate (or reuse) the ledgers, prepare each, then time all listings together."""
    sizes = ctx.sizes
    specs = [LedgerSpec(sizes.snapshots, n, sizes.other_domains) for n in sizes.ledger_events]
    built = ensure_ledgers(specs, cache)
    write_list_config(root / "xen", BIG_DOMAIN, BIG_UUID)
    write_list_config(root / "xen", EMPTY_DOMAIN, str(uuid.uuid5(OTHER_NS, EMPTY_DOMAIN)))
    ledgers = [prepare_ledger(s, *built[s], root, ctx) for s in specs]
    load = settle(ctx.settle_s)
    log(f"figure 2: timing listings, {sizes.list_runs} interleaved rounds")
    stats = time_rounds(listing_commands(ctx, root, [built[s][0] for s in specs]),
                        sizes.list_runs)
    for index, entry in enumerate(ledgers):
        add_listing_stats(entry, index, stats)
    return {"snapshots": sizes.snapshots, "target_ms": LIST_TARGET_MS, "load_avg": load,
            "floor": asdict(stats["floor"]), "ledgers": ledgers, "flat": flatness(ledgers)}


# ---- report ------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def stat_line(label: str, stats: dict[str, Any]) -> str:
    return (f"  {label:<40} median {stats['median_ms']:7.1f} ms  p90 {stats['p90_ms']:7.1f} ms"
            f"  (min {stats['min_ms']:.1f}, max {stats['max_ms']:.1f}, "
            f"cpu {stats['cpu_median_ms']:.1f}, n={stats['n']})")


def report_figure1(fig: dict[str, Any]) -> list[str]:
    lines = ["Figure 1: snapshot-create, stopped domain, two qcow2 disks (whole process)"]
    if "skipped" in fig:
        return lines + [f"  SKIPPED: {fig['skipped']}"]
    lines.append(f"  (load average when timing started: {fig['load_avg']})")
    s = fig["stats"]
    lines += [stat_line("xlsnap snapshot-create", s["create"]),
              stat_line("baseline: qemu-img snapshot -c (disk a)", s["qemu_img_a"]),
              stat_line("baseline: qemu-img snapshot -c (disk b)", s["qemu_img_b"]),
              stat_line("baseline: python -c 'import ...'", s["import"]),
              f"  baseline (sum of the three medians)    {fig['baseline_ms']:8.1f} ms",
              f"  ratio median(create) / baseline         {fig['ratio']:8.2f}   "
              f"target <= {fig['target_ratio']}   {verdict(fig['pass'])}",
              f"  (same ratio on median CPU time: {fig['cpu_ratio']:.2f}, "
              f"CPU baseline {fig['cpu_baseline_ms']:.1f} ms; informative only)"]
    return lines


def report_ledger(entry: dict[str, Any]) -> list[str]:
    gen, size, reb, out = entry["generation"], entry["sizes"], entry["rebuild"], entry["outputs"]
    per = size["table_bytes_per_event"]
    cached = " (cached)" if gen.get("cached") else ""
    return [
        f"  ledger ~{entry['target_events']:,} events: {gen['events']:,} events, "
        f"{gen['domains']} domains, generated in {gen['generate_s']} s{cached}",
        f"    file {size['file_bytes'] / 1e6:,.1f} MB = {size['bytes_per_event']:,.0f} B/event "
        f"(events {per['events']:,.0f}, aggregate snapshots {per['aggregate_snapshots']:,.0f}, "
        f"view {per['view']:,.0f}); {size['aggregate_snapshots']} aggregate snapshots, "
        f"largest {size['largest_aggregate_snapshot_bytes'] / 1e6:,.1f} MB",
        f"    projections rebuild: {reb['seconds']:.2f} s = {reb['events_per_s']:,} events/s",
        stat_line("  snapshot-list", entry["stats"]["list"])
        + f"  {verdict(entry['pass']['list'])}",
        stat_line("  snapshot-list --tree", entry["stats"]["tree"])
        + f"  {verdict(entry['pass']['tree'])}",
        f"    above the startup floor: list {entry['over_floor_ms']['list']:.1f} ms, "
        f"tree {entry['over_floor_ms']['tree']:.1f} ms",
        f"    output: list {out['list_bytes'] / 1e6:,.2f} MB, tree {out['tree_bytes'] / 1e6:,.2f} MB"
        f" (longest tree line {out['tree_longest_line']:,} chars)",
    ]


def report_figure2(fig: dict[str, Any]) -> list[str]:
    lines = [f"Figure 2: snapshot-list of a {fig['snapshots']:,}-snapshot domain "
             f"(whole process, stdout to /dev/null, target <= {fig['target_ms']:.0f} ms)",
             f"  (all listings timed in interleaved rounds; load average when timing started: "
             f"{fig['load_avg']})",
             stat_line("startup floor: list of an empty domain", fig["floor"])]
    for entry in fig["ledgers"]:
        lines += report_ledger(entry)
    flat = fig["flat"]
    lines.append("  flat as the ledger grows (largest vs smallest ledger; "
                 f"<= {FLAT_RATIO_TARGET}x or <= +{FLAT_SLACK_MS:.0f} ms):")
    lines += [f"    {key:<5} median ratio {flat['ratio'][key]:.2f}, "
              f"{flat['growth_ms'][key]:+.1f} ms   {verdict(flat['pass'][key])}"
              for key in LISTINGS]
    return lines


def render(result: dict[str, Any]) -> str:
    lines = [f"xlsnap issue 2 benchmark ({result['mode']}) of {result['code']}: "
             f"python {result['python']}, {result['qemu_img']}",
             f"launcher {' '.join(result['launcher'])}; bytecode cache "
             f"{'on' if result['bytecode_cache'] else 'as the environment says'}; "
             f"{result['cpus']} CPUs, load average {result['load_avg_start']} at start, "
             f"{result['load_avg_end']} at end", ""]
    if "figure1" in result:
        lines += report_figure1(result["figure1"]) + [""]
    if "figure2" in result:
        lines += report_figure2(result["figure2"]) + [""]
    lines.append(f"Total bench runtime: {result['runtime_s']:.1f} s")
    return "\n".join(lines)


# ---- main --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--save", type=Path, help="also write the figures as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--cache-dir", type=Path,
                   help="folder of generated ledgers to reuse (kept; default: temporary)")
    p.add_argument("--launcher", choices=("script", "module"), default="script",
                   help="installed console script, or sys.executable -m commands")
    p.add_argument("--only", choices=("1", "2"), help="run one figure only")
    p.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                   help=f"before each timed part, wait up to SECONDS for the 1-minute load "
                        f"average to fall below {SETTLE_LOAD} (shared machines)")
    p.add_argument("--no-pyc", action="store_true",
                   help="run xlsnap with the environment's bytecode settings as they are")
    return p.parse_args(argv)


def qemu_img_version() -> str:
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        return "no qemu-img"
    out = subprocess.run([qemu_img, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines()[0] if out.stdout else "qemu-img ?"


def code_version() -> str:
    """The commit measured, and how many files differ from it (read-only git calls)."""
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", ".", ":!bench"],
                                capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    changed = len(status.splitlines())
    return f"{head or 'unknown'}" + (f" + {changed} changed files" if changed else "")


def machine_facts() -> dict[str, Any]:
    """What the figures depend on besides xlsnap: code, versions, CPUs, load."""
    return {"code": code_version(), "python": platform.python_version(),
            "qemu_img": qemu_img_version(),
            "cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]}


def run_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Both figures (or the one asked for), as one JSON-able dict."""
    start = time.perf_counter()
    ctx = Context(resolve_launcher(args.launcher),
                  base_env(None if args.no_pyc else work / "pycache"),
                  QUICK if args.quick else FULL, args.settle)
    result: dict[str, Any] = {"mode": "quick" if args.quick else "full", **machine_facts(),
                              "launcher": ctx.launcher, "bytecode_cache": not args.no_pyc,
                              "sizes": asdict(ctx.sizes)}
    if args.only in (None, "1"):
        log("figure 1: snapshot-create")
        result["figure1"] = measure_figure1(work / "fig1", ctx)
    if args.only in (None, "2"):
        cache = args.cache_dir or work / "ledgers"
        cache.mkdir(parents=True, exist_ok=True)
        result["figure2"] = measure_figure2(work / "fig2", cache, ctx)
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["runtime_s"] = round(time.perf_counter() - start, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="xlsnap-bench-"))
    try:
        result = run_bench(args, work)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench_cli_startup: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.save:
        args.save.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
