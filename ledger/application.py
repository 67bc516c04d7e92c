"""The ledger application: partners' acts in, signed entries stored, errors made plain.

:class:`Ledger` is an eventsourcing application over one database (see :mod:`ledger.storage`).
Its methods are the partner actions of DESIGN section 2. Each builds the statement at the
agreement's current position, signs it with the key at hand, has the aggregate check every
rule, and stores the event; when another act lands on the same agreement in between, the store
refuses the write (optimistic concurrency) and the act is re-read, re-checked and re-signed, a
bounded number of times, before the agreement is reported busy. Storage errors are translated
into :mod:`ledger.errors`.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import EventSourcingError
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.utils import Environment, TopicError, get_topic

from ledger._internal import codec
from ledger._internal.notifications import StateRow, copy_events, select_states
from ledger.acts import Acts, BodyOf, Recorded, signed_entry
from ledger.checkpoints import CheckpointRecord, checkpoint_id
from ledger.domain import Acted, Agreement, agreement_id
from ledger.errors import (
    AgreementBusy,
    AlreadyRecorded,
    InvalidInput,
    LedgerError,
    NotFound,
    RuleViolation,
    StorageError,
    VerificationFailed,
)
from ledger.identity import IDENTITY_ID, LedgerIdentity
from ledger.keys import Signer
from ledger.note import NoteSignature, SignedNote
from ledger.protect import make_append_only
from ledger.statement import Entry, new_act_id, parse_origin
from ledger.storage import Location
from ledger.values import parse_slug

#: How many times an act is re-read, re-checked and re-signed when others keep landing first.
MAX_ATTEMPTS = 12

#: After losing a race on an agreement, read it before acting on it for this many seconds.
CONTENDED_FOR = 10.0

#: How long an act waits for a database that went away (a restart) before giving up.
RECONNECT_WAIT = 30.0

#: Topics of the events that carry entries (everything else in the store is bookkeeping).
ENTRY_TOPICS: tuple[str, ...] = (
    Agreement.Drafted.TOPIC,
    *(getattr(cls, "TOPIC") for cls in Agreement.EVENTS.values()),  # noqa: B009 - see mypy
)


def utc_now() -> datetime:
    """The ledger's clock."""
    return datetime.now(UTC)


class VerifiedEntry(Protocol):
    """An entry that has passed every check, with what storing it needs."""

    @property
    def text(self) -> str: ...
    @property
    def agreement(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def action(self) -> str: ...
    @property
    def recorded(self) -> datetime: ...


@dataclass(frozen=True)
class StoredEntry:
    """An entry read back from the store's notification log, in commit order."""

    notification_id: int
    #: The agreement's id as 32 hexadecimal digits (``UUID.hex``).
    originator_id: str
    version: int
    topic: str
    entry_text: str
    recorded: datetime


class Ledger(Acts, Application[UUID]):
    """One ledger: its identity and its agreements, in one database."""

    name = "ledger"

    def __init__(self, location: Location, *, create: bool = False,
                 clock: Callable[[], datetime] = utc_now,
                 new_act: Callable[[], str] = new_act_id,
                 extra_env: dict[str, str] | None = None) -> None:
        """Open the ledger at ``location``; ``create`` makes its tables (``ledger init``).

        Opening never changes the database's structure, so a role that may only read (an
        auditor's) can open a ledger.
        """
        self.location = location
        self.clock = clock
        #: Makes each act's identity (fixed ones for the committed fixtures).
        self.new_act = new_act
        self._identity: LedgerIdentity | None = None
        #: reference -> when an act on it last lost a race to another writer
        self._conflicts: dict[str, float] = {}
        env = {**location.eventsourcing_env(), "CREATE_TABLE": "y" if create else "n",
               # A long-running process (a catch-up, a busy writer) reads only the events
               # added since it last loaded an agreement.
               "AGGREGATE_CACHE_MAXSIZE": "256",
               **(extra_env or {})}
        try:
            location.check_server()
            if create:
                location.create_schema()
            super().__init__(env)
        except (OperationalError, InterfaceError, PersistenceError) as exc:
            # The store's connection pool may already be open (its threads waiting for the
            # server): close it now, not whenever the half-made application is collected.
            factory = getattr(self, "factory", None)
            if factory is not None:
                factory.close()
            raise unreachable(location, exc) from None

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Only the settings given: a stray PERSISTENCE_MODULE or CIPHER_TOPIC in the shell's
        # environment must not silently change where or how a ledger is stored.
        return Environment(name, dict(env or {}))

    # --- the ledger itself ---------------------------------------------------------------------

    def initialise(self, origin: str, operator: str, operator_key: bytes) -> LedgerIdentity:
        """Create the ledger's identity; refused if this database already holds a ledger."""
        parse_origin(origin)
        if self.is_initialised():
            raise InvalidInput(f"{self.location.describe()} already holds a ledger "
                               f"({self.identity.origin!r}); nothing was changed")
        identity = LedgerIdentity.initialise(origin, operator, operator_key)
        try:
            self._save(identity)
        except IntegrityError:
            raise InvalidInput(f"{self.location.describe()} already holds a ledger") from None
        # From here on, the events can only ever be added to (PostgreSQL).
        make_append_only(self.location)
        self._identity = identity
        return identity

    def is_initialised(self) -> bool:
        """Whether ``ledger init`` has run on this database.

        The identity is one event, written once: a store that holds anything else under its
        id was altered, and no command may trust the origin or operator key it would give.
        """
        try:
            rows = self.recorder.select_events(IDENTITY_ID)
        except PersistenceError as exc:
            if _missing_table(exc):
                return False
            raise unreachable(self.location, exc) from None
        if not rows:
            return False
        if len(rows) != 1 or rows[0].topic != LedgerIdentity.Initialised.TOPIC:
            raise VerificationFailed(
                f"the ledger's identity was altered: {len(rows)} events are stored under it "
                f"({', '.join(sorted({r.topic for r in rows}))}), where 'ledger init' writes "
                f"one; restore the database from a backup")
        try:
            event: Any = self.mapper.to_domain_event(rows[0])
            found = event.mutate(None)
        except Exception as exc:  # noqa: BLE001 - stored data is untrusted: name it
            raise VerificationFailed(f"the ledger's identity cannot be read "
                                     f"({type(exc).__name__}): it was altered") from None
        assert isinstance(found, LedgerIdentity)
        self._identity = found
        return True

    @property
    def identity(self) -> LedgerIdentity:
        """Origin and operator of this ledger."""
        if self._identity is None and not self.is_initialised():
            raise StorageError(f"{self.location.describe()} is not a ledger; "
                               f"create one with 'ledger init'")
        assert self._identity is not None
        return self._identity

    @property
    def origin(self) -> str:
        """The ledger's origin name."""
        return self.identity.origin

    # --- reading -------------------------------------------------------------------------------

    def agreement(self, reference: str, version: int | None = None, *,
                  copy: bool = True) -> Agreement:
        """The agreement as it stands (or as it stood after entry ``version``); ``copy=False``
        hands out the cached object itself, for callers that change it only by acting."""
        parse_slug(reference, "agreement reference")
        try:
            found = self.load(agreement_id(reference), version, copy=copy)
        except NotFound:
            raise NotFound(f"there is no agreement {reference!r} in this ledger; "
                           f"'ledger list' shows them") from None
        assert isinstance(found, Agreement)
        return found

    def exists(self, reference: str) -> bool:
        """Whether an agreement with this reference has been drafted."""
        try:
            return bool(self.recorder.select_events(agreement_id(reference), limit=1))
        except PersistenceError as exc:
            raise unreachable(self.location, exc) from None

    def references(self) -> list[str]:
        """Every agreement's reference, read from the draft entries alone."""
        references = []
        position = 1
        while True:
            try:
                rows = self.recorder.select_notifications(position, 1000,
                                                          topics=(Agreement.Drafted.TOPIC,))
            except PersistenceError as exc:
                raise unreachable(self.location, exc) from None
            for row in rows:
                try:
                    entry = Entry.parse_trusted(self.decode_state(row)["entry"])
                except InvalidInput as exc:
                    raise VerificationFailed(f"a stored draft (notification {row.id}) cannot be "
                                             f"read ({exc}): it was altered; 'ledger verify' "
                                             f"names the damage") from None
                references.append(entry.statement.agreement)
            if len(rows) < 1000:
                return sorted(references)
            position = rows[-1].id + 1

    def entries(self, reference: str) -> list[Acted]:
        """Every entry of one agreement, in order, with its recorded time."""
        return list(self.agreement(reference).history)

    def stored_entries(self, start: int = 1, batch: int = 1000,
                       stop: int | None = None) -> Iterator[StoredEntry]:
        """Every entry of the ledger in commit order, straight from the notification log."""
        position = start
        while True:
            rows = self.states(position, batch, stop, ENTRY_TOPICS)
            for row in rows:
                yield self.decode_entry(row)
            if len(rows) < batch:
                return
            position = rows[-1].id + 1

    def states(self, start: int, limit: int, stop: int | None = None,
               topics: Sequence[str] = ()) -> Sequence[StateRow | Notification]:
        """The notification log's rows from ``start`` (to ``stop``), with their ids, topics
        and stored states: what ``select_notifications`` gives, without a ``Notification`` and
        a ``UUID`` a row where the states are stored as plain JSON (sequencing the log reads
        every entry this way)."""
        try:
            if self.mapper.cipher or self.mapper.compressor:
                # Reading such a state makes the event, which needs the whole notification.
                return self.recorder.select_notifications(start, limit, stop, topics)
            return select_states(self.recorder, start, limit, stop, topics)
        except (PersistenceError, OSError) as exc:
            raise unreachable(self.location, exc) from None

    def decode_state(self, row: StoredEvent | StateRow | Notification) -> dict[str, Any]:
        """The stored state of one event (its entry and recorded time), without building the
        event object: verification, rebuilding and the log read every entry this way."""
        try:
            if self.mapper.cipher or self.mapper.compressor:
                # Such rows come whole (see ``states``): the event is made to read them.
                assert isinstance(row, StoredEvent)
                event: Any = self.mapper.to_domain_event(row)
                state = {"entry": event.entry, "timestamp": event.timestamp}
            else:
                # Anything but the usual shape (or damage) is read, or refused, by the
                # transcoder.
                state = codec.read_state(row.state) or self.mapper.transcoder.decode(row.state)
        except Exception as exc:  # noqa: BLE001 - stored data is untrusted: name it
            raise VerificationFailed(
                f"the stored event {row.originator_id} version {row.originator_version} cannot "
                f"be read ({type(exc).__name__}): it was altered") from None
        if (not isinstance(state, dict) or type(state.get("entry")) is not str
                or not isinstance(state.get("timestamp"), datetime)):
            raise VerificationFailed(
                f"the stored event {row.originator_id} version {row.originator_version} holds "
                f"no entry and time of recording: it was altered")
        return state

    def restored(self, aggregate_id: UUID) -> Agreement:
        """An agreement rebuilt from its stored entries, for reading only (rebuilding the read
        models): :meth:`Agreement.replay` straight from the stored rows, without an event
        object per entry, and nothing cached. Entries the ledger stored were checked when
        stored; ``verify`` checks them again."""
        try:
            rows = self.recorder.select_events(aggregate_id)
        except PersistenceError as exc:
            raise unreachable(self.location, exc) from None
        acts = []
        for row in rows:
            if row.topic not in ENTRY_TOPICS:
                raise VerificationFailed(
                    f"the stored events of {aggregate_id} cannot be replayed (unexpected event "
                    f"type {row.topic!r}); 'ledger verify' names the damage")
            state = self.decode_state(row)
            try:
                acts.append((Entry.parse_trusted(state["entry"]), state["timestamp"]))
            except InvalidInput as exc:
                raise VerificationFailed(
                    f"the stored entries of {aggregate_id} cannot be replayed (entry "
                    f"{row.originator_version}: {exc.diagnostics()}); 'ledger verify' names "
                    f"the damage") from None
        if [row.originator_version for row in rows] != list(range(1, len(rows) + 1)):
            raise VerificationFailed(
                f"the stored entries of {aggregate_id} cannot be replayed (versions are not "
                f"1, 2, 3...): they were deleted, moved or altered; 'ledger verify' names "
                f"the damage")
        try:
            return Agreement.replay(acts, check=False, ident=aggregate_id)
        except (LedgerError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # Whoever can write the database can store anything: name it, never a traceback.
            raise VerificationFailed(
                f"the stored entries of {aggregate_id} cannot be replayed "
                f"({type(exc).__name__}): they were altered; 'ledger verify' names the "
                f"damage") from None

    def decode_entry(self, row: StateRow | Notification) -> StoredEntry:
        """The entry and recorded time held by one stored event."""
        state = self.decode_state(row)
        originator = row.originator_id
        return StoredEntry(row.id, originator.hex if isinstance(originator, UUID) else originator,
                           row.originator_version, row.topic, state["entry"], state["timestamp"])

    # --- acting --------------------------------------------------------------------------------

    def submit(self, entry: Entry, recorded: datetime | None = None) -> Agreement:
        """Check and store an entry a partner signed elsewhere, with every rule the core
        applies to its own acts: the door for an entry that arrives already signed (a
        partner's act posted to ``ledger serve``; the forgery tests offer what an attacker
        would). An act already recorded (the same partner and act identity) raises
        :class:`AlreadyRecorded` naming the entry that recorded it; one that no longer
        follows the agreement's last entry is refused, to be signed again."""
        now = recorded or self.clock()
        # What is stored is the entry's text: check the statement read from it, not one that
        # merely came along with it.
        entry = Entry.parse(entry.text)
        s = entry.statement
        if s.action == "draft":
            if self.exists(s.agreement):
                landed = (self.agreement(s.agreement, copy=False).entry_of_act(s.partner, s.act)
                          if s.act is not None else None)
                if landed is not None:
                    # Only a draft signed by the key it brings claims the act.
                    Agreement.check_own_key(entry)
                    raise AlreadyRecorded(
                        f"act {s.act} of {s.partner!r} is already recorded as entry 1 of "
                        f"{s.agreement!r}; it is not recorded twice", 1)
                raise InvalidInput(f"agreement {s.agreement!r} already exists in this ledger")
            agreement = Agreement.draft(entry, self.origin, now)
        else:
            # The cached agreement itself, as an act of this ledger's own uses it: changed only
            # by a check that passed, and forgotten below if the write does not land.
            agreement = self._current(s.agreement)
            try:
                agreement.record(entry, now)
            except AlreadyRecorded:
                raise
            except RuleViolation:
                # The cache may be behind another process's writes: check against the stored
                # agreement before refusing. A failed check left the cached agreement as it
                # was, so it is brought forward (the entries stored since it, read and applied)
                # rather than read again whole.
                agreement = self.agreement(s.agreement, copy=False)
                agreement.record(entry, now)
        try:
            self._save(agreement)
        except IntegrityError:
            self._forget(s.agreement)
            raise AgreementBusy(f"agreement {s.agreement!r} changed while the entry was "
                                f"being stored; try again") from None
        except BaseException:
            self._forget(s.agreement)
            raise
        return agreement

    def store_verified(self, events: Sequence[StoredEvent]) -> None:
        """Store events made from records that have already passed every check (a verified
        bundle: :func:`projections.audit.import_bundle`), in the given order, in one
        transaction: all of them or, if anything stops it, none.

        The bundle's verification read every entry strictly and replayed every agreement
        through the same aggregate; the entries keep their order so that the copy's log is the
        original's.
        """
        self.store_in_one_transaction([events])

    def store_in_one_transaction(self, batches: Iterable[Sequence[StoredEvent]]) -> None:
        """:meth:`store_verified` of events that come a batch at a time: each batch is written
        as it comes, all of them in one transaction, committed once ``batches`` ends. If it
        raises instead (a check of what was written failed), nothing is stored.
        """
        # eventsourcing inserts a list of events in a transaction of its own; its recorders'
        # insert step within a transaction is what writes one list after another here.
        recorder: Any = self.recorder
        identity = locked = False
        try:
            with recorder.datastore.transaction(commit=True) as cursor:
                for events in batches:
                    if not events:
                        continue
                    if self.location.is_sqlite:
                        recorder._insert_events(cursor, events)
                    else:
                        if not locked:
                            # As eventsourcing inserts: the table's lock first, so that the
                            # notification ids are given in commit order.
                            recorder._lock_table(cursor)
                            recorder._notify_channel(cursor)
                            locked = True
                        copy_events(recorder, cursor, events)
                    identity = identity or any(e.originator_id == IDENTITY_ID for e in events)
        except IntegrityError:
            raise InvalidInput("these entries hold one agreement's entry twice, or the ledger "
                               "already holds some of them; import into an empty ledger") \
                from None
        except PersistenceError as exc:
            raise refused(self.location, exc) from None
        if identity:
            make_append_only(self.location)

    def identity_event(self, origin: str, operator: str, operator_key: bytes) -> StoredEvent:
        """The stored event of a new ledger's identity, as :meth:`initialise` would write it."""
        parse_origin(origin)
        identity = LedgerIdentity.initialise(origin, operator, operator_key)
        stored: StoredEvent = self.mapper.to_stored_event(identity.collect_events()[0])
        return stored

    def checkpoint_events_of(self, record: CheckpointRecord) -> list[StoredEvent]:
        """The stored events of a checkpoint and its cosignatures, not yet saved."""
        return [self.mapper.to_stored_event(e) for e in record.collect_events()]

    def entry_event(self, entry: Entry, recorded: datetime) -> Any:
        """The event that records ``entry`` (its agreement's next), as an act would save it."""
        s = entry.statement
        uuid = agreement_id(s.agreement)
        if s.action == "draft":
            return Agreement.Drafted(  # type: ignore[call-arg]
                originator_id=uuid, originator_version=s.seq, timestamp=recorded,
                originator_topic=get_topic(Agreement), entry=entry.text)
        return Agreement.EVENTS[s.action](  # type: ignore[call-arg]
            originator_id=uuid, originator_version=s.seq, timestamp=recorded, entry=entry.text)

    def stored_event(self, entry: VerifiedEntry) -> StoredEvent:
        """:meth:`entry_event` as the event store holds it.

        With eventsourcing's JSON transcoding and neither cipher nor compressor, the stored
        state is written directly, byte for byte what the mapper writes (a test compares them),
        without making the event first.
        """
        if self.mapper.cipher or self.mapper.compressor or type(
                self.mapper.transcoder) is not JSONTranscoder:
            stored: StoredEvent = self.mapper.to_stored_event(
                self.entry_event(Entry.parse_trusted(entry.text), entry.recorded))
            return stored
        state = codec.write_state(entry.text, entry.recorded,
                                  _AGREEMENT_TOPIC if entry.action == "draft" else None)
        return StoredEvent(originator_id=agreement_id(entry.agreement),
                           originator_version=entry.seq, topic=_EVENT_TOPICS[entry.action],
                           state=state)

    def _act(self, reference: str, partner: str, action: str, body: BodyOf, signer: Signer,
             at: datetime | None) -> Recorded:
        parse_slug(reference, "agreement reference")
        parse_slug(partner, "partner id")
        stated = None if at is None else at.astimezone(UTC).replace(microsecond=0)
        origin = self.origin
        # The act's identity, chosen once: every attempt below signs the same act, so that an
        # attempt which landed although its answer was lost is recognised, never made twice.
        act = self.new_act()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            agreement: Agreement | None = None
            if action == "draft":
                if self.exists(reference):
                    landed = self._landed(reference, partner, act)
                    if landed is not None:
                        return Recorded(landed.entry, self.agreement(reference), attempt)
                    raise InvalidInput(f"agreement {reference!r} already exists; "
                                       f"choose another reference")
            else:
                # The cached agreement itself, not a copy: it is changed only by a check that
                # passed, and forgotten below if the write does not land.
                agreement = self._current(reference)
                landed = agreement.entry_of_act(partner, act)
                if landed is not None:
                    return Recorded(landed.entry, agreement, attempt)
            # An act with no stated time is done "now": at each attempt.
            entry = signed_entry(origin, reference, agreement, action, partner, signer, body,
                                 act, stated, self.clock)
            now = self.clock()
            if agreement is None:
                agreement = Agreement.draft(entry, origin, now)
            else:
                agreement.record(entry, now)
            try:
                # The event store directly: Application.save checks each object against
                # runtime protocols first, which costs more than the rest of an act's Python.
                self.events.put(agreement.collect_events())
            except (IntegrityError, OperationalError, InterfaceError):
                # IntegrityError: the seq is taken, usually by another act that landed first,
                # but possibly by this very act (the store's client retries an insert whose
                # connection broke after it committed). A broken connection: the write may or
                # may not have committed. Either way the store is asked (waiting for it to come
                # back) whether this act is recorded, by its identity.
                self._forget(reference)
                landed = self._landed(reference, partner, act)
                if landed is not None:
                    return Recorded(landed.entry, self.agreement(reference), attempt)
                # Back off a little, then re-read and re-sign, and for a while read before
                # acting on this agreement (it is busy).
                self._conflicts[reference] = time.monotonic()
                time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 - jitter only
                continue
            except PersistenceError as exc:
                self._forget(reference)
                raise refused(self.location, exc) from None
            except BaseException:
                self._forget(reference)
                raise
            return Recorded(entry, agreement, attempt)
        raise AgreementBusy(f"agreement {reference!r} is busy: other acts kept landing first "
                            f"({MAX_ATTEMPTS} attempts); nothing was written, try again")

    def _current(self, reference: str) -> Agreement:
        """The agreement to act on: the cached one as it is, else loaded (see :meth:`_forget`).

        A cached agreement is not first brought up to date: if another process has acted on
        it since, this act's entry takes a ``seq`` already stored, the store refuses it, and
        the next attempt loads the agreement afresh. Optimistic concurrency makes the read
        before each write unnecessary.
        """
        parse_slug(reference, "agreement reference")
        cache = self.repository.cache
        quiet = time.monotonic() - self._conflicts.get(reference, -CONTENDED_FOR) > CONTENDED_FOR
        if cache is not None and quiet:
            with contextlib.suppress(KeyError):
                cached: Any = cache.get(agreement_id(reference))
                if isinstance(cached, Agreement):
                    return cached
        return self.agreement(reference, copy=False)

    def _forget(self, reference: str) -> None:
        """Drop a cached agreement whose change did not reach the store."""
        cache = self.repository.cache
        if cache is not None:
            with contextlib.suppress(KeyError):  # not cached: nothing to forget
                cache.get(agreement_id(reference), evict=True)

    def _landed(self, reference: str, partner: str, act: str) -> Acted | None:
        """The stored entry of ``partner``'s act ``act`` on ``reference``, if it landed; waits
        up to RECONNECT_WAIT for the store to answer."""
        deadline = time.monotonic() + RECONNECT_WAIT
        while True:
            try:
                agreement = self.agreement(reference, copy=False)
            except NotFound:
                return None  # a draft that did not land
            except StorageError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            return agreement.entry_of_act(partner, act)

    # --- checkpoints ---------------------------------------------------------------------------

    def record_checkpoint(self, note: SignedNote) -> CheckpointRecord:
        """Keep a checkpoint signed by this ledger's operator (the same size twice: kept once)."""
        identity = self.identity
        record = CheckpointRecord.record(note, identity.origin, identity.operator,
                                         identity.operator_public_key)
        try:
            self._save(record)
        except IntegrityError:
            existing = self.checkpoint_record(record.checkpoint.size)
            if existing.note != record.note:
                raise VerificationFailed(
                    f"a different checkpoint of size {record.checkpoint.size} is already "
                    f"stored: the log has forked") from None
            return existing
        return record

    def checkpoint_record(self, size: int) -> CheckpointRecord:
        """The stored checkpoint of a log of ``size`` entries."""
        try:
            found = self._get(checkpoint_id(size))
        except NotFound:
            raise NotFound(f"no checkpoint of size {size} is stored") from None
        assert isinstance(found, CheckpointRecord)
        return found

    def add_cosignature(self, size: int, witness: str, public_key: bytes,
                        signature: NoteSignature) -> CheckpointRecord:
        """Keep a partner's cosignature of the checkpoint of ``size`` entries."""
        line = signature.line()
        for _attempt in range(MAX_ATTEMPTS):
            record = self.checkpoint_record(size)
            if any(stored == line for _, _, stored in record.cosignatures):
                return record  # stored by an earlier try whose answer was lost
            record.cosign(witness, public_key, signature)
            try:
                self._save(record)
            except IntegrityError:
                continue
            return record
        raise AgreementBusy(f"checkpoint {size} is busy; try again")

    def checkpoint_events(self, stop: int | None = None,
                          start: int = 1) -> Iterator[tuple[int, Any]]:
        """Every checkpoint and cosignature event from notification ``start`` up to ``stop``,
        in commit order (for verification); one that cannot be read raises
        :class:`VerificationFailed`."""
        position = start
        topics = (CheckpointRecord.Signed.TOPIC, CheckpointRecord.Cosigned.TOPIC)
        while True:
            try:
                rows = self.recorder.select_notifications(position, 1000, stop=stop,
                                                          topics=topics)
            except PersistenceError as exc:
                raise unreachable(self.location, exc) from None
            for row in rows:
                try:
                    event = self.mapper.to_domain_event(row)
                except Exception as exc:  # noqa: BLE001 - stored data is untrusted: name it
                    raise VerificationFailed(
                        f"stored checkpoint event (notification {row.id}) cannot be read "
                        f"({type(exc).__name__}): it was altered") from None
                yield row.id, event
            if len(rows) < 1000:
                return
            position = rows[-1].id + 1

    # --- storage, with its errors translated ---------------------------------------------------

    def _save(self, *aggregates: Any) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise
        except (OperationalError, InterfaceError) as exc:
            raise unreachable(self.location, exc) from None
        except PersistenceError as exc:
            raise refused(self.location, exc) from None

    def _get(self, aggregate_id: UUID, version: int | None = None) -> Any:
        return self.load(aggregate_id, version)

    def load(self, aggregate_id: UUID, version: int | None = None, *, copy: bool = True) -> Any:
        """An aggregate from its events, up to ``version``; ``copy=False`` hands out the cached
        object itself, for readers that do not change it. An agreement is replayed from its
        entries (:meth:`Agreement.replay`); the ledger's identity and checkpoints by their
        events."""
        try:
            return self.repository.get(aggregate_id, version=version, projector_func=_project,
                                       deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            raise NotFound(f"nothing stored under {aggregate_id}") from None
        except PersistenceError as exc:
            raise unreachable(self.location, exc) from None
        except (EventSourcingError, TopicError, ValueError, TypeError, KeyError,
                AttributeError, AssertionError) as exc:
            # Events deleted, moved or altered behind the ledger's back cannot be replayed.
            raise VerificationFailed(
                f"the stored entries of {aggregate_id} cannot be replayed "
                f"({type(exc).__name__}): they were deleted, moved or altered; "
                f"'ledger verify' names the damage") from None


_AGREEMENT_TOPIC = get_topic(Agreement)
_EVENT_CLASSES: dict[str, type] = {"draft": Agreement.Drafted, **Agreement.EVENTS}
_ENTRY_EVENT_TYPES = frozenset(_EVENT_CLASSES.values())
_EVENT_TOPICS = {"draft": get_topic(Agreement.Drafted),
                 **{action: get_topic(cls) for action, cls in Agreement.EVENTS.items()}}


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """An aggregate from its events: an agreement replayed from its entries, anything else
    by applying its events in turn (eventsourcing's default checks each against a runtime
    protocol, which costs more than applying it).

    Stored entries were checked when stored, but whoever can write the database can put
    anything there: whatever applying one does wrong is named, never a traceback.
    """
    events = list(events)
    if isinstance(aggregate, Agreement) or (events and type(events[0]) in _ENTRY_EVENT_TYPES):
        return _replay_agreement(aggregate, events)
    for event in events:
        try:
            aggregate = event.mutate(aggregate)
        except (LedgerError, LookupError, TypeError, ValueError, AttributeError,
                AssertionError) as exc:
            why = exc.diagnostics() if isinstance(exc, LedgerError) else type(exc).__name__
            raise VerificationFailed(
                f"the stored entries of {event.originator_id} cannot be replayed (entry "
                f"{event.originator_version}: {why}); 'ledger verify' names the damage"
            ) from None
    return aggregate


def _replay_agreement(agreement: Agreement | None, events: list[Any]) -> Agreement | None:
    """An agreement from its stored events (after ``agreement``, if the cache holds it),
    through :meth:`Agreement.replay`, as every reader of stored entries rebuilds one."""
    if not events:
        return agreement
    first = agreement.version + 1 if agreement is not None else 1
    ident = agreement.id if agreement is not None else events[0].originator_id

    def acts() -> Iterator[tuple[Entry, datetime]]:
        for version, event in enumerate(events, first):
            if event.originator_id != ident or event.originator_version != version:
                raise VerificationFailed(
                    f"stored event {event.originator_version} is not entry {version}")
            entry = Entry.parse_trusted(event.entry)
            kind: type = type(event)
            if kind is not _EVENT_CLASSES.get(entry.statement.action):
                raise VerificationFailed(
                    f"entry {version} is a {entry.statement.action!r} but is stored as a "
                    f"{kind.__name__!r} event")
            yield entry, event.timestamp

    try:
        return Agreement.replay(acts(), check=False, start=agreement, ident=ident)
    except (LedgerError, LookupError, TypeError, ValueError, AttributeError) as exc:
        why = exc.diagnostics() if isinstance(exc, LedgerError) else type(exc).__name__
        raise VerificationFailed(
            f"the stored entries of {ident} cannot be replayed ({why}); 'ledger verify' "
            f"names the damage") from None


def _missing_table(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def unreachable(location: Location, exc: BaseException) -> StorageError:
    """One line naming the database and what to check."""
    return location.unreachable(exc)


def refused(location: Location, exc: BaseException) -> StorageError:
    """The database refused a write it could reach: say so, and why."""
    text = str(exc).strip()
    detail = text.splitlines()[0] if text else type(exc).__name__
    if "permission denied" in detail.lower() or "append-only" in detail.lower():
        return StorageError(f"{location.describe()} refused the write ({detail}); this role may "
                            f"only read the ledger: act with the ledger's writer role")
    return StorageError(f"{location.describe()} refused the write: {detail}")


def as_of_version(acts: Sequence[Acted], day: date) -> int:
    """How many entries of an agreement had been made by the end of ``day``."""
    return sum(1 for act in acts if act.entry.statement.at.date() <= day)

