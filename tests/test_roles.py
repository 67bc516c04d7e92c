"""The three PostgreSQL roles of docs/OPERATIONS.md, made with the SQL written there.

The owner makes the ledger; the writer records acts and keeps the read models, but can neither
change nor delete an entry nor touch the append-only triggers; the auditor reads, also when the
read models and the log are behind. What the owner can still do (rewrite the database) is
caught by what the partners keep outside it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ledger.application import Ledger
from ledger.storage import parse_location
from ledger.values import FinancialYear
from tests.keys import fixed_key
from tests.tamper import COUNCIL, ORIGIN, PCT, SALFORD, Cli

pytestmark = pytest.mark.postgres

OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "OPERATIONS.md"


def documented_sql() -> list[str]:
    """The SQL blocks of the roles section, in order: the administrator's, the owner's."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("## Three roles that hold"):text.index("## An auditor's own copy")]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


@dataclass
class Roles:
    """A ledger made and shared as the documentation says, on the test server."""

    schema: str
    names: dict[str, str]  # role in the docs -> its name here
    server: str

    def url(self, role: str) -> str:
        location = parse_location(self.server)
        return (f"postgresql://{self.names[role]}@{location.host}:{location.port}/"
                f"{location.dbname}?schema={self.schema}")

    def sql(self, role: str | None, statements: str) -> None:
        """Run ``statements`` as ``role`` (None: the administrator)."""
        location = parse_location(self.server)
        args: dict[str, Any] = location.connect_args()
        if role is not None:
            args["user"] = self.names[role]
        with psycopg.connect(**args, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            conn.execute(statements.encode())

    def as_written(self, block: str) -> str:
        """A documented block with this test's names for the schema, roles and database."""
        text = block.replace("salford_dat", self.schema)
        text = text.replace("partnerships", parse_location(self.server).dbname)
        for role, name in self.names.items():
            text = text.replace(role, name)
        return text


@pytest.fixture
def roles(postgres_url: str) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:10]
    made = Roles(f"roles_{tag}", {r: f"{r}_{tag}" for r in
                                   ("ledger_owner", "ledger_writer", "ledger_auditor")},
                 postgres_url)
    made.sql(None, made.as_written(documented_sql()[0]))
    try:
        yield made
    finally:
        made.sql(None, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(made.schema)).as_string(None))
        for name in made.names.values():
            made.sql(None, f'DROP OWNED BY "{name}"; DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def shared(roles: Roles, tmp_path: Path) -> tuple[Roles, Cli]:
    """The owner makes the ledger and grants the roles as written; the partners act as the
    writer, checkpoint and cosign."""
    cli = Cli(roles.url("ledger_writer"), tmp_path)
    cli.make_keys()
    cli.run("init", "--origin", ORIGIN, ledger=roles.url("ledger_owner"))
    roles.sql("ledger_owner", roles.as_written(documented_sql()[1]))
    cli.salford(init=False)  # the Salford story, recorded by the writer
    cli.payments()
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    return roles, cli


def test_the_writer_records_acts_and_keeps_the_read_models(shared: tuple[Roles, Cli]) -> None:
    _, cli = shared
    assert cli.json("budget", SALFORD)["years"][0]["paid"] == "157935.00"
    assert cli.json("verify")["ok"] is True


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_events SET topic = topic",
    "DELETE FROM ledger_events",
    "TRUNCATE ledger_events",
    "ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change",
    "DROP TRIGGER ledger_events_no_change ON ledger_events",
    "ALTER TABLE ledger_events OWNER TO CURRENT_USER",
    "SET session_replication_role = replica",
    # An entry filed far ahead of the sequence would hide every later one from readers
    # that follow the order of entries.
    "INSERT INTO ledger_events (notification_id, originator_id, originator_version, topic, "
    "state) SELECT 1000000000000, gen_random_uuid(), 1, topic, state FROM ledger_events "
    "LIMIT 1",
])
def test_the_writer_can_neither_change_nor_delete_an_entry_nor_touch_the_triggers(
        shared: tuple[Roles, Cli], statement: str) -> None:
    roles, cli = shared
    before = cli.json("history", SALFORD)
    with pytest.raises(psycopg.Error):
        roles.sql("ledger_writer", statement)
    assert cli.json("history", SALFORD) == before
    assert cli.json("verify")["ok"] is True


def test_the_auditor_reads_everything_and_writes_nothing(shared: tuple[Roles, Cli]) -> None:
    roles, cli = shared
    auditor = roles.url("ledger_auditor")
    # The writer records a payment and nobody reads after it: the read models and the log are
    # behind, and the auditor may not bring them up to date.
    ledger = Ledger(parse_location(roles.url("ledger_writer")))
    try:
        ledger.pay(SALFORD, PCT, FinancialYear(2003), Decimal("5.00"), None, fixed_key(PCT),
                   datetime(2004, 5, 1, tzinfo=UTC))
    finally:
        ledger.close()
    budget = cli.json("budget", SALFORD, ledger=auditor)
    assert budget["years"][0]["paid"] == "157940.00"
    assert cli.json("status", SALFORD, ledger=auditor)["entries"] == 11
    assert [a["reference"] for a in cli.json("list", ledger=auditor)["agreements"]] == [
        "salford-alcohol-2005", SALFORD]
    report = cli.json("verify", ledger=auditor)
    assert report["ok"] is True
    assert any("this role may not update them" in c for c in report["checks"])
    # An export proves every entry against a signed checkpoint: past it, one line says so.
    refused = cli.run("export", "-o", str(cli.folder / "early.json"), code=1,
                      ledger=auditor).stderr
    assert "make a checkpoint first" in refused
    assert refused.count("\n") == 1
    assert not (cli.folder / "early.json").exists()
    # The operator signs a checkpoint; then the writer's read models and log go behind again
    # (their rows and tracking wiped, as a crash or a restore from an old backup leaves them).
    cli.run("checkpoint")
    roles.sql("ledger_writer", "DELETE FROM log_leaves; DELETE FROM log_nodes; "
              "DELETE FROM payments; DELETE FROM projection_tracking")
    assert cli.json("budget", SALFORD, ledger=auditor)["years"][0]["paid"] == "157940.00"
    cli.run("export", "-o", str(cli.folder / "bundle.json"), ledger=auditor)
    checked = cli.json("verify-bundle", str(cli.folder / "bundle.json"))
    assert checked["ok"] is True
    assert checked["entries"] == 13
    cli.run("prove", f"{SALFORD}:3", ledger=auditor)
    cli.run("report", SALFORD, "-o", str(cli.folder / "report.html"), ledger=auditor)
    assert "Verification FAILED" not in (cli.folder / "report.html").read_text("utf-8")
    refused = cli.run("contribute", SALFORD, "--as", PCT, "--year", "2003/04", "--amount", "1",
                      "--paid", code=1, ledger=auditor).stderr
    assert "this role may only read the ledger" in refused
    refused = cli.run("rebuild", code=1, ledger=auditor).stderr
    assert refused.count("\n") == 1


def test_a_rewrite_by_the_owner_is_caught_by_what_the_partners_hold(
        shared: tuple[Roles, Cli]) -> None:
    roles, cli = shared
    # The owner silences its triggers, deletes the council's recorded payment (the last entry,
    # so every chain still holds), and rebuilds the read models and the log from what is left.
    roles.sql("ledger_owner", "ALTER TABLE ledger_events DISABLE TRIGGER ledger_events_no_change;"
              "DELETE FROM ledger_events WHERE notification_id = "
              "(SELECT max(notification_id) FROM ledger_events "
              " WHERE topic = 'agreement-ledger:Agreement.Contributed');"
              "DELETE FROM ledger_events WHERE topic LIKE 'agreement-ledger:Checkpoint%';"
              "ALTER TABLE ledger_events ENABLE TRIGGER ledger_events_no_change")
    cli.run("rebuild", ledger=roles.url("ledger_owner"))
    # The tables made again carry the documented grants: the writer keeps them up to date,
    # and they show the council's payment gone.
    assert cli.json("budget", SALFORD)["years"][0]["paid"] == "85435.00"
    # The record on its own looks whole...
    auditor = cli.json("verify", "--keys", str(cli.folder / "no-memories"),
                       ledger=roles.url("ledger_auditor"))
    assert auditor["ok"] is True
    # ...but the council, and the operator, remember the checkpoint they cosigned and signed.
    failures = cli.json("verify", code=3)["failures"]
    assert any("that salford-council remembers" in f["what"] for f in failures), failures
    assert "REFUSED" in cli.run("checkpoint", code=3).stderr
