"""Defence in depth on a shared PostgreSQL ledger: the event table is append-only.

``ledger init`` puts triggers on the event table that refuse every UPDATE, DELETE and TRUNCATE,
whoever asks: the ledger's own writer role can only ever add entries. (Verification does not
rely on this; it finds any change. The triggers stop one being made by mistake or by a role that
may write but may not alter history; only the table's owner can remove them, and doing so is
itself visible in the database's catalogue and logs.) ``docs/OPERATIONS.md`` shows how to make a
read-only auditor role.
"""

from __future__ import annotations

from ledger.storage import Location

#: eventsourcing's PostgreSQL recorder names the event table after the application.
EVENTS_TABLE = "ledger_events"

_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.ledger_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the ledger''s events are append-only: % is refused', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'entries are never changed or removed; record a new act instead';
END;
$$
"""

_TRIGGERS = (
    "DROP TRIGGER IF EXISTS ledger_events_no_change ON {table}",
    "CREATE TRIGGER ledger_events_no_change BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION {schema}.ledger_events_append_only()",
    "DROP TRIGGER IF EXISTS ledger_events_no_truncate ON {table}",
    "CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.ledger_events_append_only()",
)


def make_append_only(location: Location) -> None:
    """Refuse every UPDATE, DELETE and TRUNCATE of the event table (PostgreSQL only)."""
    if location.is_sqlite:
        return
    # Only PostgreSQL ledgers need the driver: a SQLite ledger never loads it.
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    names = {"schema": sql.Identifier(location.schema),
             "table": sql.Identifier(location.schema, EVENTS_TABLE)}
    try:
        conn = psycopg.connect(**location.connect_args(), autocommit=True)  # type: ignore[arg-type]
        with conn, conn.transaction():
            conn.execute(sql.SQL(_FUNCTION).format(**names))
            for statement in _TRIGGERS:
                conn.execute(sql.SQL(statement).format(**names))
    except psycopg.Error as exc:
        raise location.unreachable(exc) from None
