"""The read-model rows of one agreement, computed from the agreement replayed from its entries.

:func:`rows_for` is the only place that decides what the tables hold. Catch-up, rebuild and the
``--as-of`` views all go through it, and ``verify`` compares the stored rows with it, so the
tables can never drift from what the entries say without verification noticing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledger.canonical import canonical
from ledger.values import at_text
from projections.tables import (
    AGREEMENTS,
    CONSENTS,
    FUNDING_LINES,
    NOTICES,
    PARTNERS,
    PAYMENTS,
    SIGNATORIES,
    SIGNATURES,
    VARIATIONS,
)

if TYPE_CHECKING:
    from ledger.domain import Agreement
    from projections.models import Base

Row = dict[str, Any]


def recorded_text(moment: datetime) -> str:
    """The ledger's recording time, kept to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else at_text(moment)


@dataclass
class AgreementRows:
    """Every row of every table for one agreement, by table name (:mod:`projections.tables`).

    A table is named by its name or by its model class (:mod:`projections.models`): the views
    use the names, and so never load SQLAlchemy; the read models use their classes.
    """

    reference: str
    tables: dict[str, list[Row]] = field(default_factory=dict)

    def __getitem__(self, table: str | type[Base]) -> list[Row]:
        name = table if isinstance(table, str) else table.__tablename__
        return self.tables.setdefault(name, [])

    @property
    def agreement(self) -> Row:
        """The one row of the ``agreements`` table."""
        return self[AGREEMENTS][0]


def rows_for(agreement: Agreement) -> AgreementRows:
    """What the read models hold for ``agreement``."""
    ref = agreement.reference
    t = agreement.terms
    rows = AgreementRows(ref)
    rows[AGREEMENTS].append({
        "reference": ref, "title": t.title, "basis": t.basis,
        "flexibilities": json.dumps(list(t.flexibilities)), "terms_hash": t.terms_hash,
        "agreed": None if t.agreed is None else t.agreed.isoformat(),
        "start": t.start.isoformat(), "end": None if t.end is None else t.end.isoformat(),
        "notice_months": t.notice_months, "on_withdrawal": t.on_withdrawal,
        "entries": agreement.version, "head": agreement.head, "last_at": at_text(agreement.last_at),
        "state_digest": agreement.state_digest(), "executed_seq": agreement.executed_seq,
        "executed_at": _at(agreement.executed_at), "executed_state": agreement.executed_state,
        "terminated_seq": agreement.terminated_seq, "terminated_at": _at(agreement.terminated_at),
        "terminated_by": agreement.terminated_by,
        "pending_notices": len(agreement.pending_notices()),
    })
    signed = agreement.counted_signers()
    for position, p in enumerate(agreement.partners.values()):
        rows[PARTNERS].append({
            "reference": ref, "partner": p.id, "position": position, "name": p.name,
            "role": p.role, "lead": p.lead, "host": p.host, "pool_manager": p.pool_manager,
            "status": p.status, "signed": p.id in signed, "joined_seq": p.joined_seq,
            "left_seq": p.left_seq, "left_at": _at(p.left_at)})
        for s in p.signatories:
            rows[SIGNATORIES].append({
                "reference": ref, "partner": p.id, "seq": s.seq, "name": s.name,
                "designation": s.designation, "key_id": s.key_id, "public_key": s.public_key,
                "at": at_text(s.at)})
    for r in agreement.signatures:
        rows[SIGNATURES].append({
            "reference": ref, "seq": r.seq, "partner": r.partner, "state": r.state,
            "key_id": r.key_id, "at": at_text(r.at), "recorded": recorded_text(r.recorded)})
    for line in agreement.funding.values():
        rows[FUNDING_LINES].append({
            "reference": ref, "year": str(line.year), "partner": line.partner,
            "source": line.source, "status": line.status, "amount": line.amount,
            "paid": agreement.paid.get(line.key, Decimal("0.00")),
            "released": agreement.released(line)})
    for pay in agreement.payments:
        rows[PAYMENTS].append({
            "reference": ref, "seq": pay.seq, "partner": pay.partner, "year": str(pay.year),
            "source": pay.source, "amount": pay.amount, "at": at_text(pay.at),
            "payment_ref": pay.reference, "reverses": None})
        if pay.reversed_seq is not None:
            reversal = agreement.history[pay.reversed_seq - 1].entry.statement
            rows[PAYMENTS].append({
                "reference": ref, "seq": pay.reversed_seq, "partner": reversal.partner,
                "year": str(pay.year), "source": pay.source, "amount": -pay.amount,
                "at": at_text(reversal.at), "payment_ref": pay.reference, "reverses": pay.seq})
    for v in agreement.variations.values():
        waiting = [] if not v.open else [p for p in agreement.required_consents(v)
                                         if not v.consented(p)]
        rows[VARIATIONS].append({
            "reference": ref, "variation": v.id, "proposer": v.proposer, "reason": v.reason,
            "changes": canonical(v.changes.to_json()).decode(), "seq": v.seq, "at": at_text(v.at),
            "waiting_for": json.dumps(waiting), "effective_seq": v.effective_seq,
            "effective_at": _at(v.effective_at), "proposal": v.proposal,
            "expires": None if v.expires is None else v.expires.isoformat(),
            "ended": v.ended, "ended_seq": v.ended_seq, "ended_at": _at(v.ended_at),
            "ended_by": v.ended_by})
        for partner, seq in v.consents:
            rows[CONSENTS].append({"reference": ref, "variation": v.id, "partner": partner,
                                     "seq": seq})
    for n in agreement.notices:
        rows[NOTICES].append({
            "reference": ref, "seq": n.seq, "partner": n.partner, "kind": n.kind,
            "reason": n.reason, "at": at_text(n.at),
            "effective_from": n.effective_from.isoformat(), "done": n.done,
            "runs_from": (n.runs_from or n.at.date()).isoformat(),
            "acknowledged": json.dumps(list(n.acknowledged)), "withdrawn": n.withdrawn})
    return rows


def primary_key(table: type[Base], row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The primary-key values of a row, in column order."""
    t: Any = table.__table__
    return tuple(row[c.name] for c in t.primary_key.columns)
