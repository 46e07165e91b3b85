"""Merkle hashing as RFC 9162 defines it: the CT test vectors, and every proof of every
tree up to 70 leaves checked both by the RFC's verifiers and by a textbook recursion."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT, Frontier, consistency_path, inclusion_path, leaf_hash, node_hash, root,
    split_point, verify_consistency, verify_inclusion,
)

# The Certificate Transparency reference leaves and roots (RFC 6962 test data, as the
# Go and C++ CT implementations ship it).
DATA = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
LEAVES = [leaf_hash(d) for d in DATA]
H = bytes.fromhex
INCLUSION = {  # (index, size) -> path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}
CONSISTENCY = {  # (first, second) -> path
    (1, 1): [],
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}


# ---- a textbook implementation, straight from the RFC's recursive definitions ----------


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


ENTRIES = [bytes([i]) + bytes([(i * 7) % 256]) * (i % 3) for i in range(70)]
MANY = [leaf_hash(e) for e in ENTRIES]
MANY_ROOTS = [mth(ENTRIES[:n]) for n in range(len(ENTRIES) + 1)]


def test_roots_match_the_reference_vectors() -> None:
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for n in range(1, 9):
        assert root(LEAVES[:n]) == ROOTS[n - 1] == mth(DATA[:n])


def test_hashes_use_the_rfc_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


def test_split_is_the_largest_power_of_two_below() -> None:
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_paths_match_the_reference(index: int, size: int) -> None:
    expected = [H(h) for h in INCLUSION[(index, size)]]
    assert inclusion_path(LEAVES, index, size) == expected
    assert verify_inclusion(LEAVES[index], index, size, expected, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second"), sorted(CONSISTENCY))
def test_consistency_paths_match_the_reference(first: int, second: int) -> None:
    expected = [H(h) for h in CONSISTENCY[(first, second)]]
    assert consistency_path(LEAVES, first, second) == expected
    assert verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], expected)


def test_every_root_matches_the_textbook_recursion() -> None:
    for n in range(len(MANY) + 1):
        assert root(MANY[:n]) == MANY_ROOTS[n]


def test_every_inclusion_proof_of_every_size_verifies_and_matches() -> None:
    for n in range(1, len(MANY) + 1):
        for i in range(n):
            proof = inclusion_path(MANY, i, n)
            assert proof == path(i, ENTRIES[:n])
            assert verify_inclusion(MANY[i], i, n, proof, MANY_ROOTS[n])


def test_every_consistency_proof_of_every_pair_verifies_and_matches() -> None:
    for n in range(0, len(MANY) + 1):
        for m in range(0, n + 1):
            proof = consistency_path(MANY, m, n)
            if 0 < m < n:
                assert proof == subproof(m, ENTRIES[:n], True)
            else:
                assert proof == []
            assert verify_consistency(m, n, MANY_ROOTS[m], MANY_ROOTS[n], proof)


def test_altered_inclusion_proofs_are_refused() -> None:
    for n in range(2, 40):
        for i in range(n):
            proof = inclusion_path(MANY, i, n)
            good = MANY_ROOTS[n]
            assert not verify_inclusion(MANY[(i + 1) % n], i, n, proof, good)
            assert not verify_inclusion(MANY[i], i, n, proof[:-1], good)
            assert not verify_inclusion(MANY[i], i, n, [*proof, MANY[0]], good)
            flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            assert not verify_inclusion(MANY[i], i, n, flipped, good)
            assert not verify_inclusion(MANY[i], i, n + 1, proof, MANY_ROOTS[n + 1])
            if i + 1 < n and proof != inclusion_path(MANY, i + 1, n):
                assert not verify_inclusion(MANY[i], i + 1, n, proof, good)
    assert not verify_inclusion(MANY[0], 3, 3, [], MANY_ROOTS[3])
    assert not verify_inclusion(MANY[0], 0, 1, [], b"short")


def test_altered_consistency_proofs_and_rewritten_histories_are_refused() -> None:
    other = [*MANY[:10], leaf_hash(b"forged"), *MANY[11:]]
    for n in range(2, 40):
        for m in range(1, n):
            proof = consistency_path(MANY, m, n)
            assert not verify_consistency(m, n, MANY_ROOTS[m], MANY_ROOTS[n], proof[:-1])
            flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            assert not verify_consistency(m, n, MANY_ROOTS[m], MANY_ROOTS[n], flipped)
            if m > 10:  # an old head over the original log, a new log with a changed past
                forged = consistency_path(other, m, n)
                assert not verify_consistency(m, n, MANY_ROOTS[m], root(other[:n]), forged)
    assert verify_consistency(0, 5, EMPTY_ROOT, MANY_ROOTS[5], [])
    assert not verify_consistency(5, 3, MANY_ROOTS[5], MANY_ROOTS[3], [])
    assert not verify_consistency(4, 4, MANY_ROOTS[4], MANY_ROOTS[5], [])


@given(st.lists(st.binary(max_size=8), max_size=40), st.integers(0, 40))
def test_a_frontier_resumes_where_it_stopped(entries: list[bytes], cut: int) -> None:
    leaves = [leaf_hash(e) for e in entries]
    cut = min(cut, len(leaves))
    first = Frontier()
    for leaf in leaves[:cut]:
        first.append(leaf)
    resumed = Frontier(first.size, first.hashes)
    for leaf in leaves[cut:]:
        resumed.append(leaf)
    assert resumed.root() == mth(entries) == root(leaves)


def test_a_frontier_with_the_wrong_number_of_hashes_is_refused() -> None:
    with pytest.raises(ValueError):
        Frontier(3, [MANY[0]])
