"""The ``ledger`` command as partners and auditors use it, on SQLite and on PostgreSQL.

Every bad input must end the same way: exit status 1, one line on stderr starting ``error:``, no
traceback, and nothing written, neither to the ledger nor to the key folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from commands.cli import app
from ledger.application import Ledger
from ledger.keystore import KeyStore
from ledger.storage import parse_location
from tests.conftest import ORIGIN
from tests.keys import TEST_COST, fixed_key
from tests.scenarios import (
    COUNCIL,
    PCT,
    PROBATION,
    REF,
    footprint,
    funded,
    signed,
)

PASSPHRASE = "board-secretary-only"
runner = CliRunner()


@dataclass
class Cli:
    """The ``ledger`` command aimed at one ledger and one key folder."""

    url: str
    keys: Path
    folder: Path

    def env(self, **changes: str | None) -> dict[str, str | None]:
        # LEDGER_URL is unset so that only --ledger can name the ledger under test.
        return {"LEDGER_KEYS": str(self.keys), "LEDGER_PASSPHRASE": PASSPHRASE,
                "LEDGER_URL": None, **changes}

    def run(self, *args: str, **env: str | None) -> Result:
        return runner.invoke(app, [*args, "--ledger", self.url], env=self.env(**env))

    def ok(self, *args: str, **env: str | None) -> str:
        """Run a command that must succeed; its stdout."""
        result = self.run(*args, **env)
        assert result.exit_code == 0, f"{args}: {result.stderr or result.output}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def keys_snapshot(self) -> dict[str, bytes]:
        if not self.keys.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(self.keys.iterdir())}


def _entries(url: str) -> list[tuple[str, int, str]]:
    app_ = Ledger(parse_location(url))
    try:
        return footprint(app_)
    finally:
        app_.close()


def refused(cli: Cli, *args: str, code: int = 1, **env: str | None) -> str:
    """Run a command that must be refused; the one line it printed on stderr."""
    entries, keys = _entries(cli.url), cli.keys_snapshot()
    result = cli.run(*args, **env)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), f"not handled: {result.exception!r}"
    assert "Traceback" not in result.output
    assert _entries(cli.url) == entries, "a refused command wrote to the ledger"
    assert cli.keys_snapshot() == keys, "a refused command changed the key folder"
    lines = result.stderr.splitlines()
    if code == 1:
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
    return result.stderr


@pytest.fixture
def terms_file(tmp_path: Path) -> Path:
    path = tmp_path / "salford-dat-s31.txt"
    path.write_text("Salford Drug Action Team: section 31 partnership agreement\n")
    return path


@pytest.fixture
def fresh(ledger_url: str, tmp_path: Path) -> Cli:
    """The command aimed at a database with no ledger yet and an empty key folder."""
    return Cli(ledger_url, tmp_path / "keys", tmp_path)


@pytest.fixture
def cli(ledger: Ledger, ledger_url: str, tmp_path: Path) -> Cli:
    """The command aimed at the test's ledger, with each partner's fixed key in the folder."""
    store = KeyStore(tmp_path / "keys")
    for name in (PCT, COUNCIL, PROBATION):
        store.create(name, PASSPHRASE.encode(), fixed_key(name), cost=TEST_COST)
    return Cli(ledger_url, store.folder, tmp_path)


def draft_args(terms: Path, reference: str = REF, **changes: str) -> list[str]:
    options = {"--as": PCT, "--title": "Salford Drug Action Team pooled treatment budget",
               "--terms": str(terms), "--start": "2004-04-01", "--notice": "6m",
               "--basis": "Health Act 1999 s.31", "--name": "Salford PCT",
               "--role": "commissioning", "--signatory": "Anne Williams",
               "--designation": "Chair, Salford Drug Action Team", "--at": "2003-07-01T09:00:00Z",
               **changes}
    return ["draft", reference, *(part for pair in options.items() for part in pair)]


# --- a whole agreement, from init to verify -----------------------------------------------------


def test_two_partners_walk_an_agreement_from_init_to_verify(fresh: Cli, terms_file: Path
                                                             ) -> None:
    cli = fresh
    made = cli.json("init", "--origin", "ledger.test.example/salford")
    assert made["origin"] == "ledger.test.example/salford"
    keys = {name: cli.json("keys", "new", name)
            for name in (PCT, COUNCIL, "salford-pct-ce")}
    listed = cli.json("keys", "list")
    assert [k["name"] for k in listed["keys"]] == ["operator", "salford-council", "salford-pct",
                                                    "salford-pct-ce"]

    drafted = json.loads(cli.ok(*draft_args(terms_file), "--flexibility", "pooled-budget",
                                "--flexibility", "lead-commissioning", "--lead", "--json"))
    assert (drafted["seq"], drafted["action"], drafted["state"]) == (1, "draft", "draft")
    assert drafted["key_id"] == keys[PCT]["key_id"]
    cli.ok("join", REF, "--as", COUNCIL, "--name", "Salford City Council", "--role",
           "commissioning", "--pool-manager", "--signatory", "Alan Westwood", "--designation",
           "Strategic Director of Community Services", "--at", "2003-07-01T11:00:00Z")
    cli.ok("contribute", REF, "--as", PCT, "--year", "2003/04", "--amount", "341,740",
           "--source", "PCT mainstream", "--at", "2003-07-02")
    cli.ok("contribute", REF, "--as", COUNCIL, "--year", "2003/04", "--amount", "£290,000.00",
           "--source", "Social Services", "--at", "2003-07-02T11:00:00Z")
    assert cli.json("sign", REF, "--as", PCT, "--at", "2003-07-03")["state"] == "draft"
    assert cli.json("sign", REF, "--as", COUNCIL, "--at", "2003-07-03T14:00:00Z")[
        "state"] == "signed"
    cli.ok("contribute", REF, "--as", PCT, "--year", "2003/04", "--amount", "100000",
           "--paid", "--at", "2004-04-05")
    cli.ok("vary", REF, "--as", PCT, "--id", "v1", "--reason", "Extended to March 2008",
           "--end", "2008-03-31", "--at", "2004-06-01")
    cli.ok("consent", REF, "v1", "--as", COUNCIL, "--at", "2004-06-02")
    cli.ok("appoint", REF, "--as", PCT, "--signatory", "Mike Farrar", "--designation",
           "Chief Executive", "--key", "salford-pct-ce", "--at", "2004-07-01")
    # The PCT's new key is found in the folder by its key id.
    noticed = cli.json("notice", REF, "--as", PCT, "--reason", "Regional pooling",
                       "--at", "2004-08-31")
    assert noticed["key_id"] == keys["salford-pct-ce"]["key_id"]
    assert noticed["state"] == "notice given"
    # Recorded today, years after its date, the notice runs from today until the council
    # acknowledges its date; then the PCT may terminate when six months from it have run.
    refused = cli.run("terminate", REF, "--as", PCT, "--at", "2005-02-28")
    assert refused.exit_code == 1
    assert "runs until" in refused.stderr
    cli.ok("acknowledge", REF, str(noticed["seq"]), "--as", COUNCIL, "--at", "2004-09-01")
    assert cli.json("terminate", REF, "--as", PCT, "--at", "2005-02-28")["state"] == "terminated"

    status = cli.json("status", REF)
    assert status["reference"] == REF
    assert status["state"] == "terminated"
    assert status["end"] == "2008-03-31"
    assert [(p["id"], p["role"], p["signed"]) for p in status["partners"]] == [
        (PCT, "commissioning", True), (COUNCIL, "commissioning", True)]

    entries = cli.json("history", REF)["entries"]
    assert [e["action"] for e in entries] == [
        "draft", "join", "contribute", "contribute", "sign", "sign", "contribute", "vary",
        "consent", "appoint", "notice", "acknowledge", "terminate"]
    assert [e["seq"] for e in entries] == list(range(1, 14))
    assert {e["key_id"] for e in entries if e["partner"] == PCT} == {
        keys[PCT]["key_id"], keys["salford-pct-ce"]["key_id"]}

    assert "verified: 13 entries in 1 agreements" in cli.ok("verify")
    assert cli.json("verify")["ok"] is True


def test_a_partner_brought_in_by_variation_consents_with_the_key_in_its_own_folder(
        ledger: Ledger, cli: Cli) -> None:
    signed(ledger)
    cli.ok("vary", REF, "--as", PCT, "--id", "v2", "--reason", "Probation joins the pool",
           "--add-partner", PROBATION, "--partner-name", "National Probation Service",
           "--partner-role", "other", "--partner-signatory", "Roger Statham",
           "--partner-designation", "Chief Officer", "--partner-key", PROBATION,
           "--at", "2004-06-01")
    cli.ok("consent", REF, "v2", "--as", COUNCIL, "--at", "2004-06-02")
    before = cli.json("status", REF)
    assert [v["waiting_for"] for v in before["pending_variations"]] == [[PROBATION]]
    consent = cli.json("consent", REF, "v2", "--as", PROBATION, "--at", "2004-06-03")
    assert consent["key_id"] == fixed_key(PROBATION).key_id
    after = cli.json("status", REF)
    assert [(p["id"], p["role"], p["status"]) for p in after["partners"]] == [
        (PCT, "commissioning", "active"), (COUNCIL, "commissioning", "active"),
        (PROBATION, "other", "active")]
    assert after["pending_variations"] == []


# --- bad input: exit 1, one line, nothing written -----------------------------------------------


def test_a_negative_amount_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    line = refused(cli, "contribute", REF, "--as", PCT, "--year", "2004/05", "--amount", "-5")
    assert "negative" in line


@pytest.mark.parametrize(("amount", "says"), [
    pytest.param("abc", "is not an amount", id="not-a-number"),
    pytest.param("10.005", "fractions of a penny", id="sub-penny"),
    pytest.param("1e5", "is not an amount", id="exponent"),
])
def test_an_amount_that_is_not_pounds_and_pence_is_refused(
        ledger: Ledger, cli: Cli, amount: str, says: str) -> None:
    funded(ledger)
    assert says in refused(cli, "contribute", REF, "--as", PCT, "--year", "2004/05",
                           "--amount", amount)


@pytest.mark.parametrize("year", ["2003/05", "03/04"])
def test_a_year_that_is_not_a_financial_year_is_refused(ledger: Ledger, cli: Cli,
                                                        year: str) -> None:
    funded(ledger)
    line = refused(cli, "contribute", REF, "--as", PCT, "--year", year, "--amount", "1000")
    assert "is not a financial year" in line


def test_an_impossible_date_is_refused_for_at(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    line = refused(cli, "sign", REF, "--as", PCT, "--at", "2003-02-30")
    assert "not a real calendar date" in line


def test_an_impossible_start_date_is_refused(ledger: Ledger, cli: Cli, terms_file: Path
                                             ) -> None:
    line = refused(cli, *draft_args(terms_file, "salford-dat-2003", **{"--start": "2003-02-30"}))
    assert "not a real calendar date" in line


def test_an_unknown_agreement_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    assert "there is no agreement 'salford-dat-2005'" in refused(
        cli, "sign", "salford-dat-2005", "--as", PCT)


def test_an_unknown_partner_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    assert "'gm-probation' is not a partner" in refused(cli, "sign", REF, "--as", PROBATION)


def test_a_partner_signing_with_another_partners_key_is_refused(ledger: Ledger, cli: Cli
                                                                ) -> None:
    funded(ledger)
    line = refused(cli, "sign", REF, "--as", COUNCIL, "--key", PCT)
    assert "not the current key of partner 'salford-council'" in line


def test_signing_twice_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    cli.ok("sign", REF, "--as", PCT, "--at", "2003-07-03")
    assert "already signed" in refused(cli, "sign", REF, "--as", PCT, "--at", "2003-07-04")


def test_consent_to_an_unknown_variation_is_refused(ledger: Ledger, cli: Cli) -> None:
    signed(ledger)
    line = refused(cli, "consent", REF, "v9", "--as", COUNCIL, "--at", "2004-06-01")
    assert "there is no variation 'v9'" in line


def test_terminating_before_the_notice_period_ends_is_refused(ledger: Ledger, cli: Cli
                                                              ) -> None:
    signed(ledger).notice(COUNCIL, "2004-08-31")
    line = refused(cli, "terminate", REF, "--as", COUNCIL, "--at", "2005-01-31")
    assert "runs until 2005-02-28" in line


def test_any_act_on_a_terminated_agreement_is_refused(ledger: Ledger, cli: Cli) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31")
    deal.terminate(COUNCIL, "2005-02-28")
    for act in (("notice", REF, "--as", PCT), ("sign", REF, "--as", PCT),
                ("contribute", REF, "--as", PCT, "--year", "2003/04", "--amount", "1", "--paid")):
        assert "was terminated on 2005-02-28" in refused(cli, *act, "--at", "2005-03-01")


def test_a_wrong_passphrase_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    line = refused(cli, "sign", REF, "--as", PCT, LEDGER_PASSPHRASE="guessed")
    assert "wrong passphrase for key 'salford-pct'" in line


def test_a_missing_key_file_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    (cli.keys / f"{PCT}.pem").unlink()
    (cli.keys / f"{PCT}.pub").unlink()
    line = refused(cli, "sign", REF, "--as", PCT)
    assert "no key in" in line
    assert "is 'salford-pct''s current key" in line


def test_a_corrupt_key_file_is_refused(ledger: Ledger, cli: Cli) -> None:
    funded(ledger)
    (cli.keys / f"{PCT}.pem").write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n")
    assert "is corrupt" in refused(cli, "sign", REF, "--as", PCT)


def test_a_second_draft_of_the_same_reference_is_refused(ledger: Ledger, cli: Cli,
                                                         terms_file: Path) -> None:
    funded(ledger)
    assert "already exists" in refused(cli, *draft_args(terms_file))


@pytest.mark.parametrize("args", [
    pytest.param(("sign",), id="missing-reference-and-partner"),
    pytest.param(("sign", REF), id="missing-partner"),
    pytest.param(("frobnicate", REF), id="no-such-command"),
    pytest.param(("contribute", REF, "--as", PCT, "--year"), id="option-without-value"),
    pytest.param(("status", REF, "--as-of-entry", "two"), id="not-an-integer"),
])
def test_a_usage_error_exits_2(ledger: Ledger, cli: Cli, args: tuple[str, ...]) -> None:
    funded(ledger)
    said = refused(cli, *args, code=2)
    # One line, like every refusal, with the help to read.
    assert said.startswith("error: ")
    assert said.count("\n") == 1
    assert "--help')" in said


# --- verification -------------------------------------------------------------------------------


@pytest.mark.parametrize(("before", "after", "says"), [
    # The PCT's declared 341,740 becomes 941,740: the signature no longer covers it.
    pytest.param(b"341740.00", b"941740.00", "signature does not verify", id="amount"),
    # The same entry with one space more: the same meaning, but not its one canonical form.
    pytest.param(b'\\"seq\\":3', b'\\"seq\\": 3', "canonical form", id="white-space"),
])
def test_a_tampered_entry_fails_verification_naming_the_agreement_and_seq(
        tmp_path: Path, before: bytes, after: bytes, says: str) -> None:
    db = tmp_path / "salford.db"
    ledger = Ledger(parse_location(str(db)), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
        signed(ledger).pay(PCT, "100000.00", "2004-04-05")
    finally:
        ledger.close()
    cli = Cli(str(db), tmp_path / "keys", tmp_path)
    assert cli.json("verify")["ok"] is True
    # Behind the ledger's back, entry 3 (the PCT's funding line) is edited in the file.
    with closing(sqlite3.connect(db)) as conn, conn:
        rows = conn.execute("SELECT rowid, state FROM stored_events "
                            "WHERE topic = 'agreement-ledger:Agreement.Contributed' "
                            "AND originator_version = 3").fetchall()
        assert len(rows) == 1
        rowid, state = rows[0]
        assert bytes(state).count(before) == 1
        conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                     (bytes(state).replace(before, after), rowid))
    result = cli.run("verify")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert re.search(f"agreement salford-dat-2004, seq 3: .*{says}", result.stderr)
    report = json.loads(cli.run("verify", "--json").stdout)
    assert report["ok"] is False
    assert (REF, 3) in {(f["agreement"], f["seq"]) for f in report["failures"]}
    assert cli.run("verify", REF).exit_code == 3


# --- the installed command ----------------------------------------------------------------------


def _installed_ledger() -> str | None:
    found = shutil.which("ledger")
    beside = Path(sys.executable).parent / "ledger"
    return found or (str(beside) if beside.exists() else None)


def test_the_installed_ledger_command_runs_as_a_real_process(tmp_path: Path, terms_file: Path
                                                             ) -> None:
    program = _installed_ledger()
    if program is None:
        pytest.skip("the ledger console script is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_KEYS=str(tmp_path / "keys"), LEDGER_PASSPHRASE=PASSPHRASE)
    db = str(tmp_path / "salford.db")

    def ledger(*args: str) -> str:
        done = subprocess.run([program, *args, "--ledger", db], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    ledger("init", "--origin", "ledger.test.example/process")
    ledger("keys", "new", PCT)
    ledger(*draft_args(terms_file))
    status = json.loads(ledger("status", REF, "--json"))
    assert status["state"] == "draft"
    assert [(p["id"], p["role"], p["signed"]) for p in status["partners"]] == [
        (PCT, "commissioning", False)]

