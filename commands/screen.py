"""What reaches a person's terminal from the record: shown as text, never obeyed.

Everything a partner signs (names, titles, reasons, sources) and everything a bundle or a
database holds may reach someone else's screen. A terminal obeys control sequences (an escape
can clear what was printed and leave a fake "verified"), rich obeys its markup (``[/]`` breaks
a table, ``[conceal]`` hides text) and direction overrides reorder what is read. So every line
printed goes through :func:`echo` (control and direction characters shown as ``\\xNN`` or
``\\uNNNN``), every table cell through :func:`cell` (printed by a console that interprets no
markup and no emoji codes), and every JSON document keeps them as JSON escapes.
"""

from __future__ import annotations

import re

import typer

#: Control characters (but the newline and tab of our own layout), DEL and the C1 controls,
#: and the characters that change how text around them displays: direction marks, embeddings,
#: overrides and isolates, zero-width characters, line and paragraph separators, BOM.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2069\ufeff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """``text`` with every character that a terminal would obey, or that hides or reorders
    text, written out as an escape."""
    return _UNSAFE.sub(_visible, text)


def cell(value: object) -> str:
    """A value for a table or a line of the console (whose markup and emoji codes are off,
    so that rich shows it as written): made safe."""
    return safe(str(value))


def echo(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Print a line for a person (stdout, or stderr with ``err``), made safe."""
    typer.echo(safe(text), err=err, nl=nl)


def json_text(text: str) -> str:
    """A JSON document's text with the characters :func:`safe` escapes written as JSON
    ``\\uNNNN`` escapes (json.dumps already escapes the C0 controls): the same document, safe
    on a terminal."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
