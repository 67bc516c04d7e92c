"""``ledger serve``: the ledger service over HTTP (see :mod:`commands.service`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from commands.app import app
from commands.common import Common, command
from ledger.errors import InvalidInput
from ledger.storage import parse_location

#: Settings handed to each worker process (uvicorn starts them from an import string).
_ENV = "LEDGER_SERVE_SETTINGS"


@command(app, "serve")
def serve(opts: Common,
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
          workers: Annotated[int, typer.Option(
              help="Service processes (each with its own connections to the ledger).")] = 1,
          certfile: Annotated[Path | None, typer.Option(
              help="TLS certificate (PEM); with --keyfile, the service speaks https.")] = None,
          keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
          drafts: Annotated[str, typer.Option(
              help="Who may draft agreements: 'open', or a file of partners' public keys "
                   "(hex, one a line).")] = "open",
          read_token_file: Annotated[Path | None, typer.Option(
              help="Reads need 'Authorization: Bearer TOKEN' with the token in this file; "
                   "without it, reads are open (a public record).")] = None,
          timeout: Annotated[int, typer.Option(
              help="Seconds an idle connection is kept open.")] = 5) -> None:
    """Serve the ledger to partners and auditors: the only writer of a shared ledger."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from commands.service import Policy  # noqa: PLC0415

    if workers < 1:
        raise InvalidInput("--workers is 1 or more")
    if (certfile is None) != (keyfile is None):
        raise InvalidInput("give both --certfile and --keyfile, or neither")
    if workers > 1 and opts.location.is_sqlite:
        raise InvalidInput("a SQLite ledger takes one writer: serve it with --workers 1, or "
                           "share a PostgreSQL database between several")
    Policy.load(drafts, read_token_file)  # refused here, in one line, if unreadable
    url = opts.ledger_url or str(opts.location.path)
    opts.open_ledger()  # a missing ledger is one clear error before anything listens
    opts.close()
    os.environ[_ENV] = repr((url, drafts, None if read_token_file is None
                             else str(read_token_file)))
    uvicorn.run("commands.serve:from_environment", factory=True, host=host, port=port,
                workers=workers, ssl_certfile=None if certfile is None else str(certfile),
                ssl_keyfile=None if keyfile is None else str(keyfile),
                timeout_keep_alive=timeout, limit_concurrency=256, access_log=False,
                log_level="warning", server_header=False)


def from_environment() -> Any:
    """The application of one worker process, from the settings ``serve`` left."""
    import ast  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from commands.service import Policy, make_app  # noqa: PLC0415

    url, drafts, token_file = ast.literal_eval(os.environ[_ENV])
    requests = logging.getLogger("ledger.serve")
    if not requests.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        requests.addHandler(handler)
        requests.setLevel(logging.INFO)
        requests.propagate = False
    return make_app(parse_location(url),
                    Policy.load(drafts, None if token_file is None else Path(token_file)))
