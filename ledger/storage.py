"""Where a ledger lives: a SQLite file or a PostgreSQL database (optionally one schema of it).

``--ledger`` (or ``LEDGER_URL``) is read once into a :class:`Location`, which says how to reach
the same database from eventsourcing's recorders (the event store) and from SQLAlchemy (the read
models), so that both halves of a ledger are always in one database.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.errors import InvalidInput, StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_FILE = "ledger.db"
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Location:
    """A ledger's database."""

    kind: str  # "sqlite" | "postgresql"
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = ""
    schema: str = "public"

    @property
    def is_sqlite(self) -> bool:
        """Whether the ledger is an embedded SQLite file."""
        return self.kind == "sqlite"

    def describe(self) -> str:
        """The location for messages (never with the password)."""
        if self.is_sqlite:
            return str(self.path)
        schema = "" if self.schema == "public" else f"?schema={self.schema}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}{schema}"

    def eventsourcing_env(self) -> dict[str, str]:
        """Settings for eventsourcing's recorders."""
        if self.is_sqlite:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "APPLICATION_RECORDER_TOPIC": "ledger._internal.notifications:SQLiteRecorder",
                "SQLITE_DBNAME": str(self.path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_PRE_PING": "y",
            "POSTGRES_LOCK_TIMEOUT": "30",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
        }

    def create_schema(self) -> None:
        """Make the PostgreSQL schema of a new ledger (SQLite files need nothing)."""
        if self.is_sqlite or self.schema == "public":
            return
        import psycopg  # noqa: PLC0415 - only PostgreSQL ledgers need the driver
        from psycopg import sql  # noqa: PLC0415

        try:
            with psycopg.connect(**self.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
                # A schema made beforehand for the owner role (docs/OPERATIONS.md) is used as
                # it is: making one needs CREATE on the database, which the owner need not have.
                found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                     (self.schema,)).fetchone()
                if found is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        except psycopg.Error as exc:
            raise self.unreachable(exc) from None

    def check_server(self) -> None:
        """PostgreSQL: connect once, at once, so that a wrong database, role or password is
        told now in the server's own words, not as a pool's timeout five seconds later."""
        if self.is_sqlite:
            return
        import psycopg  # noqa: PLC0415 - only PostgreSQL ledgers need the driver

        try:
            psycopg.connect(**self.connect_args()).close()  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: BaseException) -> StorageError:
        """One line naming the database and what to check."""
        text = str(exc).strip()
        detail = text.splitlines()[0] if text else type(exc).__name__
        if self.is_sqlite:
            return StorageError(f"cannot use the ledger file {self.path}: {detail}")
        refused = detail.partition("FATAL:")[2].strip()
        if refused:
            # The server answered, and said no: "database "x" does not exist", "role "y" does
            # not exist", "password authentication failed for user "y"".
            fix = ("create it or name another in the URL" if refused.startswith("database ")
                   else "check the user and password in the URL (or ~/.pgpass)")
            return StorageError(f"PostgreSQL at {self.host}:{self.port} refused the connection: "
                                f"{refused}; {fix}")
        return StorageError(
            f"cannot reach PostgreSQL at {self.host}:{self.port} (database {self.dbname!r}): "
            f"{detail}; check that the server is running and the URL is right")

    def sqlite_kind(self) -> str:
        """What the SQLite file holds, read without writing a byte: ``missing``, ``empty`` (no
        bytes, or a database with no tables), ``ledger`` (it holds a ledger's events),
        ``other`` (tables of something else); a file that is not SQLite is refused."""
        assert self.path is not None
        if not self.path.exists():
            return "missing"
        if self.path.is_dir():
            raise StorageError(f"{self.path} is a folder, not a ledger file; name a file with "
                               f"--ledger")
        if self.path.stat().st_size == 0:
            return "empty"
        try:
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)
            try:
                tables = {name for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a ledger: it is not a SQLite database "
                               f"({exc}); name a ledger file with --ledger") from None
        if not tables:
            return "empty"
        return "ledger" if "stored_events" in tables else "other"

    def connect_args(self) -> dict[str, object]:
        """Keyword arguments for ``psycopg.connect``."""
        return {"host": self.host, "port": self.port, "user": self.user,
                "password": self.password or None, "dbname": self.dbname,
                "connect_timeout": 5}

    def sqlalchemy_url(self) -> URL:
        """The same database for SQLAlchemy."""
        # Only the read models use SQLAlchemy: an act on the event store never loads it.
        from sqlalchemy.engine import URL  # noqa: PLC0415

        if self.is_sqlite:
            return URL.create("sqlite", database=str(self.path))
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password or None,
            host=self.host,
            port=self.port,
            database=self.dbname,
        )


def parse_location(text: str | None, cwd: Path | None = None) -> Location:
    """Read ``--ledger``: a file path, ``sqlite:///path`` or ``postgresql://...[?schema=NAME]``."""
    base = cwd or Path.cwd()
    if not text:
        return Location("sqlite", path=(base / DEFAULT_FILE).resolve())
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return _postgres(text)
    if text.startswith("sqlite://"):
        raw = text.removeprefix("sqlite://")
        if not raw.startswith("/") or raw == "/":
            raise InvalidInput(f"--ledger {text!r}: write sqlite:///relative.db or sqlite:////abs.db")
        text = raw[1:]
    if "://" in text:
        raise InvalidInput(
            f"--ledger {text!r} is neither a file nor a postgresql:// URL")
    path = Path(text).expanduser()
    return Location("sqlite", path=(path if path.is_absolute() else base / path).resolve())


def _postgres(text: str) -> Location:
    parts = urlsplit(text)
    query = parse_qs(parts.query)
    schema = query.get("schema", ["public"])[-1]
    if not _SCHEMA.fullmatch(schema):
        raise InvalidInput(f"schema {schema!r} is not a valid name: lower-case letters, digits, _")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise InvalidInput(f"--ledger {text!r} names no database: postgresql://user@host/DBNAME")
    try:
        port = parts.port or 5432
    except ValueError:
        raise InvalidInput(f"--ledger {text!r} has an invalid port") from None
    return Location(
        "postgresql",
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        dbname=dbname,
        schema=schema,
    )
