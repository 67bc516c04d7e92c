"""Plain converters for the command line's parameters, so that a command starts without pydantic.

typer converts every value given on the command line with a pydantic ``TypeAdapter`` built at
the first parse: importing pydantic and building the adapters costs a command about a tenth of
a second, every time it runs, to turn text into text. The ledger's commands take only ``str``,
``int``, ``Path``, lists of ``str`` and flags (``bool``): once :func:`install` has run, each
such parameter gets a converter that does what typer's would, in plain Python. A value of any
other kind, or a parameter of any other type, is left to typer's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer.core
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_path

if TYPE_CHECKING:
    from typer._click import Context
    from typer.core import _TyperParameter

#: typer's (pydantic's) words for text that is not an integer, kept so that messages stay the same.
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"


def _integer(text: str) -> int:
    """An integer as typed: optional sign, ASCII digits (``_`` between them), spaces around."""
    stripped = text.strip()
    if not stripped.isascii():
        raise ValueError(text)
    return int(stripped)


@dataclass(frozen=True)
class PlainParam(RuntimeParam):
    """Converts a value of the types the ledger's commands take; anything else, typer's way."""

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        kind = self.annotation
        if kind is str and isinstance(value, str):
            return value
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is int and isinstance(value, str):
            try:
                return _integer(value)
            except ValueError:
                raise BadParameter(NOT_AN_INTEGER, ctx=ctx, param=param) from None
        if kind is Path and isinstance(value, (str, Path)):
            return coerce_cli_path(Path(value), self.parameter_info, path_type=Path,
                                   param=param, ctx=ctx)
        if kind == list[str] and isinstance(value, (list, tuple)) \
                and all(isinstance(item, str) for item in value):
            return list(value)
        descriptor = param.type_descriptor
        return build_runtime_param(descriptor)._coerce_value(value, param=param, ctx=ctx)


_PLAIN: tuple[Any, ...] = (str, bool, int, Path, list[str])


def runtime_param(descriptor: TypeDescriptor) -> RuntimeParam:
    """The converter of one parameter: the plain one for the types it knows, else typer's."""
    info = descriptor.parameter_info
    if descriptor.annotation in _PLAIN and info.parser is None and info.min is None \
            and info.max is None and descriptor.file_annotation is None:
        return PlainParam(parameter_info=info, annotation=descriptor.annotation)
    return build_runtime_param(descriptor)


def install() -> None:
    """Have typer build every parameter's converter with :func:`runtime_param`."""
    typer.core.build_runtime_param = runtime_param  # type: ignore[attr-defined]
