"""Verification of the log: the tree the entries give, the stored tree, and every checkpoint.

Everything is checked as of one *snapshot*, the notifications up to a bound read when the check
begins: entries, checkpoints and cosignatures committed later (a writer acting meanwhile) are
neither checked nor mistaken for damage. Four passes, each streaming, so memory stays flat
however long the log:

1. the entries, read back from the event store in commit order, are hashed into leaves; the
   tree they give is recomputed from them alone (its root at every checkpoint's size, and at
   the snapshot's), and compared with the stored leaves (the dense index, its notification
   ids and level 0). Entries that belong to no drafted agreement are found here;
2. every stored interior node of the snapshot's tree is recomputed from the two stored nodes
   below it, level by level, so an altered or extra node anywhere in the tree is found;
3. every checkpoint kept in the event store must carry the operator's valid signature, fit in
   the log, and have the root the *entries* give at its size (never the stored tree's); every
   cosignature must verify under a key the partner named held;
4. the ``checkpoints`` and ``cosignatures`` tables must list exactly the checkpoints and
   cosignatures of the event store, as they are there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import func, or_, select

from ledger import merkle
from ledger.application import ENTRY_TOPICS, StoredEntry
from ledger.checkpoints import CheckpointRecord, checkpoint_id
from ledger.domain import agreement_id
from ledger.errors import LedgerError
from ledger.identity import LedgerIdentity
from ledger.note import (
    COSIGNATURE_KEY_TYPE,
    Checkpoint,
    NoteSignature,
    SignedNote,
    add_signatures,
    note_key_id,
    verify_cosignature,
    verify_note_signature,
)
from ledger.verify import Failure, Report
from ledger.witness import Witnesses
from projections.db import reading
from projections.log import MerkleLog, node_rows
from projections.models import CheckpointRow, CosignatureRow, LogLeafRow, LogNodeRow

CHUNK = 5000

#: Every type of event the ledger writes.
KNOWN_TOPICS = frozenset({*ENTRY_TOPICS, CheckpointRecord.Signed.TOPIC,
                          CheckpointRecord.Cosigned.TOPIC, LedgerIdentity.Initialised.TOPIC})


@dataclass(frozen=True)
class Remembered:
    """A checkpoint someone keeps outside the ledger's database (the operator the last it
    signed, a partner the last it cosigned): ``who``, for which log, its size and root."""

    who: str
    origin: str
    size: int
    root: bytes


class LogCheck:
    """Checks the log of a ledger, as of notification ``stop``, against its event store."""

    def __init__(self, log: MerkleLog, stop: int, drafted: set[UUID] | None = None,
                 remembered: Sequence[Remembered] = ()) -> None:
        self.log = log
        self.stop = stop
        #: Ids of the drafted agreements (``UUID.hex``): entries under any other are orphans.
        self.drafted = None if drafted is None else {uuid.hex for uuid in drafted}
        self.failures: list[Failure] = []
        self.tree_ok = True
        #: Whether every entry of the snapshot could be read (the tree is the whole log's).
        self.complete = True
        self.unsequenced = False
        self.orphans: set[str] = set()
        #: agreement id (``UUID.hex``) -> how many of its entries the snapshot holds
        self.versions: dict[str, int] = {}
        self._ids: dict[str, str] = {}
        #: the tree the entries give, and its root at each checkpoint's size
        self.tree = merkle.CompactRange()
        self.roots: dict[int, bytes] = {}
        self.stored = 0
        #: the checkpoint events of the snapshot, in commit order
        self.events: list[tuple[int, Any]] = list(log.ledger.checkpoint_events(stop=stop))
        self._sizes = {_size_of(e.note) for _, e in self.events
                       if isinstance(e, CheckpointRecord.Signed)}
        #: Checkpoints remembered outside the database (the operator's last signed, each
        #: partner's last cosigned): the entries must still give their roots.
        self.remembered = [r for r in remembered if r.origin == log.ledger.identity.origin]
        self._sizes |= {r.size for r in self.remembered}

    @property
    def size(self) -> int:
        """How many entries the snapshot holds."""
        return self.tree.size

    def _fail(self, what: str, index: int | None = None, reference: str | None = None,
              seq: int | None = None) -> None:
        self.failures.append(Failure(what, reference, seq, index))

    # --- pass 1: the entries, and the leaves --------------------------------------------------

    def _stored_leaves(self) -> Iterator[tuple[int, int, str, int, bytes | None]]:
        start = 0
        with reading(self.log.engine) as conn:
            while True:
                rows = conn.execute(
                    select(LogLeafRow.index, LogLeafRow.notification_id, LogLeafRow.reference,
                           LogLeafRow.seq, LogLeafRow.hash)
                    .where(LogLeafRow.index >= start).order_by(LogLeafRow.index).limit(CHUNK)
                ).all()
                for row in rows:
                    if int(row[1]) > self.stop:
                        return  # sequenced after the snapshot
                    yield (int(row[0]), int(row[1]), row[2], int(row[3]),
                           None if row[4] is None else bytes(row[4]))
                if len(rows) < CHUNK:
                    return
                start = int(rows[-1][0]) + 1

    def check_leaves(self, progress: Any = None) -> None:
        """Pass 1."""
        try:
            self._check_leaves(progress)
        except LedgerError as exc:
            # An entry that cannot even be read: the tree cannot be recomputed past it.
            self._fail(exc.diagnostics(), self.tree.size)
            self.tree_ok = self.complete = False

    def _check_leaves(self, progress: Any) -> None:
        stored = self._stored_leaves()
        comparing = True  # until the first break in the log's order; counting goes on
        versions = self.versions
        for entry in self.log.ledger.stored_entries(stop=self.stop):
            digest = merkle.leaf_hash(entry.entry_text.encode())
            index = self.tree.size
            self.tree.append(digest)
            if self.tree.size in self._sizes:
                self.roots[self.tree.size] = self.tree.root()
            originator = entry.originator_id
            versions[originator] = max(versions.get(originator, 0), entry.version)
            if self.drafted is not None and originator not in self.drafted:
                self._orphan(originator)
            if progress is not None and self.tree.size % CHUNK == 0:
                progress(0)
            if comparing:
                comparing = self._compare(next(stored, None), index, entry, digest)
        if comparing:
            extra = next(stored, None)
            if extra is not None:
                self._fail(f"the stored log holds entries the event store does not "
                           f"(from notification {extra[1]}): entries were removed",
                           extra[0], extra[2], extra[3])
                self.tree_ok = False

    def _compare(self, leaf: tuple[int, int, str, int, bytes | None] | None, count: int,
                 entry: StoredEntry, digest: bytes) -> bool:
        """Compare entry ``count`` with its stored leaf; whether to go on comparing."""
        notification_id = entry.notification_id
        if leaf is None and self.log.models.read_only:
            # This role may not extend the stored log; what it holds has been checked.
            self.unsequenced = True
            return False
        if leaf is None:
            self._fail("entry is in the event store but not in the stored log "
                       f"(notification {notification_id}); run 'ledger rebuild'", count)
            self.tree_ok = False
            return False
        index, notification, reference, seq, stored = leaf
        if index != count:
            self._fail(f"the stored log skips from index {count - 1} to {index}", count)
            self.tree_ok = False
            return False
        if notification != notification_id:
            self._fail(f"the log's entry (notification {notification}) is missing from "
                       f"the event store or out of order (found notification "
                       f"{notification_id} there)", index, reference, seq)
            self.tree_ok = False
            return False
        if stored != digest:
            self._fail("leaf hash in the stored log does not match the entry in the "
                       "event store (the entry or the tree was altered)", index, reference, seq)
            self.tree_ok = False
        if self._id(reference) != entry.originator_id or seq != entry.version:
            self._fail(f"the stored log says this is entry {seq} of {reference!r}, the event "
                       f"store holds another there (the log's tables were altered)",
                       index, reference, seq)
        return True

    def _id(self, reference: str) -> str:
        """The id (``UUID.hex``) of the agreement ``reference`` names."""
        found = self._ids.get(reference)
        if found is None:
            found = self._ids[reference] = agreement_id(reference).hex
        return found

    def _orphan(self, originator: str) -> None:
        if originator not in self.orphans:
            self.orphans.add(originator)
            self._fail(f"entries stored under {originator} belong to no drafted agreement "
                       f"(its draft was deleted or the entries were forged)")

    # --- pass 2: interior nodes ----------------------------------------------------------------

    def _level(self, level: int, below: int) -> Iterator[tuple[int, bytes]]:
        start = 0
        with reading(self.log.engine) as conn:
            while True:
                rows = conn.execute(node_rows(level, start, below).limit(CHUNK)).all()
                for index, digest in rows:
                    yield int(index), bytes(digest)
                if len(rows) < CHUNK:
                    return
                start = int(rows[-1][0]) + 1

    def check_nodes(self, size: int) -> None:
        """Pass 2: every stored node of the tree of ``size`` is the hash of its two children,
        and the tree holds no node of that size's subtrees that is not one of them."""
        level = 1
        while (1 << level) <= size:
            expected = size >> level
            children = self._level(level - 1, 2 * expected)
            seen = 0
            for index, digest in self._level(level, expected):
                left, right = next(children, None), next(children, None)
                if (left is None or right is None or left[0] != 2 * index
                        or right[0] != 2 * index + 1):
                    self._fail(f"tree node at level {level}, index {index} has missing "
                               f"children in the stored log")
                    self.tree_ok = False
                    return
                if digest != merkle.node_hash(left[1], right[1]):
                    self._fail(f"tree node at level {level}, index {index} is not the hash "
                               f"of its children: the stored tree was altered")
                    self.tree_ok = False
                    return
                seen += 1
            if seen != expected:
                self._fail(f"the stored tree has {seen} nodes at level {level}, "
                           f"a log of {size} entries has {expected}")
                self.tree_ok = False
                return
            level += 1
        self._check_no_stray_nodes()

    def _check_no_stray_nodes(self) -> None:
        # The stored tree of n leaves holds, at each level, the nodes below n >> level and no
        # other (the log after the snapshot included: leaves and their nodes are stored in one
        # transaction, and read here in one). One indexed look-up per level.
        with reading(self.log.engine) as conn:
            total = self.log.size(conn)
            # The leaves are log indexes 0 to total - 1, each once (those sequenced after the
            # snapshot too): a leaf outside them, which pass 1 takes for one sequenced later,
            # was inserted.
            count, first = conn.execute(
                select(func.count(), func.min(LogLeafRow.index))).one()
            if int(count) != total or (count and int(first) != 0):
                self._fail(f"the stored log holds {count} leaves from index {first} to "
                           f"{total - 1}, not log indexes 0 to {int(count) - 1}: leaves were "
                           f"inserted")
                self.tree_ok = False
                return
            # Levels 1 to bit_length - 1 hold nodes (the leaves' hashes are kept with them):
            # a row anywhere else, or before index 0, was inserted.
            levels = total.bit_length()
            stray = conn.execute(
                select(LogNodeRow.level, LogNodeRow.index)
                .where(or_(LogNodeRow.level < 1, LogNodeRow.level >= levels,
                           LogNodeRow.index < 0))
                .order_by(LogNodeRow.level, LogNodeRow.index).limit(1)).first()
            if stray is not None:
                self._fail(f"the stored tree holds a node at level {stray[0]}, index "
                           f"{stray[1]}, that no log of {total} entries has: it was inserted")
                self.tree_ok = False
                return
            for level in range(1, levels):
                last = conn.execute(select(func.max(LogNodeRow.index))
                                    .where(LogNodeRow.level == level)).scalar()
                if last is not None and int(last) >= total >> level:
                    self._fail(f"the stored tree holds a node at level {level}, index {last}, "
                               f"that no log of {total} entries has: it was inserted")
                    self.tree_ok = False
                    return

    # --- pass 3: checkpoints ---------------------------------------------------------------

    def check_checkpoints(self, witnesses: Witnesses) -> int:
        """Pass 3; returns how many checkpoints were checked."""
        identity = self.log.ledger.identity
        notes: dict[UUID, SignedNote] = {}
        #: each checkpoint's id -> its note as stored, and its cosignature lines
        filed: dict[UUID, tuple[str, list[str]]] = {}
        checked = 0
        for _, event in self.events:
            try:
                if isinstance(event, CheckpointRecord.Signed):
                    checked += 1
                    note = SignedNote.parse(event.note)
                    self._check_checkpoint(note, identity)
                    notes[event.originator_id] = note
                    filed[event.originator_id] = (event.note, [])
                elif isinstance(event, CheckpointRecord.Cosigned):
                    self._check_cosignature(event, notes.get(event.originator_id), witnesses)
                    filed.get(event.originator_id, ("", []))[1].append(event.line)
            except LedgerError as exc:
                self._fail(f"checkpoint: {exc.diagnostics()}")
        for uuid, (note_text, lines) in filed.items():
            if uuid in notes:
                self._check_filed(uuid, notes[uuid], note_text, lines)
        return checked

    def _check_filed(self, uuid: UUID, note: SignedNote, note_text: str,
                     lines: list[str]) -> None:
        """A checkpoint is read by its id (prove, export, cosign): its events must be filed
        under the id of its size, and read back by it as the log of events holds them."""
        size = Checkpoint.parse(note.text).size
        where = f"the checkpoint of size {size}"
        if uuid != checkpoint_id(size):
            self._fail(f"{where} is stored under another checkpoint's id: the event store "
                       f"was altered")
            return
        try:
            record = self.log.ledger.checkpoint_record(size)
        except LedgerError as exc:
            self._fail(f"{where} cannot be read by its id ({exc.diagnostics()}): the event "
                       f"store was altered")
            return
        # Cosignatures kept after the snapshot may follow those it holds.
        kept = [line for _, _, line in record.cosignatures]
        if record.note != note_text or kept[:len(lines)] != lines:
            self._fail(f"{where} reads otherwise by its id than in the log of events (its "
                       f"events are filed under ids that differ): the event store was altered")

    def _check_checkpoint(self, note: SignedNote, identity: Any) -> None:
        checkpoint = Checkpoint.parse(note.text)
        where = f"checkpoint of size {checkpoint.size}"
        if checkpoint.origin != identity.origin:
            self._fail(f"{where} names log {checkpoint.origin!r}, not {identity.origin!r}")
            return
        verify_note_signature(note, identity.operator, identity.operator_public_key)
        if checkpoint.size > self.size:
            self._fail(f"{where} is beyond the {self.size} entries in the event store: "
                       f"entries it covers were removed")
            return
        recomputed = self.roots.get(checkpoint.size, merkle.EMPTY_ROOT)
        if recomputed != checkpoint.root:
            self._fail(f"{where} has a root the entries do not give: the log was rewritten "
                       f"since it was signed")

    def _check_cosignature(self, event: Any, note: SignedNote | None,
                           witnesses: Witnesses) -> None:
        if note is None:
            self._fail(f"a cosignature by {event.witness!r} is for a checkpoint that is not "
                       f"stored")
            return
        public = bytes.fromhex(event.public_key)
        witnesses.check(event.witness, public, now=False)
        signature = NoteSignature.parse_line(event.line.rstrip("\n"))
        if signature.key_id != note_key_id(event.witness, public, COSIGNATURE_KEY_TYPE):
            self._fail(f"the cosignature by {event.witness!r} does not match its key")
            return
        verify_cosignature(add_signatures(note, signature), event.witness, public)
        witnesses.claim(event.witness, public)

    # --- pass 4: the checkpoint tables ---------------------------------------------------------

    def check_tables(self) -> None:
        """Pass 4: the ``checkpoints`` and ``cosignatures`` tables against the event store."""
        # A role that may not extend the log's tables may find them behind: what they hold
        # must still be right.
        complete = not self.log.models.read_only
        signed: dict[int, tuple[bytes, str, int]] = {}
        sizes: dict[UUID, int] = {}
        cosigned: dict[tuple[int, str, str], str] = {}
        for notification, event in self.events:
            if isinstance(event, CheckpointRecord.Signed):
                size = _size_of(event.note)
                if size is None:
                    continue  # pass 3 names it
                sizes[event.originator_id] = size
                signed[size] = (Checkpoint.parse(SignedNote.parse(event.note).text).root,
                                event.note, notification)
            elif isinstance(event, CheckpointRecord.Cosigned):
                size = sizes.get(event.originator_id, -1)
                kid = NoteSignature.parse_line(event.line.rstrip("\n")).key_id.hex()
                cosigned[(size, event.witness, kid)] = event.line
        with reading(self.log.engine) as conn:
            rows = conn.execute(select(CheckpointRow.size, CheckpointRow.root, CheckpointRow.note,
                                       CheckpointRow.notification_id)).all()
            lines = conn.execute(select(CosignatureRow.size, CosignatureRow.witness,
                                        CosignatureRow.key_id, CosignatureRow.line)).all()
        table = {int(size): (bytes(root), note, int(notification))
                 for size, root, note, notification in rows if int(notification) <= self.stop}
        for size in sorted(set(table) | set(signed)):
            if table.get(size) != signed.get(size) and (complete or size in table):
                what = ("is missing from" if size not in table else
                        "is not in the event store but in" if size not in signed else
                        "differs from the event store in")
                self._fail(f"the checkpoint of size {size} {what} the checkpoints table; run "
                           f"'ledger rebuild'")
        stored = {(int(size), witness, kid): text for size, witness, kid, text in lines
                  if int(size) in table}
        # Rows of cosignatures made after the snapshot are not damage; read those only if
        # some row is not one of the snapshot's.
        later = (self._later_cosignatures(sizes) if set(stored) - set(cosigned) else {})
        for line in sorted(set(stored) | set(cosigned)):
            have, want = stored.get(line), cosigned.get(line, later.get(line))
            if have != want and (complete or line in stored):
                size, witness, _ = line
                what = ("is missing from" if line not in stored else
                        "is not in the event store but in" if want is None else
                        "differs from the event store in")
                self._fail(f"the cosignature by {witness!r} of the checkpoint of size {size} "
                           f"{what} the cosignatures table; run 'ledger rebuild'")

    def _later_cosignatures(self, sizes: dict[UUID, int]) -> dict[tuple[int, str, str], str]:
        """Cosignatures committed after the snapshot, as the table would list them."""
        later: dict[tuple[int, str, str], str] = {}
        for _, event in self.log.ledger.checkpoint_events(start=self.stop + 1):
            if isinstance(event, CheckpointRecord.Cosigned) and event.originator_id in sizes:
                kid = NoteSignature.parse_line(event.line.rstrip("\n")).key_id.hex()
                later[(sizes[event.originator_id], event.witness, kid)] = event.line
        return later

    # --- what else the event store holds ----------------------------------------------------

    def check_event_types(self) -> None:
        """Every event of the snapshot is an entry, the identity, a checkpoint or a
        cosignature: anything else was put there behind the ledger's back."""
        found = self.log.models.event_topics(self.stop)
        unknown = {topic: count for topic, count in found.items() if topic not in KNOWN_TOPICS}
        for topic, count in sorted(unknown.items()):
            self._fail(f"the event store holds {count} event{'s' if count > 1 else ''} of a "
                       f"type the ledger never writes ({topic!r}): they were put there behind "
                       f"its back")

    def check_remembered(self) -> None:
        """Each checkpoint remembered outside the database must still be the entries' own."""
        for seen in self.remembered:
            where = f"the checkpoint of size {seen.size} that {seen.who} remembers"
            if seen.size > self.size:
                self._fail(f"{where} is beyond the {self.size} entries the event store holds: "
                           f"entries it covered were removed")
            elif self.complete and self.roots.get(seen.size) != seen.root:
                self._fail(f"{where} has a root the entries no longer give: the log was "
                           f"rewritten since")

    # --- all of it -------------------------------------------------------------------------------

    def check_log(self, progress: Any = None) -> None:
        """Passes 1 and 2: the entries' tree, and the stored leaves and nodes against it."""
        self.check_leaves(progress)
        self.stored = self.size
        if self.unsequenced:
            with reading(self.log.engine) as conn:
                self.stored = self.log.size(conn)
        if self.tree_ok:
            self.check_nodes(self.stored)

    def finish(self, report: Report) -> None:
        """Passes 3 and 4 (once the partners' keys are known), then everything into
        ``report``, with the tree the entries give."""
        count = self.check_checkpoints(report.witnesses)
        self.check_tables()
        self.check_event_types()
        self.check_remembered()
        report.failures.extend(self.failures)
        report.log_size, report.log_root = self.size, self.tree.root()
        if self.unsequenced:
            report.checks.append(f"the stored Merkle tree against the first {self.stored} of "
                                 f"{self.size} entries (this role may not extend the stored log)")
        else:
            report.checks.append(f"the stored Merkle tree against all {self.size} entries")
        report.checks.append(f"{count} checkpoints: operator signature, the root the entries "
                             f"give, cosignatures, and the checkpoint tables")


def _size_of(note: str) -> int | None:
    """The size a stored checkpoint note states, if it can be read (pass 3 names it if not)."""
    try:
        return Checkpoint.parse(SignedNote.parse(note).text).size
    except LedgerError:
        return None
