"""Verification of a ledger's entries, trusting nothing the database says about them.

For every agreement the stored entries are read back in order and checked from scratch: each
entry's canonical form, its place in the chain (``seq``/``prev``), that it was signed by the key
the partner held at that point, and every rule of the agreement replayed as when it was written
(:func:`check_agreement`, through the aggregate's own checks). Failures are collected, not
raised, so that an auditor sees every damaged agreement at once; :meth:`Report.raise_for_failures`
turns them into one error. This is the agreement half of the one verification pipeline: the
whole ledger is checked by :func:`projections.audit.verify_ledger` and a bundle by
:func:`ledger.bundle.verify_bundle`, both of which replay agreements through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, PersistenceError, StoredEvent

from ledger.domain import Agreement, agreement_id
from ledger.errors import LedgerError, VerificationFailed
from ledger.statement import Entry
from ledger.witness import Witnesses

Progress = Callable[[int], None]


class StoredLedger(Protocol):
    """What verification reads a ledger through (:class:`ledger.application.Ledger`)."""

    @property
    def origin(self) -> str: ...
    @property
    def recorder(self) -> ApplicationRecorder: ...
    def decode_state(self, row: StoredEvent) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Failure:
    """One thing that does not check out, named as precisely as the record allows."""

    what: str
    agreement: str | None = None
    seq: int | None = None
    log_index: int | None = None

    def line(self) -> str:
        """``log index 12, agreement salford-dat-2004, seq 4: signature does not verify``."""
        where = []
        if self.log_index is not None:
            where.append(f"log index {self.log_index}")
        if self.agreement is not None:
            where.append(f"agreement {self.agreement}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        return f"{', '.join(where)}: {self.what}" if where else self.what

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"log_index": self.log_index, "agreement": self.agreement, "seq": self.seq,
                "what": self.what}


@dataclass
class Report:
    """What a verification checked and what failed."""

    agreements: int = 0
    #: Entries that checked out (an agreement's are checked up to its first failure).
    entries: int = 0
    failures: list[Failure] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    #: The log as the entries give it, when the whole log was checked: its size and root,
    #: recomputed from the entries themselves (what a checkpoint may be signed over).
    log_size: int | None = None
    log_root: bytes | None = None
    #: Which keys each partner has held and holds now (who may cosign).
    witnesses: Witnesses = field(default_factory=Witnesses)
    #: Every entry read, whether it checked out or not, where that is known.
    read: int | None = None

    @property
    def ok(self) -> bool:
        """Whether everything checked out."""
        return not self.failures

    def verdict(self) -> str:
        """The outcome for people: "verified: 10 entries in 1 agreements", or on a failure how
        many of the entries read checked out ("4 of 10 entries"), never a count that reads
        as if only those exist."""
        if self.ok:
            return f"verified: {self.entries} entries in {self.agreements} agreements"
        if self.read is not None:
            return (f"verification FAILED: {self.entries} of {self.read} entries in "
                    f"{self.agreements} agreements checked out")
        return (f"verification FAILED: {self.entries} entries in {self.agreements} agreements "
                f"checked out before the failures")

    def raise_for_failures(self) -> None:
        """Raise :class:`VerificationFailed` naming the first failure, if any."""
        if self.failures:
            more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
            raise VerificationFailed(f"verification failed: {self.failures[0].line()}{more}")

    def to_json(self) -> dict[str, Any]:
        """JSON form (docs/CLI.md)."""
        return {"ok": self.ok, "agreements": self.agreements, "entries": self.entries,
                "checks": self.checks, "failures": [f.to_json() for f in self.failures]}


@dataclass(slots=True)
class RecordedEntry:
    """An entry's stored text with the time the ledger says it recorded it."""

    version: int
    topic: str
    text: str
    recorded: datetime
    #: The entry already read strictly from ``text``, where the caller has it.
    parsed: Entry | None = None


def topic_of(action: str) -> str:
    """The topic of the stored event that records an entry of ``action``."""
    if action == "draft":
        return Agreement.Drafted.TOPIC
    topic: str = getattr(Agreement.EVENTS[action], "TOPIC")  # noqa: B009 - typed as Event
    return topic


def check_agreement(records: Iterable[RecordedEntry], origin: str, uuid: UUID,
                    reference: str | None = None, *, start: Agreement | None = None
                    ) -> tuple[int, Failure | None, Agreement | None]:
    """Replay one agreement's stored entries, checking everything; stop at the first failure.

    Each entry is read strictly and checked against where it is stored (agreement, position,
    event type); :meth:`Agreement.replay` checks every rule. ``start`` is the agreement as its
    earlier entries made it, where these follow them. Returns the number of entries that
    checked out, the failure (if any) and the agreement as rebuilt from the entries that
    checked out.
    """
    at: dict[str, Any] = {"seq": None, "name": reference}

    def entries() -> Iterator[tuple[Entry, datetime]]:
        for record in records:
            at["seq"] = seq = record.version
            entry = record.parsed or Entry.parse(record.text)
            s = entry.statement
            at["name"] = at["name"] or s.agreement
            if agreement_id(s.agreement) != uuid:
                raise VerificationFailed(
                    f"entry names agreement {s.agreement!r} but is stored under another")
            if s.seq != seq:
                raise VerificationFailed(
                    f"entry says seq {s.seq} but is stored as entry {seq} (entries moved, "
                    f"deleted or inserted)")
            if record.topic and record.topic != topic_of(s.action):
                raise VerificationFailed(
                    f"entry is a {s.action!r} but is stored as a {record.topic!r} event: the "
                    f"store was altered")
            yield entry, record.recorded

    agreement: Agreement | None = start
    checked = 0
    try:
        for agreement in Agreement.replaying(entries(), origin, start=start):  # noqa: B007
            checked += 1
    except LedgerError as exc:
        return checked, Failure(exc.diagnostics(), at["name"], at["seq"]), agreement
    return checked, None, agreement


def stored_records(app: StoredLedger, uuid: UUID, after: int = 0
                   ) -> tuple[list[RecordedEntry], Failure | None]:
    """Read one agreement's events back as entries (those after the first ``after``);
    undecodable rows are a failure."""
    try:
        rows: list[StoredEvent] = list(app.recorder.select_events(uuid, gt=after or None))
    except PersistenceError as exc:
        return [], Failure(f"cannot read stored events: {exc}")
    records = []
    for row in rows:
        try:
            state = app.decode_state(row)
            records.append(RecordedEntry(row.originator_version, row.topic, state["entry"],
                                         state["timestamp"]))
        except Exception as exc:  # noqa: BLE001 - any decoding error is damage to report
            return records, Failure(f"stored event {row.originator_version} cannot be "
                                    f"decoded ({type(exc).__name__}); it was altered")
    return records, None


def drafted_agreements(app: StoredLedger, stop: int | None = None) -> dict[UUID, str | None]:
    """Every agreement drafted up to notification ``stop`` (all, without it), by id."""
    drafted: dict[UUID, str | None] = {}
    position = 1
    while True:
        rows = app.recorder.select_notifications(position, 5000, stop=stop,
                                                 topics=(Agreement.Drafted.TOPIC,))
        for row in rows:
            ident = row.originator_id
            drafted[ident if isinstance(ident, UUID) else UUID(ident)] = None
        if len(rows) < 5000:
            return drafted
        position = rows[-1].id + 1


def verify_agreements(app: StoredLedger, agreements: Iterable[tuple[UUID, str | None]],
                      progress: Progress | None = None,
                      visit: Callable[[Agreement, bool], None] | None = None) -> Report:
    """Check the given agreements entry by entry, each on its own: canonical form, chain,
    keys, signatures and every rule, replayed (:func:`check_agreement`).

    ``visit`` is shown each agreement as rebuilt from the entries that checked out, and whether
    all of them did (the read side compares its tables with whole ones). What the agreements
    say of their partners' keys goes into the report's :class:`~ledger.witness.Witnesses`.
    """
    from ledger.application import ENTRY_TOPICS  # noqa: PLC0415 - application imports us

    report = Report()
    origin = app.origin
    for uuid, ref in agreements:
        records, broken = stored_records(app, uuid)
        if broken is not None:
            report.failures.append(Failure(broken.what, ref, None))
        foreign = [r for r in records if r.topic not in ENTRY_TOPICS]
        if foreign:
            report.failures.append(Failure(f"unexpected event type {foreign[0].topic!r}",
                                           ref, foreign[0].version))
        checked, failure, agreement = check_agreement(records, origin, uuid, ref)
        report.agreements += 1
        report.entries += checked
        report.read = (report.read or 0) + len(records)
        if failure is not None:
            report.failures.append(failure)
        if agreement is not None:
            learn_witnesses(report.witnesses, agreement)
            if visit is not None:
                visit(agreement, failure is None)
        if progress is not None:
            progress(len(records))
        if not records and broken is None:
            report.failures.append(Failure("no entries stored", ref))
    return report


def learn_witnesses(witnesses: Witnesses, agreement: Agreement) -> None:
    """Add the keys each partner of ``agreement`` has held, and holds now."""
    for partner in agreement.partners.values():
        witnesses.learn(partner.id, frozenset(s.public_key for s in partner.signatories),
                        partner.current.public_key)


def agreement_at(app: StoredLedger, reference: str, version: int) -> Agreement | None:
    """The agreement after its first ``version`` entries, read afresh and checked; None if the
    store does not hold that many that check out."""
    uuid = agreement_id(reference)
    records, broken = stored_records(app, uuid)
    if broken is not None or len(records) < version:
        return None
    checked, failure, agreement = check_agreement(records[:version], app.origin, uuid,
                                                  reference)
    if failure is not None or checked != version:
        return None
    return agreement
