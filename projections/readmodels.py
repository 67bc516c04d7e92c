"""Keeping the read models up to date: catch-up from the notification log, and rebuild.

Catch-up pulls the entries committed since the tracked position, in notification order, in
batches. Each agreement touched by a batch is replayed from its own entries and its rows are
brought in line with :func:`projections.rows.rows_for`; the new position is written in the same
transaction. Bringing rows in line is idempotent (rows that never change are appended past the
last seq; the others are replaced), so an agreement that gained entries after the batch was read
is simply synced again by the next catch-up: nothing is ever counted twice or skipped, whether a
catch-up is interrupted, or several run at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from ledger.application import ENTRY_TOPICS, Ledger
from ledger.domain import Agreement
from ledger.errors import NotFound, NotPermitted, StorageError
from ledger.storage import Location
from ledger.values import parse_slug
from projections.db import (
    create_tables,
    drop_tables,
    insert_many,
    is_permission_error,
    reading,
    writing,
)
from projections.log import LOG, MerkleLog
from projections.models import (
    AGREEMENT_TABLES,
    AgreementRow,
    Base,
    ConsentRow,
    PaymentRow,
    SignatoryRow,
    SignatureRow,
)
from projections.rows import AgreementRows, Row, rows_for
from projections.store import VIEWS, Store

#: Rows that never change once written (each is created by one entry, its seq): a sync appends
#: those past the last seq stored instead of rewriting them.
APPEND_ONLY: tuple[type[Base], ...] = (SignatoryRow, SignatureRow, PaymentRow, ConsentRow)
BATCH = 2000
INSERT_CHUNK = 5000
REBUILD_CHUNK = 50

Progress = Callable[[int], None]


class ReadModels(Store):
    """The read models of one ledger, in its database."""

    def _upgrade(self) -> None:
        """Tables of an older shape are rebuilt from the entries; a role that may not do so
        reads from the entries themselves instead (as when the tables are behind)."""
        try:
            self.rebuild()
        except ProgrammingError as exc:
            if not is_permission_error(exc):
                raise
            self.read_only = self.stale = True
        except NotPermitted:
            self.read_only = self.stale = True
        except StorageError as exc:
            if "permission denied" not in exc.diagnostics().lower():
                raise
            self.read_only = self.stale = True

    # --- catching up ---------------------------------------------------------------------------

    def catch_up(self, batch: int = BATCH, progress: Progress | None = None) -> int:
        """Apply every entry committed since the last catch-up; return how many."""
        self.ensure_tables()
        if self.stale:
            return 0  # tables of an older shape this role may not rebuild: read the entries
        applied = 0
        while True:
            try:
                with writing(self.engine) as conn:
                    start = self.position(conn, VIEWS, lock=True)
                    rows = self.ledger.recorder.select_notifications(
                        start + 1, batch, topics=ENTRY_TOPICS)
                    if not rows:
                        return applied
                    touched = dict.fromkeys(r.originator_id for r in rows)
                    self.write(conn, [rows_for(self._load(uuid)) for uuid in touched])
                    self.set_position(conn, VIEWS, rows[-1].id)
            except OperationalError as exc:
                raise self.ledger.location.unreachable(exc) from None
            except ProgrammingError as exc:
                if not is_permission_error(exc):
                    raise
                # A read-only role (an auditor's) cannot bring the tables up to date; reads
                # then come from the entries themselves (see ``behind``).
                self.refused_a_write()
                return applied
            applied += len(rows)
            if progress is not None:
                progress(len(rows))

    def _load(self, uuid: Any) -> Agreement:
        # Read only, so the cached copy itself will do (no deep copy).
        found: Any = self.ledger.load(uuid, copy=False)
        assert isinstance(found, Agreement)
        return found

    def write(self, conn: Connection, batch: Iterable[AgreementRows], *,
              fresh: bool = False) -> None:
        """Write the rows of several agreements (``fresh``: the tables hold none of them).

        A handful of statements per table for the whole batch, whatever its size: rows that
        never change are appended past each agreement's last stored seq; the others are
        replaced.
        """
        agreements = list(batch)
        references = [rows.reference for rows in agreements]
        table: type[Base]
        for table in AGREEMENT_TABLES:
            t: Any = table.__table__
            values: list[Row] = []
            if fresh:
                for rows in agreements:
                    values.extend(rows[table])
            elif table in APPEND_ONLY:
                last: dict[str, int] = dict(conn.execute(
                    select(t.c.reference, func.max(t.c.seq))
                    .where(t.c.reference.in_(references)).group_by(t.c.reference)).all())
                for rows in agreements:
                    known = last.get(rows.reference) or 0
                    values.extend(r for r in rows[table] if r["seq"] > known)
            else:
                conn.execute(delete(table).where(t.c.reference.in_(references)))
                for rows in agreements:
                    values.extend(rows[table])
            for i in range(0, len(values), INSERT_CHUNK):
                insert_many(conn, table, values[i:i + INSERT_CHUNK])

    # --- rebuilding ----------------------------------------------------------------------------

    def rebuild(self, progress: Progress | None = None, workers: int = 1) -> int:
        """Drop every read model and the log's tables and rebuild them from the event store;
        return entries applied.

        One transaction: if it is interrupted, the previous read models are still there. With
        ``workers`` > 1, agreements are replayed in that many processes while this one writes
        their rows and sequences the log.
        """
        entries = 0
        log = MerkleLog(self)
        logged = 0
        with writing(self.engine) as conn:
            drop_tables(conn)
            create_tables(conn)
            last = self.ledger.recorder.max_notification_id() or 0
            for chunk in self._rows(last, workers):
                self.write(conn, chunk, fresh=True)
                done = sum(rows.agreement["entries"] for rows in chunk)
                entries += done
                # The log is sequenced afresh too, at the same pace, while workers replay.
                _, logged = log.extend(conn, logged, max(done, 1), stop=last)
                if progress is not None:
                    progress(done)
            while True:
                count, logged = log.extend(conn, logged, stop=last)
                if not count:
                    break
            for name in (VIEWS, LOG):
                self.position(conn, name)
                self.set_position(conn, name, last)
            self._set_schema(conn)
        self._ready = True
        return entries

    def _rows(self, last: int, workers: int) -> Iterator[list[AgreementRows]]:
        ids = list(self.agreement_ids(stop=last))
        chunks = [ids[i:i + REBUILD_CHUNK] for i in range(0, len(ids), REBUILD_CHUNK)]
        if workers <= 1 or len(chunks) < 2:
            for chunk in chunks:
                yield [rows_for(self.ledger.restored(uuid)) for uuid in chunk]
            return
        # "spawn": a forked child would share this process's open database connections.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                 initializer=_start_replayer,
                                 initargs=(self.ledger.location,)) as pool:
            # A few chunks ahead of the writing, no more: rows waiting to be written are held
            # in memory, which must not grow with the ledger.
            ahead: deque[Future[list[AgreementRows]]] = deque()
            for chunk in chunks:
                ahead.append(pool.submit(_replay_rows, chunk))
                if len(ahead) > 4 * workers:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
    def agreement_ids(self, stop: int | None = None) -> Iterator[UUID]:
        """Ids of every drafted agreement, in the order they were drafted (each once, whatever
        else the store holds under its id: verification names that)."""
        position = 1
        seen: set[Any] = set()
        while True:
            rows = self.ledger.recorder.select_notifications(
                position, BATCH, stop=stop, topics=(Agreement.Drafted.TOPIC,))
            for row in rows:
                if row.originator_id not in seen:
                    seen.add(row.originator_id)
                    yield row.originator_id  # type: ignore[misc]
            if len(rows) < BATCH:
                return
            position = rows[-1].id + 1

    def agreements(self, stop: int | None = None) -> Iterator[Agreement]:
        """Every agreement, replayed from its entries, one at a time."""
        for uuid in self.agreement_ids(stop):
            yield self._load(uuid)

    # --- reading ---------------------------------------------------------------------------------

    def stored(self, reference: str) -> AgreementRows:
        """The rows stored for one agreement, as they are."""
        parse_slug(reference, "agreement reference")
        with reading(self.engine) as conn:
            return stored_rows(conn, reference)

    def load(self, reference: str) -> AgreementRows:
        """The rows of one agreement: stored (after catching up), or, where this role may not
        bring the tables up to date, computed from the agreement's own entries."""
        parse_slug(reference, "agreement reference")  # before anything is brought up to date
        self.catch_up()
        if self.read_only and self.behind():
            return rows_for(self.ledger.agreement(reference))
        with reading(self.engine) as conn:
            found = stored_rows(conn, reference)
        if not found[AgreementRow]:
            raise NotFound(f"there is no agreement {reference!r} in this ledger; "
                           f"'ledger list' shows them")
        return found

    def signatory_keys(self) -> dict[str, tuple[str, bytes]]:
        """Every key any partner has signed with, in any agreement: key id -> (partner,
        key), as :func:`ledger.bundle.partner_keys` gives it of agreements."""
        self.catch_up()
        if self.read_only and self.behind():
            from ledger.bundle import partner_keys  # noqa: PLC0415 - bundles' own module

            return partner_keys(list(self.agreements()))
        with reading(self.engine) as conn:
            return {str(kid): (str(partner), bytes(public)) for partner, kid, public in
                    conn.execute(select(SignatoryRow.partner, SignatoryRow.key_id,
                                        SignatoryRow.public_key))}

    def all_rows(self) -> list[AgreementRows]:
        """Every row of every agreement (for views across agreements: a partner's to-do)."""
        self.catch_up()
        if self.read_only and self.behind():
            return [rows_for(a) for a in self.agreements()]
        with reading(self.engine) as conn:
            references = [str(r) for (r,) in conn.execute(
                select(AgreementRow.reference).order_by(AgreementRow.reference))]
            return list(stored_rows_of(conn, references).values())

    def list(self) -> list[Row]:
        """One row per agreement, by reference."""
        self.catch_up()
        if self.read_only and self.behind():
            return sorted((rows_for(a).agreement for a in self.agreements()),
                          key=lambda r: str(r["reference"]))
        with reading(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(AgreementRow).order_by(AgreementRow.reference))]


_replayer: dict[str, Ledger] = {}


def _start_replayer(location: Location) -> None:
    _replayer["ledger"] = Ledger(location)


def _replay_rows(ids: list[UUID]) -> list[AgreementRows]:
    """Rows of some agreements, replayed in a worker process."""
    ledger = _replayer["ledger"]
    return [rows_for(ledger.restored(uuid)) for uuid in ids]


def stored_rows(conn: Connection, reference: str) -> AgreementRows:
    """Every stored row of one agreement, each table in primary-key order."""
    return stored_rows_of(conn, [reference])[reference]


def stored_rows_of(conn: Connection, references: list[str]) -> dict[str, AgreementRows]:
    """Every stored row of several agreements (one query per table), each table in
    primary-key order."""
    found = {reference: AgreementRows(reference) for reference in references}
    table: type[Base]
    for table in AGREEMENT_TABLES:
        t: Any = table.__table__
        for rows in found.values():
            rows.tables[table.__tablename__] = []
        query = (select(t).where(t.c.reference.in_(references))
                 .order_by(*t.primary_key.columns))
        for row in conn.execute(query).mappings():
            found[row["reference"]][table].append(dict(row))
    return found
