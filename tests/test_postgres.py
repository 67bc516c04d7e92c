"""A ledger shared on PostgreSQL: append-only events, a read-only auditor, several ledgers in
one database, and an unreachable server named in one line."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from commands.cli import app
from ledger.application import Ledger
from ledger.keystore import KeyStore
from ledger.storage import parse_location
from tests.conftest import drop_schema, fresh_schema
from tests.keys import TEST_COST, fixed_key

pytestmark = pytest.mark.postgres
PASS = "correct horse"


@pytest.fixture
def shared(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A two-partner signed agreement on a fresh schema, with its keys in a folder."""
    schema, url = fresh_schema(postgres_url)
    keys = tmp_path / "keys"
    store = KeyStore(keys)
    for name in ("operator", "council", "trust"):
        store.create(name, PASS.encode(), fixed_key(name), cost=TEST_COST)
    env = {"LEDGER_KEYS": str(keys), "LEDGER_PASSPHRASE": PASS}
    terms = tmp_path / "terms.txt"
    terms.write_text("pooled budget terms\n")
    run = CliRunner().invoke
    for args in (
        ["init", "--origin", "ledger.shared.example/pg"],
        ["draft", "pool", "--as", "council", "--title", "Pooled budget", "--terms", str(terms),
         "--start", "2005-04-01", "--notice", "6m", "--name", "City Council", "--role",
         "commissioning", "--signatory", "A. Clerk", "--designation", "Director",
         "--at", "2005-01-10"],
        ["join", "pool", "--as", "trust", "--name", "Health Trust", "--role", "commissioning",
         "--signatory", "B. Chief", "--designation", "Chief Executive", "--at", "2005-01-11"],
        ["contribute", "pool", "--as", "trust", "--year", "2005/06", "--amount", "120000",
         "--at", "2005-01-12"],
        ["sign", "pool", "--as", "council", "--at", "2005-01-20"],
        ["sign", "pool", "--as", "trust", "--at", "2005-01-20"],
        ["checkpoint"],
    ):
        result = run(app, [*args, "--ledger", url], env=env)
        assert result.exit_code == 0, result.output
    yield url, env
    drop_schema(postgres_url, schema)


def _sql(url: str, statement: str) -> None:
    location = parse_location(url)
    with psycopg.connect(**location.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f"SET search_path TO {location.schema}")
        conn.execute(statement)


def test_the_event_table_refuses_every_update_delete_and_truncate(
        shared: tuple[str, dict[str, str]]) -> None:
    url, _ = shared
    for statement in ("UPDATE ledger_events SET topic = topic",
                      "DELETE FROM ledger_events WHERE originator_version = 2",
                      "TRUNCATE ledger_events"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            _sql(url, statement)
    # Adding is still what the ledger does.
    ledger = Ledger(parse_location(url))
    try:
        assert sum(1 for _ in ledger.stored_entries()) == 5
    finally:
        ledger.close()


@pytest.fixture
def auditor(shared: tuple[str, dict[str, str]]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A role that may read the ledger's schema and nothing more (docs/OPERATIONS.md)."""
    url, env = shared
    location = parse_location(url)
    role = f"auditor_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**location.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
        for statement in ("CREATE ROLE {role} LOGIN",
                          "GRANT USAGE ON SCHEMA {schema} TO {role}",
                          "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"):
            conn.execute(sql.SQL(statement).format(role=sql.Identifier(role),
                                                   schema=sql.Identifier(location.schema)))
    auditor_url = url.replace("postgres@", f"{role}@", 1)
    yield url, auditor_url, env
    with psycopg.connect(**location.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("DROP OWNED BY {role}").format(role=sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {role}").format(role=sql.Identifier(role)))


def test_an_auditor_reads_verifies_and_exports_but_cannot_write(
        auditor: tuple[str, str, dict[str, str]], tmp_path: Path) -> None:
    writer_url, auditor_url, env = auditor
    run = CliRunner().invoke
    for args in (["status", "pool"], ["budget", "pool"], ["history", "pool"], ["verify"],
                 ["export", "pool", "-o", str(tmp_path / "bundle.json")], ["list"]):
        result = run(app, [*args, "--ledger", auditor_url], env=env)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "bundle.json").exists()
    before = _count(writer_url)
    refused = run(app, ["contribute", "pool", "--as", "trust", "--year", "2005/06",
                        "--amount", "100", "--paid", "--at", "2005-05-01",
                        "--ledger", auditor_url], env=env)
    assert refused.exit_code == 1
    assert "may only read" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert _count(writer_url) == before


def test_an_auditor_sees_acts_the_read_models_have_not_caught_up_with(
        auditor: tuple[str, str, dict[str, str]]) -> None:
    writer_url, auditor_url, env = auditor
    # The writer records a payment without any read command afterwards, so the tables are
    # behind; the auditor, who may not update them, must still see it.
    ledger = Ledger(parse_location(writer_url))
    try:
        from datetime import UTC, datetime  # noqa: PLC0415
        from decimal import Decimal  # noqa: PLC0415

        from ledger.values import FinancialYear  # noqa: PLC0415

        ledger.pay("pool", "trust", FinancialYear(2005), Decimal("2500.00"), None,
                   fixed_key("trust"), datetime(2005, 6, 1, tzinfo=UTC))
    finally:
        ledger.close()
    run = CliRunner().invoke
    budget = run(app, ["budget", "pool", "--json", "--ledger", auditor_url], env=env)
    assert budget.exit_code == 0, budget.output
    assert json.loads(budget.stdout)["years"][0]["paid"] == "2500.00"
    verify = run(app, ["verify", "--ledger", auditor_url], env=env)
    assert verify.exit_code == 0, verify.output
    assert "this role may not update them" in verify.stdout


def _count(url: str) -> int:
    ledger = Ledger(parse_location(url))
    try:
        return sum(1 for _ in ledger.stored_entries())
    finally:
        ledger.close()


def test_two_ledgers_live_side_by_side_in_one_database(postgres_url: str, tmp_path: Path) -> None:
    first, first_url = fresh_schema(postgres_url)
    second, second_url = fresh_schema(postgres_url)
    try:
        keys = KeyStore(tmp_path / "keys")
        keys.create("operator", PASS.encode(), fixed_key("operator"), cost=TEST_COST)
        env = {"LEDGER_KEYS": str(tmp_path / "keys"), "LEDGER_PASSPHRASE": PASS}
        run = CliRunner().invoke
        assert run(app, ["init", "--origin", "one.example/a", "--ledger", first_url],
                   env=env).exit_code == 0
        assert run(app, ["init", "--origin", "two.example/b", "--ledger", second_url],
                   env=env).exit_code == 0
        one = Ledger(parse_location(first_url))
        two = Ledger(parse_location(second_url))
        try:
            assert (one.origin, two.origin) == ("one.example/a", "two.example/b")
        finally:
            one.close()
            two.close()
        listed = run(app, ["list", "--json", "--ledger", second_url], env=env)
        assert json.loads(listed.stdout) == {"agreements": []}
    finally:
        drop_schema(postgres_url, first)
        drop_schema(postgres_url, second)


def test_an_unreachable_server_is_named_in_one_line() -> None:
    threads = threading.active_count()
    result = CliRunner().invoke(app, ["status", "pool", "--ledger",
                                      "postgresql://postgres@127.0.0.1:1/test"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach PostgreSQL at 127.0.0.1:1")
    assert "check that the server is running" in result.stderr
    assert result.stderr.count("\n") == 1
    # The connection pool opened before the server was found missing is closed with it.
    assert threading.active_count() == threads
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("change", "said"), [
    ({"dbname": "no_such_ledger_db"}, 'database "no_such_ledger_db" does not exist'),
    ({"user": "no_such_ledger_role"}, 'role "no_such_ledger_role" does not exist'),
])
def test_a_wrong_database_or_role_is_named_as_the_server_names_it(
        postgres_url: str, change: dict[str, str], said: str) -> None:
    wrong = parse_location(postgres_url)
    url = (f"postgresql://{change.get('user', wrong.user)}@{wrong.host}:{wrong.port}/"
           f"{change.get('dbname', wrong.dbname)}")
    result = CliRunner().invoke(app, ["list", "--ledger", url], env={"LEDGER_URL": None})
    assert result.exit_code == 1
    assert result.stderr == (f"error: PostgreSQL at {wrong.host}:{wrong.port} refused the "
                             f"connection: {said}; " + result.stderr.split("; ", 1)[1])
    # Told as the server said it, not as a pool that gave up waiting.
    assert "couldn't get a connection" not in result.stderr
    assert "cannot reach" not in result.stderr
