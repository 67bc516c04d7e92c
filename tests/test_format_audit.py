"""docs/FORMAT.md's audit section stays true: its example is made again and checked, and the
checkpoint it shows verifies by the C2SP rules alone."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import merkle
from tests.fixtures.audit_example import COSIGNED_AT, PROVEN, example

FORMAT = (Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md").read_text(
    encoding="utf-8")


def test_every_value_of_the_worked_example_is_in_format_md() -> None:
    for name, value in example().items():
        assert value in FORMAT, f"FORMAT.md does not show the current {name}"


def test_the_example_checkpoint_verifies_by_the_c2sp_rules_alone() -> None:
    values = example()
    text, _, signatures = values["checkpoint"].rpartition("\n\n")
    text += "\n"
    operator = bytes.fromhex(values["operator_public_key"])
    lines = dict(line.removeprefix("— ").split(" ", 1) for line in signatures.splitlines())
    signed = base64.b64decode(lines["ledger.example/salford"])
    key_id = hashlib.sha256(b"ledger.example/salford\n\x01" + operator).digest()[:4]
    assert signed[:4] == key_id
    Ed25519PublicKey.from_public_bytes(operator).verify(signed[4:], text.encode())
    cosigned = base64.b64decode(lines["salford-pct"])
    assert int.from_bytes(cosigned[4:12], "big") == COSIGNED_AT
    origin, size, root = text.splitlines()
    assert (origin, size, root) == ("ledger.example/salford", "5", values["root"])


def test_the_example_inclusion_proof_checks_against_the_example_root() -> None:
    values = example()
    proof = [base64.b64decode(p) for p in values["proof"].splitlines()]
    merkle.verify_inclusion(base64.b64decode(values["proven_leaf"]), PROVEN, 5, proof,
                            base64.b64decode(values["root"]))
