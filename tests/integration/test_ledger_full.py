"""A ledger write that fails mid-operation is a failed step: undone, said, left to recover.

The ledger lives on a small tmpfs of its own; a real second process runs a create
whose second disk is slow, and the tmpfs is filled meanwhile, so the ledger's next
write fails with SQLITE_FULL (ENOSPC).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Scratch, mounted_tmpfs, read_pattern, tags, write_pattern
from tests.integration.test_busy_owner import slow_env, wait_for_tag


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (needs root and a kernel that lets us mount)."""
    with mounted_tmpfs(tmp_path / "ledgerfs", "4m") as mount:
        yield mount


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its filesystem is full; returns the file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@pytest.mark.sqlite_only
def test_ledger_disk_full_mid_create_is_undone_and_left_to_recover(
        scratch: Scratch, small_fs: Path) -> None:
    env = {**scratch.env(), "XLSNAP_LEDGER": str(small_fs / "ledger.sqlite")}

    def xlsnap(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "commands", *args], cwd=REPO,
                              env={**env, **(extra or {})}, capture_output=True, text=True,
                              timeout=120)

    write_pattern(scratch.disk_a, 0x11)
    write_pattern(scratch.disk_b, 0x12)
    assert xlsnap("snapshot-create", "-n", "s0", "web").returncode == 0
    write_pattern(scratch.disk_a, 0x21)
    slow = {k: v for k, v in slow_env(scratch, 3).items() if k.startswith("XLSNAP_")}
    proc = subprocess.Popen([sys.executable, "-m", "commands", "snapshot-create", "-n", "s1",
                             "web"], cwd=REPO, env={**env, **slow}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_tag(scratch.disk_a, "s1", proc)
    filler = fill(small_fs)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert err.startswith("xlsnap: error: ledger disk full") and len(err.splitlines()) == 1
    assert "xlsnap recover web" in err and "Traceback" not in err
    # what was done is undone although nothing could be recorded
    assert tags(scratch.disk_a) == ["s0"] and tags(scratch.disk_b) == ["s0"]
    assert read_pattern(scratch.disk_a, 0x21) and read_pattern(scratch.disk_b, 0x12)
    assert not (scratch.domain_dir / "snapshotdata-s1.libxl-json").exists()
    filler.unlink()
    blocked = xlsnap("snapshot-create", "-n", "s2", "web")
    assert blocked.returncode == 3 and "xlsnap recover web" in blocked.stderr
    run = xlsnap("recover", "web")
    assert run.returncode == 0 and "undid create 's1'" in run.stdout, run.stderr
    assert tags(scratch.disk_a) == ["s0"] and tags(scratch.disk_b) == ["s0"]
    rows = json.loads(xlsnap("snapshot-list", "--json", "web").stdout)
    assert [r["name"] for r in rows] == ["s0"]
    assert xlsnap("check", "web").returncode == 0
    assert read_pattern(scratch.disk_a, 0x21)
    assert xlsnap("snapshot-revert", "-n", "s0", "web").returncode == 0
    assert read_pattern(scratch.disk_a, 0x11) and read_pattern(scratch.disk_b, 0x12)
