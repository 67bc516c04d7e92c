"""The read side's connection to the ledger's database, and its write transactions.

A projection writes its rows and its tracking position in one transaction that it holds alone:
on SQLite the transaction begins IMMEDIATE (it takes the write lock at once, so two processes
catching up cannot interleave); on PostgreSQL the tracking row is locked FOR UPDATE. Either way
a second process waits, then sees the first one's position and carries on from there.
"""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError

from ledger.errors import LedgerError, NotPermitted, StorageError, VerificationFailed
from ledger.storage import Location
from projections.models import RETIRED_TABLES, Base

_IMMEDIATE = "ledger_immediate"
_IDLE_SINCE = "ledger_idle_since"
#: A PostgreSQL connection idle in the pool this long is pinged before it is used again: a
#: server restarted since is noticed then. Within it (reads in a burst), a connection the
#: server dropped meanwhile fails the one read that finds it so, and is replaced.
IDLE_PING_SECONDS = 1.0


def make_engine(location: Location) -> Engine:
    """An engine for the ledger's database (the read models live beside the events)."""
    if location.is_sqlite:
        engine = create_engine(location.sqlalchemy_url(), connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin() decide when a transaction starts (see _begin).
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(_IMMEDIATE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    import psycopg  # noqa: PLC0415 - only for a PostgreSQL ledger

    engine = create_engine(location.sqlalchemy_url(), connect_args={"connect_timeout": 5})

    # A connection is pinged before use only when it has sat idle in the pool (a second), not
    # at every checkout: that was a round trip for every read of a bulk read. One found closed
    # is replaced (SQLAlchemy retries the checkout on DisconnectionError).
    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_connection.autocommit:
                dbapi_connection.rollback()
        except psycopg.Error as exc:
            raise DisconnectionError(str(exc)) from exc

    return engine.execution_options(schema_translate_map={None: location.schema})


class RawRows:
    """A table's rows as the SQLite driver takes and gives them: tuples in column order, each
    value converted by its column's own type (pence, booleans).

    SQLAlchemy's handling of each row's parameters and results costs more than the insert or
    the read itself, and rebuilding or verifying a large ledger moves millions of rows.
    """

    def __init__(self, conn: Connection, table: type[Base]) -> None:
        t: Any = table.__table__
        self.table = t
        columns = list(t.columns)
        self.names = [c.name for c in columns]
        processors = [c.type._cached_bind_processor(conn.dialect) for c in columns]
        self._convert = [(i, p) for i, p in enumerate(processors)
                         if p is not None and not isinstance(columns[i].type, LargeBinary)]
        self.key = [self.names.index(c.name) for c in t.primary_key.columns]
        # Every table has two columns or more, so the getter gives a tuple.
        assert len(self.names) > 1
        self._get = operator.itemgetter(*self.names)

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """``row`` as the driver stores it."""
        value: tuple[Any, ...] = self._get(row)
        if not self._convert:
            return value
        converted = list(value)
        for i, process in self._convert:
            converted[i] = process(converted[i])
        return tuple(converted)

    @property
    def insert_sql(self) -> str:
        """Insert one row, every column."""
        marks = ", ".join("?" for _ in self.names)
        return f'INSERT INTO "{self.table.name}" ({self._columns}) VALUES ({marks})'  # noqa: S608

    @property
    def select_sql(self) -> str:
        """Every column of the rows of the agreements whose references are given as one JSON
        array, in primary-key order."""
        order = ", ".join(f'"{self.names[i]}"' for i in self.key)
        return (f'SELECT {self._columns} FROM "{self.table.name}" WHERE "reference" IN '  # noqa: S608
                f'(SELECT value FROM json_each(?)) ORDER BY {order}')

    @property
    def _columns(self) -> str:
        # Names of the model's own table and columns, never input.
        return ", ".join(f'"{n}"' for n in self.names)


def insert_many(conn: Connection, table: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, each value converted by its column's own type (see
    :class:`RawRows`): on SQLite one statement run for each row, on PostgreSQL one COPY (a
    fifth of the cost of an insert a row). A refusal is SQLAlchemy's error either way."""
    if not rows:
        return
    raw = RawRows(conn, table)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(raw.insert_sql, [raw.values(row) for row in rows])
        return
    from psycopg import Error, sql  # noqa: PLC0415 - only for a PostgreSQL ledger

    schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
    name = sql.Identifier(*((schema,) if schema else ()), raw.table.name)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        name, sql.SQL(", ").join(sql.Identifier(n) for n in raw.names))
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(raw.values(row))
    except Error as exc:
        raise DBAPIError.instance(statement.as_string(driver), None, exc, Error) from None


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that holds the database's (SQLite) or tracking (PostgreSQL) lock."""
    with engine.connect().execution_options(**{_IMMEDIATE: True}) as conn, conn.begin():
        yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read transaction: one consistent view of the read models."""
    with engine.connect() as conn, conn.begin():
        yield conn


def create_tables(engine: Engine | Connection) -> None:
    """Create every read-model table that does not exist yet."""
    try:
        Base.metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot create the read-model tables: {_first_line(exc)}") from None


def drop_tables(engine: Engine | Connection) -> None:
    """Drop every read-model table, those of earlier shapes included (the event store is
    untouched)."""
    try:
        Base.metadata.drop_all(engine)
        for name in RETIRED_TABLES:
            Table(name, MetaData()).drop(engine, checkfirst=True)
    except SQLAlchemyError as exc:
        if is_permission_error(exc):
            raise NotPermitted(f"this role may not rebuild the read models "
                               f"({_first_line(exc)}); rebuild as the role that owns "
                               f"them") from None
        raise


def tables_exist(engine: Engine | Connection) -> bool:
    """Whether the read-model tables have been created."""
    names = set(inspect(engine).get_table_names(
        schema=engine.get_execution_options().get("schema_translate_map", {}).get(None)))
    return {t.name for t in Base.metadata.sorted_tables} <= names


def default_workers() -> int:
    """One worker process per core this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def is_permission_error(exc: BaseException) -> bool:
    """Whether the database refused for lack of privilege (PostgreSQL SQLSTATE 42501)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "42501"


def table_refusal(location: Location, exc: DBAPIError) -> LedgerError:
    """What a refused read or write of the ledger's own tables means, in one line: the server
    gone, a role without the right, or tables not as this ledger keeps them (edited, or of
    another shape under this shape's number)."""
    if exc.connection_invalidated:
        return location.unreachable(exc)
    if is_permission_error(exc):
        return NotPermitted(f"this role may not do that ({_first_line(exc.orig or exc)})")
    return VerificationFailed(
        f"the ledger's tables are not as this ledger keeps them ({_first_line(exc.orig or exc)})"
        f": they were altered, or made by another version; the owner may run 'ledger rebuild', "
        f"then 'ledger verify'")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
