"""The read side's own writes and connections: rows go in through the driver (a COPY on
PostgreSQL) exactly as SQLAlchemy would put them, a refusal is SQLAlchemy's error as any
other, and a pooled PostgreSQL connection the server closed while it was idle is replaced."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from ledger.application import Ledger
from ledger.storage import Location
from projections import db
from projections.db import create_tables, insert_many, make_engine, reading, writing
from projections.models import FundingLineRow, LogLeafRow, PaymentRow


@pytest.fixture
def engine(ledger: Ledger, location: Location) -> Iterator[Engine]:
    """An engine on the test's ledger, its read-model tables created."""
    made = make_engine(location)
    create_tables(made)
    yield made
    made.dispose()


LINES = [
    {"reference": "pool-2004", "year": "2004/05", "partner": "salford-pct", "source": "CJIP",
     "status": "confirmed", "amount": Decimal("341740.00"), "paid": Decimal("0.01"),
     "released": False},
    {"reference": "pool-2004", "year": "2004/05", "partner": "salford-council",
     "source": "Home Office 'DIP' — “grant”", "status": "tba", "amount": None,
     "paid": Decimal("0.00"), "released": True},
]
PAYMENTS = [
    {"reference": "pool-2004", "seq": 7, "partner": "salford-pct", "year": "2004/05",
     "source": "CJIP", "amount": Decimal("-12.34"), "at": "2004-05-01T10:00:00Z",
     "payment_ref": None, "reverses": 5},
    {"reference": "pool-2004", "seq": 8, "partner": "salford-pct", "year": "2004/05",
     "source": "CJIP", "amount": Decimal("99999999999.99"), "at": "2004-05-02T10:00:00Z",
     "payment_ref": "tab\there, newline\nthere, backslash \\ and NUL-free", "reverses": None},
]
LEAVES = [{"index": n, "notification_id": 10 + n, "reference": "pool-2004", "seq": n + 1,
           "hash": bytes([n]) * 32} for n in range(3)]


def test_rows_go_in_as_sqlalchemy_puts_them(engine: Engine) -> None:
    """Money, booleans, NULLs, awkward text and bytes read back the same whether inserted by
    ``insert_many`` or by SQLAlchemy's own insert."""
    for table, rows in ((FundingLineRow, LINES), (PaymentRow, PAYMENTS), (LogLeafRow, LEAVES)):
        with writing(engine) as conn:
            insert_many(conn, table, rows)
        with reading(engine) as conn:
            ours = [dict(r._mapping) for r in conn.execute(select(table))]
        with writing(engine) as conn:
            conn.execute(delete(table))
            conn.execute(insert(table), rows)
        with reading(engine) as conn:
            theirs = [dict(r._mapping) for r in conn.execute(select(table))]
        key = sorted(ours, key=repr)
        assert key == sorted(theirs, key=repr)
        assert sorted(rows, key=repr) == key
        with writing(engine) as conn:
            conn.execute(delete(table))


def test_a_refused_insert_is_sqlalchemys_error_and_writes_nothing(engine: Engine) -> None:
    with writing(engine) as conn:
        insert_many(conn, LogLeafRow, LEAVES[:1])
    with pytest.raises(IntegrityError), writing(engine) as conn:
        insert_many(conn, LogLeafRow, LEAVES[1:] + LEAVES[:1])
    with reading(engine) as conn:
        assert conn.execute(select(LogLeafRow.index)).scalars().all() == [0]


@pytest.mark.postgres
@pytest.mark.parametrize("ping", [True, False], ids=["pinged", "not-pinged"])
def test_a_connection_closed_while_idle_is_replaced(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch, ping: bool) -> None:
    """Idle long enough, a pooled connection is pinged before use, and one the server closed
    is replaced; used again at once it is not pinged (no round trip a read), so the one read
    that finds it closed fails, and the next is given a new connection."""
    from ledger.storage import parse_location  # noqa: PLC0415

    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0 if ping else 3600.0)
    engine = make_engine(parse_location(postgres_url))
    other = make_engine(parse_location(postgres_url))
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        # While it waits in the pool, the server ends its session.
        with other.connect() as killer:
            assert killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                                  ).scalar() is True
        if ping:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        else:
            with pytest.raises(OperationalError), engine.connect() as conn:
                conn.execute(text("SELECT 2"))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        other.dispose()
