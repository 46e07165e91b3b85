"""Wrong credentials and a missing database on a PostgreSQL ledger: exit 2, one line,
nothing written, and the password (right or wrong) in no output, log, file or event.

The role here must log in with a password (scram-sha-256 on the cluster's socket,
``PgCluster.password_role``); libpq takes it from the URL, ``PGPASSWORD`` or the
password file (``~/.pgpass``, or ``PGPASSFILE``), in that order.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Scratch, read_pattern, tags, write_pattern
from tests.pg_cluster import PgCluster

RIGHT = "right-horse-battery-7"
_ROLES = itertools.count(1)
WRONG = "wrong-staple-guess-3"


@pytest.fixture
def pw_url(pg_cluster: PgCluster) -> str:
    return pg_cluster.password_role(f"pw{os.getpid()}_{next(_ROLES)}", RIGHT)


def _env(scratch: Scratch, home: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in scratch.env().items() if not k.startswith("PGPASS")}
    return {**env, "HOME": str(home), "XLSNAP_LEDGER": url, **extra}


def _pgpass(home: Path, password: str) -> None:
    home.mkdir(exist_ok=True)
    path = home / ".pgpass"
    path.write_text(f"*:*:*:*:{password}\n")
    path.chmod(0o600)


def _with_password(url: str, password: str) -> str:
    role = url.split("//", 1)[1].split("@", 1)[0]
    return url.replace(f"//{role}@", f"//{role}:{password}@", 1)


def _events(pg_cluster: PgCluster, dbname: str) -> list[bytes]:
    with psycopg.connect(dbname=dbname, user="xlsnap", host=str(pg_cluster.root)) as db:
        if db.execute("SELECT to_regclass('xlsnap_events')").fetchone()[0] is None:
            return []
        return [bytes(r[0]) for r in db.execute("SELECT state FROM xlsnap_events")]


def test_wrong_credentials_exit_2_in_one_line_and_change_nothing(
        scratch: Scratch, xlsnap, pg_cluster: PgCluster, pw_url: str, tmp_path: Path) -> None:
    write_pattern(scratch.disk_a, 0x31)
    home = tmp_path / "home"
    home.mkdir()
    dbname = pw_url.split("@/", 1)[1].split("?", 1)[0]
    refused = {
        "wrong password in the URL": xlsnap("snapshot-create", "-n", "s1", "web",
                                            env=_env(scratch, home, _with_password(pw_url,
                                                                                   WRONG))),
        "wrong PGPASSWORD": xlsnap("snapshot-create", "-n", "s1", "web",
                                   env=_env(scratch, home, pw_url, PGPASSWORD=WRONG)),
        "no password at all": xlsnap("snapshot-create", "-n", "s1", "web",
                                     env=_env(scratch, home, pw_url)),
        "wrong password on a read": xlsnap("snapshot-list", "web",
                                           env=_env(scratch, home, pw_url, PGPASSWORD=WRONG)),
    }
    _pgpass(home, WRONG)
    refused["wrong ~/.pgpass"] = xlsnap("snapshot-create", "-n", "s1", "web",
                                        env=_env(scratch, home, pw_url))
    for why, run in refused.items():
        assert run.code == 2, (why, run.err)
        assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err, why
        assert "refused the ledger" in run.err and f"postgresql://{dbname}@" in run.err, why
        assert ("password authentication failed" in run.err
                or "no password supplied" in run.err), (why, run.err)
        assert WRONG not in run.out + run.err and RIGHT not in run.out + run.err, why
    assert tags(scratch.disk_a) == tags(scratch.disk_b) == [] and not scratch.snapshot_files()
    assert _events(pg_cluster, dbname) == []
    assert read_pattern(scratch.disk_a, 0x31)


def test_each_password_source_works_and_the_password_is_never_kept(
        scratch: Scratch, xlsnap, pg_cluster: PgCluster, pw_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    dbname = pw_url.split("@/", 1)[1].split("?", 1)[0]
    write_pattern(scratch.disk_a, 0x41)
    runs = [xlsnap("snapshot-create", "-n", "url", "web",
                   env=_env(scratch, home, _with_password(pw_url, RIGHT))),
            xlsnap("snapshot-create", "-n", "env", "web",
                   env=_env(scratch, home, pw_url, PGPASSWORD=RIGHT))]
    _pgpass(home, RIGHT)
    runs += [xlsnap("snapshot-create", "-n", "pgpass", "web", env=_env(scratch, home, pw_url)),
             xlsnap("history", "--json", "web", env=_env(scratch, home, pw_url)),
             xlsnap("ledger", "info", env=_env(scratch, home, pw_url))]
    assert [r.code for r in runs] == [0] * 5, [r.err for r in runs]
    for run in runs:
        assert RIGHT not in run.out + run.err
    states = _events(pg_cluster, dbname)
    assert states and not any(RIGHT.encode() in s for s in states)
    for path in [*scratch.home.rglob("*"), pg_cluster.log]:
        if path.is_file() and path != home / ".pgpass":
            assert RIGHT.encode() not in path.read_bytes(), path
    assert tags(scratch.disk_a) == tags(scratch.disk_b) == ["url", "env", "pgpass"]
    write_pattern(scratch.disk_a, 0x42)
    revert = xlsnap("snapshot-revert", "-n", "url", "web", env=_env(scratch, home, pw_url))
    assert revert.code == 0, revert.err
    assert read_pattern(scratch.disk_a, 0x41)


def test_a_missing_database_exits_2_naming_it(
        scratch: Scratch, xlsnap, pg_cluster: PgCluster, pw_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = pw_url.replace("@/pw", "@/nodb_pw", 1)
    for args in (("snapshot-create", "-n", "s1", "web"), ("snapshot-list", "web")):
        run = xlsnap(*args, env=_env(scratch, home, missing, PGPASSWORD=RIGHT))
        assert run.code == 2, run.err
        assert 'database "nodb_pw' in run.err and "does not exist" in run.err
        assert len(run.err.strip().splitlines()) == 1 and RIGHT not in run.out + run.err
    assert tags(scratch.disk_a) == [] and not scratch.snapshot_files()
