"""Audit bundles in lines: ``ledger export -o FILE.jsonl`` writes the bundle's head on its first
line and one entry a line; ``verify-bundle`` and ``import`` read it a line at a time.

The Salford partnership is recorded once per backend, checkpointed and cosigned, and exported in
both layouts. A bundle in lines must say what the document says, import into the same copy, and
be refused, naming what is wrong and storing nothing, whatever is done to its lines. Its reading
must not grow with the bundle: measured in a process of its own at two sizes, beside the
document, which does.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    ORIGIN,
    SALFORD,
    SALFORD_LOG,
    Backdoor,
    Cli,
    backend_of,
    flip_base64,
    scratch_ledger,
)

ROOT = Path(__file__).resolve().parent.parent
NOT_ALL = f"a whole-ledger bundle must hold log entries 0 to {ENTRIES - 1}, once each"


@dataclass
class Source:
    """The ledger the bundles came from, and where they are."""

    cli: Cli
    backend: str
    folder: Path

    def path(self, scope: str, suffix: str = ".jsonl") -> Path:
        return self.folder / f"{scope}{suffix}"

    def lines(self, scope: str) -> list[bytes]:
        """A fresh copy of the ``salford`` or ``whole`` bundle's lines, to edit."""
        return self.path(scope).read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module", params=BACKENDS)
def source(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """Salford, cosigned by two partners, and its bundles in both layouts, on each backend."""
    backend = backend_of(request)
    folder = tmp_path_factory.mktemp(f"lines-{backend}")
    with scratch_ledger(backend, folder, "source") as url:
        cli = Cli(url, folder)
        cli.cosigned_salford()
        for scope, reference in (("salford", (SALFORD,)), ("whole", ())):
            for suffix in (".json", ".jsonl"):
                cli.run("export", *reference, "-o", str(folder / f"{scope}{suffix}"))
        yield Source(cli, backend, folder)


@pytest.fixture
def target(source: Source, tmp_path: Path) -> Iterator[str]:
    """An empty ledger on the source's backend, for an auditor's copy."""
    with scratch_ledger(source.backend, tmp_path, "copy") as url:
        yield url


def rows(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def at(lines: list[bytes], reference: str, seq: int) -> int:
    """Which line holds entry ``seq`` of ``reference``."""
    for number, row in enumerate(rows(lines)[1:], start=1):
        statement = row["entry"]["statement"]
        if (statement["agreement"], statement["seq"]) == (reference, seq):
            return number
    raise AssertionError(f"no entry {reference}:{seq} in the bundle")


def dump(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


# --- the layout ---------------------------------------------------------------------------------


def test_a_bundle_in_lines_holds_what_the_document_holds_a_line_an_entry(source: Source) -> None:
    for scope in ("whole", "salford"):
        document = json.loads(source.path(scope, ".json").read_bytes())
        lines = source.lines(scope)
        assert lines[0].startswith(b'{"bundle":"agreement-ledger/bundle-lines/v1",')
        head, *entries = rows(lines)
        assert head == {**{k: v for k, v in document.items() if k != "entries"},
                        "bundle": "agreement-ledger/bundle-lines/v1"}
        assert [e["log_index"] for e in entries] == [e["log_index"]
                                                     for e in document["entries"]]
        for row, item in zip(entries, document["entries"], strict=True):
            assert row["entry"] == item["entry"]
            assert row["recorded"] == item["recorded"]
            # A whole ledger's tree is rebuilt from its entries: its lines carry no proof.
            assert row.get("proof") == (None if scope == "whole" else item["proof"])
        last = {e["entry"]["statement"]["agreement"]: e["log_index"] for e in entries}
        assert [e["log_index"] for e in entries if e.get("last")] == sorted(last.values())
        assert all(e.get("last", True) is True for e in entries)
    assert len(source.lines("whole")) == ENTRIES + 1


@pytest.mark.parametrize("scope", ["salford", "whole"])
def test_a_bundle_in_lines_verifies_offline_as_the_document_does(source: Source,
                                                                 scope: str) -> None:
    operator = fixed_key("operator").public_key.hex()
    lines = source.cli.json("verify-bundle", str(source.path(scope)), "--operator-key", operator)
    document = source.cli.json("verify-bundle", str(source.path(scope, ".json")),
                               "--operator-key", operator)
    assert lines["ok"] is True
    for member in ("entries", "agreements", "checkpoint_size", "operator_key_id", "origin"):
        assert lines[member] == document[member], member
    assert (lines["entries"], lines["agreements"]) == ((8, 1) if scope == "salford"
                                                       else (ENTRIES, 2))
    if scope == "whole":
        assert "the whole log against the checkpoint's root" in lines["checks"]


def test_both_layouts_import_into_the_same_copy(source: Source, target: str,
                                                tmp_path: Path) -> None:
    cli = source.cli
    done = cli.json("import", str(source.path("whole")), "--operator-key",
                    fixed_key("operator").public_key.hex(), ledger=target)
    assert (done["entries"], done["origin"]) == (ENTRIES, ORIGIN)
    with scratch_ledger(source.backend, tmp_path, "from-document") as other:
        cli.run("import", str(source.path("whole", ".json")), ledger=other)
        for command in ("status", "budget", "history", "signatures"):
            for reference in (SALFORD, ALCOHOL):
                copied = cli.json(command, reference, ledger=target)
                assert copied == cli.json(command, reference, ledger=other)
                assert copied == cli.json(command, reference)
        # The same log: the same checkpoint, root and proofs.
        for entry in ("0", f"{SALFORD}:8", f"{ALCOHOL}:2"):
            proof = cli.json("prove", entry, ledger=target)
            assert proof == cli.json("prove", entry, ledger=other) == cli.json("prove", entry)
    report = cli.json("verify", ledger=target)
    assert (report["ok"], report["entries"], report["agreements"]) == (True, ENTRIES, 2)


def test_an_import_stores_the_event_rows_of_the_ledger_it_copies(source: Source,
                                                                  target: str) -> None:
    """Each entry's stored row is the one the source stores, byte for byte and in the same
    order (on PostgreSQL the import writes them by COPY, the source through eventsourcing)."""
    from ledger.application import ENTRY_TOPICS, Ledger  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415

    def stored(url: str) -> list[tuple[Any, ...]]:
        ledger = Ledger(parse_location(url))
        try:
            return [(row.originator_id, row.originator_version, row.topic, row.state)
                    for row in ledger.recorder.select_notifications(1, 10_000)
                    if row.topic in ENTRY_TOPICS]
        finally:
            ledger.close()

    source.cli.run("import", str(source.path("whole")), ledger=target)
    copied, original = stored(target), stored(source.cli.url)
    assert len(copied) == ENTRIES
    assert copied == original


def test_an_agreements_bundle_in_lines_imports_that_agreement_alone(source: Source,
                                                                    target: str) -> None:
    cli = source.cli
    cli.run("import", str(source.path("salford")), ledger=target)
    assert cli.json("history", SALFORD, ledger=target) == cli.json("history", SALFORD)
    assert [a["reference"] for a in cli.json("list", ledger=target)["agreements"]] == [SALFORD]


# --- the edits ----------------------------------------------------------------------------------

Edit = Callable[[list[bytes]], None]


def change_an_amount(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 4)
    row = json.loads(lines[number])
    line = row["entry"]["statement"]["body"]["line"]
    assert line["amount"] == "341740.00"
    line["amount"] = "341749.00"
    lines[number] = dump(row)


def change_a_signature(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 6)
    row = json.loads(lines[number])
    row["entry"]["signature"] = flip_base64(row["entry"]["signature"])
    lines[number] = dump(row)


def drop_a_line(lines: list[bytes]) -> None:
    del lines[at(lines, SALFORD, 5)]


def swap_two_lines(lines: list[bytes]) -> None:
    first, second = at(lines, SALFORD, 4), at(lines, SALFORD, 5)
    lines[first], lines[second] = lines[second], lines[first]


def drop_the_last_line(lines: list[bytes]) -> None:
    del lines[-1]


def cut_the_last_line_short(lines: list[bytes]) -> None:
    lines[-1] = lines[-1][:40]


def name_log_index_twice(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 3)
    lines[number] = lines[number].replace(b'{"log_index":', b'{"log_index":99,"log_index":', 1)


def name_origin_twice(lines: list[bytes]) -> None:
    lines[0] = lines[0].replace(b'"origin":', b'"origin":"elsewhere.example","origin":', 1)


def add_a_member_to_an_entry_line(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 3)
    lines[number] = lines[number].replace(b'{"log_index":', b'{"note":"x","log_index":', 1)


def add_a_member_to_the_head(lines: list[bytes]) -> None:
    lines[0] = lines[0].replace(b'"origin":', b'"note":"x","origin":', 1)


def sign_another_root(lines: list[bytes]) -> None:
    # The operator's own key signs a checkpoint of the same size over another root.
    from ledger.note import SignedNote, sign_note  # noqa: PLC0415

    head = json.loads(lines[0])
    size = SignedNote.parse(head["checkpoint"]).text.split("\n")[1]
    text = f"{ORIGIN}\n{size}\n{'A' * 43}=\n"
    head["checkpoint"] = SignedNote(text, (sign_note(text, ORIGIN,
                                                     fixed_key("operator").private_key),)).format()
    lines[0] = dump(head)


def pad_a_line_past_the_limit(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 2)
    lines[number] = lines[number].replace(b'"entry":', b'"entry":' + b" " * (2 * 2**20), 1)


def break_the_first_line(lines: list[bytes]) -> None:
    lines[0] = lines[0][:120] + b"\n"


def give_a_proof_in_a_whole_ledger(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 2)
    lines[number] = lines[number].replace(b'"entry":', b'"proof":[],"entry":', 1)


def mark_an_earlier_entry_last(lines: list[bytes]) -> None:
    number = at(lines, SALFORD, 7)
    row = json.loads(lines[number])
    lines[number] = dump({**row, "last": True})


def name_no_action(lines: list[bytes]) -> None:
    # An action no statement has: import made its stored event before the replay refused it,
    # and crashed on it (KeyError) instead of refusing the bundle.
    number = at(lines, SALFORD, 3)
    row = json.loads(lines[number])
    row["entry"]["statement"]["action"] = "bogus"
    lines[number] = dump(row)


def give_a_seq_beyond_any(lines: list[bytes]) -> None:
    # A seq no statement has, too large for the event store's integer column: SQLite's driver
    # raised OverflowError (a traceback), PostgreSQL refused the write.
    number = at(lines, SALFORD, 3)
    row = json.loads(lines[number])
    row["entry"]["statement"]["seq"] = 2**63
    lines[number] = dump(row)


@dataclass(frozen=True)
class Case:
    change: Edit
    #: 3: the bundle does not check out (a failure names what); 1: it is not a bundle as the
    #: format says (one line on stderr says where).
    code: int
    #: What the failure (code 3) or the error (code 1) says, for each scope.
    salford: str | None
    whole: str | None


CASES = {
    "changed-entry": Case(change_an_amount, 3, "signature does not verify",
                          "the entries do not give the checkpoint's root"),
    "changed-signature": Case(change_a_signature, 3, "signature does not verify",
                              "signature does not verify"),
    "missing-line": Case(drop_a_line, 3, "entry says seq 6 but is stored as entry 5", NOT_ALL),
    "reordered-lines": Case(swap_two_lines, 3, "a bundle lists its entries in log order",
                            NOT_ALL),
    "truncated-at-a-line": Case(drop_the_last_line, 3, "marks no entry as this agreement's last",
                                NOT_ALL),
    "truncated-in-a-line": Case(cut_the_last_line_short, 1, "the line is cut short",
                                "the line is cut short"),
    "duplicated-member": Case(name_log_index_twice, 1, "names member 'log_index' twice",
                              "names member 'log_index' twice"),
    "duplicated-head-member": Case(name_origin_twice, 1, "line 1: the bundle names member "
                                   "'origin' twice", "line 1: the bundle names member 'origin' "
                                   "twice"),
    "unknown-member": Case(add_a_member_to_an_entry_line, 1, "unknown field `note`",
                           "unknown field `note`"),
    "unknown-head-member": Case(add_a_member_to_the_head, 1, "line 1: the bundle is malformed",
                                "line 1: the bundle is malformed"),
    "wrong-root": Case(sign_another_root, 3, "inclusion proof",
                       "the entries do not give the checkpoint's root"),
    "line-over-the-limit": Case(pad_a_line_past_the_limit, 1, "the line is longer than",
                                "the line is longer than"),
    "bad-first-line": Case(break_the_first_line, 1, "line 1: the bundle is malformed",
                           "line 1: the bundle is malformed"),
    "proof-in-a-whole-ledger": Case(give_a_proof_in_a_whole_ledger, 1, None,
                                    "a whole-ledger bundle in lines gives no proofs"),
    "entry-after-the-last": Case(mark_an_earlier_entry_last, 3, "an entry follows the one the "
                                 "bundle marks as its agreement's last", "an entry follows the "
                                 "one the bundle marks as its agreement's last"),
    "unknown-action": Case(name_no_action, 1, "'bogus' is not an action",
                           "'bogus' is not an action"),
    "seq-beyond-any": Case(give_a_seq_beyond_any, 1, "statement seq must be a whole number",
                           "statement seq must be a whole number"),
}

PARAMS = [pytest.param(name, scope, id=f"{name}-{scope}")
          for name, case in CASES.items() for scope in ("salford", "whole")
          if getattr(case, scope) is not None]


def edited(source: Source, name: str, scope: str, folder: Path) -> Path:
    lines = source.lines(scope)
    CASES[name].change(lines)
    path = folder / f"{name}-{scope}.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def said(result: Any, case: Case, expected: str) -> None:
    """The one line, or the failure, that names what is wrong."""
    if case.code == 1:
        assert result.stderr.startswith("error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr, result.stderr
    else:
        assert expected in result.stderr, result.stderr
        assert "verification failed: " in result.stderr


@pytest.mark.parametrize(("name", "scope"), PARAMS)
def test_an_edited_bundle_in_lines_is_refused_and_nothing_is_stored(
        source: Source, target: str, tmp_path: Path, name: str, scope: str) -> None:
    case = CASES[name]
    expected = getattr(case, scope)
    path = edited(source, name, scope, tmp_path)
    said(source.cli.run("verify-bundle", str(path), code=case.code), case, expected)
    said(source.cli.run("import", str(path), code=case.code, ledger=target), case, expected)
    copy = Backdoor(target)
    assert copy.event_count() == 0
    if copy.sqlite:
        # The ledger file the import made is removed with what it held.
        assert not Path(target).exists()
    # Nothing is left that keeps the genuine bundle out.
    source.cli.run("import", str(source.path(scope)), ledger=target)


# --- memory -------------------------------------------------------------------------------------


def _synthetic_bundles(folder: Path, entries: int) -> tuple[Path, Path]:
    """A synthetic ledger of about ``entries`` entries (benchmarks/synthetic.py), checkpointed
    and exported in both layouts."""
    from benchmarks.run import _checkpoint, _prepare  # noqa: PLC0415
    from ledger.application import Ledger  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.audit import export_bundle  # noqa: PLC0415

    location = parse_location(str(folder / f"n{entries}.db"))
    _prepare(location, entries)
    _checkpoint(location)
    ledger = Ledger(location)
    try:
        bundle = export_bundle(ledger)
    finally:
        ledger.close()
    lines, document = folder / f"n{entries}.jsonl", folder / f"n{entries}.json"
    with lines.open("wb") as file:
        bundle.write_lines(file)
    document.write_bytes(bundle.dumps())
    return lines, document


def _peak_importing(path: Path, target: Path) -> int:
    """Import ``path`` in a fresh process, replaying in that process (no workers): the peak of
    what Python allocated meanwhile (tracemalloc), in bytes."""
    code = ("import sys, tracemalloc\n"
            "from pathlib import Path\n"
            "from ledger.bundle import open_bundle\n"
            "from ledger.storage import parse_location\n"
            "from projections.audit import import_bundle\n"
            "tracemalloc.start()\n"
            "with open_bundle(Path(sys.argv[1])) as source:\n"
            "    report = import_bundle(parse_location(sys.argv[2]), source, workers=1)\n"
            "assert report.ok, report.failures[:1]\n"
            "print(tracemalloc.get_traced_memory()[1])\n")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(target)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=True)
    return int(done.stdout)


def test_importing_a_bundle_in_lines_takes_no_more_memory_for_four_times_the_entries(
        tmp_path: Path) -> None:
    small_lines, small_document = _synthetic_bundles(tmp_path, 2500)
    big_lines, big_document = _synthetic_bundles(tmp_path, 10000)
    peaks = {path.name: _peak_importing(path, tmp_path / f"copy-{path.name}.db")
             for path in (small_lines, big_lines, small_document, big_document)}
    # The document is held whole: 7,500 entries more take tens of MB more (about 4 KB an
    # entry). The lines take what a batch takes: less than 280 bytes an entry more would
    # show anything kept of each entry (its text alone is about 1 KB).
    assert peaks[big_document.name] - peaks[small_document.name] > 20 * 2**20, peaks
    assert peaks[big_lines.name] - peaks[small_lines.name] < 2 * 2**20, peaks


# --- export -------------------------------------------------------------------------------------


def test_export_in_lines_refuses_a_stored_log_whose_entries_were_moved(ledger_url: str,
                                                                       tmp_path: Path) -> None:
    # Entries 4 and 5 of Salford trade places in the log's index behind the ledger's back: a
    # whole ledger in lines carries no proofs, so its entries in log order must give the
    # checkpoint's root before a line is written.
    cli = Cli(ledger_url, tmp_path)
    cli.salford()
    cli.run("checkpoint")
    backdoor = Backdoor(ledger_url)
    for index, seq in ((SALFORD_LOG[4], -1), (SALFORD_LOG[5], 4), (SALFORD_LOG[4], 5)):
        backdoor.execute(f'UPDATE log_leaves SET seq = {seq} WHERE "index" = {index}')
    path = tmp_path / "whole.jsonl"
    refused = cli.run("export", "-o", str(path), code=3).stderr
    assert "the entries do not give the root of the checkpoint of size 10" in refused
    assert refused.count("\n") == 1
    assert not path.exists()
    # The document, with its proofs, is refused too, naming the entry.
    refused = cli.run("export", "-o", str(tmp_path / "whole.json"), code=3).stderr
    assert "does not prove entry 4 of 'salford-dat-2004'" in refused


def test_an_import_that_fails_never_removes_a_ledger_another_import_made(
        source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two imports into the same new SQLite file: the second found no file when it began (it
    looked before the first made it), then failed on the ledger the first committed. It must
    not remove that ledger: it was not its own."""
    if source.backend != "sqlite":
        pytest.skip("a SQLite ledger file")
    from ledger.bundle import open_bundle  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.storage import Location, parse_location  # noqa: PLC0415
    from projections.audit import import_bundle  # noqa: PLC0415

    target = tmp_path / "copy.db"
    location = parse_location(str(target))
    first = source.cli.json("import", str(source.path("whole")), ledger=str(target))
    assert first["entries"] == ENTRIES
    # The second import's look at the file, taken before the first import made it.
    kind = Location.sqlite_kind
    looks = iter(["missing"])
    monkeypatch.setattr(Location, "sqlite_kind", lambda self: next(looks, None) or kind(self))
    with open_bundle(source.path("whole")) as bundle, pytest.raises(LedgerError):
        import_bundle(location, bundle, workers=1)
    assert target.exists()
    assert source.cli.json("verify", ledger=str(target))["entries"] == ENTRIES


def test_a_head_of_many_keys_and_signature_lines_is_checked_in_time_linear_in_them(
        source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first line may hold 64 MiB: some 370,000 keys listed for one partner and a note of
    100 signature lines under that partner's name took 40 s, every line's key id computed
    against every key. Each key's id is computed once."""
    import base64  # noqa: PLC0415
    import os  # noqa: PLC0415

    from ledger import bundle as bundle_module  # noqa: PLC0415
    from ledger.bundle import check_checkpoint, open_bundle  # noqa: PLC0415
    from ledger.note import MAX_SIGNATURES, NoteSignature, SignedNote  # noqa: PLC0415
    from ledger.verify import Report  # noqa: PLC0415

    with open_bundle(source.path("whole")) as bundle:
        head = bundle.head
    forged = tuple(NoteSignature(COUNCIL, os.urandom(4), os.urandom(72))
                   for _ in range(MAX_SIGNATURES - len(head.checkpoint.signatures)))
    note = SignedNote(head.checkpoint.text, (*head.checkpoint.signatures, *forged))
    keys = dict(head.keys)
    for _ in range(2000):
        public = os.urandom(32)
        keys[base64.b16encode(os.urandom(32)).decode().lower()] = (COUNCIL, public)
    real = bundle_module.note_key_id
    calls = {"n": 0}

    def counted(*args: Any) -> bytes:
        calls["n"] += 1
        return real(*args)

    monkeypatch.setattr(bundle_module, "note_key_id", counted)
    report = Report()
    check_checkpoint(note, head.origin, head.operator, head.operator_key, keys, report)
    assert report.ok, report.failures
    assert f", {COUNCIL}; {len(forged)} signature lines under keys" in report.checks[0]
    assert calls["n"] <= len(keys) + 1, calls
