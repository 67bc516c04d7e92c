"""The read side's tables and their tracking: shared by the read models and the log.

Each projection (the read models, the log) records in ``projection_tracking`` the notification
it has read up to, in the same transaction as the rows it wrote; the table also holds the shape
(version) of the tables. The store creates the tables on first use, and learns what this
database role may do.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from ledger.application import ENTRY_TOPICS, Ledger
from ledger.errors import StorageError
from projections.db import (
    create_tables,
    insert_many,
    is_permission_error,
    make_engine,
    reading,
    tables_exist,
    writing,
)
from projections.models import SCHEMA, SCHEMA_VERSION, Tracking

VIEWS = "views"


class Store:
    """The read side's tables in one ledger's database: creating them, their shape, and how
    far each projection (the read models, the log) has read the entries.

    It also knows what this database role may do: ``read_only`` once a write was refused (an
    auditor's role), ``stale`` when the tables are of an older shape this role may not rebuild.
    Both projections then read from the entries themselves.
    """

    def __init__(self, ledger: Ledger, engine: Engine | None = None) -> None:
        self.ledger = ledger
        self.engine = engine or make_engine(ledger.location)
        self._ready = False
        #: Set when this role may read the tables but not write them (an auditor's).
        self.read_only = False
        #: Set when the tables are of an older shape that this role may not rebuild.
        self.stale = False

    def close(self) -> None:
        """Release the read side's connections."""
        self.engine.dispose()

    # --- tables and tracking -------------------------------------------------------------------

    def ensure_tables(self) -> None:
        """Create the read-model tables and tracking rows if this ledger has none yet, and
        rebuild them from the entries if they are of an older shape."""
        if self._ready:
            return
        try:
            if not tables_exist(self.engine):
                # The write lock first (on SQLite): a second reader of a new ledger waits for
                # the first to create them all, then finds them there.
                with writing(self.engine) as conn:
                    if not tables_exist(conn):
                        create_tables(conn)
                        self._set_schema(conn)
        except StorageError:
            # Another reader of a new ledger created them first (its creation is one transaction).
            if not tables_exist(self.engine):
                raise
        except SQLAlchemyError as exc:
            raise self.ledger.location.unreachable(exc) from None
        self._ready = True
        try:
            shape = self.schema()
        except ProgrammingError as exc:
            if not is_permission_error(exc):
                raise
            # Tables this role may not even read (made again without its grants): every
            # read comes from the entries themselves.
            self.read_only = self.stale = True
            return
        if shape != SCHEMA_VERSION:
            self._upgrade()

    def schema(self) -> int | None:
        """The shape of the stored tables (None: from before shapes were numbered)."""
        with reading(self.engine) as conn:
            found = conn.execute(select(Tracking.position).where(Tracking.name == SCHEMA)).scalar()
        return None if found is None else int(found)

    @staticmethod
    def _set_schema(conn: Connection) -> None:
        conn.execute(delete(Tracking).where(Tracking.name == SCHEMA))
        insert_many(conn, Tracking, [{"name": SCHEMA, "position": SCHEMA_VERSION}])

    def _upgrade(self) -> None:
        """Tables of an older shape: the read models rebuild them (see ReadModels); a store
        that cannot reads from the entries themselves instead."""
        self.read_only = self.stale = True

    def refused_a_write(self) -> None:
        """A write of this role was refused: it reads the tables as they are, and where they
        are behind, the entries themselves."""
        self.read_only = True

    def position(self, conn: Connection, name: str, *, lock: bool = False) -> int:
        """Where projection ``name`` has read up to (0: nothing yet)."""
        query = select(Tracking.position).where(Tracking.name == name)
        if lock:
            query = query.with_for_update()
        found: int | None = conn.execute(query).scalar()
        if found is None:
            # Another process may create it first; then it holds 0 or more, and is kept.
            # Each backend's own INSERT ... ON CONFLICT (only its dialect is ever loaded).
            if conn.dialect.name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

                conn.execute(sqlite_insert(Tracking).values(name=name, position=0)
                             .on_conflict_do_nothing())
            else:
                from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

                conn.execute(pg_insert(Tracking).values(name=name, position=0)
                             .on_conflict_do_nothing())
            found = conn.execute(query).scalar() or 0
        return int(found)

    @staticmethod
    def set_position(conn: Connection, name: str, position: int) -> None:
        """Record that projection ``name`` has applied everything up to ``position``."""
        conn.execute(update(Tracking).where(Tracking.name == name).values(position=position))

    def event_topics(self, stop: int) -> dict[str, int]:
        """How many events of each type the event store holds up to notification ``stop``."""
        location = self.ledger.location
        if location.is_sqlite:
            query = ("SELECT topic, COUNT(*) FROM stored_events WHERE rowid <= :stop "
                     "GROUP BY topic")
        else:
            # The event table is eventsourcing's, named after the application, in the
            # ledger's schema (a name of ours, never input).
            query = (f'SELECT topic, COUNT(*) FROM "{location.schema}".ledger_events '  # noqa: S608
                     f"WHERE notification_id <= :stop GROUP BY topic")
        try:
            with reading(self.engine) as conn:
                return {str(topic): int(count) for topic, count in
                        conn.execute(text(query), {"stop": stop})}
        except SQLAlchemyError as exc:
            raise location.unreachable(exc) from None

    def tracking_beyond(self) -> list[tuple[str, int, int]]:
        """Projections whose tracking position is past the last event: (name, position,
        last). Only an edit puts one there, and it hides every later entry from them."""
        last = self.ledger.recorder.max_notification_id() or 0
        with reading(self.engine) as conn:
            rows = conn.execute(select(Tracking.name, Tracking.position)
                                .where(Tracking.name != SCHEMA)).all()
        return [(str(name), int(position), last) for name, position in rows
                if int(position) > last]

    def behind(self, name: str = VIEWS) -> bool:
        """Whether entries have been committed that projection ``name`` has not applied (or
        the tables are of a shape this role could not bring up to date)."""
        if self.stale:
            return True
        with reading(self.engine) as conn:
            found = conn.execute(select(Tracking.position).where(Tracking.name == name)).scalar()
        start = int(found or 0)
        return bool(self.ledger.recorder.select_notifications(start + 1, 1, topics=ENTRY_TOPICS))
