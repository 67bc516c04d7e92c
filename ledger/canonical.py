"""The one canonical byte form of everything the ledger signs or hashes.

Statements and entries are JSON objects canonicalised with RFC 8785 (JCS). :func:`canonical`
is the one function that writes canonical bytes and :func:`parse_canonical` the one that reads
them: signing, hashing and verifying all go through them, so that anyone can recompute the
same bytes with any JCS implementation. Both ask :mod:`ledger._internal.fastjson` first and
take the reference way (the ``rfc8785`` package) wherever it is not sure.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from ledger._internal import fastjson
from ledger.errors import InvalidInput

#: Domain separation: a statement signature can never be mistaken for a signature over anything
#: else made with the same key (a signed note, another protocol's message).
SIGNING_CONTEXT = b"agreement-ledger/v1\n"

#: ``prev`` of the first entry of every agreement.
ZERO_HASH = "0" * 64


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON of ``obj``, exactly as the reference implementation writes it;
    what RFC 8785 cannot write (a lone surrogate, an integer beyond I-JSON, NaN) is refused."""
    quick = fastjson.write(obj)
    if quick is not None:
        return quick
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        # ValueError: UnicodeEncodeError, which rfc8785 raises for a lone surrogate in a key.
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
    exactly one hash (no malleability through white space, key order or escapes). Nothing the
    ledger signs holds a float (amounts are decimal strings), so a number with a fraction or
    an exponent is refused by name.
    """
    raw = text.encode() if isinstance(text, str) else text
    quick = fastjson.read(raw)
    if quick is not fastjson.NOT_SURE:
        return quick
    # The strict reading, which says exactly what is wrong.
    try:
        value = json.loads(raw, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not valid JSON: {exc}") from None
    try:
        again = canonical(value)
    except InvalidInput:
        again = b""
    if again != raw:
        raise InvalidInput("JSON is not in RFC 8785 canonical form")
    return value


def _no_float(text: str) -> Any:
    raise ValueError(f"{text} is not allowed: amounts are decimal strings, counts integers")
