"""Verification of the log: the stored tree against the entries, and every checkpoint.

Three passes, each streaming in batches so memory stays flat however long the log:

1. the entries, read back from the event store in commit order, are hashed into leaves and
   compared with the stored leaves (the dense index, its notification ids and level 0);
2. every stored interior node is recomputed from the two stored nodes below it, level by
   level, so an altered node anywhere in the tree is found;
3. every checkpoint kept in the event store must carry the operator's valid signature, fit in
   the log, and have the root the entries give at its size; every cosignature must verify under
   the key of the partner that made it. Since every checkpoint is checked against one tree of
   the entries, they are all consistent with each other, or verification fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from ledger import merkle
from ledger.checkpoints import CheckpointRecord
from ledger.domain import Agreement
from ledger.errors import LedgerError
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
from projections.db import reading
from projections.log import MerkleLog
from projections.models import LogLeafRow, LogNodeRow

CHUNK = 5000


class LogCheck:
    """Checks the stored log of a ledger against its event store."""

    def __init__(self, log: MerkleLog) -> None:
        self.log = log
        self.failures: list[Failure] = []
        self.partner_keys: dict[str, set[bytes]] = {}
        self.tree_ok = True
        self.unsequenced = False
        #: Ids of the drafted agreements, when the entries' pass should also find orphans.
        self.drafted: set[Any] | None = None
        self.orphans: set[Any] = set()
        self.size = self.stored = 0

    def __call__(self, agreement: Agreement, whole: bool = True) -> None:  # noqa: ARG002
        """Learn the keys each partner held (cosignatures are made with them)."""
        for partner in agreement.partners.values():
            keys = self.partner_keys.setdefault(partner.id, set())
            keys.update(s.public_key for s in partner.signatories)

    def _orphan(self, originator: Any) -> None:
        if originator not in self.orphans:
            self.orphans.add(originator)
            self._fail(f"entries stored under {originator} belong to no drafted agreement "
                       f"(its draft was deleted or the entries were forged)")

    def _fail(self, what: str, index: int | None = None, reference: str | None = None,
              seq: int | None = None) -> None:
        self.failures.append(Failure(what, reference, seq, index))

    # --- pass 1: leaves ------------------------------------------------------------------------

    def _stored_leaves(self) -> Iterator[tuple[int, int, str, int, bytes | None]]:
        start = 0
        with reading(self.log.engine) as conn:
            while True:
                rows = conn.execute(
                    select(LogLeafRow.index, LogLeafRow.notification_id, LogLeafRow.reference,
                           LogLeafRow.seq, LogNodeRow.hash)
                    .join(LogNodeRow, (LogNodeRow.level == 0)
                          & (LogNodeRow.index == LogLeafRow.index), isouter=True)
                    .where(LogLeafRow.index >= start).order_by(LogLeafRow.index).limit(CHUNK)
                ).all()
                for row in rows:
                    yield (int(row[0]), int(row[1]), row[2], int(row[3]),
                           None if row[4] is None else bytes(row[4]))
                if len(rows) < CHUNK:
                    return
                start = int(rows[-1][0]) + 1

    def check_leaves(self, progress: Any = None) -> int:
        """Pass 1; returns how many entries the event store holds."""
        stored = self._stored_leaves()
        count = 0
        comparing = True  # until the first break in the log's order; counting goes on
        for entry in self.log.ledger.stored_entries():
            count += 1
            if self.drafted is not None and entry.originator_id not in self.drafted:
                self._orphan(entry.originator_id)
            if progress is not None and count % CHUNK == 0:
                progress(0)
            if not comparing:
                continue
            leaf = next(stored, None)
            if leaf is None and self.log.models.read_only:
                # This role may not extend the stored log; what it holds has been checked.
                self.unsequenced = True
                continue
            if leaf is None:
                self._fail("entry is in the event store but not in the stored log "
                           f"(notification {entry.notification_id}); run 'ledger rebuild'",
                           count - 1)
                comparing = self.tree_ok = False
                continue
            index, notification, reference, seq, digest = leaf
            if index != count - 1:
                self._fail(f"the stored log skips from index {count - 2} to {index}", count - 1)
                comparing = self.tree_ok = False
                continue
            if notification != entry.notification_id:
                self._fail(f"the log's entry (notification {notification}) is missing from "
                           f"the event store or out of order (found notification "
                           f"{entry.notification_id} there)", index, reference, seq)
                comparing = self.tree_ok = False
                continue
            if digest != merkle.leaf_hash(entry.entry_text.encode()):
                self._fail("leaf hash in the stored log does not match the entry in the "
                           "event store (the entry or the tree was altered)",
                           index, reference, seq)
                self.tree_ok = False
        if comparing:
            extra = next(stored, None)
            if extra is not None:
                self._fail(f"the stored log holds entries the event store does not "
                           f"(from notification {extra[1]}): entries were removed",
                           extra[0], extra[2], extra[3])
                self.tree_ok = False
        return count

    # --- pass 2: interior nodes ----------------------------------------------------------------

    def _level(self, level: int) -> Iterator[tuple[int, bytes]]:
        start = 0
        with reading(self.log.engine) as conn:
            while True:
                rows = conn.execute(
                    select(LogNodeRow.index, LogNodeRow.hash)
                    .where(LogNodeRow.level == level, LogNodeRow.index >= start)
                    .order_by(LogNodeRow.index).limit(CHUNK)).all()
                for index, digest in rows:
                    yield int(index), bytes(digest)
                if len(rows) < CHUNK:
                    return
                start = int(rows[-1][0]) + 1

    def check_nodes(self, size: int) -> None:
        """Pass 2: every stored node is the hash of its two children."""
        level = 1
        while (1 << level) <= size:
            children = self._level(level - 1)
            expected = size >> level
            seen = 0
            for index, digest in self._level(level):
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

    # --- pass 3: checkpoints -------------------------------------------------------------------

    def check_checkpoints(self, size: int) -> int:
        """Pass 3; returns how many checkpoints were checked."""
        ledger = self.log.ledger
        identity = ledger.identity
        notes: dict[str, SignedNote] = {}
        checked = 0
        with reading(self.log.engine) as conn:
            get = self.log.getter(conn)
            for _, event in ledger.checkpoint_events():
                try:
                    if isinstance(event, CheckpointRecord.Signed):
                        checked += 1
                        self._check_checkpoint(event.note, identity, size, get)
                        notes[str(event.originator_id)] = SignedNote.parse(event.note)
                    elif isinstance(event, CheckpointRecord.Cosigned):
                        self._check_cosignature(event, notes.get(str(event.originator_id)))
                except LedgerError as exc:
                    self._fail(f"checkpoint: {exc.diagnostics()}")
        return checked

    def _check_checkpoint(self, text: str, identity: Any, size: int, get: Any) -> None:
        note = SignedNote.parse(text)
        checkpoint = Checkpoint.parse(note.text)
        where = f"checkpoint of size {checkpoint.size}"
        if checkpoint.origin != identity.origin:
            self._fail(f"{where} names log {checkpoint.origin!r}, not {identity.origin!r}")
            return
        verify_note_signature(note, identity.operator, identity.operator_public_key)
        if checkpoint.size > size:
            self._fail(f"{where} is beyond the {size} entries in the event store: "
                       f"entries it covers were removed")
            return
        if self.tree_ok and checkpoint.size and merkle.root(checkpoint.size, get) != \
                checkpoint.root:
            self._fail(f"{where} has a root the entries do not give: the log was rewritten "
                       f"since it was signed")

    def _check_cosignature(self, event: Any, note: SignedNote | None) -> None:
        if note is None:
            self._fail(f"a cosignature by {event.witness!r} is for a checkpoint that is not "
                       f"stored")
            return
        public = bytes.fromhex(event.public_key)
        if public not in self.partner_keys.get(event.witness, set()):
            self._fail(f"a cosignature by {event.witness!r} was made with a key that partner "
                       f"never held")
            return
        signature = NoteSignature.parse_line(event.line.rstrip("\n"))
        if signature.key_id != note_key_id(event.witness, public, COSIGNATURE_KEY_TYPE):
            self._fail(f"the cosignature by {event.witness!r} does not match its key")
            return
        verify_cosignature(add_signatures(note, signature), event.witness, public)

    def check_log(self, progress: Any = None) -> None:
        """Passes 1 and 2: the stored leaves and nodes against the entries."""
        self.log.catch_up()
        self.size = self.check_leaves(progress)
        with reading(self.log.engine) as conn:
            self.stored = self.log.size(conn)
        if self.tree_ok:
            self.check_nodes(self.stored)

    def finish(self, report: Report) -> None:
        """Pass 3 (once the partners' keys are known), then everything into ``report``."""
        count = self.check_checkpoints(self.size)
        report.failures.extend(self.failures)
        if self.unsequenced:
            report.checks.append(f"the stored Merkle tree against the first {self.stored} of "
                                 f"{self.size} entries (this role may not extend the stored log)")
        else:
            report.checks.append(f"the stored Merkle tree against all {self.size} entries")
        report.checks.append(f"{count} checkpoints: operator signature, root, cosignatures")

    def run(self, report: Report, progress: Any = None) -> None:
        """All three passes; failures and checks go into ``report``."""
        self.check_log(progress)
        self.finish(report)
