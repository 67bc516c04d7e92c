"""Shared scenarios: the Salford drug action team agreement at each stage of its life.

The figures and dates follow the Salford section 31 notification in ``../shared/seeds``: Salford
PCT and Salford City Council, agreement dated 3 July 2003, pooled budget and lead commissioning,
PCT mainstream funding of £341,740 and social services funding of £290,000 for 2003/04, six
months' notice. Tests take a :class:`Partnership` at the stage they need (``drafted``,
``joined``, ``funded``, ``signed``...) and act on it with explicit, stated times, so that each test
reads as what happened and when.

:func:`refused` is how every refusal is asserted: the exact error class, a message naming the
rule, and nothing written to the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.acts import Recorded
from ledger.application import Ledger
from ledger.bodies import Changes, FundingLine, PartnerDetails, Terms
from ledger.domain import Agreement
from ledger.errors import LedgerError
from ledger.keys import Signer
from ledger.statement import Statement, new_act_id
from ledger.storage import parse_location
from ledger.values import FinancialYear, parse_year
from tests.conftest import ORIGIN, at
from tests.keys import fixed_key

REF = "salford-dat-2004"
PCT = "salford-pct"
COUNCIL = "salford-council"
#: A third partner, for the rules that only show with more than two (withdrawal under
#: ``continue``, a partner removed by variation).
PROBATION = "gm-probation"

TERMS_TEXT = b"Salford Drug Action Team: section 31 partnership agreement (test copy)\n"
TERMS_HASH = hashlib.sha256(TERMS_TEXT).hexdigest()

FY2003 = FinancialYear(2003)
FY2004 = FinancialYear(2004)

PCT_MAINSTREAM = "PCT mainstream"
SOCIAL_SERVICES = "Social Services"

DETAILS = {
    PCT: ("Salford PCT", "commissioning", True, True, False, "Anne Williams",
          "Chair, Salford Drug Action Team"),
    COUNCIL: ("Salford City Council", "commissioning", False, False, True, "Alan Westwood",
              "Strategic Director of Community Services"),
    PROBATION: ("National Probation Service, Greater Manchester", "other", False, False, False,
                "Roger Statham", "Chief Officer"),
}


def terms(**changes: Any) -> Terms:
    """The Salford terms, with any field changed for the scenario at hand."""
    base = Terms(
        title="Salford Drug Action Team pooled treatment budget",
        basis="Health Act 1999 s.31",
        flexibilities=("lead-commissioning", "pooled-budget"),
        terms_hash=TERMS_HASH,
        agreed=date(2003, 7, 3),
        start=date(2004, 4, 1),
        end=date(2006, 3, 31),
        notice_months=6,
        on_withdrawal="terminate",
    )
    return replace(base, **changes)


def details(partner: str, key: Signer | None = None) -> PartnerDetails:
    """A partner's own details, with the public key of ``key`` (its fixed key by default)."""
    name, role, lead, host, pool, signatory, designation = DETAILS[partner]
    public = (key or fixed_key(partner)).public_key
    return PartnerDetails(name, role, lead, host, pool, signatory, designation, public)


def line(partner: str, amount: str | None, year: FinancialYear = FY2003,
         source: str | None = None, status: str = "confirmed") -> FundingLine:
    """A funding line; the source defaults to the partner's usual one."""
    chosen = source or (PCT_MAINSTREAM if partner == PCT else SOCIAL_SERVICES)
    money = None if amount is None else Decimal(amount)
    return FundingLine(partner, year, chosen, money, status)


def moment(when: str | datetime) -> datetime:
    """A stated time given as text (see :func:`tests.conftest.at`) or as a datetime."""
    return when if isinstance(when, datetime) else at(when)


@contextmanager
def recorded_at(ledger: Ledger, when: datetime) -> Iterator[None]:
    """Acts made inside are recorded by the ledger a minute after ``when``: the story is told
    as it happened, each act recorded the day it was done (not years later, as history)."""
    clock = ledger.clock
    if getattr(ledger, "recording_late", False):
        yield  # paper history, recorded today (see as_history)
        return
    # Never later than the ledger's own clock (the one outside any recorded_at): an act dated
    # in the future is still refused.
    own = getattr(clock, "own", clock)

    def recording() -> datetime:
        return min(own(), when + timedelta(minutes=1))

    recording.own = own  # type: ignore[attr-defined]
    ledger.clock = recording
    try:
        yield
    finally:
        ledger.clock = clock


@contextmanager
def as_history(ledger: Ledger) -> Iterator[None]:
    """Acts made inside are recorded by the ledger's own clock, today: paper history entered
    late, as a partnership bringing its past onto the ledger would."""
    ledger.recording_late = True  # type: ignore[attr-defined]
    try:
        yield
    finally:
        ledger.recording_late = False  # type: ignore[attr-defined]


@dataclass
class Partnership:
    """One agreement on one ledger, and the key each partner signs with now.

    Each act is recorded the day it is done (:func:`recorded_at`); a test of recording paper
    history late sets the ledger's clock itself.
    """

    ledger: Ledger
    reference: str = REF
    keys: dict[str, Signer] = field(default_factory=dict)

    def key(self, partner: str) -> Signer:
        """The partner's current key (its fixed key until it appoints another)."""
        return self.keys.setdefault(partner, fixed_key(partner))

    @property
    def agreement(self) -> Agreement:
        """The agreement as stored now."""
        return self.ledger.agreement(self.reference)

    def draft(self, when: str | datetime, partner: str = PCT, **changes: Any) -> Recorded:
        """``partner`` drafts the agreement with the Salford terms (``changes`` applied)."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.draft(self.reference, partner, terms(**changes), details(partner),
                                     self.key(partner), moment(when))

    def join(self, partner: str, when: str | datetime, key: Signer | None = None) -> Recorded:
        """``partner`` joins, signing with the key it brings."""
        signer = key or self.key(partner)
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.join(self.reference, partner, details(partner, signer), signer,
                                    moment(when))

    def declare(self, partner: str, amount: str | None, when: str | datetime, *,
                year: FinancialYear = FY2003, source: str | None = None,
                status: str = "confirmed", key: Signer | None = None) -> Recorded:
        """``partner`` declares one of its funding lines."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.declare(self.reference, line(partner, amount, year, source, status),
                                       key or self.key(partner), moment(when))

    def pay(self, partner: str, amount: str, when: str | datetime, *, year: FinancialYear = FY2003,
            source: str | None = None, key: Signer | None = None) -> Recorded:
        """``partner`` records a payment into the pool."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.pay(self.reference, partner, year, Decimal(amount), source,
                                   key or self.key(partner), moment(when))

    def sign(self, partner: str, when: str | datetime, *, state: str | None = None,
             key: Signer | None = None) -> Recorded:
        """``partner`` signs the current state (or ``state``, if it read an older one)."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.sign(self.reference, partner, key or self.key(partner), moment(when),
                                    state)

    def vary(self, partner: str, variation: str, when: str | datetime, changes: Changes, *,
             reason: str = "Agreed at the Joint Commissioning Group",
             key: Signer | None = None) -> Recorded:
        """``partner`` proposes a variation."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.vary(self.reference, partner, variation, reason, changes,
                                    key or self.key(partner), moment(when))

    def consent(self, partner: str, variation: str, when: str | datetime,
                key: Signer | None = None) -> Recorded:
        """``partner`` consents to a variation."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.consent(self.reference, partner, variation,
                                       key or self.key(partner), moment(when))

    def notice(self, partner: str, when: str | datetime, kind: str = "withdrawal",
               key: Signer | None = None) -> Recorded:
        """``partner`` gives notice."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.notice(self.reference, partner, kind, "Commissioning moves to the "
                                      "regional pool", key or self.key(partner), moment(when))

    def terminate(self, partner: str, when: str | datetime, key: Signer | None = None) -> Recorded:
        """``partner`` records the end of the agreement (or of its own part)."""
        with recorded_at(self.ledger, moment(when)):
            return self.ledger.terminate(self.reference, partner, "Notice period ended",
                                         key or self.key(partner), moment(when))

    def appoint(self, partner: str, new_key: Signer, when: str | datetime,
                key: Signer | None = None) -> Recorded:
        """``partner`` appoints a new signatory holding ``new_key``; that key is used after."""
        with recorded_at(self.ledger, moment(when)):
            recorded = self.ledger.appoint(self.reference, partner, "Mike Farrar",
                                           "Chief Executive", new_key.public_key,
                                           key or self.key(partner), moment(when))
        self.keys[partner] = new_key
        return recorded


def in_memory_ledger() -> Ledger:
    """A ledger held in memory, for property tests that build hundreds of agreements.

    The same application and rules as on disk, over eventsourcing's in-memory recorder.
    """
    app = Ledger(parse_location("in-memory.db"),
                 extra_env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
    return app


# --- the agreement at each stage ----------------------------------------------------------------


def drafted(ledger: Ledger, **changes: Any) -> Partnership:
    """Salford PCT has drafted the agreement (1 July 2003)."""
    deal = Partnership(ledger)
    deal.draft("2003-07-01T09:00:00", **changes)
    return deal


def joined(ledger: Ledger, **changes: Any) -> Partnership:
    """The council has joined the draft (1 July 2003)."""
    deal = drafted(ledger, **changes)
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    return deal


def funded(ledger: Ledger, **changes: Any) -> Partnership:
    """Both partners have declared their 2003/04 funding (2 July 2003)."""
    deal = joined(ledger, **changes)
    deal.declare(PCT, "341740.00", "2003-07-02T10:00:00")
    deal.declare(COUNCIL, "290000.00", "2003-07-02T11:00:00")
    return deal


def signed(ledger: Ledger, **changes: Any) -> Partnership:
    """Both partners have signed the same state (3 July 2003, the date of agreement)."""
    deal = funded(ledger, **changes)
    deal.sign(PCT, "2003-07-03T10:00:00")
    deal.sign(COUNCIL, "2003-07-03T14:00:00")
    return deal


def signed_by_three(ledger: Ledger, **changes: Any) -> Partnership:
    """As :func:`signed`, with the probation service as a third partner."""
    deal = funded(ledger, **changes)
    deal.join(PROBATION, "2003-07-02T12:00:00")
    for partner, when in ((PCT, "2003-07-03T10:00:00"), (COUNCIL, "2003-07-03T11:00:00"),
                          (PROBATION, "2003-07-03T12:00:00")):
        deal.sign(partner, when)
    return deal


# --- refusals -----------------------------------------------------------------------------------


def footprint(ledger: Ledger) -> list[tuple[str, int, str]]:
    """Everything the store holds as entries: (agreement, version, text), in commit order."""
    return [(str(s.originator_id), s.version, s.entry_text) for s in ledger.stored_entries()]


@contextmanager
def refused(ledger: Ledger, error: type[LedgerError], match: str) -> Iterator[None]:
    """Expect exactly ``error`` with a message matching ``match``, and nothing written."""
    before = footprint(ledger)
    with pytest.raises(LedgerError, match=match) as caught:
        yield
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert footprint(ledger) == before, "a refused act wrote to the store"


# --- hand-made entries ---------------------------------------------------------------------------


def next_statement(agreement: Agreement, action: str, partner: str, key: Signer,
                   body: dict[str, Any], when: datetime) -> Statement:
    """The statement of the next act on ``agreement`` (change a field with ``replace``)."""
    return Statement(agreement.origin, agreement.reference, agreement.version + 1,
                     agreement.head, action, partner, key.key_id, when, body, new_act_id())


def draft_statement(reference: str = REF, partner: str = PCT, origin: str = ORIGIN,
                    when: str = "2003-07-01T09:00:00", **changes: Any) -> Statement:
    """The statement of a draft, made by hand."""
    body = {"agreement": terms(**changes).to_json(), "partner": details(partner).to_json()}
    return Statement(origin, reference, 1, "0" * 64, "draft", partner,
                     fixed_key(partner).key_id, moment(when), body, new_act_id())


def payment_body(amount: str, year: str = "2003/04", source: str = PCT_MAINSTREAM
                 ) -> dict[str, Any]:
    """The body of a contribute act recording a payment."""
    return {"payment": {"year": str(parse_year(year)), "source": source, "amount": amount}}
