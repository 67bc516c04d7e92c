"""The Merkle tree of the ledger's log, per RFC 6962 / RFC 9162 (SHA-256).

The log stores, as it grows, the hash of every *complete* subtree: node ``(level, index)``
covers leaves ``[index * 2**level, (index + 1) * 2**level)``, and level 0 holds the leaf
hashes. Everything here reads those nodes through a getter ``get_node(level, index)``, so the
caller can back it with a database table or a dict. A root of any earlier size, an inclusion
proof and a consistency proof each read O(log n) stored nodes: any range the proofs need is
the concatenation of at most log2(n) complete subtrees, one per set bit of its length.

The verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2, with the edge cases of
transparency-dev/merkle: a consistency proof from the empty tree is refused, equal sizes need
an empty proof and equal roots. They raise :class:`~ledger.errors.ProofError` and never
return a bare truth value.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from ledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "GetNode",
    "Tree",
    "consistency_proof",
    "consistency_proof_size",
    "inclusion_proof",
    "inclusion_proof_size",
    "leaf_hash",
    "node_hash",
    "nodes_to_store",
    "peaks",
    "root",
    "root_from_inclusion",
    "root_of",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""Root of the tree with no leaves: SHA-256 of nothing."""

GetNode = Callable[[int, int], bytes]
"""Reads the stored hash of the complete subtree at ``(level, index)``."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``), where RFC 6962 splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (MTH) of already-hashed ``leaves``.

    A direct transcription of the recursive definition in RFC 9162 section 2.1.1, reading
    every leaf: the reference the stored-node functions are tested against, and a convenience
    for small trees.
    """

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        mid = lo + _split(hi - lo)
        return node_hash(mth(lo, mid), mth(mid, hi))

    if not leaves:
        return EMPTY_ROOT
    return mth(0, len(leaves))


def nodes_to_store(index: int, leaf: bytes, get_node: GetNode) -> list[tuple[int, int, bytes]]:
    """The complete subtrees that appear when leaf hash ``leaf`` is appended at ``index``.

    The tree held ``index`` leaves before. Returns ``(level, index, hash)`` for the leaf
    itself and for every subtree that the new leaf completes, lowest level first. Only
    earlier complete subtrees (the left siblings of the new ones) are read.
    """
    if index < 0:
        raise ProofError(f"a leaf index cannot be negative (got {index})")
    _check_hash(leaf, "the leaf hash")
    level, position, current = 0, index, leaf
    nodes = [(level, position, current)]
    # A node at an odd position is a right child: its left sibling is already stored, so
    # together they complete the parent. Climb until the node is a left child.
    while position & 1:
        current = node_hash(get_node(level, position - 1), current)
        level += 1
        position >>= 1
        nodes.append((level, position, current))
    return nodes


def subtree_root(start: int, end: int, get_node: GetNode) -> bytes:
    """The MTH of leaves ``[start, end)``, from at most log2(end - start) + 1 stored nodes.

    The range must be a subtree in the RFC 6962 sense: non-empty, and ``start`` a multiple of
    the smallest power of two at least ``end - start``. Every range the roots and proofs of
    this module need is of that kind, and each such range splits into complete subtrees
    whose sizes are the set bits of its length, largest first.
    """
    size = end - start
    if start < 0 or size <= 0:
        raise ProofError(f"[{start}, {end}) is not a non-empty range of leaves")
    if start % (1 << (size - 1).bit_length()):
        raise ProofError(
            f"[{start}, {end}) is not a subtree of an RFC 6962 tree: its start must be a "
            "multiple of the smallest power of two that covers its length"
        )
    parts: list[bytes] = []
    position = start
    while position < end:
        level = (end - position).bit_length() - 1
        parts.append(get_node(level, position >> level))
        position += 1 << level
    # RFC 6962 pairs the left part with the MTH of everything to its right, so the complete
    # parts fold together from the right.
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def root(size: int, get_node: GetNode) -> bytes:
    """The root of the tree made of the first ``size`` leaves."""
    if size < 0:
        raise ProofError(f"a tree size cannot be negative (got {size})")
    if size == 0:
        return EMPTY_ROOT
    return subtree_root(0, size, get_node)


def peaks(size: int, get_node: GetNode) -> list[bytes]:
    """The roots of the complete subtrees that make up the first ``size`` leaves, largest
    first: at most log2(size) + 1 stored nodes, from which the tree can grow
    (:meth:`CompactRange.of_peaks`)."""
    found = []
    position = 0
    while position < size:
        level = (size - position).bit_length() - 1
        found.append(get_node(level, position >> level))
        position += 1 << level
    return found


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1).

    Hashes run from the leaf's sibling up to the child of the root.
    """
    if not 0 <= index < size:
        raise ProofError(
            f"leaf {index} is not in a tree of {size} leaves: the index must be below the size"
        )
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(subtree_root(mid, hi, get_node))
            hi = mid
        else:
            path.append(subtree_root(lo, mid, get_node))
            lo = mid
    # Built from the root down; the proof is read from the leaf up.
    path.reverse()
    return path


class CompactRange:
    """The root of a growing tree, from its leaf hashes one at a time, in O(log n) memory.

    Holds the roots of the complete subtrees that make up the leaves so far (one per set bit
    of the size, largest first): appending a leaf merges equal-sized neighbours, as binary
    addition carries. What ``verify`` and ``checkpoint`` use to recompute the log's root from
    the entries themselves, never from stored nodes.
    """

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def of_peaks(cls, size: int, found: Sequence[bytes]) -> CompactRange:
        """The range of the first ``size`` leaves, from their :func:`peaks`."""
        if len(found) != size.bit_count():
            raise ProofError(f"a tree of {size} leaves has {size.bit_count()} peaks, not "
                             f"{len(found)}")
        grown = cls()
        grown.size = size
        grown._peaks = list(found)
        return grown

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        peaks = self._peaks
        peaks.append(leaf)
        carry = self.size
        while carry & 1:
            right = peaks.pop()
            peaks[-1] = node_hash(peaks[-1], right)
            carry >>= 1
        self.size += 1

    def root(self) -> bytes:
        """The root of the tree of the leaves appended so far (RFC 9162 MTH)."""
        if not self._peaks:
            return EMPTY_ROOT
        result = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            result = node_hash(peak, result)
        return result


T = TypeVar("T")


class Tree:
    """A whole tree held in memory, built once from its leaf hashes.

    For checking every entry of a whole log at once (a whole-ledger bundle): each node is
    hashed once, where verifying each proof on its own would hash its whole path again. Node
    ``(level, i)`` covers leaves ``[i * 2**level, (i + 1) * 2**level)``; a range cut short by
    the right edge is not a node but is the subtree :func:`subtree_root` gives.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self.levels: list[list[bytes]] = [list(leaves)]
        below = self.levels[0]
        while len(below) > 1:
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            self.levels.append(above)
            below = above
        # The subtree cut short by the right edge at each level, where there is one.
        self._edge: dict[int, bytes] = {}
        self._text: list[list[str]] | None = None

    def inclusion_proof_text(self, index: int) -> tuple[str, ...]:
        """:meth:`inclusion_proof` in base64, as bundles write it (each node encoded once)."""
        if self._text is None:
            self._text = [[base64.b64encode(h).decode() for h in row] for row in self.levels]
        return tuple(self._path(index, self._text,
                                lambda level: base64.b64encode(self._edge_at(level)).decode()))

    def node(self, level: int, index: int) -> bytes:
        """The hash of complete subtree ``(level, index)``."""
        return self.levels[level][index]

    @property
    def root(self) -> bytes:
        """The root of the whole tree (RFC 9162 MTH)."""
        return root(self.size, self.node)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """What :func:`inclusion_proof` gives for leaf ``index``, read bottom-up from the tree."""
        return self._path(index, self.levels, self._edge_at)

    def _edge_at(self, level: int) -> bytes:
        # The subtree cut short by the right edge, as a right sibling at ``level``.
        edge = self._edge.get(level)
        if edge is None:
            start = (self.size >> level) << level
            edge = self._edge[level] = subtree_root(start, self.size, self.node)
        return edge

    def _path(self, index: int, rows: list[list[T]], edge: Callable[[int], T]) -> list[T]:
        if not 0 <= index < self.size:
            raise ProofError(
                f"leaf {index} is not in a tree of {self.size} leaves: the index must be below "
                f"the size")
        path: list[T] = []
        position = index
        # ceil(log2(size)) levels below the root; the tree holds a row of nodes for each.
        for level, row in enumerate(rows[:(self.size - 1).bit_length()]):
            sibling = position ^ 1
            if sibling < len(row):
                path.append(row[sibling])  # a complete subtree
            elif sibling > position and sibling << level < self.size:
                path.append(edge(level))  # a right sibling cut short by the edge
            # else: no sibling at this level (the right edge); the node is carried up.
            position >>= 1
        return path


def consistency_proof(size1: int, size2: int, get_node: GetNode) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of that of ``size2``.

    Follows SUBPROOF of RFC 9162 section 2.1.4.1; empty when the sizes are equal.
    """
    if size1 < 0 or size2 < size1:
        raise ProofError(
            f"no consistency proof from size {size1} to size {size2}: "
            "the sizes must satisfy 0 < size1 <= size2"
        )
    if size1 == 0:
        raise ProofError(
            "no consistency proof from the empty tree: every tree extends it, so there is "
            "nothing to prove; start from a checkpoint with at least one leaf"
        )
    path: list[bytes] = []
    lo, hi = 0, size2
    while hi != size1:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            path.append(subtree_root(mid, hi, get_node))
            hi = mid
        else:
            path.append(subtree_root(lo, mid, get_node))
            lo = mid
    # The descent stops at the old tree's last complete subtree. When that is the whole old
    # tree (RFC 9162's flag b still set), the verifier holds its root already.
    if lo > 0:
        path.append(subtree_root(lo, hi, get_node))
    path.reverse()
    return path


def inclusion_proof_size(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf ``index`` in ``size`` leaves holds."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    # Below the level where the paths to `index` and to the last leaf part, every level has
    # a sibling; above it, only the levels where the path turns right do.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_size(size1: int, size2: int) -> int:
    """How many hashes the consistency proof from ``size1`` to ``size2`` leaves holds."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return 0
    # The proof is the inclusion path of leaf size1 - 1, cut at the level of the largest
    # complete subtree ending at size1, plus that subtree's root unless it is the whole old
    # tree (whose root the verifier already holds).
    shift = ((size1 & -size1).bit_length()) - 1
    seed = 0 if size1 == 1 << shift else 1
    return seed + inclusion_proof_size(size1 - 1, size2) - shift


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from leaf hash ``leaf`` at ``index`` of ``size``.

    RFC 9162 section 2.1.3.2 up to the final comparison. Raises :class:`ProofError` when the
    proof cannot belong to that position (wrong length, malformed hashes).
    """
    if not 0 <= index < size:
        raise ProofError(
            f"leaf {index} cannot be in a tree of {size} leaves: the index must be below the size"
        )
    _check_hash(leaf, "the leaf hash")
    want = inclusion_proof_size(index, size)
    if len(proof) != want:
        raise ProofError(
            f"the inclusion proof has {len(proof)} hashes, but leaf {index} of a tree of "
            f"{size} leaves needs {want}"
        )
    fn, sn, result = index, size - 1, leaf
    for i, sibling in enumerate(proof):
        _check_hash(sibling, f"hash {i} of the proof")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            # On the right edge of the tree a node can have no right sibling at some levels;
            # skip those levels, where the node is carried up unchanged.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof stops short of the root")
    return result


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2. Raises :class:`ProofError` if it is not so.
    """
    computed = root_from_inclusion(leaf, index, size, proof)
    if computed != root:
        raise ProofError(
            f"the inclusion proof of leaf {index} does not lead to the root of the tree of "
            f"{size} leaves: the entry, the proof or the checkpoint is not the one logged"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of ``size2`` with ``root2``.

    RFC 9162 section 2.1.4.2. Raises :class:`ProofError` if the proof does not show it,
    including when ``size1`` is 0 (nothing can be proved from the empty tree) or larger
    than ``size2`` (a log never shrinks).
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"tree sizes cannot be negative (got {size1} and {size2})")
    if size2 < size1:
        raise ProofError(
            f"the log went from {size1} to {size2} leaves: a log only grows, so the newer "
            "checkpoint cannot be smaller"
        )
    if size1 == 0:
        raise ProofError(
            "a consistency proof from the empty tree means nothing: check the newer "
            "checkpoint on its own"
        )
    if size1 == size2:
        if proof:
            raise ProofError(
                f"both trees have {size1} leaves, so the consistency proof must be empty"
            )
        if root1 != root2:
            raise ProofError(
                f"two different roots for the same tree size {size1}: the log has forked"
            )
        return
    want = consistency_proof_size(size1, size2)
    if len(proof) != want:
        raise ProofError(
            f"the consistency proof has {len(proof)} hashes, but from {size1} to {size2} "
            f"leaves it needs {want}"
        )
    for i, node in enumerate(proof):
        _check_hash(node, f"hash {i} of the proof")
    _check_consistency_path(size1, size2, root1, root2, proof)


def _check_consistency_path(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """The hashing of RFC 9162 section 2.1.4.2, steps 2 to 7 (``0 < size1 < size2``)."""
    path = list(proof)
    # When the old tree is a complete subtree, its root is the start of the path, and the
    # proof leaves it out because the verifier already holds it.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old, new = path[0], path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old = node_hash(node, old)
            new = node_hash(node, new)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # Right siblings are leaves added after the old tree: only the new root has them.
            new = node_hash(new, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof stops short of the root")
    if old != root1:
        raise ProofError(
            f"the consistency proof does not rebuild the root of the tree of {size1} leaves: "
            "the older checkpoint or the proof is wrong"
        )
    if new != root2:
        raise ProofError(
            f"the tree of {size2} leaves does not extend the tree of {size1} leaves: the "
            "log rewrote its history, or the newer checkpoint or the proof is wrong"
        )


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes long, a SHA-256 hash is {HASH_SIZE}")
