"""The ``ledger`` application object that every command module registers on."""

from __future__ import annotations

import typer

# typer builds its parameter converters on a command's first parse, importing pydantic then;
# import them with the application so that start-up is paid once, where it is measured.
import typer._adapters

app = typer.Typer(
    name="ledger",
    help="A signed ledger of multi-party agreements: who agreed what, when, with how much money.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Create and list partners' signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
