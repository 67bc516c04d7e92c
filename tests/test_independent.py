"""The ledger's checkpoints, cosignatures and proofs, checked by Go's own implementations.

``tests/independent/checker.go`` opens the checkpoint with ``golang.org/x/mod/sumdb/note``,
rebuilds the Merkle tree from the entries with ``golang.org/x/mod/sumdb/tlog`` and runs the
inclusion and consistency proofs through ``tlog.CheckRecord`` and ``tlog.CheckTree``; it checks
cosignatures from the C2SP tlog-cosignature text with ``crypto/ed25519``. None of it shares code
with the ledger, so agreement means the formats are the standard ones, not merely
self-consistent.

A small ledger is recorded once, through the command line (:class:`tests.tamper.Cli`): the
Salford partnership, a checkpoint of size 10 cosigned by the council, two payments, a checkpoint
of size 12 cosigned by the council (after its consistency check) and by the PCT, then a
whole-ledger bundle and consistency proofs from ``ledger prove --from``. The checker must pass
on what the ledger wrote and fail on every tampered copy.

Needs Go and the x/mod sources from Debian (``apt-get install golang-go
golang-golang-x-mod-dev``); without them the module skips, saying so.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.canonical import canonical
from ledger.note import (
    NoteSignature,
    SignedNote,
    add_signatures,
    note_key_id,
    sign_note,
    verifier_key,
)
from tests.keys import fixed_key
from tests.tamper import COUNCIL, ENTRIES, PCT, Cli

SOURCE = Path(__file__).parent / "independent" / "checker.go"
GOPATH = Path("/usr/share/gocode")
XMOD = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"
APT = "apt-get install -y golang-go golang-golang-x-mod-dev"

#: The log's size at the second checkpoint: the Salford entries and two payments.
SIZE = ENTRIES + 2

Input = dict[str, Any]


# --- the checker ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go checker, built offline against Debian's x/mod sources."""
    go = shutil.which("go")
    if go is None:
        pytest.skip(f"no 'go' on PATH: the independent check needs Go ({APT})")
    missing = [str(XMOD / pkg) for pkg in ("note", "tlog") if not (XMOD / pkg).is_dir()]
    if missing:
        pytest.skip(f"x/mod sources missing ({', '.join(missing)}): {APT}")
    folder = tmp_path_factory.mktemp("checker")
    binary = folder / "checker"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": "",
           "GOCACHE": str(folder / "cache"), "CGO_ENABLED": "0"}
    built = subprocess.run([go, "build", "-o", str(binary), str(SOURCE)], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, f"go build of {SOURCE.name} failed:\n{built.stderr}"
    return binary


@dataclass(frozen=True)
class Verdict:
    """What the checker said: its exit status and its one line."""

    ok: bool
    line: str


def run_checker(checker: Path, document: Input, folder: Path) -> Verdict:
    """Write ``document`` as the checker's input and run it."""
    path = folder / "input.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([str(checker), str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    lines = done.stdout.splitlines()
    assert done.returncode in {0, 1}, f"checker crashed ({done.returncode}):\n{done.stderr}"
    assert len(lines) == 1, f"the checker must print one line, not:\n{done.stdout}{done.stderr}"
    verdict = Verdict(done.returncode == 0, lines[0])
    assert verdict.line.startswith("ok: " if verdict.ok else "FAIL: "), verdict.line
    return verdict


# --- the ledger, recorded once ----------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What the ledger wrote: a bundle, and the earlier checkpoint with its own proofs."""

    bundle: dict[str, Any]
    first: Input
    consistency: list[dict[str, Any]]


def _consistency(cli: Cli, size_from: int, size_to: int) -> dict[str, Any]:
    doc: dict[str, Any] = cli.json("prove", "--from", str(size_from), "--to", str(size_to))
    assert (doc["from"], doc["to"]) == (size_from, size_to)
    return {key: doc[key] for key in ("from", "to", "root_from", "root_to", "proof")}


def _cosigners(bundle: dict[str, Any], *partners: str) -> list[dict[str, str]]:
    found = [{"name": key["partner"], "public_key": key["public_key"]}
             for key in bundle["keys"].values() if key["partner"] in partners]
    assert sorted(c["name"] for c in found) == sorted(partners), "one key per cosigner"
    return found


def _base(bundle: dict[str, Any], checkpoint: str, size: int) -> Input:
    operator = bundle["operator"]
    return {
        "operator_name": operator["name"],
        "operator_public_key": operator["public_key"],
        "operator_vkey": verifier_key(operator["name"], bytes.fromhex(operator["public_key"])),
        "origin": bundle["origin"],
        "checkpoint": checkpoint,
        "entries": [canonical(e["entry"]).decode("utf-8") for e in bundle["entries"][:size]],
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The ledger recorded through ``ledger ...`` commands, on a SQLite file."""
    folder = tmp_path_factory.mktemp("independent")
    cli = Cli(str(folder / "ledger.db"), folder)
    cli.salford()
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    # The first checkpoint as the ledger serves it, cosigned, with an inclusion proof of each
    # of its entries.
    proofs = [cli.json("prove", str(index)) for index in range(ENTRIES)]
    first_note = proofs[0]["checkpoint"]
    assert all(p["checkpoint"] == first_note and p["tree_size"] == ENTRIES for p in proofs)

    cli.payments()
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    cli.run("cosign", "--as", PCT)
    bundle_path = folder / "bundle.json"
    cli.run("export", "-o", str(bundle_path))
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    assert bundle["scope"] == {"whole_ledger": True}
    assert [e["log_index"] for e in bundle["entries"]] == list(range(SIZE))

    first = _base(bundle, first_note, ENTRIES)
    first["inclusion"] = [{"index": p["log_index"], "proof": p["proof"],
                           "leaf_hash": p["leaf_hash"]} for p in proofs]
    first["consistency"] = [_consistency(cli, m, n) for m, n in ((1, 7), (4, 9), (5, 10))]
    first["cosigners"] = _cosigners(bundle, COUNCIL)
    # From every earlier size to the latest checkpoint, the size itself included, and a few
    # between earlier sizes.
    pairs = [(m, SIZE) for m in range(1, SIZE + 1)] + [(3, 10), (8, 11), (10, 11), (6, 6)]
    return Recorded(bundle, first, [_consistency(cli, m, n) for m, n in pairs])


@pytest.fixture
def latest(recorded: Recorded) -> Input:
    """The checker's input for the bundle: its checkpoint, entries and proofs (a fresh copy)."""
    bundle = recorded.bundle
    document = _base(bundle, bundle["checkpoint"], SIZE)
    document["inclusion"] = [{"index": e["log_index"], "proof": list(e["proof"])}
                             for e in bundle["entries"]]
    document["consistency"] = copy.deepcopy(recorded.consistency)
    document["cosigners"] = _cosigners(bundle, COUNCIL, PCT)
    return document


@pytest.fixture
def check(checker: Path, tmp_path: Path) -> Callable[[Input], Verdict]:
    """Run the checker on one input."""
    return lambda document: run_checker(checker, document, tmp_path)


# --- what the ledger wrote passes -------------------------------------------------------------


def test_bundle_passes(check: Callable[[Input], Verdict], latest: Input) -> None:
    verdict = check(latest)
    assert verdict.ok, verdict.line
    assert f" size {SIZE} " in verdict.line
    assert "2 cosignatures" in verdict.line
    assert "0 other signature lines ignored" in verdict.line


def test_first_checkpoint_passes(check: Callable[[Input], Verdict], recorded: Recorded) -> None:
    """The earlier checkpoint, as ``ledger prove`` served it, with its leaf hashes."""
    verdict = check(copy.deepcopy(recorded.first))
    assert verdict.ok, verdict.line
    assert f" size {ENTRIES} " in verdict.line
    assert "1 cosignatures" in verdict.line


def test_operator_name_comes_from_the_bundle(latest: Input) -> None:
    """The operator signs under the origin (C2SP tlog-checkpoint), with the fixed operator key
    (so the forgeries below use it)."""
    assert latest["operator_name"] == latest["origin"]
    assert OPERATOR.public_key.hex() == latest["operator_public_key"]


OPERATOR = fixed_key("operator")


def _extra_line(text: str, name: str) -> str:
    """A genuine Ed25519 note signature by a key nobody listed."""
    key = Ed25519PrivateKey.generate()
    return sign_note(text, name, key).line()


@pytest.mark.parametrize("known_name", [False, True])
def test_unknown_key_is_ignored(check: Callable[[Input], Verdict], latest: Input,
                                known_name: bool) -> None:
    """C2SP signed-note: signatures under unknown keys MUST be ignored, including an unknown
    key under the operator's own name."""
    name = latest["operator_name"] if known_name else "witness.unknown.example"
    note = SignedNote.parse(latest["checkpoint"])
    latest["checkpoint"] = note.format() + _extra_line(note.text, name)
    verdict = check(latest)
    assert verdict.ok, verdict.line
    assert "1 other signature lines ignored" in verdict.line


def test_garbage_signature_under_unknown_key_is_ignored(
        check: Callable[[Input], Verdict], latest: Input) -> None:
    """An unknown key's line is not checked at all, so even a wrong signature passes."""
    junk = NoteSignature("someone.else", b"\x01\x02\x03\x04", bytes(64))
    latest["checkpoint"] += junk.line()
    assert check(latest).ok


# --- tampered copies fail ---------------------------------------------------------------------


def _flip(text: str) -> str:
    """A base64 hash with one bit of its first byte flipped."""
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _fails(check: Callable[[Input], Verdict], document: Input, reason: str) -> None:
    verdict = check(document)
    assert not verdict.ok, f"the checker passed a tampered input: {verdict.line}"
    assert reason in verdict.line, verdict.line


@pytest.mark.parametrize("index", [0, 5, SIZE - 1])
def test_entry_byte_changed(check: Callable[[Input], Verdict], latest: Input,
                            index: int) -> None:
    text = latest["entries"][index]
    at = text.index('"seq":') + len('"seq":')
    changed = text[:at] + ("7" if text[at] != "7" else "8") + text[at + 1:]
    assert len(changed.encode()) == len(text.encode())
    latest["entries"][index] = changed
    _fails(check, latest, "is not tlog.TreeHash of its")


def test_entry_swapped(check: Callable[[Input], Verdict], latest: Input) -> None:
    entries = latest["entries"]
    entries[3], entries[4] = entries[4], entries[3]
    _fails(check, latest, "is not tlog.TreeHash of its")


@pytest.mark.parametrize(("index", "hop"), [(0, 0), (5, 1), (SIZE - 1, -1)])
def test_inclusion_hash_flipped(check: Callable[[Input], Verdict], latest: Input,
                                index: int, hop: int) -> None:
    proof = latest["inclusion"][index]["proof"]
    proof[hop] = _flip(proof[hop])
    _fails(check, latest, f"tlog.CheckRecord rejects the inclusion proof of leaf {index}")


def test_inclusion_wrong_leaf(check: Callable[[Input], Verdict], latest: Input) -> None:
    """Leaf 2's proof offered for leaf 3."""
    latest["inclusion"] = [{"index": 3, "proof": latest["inclusion"][2]["proof"]}]
    _fails(check, latest, "tlog.CheckRecord rejects")


def test_inclusion_hash_dropped(check: Callable[[Input], Verdict], latest: Input) -> None:
    latest["inclusion"][6]["proof"].pop()
    _fails(check, latest, "tlog.CheckRecord rejects the inclusion proof of leaf 6")


@pytest.mark.parametrize("size_from", [3, 8, 10])
def test_consistency_hash_flipped(check: Callable[[Input], Verdict], latest: Input,
                                  size_from: int) -> None:
    (proof,) = [p for p in latest["consistency"] if (p["from"], p["to"]) == (size_from, SIZE)]
    proof["proof"][0] = _flip(proof["proof"][0])
    _fails(check, latest, f"tlog.CheckTree rejects the consistency proof from {size_from}")


def test_consistency_root_changed(check: Callable[[Input], Verdict], latest: Input) -> None:
    (proof,) = [p for p in latest["consistency"] if (p["from"], p["to"]) == (10, SIZE)]
    proof["root_from"] = _flip(proof["root_from"])
    _fails(check, latest, "root_from")


def _with_root(note_text: str, root: str) -> str:
    origin, size, _, *rest = note_text.split("\n")
    return "\n".join([origin, size, root, *rest])


def test_checkpoint_root_changed(check: Callable[[Input], Verdict], latest: Input) -> None:
    """The root line edited in place: the operator's signature no longer verifies."""
    note = SignedNote.parse(latest["checkpoint"])
    root = note.text.split("\n")[2]
    latest["checkpoint"] = _with_root(note.text, _flip(root)) + latest["checkpoint"][
        len(note.text):]
    _fails(check, latest, "note.Open rejects the checkpoint")


def test_checkpoint_root_changed_and_resigned(check: Callable[[Input], Verdict],
                                              latest: Input) -> None:
    """The operator itself signs a wrong root: the signature verifies, the tree does not."""
    note = SignedNote.parse(latest["checkpoint"])
    text = _with_root(note.text, _flip(note.text.split("\n")[2]))
    signature = sign_note(text, latest["operator_name"], OPERATOR.private_key)
    latest["checkpoint"] = SignedNote(text, (signature,)).format()
    latest["cosigners"] = []
    _fails(check, latest, "is not tlog.TreeHash of its")


def test_checkpoint_older_root_resigned(check: Callable[[Input], Verdict], latest: Input,
                                        recorded: Recorded) -> None:
    """The size-12 checkpoint re-signed with the size-10 root."""
    old_root = recorded.first["checkpoint"].split("\n")[2]
    note = SignedNote.parse(latest["checkpoint"])
    text = _with_root(note.text, old_root)
    signature = sign_note(text, latest["operator_name"], OPERATOR.private_key)
    latest["checkpoint"] = SignedNote(text, (signature,)).format()
    latest["cosigners"] = []
    _fails(check, latest, "is not tlog.TreeHash of its")


def test_wrong_operator_key(check: Callable[[Input], Verdict], latest: Input) -> None:
    latest["operator_public_key"] = fixed_key(PCT).public_key.hex()
    del latest["operator_vkey"]
    _fails(check, latest, "note.Open rejects the checkpoint")


def test_operator_signature_only_from_a_cosigner(check: Callable[[Input], Verdict],
                                                 latest: Input) -> None:
    """Without the operator's line, the cosignatures alone do not open the note."""
    note = SignedNote.parse(latest["checkpoint"])
    kept = tuple(s for s in note.signatures if s.name != latest["operator_name"])
    latest["checkpoint"] = SignedNote(note.text, kept).format()
    _fails(check, latest, "note.Open rejects the checkpoint")


def _cosignature(note: SignedNote, name: str) -> NoteSignature:
    (found,) = [s for s in note.signatures if s.name == name]
    return found


def test_cosignature_timestamp_changed(check: Callable[[Input], Verdict],
                                       latest: Input) -> None:
    note = SignedNote.parse(latest["checkpoint"])
    sig = _cosignature(note, COUNCIL)
    stamp = int.from_bytes(sig.signature[:8], "big") + 1
    forged = NoteSignature(sig.name, sig.key_id, stamp.to_bytes(8, "big") + sig.signature[8:])
    latest["checkpoint"] = add_signatures(note, forged).format()
    _fails(check, latest, f"the cosignature of {COUNCIL}")


def test_cosignature_moved_to_another_checkpoint(check: Callable[[Input], Verdict],
                                                 latest: Input, recorded: Recorded) -> None:
    """The council's cosignature of the first checkpoint pasted onto the second."""
    old = _cosignature(SignedNote.parse(recorded.first["checkpoint"]), COUNCIL)
    note = SignedNote.parse(latest["checkpoint"])
    latest["checkpoint"] = add_signatures(note, old).format()
    _fails(check, latest, f"the cosignature of {COUNCIL}")


def test_cosigner_missing(check: Callable[[Input], Verdict], latest: Input) -> None:
    note = SignedNote.parse(latest["checkpoint"])
    kept = tuple(s for s in note.signatures if s.name != PCT)
    latest["checkpoint"] = SignedNote(note.text, kept).format()
    _fails(check, latest, f"no cosignature line of {PCT}")


def test_cosigner_key_is_not_its_note_key(check: Callable[[Input], Verdict],
                                          latest: Input) -> None:
    """A cosignature line is type 0x04: an 0x01 signature by the same key is not one."""
    note = SignedNote.parse(latest["checkpoint"])
    key = fixed_key(PCT)
    plain = sign_note(note.text, PCT, key.private_key)
    assert plain.key_id == note_key_id(PCT, key.public_key)
    kept = tuple(s for s in note.signatures if s.name != PCT)
    latest["checkpoint"] = SignedNote(note.text, (*kept, plain)).format()
    _fails(check, latest, f"no cosignature line of {PCT}")


def test_format_worked_example_passes(check: Callable[[Input], Verdict]) -> None:
    """The worked example of docs/FORMAT.md section 8 (its five fixture entries, the
    checkpoint cosigned by the PCT at a fixed time, the inclusion proof of entry 3)."""
    from tests.fixtures.audit_example import PROVEN, example  # noqa: PLC0415
    from tests.fixtures.generate import ORIGIN, fixtures  # noqa: PLC0415

    values = example()
    verdict = check({
        "operator_name": ORIGIN,
        "operator_public_key": values["operator_public_key"],
        "origin": ORIGIN,
        "checkpoint": values["checkpoint"],
        "entries": [f.entry.text for f in fixtures()],
        "inclusion": [{"index": PROVEN, "proof": values["proof"].split("\n"),
                       "leaf_hash": values["proven_leaf"]}],
        "cosigners": [{"name": PCT, "public_key": fixed_key(PCT).public_key.hex()}],
    })
    assert verdict.ok, verdict.line
    assert "1 cosignatures" in verdict.line
