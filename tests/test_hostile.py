"""Hostile input: text that partners sign reaches other people's terminals, spreadsheets and
reports, and bundles come from strangers. Each case in ``tests/hostile/`` is a named input
that once got through (as sigstore keeps one file per advisory); the tests below feed each to
the ledger and check it is refused, or shown as text and never obeyed.

Bad input of every other kind is one line on stderr, exit 1 or 2, never a traceback, and
nothing written: the ledger file is unchanged byte for byte.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.tamper import COUNCIL, PCT, SALFORD, Backdoor, Cli

HOSTILE = Path(__file__).parent / "hostile"
ROOT = Path(__file__).resolve().parents[1]


def hostile(name: str) -> str:
    """The text of the named hostile-input case."""
    case: dict[str, str] = json.loads((HOSTILE / f"{name}.json").read_text(encoding="utf-8"))
    return case["text"]


@pytest.fixture
def cli(ledger_url: str, tmp_path: Path) -> Cli:
    """The Salford partnership, checkpointed."""
    cli = Cli(ledger_url, tmp_path)
    cli.salford()
    cli.run("checkpoint")
    return cli


def draft_titled(cli: Cli, title: str, reference: str = "hostile-2004") -> None:
    cli.run("draft", reference, "--as", PCT, "--title", title, "--terms-hash", "ab" * 32,
            "--start", "2004-04-01", "--notice", "6m", "--name", "Salford PCT",
            "--role", "commissioning", "--signatory", "Anne Williams", "--designation", "Chair",
            "--at", "2004-01-01T09:00:00Z")


def test_every_case_is_used() -> None:
    used = {"rich-markup-in-a-title", "terminal-escape-in-a-bundle-origin",
            "terminal-escape-in-a-bundle-reference", "bidi-override-in-a-name",
            "zero-width-space-in-a-source", "formula-in-a-source", "spaces-around-a-source"}
    assert {p.stem for p in HOSTILE.glob("*.json")} == used


# --- screens --------------------------------------------------------------------------------------


def test_rich_markup_in_a_title_is_shown_as_text(cli: Cli) -> None:
    title = hostile("rich-markup-in-a-title")
    draft_titled(cli, title)
    cli.run("contribute", "hostile-2004", "--as", PCT, "--year", "2004/05", "--amount", "1",
            "--source", title, "--at", "2004-01-02T09:00:00Z")
    for args in (("status", "hostile-2004"), ("history", "hostile-2004"), ("list",),
                 ("budget", "hostile-2004", "--by", "source")):
        out = cli.run(*args).stdout
        assert "[/]" in out, args
        assert "[conceal]hidden[/conceal]" in out, args


@pytest.mark.parametrize("where", ["origin", "reference"])
def test_a_bundle_cannot_write_control_sequences_to_the_terminal(cli: Cli, where: str) -> None:
    path = cli.folder / "bundle.json"
    cli.run("export", "-o", str(path))
    bundle = json.loads(path.read_text(encoding="utf-8"))
    if where == "origin":
        bundle["origin"] = hostile("terminal-escape-in-a-bundle-origin")
    else:
        for item in bundle["entries"]:
            if item["entry"]["statement"]["agreement"] == SALFORD:
                item["entry"]["statement"]["agreement"] = hostile(
                    "terminal-escape-in-a-bundle-reference")
    path.write_text(json.dumps(bundle), encoding="utf-8")
    result = cli.runner.invoke(_app(), ["verify-bundle", str(path), "--ledger", cli.url],
                               env={"LEDGER_KEYS": str(cli.keys), "LEDGER_URL": None})
    assert result.exit_code in (1, 3)
    assert "\x1b" not in result.stdout + result.stderr
    assert "\\x1b" in result.stdout + result.stderr or where == "origin"


def _app() -> Any:
    from commands.cli import app  # noqa: PLC0415

    return app


@pytest.mark.parametrize("case", ["bidi-override-in-a-name", "zero-width-space-in-a-source"])
def test_invisible_or_direction_characters_are_refused_in_signed_text(cli: Cli,
                                                                      case: str) -> None:
    before = Backdoor(cli.url).event_count()
    text = hostile(case)
    if case == "bidi-override-in-a-name":
        args = ("join", "salford-alcohol-2005", "--as", "gm-probation", "--name", text,
                "--role", "other", "--signatory", "Roger Statham", "--designation", "Chief",
                "--at", "2003-07-04T09:00:00Z")
    else:
        args = ("contribute", "salford-alcohol-2005", "--as", COUNCIL, "--year", "2005/06",
                "--amount", "1", "--source", text, "--at", "2003-07-04T09:00:00Z")
    refused = cli.run(*args, code=1).stderr
    assert refused.startswith("error: the text of body")
    assert "holds the invisible character U+" in refused
    assert refused.count("\n") == 1
    assert Backdoor(cli.url).event_count() == before


def test_a_source_that_looks_like_a_formula_is_text_in_every_csv(cli: Cli) -> None:
    source = hostile("formula-in-a-source")
    cli.run("contribute", "salford-alcohol-2005", "--as", COUNCIL, "--year", "2005/06",
            "--amount", "1", "--source", source, "--at", "2003-07-04T09:00:00Z")
    by_source = cli.run("budget", "salford-alcohol-2005", "--by", "source", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(by_source)))
    assert [r["source"] for r in rows] == [f"'{source}", "total"]
    lines = cli.run("budget", "salford-alcohol-2005", "--lines", "--csv").stdout
    assert [r["source"] for r in csv.DictReader(io.StringIO(lines))] == [f"'{source}"]


def test_a_source_typed_with_spaces_around_it_is_the_same_source(cli: Cli) -> None:
    spaced = hostile("spaces-around-a-source")
    for amount, source in (("1", spaced), ("2", spaced.strip())):
        cli.run("contribute", "salford-alcohol-2005", "--as", COUNCIL, "--year", "2005/06",
                "--amount", amount, "--source", source, "--at", "2003-07-04T09:00:00Z")
    lines = cli.json("budget", "salford-alcohol-2005", "--lines")["lines"]
    assert [(line["source"], line["amount"]) for line in lines] == [("Social Services",
                                                                     "2.00")]


# --- bad input: one line, nothing written, never a traceback ------------------------------------


def _fingerprint(path: Path) -> dict[str, str]:
    """The bytes of a SQLite file and of its write-ahead log (an empty log holds nothing)."""
    found = {}
    for suffix in ("", "-wal"):
        file = Path(f"{path}{suffix}")
        if file.exists() and (suffix == "" or file.stat().st_size):
            found[suffix] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


@pytest.fixture
def quiet(tmp_path: Path) -> Cli:
    """A SQLite ledger at rest: read models and log caught up, so a refused command writes
    nothing at all."""
    cli = Cli(str(tmp_path / "ledger.db"), tmp_path)
    cli.salford()
    cli.run("checkpoint")
    cli.run("prove", "0")
    cli.run("status", SALFORD)
    path = cli.folder / "bundle.json"
    cli.run("export", "-o", str(path))
    # Settle the write-ahead log into the file, as a quiet ledger's would be.
    with sqlite3.connect(str(tmp_path / "ledger.db")) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return cli


BAD = {
    "time-before-the-calendar": ("contribute", SALFORD, "--as", PCT, "--year", "2003/04",
                                 "--amount", "1", "--paid", "--at",
                                 "0001-01-01T00:00:00+01:00"),
    "amount-of-thirty-digits": ("contribute", SALFORD, "--as", PCT, "--year", "2003/04",
                                "--amount", "1" * 30, "--paid"),
    "export-to-a-missing-folder": ("export", "-o", "MISSING/b.json"),
    "export-to-a-folder": ("export", "-o", "FOLDER"),
    "operator-key-not-hex": ("verify-bundle", "BUNDLE", "--operator-key", "zz"),
    "import-operator-key-not-hex": ("import", "BUNDLE", "--operator-key", "zz",
                                    "--ledger", "NEW"),
    "list-a-file-that-is-not-sqlite": ("list", "--ledger", "NOTDB"),
    "serve-with-half-of-tls": ("serve", "--certfile", "EMPTY"),
    "serve-sqlite-with-workers": ("serve", "--workers", "2"),
    "serve-drafts-from-a-folder": ("serve", "--drafts", "FOLDER"),
    "serve-drafts-keys-not-hex": ("serve", "--drafts", "NOTDB"),
    "service-over-plain-http-elsewhere": ("status", SALFORD, "--ledger",
                                          "http://ledger.example/salford"),
    "init-a-file-that-is-not-sqlite": ("init", "--ledger", "NOTDB"),
    "init-inside-another-database": ("init", "--ledger", "OTHERDB"),
    "init-with-a-bad-origin": ("init", "--ledger", "NEW", "--origin", "bad origin+"),
    "read-an-empty-file": ("status", SALFORD, "--ledger", "EMPTY"),
    "prove-a-number-that-is-not-ascii": ("prove", "²"),
    "as-of-entry-zero": ("status", SALFORD, "--as-of-entry", "0"),
    "a-title-with-a-direction-override": ("draft", "x-2004", "--as", PCT, "--title",
                                          "Pool \u202eevil", "--terms-hash", "ab" * 32,
                                          "--start", "2004-04-01", "--notice", "6m",
                                          "--name", "N", "--role", "other",
                                          "--signatory", "S", "--designation", "D"),
    "unknown-flexibility": ("draft", "x-2004", "--as", PCT, "--title", "T", "--terms-hash",
                            "ab" * 32, "--start", "2004-04-01", "--notice", "6m",
                            "--flexibility", "pooling", "--name", "N", "--role", "other",
                            "--signatory", "S", "--designation", "D"),
    "budget-by-quarter": ("budget", SALFORD, "--by", "quarter"),
    "an-unknown-option": ("status", SALFORD, "--colour"),
    "a-missing-argument": ("status",),
    "an-unknown-command": ("stats", SALFORD),
    "a-reference-that-is-not-utf-8": ("history", "salford\udcff"),
    "terms-that-are-a-device": ("draft", "x-2004", "--as", PCT, "--title", "T", "--terms",
                                "/dev/zero", "--start", "2004-04-01", "--notice", "6m",
                                "--name", "N", "--role", "other", "--signatory", "S",
                                "--designation", "D"),
    "a-passphrase-file-that-is-a-device": ("contribute", SALFORD, "--as", PCT, "--year",
                                           "2003/04", "--amount", "1", "--paid",
                                           "--passphrase-file", "/dev/zero"),
    "a-bundle-that-is-a-device": ("verify-bundle", "/dev/zero"),
    "a-bundle-that-is-a-folder": ("verify-bundle", "FOLDER"),
    "join-an-agreement-that-is-not-there": ("join", "no-such-2004", "--as", "newcomer",
                                            "--name", "N", "--role", "other",
                                            "--signatory", "S", "--designation", "D"),
    "reverse-an-entry-that-is-not-a-payment": ("reverse", SALFORD, "1", "--as", PCT,
                                               "--reason", "typed twice"),
    "sign-a-state-that-is-not-a-digest": ("sign", SALFORD, "--as", PCT, "--state", "zz"),
    "vary-with-an-id-that-is-not-a-slug": ("vary", SALFORD, "--as", PCT, "--id", "V 1",
                                           "--reason", "r", "--title", "T"),
    "consent-to-no-such-variation": ("consent", SALFORD, "v9", "--as", PCT),
    "withdraw-a-notice-at-a-negative-seq": ("withdraw", SALFORD, "--as", PCT, "--notice", "-3"),
    "reject-no-such-variation": ("reject", SALFORD, "v9", "--as", PCT),
    "acknowledge-an-entry-that-is-not-there": ("acknowledge", SALFORD, "9999", "--as", PCT),
    "notice-by-a-stranger": ("notice", SALFORD, "--as", "nobody"),
    "terminate-at-a-time-that-is-not-one": ("terminate", SALFORD, "--as", PCT, "--at",
                                            "yesterday"),
    "appoint-a-key-outside-the-folder": ("appoint", SALFORD, "--as", PCT, "--signatory", "S",
                                         "--designation", "D", "--key", "../../elsewhere"),
    "todo-within-negative-days": ("todo", "--as", PCT, "--within", "-1"),
    "signatures-of-a-reference-that-is-not-a-slug": ("signatures", "Not A Slug"),
    "history-as-of-a-day-that-is-not-there": ("history", SALFORD, "--as-of", "2003-02-30"),
    "rebuild-a-file-that-is-not-sqlite": ("rebuild", "--ledger", "NOTDB"),
    "verify-an-agreement-that-is-not-there": ("verify", "no-such-2004"),
    "checkpoint-with-a-key-that-is-not-there": ("checkpoint", "--key", "nobody"),
    "cosign-as-a-stranger": ("cosign", "--as", "nobody"),
    "report-to-a-missing-folder": ("report", SALFORD, "-o", "MISSING/b.json"),
    "demo-into-a-file-that-is-not-sqlite": ("demo", "--ledger", "NOTDB"),
    "keys-new-with-a-name-outside-the-folder": ("keys", "new", "../elsewhere"),
    "keys-show-a-key-that-is-not-there": ("keys", "show", "nobody"),
    "keys-list-in-a-file": ("keys", "list", "--keys", "NOTDB"),
    "bundle-naming-a-member-twice": ("verify-bundle", "TWICE"),
    "bundle-entry-naming-a-member-twice": ("verify-bundle", "ENTRYTWICE"),
    "bundle-with-an-unknown-member": ("verify-bundle", "UNKNOWN"),
    "bundle-entry-with-an-unknown-member": ("import", "ITEMUNKNOWN", "--ledger", "NEW"),
    "bundle-of-empty-objects": ("verify-bundle", "EMPTIES"),
    "bundle-that-is-not-json": ("import", "NOTDB", "--ledger", "NEW"),
    "bundle-with-an-integer-of-ten-thousand-digits": ("verify-bundle", "HUGEINT"),
    "bundle-with-bytes-that-are-not-utf-8": ("verify-bundle", "NOTUTF8"),
    "bundle-nested-a-thousand-deep": ("verify-bundle", "DEEP"),
    "bundle-with-a-proof-of-a-million-lists": ("verify-bundle", "LONGPROOF"),
}


def _bad_bundles(folder: Path) -> None:
    """Bundles made from the quiet ledger's own, each wrong in one way."""
    text = (folder / "bundle.json").read_text(encoding="utf-8")
    assert text.count('"checkpoint": ') == 1
    assert '"amount":"' in text
    (folder / "TWICE").write_text(text.replace('"checkpoint": ', '"checkpoint": "x",\n'
                                               '  "checkpoint": ', 1), encoding="utf-8")
    # Whichever "amount" a reader keeps, one of them is not what was signed.
    (folder / "ENTRYTWICE").write_text(text.replace(
        '"amount":"', '"amount":"99999.00","amount":"', 1), encoding="utf-8")
    (folder / "UNKNOWN").write_text(text.replace('"checkpoint": ', '"comment": "trust me",\n'
                                                 '  "checkpoint": ', 1), encoding="utf-8")
    (folder / "ITEMUNKNOWN").write_text(text.replace('{"log_index":', '{"note":1,"log_index":',
                                                     1), encoding="utf-8")
    (folder / "HUGEINT").write_text(text.replace('"entry":{', '"entry":{"x":' + "9" * 10_000
                                                 + ",", 1), encoding="utf-8")
    assert '"title":"' in text
    (folder / "NOTUTF8").write_bytes(text.replace('"title":"', '"title":"\udcff', 1).encode(
        "utf-8", "surrogateescape"))
    (folder / "DEEP").write_text(text.replace('"proof":[', '"proof":[' + "[" * 1000 + "]" * 1000
                                              + ",", 1), encoding="utf-8")
    (folder / "LONGPROOF").write_text(text.replace('"proof":[', '"proof":[' + "[]," * 1_000_000,
                                                   1), encoding="utf-8")
    head = text[:text.index('"entries": [')]
    (folder / "EMPTIES").write_text(head + '"entries": [' + ",".join(["{}"] * 10_000) + "]}",
                                    encoding="utf-8")


def test_every_command_meets_bad_input() -> None:
    import typer.main  # noqa: PLC0415

    group = typer.main.get_command(_app())
    commands = set()
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        inner = getattr(command, "commands", None)
        commands |= {f"{name} {sub}" for sub in inner} if inner else {name}
    met = {" ".join(args[:2]) if args[0] == "keys" else args[0] for args in BAD.values()}
    assert commands - met == set()


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_and_writes_nothing(quiet: Cli, name: str) -> None:
    folder = quiet.folder
    (folder / "FOLDER").mkdir(exist_ok=True)
    (folder / "NOTDB").write_text("not a database\n", encoding="utf-8")
    (folder / "EMPTY").write_bytes(b"")
    with sqlite3.connect(str(folder / "OTHERDB")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS invoices (number TEXT)")
    _bad_bundles(folder)
    files = {name: str(folder / name) for name in
             ("TWICE", "ENTRYTWICE", "UNKNOWN", "ITEMUNKNOWN", "EMPTIES", "HUGEINT", "NOTUTF8",
              "DEEP", "LONGPROOF")}
    files |= {"MISSING/b.json": str(folder / "missing" / "b.json"),
             "FOLDER": str(folder / "FOLDER"), "BUNDLE": str(folder / "bundle.json"),
             "NOTDB": str(folder / "NOTDB"), "OTHERDB": str(folder / "OTHERDB"),
             "EMPTY": str(folder / "EMPTY"), "NEW": str(folder / "new.db")}
    args = [files.get(a, a) for a in BAD[name]]
    watched = [Path(quiet.url), folder / "NOTDB", folder / "OTHERDB", folder / "EMPTY"]
    before = {str(p): _fingerprint(p) for p in watched}
    argv = args if "--ledger" in args else [*args, "--ledger", quiet.url]
    result = quiet.runner.invoke(_app(), argv, env={
        "LEDGER_KEYS": str(quiet.keys), "LEDGER_PASSPHRASE": "correct horse battery staple",
        "LEDGER_URL": None, "COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{name}: {result.exception!r}")
    assert result.exit_code in (1, 2), (name, result.output)
    assert result.stderr.startswith("error: "), (name, result.stderr)
    assert result.stderr.count("\n") == 1, (name, result.stderr)
    assert "Traceback" not in result.output
    assert {str(p): _fingerprint(p) for p in watched} == before, name
    assert not (folder / "new.db").exists(), name


def test_ctrl_c_while_the_command_starts_is_one_line() -> None:
    code = ("import builtins, sys\n"
            "real = builtins.__import__\n"
            "def interrupted(name, *args, **kwargs):\n"
            "    if name == 'commands.cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupted\n"
            "from commands.entry import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 130
    assert done.stderr == "interrupted; nothing more was written\n"


def test_an_entry_of_an_unknown_statement_version_stops_writes_and_rebuild(cli: Cli) -> None:
    backdoor = Backdoor(cli.url)

    def newer(entry: dict[str, Any]) -> None:
        entry["statement"]["v"] = 3

    backdoor.edit_entry(SALFORD, 8, newer)
    refused = cli.run("contribute", SALFORD, "--as", PCT, "--year", "2003/04",
                      "--amount", "1", "--paid", code=3).stderr
    assert "statement version 3, which this ledger does not know" in refused
    assert "statement version 3" in cli.run("rebuild", code=3).stderr
    assert cli.verify_fails()


@pytest.mark.parametrize("form", ["public-key", "key-id", "verifier-key"])
def test_the_operator_key_is_accepted_in_every_form_the_ledger_shows_it(cli: Cli,
                                                                       form: str) -> None:
    from ledger.keys import key_id  # noqa: PLC0415
    from ledger.note import verifier_key  # noqa: PLC0415
    from tests.keys import fixed_key  # noqa: PLC0415
    from tests.tamper import ORIGIN  # noqa: PLC0415

    path = cli.folder / "bundle.json"
    cli.run("export", "-o", str(path))
    public = fixed_key("operator").public_key
    given = {"public-key": public.hex(), "key-id": key_id(public),
             "verifier-key": verifier_key(ORIGIN, public)}[form]
    assert cli.json("verify-bundle", str(path), "--operator-key", given)["ok"] is True
    other = fixed_key("mallory").public_key
    wrong = {"public-key": other.hex(), "key-id": key_id(other),
             "verifier-key": verifier_key(ORIGIN, other)}[form]
    assert cli.json("verify-bundle", str(path), "--operator-key", wrong, code=3)["ok"] is False


# --- bundles from strangers -----------------------------------------------------------------------

STRICT = {
    "TWICE": "the bundle names member 'checkpoint' twice in one object",
    "ENTRYTWICE": "the bundle names member 'amount' twice in one object",
    "UNKNOWN": "the bundle is malformed: Object contains unknown field `comment`",
    "ITEMUNKNOWN": "the bundle is malformed: Object contains unknown field `note` - at "
                   "`$.entries[0]`",
    "EMPTIES": "the bundle is malformed: Object missing required field `log_index` - at "
               "`$.entries[0]`",
}


@pytest.mark.parametrize("name", sorted(STRICT))
def test_a_bundle_is_read_strictly(quiet: Cli, name: str) -> None:
    _bad_bundles(quiet.folder)
    refused = quiet.run("verify-bundle", str(quiet.folder / name), code=1).stderr
    assert refused == f"error: {STRICT[name]}\n"


def test_a_bundle_written_by_another_tool_reads_the_same(quiet: Cli) -> None:
    """Spaces, order of members and escapes are the writer's choice; what is signed is not."""
    path = quiet.folder / "bundle.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["entries"].reverse()
    path.write_text(json.dumps(document, indent=4, ensure_ascii=True), encoding="utf-8")
    assert quiet.json("verify-bundle", str(path))["ok"] is True


def test_a_bundle_too_large_is_refused_before_it_is_read(quiet: Cli,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger import bundle  # noqa: PLC0415

    path = quiet.folder / "bundle.json"
    monkeypatch.setattr(bundle, "MAX_BUNDLE_BYTES", path.stat().st_size - 1)
    refused = quiet.run("verify-bundle", str(path), code=1).stderr
    assert "a bundle is read up to" in refused
    assert refused.count("\n") == 1


def _peak_memory_reading(path: Path) -> tuple[int, str]:
    """Read ``path`` as a bundle in a fresh process: its peak resident memory in bytes (the
    high-water mark of its own memory, VmHWM: ru_maxrss would count the parent's, inherited
    across fork and exec), and what it said."""
    code = ("import re, sys\n"
            "from pathlib import Path\n"
            "from ledger.bundle import read_bundle\n"
            "from ledger.errors import LedgerError\n"
            "try:\n"
            "    said = f'{len(read_bundle(Path(sys.argv[1])).entries)} entries'\n"
            "except LedgerError as exc:\n"
            "    said = str(exc)\n"
            "status = Path('/proc/self/status').read_text()\n"
            "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) * 1024\n"
            "print(peak, said)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=True)
    peak, said = done.stdout.split(" ", 1)
    return int(peak), said.strip()


#: Files of many small objects: (what each holds, how many, how many times its size reading
#: it may take at most, above what reading a small bundle takes).
SWAMPS = {
    "empty-objects": ("{}", 20_000_000, 2),
    "entries-of-nothing": ('{"log_index":0,"recorded":"","entry":{},"proof":[]}', 400_000, 7),
}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("swamp", sorted(SWAMPS))
def test_a_large_bundle_of_nothing_is_refused_in_bounded_memory(quiet: Cli, swamp: str) -> None:
    """Twenty million empty objects once took thirty times their size in memory before they
    were refused; the first one out of shape now stops the reading, and what is read before
    it costs a few times the file, never an object for each thing in it."""
    item, count, bound = SWAMPS[swamp]
    path = quiet.folder / "bundle.json"
    head = path.read_text(encoding="utf-8")
    head = head[:head.index('"entries": [')]
    swamped = quiet.folder / "swamped.json"
    with swamped.open("w", encoding="utf-8") as out:
        out.write(head + '"entries": [' + item)
        for _ in range(count // 100_000):
            out.write(("," + item) * 100_000)
        out.write("]}")
    size = swamped.stat().st_size
    baseline, _ = _peak_memory_reading(path)
    peak, said = _peak_memory_reading(swamped)
    assert said.startswith(("the bundle is malformed", "the bundle's entry at log index 0"))
    assert peak < baseline + bound * size, (peak, baseline, size)
