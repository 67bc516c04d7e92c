"""Every rule of DESIGN section 2, acted out through the Ledger on SQLite and PostgreSQL.

Each refusal is asserted with :func:`tests.scenarios.refused`: the exact error class, a message
that names the rule, and not one entry written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.bodies import Changes, NewPartner
from ledger.domain import DRAFT, EXPIRED, IN_FORCE, NOTICE_GIVEN, SIGNED, TERMINATED
from ledger.errors import InvalidInput, NotFound, RuleViolation, SignatureInvalid
from ledger.storage import Location
from ledger.values import money_text
from tests.conftest import at
from tests.keys import fixed_key
from tests.scenarios import (
    COUNCIL,
    FY2003,
    FY2004,
    PCT,
    PCT_MAINSTREAM,
    PROBATION,
    REF,
    SOCIAL_SERVICES,
    Partnership,
    details,
    drafted,
    funded,
    in_memory_ledger,
    joined,
    line,
    refused,
    signed,
    signed_by_three,
    terms,
)

#: The PCT's chief executive, appointed as its new signatory in the appointment scenarios.
NEW_PCT_KEY = fixed_key("salford-pct/chief-executive")


# --- draft --------------------------------------------------------------------------------------


def test_salford_pct_drafts_the_agreement_and_is_its_first_partner(ledger: Ledger) -> None:
    deal = drafted(ledger)
    agreement = deal.agreement
    assert agreement.version == 1
    assert list(agreement.partners) == [PCT]
    assert agreement.partners[PCT].current.public_key == fixed_key(PCT).public_key
    assert agreement.terms == terms()
    assert agreement.state_on(date(2003, 7, 1)) == DRAFT


def test_a_second_draft_of_the_same_reference_is_refused(ledger: Ledger) -> None:
    deal = drafted(ledger)
    with refused(ledger, InvalidInput, f"{REF}.*already exists"):
        deal.draft("2003-07-02", partner=COUNCIL)
    assert list(deal.agreement.partners) == [PCT]


def test_a_draft_introducing_a_key_its_signer_does_not_hold_is_refused(ledger: Ledger) -> None:
    # The convenor proves possession of the key it brings, as a joining partner does.
    with refused(ledger, SignatureInvalid, "signed by the key it introduces"):
        ledger.draft(REF, PCT, terms(), details(PCT, fixed_key(COUNCIL)), fixed_key(PCT),
                     at("2003-07-01"))
    assert not ledger.exists(REF)


def test_an_agreement_ending_before_it_starts_is_refused(ledger: Ledger) -> None:
    with refused(ledger, InvalidInput, "end date 2004-03-31 is before the start date"):
        drafted(ledger, end=date(2004, 3, 31))


# --- join ---------------------------------------------------------------------------------------


def test_the_council_joins_the_draft_with_its_own_key(ledger: Ledger) -> None:
    agreement = joined(ledger).agreement
    assert list(agreement.partners) == [PCT, COUNCIL]
    council = agreement.partners[COUNCIL]
    assert council.current.key_id == fixed_key(COUNCIL).key_id
    assert council.joined_seq == 2
    assert agreement.state_on(date(2003, 7, 1)) == DRAFT


def test_a_join_signed_by_another_partners_key_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    # The council's details, but the PCT signs: no proof that the council holds the key.
    with refused(ledger, SignatureInvalid, "not the current key of partner 'salford-council'"):
        ledger.join(REF, COUNCIL, details(COUNCIL), fixed_key(PCT), at("2003-07-01T11:00:00"))


def test_a_partner_cannot_join_twice(ledger: Ledger) -> None:
    deal = joined(ledger)
    with refused(ledger, RuleViolation, "'salford-council' is already a partner"):
        deal.join(COUNCIL, "2003-07-01T12:00:00")


def test_once_signed_a_new_partner_comes_in_only_by_variation(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "cannot join while the agreement is signed; "
                                        "a new partner comes in through an agreed variation"):
        deal.join(PROBATION, "2003-07-04")


# --- contribute ---------------------------------------------------------------------------------


def test_partners_declare_their_funding_in_the_draft_and_may_amend_it(ledger: Ledger) -> None:
    deal = funded(ledger)
    deal.declare(PCT, "368220.00", "2003-07-02T12:00:00", year=FY2004)
    deal.declare(COUNCIL, "290000.50", "2003-07-02T13:00:00")  # the 2003/04 line amended
    lines = {(ln.partner, str(ln.year), ln.source): ln.amount
             for ln in deal.agreement.funding_lines()}
    assert lines == {
        (PCT, "2003/04", PCT_MAINSTREAM): Decimal("341740.00"),
        (COUNCIL, "2003/04", SOCIAL_SERVICES): Decimal("290000.50"),
        (PCT, "2004/05", PCT_MAINSTREAM): Decimal("368220.00"),
    }


def test_a_partner_cannot_declare_funding_for_another(ledger: Ledger) -> None:
    deal = joined(ledger)
    # A contribute act is the acting partner's own: the line names the council, the PCT signs.
    with refused(ledger, SignatureInvalid, "not the current key of partner 'salford-council'"):
        deal.declare(COUNCIL, "290000.00", "2003-07-02", key=fixed_key(PCT))


def test_funding_cannot_be_declared_once_signed(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "cannot declare funding while the agreement is signed; "
                                        "funding is committed once signed: propose a variation"):
        deal.declare(PCT, "400000.00", "2003-07-04")


def test_a_payment_before_every_partner_has_signed_is_refused(ledger: Ledger) -> None:
    deal = funded(ledger)
    deal.sign(PCT, "2003-07-03")
    with refused(ledger, RuleViolation, "cannot record a payment while the agreement is draft; "
                                        "payments are recorded once every partner has signed"):
        deal.pay(PCT, "1000.00", "2003-07-03T12:00:00")


def test_payments_up_to_the_funding_line_and_not_a_penny_more(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.pay(PCT, "100000.00", "2004-04-05")
    deal.pay(PCT, "241740.00", "2004-05-05", source=PCT_MAINSTREAM)
    assert deal.agreement.paid[(PCT, FY2003, PCT_MAINSTREAM)] == Decimal("341740.00")
    with refused(ledger, RuleViolation, "payment of 0.01 would exceed the confirmed funding of "
                                        r"341740.00 \(341740.00 already paid\)"):
        deal.pay(PCT, "0.01", "2004-06-05")
    assert [p.amount for p in deal.agreement.payments] == [Decimal("100000.00"),
                                                           Decimal("241740.00")]


def test_a_payment_against_an_undeclared_line_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, NotFound, "'salford-council' has no funding line with an amount for "
                                   "2003/04 from 'NTA Pooled Treatment Budget'"):
        deal.pay(COUNCIL, "1000.00", "2004-04-05", source="NTA Pooled Treatment Budget")
    with refused(ledger, NotFound, "'salford-council' has no funding line for 2004/05"):
        deal.pay(COUNCIL, "1000.00", "2004-04-05", year=FY2004)


def test_a_payment_against_a_line_still_to_be_announced_is_refused(ledger: Ledger) -> None:
    deal = joined(ledger)
    deal.declare(PCT, "341740.00", "2003-07-02T10:00:00")
    deal.declare(PCT, None, "2003-07-02T10:30:00", source="CJIP", status="tba")
    deal.sign(PCT, "2003-07-03T10:00:00")
    deal.sign(COUNCIL, "2003-07-03T11:00:00")
    with refused(ledger, NotFound, "no funding line with an amount for 2003/04 from 'CJIP'"):
        deal.pay(PCT, "1000.00", "2004-04-05", source="CJIP")


def test_a_payment_of_nothing_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, InvalidInput, "a payment must be more than zero"):
        deal.pay(PCT, "0.00", "2004-04-05")


# --- sign ---------------------------------------------------------------------------------------


def test_the_agreement_is_signed_when_both_partners_sign_the_same_state(ledger: Ledger) -> None:
    deal = funded(ledger)
    first = deal.sign(PCT, "2003-07-03T10:00:00").agreement
    assert first.executed_seq is None
    assert first.state_on(date(2003, 7, 3)) == DRAFT
    second = deal.sign(COUNCIL, "2003-07-03T14:00:00")
    agreement = second.agreement
    assert agreement.executed_seq == second.entry.statement.seq == 6
    assert agreement.executed_state == agreement.state_digest()
    assert agreement.signers_of(agreement.state_digest()) == sorted([PCT, COUNCIL])
    assert agreement.state_on(date(2003, 7, 4)) == SIGNED


def test_salford_pct_signs_before_the_council_joins_its_signature_stands_but_is_not_enough(
        ledger: Ledger) -> None:
    deal = drafted(ledger)
    deal.declare(PCT, "341740.00", "2003-07-01T10:00:00")
    alone = deal.sign(PCT, "2003-07-01T10:30:00").agreement
    early_state = alone.state_digest()
    assert alone.state_on(date(2003, 7, 1)) == DRAFT  # one partner is no agreement
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    deal.sign(COUNCIL, "2003-07-01T12:00:00")
    agreement = deal.agreement
    assert agreement.state_on(date(2003, 7, 2)) == DRAFT
    assert agreement.signers_of(early_state) == [PCT]
    assert agreement.signers_of(agreement.state_digest()) == [COUNCIL]
    deal.sign(PCT, "2003-07-03")
    assert deal.agreement.state_on(date(2003, 7, 4)) == SIGNED


def test_a_funding_change_after_a_signature_needs_that_partner_to_sign_again(
        ledger: Ledger) -> None:
    deal = funded(ledger)
    deal.sign(PCT, "2003-07-03T10:00:00")
    deal.declare(COUNCIL, "311000.00", "2003-07-03T11:00:00")
    deal.sign(COUNCIL, "2003-07-03T12:00:00")
    agreement = deal.agreement
    assert agreement.state_on(date(2003, 7, 4)) == DRAFT
    assert len(agreement.signatures) == 2  # the PCT's earlier signature is still on record
    assert agreement.signers_of(agreement.state_digest()) == [COUNCIL]
    deal.sign(PCT, "2003-07-03T13:00:00")
    assert deal.agreement.state_on(date(2003, 7, 4)) == SIGNED


def test_signing_a_state_that_has_since_changed_is_refused(ledger: Ledger) -> None:
    deal = funded(ledger)
    read_by_pct = deal.agreement.state_digest()
    deal.declare(COUNCIL, "311000.00", "2003-07-03T09:00:00")
    with refused(ledger, RuleViolation, "the agreement changed since that state was read"):
        deal.sign(PCT, "2003-07-03T10:00:00", state=read_by_pct)


def test_signing_twice_is_refused(ledger: Ledger) -> None:
    deal = funded(ledger)
    deal.sign(PCT, "2003-07-03T10:00:00")
    with refused(ledger, RuleViolation, "'salford-pct' has already signed this state"):
        deal.sign(PCT, "2003-07-03T11:00:00")


def test_a_signed_agreement_is_not_signed_again(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "cannot sign while the agreement is signed; "
                                        "it is already signed by every partner"):
        deal.sign(PCT, "2003-07-04")


# --- vary and consent ---------------------------------------------------------------------------

EXTEND = Changes(end=date(2008, 3, 31))


def test_a_draft_cannot_be_varied(ledger: Ledger) -> None:
    deal = funded(ledger)
    with refused(ledger, RuleViolation, "cannot propose a variation while the agreement is "
                                        "draft"):
        deal.vary(PCT, "v1", "2003-07-03", EXTEND)


def test_a_variation_waits_for_every_partners_consent(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01", EXTEND)
    agreement = deal.agreement
    assert agreement.terms.end == date(2006, 3, 31)
    assert [v.id for v in agreement.pending_variations()] == ["v1"]
    assert agreement.variations["v1"].consented(PCT)
    assert not agreement.variations["v1"].consented(COUNCIL)


def test_the_last_consent_puts_a_new_end_date_into_effect(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01", EXTEND)
    consent = deal.consent(COUNCIL, "v1", "2004-06-08")
    agreement = deal.agreement
    assert agreement.terms.end == date(2008, 3, 31)
    assert agreement.variations["v1"].effective_seq == consent.entry.statement.seq
    assert agreement.pending_variations() == []
    assert agreement.state_on(date(2007, 1, 1)) == IN_FORCE


def test_a_variation_id_is_used_once(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01", EXTEND)
    with refused(ledger, RuleViolation, "variation 'v1' already exists"):
        deal.vary(COUNCIL, "v1", "2004-06-02", Changes(notice_months=3))


def test_an_expired_agreement_cannot_be_varied(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "cannot propose a variation while the agreement is "
                                        "expired"):
        deal.vary(PCT, "v1", "2006-04-01", EXTEND)


def test_a_variation_leaving_a_single_partner_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "an agreement needs at least two partners"):
        deal.vary(PCT, "v1", "2004-06-01", Changes(remove_partners=(COUNCIL,)))


def test_consent_to_an_unknown_variation_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, NotFound, "there is no variation 'v9'"):
        deal.consent(COUNCIL, "v9", "2004-06-08")


def test_consenting_twice_is_refused(ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.vary(PCT, "v1", "2004-06-01", EXTEND)
    deal.consent(COUNCIL, "v1", "2004-06-02")
    with refused(ledger, RuleViolation, "'salford-council' has already consented to 'v1'"):
        deal.consent(COUNCIL, "v1", "2004-06-03")
    # The proposer consented by proposing.
    with refused(ledger, RuleViolation, "'salford-pct' has already consented to 'v1'"):
        deal.consent(PCT, "v1", "2004-06-03")
    assert deal.agreement.terms.end == date(2006, 3, 31)


def test_consent_to_a_variation_already_in_effect_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01", EXTEND)
    deal.consent(COUNCIL, "v1", "2004-06-02")
    with refused(ledger, RuleViolation, "variation 'v1' is already in effect"):
        deal.consent(COUNCIL, "v1", "2004-06-03")


def test_the_last_consent_changes_the_notice_period(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(COUNCIL, "v1", "2004-06-01", Changes(notice_months=3))
    deal.consent(PCT, "v1", "2004-06-02")
    assert deal.agreement.terms.notice_months == 3
    deal.notice(COUNCIL, "2004-08-31")
    assert deal.agreement.notices[-1].effective_from == date(2004, 11, 30)


def test_the_last_consent_commits_the_next_years_funding(ledger: Ledger) -> None:
    deal = signed(ledger)
    funding = (line(PCT, "368220.00", FY2004), line(COUNCIL, "311000.00", FY2004))
    deal.vary(PCT, "v1", "2004-02-01", Changes(funding=funding))
    with refused(ledger, NotFound, "no funding line with an amount for 2004/05"):
        deal.pay(PCT, "1000.00", "2004-02-02", year=FY2004, source=PCT_MAINSTREAM)
    deal.consent(COUNCIL, "v1", "2004-02-03")
    assert {ln.key: ln.amount for ln in deal.agreement.funding_lines() if ln.year == FY2004} == {
        (PCT, FY2004, PCT_MAINSTREAM): Decimal("368220.00"),
        (COUNCIL, FY2004, SOCIAL_SERVICES): Decimal("311000.00"),
    }
    deal.pay(PCT, "368220.00", "2004-04-05", year=FY2004)


def test_a_partner_added_by_variation_consents_with_its_own_key(ledger: Ledger) -> None:
    deal = signed(ledger)
    probation = NewPartner(PROBATION, details(PROBATION))
    deal.vary(PCT, "v1", "2004-06-01", Changes(add_partners=(probation,)))
    deal.consent(COUNCIL, "v1", "2004-06-02")
    assert PROBATION not in deal.agreement.partners  # its own consent is still wanted
    with refused(ledger, SignatureInvalid, "not the current key of partner 'gm-probation'"):
        deal.consent(PROBATION, "v1", "2004-06-03", key=fixed_key(COUNCIL))
    deal.consent(PROBATION, "v1", "2004-06-03")
    agreement = deal.agreement
    assert agreement.partners[PROBATION].active
    assert agreement.partners[PROBATION].current.key_id == fixed_key(PROBATION).key_id
    deal.notice(PROBATION, "2004-06-04")  # and from now on acts as any partner


def test_a_partner_removed_by_variation_can_no_longer_act(ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.vary(PCT, "v1", "2004-06-01", Changes(remove_partners=(PROBATION,)))
    deal.consent(COUNCIL, "v1", "2004-06-02")
    deal.consent(PROBATION, "v1", "2004-06-03")
    agreement = deal.agreement
    assert agreement.partners[PROBATION].status == "removed"
    assert [p.id for p in agreement.active_partners] == [PCT, COUNCIL]
    with refused(ledger, RuleViolation, "'gm-probation' was removed from 'salford-dat-2004'"):
        deal.notice(PROBATION, "2004-06-04")


def test_a_stale_variation_adding_a_partner_again_cannot_undo_its_appointment(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    probation = NewPartner(PROBATION, details(PROBATION))
    deal.vary(PCT, "v1", "2004-06-01", Changes(add_partners=(probation,)))
    deal.vary(COUNCIL, "v2", "2004-06-01T12:00:00", Changes(add_partners=(probation,)))
    deal.consent(COUNCIL, "v1", "2004-06-02")
    deal.consent(PROBATION, "v1", "2004-06-03")
    new_key = fixed_key("gm-probation/chief-officer")
    deal.appoint(PROBATION, new_key, "2004-06-04")
    # Were v2 to take effect it would bring the probation service in again with its old key;
    # it was proposed against the agreement before v1, and lapsed when v1 took effect.
    with refused(ledger, RuleViolation, "variation 'v2' lapsed on 2004-06-03, when variation "
                                        "'v1' took effect"):
        deal.consent(PCT, "v2", "2004-06-05")
    assert deal.agreement.partners[PROBATION].current.key_id == new_key.key_id


# --- notice -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "earliest"), [
    pytest.param("2004-08-31", date(2005, 2, 28), id="31-aug-to-28-feb"),
    pytest.param("2003-08-31", date(2004, 2, 29), id="31-aug-to-29-feb-in-a-leap-year"),
    pytest.param("2004-10-15", date(2005, 4, 15), id="same-day-six-months-on"),
])
def test_notice_runs_for_six_calendar_months(ledger: Ledger, given: str, earliest: date) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, given)
    agreement = deal.agreement
    assert [(n.partner, n.effective_from) for n in agreement.pending_notices()] == [
        (COUNCIL, earliest)]
    assert agreement.state_on(date.fromisoformat(given)) == NOTICE_GIVEN


def test_a_draft_takes_no_notice(ledger: Ledger) -> None:
    deal = funded(ledger)
    with refused(ledger, RuleViolation, "cannot give notice while the agreement is draft"):
        deal.notice(COUNCIL, "2003-07-03")


def test_notice_is_given_once(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31")
    with refused(ledger, RuleViolation, "'salford-council' has already given notice"):
        deal.notice(COUNCIL, "2004-09-01")


# --- terminate ----------------------------------------------------------------------------------


def test_termination_before_the_notice_period_ends_is_refused_naming_the_date(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31")
    with refused(ledger, RuleViolation, "notice period of 'salford-council' runs until "
                                        "2005-02-28; terminate on or after that date"):
        deal.terminate(COUNCIL, "2005-02-27T23:59:59")


def test_termination_on_the_day_the_notice_period_ends(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.notice(COUNCIL, "2004-08-31")
    done = deal.terminate(COUNCIL, "2005-02-28").agreement
    assert done.terminated_seq == done.version
    assert done.terminated_by == COUNCIL
    assert done.state_on(date(2005, 2, 28)) == TERMINATED


def test_under_terminate_one_partners_withdrawal_ends_the_whole_agreement(
        ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.notice(PROBATION, "2004-06-01")
    # Any partner may record the end once the withdrawing partner's notice has run.
    with refused(ledger, RuleViolation, "notice period runs until 2004-12-01"):
        deal.terminate(PCT, "2004-11-30")
    done = deal.terminate(PCT, "2004-12-01").agreement
    assert done.state_on(date(2004, 12, 1)) == TERMINATED
    assert all(p.status == "active" for p in done.partners.values())


def test_under_continue_the_withdrawing_partner_leaves_and_the_rest_go_on(
        ledger: Ledger) -> None:
    deal = signed_by_three(ledger, on_withdrawal="continue")
    deal.notice(PROBATION, "2004-06-01")
    with refused(ledger, RuleViolation, "ends only the withdrawing partner's part; "
                                        "that partner records it"):
        deal.terminate(PCT, "2004-12-01")
    deal.terminate(PROBATION, "2004-12-02")
    agreement = deal.agreement
    assert agreement.terminated_seq is None
    assert agreement.partners[PROBATION].status == "withdrawn"
    assert agreement.state_on(date(2004, 12, 2)) == IN_FORCE
    with refused(ledger, RuleViolation, "'gm-probation' has withdrawn from 'salford-dat-2004'"):
        deal.notice(PROBATION, "2004-12-03")
    deal.pay(PCT, "341740.00", "2004-12-03")


def test_under_continue_a_withdrawal_leaving_one_partner_ends_the_agreement(
        ledger: Ledger) -> None:
    deal = signed(ledger, on_withdrawal="continue")
    deal.notice(COUNCIL, "2004-06-01")
    done = deal.terminate(COUNCIL, "2004-12-01").agreement
    assert done.partners[COUNCIL].status == "withdrawn"
    assert done.state_on(date(2004, 12, 1)) == TERMINATED


def test_reaching_the_end_date_allows_termination_without_notice(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "no notice has been given and the end date has not "
                                        r"been reached on 2006-03-30 \(end date 2006-03-31\)"):
        deal.terminate(PCT, "2006-03-30")
    assert deal.terminate(PCT, "2006-03-31").agreement.state_on(
        date(2006, 3, 31)) == TERMINATED


def test_a_variation_ending_the_agreement_allows_termination_once_all_consent(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "wind-up", "2004-06-01", Changes(ends_agreement=True))
    with refused(ledger, RuleViolation, "no notice has been given"):
        deal.terminate(PCT, "2004-06-02")
    deal.consent(COUNCIL, "wind-up", "2004-06-03")
    assert deal.terminate(PCT, "2004-06-04").agreement.state_on(
        date(2004, 6, 4)) == TERMINATED


def test_a_draft_cannot_be_terminated(ledger: Ledger) -> None:
    deal = funded(ledger)
    with refused(ledger, RuleViolation, "cannot terminate while the agreement is draft; "
                                        "a draft is not yet binding"):
        deal.terminate(PCT, "2003-07-03")


# --- appoint ------------------------------------------------------------------------------------


def test_after_an_appointment_the_old_key_is_refused_and_the_new_one_accepted(
        ledger: Ledger) -> None:
    deal = signed(ledger)
    old_key = fixed_key(PCT)
    deal.appoint(PCT, NEW_PCT_KEY, "2004-05-01", key=old_key)
    pct = deal.agreement.partners[PCT]
    assert [s.key_id for s in pct.signatories] == [old_key.key_id, NEW_PCT_KEY.key_id]
    assert pct.current.name == "Mike Farrar"
    with refused(ledger, SignatureInvalid, "not the current key of partner 'salford-pct'"):
        deal.notice(PCT, "2004-05-02", key=old_key)
    recorded = deal.notice(PCT, "2004-05-02", key=NEW_PCT_KEY)
    assert recorded.entry.statement.key == NEW_PCT_KEY.key_id


def test_an_appointment_signed_by_the_new_key_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, SignatureInvalid, "not the current key of partner 'salford-pct'"):
        deal.appoint(PCT, NEW_PCT_KEY, "2004-05-01", key=NEW_PCT_KEY)


def test_an_appointment_of_the_current_key_is_refused(ledger: Ledger) -> None:
    deal = signed(ledger)
    with refused(ledger, RuleViolation, "the new signatory's key is the current key"):
        deal.appoint(PCT, fixed_key(PCT), "2004-05-01")


def test_a_draft_partner_may_appoint_before_anyone_signs(ledger: Ledger) -> None:
    deal = joined(ledger)
    deal.appoint(PCT, NEW_PCT_KEY, "2003-07-02")
    with refused(ledger, SignatureInvalid, "not the current key"):
        deal.sign(PCT, "2003-07-03", key=fixed_key(PCT))
    deal.sign(PCT, "2003-07-03")
    assert deal.agreement.signatures[-1].key_id == NEW_PCT_KEY.key_id


# --- a terminated agreement ---------------------------------------------------------------------

AFTER = "2005-03-01"
ACTS: dict[str, Callable[[Partnership], object]] = {
    "join": lambda deal: deal.join(PROBATION, AFTER),
    "declare": lambda deal: deal.declare(PCT, "1.00", AFTER, year=FY2004),
    "pay": lambda deal: deal.pay(PCT, "1.00", AFTER),
    "sign": lambda deal: deal.sign(PCT, AFTER),
    "vary": lambda deal: deal.vary(PCT, "v2", AFTER, EXTEND),
    "consent": lambda deal: deal.consent(COUNCIL, "v1", AFTER),
    "notice": lambda deal: deal.notice(PCT, AFTER),
    "terminate": lambda deal: deal.terminate(PCT, AFTER),
    "appoint": lambda deal: deal.appoint(PCT, NEW_PCT_KEY, AFTER),
}


@pytest.mark.parametrize("act", sorted(ACTS))
def test_no_act_is_allowed_on_a_terminated_agreement(ledger: Ledger, act: str) -> None:
    deal = signed(ledger)
    deal.vary(PCT, "v1", "2004-06-01", EXTEND)  # still pending when the agreement ends
    deal.notice(COUNCIL, "2004-08-31")
    deal.terminate(COUNCIL, "2005-02-28")
    with refused(ledger, RuleViolation, "'salford-dat-2004' was terminated on 2005-02-28; "
                                        "no further act is allowed"):
        ACTS[act](deal)


# --- time and identity of every act -------------------------------------------------------------


def test_an_act_dated_before_the_previous_act_is_refused(ledger: Ledger) -> None:
    deal = joined(ledger)  # the council joined at 11:00
    with refused(ledger, RuleViolation, r"time 2003-07-01T10:59:59Z is before the previous act "
                                        r"\(2003-07-01T11:00:00Z\)"):
        deal.declare(PCT, "341740.00", "2003-07-01T10:59:59")
    deal.declare(PCT, "341740.00", "2003-07-01T11:00:00")  # the same moment is in order


def test_an_act_dated_in_the_future_is_refused(ledger: Ledger) -> None:
    deal = joined(ledger)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    with refused(ledger, RuleViolation, "is in the future"):
        deal.declare(PCT, "341740.00", tomorrow)


def test_a_draft_dated_in_the_future_is_refused(ledger: Ledger) -> None:
    deal = Partnership(ledger)
    with refused(ledger, RuleViolation, "is in the future"):
        deal.draft(datetime.now(UTC) + timedelta(days=1))


def test_a_partners_clock_a_little_ahead_of_the_ledgers_is_tolerated(
        location: Location, ledger: Ledger) -> None:
    joined(ledger)
    noon = at("2003-07-02T12:00:00")
    # The same database, seen by a ledger whose clock stands at noon on 2 July 2003.
    at_noon = Ledger(location, clock=lambda: noon)
    try:
        deal = Partnership(at_noon)
        deal.declare(PCT, "341740.00", noon + timedelta(seconds=30))
        with refused(at_noon, RuleViolation, "is in the future"):
            deal.declare(COUNCIL, "290000.00", noon + timedelta(minutes=2))
    finally:
        at_noon.close()


def test_salford_pct_cannot_sign_for_the_council(ledger: Ledger) -> None:
    deal = funded(ledger)
    with refused(ledger, SignatureInvalid, "not the current key of partner 'salford-council'"):
        deal.sign(COUNCIL, "2003-07-03", key=fixed_key(PCT))


def test_an_organisation_that_never_joined_cannot_act(ledger: Ledger) -> None:
    deal = funded(ledger)
    with refused(ledger, NotFound, "'gm-probation' is not a partner of agreement"):
        deal.sign(PROBATION, "2003-07-03")


def test_an_act_on_an_agreement_never_drafted_is_refused(ledger: Ledger) -> None:
    with refused(ledger, NotFound, "there is no agreement 'salford-dat-2004'"):
        Partnership(ledger).sign(PCT, "2003-07-03")


# --- the lifecycle, by the date it is looked at -------------------------------------------------


def test_the_lifecycle_of_the_salford_agreement(ledger: Ledger) -> None:
    deal = funded(ledger)
    assert deal.agreement.state_on(date(2004, 6, 1)) == DRAFT  # a draft stays one on any date
    deal.sign(PCT, "2003-07-03T10:00:00")
    deal.sign(COUNCIL, "2003-07-03T14:00:00")
    agreement = deal.agreement
    assert agreement.state_on(date(2003, 7, 3)) == SIGNED
    assert agreement.state_on(date(2004, 3, 31)) == SIGNED
    assert agreement.state_on(date(2004, 4, 1)) == IN_FORCE
    assert agreement.state_on(date(2006, 3, 31)) == IN_FORCE
    assert agreement.state_on(date(2006, 4, 1)) == EXPIRED
    deal.notice(COUNCIL, "2004-08-31")
    assert deal.agreement.state_on(date(2004, 9, 1)) == NOTICE_GIVEN
    deal.terminate(COUNCIL, "2005-02-28")
    assert deal.agreement.state_on(date(2005, 3, 1)) == TERMINATED
    assert deal.agreement.state_on(date(2007, 1, 1)) == TERMINATED  # not expired: it ended first


# --- properties, on a ledger held in memory -----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=200_000_00), min_size=1, max_size=8))
def test_payments_are_accepted_while_they_fit_the_line_and_refused_beyond(
        attempts: list[int]) -> None:
    deal = signed(in_memory_ledger())
    line, paid = Decimal("341740.00"), Decimal(0)
    for day, pence in enumerate(attempts, start=1):
        amount = Decimal(pence).scaleb(-2)
        when = f"2004-05-{day:02d}"
        if paid + amount <= line:
            deal.pay(PCT, money_text(amount), when)
            paid += amount
        else:
            with pytest.raises(RuleViolation, match="would exceed"):
                deal.pay(PCT, money_text(amount), when)
    assert deal.agreement.paid.get((PCT, FY2003, PCT_MAINSTREAM), Decimal(0)) == paid


draft_acts = st.lists(st.tuples(st.sampled_from([PCT, COUNCIL]),
                                st.sampled_from(["sign", "declare"]),
                                st.sampled_from(["290000.00", "311000.00"])), max_size=12)


@settings(max_examples=60, deadline=None)
@given(draft_acts)
def test_signed_exactly_when_every_partner_has_signed_the_state_as_it_stands(
        acts: list[tuple[str, str, str]]) -> None:
    # A model of the rule: the state is each partner's declared amount; a signature is on one
    # state; the agreement is signed once both partners have signed the state as it stands.
    deal = joined(in_memory_ledger())
    amounts: dict[str, str | None] = {PCT: None, COUNCIL: None}
    signatures: set[tuple[str, tuple[str | None, ...]]] = set()
    executed = False
    for hour, (partner, act, amount) in enumerate(acts, start=12):
        when = f"2003-07-02T{hour:02d}:00:00"
        state = (amounts[PCT], amounts[COUNCIL])
        if executed or (act == "sign" and (partner, state) in signatures):
            with pytest.raises(RuleViolation):
                getattr(deal, act)(*((partner, when) if act == "sign" else
                                     (partner, amount, when)))
        elif act == "sign":
            deal.sign(partner, when)
            signatures.add((partner, state))
        else:
            deal.declare(partner, amount, when)
            amounts[partner] = amount
        state = (amounts[PCT], amounts[COUNCIL])
        executed = executed or {(PCT, state), (COUNCIL, state)} <= signatures
        assert (deal.agreement.executed_seq is not None) == executed
