"""What people read at any width: every read command's tables at 60, 80 and 200 columns.

An amount, a date, a time, an id or a hash is never cut (no "…") nor broken across lines: text
columns wrap between words, and a table that cannot fit becomes blocks of "column: value"
lines. The figures looked for are taken from each command's own ``--json`` document.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

import commands.cli  # noqa: F401 - registers every command on the app
from commands.app import app
from ledger.application import Ledger
from ledger.storage import parse_location
from projections.summary import pounds
from tests.conftest import ORIGIN
from tests.keys import fixed_key
from tests.scenarios import COUNCIL, FY2004, PCT, Partnership
from tests.seeds import SALFORD, SOUTHWARK, record_salford, record_southwark

WIDTHS = (60, 80, 200)
#: An agreement whose budget is still to be agreed (as the Salford and Trafford one was).
TBA_REF = "salford-trafford-ld-2001"
REFERENCES = (SALFORD, SOUTHWARK, TBA_REF)
_MONEY_IN_TEXT = re.compile(r"-?£[\d,]+\.\d\d")


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The seed agreements on one ledger: Salford (with a payment), Southwark, and one whose
    every line is TBA."""
    url = str(tmp_path_factory.mktemp("width") / "ledger.db")
    ledger = Ledger(parse_location(url), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
        salford = record_salford(ledger)
        salford.pay(PCT, "341740.00", "2004-05-04", year=FY2004, source="PCT mainstream")
        record_southwark(ledger)
        pending = Partnership(ledger, TBA_REF)
        pending.draft("2001-03-01", start=date(2001, 4, 1), end=None,
                      title="Integrated commissioning for people with learning difficulties")
        pending.join(COUNCIL, "2001-03-02")
        pending.declare(PCT, None, "2001-03-03", status="tba", source="Resources released from "
                        "the final closures of the long-stay hospitals")
        pending.declare(COUNCIL, None, "2001-03-03", status="tba")
        pending.declare(COUNCIL, None, "2001-03-03", year=FY2004, status="tba")
        pending.sign(PCT, "2001-03-05")
        pending.sign(COUNCIL, "2001-03-05")
    finally:
        ledger.close()
    return url


def run(url: str, args: tuple[str, ...], width: int | None) -> str:
    env: dict[str, str | None] = {"LEDGER_URL": None, "COLUMNS": None if width is None
                                  else str(width)}
    result = CliRunner().invoke(app, [*args, "--ledger", url], env=env)
    assert result.exit_code == 0, f"ledger {' '.join(args)}: {result.output}"
    return result.stdout


def _when(text: str) -> str:
    """A time as the tables print it: to the second."""
    return text[:19] + "Z" if "T" in text else text


def _shown(args: tuple[str, ...], doc: dict[str, Any]) -> set[str]:
    """What the human form of ``args`` must show whole, from its JSON document."""
    command = args[0]
    found: set[str] = set()
    if command == "status":
        found |= {doc["start"], doc["as_of"], *(d for d in (doc["end"], doc["agreed"]) if d)}
        found |= {_when(t) for t in (doc["executed_at"], doc["terminated_at"]) if t}
        found.add(doc["terms_hash"])
    elif command == "signatures":
        found |= {_when(s[k]) for s in doc["signatures"] for k in ("at", "recorded")}
    elif command == "history":
        for e in doc["entries"]:
            found |= {_when(e["at"]), _when(e["recorded"]), e["key_id"][:12]}
            found |= set(_MONEY_IN_TEXT.findall(e["summary"]))
    elif command == "list":
        found |= {d for a in doc["agreements"] for d in (a["start"], a["end"]) if d}
    elif command == "todo":
        found |= {t["due"] for t in doc["tasks"] if t.get("due")}
    elif "--payments" in args:
        found |= {pounds(p["amount"]) for p in doc["payments"]}
        found |= {p["at"] for p in doc["payments"]}
    elif "--lines" in args:
        found |= {pounds(line[k]) for line in doc["lines"] for k in ("amount", "paid")}
    elif "year" in args:  # every year by partner
        for year in doc["years"]:
            found |= {pounds(year[k]) for k in ("total", "paid", "outstanding")}
            found |= {pounds(p["total"]) for p in year["partners"].values()}
    else:
        by = "sources" if "source" in args else "partners"
        for year in doc["years"]:
            for position in [*year[by].values(), year]:
                found |= {pounds(position[k])
                          for k in ("confirmed", "indicative", "paid", "outstanding")}
    return found


def _reads() -> Iterator[tuple[str, ...]]:
    yield ("list",)
    for partner in (PCT, COUNCIL):
        yield ("todo", "--as", partner)
    for ref in REFERENCES:
        yield ("status", ref)
        yield ("signatures", ref)
        yield ("history", ref)
        yield ("budget", ref)
        yield ("budget", ref, "--by", "source")
        yield ("budget", ref, "--by", "year")
        yield ("budget", ref, "--lines")
        yield ("budget", ref, "--payments")


@pytest.mark.parametrize("args", list(_reads()), ids=" ".join)
def test_every_amount_date_and_id_is_shown_whole_at_60_80_and_200_columns(
        ledger_url: str, args: tuple[str, ...]) -> None:
    wanted = _shown(args, json.loads(run(ledger_url, (*args, "--json"), None)))
    for width in WIDTHS:
        text = run(ledger_url, args, width)
        assert "…" not in text, f"at {width} columns:\n{text}"
        too_wide = [line for line in text.splitlines() if cell_len(line) > width]
        assert not too_wide, f"at {width} columns:\n{text}"
        lines = text.splitlines()
        # A 64-digit hash cannot fit whole in 60 columns with its label: there it may fold.
        for item in sorted(wanted):
            if len(item) + 4 > width:
                continue
            assert any(item in line for line in lines), (
                f"{item!r} is not whole at {width} columns:\n{text}")


def test_the_salford_budget_is_a_table_at_80_columns_and_blocks_at_60(ledger_url: str) -> None:
    wide = run(ledger_url, ("budget", SALFORD), 80).splitlines()
    row = next(line for line in wide if line.startswith("salford-pct"))
    # One row: the partner and its figures.
    assert "£1,957,290.00" in row
    assert "86.51%" in row
    narrow = run(ledger_url, ("budget", SALFORD), 60).splitlines()
    assert "partner: salford-pct" in narrow
    assert "  confirmed:   £1,957,290.00" in narrow


def test_a_pool_with_lines_still_to_be_agreed_says_how_many(ledger_url: str) -> None:
    titles = [line for line in run(ledger_url, ("budget", TBA_REF), 200).splitlines()
              if ": pool " in line]
    assert titles == [f"{TBA_REF} 2003/04: pool £0.00 + 2 lines TBA",
                      f"{TBA_REF} 2004/05: pool £0.00 + 1 line TBA"]


def test_piped_output_takes_its_width_from_columns_or_80(ledger_url: str, tmp_path: Path) -> None:
    def piped(columns: str | None) -> list[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LEDGER_URL")}
        if columns is not None:
            env["COLUMNS"] = columns
        done = subprocess.run(
            [sys.executable, "-c", "from commands.entry import main; main()", "history",
             SALFORD, "--ledger", ledger_url], env=env, capture_output=True, text=True,
            check=True, cwd=tmp_path, stdin=subprocess.DEVNULL)
        return done.stdout.splitlines()

    assert max(cell_len(line) for line in piped(None)) <= 80
    assert max(cell_len(line) for line in piped("60")) <= 60
    wide = piped("200")
    assert 80 < max(cell_len(line) for line in wide) <= 200
    # At 200 columns each entry is one row of a table.
    assert sum(1 for line in wide if "2003-07-03T" in line) == 2
