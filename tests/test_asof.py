"""Looking into the past: the agreement, its budget and history as they stood on a date or
after an entry (``projections.asof`` and ``--as-of`` / ``--as-of-entry`` on the read commands).

Each scenario acts on the Salford agreement with stated dates, then asks what a partnership
board secretary would ask: "what did the agreement say on that day?"
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.bodies import Changes
from ledger.domain import DRAFT, EXPIRED, IN_FORCE, NOTICE_GIVEN, SIGNED, TERMINATED
from ledger.errors import InvalidInput, NotFound
from projections.asof import agreement_as_of
from projections.views import budget_of, status_of
from tests.scenarios import (
    COUNCIL,
    FY2004,
    PCT,
    REF,
    Partnership,
    line,
    signed,
)
from tests.seeds import Cli, key_folder

#: The variation of the scenarios below: a year longer, and the PCT's 2004/05 mainstream money
#: committed (the figure of the Salford notification).
EXTEND_AND_FUND = Changes(end=date(2007, 3, 31),
                          funding=(line(PCT, "368220.00", FY2004),))


@pytest.fixture
def cli(ledger: Ledger, ledger_url: str, tmp_path: Path) -> Cli:
    """The command line on the test's ledger, with both Salford partners' keys."""
    return Cli(ledger_url, key_folder(tmp_path / "keys", (PCT, COUNCIL)))


def varied(ledger: Ledger) -> Partnership:
    """Signed on 3 July 2003; the PCT proposes EXTEND_AND_FUND on 1 June 2004 and the council
    consents on 1 July 2004, when it takes effect."""
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01T10:00:00", EXTEND_AND_FUND)
    deal.consent(COUNCIL, "v1", "2004-07-01T10:00:00")
    return deal


# --- variations -----------------------------------------------------------------------------------


def test_before_the_last_consent_the_old_end_date_and_funding_stand(ledger: Ledger) -> None:
    varied(ledger)
    before = agreement_as_of(ledger, REF, date(2004, 6, 30))
    assert before.terms.end == date(2006, 3, 31)
    assert [v.id for v in before.pending_variations()] == ["v1"]
    assert (PCT, FY2004, "PCT mainstream") not in before.funding
    after = agreement_as_of(ledger, REF, date(2004, 7, 1))
    assert after.terms.end == date(2007, 3, 31)
    assert after.pending_variations() == []
    assert after.funding[(PCT, FY2004, "PCT mainstream")].amount == Decimal("368220.00")


def test_status_as_of_shows_the_variation_pending_then_in_effect(
        ledger: Ledger, cli: Cli) -> None:
    varied(ledger)
    before = cli.json("status", REF, "--as-of", "2004-06-30")
    assert (before["end"], before["state"], before["as_of"]) == (
        "2006-03-31", IN_FORCE, "2004-06-30")
    assert [(v["id"], v["waiting_for"]) for v in before["pending_variations"]] == [
        ("v1", [COUNCIL])]
    after = cli.json("status", REF, "--as-of", "2004-07-01")
    assert (after["end"], after["pending_variations"]) == ("2007-03-31", [])
    assert [(v["id"], v["consents"], v["effective"]) for v in after["variations"]] == [
        ("v1", [PCT, COUNCIL], True)]
    # Past the original end date, the agreement as varied is still in force; as it stood
    # before the variation, it would have expired.
    assert cli.json("status", REF, "--as-of", "2006-06-01")["state"] == IN_FORCE
    assert status_of(agreement_as_of(ledger, REF, date(2004, 6, 30)),
                     date(2006, 6, 1)).state == EXPIRED


def test_budget_as_of_shows_the_varied_funding_only_once_in_effect(
        ledger: Ledger, cli: Cli) -> None:
    varied(ledger)
    before = cli.json("budget", REF, "--as-of", "2004-06-30")
    assert [y["year"] for y in before["years"]] == ["2003/04"]
    after = cli.json("budget", REF, "--as-of", "2004-07-01")
    assert [(y["year"], y["total"]) for y in after["years"]] == [
        ("2003/04", "631740.00"), ("2004/05", "368220.00")]


def test_history_as_of_stops_at_the_last_entry_of_that_day(ledger: Ledger, cli: Cli) -> None:
    varied(ledger)
    entries = cli.json("history", REF, "--as-of", "2004-06-30")["entries"]
    assert [e["action"] for e in entries][-2:] == ["sign", "vary"]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    by_entry = cli.json("history", REF, "--as-of-entry", "7")["entries"]
    assert by_entry == entries


# --- a partner joining ----------------------------------------------------------------------------


def joined_next_day(ledger: Ledger) -> Partnership:
    """The PCT drafts on 1 July 2003; the council joins on 2 July."""
    deal = Partnership(ledger)
    deal.draft("2003-07-01T09:00:00")
    deal.join(COUNCIL, "2003-07-02T09:00:00")
    return deal


def test_before_the_council_joins_the_pct_is_the_only_partner(ledger: Ledger, cli: Cli) -> None:
    joined_next_day(ledger)
    before = cli.json("status", REF, "--as-of", "2003-07-01")
    assert [p["id"] for p in before["partners"]] == [PCT]
    assert (before["state"], before["entries"]) == (DRAFT, 1)
    after = cli.json("status", REF, "--as-of", "2003-07-02")
    assert [(p["id"], p["name"]) for p in after["partners"]] == [
        (PCT, "Salford PCT"), (COUNCIL, "Salford City Council")]
    by_entry = cli.json("status", REF, "--as-of-entry", "1")
    assert [p["id"] for p in by_entry["partners"]] == [PCT]


def test_before_the_draft_there_is_no_agreement_to_show(ledger: Ledger, cli: Cli) -> None:
    joined_next_day(ledger)
    with pytest.raises(NotFound, match="had not been drafted by 2003-06-30"):
        agreement_as_of(ledger, REF, date(2003, 6, 30))
    result = cli("status", REF, "--as-of", "2003-06-30", code=1)
    assert "had not been drafted by 2003-06-30" in result.stderr


# --- signing and the dates of the agreement -------------------------------------------------------


@pytest.mark.parametrize(("day", "state"), [
    pytest.param("2003-07-02", DRAFT, id="before-both-sign"),
    pytest.param("2003-07-03", SIGNED, id="signed-before-its-start"),
    pytest.param("2004-04-01", IN_FORCE, id="from-its-start-date"),
    pytest.param("2006-04-01", EXPIRED, id="after-its-end-date"),
])
def test_the_state_on_a_date_follows_the_signatures_and_the_dates(
        ledger: Ledger, cli: Cli, day: str, state: str) -> None:
    signed(ledger)
    assert cli.json("status", REF, "--as-of", day)["state"] == state


def test_signatures_after_the_pct_signed_and_before_the_council_did(
        ledger: Ledger, cli: Cli) -> None:
    # The PCT signed (entry 5) at 10:00 and the council (entry 6) at 14:00 on 3 July 2003.
    signed(ledger)
    first = cli.json("signatures", REF, "--as-of-entry", "5")
    assert [(s["partner"], s["seq"]) for s in first["signatures"]] == [(PCT, 5)]
    assert {p["id"]: p["signed"] for p in first["partners"]} == {PCT: True, COUNCIL: False}
    assert first["state"] == DRAFT
    both = cli.json("signatures", REF, "--as-of", "2003-07-03")
    assert [s["partner"] for s in both["signatures"]] == [PCT, COUNCIL]
    assert both["state"] == SIGNED


# --- notice ---------------------------------------------------------------------------------------


def test_notice_given_from_the_day_it_is_given_with_its_earliest_effective_date(
        ledger: Ledger, cli: Cli) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31T12:00:00")
    before = cli.json("status", REF, "--as-of", "2004-08-30")
    assert (before["state"], before["notices"]) == (IN_FORCE, [])
    after = cli.json("status", REF, "--as-of", "2004-08-31")
    assert after["state"] == NOTICE_GIVEN
    # Six calendar months from 31 August end on the last day of February.
    assert [(n["partner"], n["kind"], n["effective_from"], n["done"])
            for n in after["notices"]] == [(COUNCIL, "withdrawal", "2005-02-28", False)]
    text = cli("status", REF, "--as-of", "2004-09-15").stdout
    assert "notice of withdrawal by salford-council given 2004-08-31" in text
    assert "earliest effective date 2005-02-28" in text


def test_termination_shows_from_its_date_and_not_before(ledger: Ledger, cli: Cli) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31T12:00:00")
    deal.terminate(COUNCIL, "2005-02-28T12:00:00")
    assert cli.json("status", REF, "--as-of", "2005-02-27")["state"] == NOTICE_GIVEN
    ended = cli.json("status", REF, "--as-of", "2005-02-28")
    assert ended["state"] == TERMINATED
    assert ended["terminated_at"] == "2005-02-28T12:00:00Z"


# --- funding and payments -------------------------------------------------------------------------


def test_budget_as_of_a_date_before_a_contribution_excludes_it(ledger: Ledger, cli: Cli) -> None:
    deal = joined_next_day(ledger)
    deal.declare(PCT, "341740.00", "2003-07-02T10:00:00")
    deal.declare(COUNCIL, "290000.00", "2003-07-03T10:00:00")
    deal.sign(PCT, "2003-07-04T10:00:00")
    deal.sign(COUNCIL, "2003-07-04T11:00:00")
    deal.pay(PCT, "100000.00", "2004-04-05T10:00:00")
    before = cli.json("budget", REF, "--as-of", "2003-07-02")["years"]
    assert [(y["year"], y["total"], list(y["partners"])) for y in before] == [
        ("2003/04", "341740.00", [PCT])]
    both = cli.json("budget", REF, "--as-of", "2003-07-03")["years"]
    assert [(y["total"], y["paid"]) for y in both] == [("631740.00", "0.00")]
    paid = cli.json("budget", REF, "--as-of", "2004-04-05")["years"]
    assert [(y["paid"], y["outstanding"]) for y in paid] == [("100000.00", "531740.00")]
    # Nothing was declared by the end of the day of the draft: an empty budget, not an error.
    assert cli.json("budget", REF, "--as-of", "2003-07-01")["years"] == []
    # The same by entry: the council's line is entry 4.
    assert budget_of(agreement_as_of(ledger, REF, entry=2)).years == ()
    by_entry = budget_of(agreement_as_of(ledger, REF, entry=3)).year("2003/04")
    assert by_entry is not None
    assert (by_entry.position.total, [s.name for s in by_entry.partners]) == (
        Decimal("341740.00"), [PCT])


def test_the_last_entry_as_of_equals_the_read_models(ledger: Ledger, cli: Cli) -> None:
    # Two roads to the same view: replaying the agreement to its last entry, and the tables the
    # catch-up keeps. They must show the same thing.
    deal = varied(ledger)
    deal.pay(PCT, "1000.00", "2004-07-02")
    last = str(deal.agreement.version)
    for command in ("budget", "history"):
        assert cli.json(command, REF, "--as-of-entry", last) == cli.json(command, REF)
    # As of an entry, the agreement is judged on that entry's date: in force on 2 July 2004,
    # expired today; everything else the same.
    for command in ("status", "signatures"):
        then, now = cli.json(command, REF, "--as-of-entry", last), cli.json(command, REF)
        assert (then["state"], now["state"]) == ("in force", "expired")
        assert then.pop("as_of", "2004-07-02") == "2004-07-02"
        now.pop("as_of", None)
        assert {**then, "state": None} == {**now, "state": None}


# --- what cannot be asked -------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--as-of", "2004-02-30"], "not a real calendar date", id="30-february"),
    pytest.param(["--as-of", "1-7-2003"], "not a date: write it as YYYY-MM-DD", id="not-iso"),
    pytest.param(["--as-of-entry", "0"], "has entries 1 to 6; --as-of-entry 0 is not one",
                 id="entry-0"),
    pytest.param(["--as-of-entry", "7"], "has entries 1 to 6; --as-of-entry 7 is not one",
                 id="beyond-the-last"),
    pytest.param(["--as-of", "2004-01-01", "--as-of-entry", "2"], "not both", id="both"),
])
@pytest.mark.parametrize("command", ["status", "budget", "history"])
def test_an_impossible_as_of_is_refused(ledger: Ledger, cli: Cli, command: str,
                                        args: list[str], message: str) -> None:
    signed(ledger)
    result = cli(command, REF, *args, code=1)
    assert message in result.stderr
    assert result.stdout == ""


def test_as_of_entry_out_of_range_is_refused_by_the_core(ledger: Ledger) -> None:
    signed(ledger)
    for entry in (0, -1, 7):
        with pytest.raises(InvalidInput, match=f"--as-of-entry {entry} is not one of them"):
            agreement_as_of(ledger, REF, entry=entry)
    assert agreement_as_of(ledger, REF, entry=6).version == 6
