"""A ledger driven through its command line, and a back door into its database.

The audit tests need two things no public API gives: a partnership recorded the way partners
record one (``ledger ...`` commands, each partner signing with its own key from its own key
folder), and a way to change the stored record afterwards *without* the ledger's knowledge, as
a database administrator or an intruder could. :class:`Cli` is the first; :class:`Backdoor`
is the second, and speaks plain SQL to either backend:

- SQLite: the event table is ``stored_events`` (``rowid`` is the notification id, the
  originator id is the UUID's hex text);
- PostgreSQL: ``ledger_events`` in the ledger's schema (``notification_id`` column, a ``uuid``
  originator id).

``state`` is the event's JSON, and for an entry it holds ``"entry"``: the entry's canonical
text. Edits rewrite an entry in canonical form (RFC 8785) so that the damage is exactly the
change made, never a formatting slip the ledger would reject for another reason.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pytest
from psycopg import sql
from typer.main import get_command
from typer.testing import CliRunner, Result

import commands.cli  # noqa: F401 - registers every command on the app
from commands.app import app
from ledger.canonical import canonical
from ledger.checkpoints import checkpoint_id
from ledger.domain import agreement_id
from ledger.keys import Signer
from ledger.keystore import KeyStore
from ledger.statement import Entry, Statement, new_act_id
from ledger.storage import Location, parse_location
from tests.keys import fixed_key

ORIGIN = "ledger.test.example/audit"
PASSPHRASE = "correct horse battery staple"

SALFORD = "salford-dat-2004"
ALCOHOL = "salford-alcohol-2005"
PCT, COUNCIL, PROBATION = "salford-pct", "salford-council", "gm-probation"
#: Holds a key of its own but is no partner of anything: the forger.
MALLORY = "mallory"
KEY_NAMES = ("operator", PCT, COUNCIL, PROBATION, MALLORY)

TERMS = b"Salford Drug Action Team: section 31 partnership agreement (test copy)\n"


# --- the command line -----------------------------------------------------------------------


@functools.cache
def _command() -> Any:
    """The ``ledger`` command tree, as Typer builds it for each run."""
    return get_command(app)


class Cli:
    """``ledger`` run in-process against one ledger, with one key folder."""

    def __init__(self, ledger_url: str, folder: Path) -> None:
        self.url = ledger_url
        self.folder = folder
        self.keys = folder / "keys"
        self.runner = CliRunner()

    def make_keys(self) -> None:
        """Every participant's fixed test key, encrypted in the key folder (at the low scrypt
        cost of test keys, so that many folders are quick to make and to open)."""
        from tests.keys import store_fixed_key  # noqa: PLC0415

        store = KeyStore(self.keys)
        for name in KEY_NAMES:
            store_fixed_key(store, name, PASSPHRASE.encode())

    def run(self, *args: str, code: int = 0, ledger: str | None = None) -> Result:
        """Run one command; it must end with exit status ``code`` and never a traceback.

        The command runs on this ledger unless ``ledger`` or its own ``--ledger`` names another.
        """
        argv = [*args] if "--ledger" in args else [*args, "--ledger", ledger or self.url]
        # Typer rebuilds the whole command tree on every invoke, which costs more than most
        # commands; the tree never changes, so build it once.
        with mock.patch("typer.testing._get_command", return_value=_command()):
            result = self.runner.invoke(app, argv, env={
                "LEDGER_KEYS": str(self.keys), "LEDGER_PASSPHRASE": PASSPHRASE,
                "LEDGER_URL": None, "COLUMNS": "200"})
        # CliRunner turns an unexpected exception into exit status 1 too: that is a crash,
        # not a refusal, and must not pass for one.
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"ledger {' '.join(args)} crashed: {result.exception!r}\n"
                                 f"{result.output}") from result.exception
        assert result.exit_code == code, (
            f"ledger {' '.join(args)}: exit {result.exit_code}, expected {code}\n"
            f"{result.output}")
        return result

    def json(self, *args: str, code: int = 0, ledger: str | None = None) -> Any:
        """Run one command with ``--json`` and read its document."""
        return json.loads(self.run(*args, "--json", code=code, ledger=ledger).stdout)

    def verify_fails(self) -> list[dict[str, Any]]:
        """``ledger verify`` exits 3; its failures as ``--json`` lists them."""
        report = self.json("verify", code=3)
        assert report["ok"] is False
        assert report["failures"], "verify failed without naming a failure"
        failures: list[dict[str, Any]] = report["failures"]
        return failures

    def witness_state(self, partner: str) -> bytes | None:
        """The bytes of ``partner``'s witness state file, if it has one."""
        path = self.keys / f"{partner}.witness.json"
        return path.read_bytes() if path.exists() else None

    # --- the scenario ---------------------------------------------------------------------

    def salford(self, *, init: bool = True) -> None:
        """The Salford drug action team partnership as its partners record it.

        Three partners draft, join, declare their 2003/04 funding and sign (3 July 2003); the
        council drafts a second, smaller agreement in between, so that log indexes and
        sequence numbers differ. 10 entries: Salford seq 1-5 at log 0-4, the alcohol
        agreement's draft at log 5, Salford seq 6-7 at log 6-7, the PCT joins the alcohol
        agreement at log 8, Salford's last signature (seq 8) at log 9.
        """
        terms = self.folder / "terms.txt"
        terms.write_bytes(TERMS)
        if init:  # (else the ledger and the keys were made already)
            self.make_keys()
            self.run("init", "--origin", ORIGIN)
        self.run("draft", SALFORD, "--as", PCT,
                 "--title", "Salford Drug Action Team pooled treatment budget",
                 "--terms", str(terms), "--agreed", "2003-07-03", "--start", "2004-04-01",
                 "--notice", "6m", "--basis", "Health Act 1999 s.31",
                 "--flexibility", "pooled-budget", "--flexibility", "lead-commissioning",
                 "--name", "Salford PCT", "--role", "commissioning", "--lead", "--host",
                 "--signatory", "Anne Williams",
                 "--designation", "Chair, Salford Drug Action Team",
                 "--at", "2003-07-01T09:00:00Z")
        self.run("join", SALFORD, "--as", COUNCIL, "--name", "Salford City Council",
                 "--role", "commissioning", "--pool-manager", "--signatory", "Alan Westwood",
                 "--designation", "Strategic Director of Community Services",
                 "--at", "2003-07-01T11:00:00Z")
        self.run("join", SALFORD, "--as", PROBATION,
                 "--name", "National Probation Service, Greater Manchester", "--role", "other",
                 "--signatory", "Roger Statham", "--designation", "Chief Officer",
                 "--at", "2003-07-01T12:00:00Z")
        self.run("contribute", SALFORD, "--as", PCT, "--year", "2003/04", "--amount", "341740",
                 "--source", "PCT mainstream", "--at", "2003-07-02T10:00:00Z")
        self.run("contribute", SALFORD, "--as", COUNCIL, "--year", "2003/04",
                 "--amount", "290000", "--source", "Social Services",
                 "--at", "2003-07-02T11:00:00Z")
        self.run("draft", ALCOHOL, "--as", COUNCIL, "--title", "Salford alcohol services",
                 "--terms", str(terms), "--start", "2005-04-01", "--notice", "3m",
                 "--name", "Salford City Council", "--role", "commissioning",
                 "--signatory", "Alan Westwood",
                 "--designation", "Strategic Director of Community Services",
                 "--at", "2003-07-02T12:00:00Z")
        self.run("sign", SALFORD, "--as", PCT, "--at", "2003-07-03T10:00:00Z")
        self.run("sign", SALFORD, "--as", COUNCIL, "--at", "2003-07-03T11:00:00Z")
        self.run("join", ALCOHOL, "--as", PCT, "--name", "Salford PCT",
                 "--role", "commissioning", "--signatory", "Anne Williams",
                 "--designation", "Chair, Salford Drug Action Team",
                 "--at", "2003-07-03T11:30:00Z")
        self.run("sign", SALFORD, "--as", PROBATION, "--at", "2003-07-03T12:00:00Z")

    def cosigned_salford(self) -> None:
        """Salford (:meth:`salford`), checkpointed and cosigned by the council and the
        probation service: what a bundle of it carries."""
        self.salford()
        self.run("checkpoint")
        self.run("cosign", "--as", COUNCIL)
        self.run("cosign", "--as", PROBATION)

    def payments(self) -> None:
        """The first quarter's payments into the pool (Salford seq 9 and 10, log 10 and 11)."""
        self.run("contribute", SALFORD, "--as", PCT, "--year", "2003/04", "--amount", "85435",
                 "--paid", "--at", "2004-04-01T09:00:00Z")
        self.run("contribute", SALFORD, "--as", COUNCIL, "--year", "2003/04",
                 "--amount", "72500", "--paid", "--at", "2004-04-01T10:00:00Z")


#: Where each Salford entry sits in the log after :meth:`Cli.salford` (seq -> log index).
SALFORD_LOG = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 6, 7: 7, 8: 9, 9: 10, 10: 11}
#: How many entries :meth:`Cli.salford` makes (the log's size after it).
ENTRIES = 10


@contextlib.contextmanager
def scratch_ledger(backend: str, folder: Path, name: str = "ledger") -> Iterator[str]:
    """A URL for a new, empty ledger on ``backend`` ("sqlite" or "postgres"), for fixtures
    wider than one test; a PostgreSQL schema is dropped afterwards."""
    if backend == "sqlite":
        yield str(folder / f"{name}.db")
        return
    from tests.conftest import POSTGRES_URL, drop_schema, fresh_schema  # noqa: PLC0415

    assert POSTGRES_URL is not None, "the caller skips PostgreSQL runs without a server"
    schema, url = fresh_schema(POSTGRES_URL)
    try:
        yield url
    finally:
        drop_schema(POSTGRES_URL, schema)


#: Parameters of a fixture that runs on every backend, as ``tests.conftest.ledger_url`` does.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def backend_of(request: pytest.FixtureRequest) -> str:
    """The backend a fixture parametrized by :data:`BACKENDS` runs on (skipping PostgreSQL,
    saying why, when no server is configured)."""
    backend: str = request.param
    if backend == "postgres":
        request.getfixturevalue("postgres_url")
    return backend


# --- the back door --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One stored event, as the database holds it."""

    notification_id: int
    originator_id: uuid.UUID
    version: int
    topic: str
    state: dict[str, Any]

    @property
    def entry(self) -> dict[str, Any]:
        """The entry this event holds, as a JSON object."""
        value: dict[str, Any] = json.loads(self.state["entry"])
        return value


def _encode_state(state: dict[str, Any]) -> bytes:
    # As eventsourcing writes it; the ledger only needs it to be JSON.
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


def entry_text(entry: dict[str, Any]) -> str:
    """An entry object in its one canonical form."""
    return canonical(entry).decode()


class Backdoor:
    """Plain SQL on a ledger's tables, past every check the ledger makes."""

    def __init__(self, ledger_url: str) -> None:
        self.location: Location = parse_location(ledger_url)

    @property
    def sqlite(self) -> bool:
        """Whether the ledger is a SQLite file."""
        return self.location.is_sqlite

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.sqlite:
            conn = sqlite3.connect(str(self.location.path))
            try:
                yield conn.cursor()
                conn.commit()
            finally:
                conn.close()
            return
        with psycopg.connect(**self.location.connect_args()) as pg, pg.cursor() as cur:  # type: ignore[arg-type]
            cur.execute(sql.SQL("SET search_path TO {}").format(
                sql.Identifier(self.location.schema)))
            # The event table may refuse changes through triggers (ledger/protect.py); the
            # adversary here is the database's superuser, who can silence them for a session.
            # Verification must catch what gets past them.
            cur.execute("SET session_replication_role = replica")
            yield cur

    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``query`` (``?`` placeholders, table names as on SQLite) on either backend."""
        if not self.sqlite:
            query = (query.replace("?", "%s").replace("rowid", "notification_id")
                     .replace("stored_events", "ledger_events"))
        with self._cursor() as cur:
            cur.execute(query, [self._param(p) for p in params])
            return list(cur.fetchall()) if cur.description else []

    def _param(self, value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return value.hex if self.sqlite else value
        return value

    # --- events ---------------------------------------------------------------------------

    def event_count(self) -> int:
        """How many events the database holds (0 when it holds no event table at all)."""
        if self.sqlite:
            assert self.location.path is not None
            if not self.location.path.exists():
                return 0
            table = self.execute("SELECT name FROM sqlite_master WHERE name = 'stored_events'")
        else:
            table = self.execute("SELECT to_regclass('ledger_events')")
            table = [t for t in table if t[0] is not None]
        if not table:
            return 0
        return int(self.execute("SELECT count(*) FROM stored_events")[0][0])

    def rows(self) -> list[Row]:
        """Every stored event, in notification order."""
        found = self.execute("SELECT rowid, originator_id, originator_version, topic, state "
                             "FROM stored_events ORDER BY rowid")
        return [Row(int(n), o if isinstance(o, uuid.UUID) else uuid.UUID(o), int(v), t,
                    json.loads(bytes(s))) for n, o, v, t, s in found]

    def entry_row(self, reference: str, seq: int) -> Row:
        """The stored event holding entry ``seq`` of agreement ``reference``."""
        wanted = agreement_id(reference)
        for row in self.rows():
            if row.originator_id == wanted and row.version == seq:
                return row
        raise AssertionError(f"no stored entry {reference}:{seq}")

    def write_state(self, row: Row, state: dict[str, Any]) -> None:
        """Replace one event's state."""
        self.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                     (_encode_state(state), row.notification_id))

    def write_entry(self, row: Row, entry: dict[str, Any]) -> None:
        """Replace the entry one event holds, keeping the rest of its state."""
        self.write_state(row, {**row.state, "entry": entry_text(entry)})

    def edit_entry(self, reference: str, seq: int,
                   change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to entry ``seq`` of ``reference`` in place; return the new entry."""
        row = self.entry_row(reference, seq)
        entry = row.entry
        change(entry)
        self.write_entry(row, entry)
        return entry

    def delete_entry(self, reference: str, seq: int) -> None:
        """Remove entry ``seq`` of ``reference`` from the event store."""
        row = self.entry_row(reference, seq)
        self.execute("DELETE FROM stored_events WHERE rowid = ?", (row.notification_id,))

    def swap_entries(self, reference: str, seq1: int, seq2: int) -> None:
        """Exchange the stored states of two entries of one agreement."""
        first, second = self.entry_row(reference, seq1), self.entry_row(reference, seq2)
        self.write_state(first, second.state)
        self.write_state(second, first.state)

    def append_entry(self, reference: str, entry: Entry, like: tuple[str, int]) -> None:
        """Store ``entry`` as the next event of ``reference``, with the topic and state shape
        of entry ``like`` (``(reference, seq)``): what a forger with write access would do."""
        model = self.entry_row(*like)
        self.execute("INSERT INTO stored_events (originator_id, originator_version, topic, "
                     "state) VALUES (?, ?, ?, ?)",
                     (agreement_id(reference), entry.statement.seq, model.topic,
                      _encode_state({**model.state, "entry": entry.text})))

    def checkpoint_rows(self, size: int) -> list[Row]:
        """The events of the checkpoint of ``size`` entries (signed, then cosigned)."""
        wanted = checkpoint_id(size)
        return [r for r in self.rows() if r.originator_id == wanted]

    def delete_checkpoint(self, size: int) -> None:
        """Remove the checkpoint of ``size`` entries and its cosignatures from the store."""
        rows = self.checkpoint_rows(size)
        assert rows, f"no checkpoint of size {size} is stored"
        for row in rows:
            self.execute("DELETE FROM stored_events WHERE rowid = ?", (row.notification_id,))

    # --- the stored tree ------------------------------------------------------------------

    def node(self, level: int, index: int) -> bytes:
        """A stored hash of the Merkle tree (level 0: a leaf's, kept with the leaf)."""
        found = (self.execute('SELECT hash FROM log_leaves WHERE "index" = ?', (index,))
                 if level == 0 else
                 self.execute('SELECT hash FROM log_nodes WHERE level = ? AND "index" = ?',
                              (level, index)))
        assert found, f"no stored node ({level}, {index})"
        return bytes(found[0][0])

    def set_node(self, level: int, index: int, digest: bytes) -> None:
        """Overwrite a stored hash of the Merkle tree."""
        if level == 0:
            self.execute('UPDATE log_leaves SET hash = ? WHERE "index" = ?', (digest, index))
        else:
            self.execute('UPDATE log_nodes SET hash = ? WHERE level = ? AND "index" = ?',
                         (digest, level, index))


# --- forgeries --------------------------------------------------------------------------------


def flip_base64(text: str, at: int = 0) -> str:
    """``text`` with its character at ``at`` changed: still canonical base64 of the same
    length, a different value (``at`` must not be the last character before the padding)."""
    swapped = "B" if text[at] == "A" else "A"
    changed = text[:at] + swapped + text[at + 1:]
    assert base64.b64encode(base64.b64decode(changed)).decode() == changed
    return changed


def forged_next(previous: dict[str, Any], action: str, partner: str, body: dict[str, Any],
                signer: Signer) -> Entry:
    """A well-formed entry following ``previous`` (an entry object), signed by ``signer``.

    Everything a genuine next entry has is right (origin, seq, prev, canonical form): only the
    key is not the partner's.
    """
    s = Statement.from_json(previous["statement"])
    prev = Entry.parse(entry_text(previous)).hash
    statement = Statement(s.origin, s.agreement, s.seq + 1, prev, action, partner,
                          signer.key_id, s.at, body, new_act_id())
    return Entry.sign(statement, signer)


def mallory() -> Signer:
    """The forger's key."""
    return fixed_key(MALLORY)
