"""A partner's acts, as the core defines them: one method each, wherever the entry is stored.

:class:`Acts` builds each act's body from what the partner gives and the agreement as it
stands; how the statement is signed and stored is :meth:`Acts._act`, which the ledger itself
(:class:`ledger.application.Ledger`, storing in its database) and a client of a ledger service
(storing by posting the signed entry) each provide. :func:`signed_entry` is the one way either
makes the entry of an act.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ledger import bodies
from ledger.bodies import Changes, FundingLine, NoticeBody, PartnerDetails, Payment, Terms
from ledger.canonical import ZERO_HASH
from ledger.domain import Agreement
from ledger.errors import InvalidInput, NotFound
from ledger.keys import Signer
from ledger.statement import Entry, Statement
from ledger.values import FinancialYear, normal_text

#: What an act's body is made from: the agreement as it stands (None for a draft).
BodyOf = Callable[[Agreement | None], dict[str, Any]]


@dataclass(frozen=True)
class Recorded:
    """An act that landed: the entry as stored and the agreement after it."""

    entry: Entry
    agreement: Agreement
    attempts: int


def signed_entry(origin: str, reference: str, agreement: Agreement | None, action: str,
                 partner: str, signer: Signer, body: BodyOf, act: str, stated: datetime | None,
                 clock: Callable[[], datetime]) -> Entry:
    """The signed entry of one attempt at an act: the next entry of ``agreement`` (the first of
    a new one when None), its body with every text as it is signed, done at ``stated`` or, if
    no time is stated, now (``clock``) but never before the agreement's last act (another machine's
    clock may run a little ahead of this one's)."""
    moment = stated or clock().astimezone(UTC).replace(microsecond=0)
    if agreement is None:
        seq, prev = 1, ZERO_HASH
    else:
        seq, prev = agreement.version + 1, agreement.head
        if stated is None:
            moment = max(moment, agreement.last_at)
    statement = Statement(origin, reference, seq, prev, action, partner, signer.key_id, moment,
                          _normal(body(agreement)), act)
    return Entry.sign(statement, signer)


class Acts(ABC):
    """The partner actions of DESIGN section 2."""

    @abstractmethod
    def agreement(self, reference: str, version: int | None = None) -> Agreement:
        """The agreement as it stands (or as it stood after entry ``version``)."""

    @abstractmethod
    def _act(self, reference: str, partner: str, action: str, body: BodyOf, signer: Signer,
             at: datetime | None) -> Recorded:
        """Sign and store the act, retrying with the same act identity until it lands."""

    def draft(self, reference: str, partner: str, terms: Terms, details: PartnerDetails,
              signer: Signer, at: datetime | None = None) -> Recorded:
        """The convening partner drafts a new agreement, as its first partner."""
        body = bodies.DraftBody(terms, details).to_json()
        return self._act(reference, partner, "draft", lambda _: body, signer, at)

    def join(self, reference: str, partner: str, details: PartnerDetails, signer: Signer,
             at: datetime | None = None) -> Recorded:
        """A partner joins a draft, signing with the key it brings."""
        body = details.to_json()
        return self._act(reference, partner, "join", lambda _: body, signer, at)

    def declare(self, reference: str, line: FundingLine, signer: Signer,
                at: datetime | None = None) -> Recorded:
        """A partner declares (or amends) one of its own funding lines in a draft."""
        body = {"line": line.to_json(with_partner=False)}
        return self._act(reference, line.partner, "contribute", lambda _: body, signer, at)

    def pay(self, reference: str, partner: str, year: FinancialYear, amount: Any,
            source: str | None, signer: Signer, at: datetime | None = None,
            payment_reference: str | None = None) -> Recorded:
        """A partner records a payment into the pool against one of its funding lines, with
        its own reference for it (an invoice or remittance number) if given.

        Without a source, the partner's only funding line for that year is meant.
        """
        def body(agreement: Agreement | None) -> dict[str, Any]:
            assert agreement is not None
            chosen = source if source is not None else _only_source(agreement, partner, year)
            return {"payment": Payment(year, chosen, amount, payment_reference).to_json()}
        return self._act(reference, partner, "contribute", body, signer, at)

    def sign(self, reference: str, partner: str, signer: Signer, at: datetime | None = None,
             state: str | None = None) -> Recorded:
        """A partner signs the agreement's current state (or refuses if ``state`` is stale)."""
        def body(agreement: Agreement | None) -> dict[str, Any]:
            assert agreement is not None
            return {"state": state or agreement.state_digest()}
        return self._act(reference, partner, "sign", body, signer, at)

    def vary(self, reference: str, partner: str, variation: str, reason: str, changes: Changes,
             signer: Signer, at: datetime | None = None, expires: date | None = None
             ) -> Recorded:
        """A partner proposes a variation (its own consent included), which may gather
        consents until ``expires`` (if given)."""
        body = bodies.VaryBody(variation, reason, changes, expires).to_json()
        return self._act(reference, partner, "vary", lambda _: body, signer, at)

    def consent(self, reference: str, partner: str, variation: str, signer: Signer,
                at: datetime | None = None, proposal: str | None = None) -> Recorded:
        """A partner consents to a pending variation: to what was proposed, named by the hash
        of the entry that proposed it (``proposal``, the one the partner reviewed; by default
        the one the agreement holds)."""
        def body(agreement: Agreement | None) -> dict[str, Any]:
            assert agreement is not None
            found = agreement.variations.get(variation)
            named = proposal or (found.proposal if found is not None else None)
            return bodies.ConsentBody(variation, named).to_json()
        return self._act(reference, partner, "consent", body, signer, at)

    def withdraw(self, reference: str, partner: str, signer: Signer, *,
                 variation: str | None = None, notice: int | None = None, reason: str = "",
                 at: datetime | None = None) -> Recorded:
        """A partner takes back its own pending variation, or its notice before it takes
        effect."""
        body = bodies.WithdrawBody(variation, notice, reason).to_json()
        return self._act(reference, partner, "withdraw", lambda _: body, signer, at)

    def reject(self, reference: str, partner: str, variation: str, reason: str, signer: Signer,
               at: datetime | None = None) -> Recorded:
        """A partner whose consent a variation needs rejects it: it can no longer take effect."""
        body = bodies.RejectBody(variation, reason).to_json()
        return self._act(reference, partner, "reject", lambda _: body, signer, at)

    def acknowledge(self, reference: str, partner: str, notice: int, signer: Signer,
                    at: datetime | None = None) -> Recorded:
        """A partner accepts the date a backdated notice gives itself."""
        body = {"notice": notice}
        return self._act(reference, partner, "acknowledge", lambda _: body, signer, at)

    def reverse(self, reference: str, partner: str, payment: int, reason: str, signer: Signer,
                at: datetime | None = None) -> Recorded:
        """A partner reverses a payment it recorded in error (entry ``payment``)."""
        body = {"reversal": bodies.Reversal(payment, reason).to_json()}
        return self._act(reference, partner, "contribute", lambda _: body, signer, at)

    def notice(self, reference: str, partner: str, kind: str, reason: str, signer: Signer,
               at: datetime | None = None) -> Recorded:
        """A partner gives notice of withdrawal or of termination."""
        body = NoticeBody(kind, reason).to_json()
        return self._act(reference, partner, "notice", lambda _: body, signer, at)

    def terminate(self, reference: str, partner: str, reason: str, signer: Signer,
                  at: datetime | None = None) -> Recorded:
        """A partner records the end of the agreement (or of its own part)."""
        body = {"reason": reason}
        return self._act(reference, partner, "terminate", lambda _: body, signer, at)

    def appoint(self, reference: str, partner: str, signatory: str, designation: str,
                public_key: bytes, signer: Signer, at: datetime | None = None) -> Recorded:
        """A partner changes its signatory and key, signed by its current key."""
        body = bodies.AppointBody(signatory, designation, public_key).to_json()
        return self._act(reference, partner, "appoint", lambda _: body, signer, at)


def _normal(value: Any) -> Any:
    """A body with every text as it is signed: Unicode normal form C, no spaces at either end
    (so that "Social Services " and "Social Services" are one source, as they show)."""
    if isinstance(value, str):
        return normal_text(value)
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normal(item) for item in value]
    return value


def _only_source(agreement: Agreement, partner: str, year: FinancialYear) -> str:
    sources = sorted(src for (p, y, src) in agreement.funding if p == partner and y == year)
    if len(sources) == 1:
        return sources[0]
    if not sources:
        raise NotFound(f"{partner!r} has no funding line for {year}; funding is declared in a "
                       f"draft or added by a variation")
    raise InvalidInput(f"{partner!r} has {len(sources)} funding lines for {year}; "
                       f"name one with --source ({', '.join(sources)})")


