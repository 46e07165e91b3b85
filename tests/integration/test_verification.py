"""Sealing and verifying a ledger through the library: heads, keys, caches, bindings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ledger.merkle import consistency_path, verify_consistency
from ledger.seal import SealRefused, seal_ledger
from ledger.signing import create_key_file, load_key_file
from ledger.tree_heads import LEAVES_TABLE, cached_leaves, recorded_heads
from ledger.verification import verify_ledger
from tests.ledger_builder import build_busy_ledger
from tests.tamper import ROW_MUTATIONS, copy_ledger, mutate, replace_signing_key


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path, int]:
    """A ledger of a few hundred events, sealed twice; (ledger, key, size)."""
    ledger = tmp_path / "ledger.sqlite"
    builder = build_busy_ledger(ledger, operations=40)
    key_path = tmp_path / "seal.key"
    key = create_key_file(key_path)
    seal_ledger(str(ledger), key)
    for i in range(20):
        builder.create("web", f"later-{i}")
    size = builder.app.max_position()
    builder.close()
    seal_ledger(str(ledger), key)
    return ledger, key_path, size


def test_a_sealed_ledger_verifies(sealed: tuple[Path, Path, int]) -> None:
    ledger, _, size = sealed
    report = verify_ledger(str(ledger))
    assert report.ok, report.headline()
    assert report.size == size and [c.status for c in report.checks] == ["ok", "ok"]


@pytest.mark.sqlite_only
def test_each_seal_extends_the_previous_tree(sealed: tuple[Path, Path, int]) -> None:
    ledger, _, _ = sealed
    db = sqlite3.connect(ledger)
    first, second = recorded_heads(db)
    leaves = cached_leaves(db, second.tree_size)
    db.close()
    path = consistency_path(leaves, first.tree_size, second.tree_size)
    assert verify_consistency(first.tree_size, second.tree_size, first.root_hash,
                              second.root_hash, path)


def test_events_after_the_last_seal_are_reported_unsealed(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    builder = build_busy_ledger(ledger, operations=5)
    seal_ledger(str(ledger), create_key_file(tmp_path / "k.key"))
    builder.create("web", "unsealed")
    builder.close()
    report = verify_ledger(str(ledger))
    assert report.ok and "not covered by any tree head" in report.notes[0]


def test_sealing_with_another_key_is_refused(sealed: tuple[Path, Path, int],
                                             tmp_path: Path) -> None:
    ledger, _, _ = sealed
    other = create_key_file(tmp_path / "other.key")
    with pytest.raises(SealRefused, match="not the key that signed"):
        seal_ledger(str(ledger), other)


def test_sealing_a_truncated_log_is_refused(sealed: tuple[Path, Path, int]) -> None:
    ledger, key_path, size = sealed
    mutate(ledger, ROW_MUTATIONS["truncate the tail"], size - 3, size)
    with pytest.raises(SealRefused, match="events were removed"):
        seal_ledger(str(ledger), load_key_file(key_path))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(ROW_MUTATIONS))
def test_every_mutation_at_every_position_names_it(sealed: tuple[Path, Path, int],
                                                   tmp_path: Path, kind: str) -> None:
    ledger, _, size = sealed
    copy = tmp_path / "copy.sqlite"
    for position in range(1, size + 1):
        copy_ledger(ledger, copy)
        expected = mutate(copy, ROW_MUTATIONS[kind], position, size)
        report = verify_ledger(str(copy))
        assert not report.ok, (kind, position)
        assert report.first_bad_position == expected, (kind, position, report.headline())
        copy.unlink()


def test_a_cache_altered_alone_is_caught_and_the_log_cleared(
        sealed: tuple[Path, Path, int]) -> None:
    ledger, _, _ = sealed
    db = sqlite3.connect(ledger)
    db.execute(f"UPDATE {LEAVES_TABLE} SET leaf=? WHERE position=42", (b"\x00" * 32,))
    db.commit()
    db.close()
    report = verify_ledger(str(ledger))
    assert report.first_bad_position == 42
    assert "the cache was altered" in report.headline()


def test_a_log_and_cache_altered_together_still_fail_with_a_range(
        sealed: tuple[Path, Path, int]) -> None:
    ledger, _, size = sealed
    mutate(ledger, ROW_MUTATIONS["flip a byte in a state"], 200, size)
    db = sqlite3.connect(ledger)
    db.execute(f"DELETE FROM {LEAVES_TABLE}")
    db.commit()
    db.close()
    report = verify_ledger(str(ledger))
    assert not report.ok and "was altered" in report.headline()


@pytest.mark.sqlite_only
def test_a_replaced_key_is_caught_by_a_head_kept_elsewhere(sealed: tuple[Path, Path, int]
                                                          ) -> None:
    ledger, key_path, _ = sealed
    db = sqlite3.connect(ledger)
    shipped = recorded_heads(db)[-1]
    replace_signing_key(db, key_path)
    db.commit()
    db.close()
    assert verify_ledger(str(ledger)).ok  # consistent with itself: only an anchor shows it
    report = verify_ledger(str(ledger), external=[("head.json", shipped)])
    assert "the signing key was replaced" in report.headline()
    report = verify_ledger(str(ledger), trusted_key=shipped.public_key)
    assert "the signing key was replaced" in report.headline()


@pytest.mark.sqlite_only
def test_a_removed_head_is_caught_by_a_head_kept_elsewhere(sealed: tuple[Path, Path, int]
                                                          ) -> None:
    ledger, _, _ = sealed
    db = sqlite3.connect(ledger)
    shipped = recorded_heads(db)[-1]
    db.execute("DELETE FROM ledger_tree_heads WHERE seq=?", (shipped.seq,))
    db.commit()
    db.close()
    report = verify_ledger(str(ledger), external=[("head.json", shipped)])
    assert "not recorded in the ledger" in report.headline()


def test_a_binding_to_another_event_is_reported(sealed: tuple[Path, Path, int]) -> None:
    ledger, _, _ = sealed
    report = verify_ledger(str(ledger), bindings={5: [("the checkpoint of web", b"x" * 32)]})
    assert "the checkpoint of web is bound to the event at position 5" in report.headline()
