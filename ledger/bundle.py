"""Audit bundles: files an auditor can check offline, with no database and no network.

A bundle holds every entry of one agreement (or of the whole ledger) with the time the ledger
recorded it and its log index, the partners' public keys, the latest checkpoint with its
cosignatures, and an inclusion proof of every entry in that checkpoint's tree (a whole-ledger
bundle in lines may leave them out: its tree is rebuilt from all its entries). It comes in two
layouts (``docs/FORMAT.md``): one JSON document, or JSON lines, read entry by entry in flat
memory. Both are checked by one pipeline, :class:`BundleCheck`, fed the entries in log order;
:func:`verify_bundle` runs it and reports every failure. Nothing in it trusts the party that
made the bundle, except that the operator's key must be compared with one the auditor already
holds (``expected_operator_key``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Annotated, Any, Protocol, TypeVar

import msgspec
import orjson

from ledger import merkle
from ledger._internal import fastjson
from ledger._internal.once import known, once
from ledger.domain import Agreement, agreement_id
from ledger.errors import InvalidInput, LedgerError
from ledger.keys import key_id
from ledger.note import (
    COSIGNATURE_KEY_TYPE,
    ED25519_KEY_TYPE,
    Checkpoint,
    SignedNote,
    note_key_id,
    verify_cosignature,
    verify_note_signature,
)
from ledger.statement import ACTIONS, MAX_ENTRY_BYTES, Entry, parse_origin
from ledger.verify import Failure, RecordedEntry, Report, check_agreement

BUNDLE_FORMAT = "agreement-ledger/bundle/v1"
LINES_FORMAT = "agreement-ledger/bundle-lines/v1"
#: A bundle in lines begins with exactly these bytes; anything else is read as a document.
LINES_START = orjson.dumps({"bundle": LINES_FORMAT})[:-1] + b","

T = TypeVar("T")


@dataclass
class BundleEntry:
    """One entry of a bundle with where it sits in the log.

    Read from a bundle, the entry is held as its canonical text with the agreement and seq
    its statement gives; verification reads it strictly (in the worker process that replays
    its agreement) and checks both against where it was filed.
    """

    log_index: int
    recorded: datetime
    #: The entry's canonical JSON text: what its signature, hash and leaf cover.
    text: str
    agreement: str
    seq: int
    action: str
    #: The inclusion proof's hashes in base64, as the bundle writes them; None where the
    #: bundle leaves it out (a whole-ledger bundle in lines).
    proof_text: tuple[str, ...] | None
    #: Whether this is the last entry of its agreement in the bundle.
    last: bool = False

    @classmethod
    def of(cls, log_index: int, recorded: datetime, entry: Entry,
           proof: tuple[bytes, ...]) -> BundleEntry:
        """The bundle entry of an entry at hand (exporting)."""
        s = entry.statement
        item = cls(log_index, recorded, entry.text, s.agreement, s.seq, s.action,
                   tuple(base64.b64encode(p).decode() for p in proof))
        # The entry and proof at hand are what reading them back from the text would give.
        known(item, entry=entry, proof=proof)
        return item

    @once
    def entry(self) -> Entry:
        """The entry, read strictly (its canonical form and every field checked)."""
        return Entry.parse(self.text)

    @once
    def proof(self) -> tuple[bytes, ...]:
        """The inclusion proof's hashes (strict base64; raises InvalidInput)."""
        return tuple(_b64(p, "a proof hash") for p in self.proof_text or ())

    def line(self, *, lines: bool = False, proof: bool = True) -> bytes:
        """As written in the bundle: one line, the entry as its canonical text, byte for byte.

        In a bundle in ``lines``, the last entry of each agreement says so; ``proof`` is left
        out of a whole-ledger bundle in lines."""
        member: dict[str, Any] = {
            "log_index": self.log_index,
            "recorded": self.recorded.isoformat().replace("+00:00", "Z"),
            "entry": orjson.Fragment(self.text)}
        if proof:
            member["proof"] = list(self.proof_text or ())
        if lines and self.last:
            member["last"] = True
        return orjson.dumps(member)


@dataclass(frozen=True)
class BundleHead:
    """What a bundle says before its entries: whose log, its checkpoint, scope and keys."""

    origin: str
    operator: str
    operator_key: bytes
    checkpoint: SignedNote
    whole_ledger: bool
    agreements: tuple[str, ...]
    keys: dict[str, tuple[str, bytes]]  # key id -> (partner, public key)

    def members(self, layout: str) -> dict[str, Any]:
        """The members before the entries, as a bundle of ``layout`` writes them."""
        return {
            "bundle": layout,
            "origin": self.origin,
            "operator": {"name": self.operator, "public_key": self.operator_key.hex()},
            "checkpoint": self.checkpoint.format(),
            "scope": ({"whole_ledger": True} if self.whole_ledger
                      else {"agreements": list(self.agreements)}),
            "keys": {kid: {"partner": partner, "public_key": public.hex()}
                     for kid, (partner, public) in sorted(self.keys.items())},
        }


class BundleSource(Protocol):
    """A bundle's head, and its entries in log order, a batch at a time."""

    @property
    def head(self) -> BundleHead: ...
    def batches(self) -> Iterator[list[BundleEntry]]: ...


#: Entries are read, checked and stored this many at a time.
BATCH = 1000


@dataclass(frozen=True)
class Bundle(BundleHead):
    """An audit bundle held whole, read and checked for shape (not yet for truth)."""

    entries: tuple[BundleEntry, ...] = ()

    @property
    def head(self) -> BundleHead:
        """The bundle without its entries."""
        return self

    def batches(self) -> Iterator[list[BundleEntry]]:
        """The entries in log order, the last of each agreement marked, a batch at a time."""
        ordered = sorted(self.entries, key=lambda e: e.log_index)
        last = {e.agreement: e for e in ordered}
        for item in ordered:
            item.last = last[item.agreement] is item
        for start in range(0, len(ordered), BATCH):
            yield ordered[start:start + BATCH]

    def dumps(self) -> bytes:
        """The bundle as one document: its members one to a line, each entry on a line of its
        own."""
        return orjson.dumps({
            **self.members(BUNDLE_FORMAT),
            "entries": [orjson.Fragment(e.line()) for e in self.entries],
        }, option=orjson.OPT_INDENT_2) + b"\n"

    def write_lines(self, file: IO[bytes]) -> None:
        """The bundle in lines: its head on the first line, then one entry a line in log
        order (a whole-ledger bundle without proofs: its tree is rebuilt from its entries)."""
        file.write(orjson.dumps(self.members(LINES_FORMAT)) + b"\n")
        proof = not self.whole_ledger
        for batch in self.batches():
            file.write(b"".join(e.line(lines=True, proof=proof) + b"\n" for e in batch))


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be base64 text")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not valid base64") from None


def _hex(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be hex text")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidInput(f"{what} is not valid hex") from None


def _note_name(value: object) -> str:
    """The operator's signing name, as a signed note allows it (no spaces, no '+')."""
    if not isinstance(value, str):
        raise InvalidInput("the bundle's operator name must be text")
    note_key_id(value, b"")  # raises InvalidInput for a name a note cannot hold
    return value


#: The largest bundle document read. Reading holds the file and what it says in memory: about
#: three times its size for a bundle as export writes it, never more than about seven times
#: whatever the file holds (docs/FORMAT.md). A bundle in lines has no such limit.
MAX_BUNDLE_BYTES = 2 * 2**30


class _Operator(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    public_key: str


class _Scope(msgspec.Struct, forbid_unknown_fields=True):
    whole_ledger: bool | None = None
    agreements: list[str] | None = None


class _Key(msgspec.Struct, forbid_unknown_fields=True):
    partner: str
    public_key: str


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    log_index: Annotated[int, msgspec.Meta(ge=0)]
    recorded: str
    # The entry and its proof are kept as the bytes they are (no object is made for what is
    # inside them) and read one at a time, each within its own limit.
    entry: msgspec.Raw
    proof: msgspec.Raw


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    log_index: Annotated[int, msgspec.Meta(ge=0)]
    recorded: str
    entry: msgspec.Raw
    # Raw takes no None: an empty one stands for a proof not given.
    proof: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b""))
    last: bool = False


class _HeadLine(msgspec.Struct, forbid_unknown_fields=True):
    """The members before the entries: a bundle in lines' first line."""

    bundle: str
    origin: str
    operator: _Operator
    checkpoint: str
    scope: msgspec.Raw
    keys: msgspec.Raw


class _Document(_HeadLine, forbid_unknown_fields=True):
    """A bundle as one document: the same members, and its entries."""

    entries: list[_Item]


#: A proof has at most 63 hashes (a tree of fewer than 2**63 entries): 44 characters of base64
#: each, with room for a writer's spaces.
MAX_PROOF_BYTES = 16 * 1024
#: The scope lists at most a few thousand references.
MAX_SCOPE_BYTES = 1024 * 1024
#: Each key listed was brought by an entry: a key's member is well within this many bytes a
#: listed entry (and the list within MAX_SCOPE_BYTES when there are few entries).
KEY_BYTES_PER_ENTRY = 256
#: The first line of a bundle in lines: its scope and keys, well within this.
MAX_HEAD_LINE_BYTES = 64 * 2**20
#: An entry's line: the entry, its proof, and the few members around them.
MAX_LINE_BYTES = MAX_ENTRY_BYTES + MAX_PROOF_BYTES + 1024


class _Head(msgspec.Struct):
    bundle: str = ""


_DOCUMENT = msgspec.json.Decoder(_Document)
_HEAD = msgspec.json.Decoder(_Head)
_HEAD_LINE = msgspec.json.Decoder(_HeadLine)
_LINE = msgspec.json.Decoder(_Line)
_SCOPE = msgspec.json.Decoder(_Scope)
_KEYS = msgspec.json.Decoder(dict[str, _Key])


def parse_bundle(data: bytes) -> Bundle:
    """Read a bundle document (its bytes); malformed ones raise :class:`InvalidInput`.

    Every member is of the form docs/FORMAT.md gives, with nothing else in any object and no
    member named twice; the first member out of shape stops the reading, so that a large file
    of something else is refused before it costs memory.
    """
    try:
        head = _HEAD.decode(data)
    except msgspec.ValidationError:
        head = None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the bundle is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("the bundle is malformed: it is nested too deeply") from None
    if head is None or head.bundle != BUNDLE_FORMAT:
        raise InvalidInput(f"not an audit bundle (expected \"bundle\": {BUNDLE_FORMAT!r})")
    document = _decode(_DOCUMENT, data, "")
    # Before anything is made of the entries: the check holds a copy of the text a while.
    _no_member_twice(data)
    entries = [_entry(item.log_index, item.recorded, item.entry, item.proof)
               for item in document.entries]
    head_of = _head(document, max(MAX_SCOPE_BYTES, KEY_BYTES_PER_ENTRY * len(entries)))
    return Bundle(**vars(head_of), entries=tuple(entries))


def _head(document: _HeadLine, keys_limit: int) -> BundleHead:
    """The members before the entries, read strictly."""
    scope = _decode(_SCOPE, document.scope, "scope", MAX_SCOPE_BYTES)
    whole = scope.whole_ledger is True
    if whole == (scope.agreements is not None) or scope.whole_ledger is False:
        raise InvalidInput('the bundle\'s scope is {"whole_ledger": true} or '
                           '{"agreements": [...]}')
    keys = _decode(_KEYS, document.keys, "keys", keys_limit)
    return BundleHead(
        origin=parse_origin(document.origin), operator=_note_name(document.operator.name),
        operator_key=_hex(document.operator.public_key, "the operator key"),
        checkpoint=SignedNote.parse(document.checkpoint), whole_ledger=whole,
        agreements=() if whole else tuple(scope.agreements or ()),
        keys={kid: (key.partner, _hex(key.public_key, "a public key"))
              for kid, key in keys.items()})


def _decode(decoder: msgspec.json.Decoder[Any], data: bytes | msgspec.Raw, member: str,
            limit: int | None = None) -> Any:
    """``data`` read strictly by ``decoder``: any fault is one line naming where it is."""
    if limit is not None and len(data) > limit:
        raise InvalidInput(f"the bundle's {member} is larger than {limit} bytes")
    try:
        return decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        where = str(exc).replace("`$", f"`$.{member}") if member else str(exc)
        raise InvalidInput(f"the bundle is malformed: {where}") from None
    except RecursionError:
        raise InvalidInput(f"the bundle is malformed: {member or 'the document'} is nested "
                           f"too deeply") from None


def _entry(log_index: int, recorded_text: str, raw_entry: msgspec.Raw,
           raw_proof: msgspec.Raw | None, last: bool = False) -> BundleEntry:
    raw = bytes(raw_entry)
    if len(raw) > MAX_ENTRY_BYTES:
        raise InvalidInput(f"the bundle's entry at log index {log_index} is larger than "
                           f"an entry can be ({MAX_ENTRY_BYTES} bytes)")
    if raw_proof is not None and len(raw_proof) > MAX_PROOF_BYTES:
        raise InvalidInput(f"the proof of the bundle's entry at log index {log_index} is "
                           f"longer than any proof can be")
    try:
        proof = None if raw_proof is None else orjson.loads(bytes(raw_proof))
        entry = orjson.loads(raw)
        # Whatever layout the bundle's writer chose, the entry's canonical bytes if it is
        # valid; read strictly (parse_canonical) when its agreement is replayed.
        text = fastjson.relaid(entry)
        statement = entry["statement"]
        agreement, seq, action = statement["agreement"], statement["seq"], statement["action"]
    except (orjson.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"the bundle's entry at log index {log_index} is malformed "
                           f"({type(exc).__name__}: {exc})") from None
    if not isinstance(agreement, str) or isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidInput("an entry's statement must name its agreement and its seq")
    # Import makes each entry's stored event before its agreement's replay reads it strictly:
    # a seq or action no statement has (Statement.from_json) cannot be one, nor be stored.
    if not 1 <= seq < 2**53:
        raise InvalidInput(f"the bundle's entry at log index {log_index}: statement seq must "
                           f"be a whole number from 1")
    if action not in ACTIONS:
        raise InvalidInput(f"the bundle's entry at log index {log_index}: {action!r} is not "
                           f"an action")
    if proof is not None and not isinstance(proof, list):
        raise InvalidInput(f"the proof of the bundle's entry at log index {log_index} is "
                           f"not a list of hashes")
    try:
        recorded = datetime.fromisoformat(recorded_text)
    except ValueError:
        raise InvalidInput(f"recorded time {recorded_text!r} is not an RFC 3339 time") from None
    if recorded.utcoffset() is None:
        raise InvalidInput(f"recorded time {recorded_text!r} has no offset; write it as the "
                           f"ledger does, e.g. 2003-07-03T10:00:00Z")
    # Each hash is read (strictly) where it is checked: see BundleEntry.proof.
    return BundleEntry(log_index, recorded, text.decode(), agreement, seq, str(action),
                       None if proof is None else tuple(proof), last)


def _no_member_twice(data: bytes) -> None:
    """Refuse a document in which an object names a member twice: readers differ on which
    one counts (RFC 8259 section 4), so a bundle that says two things says neither."""

    def once(pairs: list[tuple[str, Any]]) -> None:
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInput(f"the bundle names member {twice[0]!r} twice in one object")

    # The standard library's reader calls ``once`` for every object and keeps nothing.
    try:
        json.loads(data, object_pairs_hook=once)
    except (ValueError, RecursionError) as exc:  # what the strict reading let through
        raise InvalidInput(f"the bundle is malformed: {str(exc).splitlines()[0][:200]}") \
            from None


def read_bundle(path: Path) -> Bundle:
    """Read a bundle document whole; one that cannot be read, or is malformed, raises
    InvalidInput. :func:`open_bundle` reads either layout."""
    with _open_file(path) as file:
        return parse_bundle(_read_document(path, file))


@contextmanager
def open_bundle(path: Path) -> Iterator[BundleSource]:
    """A bundle file of either layout, told apart by its first bytes: a bundle in lines is read
    a line at a time as its entries are asked for, a document whole, at once."""
    with _open_file(path) as file:
        start = file.read(len(LINES_START))
        if start != LINES_START:
            file.seek(0)
            yield parse_bundle(_read_document(path, file))
            return
        file.seek(0)
        yield _LinesReader(path, file)


@contextmanager
def _open_file(path: Path) -> Iterator[IO[bytes]]:
    """A bundle file open for reading: a regular file (never a device or a pipe, which could
    be read for ever)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InvalidInput(f"no bundle file at {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read bundle {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise InvalidInput(f"bundle {path} is not a regular file")
    os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "rb") as file:
        yield file


def _read_document(path: Path, file: IO[bytes]) -> bytes:
    """The bytes of a bundle document, of at most MAX_BUNDLE_BYTES."""
    size = os.fstat(file.fileno()).st_size
    if size > MAX_BUNDLE_BYTES:
        raise InvalidInput(
            f"bundle {path} is {size / 2**30:.1f} GiB; a bundle is read up to "
            f"{MAX_BUNDLE_BYTES // 2**30} GiB as one document (export a large ledger in lines, "
            f"to a .jsonl file, which is read entry by entry)")
    try:
        # One byte more than it holds (never a buffer of the largest size allowed): a file
        # that grew past the limit while it was read is refused too.
        data = file.read(min(size, MAX_BUNDLE_BYTES) + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read bundle {path}: {exc.strerror}") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise InvalidInput(f"bundle {path} is larger than {MAX_BUNDLE_BYTES // 2**30} GiB")
    return data


class _LinesReader:
    """A bundle in lines, read one line at a time: nothing is kept of a line once its batch of
    entries has been handed on."""

    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path, self.file = path, file
        self.number = 1
        line = self._line(MAX_HEAD_LINE_BYTES)
        if line is None:
            raise InvalidInput(f"bundle {path} is empty")
        head = self._read(lambda: _decode(_HEAD_LINE, line, ""))
        self._read(lambda: _no_member_twice(line))
        if head.bundle != LINES_FORMAT:
            raise self._error(f"not an audit bundle in lines (expected \"bundle\": "
                              f"{LINES_FORMAT!r})")
        self._head = self._read(lambda: _head(head, MAX_HEAD_LINE_BYTES))

    @property
    def head(self) -> BundleHead:
        """The bundle's first line."""
        return self._head

    def batches(self) -> Iterator[list[BundleEntry]]:
        """The entries, line by line, :data:`BATCH` at a time."""
        whole = self._head.whole_ledger
        batch: list[BundleEntry] = []
        while True:
            self.number += 1
            line = self._line(MAX_LINE_BYTES)
            if line is None:
                break
            batch.append(self._read(lambda: self._item(line, whole)))  # noqa: B023
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _line(self, limit: int) -> bytes | None:
        """The next line with its newline, None at the end of the file."""
        try:
            line = self.file.readline(limit + 1)
        except OSError as exc:
            raise InvalidInput(f"cannot read bundle {self.path}: {exc.strerror}") from None
        if not line:
            return None
        if len(line) > limit:
            raise self._error(f"the line is longer than {limit} bytes")
        if not line.endswith(b"\n"):
            raise self._error("the line is cut short (the file ends without its newline)")
        return line

    @staticmethod
    def _item(line: bytes, whole: bool) -> BundleEntry:
        read = _decode(_LINE, line, "")
        if whole and read.proof:
            raise InvalidInput("a whole-ledger bundle in lines gives no proofs: its tree is "
                               "rebuilt from its entries")
        if not whole and not read.proof:
            raise InvalidInput("an entry of an agreement's bundle needs its proof")
        item = _entry(read.log_index, read.recorded, read.entry, read.proof or None, read.last)
        # A line as export writes it names no member twice; any other is read again for that.
        if (item.text.encode() != bytes(read.entry)
                or item.line(lines=True, proof=not whole) + b"\n" != line):
            _no_member_twice(line)
        return item

    def _read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except InvalidInput as exc:
            raise self._error(exc.diagnostics()) from None

    def _error(self, what: str) -> InvalidInput:
        return InvalidInput(f"bundle {self.path.name}, line {self.number}: {what}")


def verify_bundle(source: BundleSource, expected_operator_key: bytes | None = None,
                  workers: int = 1, *, expected_operator_name: str | None = None) -> Report:
    """Check everything a bundle claims; every failure is reported.

    ``expected_operator_key`` (and ``expected_operator_name``, from a verifier key) is what
    the auditor holds, got independently of the bundle. With ``workers`` > 1, the agreements
    of a large bundle are replayed in that many processes.
    """
    with BundleCheck(source.head, expected_operator_key, workers,
                     expected_operator_name=expected_operator_name) as check:
        for batch in source.batches():
            check.add(batch)
        return check.finish()


class BundleCheck:
    """The one check of a bundle, fed its entries in log order, a batch at a time.

    The head is checked at once (operator key, checkpoint, cosignatures); each entry as it
    comes: its place in the log, its inclusion proof, the tree of a whole-ledger bundle (only
    its O(log n) peaks are kept), and its agreement replayed (signature, chain, keys, every
    rule) in this process or in worker processes. Nothing is kept of an entry once its batch
    is handed on, so the check's memory does not grow with the bundle.
    """

    def __init__(self, head: BundleHead, expected_operator_key: bytes | None = None,
                 workers: int = 1, *, expected_operator_name: str | None = None) -> None:
        self.head = head
        self.report = report = Report(read=0)
        fail = report.failures.append
        if expected_operator_key is not None and expected_operator_key != head.operator_key:
            fail(Failure(f"the bundle's operator key {key_id(head.operator_key)[:16]} is not "
                         f"the expected one {key_id(expected_operator_key)[:16]}"))
        if expected_operator_name is not None and expected_operator_name != head.operator:
            fail(Failure(f"the bundle's operator signs as {head.operator!r}, the verifier key "
                         f"you hold names {expected_operator_name!r}"))
        self.checkpoint = check_checkpoint(head.checkpoint, head.origin, head.operator,
                                           head.operator_key, head.keys, report)
        self.tree = merkle.CompactRange() if head.whole_ledger else None
        self.previous = -1
        self.proved = False
        self.references: set[str] = set()
        # A whole-ledger bundle says how many entries follow: a large one starts its worker
        # processes at once, while the first entries are read.
        size = self.checkpoint.size if head.whole_ledger and self.checkpoint else None
        self.replay = _Replayers(head.origin, workers, size)

    def __enter__(self) -> BundleCheck:
        return self

    def __exit__(self, *_: object) -> None:
        self.replay.close()

    @property
    def header_ok(self) -> bool:
        """Whether the head checked out (the entries are yet to come)."""
        return self.report.ok

    def add(self, batch: Sequence[BundleEntry]) -> None:
        """Check the next entries of the bundle, in log order."""
        report = self.report
        checkpoint = self.checkpoint
        for item in batch:
            index = item.log_index
            leaf = merkle.leaf_hash(item.text.encode())
            if self.tree is not None:
                # A whole-ledger bundle holds log entries 0 to size-1, in order: any other
                # index ends the tree (finish says so).
                if index == self.tree.size and (checkpoint is None or index < checkpoint.size):
                    self.tree.append(leaf)
                else:
                    self.tree = None
            elif not self.head.whole_ledger and index <= self.previous:
                report.failures.append(Failure(
                    f"listed after log index {self.previous}: a bundle lists its entries in "
                    f"log order, once each", item.agreement, item.seq, index))
            self.previous = max(self.previous, index)
            if not self.head.whole_ledger:
                self.references.add(item.agreement)
            if checkpoint is not None and item.proof_text is not None:
                self.proved = True
                try:
                    merkle.verify_inclusion(leaf, index, checkpoint.size, item.proof,
                                            checkpoint.root)
                except LedgerError as exc:
                    report.failures.append(Failure(f"inclusion proof: {exc.diagnostics()}",
                                                   item.agreement, item.seq, index))
        assert report.read is not None
        report.read += len(batch)
        self.replay.add(batch)

    def finish(self) -> Report:
        """The report, once every entry has been added."""
        report, head, checkpoint = self.report, self.head, self.checkpoint
        fail = report.failures.append
        if checkpoint is not None:
            if self.proved or not head.whole_ledger:
                report.checks.append(f"inclusion of every entry in the tree of "
                                     f"{checkpoint.size}")
            if head.whole_ledger:
                if self.tree is None or self.tree.size != checkpoint.size:
                    fail(Failure(f"a whole-ledger bundle must hold log entries 0 to "
                                 f"{checkpoint.size - 1}, once each"))
                elif self.tree.root() != checkpoint.root:
                    fail(Failure("the entries do not give the checkpoint's root"))
                report.checks.append("the whole log against the checkpoint's root")
        if not head.whole_ledger and self.references != set(head.agreements):
            fail(Failure(f"the bundle's entries are for {sorted(self.references)}, its scope "
                         f"says {sorted(head.agreements)}"))
        self.replay.finish(report, head.keys)
        return report


def check_checkpoint(note: SignedNote, origin: str, operator: str, operator_key: bytes,
                     keys: dict[str, tuple[str, bytes]], report: Report) -> Checkpoint | None:
    """Check a checkpoint of log ``origin``: the operator's signature, then each partner's
    cosignature under the keys (key id -> (partner, public key)) the partners have signed
    with. Adds what was checked, and every failure, to ``report``; returns the checkpoint
    (None if it cannot be read)."""
    fail = report.failures.append
    checkpoint: Checkpoint | None = None
    try:
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.origin != origin:
            fail(Failure(f"checkpoint names log {checkpoint.origin!r}, the bundle "
                         f"{origin!r}"))
        verify_note_signature(note, operator, operator_key)
    except LedgerError as exc:
        fail(Failure(f"checkpoint: {exc.diagnostics()}"))
    operator_id = note_key_id(operator, operator_key, ED25519_KEY_TYPE)
    cosigners: list[str] = []
    ignored = 0
    # Each key's cosignature id computed once (the first key listed of each id counts): the
    # bundle's first line may list hundreds of thousands of keys.
    names = {sig.name for sig in note.signatures}
    cosigning: dict[tuple[str, bytes], bytes] = {}
    for partner, public in keys.values():
        if partner in names:
            cosigning.setdefault(
                (partner, note_key_id(partner, public, COSIGNATURE_KEY_TYPE)), public)
    for sig in note.signatures:
        if sig.name == operator and sig.key_id == operator_id:
            continue
        known = cosigning.get((sig.name, sig.key_id))
        if known is None:
            # C2SP signed-note: a line under a key the verifier does not know is ignored; it
            # vouches for nothing, and fails nothing.
            ignored += 1
            continue
        try:
            verify_cosignature(note, sig.name, known)
            cosigners.append(sig.name)
        except LedgerError as exc:
            fail(Failure(f"checkpoint: {exc.diagnostics()}"))
    ignoring = (f"; {ignored} signature line{'s' if ignored > 1 else ''} under keys the bundle "
                f"does not give were ignored" if ignored else "")
    report.checks.append("checkpoint signed by the operator"
                         + (f", cosigned by {', '.join(cosigners)}" if cosigners else "")
                         + ignoring)
    return checkpoint


#: Below this many entries, starting worker processes costs more than it saves: the first
#: entries are held until there are this many, or the bundle ends.
PARALLEL_FROM = 4096
#: Batches of entries handed to one worker and not yet replayed, at most: what bounds the
#: memory of entries on their way.
IN_FLIGHT = 4

#: (agreement, entry text, recorded, last of its agreement in the bundle)
ReplayItem = tuple[str, str, datetime, bool]
#: What replaying some entries found: (entries that checked out, agreements done, failures,
#: key id -> partner of every key the finished agreements' partners held)
Part = tuple[int, int, list[Failure], dict[str, str]]


@dataclass
class _Open:
    """An agreement being replayed, its entries so far."""

    agreement: Agreement | None = None
    count: int = 0
    failed: bool = False


@dataclass
class _Replays:
    """The agreements of a bundle replayed in one process, as their entries arrive.

    An agreement is kept only until its last entry (the bundle marks it) and then dropped:
    memory grows with the agreements open at once, not with the bundle.
    """

    origin: str
    open: dict[str, _Open] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def add(self, items: Sequence[ReplayItem]) -> Part:
        """Replay these entries after those given before."""
        grouped: dict[str, list[ReplayItem]] = {}
        for item in items:
            grouped.setdefault(item[0], []).append(item)
        found = _Found()
        for reference, group in grouped.items():
            found.add(self._replay(reference, group))
        return found.part()

    def _replay(self, reference: str, group: list[ReplayItem]) -> Part:
        failures: list[Failure] = []
        if reference in self.done:
            return 0, 0, [Failure("an entry follows the one the bundle marks as its "
                                  "agreement's last", reference)], {}
        state = self.open.setdefault(reference, _Open())
        cut = next((i for i, item in enumerate(group) if item[3]), len(group))
        records = [RecordedEntry(state.count + i + 1, "", text, recorded)
                   for i, (_, text, recorded, _) in enumerate(group[:cut + 1])]
        checked = 0
        if not state.failed:
            checked, failure, agreement = check_agreement(records, self.origin,
                                                          agreement_id(reference), reference,
                                                          start=state.agreement)
            state.agreement = agreement
            if failure is not None:
                state.failed = True
                failures.append(failure)
            if agreement is not None:
                # The rules read the agreement's state, never the entries behind it: they are
                # let go, so that a long agreement's replay stays flat.
                agreement.history.clear()
        state.count += len(records)
        if cut >= len(group):
            return checked, 0, failures, {}
        seen = self._close(reference)
        if cut + 1 < len(group):
            failures.append(Failure("an entry follows the one the bundle marks as its "
                                    "agreement's last", reference))
        return checked, 1, failures, seen

    def _close(self, reference: str) -> dict[str, str]:
        state = self.open.pop(reference)
        self.done.add(reference)
        seen: dict[str, str] = {}
        if state.agreement is not None:
            _note_keys(state.agreement, seen)
        return seen

    def end(self) -> Part:
        """The agreements still open when the bundle ends: their last entry is missing."""
        found = _Found()
        for reference in sorted(self.open):
            found.add((0, 1, [Failure(
                "the bundle marks no entry as this agreement's last: it ends before the "
                "agreement does", reference)], self._close(reference)))
        return found.part()


@dataclass
class _Found:
    """Parts added up in place (never copied for each part added)."""

    entries: int = 0
    agreements: int = 0
    failures: list[Failure] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)

    def add(self, part: Part) -> None:
        entries, agreements, failures, seen = part
        self.entries += entries
        self.agreements += agreements
        self.failures.extend(failures)
        self.seen.update(seen)

    def part(self) -> Part:
        return self.entries, self.agreements, self.failures, self.seen


#: The replays of the worker process this is (each worker replays its own agreements).
_here: dict[str, _Replays] = {}


def _replay_in_worker(origin: str, items: list[ReplayItem]) -> Part:
    return _here.setdefault("replays", _Replays(origin)).add(items)


def _end_in_worker(origin: str) -> Part:
    return _here.setdefault("replays", _Replays(origin)).end()


class _Replayers:
    """The agreements of a bundle replayed as its entries arrive: in this process, or (a large
    bundle) in worker processes, each agreement always in the same one, so that its entries
    follow one another there."""

    def __init__(self, origin: str, workers: int, expected: int | None = None) -> None:
        self.origin, self.workers = origin, workers
        self.local = _Replays(origin)
        self.pools: list[ProcessPoolExecutor] = []
        self.pending: list[list[ReplayItem]] = []
        self.running: list[deque[Future[Part]]] = []
        self.held: list[ReplayItem] | None = [] if workers > 1 else None
        self.found = _Found()
        if self.held is not None and expected is not None and expected >= PARALLEL_FROM:
            self.held = None
            self._start()

    def add(self, batch: Sequence[BundleEntry]) -> None:
        """Replay these entries (some time before :meth:`finish`)."""
        items = [(e.agreement, e.text, e.recorded, e.last) for e in batch]
        if self.held is not None:
            self.held.extend(items)
            if len(self.held) < PARALLEL_FROM:
                return
            items, self.held = self.held, None
            self._start()
        if not self.pools:
            self._take(self.local.add(items))
            return
        count = len(self.pools)
        for item in items:
            self.pending[zlib.crc32(item[0].encode()) % count].append(item)
        for worker, pending in enumerate(self.pending):
            if len(pending) >= BATCH:
                self._send(worker)

    def _start(self) -> None:
        # "spawn": a forked child would share this process's open database connections.
        context = get_context("spawn")
        self.pools = [ProcessPoolExecutor(1, mp_context=context) for _ in range(self.workers)]
        self.pending = [[] for _ in self.pools]
        # Each process starts (and imports what it replays with) while entries are read.
        self.running = [deque([pool.submit(_replay_in_worker, self.origin, [])])
                        for pool in self.pools]

    def _send(self, worker: int) -> None:
        running = self.running[worker]
        running.append(self.pools[worker].submit(_replay_in_worker, self.origin,
                                                 self.pending[worker]))
        self.pending[worker] = []
        while len(running) > IN_FLIGHT:
            self._take(running.popleft().result())

    def _take(self, part: Part) -> None:
        self.found.add(part)

    def finish(self, report: Report, keys: dict[str, tuple[str, bytes]]) -> None:
        """Wait for the replay and put what it found into the report, with the keys the bundle
        lists checked against those its entries give."""
        if self.held is not None:
            items, self.held = self.held, None
            self._take(self.local.add(items))
        if self.pools:
            for worker in range(len(self.pools)):
                self._send(worker)
            for worker, running in enumerate(self.running):
                while running:
                    self._take(running.popleft().result())
                self._take(self.pools[worker].submit(_end_in_worker, self.origin).result())
        else:
            self._take(self.local.end())
        entries, agreements, failures, seen_keys = self.found.part()
        report.entries += entries
        report.agreements += agreements
        report.failures.extend(failures)
        for kid, (partner, public) in keys.items():
            if key_id(public) != kid or seen_keys.get(kid) != partner:
                report.failures.append(Failure(
                    f"key {kid[:16]} listed for {partner!r} is not a key the entries give it"))
        for kid, partner in sorted(seen_keys.items()):
            if kid not in keys:
                report.failures.append(Failure(
                    f"the entries give {partner!r} key {kid[:16]}, which the bundle's keys do "
                    f"not list (a bundle lists every key its partners held)"))
        report.checks.append("signatures, seq/prev chains, keys and rules of every entry")

    def close(self) -> None:
        """Stop the worker processes."""
        for pool in self.pools:
            pool.shutdown(cancel_futures=True)


def _note_keys(agreement: Agreement, seen: dict[str, str]) -> None:
    for partner in agreement.partners.values():
        for s in partner.signatories:
            seen[s.key_id] = partner.id


def partner_keys(agreements: Sequence[Agreement]) -> dict[str, tuple[str, bytes]]:
    """Every key any partner of these agreements has signed with: key id -> (partner, key)."""
    keys: dict[str, tuple[str, bytes]] = {}
    for agreement in agreements:
        for partner in agreement.partners.values():
            for s in partner.signatories:
                keys[s.key_id] = (partner.id, s.public_key)
    return keys
