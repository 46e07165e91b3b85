"""The mutation campaign on PostgreSQL rows: a sealed ledger copied into PostgreSQL
(``ledger copy``, its heads travel), with gaps in its positions, then each mutation of
``tests.tamper_pg`` on a fresh database made from it; ``xlsnap verify`` must exit 3
naming the first bad position, and the untouched copy must verify; a replaced signing
key (the key file alone, or with every head re-signed) is caught by a head kept elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ledger.storage.port import open_db
from tests.conftest import REPO
from tests.ledger_builder import LedgerBuilder, build_busy_ledger
from tests.pg_cluster import PgCluster
from tests.tamper import replace_signing_key
from tests.tamper_pg import PG_MUTATIONS


def run(home: Path, ledger: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XLSNAP_HOME": str(home), "XLSNAP_LEDGER": ledger}
    return subprocess.run([sys.executable, "-m", "commands", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=180)


def clone(cluster: PgCluster, template: str, name: str) -> str:
    with cluster.admin() as db:
        db.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return cluster.url(name)


@pytest.mark.slow
def test_verify_catches_every_mutation_of_postgresql_rows(tmp_path: Path,
                                                          pg_cluster: PgCluster) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    source = tmp_path / "ledger.sqlite"
    build_busy_ledger(source, operations=30).close()
    assert run(home, str(source), "seal").returncode == 0
    base = pg_cluster.new_database()
    url = pg_cluster.url(base)
    copied = run(home, url, "ledger", "copy", "--from", str(source), "--to", url)
    assert copied.returncode == 0 and "tree heads travelled" in copied.stdout, copied.stderr
    with psycopg.connect(url, autocommit=True) as db:  # gaps, as rolled-back inserts leave
        db.execute("SELECT nextval(pg_get_serial_sequence('xlsnap_events', "
                   "'notification_id')) FROM generate_series(1, 5)")
    more = LedgerBuilder(url)  # events after the gap, on another domain
    for i in range(6):
        more.create("extra", f"x{i}")
    more.close()
    shipped = tmp_path / "shipped-head.json"
    assert run(home, url, "seal", "--out", str(shipped)).returncode == 0
    with psycopg.connect(url, autocommit=True) as db:
        gaps = db.execute("SELECT MAX(notification_id) - COUNT(*) FROM xlsnap_events"
                          ).fetchone()[0]
        assert gaps == 5
        size = db.execute("SELECT MAX(notification_id) FROM xlsnap_events").fetchone()[0]
    clean = run(home, url, "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    with pg_cluster.admin() as admin:  # no session may hold the template open
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s", (base,))
    positions = sorted({1, 2, size // 3, size - 1, size})
    tried = caught = 0
    misses: list[str] = []
    for kind, mutation in sorted(PG_MUTATIONS.items()):
        for position in positions:
            name = f"{base}_m{tried}"
            target = clone(pg_cluster, base, name)
            with psycopg.connect(target) as db:
                expected = mutation(db, position, size)
                db.commit()
            result = run(home, target, "verify")
            tried += 1
            if result.returncode == 3 and f"first bad position {expected}:" in result.stderr \
                    and len(result.stderr.strip().splitlines()) == 1:
                caught += 1
            else:
                misses.append(f"{kind} at {position}: {result.returncode} {result.stderr!r}")
            pg_cluster.drop_database(name)
    for number, variant in enumerate(("key file only", "key file and every head re-signed")):
        name = f"{base}_k{number}"
        target = clone(pg_cluster, base, name)
        key_home = tmp_path / f"home-{number}"
        key_home.mkdir(mode=0o700)
        (key_home / "seal.key").write_bytes((home / "seal.key").read_bytes())
        os.chmod(key_home / "seal.key", 0o600)
        db = open_db(target)
        db.execute("BEGIN")
        replace_signing_key(db, key_home / "seal.key")
        db.execute("ROLLBACK" if variant == "key file only" else "COMMIT")
        db.close()
        result = run(key_home, target, "verify", "--head", str(shipped))
        tried += 1
        if result.returncode == 3 and "the signing key was replaced" in result.stderr:
            caught += 1
        else:
            misses.append(f"replaced key ({variant}): {result.returncode} {result.stderr!r}")
        pg_cluster.drop_database(name)
    print(f"\nmutation campaign on PostgreSQL over {size} positions: {caught}/{tried} caught")
    assert not misses, misses
    assert caught == tried == len(PG_MUTATIONS) * len(positions) + 2
