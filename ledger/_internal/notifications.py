"""The notification log read as plain rows (id, topic, stored state and whose event it is),
a verified bundle's events written to it by COPY on PostgreSQL, and the SQLite recorder the
ledger uses.

eventsourcing's ``select_notifications`` builds a ``Notification`` with a ``UUID`` for every
row; sequencing and checking the log read every entry of the ledger and need neither. This
reads the same rows, with the same filters and order, straight from the recorder's own table
and connection (a test compares it with ``select_notifications`` on both stores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.errors import VerificationFailed


class StateRow(NamedTuple):
    """One row of the notification log, named as eventsourcing names them, the originator's
    id as 32 hexadecimal digits (``UUID.hex``, as eventsourcing writes it on SQLite)."""

    id: int
    topic: str
    state: bytes
    originator_id: str
    originator_version: int


def select_states(recorder: Any, start: int, limit: int, stop: int | None = None,
                  topics: Sequence[str] = ()) -> list[StateRow]:
    """The rows ``recorder.select_notifications(start, limit, stop, topics)`` would give, as
    :class:`StateRow`."""
    table = recorder.events_table_name
    datastore = recorder.datastore
    if hasattr(datastore, "schema"):  # PostgreSQL
        from psycopg import sql  # noqa: PLC0415 - only for a PostgreSQL ledger
        from psycopg.rows import tuple_row  # noqa: PLC0415

        statement = sql.SQL("SELECT notification_id, topic, state, "
                            "replace(originator_id::text, '-', ''), "
                            "originator_version FROM {}.{} "
                            "WHERE notification_id >= %s").format(
            sql.Identifier(datastore.schema), sql.Identifier(table))
        params: list[Any] = [start]
        if stop is not None:
            statement += sql.SQL(" AND notification_id <= %s")
            params.append(stop)
        if topics:
            statement += sql.SQL(" AND topic = ANY(%s)")
            params.append(list(topics))
        statement += sql.SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, params, prepare=True)
            return [StateRow(n, topic, bytes(state), originator, version)
                    for n, topic, state, originator, version in cursor.fetchall()]
    text = (f"SELECT rowid, topic, state, originator_id, originator_version FROM {table} "  # noqa: S608 - its own name
            f"WHERE rowid >= ?")
    params = [start]
    if stop is not None:
        text += " AND rowid <= ?"
        params.append(stop)
    if topics:
        text += f" AND topic IN ({','.join('?' * len(topics))})"
        params += list(topics)
    text += " ORDER BY rowid LIMIT ?"
    params.append(limit)
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(text, params)
        return [StateRow(*row) for row in cursor.fetchall()]


def copy_events(recorder: Any, cursor: Any, events: Sequence[StoredEvent]) -> None:
    """Write ``events`` to a PostgreSQL recorder's table through ``cursor`` (in its
    transaction, the table already locked) with one COPY: the same columns, in the same order,
    as eventsourcing's own insert, at a fraction of its cost a row (a test compares the rows
    an import stores with those of the ledger it copies)."""
    from psycopg import sql  # noqa: PLC0415 - only for a PostgreSQL ledger

    statement = sql.SQL("COPY {}.{} (originator_id, originator_version, topic, state) "
                        "FROM STDIN").format(sql.Identifier(recorder.datastore.schema),
                                             sql.Identifier(recorder.events_table_name))
    with cursor.copy(statement) as copy:
        for event in events:
            copy.write_row((event.originator_id, event.originator_version, event.topic,
                            event.state))


class SQLiteRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder, which keeps an event's originator id as text: text that
    is no UUID (only an edit of the file puts it there) is named as damage, in one line,
    wherever it is read, not raised as Python's ValueError."""

    def convert_originator_id(self, originator_id: str) -> UUID | str:
        try:
            return super().convert_originator_id(originator_id)
        except (ValueError, TypeError, AttributeError):
            raise VerificationFailed(
                f"the event store holds an event whose originator id {originator_id!r} is no "
                f"UUID: the database was altered; 'ledger verify' cannot read past it") from None
