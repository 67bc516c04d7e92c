"""The ``ledger`` application object that every command module registers on."""

from __future__ import annotations

import inspect
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import typer

# typer carries its own copy of click; its usage errors are click's (typer exports only
# BadParameter of them).
from typer._click import Context, HelpFormatter
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from commands import params, screen

# typer converts every value with pydantic, which a command would import at its first parse:
# the ledger's parameter types get plain converters instead.
params.install()

#: The placeholder of an option's value when it names none: as click names them.
_PLACEHOLDERS = {"int": "N", "path": "FILE", "Path": "FILE"}


def _plain_parameters(params: Sequence[Any]) -> None:
    """Parameters as people read them in help: a value's placeholder in capitals (TEXT, N,
    FILE, or the metavar given) rather than a Python type, an argument named in capitals, and
    a flag that is its own name alone (``--lead``, not ``--lead / --no-lead``)."""
    for param in params:
        if isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
        elif isinstance(param, TyperOption):
            if param.is_flag:
                if param.default is False:
                    param.secondary_opts = []
                param.show_default = False
            elif param.metavar is None:
                label = param.display_type(None).strip("<>")  # type: ignore[arg-type]
                param.metavar = _PLACEHOLDERS.get(label.removeprefix("list[").rstrip("]"),
                                                  "TEXT")


def _summary(command: Any) -> str:
    """A command's first paragraph of help, on one line, whole."""
    text = inspect.cleandoc(command.short_help or command.help or "")
    return " ".join(text.split("\n\n", 1)[0].split())


def _wrap(text: str, width: int) -> list[str]:
    """Paragraphs of ``text`` wrapped between words only ("" between paragraphs)."""
    lines: list[str] = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if lines:
            lines.append("")
        lines += textwrap.wrap(" ".join(paragraph.split()), max(width, 20),
                               break_long_words=False, break_on_hyphens=False) or [""]
    return lines


class PlainFormatter(HelpFormatter):
    """Click's help layout, wrapped between words only: an option name, an id or a format
    is never split at a hyphen or in the middle."""

    def write_text(self, text: str) -> None:
        """A paragraph of help, indented."""
        indent = " " * self.current_indent
        for line in _wrap(text, self.width - self.current_indent):
            self.write(f"{indent}{line}\n" if line else "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30,
                 col_spacing: int = 2) -> None:
        """Names and their help in two columns; a name too long for the first column has its
        help on the next line."""
        rows = list(rows)
        if not rows:
            return
        first = min(max(len(name) for name, _ in rows), col_max) + col_spacing
        indent = " " * self.current_indent
        for name, text in rows:
            lines = _wrap(text, self.width - first - self.current_indent) if text else []
            if not lines:
                self.write(f"{indent}{name}\n")
                continue
            if len(name) + col_spacing <= first:
                self.write(f"{indent}{name.ljust(first)}{lines[0]}\n")
            else:
                self.write(f"{indent}{name}\n{indent}{' ' * first}{lines[0]}\n")
            for line in lines[1:]:
                self.write(f"{indent}{' ' * first}{line}\n" if line else "\n")


class PlainContext(Context):
    """A command's context, its help laid out by :class:`PlainFormatter`."""

    formatter_class = PlainFormatter


class PlainHelp:
    """Help as other commands give it: plain text wrapped to the terminal, option names and
    summaries whole, arguments in capitals (``ledger status [OPTIONS] REF``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS]`` then each argument by its placeholder."""
        pieces = [self.options_metavar] if self.options_metavar else []  # type: ignore[attr-defined]
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class LedgerCommand(PlainHelp, TyperCommand):
    """A ``ledger`` command, its help in plain text."""

    context_class = PlainContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_parameters(self.params)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """Arguments, then options; an argument's Python type is not shown."""
        arguments = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if isinstance(param, TyperArgument) and record is not None:
                arguments.append((param.metavar or record[0].split()[0], record[1]))
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        options = [record for param in self.get_params(ctx)
                   if isinstance(param, TyperOption)
                   and (record := param.get_help_record(ctx)) is not None]
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


class LedgerGroup(PlainHelp, TyperGroup):
    """The command group, with usage errors told in one line (and a pointer to the help)
    rather than a box: like every other refusal of the command line."""

    context_class = PlainContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_parameters(self.params)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] COMMAND [ARGS]...``"""
        return [*super().collect_usage_pieces(ctx), self.subcommand_metavar]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Every command with its summary whole, wrapped rather than cut."""
        rows = [(name, _summary(command)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _named(self, words: list[str]) -> str:
        """The command the words name (``ledger budget``, ``ledger keys new``), for an error
        click raised before it knew which command it was parsing for."""
        path, group = ["ledger"], self
        for word in words:
            found = group.commands.get(word)
            if found is None:
                continue
            path.append(word)
            if not isinstance(found, TyperGroup):
                break
            group = found  # type: ignore[assignment]
        return " ".join(path)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        """Run the command; in standalone mode, a usage error is one line and exit 2."""
        if os.environ.get(complete_var or "_LEDGER_COMPLETE"):
            # Shell completion (docs/CLI.md): its shells are registered only when asked for.
            from typer._completion_classes import completion_init  # noqa: PLC0415

            completion_init()
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        except ClickException as exc:
            context = exc.ctx if isinstance(exc, UsageError) else None
            message = exc.format_message().rstrip(".")
            if context is not None and (isinstance(exc, NoArgsIsHelpError) or not message):
                typer.echo(context.get_help())  # the command alone: its help
                sys.exit(exc.exit_code)
            command = (context.command_path if context is not None
                       else self._named(list(sys.argv[1:] if args is None else args)))
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
    rich_markup_mode=None,
)
keys_app = typer.Typer(cls=LedgerGroup, help="Create and list partners' signing keys.",
                       no_args_is_help=True, rich_markup_mode=None)
app.add_typer(keys_app, name="keys")
