"""Rules that hold across acts made between a proposal and its last consent, and the rule that
each partner signs with a key of its own."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.application import Ledger
from ledger.bodies import Changes, NewPartner
from ledger.errors import InvalidInput, RuleViolation
from ledger.values import money_text
from tests.scenarios import (
    COUNCIL,
    FY2003,
    PCT,
    PROBATION,
    details,
    joined,
    line,
    refused,
    signed,
    signed_by_three,
)


def test_the_council_cannot_join_with_the_pcts_key(ledger: Ledger) -> None:
    deal = joined(ledger)
    with refused(ledger, RuleViolation, "signing key of salford-pct"):
        ledger.join(deal.reference, PROBATION, details(PROBATION, deal.key(PCT)), deal.key(PCT),
                    deal.agreement.last_at)


def test_a_partner_cannot_appoint_another_partners_key(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "signing key of salford-council"):
        deal.appoint(PCT, deal.key(COUNCIL), "2003-08-01")


def test_a_variation_cannot_bring_in_a_partner_holding_a_current_partners_key(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    added = Changes(add_partners=(NewPartner(PROBATION, details(PROBATION, deal.key(COUNCIL))),))
    with refused(ledger, RuleViolation, "signing key of salford-council"):
        deal.vary(PCT, "probation", "2003-08-01", added)


def test_payments_are_made_against_confirmed_funding_only(ledger: Ledger) -> None:
    deal = joined(ledger)
    deal.declare(PCT, "341740.00", "2003-07-02")
    deal.declare(COUNCIL, "290000.00", "2003-07-02", status="indicative")
    deal.sign(PCT, "2003-07-03")
    deal.sign(COUNCIL, "2003-07-03")
    with refused(ledger, RuleViolation, "is indicative; payments are made against confirmed"):
        deal.pay(COUNCIL, "1000.00", "2004-05-01")


def test_a_payment_after_a_proposal_stops_its_last_consent_cutting_the_line_below_it(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    # The PCT proposes to cut its line to 100,000 while nothing has been paid...
    deal.vary(PCT, "cut", "2004-05-01", Changes(funding=(line(PCT, "100000.00"),)))
    # ...then pays 200,000 before the council consents.
    deal.pay(PCT, "200000.00", "2004-05-02")
    with refused(ledger, RuleViolation, "already paid 200000.00"):
        deal.consent(COUNCIL, "cut", "2004-05-03")
    agreement = deal.agreement
    assert agreement.funding[(PCT, FY2003, "PCT mainstream")].amount == Decimal("341740.00")
    assert agreement.paid[(PCT, FY2003, "PCT mainstream")] == Decimal("200000.00")


def test_two_removals_that_together_would_leave_one_partner_cannot_both_take_effect(
        ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.vary(PCT, "drop-probation", "2004-05-01", Changes(remove_partners=(PROBATION,)))
    deal.vary(PCT, "drop-council", "2004-05-01", Changes(remove_partners=(COUNCIL,)))
    deal.consent(COUNCIL, "drop-probation", "2004-05-02")
    deal.consent(PROBATION, "drop-probation", "2004-05-02")
    assert deal.agreement.partners[PROBATION].status == "removed"
    with refused(ledger, RuleViolation, "'drop-council' lapsed on 2004-05-02, when variation "
                                        "'drop-probation' took effect"):
        deal.consent(COUNCIL, "drop-council", "2004-05-03")
    assert deal.agreement.partners[COUNCIL].active


def test_a_removed_partners_notice_goes_with_it(ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.notice(PROBATION, "2004-05-01")
    assert deal.agreement.state_on(FY2003.ends) == "notice given"
    deal.vary(PCT, "drop-probation", "2004-05-02", Changes(remove_partners=(PROBATION,)))
    deal.consent(COUNCIL, "drop-probation", "2004-05-03")
    deal.consent(PROBATION, "drop-probation", "2004-05-03")
    agreement = deal.agreement
    assert not agreement.pending_notices()
    # Its notice can no longer be used to end the agreement.
    with refused(ledger, RuleViolation, "no notice has been given"):
        deal.terminate(PCT, "2005-01-01")


def test_an_amount_is_never_rounded_to_the_penny_on_the_way_to_a_signature() -> None:
    assert money_text(Decimal("341740.5")) == "341740.50"
    with pytest.raises(InvalidInput, match="fractions of a penny"):
        money_text(Decimal("0.001"))
