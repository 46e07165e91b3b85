"""The mutation campaign, through the CLI: every kind of tampering a ledger of a few
hundred events may suffer makes ``xlsnap verify`` exit 3 naming the first bad position.

The library test (test_verification.py) tries each row mutation at every position;
this one runs the real command on a sample of positions, plus a replaced key.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ledger_builder import build_busy_ledger
from tests.tamper import ROW_MUTATIONS, copy_ledger, mutate, replace_signing_key


def run(home: Path, ledger: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XLSNAP_HOME": str(home), "XLSNAP_LEDGER": str(ledger)}
    return subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


@pytest.mark.slow
def test_verify_catches_every_mutation_and_names_the_first_bad_position(tmp_path: Path
                                                                        ) -> None:
    home, ledger = tmp_path / "home", tmp_path / "ledger.sqlite"
    home.mkdir(mode=0o700)
    builder = build_busy_ledger(ledger, operations=30)
    first_seal = builder.app.max_position()
    assert run(home, ledger, "seal").returncode == 0
    builder.busy(30, seed=8)
    size = builder.app.max_position()
    builder.close()
    shipped = tmp_path / "shipped-head.json"
    assert run(home, ledger, "seal", "--out", str(shipped)).returncode == 0
    clean = run(home, ledger, "verify", "--head", str(shipped))
    assert clean.returncode == 0, clean.stderr
    assert 250 <= size <= 400

    positions = sorted({1, 2, first_seal, first_seal + 1, size // 2, size - 1, size})
    tried = caught = 0
    misses: list[str] = []
    for kind, mutation in sorted(ROW_MUTATIONS.items()):
        for position in positions:
            copy = tmp_path / f"copy-{tried}.sqlite"
            copy_ledger(ledger, copy)
            expected = mutate(copy, mutation, position, size)
            result = run(home, copy, "verify", "--head", str(shipped))
            tried += 1
            if result.returncode == 3 and f"first bad position {expected}:" in result.stderr \
                    and len(result.stderr.strip().splitlines()) == 1:
                caught += 1
            else:
                misses.append(f"{kind} at {position}: {result.returncode} {result.stderr!r}")
            copy.unlink()

    for number, variant in enumerate(("key file only", "key file and every head re-signed")):
        copy, key_home = tmp_path / "copy-key.sqlite", tmp_path / f"home-{number}"
        copy_ledger(ledger, copy)
        key_home.mkdir(mode=0o700)
        (key_home / "seal.key").write_bytes((home / "seal.key").read_bytes())
        os.chmod(key_home / "seal.key", 0o600)
        db = sqlite3.connect(copy)
        replace_signing_key(db, key_home / "seal.key")
        if variant == "key file only":
            db.rollback()
        else:
            db.commit()
        db.close()
        result = run(key_home, copy, "verify", "--head", str(shipped))
        tried += 1
        if result.returncode == 3 and "the signing key was replaced" in result.stderr:
            caught += 1
        else:
            misses.append(f"replaced key ({variant}): {result.returncode} {result.stderr!r}")
        copy.unlink()

    print(f"\nmutation campaign over {size} events: {caught}/{tried} caught")
    assert not misses, misses
    assert caught == tried == len(ROW_MUTATIONS) * len(positions) + 2
