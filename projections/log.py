"""The log: every entry's dense index, the Merkle tree's stored nodes, and the checkpoints.

The sequencer reads the notification log in order and gives each entry the next index 0, 1,
2... (notification ids may have gaps on PostgreSQL; the index never does). With each leaf it
stores the hash of every complete subtree the leaf completes, so that a root, an inclusion proof
or a consistency proof reads O(log n) stored hashes (:mod:`ledger.merkle`). Leaves, nodes and the
tracking position are written in one transaction, as for every projection. Checkpoints and
cosignatures kept in the event store are listed here too, for finding the latest.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from ledger import merkle, tiles
from ledger.application import ENTRY_TOPICS, Ledger
from ledger.checkpoints import CheckpointRecord
from ledger.errors import InvalidInput, NotFound, VerificationFailed
from ledger.note import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    verify_cosignature,
    verify_note_signature,
)
from projections.db import insert_many, is_permission_error, reading, writing
from projections.models import CheckpointRow, CosignatureRow, LogLeafRow, LogNodeRow
from projections.store import Store

LOG = "log"
CHECKPOINT_TOPICS = (CheckpointRecord.Signed.TOPIC, CheckpointRecord.Cosigned.TOPIC)
BATCH = 2000
#: Tree nodes read at a time, and how many a reader keeps (see ``block_getter``).
NODE_BLOCK = 512
NODE_CACHE = 200_000

Progress = Callable[[int], None]

T = TypeVar("T")


@dataclass(frozen=True)
class LeafInfo:
    """Where an entry sits in the log."""

    index: int
    notification_id: int
    reference: str
    seq: int


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint with its cosignatures."""

    checkpoint: Checkpoint
    note: SignedNote
    cosigners: tuple[str, ...]


class ComputedLog:
    """The log computed from the entries themselves, held in memory.

    For a role that may read the ledger but not store its log (an auditor's), when the stored
    log is behind the entries: the indexes, roots and proofs are then what the entries give,
    never what a stale table says. It costs a read of every entry and about 400 bytes of memory
    per entry.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.leaves: list[LeafInfo] = []
        self.where: dict[tuple[str, int], int] = {}
        hashes = []
        for stored in ledger.stored_entries():
            reference, seq = _entry_place(stored.entry_text, stored.notification_id)
            self.where[(reference, seq)] = len(self.leaves)
            self.leaves.append(LeafInfo(len(self.leaves), stored.notification_id, reference,
                                        seq))
            hashes.append(merkle.leaf_hash(stored.entry_text.encode()))
        self.tree = merkle.Tree(hashes)
        self.checkpoints = sorted(
            Checkpoint.parse(SignedNote.parse(event.note).text).size
            for _, event in ledger.checkpoint_events()
            if isinstance(event, CheckpointRecord.Signed))

    @property
    def size(self) -> int:
        """How many entries the log holds."""
        return self.tree.size

    def check_size(self, size: int) -> None:
        """Refuse a tree size beyond the log."""
        if not 0 <= size <= self.size:
            raise InvalidInput(f"the log holds {self.size} entries; size {size} is beyond it")


def _entry_place(text: str, notification_id: int) -> tuple[str, int]:
    """The agreement and seq an entry's signed statement names."""
    try:
        statement = orjson.loads(text)["statement"]
        return str(statement["agreement"]), int(statement["seq"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise VerificationFailed(
            f"the stored entry of notification {notification_id} cannot be read: it was "
            f"altered; run 'ledger verify'") from None


class MerkleLog:
    """The ledger's log, as stored beside its read models (or, for a role that may not store
    it while it is behind, as computed from the entries: :class:`ComputedLog`)."""

    def __init__(self, models: Store) -> None:
        self.models = models
        self.ledger: Ledger = models.ledger
        self.engine: Engine = models.engine
        self._computed: ComputedLog | None = None

    def computed(self) -> ComputedLog | None:
        """The log computed from the entries, when this role may not bring the stored one up
        to date and it is behind; None when the stored log is to be read."""
        if self._computed is None:
            self.catch_up()
            if not self.models.read_only or not self._stored_behind():
                return None
            self._computed = ComputedLog(self.ledger)
        return self._computed

    def _stored_behind(self) -> bool:
        if self.models.stale:
            return True
        try:
            with reading(self.engine) as conn:
                start = self.models.position(conn, LOG)
        except ProgrammingError:
            return True  # no log tables at all
        return bool(self.ledger.recorder.select_notifications(
            start + 1, 1, topics=(*ENTRY_TOPICS, *CHECKPOINT_TOPICS)))

    # --- sequencing --------------------------------------------------------------------------

    def catch_up(self, batch: int = BATCH, progress: Progress | None = None) -> int:
        """Index every entry (and list every checkpoint) committed since the last catch-up."""
        self.models.ensure_tables()
        done = 0
        while True:
            try:
                with writing(self.engine) as conn:
                    start = self.models.position(conn, LOG, lock=True)
                    count, position = self.extend(conn, start, batch)
                    if not count:
                        return done
                    self.models.set_position(conn, LOG, position)
            except OperationalError as exc:
                raise self.ledger.location.unreachable(exc) from None
            except IntegrityError:
                # Only a log whose tables were edited makes the sequencer collide with itself.
                raise VerificationFailed(
                    "the stored log cannot be extended: what it would add collides with what "
                    "its tables hold (the entries or the log's tables were edited); run "
                    "'ledger verify', then 'ledger rebuild'") from None
            except ProgrammingError as exc:
                if not is_permission_error(exc):
                    raise
                self.models.refused_a_write()  # an auditor's role reads the log as it is
                return done
            done += count
            if progress is not None:
                progress(count)

    def extend(self, conn: Connection, start: int, batch: int = BATCH,
               stop: int | None = None) -> tuple[int, int]:
        """Sequence the next ``batch`` entries and checkpoints after notification ``start`` (up
        to ``stop``) through ``conn``, a write transaction the caller holds; return how many
        there were and the notification reached."""
        rows = self.ledger.states(start + 1, batch, stop, (*ENTRY_TOPICS, *CHECKPOINT_TOPICS))
        if not rows:
            return 0, start
        self._append(conn, rows)
        return len(rows), rows[-1].id

    def _append(self, conn: Connection, rows: Any) -> None:
        size = self.size(conn)
        fresh: dict[tuple[int, int], bytes] = {}

        def node(level: int, index: int) -> bytes:
            return fresh.get((level, index)) or self._node(conn, level, index)

        leaves: list[dict[str, Any]] = []
        checkpoints: list[dict[str, Any]] = []
        cosignatures: list[dict[str, Any]] = []
        for row in rows:
            if row.topic in ENTRY_TOPICS:
                text: str = self.ledger.decode_state(row)["entry"]
                reference, seq = _entry_place(text, row.id)
                leaf = merkle.leaf_hash(text.encode())
                leaves.append({"index": size, "notification_id": row.id,
                               "reference": reference, "seq": seq, "hash": leaf})
                fresh[(0, size)] = leaf
                for level, index, digest in merkle.nodes_to_store(size, leaf, node)[1:]:
                    fresh[(level, index)] = digest
                size += 1
                continue
            self._checkpoint_rows(row.id, checkpoints, cosignatures)
        for table, values in ((LogLeafRow, leaves), (CheckpointRow, checkpoints),
                              (CosignatureRow, cosignatures)):
            insert_many(conn, table, values)
        insert_many(conn, LogNodeRow, [{"level": lv, "index": ix, "hash": h}
                                       for (lv, ix), h in fresh.items() if lv])

    def _checkpoint_rows(self, notification_id: int, checkpoints: list[dict[str, Any]],
                         cosignatures: list[dict[str, Any]]) -> None:
        """The row of a checkpoint or cosignature (a few in a ledger), from its whole stored
        event."""
        row = self.ledger.recorder.select_notifications(notification_id, 1)[0]
        try:
            event: Any = self.ledger.mapper.to_domain_event(row)
        except Exception as exc:  # noqa: BLE001 - stored data is untrusted: name it
            raise VerificationFailed(
                f"the stored checkpoint event of notification {row.id} cannot be read "
                f"({type(exc).__name__}): it was altered; run 'ledger verify'") from None
        if row.topic == CheckpointRecord.Signed.TOPIC:
            note = SignedNote.parse(event.note)
            cp = Checkpoint.parse(note.text)
            checkpoints.append({"size": cp.size, "root": cp.root, "note": event.note,
                                "notification_id": row.id})
        elif row.topic == CheckpointRecord.Cosigned.TOPIC:
            sig = NoteSignature.parse_line(event.line.rstrip("\n"))
            cosignatures.append({
                "size": self._checkpoint_size(row.originator_id),
                "witness": event.witness, "key_id": sig.key_id.hex(),
                "timestamp": int.from_bytes(sig.signature[:8], "big"), "line": event.line})

    def _checkpoint_size(self, uuid: Any) -> int:
        record: Any = self.ledger.load(uuid, version=1)
        return int(Checkpoint.parse(SignedNote.parse(record.note).text).size)

    # --- reading the tree --------------------------------------------------------------------

    @staticmethod
    def size(conn: Connection) -> int:
        """How many entries the log holds."""
        last = conn.execute(select(func.max(LogLeafRow.index))).scalar()
        return 0 if last is None else int(last) + 1

    @staticmethod
    def _node(conn: Connection, level: int, index: int) -> bytes:
        row = conn.execute(node_rows(level, index, index + 1)).first()
        found = None if row is None else row[1]
        if found is None:
            raise NotFound(f"the log has no node at level {level}, index {index}; "
                           f"run 'ledger rebuild' if the log tables were damaged")
        return bytes(found)

    @staticmethod
    def block_getter(conn: Connection) -> merkle.GetNode:
        """Read stored nodes through ``conn`` a block of a level at a time.

        The proofs of neighbouring entries share most of their nodes, so for many proofs this
        turns thousands of lookups into a few dozen queries. The cache is bounded.
        """
        cache: dict[tuple[int, int], bytes] = {}

        def get(level: int, index: int) -> bytes:
            found = cache.get((level, index))
            if found is None:
                if len(cache) > NODE_CACHE:
                    cache.clear()
                start = index - index % NODE_BLOCK
                for at, digest in conn.execute(node_rows(level, start, start + NODE_BLOCK)):
                    cache[(level, int(at))] = bytes(digest)
                found = cache.get((level, index))
            if found is None:
                raise NotFound(f"the log has no node at level {level}, index {index}; "
                               f"run 'ledger rebuild' if the log tables were damaged")
            return found
        return get

    def inclusions(self, indexes: Iterable[int], size: int) -> dict[int, list[bytes]]:
        """Inclusion proofs of many entries in the tree of ``size``, through one connection."""
        computed = self.computed()
        if computed is not None:
            computed.check_size(size)
            return {index: merkle.inclusion_proof(index, size, computed.tree.node)
                    for index in indexes}
        with reading(self.engine) as conn:
            self._check_size(conn, size)
            get = self.block_getter(conn)
            return {index: merkle.inclusion_proof(index, size, get) for index in indexes}

    def current_size(self) -> int:
        """The size of the log after catching up."""
        computed = self.computed()
        if computed is not None:
            return computed.size
        with reading(self.engine) as conn:
            return self.size(conn)

    def root(self, size: int) -> bytes:
        """The root of the tree of the first ``size`` entries."""
        return self._over_tree(size, lambda get: merkle.root(size, get))

    def peaks(self, size: int) -> list[bytes]:
        """The roots of the complete subtrees that make up the first ``size`` entries
        (:func:`ledger.merkle.peaks`): what the tree grows from."""
        return self._over_tree(size, lambda get: merkle.peaks(size, get))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """An inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        if not 0 <= index < size:
            self.current_size()
            raise InvalidInput(f"log index {index} is not in a log of {size} entries")
        return self._over_tree(size, lambda get: merkle.inclusion_proof(index, size, get))

    def _over_tree(self, size: int, compute: Callable[[merkle.GetNode], T]) -> T:
        """``compute`` over the tree of ``size`` entries: the log computed from the entries
        where the stored one is behind them, else the stored nodes it needs, read in one query
        after the log's size."""
        computed = self.computed()
        if computed is not None:
            computed.check_size(size)
            return compute(computed.tree.node)
        with reading(self.engine) as conn:
            self._check_size(conn, size)
            return self._planned(conn, compute)

    @staticmethod
    def _planned(conn: Connection, compute: Callable[[merkle.GetNode], T]) -> T:
        """``compute`` over stored nodes read in one query. Which nodes a root or a proof
        needs depends only on the sizes and indexes, never on the hashes: a first run with
        stand-in hashes names them, and the second runs on them as stored."""
        wanted: set[tuple[int, int]] = set()

        def plan(level: int, index: int) -> bytes:
            wanted.add((level, index))
            return bytes(merkle.HASH_SIZE)

        compute(plan)
        found: dict[tuple[int, int], bytes] = {}
        by_level: dict[int, list[int]] = {}
        for level, index in sorted(wanted):
            by_level.setdefault(level, []).append(index)
        leaves = by_level.pop(0, [])
        parts = [select(literal(0).label("level"), LogLeafRow.index, LogLeafRow.hash)
                 .where(LogLeafRow.index.in_(leaves))] if leaves else []
        if by_level:
            # A condition for each level, each on the primary key: SQLite scans the whole
            # table for (level, index) IN (...) pairs.
            parts.append(select(LogNodeRow.level, LogNodeRow.index, LogNodeRow.hash).where(
                or_(*(and_(LogNodeRow.level == level, LogNodeRow.index.in_(indexes))
                      for level, indexes in by_level.items()))))
        if parts:
            found = {(int(level), int(index)): bytes(digest)
                     for level, index, digest in conn.execute(
                         parts[0] if len(parts) == 1 else union_all(*parts))}

        def get(level: int, index: int) -> bytes:
            digest = found.get((level, index))
            if digest is None:
                raise NotFound(f"the log has no node at level {level}, index {index}; "
                               f"run 'ledger rebuild' if the log tables were damaged")
            return digest

        return compute(get)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        """A consistency proof from the tree of ``size1`` entries to that of ``size2``."""
        if not 0 < size1 <= size2:
            raise InvalidInput(f"a consistency proof needs 0 < from <= to "
                               f"(got {size1} and {size2})")
        return self._over_tree(size2, lambda get: merkle.consistency_proof(size1, size2, get))

    def trusted_root(self, size: int) -> bytes:
        """The root of the tree of ``size`` entries, from what can be trusted: the signed
        checkpoint of that size, or else the entries themselves (never the stored nodes)."""
        if size < 0 or size > self.current_size():
            raise InvalidInput(f"the log holds {self.current_size()} entries; size {size} is "
                               f"beyond it")
        if self.computed() is not None:
            signed = size in self._signed_sizes()
        else:
            with reading(self.engine) as conn:
                signed = conn.execute(select(CheckpointRow.size).where(
                    CheckpointRow.size == size)).first() is not None
        if signed:
            return self.checkpoint(size).checkpoint.root
        tree = merkle.CompactRange()
        for entry in self.ledger.stored_entries():
            if tree.size == size:
                break
            tree.append(merkle.leaf_hash(entry.entry_text.encode()))
        return tree.root()

    def _check_size(self, conn: Connection, size: int) -> None:
        have = self.size(conn)
        if not 0 <= size <= have:
            raise InvalidInput(f"the log holds {have} entries; size {size} is beyond it")

    def leaf(self, index: int) -> LeafInfo:
        """Which entry sits at log index ``index``."""
        computed = self.computed()
        if computed is not None:
            if not 0 <= index < computed.size:
                raise NotFound(f"the log has no entry at index {index}")
            return computed.leaves[index]
        with reading(self.engine) as conn:
            row = conn.execute(select(LogLeafRow).where(LogLeafRow.index == index)).first()
        if row is None:
            raise NotFound(f"the log has no entry at index {index}")
        data = row._mapping
        return LeafInfo(data["index"], data["notification_id"], data["reference"], data["seq"])

    def index_of(self, reference: str, seq: int) -> int:
        """The log index of entry ``seq`` of agreement ``reference``."""
        computed = self.computed()
        if computed is not None:
            found: Any = computed.where.get((reference, seq))
        else:
            with reading(self.engine) as conn:
                found = conn.execute(select(LogLeafRow.index).where(
                    LogLeafRow.reference == reference, LogLeafRow.seq == seq)).scalar()
        if found is None:
            raise NotFound(f"agreement {reference!r} has no entry {seq} in the log")
        return int(found)

    def indexes(self, reference: str) -> dict[int, int]:
        """seq -> log index for every entry of one agreement."""
        computed = self.computed()
        if computed is not None:
            return {seq: index for (ref, seq), index in computed.where.items()
                    if ref == reference}
        with reading(self.engine) as conn:
            return {int(seq): int(index) for index, seq in conn.execute(
                select(LogLeafRow.index, LogLeafRow.seq).where(
                    LogLeafRow.reference == reference))}

    # --- tiles (C2SP tlog-tiles) -------------------------------------------------------------

    def tile(self, level: int, index: int, width: int) -> bytes:
        """The hashes of tile ``index`` at tile level ``level``, ``width`` of them: the nodes
        of tree level ``8 * level`` from ``index * 256`` on, each a complete subtree of the
        log as it stands (C2SP tlog-tiles, tile height 8)."""
        first, height = index * tiles.WIDTH, tiles.HEIGHT * level
        if (first + width) << height > self.current_size():
            raise NotFound(f"the log does not yet hold tile {level}/{index} of width {width}")
        computed = self.computed()
        if computed is not None:
            return b"".join(computed.tree.node(height, first + k) for k in range(width))
        with reading(self.engine) as conn:
            found = dict(conn.execute(node_rows(height, first, first + width)).all())
        if len(found) != width:
            raise NotFound(f"the log's tables lack nodes of tile {level}/{index}; run "
                           f"'ledger rebuild'")
        return b"".join(bytes(found[first + k]) for k in range(width))

    def entries_tile(self, index: int, width: int) -> list[str]:
        """The entries at log indexes ``index * 256`` to ``index * 256 + width - 1``."""
        first = index * tiles.WIDTH
        if first + width > self.current_size():
            raise NotFound(f"the log does not yet hold entry tile {index} of width {width}")
        places = [self.leaf(first + k).notification_id for k in range(width)] \
            if self.computed() is not None else self._notification_ids(first, width)
        texts = {stored.notification_id: stored.entry_text for stored in
                 self.ledger.stored_entries(start=places[0], stop=places[-1])}
        return [texts[n] for n in places]

    def _notification_ids(self, first: int, width: int) -> list[int]:
        with reading(self.engine) as conn:
            found = dict(conn.execute(select(LogLeafRow.index, LogLeafRow.notification_id)
                                      .where(LogLeafRow.index >= first,
                                             LogLeafRow.index < first + width)).all())
        return [int(found[first + k]) for k in range(width)]

    # --- checkpoints ---------------------------------------------------------------------------

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The checkpoint of the largest size, with its cosignatures, as the event store keeps
        them (the table only says which size is the latest)."""
        sizes = self._signed_sizes()
        return self.checkpoint(sizes[-1]) if sizes else None

    def _signed_sizes(self) -> list[int]:
        """The sizes of every checkpoint signed, smallest first."""
        computed = self.computed()
        if computed is not None:
            return computed.checkpoints
        with reading(self.engine) as conn:
            return [int(size) for size in conn.execute(
                select(CheckpointRow.size).order_by(CheckpointRow.size)).scalars()]

    def checkpoint(self, size: int) -> StoredCheckpoint:
        """The checkpoint of ``size`` entries, read from the event store, with its operator
        signature and every cosignature checked (a stored row is never taken on trust)."""
        try:
            record = self.ledger.checkpoint_record(size)
        except NotFound:
            if size not in self._signed_sizes():
                raise NotFound(f"no checkpoint of size {size}; 'ledger checkpoint' makes "
                               f"one") from None
            raise VerificationFailed(
                f"the checkpoints table lists a checkpoint of size {size} that the event store "
                f"does not hold; run 'ledger verify', then 'ledger rebuild'") from None
        identity = self.ledger.identity
        note = record.with_cosignatures()
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.origin != identity.origin or checkpoint.size != size:
            raise VerificationFailed(f"the stored checkpoint of size {size} is for "
                                     f"{checkpoint.origin!r} size {checkpoint.size}: it was "
                                     f"altered; run 'ledger verify'")
        verify_note_signature(note, identity.operator, identity.operator_public_key)
        for witness, public_key, _ in record.cosignatures:
            verify_cosignature(note, witness, bytes.fromhex(public_key))
        return StoredCheckpoint(checkpoint, note,
                                tuple(sorted({w for w, _, _ in record.cosignatures})))


def node_rows(level: int, start: int, stop: int) -> Select[int, bytes]:
    """The stored nodes ``(index, hash)`` of one level of the tree from index ``start`` to
    before ``stop``, by index: at level 0 the leaf hashes, which are kept with the leaves."""
    if level == 0:
        return (select(LogLeafRow.index, LogLeafRow.hash)
                .where(LogLeafRow.index >= start, LogLeafRow.index < stop)
                .order_by(LogLeafRow.index))
    return (select(LogNodeRow.index, LogNodeRow.hash)
            .where(LogNodeRow.level == level, LogNodeRow.index >= start, LogNodeRow.index < stop)
            .order_by(LogNodeRow.index))


def b64(data: bytes) -> str:
    """Standard base64, as proofs and roots are written."""
    return base64.b64encode(data).decode()
