"""A ledger service, as a partner's ``ledger`` sees it: acts signed here, entries checked here.

``--ledger https://ledger.example/salford`` (or ``http://`` on loopback) makes the command line
work against ``ledger serve``. Nothing the service says is believed until it is checked: an
agreement is the replay, with every signature and rule, of the entries the service hands over
(:meth:`Agreement.replay`); an act is built and signed here, with the partner's own key, and
posted. If the answer is lost, the same entry is posted again: the service recognises the act
by its identity and answers with the first result, never a second entry.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ledger import merkle, tiles
from ledger.acts import Acts, BodyOf, Recorded, signed_entry
from ledger.application import Ledger
from ledger.bundle import Bundle, BundleEntry, partner_keys, verify_bundle
from ledger.domain import Acted, Agreement, agreement_id
from ledger.errors import (
    AgreementBusy,
    InvalidInput,
    NotFound,
    NotPermitted,
    RuleViolation,
    StorageError,
    VerificationFailed,
)
from ledger.keys import Signer, key_id
from ledger.note import Checkpoint, SignedNote, cosign
from ledger.statement import Entry, new_act_id
from ledger.storage import parse_location
from ledger.values import parse_slug
from ledger.verify import Failure, RecordedEntry, Report, check_agreement, learn_witnesses
from ledger.witness import Seen, Witnesses, WitnessState, check_may_cosign, check_operator_key
from projections.audit import StaleCopy, extend_copy, import_bundle

#: How many times an act is read, signed and posted again when others keep landing first.
MAX_ATTEMPTS = 12
#: How long an act keeps posting the same entry to a service that does not answer.
RECONNECT_WAIT = 60.0
TIMEOUT = 30.0

_ERRORS: dict[str, Callable[[str], Exception]] = {
    "malformed": InvalidInput, "refused": RuleViolation, "not-found": NotFound,
    "conflict": AgreementBusy, "not-permitted": NotPermitted, "damaged": VerificationFailed,
    "unavailable": StorageError, "too-large": InvalidInput,
}


class _Unreachable(Exception):
    """The service did not answer (its answer may have been lost after it acted)."""


class RemoteLedger(Acts):
    """The ledger behind a ``ledger serve`` service."""

    def __init__(self, url: str, *, read_token: str | None = None,
                 new_act: Callable[[], str] = new_act_id) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"--ledger {url!r}: a service is named by an https:// URL")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidInput("a service is reached over https; plain http only on this "
                               "machine (127.0.0.1 or localhost)")
        self.url = url.rstrip("/")
        self.read_token = read_token
        self.new_act = new_act
        self._ledger: dict[str, Any] | None = None
        #: reference -> the agreement as last read and checked
        self._kept: dict[str, Agreement] = {}

    def describe(self) -> str:
        """The service, for messages."""
        return f"the ledger service at {self.url}"

    def close(self) -> None:
        """Nothing is held open between requests."""

    # --- HTTP -------------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The body of the service's answer; a refusal raised as the error it names, no
        answer (or one cut off) as :class:`_Unreachable`."""
        # The scheme is http or https: checked when the service was named.
        request = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.read_token is not None:
            request.add_header("Authorization", f"Bearer {self.read_token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = _json(exc.read())
            except (OSError, http.client.HTTPException):
                answer = {}
            if exc.code >= 500 and answer.get("kind") not in ("damaged",):
                raise _Unreachable(answer.get("error") or f"HTTP {exc.code}") from None
            kind = str(answer.get("kind", ""))
            message = str(answer.get("error") or f"{self.describe()} answered HTTP {exc.code}")
            raise _ERRORS.get(kind, StorageError)(message) from None
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
            # HTTPException: an answer cut off (the service stopped while sending it).
            raise _Unreachable(str(getattr(exc, "reason", exc)) or type(exc).__name__) from None

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        """The service's JSON answer (see :meth:`_send`)."""
        return _json(self._send(method, path, body))

    def _get(self, path: str) -> dict[str, Any]:
        return _json(self._read(path))

    def _read(self, path: str) -> bytes:
        try:
            return self._send("GET", path)
        except _Unreachable as exc:
            raise StorageError(f"cannot reach {self.describe()}: {exc}") from None

    def _post(self, path: str, body: bytes, lost: str = "") -> dict[str, Any]:
        """Post ``body`` until the service answers: what is posted (a signed entry, a
        cosignature) is kept once however often it arrives."""
        deadline = time.monotonic() + RECONNECT_WAIT
        while True:
            try:
                return self._request("POST", path, body)
            except _Unreachable as exc:
                if time.monotonic() > deadline:
                    raise StorageError(f"cannot reach {self.describe()}: {exc}{lost}") from None
                time.sleep(0.5)

    # --- reading ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The ledger's origin, as the service gives it (every entry is checked against it)."""
        return str(self._identity()["origin"])

    def _identity(self) -> dict[str, Any]:
        """The ledger's origin and operator, as the service gives them, read once."""
        if self._ledger is None:
            self._ledger = self._get("/v1/ledger")
        return self._ledger

    def references(self) -> list[str]:
        """Every agreement's reference."""
        return [str(a["reference"]) for a in self._get("/v1/agreements")["agreements"]]

    def agreement(self, reference: str, version: int | None = None) -> Agreement:
        """The agreement its entries make, every signature and rule checked here.

        The agreement is kept once checked (callers read it, never change it): the next read
        asks only for the entries after it, and checks that they follow it, so a history the
        service rewrote since is caught."""
        parse_slug(reference, "agreement reference")
        if version is not None:
            try:
                return Agreement.replay(self._fetch(reference, 0)[:version], self.origin)
            except (RuleViolation, InvalidInput) as exc:
                raise VerificationFailed(f"{self.describe()} gave entries of {reference!r} "
                                         f"that do not check out: {exc.diagnostics()}") from None
        kept = self._kept.pop(reference, None)
        held = kept.version if kept is not None else 0
        try:
            acts = self._fetch(reference, held, kept.head if kept is not None else None)
            agreement = Agreement.replay(acts, self.origin, start=kept) if acts or kept \
                else None
        except NotFound:
            raise NotFound(f"there is no agreement {reference!r} in this ledger") from None
        except (RuleViolation, InvalidInput) as exc:
            raise VerificationFailed(f"{self.describe()} gave entries of {reference!r} that "
                                     f"do not check out: {exc.diagnostics()}") from None
        if agreement is None:
            raise NotFound(f"there is no agreement {reference!r} in this ledger")
        self._kept[reference] = agreement
        return agreement

    def _fetch(self, reference: str, after: int, head: str | None = None) -> list[Acted]:
        answer = self._get(f"/v1/agreements/{quote(reference)}/entries?after={after}")
        if head is not None and answer.get("after_hash") != head:
            raise VerificationFailed(
                f"{self.describe()} gave entries of {reference!r} that do not check out: its "
                f"entry {after} is no longer the one read and checked here (the history was "
                f"rewritten)")
        acts = []
        for seq, item in enumerate(answer["entries"], after + 1):
            entry = Entry.parse(item["entry"])
            if entry.statement.agreement != reference or entry.statement.seq != seq:
                raise VerificationFailed(f"{self.describe()} gave entry {seq} of "
                                         f"{reference!r} out of place")
            acts.append(Acted(entry, _recorded(item)))
        return acts

    def bundle(self) -> Bundle:
        """The whole ledger as an audit bundle, made here from what the service serves, for
        :func:`verify_bundle` (or ``import``) to check: the latest checkpoint, the entries of
        the log's entry tiles up to its size, the times the agreements' entries give, the keys
        the agreements show, and each entry's inclusion proof computed here from the entries
        themselves (so every proof checks out exactly when the entries give the checkpoint's
        root)."""
        return self._gathered()[0]

    def _gathered(self) -> tuple[Bundle, list[Agreement]]:
        """:meth:`bundle`, with the agreements it was made from. They are only replayed to
        follow one another: every signature and rule is checked once, by whoever checks the
        bundle."""
        identity = self._identity()
        note = SignedNote.parse(self._read("/checkpoint").decode())
        size = Checkpoint.parse(note.text).size
        agreements = [self._unchecked(ref) for ref in self.references()]
        recorded = {act.entry.hash: act.recorded for a in agreements for act in a.history}
        texts = self._entry_texts(0, size)
        tree = merkle.Tree([merkle.leaf_hash(text) for text in texts])
        entries = []
        for index, text in enumerate(texts):
            entry = Entry.parse(text)
            when = recorded.get(entry.hash)
            if when is None:
                raise VerificationFailed(f"log index {index} holds an entry that no agreement "
                                         f"the service serves holds")
            entries.append(BundleEntry.of(index, when, entry, tuple(tree.inclusion_proof(index))))
        return Bundle(self.origin, str(identity["operator"]),
                      bytes.fromhex(str(identity["operator_public_key"])), note, True,
                      tuple(a.reference for a in agreements), partner_keys(agreements),
                      tuple(entries)), agreements

    def _unchecked(self, reference: str) -> Agreement:
        parse_slug(reference, "agreement reference")
        try:
            return Agreement.replay(self._fetch(reference, 0), self.origin, check=False)
        except (RuleViolation, InvalidInput, NotFound) as exc:
            raise VerificationFailed(f"{self.describe()} gave entries of {reference!r} that "
                                     f"do not check out: {exc.diagnostics()}") from None

    def _entry_texts(self, first: int, size: int) -> list[bytes]:
        """The log's entries ``[first, size)``, read from its entry tiles (C2SP tlog-tiles)."""
        texts: list[bytes] = []
        start = first - first % tiles.WIDTH
        for at in range(start, size, tiles.WIDTH):
            width = min(tiles.WIDTH, size - at)
            texts += tiles.read_entry_bundle(
                self._read("/" + tiles.tile_path(None, at // tiles.WIDTH, width)))
        if len(texts) != size - start:
            raise VerificationFailed(f"{self.describe()} served {len(texts)} entries in the "
                                     f"tiles of entries {start} to {size - 1}")
        return texts[first - start:]

    def copy(self, path: Path, memory: WitnessState) -> Report:
        """Bring this folder's verified copy of the ledger (a SQLite ledger at ``path``) up to
        the service's latest checkpoint, and remember that checkpoint in ``memory``, only if
        everything checks out.

        The first time (or if the copy is not the one verified before), everything the
        service serves is checked as ``ledger import`` checks a bundle, and loaded whole
        (:meth:`bundle`). After that, only what is new is read: the checkpoint, the entries
        since the one verified before (from the entry tiles) and when each was recorded; they
        must grow the tree verified before to the new checkpoint's root, and each is checked,
        signature and rules, on its agreement as the copy holds it
        (:func:`projections.audit.extend_copy`): a re-check costs the new entries and
        O(log n) of the copy, and a rewritten history is caught even after the service
        deleted what it served before."""
        seen = memory.get(self.origin)
        if seen is not None and path.exists():
            copy = Ledger(parse_location(str(path)))
            try:
                report, note = self._extend(copy, seen)
            except StaleCopy:
                pass  # not the copy verified before: made again, whole, below
            else:
                if report.ok:
                    memory.remember(self.origin, Checkpoint.parse(note.text),
                                    seen.operator_key, note.format())
                return report
            finally:
                copy.close()
        bundle = self.bundle()
        report = self._consistent(bundle, seen)
        if report.ok:
            made = path.with_name(path.name + ".new")
            for stale in (made, *_sqlite_files(made)):
                stale.unlink(missing_ok=True)
            # Everything served, checked as 'ledger import' checks a bundle, then loaded.
            checked = import_bundle(parse_location(str(made)), bundle,
                                    seen.operator_key if seen else None)
            checked.checks += report.checks
            report = checked
            if report.ok:
                for old in (path, *_sqlite_files(path)):
                    old.unlink(missing_ok=True)
                made.replace(path)
                memory.remember(self.origin, Checkpoint.parse(bundle.checkpoint.text),
                                bundle.operator_key, bundle.checkpoint.format())
        return report

    def _extend(self, copy: Ledger, seen: Seen) -> tuple[Report, SignedNote]:
        operator_key = bytes.fromhex(str(self._identity()["operator_public_key"]))
        note = SignedNote.parse(self._read("/checkpoint").decode())
        if operator_key != seen.operator_key:
            report = Report()
            report.failures.append(Failure(
                f"the service's operator key {key_id(operator_key)[:16]} is not the expected "
                f"one {key_id(seen.operator_key)[:16]}, verified here before"))
            return report, note
        size = Checkpoint.parse(note.text).size
        texts = self._entry_texts(seen.size, size) if size > seen.size else []
        entries = [Entry.parse(text) for text in texts]
        touched: dict[str, list[Entry]] = {}
        for entry in entries:
            touched.setdefault(entry.statement.agreement, []).append(entry)
        recorded: dict[str, datetime] = {}
        for reference, listed in touched.items():
            held = copy.agreement(reference) if copy.exists(reference) else None
            after = 0 if held is None else held.version
            answer = self._get(f"/v1/agreements/{quote(reference)}/entries?after={after}")
            served = answer["entries"][:len(listed)]
            if (held is not None and answer.get("after_hash") != held.head) or [
                    str(item["entry"]) for item in served] != [e.text for e in listed]:
                report = Report()
                report.failures.append(Failure(
                    f"agreement {reference}: {self.describe()} serves entries that are not "
                    f"the ones its log's tiles give after the {after} verified here before"))
                return report, note
            for entry, item in zip(listed, served, strict=True):
                recorded[entry.hash] = _recorded(item)
        new = [BundleEntry.of(index, recorded[entry.hash], entry, ())
               for index, entry in enumerate(entries, seen.size)]
        return extend_copy(copy, note, new, seen), note

    @staticmethod
    def _consistent(bundle: Bundle, seen: Seen | None) -> Report:
        """Whether the log served extends the checkpoint verified here before, ``seen``."""
        report = Report()
        checkpoint = Checkpoint.parse(bundle.checkpoint.text)
        if seen is not None and seen.operator_key != bundle.operator_key:
            report.failures.append(Failure(
                f"the service's operator key {key_id(bundle.operator_key)[:16]} is not the "
                f"expected one {key_id(seen.operator_key)[:16]}, verified here before"))
        elif seen is not None:
            leaves = [merkle.leaf_hash(e.text.encode()) for e in bundle.entries[:seen.size]]
            if checkpoint.size < seen.size:
                report.failures.append(Failure(
                    f"the log has {checkpoint.size} entries; {seen.size} were verified here "
                    f"before: it was cut back"))
            elif merkle.Tree(leaves).root != seen.root:
                report.failures.append(Failure(
                    f"the first {seen.size} entries no longer give the root verified here "
                    f"before: the log was rewritten"))
            else:
                report.checks.append(f"consistent with the checkpoint of size {seen.size} "
                                     f"verified here before")
        return report

    def cosign(self, partner: str, memory: WitnessState,
               signer_for: Callable[[set[bytes]], Signer]) -> tuple[Checkpoint, int | None]:
        """A partner, as a witness, cosigns the service's latest checkpoint: only once the
        whole log it serves checks out here (:meth:`bundle`, :func:`verify_bundle`), the
        operator key is the one this partner saw before, and the checkpoint extends the last
        one it cosigned (``memory``, kept in its own folder), by a consistency proof made here
        from the entries. Returns the checkpoint and the size cosigned before."""
        bundle, agreements = self._gathered()
        seen = memory.get(self.origin)
        operator_key = bundle.operator_key
        check_operator_key(partner, seen, operator_key)
        report = verify_bundle(bundle, seen.operator_key if seen else None)
        if not report.ok:
            raise VerificationFailed(f"REFUSED, {partner} did not cosign: the log does not "
                                     f"check out: {report.failures[0].line()}")
        cp = Checkpoint.parse(bundle.checkpoint.text)
        tree = merkle.Tree([merkle.leaf_hash(e.text.encode()) for e in bundle.entries])
        proof = [] if seen is None or seen.size in (0, cp.size) or cp.size < seen.size else (
            merkle.consistency_proof(seen.size, cp.size, tree.node))
        witnesses = Witnesses()
        for agreement in agreements:  # every signature and rule checked with the bundle
            learn_witnesses(witnesses, agreement)
        signer = signer_for(witnesses.current.get(partner, set()))
        witnesses.check(partner, signer.public_key, now=True)
        cosigners = tuple(sig.name for sig in bundle.checkpoint.signatures
                          if sig.name != bundle.operator)
        check_may_cosign(partner, seen, operator_key, cp, proof, cosigners)
        signature = cosign(cp.body(), partner, signer.private_key, int(time.time()))
        posted = json.dumps({"size": cp.size, "witness": partner,
                             "public_key": signer.public_key.hex(),
                             "signature": signature.line().rstrip("\n")}).encode()
        self._post("/v1/cosignatures", posted)
        memory.remember(self.origin, cp, operator_key, bundle.checkpoint.format())
        return cp, seen.size if seen else None

    def verify(self, reference: str | None = None) -> Report:
        """Every entry the service holds (or one agreement's), checked here as ``verify``
        checks a ledger's: read strictly, its place in the chain, its signature by the key
        the partner held, every rule replayed (:func:`ledger.verify.check_agreement`)."""
        report = Report()
        references = [reference] if reference is not None else self.references()
        for ref in references:
            parse_slug(ref, "agreement reference")
            answer = self._get(f"/v1/agreements/{quote(ref)}/entries")
            records = [RecordedEntry(int(item["seq"]), "", str(item["entry"]),
                                     _recorded(item))
                       for item in answer["entries"]]
            checked, failure, _ = check_agreement(records, self.origin, agreement_id(ref), ref)
            report.agreements += 1
            report.entries += checked
            if failure is not None:
                report.failures.append(failure)
        report.checks.append(f"every entry served by {self.url}: canonical form, seq/prev "
                             f"chain, signature by the key its partner held, every rule "
                             f"replayed")
        report.checks.append("not checked over a service: the read models (derived tables "
                             "the service keeps; run 'ledger verify' where it runs)")
        return report

    # --- acting -----------------------------------------------------------------------------

    def _act(self, reference: str, partner: str, action: str, body: BodyOf, signer: Signer,
             at: datetime | None) -> Recorded:
        parse_slug(reference, "agreement reference")
        parse_slug(partner, "partner id")
        stated = None if at is None else at.astimezone(UTC).replace(microsecond=0)
        origin = self.origin
        act = self.new_act()
        # The agreement as last read and checked here is signed on at once; it is read again
        # only if the service says it has moved on, or a rule here refuses the act on it.
        fresh = False
        attempt = 0
        while attempt < MAX_ATTEMPTS:
            attempt += 1
            agreement: Agreement | None = None
            if action != "draft":
                kept = None if fresh else self._kept.get(reference)
                fresh = kept is None
                agreement = kept if kept is not None else self.agreement(reference)
                landed = agreement.entry_of_act(partner, act)
                if landed is not None:
                    return Recorded(landed.entry, agreement, attempt)
            # The rules are checked here first, as the service will: a refusal costs no trip.
            try:
                entry = signed_entry(origin, reference, agreement, action, partner, signer,
                                     body, act, stated, _now)
                if agreement is None:
                    Agreement.check_draft(entry, origin, datetime.now(UTC))
                else:
                    agreement.check(entry, datetime.now(UTC))
            except (RuleViolation, InvalidInput, NotFound):
                if fresh:
                    raise
                fresh, attempt = True, attempt - 1  # judged on the agreement as it now stands
                continue
            try:
                answer = self._post("/v1/entries", entry.text.encode(),
                                    "; the act may have landed: 'ledger history' shows whether "
                                    "it did")
            except AgreementBusy:
                fresh = True
                time.sleep(random.uniform(0, 0.01 * attempt))  # noqa: S311 - jitter only
                continue
            stored = Entry.parse(answer["entry"])
            s = stored.statement
            if (s.agreement, s.partner, s.act) != (reference, partner, act):
                raise VerificationFailed(f"{self.describe()} answered with an entry that is "
                                         f"not this act")
            return Recorded(stored, self._after(reference, agreement, stored, answer), attempt)
        raise AgreementBusy(f"agreement {reference!r} is busy: other acts kept landing first "
                            f"({MAX_ATTEMPTS} attempts); nothing was written, try again")


    def _after(self, reference: str, agreement: Agreement | None, stored: Entry,
               answer: dict[str, Any]) -> Agreement:
        """The agreement with this act's stored entry, replayed here (every rule, with the
        time the service says it recorded it, and the signature) on the agreement it was
        signed on, if it follows it; else read again, and the entry must be in it."""
        self._kept.pop(reference, None)
        if agreement is not None and stored.statement.seq == agreement.version + 1:
            try:
                after = Agreement.replay([(stored, _recorded(answer))], self.origin,
                                         start=agreement)
            except (RuleViolation, InvalidInput, ValueError) as exc:
                raise VerificationFailed(f"{self.describe()} stored an entry of "
                                         f"{reference!r} that does not check out: "
                                         f"{exc}") from None
            self._kept[reference] = after
            return after
        after = self.agreement(reference)
        if not any(act.entry.hash == stored.hash for act in after.history):
            raise VerificationFailed(f"{self.describe()} answered with an entry of "
                                     f"{reference!r} that its agreement does not hold")
        return after


def _recorded(item: dict[str, Any]) -> datetime:
    """The time the service says it recorded an entry: an RFC 3339 time with its zone."""
    try:
        recorded = datetime.fromisoformat(str(item["recorded"]))
    except (KeyError, ValueError):
        raise InvalidInput("the service gave an entry without a time it was recorded") from None
    if recorded.tzinfo is None:
        raise InvalidInput(f"the service gave an entry recorded at {item['recorded']!r}, a "
                           f"time with no zone")
    return recorded


def _sqlite_files(path: Path) -> tuple[Path, Path]:
    """The files SQLite keeps beside a database while it is open."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _now() -> datetime:
    return datetime.now(UTC)
