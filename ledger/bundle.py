"""Audit bundles: one JSON file an auditor can check offline, with no database and no network.

A bundle holds every entry of one agreement (or of the whole ledger) with the time the ledger
recorded it and its log index, the partners' public keys, the latest checkpoint with its
cosignatures, and an inclusion proof of every entry in that checkpoint's tree. See
``docs/FORMAT.md`` for the exact layout. :func:`verify_bundle` checks all of it and reports
every failure; nothing in it trusts the party that made the bundle, except that the operator's
key must be compared with one the auditor already holds (``expected_operator_key``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Annotated, Any

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
from ledger.statement import MAX_ENTRY_BYTES, Entry, parse_origin
from ledger.verify import Failure, RecordedEntry, Report, check_agreement

BUNDLE_FORMAT = "agreement-ledger/bundle/v1"


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
    #: The inclusion proof's hashes in base64, as the bundle writes them.
    proof_text: tuple[str, ...]

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
        return tuple(_b64(p, "a proof hash") for p in self.proof_text)

    def line(self) -> bytes:
        """As written in the bundle: one line, the entry as its canonical text, byte for byte."""
        return orjson.dumps({"log_index": self.log_index,
                             "recorded": self.recorded.isoformat().replace("+00:00", "Z"),
                             "entry": orjson.Fragment(self.text),
                             "proof": list(self.proof_text)})


@dataclass(frozen=True)
class Bundle:
    """An audit bundle, read and checked for shape (not yet for truth)."""

    origin: str
    operator: str
    operator_key: bytes
    checkpoint: SignedNote
    whole_ledger: bool
    agreements: tuple[str, ...]
    keys: dict[str, tuple[str, bytes]]  # key id -> (partner, public key)
    entries: tuple[BundleEntry, ...]

    def dumps(self) -> bytes:
        """The bundle file: its members one to a line, each entry on a line of its own."""
        return orjson.dumps({
            "bundle": BUNDLE_FORMAT,
            "origin": self.origin,
            "operator": {"name": self.operator, "public_key": self.operator_key.hex()},
            "checkpoint": self.checkpoint.format(),
            "scope": ({"whole_ledger": True} if self.whole_ledger
                      else {"agreements": list(self.agreements)}),
            "keys": {kid: {"partner": partner, "public_key": public.hex()}
                     for kid, (partner, public) in sorted(self.keys.items())},
            "entries": [orjson.Fragment(e.line()) for e in self.entries],
        }, option=orjson.OPT_INDENT_2) + b"\n"


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


#: The largest bundle file read. Reading holds the file and what it says in memory: about
#: three times its size for a bundle as export writes it, never more than about seven times
#: whatever the file holds (docs/FORMAT.md).
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


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    bundle: str
    origin: str
    operator: _Operator
    checkpoint: str
    scope: msgspec.Raw
    keys: msgspec.Raw
    entries: list[_Item]


#: A proof has at most 63 hashes (a tree of fewer than 2**63 entries): 44 characters of base64
#: each, with room for a writer's spaces.
MAX_PROOF_BYTES = 16 * 1024
#: The scope lists at most a few thousand references.
MAX_SCOPE_BYTES = 1024 * 1024
#: Each key listed was brought by an entry: a key's member is well within this many bytes a
#: listed entry (and the list within MAX_SCOPE_BYTES when there are few entries).
KEY_BYTES_PER_ENTRY = 256


class _Head(msgspec.Struct):
    bundle: str = ""


_DOCUMENT = msgspec.json.Decoder(_Document)
_HEAD = msgspec.json.Decoder(_Head)
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
    entries = [_entry(item) for item in document.entries]
    scope = _decode(_SCOPE, document.scope, "scope", MAX_SCOPE_BYTES)
    whole = scope.whole_ledger is True
    if whole == (scope.agreements is not None) or scope.whole_ledger is False:
        raise InvalidInput('the bundle\'s scope is {"whole_ledger": true} or '
                           '{"agreements": [...]}')
    keys = _decode(_KEYS, document.keys, "keys",
                   max(MAX_SCOPE_BYTES, KEY_BYTES_PER_ENTRY * len(entries)))
    return Bundle(
        origin=parse_origin(document.origin), operator=_note_name(document.operator.name),
        operator_key=_hex(document.operator.public_key, "the operator key"),
        checkpoint=SignedNote.parse(document.checkpoint), whole_ledger=whole,
        agreements=() if whole else tuple(scope.agreements or ()),
        keys={kid: (key.partner, _hex(key.public_key, "a public key"))
              for kid, key in keys.items()},
        entries=tuple(entries))


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


def _entry(item: _Item) -> BundleEntry:
    raw = bytes(item.entry)
    if len(raw) > MAX_ENTRY_BYTES:
        raise InvalidInput(f"the bundle's entry at log index {item.log_index} is larger than "
                           f"an entry can be ({MAX_ENTRY_BYTES} bytes)")
    if len(item.proof) > MAX_PROOF_BYTES:
        raise InvalidInput(f"the proof of the bundle's entry at log index {item.log_index} is "
                           f"longer than any proof can be")
    try:
        proof = orjson.loads(bytes(item.proof))
        entry = orjson.loads(raw)
        # Whatever layout the bundle's writer chose, the entry's canonical bytes if it is
        # valid; read strictly (parse_canonical) when its agreement is replayed.
        text = fastjson.relaid(entry)
        statement = entry["statement"]
        agreement, seq, action = statement["agreement"], statement["seq"], statement["action"]
    except (orjson.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"the bundle's entry at log index {item.log_index} is malformed "
                           f"({type(exc).__name__}: {exc})") from None
    if not isinstance(agreement, str) or isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidInput("an entry's statement must name its agreement and its seq")
    if not isinstance(proof, list):
        raise InvalidInput(f"the proof of the bundle's entry at log index {item.log_index} is "
                           f"not a list of hashes")
    try:
        recorded = datetime.fromisoformat(item.recorded)
    except ValueError:
        raise InvalidInput(f"recorded time {item.recorded!r} is not an RFC 3339 time") from None
    if recorded.utcoffset() is None:
        raise InvalidInput(f"recorded time {item.recorded!r} has no offset; write it as the "
                           f"ledger does, e.g. 2003-07-03T10:00:00Z")
    # Each hash is read (strictly) where it is checked: see BundleEntry.proof.
    return BundleEntry(item.log_index, recorded, text.decode(), agreement, seq, str(action),
                       tuple(proof))


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
    """Read a bundle file; one that cannot be read, or is malformed, raises InvalidInput."""
    return parse_bundle(_read_file(path))


def _read_file(path: Path) -> bytes:
    """The bytes of a bundle file: a regular file (never a device or a pipe, which could be
    read for ever) of at most MAX_BUNDLE_BYTES."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InvalidInput(f"no bundle file at {path}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read bundle {path}: {exc.strerror}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise InvalidInput(f"bundle {path} is not a regular file")
    if status.st_size > MAX_BUNDLE_BYTES:
        os.close(descriptor)
        raise InvalidInput(
            f"bundle {path} is {status.st_size / 2**30:.1f} GiB; a bundle is read up to "
            f"{MAX_BUNDLE_BYTES // 2**30} GiB (export a large ledger by agreement)")
    os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "rb") as file:
        try:
            # One byte more than allowed: a file that grew while it was read is refused too.
            data = file.read(MAX_BUNDLE_BYTES + 1)
        except OSError as exc:
            raise InvalidInput(f"cannot read bundle {path}: {exc.strerror}") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise InvalidInput(f"bundle {path} is larger than {MAX_BUNDLE_BYTES // 2**30} GiB")
    return data


def verify_bundle(bundle: Bundle, expected_operator_key: bytes | None = None,
                  workers: int = 1, *, expected_operator_name: str | None = None) -> Report:
    """Check everything a bundle claims; every failure is reported.

    ``expected_operator_key`` (and ``expected_operator_name``, from a verifier key) is what
    the auditor holds, got independently of the bundle. With ``workers`` > 1, the agreements
    are replayed in that many processes.
    """
    report = Report(read=len(bundle.entries))
    fail = report.failures.append
    if expected_operator_key is not None and expected_operator_key != bundle.operator_key:
        fail(Failure(f"the bundle's operator key {key_id(bundle.operator_key)[:16]} is not the "
                     f"expected one {key_id(expected_operator_key)[:16]}"))
    if expected_operator_name is not None and expected_operator_name != bundle.operator:
        fail(Failure(f"the bundle's operator signs as {bundle.operator!r}, the verifier key "
                     f"you hold names {expected_operator_name!r}"))
    checkpoint = check_checkpoint(bundle.checkpoint, bundle.origin, bundle.operator,
                                  bundle.operator_key, bundle.keys, report)
    # Every agreement replayed from its entries (signatures, chain, keys, rules): in worker
    # processes, while this one checks the proofs.
    with _Replay(bundle, report, workers) as replay:
        _check_proofs(bundle, checkpoint, report)
        replay.finish()
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
    for sig in note.signatures:
        if sig.name == operator and sig.key_id == operator_id:
            continue
        known = [public for partner, public in keys.values() if partner == sig.name
                 and note_key_id(sig.name, public, COSIGNATURE_KEY_TYPE) == sig.key_id]
        if not known:
            # C2SP signed-note: a line under a key the verifier does not know is ignored; it
            # vouches for nothing, and fails nothing.
            ignored += 1
            continue
        try:
            verify_cosignature(note, sig.name, known[0])
            cosigners.append(sig.name)
        except LedgerError as exc:
            fail(Failure(f"checkpoint: {exc.diagnostics()}"))
    ignoring = (f"; {ignored} signature line{'s' if ignored > 1 else ''} under keys the bundle "
                f"does not give were ignored" if ignored else "")
    report.checks.append("checkpoint signed by the operator"
                         + (f", cosigned by {', '.join(cosigners)}" if cosigners else "")
                         + ignoring)
    return checkpoint


def _check_proofs(bundle: Bundle, checkpoint: Checkpoint | None, report: Report) -> None:
    fail = report.failures.append
    if checkpoint is None:
        return
    # A whole-ledger bundle holds every leaf: its tree is built once, and each entry's proof
    # must be the one that tree gives (the only one that leads to its root).
    tree = _whole_tree(bundle, checkpoint, report) if bundle.whole_ledger else None
    # Every entry is in the checkpoint's tree.
    for item in bundle.entries:
        if tree is not None and tree.inclusion_proof_text(item.log_index) == item.proof_text:
            continue
        try:
            merkle.verify_inclusion(merkle.leaf_hash(item.text.encode()),
                                    item.log_index, checkpoint.size, item.proof,
                                    checkpoint.root)
        except LedgerError as exc:
            fail(Failure(f"inclusion proof: {exc.diagnostics()}", item.agreement, item.seq,
                         item.log_index))
    report.checks.append(f"inclusion of every entry in the tree of {checkpoint.size}")
    if bundle.whole_ledger:
        report.checks.append("the whole log against the checkpoint's root")


def _whole_tree(bundle: Bundle, checkpoint: Checkpoint, report: Report) -> merkle.Tree | None:
    """The tree of a whole-ledger bundle's entries, if it is the checkpoint's tree."""
    ordered = sorted(bundle.entries, key=lambda e: e.log_index)
    if [e.log_index for e in ordered] != list(range(checkpoint.size)):
        report.failures.append(Failure(
            f"a whole-ledger bundle must hold log entries 0 to {checkpoint.size - 1}, once each"))
        return None
    if not ordered:
        if checkpoint.root != merkle.EMPTY_ROOT:
            report.failures.append(Failure("the entries do not give the checkpoint's root"))
        return None
    tree = merkle.Tree([merkle.leaf_hash(e.text.encode()) for e in ordered])
    if tree.root != checkpoint.root:
        report.failures.append(Failure("the entries do not give the checkpoint's root"))
        return None
    return tree


#: Below this many agreements, starting worker processes costs more than it saves.
PARALLEL_FROM = 64

Share = list[tuple[str, list[tuple[str, datetime]]]]


Part = tuple[int, int, list[Failure], dict[str, str]]


def _replay_share(origin: str, share: Share) -> Part:
    """Replay some agreements from their entries' texts: (entries, agreements, failures, keys)."""
    entries = agreements = 0
    failures: list[Failure] = []
    seen: dict[str, str] = {}
    for reference, items in share:
        records = [RecordedEntry(i + 1, "", text, recorded)
                   for i, (text, recorded) in enumerate(items)]
        checked, failure, agreement = check_agreement(records, origin,
                                                      agreement_id(reference), reference)
        entries += checked
        agreements += 1
        if failure is not None:
            failures.append(failure)
        if agreement is not None:
            _note_keys(agreement, seen)
    return entries, agreements, failures, seen


class _Replay:
    """The agreements of a bundle replayed, in this process or in worker processes."""

    def __init__(self, bundle: Bundle, report: Report, workers: int) -> None:
        self.bundle, self.report = bundle, report
        by_agreement: dict[str, list[BundleEntry]] = {}
        for item in bundle.entries:
            by_agreement.setdefault(item.agreement, []).append(item)
        expected = set(bundle.agreements)
        if not bundle.whole_ledger and set(by_agreement) != expected:
            report.failures.append(Failure(
                f"the bundle's entries are for {sorted(by_agreement)}, its scope says "
                f"{sorted(expected)}"))
        self.share: Share = []
        for reference, items in sorted(by_agreement.items()):
            items.sort(key=lambda e: e.seq)
            self.share.append((reference, [(e.text, e.recorded) for e in items]))
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Future[Part]] = []
        if workers > 1 and len(self.share) >= PARALLEL_FROM:
            # Each agreement replays on its own, so they are shared out between processes.
            size = max(1, len(self.share) // (workers * 32))
            self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
            self.futures = [self.pool.submit(_replay_share, bundle.origin,
                                             self.share[i:i + size])
                            for i in range(0, len(self.share), size)]

    def __enter__(self) -> _Replay:
        return self

    def __exit__(self, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def finish(self) -> None:
        """Wait for the replay and put what it found into the report."""
        if self.pool is None:
            parts = [_replay_share(self.bundle.origin, self.share)]
        else:
            parts = [future.result() for future in self.futures]
        report = self.report
        seen_keys: dict[str, str] = {}
        for entries, agreements, failures, seen in parts:
            report.entries += entries
            report.agreements += agreements
            report.failures.extend(failures)
            seen_keys.update(seen)
        for kid, (partner, public) in self.bundle.keys.items():
            if key_id(public) != kid or seen_keys.get(kid) != partner:
                report.failures.append(Failure(
                    f"key {kid[:16]} listed for {partner!r} is not a key the entries give it"))
        for kid, partner in sorted(seen_keys.items()):
            if kid not in self.bundle.keys:
                report.failures.append(Failure(
                    f"the entries give {partner!r} key {kid[:16]}, which the bundle's keys do "
                    f"not list (a bundle lists every key its partners held)"))
        report.checks.append("signatures, seq/prev chains, keys and rules of every entry")


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
