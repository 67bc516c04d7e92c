"""The seed agreements end to end: each script in examples/ run as a user runs it, with the
installed ``ledger`` command, on SQLite and on PostgreSQL; then the ledger it leaves is asked,
through ``ledger ... --json``, whether it holds what the document says.

The figures, names and dates below are copied from the seed documents, not from the examples,
so that an example that drifts from its document fails here.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from ledger.bodies import Changes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LEDGER = shutil.which("ledger")
needs_ledger = pytest.mark.skipif(
    LEDGER is None, reason="the ledger command is not on PATH: install the project "
                           "(pip install -e .) and run the tests in its environment")
# Each example makes 15 to 40 ``ledger`` calls, each a new Python process, so its tests are
# marked slow: ``pytest -m "not slow"`` leaves them out of a quick run.


def _env() -> dict[str, str]:
    # A LEDGER_URL or key folder of the person running the tests must not leak into the runs.
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}


#: Examples run end to end as a user runs them, each ``ledger`` call its own process. None:
#: the README's walk-through (tests/test_readme.py) is that story as processes already; the
#: examples make their calls inside their own process (the same command line, quicker).
AS_PROCESSES: set[str] = set()


def run_example(name: str, ledger_url: str, workdir: Path) -> str:
    """Run examples/NAME.py on ``ledger_url``; it must succeed. Returns its transcript."""
    as_processes = name in AS_PROCESSES and "://" not in ledger_url
    quick = [] if as_processes else ["--in-process"]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--ledger", ledger_url,
         "--workdir", str(workdir), *quick],
        env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr}"
    return done.stdout


def ask(ledger_url: str, *args: str) -> Any:
    """``ledger ARGS --json`` on the ledger an example left."""
    assert LEDGER is not None
    done = subprocess.run([LEDGER, *args, "--ledger", ledger_url, "--json"], env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def lines_of(budget: dict[str, Any]) -> dict[tuple[str, str, str], tuple[str | None, str]]:
    """Every funding line: (year, partner, source) -> (amount, status)."""
    return {(y["year"], ln["partner"], ln["source"]): (ln["amount"], ln["status"])
            for y in budget["years"] for ln in y["lines"]}


def partners_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The partners by id."""
    return {p["id"]: p for p in status["partners"]}


# --- Salford drug action team pooled budget --------------------------------------------------

#: Question 12 of the notification, to the pound, as the demo attributes each source.
SALFORD_FUNDING = {
    ("NTA Pooled Treatment Budget (PTB)", "salford-pct"): ("909710.00", "921990.00"),
    ("NTA PTB underspend carried forward from previous year", "salford-pct"):
        ("346920.00", "190000.00"),
    ("CJIP", "salford-pct"): ("276620.00", "410000.00"),
    ("CJIP / Throughcare", "salford-pct"): ("82300.00", "297000.00"),
    ("PCT mainstream", "salford-pct"): ("341740.00", "368220.00"),
    ("Social Services", "salford-city-council"): ("290000.00", "311000.00"),
    ("Supporting People Funding", "salford-city-council"): ("15150.00", "15150.00"),
}


@pytest.fixture(scope="module")
def demo_digest(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The state both partners sign in ``ledger demo``: terms, partners and funding."""
    demo = str(tmp_path_factory.mktemp("demo") / "ledger.db")
    assert LEDGER is not None
    subprocess.run([LEDGER, "demo", "--ledger", demo, "--json"], env=_env(), check=True,
                   capture_output=True, timeout=120)
    digest: str = ask(demo, "status", "salford-dat-2004")["state_digest"]
    return digest


@needs_ledger
@pytest.mark.slow
def test_salford_dat_example_records_the_notification_to_the_pound(
        ledger_url: str, tmp_path: Path, demo_digest: str) -> None:
    transcript = run_example("salford_dat", ledger_url, tmp_path)
    budget = ask(ledger_url, "budget", "salford-dat-2004")
    assert {y["year"]: y["total"] for y in budget["years"]} == {
        "2003/04": "2262440.00", "2004/05": "2513360.00"}
    expected = {}
    for (source, partner), amounts in SALFORD_FUNDING.items():
        for year, amount in zip(("2003/04", "2004/05"), amounts, strict=True):
            expected[(year, partner, source)] = (amount, "confirmed")
    assert lines_of(budget) == expected

    status = ask(ledger_url, "status", "salford-dat-2004")
    assert (status["agreed"], status["start"], status["end"]) == ("2003-07-03", "2004-04-01", None)
    assert status["flexibilities"] == ["lead-commissioning", "pooled-budget"]
    assert status["state"] == "in force"
    council, pct = partners_of(status)["salford-city-council"], partners_of(status)["salford-pct"]
    assert (council["name"], pct["name"]) == ("Salford City Council", "Salford PCT")
    assert council["signatory"] == "Anne Williams"
    assert "Chair of the Salford Drug Action Team" in council["designation"]
    assert council["lead"]
    assert council["pool_manager"]
    assert not pct["lead"]
    assert {s["partner"] for s in status["signatures"]} == {"salford-city-council",
                                                            "salford-pct"}
    assert all(s["at"].startswith("2003-07-03") for s in status["signatures"])
    # Through the command line the example records exactly the state the demo records.
    assert status["state_digest"] == demo_digest
    assert "verified: 18 entries in 1 agreements" in transcript


# --- Southwark integrated community equipment service ----------------------------------------

SSD_SOURCE = "Social Services community equipment cash limit budget"
PCT_SOURCE = "PCT community equipment budget (SELSSP block contract share)"


@needs_ledger
@pytest.mark.slow
def test_southwark_example_pools_the_budget_and_renews_year_by_year(
        ledger_url: str, tmp_path: Path) -> None:
    transcript = run_example("southwark_ices", ledger_url, tmp_path)
    budget = ask(ledger_url, "budget", "southwark-ices")
    assert {y["year"]: y["total"] for y in budget["years"]} == {
        "2003/04": "1026000.00", "2004/05": "1051000.00", "2005/06": "1077000.00"}
    lines = lines_of(budget)
    for year, ssd, pct in (("2003/04", "730000.00", "296000.00"),
                           ("2004/05", "748000.00", "303000.00"),
                           ("2005/06", "767000.00", "310000.00")):
        assert lines[(year, "southwark-ssd", SSD_SOURCE)] == (ssd, "confirmed")
        assert lines[(year, "southwark-pct", PCT_SOURCE)] == (pct, "indicative")
    # The extra £350,000 asked for in 2004/05 is in the record but not in the pool's total.
    [extra] = [k for k, v in lines.items() if v == (None, "tba")]
    assert extra[0] == "2004/05"
    assert "350000" in extra[2]

    status = ask(ledger_url, "status", "southwark-ices")
    assert (status["start"], status["end"]) == ("2003-12-19", "2006-03-31")
    assert status["flexibilities"] == ["lead-commissioning", "pooled-budget"]
    ssd = partners_of(status)["southwark-ssd"]
    assert ssd["lead"]
    assert ssd["pool_manager"]
    variations = {v["id"]: v for v in status["variations"]}
    assert list(variations) == ["pooled-budget", "renewal-2004-05", "renewal-2005-06"]
    for v in variations.values():
        assert v["effective"]
        assert v["consents"] == ["southwark-ssd", "southwark-pct"]
    assert variations["pooled-budget"]["effective_at"].startswith("2004-03")
    # Not renewed for 2006/07: its term has run out and nobody recorded an end.
    assert status["state"] == "expired"
    # The two refused acts wrote nothing: draft, join, two signatures, three variations and
    # three consents.
    assert status["entries"] == 10
    assert "funding is committed once signed: propose a variation" in transcript
    assert "cannot propose a variation while the agreement is expired" in transcript


# --- Suffolk: the Ixworth young persons with dementia scheme ---------------------------------

#: Section 18: partner -> (name, role on page 1, signatory, designation).
SUFFOLK = {
    "suffolk-sp": ("Suffolk Supporting People", "commissioning",
                   "Clare Smith", "Interim Head of Supporting People Suffolk"),
    "suffolk-scs": ("Social Care Services (Suffolk County Council)", "commissioning",
                    "Graham Wrycroft", "Assistant Director Older People Services"),
    "st-edmundsbury": ("St Edmundsbury Borough Council", "commissioning",
                       "Carole Herries", "Head of Environmental Health and Housing"),
    "suffolk-west-pct": ("Suffolk West Primary Care Trust", "other",
                         "Tony Ranzetta", "Chief Executive"),
    "havebury": ("Havebury Housing Partnership", "commissioning",
                 "Karen Mayhew", "Director of Housing Services"),
    "orwell": ("Orwell Housing Association Ltd", "provider", "Stephen Javes", "Chief Executive"),
    "suffolk-mh-trust": ("Suffolk Mental Health Partnership NHS Trust", "other",
                         "Mark Halladay", "Chief Executive"),
    "age-concern": ("Age Concern", "other", "Daphney Savage", "Chief Executive"),
}


@needs_ledger
@pytest.mark.slow
def test_suffolk_example_ends_wholly_when_one_partner_leaves(
        ledger_url: str, tmp_path: Path) -> None:
    transcript = run_example("suffolk_ixworth", ledger_url, tmp_path)
    status = ask(ledger_url, "status", "suffolk-ixworth-2005")
    partners = partners_of(status)
    assert {pid: (p["name"], p["role"], p["signatory"], p["designation"])
            for pid, p in partners.items()} == SUFFOLK
    assert all(p["signed"] for p in partners.values())
    assert {s["partner"] for s in status["signatures"]} == set(SUFFOLK)
    assert (status["start"], status["end"]) == ("2005-01-01", "2008-12-31")
    assert (status["notice_months"], status["on_withdrawal"]) == (6, "terminate")

    [notice] = status["notices"]
    given = date.fromisoformat(notice["at"][:10])
    earliest = given + relativedelta(months=6)
    assert notice["effective_from"] == earliest.isoformat() == "2007-02-28"
    # The early termination was refused naming that date; the one on it ended everything.
    assert f"runs until {earliest.isoformat()}" in transcript
    assert status["state"] == "terminated"
    assert status["terminated_at"].startswith(earliest.isoformat())
    assert all(p["status"] == "active" for p in partners.values())
    assert "was terminated on 2007-02-28; no further act is allowed" in transcript
    # Draft, seven joins, eight funding lines, eight signatures, the notice, the other seven
    # partners' acknowledgements of its date, the termination.
    assert status["entries"] == 33

    budget = ask(ledger_url, "budget", "suffolk-ixworth-2005")
    [year] = budget["years"]
    assert (year["year"], year["total"], year["tba"]) == ("2004/05", "0.00", 7)
    lines = lines_of(budget)
    [grant] = [k for k in lines if "Supporting People Grant" in k[2]]
    assert grant[1] == "suffolk-sp"
    assert lines[grant] == ("0.00", "confirmed")
    assert sum(1 for k in lines if k[1] == "suffolk-scs" and lines[k] == (None, "tba")) == 2


# --- Salford: learning difficulties integrated commissioning ---------------------------------


@needs_ledger
@pytest.mark.slow
def test_salford_learning_difficulties_example_keeps_the_unagreed_budget_tba(
        ledger_url: str, tmp_path: Path) -> None:
    transcript = run_example("salford_trafford_ld", ledger_url, tmp_path)
    status = ask(ledger_url, "status", "salford-ld-2001")
    partners = partners_of(status)
    assert {pid: p["name"] for pid, p in partners.items()} == {
        "salford-city-council": "Salford City Council",
        "salford-trafford-ha": "Salford and Trafford Health Authority"}
    assert partners["salford-city-council"]["lead"]
    assert not partners["salford-trafford-ha"]["lead"]
    assert {"pooled-budget", "lead-commissioning"} <= set(status["flexibilities"])
    assert "25 April 2000" in status["basis"]
    assert status["agreed"] is None  # the report gives no date of agreement
    assert {s["partner"] for s in status["signatures"]} == set(partners)
    assert status["state"] == "in force"

    budget = ask(ledger_url, "budget", "salford-ld-2001")
    assert {y["year"]: (y["total"], y["tba"]) for y in budget["years"]} == {
        "2000/01": ("0.00", 1), "2001/02": ("0.00", 2)}
    assert set(lines_of(budget).values()) == {(None, "tba")}
    # The refused payment wrote nothing.
    assert "payments are made against declared funding" in transcript
    assert status["entries"] == 7


# --- the examples themselves -----------------------------------------------------------------


def test_an_example_refuses_a_ledger_file_that_already_exists(tmp_path: Path) -> None:
    existing = tmp_path / "ledger.db"
    existing.write_bytes(b"")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "salford_dat.py"), "--ledger", str(existing),
         "--workdir", str(tmp_path)],
        env=_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "exists; the example records on a new ledger" in done.stderr


def test_a_variation_leaving_the_end_date_still_leaves_it_once_copied() -> None:
    # Agreements are deep-copied out of the repository's cache: the Southwark pooled-budget
    # variation, which has no --end, once set the end date to a copy of the "unset" marker.
    changes = Changes(title="Pooled budget")
    assert not copy.deepcopy(changes).changes_end
    assert not copy.copy(changes).changes_end
