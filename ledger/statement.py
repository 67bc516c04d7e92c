"""Statements, signatures and entries: the signed record of one act of one partner.

A *statement* says who did what to which agreement, where in that agreement's history, and
when. An *entry* is the statement with its Ed25519 signature. Both have exactly one byte form,
RFC 8785 canonical JSON (see ``docs/FORMAT.md``)::

    statement = {"v": 2, "act", "origin", "agreement", "seq", "prev", "action", "partner",
                 "key", "at", "body"}
    signature = Ed25519(b"agreement-ledger/v1\\n" || JCS(statement))
    entry     = {"statement": statement, "signature": base64(signature)}
    entry hash = SHA-256(JCS(entry))
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson

from ledger._internal.once import known, once, recalled
from ledger.bodies import Body, parse_body
from ledger.canonical import SIGNING_CONTEXT, canonical, parse_canonical, sha256_hex
from ledger.errors import InvalidInput
from ledger.keys import Signer, verify_signature
from ledger.values import at_text, parse_at, parse_slug, text_problem

B = TypeVar("B")

#: The version of the statements the ledger writes. Version 2 added ``act``, the act's own
#: random identity; version 1 statements (ledgers written by 0.1) are still read and verified.
FORMAT_VERSION = 2
VERSIONS = (1, 2)

ACTIONS = (
    "draft",
    "join",
    "contribute",
    "sign",
    "vary",
    "consent",
    "notice",
    "terminate",
    "appoint",
    "withdraw",
    "reject",
    "acknowledge",
)

#: Actions added with statement version 2.
ACTIONS_FROM_V2 = frozenset({"withdraw", "reject", "acknowledge"})

_FIELDS_V1 = frozenset(
    {"v", "origin", "agreement", "seq", "prev", "action", "partner", "key", "at", "body"}
)
_FIELDS = {1: _FIELDS_V1, 2: _FIELDS_V1 | {"act"}}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ACT = re.compile(r"[0-9a-f]{32}")


def new_act_id() -> str:
    """A new act identity: 128 random bits as 32 lower-case hex digits.

    Chosen once when a partner decides to act, and kept by every retry of that act (after a
    broken connection or a lost race), so that the ledger recognises the retry as the same act;
    two acts that say the same thing are still two acts.
    """
    return secrets.token_hex(16)


def parse_act_id(value: object) -> str:
    """An act identity: 32 lower-case hex digits."""
    if not isinstance(value, str) or not _ACT.fullmatch(value):
        raise InvalidInput("an act identity must be 32 lower-case hex digits")
    return value
_ORIGIN = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")


def parse_origin(text: object) -> str:
    """A ledger origin: printable ASCII, no leading or trailing space (C2SP checkpoint origin)."""
    if not isinstance(text, str) or not _ORIGIN.fullmatch(text) or "+" in text:
        raise InvalidInput(
            f"{text!r} is not a valid ledger origin: use printable ASCII without '+', "
            f"e.g. 'ledger.salford.example/dat'"
        )
    return text


def _hex64(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidInput(f"{what} must be 64 lower-case hex digits")
    return value


_VALIDATORS: dict[str, Callable[[Any], str]] = {
    "origin": parse_origin,
    "agreement reference": functools.partial(parse_slug, what="agreement reference"),
    "partner id": functools.partial(parse_slug, what="partner id"),
    "statement key": functools.partial(_hex64, what="statement key"),
}


def _valid(value: object, what: str) -> str:
    """``value`` checked as ``what``; the origin, agreements, partners and keys of a ledger are
    few and recur in every entry, so each text is checked once."""
    if type(value) is str:
        return _valid_text(value, what)
    return _VALIDATORS[what](value)


@functools.lru_cache(maxsize=16384)
def _valid_text(text: str, what: str) -> str:
    return _VALIDATORS[what](text)


def _check_texts(value: Any, where: str) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise InvalidInput(f"the text of {where} {problem}; texts are signed as they show")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_texts(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_texts(item, f"{where}[{index}]")


#: The largest entry (its canonical text, in bytes). A statement is a handful of short texts,
#: and a draft or variation a few hundred funding lines at the very most: far below this.
MAX_ENTRY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Statement:
    """What a partner signs: one act on one agreement at one point of its history."""

    origin: str
    agreement: str
    seq: int
    prev: str
    action: str
    partner: str
    key: str
    at: datetime
    body: dict[str, Any] = field(hash=False)
    #: The act's identity (version 2); None in a version 1 statement, which had none.
    act: str | None = None

    @property
    def version(self) -> int:
        """The statement format version: 2 with an act identity, 1 without."""
        return 1 if self.act is None else 2

    def to_json(self) -> dict[str, Any]:
        """The statement as a JSON object, ready for canonicalisation."""
        data: dict[str, Any] = {
            "v": self.version,
            "origin": self.origin,
            "agreement": self.agreement,
            "seq": self.seq,
            "prev": self.prev,
            "action": self.action,
            "partner": self.partner,
            "key": self.key,
            "at": at_text(self.at),
            "body": self.body,
        }
        if self.act is not None:
            data["act"] = self.act
        return data

    @classmethod
    def from_json(cls, data: object) -> Statement:
        """Read a statement, checking the envelope's fields and types (not the body's)."""
        if not isinstance(data, dict):
            raise InvalidInput("a statement must be a JSON object")
        version = data.get("v")
        if type(version) is not int or version not in VERSIONS:
            raise InvalidInput(f"statement version {version!r} is not supported "
                               f"(expected 1 or 2)")
        fields = _FIELDS[version]
        if data.keys() != fields:
            missing, extra = fields - set(data), set(data) - fields
            raise InvalidInput(
                f"statement fields are wrong for version {version} (missing: "
                f"{sorted(missing)}, unexpected: {sorted(extra)})"
            )
        seq = data["seq"]
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**53:
            raise InvalidInput("statement seq must be a whole number from 1")
        if data["action"] not in ACTIONS:
            raise InvalidInput(f"{data['action']!r} is not an action")
        if version == 1 and data["action"] in ACTIONS_FROM_V2:
            raise InvalidInput(f"{data['action']!r} is an action of statement version 2")
        if not isinstance(data["body"], dict):
            raise InvalidInput("statement body must be a JSON object")
        return cls(
            origin=_valid(data["origin"], "origin"),
            agreement=_valid(data["agreement"], "agreement reference"),
            seq=seq,
            prev=_hex64(data["prev"], "statement prev"),
            action=data["action"],
            partner=_valid(data["partner"], "partner id"),
            key=_valid(data["key"], "statement key"),
            at=parse_at(data["at"]),
            body=data["body"],
            act=None if version == 1 else parse_act_id(data["act"]),
        )

    def signing_input(self) -> bytes:
        """The exact bytes the signature covers."""
        return SIGNING_CONTEXT + self.canonical

    def body_of(self, kind: type[B]) -> B:
        """The parsed body, as the kind of value its action's parser gives (the rules ask
        for the one they need, and mypy checks they use it as that)."""
        body = self.parsed
        if type(body) is not kind:
            raise InvalidInput(f"the body of a {self.action!r} statement is not a "
                               f"{kind.__name__}")
        return body

    @once
    def parsed(self) -> Body:
        """The body, read once by its action's parser (the rules and the state both use it).

        From version 2, every text in the body must also show what it says (see
        :func:`~ledger.values.text_problem`): no direction overrides, no invisible characters,
        normal form C, no spaces at either end.
        """
        if self.version >= 2:
            _check_texts(self.body, "body")
        return parse_body(self.action, self.body, self.partner)

    @once
    def canonical(self) -> bytes:
        """JCS(statement), computed once: signing, verifying and the entry all use it."""
        return canonical(self.to_json())


@dataclass(frozen=True)
class Entry:
    """A signed statement, as stored, hashed into the log and exported."""

    statement: Statement
    signature: bytes
    #: The entry's canonical JSON text: what is stored and what the hashes cover.
    text: str = field(compare=False, repr=False)

    @once
    def hash(self) -> str:
        """Hex SHA-256 of the canonical entry; the next entry's ``prev``."""
        return sha256_hex(self.text.encode())

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "statement": self.statement.to_json(),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def sign(cls, statement: Statement, signer: Signer) -> Entry:
        """Sign a statement with the key at hand."""
        signature = signer.sign(statement.signing_input())
        entry = cls.of(statement, signature)
        # Made here, by the private key of exactly this public key: checking the signature
        # again would only repeat the mathematics of Ed25519 (see verify_signature).
        known(entry, _signed_here_by=signer.public_key)
        return entry

    @classmethod
    def of(cls, statement: Statement, signature: bytes) -> Entry:
        """An entry from a statement and a signature (not checked here)."""
        # JCS orders "signature" before "statement" and base64 needs no escaping, so the
        # entry's canonical form is the statement's with this around it.
        text = (b'{"signature":"' + base64.b64encode(signature) + b'","statement":'
                + statement.canonical + b"}")
        if len(text) > MAX_ENTRY_BYTES:
            raise InvalidInput(f"the entry would be {len(text)} bytes; an entry is at most "
                               f"{MAX_ENTRY_BYTES} bytes")
        return cls(statement, signature, text.decode())

    @classmethod
    def parse(cls, text: str | bytes) -> Entry:
        """Read an entry from its canonical JSON; non-canonical text is refused."""
        if len(text) > MAX_ENTRY_BYTES:
            raise InvalidInput(f"an entry is at most {MAX_ENTRY_BYTES} bytes")
        return cls._from_data(parse_canonical(text), text, checked_canonical=True)

    @classmethod
    def parse_trusted(cls, text: str) -> Entry:
        """Read an entry the ledger itself stored after checking it (no canonical re-check).

        Loading an agreement re-reads every entry it holds; verification uses :meth:`parse`.
        """
        try:
            data = orjson.loads(text)
            d = data["statement"]
            if type(d["v"]) is not int or d["v"] not in VERSIONS:
                # Stored by something newer or altered: nothing may be built on it.
                raise InvalidInput(f"a stored entry has statement version {d['v']!r}, which "
                                   f"this ledger does not know; it was altered or written by "
                                   f"a newer ledger")
            # Checked field by field when it was stored; here only rebuilt.
            statement = Statement(d["origin"], d["agreement"], d["seq"], d["prev"], d["action"],
                                  d["partner"], d["key"], parse_at(d["at"]), d["body"],
                                  d.get("act"))
            return cls(statement, base64.b64decode(data["signature"]), text)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"stored entry cannot be read: {exc}") from None

    @classmethod
    def _from_data(cls, data: object, text: str | bytes, *,
                   checked_canonical: bool = False) -> Entry:
        if not isinstance(data, dict) or set(data) != {"statement", "signature"}:
            raise InvalidInput("an entry is a JSON object with 'statement' and 'signature'")
        sig_text = data["signature"]
        if not isinstance(sig_text, str):
            raise InvalidInput("entry signature must be base64 text")
        try:
            signature = base64.b64decode(sig_text, validate=True)
        except ValueError:  # binascii.Error, or a character beyond ASCII
            raise InvalidInput("entry signature is not valid base64") from None
        if len(signature) != 64 or base64.b64encode(signature).decode() != sig_text:
            raise InvalidInput("entry signature must be 64 bytes in canonical base64")
        statement = Statement.from_json(data["statement"])
        raw = text.decode() if isinstance(text, bytes) else text
        if checked_canonical:
            # The text is canonical, so the statement's canonical form is the part of it after
            # the signature: no need to encode it again to check the signature.
            start = len('{"signature":"') + len(sig_text) + len('","statement":')
            known(statement, canonical=raw[start:-1].encode())
        return cls(statement, signature, raw)

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`~ledger.errors.SignatureInvalid` unless ``public_key`` signed this.

        An entry read from anywhere (the store, a bundle, a partner) is always checked. One
        this process has just signed with the private half of ``public_key`` is valid by
        construction, so the check is not made twice.
        """
        if recalled(self, "_signed_here_by") == public_key:
            return
        verify_signature(public_key, self.signature, self.statement.signing_input())
