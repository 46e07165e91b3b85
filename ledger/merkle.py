"""Merkle tree hashing of a log, as RFC 9162 (Certificate Transparency v2) defines it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one log entry: SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (the empty tree hashes the empty string).

    leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right); a tree of n > 1
    leaves splits at k, the largest power of two below n. Inclusion proofs (§2.1.3) and
    consistency proofs (§2.1.4) are produced from a list of leaf hashes and checked with
    the RFC's own verification algorithms, so any RFC 9162 implementation can check ours.

    ``Frontier`` folds leaf hashes in one pass and gives the root of every prefix on the
    way, which is what verifying a long log against many tree heads needs.
    """
    if not leaves:
        return EMPTY_ROOT
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


class Frontier:
    """The roots of the perfect subtrees covering the leaves seen so far (a compact range).

    Appending is amortised O(1) node hashes; ``root()`` folds at most log2(n) of them.
    ``size`` and ``hashes`` can be saved and restored to resume after a known prefix.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError(f"a frontier of {size} leaves has {bin(size).count('1')} "
                             f"hashes, not {len(self.hashes)}")

    def append(self, leaf: bytes) -> None:
        hashes = self.hashes
        size = self.size
        hashes.append(leaf)
        while size & 1:  # merge equal-sized subtrees, as a binary counter carries
            right = hashes.pop()
            hashes[-1] = _sha256(b"\x01" + hashes[-1] + right).digest()
            size >>= 1
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self.hashes:
            return EMPTY_ROOT
        it = reversed(self.hashes)
        acc = next(it)
        for left in it:
            acc = _sha256(b"\x01" + left + acc).digest()
        return acc


# ---- inclusion (RFC 9162 §2.1.3) ----------------------------------------------------


def inclusion_path(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[0:size]): the sibling hashes from the leaf up to the root."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"no leaf {index} in a tree of {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index - lo < k:
            path.append(_subtree_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree_root(leaves, lo, lo + k))
            lo += k
    path.reverse()
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove ``leaf`` at ``index`` in ``expected_root``?"""
    if not 0 <= index < size or not _all_hashes([leaf, expected_root, *path]):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


# ---- consistency (RFC 9162 §2.1.4) --------------------------------------------------


def consistency_path(leaves: Sequence[bytes], first: int, second: int | None = None
                     ) -> list[bytes]:
    """PROOF(first, D[0:second]): the tree of ``first`` leaves is a prefix of ``second``."""
    second = len(leaves) if second is None else second
    if not 0 <= first <= second <= len(leaves):
        raise ValueError(f"no consistency proof from {first} to {second} leaves")
    if first in (0, second):
        return []
    path: list[bytes] = []
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            path.append(_subtree_root(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_subtree_root(leaves, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(_subtree_root(leaves, lo, hi))
    path.reverse()
    return path


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is tree ``first_root`` (``first`` leaves) a prefix of ``second_root``?"""
    if not 0 <= first <= second or not _all_hashes([first_root, second_root, *path]):
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:  # an exact power of two: its root starts the path
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def _subtree_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    frontier = Frontier()
    for i in range(lo, hi):
        frontier.append(leaves[i])
    return frontier.root()


def _all_hashes(values: Iterable[object]) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)
