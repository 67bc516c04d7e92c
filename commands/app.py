"""The ``ledger`` application object that every command module registers on."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

# typer carries its own copy of click; its usage errors are click's (typer exports only
# BadParameter of them).
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

from commands import params, screen

# typer converts every value with pydantic, which a command would import at its first parse:
# the ledger's parameter types get plain converters instead.
params.install()


class LedgerGroup(TyperGroup):
    """The command group, with usage errors told in one line (and a pointer to the help)
    rather than a box: like every other refusal of the command line."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        """Run the command; in standalone mode, a usage error is one line and exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        except ClickException as exc:
            context = exc.ctx if isinstance(exc, UsageError) else None
            message = exc.format_message().rstrip(".")
            if context is not None and not message:
                typer.echo(context.get_help())  # the command alone: its help
                sys.exit(exc.exit_code)
            command = context.command_path if context is not None else "ledger"
            screen.echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            screen.echo("error: aborted; nothing was written", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="ledger",
    cls=LedgerGroup,
    help="A signed ledger of multi-party agreements: who agreed what, when, with how much money.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Create and list partners' signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
