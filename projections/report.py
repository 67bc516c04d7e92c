"""The audit report of one agreement: everything its HTML page shows, as one frozen value.

:func:`build_report` gathers the agreement (now, or as it stood on a date), its partners and
signatories, who signed which state, every entry with its log index, variations, notices and
the budget per financial year, with the geometry of the budget chart worked out here so the page
needs no script. It also checks the record as it stands when the report is made: every entry of
the agreement (:func:`projections.audit.verify_ledger`), then the latest checkpoint's operator
signature, an inclusion proof of each of the agreement's entries in it and the cosignatures of
its partners. The page is only a rendering of :class:`ReportData`; nothing on it is worked out
by the template.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ledger import merkle
from ledger.application import Ledger
from ledger.domain import Agreement, signature_standing
from ledger.errors import LedgerError
from ledger.keys import key_id
from ledger.note import verify_cosignature, verify_note_signature
from ledger.values import parse_slug
from projections.asof import agreement_as_of
from projections.audit import verify_ledger
from projections.budget import ZERO, LineRow, Position
from projections.log import MerkleLog, StoredCheckpoint
from projections.models import ConsentRow, SignatoryRow
from projections.readmodels import ReadModels
from projections.rows import AgreementRows, rows_for
from projections.summary import pounds
from projections.views import (
    HistoryRow,
    NoticeView,
    PartnerView,
    StatusView,
    VariationView,
    budget_view,
    history_view,
    status_view,
)

Progress = Callable[[int], None]


# --- what the page shows --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureLine:
    """One signature: who signed which state, with which key, when, and where it is logged."""

    seq: int
    log_index: int | None
    partner: str
    partner_name: str
    signatory: str
    key_id: str
    state: str
    #: ``executed`` (the state every partner signed), ``current`` (the draft's current state,
    #: not yet signed by all) or ``superseded`` (a state changed since by a join or funding).
    standing: str
    at: datetime
    recorded: datetime


@dataclass(frozen=True)
class TimelineLine:
    """One entry of the agreement."""

    seq: int
    log_index: int | None
    action: str
    partner: str
    key_id: str
    at: datetime
    recorded: datetime
    summary: str
    entry_hash: str


@dataclass(frozen=True)
class ConsentLine:
    """One partner's consent to a variation (the proposer's is its proposal)."""

    partner: str
    partner_name: str
    seq: int
    log_index: int | None
    at: datetime | None


@dataclass(frozen=True)
class VariationLine:
    """A variation, what it changes, and every consent given to it."""

    id: str
    proposer: str
    reason: str
    changes: tuple[tuple[str, str], ...]
    seq: int
    at: datetime
    consents: tuple[ConsentLine, ...]
    waiting_for: tuple[str, ...]
    effective_seq: int | None
    effective_at: datetime | None
    #: pending, effective, lapsed, withdrawn, rejected or expired, and what ended it
    status: str = "pending"
    ended_by: str | None = None

    @property
    def effective(self) -> bool:
        """Whether every partner has consented."""
        return self.effective_seq is not None


@dataclass(frozen=True)
class NoticeLine:
    """A notice of withdrawal or termination and its earliest effective date."""

    partner: str
    partner_name: str
    kind: str
    reason: str
    at: datetime
    seq: int
    log_index: int | None
    effective_from: date
    done: bool


@dataclass(frozen=True)
class PartnerShare:
    """One partner's position in one financial year."""

    partner: str
    name: str
    position: Position
    share: Decimal


@dataclass(frozen=True)
class BudgetYear:
    """The pool of one financial year: per partner, the total, and the funding lines."""

    year: str
    total: Position
    partners: tuple[PartnerShare, ...]
    lines: tuple[LineRow, ...]


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: across in percent of the chart's width, down in pixels."""

    x: float
    y: float
    width: float
    height: float
    #: ``confirmed``, ``indicative`` or ``paid``: the bar's colour and legend entry.
    kind: str
    title: str


@dataclass(frozen=True)
class Label:
    """One text of the chart: ``x`` in percent of the chart's width, ``y`` in pixels."""

    x: float
    y: float
    text: str
    #: SVG ``text-anchor``: ``start``, ``middle`` or ``end``.
    anchor: str
    #: ``year``, ``partner``, ``amount`` or ``tick``: the text's style.
    kind: str


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart of each partner's confirmed and indicative funding (stacked)
    and what it has paid, per financial year, on one scale so that years compare.

    Across, everything is in percent of the chart's width, so the bars stretch with the page
    while the text keeps its size and stays legible on a phone; down, it is in pixels.
    """

    height: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    #: x (percent) of each vertical grid line, from ``grid_top`` to ``grid_bottom``.
    grid: tuple[float, ...]
    grid_top: float
    grid_bottom: float
    description: str


@dataclass(frozen=True)
class Cosigner:
    """A partner's cosignature of the checkpoint."""

    name: str
    #: True: its signature verifies under a key this agreement records for that partner;
    #: None: the witness is not a partner of this agreement (``ledger verify`` checks it).
    verified: bool | None
    timestamp: datetime | None


@dataclass(frozen=True)
class CheckpointSummary:
    """The checkpoint the agreement's entries were checked against."""

    origin: str
    size: int
    root: str
    operator: str
    operator_key_id: str
    note: str
    cosigners: tuple[Cosigner, ...]
    #: How many of the agreement's entries the checkpoint covers (each proven included).
    covered: int
    #: Entries recorded since the checkpoint, not yet covered by any.
    newer: int


@dataclass(frozen=True)
class Verification:
    """What was checked when the report was made, and what failed."""

    ok: bool
    #: Entries checked; fewer than ``recorded`` when checking stopped at a damaged entry.
    entries: int
    #: Entries the agreement holds now.
    recorded: int
    checks: tuple[str, ...]
    failures: tuple[str, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything the audit report of one agreement shows."""

    generated_at: datetime
    origin: str
    #: The ``--as-of`` date asked for, or None for the agreement as it stands.
    as_of: date | None
    agreement: StatusView
    partners: tuple[PartnerView, ...]
    signatures: tuple[SignatureLine, ...]
    timeline: tuple[TimelineLine, ...]
    variations: tuple[VariationLine, ...]
    notices: tuple[NoticeLine, ...]
    budget: tuple[BudgetYear, ...]
    chart: Chart
    verification: Verification
    checkpoint: CheckpointSummary | None

    def partner_name(self, partner: str) -> str:
        """A partner's name (its id where the agreement does not know it)."""
        return next((p.name for p in self.partners if p.id == partner), partner)


# --- building it ----------------------------------------------------------------------------------


def build_report(ledger: Ledger, reference: str, as_of: date | None = None,
                 now: datetime | None = None, progress: Progress | None = None) -> ReportData:
    """The report of agreement ``reference``, now or as it stood at the end of ``as_of``.

    The verification part always checks the record as it stands at ``now``.
    """
    parse_slug(reference, "agreement reference")
    generated = (now or datetime.now(UTC)).astimezone(UTC)
    models = ReadModels(ledger)
    try:
        agreement = agreement_as_of(ledger, reference, as_of)
        rows = rows_for(agreement)
        log = MerkleLog(models)
        log.catch_up()
        indexes = log.indexes(reference)
        latest = log.latest_checkpoint()
        checked = verify_ledger(ledger, reference, progress)
        checks, failures = list(checked.checks), [f.line() for f in checked.failures]
        current = ledger.agreement(reference)
        checkpoint = None
        if latest is not None:
            checkpoint = _check_checkpoint(ledger, log, latest, current, indexes, checks,
                                           failures)
    finally:
        models.close()
    status = status_view(rows, as_of or generated.date())
    names = {p.id: p.name for p in status.partners}
    budget = _budget(rows, names)
    history = history_view(agreement)
    return ReportData(
        generated_at=generated,
        origin=ledger.identity.origin,
        as_of=as_of,
        agreement=status,
        partners=status.partners,
        signatures=_signatures(status, rows, indexes, names),
        timeline=tuple(TimelineLine(h.seq, indexes.get(h.seq), h.action, h.partner, h.key_id,
                                    h.at, h.recorded, h.summary, h.entry_hash)
                       for h in history),
        variations=_variations(status.variations, rows, history, indexes, names),
        notices=_notices(status.notices, indexes, names),
        budget=budget,
        chart=budget_chart(budget),
        verification=Verification(not failures, checked.entries, current.version,
                                  tuple(checks), tuple(failures)),
        checkpoint=checkpoint,
    )


def _signatures(status: StatusView, rows: AgreementRows, indexes: dict[int, int],
                names: dict[str, str]) -> tuple[SignatureLine, ...]:
    # The signatory is whoever held the signing key then: keys are never reused between
    # appointments, so the key id names the appointment.
    holders = {(s["partner"], s["key_id"]): f"{s['name']}, {s['designation']}"
               for s in rows[SignatoryRow]}
    executed = rows.agreement["executed_state"]
    return tuple(SignatureLine(s.seq, indexes.get(s.seq), s.partner,
                               names.get(s.partner, s.partner),
                               holders.get((s.partner, s.key_id), "unknown signatory"),
                               s.key_id, s.state,
                               signature_standing(s.state, executed, status.state_digest),
                               s.at, s.recorded)
                 for s in status.signatures)


def _change_text(name: str, value: Any) -> str:
    if name == "funding":
        return "; ".join(f"{f.get('partner', '')} {f['year']} {f['source']}: "
                         f"{pounds(f['amount'])} {f['status']}" for f in value)
    if name == "add_partners":
        return "; ".join(f"{p['id']} ({p.get('name', '')})" for p in value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def _variations(variations: Sequence[VariationView], rows: AgreementRows,
                history: Sequence[HistoryRow], indexes: dict[int, int], names: dict[str, str]
                ) -> tuple[VariationLine, ...]:
    when = {h.seq: h.at for h in history}
    consents: dict[str, list[dict[str, Any]]] = {}
    for c in rows[ConsentRow]:
        consents.setdefault(c["variation"], []).append(c)
    lines = []
    for v in variations:
        given = tuple(
            ConsentLine(c["partner"], names.get(c["partner"], c["partner"]), c["seq"],
                        indexes.get(c["seq"]),
                        when.get(c["seq"]))
            for c in sorted(consents.get(v.id, []), key=lambda c: c["seq"]))
        lines.append(VariationLine(
            v.id, v.proposer, v.reason,
            tuple((name, _change_text(name, value)) for name, value in v.changes.items()),
            v.seq, v.at, given, v.waiting_for, v.effective_seq, v.effective_at, v.status,
            v.ended_by))
    return tuple(lines)


def _notices(notices: Sequence[NoticeView], indexes: dict[int, int],
             names: dict[str, str]) -> tuple[NoticeLine, ...]:
    return tuple(NoticeLine(n.partner, names.get(n.partner, n.partner), n.kind, n.reason, n.at,
                            n.seq, indexes.get(n.seq), n.effective_from, n.done)
                 for n in notices)


def _budget(rows: AgreementRows, names: dict[str, str]) -> tuple[BudgetYear, ...]:
    return tuple(
        BudgetYear(y.year, y.position,
                   tuple(PartnerShare(s.name, names.get(s.name, s.name), s.position, s.share)
                         for s in y.partners),
                   y.lines)
        for y in budget_view(rows).years)


# --- checking against the checkpoint --------------------------------------------------------------


def _check_checkpoint(ledger: Ledger, log: MerkleLog, latest: StoredCheckpoint,
                      agreement: Agreement, indexes: dict[int, int], checks: list[str],
                      failures: list[str]) -> CheckpointSummary:
    """Check the operator's signature, each entry's inclusion and the partners' cosignatures;
    add what was checked and what failed to ``checks`` and ``failures``."""
    identity = ledger.identity
    cp, reference = latest.checkpoint, agreement.reference
    where = f"checkpoint of size {cp.size}"
    try:
        verify_note_signature(latest.note, identity.operator, identity.operator_public_key)
    except LedgerError as exc:
        failures.append(f"{where}: {exc.diagnostics()}")
    covered = newer = 0
    proven: dict[int, int] = {}
    for act in agreement.history:
        seq = act.entry.statement.seq
        index = indexes.get(seq)
        if index is None:
            failures.append(f"agreement {reference}, seq {seq}: the entry is not in the log")
        elif index >= cp.size:
            newer += 1
        else:
            proven[seq] = index
    try:
        # One read of the tree for every proof: a consistent tree, and one connection
        # however many entries the agreement has.
        proofs = log.inclusions(proven.values(), cp.size)
    except LedgerError as exc:
        failures.append(f"the {where}: no inclusion proofs: {exc.diagnostics()}")
        proofs = {}
    for act in agreement.history:
        seq = act.entry.statement.seq
        if seq not in proven or not proofs:
            continue
        index = proven[seq]
        try:
            merkle.verify_inclusion(merkle.leaf_hash(act.entry.text.encode()), index,
                                    cp.size, proofs[index], cp.root)
        except LedgerError as exc:
            failures.append(f"log index {index}, agreement {reference}, seq {seq}: not "
                            f"proven included in the {where}: {exc.diagnostics()}")
            continue
        covered += 1
    keys = {p.id: [s.public_key for s in p.signatories] for p in agreement.partners.values()}
    cosigners = [_cosigner(latest, name, keys.get(name), failures) for name in latest.cosigners]
    checks.append(f"the {where} carries the operator's valid signature")
    checks.append(f"an inclusion proof in the {where} of each of the agreement's {covered} "
                  f"entries it covers")
    if any(c.verified is not None for c in cosigners):
        checks.append("the cosignatures of the agreement's partners, under their keys")
    return CheckpointSummary(
        cp.origin, cp.size, base64.b64encode(cp.root).decode(), identity.operator,
        key_id(identity.operator_public_key), latest.note.format(), tuple(cosigners), covered,
        newer)


def _cosigner(latest: StoredCheckpoint, name: str, keys: Sequence[bytes] | None,
              failures: list[str]) -> Cosigner:
    if not keys:
        return Cosigner(name, None, None)
    problem = ""
    for public in keys:
        try:
            stamp = verify_cosignature(latest.note, name, public)
        except LedgerError as exc:
            problem = exc.diagnostics()
            continue
        return Cosigner(name, True, datetime.fromtimestamp(stamp, UTC))
    failures.append(f"checkpoint of size {latest.checkpoint.size}: cosignature by {name}: "
                    f"{problem}")
    return Cosigner(name, False, None)


# --- the chart ------------------------------------------------------------------------------------

AXIS = 22.0          # tick labels above the first year
YEAR_ROW = 30.0      # a year's heading
NAME_ROW = 19.0      # a partner's name
BAR = 16.0           # confirmed and indicative, stacked
PAID_GAP = 2.0
PAID = 7.0           # what has been paid, under the commitment
AMOUNT_ROW = 17.0    # the partner's figures, under its bars
PARTNER_GAP = 10.0
NAME_CHARS = 44      # a longer name is shortened in the chart (the tables give it whole)


def _nice_step(top: Decimal) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving at most five intervals."""
    step = Decimal(1)
    while top / step > 5:
        for factor in (2, Decimal("2.5"), 5):
            if top / (step * factor) <= 5:
                return step * factor
        step *= 10
    return step


def _short_money(amount: Decimal) -> str:
    for size, unit in ((Decimal(1_000_000), "m"), (Decimal(1_000), "k")):
        if amount >= size:
            return f"£{(amount / size).normalize():f}{unit}"
    return f"£{amount.normalize():f}"


def _shorten(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[:NAME_CHARS - 1] + "\u2026"


def budget_chart(years: Sequence[BudgetYear]) -> Chart:
    """The chart's geometry: one row per partner and year, bars on one shared scale."""
    top = max([max(s.position.total, s.position.paid) for y in years for s in y.partners]
              or [ZERO])
    step = _nice_step(top) if top > 0 else Decimal(1)
    ticks = max(1, math.ceil(top / step))
    scale_top = step * ticks

    def x_of(amount: Decimal) -> float:
        return round(float(amount * 100 / scale_top), 2)

    bars: list[Bar] = []
    labels = [Label(x_of(step * i), AXIS - 9, _short_money(step * i),
                    "start" if i == 0 else "end" if i == ticks else "middle", "tick")
              for i in range(ticks + 1)]
    y = AXIS
    for year in years:
        labels.append(Label(0, y + 21, f"{year.year} \u00b7 pool {pounds(year.total.total)}",
                            "start", "year"))
        y += YEAR_ROW
        for s in year.partners:
            p = s.position
            labels.append(Label(0, y + 14, _shorten(s.name), "start", "partner"))
            y += NAME_ROW
            left = 0.0
            for kind, amount, upto in (("confirmed", p.confirmed, p.confirmed),
                                       ("indicative", p.indicative, p.total)):
                if amount > 0:
                    right = x_of(upto)
                    bars.append(Bar(left, y, round(right - left, 2), BAR, kind,
                                    f"{s.name} {year.year} {kind}: {pounds(amount)}"))
                    left = right
            if p.paid > 0:
                bars.append(Bar(0, y + BAR + PAID_GAP, x_of(p.paid), PAID, "paid",
                                f"{s.name} {year.year} paid: {pounds(p.paid)}"))
            y += BAR + PAID_GAP + PAID
            figures = f"{pounds(p.confirmed)} confirmed"
            if p.indicative:
                figures += f" \u00b7 {pounds(p.indicative)} indicative"
            if p.tba:
                figures += f" \u00b7 {p.tba} TBA"
            labels.append(Label(0, y + 13, f"{figures} \u00b7 {pounds(p.paid)} paid", "start",
                                "amount"))
            y += AMOUNT_ROW + PARTNER_GAP
    description = "; ".join(
        f"{year.year}: " + ", ".join(
            f"{s.name} confirmed {pounds(s.position.confirmed)}, indicative "
            f"{pounds(s.position.indicative)}, paid {pounds(s.position.paid)}"
            for s in year.partners)
        for year in years) or "no funding declared"
    return Chart(round(y, 1), tuple(bars), tuple(labels),
                 tuple(x_of(step * i) for i in range(ticks + 1)), AXIS - 4, round(y, 1),
                 description)
