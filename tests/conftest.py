"""Shared fixtures: a ledger on every backend, fixed keys, and a clock for stated times.

Every storage test takes the ``location`` fixture and so runs on SQLite and on PostgreSQL. The
PostgreSQL run uses the server named by ``LEDGER_TEST_POSTGRES_URL`` and a fresh schema per test
(dropped afterwards); without that variable those runs skip, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ledger.application import Ledger
from ledger.storage import Location, parse_location
from tests.keys import fixed_key

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
ORIGIN = "ledger.test.example/core"


def at(text: str) -> datetime:
    """A stated time: ``2003-07-03`` (midnight UTC) or ``2003-07-03T10:00:00``."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@pytest.fixture(autouse=True, scope="session")
def _state_digest_never_stale() -> Iterator[None]:
    """In every test, after every entry applied: the state digest an agreement keeps between
    acts (it is not recomputed after acts that change nothing it covers) is the one computed
    afresh. A stale one would let a partner sign a state that is no longer the agreement's."""
    from ledger.domain import Agreement  # noqa: PLC0415

    apply = Agreement._apply

    def checked(self: Agreement, entry: Any, recorded: datetime) -> None:
        apply(self, entry, recorded)
        kept = self._digest
        assert kept is None or kept == self._compute_digest(), (
            f"the state digest kept after {entry.statement.action} (seq "
            f"{entry.statement.seq}) is stale")

    Agreement._apply = checked  # type: ignore[method-assign]
    try:
        yield
    finally:
        Agreement._apply = apply  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL, or skip."""
    if not POSTGRES_URL:
        pytest.skip("LEDGER_TEST_POSTGRES_URL is not set: no PostgreSQL server for this run")
    return POSTGRES_URL


def fresh_schema(url: str) -> tuple[str, str]:
    """Create an empty schema on the test server; return (its name, a ledger URL for it)."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    location = parse_location(url)
    with psycopg.connect(**location.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in url else "?"
    return schema, f"{url}{sep}schema={schema}"


def drop_schema(url: str, schema: str) -> None:
    """Drop a test schema and everything in it."""
    location = parse_location(url)
    with psycopg.connect(**location.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL (or path) for a new, empty ledger on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    url = request.getfixturevalue("postgres_url")
    schema, ledger = fresh_schema(url)
    try:
        yield ledger
    finally:
        drop_schema(url, schema)


@pytest.fixture
def location(ledger_url: str) -> Location:
    """Where the test's ledger lives."""
    return parse_location(ledger_url)


@pytest.fixture
def ledger(location: Location) -> Iterator[Ledger]:
    """A new, initialised ledger on each backend."""
    app = Ledger(location, create=True)
    app.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
    try:
        yield app
    finally:
        app.close()
