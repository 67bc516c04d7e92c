"""What the read commands show: status, signatures, history and budget of one agreement.

The views are plain frozen dataclasses with a documented ``to_json``. They are built either from
an agreement replayed from its entries (``*_of`` functions here: used for ``--as-of`` and by
verification) or from the rows of the read-model tables (``*_view`` functions, given the rows
:mod:`projections.readmodels` reads); both give the same view for the same history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ledger.domain import Agreement, lifecycle_state, variation_status
from ledger.values import at_text
from projections.budget import BudgetView, LineRow, budget_from_lines
from projections.rows import AgreementRows, rows_for
from projections.summary import summarise
from projections.tables import (
    CONSENTS,
    FUNDING_LINES,
    NOTICES,
    PARTNERS,
    SIGNATORIES,
    SIGNATURES,
    VARIATIONS,
)


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
    #: pending, effective, lapsed, withdrawn, rejected or expired, on the view's day
    status: str = "pending"
    proposal: str = ""
    expires: date | None = None
    ended_seq: int | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "proposer": self.proposer, "reason": self.reason,
                "changes": self.changes, "seq": self.seq, "at": at_text(self.at),
                "consents": list(self.consents), "waiting_for": list(self.waiting_for),
                "effective": self.effective_seq is not None, "effective_seq": self.effective_seq,
                "effective_at": _at(self.effective_at), "status": self.status,
                "proposal": self.proposal, "expires": _date(self.expires),
                "ended_seq": self.ended_seq, "ended_at": _at(self.ended_at),
                "ended_by": self.ended_by}


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
    #: The day its period runs from: its own, or the day it was recorded if that was late.
    runs_from: date | None = None
    acknowledged: tuple[str, ...] = ()
    withdrawn: bool = False

    @property
    def backdated(self) -> bool:
        """Recorded late: its period runs from when it was recorded, not from its date."""
        return self.runs_from is not None and self.runs_from != self.at.date()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"partner": self.partner, "kind": self.kind, "reason": self.reason,
                "at": at_text(self.at), "seq": self.seq,
                "effective_from": self.effective_from.isoformat(), "done": self.done,
                "runs_from": _date(self.runs_from), "acknowledged": list(self.acknowledged),
                "withdrawn": self.withdrawn}


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
        return tuple(v for v in self.variations if v.status == "pending")

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

    def signatures_json(self) -> dict[str, Any]:
        """The JSON of ``ledger signatures`` (docs/CLI.md)."""
        return {"reference": self.reference, "state": self.state,
                "state_digest": self.state_digest,
                "signatures": [s.to_json() for s in self.signatures],
                "partners": [{"id": p.id, "signed": p.signed} for p in self.partners]}


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


# --- from rows (stored, or computed from a replayed agreement) --------------------------------


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _when(text: str) -> datetime:
    moment = _time(text)
    assert moment is not None
    return moment


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def status_view(rows: AgreementRows, day: date) -> StatusView:
    """The status of an agreement on ``day`` from its rows."""
    a = rows.agreement
    signatories: dict[str, list[SignatoryView]] = {}
    for s in rows[SIGNATORIES]:
        signatories.setdefault(s["partner"], []).append(
            SignatoryView(s["name"], s["designation"], s["key_id"], s["seq"], _when(s["at"])))
    partners = tuple(
        PartnerView(p["partner"], p["name"], p["role"], p["lead"], p["host"], p["pool_manager"],
                    p["status"], p["signed"],
                    tuple(sorted(signatories[p["partner"]], key=lambda s: s.seq)))
        for p in sorted(rows[PARTNERS], key=lambda p: p["position"]))
    consents: dict[str, list[tuple[int, str]]] = {}
    for c in rows[CONSENTS]:
        consents.setdefault(c["variation"], []).append((c["seq"], c["partner"]))
    variations = tuple(
        VariationView(v["variation"], v["proposer"], v["reason"], json.loads(v["changes"]),
                      v["seq"], _when(v["at"]),
                      tuple(p for _, p in sorted(consents.get(v["variation"], []))),
                      tuple(json.loads(v["waiting_for"])), v["effective_seq"],
                      _time(v["effective_at"]),
                      variation_status(v["effective_seq"] is not None, v["ended"],
                                       _day(v["expires"]), day),
                      v["proposal"], _day(v["expires"]), v["ended_seq"], _time(v["ended_at"]),
                      v["ended_by"])
        for v in sorted(rows[VARIATIONS], key=lambda v: v["seq"]))
    start = _day(a["start"])
    assert start is not None
    end = _day(a["end"])
    return StatusView(
        reference=a["reference"], title=a["title"], basis=a["basis"],
        flexibilities=tuple(json.loads(a["flexibilities"])), terms_hash=a["terms_hash"],
        agreed=_day(a["agreed"]), start=start, end=end, notice_months=a["notice_months"],
        on_withdrawal=a["on_withdrawal"],
        state=lifecycle_state(day, terminated=a["terminated_seq"] is not None,
                              executed=a["executed_seq"] is not None, start=start, end=end,
                              notice_pending=a["pending_notices"] > 0),
        as_of=day, entries=a["entries"], state_digest=a["state_digest"],
        executed_at=_time(a["executed_at"]), terminated_at=_time(a["terminated_at"]),
        partners=partners,
        signatures=tuple(SignatureView(s["partner"], s["state"], s["key_id"], _when(s["at"]),
                                       _when(s["recorded"]), s["seq"])
                         for s in sorted(rows[SIGNATURES], key=lambda s: s["seq"])),
        variations=variations,
        notices=tuple(NoticeView(n["partner"], n["kind"], n["reason"], _when(n["at"]), n["seq"],
                                 date.fromisoformat(n["effective_from"]), n["done"],
                                 _day(n["runs_from"]), tuple(json.loads(n["acknowledged"])),
                                 n["withdrawn"])
                      for n in sorted(rows[NOTICES], key=lambda n: n["seq"])),
    )


@dataclass(frozen=True)
class Task:
    """Something waiting for a partner on one agreement."""

    reference: str
    kind: str  # sign | consent | acknowledge | notice | end | terminate
    what: str
    due: date | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"reference": self.reference, "kind": self.kind, "what": self.what,
                "due": _date(self.due)}


def agreement_list(rows: list[dict[str, Any]], today: date, state: str | None = None,
                   before: date | None = None) -> list[dict[str, Any]]:
    """What ``ledger list --json`` lists of each agreement's row (docs/CLI.md): its state
    ``today``, only those in ``state`` and ending before ``before`` where given."""
    listed = [{"reference": r["reference"], "title": r["title"],
               "state": lifecycle_state(
                   today, terminated=r["terminated_seq"] is not None,
                   executed=r["executed_seq"] is not None, start=date.fromisoformat(r["start"]),
                   end=None if r["end"] is None else date.fromisoformat(r["end"]),
                   notice_pending=r["pending_notices"] > 0),
               "entries": r["entries"], "start": r["start"], "end": r["end"]} for r in rows]
    return [r for r in listed
            if (state is None or r["state"] == state)
            and (before is None or (r["end"] is not None
                                    and date.fromisoformat(str(r["end"])) < before))]


def todo_view(partner: str, agreements: list[AgreementRows], day: date,
              within: int = 90) -> list[Task]:
    """What is waiting for ``partner`` across every agreement on ``day``: states to sign,
    variations awaiting its consent, notices to acknowledge or running, and end dates within
    ``within`` days; soonest first."""
    horizon = day.toordinal() + within
    tasks: list[Task] = []
    for rows in agreements:
        view = status_view(rows, day)
        ref = view.reference
        me = next((p for p in view.partners if p.id == partner), None)
        for v in view.pending_variations:
            if partner in v.waiting_for:
                last = f"; lapses after {v.expires}" if v.expires else ""
                tasks.append(Task(ref, "consent", f"variation {v.id} proposed by {v.proposer} "
                                                  f"awaits your consent: {v.reason}{last}",
                                  v.expires))
        if me is None or me.status != "active" or view.state == "terminated":
            continue
        if view.state == "draft" and not me.signed:
            tasks.append(Task(ref, "sign", f"sign the agreement as it stands (state "
                                           f"{view.state_digest[:16]})"))
        for n in view.notices:
            if n.done:
                continue
            if n.backdated and n.partner != partner and partner not in n.acknowledged:
                tasks.append(Task(ref, "acknowledge", f"the notice {n.partner} dated "
                                  f"{n.at.date()} (entry {n.seq}) was recorded late; it runs "
                                  f"from {n.runs_from} until you acknowledge its date",
                                  n.effective_from))
            tasks.append(Task(ref, "notice", f"notice of {n.kind} by {n.partner} takes effect "
                                             f"on {n.effective_from}", n.effective_from))
        if view.state == "expired":
            tasks.append(Task(ref, "terminate", f"its end date {view.end} has passed: record "
                                                f"its termination (ledger terminate)", view.end))
        elif view.end is not None and day <= view.end and view.end.toordinal() <= horizon:
            tasks.append(Task(ref, "end", f"ends on {view.end}: renew it by a variation, or "
                                          f"let it end", view.end))
    return sorted(tasks, key=lambda t: (t.due or date.max, t.reference, t.kind))


def history_json(reference: str, entries: list[HistoryRow]) -> dict[str, Any]:
    """The JSON of ``ledger history`` (docs/CLI.md)."""
    return {"reference": reference, "entries": [r.to_json() for r in entries]}


def history_view(agreement: Agreement) -> list[HistoryRow]:
    """Every entry of the agreement, oldest first, as its own entries say."""
    return [HistoryRow(st.seq, st.action, st.partner, st.key, st.at.astimezone(UTC),
                       act.recorded.astimezone(UTC), summarise(st), act.entry.hash)
            for act in agreement.history for st in (act.entry.statement,)]


def budget_view(rows: AgreementRows) -> BudgetView:
    """The budget positions of the agreement."""
    return budget_from_lines(rows.reference, (
        LineRow(f["partner"], f["year"], f["source"], f["status"], f["amount"], f["paid"],
                f["released"])
        for f in rows[FUNDING_LINES]))


def status_of(agreement: Agreement, day: date) -> StatusView:
    """The status view of an agreement replayed from its entries."""
    return status_view(rows_for(agreement), day)


def budget_of(agreement: Agreement) -> BudgetView:
    """The budget view of an agreement replayed from its entries."""
    return budget_view(rows_for(agreement))
