"""The rules a partnership board would hold the ledger to, each told as the story it guards.

A board secretary collecting consents and signatures, and a finance officer recording money,
must not be misled by the record: a stale proposal must not undo a later agreed one, a notice
entered years late must not shorten the others' notice, a partner that has left owes nothing
for the years after, dates are the agreement's own, and what is signed is what the statute and
the agreement allow. Every story runs on SQLite and on PostgreSQL, and ``verify`` replays it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from commands.cli import app
from ledger.application import Ledger
from ledger.bodies import Changes
from ledger.errors import NotFound, RuleViolation
from ledger.values import FinancialYear
from projections.audit import verify_ledger
from projections.readmodels import ReadModels
from projections.rows import rows_for
from projections.views import budget_view, status_view
from tests.keys import fixed_key
from tests.scenarios import (
    COUNCIL,
    FY2003,
    PCT,
    PROBATION,
    REF,
    Partnership,
    as_history,
    drafted,
    recorded_at,
    refused,
    signed,
    signed_by_three,
)

FY2004, FY2005 = FinancialYear(2004), FinancialYear(2005)


def verified(ledger: Ledger) -> None:
    """The whole record, the new rules included, replays and checks out."""
    report = verify_ledger(ledger, workers=1)
    assert report.ok, [f.line() for f in report.failures]


# --- 1. a stale variation cannot undo a later one -------------------------------------------------


def test_a_shortening_proposed_before_an_agreed_renewal_lapses_and_never_takes_effect(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "shorten", "2004-06-01", Changes(end=date(2004, 9, 30)))
    deal.vary(PCT, "renew", "2004-06-02", Changes(end=date(2006, 3, 31)))
    deal.consent(COUNCIL, "renew", "2004-06-03")  # renew takes effect; shorten was built on
    # the agreement as it stood before, and lapses
    shorten = deal.agreement.variations["shorten"]
    assert (shorten.status_on(date(2004, 6, 3)), shorten.ended_by) == ("lapsed", "renew")
    with refused(ledger, RuleViolation, "variation 'shorten' lapsed on 2004-06-03, when "
                                        "variation 'renew' took effect"):
        deal.consent(COUNCIL, "shorten", "2005-01-10")
    assert deal.agreement.terms.end == date(2006, 3, 31)
    assert deal.agreement.state_on(date(2005, 1, 10)) == "in force"
    view = status_view(rows_for(deal.agreement), date(2005, 1, 10))
    assert [(v.id, v.status) for v in view.variations] == [("shorten", "lapsed"),
                                                          ("renew", "effective")]
    assert view.pending_variations == ()
    from commands.report import render_report  # noqa: PLC0415
    from projections.report import build_report  # noqa: PLC0415

    assert "lapsed when variation renew took effect" in render_report(build_report(ledger, REF))
    verified(ledger)


def test_a_consent_binds_to_the_proposal_the_partner_reviewed(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01", Changes(notice_months=3))
    other = deal.vary(PCT, "v2", "2004-06-01T10:00:00", Changes(notice_months=12))
    # The council reviewed v2's proposal, and its consent to "v1" names it: refused.
    with refused(ledger, RuleViolation, "that consent is to another proposal than variation "
                                        "'v1'"):
        ledger.consent(REF, COUNCIL, "v1", fixed_key(COUNCIL), datetime(2004, 6, 2, tzinfo=UTC),
                       proposal=other.entry.hash)
    assert deal.agreement.variations["v1"].proposal == deal.agreement.history[6].entry.hash


def test_a_proposal_with_a_last_day_for_consents_expires_after_it(ledger: Ledger) -> None:
    deal = signed(ledger)
    ledger_act = Partnership(ledger)
    with_expiry = ledger.vary(REF, PCT, "v1", "Regional pool, if agreed by June",
                              Changes(notice_months=3), fixed_key(PCT),
                              datetime(2004, 6, 1, tzinfo=UTC), date(2004, 6, 30))
    assert with_expiry.entry.statement.body["expires"] == "2004-06-30"
    with refused(ledger, RuleViolation, "variation 'v1' expired on 2004-06-30"):
        ledger_act.consent(COUNCIL, "v1", "2004-07-01")
    assert deal.agreement.variations["v1"].status_on(date(2004, 7, 1)) == "expired"
    assert deal.agreement.terms.notice_months == 6
    verified(ledger)


# --- 2. a notice recorded late cannot shorten the others' notice ---------------------------------


RECORDED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _in_force_open_ended(ledger: Ledger) -> Partnership:
    return signed(ledger, end=None)


def test_a_notice_dated_2025_but_recorded_in_november_2026_runs_from_when_it_was_recorded(
        ledger: Ledger) -> None:
    deal = _in_force_open_ended(ledger)
    ledger.clock = lambda: RECORDED
    with as_history(ledger):
        notice = deal.notice(COUNCIL, "2025-01-01")
        # A second later, the council cannot terminate: six months run from 30 November 2026.
        with refused(ledger, RuleViolation, "runs until 2027-05-30"):
            deal.terminate(COUNCIL, RECORDED.replace(second=1))
    pending = deal.agreement.pending_notices()[0]
    assert (pending.runs_from, pending.effective_from) == (date(2026, 11, 30),
                                                          date(2027, 5, 30))
    # Once every other partner acknowledges the earlier date, the period runs from it.
    with as_history(ledger):
        ledger.acknowledge(REF, PCT, notice.entry.statement.seq, fixed_key(PCT),
                           datetime(2025, 1, 2, tzinfo=UTC))
    assert deal.agreement.pending_notices()[0].effective_from == date(2025, 7, 1)
    with as_history(ledger):
        deal.terminate(COUNCIL, RECORDED.replace(second=2))
    assert deal.agreement.terminated_seq is not None
    verified(ledger)


def test_a_notice_recorded_within_a_week_of_its_date_runs_from_its_date(ledger: Ledger) -> None:
    deal = _in_force_open_ended(ledger)
    ledger.clock = lambda: datetime(2025, 1, 7, 9, tzinfo=UTC)
    with as_history(ledger):
        deal.notice(COUNCIL, "2025-01-01")
    assert deal.agreement.pending_notices()[0].effective_from == date(2025, 7, 1)


def test_only_the_other_partners_acknowledge_a_late_notice(ledger: Ledger) -> None:
    deal = _in_force_open_ended(ledger)
    ledger.clock = lambda: RECORDED
    with as_history(ledger):
        notice = deal.notice(COUNCIL, "2025-01-01")
        with refused(ledger, RuleViolation, "the partner that gave a notice does not "
                                            "acknowledge it"):
            ledger.acknowledge(REF, COUNCIL, notice.entry.statement.seq, fixed_key(COUNCIL))


# --- 3. a partner that leaves owes nothing for the years after ------------------------------------


def _three_with_withdrawal_funding(ledger: Ledger) -> Partnership:
    """Three partners who carry on if one leaves; the probation service funds 2004/05 and
    2005/06."""
    deal = drafted(ledger, on_withdrawal="continue")
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    deal.join(PROBATION, "2003-07-01T12:00:00")
    deal.declare(PCT, "341740.00", "2003-07-02T10:00:00")
    deal.declare(COUNCIL, "290000.00", "2003-07-02T11:00:00")
    deal.declare(PROBATION, "3000000.00", "2003-07-02T12:00:00", year=FY2004,
                 source="Probation")
    deal.declare(PROBATION, "3000000.00", "2003-07-02T12:30:00", year=FY2005,
                 source="Probation")
    for partner, when in ((PCT, "2003-07-03T10:00:00"), (COUNCIL, "2003-07-03T11:00:00"),
                          (PROBATION, "2003-07-03T12:00:00")):
        deal.sign(partner, when)
    return deal


def test_a_partner_withdrawing_in_october_takes_its_next_years_funding_out_of_the_pool(
        ledger: Ledger) -> None:
    deal = _three_with_withdrawal_funding(ledger)
    deal.pay(PROBATION, "1000000.00", "2004-06-01", year=FY2004, source="Probation")
    deal.notice(PROBATION, "2004-09-30")
    deal.terminate(PROBATION, "2005-03-31")  # its part ends; the others carry on
    agreement = deal.agreement
    assert agreement.partners[PROBATION].status == "withdrawn"
    budget = {y.year: y for y in budget_view(rows_for(agreement)).years}
    # 2004/05, a year it was in: it keeps what it paid and what it still owes.
    in_year = next(s for s in budget["2004/05"].partners if s.name == PROBATION).position
    assert (in_year.confirmed, in_year.paid, in_year.outstanding) == (
        Decimal("3000000.00"), Decimal("1000000.00"), Decimal("2000000.00"))
    # 2005/06 begins after it left: nothing is owed, nothing outstanding, not in the pool.
    after = next(s for s in budget["2005/06"].partners if s.name == PROBATION).position
    assert (after.confirmed, after.outstanding, after.released) == (
        Decimal("0.00"), Decimal("0.00"), Decimal("3000000.00"))
    assert budget["2005/06"].position.total == Decimal("0.00")
    verified(ledger)


def test_after_the_agreement_ends_the_years_after_hold_nothing_outstanding(
        ledger: Ledger) -> None:
    deal = _three_with_withdrawal_funding(ledger)
    for partner in (PCT, COUNCIL):
        deal.notice(partner, "2004-06-30", kind="termination")
    deal.terminate(PCT, "2005-01-01")
    budget = {y.year: y for y in budget_view(rows_for(deal.agreement)).years}
    assert budget["2005/06"].position.outstanding == Decimal("0.00")
    assert budget["2005/06"].position.released == Decimal("3000000.00")
    assert budget["2004/05"].position.outstanding == Decimal("3000000.00")


# --- 4. dates are the agreement's own ------------------------------------------------------------


def test_status_as_of_an_entry_is_judged_on_that_entrys_date(ledger: Ledger,
                                                             ledger_url: str) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31")
    deal.terminate(COUNCIL, "2005-02-28")
    result = CliRunner().invoke(app, ["status", REF, "--as-of-entry", "7", "--ledger",
                                      ledger_url, "--json"], env={"LEDGER_URL": None})
    assert result.exit_code == 0, result.output
    import json  # noqa: PLC0415

    status = json.loads(result.stdout)
    assert (status["state"], status["as_of"]) == ("notice given", "2004-08-31")


def test_the_report_says_the_agreement_was_terminated_on_the_day_it_was(
        ledger: Ledger) -> None:
    from commands.report import render_report  # noqa: PLC0415
    from projections.report import build_report  # noqa: PLC0415

    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-06-30")
    deal.terminate(COUNCIL, "2005-01-01")
    html = render_report(build_report(ledger, REF))
    assert "<b>terminated</b> on 2005-01-01" in html


# --- 5. what is signed is what the statute and the agreement allow -------------------------------


def test_a_flexibility_outside_the_statutory_list_is_named_as_another(ledger: Ledger) -> None:
    with refused(ledger, RuleViolation, "'pooling' is not a flexibility of s.31 Health Act "
                                        "1999"):
        drafted(ledger, flexibilities=("pooling",))
    deal = drafted(ledger, flexibilities=("other-joint-equipment-store", "pooled-budget"))
    assert deal.agreement.terms.flexibilities == ("other-joint-equipment-store",
                                                  "pooled-budget")


def test_funding_for_a_year_far_outside_the_term_is_refused(ledger: Ledger) -> None:
    deal = drafted(ledger)
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    with refused(ledger, RuleViolation, "funding for 2010/11 is outside the agreement's term"):
        deal.declare(PCT, "1000.00", "2003-07-02", year=FinancialYear(2010))
    # The year before the start (money set aside ahead), and three years after the last
    # (planned renewals), are within it.
    deal.declare(PCT, "1000.00", "2003-07-02T10:00:00", year=FY2003)
    deal.declare(PCT, "1000.00", "2003-07-02T11:00:00", year=FinancialYear(2008))


def test_a_variation_cannot_end_the_agreement_before_it_was_proposed(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "a variation proposed on 2004-06-01 cannot end the "
                                        "agreement on 2004-05-31"):
        deal.vary(PCT, "v1", "2004-06-01", Changes(end=date(2004, 5, 31)))


def test_a_one_partner_draft_says_it_needs_another_partner(ledger: Ledger,
                                                           ledger_url: str) -> None:
    deal = drafted(ledger)
    deal.sign(PCT, "2003-07-01T10:00:00")
    assert deal.agreement.state_on(date(2003, 7, 2)) == "draft"
    result = CliRunner().invoke(app, ["signatures", REF, "--ledger", ledger_url],
                                env={"LEDGER_URL": None, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "an agreement needs at least two partners" in result.stdout
    assert "still to sign the current state: nobody" not in result.stdout


# --- taking an act back --------------------------------------------------------------------------


def test_a_partner_withdraws_its_notice_before_it_takes_effect(ledger: Ledger) -> None:
    deal = signed(ledger)
    notice = deal.notice(COUNCIL, "2004-08-31")
    with recorded_at(ledger, datetime(2004, 9, 1, tzinfo=UTC)):
        with refused(ledger, RuleViolation, "only the partner that gave it withdraws it"):
            ledger.withdraw(REF, PCT, fixed_key(PCT), notice=notice.entry.statement.seq,
                            at=datetime(2004, 9, 1, tzinfo=UTC))
        ledger.withdraw(REF, COUNCIL, fixed_key(COUNCIL), notice=notice.entry.statement.seq,
                        reason="The regional pool was not set up",
                        at=datetime(2004, 9, 1, tzinfo=UTC))
    agreement = deal.agreement
    assert agreement.pending_notices() == []
    assert agreement.state_on(date(2005, 3, 1)) == "in force"
    with refused(ledger, RuleViolation, "no notice has been given"):
        deal.terminate(COUNCIL, "2005-03-01")
    verified(ledger)


def test_a_notice_cannot_be_withdrawn_once_it_has_taken_effect(ledger: Ledger) -> None:
    deal = signed(ledger)
    notice = deal.notice(COUNCIL, "2004-08-31")
    with recorded_at(ledger, datetime(2005, 3, 1, tzinfo=UTC)), refused(
            ledger, RuleViolation, "took effect on 2005-02-28; it can only be withdrawn before "
                                   "then"):
        ledger.withdraw(REF, COUNCIL, fixed_key(COUNCIL), notice=notice.entry.statement.seq,
                        at=datetime(2005, 3, 1, tzinfo=UTC))


def test_a_withdrawal_of_notice_dated_back_years_later_cannot_beat_the_deadline(
        ledger: Ledger) -> None:
    """The council's notice took effect on 2005-02-28. In 2026 someone records a withdrawal
    dated 2004-09-01: it is held to the day it was recorded, long after the notice ran out."""
    deal = signed(ledger)
    notice = deal.notice(COUNCIL, "2004-08-31")
    ledger.clock = lambda: RECORDED
    with refused(ledger, RuleViolation, "a withdrawal recorded late is held to the day it was "
                                        "recorded"):
        ledger.withdraw(REF, COUNCIL, fixed_key(COUNCIL), notice=notice.entry.statement.seq,
                        at=datetime(2004, 9, 1, tzinfo=UTC))


def test_a_consent_dated_back_years_later_cannot_beat_a_proposal_s_last_day(
        ledger: Ledger) -> None:
    signed(ledger)
    with recorded_at(ledger, datetime(2004, 6, 1, tzinfo=UTC)):
        ledger.vary(REF, PCT, "v1", "Regional pool, if agreed by June",
                    Changes(notice_months=3), fixed_key(PCT), datetime(2004, 6, 1, tzinfo=UTC),
                    date(2004, 6, 30))
    ledger.clock = lambda: RECORDED
    with refused(ledger, RuleViolation, "variation 'v1' expired on 2004-06-30"):
        ledger.consent(REF, COUNCIL, "v1", fixed_key(COUNCIL),
                       datetime(2004, 6, 20, tzinfo=UTC))


def test_a_proposer_withdraws_its_variation_and_a_partner_rejects_another(
        ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.vary(PCT, "v1", "2004-06-01", Changes(notice_months=3))
    deal.vary(COUNCIL, "v2", "2004-06-01T10:00:00", Changes(notice_months=12))
    when = datetime(2004, 6, 2, tzinfo=UTC)
    with refused(ledger, RuleViolation, "only its proposer withdraws it"):
        ledger.withdraw(REF, COUNCIL, fixed_key(COUNCIL), variation="v1", at=when)
    ledger.withdraw(REF, PCT, fixed_key(PCT), variation="v1", at=when)
    ledger.reject(REF, PROBATION, "v2", "Twelve months is too long", fixed_key(PROBATION), when)
    variations = deal.agreement.variations
    assert (variations["v1"].ended, variations["v2"].ended) == ("withdrawn", "rejected")
    with refused(ledger, RuleViolation, "variation 'v2' was rejected by 'gm-probation'"):
        deal.consent(PCT, "v2", "2004-06-03")
    verified(ledger)


# --- money as finance officers keep it -----------------------------------------------------------


def test_a_payment_recorded_in_error_is_reversed_and_corrected_by_signed_acts(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    wrong = ledger.pay(REF, PCT, FY2003, Decimal("85435.00"), None, fixed_key(PCT),
                       datetime(2004, 4, 1, tzinfo=UTC), "REM-2004-017")
    with refused(ledger, RuleViolation, "was recorded by 'salford-pct'; only the partner that "
                                        "recorded a payment"):
        ledger.reverse(REF, COUNCIL, wrong.entry.statement.seq, "Not ours", fixed_key(COUNCIL),
                       datetime(2004, 4, 2, tzinfo=UTC))
    ledger.reverse(REF, PCT, wrong.entry.statement.seq, "Keyed as 85,435 not 58,435",
                   fixed_key(PCT), datetime(2004, 4, 2, tzinfo=UTC))
    with refused(ledger, RuleViolation, "was already reversed"):
        ledger.reverse(REF, PCT, wrong.entry.statement.seq, "again", fixed_key(PCT),
                       datetime(2004, 4, 2, tzinfo=UTC))
    ledger.pay(REF, PCT, FY2003, Decimal("58435.00"), None, fixed_key(PCT),
               datetime(2004, 4, 2, tzinfo=UTC), "REM-2004-017")
    agreement = deal.agreement
    assert agreement.paid[(PCT, FY2003, "PCT mainstream")] == Decimal("58435.00")
    rows = rows_for(agreement)
    from projections.models import PaymentRow  # noqa: PLC0415

    assert [(r["seq"], r["amount"], r["payment_ref"], r["reverses"])
            for r in rows[PaymentRow]] == [
        (7, Decimal("85435.00"), "REM-2004-017", None),
        (8, Decimal("-85435.00"), "REM-2004-017", 7),
        (9, Decimal("58435.00"), "REM-2004-017", None)]
    verified(ledger)
    models = ReadModels(ledger)
    try:
        assert budget_view(models.load(REF)).years[0].position.paid == Decimal("58435.00")
    finally:
        models.close()


def test_a_reversal_names_a_payment(ledger: Ledger) -> None:
    signed(ledger)
    with refused(ledger, NotFound, "entry 3 of 'salford-dat-2004' is not a payment"):
        ledger.reverse(REF, PCT, 3, "no", fixed_key(PCT), datetime(2004, 4, 2, tzinfo=UTC))



# --- what is waiting for me, and which agreements ------------------------------------------


def _json(ledger_url: str, *args: str) -> Any:
    import json  # noqa: PLC0415

    result = CliRunner().invoke(app, [*args, "--ledger", ledger_url, "--json"],
                                env={"LEDGER_URL": None})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_partner_sees_what_is_waiting_for_it_across_its_agreements(
        ledger: Ledger, ledger_url: str) -> None:
    deal = signed_by_three(ledger, end=None)
    deal.vary(PCT, "v1", "2004-06-01", Changes(notice_months=3))
    ledger.clock = lambda: RECORDED
    with as_history(ledger):
        late = deal.notice(PCT, "2025-01-01")
    # A second agreement, a draft the council has joined and not yet signed.
    bolton = Partnership(ledger, reference="bolton-dat-2004")
    bolton.draft("2003-07-01T09:00:00")
    bolton.join(COUNCIL, "2003-07-01T10:00:00")
    tasks = _json(ledger_url, "todo", "--as", COUNCIL)["tasks"]
    kinds = {(t["kind"], t["reference"]) for t in tasks}
    assert ("consent", REF) in kinds
    assert ("acknowledge", REF) in kinds
    assert ("sign", "bolton-dat-2004") in kinds
    assert any(t["kind"] == "acknowledge" and f"entry {late.entry.statement.seq}" in t["what"]
               for t in tasks)
    # The proposer has nothing to consent to; the one who gave notice acknowledges nothing.
    mine = {t["kind"] for t in _json(ledger_url, "todo", "--as", PCT)["tasks"]}
    assert "consent" not in mine
    assert "acknowledge" not in mine


def test_list_picks_agreements_by_partner_state_and_end_date(ledger: Ledger,
                                                            ledger_url: str) -> None:
    signed(ledger)
    other = Partnership(ledger, reference="bolton-dat-2004")
    other.draft("2003-07-01T09:00:00", partner=COUNCIL, end=date(2010, 3, 31))
    def refs(*args: str) -> list[str]:
        return [r["reference"] for r in _json(ledger_url, "list", *args)["agreements"]]

    assert refs("--partner", PCT) == [REF]
    assert refs("--partner", COUNCIL) == ["bolton-dat-2004", REF]
    assert refs("--state", "draft") == ["bolton-dat-2004"]
    assert refs("--ending-before", "2007-01-01") == [REF]


def test_the_budget_shows_every_year_by_partner_and_lists_lines_and_payments(
        ledger: Ledger, ledger_url: str) -> None:
    deal = _three_with_withdrawal_funding(ledger)
    ledger.pay(REF, PROBATION, FY2004, Decimal("1000.00"), "Probation", fixed_key(PROBATION),
               datetime(2004, 6, 1, tzinfo=UTC), "PO-17")
    assert deal.agreement.version == 11
    result = CliRunner().invoke(app, ["budget", REF, "--by", "year", "--ledger", ledger_url],
                                env={"LEDGER_URL": None, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2005/06" in result.stdout
    assert "£3,000,000.00" in result.stdout
    import csv  # noqa: PLC0415
    import io  # noqa: PLC0415

    lines_csv = CliRunner().invoke(app, ["budget", REF, "--lines", "--csv", "--ledger",
                                         ledger_url], env={"LEDGER_URL": None})
    rows = list(csv.DictReader(io.StringIO(lines_csv.stdout)))
    assert {(r["year"], r["partner"], r["amount"]) for r in rows} >= {
        ("2004/05", PROBATION, "3000000.00"), ("2003/04", PCT, "341740.00")}
    paid = _json(ledger_url, "budget", REF, "--payments")["payments"]
    assert paid == [{"seq": 11, "at": "2004-06-01T00:00:00Z", "partner": PROBATION,
                     "year": "2004/05", "source": "Probation", "amount": "1000.00",
                     "reference": "PO-17", "reverses": None}]


# --- successor bodies and lost keys ------------------------------------------------------------


CCG = "salford-ccg"


def _ccg_details() -> Any:
    from ledger.bodies import NewPartner, PartnerDetails  # noqa: PLC0415

    return NewPartner(CCG, PartnerDetails(
        "NHS Salford Clinical Commissioning Group", "commissioning", True, True, False,
        "Hubert Fisher", "Accountable Officer", fixed_key(CCG).public_key))


def test_when_the_pct_is_abolished_its_successor_takes_its_place_funding_and_obligations(
        ledger: Ledger) -> None:
    from ledger.bodies import Succession  # noqa: PLC0415

    deal = signed_by_three(ledger, end=None)
    deal.pay(PCT, "100000.00", "2004-04-05")
    # The PCT is abolished: it cannot consent. The others, and the successor with its own
    # key, agree the succession.
    succession = Changes(successions=(Succession(PCT, _ccg_details()),))
    deal.vary(COUNCIL, "pct-abolished", "2013-04-01", succession)
    deal.consent(PROBATION, "pct-abolished", "2013-04-02")
    assert deal.agreement.variations["pct-abolished"].open  # waiting for the successor
    deal.keys[CCG] = fixed_key(CCG)
    # A takeover waits 28 days from its proposal, for a partner still there to object.
    with refused(ledger, RuleViolation, "it can take effect from 2013-04-29, 28 days after it "
                                        "was recorded"):
        deal.consent(CCG, "pct-abolished", "2013-04-03")
    deal.consent(CCG, "pct-abolished", "2013-04-29")
    agreement = deal.agreement
    assert agreement.partners[PCT].status == "succeeded"
    assert agreement.partners[CCG].active
    # The PCT's funding, and what it paid, are the CCG's; what is still owed, it owes.
    assert agreement.funding[(CCG, FY2003, "PCT mainstream")].amount == Decimal("341740.00")
    assert agreement.paid[(CCG, FY2003, "PCT mainstream")] == Decimal("100000.00")
    assert (PCT, FY2003, "PCT mainstream") not in agreement.funding
    deal.pay(CCG, "241740.00", "2013-04-30")
    with refused(ledger, RuleViolation, "'salford-pct' was succeeded from 'salford-dat-2004' "
                                        "and can no longer act"):
        deal.notice(PCT, "2013-05-01")
    verified(ledger)


def test_a_partner_that_lost_its_key_gets_a_new_one_by_the_others_agreement(
        ledger: Ledger) -> None:
    from ledger.bodies import Recovery  # noqa: PLC0415

    deal = signed_by_three(ledger)
    new = fixed_key("salford-council/recovered")
    recovery = Changes(recoveries=(Recovery(COUNCIL, "Jane Doe", "Strategic Director",
                                            new.public_key),))
    with refused(ledger, RuleViolation, "another partner proposes a key recovery"):
        deal.vary(COUNCIL, "council-key", "2004-06-01", recovery)
    deal.vary(PCT, "council-key", "2004-06-01", recovery)
    deal.consent(PROBATION, "council-key", "2004-06-02")
    # The lost key cannot consent to its own replacement (whoever holds it now)...
    from ledger.errors import SignatureInvalid  # noqa: PLC0415

    with refused(ledger, SignatureInvalid, "is not the current key"):
        deal.consent(COUNCIL, "council-key", "2004-06-29")
    # ...the council proves the new key by consenting with it, once the 28 days have passed.
    with refused(ledger, RuleViolation, "it can take effect from 2004-06-29"):
        deal.consent(COUNCIL, "council-key", "2004-06-28", key=new)
    deal.consent(COUNCIL, "council-key", "2004-06-29", key=new)
    assert deal.agreement.partners[COUNCIL].current.public_key == new.public_key
    deal.keys[COUNCIL] = new
    deal.notice(COUNCIL, "2004-06-30")
    verified(ledger)


# --- takeovers the partner taken over can stop, and money that follows the partner -----------


def test_partners_cannot_take_over_a_partner_that_is_still_there_to_say_no(
        ledger: Ledger) -> None:
    """Two partners propose that the PCT was abolished, with a 'successor' they hold the key
    of; the PCT is alive and rejects it within the 28 days a takeover waits."""
    from ledger.bodies import Succession  # noqa: PLC0415

    deal = signed_by_three(ledger, end=None)
    deal.vary(COUNCIL, "pct-abolished", "2004-06-01",
              Changes(successions=(Succession(PCT, _ccg_details()),)))
    deal.consent(PROBATION, "pct-abolished", "2004-06-02")
    deal.keys[CCG] = fixed_key(CCG)
    with recorded_at(ledger, datetime(2004, 6, 10, tzinfo=UTC)):
        ledger.reject(REF, PCT, "pct-abolished", "We were not abolished", fixed_key(PCT),
                      datetime(2004, 6, 10, tzinfo=UTC))
    with refused(ledger, RuleViolation, "variation 'pct-abolished' was rejected by "
                                        "'salford-pct'"):
        deal.consent(CCG, "pct-abolished", "2004-07-01")
    assert deal.agreement.partners[PCT].active
    verified(ledger)


def test_partners_cannot_take_over_a_key_its_holder_still_holds(ledger: Ledger) -> None:
    from ledger.bodies import Recovery  # noqa: PLC0415

    deal = signed_by_three(ledger)
    theirs = fixed_key("mallory")
    deal.vary(PCT, "council-key", "2004-06-01",
              Changes(recoveries=(Recovery(COUNCIL, "M", "Director", theirs.public_key),)))
    deal.consent(PROBATION, "council-key", "2004-06-02")
    # The council, holding its key, rejects the "recovery" before it can take effect.
    with recorded_at(ledger, datetime(2004, 6, 3, tzinfo=UTC)):
        ledger.reject(REF, COUNCIL, "council-key", "We hold our key", fixed_key(COUNCIL),
                      datetime(2004, 6, 3, tzinfo=UTC))
    with refused(ledger, RuleViolation, "was rejected by 'salford-council'"):
        deal.consent(COUNCIL, "council-key", "2004-07-01", key=theirs)
    assert deal.agreement.partners[COUNCIL].current.public_key == fixed_key(
        COUNCIL).public_key


def test_a_variation_recovers_each_key_once_and_every_new_key_is_its_own(
        ledger: Ledger) -> None:
    from ledger.bodies import Recovery, Succession  # noqa: PLC0415

    deal = signed_by_three(ledger)
    one, two = fixed_key("council/one"), fixed_key("council/two")
    with refused(ledger, RuleViolation, "a variation recovers each partner's key once"):
        deal.vary(PCT, "twice", "2004-06-01", Changes(recoveries=(
            Recovery(COUNCIL, "A", "Director", one.public_key),
            Recovery(COUNCIL, "B", "Director", two.public_key))))
    shared = _ccg_details()
    with refused(ledger, RuleViolation, "signs with a key of its own"):
        deal.vary(PCT, "shared", "2004-06-01", Changes(
            successions=(Succession(PROBATION, shared),),
            recoveries=(Recovery(COUNCIL, "A", "Director", fixed_key(CCG).public_key),)))
    with refused(ledger, RuleViolation, "key"):
        deal.vary(COUNCIL, "stolen", "2004-06-01", Changes(recoveries=(
            Recovery(PROBATION, "A", "Director", fixed_key(PCT).public_key),)))
    assert deal.agreement.variations == {}


def test_a_successor_s_funding_cannot_fall_below_what_its_predecessor_paid(
        ledger: Ledger) -> None:
    from ledger.bodies import FundingLine, Succession  # noqa: PLC0415

    deal = signed_by_three(ledger, end=None)
    deal.pay(PCT, "100000.00", "2004-04-05")
    below = FundingLine(CCG, FY2003, "PCT mainstream", Decimal("50000.00"), "confirmed")
    with refused(ledger, RuleViolation, "'salford-ccg' has already paid 100000.00 for "
                                        "2003/04"):
        deal.vary(COUNCIL, "pct-abolished", "2013-04-01", Changes(
            successions=(Succession(PCT, _ccg_details()),), funding=(below,)))


def test_a_successor_reverses_a_payment_its_predecessor_recorded_in_error(
        ledger: Ledger) -> None:
    from ledger.bodies import Succession  # noqa: PLC0415

    deal = signed_by_three(ledger, end=None)
    wrong = deal.pay(PCT, "100000.00", "2004-04-05")
    deal.vary(COUNCIL, "pct-abolished", "2013-04-01",
              Changes(successions=(Succession(PCT, _ccg_details()),)))
    deal.consent(PROBATION, "pct-abolished", "2013-04-02")
    deal.keys[CCG] = fixed_key(CCG)
    deal.consent(CCG, "pct-abolished", "2013-04-29")
    with recorded_at(ledger, datetime(2013, 5, 1, tzinfo=UTC)):
        ledger.reverse(REF, CCG, wrong.entry.statement.seq, "Paid by the PCT in error",
                       fixed_key(CCG), datetime(2013, 5, 1, tzinfo=UTC))
    assert deal.agreement.paid[(CCG, FY2003, "PCT mainstream")] == Decimal("0.00")
    verified(ledger)


def test_a_partner_that_leaves_takes_its_open_proposals_with_it(ledger: Ledger) -> None:
    deal = _three_with_withdrawal_funding(ledger)
    deal.vary(PROBATION, "v1", "2004-06-01", Changes(notice_months=3))
    deal.notice(PROBATION, "2004-09-30")
    deal.terminate(PROBATION, "2005-03-31")
    v1 = deal.agreement.variations["v1"]
    assert (v1.ended, v1.ended_by) == ("lapsed", PROBATION)
    with refused(ledger, RuleViolation, "variation 'v1' lapsed on 2005-03-31, when "
                                        "'gm-probation' withdrew"):
        deal.consent(COUNCIL, "v1", "2005-04-01")
    verified(ledger)


def test_nothing_is_paid_into_a_line_for_a_year_after_the_agreement_ended(
        ledger: Ledger) -> None:
    deal = _three_with_withdrawal_funding(ledger)
    deal.vary(PCT, "shorten", "2004-06-01", Changes(end=date(2005, 3, 31)))
    deal.consent(COUNCIL, "shorten", "2004-06-02")
    deal.consent(PROBATION, "shorten", "2004-06-03")
    assert deal.agreement.state_on(date(2005, 4, 2)) == "expired"
    with refused(ledger, RuleViolation, "the 2005/06 line from 'Probation' was released"):
        deal.pay(PROBATION, "1.00", "2005-04-02", year=FY2005, source="Probation")


def test_a_key_of_small_order_is_refused(ledger: Ledger) -> None:
    """The identity point signs every message; nobody holds its private key."""
    from ledger.keys import check_public_key  # noqa: PLC0415

    identity = bytes([1]) + bytes(31)
    from ledger.errors import InvalidInput  # noqa: PLC0415

    with pytest.raises(InvalidInput, match="small order"):
        check_public_key(identity)
    deal = drafted(ledger)
    from ledger.bodies import PartnerDetails  # noqa: PLC0415

    details = PartnerDetails("Salford City Council", "other", True, True, False,
                             "Anne", "Director", identity)
    with refused(ledger, InvalidInput, "small order"):
        ledger.join(REF, COUNCIL, details, fixed_key(COUNCIL),
                    datetime(2003, 7, 1, 11, tzinfo=UTC))
    assert deal.agreement.version == 1


def test_the_grid_shows_money_still_to_be_agreed_as_tba_and_a_reversal_with_its_sign(
        ledger: Ledger, ledger_url: str) -> None:
    from projections.summary import pounds  # noqa: PLC0415

    deal = drafted(ledger)
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    deal.declare(PCT, "341740.00", "2003-07-02T10:00:00")
    deal.declare(PCT, "3000000.00", "2003-07-02T10:30:00", year=FY2004)
    deal.declare(COUNCIL, None, "2003-07-02T11:00:00", year=FY2004, source="Social care",
                 status="tba")
    result = CliRunner().invoke(app, ["budget", REF, "--by", "year", "--ledger", ledger_url],
                                env={"LEDGER_URL": None, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "2004/05" in line)
    assert "TBA" in row
    assert "£3,000,000.00 + TBA" in row  # the pool: what is known, and what is not yet
    assert (pounds(Decimal("-50")), pounds(Decimal("50")), pounds(None)) == (
        "-£50.00", "£50.00", "TBA")
