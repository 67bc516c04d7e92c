"""The ledger's Merkle tree: RFC 6962 vectors, stored-node reads and tampered proofs."""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError, ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Tree,
    consistency_proof,
    consistency_proof_size,
    inclusion_proof,
    inclusion_proof_size,
    leaf_hash,
    node_hash,
    nodes_to_store,
    root,
    root_from_inclusion,
    root_of,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

# The eight leaves of the reference tree in the vectors' README, and the root of the tree made
# of the first n of them.
README_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
README_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


class Log:
    """A log kept the way the ledger keeps it: only complete subtrees, in a dict."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.leaves: list[bytes] = []
        self.reads = 0

    def get_node(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.nodes[(level, index)]

    def append(self, leaf: bytes) -> None:
        for level, index, value in nodes_to_store(len(self.leaves), leaf, self.get_node):
            assert (level, index) not in self.nodes, "a stored node is never rewritten"
            self.nodes[(level, index)] = value
        self.leaves.append(leaf)


def make_log(size: int, tag: bytes = b"entry ") -> Log:
    log = Log()
    for i in range(size):
        log.append(leaf_hash(tag + str(i).encode()))
    return log


BIG = 3000


@cache
def big_log() -> Log:
    """One log of a few thousand entries, shared by the property tests."""
    return make_log(BIG)


def counted(log: Log, action: Callable[[], object]) -> int:
    before = log.reads
    action()
    return log.reads - before


def flip(value: bytes, position: int = 0) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x10]) + value[position + 1 :]


# --- the README's reference tree ------------------------------------------------------------


@pytest.mark.parametrize("n", range(len(README_ROOTS)))
def test_root_of_the_readme_tree(n: int) -> None:
    leaves = [leaf_hash(bytes.fromhex(x)) for x in README_LEAVES[:n]]
    assert root_of(leaves).hex() == README_ROOTS[n]


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == README_ROOTS[0]
    assert root(0, make_log(0).get_node) == EMPTY_ROOT
    assert root_of([]) == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert len(a) == HASH_SIZE
    # A leaf whose data is 0x01 || a || b does not hash like the node over a and b.
    assert leaf_hash(b"\x01" + a + b) != node_hash(a, b)


# --- the RFC 6962 vectors (transparency-dev/merkle testdata) -------------------------------


def _vector_dir() -> Path:
    """The rfc6962 vectors kept beside the tests (``$LEDGER_TESTVECTORS`` names another copy,
    the folder or its parent)."""
    override = os.environ.get("LEDGER_TESTVECTORS")
    if override:
        base = Path(override)
        return base / "rfc6962" if (base / "rfc6962").is_dir() else base
    return Path(__file__).resolve().parent / "vectors" / "rfc6962"


VECTORS = _vector_dir()


def _cases(kind: str) -> list[Any]:
    folder = VECTORS / kind
    files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    # Kept in the repository: missing, they fail the run rather than pass it unchecked.
    assert files, f"no RFC 6962 {kind} vectors in {folder}"
    return [pytest.param(f, id=f.relative_to(VECTORS).as_posix()) for f in files]


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(raw: list[str] | None) -> list[bytes]:
    return [_b64(x) for x in raw or []]


def _readme_log() -> Log:
    log = Log()
    for x in README_LEAVES:
        log.append(leaf_hash(bytes.fromhex(x)))
    return log


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    leaf, index, size = _b64(case["leafHash"]), case["leafIdx"], case["treeSize"]
    proof, expected_root = _proof(case["proof"]), _b64(case["root"])
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, expected_root)
        return
    verify_inclusion(leaf, index, size, proof, expected_root)
    # Folders 0-4 are built from the README's tree: the prover must give the same path.
    if path.parent.name.isdigit() and path.parent.parent.name == "inclusion":
        log = _readme_log()
        assert log.leaves[index] == leaf
        assert inclusion_proof(index, size, log.get_node) == proof
        assert root(size, log.get_node) == expected_root


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    size1, size2 = case["size1"], case["size2"]
    root1, root2, proof = _b64(case["root1"]), _b64(case["root2"]), _proof(case["proof"])
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, proof)
        return
    verify_consistency(size1, size2, root1, root2, proof)
    if path.parent.name.isdigit():
        log = _readme_log()
        assert consistency_proof(size1, size2, log.get_node) == proof
        assert root(size1, log.get_node) == root1
        assert root(size2, log.get_node) == root2


# --- the stored nodes -----------------------------------------------------------------------


def test_appending_stores_each_complete_subtree_once() -> None:
    log = make_log(70)
    for (level, index), value in log.nodes.items():
        lo, hi = index << level, (index + 1) << level
        assert hi <= 70
        assert value == root_of(log.leaves[lo:hi])
    # A tree of n leaves has 2n - popcount(n) complete subtrees.
    assert len(log.nodes) == 2 * 70 - (70).bit_count()


def test_appending_reads_only_left_siblings() -> None:
    log = make_log(15)
    # Leaf 15 completes subtrees at levels 1 to 4, each by one earlier left sibling.
    stored = nodes_to_store(15, leaf_hash(b"x"), log.get_node)
    assert [(lv, ix) for lv, ix, _ in stored] == [(0, 15), (1, 7), (2, 3), (3, 1), (4, 0)]
    assert counted(log, lambda: nodes_to_store(15, leaf_hash(b"x"), log.get_node)) == 4
    assert counted(log, lambda: nodes_to_store(16, leaf_hash(b"x"), log.get_node)) == 0


def test_subtree_root_refuses_a_range_that_is_not_a_subtree() -> None:
    log = make_log(8)
    assert subtree_root(4, 7, log.get_node) == root_of(log.leaves[4:7])
    for start, end in [(1, 3), (2, 5), (2, 6), (3, 3), (5, 4), (-1, 1)]:
        with pytest.raises(ProofError):
            subtree_root(start, end, log.get_node)


# --- every small tree -----------------------------------------------------------------------

SMALL = 70


@cache
def small_log() -> Log:
    return make_log(SMALL)


@pytest.mark.parametrize("size", range(1, SMALL + 1))
def test_root_of_every_small_tree_matches_the_definition(size: int) -> None:
    log = small_log()
    assert root(size, log.get_node) == root_of(log.leaves[:size])


@pytest.mark.parametrize("size", range(1, SMALL + 1))
def test_every_leaf_of_every_small_tree_is_proved(size: int) -> None:
    log = small_log()
    tree_root = root_of(log.leaves[:size])
    for index in range(size):
        proof = inclusion_proof(index, size, log.get_node)
        assert len(proof) == inclusion_proof_size(index, size)
        assert len(proof) <= math.ceil(math.log2(size))
        verify_inclusion(log.leaves[index], index, size, proof, tree_root)
        assert root_from_inclusion(log.leaves[index], index, size, proof) == tree_root


@pytest.mark.parametrize("size", range(1, SMALL + 1))
def test_a_tree_held_in_memory_gives_the_same_root_and_proofs(size: int) -> None:
    log = small_log()
    tree = Tree(log.leaves[:size])
    assert tree.root == root_of(log.leaves[:size])
    for index in range(size):
        assert tree.inclusion_proof(index) == inclusion_proof(index, size, log.get_node)


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 3000), st.data())
def test_a_large_tree_held_in_memory_gives_the_proofs_that_verify(size: int,
                                                                   data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree = Tree(leaves)
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=8)):
        proof = tree.inclusion_proof(index)
        assert len(proof) == inclusion_proof_size(index, size)
        verify_inclusion(leaves[index], index, size, proof, tree.root)
    with pytest.raises(ProofError, match="not in a tree"):
        tree.inclusion_proof(size)


@pytest.mark.parametrize("size2", range(1, SMALL + 1))
def test_every_small_tree_extends_every_earlier_one(size2: int) -> None:
    log = small_log()
    root2 = root(size2, log.get_node)
    for size1 in range(1, size2 + 1):
        proof = consistency_proof(size1, size2, log.get_node)
        assert len(proof) == consistency_proof_size(size1, size2)
        assert len(proof) <= math.ceil(math.log2(size2)) + 1
        verify_consistency(size1, size2, root(size1, log.get_node), root2, proof)


def test_equal_sizes_need_no_proof() -> None:
    log = small_log()
    assert consistency_proof(9, 9, log.get_node) == []
    verify_consistency(9, 9, root(9, log.get_node), root(9, log.get_node), [])


# --- proofs that must not be built ----------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (6, 5), (-1, 5)])
def test_no_inclusion_proof_for_a_leaf_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        inclusion_proof(index, size, small_log().get_node)


def test_no_consistency_proof_from_the_empty_tree() -> None:
    with pytest.raises(ProofError, match="empty tree"):
        consistency_proof(0, 5, small_log().get_node)


def test_no_consistency_proof_to_a_smaller_tree() -> None:
    with pytest.raises(ProofError):
        consistency_proof(6, 5, small_log().get_node)


def test_proof_errors_are_ledger_errors() -> None:
    assert issubclass(ProofError, LedgerError)
    assert ProofError.exit_code == 3


# --- tampered proofs ------------------------------------------------------------------------

TAMPER_SIZES = [2, 3, 5, 7, 8, 13, 16, 33, 70]


@pytest.mark.parametrize("size", TAMPER_SIZES)
def test_an_inclusion_proof_with_a_flipped_byte_is_rejected(size: int) -> None:
    log = small_log()
    tree_root = root(size, log.get_node)
    for index in range(size):
        proof = inclusion_proof(index, size, log.get_node)
        for i in range(len(proof)):
            for position in (0, HASH_SIZE - 1):
                bad = [*proof[:i], flip(proof[i], position), *proof[i + 1 :]]
                with pytest.raises(ProofError):
                    verify_inclusion(log.leaves[index], index, size, bad, tree_root)
        with pytest.raises(ProofError):
            verify_inclusion(flip(log.leaves[index]), index, size, proof, tree_root)
        with pytest.raises(ProofError):
            verify_inclusion(log.leaves[index], index, size, proof, flip(tree_root))


@pytest.mark.parametrize("size", TAMPER_SIZES)
def test_an_inclusion_proof_for_another_position_is_rejected(size: int) -> None:
    log = small_log()
    tree_root = root(size, log.get_node)
    for index in range(size):
        leaf = log.leaves[index]
        proof = inclusion_proof(index, size, log.get_node)
        for other in {index - 1, index + 1, index ^ 2} - {index}:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, other, size, proof, tree_root)
        # Only sizes with a different path shape: a root does not commit to its size, so a
        # neighbouring size whose path turns the same way at every level rebuilds it too
        # (leaf 0 of 3 and of 4 both hash as H(H(l0, p0), p1)).
        for other_size in {size * 2, size // 2} - {size}:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, other_size, proof, tree_root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [*proof, tree_root], tree_root)
        if proof:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, proof[:-1], tree_root)


@pytest.mark.parametrize("size2", TAMPER_SIZES)
def test_a_tampered_consistency_proof_is_rejected(size2: int) -> None:
    log = small_log()
    root2 = root(size2, log.get_node)
    for size1 in range(1, size2):
        root1 = root(size1, log.get_node)
        proof = consistency_proof(size1, size2, log.get_node)
        for i in range(len(proof)):
            bad = [*proof[:i], flip(proof[i]), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_consistency(size1, size2, root1, root2, bad)
        for other1 in {size1 - 1, size1 + 1, size1 ^ 2} - {size1}:
            with pytest.raises(ProofError):
                verify_consistency(other1, size2, root1, root2, proof)
        # As for inclusion, a neighbouring size2 can share the path shape; doubling or
        # halving it cannot.
        for other2 in {size2 * 2, size2 // 2} - {size2, size1}:
            with pytest.raises(ProofError):
                verify_consistency(size1, other2, root1, root2, proof)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, flip(root1), root2, proof)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, flip(root2), proof)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, [])
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, [*proof, root2])


def test_a_rewritten_history_is_not_consistent() -> None:
    honest, forked = make_log(20), Log()
    for i, leaf in enumerate(honest.leaves):
        forked.append(leaf_hash(b"rewritten") if i == 3 else leaf)
    proof = consistency_proof(10, 20, forked.get_node)
    with pytest.raises(ProofError, match="does not rebuild"):
        verify_consistency(10, 20, root(10, honest.get_node), root(20, forked.get_node), proof)


# --- large trees: O(log n) reads ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_proofs_in_large_trees(data: st.DataObject) -> None:
    log = big_log()
    size2 = data.draw(st.integers(1, BIG), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    index = data.draw(st.integers(0, size2 - 1), label="index")
    budget = 2 * math.ceil(math.log2(size2)) + 2

    root2 = root(size2, log.get_node)
    assert root2 == root_of(log.leaves[:size2])
    root1 = root(size1, log.get_node)

    reads = log.reads
    path = inclusion_proof(index, size2, log.get_node)
    assert log.reads - reads <= budget
    assert len(path) <= math.ceil(math.log2(size2))
    verify_inclusion(log.leaves[index], index, size2, path, root2)

    reads = log.reads
    proof = consistency_proof(size1, size2, log.get_node)
    assert log.reads - reads <= budget
    verify_consistency(size1, size2, root1, root2, proof)

    assert counted(log, lambda: root(size2, log.get_node)) == size2.bit_count()


def test_a_proof_or_a_root_of_the_stored_log_is_three_queries(ledger_url: str) -> None:
    # Which nodes a proof needs depends on the sizes and indexes alone: they are read in one
    # query, after those that read whether the log is up to date and its size.
    from sqlalchemy import event  # noqa: PLC0415

    from ledger import merkle  # noqa: PLC0415
    from ledger.application import Ledger  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415
    from tests.conftest import ORIGIN  # noqa: PLC0415
    from tests.keys import fixed_key  # noqa: PLC0415
    from tests.seeds import record_salford  # noqa: PLC0415

    ledger = Ledger(parse_location(ledger_url), create=True)
    ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
    record_salford(ledger)
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        log.catch_up()
        size = log.current_size()
        leaves = [merkle.leaf_hash(e.entry_text.encode()) for e in ledger.stored_entries()]
        tree = merkle.Tree(leaves)
        statements: list[tuple[str, Any]] = []
        event.listen(models.engine, "before_cursor_execute",
                     lambda *args: statements.append((args[2], args[3])))
        def queries() -> list[str]:
            selects = [(q, p) for q, p in statements if q.lstrip().upper().startswith("SELECT")]
            assert len(selects) <= 3, selects
            nodes = [(q, p) for q, p in selects if "log_nodes" in q]
            assert len(nodes) == 1, selects
            if models.engine.dialect.name == "sqlite":
                # Each node is found through the primary keys, never by reading a whole table
                # (which took a proof from 7 to 75 ms at a million entries).
                with models.engine.connect() as conn:
                    plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + nodes[0][0], nodes[0][1]))
                assert "SCAN log_" not in plan, plan
                assert "SEARCH log_nodes" in plan, plan
            statements.clear()
            return [q for q, _ in selects]

        for index in (0, size // 2, size - 1):
            statements.clear()
            assert log.inclusion(index, size) == tree.inclusion_proof(index)
            queries()
        statements.clear()
        assert log.consistency(3, size) == merkle.consistency_proof(3, size, tree.node)
        queries()
        assert log.root(size) == tree.root
        queries()
    finally:
        models.close()
        ledger.close()
