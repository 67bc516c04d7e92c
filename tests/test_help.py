"""Help and usage as people expect them of a command: ``--version``, the common options before
the command, usage errors in one line, help in plain words at 80 columns, shell completion."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.main import get_command
from typer.testing import CliRunner, Result

import commands.cli  # noqa: F401 - registers every command on the app
from commands.app import app
from tests.seeds import SALFORD, ledger_file, record_salford

LEDGER = Path(sys.executable).parent / "ledger"


def run(*args: str, **env: str | None) -> Result:
    return CliRunner().invoke(app, list(args), env={"LEDGER_URL": None, "COLUMNS": "80", **env})


def _commands() -> Iterator[tuple[str, ...]]:
    root = get_command(app)
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            for sub in command.commands:
                yield (name, sub)
        else:
            yield (name,)


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ledger_file(tmp_path_factory.mktemp("help") / "ledger.db", record_salford)


def test_version_prints_the_installed_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"ledger {importlib.metadata.version('agreement-ledger')}\n"


def test_the_common_options_are_taken_before_the_command(ledger_url: str,
                                                         tmp_path: Path) -> None:
    listed = run("--json", "--ledger", ledger_url, "list")
    assert listed.exit_code == 0, listed.output
    assert [a["reference"] for a in json.loads(listed.stdout)["agreements"]] == [SALFORD]
    status = run("--ledger", ledger_url, "status", SALFORD, LEDGER_URL=str(tmp_path / "no.db"))
    assert status.exit_code == 0, status.output
    assert status.stdout.startswith(f"{SALFORD}: ")
    # The same option after the command is the one that counts.
    elsewhere = run("--ledger", ledger_url, "status", SALFORD, "--ledger",
                    str(tmp_path / "none.db"))
    assert elsewhere.exit_code == 1
    assert "there is no ledger at" in elsewhere.stderr


@pytest.mark.parametrize(("args", "hint"), [
    (("status",), "ledger status --help"),
    (("status", "x", "--colour"), "ledger status --help"),
    (("statuss",), "ledger --help"),
    (("keys", "new"), "ledger keys new --help"),
    # An option missing its value is refused before click knows the command: still named.
    (("budget", "x", "--by"), "ledger budget --help"),
    (("keys", "new", "k", "--passphrase-file"), "ledger keys new --help"),
    (("--ledger",), "ledger --help"),
])
def test_a_usage_error_is_one_line_with_where_to_read_more(args: tuple[str, ...],
                                                           hint: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert f"(see '{hint}')" in result.stderr


@pytest.mark.parametrize("path", [(), *_commands()], ids=lambda p: " ".join(p) or "ledger")
def test_help_names_every_option_whole_in_plain_words_at_80_columns(path: tuple[str, ...]
                                                                    ) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert all(cell_len(line) <= 80 for line in text.splitlines()), text
    # No Python types (<str>, <bool>), no {reference}, no --no-no-end, nothing cut.
    assert not re.search(r"<[\w\[\], |]+>", text), text
    assert "{" not in text.splitlines()[0]
    assert "--no-no-" not in text
    assert "…" not in text
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        for option in param.opts:
            if option.startswith("-"):
                assert re.search(rf"(^|[\s,]){re.escape(option)}([\s,]|$)", text, re.M), option


def test_the_command_list_gives_each_summary_whole() -> None:
    text = run("--help").stdout
    listed = " ".join(text.split("Commands:", 1)[1].split())
    for name, command in get_command(app).commands.items():  # type: ignore[attr-defined]
        summary = " ".join((command.help or "").split("\n\n")[0].split())
        assert f"{name} {summary}" in listed


def test_vary_shows_the_whole_format_of_a_funding_line() -> None:
    text = " ".join(run("vary", "--help").stdout.split())
    assert "--fund LINE A funding line to set (repeat), as partner=P,year=Y,amount=A" in text
    assert ",status=confirmed|indicative|tba" in text
    assert "--no-end Remove the end date." in text


@pytest.mark.skipif(not LEDGER.exists(), reason="the ledger command is not installed")
def test_shell_completion_prints_a_script_and_completes_commands() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "_LEDGER"))}
    script = subprocess.run([str(LEDGER)], env={**env, "_LEDGER_COMPLETE": "source_bash"},
                            capture_output=True, text=True, check=True).stdout
    assert "complete -o default -F _ledger_completion ledger" in script
    completed = subprocess.run(
        [str(LEDGER)], env={**env, "_LEDGER_COMPLETE": "complete_bash",
                            "COMP_WORDS": "ledger sta", "COMP_CWORD": "1"},
        capture_output=True, text=True, check=True).stdout
    assert completed.split() == ["status"]
