"""The one canonical byte form of everything the ledger signs or hashes.

Statements and entries are JSON objects canonicalised with RFC 8785 (JCS). Nothing else in the
ledger serialises a statement: signing, hashing and verifying all go through these functions, so
that anyone can recompute the same bytes with any JCS implementation.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson
import rfc8785

from ledger.errors import InvalidInput

#: Domain separation: a statement signature can never be mistaken for a signature over anything
#: else made with the same key (a signed note, another protocol's message).
SIGNING_CONTEXT = b"agreement-ledger/v1\n"

#: ``prev`` of the first entry of every agreement.
ZERO_HASH = "0" * 64


#: JCS limits integers to those a double holds exactly (I-JSON).
_MAX_INT = 2**53 - 1


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


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` (no floats: money and dates are strings)."""
    try:
        text = orjson.dumps(obj, option=_ORJSON_STRICT, default=_not_json)
    except TypeError:  # orjson.JSONEncodeError too: a lone surrogate, a huge int, a key type
        text = b""
    # orjson writes RFC 8785 for the same values Python's encoder does (see _plain); what it
    # wrote shows whether the value was one: no bare number first, no number with a fraction,
    # exponent or more digits than a double holds exactly, no character beyond U+FFFF.
    if (text[:1] not in b"-0123456789" and not _found(_NOT_EXACT, text)
            and (text.isascii() or not _BEYOND_BMP.search(text))):
        return text
    if _plain(obj):
        written = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        try:
            return written.encode()
        except UnicodeEncodeError:
            return _rfc8785(obj)  # a lone surrogate: RFC 8785 refuses it with its own message
    return _rfc8785(obj)


def _rfc8785(obj: Any) -> bytes:
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise InvalidInput(f"cannot canonicalise this value as JSON: {exc}") from None


def signing_input(statement: dict[str, Any]) -> bytes:
    """The exact bytes an Ed25519 signature covers: the context line, then JCS(statement)."""
    return SIGNING_CONTEXT + canonical(statement)


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def parse_canonical(text: bytes | str) -> Any:
    """Parse JSON that must already be in canonical form; refuse anything else.

    A stored or received entry is accepted only in its one canonical form, so that one entry has
    exactly one hash (no malleability through white space, key order or escapes).
    """
    raw = text.encode() if isinstance(text, str) else text
    quick = _quickly_canonical(raw)
    if quick is not _NOT_SURE:
        return quick
    # The strict reading, which says exactly what is wrong.
    try:
        # Floats (and NaN, Infinity) are refused while parsing: nothing the ledger signs has
        # one, and without them Python's encoder writes RFC 8785 for every ASCII-keyed value.
        value = json.loads(raw, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not valid JSON: {exc}") from None
    try:
        again = json.dumps(value, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode()
    except UnicodeEncodeError:
        again = b""
    # Sorting keys by code point and by UTF-16 code unit (RFC 8785) can differ only where a
    # key holds a character beyond U+FFFF, which UTF-8 writes with a lead byte F0 to F4.
    if (again != raw or _BEYOND_BMP.search(raw)) and canonical(value) != raw:
        raise InvalidInput("JSON is not in RFC 8785 canonical form")
    return value


_BEYOND_BMP = re.compile(rb"[\xf0-\xf4]")
_NOT_SURE = object()


def _quickly_canonical(raw: bytes) -> Any:
    """The value of ``raw`` if it is surely canonical, else ``_NOT_SURE``.

    orjson writes sorted keys with RFC 8785's escapes and plain UTF-8, so text it writes back
    byte for byte is canonical, provided it holds no number with a fraction or exponent (orjson
    reads those as floats) and no key beyond U+FFFF.
    """
    if (raw[:1] in b"-0123456789" or _found(_FLOATISH, raw)
            or (not raw.isascii() and _BEYOND_BMP.search(raw))):
        return _NOT_SURE
    try:
        value = orjson.loads(raw)
        again = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return _NOT_SURE
    return value if again == raw else _NOT_SURE


def _numbers(tail: bytes) -> tuple[re.Pattern[bytes], ...]:
    # One pattern per character a number can follow in JSON without white space (other than
    # at the very start): a pattern that begins with a literal is searched many times faster.
    return tuple(re.compile(re.escape(lead) + rb"-?[0-9]" + tail) for lead in (b":", b",", b"["))


#: A number with a fraction or an exponent. Like the others, it can match inside a string
#: too; such text simply takes the strict path.
_FLOATISH = _numbers(rb"[0-9]*[.eE]")
#: That, or an integer of 16 digits or more (which may be beyond what a double holds exactly).
_NOT_EXACT = _numbers(rb"(?:[0-9]*[.eE]|[0-9]{15})")


def _found(patterns: tuple[re.Pattern[bytes], ...], text: bytes) -> bool:
    return any(p.search(text) for p in patterns)


#: orjson writes dates, dataclasses and subclasses of JSON types by itself; they go the slow
#: way instead, which refuses what is not JSON.
_ORJSON_STRICT = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                  | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _no_float(text: str) -> Any:
    raise ValueError(f"{text} is not allowed: amounts are decimal strings, counts integers")
