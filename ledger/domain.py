"""The Agreement aggregate: every rule of DESIGN section 2, checked before an event exists.

An agreement's history is a chain of signed entries. :meth:`Agreement.draft` starts one and
:meth:`Agreement.record` appends the next; both check, in this order, that the entry belongs
here (origin, agreement, ``seq``, ``prev``), that it was signed by the acting partner's current
key, that its time is plausible, and that the act is allowed to that partner in the agreement's
present state. Only then is an event triggered. The event methods (``_apply_*``) change state
and are replayed on every load, so they never check or raise.

The same code replays a history for verification: :func:`replay` rebuilds an agreement from its
entries alone, checking every rule again, with no database.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from eventsourcing.domain import Aggregate

from ledger import bodies
from ledger.bodies import (
    AppointBody,
    Changes,
    ContributeBody,
    DraftBody,
    FundingLine,
    NoticeBody,
    PartnerDetails,
    Terms,
    VaryBody,
)
from ledger.canonical import ZERO_HASH, canonical, sha256_hex
from ledger.errors import AlreadyRecorded, NotFound, RuleViolation, SignatureInvalid
from ledger.keys import key_id
from ledger.statement import FORMAT_VERSION, Entry, Statement
from ledger.values import FinancialYear, add_months, money_text

#: UUIDs of aggregates are derived from their reference, so that "the agreement called X" is
#: one row key everywhere and a second draft of the same reference conflicts in the store.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:agreement-ledger")

#: How far ahead of the ledger's clock a partner's stated time may be (clock drift between the
#: partner's machine and the server); anything later is "in the future" and refused.
CLOCK_TOLERANCE = timedelta(minutes=1)

#: How long before the ledger records it a notice may be dated and still run from its own date.
#: Backdating exists to record paper history; a notice dated earlier than this runs from the day
#: it was recorded, unless every other partner acknowledges the earlier date (``acknowledge``).
BACKDATING_GRACE = timedelta(days=7)

#: The flexibilities of s.31 Health Act 1999 and s.75 NHS Act 2006. Any other is named with the
#: prefix ``other-`` (e.g. ``other-joint-equipment-store``), so that it is plainly not one of them.
STATUTORY_FLEXIBILITIES = ("integrated-provision", "lead-commissioning", "pooled-budget")
OTHER_FLEXIBILITY = "other-"

#: How long after it is proposed a succession or key recovery may take effect, at the
#: earliest: time for the partner it concerns, if it is still there and holds its key, to
#: reject it. Without it, the other partners could take a live partner's place or key.
TAKEOVER_WAIT = timedelta(days=28)

#: How many financial years after the one it starts in an open-ended agreement may fund.
OPEN_ENDED_YEARS = 25
#: How many financial years after the one it ends in an agreement may plan funding for: one
#: renewed year by year (Southwark's) sets out the years it expects to be renewed for.
RENEWAL_YEARS = 3

DRAFT, SIGNED, IN_FORCE, NOTICE_GIVEN, TERMINATED, EXPIRED = (
    "draft", "signed", "in force", "notice given", "terminated", "expired")
STATES = (DRAFT, SIGNED, IN_FORCE, NOTICE_GIVEN, TERMINATED, EXPIRED)


def lifecycle_state(day: date, *, terminated: bool, executed: bool, start: date,
                    end: date | None, notice_pending: bool) -> str:
    """The state of an agreement on ``day``: what its entries say, and where ``day`` falls
    against its start and end dates."""
    if terminated:
        return TERMINATED
    if not executed:
        return DRAFT
    if end is not None and day > end:
        return EXPIRED
    if notice_pending:
        return NOTICE_GIVEN
    if day >= start:
        return IN_FORCE
    return SIGNED


def variation_status(effective: bool, ended: str | None, expires: date | None,
                     day: date) -> str:
    """Where a variation stands on ``day``: ``effective``; ended without taking effect
    (``lapsed``, ``withdrawn``, ``rejected``); ``expired`` once its last day for consents has
    passed; else ``pending``."""
    if effective:
        return "effective"
    if ended is not None:
        return ended
    if expires is not None and day > expires:
        return "expired"
    return "pending"


@functools.lru_cache(maxsize=65536)
def agreement_id(reference: str) -> uuid.UUID:
    """The aggregate id of the agreement with this reference."""
    return uuid.uuid5(NAMESPACE, f"agreement:{reference}")


# --- state held by an agreement ----------------------------------------------------------------


@dataclass(frozen=True)
class Signatory:
    """One appointment of a signatory for a partner, with the entry that made it."""

    name: str
    designation: str
    key_id: str
    public_key: bytes
    seq: int
    at: datetime


@dataclass(frozen=True)
class Partner:
    """A partner of the agreement as it stands."""

    id: str
    name: str
    role: str
    lead: bool
    host: bool
    pool_manager: bool
    signatories: tuple[Signatory, ...]
    status: str = "active"  # active | withdrawn | removed
    joined_seq: int = 0
    left_seq: int | None = None
    #: When the partner left (the date of its withdrawal, or of the variation removing it).
    left_at: datetime | None = None

    @property
    def current(self) -> Signatory:
        """The signatory (and key) that acts for the partner now."""
        return self.signatories[-1]

    @property
    def active(self) -> bool:
        """Still a partner (not withdrawn or removed)."""
        return self.status == "active"


@dataclass(frozen=True)
class SignatureRecord:
    """A partner's signature of one state of the agreement."""

    partner: str
    state: str
    key_id: str
    at: datetime
    recorded: datetime
    seq: int


@dataclass(frozen=True)
class Variation:
    """A proposed variation and the consents it has gathered."""

    id: str
    proposer: str
    reason: str
    changes: Changes
    seq: int
    at: datetime
    #: partner id -> seq of the entry that consented (the proposer consents by proposing).
    consents: tuple[tuple[str, int], ...]
    effective_seq: int | None = None
    effective_at: datetime | None = None
    #: The hash of the entry that proposed it: what a consent binds to.
    proposal: str = ""
    #: The last day it may gather consents, if the proposer set one.
    expires: date | None = None
    #: Whether another variation taking effect first makes it lapse (proposed in a version 2
    #: statement: built on the agreement as it then stood).
    lapses: bool = False
    #: How it ended without taking effect: "lapsed", "withdrawn" or "rejected"; when; and by
    #: what (the variation that took effect first, or the partner).
    ended: str | None = None
    ended_seq: int | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    #: When the ledger recorded the proposal (a takeover waits from it: TAKEOVER_WAIT).
    recorded: datetime | None = None

    @property
    def takes_over(self) -> bool:
        """Whether it succeeds a partner or recovers a partner's key."""
        return bool(self.changes.successions or self.changes.recoveries)

    @property
    def effective(self) -> bool:
        """Whether every partner has consented and the changes are in effect."""
        return self.effective_seq is not None

    @property
    def open(self) -> bool:
        """Still waiting for consents: neither in effect nor ended."""
        return self.effective_seq is None and self.ended is None

    def status_on(self, day: date) -> str:
        """``effective``, ``lapsed``, ``withdrawn``, ``rejected``, ``expired`` (its last day for
        consents passed) or ``pending``."""
        return variation_status(self.effective, self.ended, self.expires, day)

    def consented(self, partner: str) -> bool:
        """Whether ``partner`` has consented."""
        return any(p == partner for p, _ in self.consents)


@dataclass(frozen=True)
class Notice:
    """A notice of withdrawal or termination and when it can take effect."""

    partner: str
    kind: str
    reason: str
    at: datetime
    seq: int
    effective_from: date
    done: bool = False
    #: The day the notice period runs from: its own date, or (backdated beyond the grace
    #: period) the day the ledger recorded it, until every other partner acknowledges it.
    runs_from: date | None = None
    #: Partners that acknowledged a backdated notice's own date.
    acknowledged: tuple[str, ...] = ()
    #: Taken back by the partner that gave it, before it took effect.
    withdrawn: bool = False

    @property
    def backdated(self) -> bool:
        """Whether its period runs from later than its own date."""
        return self.runs_from is not None and self.runs_from != self.at.date()


@dataclass(frozen=True)
class PaymentRecord:
    """A payment into the pool."""

    partner: str
    year: FinancialYear
    source: str
    amount: Decimal
    at: datetime
    seq: int
    reference: str | None = None
    #: The seq of the entry that reversed it, if it was reversed.
    reversed_seq: int | None = None


class Acted(NamedTuple):
    """One entry of the agreement with the time the ledger recorded it: what
    :meth:`Agreement.replay` takes, so an agreement's history replays as it is."""

    entry: Entry
    recorded: datetime


#: :class:`Acted` by another name, for the aggregate's own methods (``Agreement.Acted`` is
#: an event class).
_Acted = Acted


# --- the aggregate -----------------------------------------------------------------------------


class Agreement(Aggregate):
    """A multi-party agreement, rebuilt from its chain of signed entries."""

    TOPIC = "agreement-ledger:Agreement"

    class Created(Aggregate.Created):
        """Never triggered: agreements begin with :class:`Drafted`. eventsourcing asks every
        event class of an aggregate with an explicit topic to have one, inherited ones too."""

        TOPIC = "agreement-ledger:Agreement.Created"

    class Drafted(Aggregate.Created):
        """The convening partner drafted the agreement."""

        TOPIC = "agreement-ledger:Agreement.Drafted"
        entry: str

        def apply(self, aggregate: Any) -> None:
            aggregate._apply(aggregate._entry_for(self.entry), self.timestamp)

    class Acted(Aggregate.Event):
        """A partner acted on the agreement (base of every later event)."""

        TOPIC = "agreement-ledger:Agreement.Acted"
        entry: str

        def apply(self, aggregate: Any) -> None:
            aggregate._apply(aggregate._entry_for(self.entry), self.timestamp)

    class Joined(Acted):
        """A partner joined."""

        TOPIC = "agreement-ledger:Agreement.Joined"

    class Contributed(Acted):
        """A partner declared funding or recorded a payment."""

        TOPIC = "agreement-ledger:Agreement.Contributed"

    class Signed(Acted):
        """A partner signed the current state."""

        TOPIC = "agreement-ledger:Agreement.Signed"

    class Varied(Acted):
        """A partner proposed a variation."""

        TOPIC = "agreement-ledger:Agreement.Varied"

    class Consented(Acted):
        """A partner consented to a variation."""

        TOPIC = "agreement-ledger:Agreement.Consented"

    class NoticeGiven(Acted):
        """A partner gave notice."""

        TOPIC = "agreement-ledger:Agreement.NoticeGiven"

    class Terminated(Acted):
        """The agreement (or a partner's part in it) ended."""

        TOPIC = "agreement-ledger:Agreement.Terminated"

    class Appointed(Acted):
        """A partner changed its signatory and key."""

        TOPIC = "agreement-ledger:Agreement.Appointed"

    class Withdrawn(Acted):
        """A partner took back its own variation or notice."""

        TOPIC = "agreement-ledger:Agreement.Withdrawn"

    class Rejected(Acted):
        """A partner rejected a variation."""

        TOPIC = "agreement-ledger:Agreement.Rejected"

    class Acknowledged(Acted):
        """A partner acknowledged the date of a backdated notice."""

        TOPIC = "agreement-ledger:Agreement.Acknowledged"

    EVENTS: ClassVar[dict[str, type[Aggregate.Event]]] = {}

    def __init__(self, entry: str) -> None:  # noqa: ARG002 - Drafted.apply reads it
        # Everything is set by _apply_draft; these are the defaults of an empty agreement.
        self.reference = ""
        self.origin = ""
        self.terms: Terms
        self.partners: dict[str, Partner] = {}
        self.funding: dict[tuple[str, FinancialYear, str], FundingLine] = {}
        self.paid: dict[tuple[str, FinancialYear, str], Decimal] = {}
        self.payments: list[PaymentRecord] = []
        self.signatures: list[SignatureRecord] = []
        self.variations: dict[str, Variation] = {}
        self.notices: list[Notice] = []
        self.history: list[Acted] = []
        self.executed_seq: int | None = None
        self.executed_at: datetime | None = None
        self.executed_state: str | None = None
        self.terminated_seq: int | None = None
        self.terminated_at: datetime | None = None
        self.terminated_by: str | None = None
        self.head = ZERO_HASH
        #: (partner, act identity) -> seq of the entry that recorded it (statements of version
        #: 2). An act is its partner's: only its key signs entries under its name, so no other
        #: partner can claim, or block, an act of another by reusing its identity.
        self.acts: dict[tuple[str, str], int] = {}
        #: the highest statement version among the entries; an entry may not go below it
        self.format_version = 1
        #: partner succeeded -> the partner that took its place
        self.successors: dict[str, str] = {}
        self._digest: str | None = None  # of the state as it stands; reset by each entry
        self._checked: Entry | None = None  # the entry record() has just checked
        self._now = datetime.min.replace(tzinfo=UTC)  # the recording time of the act checked
        self.last_at = datetime.min.replace(tzinfo=UTC)

    # --- commands ------------------------------------------------------------------------------

    @classmethod
    def draft(cls, entry: Entry, origin: str, now: datetime) -> Agreement:
        """Start an agreement from a new act: its signed draft entry, checked by every rule."""
        _check_new_act(entry)
        cls.check_draft(entry, origin, now)
        return cls._create(cls.Drafted, id=agreement_id(entry.statement.agreement),
                           entry=entry.text, timestamp=now)

    @staticmethod
    def check_own_key(entry: Entry) -> None:
        """Raise unless a draft entry is signed by the key its body brings."""
        _check_own_key(entry, entry.statement.body_of(DraftBody).partner.public_key)

    @staticmethod
    def check_draft(entry: Entry, origin: str, now: datetime) -> None:
        """Raise the first rule a draft entry breaks; return if it may begin an agreement."""
        s = entry.statement
        if s.action != "draft":
            raise RuleViolation(f"agreement {s.agreement!r} does not exist; draft it first")
        _check_origin(s.origin, origin)
        if s.seq != 1 or s.prev != ZERO_HASH:
            raise RuleViolation("a draft is the first entry of its agreement: seq 1, prev zeros")
        body = s.body_of(DraftBody)
        _check_own_key(entry, body.partner.public_key)
        _check_not_future(s.at, now)
        if s.version >= 2:
            _check_flexibilities(body.terms.flexibilities)

    def record(self, entry: Entry, now: datetime) -> None:
        """Check every rule for a new act's ``entry`` and, if all hold, append it.

        ``now`` is the ledger's clock: the time the entry is recorded. A new act is a statement
        of the version the ledger writes: the rules of version 2 cannot be stepped round by
        signing the old form.
        """
        _check_new_act(entry)
        self.check(entry, now)
        # The event stores the entry's text; its apply() takes the entry just checked rather
        # than parsing the text again.
        self._checked = entry
        try:
            self.trigger_event(self.EVENTS[entry.statement.action], entry=entry.text,
                               timestamp=now)
        finally:
            self._checked = None

    # --- replay: the one way an agreement is rebuilt from entries already stored ---------------

    @classmethod
    def replay(cls, acts: Iterable[tuple[Entry, datetime]], origin: str = "", *,
               check: bool = True, start: Agreement | None = None,
               ident: uuid.UUID | None = None) -> Agreement:
        """The agreement its entries make, each with the time the ledger recorded it.

        Loading, verifying, rebuilding the read models and importing a bundle all rebuild an
        agreement here (:meth:`replaying`). ``check`` checks every rule as when the entry was
        first recorded (verification, import); without it, entries the ledger itself stored
        after checking them are only checked to follow one another (loading, rebuilding).
        ``start`` is an agreement already rebuilt from the entries before these; ``ident`` the
        id the entries are stored under (by default, the one the draft's reference gives).
        """
        agreement = start
        for agreement in cls.replaying(acts, origin, check=check, start=start,  # noqa: B007
                                       ident=ident):
            pass
        if agreement is None:
            raise NotFound("no entries to replay")
        return agreement

    @classmethod
    def replaying(cls, acts: Iterable[tuple[Entry, datetime]], origin: str = "", *,
                  check: bool = True, start: Agreement | None = None,
                  ident: uuid.UUID | None = None) -> Iterator[Agreement]:
        """:meth:`replay`, giving the agreement after each entry: the first rule an entry
        breaks is raised, and the agreement given last is what the entries before it make."""
        agreement = start
        for entry, recorded in acts:
            if agreement is None:
                if check:
                    cls.check_draft(entry, origin, recorded)
                # What Drafted.mutate(None) does when an agreement is first drafted.
                agreement = cls.__new__(cls)
                agreement.__base_init__(ident or agreement_id(entry.statement.agreement), 1,
                                        recorded)
                agreement.__init__(entry.text)  # type: ignore[misc]
            else:
                if check:
                    agreement.check(entry, recorded)
                # What Acted.mutate does when an act is recorded.
                agreement._version += 1
                agreement._modified_on = recorded
            agreement._apply(entry, recorded)
            yield agreement

    def check(self, entry: Entry, now: datetime) -> None:
        """Raise the first rule ``entry`` breaks; return if it may be appended."""
        s = entry.statement
        _check_origin(s.origin, self.origin)
        if s.agreement != self.reference:
            raise RuleViolation(
                f"entry is for agreement {s.agreement!r}, not {self.reference!r}")
        if s.action == "draft":
            raise RuleViolation(f"agreement {self.reference!r} already exists; "
                                f"choose another reference")
        if s.act is not None and (s.partner, s.act) in self.acts:
            # Only the partner's own signature claims one of its acts: a copy that does not
            # verify under a key the partner has held is no act at all.
            self._check_signed_by_partner(entry)
            seq = self.acts[(s.partner, s.act)]
            raise AlreadyRecorded(
                f"act {s.act} of {s.partner!r} is already recorded as entry {seq} of "
                f"{self.reference!r}; it is not recorded twice", seq)
        if s.version < self.format_version:
            raise RuleViolation(
                f"a version {s.version} statement cannot follow version {self.format_version} "
                f"ones in {self.reference!r}; sign it as the ledger now writes statements")
        if s.seq != self.version + 1 or s.prev != self.head:
            raise RuleViolation(
                f"entry seq {s.seq} does not follow entry {self.version} of {self.reference!r} "
                f"(prev must be {self.head[:16]}...); re-read the agreement and sign again")
        self.check_not_terminated()
        signer = self._signer_for(entry)
        if s.key != key_id(signer):
            raise SignatureInvalid(
                f"key {s.key[:16]} is not the current key of partner {s.partner!r}; "
                f"sign with that partner's own key")
        entry.verify_signature(signer)
        if s.at < self.last_at:
            raise RuleViolation(
                f"time {_at(s.at)} is before the previous act ({_at(self.last_at)}); "
                f"acts are recorded in order")
        _check_not_future(s.at, now)
        self._now = now
        self.CHECKS[s.action](self, entry)

    # --- what the state is ---------------------------------------------------------------------

    @property
    def active_partners(self) -> list[Partner]:
        """Partners that have not withdrawn or been removed, in joining order."""
        return [p for p in self.partners.values() if p.active]

    def state_digest(self) -> str:
        """Hash of what a signature covers: the terms, the partner set and the funding."""
        if self._digest is None:
            self._digest = self._compute_digest()
        return self._digest

    def _compute_digest(self) -> str:
        return sha256_hex(canonical({
            "agreement": self.terms.to_json(),
            "partners": [
                {"id": p.id, "name": p.name, "role": p.role, "lead": p.lead, "host": p.host,
                 "pool_manager": p.pool_manager}
                for p in sorted(self.active_partners, key=lambda p: p.id)
            ],
            "funding": [line.to_json() for line in self.funding_lines()],
        }))

    def funding_lines(self) -> list[FundingLine]:
        """Every funding line, ordered by year, partner and source."""
        return sorted(self.funding.values(), key=lambda ln: (ln.year, ln.partner, ln.source))

    def state_on(self, day: date) -> str:
        """The lifecycle state on ``day`` (DESIGN section 2)."""
        return lifecycle_state(day, terminated=self.terminated_seq is not None,
                               executed=self.executed_seq is not None, start=self.terms.start,
                               end=self.terms.end, notice_pending=bool(self.pending_notices()))

    def pending_notices(self) -> list[Notice]:
        """Notices given and not yet acted on."""
        return [n for n in self.notices if not n.done]

    def pending_variations(self) -> list[Variation]:
        """Variations still waiting for consents (not in effect, not ended)."""
        return [v for v in self.variations.values() if v.open]

    def ended_on(self) -> date | None:
        """The last day of the agreement: when it was terminated, or its end date."""
        if self.terminated_at is not None:
            return self.terminated_at.date()
        return self.terms.end

    def released(self, line: FundingLine) -> bool:
        """Whether nothing is owed on ``line``: its year begins after its partner left, or
        after the agreement ended. A withdrawal, a removal or the agreement's end settles what
        a partner owes; the years it was in keep what it paid and what it still owes."""
        partner = self.partners.get(line.partner)
        left = partner.left_at.date() if partner and partner.left_at else None
        return any(day is not None and line.year.starts > day
                   for day in (left, self.ended_on()))

    def signers_of(self, state: str) -> list[str]:
        """Partners that have signed ``state``."""
        return sorted({r.partner for r in self.signatures if r.state == state})

    def counted_signers(self) -> set[str]:
        """Partners counted as having signed: of the state all signed (in a draft, of its
        current state); a partner brought in by a variation signed by consenting to it."""
        state = self.executed_state or self.state_digest()
        added = {n.id for v in self.variations.values() if v.effective
                 for n in (*v.changes.add_partners, *(i.successor for i in v.changes.successions))}
        return set(self.signers_of(state)) | added

    def required_consents(self, variation: Variation) -> list[str]:
        """Everyone who must consent: every active partner (but one it succeeds: an abolished
        body cannot), every partner it adds, and every successor it brings in."""
        c = variation.changes
        succeeded = {item.predecessor for item in c.successions}
        ids = [p.id for p in self.active_partners if p.id not in succeeded]
        ids += [n.id for n in c.add_partners if n.id not in ids]
        ids += [item.successor.id for item in c.successions if item.successor.id not in ids]
        return ids

    def consent_key(self, partner: str, vid: str) -> bytes | None:
        """The key that signs ``partner``'s consent to variation ``vid``: the new key of a
        key recovery (the old one is lost), the key a partner added or brought in as a
        successor proves by consenting, or else its current key (None: not a partner)."""
        variation = self.variations.get(vid)
        changes = variation.changes if variation else Changes()
        for recovery in changes.recoveries:
            if recovery.partner == partner:
                return recovery.public_key
        current = self.partners.get(partner)
        if current is not None and current.active:
            return current.current.public_key
        for new in (*changes.add_partners, *(i.successor for i in changes.successions)):
            if new.id == partner:
                return new.details.public_key
        return None

    def entry_of_act(self, partner: str, act: str) -> _Acted | None:
        """The entry that recorded ``partner``'s act ``act``, if this agreement holds it."""
        seq = self.acts.get((partner, act))
        return None if seq is None else self.history[seq - 1]

    def check_not_terminated(self) -> None:
        """No act is allowed on a terminated agreement."""
        if self.terminated_seq is not None:
            assert self.terminated_at is not None
            raise RuleViolation(
                f"agreement {self.reference!r} was terminated on {self.terminated_at.date()}; "
                f"no further act is allowed")

    # --- who may sign what ---------------------------------------------------------------------

    def _check_signed_by_partner(self, entry: Entry) -> None:
        s = entry.statement
        partner = self.partners.get(s.partner)
        keys = [] if partner is None else [k.public_key for k in partner.signatories
                                           if k.key_id == s.key]
        if not keys:
            raise SignatureInvalid(f"key {s.key[:16]} was never a key of partner {s.partner!r}")
        entry.verify_signature(keys[0])

    def _signer_for(self, entry: Entry) -> bytes:
        """The public key that must have signed ``entry``."""
        s = entry.statement
        if s.action == "join":
            if s.partner in self.partners:
                raise RuleViolation(f"{s.partner!r} is already a partner of {self.reference!r}")
            joining = s.body_of(PartnerDetails)
            return joining.public_key
        partner = self.partners.get(s.partner)
        if s.action == "consent":
            found = self.consent_key(s.partner, s.body_of(bodies.ConsentBody).variation)
            if found is not None:
                return found
        if partner is not None and partner.active:
            return partner.current.public_key
        if partner is not None:
            left = {"removed": "was removed", "succeeded": "was succeeded"}.get(
                partner.status, "has withdrawn")
            raise RuleViolation(
                f"{s.partner!r} {left} from {self.reference!r} and can no longer act")
        raise NotFound(f"{s.partner!r} is not a partner of agreement {self.reference!r}")

    # --- rules per action ----------------------------------------------------------------------

    def _phase(self, entry: Entry, allowed: Sequence[str], what: str) -> str:
        state = self.state_on(entry.statement.at.date())
        if state not in allowed:
            raise RuleViolation(f"cannot {what} while the agreement is {state}"
                                f"{_HINT.get((what, state), '')}")
        return state

    def _check_join(self, entry: Entry) -> None:
        self._phase(entry, (DRAFT,), "join")
        self._check_key_is_own(entry.statement.body_of(PartnerDetails).public_key)

    def _check_key_is_own(self, public_key: bytes, partner: str | None = None) -> None:
        """One key acts for one partner: it may not be another partner's current key."""
        for other in self.active_partners:
            if other.id != partner and other.current.public_key == public_key:
                raise RuleViolation(f"that key is the signing key of {other.id}; each partner "
                                    f"signs with a key of its own (ledger keys new)")

    def _check_contribute(self, entry: Entry) -> None:
        s = entry.statement
        body = s.body_of(ContributeBody)
        if body.line is not None:
            self._phase(entry, (DRAFT,), "declare funding")
            if s.version >= 2:
                _check_year_in_term(body.line, self.terms.start, self.terms.end)
            return
        if body.reversal is not None:
            self._phase(entry, (SIGNED, IN_FORCE, NOTICE_GIVEN, EXPIRED), "reverse a payment")
            self._check_reversal(s.partner, body.reversal.payment)
            return
        assert body.payment is not None
        self._phase(entry, (SIGNED, IN_FORCE, NOTICE_GIVEN, EXPIRED), "record a payment")
        pay = body.payment
        line = self.funding.get((s.partner, pay.year, pay.source))
        if line is None or line.amount is None:
            raise NotFound(
                f"{s.partner!r} has no funding line with an amount for {pay.year} from "
                f"{pay.source!r}; payments are made against declared funding")
        if line.status != "confirmed":
            raise RuleViolation(
                f"the {pay.year} line from {pay.source!r} is {line.status}; payments are made "
                f"against confirmed funding: confirm it by a variation first")
        if self.released(line):
            raise RuleViolation(f"the {pay.year} line from {pay.source!r} was released when "
                                f"its partner left or the agreement ended: nothing is owed "
                                f"on it")
        paid = self.paid.get(line.key, Decimal(0))
        if paid + pay.amount > line.amount:
            raise RuleViolation(
                f"payment of {money_text(pay.amount)} would exceed the {line.status} funding "
                f"of {money_text(line.amount)} ({money_text(paid)} already paid)")

    def _check_reversal(self, partner: str, seq: int) -> None:
        payment = next((p for p in self.payments if p.seq == seq), None)
        if payment is None:
            raise NotFound(f"entry {seq} of {self.reference!r} is not a payment")
        if self.holder(payment.partner) != partner and payment.partner != partner:
            raise RuleViolation(f"the payment of entry {seq} was recorded by {payment.partner!r}; "
                                f"only the partner that recorded a payment (or its successor) "
                                f"reverses it")
        if payment.reversed_seq is not None:
            raise RuleViolation(f"the payment of entry {seq} was already reversed by entry "
                                f"{payment.reversed_seq}")

    def _check_sign(self, entry: Entry) -> None:
        s = entry.statement
        self._phase(entry, (DRAFT,), "sign")
        state = s.body_of(str)
        current = self.state_digest()
        if state != current:
            raise RuleViolation(
                f"the agreement changed since that state was read (signed {state[:12]}, "
                f"current {current[:12]}); review it and sign again")
        if s.partner in self.signers_of(current):
            raise RuleViolation(f"{s.partner!r} has already signed this state of the agreement")

    def _check_vary(self, entry: Entry) -> None:
        s = entry.statement
        self._phase(entry, (SIGNED, IN_FORCE, NOTICE_GIVEN), "propose a variation")
        body = s.body_of(VaryBody)
        if body.id in self.variations:
            raise RuleViolation(f"variation {body.id!r} already exists; choose another id")
        changes = body.changes
        active = {p.id for p in self.active_partners}
        added = {n.id for n in changes.add_partners}
        for new in changes.add_partners:
            if new.id in self.partners:
                raise RuleViolation(f"{new.id!r} is or was already a partner")
            self._check_key_is_own(new.details.public_key)
        if len(added) != len(changes.add_partners):
            raise RuleViolation("a variation adds each partner once")
        for gone in changes.remove_partners:
            if gone not in active:
                raise NotFound(f"{gone!r} is not a partner that can be removed")
        remaining = (active | added) - set(changes.remove_partners)
        if len(remaining) < 2:
            raise RuleViolation("an agreement needs at least two partners")
        if changes.successions or changes.recoveries:
            if s.version < 2:
                raise RuleViolation("successions and key recoveries are in statements of "
                                    "version 2")
            remaining = self._check_successions(s.partner, changes, remaining)
        for line in changes.funding:
            if line.partner not in remaining:
                raise NotFound(f"funding line for {line.partner!r}, who would not be a partner")
        self._check_lines_cover_payments(changes)
        start = changes.start or self.terms.start
        end = self.terms.end if not changes.changes_end else changes.end
        bodies.check_dates(start, end)
        if s.version >= 2:
            self._check_variation_v2(s, body, start, end)

    def _check_variation_v2(self, s: Statement, body: VaryBody, start: date,
                            end: date | None) -> None:
        """Rules of variations proposed in version 2 statements."""
        changes = body.changes
        day = s.at.date()
        if changes.changes_end and changes.end is not None and changes.end < day:
            raise RuleViolation(
                f"a variation proposed on {day} cannot end the agreement on {changes.end}, "
                f"before it was proposed; to record an agreed past end, give notice or record "
                f"its termination")
        if body.expires is not None and body.expires < day:
            raise RuleViolation(f"the variation would expire on {body.expires}, before it was "
                                f"proposed on {day}")
        if changes.flexibilities is not None:
            _check_flexibilities(changes.flexibilities)
        for line in changes.funding:
            _check_year_in_term(line, start, end)

    def _check_successions(self, proposer: str, changes: Changes,
                           remaining: set[str]) -> set[str]:
        """The rules of successions and key recoveries; the partners left after them."""
        active = {p.id for p in self.active_partners}
        brought = [item.successor.id for item in changes.successions]
        for item in changes.successions:
            if item.predecessor not in active:
                raise NotFound(f"{item.predecessor!r} is not a partner that can be succeeded")
            if item.successor.id in self.partners or item.successor.id in remaining:
                raise RuleViolation(f"{item.successor.id!r} is or was already a partner; a "
                                    f"successor comes in new")
            self._check_key_is_own(item.successor.details.public_key)
        predecessors = [item.predecessor for item in changes.successions]
        if len(set(predecessors)) != len(predecessors) or len(set(brought)) != len(brought):
            raise RuleViolation("a variation names each succession once")
        recovered = [recovery.partner for recovery in changes.recoveries]
        if len(set(recovered)) != len(recovered):
            raise RuleViolation("a variation recovers each partner's key once")
        new_keys = [*(n.details.public_key for n in changes.add_partners),
                    *(i.successor.details.public_key for i in changes.successions),
                    *(r.public_key for r in changes.recoveries)]
        if len(set(new_keys)) != len(new_keys):
            raise RuleViolation("each partner a variation brings in, or gives a new key, signs "
                                "with a key of its own")
        for recovery in changes.recoveries:
            if recovery.partner not in active or recovery.partner in predecessors:
                raise NotFound(f"{recovery.partner!r} is not a partner whose key can be "
                               f"recovered")
            if recovery.partner == proposer:
                raise RuleViolation("another partner proposes a key recovery; the partner "
                                    "that lost its key consents with its new one")
            if recovery.public_key == self.partners[recovery.partner].current.public_key:
                raise RuleViolation("the recovered key is the current key; give a new key")
            self._check_key_is_own(recovery.public_key, recovery.partner)
        after = (remaining - set(predecessors)) | set(brought)
        if len(after) < 2:
            raise RuleViolation("an agreement needs at least two partners")
        return after

    def uncovered_payment(self, changes: Changes) -> FundingLine | None:
        """A funding line of ``changes`` that would no longer cover what has been paid (on a
        successor's line: what its predecessor paid)."""
        predecessor_of = {i.successor.id: i.predecessor for i in changes.successions}
        for line in changes.funding:
            payer = predecessor_of.get(line.partner, line.partner)
            paid = self.paid.get((payer, line.year, line.source), Decimal(0))
            if paid and (line.amount is None or line.amount < paid or line.status != "confirmed"):
                return line
        return None

    def _check_lines_cover_payments(self, changes: Changes) -> None:
        line = self.uncovered_payment(changes)
        if line is not None:
            predecessor_of = {i.successor.id: i.predecessor for i in changes.successions}
            paid = self.paid[(predecessor_of.get(line.partner, line.partner), line.year,
                              line.source)]
            raise RuleViolation(
                f"{line.partner!r} has already paid {money_text(paid)} for {line.year} "
                f"from {line.source!r}; the line cannot be set below that or unconfirmed")

    def _judged_on(self, entry: Entry) -> date:
        """The day an act is held to for deadlines (a proposal's last day, a notice's date of
        effect): its own date, or, recorded later than the grace period allows, the day it was
        recorded. A deadline cannot be met by dating an act back."""
        s = entry.statement
        return s.at.date() if self._now - s.at <= BACKDATING_GRACE else self._now.date()

    def _open_variation(self, vid: str, day: date, what: str) -> Variation:
        """The variation ``vid``, if it may still be consented to (or rejected) on ``day``."""
        variation = self.variations.get(vid)
        if variation is None:
            raise NotFound(f"there is no variation {vid!r} of {self.reference!r}")
        if variation.effective:
            raise RuleViolation(f"variation {vid!r} is already in effect")
        if variation.ended == "lapsed":
            assert variation.ended_at is not None
            why = (f"variation {variation.ended_by!r} took effect"
                   if variation.ended_by in self.variations
                   else f"{variation.ended_by!r} withdrew")
            raise RuleViolation(
                f"variation {vid!r} lapsed on {variation.ended_at.date()}, when {why}: it was "
                f"proposed against the agreement as it stood before; propose it again against "
                f"the agreement as it stands")
        if variation.ended is not None:
            raise RuleViolation(f"variation {vid!r} was {variation.ended} by "
                                f"{variation.ended_by!r}; it can no longer be {what}")
        if variation.expires is not None and day > variation.expires:
            raise RuleViolation(f"variation {vid!r} expired on {variation.expires}: the last day "
                                f"it could gather consents; propose it again")
        return variation

    def _check_consent(self, entry: Entry) -> None:
        s = entry.statement
        self._phase(entry, (SIGNED, IN_FORCE, NOTICE_GIVEN, EXPIRED), "consent")
        body = s.body_of(bodies.ConsentBody)
        vid = body.variation
        variation = self._open_variation(vid, self._judged_on(entry), "consented to")
        if s.version >= 2 and body.proposal != variation.proposal:
            raise RuleViolation(
                f"that consent is to another proposal than variation {vid!r} (proposed by entry "
                f"{variation.seq}, hash {variation.proposal[:16]}); a consent binds to what was "
                f"proposed: review it and consent again")
        for new in (*variation.changes.add_partners,
                    *(i.successor for i in variation.changes.successions)):
            # Taking effect would add the partner afresh, undoing any appointment since.
            if new.id in self.partners:
                raise RuleViolation(
                    f"variation {vid!r} adds {new.id!r}, who has become a partner since it was "
                    f"proposed; it can no longer take effect")
        waiting = [p for p in self.required_consents(variation)
                   if not variation.consented(p) and p != s.partner]
        if not waiting:
            # This consent would put the variation into effect: what was checked when it was
            # proposed must still hold after every act since.
            if variation.takes_over and variation.recorded is not None and (
                    self._now < variation.recorded + TAKEOVER_WAIT):
                ready = (variation.recorded + TAKEOVER_WAIT).date()
                raise RuleViolation(
                    f"variation {vid!r} takes over a partner's place or key: it can take "
                    f"effect from {ready}, {TAKEOVER_WAIT.days} days after it was recorded, so "
                    f"that the partner, if it is still there and holds its key, can reject it; "
                    f"consent again then")
            self._check_lines_cover_payments(variation.changes)
            active = {p.id for p in self.active_partners}
            remaining = (active | {n.id for n in variation.changes.add_partners}) - set(
                variation.changes.remove_partners)
            if len(remaining) < 2:
                raise RuleViolation(f"variation {vid!r} would now leave fewer than two "
                                    f"partners; it can no longer take effect")
        if s.partner not in self.required_consents(variation):
            raise RuleViolation(f"{s.partner!r} is not asked to consent to {vid!r}")
        if variation.consented(s.partner):
            raise RuleViolation(f"{s.partner!r} has already consented to {vid!r}")

    def _check_notice(self, entry: Entry) -> None:
        s = entry.statement
        self._phase(entry, (SIGNED, IN_FORCE, NOTICE_GIVEN), "give notice")
        _ = s.body_of(NoticeBody)  # the body is read, and so checked, before anything is written
        if any(n.partner == s.partner for n in self.pending_notices()):
            raise RuleViolation(f"{s.partner!r} has already given notice")

    def _notice(self, seq: int) -> Notice:
        found = next((n for n in self.notices if n.seq == seq), None)
        if found is None:
            raise NotFound(f"entry {seq} of {self.reference!r} is not a notice")
        return found

    def _check_withdraw(self, entry: Entry) -> None:
        s = entry.statement
        body = s.body_of(bodies.WithdrawBody)
        day = self._judged_on(entry)
        if body.variation is not None:
            variation = self._open_variation(body.variation, day, "withdrawn")
            if variation.proposer != s.partner:
                raise RuleViolation(f"variation {body.variation!r} was proposed by "
                                    f"{variation.proposer!r}; only its proposer withdraws it "
                                    f"(another partner rejects it: ledger reject)")
            return
        assert body.notice is not None
        notice = self._notice(body.notice)
        if notice.partner != s.partner:
            raise RuleViolation(f"the notice of entry {notice.seq} was given by "
                                f"{notice.partner!r}; only the partner that gave it withdraws it")
        if notice.done:
            raise RuleViolation(f"the notice of entry {notice.seq} has already been acted on or "
                                f"withdrawn")
        if day >= notice.effective_from:
            raise RuleViolation(
                f"the notice of entry {notice.seq} took effect on {notice.effective_from}; it "
                f"can only be withdrawn before then (after, the partners agree a variation); "
                f"a withdrawal recorded late is held to the day it was recorded")

    def _check_reject(self, entry: Entry) -> None:
        s = entry.statement
        body = s.body_of(bodies.RejectBody)
        variation = self._open_variation(body.variation, self._judged_on(entry), "rejected")
        predecessors = {item.predecessor for item in variation.changes.successions}
        if s.partner not in self.required_consents(variation) and s.partner not in predecessors:
            raise RuleViolation(f"{s.partner!r} is not asked to consent to {body.variation!r}, "
                                f"so it cannot reject it")
        if variation.consented(s.partner):
            raise RuleViolation(f"{s.partner!r} has consented to {body.variation!r}; a consent "
                                f"given is not taken back")

    def _check_acknowledge(self, entry: Entry) -> None:
        s = entry.statement
        notice = self._notice(s.body_of(int))
        if not notice.backdated or notice.done:
            raise RuleViolation(f"the notice of entry {notice.seq} is not a backdated notice "
                                f"waiting for acknowledgement")
        if s.partner == notice.partner:
            raise RuleViolation("the partner that gave a notice does not acknowledge it; the "
                                "other partners do")
        if s.partner in notice.acknowledged:
            raise RuleViolation(f"{s.partner!r} has already acknowledged the notice of entry "
                                f"{notice.seq}")

    def _check_terminate(self, entry: Entry) -> None:
        s = entry.statement
        self._phase(entry, (SIGNED, IN_FORCE, NOTICE_GIVEN, EXPIRED), "terminate")
        _ = s.body_of(str)  # the body is read, and so checked, before anything is written
        if self._termination_ground(entry) is None:
            day = s.at.date()
            own = [n for n in self.pending_notices() if n.partner == s.partner]
            if own:
                raise RuleViolation(
                    f"the notice period of {s.partner!r} runs until {own[0].effective_from}; "
                    f"terminate on or after that date")
            pending = self.pending_notices()
            if pending and self.terms.on_withdrawal == "continue":
                raise RuleViolation(
                    "under this agreement a withdrawal ends only the withdrawing partner's part; "
                    "that partner records it")
            if pending:
                first = min(n.effective_from for n in pending)
                raise RuleViolation(f"the notice period runs until {first}; "
                                    f"terminate on or after that date")
            end = f" (end date {self.terms.end})" if self.terms.end else ""
            raise RuleViolation(
                f"no notice has been given and the end date has not been reached on {day}"
                f"{end}; give notice first (ledger notice)")

    def _termination_ground(self, entry: Entry) -> tuple[str, Notice | None] | None:
        """Why ``entry`` may terminate: ('whole' | 'withdraw', the notice acted on)."""
        s = entry.statement
        day = s.at.date()
        if self.terms.end is not None and day >= self.terms.end:
            return ("whole", None)
        if any(v.effective and v.changes.ends_agreement for v in self.variations.values()):
            return ("whole", None)
        for notice in self.pending_notices():
            if day < notice.effective_from:
                continue
            whole = notice.kind == "termination" or self.terms.on_withdrawal == "terminate"
            if notice.partner == s.partner:
                return ("whole" if whole else "withdraw", notice)
            if whole:
                return ("whole", notice)
        return None

    def _check_appoint(self, entry: Entry) -> None:
        s = entry.statement
        body = s.body_of(AppointBody)
        if body.public_key == self.partners[s.partner].current.public_key:
            raise RuleViolation("the new signatory's key is the current key; "
                                "give a new key (ledger keys new)")
        self._check_key_is_own(body.public_key, s.partner)

    CHECKS: ClassVar[dict[str, Callable[[Agreement, Entry], None]]] = {
        "join": _check_join,
        "contribute": _check_contribute,
        "sign": _check_sign,
        "vary": _check_vary,
        "consent": _check_consent,
        "notice": _check_notice,
        "terminate": _check_terminate,
        "appoint": _check_appoint,
        "withdraw": _check_withdraw,
        "reject": _check_reject,
        "acknowledge": _check_acknowledge,
    }

    # --- event methods: replayed on every load, so they never check or raise --------------------

    def _entry_for(self, text: str) -> Entry:
        """The entry an event holds: the one just checked, or read from the stored text."""
        checked = getattr(self, "_checked", None)
        if checked is not None and checked.text == text:
            return checked  # type: ignore[no-any-return]
        return Entry.parse_trusted(text)

    def _apply(self, entry: Entry, recorded: datetime) -> None:
        s = entry.statement
        if s.action not in _KEEPS_DIGEST or (s.action == "contribute" and "line" in s.body):
            self._digest = None
        self.APPLY[s.action](self, entry, recorded)
        self.history.append(Acted(entry, recorded))
        if s.act is not None:
            self.acts[(s.partner, s.act)] = s.seq
            self.format_version = 2
        self.head = entry.hash
        self.last_at = s.at

    def _apply_draft(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        body = s.body_of(DraftBody)
        self.reference = s.agreement
        self.origin = s.origin
        self.terms = body.terms
        self._add_partner(s.partner, body.partner, s.seq, s.at)

    def _add_partner(self, pid: str, d: PartnerDetails, seq: int, at: datetime) -> None:
        first = Signatory(d.signatory, d.designation, key_id(d.public_key), d.public_key, seq, at)
        self.partners[pid] = Partner(pid, d.name, d.role, d.lead, d.host, d.pool_manager,
                                     (first,), joined_seq=seq)

    def _apply_join(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        self._add_partner(s.partner, s.body_of(PartnerDetails), s.seq, s.at)

    def _apply_contribute(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        body = s.body_of(ContributeBody)
        if body.line is not None:
            self.funding[body.line.key] = body.line
            return
        if body.reversal is not None:
            for i, record in enumerate(self.payments):
                if record.seq == body.reversal.payment:
                    # Taken off the line as it is held now: a successor holds its
                    # predecessor's lines and what was paid on them.
                    key = (self.holder(record.partner), record.year, record.source)
                    self.paid[key] = self.paid.get(key, Decimal(0)) - record.amount
                    self.payments[i] = replace(record, reversed_seq=s.seq)
            return
        assert body.payment is not None
        pay = body.payment
        key = (s.partner, pay.year, pay.source)
        self.paid[key] = self.paid.get(key, Decimal(0)) + pay.amount
        self.payments.append(PaymentRecord(s.partner, pay.year, pay.source, pay.amount,
                                           s.at, s.seq, pay.reference))

    def _apply_sign(self, entry: Entry, recorded: datetime) -> None:
        s = entry.statement
        state = s.body_of(str)
        self.signatures.append(SignatureRecord(s.partner, state, s.key, s.at, recorded, s.seq))
        self._execute_if_complete(s.seq, s.at)

    def _execute_if_complete(self, seq: int, at: datetime) -> None:
        active = self.active_partners
        if self.executed_seq is not None or len(active) < 2:
            return
        signed = set(self.signers_of(self.state_digest()))
        if all(p.id in signed for p in active):
            self.executed_seq, self.executed_at = seq, at
            self.executed_state = self.state_digest()

    def _apply_vary(self, entry: Entry, recorded: datetime) -> None:
        s = entry.statement
        body = s.body_of(VaryBody)
        self.variations[body.id] = Variation(body.id, s.partner, body.reason, body.changes,
                                             s.seq, s.at, ((s.partner, s.seq),),
                                             proposal=entry.hash, expires=body.expires,
                                             lapses=s.version >= 2, recorded=recorded)
        self._take_effect_if_complete(body.id, s.seq, s.at)

    def _apply_consent(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        vid = s.body_of(bodies.ConsentBody).variation
        v = self.variations[vid]
        self.variations[vid] = replace(v, consents=(*v.consents, (s.partner, s.seq)))
        self._take_effect_if_complete(vid, s.seq, s.at)

    def _take_effect_if_complete(self, vid: str, seq: int, at: datetime) -> None:
        v = self.variations[vid]
        if not all(v.consented(p) for p in self.required_consents(v)):
            return
        self.variations[vid] = replace(v, effective_seq=seq, effective_at=at)
        c = v.changes
        t = self.terms
        self.terms = replace(
            t,
            title=c.title or t.title,
            basis=t.basis if c.basis is None else c.basis,
            flexibilities=t.flexibilities if c.flexibilities is None else c.flexibilities,
            terms_hash=c.terms_hash or t.terms_hash,
            start=c.start or t.start,
            end=c.end if c.changes_end else t.end,
            notice_months=t.notice_months if c.notice_months is None else c.notice_months,
            on_withdrawal=c.on_withdrawal or t.on_withdrawal,
        )
        for new in c.add_partners:
            self._add_partner(new.id, new.details, seq, at)
        for gone in c.remove_partners:
            self.partners[gone] = replace(self.partners[gone], status="removed", left_seq=seq,
                                          left_at=at)
        for item in c.successions:
            self._succeed(item.predecessor, item.successor.id, item.successor.details, seq, at)
        for recovery in c.recoveries:
            p = self.partners[recovery.partner]
            new_signatory = Signatory(recovery.signatory, recovery.designation,
                                      key_id(recovery.public_key), recovery.public_key, seq, at)
            self.partners[p.id] = replace(p, signatories=(*p.signatories, new_signatory))
        # A variation built on the agreement as it stood before this one lapses: it may no
        # longer take effect, and shows as lapsed.
        for other in list(self.variations.values()):
            if other.id != vid and other.open and other.lapses:
                self.variations[other.id] = replace(other, ended="lapsed", ended_seq=seq,
                                                    ended_at=at, ended_by=vid)
        # A removed partner's notice goes with it.
        self.notices = [replace(n, done=True) if n.partner in c.remove_partners else n
                        for n in self.notices]
        for line in c.funding:
            self.funding[line.key] = line

    def holder(self, partner: str) -> str:
        """Who holds ``partner``'s place now: its successor's successor..., or itself."""
        seen = {partner}
        while partner in self.successors:
            partner = self.successors[partner]
            if partner in seen:  # a successor always comes in new, so never; but never loop
                break
            seen.add(partner)
        return partner

    def _succeed(self, predecessor: str, successor: str, details: PartnerDetails, seq: int,
                 at: datetime) -> None:
        """The successor takes the predecessor's place: its funding lines, what has been paid
        on them, and what it still owes; the predecessor's notice goes with it."""
        self.partners[predecessor] = replace(self.partners[predecessor], status="succeeded",
                                             left_seq=seq, left_at=at)
        self.successors[predecessor] = successor
        self._add_partner(successor, details, seq, at)
        for key, line in list(self.funding.items()):
            if line.partner == predecessor:
                del self.funding[key]
                moved = replace(line, partner=successor)
                self.funding[moved.key] = moved
                if key in self.paid:
                    self.paid[moved.key] = self.paid.pop(key)
        self.notices = [replace(n, done=True) if n.partner == predecessor else n
                        for n in self.notices]

    def _apply_notice(self, entry: Entry, recorded: datetime) -> None:
        s = entry.statement
        body = s.body_of(NoticeBody)
        runs_from = s.at.date()
        if s.version >= 2 and recorded - s.at > BACKDATING_GRACE:
            # Backdated beyond the grace period: it cannot shorten the others' notice. It runs
            # from when it was recorded, unless they all acknowledge its own date.
            runs_from = recorded.date()
        effective = add_months(runs_from, self.terms.notice_months)
        self.notices.append(Notice(s.partner, body.kind, body.reason, s.at, s.seq, effective,
                                   runs_from=runs_from))

    def _apply_terminate(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        ground = self._termination_ground(entry)
        kind, notice = ground if ground is not None else ("whole", None)
        if notice is not None:
            self.notices = [replace(n, done=True) if n is notice else n for n in self.notices]
        if kind == "withdraw":
            self.partners[s.partner] = replace(self.partners[s.partner], status="withdrawn",
                                               left_seq=s.seq, left_at=s.at)
            # The partner set the open proposals were built on has changed: they lapse.
            for other in list(self.variations.values()):
                if other.open and other.lapses:
                    self.variations[other.id] = replace(other, ended="lapsed", ended_seq=s.seq,
                                                        ended_at=s.at, ended_by=s.partner)
            if len(self.active_partners) >= 2:
                return
        self.terminated_seq, self.terminated_at, self.terminated_by = s.seq, s.at, s.partner
        self.notices = [replace(n, done=True) for n in self.notices]

    def _apply_appoint(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        body = s.body_of(AppointBody)
        p = self.partners[s.partner]
        new = Signatory(body.signatory, body.designation, key_id(body.public_key),
                        body.public_key, s.seq, s.at)
        self.partners[s.partner] = replace(p, signatories=(*p.signatories, new))

    def _apply_withdraw(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        body = s.body_of(bodies.WithdrawBody)
        if body.variation is not None:
            v = self.variations[body.variation]
            self.variations[v.id] = replace(v, ended="withdrawn", ended_seq=s.seq,
                                            ended_at=s.at, ended_by=s.partner)
            return
        self.notices = [replace(n, done=True, withdrawn=True) if n.seq == body.notice else n
                        for n in self.notices]

    def _apply_reject(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        v = self.variations[s.body_of(bodies.RejectBody).variation]
        self.variations[v.id] = replace(v, ended="rejected", ended_seq=s.seq, ended_at=s.at,
                                        ended_by=s.partner)

    def _apply_acknowledge(self, entry: Entry, _recorded: datetime) -> None:
        s = entry.statement
        self.notices = [self._acknowledged(n, s.partner) if n.seq == s.body_of(int) else n
                        for n in self.notices]

    def _acknowledged(self, notice: Notice, partner: str) -> Notice:
        notice = replace(notice, acknowledged=(*notice.acknowledged, partner))
        others = {p.id for p in self.active_partners} - {notice.partner}
        if others <= set(notice.acknowledged):
            # Every other partner accepts the earlier date: the period runs from it.
            day = notice.at.date()
            notice = replace(notice, runs_from=day,
                             effective_from=add_months(day, self.terms.notice_months))
        return notice

    APPLY: ClassVar[dict[str, Callable[[Agreement, Entry, datetime], None]]] = {
        "draft": _apply_draft,
        "join": _apply_join,
        "contribute": _apply_contribute,
        "sign": _apply_sign,
        "vary": _apply_vary,
        "consent": _apply_consent,
        "notice": _apply_notice,
        "terminate": _apply_terminate,
        "appoint": _apply_appoint,
        "withdraw": _apply_withdraw,
        "reject": _apply_reject,
        "acknowledge": _apply_acknowledge,
    }


Agreement.EVENTS.update({
    "join": Agreement.Joined,
    "contribute": Agreement.Contributed,
    "sign": Agreement.Signed,
    "vary": Agreement.Varied,
    "consent": Agreement.Consented,
    "notice": Agreement.NoticeGiven,
    "terminate": Agreement.Terminated,
    "appoint": Agreement.Appointed,
    "withdraw": Agreement.Withdrawn,
    "reject": Agreement.Rejected,
    "acknowledge": Agreement.Acknowledged,
})

_HINT = {
    ("declare funding", SIGNED): "; funding is committed once signed: propose a variation",
    ("declare funding", IN_FORCE): "; funding is committed once signed: propose a variation",
    ("declare funding", NOTICE_GIVEN): "; funding is committed once signed: propose a variation",
    ("join", SIGNED): "; a new partner comes in through an agreed variation",
    ("join", IN_FORCE): "; a new partner comes in through an agreed variation",
    ("sign", SIGNED): "; it is already signed by every partner",
    ("sign", IN_FORCE): "; it is already signed by every partner",
    ("record a payment", DRAFT): "; payments are recorded once every partner has signed",
    ("propose a variation", DRAFT): "; change a draft by contributing or re-drafting",
    ("give notice", DRAFT): "; a draft is not yet binding",
    ("terminate", DRAFT): "; a draft is not yet binding",
    ("propose a variation", EXPIRED): "; its end date has passed: record its termination",
    ("give notice", EXPIRED): "; its end date has passed: record its termination",
}


#: Acts that change none of what the state digest covers (terms, active partners, funding
#: lines), so a run of signatures hashes the state once; a payment is a contribution too.
_KEEPS_DIGEST = frozenset({"sign", "notice", "appoint", "contribute", "withdraw", "reject",
                           "acknowledge"})


def signature_standing(state: str, executed_state: str | None, current_state: str) -> str:
    """What a signature of ``state`` stands for: ``executed`` (the state every partner signed,
    which put the agreement in force), ``current`` (the state as it is now, still being
    signed) or ``superseded`` (a state the agreement has since left)."""
    if state == executed_state:
        return "executed"
    return "current" if state == current_state else "superseded"


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_origin(statement_origin: str, origin: str) -> None:
    if statement_origin != origin:
        raise RuleViolation(
            f"entry belongs to ledger {statement_origin!r}, not {origin!r}; "
            f"it cannot be replayed here")


def _check_own_key(entry: Entry, public_key: bytes) -> None:
    """A partner entering the agreement signs with the key it brings (proof of possession)."""
    if entry.statement.key != key_id(public_key):
        raise SignatureInvalid("the entry must be signed by the key it introduces "
                               "(statement key differs from the body's public_key)")
    entry.verify_signature(public_key)


def _check_flexibilities(flexibilities: Sequence[str]) -> None:
    """Each flexibility is a statutory one, or named plainly as another (``other-...``)."""
    for name in flexibilities:
        if name not in STATUTORY_FLEXIBILITIES and not (
                name.startswith(OTHER_FLEXIBILITY) and len(name) > len(OTHER_FLEXIBILITY)):
            raise RuleViolation(
                f"{name!r} is not a flexibility of s.31 Health Act 1999 / s.75 NHS Act 2006 "
                f"({', '.join(STATUTORY_FLEXIBILITIES)}); name any other as "
                f"'{OTHER_FLEXIBILITY}{name}'")


def _check_year_in_term(line: FundingLine, start: date, end: date | None) -> None:
    """A funding line's year lies within the agreement's term: from the financial year before
    the one it starts in (funding set aside ahead of a start) to a few years after the one it
    ends in (the years a renewal is planned for)."""
    first = FinancialYear.containing(start).first - 1
    last = FinancialYear.containing(end).first + RENEWAL_YEARS if end is not None else (
        FinancialYear.containing(start).first + OPEN_ENDED_YEARS)
    if not first <= line.year.first <= last:
        span = (f"{FinancialYear(first)} to {FinancialYear(last)}")
        raise RuleViolation(
            f"funding for {line.year} is outside the agreement's term (from {start}"
            f"{f' to {end}' if end else ''}): a line's year is one of {span}")


def _check_not_future(at: datetime, now: datetime) -> None:
    if at > now + CLOCK_TOLERANCE:
        raise RuleViolation(f"time {_at(at)} is in the future (the ledger's clock says "
                            f"{_at(now)}); give a time that has passed")


def _check_new_act(entry: Entry) -> None:
    if entry.statement.version < FORMAT_VERSION:
        raise RuleViolation(f"a new act is a version {FORMAT_VERSION} statement; version "
                            f"{entry.statement.version} is read only in history recorded "
                            f"before")


__all__ = [
    "STATES",
    "Acted",
    "Agreement",
    "Notice",
    "Partner",
    "Signatory",
    "SignatureRecord",
    "Variation",
    "agreement_id",
]
