"""Canonical JSON quickly: orjson and the standard library where they write RFC 8785 exactly.

:func:`ledger.canonical.canonical` and :func:`ledger.canonical.parse_canonical` are the one
writer and the one reader of canonical bytes. They ask here first; where this module is not
sure, it answers ``None`` (or :data:`NOT_SURE`) and the public function takes the reference
way (the ``rfc8785`` package, the strict reader). Property tests in ``tests/test_statement.py``
check every answer given here against ``rfc8785`` itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

#: JCS limits integers to those a double holds exactly (I-JSON).
_MAX_INT = 2**53 - 1

#: What :func:`read` answers when the text may not be canonical.
NOT_SURE: Any = object()

BEYOND_BMP = re.compile(rb"[\xf0-\xf4]")


def write(obj: Any) -> bytes | None:
    """RFC 8785 canonical JSON of ``obj`` if a fast encoder surely writes it, else None."""
    try:
        text = orjson.dumps(obj, option=_ORJSON_STRICT, default=_not_json)
    except TypeError:  # orjson.JSONEncodeError too: a lone surrogate, a huge int, a key type
        text = b""
    # orjson writes RFC 8785 for the same values Python's encoder does (see _plain); what it
    # wrote shows whether the value was one: no bare number first, no number with a fraction,
    # exponent or more digits than a double holds exactly, no character beyond U+FFFF, and
    # no null that may have been a float orjson could not write (NaN and the infinities).
    if (text[:1] not in b"-0123456789n" and not _found(_NOT_EXACT, text)
            and (text.isascii() or not BEYOND_BMP.search(text))
            and (not _found(_NULL, text) or _plain(obj))):
        return text
    if _plain(obj):
        written = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        try:
            return written.encode()
        except UnicodeEncodeError:
            return None  # a lone surrogate: the reference refuses it with its own message
    return None


def read(raw: bytes) -> Any:
    """The value of ``raw`` if it is surely canonical, else :data:`NOT_SURE`.

    orjson writes sorted keys with RFC 8785's escapes and plain UTF-8, so text it writes back
    byte for byte is canonical, provided it holds no number with a fraction or exponent (orjson
    reads those as floats) and no key beyond U+FFFF.
    """
    if (raw[:1] in b"-0123456789" or _found(_FLOATISH, raw)
            or (not raw.isascii() and BEYOND_BMP.search(raw))):
        return NOT_SURE
    try:
        value = orjson.loads(raw)
        again = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return NOT_SURE
    return value if again == raw else NOT_SURE


def relaid(value: Any) -> bytes:
    """``value`` (as read from JSON) written with sorted keys and no white space, each value as
    it is: the canonical bytes of a valid entry, whatever layout it was handed over in.

    Not canonical JSON, and never signed or hashed as such: a bundle's entries are read in any
    layout (docs/FORMAT.md) and what this writes is then read strictly by
    :func:`ledger.canonical.parse_canonical`, which names a float or an integer too long as
    the entry's own failure. :func:`ledger.canonical.canonical` would instead write a float in
    RFC 8785's form and hide it.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _plain(obj: Any) -> bool:
    """Whether ``obj`` is JSON for which Python's own encoder writes exactly RFC 8785.

    With sorted keys, no white space and ``ensure_ascii=False``, :func:`json.dumps` escapes the
    same characters as RFC 8785 (quote, backslash, and control characters, with the same short
    forms and lower-case ``\\u00xx``) and writes everything else as UTF-8. The two differ only
    in the order of non-ASCII keys (UTF-16 code units against code points) and in floats, so
    values with either go the slow way. Statements have neither.
    """
    # A loop with an explicit stack: this runs for every statement signed or verified.
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str or not key.isascii():
                    return False
                if type(item) is not str:
                    stack.append(item)
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif kind is int:
            if not -_MAX_INT <= value <= _MAX_INT:
                return False
        elif not (kind is str or kind is bool or value is None):
            return False
    return True


def _numbers(tail: bytes) -> tuple[re.Pattern[bytes], ...]:
    # One pattern per character a number can follow in JSON without white space (other than
    # at the very start): a pattern that begins with a literal is searched many times faster.
    return tuple(re.compile(re.escape(lead) + rb"-?[0-9]" + tail) for lead in (b":", b",", b"["))


#: A number with a fraction or an exponent. Like the others, it can match inside a string
#: too; such text simply takes the strict path.
_FLOATISH = _numbers(rb"[0-9]*[.eE]")
#: That, or an integer of 16 digits or more (which may be beyond what a double holds exactly).
_NOT_EXACT = _numbers(rb"(?:[0-9]*[.eE]|[0-9]{15})")

#: A null (orjson writes NaN and the infinities so).
_NULL = tuple(re.compile(re.escape(lead) + rb"null") for lead in (b":", b",", b"["))


def _found(patterns: tuple[re.Pattern[bytes], ...], text: bytes) -> bool:
    return any(p.search(text) for p in patterns)


#: orjson writes dates, dataclasses and subclasses of JSON types by itself; they go the slow
#: way instead, which refuses what is not JSON.
_ORJSON_STRICT = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                  | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")
