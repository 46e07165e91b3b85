"""Signed tree heads and the key that signs them."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.merkle import EMPTY_ROOT
from ledger.signing import (
    SealKeyError, create_key_file, load_key_file, parse_public_key, public_bytes, public_pem,
    sign, signature_valid,
)
from ledger.tree_heads import HeadFormatError, TreeHead, dumps_head, loads_head, signed_data


def head(tmp_path: Path, size: int = 7, ts: int = 1_700_000_000_123) -> TreeHead:
    key = create_key_file(tmp_path / "k.key") if not (tmp_path / "k.key").exists() \
        else load_key_file(tmp_path / "k.key")
    root = bytes(range(32))
    return TreeHead(size, root, ts, public_bytes(key), sign(key, signed_data(size, root, ts)))


def test_the_signature_covers_rfc6962s_tree_head_structure(tmp_path: Path) -> None:
    h = head(tmp_path)
    assert h.signed_data() == struct.pack(">BBQQ", 0, 1, h.timestamp_ms, 7) + h.root_hash
    Ed25519PublicKey.from_public_bytes(h.public_key).verify(h.signature, h.signed_data())
    assert h.signature_ok()


@pytest.mark.parametrize("field", ["tree_size", "root_hash", "timestamp_ms"])
def test_changing_any_signed_field_breaks_the_signature(tmp_path: Path, field: str) -> None:
    h = head(tmp_path)
    changed = {"tree_size": 8, "root_hash": EMPTY_ROOT, "timestamp_ms": h.timestamp_ms + 1}
    forged = TreeHead(**{**h.__dict__, field: changed[field]})
    assert not forged.signature_ok()


def test_heads_round_trip_through_their_json_file(tmp_path: Path) -> None:
    h = head(tmp_path)
    again = loads_head(dumps_head(h))
    assert again == h and again.signature_ok()


@pytest.mark.parametrize("text", ["{}", "[]", "not json",
                                  '{"format": "xlsnap-tree-head/1", "tree_size": -1}'])
def test_malformed_head_files_are_refused(text: str) -> None:
    with pytest.raises(HeadFormatError):
        loads_head(text)


def test_the_key_file_is_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "seal.key"
    key = create_key_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(SealKeyError, match="exists already"):
        create_key_file(path)
    assert public_bytes(load_key_file(path)) == public_bytes(key)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "seal.key"
    create_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(SealKeyError, match="chmod 600"):
        load_key_file(path)


def test_a_symlinked_or_foreign_key_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    create_key_file(real)
    (tmp_path / "link.key").symlink_to(real)
    with pytest.raises(SealKeyError):
        load_key_file(tmp_path / "link.key")
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    os.chmod(junk, 0o600)
    with pytest.raises(SealKeyError, match="not a PEM private key"):
        load_key_file(junk)


def test_public_keys_read_from_pem_or_hex(tmp_path: Path) -> None:
    raw = public_bytes(create_key_file(tmp_path / "k.key"))
    assert parse_public_key(public_pem(raw)) == raw
    assert parse_public_key(raw.hex()) == raw
    for bad in ("zz", "00" * 31, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"):
        with pytest.raises(SealKeyError):
            parse_public_key(bad)


def test_signatures_under_another_key_or_of_another_size_do_not_verify(tmp_path: Path) -> None:
    a = create_key_file(tmp_path / "a.key")
    b = create_key_file(tmp_path / "b.key")
    sig = sign(a, b"message")
    assert signature_valid(public_bytes(a), b"message", sig)
    assert not signature_valid(public_bytes(b), b"message", sig)
    assert not signature_valid(public_bytes(a), b"message", sig[:-1])
    assert not signature_valid(public_bytes(a)[:-1], b"message", sig)
