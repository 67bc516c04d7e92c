"""What every command shares: its common options, opening the ledger and keys, and the one
place where errors become a line on stderr and an exit status.

``@command(app)`` registers a function as a ``ledger`` sub-command and gives it the options every
command accepts after its name (``--ledger``, ``--keys``, ``--passphrase-file``, ``--json``,
``--verbose``), passed to the function as one :class:`Common` object.
"""

from __future__ import annotations

import functools
import gc
import importlib.metadata
import inspect
import io
import json
import os
import stat
import sys
import traceback
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer._click.core import ParameterSource
from typer._click.globals import get_current_context

from commands import screen
from commands.app import LedgerCommand, app
from ledger.errors import InvalidInput, LedgerError, NotFound, StorageError
from ledger.storage import Location, parse_location

if TYPE_CHECKING:
    # A command loads what it uses when it uses it (the event store, the keys), so that
    # '--help' and a command that fails on its options start at once.
    from commands.remote import RemoteLedger
    from ledger.acts import Acts
    from ledger.application import Ledger
    from ledger.keys import Signer
    from ledger.keystore import KeyStore
    from ledger.verify import Report


def is_remote(url: str | None) -> bool:
    """Whether ``--ledger`` names a ledger service rather than a database."""
    return url is not None and url.split(":", 1)[0].lower() in ("http", "https")


F = TypeVar("F", bound=Callable[..., Any])

#: The name under which a key folder keeps the last checkpoint it verified over a service.
VERIFIED = "verified"


@dataclass
class Common:
    """The options every command accepts, and what they open."""

    ledger_url: str | None = None
    keys_dir: str | None = None
    json: bool = False
    verbose: bool = False
    passphrase_file: str | None = None
    _ledger: Ledger | None = field(default=None, repr=False)
    _from_file: bytes | None = field(default=None, repr=False)
    _remote: RemoteLedger | None = field(default=None, repr=False)
    #: Tells the act this command recorded: set the moment the act has landed, so that an
    #: interruption after it still reports the act as done (a retry would record it twice).
    landed: Callable[[], None] | None = field(default=None, repr=False)
    told: bool = field(default=False, repr=False)

    @property
    def location(self) -> Location:
        """Where the ledger is."""
        return parse_location(self.ledger_url)

    def open_ledger(self, *, must_exist: bool = True) -> Ledger:
        """The ledger named by ``--ledger``; a missing ledger is one clear error."""
        if is_remote(self.ledger_url):
            raise InvalidInput("this command works on the ledger's database, not over a "
                               "ledger service: run it where the service runs")
        if self._ledger is None:
            location = self.location
            if location.is_sqlite:
                # Looked at without writing: opening a SQLite file for the ledger changes it.
                kind = location.sqlite_kind()
                if must_exist and kind == "missing":
                    raise StorageError(f"there is no ledger at {location.path}; create one with "
                                       f"'ledger init' or name another with --ledger")
                if must_exist and kind != "ledger":
                    raise StorageError(f"{location.path} is not a ledger; create one with "
                                       f"'ledger init' or name another with --ledger")
                if not must_exist and kind == "other":
                    raise StorageError(f"{location.path} is a SQLite database of something "
                                       f"else; a ledger gets a file of its own: name a new one "
                                       f"with --ledger")
            from ledger.application import Ledger  # noqa: PLC0415

            app = Ledger(location, create=not must_exist)
            if must_exist and not app.is_initialised():
                app.close()
                raise StorageError(f"{location.describe()} is not a ledger; "
                                   f"create one with 'ledger init'")
            self._ledger = app
        return self._ledger

    def open_acting(self) -> Acts:
        """Where a partner acts: the ledger named by ``--ledger``, or the ledger service it
        names (``https://...``), where the act is signed here and posted."""
        if is_remote(self.ledger_url):
            if self._remote is None:
                assert self.ledger_url is not None
                # Only a command over a service loads the HTTP client.
                from commands.remote import RemoteLedger  # noqa: PLC0415

                self._remote = RemoteLedger(self.ledger_url,
                                            read_token=os.environ.get("LEDGER_READ_TOKEN"))
            return self._remote
        return self.open_ledger()

    @property
    def remote(self) -> RemoteLedger | None:
        """The ledger service named by ``--ledger``, if it names one."""
        if is_remote(self.ledger_url):
            self.open_acting()
        return self._remote

    @contextmanager
    def reading(self) -> Iterator[Ledger]:
        """The ledger a read of its log or read models works on: the ledger named by
        ``--ledger``; over a service, this folder's copy of it, brought up to the service's
        latest checkpoint once everything new checks out (:meth:`verified_copy`)."""
        remote = self.remote
        if remote is None:
            yield self.open_ledger()
            return
        from ledger.application import Ledger  # noqa: PLC0415
        from projections.audit import refuse_unless_verified  # noqa: PLC0415

        path, report = self.verified_copy()
        refuse_unless_verified(report, f"{remote.describe()} serves a ledger that does not "
                                       f"check out, and nothing was read from it")
        copy = Ledger(parse_location(str(path)))
        try:
            yield copy
        finally:
            copy.close()

    def verified_copy(self) -> tuple[Path, Report]:
        """Over a service: the key folder's copy of its ledger, checked and brought up to
        date (:meth:`RemoteLedger.copy`), and what was checked. The checkpoint it was brought
        to is remembered in the folder (``verified.witness.json``, as a witness keeps what it
        cosigned), so the next time only what is new is read, and must extend it."""
        import hashlib  # noqa: PLC0415

        from ledger.witness import WitnessState  # noqa: PLC0415

        remote = self.remote
        if remote is None:
            raise InvalidInput("only a ledger service is copied; this ledger is read in place")
        folder = self.keystore.folder
        memory_file = WitnessState.path_for(folder, VERIFIED)
        memory = WitnessState.load(memory_file)
        copies = folder / "copies"
        copies.mkdir(parents=True, exist_ok=True)
        path = copies / f"{hashlib.sha256(remote.origin.encode()).hexdigest()[:32]}.db"
        report = remote.copy(path, memory)
        if report.ok:
            memory.save(memory_file)
        return path, report

    @property
    def keystore(self) -> KeyStore:
        """The key folder: ``--keys``, ``LEDGER_KEYS`` or the user data folder."""
        import platformdirs  # noqa: PLC0415

        from ledger.keystore import KeyStore  # noqa: PLC0415

        folder = self.keys_dir or os.environ.get("LEDGER_KEYS")
        if folder:
            return KeyStore(Path(folder).expanduser())
        return KeyStore(Path(platformdirs.user_data_dir("agreement-ledger")) / "keys")

    def passphrase(self, name: str, *, new: bool = False) -> bytes:
        """The passphrase of key NAME: the first line of ``--passphrase-file`` (or
        ``LEDGER_PASSPHRASE_FILE``), else ``LEDGER_PASSPHRASE``, else asked for on the terminal
        (twice for a ``new`` key)."""
        if self.passphrase_file:
            return self._passphrase_from_file(Path(self.passphrase_file).expanduser())
        value = os.environ.get("LEDGER_PASSPHRASE")
        if value is None:
            from ledger.keystore import MIN_PASSPHRASE  # noqa: PLC0415

            if not sys.stdin.isatty():
                raise InvalidInput("no passphrase: set LEDGER_PASSPHRASE, give --passphrase-file "
                                   "or run on a terminal")
            prompt = (f"New passphrase for key {name} (at least {MIN_PASSPHRASE} characters)"
                      if new else f"Passphrase for key {name}")
            value = typer.prompt(prompt, hide_input=True, confirmation_prompt=new, err=True)
        if not value:
            raise InvalidInput("the passphrase is empty; set LEDGER_PASSPHRASE")
        try:
            return value.encode()
        except UnicodeEncodeError:
            raise InvalidInput("the passphrase is not valid UTF-8 text") from None

    def _passphrase_from_file(self, path: Path) -> bytes:
        if self._from_file is None:
            with open_regular(path, "the passphrase file") as file:
                try:
                    text = file.read(PASSPHRASE_FILE_LIMIT)
                except OSError as exc:
                    raise InvalidInput(f"cannot read the passphrase file {path}: "
                                       f"{exc.strerror or exc}") from None
            line = text.split(b"\n", 1)[0].removesuffix(b"\r")
            if not line:
                raise InvalidInput(f"the passphrase file {path} starts with an empty line; "
                                   f"write the passphrase on its first line")
            self._from_file = line
        return self._from_file

    def prepare_key(self, name: str) -> None:
        """Begin opening key NAME while the command goes on (:meth:`KeyStore.prepare`), when
        its passphrase is at hand without asking: a file or the environment."""
        if self.passphrase_file or os.environ.get("LEDGER_PASSPHRASE"):
            try:
                passphrase = self.passphrase(name)
            except LedgerError:
                return  # said again, and stops the command, when the key is opened
            self.keystore.prepare(name, passphrase)

    def signer(self, name: str) -> Signer:
        """Open key NAME from the key folder."""
        return self.keystore.open(name, self.passphrase(name))

    def signer_for(self, partner: str, wanted_key_id: str, name: str | None = None) -> Signer:
        """The key in the folder that is ``partner``'s current key (or key ``name``)."""
        return self.signer(name or self.key_name(partner, wanted_key_id))

    def key_name(self, partner: str, wanted_key_id: str) -> str:
        """The name of the key in the folder whose key id is ``wanted_key_id`` (``partner``'s
        current key), preferring the one named like the partner."""
        store = self.keystore
        if store.exists(partner) and store.public(partner).key_id == wanted_key_id:
            return partner
        found = store.find(wanted_key_id)
        if found is None:
            raise NotFound(
                f"no key in {store.folder} is {partner!r}'s current key ({wanted_key_id[:16]}); "
                f"use --keys to name the folder that holds it")
        return found.name

    def close(self) -> None:
        """Release the database."""
        self._remote = None
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


LedgerOpt = Annotated[str | None, typer.Option(
    "--ledger", envvar="LEDGER_URL", metavar="PATH|URL",
    help="Ledger: a SQLite file (default ./ledger.db) or postgresql://user@host/db[?schema=S].")]
KeysOpt = Annotated[str | None, typer.Option(
    "--keys", envvar="LEDGER_KEYS", metavar="DIR",
    help="Key folder (default: the user data folder of agreement-ledger).")]
PassphraseFileOpt = Annotated[str | None, typer.Option(
    "--passphrase-file", envvar="LEDGER_PASSPHRASE_FILE", metavar="FILE",
    help="Read the passphrase of the keys opened from the first line of FILE "
         "(instead of LEDGER_PASSPHRASE or a prompt).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", help="Show tracebacks of errors.")]

_COMMON = [
    inspect.Parameter("ledger_url", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=LedgerOpt),
    inspect.Parameter("keys_dir", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=KeysOpt),
    inspect.Parameter("passphrase_file", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=PassphraseFileOpt),
    inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False,
                      annotation=JsonOpt),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False,
                      annotation=VerboseOpt),
]


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"ledger {importlib.metadata.version('agreement-ledger')}")
        raise typer.Exit


@app.callback()
def common_options(
        ledger_url: LedgerOpt = None, keys_dir: KeysOpt = None,
        passphrase_file: PassphraseFileOpt = None, json_output: JsonOpt = False,
        verbose: VerboseOpt = False,
        version: Annotated[bool, typer.Option(
            "--version", is_eager=True, callback=_print_version,
            help="Print the version and exit.")] = False) -> None:
    """The common options, also taken before the command (``ledger --json list``)."""


def _before_the_command(kwargs: dict[str, Any]) -> None:
    """The common options given before the command name, where the same option is not given
    after it (an option after the command wins; an environment variable loses to both)."""
    context = get_current_context(silent=True)
    if context is None:
        return
    root = context.find_root()
    if root is context:
        return
    for name in ("ledger_url", "keys_dir", "passphrase_file", "json_output", "verbose"):
        if (root.get_parameter_source(name) is ParameterSource.COMMANDLINE
                and context.get_parameter_source(name) is not ParameterSource.COMMANDLINE):
            kwargs[name] = root.params[name]


def command(app: typer.Typer, name: str | None = None) -> Callable[[F], F]:
    """Register ``func(opts: Common, ...)`` as a command with the common options."""
    def register(func: F) -> F:
        signature = inspect.signature(func)
        # The commands' annotations are strings (PEP 563); resolve them against the command's
        # own module, since typer reads them from the wrapper, which lives here.
        hints = typing.get_type_hints(func, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in signature.parameters.values() if p.name != "opts"]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            _before_the_command(kwargs)
            opts = Common(kwargs.pop("ledger_url"), kwargs.pop("keys_dir"),
                          kwargs.pop("json_output"), kwargs.pop("verbose"),
                          passphrase_file=kwargs.pop("passphrase_file"))
            with handle_errors(opts):
                try:
                    return func(opts, **kwargs)
                finally:
                    opts.close()

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*own, *_COMMON])
        # typer reads the annotations again, each time it builds the commands: give it them
        # resolved, so that it does not evaluate every one from its text at each start.
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *_COMMON)}
        app.command(name, cls=LedgerCommand)(wrapper)
        return func
    return register


@contextmanager
def handle_errors(opts: Common) -> Iterator[None]:
    """The one place errors are caught: one line on stderr, the right exit status."""
    try:
        yield
    except LedgerError as exc:
        if opts.verbose:
            traceback.print_exc()
        screen.echo(f"error: {exc.diagnostics()}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        refusal = _table_refusal(opts, exc)
        if refusal is None:
            raise
        if opts.verbose:
            traceback.print_exc()
        screen.echo(f"error: {refusal.diagnostics()}", err=True)
        raise typer.Exit(refusal.exit_code) from None
    except KeyboardInterrupt:
        if opts.landed is not None:
            if not opts.told:
                opts.landed()
            typer.echo("interrupted after the act was recorded: it stands; do not repeat it",
                       err=True)
            raise typer.Exit(0) from None
        typer.echo("interrupted; nothing more was written", err=True)
        raise typer.Exit(130) from None


def _table_refusal(opts: Common, exc: Exception) -> LedgerError | None:
    """A refusal of the ledger's database that no command turned into a LedgerError (tables
    edited, or of another shape), in one line; None for any other error. SQLAlchemy is looked
    for only if the command loaded it."""
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.DBAPIError):
        return None
    from projections.db import table_refusal  # noqa: PLC0415

    return table_refusal(opts.location, exc)


@contextmanager
def many_objects() -> Iterator[None]:
    """Around reading an audit bundle: millions of small objects and no reference cycles. The
    cyclic collector would only walk them again and again, while they are made and while they
    are checked and stored; it is paused while they are made, and then told to leave them be
    (they are still freed, by reference counting, when they are let go)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


#: A passphrase file is read up to this many bytes (its first line is the passphrase).
PASSPHRASE_FILE_LIMIT = 4096


def open_regular(path: Path, what: str) -> io.BufferedReader:
    """``path`` opened for reading if it is a regular file (never a device or a pipe, which
    could be read for ever or wait for ever); else one line saying what it is."""
    try:
        # Non-blocking, so that opening a pipe with no writer does not wait.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise InvalidInput(f"{what} {path} is not a regular file")
    os.set_blocking(descriptor, True)
    return io.BufferedReader(io.FileIO(descriptor, "rb"))


def emit_json(document: Any) -> None:
    """Print a JSON document on stdout (stable key order, UTF-8)."""
    typer.echo(screen.json_text(json.dumps(document, indent=2, ensure_ascii=False,
                                           sort_keys=False)))
