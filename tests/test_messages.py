"""Messages that tell the truth: what was wrong with an input, and whether an interrupted act
was recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from commands.common import Common
from ledger.application import Ledger
from tests.scenarios import COUNCIL, PCT
from tests.seeds import SALFORD, Cli, key_folder, ledger_file, record_salford


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Salford drafted and funded, not yet signed; both partners' keys in the folder."""
    url = ledger_file(tmp_path / "ledger.db", lambda ledger: record_salford(ledger, sign=False))
    return Cli(url, key_folder(tmp_path / "keys", (PCT, COUNCIL)))


def _entries(cli: Cli) -> list[tuple[str, str]]:
    return [(e["action"], e["partner"]) for e in cli.json("history", SALFORD)["entries"]]


def test_a_terms_hash_that_is_not_one_is_named_as_such(cli: Cli) -> None:
    before = _entries(cli)
    result = cli("vary", SALFORD, "--as", PCT, "--id", "v1", "--reason", "new terms",
                 "--terms-hash", "abc", code=1)
    assert result.stderr == ("error: --terms-hash 'abc': a SHA-256 is 64 hex digits (or give "
                             "the document itself with --terms FILE)\n")
    assert _entries(cli) == before


def test_an_act_interrupted_after_it_landed_is_reported_done(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    closing = Common.close

    def interrupted(self: Common) -> None:
        closing(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Common, "close", interrupted)
    result = cli("sign", SALFORD, "--as", PCT)
    monkeypatch.setattr(Common, "close", closing)
    assert result.stdout.startswith(f"recorded {SALFORD} entry ")
    assert ": sign by salford-pct at " in result.stdout
    assert result.stderr == ("interrupted after the act was recorded: it stands; do not "
                             "repeat it\n")
    assert _entries(cli).count(("sign", PCT)) == 1


def test_an_act_interrupted_before_it_landed_says_nothing_was_written(
        cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _entries(cli)

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Ledger, "sign", interrupted)
    result = cli("sign", SALFORD, "--as", PCT, code=130)
    monkeypatch.undo()
    assert result.stdout == ""
    assert result.stderr == "interrupted; nothing more was written\n"
    assert _entries(cli) == before
