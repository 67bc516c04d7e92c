"""Witnessing and proofs through the command line, and the auditor's guide run for real.

- ``ledger cosign``: a partner cosigns a checkpoint only after checking it extends the last one
  it cosigned, and refuses a forked log loudly, keeping its memory of what it saw.
- ``ledger prove``: inclusion and consistency proofs, checked with :mod:`ledger.merkle` and
  with an independent verifier written here from the definitions of RFC 6962 section 2.1.
- ``docs/AUDIT.md``: its code blocks are extracted and run against a real exported bundle, and
  its sample outputs compared with the real ones, so the guide cannot drift from the ledger.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from ledger import merkle
from ledger.application import Ledger
from ledger.checkpoints import CheckpointRecord
from ledger.note import Checkpoint, SignedNote, sign_note, verify_cosignature, verify_note_signature
from ledger.storage import parse_location
from tests.keys import fixed_key
from tests.tamper import (
    ALCOHOL,
    BACKENDS,
    COUNCIL,
    ENTRIES,
    MALLORY,
    ORIGIN,
    PCT,
    PROBATION,
    SALFORD,
    SALFORD_LOG,
    Backdoor,
    Cli,
    backend_of,
    scratch_ledger,
)

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "AUDIT.md"
VECTORS = ROOT / "tests" / "vectors" / "rfc6962"
OPERATOR = fixed_key("operator")


@pytest.fixture
def cli(ledger_url: str, tmp_path: Path) -> Cli:
    """The Salford partnership, recorded through the command line (10 entries)."""
    cli = Cli(ledger_url, tmp_path)
    cli.salford()
    return cli


def b64(text: str) -> bytes:
    """Decode base64 as the proofs and roots are printed."""
    return base64.b64decode(text, validate=True)


# --- an independent RFC 6962 verifier ---------------------------------------------------------
# Written from the recursive definitions of RFC 6962 section 2.1 (PATH and SUBPROOF), not from
# the iterative algorithm of RFC 9162 that ledger.merkle uses, so the two agree only if both
# are right.


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def path_root(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that audit path ``path`` gives leaf hash ``leaf`` at ``index`` of ``size``.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) if m < k, else PATH(m - k, D[k:n]) :
    MTH(D[0:k]); so the last hash of a path is the sibling just below the root.
    """
    if not 0 <= index < size or any(len(h) != 32 for h in (leaf, *path)):
        return None
    if size == 1:
        return None if path else leaf
    if not path:
        return None
    k, below, top = _split(size), path[:-1], path[-1]
    if index < k:
        left = path_root(leaf, index, k, below)
        return None if left is None else _h(b"\x01", left, top)
    right = path_root(leaf, index - k, size - k, below)
    return None if right is None else _h(b"\x01", top, right)


def consistent(size1: int, size2: int, root1: bytes, root2: bytes,
               proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree (size1, root1) is a prefix of (size2, root2).

    SUBPROOF(m, D[n], b): {} if m = n and b; {MTH(D[n])} if m = n and not b; otherwise, with
    k the split of n, SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) if m <= k, else
    SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]). Read from its end, the proof rebuilds both
    roots at once.
    """
    if not 0 < size1 <= size2 or any(len(h) != 32 for h in proof):
        return False
    rest = list(proof)

    def roots(m: int, n: int, whole_old_tree: bool) -> tuple[bytes, bytes] | None:
        if m == n:
            if whole_old_tree:
                return (root1, root1) if not rest else None
            return (rest[0], rest[0]) if len(rest) == 1 else None
        if not rest:
            return None
        top, k = rest.pop(), _split(n)
        if m <= k:
            found = roots(m, k, whole_old_tree)
            return None if found is None else (found[0], _h(b"\x01", found[1], top))
        found = roots(m - k, n - k, False)
        return None if found is None else (_h(b"\x01", top, found[0]),
                                           _h(b"\x01", top, found[1]))

    return roots(size1, size2, True) == (root1, root2)


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json")) if (VECTORS / kind).is_dir() else []


def test_the_independent_verifier_passes_the_rfc6962_vectors() -> None:
    # Before trusting it to judge the ledger: it accepts every good proof of the reference
    # trees and rejects every tampered one.
    assert len(_vectors("inclusion")) > 50
    assert len(_vectors("consistency")) > 50
    for path in _vectors("inclusion"):
        case = json.loads(path.read_text())
        root = path_root(b64(case["leafHash"]), case["leafIdx"], case["treeSize"],
                         [b64(p) for p in case["proof"] or []])
        assert (root == b64(case["root"])) is not case["wantErr"], path
    for path in _vectors("consistency"):
        case = json.loads(path.read_text())
        ok = consistent(case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]),
                        [b64(p) for p in case["proof"] or []])
        assert ok is not case["wantErr"], path


# --- cosign -------------------------------------------------------------------------------------


def witness_memory(cli: Cli, partner: str) -> dict[str, Any]:
    """What ``partner`` remembers of the last checkpoint it cosigned on this ledger."""
    raw = cli.witness_state(partner)
    assert raw is not None, f"{partner} has no witness state"
    memory: dict[str, Any] = json.loads(raw)[ORIGIN]
    return memory


def stored_checkpoints(cli: Cli) -> list[Checkpoint]:
    """Every checkpoint the event store holds, in the order they were signed."""
    ledger = Ledger(parse_location(cli.url))
    try:
        return [Checkpoint.parse(SignedNote.parse(event.note).text)
                for _, event in ledger.checkpoint_events()
                if isinstance(event, CheckpointRecord.Signed)]
    finally:
        ledger.close()


def stored_note(cli: Cli) -> SignedNote:
    """The latest checkpoint as the ledger holds it, with every cosignature."""
    return SignedNote.parse(cli.json("prove", "0")["checkpoint"])


def test_the_council_cosigns_the_first_checkpoint_and_remembers_it(cli: Cli) -> None:
    made = cli.json("checkpoint")
    assert made["size"] == ENTRIES
    assert cli.witness_state(COUNCIL) is None
    done = cli.json("cosign", "--as", COUNCIL)
    assert done == {"partner": COUNCIL, "size": ENTRIES, "root": made["root"],
                    "previous_size": None}
    memory = witness_memory(cli, COUNCIL)
    assert (memory["size"], memory["root"]) == (ENTRIES, made["root"])
    assert memory["operator_key"] == OPERATOR.public_key.hex()
    # The cosignature is kept with the checkpoint and verifies under the council's own key.
    note = stored_note(cli)
    verify_note_signature(note, ORIGIN, OPERATOR.public_key)
    assert verify_cosignature(note, COUNCIL, fixed_key(COUNCIL).public_key) > 0
    assert cli.json("verify")["ok"] is True


def test_a_later_checkpoint_after_more_acts_is_checked_consistent_and_cosigned(cli: Cli) -> None:
    first = cli.json("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    cli.payments()
    second = cli.json("checkpoint")
    assert second["size"] == ENTRIES + 2
    out = cli.run("cosign", "--as", COUNCIL).stdout
    assert out == (f"{COUNCIL} cosigned the checkpoint of size {ENTRIES + 2} "
                   f"(consistent with size {ENTRIES} cosigned before)\n")
    assert witness_memory(cli, COUNCIL)["size"] == ENTRIES + 2
    assert [s.name for s in stored_note(cli).signatures] == [ORIGIN, COUNCIL]
    # What the council relied on, anyone can check: the later tree extends the earlier.
    proof = cli.json("prove", "--from", str(ENTRIES), "--to", str(ENTRIES + 2))
    assert (proof["root_from"], proof["root_to"]) == (first["root"], second["root"])
    merkle.verify_consistency(ENTRIES, ENTRIES + 2, b64(first["root"]), b64(second["root"]),
                              [b64(p) for p in proof["proof"]])


def test_the_operator_refuses_to_sign_a_log_whose_entry_was_rewritten(cli: Cli) -> None:
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    # The PCT's funding becomes £441,740 in the store and the read models are rebuilt from it:
    # the operator verifies before signing, and signs nothing.
    def change(entry: dict[str, Any]) -> None:
        entry["statement"]["body"]["line"]["amount"] = "441740.00"

    Backdoor(cli.url).edit_entry(SALFORD, 4, change)
    cli.run("rebuild")
    refused = cli.run("checkpoint", code=3).stderr
    assert refused.startswith("error: REFUSED, no checkpoint was signed: the record does not "
                              "check out: agreement salford-dat-2004, seq 4: signature does not "
                              "verify")
    for partner, amount in ((COUNCIL, "50000"), (PCT, "30000")):
        cli.run("contribute", ALCOHOL, "--as", partner, "--year", "2005/06",
                "--amount", amount, "--at", "2003-07-05T10:00:00Z")
    assert "REFUSED, no checkpoint was signed" in cli.run("checkpoint", code=3).stderr
    assert [cp.size for cp in stored_checkpoints(cli)] == [ENTRIES]


def test_a_checkpoint_forked_from_one_cosigned_is_refused_loudly(cli: Cli) -> None:
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    remembered = cli.witness_state(COUNCIL)
    backdoor = Backdoor(cli.url)
    # The last two entries and the checkpoint covering them disappear, and two different
    # acts take their places: a log of the same size with another history, every entry of it
    # signed, which the operator signs.
    backdoor.delete_entry(SALFORD, 8)
    backdoor.delete_entry(ALCOHOL, 2)
    backdoor.delete_checkpoint(ENTRIES)
    cli.run("rebuild")
    cli.run("sign", SALFORD, "--as", PROBATION, "--at", "2003-07-04T09:00:00Z")
    cli.run("join", ALCOHOL, "--as", PCT, "--name", "Salford PCT", "--role", "commissioning",
            "--signatory", "Anne Williams", "--designation", "Chair",
            "--at", "2003-07-04T10:00:00Z")
    # The operator remembers the checkpoint it signed, outside the database: it refuses.
    assert ("the checkpoint of size 10 that the operator remembers has a root the entries no "
            "longer give") in cli.run("checkpoint", code=3).stderr
    # So does anyone verifying with the council's memory of what it cosigned.
    assert any("that salford-council remembers has a root the entries no longer give"
               in f["what"] for f in cli.verify_fails())
    # An operator that lost its memory (or lies) signs the other history; the council, which
    # remembers, refuses to cosign it.
    (cli.keys / "operator.witness.json").unlink()
    assert cli.json("checkpoint")["size"] == ENTRIES
    refused = cli.run("cosign", "--as", COUNCIL, code=3)
    assert refused.stderr.startswith(
        f"error: REFUSED: the checkpoint of size {ENTRIES} is not consistent with the checkpoint "
        f"of size {ENTRIES} that {COUNCIL} cosigned before; the log has been rewritten or "
        f"forked. Keep both checkpoints as evidence")
    assert cli.witness_state(COUNCIL) == remembered
    assert [s.name for s in stored_note(cli).signatures] == [ORIGIN]


def test_cosigning_the_same_checkpoint_twice_is_refused(cli: Cli) -> None:
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    remembered = cli.witness_state(COUNCIL)
    again = cli.run("cosign", "--as", COUNCIL, code=1)
    assert again.stderr == (f"error: {COUNCIL} has already cosigned the checkpoint of size "
                            f"{ENTRIES}\n")
    assert cli.witness_state(COUNCIL) == remembered
    assert [s.name for s in stored_note(cli).signatures] == [ORIGIN, COUNCIL]


# --- prove --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proving:
    """A ledger with two checkpoints and one entry newer than both, on one backend."""

    cli: Cli
    first: dict[str, Any]  # ``checkpoint --json`` of the first 10 entries
    second: dict[str, Any]  # ...and of 12, after the first quarter's payments
    logged: dict[int, dict[str, Any]]  # log index -> entry, from a whole-ledger bundle


@pytest.fixture(scope="module", params=BACKENDS)
def proving(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proving]:
    """Salford checkpointed at 10 entries and at 12; then the council declares funding for the
    alcohol agreement, entry 12, which no checkpoint covers yet. The proofs only read it."""
    backend = backend_of(request)
    folder = tmp_path_factory.mktemp(f"proving-{backend}")
    with scratch_ledger(backend, folder) as url:
        cli = Cli(url, folder)
        cli.salford()
        first = cli.json("checkpoint")
        cli.payments()
        second = cli.json("checkpoint")
        cli.run("export", "-o", str(folder / "whole.json"))
        logged = {e["log_index"]: e["entry"]
                  for e in json.loads((folder / "whole.json").read_text("utf-8"))["entries"]}
        cli.run("contribute", ALCOHOL, "--as", COUNCIL, "--year", "2005/06", "--amount", "50000",
                "--at", "2003-07-05T10:00:00Z")
        yield Proving(cli, first, second, logged)


def test_every_entry_has_an_inclusion_proof_in_the_signed_checkpoint(proving: Proving) -> None:
    cli, made = proving.cli, proving.second
    size, root = made["size"], b64(made["root"])
    assert size == ENTRIES + 2
    for index in range(size):
        proved = cli.json("prove", str(index))
        assert (proved["log_index"], proved["tree_size"], proved["root"]) == (
            index, size, made["root"])
        # The leaf is the entry's canonical JSON, hashed here without the ledger's help.
        leaf = b64(proved["leaf_hash"])
        assert leaf == _h(b"\x00", rfc8785.dumps(proving.logged[index]))
        path = [b64(p) for p in proved["proof"]]
        merkle.verify_inclusion(leaf, index, size, path, root)
        assert path_root(leaf, index, size, path) == root
        assert len(path) <= math.ceil(math.log2(size))
        # The root printed is the one the operator signed.
        note = SignedNote.parse(proved["checkpoint"])
        verify_note_signature(note, ORIGIN, OPERATOR.public_key)
        assert Checkpoint.parse(note.text).root == root
        # Any other position, or any change to the path, leads elsewhere.
        assert path_root(leaf, (index + 1) % size, size, path) != root
        assert path_root(leaf, index, size, [path[0][::-1], *path[1:]]) != root
    for seq, index in SALFORD_LOG.items():
        by_reference = cli.json("prove", f"{SALFORD}:{seq}")
        assert (by_reference["log_index"], by_reference["reference"], by_reference["seq"]) == (
            index, SALFORD, seq)
        merkle.verify_inclusion(b64(by_reference["leaf_hash"]), index, size,
                                [b64(p) for p in by_reference["proof"]], root)


def test_a_consistency_proof_shows_the_later_checkpoint_extends_the_earlier(
        proving: Proving) -> None:
    cli, first, second = proving.cli, proving.first, proving.second
    size = second["size"]
    # By default the proof runs to the latest checkpoint.
    assert cli.json("prove", "--from", str(first["size"])) == cli.json(
        "prove", "--from", str(first["size"]), "--to", str(size))
    for old in range(1, size + 1):
        proved = cli.json("prove", "--from", str(old), "--to", str(size))
        assert proved["root_to"] == second["root"]
        if old == first["size"]:
            assert proved["root_from"] == first["root"]
        root1, root2 = b64(proved["root_from"]), b64(proved["root_to"])
        path = [b64(p) for p in proved["proof"]]
        merkle.verify_consistency(old, size, root1, root2, path)
        assert consistent(old, size, root1, root2, path)
        # A different old root (a rewritten past) cannot be shown consistent.
        assert not consistent(old, size, root1[::-1], root2, path)


def test_prove_refuses_bad_input(proving: Proving) -> None:
    size = proving.second["size"]  # the log holds one entry more
    for args, why in [
        ((str(size),), f"entry {size} is newer than the latest checkpoint (size {size})"),
        (("99",), f"the log has {size + 1} entries; there is no entry 99"),
        (("--from", "0"), f"a consistency proof needs 0 < from <= to (got 0 and {size})"),
        (("--from", "5", "--to", "3"), "a consistency proof needs 0 < from <= to (got 5 and 3)"),
        (("--from", "3", "--to", "99"), f"the log holds {size + 1} entries; size 99 is beyond it"),
        ((f"{SALFORD}:99",), f"agreement '{SALFORD}' has no entry 99 in the log"),
        (("unknown-agreement:1",), "agreement 'unknown-agreement' has no entry 1 in the log"),
        ((f"{SALFORD}:first",), "give a log index (e.g. 12) or REF:SEQ"),
        (("3", "--from", "1"), "give ENTRY for an inclusion proof or --from N"),
        ((), "give ENTRY for an inclusion proof or --from N"),
    ]:
        result = proving.cli.run("prove", *args, code=1)
        assert why in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback


# --- docs/AUDIT.md ------------------------------------------------------------------------------

FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def guide_blocks(kind: str) -> list[str]:
    """The code blocks of AUDIT.md fenced as ``kind``, in order."""
    return [body for lang, body in FENCE.findall(GUIDE.read_text("utf-8")) if lang == kind]


def run_guide_code(folder: Path) -> list[subprocess.CompletedProcess[str]]:
    """Run the guide's Python and shell blocks, in the order they appear, in ``folder``."""
    results = []
    for lang, body in FENCE.findall(GUIDE.read_text("utf-8")):
        if lang == "python":
            command = [sys.executable, "-c", body]
        elif lang == "sh":
            command = ["sh", "-c", body]
        else:
            continue
        results.append(subprocess.run(command, cwd=folder, capture_output=True, text=True,
                                      timeout=60, check=False))
    return results


@dataclass(frozen=True)
class Guided:
    """The ledger the guide's bundle comes from, and the bundle."""

    cli: Cli
    bundle: Path


@pytest.fixture(scope="module", params=BACKENDS)
def guided(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guided]:
    """Salford's bundle, checkpointed and cosigned by two partners as in the guide."""
    backend = backend_of(request)
    folder = tmp_path_factory.mktemp(f"guide-{backend}")
    with scratch_ledger(backend, folder) as url:
        cli = Cli(url, folder)
        cli.cosigned_salford()
        cli.run("export", SALFORD, "-o", str(folder / "bundle.json"))
        yield Guided(cli, folder / "bundle.json")


@pytest.fixture
def guide(guided: Guided, tmp_path: Path) -> Path:
    """A folder of the test's own, holding the guide's ``bundle.json``."""
    folder = tmp_path / "audit"
    folder.mkdir()
    shutil.copy(guided.bundle, folder / "bundle.json")
    return folder


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_guides_code_checks_a_real_bundle_by_hand(guide: Path) -> None:
    assert len(guide_blocks("python")) == 3
    assert len(guide_blocks("sh")) == 1
    signature, files, openssl, inclusion = run_guide_code(guide)
    for result in (signature, files, openssl, inclusion):
        assert result.returncode == 0, result.stderr
    assert signature.stdout == f"signature OK: {SALFORD} seq 4, contribute by {PCT}\n"
    assert openssl.stdout == "Signature Verified Successfully\n"
    assert inclusion.stdout == (f"inclusion OK: {SALFORD} seq 4 is log entry "
                                f"{SALFORD_LOG[4]} of {ENTRIES} in {ORIGIN}\n")


def _rewrite(folder: Path, change: Any) -> None:
    bundle = json.loads((folder / "bundle.json").read_text("utf-8"))
    change(bundle)
    (folder / "bundle.json").write_text(json.dumps(bundle, indent=1, ensure_ascii=False),
                                        encoding="utf-8")


def _entry(bundle: dict[str, Any], seq: int) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in bundle["entries"]
                                 if e["entry"]["statement"]["seq"] == seq)
    return found


def _resign_checkpoint(bundle: dict[str, Any]) -> None:
    note = SignedNote.parse(bundle["checkpoint"])
    bundle["checkpoint"] = SignedNote(note.text, (
        sign_note(note.text, ORIGIN, fixed_key(MALLORY).private_key),)).format()
    bundle["operator"]["public_key"] = fixed_key(MALLORY).public_key.hex()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_guides_code_fails_on_a_tampered_bundle(guide: Path) -> None:
    # One digit of the PCT's declared funding changed: the signature checks, by Python and by
    # openssl, and the inclusion proof must all fail.
    def amount(bundle: dict[str, Any]) -> None:
        _entry(bundle, 4)["entry"]["statement"]["body"]["line"]["amount"] = "341749.00"

    _rewrite(guide, amount)
    signature, files, openssl, inclusion = run_guide_code(guide)
    assert signature.returncode != 0
    assert "InvalidSignature" in signature.stderr
    assert files.returncode == 0
    assert openssl.returncode != 0
    assert "Signature Verification Failure" in openssl.stdout + openssl.stderr
    assert inclusion.returncode != 0
    assert "inclusion proof FAILED" in inclusion.stderr
    # A checkpoint signed by any key but the one the auditor holds is refused before the proof.
    def resign(bundle: dict[str, Any]) -> None:
        amount_back(bundle)
        _resign_checkpoint(bundle)

    _rewrite(guide, resign)
    *_, inclusion = run_guide_code(guide)
    assert inclusion.returncode != 0
    assert "not signed by the operator key you hold" in inclusion.stderr


def amount_back(bundle: dict[str, Any]) -> None:
    """Undo the edit of :func:`test_the_guides_code_fails_on_a_tampered_bundle`."""
    _entry(bundle, 4)["entry"]["statement"]["body"]["line"]["amount"] = "341740.00"


def test_the_guides_sample_outputs_are_the_ledgers_own(guided: Guided, guide: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cli = guided.cli
    monkeypatch.chdir(guide)
    # Failures the guide shows, as the ledger prints them for the same damage.
    edited = json.loads((guide / "bundle.json").read_text("utf-8"))
    _entry(edited, 4)["entry"]["statement"]["body"]["line"]["amount"] = "341749.00"
    (guide / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    resigned = json.loads((guide / "bundle.json").read_text("utf-8"))
    _resign_checkpoint(resigned)
    (guide / "resigned.json").write_text(json.dumps(resigned), encoding="utf-8")
    printed = (cli.run("verify-bundle", "edited.json", code=3).stderr
               + cli.run("verify-bundle", "resigned.json", "--operator-key",
                         OPERATOR.public_key.hex(), code=3).stderr).splitlines()
    shown = 0
    for block in guide_blocks("console"):
        lines = block.splitlines()
        if not lines[0].startswith("$ "):
            for line in lines:
                assert line in printed, line
                shown += 1
            continue
        # A command, then the output it prints, exactly.
        command, expected = shlex.split(lines[0][2:]), lines[1:]
        if command[0] == "ledger":
            got = cli.run(*command[1:])
            actual = got.stdout.splitlines()
        else:
            assert command[0] == "python3", command
            actual = subprocess.run([sys.executable, *command[1:]], capture_output=True,
                                    text=True, check=True).stdout.splitlines()
        if expected:
            assert actual == expected
            shown += 1
    assert shown >= 4
    # The guide's bundle excerpt has the shape of a real bundle.
    excerpt = json.loads(guide_blocks("json")[0])
    real = json.loads((guide / "bundle.json").read_text("utf-8"))
    assert excerpt.keys() == real.keys()
    assert excerpt["entries"][0].keys() == real["entries"][0].keys()
    assert excerpt["entries"][0]["entry"]["statement"].keys() == \
        real["entries"][0]["entry"]["statement"].keys()
    assert _entry(excerpt, 4)["entry"]["statement"]["body"] == \
        _entry(real, 4)["entry"]["statement"]["body"]
    assert excerpt["scope"] == real["scope"]
