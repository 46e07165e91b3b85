"""``prune --all``: every domain the ledger knows; a busy one is reported and the others
are pruned all the same; the exit code says one was not."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from tests.conftest import REPO, Run, Scratch, qemu_img, tag_reads, tags, write_pattern
from tests.e2e.test_bad_input import event_count

Xlsnap = Callable[..., Run]


def _domain(scratch: Scratch, name: str) -> list:
    """A second domain ``name`` with two disks of its own."""
    disks = [scratch.images / f"{name}-{d}.qcow2" for d in ("a", "b")]
    for disk in disks:
        qemu_img("create", "-q", "-f", "qcow2", str(disk), "16M")
    specs = "\n".join(f"    'format=qcow2, vdev=xvd{v}, access=rw, target={p}',"
                      for v, p in zip("ab", disks))
    (scratch.config_dir / f"{name}.cfg").write_text(
        f'name = "{name}"\nuuid = "{uuid.uuid5(uuid.NAMESPACE_DNS, name)}"\n'
        f"memory = 512\ndisk = [\n{specs}\n]\n")
    return disks


def _three_snapshots(xlsnap: Xlsnap, name: str, disks: list, base: int) -> None:
    for k in range(3):
        for j, disk in enumerate(disks):
            write_pattern(disk, base + 16 * j + k)
        assert xlsnap("snapshot-create", "-n", f"s{k}", name).code == 0


def test_prune_all_goes_on_past_a_busy_domain_and_says_so(scratch: Scratch,
                                                          xlsnap: Xlsnap) -> None:
    domains = {"web": [scratch.disk_a, scratch.disk_b], "db": _domain(scratch, "db"),
               "mail": _domain(scratch, "mail")}
    for i, (name, disks) in enumerate(domains.items()):
        _three_snapshots(xlsnap, name, disks, 0x20 + 0x40 * i)
    folder = scratch.root / "fault"
    folder.mkdir()
    env = {**scratch.env(), "XLSNAP_FAULT_INJECT": "pause:1:intent",
           "XLSNAP_FAULT_DIR": str(folder)}
    busy = subprocess.Popen([sys.executable, "-m", "commands", "snapshot-create", "-n", "s9",
                             "db"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if (folder / "paused").exists():
                break
            time.sleep(0.1)
        dry = xlsnap("prune", "--all", "--keep-last", "1", "--dry-run")
        assert dry.code == 3 and "db: not pruned (exit 3)" in dry.err, dry.err
        assert "web: 2 would be deleted, 1 kept" in dry.out
        assert tags(scratch.disk_a) == ["s0", "s1", "s2"]
        before = event_count(scratch.ledger)
        run = xlsnap("prune", "--all", "--keep-last", "1")
    finally:
        (folder / "resume").touch()
        busy.communicate(timeout=60)
    assert run.code == 3, run.err
    assert [line for line in run.err.splitlines()] == [
        line for line in run.err.splitlines() if line.startswith("xlsnap: db: not pruned")]
    assert "busy" in run.err
    assert "mail: 2 deleted, 1 kept" in run.out and "web: 2 deleted, 1 kept" in run.out
    assert "Pruned 2 of 3 domains: 4 snapshots deleted; 1 not pruned: db" in run.out
    assert event_count(scratch.ledger) > before
    assert busy.returncode == 0                         # the busy create finished meanwhile
    for i, (name, disks) in enumerate(domains.items()):
        kept = ["s0", "s1", "s2", "s9"] if name == "db" else ["s2"]
        for j, disk in enumerate(disks):
            assert tags(disk) == kept, (name, disk)
            for k, tag in enumerate(["s0", "s1", "s2"]):
                if tag in kept:
                    assert tag_reads(disk, tag, 0x20 + 0x40 * i + 16 * j + k), (name, tag)


def test_prune_wants_a_domain_or_all_and_a_rule(scratch: Scratch, xlsnap: Xlsnap) -> None:
    for argv, words in [(("prune", "--keep-last", "1"), "give a DOMAIN or --all"),
                        (("prune", "--all", "--keep-last", "1", "web"), "not both"),
                        (("prune", "--all"), "no keep rule")]:
        run = xlsnap(*argv)
        assert run.code == 2 and words in run.err and len(run.err.splitlines()) == 1, run.err
