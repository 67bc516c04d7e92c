"""A synthetic ledger of realistic shape, recorded through the core.

Agreements of 2 to 8 partners go through every action a real one does: draft, joins, funding
lines over three financial years (some indicative, some to be announced), every partner's
signature, payments into the pool, a variation and its consents, a change of signatory, and for
some a notice and termination. Every act is a statement signed with the partner's key and
checked by the Agreement aggregate like any other; to build large ledgers quickly, the acts of
one agreement are stored together in one transaction (:func:`build`), which changes how often
the store commits, not what is checked.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger.application import Ledger
from ledger.bodies import (
    AppointBody,
    Changes,
    DraftBody,
    FundingLine,
    NoticeBody,
    PartnerDetails,
    Payment,
    Terms,
    VaryBody,
)
from ledger.canonical import ZERO_HASH, sha256_hex
from ledger.domain import Agreement
from ledger.keys import Signer
from ledger.statement import Entry, Statement
from ledger.values import FinancialYear

ORIGIN = "ledger.bench.example/synthetic"
SLOTS = 8
ROLES = ("commissioning", "provider", "other")


def partner_key(slot: int, generation: int = 0) -> Signer:
    """The fixed benchmark key of partner slot ``slot`` (and of its later signatories)."""
    return Signer.from_seed(hashlib.sha256(f"bench partner {slot}/{generation}".encode())
                            .digest())


class Plan:
    """The acts of one synthetic agreement, generated as it goes."""

    def __init__(self, number: int, rng: random.Random, origin: str) -> None:
        self.number = number
        self.rng = rng
        self.origin = origin
        self.reference = f"agreement-{number:07d}"
        self.partners = [f"partner-{slot}" for slot in range(rng.randint(2, SLOTS))]
        self.keys = {p: partner_key(i) for i, p in enumerate(self.partners)}
        self.moment = datetime(2000, 1, 3, tzinfo=UTC) + timedelta(days=rng.randrange(3000))

    def _tick(self) -> datetime:
        self.moment += timedelta(hours=self.rng.randint(1, 72))
        return self.moment

    def _details(self, partner: str) -> PartnerDetails:
        slot = int(partner.rsplit("-", 1)[1])
        return PartnerDetails(f"Partner organisation {slot}", ROLES[slot % 3], slot == 0,
                              slot == 0, slot == 0, f"Signatory {slot}", "Director",
                              self.keys[partner].public_key)

    def acts(self) -> Iterator[tuple[str, str, dict[str, object]]]:
        """(partner, action, body) of each act in order (a sign's state is filled in live)."""
        start = (self.moment + timedelta(days=200)).date()
        terms = Terms(f"Synthetic pooled budget {self.number}", "Health Act 1999 s.31",
                      ("lead-commissioning", "pooled-budget"),
                      hashlib.sha256(f"terms {self.number}".encode()).hexdigest(), None,
                      start, None, 6, self.rng.choice(("terminate", "continue")))
        lead = self.partners[0]
        yield lead, "draft", DraftBody(terms, self._details(lead)).to_json()
        for partner in self.partners[1:]:
            yield partner, "join", self._details(partner).to_json()
        first = FinancialYear.containing(start)
        years = [FinancialYear(first.first + i) for i in range(3)]
        amounts: dict[tuple[str, FinancialYear, str], Decimal] = {}
        for partner in self.partners:
            for year in years:
                for source in ("mainstream", "grant")[: self.rng.randint(1, 2)]:
                    status = self.rng.choices(("confirmed", "indicative", "tba"), (8, 1, 1))[0]
                    amount = None if status == "tba" else Decimal(
                        self.rng.randrange(100000, 90000000)) / 100
                    if status == "confirmed" and amount is not None:
                        amounts[(partner, year, source)] = amount
                    line = FundingLine(partner, year, source, amount, status)
                    yield partner, "contribute", {"line": line.to_json(with_partner=False)}
        for partner in self.partners:
            yield partner, "sign", {}
        for (partner, year, source), amount in amounts.items():
            for _ in range(self.rng.randint(1, 2)):
                paid = (amount / 3).quantize(Decimal("0.01"))
                yield partner, "contribute", {"payment": Payment(year, source, paid).to_json()}
        proposer = self.partners[-1]
        changes = Changes(notice_months=3, funding=(
            FundingLine(lead, years[-1], "uplift", Decimal("25000.00"), "confirmed"),))
        yield proposer, "vary", VaryBody("v1", "Uplift in the last year", changes).to_json()
        for partner in self.partners[:-1]:
            yield partner, "consent", {"variation": "v1"}
        yield lead, "appoint", AppointBody("New signatory", "Chief Executive",
                                partner_key(0, self.number + 1).public_key).to_json()
        self.keys[lead] = partner_key(0, self.number + 1)
        if self.rng.random() < 0.25:
            leaver = self.partners[1]
            yield leaver, "notice", NoticeBody("withdrawal", "Service re-commissioned").to_json()
            self.moment += timedelta(days=200)
            yield leaver, "terminate", {"reason": "Notice period ended"}


def record(ledger: Ledger, plan: Plan, now: datetime) -> Agreement:
    """Record one planned agreement through the core; its acts are stored in one write."""
    agreement: Agreement | None = None
    for partner, action, planned in plan.acts():
        body = planned
        if action == "sign":
            assert agreement is not None
            body = {"state": agreement.state_digest()}
        if action == "consent":
            assert agreement is not None
            body = {**planned, "proposal": agreement.variations[planned["variation"]].proposal}
        seq = 1 if agreement is None else agreement.version + 1
        prev = ZERO_HASH if agreement is None else agreement.head
        signer = plan.keys[partner]
        at = plan._tick()
        statement = Statement(plan.origin, plan.reference, seq, prev, action, partner,
                              signer.key_id, at, body,
                              sha256_hex(f"{plan.reference}:{seq}".encode())[:32])
        entry = Entry.sign(statement, signer)
        # Each act recorded the day it was done, never later than now.
        recorded = min(now, at + timedelta(minutes=1))
        if agreement is None:
            agreement = Agreement.draft(entry, plan.origin, recorded)
        else:
            agreement.record(entry, recorded)
    assert agreement is not None
    ledger.save(agreement)
    return agreement


def build(ledger: Ledger, entries: int, seed: int = 7) -> tuple[int, int]:
    """Record agreements until the ledger holds at least ``entries`` entries."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    total = count = 0
    while total < entries:
        agreement = record(ledger, Plan(count, rng, ledger.origin), now)
        total += agreement.version
        count += 1
    return count, total
