"""Inclusion proofs as self-contained documents that anyone checks offline."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from ledger.entries import MalformedRow, parse_entry, read_row
from ledger.merkle import (
    consistency_path, inclusion_path, leaf_hash, verify_consistency, verify_inclusion,
)
from ledger.signing import key_id
from ledger.transcoder import MsgpackTranscoder
from ledger.tree_heads import HeadFormatError, TreeHead, leaf_index

PROOF_FORMAT = "xlsnap-inclusion-proof/1"


class ProofError(ValueError):
    """A proof cannot be made, or a document is not a proof."""


def make_inclusion_proof(db: Any, position: int, head: TreeHead,
                         leaves: list[bytes], older: TreeHead | None = None) -> dict[str, Any]:
    """The proof that the event at ``position`` is in the tree of ``head``.

    ``leaves`` are the tree's leaf hashes (at least ``head.tree_size``); the proof is
    checked before it is returned, so a ledger that no longer matches its head
    gives an error here rather than a proof that fails elsewhere. The leaf index is
    the event's ordinal in the log (``position - 1`` where positions are dense).

    A proof carries the entry's bytes (so the event itself is shown, decoded from what
    was sealed), its leaf index, the RFC 9162 audit path, and the signed tree head it
    leads to; optionally a consistency proof from an older head the checker already
    trusts (one shipped off the host earlier) to that head. Checking needs only this
    module: no database.
    """
    index = leaf_index(db, position)
    if not (1 <= position and 0 <= index < head.tree_size):
        raise ProofError(f"position {position} is not covered by {head.label()}")
    row = read_row(db, position)
    if row is None:
        raise ProofError(f"no event at position {position}")
    entry = row.entry()
    leaf = leaf_hash(entry)
    if leaves[index] != leaf:
        raise ProofError(f"the event at position {position} differs from the one sealed; "
                         "run 'xlsnap verify'")
    path = inclusion_path(leaves, index, head.tree_size)
    if not verify_inclusion(leaf, index, head.tree_size, path, head.root_hash):
        raise ProofError(f"the sealed leaves do not lead to {head.label()}; run 'xlsnap verify'")
    proof: dict[str, Any] = {
        "format": PROOF_FORMAT, "position": position, "leaf_index": index,
        "entry": base64.b64encode(entry).decode(), "leaf_hash": leaf.hex(),
        "audit_path": [p.hex() for p in path], "tree_head": head.to_json(),
        "hashing": "RFC 9162: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || l || r)",
    }
    if older is not None:
        if older.tree_size > head.tree_size:
            raise ProofError(f"{older.label()} is newer than {head.label()}")
        proof["consistency"] = {
            "from_head": older.to_json(),
            "path": [p.hex() for p in consistency_path(leaves, older.tree_size,
                                                       head.tree_size)]}
    return proof


@dataclass
class ProofCheck:
    """The outcome of checking a proof; ``event`` is the entry decoded."""

    ok: bool
    message: str
    position: int = 0
    head: TreeHead | None = None
    event: dict[str, Any] = field(default_factory=dict)


def check_inclusion_proof(doc: Any, trusted_key: bytes | None = None,
                          older: TreeHead | None = None) -> ProofCheck:
    """Check a proof document; with ``older``, also that its head extends that one."""
    try:
        parsed = _parse(doc)
    except (KeyError, TypeError, ValueError, HeadFormatError) as exc:
        return ProofCheck(False, f"not an inclusion proof: {exc}")
    position, index, entry, claimed, path, head = parsed
    check = ProofCheck(False, "", position, head)
    leaf = leaf_hash(entry)
    try:
        check.event = describe_entry(entry)
    except (MalformedRow, ValueError) as exc:
        check.message = f"the entry is malformed: {exc}"
        return check
    if claimed != leaf:
        check.message = "the entry does not hash to the proof's leaf_hash"
    elif not head.signature_ok():
        check.message = f"the signature of {head.label()} does not verify"
    elif trusted_key is not None and head.public_key != trusted_key:
        check.message = (f"{head.label()} is signed by key {head.key_id[:16]}, not the "
                         f"trusted key {key_id(trusted_key)[:16]}")
    elif not verify_inclusion(leaf, index, head.tree_size, path, head.root_hash):
        check.message = f"the audit path does not lead from the entry to {head.label()}"
    else:
        check.message = _check_older(doc, head, older, trusted_key)
    check.ok = not check.message
    if check.ok:
        check.message = (f"the event at position {position} is in {head.label()}, "
                         f"signed by key {head.key_id[:16]}")
    return check


def _check_older(doc: dict[str, Any], head: TreeHead, older: TreeHead | None,
                 trusted_key: bytes | None) -> str:
    if older is None:
        return ""
    if not older.signature_ok():
        return f"the signature of the older {older.label()} does not verify"
    if older.public_key != (trusted_key or head.public_key):
        return f"the older {older.label()} is signed by another key"
    consistency = doc.get("consistency") or {}
    try:
        given = TreeHead.from_json(consistency["from_head"])
        path = [bytes.fromhex(p) for p in consistency["path"]]
    except (KeyError, TypeError, ValueError, HeadFormatError):
        return "the proof has no consistency proof from the older head (make it with --since-head)"
    if (given.tree_size, given.root_hash) != (older.tree_size, older.root_hash):
        return f"the proof's consistency proof starts from another head than {older.label()}"
    if not verify_consistency(older.tree_size, head.tree_size, older.root_hash,
                              head.root_hash, path):
        return f"{head.label()} is not an extension of {older.label()}: the log was rewritten"
    return ""


def _parse(doc: Any) -> tuple[int, int, bytes, bytes, list[bytes], TreeHead]:
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise ValueError(f"format is not {PROOF_FORMAT!r}")
    position, index = doc["position"], doc.get("leaf_index")
    # An event's leaf index is its ordinal: position - 1 on a dense log, lower where the
    # log's positions skip numbers (PostgreSQL), never higher.
    if type(position) is not int or type(index) is not int or position < 1 or \
            not 0 <= index <= position - 1:
        raise ValueError("position and leaf_index disagree")
    entry = base64.b64decode(doc["entry"], validate=True)
    return (position, index, entry, bytes.fromhex(doc["leaf_hash"]),
            [bytes.fromhex(p) for p in doc["audit_path"]], TreeHead.from_json(doc["tree_head"]))


def describe_entry(entry: bytes) -> dict[str, Any]:
    """The stored fields of an entry, its state decoded (UUIDs and times as text)."""
    originator_id, version, topic, state = parse_entry(entry)
    try:
        fields = MsgpackTranscoder().decode(state)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same
        raise ValueError(f"the state does not decode: {exc}") from None
    return {"originator_id": originator_id, "originator_version": version, "topic": topic,
            "state": fields}
