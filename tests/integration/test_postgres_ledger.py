"""A ledger on PostgreSQL: the URL's password never shown nor recorded, the server's
refusals as exit codes, gaps in ``notification_id`` that are not tampering, ``ledger
copy`` and ``ledger info``, and a server lost in the middle of an operation.

Each test gets a fresh database of a throw-away cluster (``pg_url``, ``pg_cluster`` in
tests/conftest.py); these run whichever backend the rest of the suite uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO, Scratch, read_pattern, tags, write_pattern
from tests.integration.test_busy_owner import FAKE, slow_env, start, wait_for_tag
from tests.pg_cluster import PgCluster

SECRET = "hunter2-not-for-logs"


def pg_env(scratch: Scratch, url: str) -> dict[str, str]:
    return {**scratch.env(), "XLSNAP_LEDGER": url}


def sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as db:
        cur = db.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def with_password(url: str) -> str:
    return url.replace("xlsnap@", f"xlsnap:{SECRET}@", 1)


def test_the_password_is_never_printed_logged_nor_recorded(scratch: Scratch, xlsnap,
                                                           pg_url: str) -> None:
    url = with_password(pg_url)
    outputs = [xlsnap("--ledger", url, "snapshot-create", "-n", "s1", "web"),
               xlsnap("--ledger", url, "ledger", "info"),
               xlsnap("--ledger", url, "history", "--json", "web"),
               xlsnap("--ledger", url, "snapshot-delete", "web", "nope"),
               xlsnap("--ledger", url.replace("/t", "/missing_t", 1), "snapshot-list", "web"),
               xlsnap("--ledger", url.replace("?host=", "?host=/nonexistent", 1),
                      "snapshot-list", "web")]
    assert [r.code for r in outputs] == [0, 0, 0, 2, 2, 1], [r.err for r in outputs]
    for run in outputs:
        assert SECRET not in run.out + run.err
    assert "location:       postgresql://xlsnap@/" in outputs[1].out
    stored = sql(pg_url, "SELECT state FROM xlsnap_events")
    assert stored and not any(SECRET.encode() in bytes(r[0]) for r in stored)
    argv = json.loads(outputs[2].out)[0]["actor"]["argv"]
    assert any("xlsnap:***@" in a for a in argv), argv


def test_server_refusals_have_their_exit_codes(scratch: Scratch, xlsnap, pg_url: str) -> None:
    unreachable = xlsnap("--ledger", "postgresql://xlsnap@127.0.0.1:1/x", "snapshot-list", "web")
    assert unreachable.code == 1
    assert "cannot reach PostgreSQL at postgresql://xlsnap@127.0.0.1:1/x" in unreachable.err
    assert "Connection refused" in unreachable.err
    missing = xlsnap("--ledger", pg_url.replace("/t", "/missing_t", 1), "snapshot-list", "web")
    assert missing.code == 2 and 'database "missing_t' in missing.err
    no_role = xlsnap("--ledger", pg_url.replace("xlsnap@", "nobody_here@", 1),
                     "snapshot-create", "web")
    assert no_role.code == 2 and 'role "nobody_here" does not exist' in no_role.err
    for run in (unreachable, missing, no_role):
        assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    assert not scratch.snapshot_files() and tags(scratch.disk_a) == []


def test_a_schema_from_a_newer_xlsnap_is_refused_naming_both_versions(
        scratch: Scratch, xlsnap, pg_url: str) -> None:
    assert xlsnap("--ledger", pg_url, "snapshot-create", "-n", "s1", "web").code == 0
    sql(pg_url, "UPDATE xlsnap_schema SET version = 7")
    before = sql(pg_url, "SELECT COUNT(*) FROM xlsnap_events")
    refused = xlsnap("--ledger", pg_url, "snapshot-create", "-n", "s2", "web")
    assert refused.code == 3
    assert "schema version 7, made by a newer xlsnap" in refused.err
    assert "knows schema version 1" in refused.err
    assert sql(pg_url, "SELECT COUNT(*) FROM xlsnap_events") == before
    assert tags(scratch.disk_a) == ["s1"]


def _gap(url: str) -> None:
    """Consume notification ids as a rolled-back insert does (a lost race)."""
    with psycopg.connect(url) as db:
        db.execute("INSERT INTO xlsnap_events(originator_id, originator_version, topic, state) "
                   "VALUES (gen_random_uuid(), 1, 'x:Y', '\\x00')")
        db.rollback()


def test_gaps_in_positions_are_not_tampering_but_deletions_are(
        scratch: Scratch, xlsnap, pg_url: str) -> None:
    env = pg_env(scratch, pg_url)
    assert xlsnap("snapshot-create", "-n", "s1", "web", env=env).code == 0
    _gap(pg_url)
    _gap(pg_url)
    assert xlsnap("snapshot-create", "-n", "s2", "web", env=env).code == 0
    assert xlsnap("seal", env=env).code == 0
    _gap(pg_url)
    assert xlsnap("snapshot-create", "-n", "s3", "web", env=env).code == 0
    assert xlsnap("seal", env=env).code == 0
    positions = [r[0] for r in sql(pg_url, "SELECT notification_id FROM xlsnap_events "
                                           "ORDER BY notification_id")]
    assert positions != list(range(1, len(positions) + 1))  # the gaps are there
    ok = xlsnap("verify", env=env)
    assert ok.code == 0 and f"{len(positions)} events verified" in ok.out, ok.out + ok.err
    proof = xlsnap("prove", "web", "s3", env=env)
    assert proof.code == 0, proof.err
    doc = json.loads(proof.out)
    assert doc["leaf_index"] < doc["position"] - 1
    checked = subprocess.run([sys.executable, "-m", "commands", "verify-proof", "-"],
                             input=proof.out, capture_output=True, text=True, cwd=REPO,
                             env=env, timeout=60)
    assert checked.returncode == 0, checked.stderr
    victim = positions[len(positions) // 2]
    sql(pg_url, "DELETE FROM xlsnap_events WHERE notification_id = %s", (victim,))
    bad = xlsnap("verify", env=env)
    assert bad.code == 3 and f"sealed at position {victim} is no longer stored" in bad.out + bad.err


def _make_source(scratch: Scratch, xlsnap) -> None:
    write_pattern(scratch.disk_a, 0x11)
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    write_pattern(scratch.disk_a, 0x22)
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    assert xlsnap("snapshot-delete", "web", "s1").code == 0
    assert xlsnap("seal").code == 0
    write_pattern(scratch.disk_a, 0x33)


@pytest.mark.sqlite_only
def test_ledger_copy_moves_every_event_and_the_heads(scratch: Scratch, xlsnap,
                                                     pg_url: str) -> None:
    _make_source(scratch, xlsnap)
    source = str(scratch.ledger)
    env = pg_env(scratch, pg_url)
    copied = xlsnap("ledger", "copy", "--from", source, "--to", pg_url)
    assert copied.code == 0, copied.err
    assert "copied" in copied.out and "tree heads travelled" in copied.out
    for args in (["snapshot-list", "--json", "web"], ["history", "--json", "web"],
                 ["replay", "--at-event", "9", "--json", "web"]):
        here, there = xlsnap(*args), xlsnap(*args, env=env)
        assert here.code == 0 and there.out == here.out, (args, here.err, there.err)
    verified = xlsnap("verify", env=env)
    assert verified.code == 0 and "tree head #1" in verified.out, verified.out + verified.err
    info = json.loads(xlsnap("ledger", "info", "--json", env=env).out)
    assert info["backend"] == "postgresql" and info["last_sealed_head"]["seq"] == 1
    assert info["events"] == json.loads(xlsnap("ledger", "info", "--json").out)["events"]
    again = xlsnap("ledger", "copy", "--from", source, "--to", pg_url)
    assert again.code == 2 and "already copied" in again.err
    assert xlsnap("snapshot-revert", "-n", "s2", "web", env=env).code == 0
    assert read_pattern(scratch.disk_a, 0x22)
    assert xlsnap("seal", env=env).code == 0 and xlsnap("verify", env=env).code == 0


@pytest.mark.sqlite_only
def test_ledger_copy_refuses_a_domain_the_target_holds(scratch: Scratch, xlsnap,
                                                       pg_url: str, tmp_path: Path) -> None:
    _make_source(scratch, xlsnap)
    env = pg_env(scratch, pg_url)
    assert xlsnap("snapshot-create", "-n", "other", "web", env=env).code == 0
    before = sql(pg_url, "SELECT COUNT(*) FROM xlsnap_events")
    refused = xlsnap("ledger", "copy", "--from", str(scratch.ledger), "--to", pg_url)
    assert refused.code == 2 and "already holds domain(s) web" in refused.err
    assert sql(pg_url, "SELECT COUNT(*) FROM xlsnap_events") == before


def _steps_started(url: str) -> int:
    try:
        return sql(url, "SELECT COUNT(*) FROM xlsnap_events "
                        "WHERE topic LIKE '%StepStarted'")[0][0]
    except psycopg.errors.UndefinedTable:  # the command has not made its tables yet
        return 0


@pytest.mark.parametrize("stopped_in", ["step 1", "step 2"])
def test_server_stopped_mid_operation_leaves_it_in_flight_and_recover_finishes(
        scratch: Scratch, xlsnap, pg_url: str, pg_cluster: PgCluster, stopped_in: str) -> None:
    """The server stops while step 1 (tag disk a) or step 2 (tag disk b) runs: its
    intent recorded, its outcome not; the command fails, recover settles it."""
    env = pg_env(scratch, pg_url)
    write_pattern(scratch.disk_a, 0x11)
    write_pattern(scratch.disk_b, 0x12)
    slow_disk = scratch.disk_a if stopped_in == "step 1" else scratch.disk_b
    rule = ["snapshot -c", str(slow_disk), "#sleep=3", "#pass"]
    proc = start(scratch, {**scratch.env(), "XLSNAP_LEDGER": pg_url, "XLSNAP_QEMU_IMG": FAKE,
                           "XLSNAP_TEST_FAIL": json.dumps([rule])},
                 "snapshot-create", "-n", "s1", "web")
    if stopped_in == "step 1":
        deadline = time.monotonic() + 60
        while _steps_started(pg_url) < 1 and proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        wait_for_tag(scratch.disk_a, "s1", proc)
    pg_cluster.stop("immediate")
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        pg_cluster.start()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    busy = xlsnap("snapshot-create", "-n", "s2", "web", env=env)
    assert busy.code == 3 and "recover" in busy.err
    recovered = xlsnap("recover", "web", env=env)
    assert recovered.code == 0, recovered.err
    names = [r["name"] for r in json.loads(xlsnap("snapshot-list", "--json", "web",
                                                  env=env).out)]
    assert tags(scratch.disk_a) == tags(scratch.disk_b) == (["s1"] if names else [])
    write_pattern(scratch.disk_a, 0x21)
    write_pattern(scratch.disk_b, 0x22)
    if names:
        assert xlsnap("snapshot-revert", "-n", "s1", "web", env=env).code == 0
        assert read_pattern(scratch.disk_a, 0x11) and read_pattern(scratch.disk_b, 0x12)
    assert xlsnap("check", "web", env=env).code == 0


def test_another_domain_proceeds_while_an_operation_runs(scratch: Scratch, xlsnap,
                                                         pg_url: str) -> None:
    other = scratch.images / "db.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(other), "16M"], check=True)
    (scratch.config_dir / "db.cfg").write_text(
        'name = "db"\nuuid = "0b5e1c4a-1111-4c2d-8e9f-0123456789ab"\nmemory = 512\n'
        f'disk = ["{other},qcow2,xvda,rw"]\n')
    write_pattern(other, 0x44)
    env = pg_env(scratch, pg_url)
    proc = start(scratch, {**slow_env(scratch, 6), "XLSNAP_LEDGER": pg_url},
                 "snapshot-create", "-n", "s1", "web")
    wait_for_tag(scratch.disk_a, "s1", proc)
    meanwhile = xlsnap("snapshot-create", "-n", "d1", "db", env=env)
    still_running = proc.poll() is None
    busy = xlsnap("snapshot-create", "-n", "s2", "web", env=env)
    out, err = proc.communicate(timeout=120)
    assert meanwhile.code == 0, meanwhile.err
    assert still_running, "the other domain's create waited for the first to finish"
    assert busy.code == 3 and "busy: create 's1' by root" in busy.err and " since " in busy.err
    assert proc.returncode == 0, err
    assert tags(other) == ["d1"] and tags(scratch.disk_a) == tags(scratch.disk_b) == ["s1"]
    write_pattern(other, 0x55)
    assert xlsnap("snapshot-revert", "-n", "d1", "db", env=env).code == 0
    assert read_pattern(other, 0x44)
