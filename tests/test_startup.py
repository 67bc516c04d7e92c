"""A command loads only what it uses: the modules a real ``ledger`` process has imported when it
ends, for an act and ``status`` on a SQLite ledger and for ``--help``.

How long start-up takes is measured by the benchmark (``python -m benchmarks``, beside the
floor of Python with sqlite3 and cryptography); these tests pin what makes it short, and fail
when a module-level import brings back a library the command does not use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from commands.cli import app
from ledger.keystore import KeyStore
from tests.keys import TEST_COST, fixed_key
from tests.scenarios import COUNCIL, PCT, REF, funded
from tests.seeds import ledger_file

PASSPHRASE = "board-secretary-only"
ROOT = Path(__file__).resolve().parents[1]

#: Runs ``ledger ARGS...`` as the console script does, then writes the names of every module the
#: process imported to the file named by its first argument.
PROGRAM = """
import atexit, json, sys

def loaded(path):
    with open(path, "w", encoding="utf-8") as out:
        json.dump(sorted(sys.modules), out)

atexit.register(loaded, sys.argv[1])
sys.argv = ["ledger", *sys.argv[2:]]
from commands.entry import main
main()
"""

#: Only a PostgreSQL ledger needs the driver, only ``report`` needs Jinja2, and the command
#: line converts its options without pydantic.
NEVER_ON_SQLITE = ("psycopg", "psycopg_pool", "jinja2", "pydantic")


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> str:
    """A SQLite ledger with a funded agreement, and each partner's key in ``tmp_path/keys``."""
    url = ledger_file(tmp_path / "ledger.db", funded)
    store = KeyStore(tmp_path / "keys")
    for name in (PCT, COUNCIL):
        store.create(name, PASSPHRASE.encode(), fixed_key(name), cost=TEST_COST)
    return url


def run(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Run ``ledger ARGS...`` in a process of its own: its stdout and the modules it imported."""
    modules = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_KEYS=str(tmp_path / "keys"), LEDGER_PASSPHRASE=PASSPHRASE)
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(modules), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout, set(json.loads(modules.read_text(encoding="utf-8")))


def among(modules: set[str], *packages: str) -> list[str]:
    """The modules of ``packages`` (each with its sub-modules) that were imported."""
    return sorted(m for m in modules if m.partition(".")[0] in packages)


def test_an_act_on_sqlite_loads_no_postgresql_driver_jinja2_or_pydantic(
        sqlite_ledger: str, tmp_path: Path) -> None:
    out, modules = run(tmp_path, "sign", REF, "--as", PCT, "--ledger", sqlite_ledger)
    assert out.startswith(f"recorded {REF} entry ")
    assert "ledger.application" in modules  # the act was recorded in this process
    assert among(modules, *NEVER_ON_SQLITE) == []


def test_an_act_on_sqlite_does_not_load_the_read_models(sqlite_ledger: str, tmp_path: Path
                                                        ) -> None:
    _, modules = run(tmp_path, "contribute", REF, "--as", COUNCIL, "--year", "2004/05",
                     "--amount", "1000", "--ledger", sqlite_ledger)
    assert among(modules, "sqlalchemy", "projections", "rich") == []


def test_status_on_sqlite_loads_no_postgresql_driver_jinja2_or_pydantic(
        sqlite_ledger: str, tmp_path: Path) -> None:
    out, modules = run(tmp_path, "status", REF, "--json", "--ledger", sqlite_ledger)
    assert json.loads(out)["reference"] == REF
    assert among(modules, *NEVER_ON_SQLITE) == []


def test_status_is_made_from_the_agreements_entries_without_sqlalchemy(
        sqlite_ledger: str, tmp_path: Path) -> None:
    out, modules = run(tmp_path, "status", REF, "--ledger", sqlite_ledger)
    assert REF in out
    assert "Partners" in out  # the tables, printed with rich
    assert "ledger.application" in modules
    assert among(modules, "sqlalchemy") == []


def test_help_lists_every_command_without_loading_the_ledger(tmp_path: Path) -> None:
    out, modules = run(tmp_path, "--help")
    names = [c.name for c in app.registered_commands]
    assert len(names) > 20
    assert [n for n in names if n is None or n not in out] == []
    assert among(modules, "sqlalchemy", "eventsourcing", "projections",
                 *NEVER_ON_SQLITE) == []


def test_options_are_converted_as_typer_converts_them(sqlite_ledger: str, tmp_path: Path
                                                      ) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    env = {"LEDGER_KEYS": str(tmp_path / "keys"), "LEDGER_PASSPHRASE": PASSPHRASE,
           "LEDGER_URL": None}
    runner = CliRunner()
    for seq in ("1.5", "x1", "\u0661"):  # a fraction, a letter, an Arabic-Indic digit
        bad = runner.invoke(app, ["reverse", REF, seq, "--as", PCT, "--reason", "typo",
                                  "--ledger", sqlite_ledger], env=env)
        assert bad.exit_code == 2, bad.output
        assert bad.stderr == ("error: Invalid value for 'SEQ': Input should be a valid integer, "
                              "unable to parse string as an integer (see 'ledger reverse "
                              "--help')\n")
    # A number with a sign, spaces and an underscore is read as typer reads it.
    late = runner.invoke(app, ["history", REF, "--as-of-entry", " +4_0 ", "--ledger",
                               sqlite_ledger], env=env)
    assert late.exit_code == 1, late.output
    assert "--as-of-entry 40 is not one of them" in late.stderr
    first = runner.invoke(app, ["history", REF, "--as-of-entry", "1", "--json", "--ledger",
                                sqlite_ledger], env=env)
    assert [e["seq"] for e in json.loads(first.stdout)["entries"]] == [1]
