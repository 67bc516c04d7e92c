"""What the read commands show: status, signatures, history and budget of one agreement.

The views are plain frozen dataclasses with a documented ``to_json``. They are built either from
an agreement replayed from its entries (``*_of`` functions here: used for ``--as-of`` and by
verification) or from the read-model tables (:mod:`projections.queries`); both give the same
view for the same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.domain import Acted, Agreement
from ledger.values import at_text
from projections.budget import ZERO, BudgetView, LineRow, budget_from_lines
from projections.summary import summarise



def _date(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def _at(t: datetime | None) -> str | None:
    return None if t is None else at_text(t)


@dataclass(frozen=True)
class SignatoryView:
    """One appointment of a signatory."""

    name: str
    designation: str
    key_id: str
    seq: int
    at: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "designation": self.designation, "key_id": self.key_id,
                "seq": self.seq, "at": at_text(self.at)}


@dataclass(frozen=True)
class PartnerView:
    """A partner, its signatories and whether it has signed."""

    id: str
    name: str
    role: str
    lead: bool
    host: bool
    pool_manager: bool
    status: str
    signed: bool
    signatories: tuple[SignatoryView, ...]

    @property
    def signatory(self) -> SignatoryView:
        """The current signatory."""
        return self.signatories[-1]

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``id``, ``role``, ``signed`` and the rest."""
        return {"id": self.id, "name": self.name, "role": self.role, "lead": self.lead,
                "host": self.host, "pool_manager": self.pool_manager, "status": self.status,
                "signed": self.signed, "signatory": self.signatory.name,
                "designation": self.signatory.designation, "key_id": self.signatory.key_id,
                "signatories": [s.to_json() for s in self.signatories]}


@dataclass(frozen=True)
class SignatureView:
    """A partner's signature of one state of the agreement."""

    partner: str
    state: str
    key_id: str
    at: datetime
    recorded: datetime
    seq: int

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"partner": self.partner, "state": self.state, "key_id": self.key_id,
                "at": at_text(self.at), "recorded": at_text(self.recorded), "seq": self.seq}


@dataclass(frozen=True)
class VariationView:
    """A variation, who consented and who is still to."""

    id: str
    proposer: str
    reason: str
    changes: dict[str, Any]
    seq: int
    at: datetime
    consents: tuple[str, ...]
    waiting_for: tuple[str, ...]
    effective_seq: int | None
    effective_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "proposer": self.proposer, "reason": self.reason,
                "changes": self.changes, "seq": self.seq, "at": at_text(self.at),
                "consents": list(self.consents), "waiting_for": list(self.waiting_for),
                "effective": self.effective_seq is not None, "effective_seq": self.effective_seq,
                "effective_at": _at(self.effective_at)}


@dataclass(frozen=True)
class NoticeView:
    """A notice and its earliest effective date."""

    partner: str
    kind: str
    reason: str
    at: datetime
    seq: int
    effective_from: date
    done: bool

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"partner": self.partner, "kind": self.kind, "reason": self.reason,
                "at": at_text(self.at), "seq": self.seq,
                "effective_from": self.effective_from.isoformat(), "done": self.done}


@dataclass(frozen=True)
class StatusView:
    """An agreement as it stands on a date."""

    reference: str
    title: str
    basis: str
    flexibilities: tuple[str, ...]
    terms_hash: str
    agreed: date | None
    start: date
    end: date | None
    notice_months: int
    on_withdrawal: str
    state: str
    as_of: date
    entries: int
    state_digest: str
    executed_at: datetime | None
    terminated_at: datetime | None
    partners: tuple[PartnerView, ...]
    signatures: tuple[SignatureView, ...]
    variations: tuple[VariationView, ...]
    notices: tuple[NoticeView, ...]

    @property
    def pending_variations(self) -> tuple[VariationView, ...]:
        """Variations still waiting for consents."""
        return tuple(v for v in self.variations if v.effective_seq is None)

    def to_json(self) -> dict[str, Any]:
        """JSON form (docs/CLI.md): ``reference``, ``state``, ``partners`` and the rest."""
        return {
            "reference": self.reference, "title": self.title, "basis": self.basis,
            "flexibilities": list(self.flexibilities), "terms_hash": self.terms_hash,
            "agreed": _date(self.agreed), "start": self.start.isoformat(), "end": _date(self.end),
            "notice_months": self.notice_months, "on_withdrawal": self.on_withdrawal,
            "state": self.state, "as_of": self.as_of.isoformat(), "entries": self.entries,
            "state_digest": self.state_digest, "executed_at": _at(self.executed_at),
            "terminated_at": _at(self.terminated_at),
            "partners": [p.to_json() for p in self.partners],
            "signatures": [s.to_json() for s in self.signatures],
            "pending_variations": [v.to_json() for v in self.pending_variations],
            "variations": [v.to_json() for v in self.variations],
            "notices": [n.to_json() for n in self.notices],
        }


@dataclass(frozen=True)
class HistoryRow:
    """One entry of an agreement, as the timeline shows it."""

    seq: int
    action: str
    partner: str
    key_id: str
    at: datetime
    recorded: datetime
    summary: str
    entry_hash: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"seq": self.seq, "action": self.action, "partner": self.partner,
                "key_id": self.key_id, "at": at_text(self.at), "recorded": at_text(self.recorded),
                "summary": self.summary, "entry_hash": self.entry_hash}


# --- from an agreement -------------------------------------------------------------------------


def status_of(agreement: Agreement, day: date) -> StatusView:
    """The status view of an agreement (already cut to the entries wanted) on ``day``."""
    t = agreement.terms
    digest = agreement.state_digest()
    signed_state = agreement.executed_state or digest
    consented_in = {n.id for v in agreement.variations.values() if v.effective
                    for n in v.changes.add_partners}
    signers = set(agreement.signers_of(signed_state)) | consented_in
    partners = tuple(
        PartnerView(p.id, p.name, p.role, p.lead, p.host, p.pool_manager, p.status,
                    p.id in signers,
                    tuple(SignatoryView(s.name, s.designation, s.key_id, s.seq, s.at)
                          for s in p.signatories))
        for p in agreement.partners.values())
    variations = tuple(
        VariationView(v.id, v.proposer, v.reason, v.changes.to_json(), v.seq, v.at,
                      tuple(p for p, _ in v.consents),
                      () if v.effective else tuple(p for p in agreement.required_consents(v)
                                                   if not v.consented(p)),
                      v.effective_seq, v.effective_at)
        for v in agreement.variations.values())
    return StatusView(
        reference=agreement.reference, title=t.title, basis=t.basis,
        flexibilities=t.flexibilities, terms_hash=t.terms_hash, agreed=t.agreed, start=t.start,
        end=t.end, notice_months=t.notice_months, on_withdrawal=t.on_withdrawal,
        state=agreement.state_on(day), as_of=day, entries=agreement.version,
        state_digest=digest, executed_at=agreement.executed_at,
        terminated_at=agreement.terminated_at, partners=partners,
        signatures=tuple(SignatureView(r.partner, r.state, r.key_id, r.at, r.recorded, r.seq)
                         for r in agreement.signatures),
        variations=variations,
        notices=tuple(NoticeView(n.partner, n.kind, n.reason, n.at, n.seq, n.effective_from,
                                 n.done) for n in agreement.notices),
    )


def history_row(act: Acted) -> HistoryRow:
    """The timeline row of one entry."""
    s = act.entry.statement
    return HistoryRow(s.seq, s.action, s.partner, s.key, s.at, act.recorded, summarise(s),
                      act.entry.hash)


def history_of(agreement: Agreement) -> list[HistoryRow]:
    """Every entry of the agreement, oldest first."""
    return [history_row(act) for act in agreement.history]


def budget_of(agreement: Agreement) -> BudgetView:
    """The budget positions of an agreement."""
    return budget_from_lines(agreement.reference, (
        LineRow(line.partner, str(line.year), line.source, line.status, line.amount,
                agreement.paid.get(line.key, ZERO))
        for line in agreement.funding.values()))
