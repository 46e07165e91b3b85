"""Sealing, verifying and proving through the CLI on the scratch domain."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from ledger.signing import create_key_file
from ledger.tree_heads import loads_head
from tests.conftest import Scratch
from tests.tamper import ROW_MUTATIONS, mutate


def test_seal_creates_a_private_key_once_and_writes_a_head(scratch: Scratch, xlsnap,
                                                            tmp_path) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    head_file = tmp_path / "head.json"
    run = xlsnap("seal", "--out", str(head_file))
    assert run.code == 0, run.err
    key = scratch.home / "seal.key"
    assert os.stat(key).st_mode & 0o777 == 0o600 and "Created signing key" in run.err
    assert (scratch.home / "seal.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    head = loads_head(head_file.read_text())
    assert head.signature_ok() and head.tree_size > 0
    pem = key.read_bytes()
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    again = xlsnap("seal", "--out", "-")
    assert again.code == 0 and key.read_bytes() == pem and "Created" not in again.err
    newer = loads_head(again.out)
    assert newer.tree_size > head.tree_size and newer.public_key == head.public_key
    run = xlsnap("verify", "--head", str(head_file), "--pubkey", str(scratch.home / "seal.pub"))
    assert run.code == 0, run.err
    assert run.out.count("ok ") == 3  # two recorded heads and the head file


def test_verify_refuses_a_ledger_never_sealed(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    run = xlsnap("verify")
    assert run.code == 3 and "never sealed" in run.err
    empty = xlsnap("seal", env={**scratch.env(), "XLSNAP_LEDGER": str(scratch.root / "e.db")})
    assert empty.code == 2 and "nothing to seal" in empty.err


@pytest.mark.sqlite_only
def test_verify_names_the_first_bad_position_and_seal_refuses_to_cover_it(
        scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("seal").code == 0
    size = sqlite3.connect(scratch.ledger).execute(
        "SELECT MAX(rowid) FROM stored_events").fetchone()[0]
    mutate(scratch.ledger, ROW_MUTATIONS["flip a byte in a state"], 4, size)
    run = xlsnap("verify", "--json")
    assert run.code == 3 and "first bad position 4:" in run.err
    assert json.loads(run.out)["first_bad_position"] == 4
    mutate(scratch.ledger, ROW_MUTATIONS["truncate the tail"], size - 1, size)
    assert xlsnap("seal").code == 3


def test_a_replaced_key_file_is_refused_by_seal_and_verify(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("seal").code == 0
    (scratch.home / "seal.key").unlink()
    (scratch.home / "seal.pub").unlink()
    assert xlsnap("snapshot-create", "-n", "s2", "web").code == 0
    run = xlsnap("seal")
    assert run.code == 3 and "restore that key" in run.err
    assert not (scratch.home / "seal.key").exists()
    other = scratch.root / "other.key"
    create_key_file(other)
    run = xlsnap("seal", "--key", str(other))  # another key: refused
    assert run.code == 3 and "signing key was replaced" in run.err
    other.rename(scratch.home / "seal.key")
    run = xlsnap("verify")
    assert run.code == 3 and "the signing key was replaced" in run.err


def test_a_key_file_others_can_read_is_refused(scratch: Scratch, xlsnap) -> None:
    assert xlsnap("snapshot-create", "-n", "s1", "web").code == 0
    assert xlsnap("seal").code == 0
    os.chmod(scratch.home / "seal.key", 0o644)
    run = xlsnap("seal")
    assert run.code == 2 and "chmod 600" in run.err


@pytest.mark.slow
def test_prove_gives_a_proof_anyone_checks_offline(scratch: Scratch, xlsnap, tmp_path) -> None:
    for name in ("s1", "s2", "s3"):
        assert xlsnap("snapshot-create", "-n", name, "web").code == 0
    unsealed = xlsnap("prove", "web", "s2")
    assert unsealed.code == 2 and "not sealed yet" in unsealed.err
    old_head = tmp_path / "old.json"
    assert xlsnap("seal", "--out", str(old_head)).code == 0
    assert xlsnap("snapshot-delete", "-n", "s3", "web").code == 0
    assert xlsnap("seal").code == 0
    proof_file = tmp_path / "s2.proof.json"
    run = xlsnap("prove", "web", "s2", "--out", str(proof_file), "--since-head", str(old_head))
    assert run.code == 0, run.err
    proof = json.loads(proof_file.read_text())
    assert proof["tree_head"]["tree_size"] > json.loads(old_head.read_text())["tree_size"]
    deleted = json.loads(xlsnap("prove", "web", "s3").out)  # a deleted snapshot's creation
    assert deleted["position"] < proof["tree_head"]["tree_size"]
    scratch.ledger.rename(scratch.ledger.with_suffix(".away"))
    ok = xlsnap("verify-proof", str(proof_file), "--pubkey", str(scratch.home / "seal.pub"),
                "--head", str(old_head))
    assert ok.code == 0, ok.err
    assert "SnapshotTaken s2 (parent s1)" in ok.out
    proof["audit_path"][0] = "00" * 32
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    bad = xlsnap("verify-proof", str(tmp_path / "bad.json"))
    assert bad.code == 3 and "audit path" in bad.err
    assert xlsnap("verify-proof", str(tmp_path / "nosuch.json")).code == 2
