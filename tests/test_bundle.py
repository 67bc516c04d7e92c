"""Audit bundles: exported, verified offline, edited by hand, and imported into an auditor's copy.

The Salford partnership is recorded once per backend (module scope: the bundles are files, and
checking them touches no database), checkpointed by the operator and cosigned by the council
and the probation service, then exported twice: Salford's own bundle and the whole ledger.
Every edit below must make ``ledger verify-bundle`` exit 3 naming what was changed, and make
``ledger import`` refuse the bundle whole, writing nothing.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    flip_base64,
    forged_next,
    mallory,
    scratch_ledger,
)

Bundle = dict[str, Any]


@dataclass
class Source:
    """The ledger the bundles came from, and the bundles."""

    cli: Cli
    backend: str
    partial: Bundle
    whole: Bundle
    folder: Path

    def bundle(self, scope: str) -> Bundle:
        """A fresh copy of the partial (``salford``) or ``whole`` bundle, to edit."""
        return copy.deepcopy(self.partial if scope == "salford" else self.whole)


@pytest.fixture(scope="module", params=BACKENDS)
def source(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """Salford, cosigned by two partners, and its two bundles, on each backend."""
    backend = backend_of(request)
    folder = tmp_path_factory.mktemp(f"bundles-{backend}")
    with scratch_ledger(backend, folder, "source") as url:
        cli = Cli(url, folder)
        cli.cosigned_salford()
        cli.run("export", SALFORD, "-o", str(folder / "salford.json"))
        cli.run("export", "-o", str(folder / "whole.json"))
        yield Source(cli, backend, json.loads((folder / "salford.json").read_text("utf-8")),
                     json.loads((folder / "whole.json").read_text("utf-8")), folder)


@pytest.fixture
def target(source: Source, tmp_path: Path) -> Iterator[str]:
    """An empty ledger on the source's backend, for an auditor's copy."""
    with scratch_ledger(source.backend, tmp_path, "copy") as url:
        yield url


def write(bundle: Bundle, path: Path) -> Path:
    """A bundle file as ``ledger export`` writes it."""
    path.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def item(bundle: Bundle, reference: str, seq: int) -> dict[str, Any]:
    """The bundle's item holding entry ``seq`` of ``reference``."""
    for candidate in bundle["entries"]:
        statement = candidate["entry"]["statement"]
        if (statement["agreement"], statement["seq"]) == (reference, seq):
            found: dict[str, Any] = candidate
            return found
    raise AssertionError(f"no entry {reference}:{seq} in the bundle")


def without(bundle: Bundle, reference: str, seq: int) -> None:
    """Remove entry ``seq`` of ``reference`` from the bundle."""
    bundle["entries"].remove(item(bundle, reference, seq))


def signature_line(bundle: Bundle, name: str) -> tuple[int, str]:
    """Where ``name``'s signature line is in the checkpoint note, and its base64."""
    lines = bundle["checkpoint"].split("\n")
    for number, line in enumerate(lines):
        if line.startswith(f"\u2014 {name} "):
            return number, line.rsplit(" ", 1)[1]
    raise AssertionError(f"no signature by {name} on the checkpoint")


def break_signature(bundle: Bundle, name: str) -> None:
    """Change one byte of ``name``'s signature on the checkpoint, past its key id (and, for a
    cosignature, its timestamp)."""
    number, encoded = signature_line(bundle, name)
    lines = bundle["checkpoint"].split("\n")
    lines[number] = lines[number].replace(encoded, flip_base64(encoded, 40))
    bundle["checkpoint"] = "\n".join(lines)


# --- the edits --------------------------------------------------------------------------------


def change_a_byte_of_a_body(bundle: Bundle) -> None:
    line = item(bundle, SALFORD, 4)["entry"]["statement"]["body"]["line"]
    assert line["amount"] == "341740.00"
    line["amount"] = "341749.00"


def write_an_amount_as_a_number(bundle: Bundle) -> None:
    line = item(bundle, SALFORD, 4)["entry"]["statement"]["body"]["line"]
    line["amount"] = 341740.0


def change_a_signature(bundle: Bundle) -> None:
    entry = item(bundle, SALFORD, 6)["entry"]
    entry["signature"] = flip_base64(entry["signature"])


def delete_an_entry(bundle: Bundle) -> None:
    without(bundle, SALFORD, 4)


def swap_log_indexes(bundle: Bundle) -> None:
    first, second = item(bundle, SALFORD, 4), item(bundle, SALFORD, 5)
    first["log_index"], second["log_index"] = second["log_index"], first["log_index"]


def swap_contents(bundle: Bundle) -> None:
    # Each entry moves into the other's place: its log index and proof stay behind.
    first, second = item(bundle, SALFORD, 4), item(bundle, SALFORD, 5)
    first["entry"], second["entry"] = second["entry"], first["entry"]


def insert_a_forged_entry(bundle: Bundle) -> None:
    # Mallory's £100,000 payment by the PCT, chained to seq 8 and signed with her own key,
    # placed as log entry 10 with a borrowed proof.
    last = item(bundle, SALFORD, 8)
    body = {"payment": {"year": "2003/04", "source": "PCT mainstream", "amount": "100000.00"}}
    forged = forged_next(last["entry"], "contribute", PCT, body, mallory())
    bundle["entries"].append({**last, "log_index": ENTRIES, "entry": forged.to_json()})


def truncate_the_tail(bundle: Bundle) -> None:
    # The last two log entries: the PCT joining the alcohol agreement, probation's signature.
    bundle["entries"] = [e for e in bundle["entries"] if e["log_index"] < ENTRIES - 2]


def replace_a_partners_key(bundle: Bundle) -> None:
    # The probation service's join introduces Mallory's key, and the keys section agrees.
    statement = item(bundle, SALFORD, 3)["entry"]["statement"]
    assert statement["partner"] == PROBATION
    statement["body"]["public_key"] = mallory().public_key.hex()
    keys = bundle["keys"]
    del keys[fixed_key(PROBATION).key_id]
    keys[mallory().key_id] = {"partner": PROBATION, "public_key": mallory().public_key.hex()}


def alter_a_proof_hash(bundle: Bundle) -> None:
    proof = item(bundle, SALFORD, 6)["proof"]
    proof[1] = flip_base64(proof[1])


def put_a_number_in_a_proof(bundle: Bundle) -> None:
    proof = item(bundle, SALFORD, 6)["proof"]
    proof[1] = 12345


def put_bad_base64_in_a_proof(bundle: Bundle) -> None:
    proof = item(bundle, SALFORD, 6)["proof"]
    proof[0] = proof[0][:-2] + "!="


def break_the_operator_signature(bundle: Bundle) -> None:
    break_signature(bundle, ORIGIN)


def alter_a_cosignature(bundle: Bundle) -> None:
    break_signature(bundle, COUNCIL)


@dataclass(frozen=True)
class Edit:
    """A change to a bundle and the failures ``verify-bundle`` must report for it."""

    change: Callable[[Bundle], None]
    #: (text in the failure, where: log_index / agreement / seq), for every scope...
    expect: tuple[tuple[str, dict[str, Any]], ...]
    #: ...and only for a whole-ledger bundle.
    whole_only: tuple[tuple[str, dict[str, Any]], ...] = ()
    scopes: tuple[str, ...] = ("salford", "whole")


def at(seq: int, log: bool = False) -> dict[str, Any]:
    """Where Salford's entry ``seq`` is (with its log index if ``log``)."""
    where: dict[str, Any] = {"agreement": SALFORD, "seq": seq}
    return {**where, "log_index": SALFORD_LOG[seq]} if log else where


NOT_ALL = "a whole-ledger bundle must hold log entries 0 to 9, once each"

EDITS = {
    "changed-body-byte": Edit(change_a_byte_of_a_body, (
        ("signature does not verify", at(4)), ("inclusion proof", at(4, log=True))),
        whole_only=(("the entries do not give the checkpoint's root", {}),)),
    "amount-as-a-number": Edit(write_an_amount_as_a_number, (
        ("341740.0 is not allowed", at(4)), ("inclusion proof", at(4, log=True)))),
    "changed-signature": Edit(change_a_signature, (
        ("signature does not verify", at(6)), ("inclusion proof", at(6, log=True)))),
    # The replay numbers the entries it is given: the fourth one says it is seq 5.
    "deleted-entry": Edit(delete_an_entry, (
        ("entry says seq 5 but is stored as entry 4", at(4)),),
        whole_only=((NOT_ALL, {}),)),
    "swapped-log-indexes": Edit(swap_log_indexes, (
        ("inclusion proof", {"agreement": SALFORD, "seq": 4, "log_index": SALFORD_LOG[5]}),
        ("inclusion proof", {"agreement": SALFORD, "seq": 5, "log_index": SALFORD_LOG[4]}))),
    "swapped-contents": Edit(swap_contents, (
        ("inclusion proof", {"agreement": SALFORD, "seq": 5, "log_index": SALFORD_LOG[4]}),
        ("inclusion proof", {"agreement": SALFORD, "seq": 4, "log_index": SALFORD_LOG[5]}))),
    "forged-entry": Edit(insert_a_forged_entry, (
        ("is not the current key of partner 'salford-pct'", at(9)),
        ("inclusion proof", {"agreement": SALFORD, "seq": 9, "log_index": ENTRIES})),
        whole_only=((NOT_ALL, {}),)),
    "truncated-tail": Edit(truncate_the_tail, (), whole_only=((NOT_ALL, {}),),
                           scopes=("whole",)),
    "replaced-partner-key": Edit(replace_a_partners_key, (
        ("is not the current key of partner 'gm-probation'", at(3)),
        ("inclusion proof", at(3, log=True)))),
    "altered-proof-hash": Edit(alter_a_proof_hash, (("inclusion proof", at(6, log=True)),)),
    "number-in-proof": Edit(put_a_number_in_a_proof, (
        ("inclusion proof: a proof hash must be base64 text", at(6, log=True)),)),
    "bad-base64-in-proof": Edit(put_bad_base64_in_a_proof, (
        ("inclusion proof: a proof hash is not valid base64", at(6, log=True)),)),
    "broken-operator-signature": Edit(break_the_operator_signature, (
        (f"checkpoint: the signature by {ORIGIN}", {}),)),
    "altered-cosignature": Edit(alter_a_cosignature, (
        (f"checkpoint: the cosignature by {COUNCIL}", {}),)),
}

CASES = [pytest.param(name, scope, id=f"{name}-{scope}")
         for name, edit in EDITS.items() for scope in edit.scopes]


def failures_of(cli: Cli, path: Path, *options: str) -> list[dict[str, Any]]:
    """``ledger verify-bundle`` exits 3; its ``--json`` failures."""
    report = cli.json("verify-bundle", str(path), *options, code=3)
    assert report["ok"] is False
    failures: list[dict[str, Any]] = report["failures"]
    return failures


def has(failures: list[dict[str, Any]], what: str, where: dict[str, Any]) -> None:
    """Exactly one failure at ``where`` whose text holds ``what``."""
    found = [f for f in failures if what in f["what"]
             and all(f[key] == value for key, value in where.items())]
    assert len(found) == 1, f"expected one failure {where} {what!r} in {failures}"


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["salford", "whole"])
def test_an_exported_bundle_verifies_offline(source: Source, scope: str) -> None:
    path = source.folder / ("salford.json" if scope == "salford" else "whole.json")
    out = source.cli.run("verify-bundle", str(path)).stdout
    assert "cosigned by gm-probation, salford-council" in out
    operator = fixed_key("operator")
    assert f"operator key id {operator.key_id} (compare it" in out
    report = source.cli.json("verify-bundle", str(path), "--operator-key",
                             operator.public_key.hex())
    assert report["ok"] is True
    assert report["checkpoint_size"] == ENTRIES
    assert report["operator_key_id"] == operator.key_id
    if scope == "salford":
        assert (report["entries"], report["agreements"]) == (8, 1)
        assert [e["log_index"] for e in source.partial["entries"]] == sorted(
            SALFORD_LOG[s] for s in range(1, 9))
    else:
        assert (report["entries"], report["agreements"]) == (ENTRIES, 2)
        assert "the whole log against the checkpoint's root" in report["checks"]


@pytest.mark.parametrize(("name", "scope"), CASES)
def test_an_edited_bundle_fails_verification(source: Source, tmp_path: Path, name: str,
                                             scope: str) -> None:
    edit = EDITS[name]
    bundle = source.bundle(scope)
    edit.change(bundle)
    path = write(bundle, tmp_path / "edited.json")
    failures = failures_of(source.cli, path)
    expected = edit.expect + (edit.whole_only if scope == "whole" else ())
    for what, where in expected:
        has(failures, what, where)
    # Nothing blames the agreement nobody touched.
    assert not [f for f in failures if f["agreement"] == ALCOHOL], failures


def test_a_bundle_from_another_operator_fails_against_the_key_the_auditor_holds(
        source: Source, tmp_path: Path) -> None:
    # Mallory puts her own key in as the operator's and signs the same checkpoint with it;
    # the partners' cosignatures are over the checkpoint's text, so they still verify. Only
    # the operator key the auditor got out of band tells the bundles apart.
    from ledger.note import SignedNote, sign_note  # noqa: PLC0415

    bundle = source.bundle("whole")
    note = SignedNote.parse(bundle["checkpoint"])
    forged = SignedNote(note.text, (
        sign_note(note.text, ORIGIN, mallory().private_key),
        *(s for s in note.signatures if s.name != ORIGIN)))
    bundle["checkpoint"] = forged.format()
    bundle["operator"]["public_key"] = mallory().public_key.hex()
    path = write(bundle, tmp_path / "mallory.json")
    report = source.cli.json("verify-bundle", str(path))
    assert report["ok"] is True
    assert report["operator_key_id"] == mallory().key_id != fixed_key("operator").key_id
    failures = failures_of(source.cli, path, "--operator-key",
                           fixed_key("operator").public_key.hex())
    has(failures, "is not the expected one", {})


def test_the_right_bundle_fails_against_another_operator_key(source: Source) -> None:
    failures = failures_of(source.cli, source.folder / "whole.json", "--operator-key",
                           fixed_key(MALLORY).public_key.hex())
    assert [f["what"] for f in failures] == [
        f"the bundle's operator key {fixed_key('operator').key_id[:16]} is not the expected "
        f"one {fixed_key(MALLORY).key_id[:16]}"]


def test_a_file_that_is_not_a_bundle_is_bad_input_not_a_failed_audit(source: Source,
                                                                     tmp_path: Path) -> None:
    # docs/AUDIT.md: exit 1 for a file that is not a bundle, 3 only for one that fails.
    path = tmp_path / "minutes.json"
    path.write_text(json.dumps({"meeting": "Joint Commissioning Group"}), encoding="utf-8")
    result = source.cli.run("verify-bundle", str(path), code=1)
    assert result.stderr == ('error: not an audit bundle (expected "bundle": '
                             "'agreement-ledger/bundle/v1')\n")


def test_a_recorded_time_without_its_offset_is_bad_input(source: Source,
                                                         tmp_path: Path) -> None:
    bundle = source.bundle("salford")
    entry = item(bundle, SALFORD, 2)
    entry["recorded"] = entry["recorded"].removesuffix("Z")
    result = source.cli.run("verify-bundle", str(write(bundle, tmp_path / "naive.json")), code=1)
    assert result.stderr.startswith("error: recorded time ")
    assert "has no offset" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_partial_bundle_cannot_show_that_later_entries_are_missing(source: Source,
                                                                    tmp_path: Path) -> None:
    # docs/AUDIT.md: an agreement's own bundle proves its entries are in the log, not that
    # there are no more. Without Salford's last signature it still verifies; the whole-ledger
    # bundle without it does not.
    partial = source.bundle("salford")
    without(partial, SALFORD, 8)
    assert source.cli.json("verify-bundle", str(write(partial, tmp_path / "p.json")))["ok"]
    whole = source.bundle("whole")
    without(whole, SALFORD, 8)
    has(failures_of(source.cli, write(whole, tmp_path / "w.json")), NOT_ALL, {})


def test_import_refuses_every_edited_bundle_whole(source: Source, target: str,
                                                 tmp_path: Path) -> None:
    paths = []
    for name, scope in ((p.values[0], p.values[1]) for p in CASES):
        bundle = source.bundle(str(scope))
        EDITS[str(name)].change(bundle)
        paths.append(write(bundle, tmp_path / f"{name}-{scope}.json"))
    for path in paths:
        result = source.cli.run("import", str(path), code=3, ledger=target)
        assert "FAILED" in result.stderr, path.name
        assert Backdoor(target).event_count() == 0, f"{path.name} left events behind"
    # The genuine bundle under another operator's key is refused too.
    source.cli.run("import", str(source.folder / "whole.json"), "--operator-key",
                   fixed_key(MALLORY).public_key.hex(), code=3, ledger=target)
    assert Backdoor(target).event_count() == 0


def test_a_whole_ledger_bundle_imports_into_an_auditors_copy_that_answers(
        source: Source, target: str) -> None:
    cli = source.cli
    done = cli.json("import", str(source.folder / "whole.json"),
                    "--operator-key", fixed_key("operator").public_key.hex(), ledger=target)
    assert (done["entries"], done["origin"]) == (ENTRIES, ORIGIN)
    # The copy answers as the original does, entry for entry and penny for penny.
    for command in ("status", "budget", "history", "signatures"):
        for reference in (SALFORD, ALCOHOL):
            assert cli.json(command, reference, ledger=target) == cli.json(command, reference)
    budget = cli.json("budget", SALFORD, ledger=target)["years"][0]
    assert (budget["year"], budget["confirmed"]) == ("2003/04", "631740.00")
    assert cli.json("status", SALFORD, ledger=target)["state"] == "in force"
    # Its own log is the original's: same checkpoint, both cosignatures, and it verifies.
    report = cli.json("verify", ledger=target)
    assert (report["ok"], report["entries"], report["agreements"]) == (True, ENTRIES, 2)
    assert ("1 checkpoints: operator signature, the root the entries give, cosignatures, and the "
            "checkpoint tables") in report["checks"]
    proof = cli.json("prove", f"{SALFORD}:8", ledger=target)
    assert proof == cli.json("prove", f"{SALFORD}:8")


def test_an_agreements_bundle_imports_that_agreement_alone(source: Source, target: str) -> None:
    cli = source.cli
    cli.run("import", str(source.folder / "salford.json"), ledger=target)
    assert cli.json("history", SALFORD, ledger=target) == cli.json("history", SALFORD)
    assert [a["reference"] for a in cli.json("list", ledger=target)["agreements"]] == [SALFORD]
    assert "no agreement" in cli.run("status", ALCOHOL, code=1, ledger=target).stderr
    # A copy of one agreement is not the log the partners' memories are of: the auditor
    # verifies it with a key folder of its own.
    auditor = source.folder / "auditor-keys"
    assert cli.json("verify", "--keys", str(auditor), ledger=target)["ok"] is True
    # With the partners' memories, it is told apart from the log they cosigned.
    assert "that salford-council remembers" in cli.run("verify", code=3, ledger=target).stderr
