"""The whole audit of a ledger, and its bundles: what ``verify``, ``export`` and ``import`` do.

Verification checks each agreement on its own (signatures, chain, keys, rules, read-model rows),
so a large ledger's agreements are shared out between worker processes, one per core, while
this process streams the log against the stored tree. The checkpoints are checked last, once the
workers have said which keys each partner held.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError, StoredEvent

from ledger import merkle
from ledger.application import Ledger
from ledger.bundle import (
    Bundle,
    BundleCheck,
    BundleEntry,
    BundleHead,
    BundleSource,
    check_checkpoint,
    partner_keys,
)
from ledger.checkpoints import CheckpointRecord, signed_checkpoint
from ledger.domain import Agreement, agreement_id
from ledger.errors import (
    InvalidInput,
    LedgerError,
    NotFound,
    ProofError,
    StorageError,
    VerificationFailed,
)
from ledger.keys import Signer
from ledger.note import (
    COSIGNATURE_KEY_TYPE,
    Checkpoint,
    NoteSignature,
    SignedNote,
    cosign,
    note_key_id,
)
from ledger.statement import Entry
from ledger.storage import Location
from ledger.values import parse_slug
from ledger.verify import (
    Failure,
    Report,
    agreement_at,
    drafted_agreements,
    verify_agreements,
)
from ledger.witness import Seen, WitnessState, check_may_cosign, check_operator_key
from projections.check import ReadModelCheck
from projections.db import default_workers
from projections.log import MerkleLog, b64
from projections.logcheck import LogCheck, Remembered
from projections.models import AgreementRow
from projections.readmodels import ReadModels

Progress = Callable[[int], None]

#: Below this many agreements, starting worker processes costs more than it saves.
PARALLEL_FROM = 64
CHUNK = 32


@dataclass
class _Partial:
    """What one worker found in its share of the agreements."""

    report: Report
    seen: set[str] = field(default_factory=set)
    versions: dict[str, int] = field(default_factory=dict)
    table_failures: list[Failure] = field(default_factory=list)


_worker: dict[str, Any] = {}


def _start_worker(location: Location, skip_tables: bool) -> None:
    ledger = Ledger(location)
    models = ReadModels(ledger)
    _worker.update(ledger=ledger, models=models, skip=skip_tables)


def _tables(ledger: Ledger, models: ReadModels, skip: bool | None) -> ReadModelCheck:
    return ReadModelCheck(models, skip=skip,
                          replay=lambda reference, version: agreement_at(ledger, reference,
                                                                         version))


def _check_share(agreements: Sequence[tuple[UUID, str | None]]) -> _Partial:
    ledger: Ledger = _worker["ledger"]
    tables = _tables(ledger, _worker["models"], _worker["skip"])
    report = verify_agreements(ledger, agreements, visit=tables)
    tables.flush()
    return _Partial(report, tables.seen, tables.versions, tables.failures)


def verify_ledger(ledger: Ledger, reference: str | None = None,
                  progress: Progress | None = None, workers: int | None = None, *,
                  read_models: bool = True, remembered: Sequence[Remembered] = ()) -> Report:
    """The one verification of a ledger's record: the whole of it, or one agreement.

    Checked as of one snapshot (the notifications committed when it begins), so that acts
    recorded meanwhile are neither checked nor taken for damage: every agreement's entries
    (canonical form, chain, keys, signatures, every rule replayed), the tree the entries give
    against the stored tree, every checkpoint against the entries' own tree, every cosignature,
    the checkpoint tables, and (``read_models``) the read models against a fresh rebuild. The
    report lists every failure; it also carries the size and root the entries give, and who may
    cosign (``checkpoint`` and ``cosign`` act on those, never on stored tables). Checkpoints
    ``remembered`` outside the database (the operator's, the partners') must still be the
    entries' own: a history rewritten in the database, checkpoints and all, is caught.
    """
    if reference is not None and not ledger.exists(reference):
        raise NotFound(f"there is no agreement {reference!r} in this ledger; "
                       f"'ledger list' shows them")
    try:
        snapshot = ledger.recorder.max_notification_id() or 0
    except PersistenceError as exc:
        raise ledger.location.unreachable(exc) from None
    models = ReadModels(ledger)
    try:
        report = Report()
        stale = _catch_up(models, report)
        # Read models that could not catch up are behind for every agreement in the batch
        # that failed, intact ones included: compare them only when they are current.
        skip = True if (stale or not read_models) else None
        tables = _tables(ledger, models, skip)
        if reference is not None:
            shares: list[tuple[UUID, str | None]] = [(agreement_id(reference), reference)]
            tree: LogCheck | None = None
        else:
            drafted = drafted_agreements(ledger, stop=snapshot)
            shares = list(drafted.items())
            tree = _log_check(models, snapshot, set(drafted), report, remembered)
        count = workers if workers is not None else default_workers()
        if count > 1 and len(shares) >= PARALLEL_FROM:
            _in_parallel(ledger.location, shares, count, report, tables, tree, progress)
        else:
            found = verify_agreements(ledger, shares, progress, tables)
            _add(report, found)
            if tree is not None:
                tree.check_log(progress)
        report.checks.append("signatures, seq/prev chains, keys and rules of every entry")
        if tree is not None:
            tree.finish(report)
        if read_models:
            tables.flush()
            if not tables.skip:
                _check_read_models_not_behind(ledger, models, tables, tree, report)
            tables.finish(report, whole_ledger=reference is None)
    finally:
        models.close()
    return report


def _add(report: Report, found: Report) -> None:
    report.agreements += found.agreements
    report.entries += found.entries
    if found.read is not None:
        report.read = (report.read or 0) + found.read
    report.failures.extend(found.failures)
    report.witnesses.merge(found.witnesses)


def _catch_up(models: ReadModels, report: Report) -> bool:
    """Bring the read models and the log up to date, as any reader would; what stops them is
    a failure to report (damage), not a crash. Whether they are stale."""
    try:
        models.catch_up()
    except LedgerError as exc:
        # Entries deleted or moved stop the read models short; the checks below name them.
        report.failures.append(Failure(
            f"read models cannot be brought up to date: {exc.diagnostics()}"))
        return True
    try:
        MerkleLog(models).catch_up()
    except LedgerError as exc:
        report.failures.append(Failure(f"the stored log cannot be brought up to date: "
                                       f"{exc.diagnostics()}"))
    return False


def _log_check(models: ReadModels, snapshot: int, drafted: set[UUID], report: Report,
               remembered: Sequence[Remembered]) -> LogCheck | None:
    try:
        return LogCheck(MerkleLog(models), snapshot, drafted, remembered)
    except LedgerError as exc:
        report.failures.append(Failure(exc.diagnostics()))
        return None


def _check_read_models_not_behind(ledger: Ledger, models: ReadModels, tables: ReadModelCheck,
                                  tree: LogCheck | None, report: Report) -> None:
    """Rows that show fewer entries than the event store holds hide acts (rolled back to an
    earlier state that is otherwise consistent, or a tracking position moved past them)."""
    for name, position, last in models.tracking_beyond():
        report.failures.append(Failure(
            f"the tracking position of {name!r} is {position}, past the last event ({last}): "
            f"it was edited, and hides every entry since; run 'ledger rebuild'"))
    for reference, compared in sorted(tables.versions.items()):
        shown = compared
        if tree is not None:
            held = tree.versions.get(agreement_id(reference).hex, 0)
        else:
            # One agreement: its entries now, after catching the read models up again (a
            # writer may have acted since the first catch-up).
            models.catch_up()
            held = len(ledger.recorder.select_events(agreement_id(reference)))
            if shown < held:
                shown = _stored_entries_count(models, reference)
        if shown < held:
            report.failures.append(Failure(
                f"read model shows {shown} entries of {held}: it is behind the event store; "
                f"run 'ledger rebuild'", reference))


def _stored_entries_count(models: ReadModels, reference: str) -> int:
    rows = models.stored(reference)
    return int(rows.agreement["entries"]) if rows[AgreementRow] else 0


def _in_parallel(location: Location, shares: list[tuple[UUID, str | None]], workers: int,
                 report: Report, tables: ReadModelCheck, tree: LogCheck | None,
                 progress: Progress | None) -> None:
    chunks = [shares[i:i + CHUNK] for i in range(0, len(shares), CHUNK)]
    # "spawn": a forked child would share this process's open database connections.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(location, tables.skip)) as pool:
        futures = [pool.submit(_check_share, chunk) for chunk in chunks]
        # While the workers check agreements, this process checks the log against the tree.
        if tree is not None:
            tree.check_log(progress)
        for future in futures:
            part = future.result()
            _add(report, part.report)
            tables.failures.extend(part.table_failures)
            tables.seen |= part.seen
            tables.versions.update(part.versions)
            if progress is not None:
                progress(part.report.entries)


# --- bundles ------------------------------------------------------------------------------------


def export_bundle(ledger: Ledger, reference: str | None = None,
                  progress: Progress | None = None, *, proofs: bool = True) -> Bundle:
    """A bundle of one agreement (or the whole ledger) against the latest checkpoint.

    The checkpoint and its cosignatures are read from the event store and checked; every
    entry's inclusion proof is checked against the checkpoint's root, from the entry's own
    bytes, before it is written: edited log tables make export fail, naming the entry, never
    hand out a proof the signed checkpoint does not back. Without ``proofs`` (a whole ledger
    in lines, whose reader rebuilds the tree), the entries themselves, in log order, must give
    the checkpoint's root instead.
    """
    if not proofs and reference is not None:
        raise InvalidInput("an agreement's bundle needs its proofs")
    identity = ledger.identity
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        latest = log.latest_checkpoint()
        if latest is None:
            raise NotFound("no checkpoint yet; the operator makes one with 'ledger checkpoint'")
        cp = latest.checkpoint
        uuids = [agreement_id(reference)] if reference is not None else list(
            drafted_agreements(ledger))
        entries = []
        references: list[str] = []
        keys: dict[str, tuple[str, bytes]] = {}
        for uuid in uuids:
            # One agreement at a time: only its keys are kept once its entries are listed.
            agreement = ledger.agreement(reference) if reference is not None else ledger.load(
                uuid)
            references.append(agreement.reference)
            keys.update(partner_keys([agreement]))
            indexes = log.indexes(agreement.reference)
            newer = [seq for seq, index in indexes.items() if index >= cp.size]
            if newer or len(indexes) < agreement.version:
                raise InvalidInput(
                    f"entry {min(newer or [len(indexes) + 1])} of {agreement.reference!r} is "
                    f"newer than the latest checkpoint (size {cp.size}); make a checkpoint "
                    f"first")
            found = log.inclusions(indexes.values(), cp.size) if proofs else {}
            for act in agreement.history:
                seq = act.entry.statement.seq
                index = indexes[seq]
                proof = found.get(index, [])
                if proofs:
                    try:
                        merkle.verify_inclusion(merkle.leaf_hash(act.entry.text.encode()),
                                                index, cp.size, proof, cp.root)
                    except ProofError:
                        raise VerificationFailed(
                            f"the stored log does not prove entry {seq} of "
                            f"{agreement.reference!r} (log index {index}) in the checkpoint of "
                            f"size {cp.size}: its tables were altered; run 'ledger verify'") \
                            from None
                entries.append(BundleEntry.of(index, act.recorded, act.entry, tuple(proof)))
            if progress is not None:
                progress(agreement.version)
        if reference is None and len(entries) != cp.size:
            raise InvalidInput(f"the ledger has {log.current_size()} entries and the latest "
                               f"checkpoint covers {cp.size}; make a checkpoint first")
    finally:
        models.close()
    entries.sort(key=lambda e: e.log_index)
    if not proofs:
        _check_whole_log(entries, cp)
    return Bundle(identity.origin, identity.operator, identity.operator_public_key,
                  latest.note, reference is None, tuple(references), keys, tuple(entries))


def _check_whole_log(entries: Sequence[BundleEntry], cp: Checkpoint) -> None:
    """Refuse a whole ledger's entries that are not the checkpoint's log: log indexes 0 to
    size-1, whose leaves give its root."""
    tree = merkle.CompactRange()
    for item in entries:
        if item.log_index != tree.size:
            raise VerificationFailed(f"the stored log places no entry at log index {tree.size}: "
                                     f"its tables were altered; run 'ledger verify'")
        tree.append(merkle.leaf_hash(item.text.encode()))
    if tree.root() != cp.root:
        raise VerificationFailed(f"the entries do not give the root of the checkpoint of size "
                                 f"{cp.size}: the stored log was altered; run 'ledger verify'")


_NUMBER = re.compile(r"[0-9]{1,18}")


def proof_document(ledger: Ledger, entry: str | None, size_from: int | None,
                   size_to: int | None) -> dict[str, Any]:
    """What ``ledger prove`` prints (docs/CLI.md): an inclusion proof of ``entry`` (a log
    index or ``REF:SEQ``) in the latest checkpoint, or a consistency proof from tree size
    ``size_from`` to ``size_to`` (default: the latest checkpoint's). Each is checked against
    the signed root, from the entry's own bytes, before it is given: edited log tables make
    this fail, never prove what the entries do not say."""
    if (entry is None) == (size_from is None):
        raise InvalidInput("give ENTRY for an inclusion proof or --from N [--to M] for a "
                           "consistency proof")
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        log.catch_up()
        latest = log.latest_checkpoint()
        if entry is not None:
            if latest is None:
                raise NotFound("no checkpoint yet; the operator makes one with "
                               "'ledger checkpoint'")
            cp = latest.checkpoint
            index = _entry_index(log, entry)
            if index >= log.current_size():
                raise NotFound(f"the log has {log.current_size()} entries; there is no entry "
                               f"{index}")
            if index >= cp.size:
                raise InvalidInput(f"entry {index} is newer than the latest checkpoint "
                                   f"(size {cp.size}); ask for a new checkpoint")
            leaf = log.leaf(index)
            stored = ledger.agreement(leaf.reference).history
            if not 0 < leaf.seq <= len(stored):
                raise VerificationFailed(f"the log's index {index} names entry {leaf.seq} of "
                                         f"{leaf.reference!r}, which is not stored; run "
                                         f"'ledger verify'")
            digest = merkle.leaf_hash(stored[leaf.seq - 1].entry.text.encode())
            proof = log.inclusion(index, cp.size)
            _checked(lambda: merkle.verify_inclusion(digest, index, cp.size, proof, cp.root),
                     f"entry {index}")
            return {"log_index": index, "reference": leaf.reference, "seq": leaf.seq,
                    "leaf_hash": b64(digest), "tree_size": cp.size, "root": b64(cp.root),
                    "proof": [b64(p) for p in proof], "checkpoint": latest.note.format()}
        assert size_from is not None
        target = size_to if size_to is not None else (
            latest.checkpoint.size if latest else log.current_size())
        proof = log.consistency(size_from, target)
        # Each root is a signed checkpoint's, or recomputed from the entries.
        old, new = log.trusted_root(size_from), log.trusted_root(target)
        _checked(lambda: merkle.verify_consistency(size_from, target, old, new, proof),
                 f"sizes {size_from} to {target}")
        return {"from": size_from, "to": target, "root_from": b64(old), "root_to": b64(new),
                "proof": [b64(p) for p in proof]}
    finally:
        models.close()


def _checked(check: Callable[[], object], what: str) -> None:
    try:
        check()
    except ProofError as exc:
        raise VerificationFailed(f"the stored log does not give a valid proof for {what} "
                                 f"({exc}): its tables were altered; run 'ledger verify'") from None


def _entry_index(log: MerkleLog, entry: str) -> int:
    if _NUMBER.fullmatch(entry):
        return int(entry)
    reference, sep, seq = entry.rpartition(":")
    if not sep or not _NUMBER.fullmatch(seq):
        raise InvalidInput(f"ENTRY {entry!r}: give a log index (e.g. 12) or REF:SEQ "
                           f"(e.g. salford-dat-2004:3)")
    return log.index_of(parse_slug(reference, "agreement reference"), int(seq))


def import_bundle(location: Location, source: BundleSource,
                  expected_operator_key: bytes | None = None,
                  workers: int | None = None, *,
                  expected_operator_name: str | None = None) -> Report:
    """Check a bundle and, only if every check passes, load it into an empty ledger.

    The bundle is read once, entry by entry (:class:`~ledger.bundle.BundleCheck`): each batch
    of entries is checked and written as it comes, within one transaction that is committed
    only once every check has passed. All or nothing: the ledger's identity, every entry in
    log order and (for a whole-ledger bundle, whose log the copy's is) the checkpoint with
    every cosignature by a key the bundle gives its partner are stored together, or, if any
    check fails or the import is interrupted, nothing is, and a ledger file the import made is
    removed. Returns the verification report; a failing bundle is returned unloaded.
    """
    head = source.head
    count = workers if workers is not None else default_workers()
    with BundleCheck(head, expected_operator_key, count,
                     expected_operator_name=expected_operator_name) as check:
        if not check.header_ok:
            # Refused before any entry: the rest is checked only to report all of it.
            for batch in source.batches():
                check.add(batch)
            return check.finish()
        # A new SQLite file is made under a name of its own beside it and put in place only
        # once committed, never over a file another process made meanwhile: a failed or
        # stopped import removes its own file, never one another import has filled.
        path = location.path
        staging = (path.with_name(f".{path.name}.import-{os.getpid()}")
                   if path is not None and path.parent.is_dir()
                   and location.sqlite_kind() == "missing" else None)
        into = location if staging is None else replace(location, path=staging)
        try:
            ledger, initialised = _empty_ledger(into, head)
            try:
                ledger.store_in_one_transaction(_checked_events(ledger, initialised, source,
                                                                check))
            finally:
                ledger.close()
            if staging is not None:
                _put_in_place(staging, location)
        except _Refused as refused:
            _remove_made(into, staging is not None)
            return refused.report
        except BaseException:
            _remove_made(into, staging is not None)
            raise
    return check.report


def _put_in_place(staging: Path, location: Location) -> None:
    """The ledger file an import made, linked under the name asked for, unless a file of that
    name has appeared meanwhile (``os.link`` never replaces one)."""
    assert location.path is not None
    try:
        os.link(staging, location.path)
    except FileExistsError:
        raise StorageError(f"{location.describe()} was created by another process while this "
                           f"import ran; nothing was imported into it") from None
    except OSError:
        # A file system without hard links: renamed, once no file of that name is seen.
        if location.path.exists():
            raise StorageError(f"{location.describe()} was created by another process while "
                               f"this import ran; nothing was imported into it") from None
        staging.rename(location.path)
        return
    staging.unlink()


class _Refused(Exception):
    """Ends an import's transaction, storing nothing: the bundle did not check out."""

    def __init__(self, report: Report) -> None:
        super().__init__("the bundle did not check out")
        self.report = report


def _checked_events(ledger: Ledger, initialised: bool, source: BundleSource,
                    check: BundleCheck) -> Iterator[list[StoredEvent]]:
    """The events of an import, a batch at a time, each batch checked as it is read; the last
    batch (the checkpoint) only once every check has passed, else :class:`_Refused`."""
    head = source.head
    if not initialised:
        yield [ledger.identity_event(head.origin, head.operator, head.operator_key)]
    for batch in source.batches():
        check.add(batch)
        yield [ledger.stored_event(e) for e in batch]
    report = check.finish()
    if not report.ok:
        raise _Refused(report)
    if head.whole_ledger:
        yield ledger.checkpoint_events_of(_bundle_checkpoint(head))


def _remove_made(location: Location, made: bool) -> None:
    """Remove the ledger file an import made, and what SQLite keeps beside it."""
    if not made or location.path is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{location.path}{suffix}").unlink(missing_ok=True)


def _bundle_checkpoint(bundle: BundleHead) -> CheckpointRecord:
    """The bundle's checkpoint as the copy keeps it (:func:`_kept_checkpoint`)."""
    return _kept_checkpoint(bundle.checkpoint, bundle.origin, bundle.operator,
                            bundle.operator_key, bundle.keys)


def _kept_checkpoint(note: SignedNote, origin: str, operator: str, operator_key: bytes,
                     keys: dict[str, tuple[str, bytes]]) -> CheckpointRecord:
    """A checkpoint as a copy keeps it: the operator's note, and each cosignature made under
    a key its partner has signed with (lines of other keys are ignored, as C2SP signed-note
    says; verification checked the ones it knows)."""
    operator_only = SignedNote(note.text, tuple(s for s in note.signatures
                                                if s.name == operator))
    record = CheckpointRecord.record(operator_only, origin, operator, operator_key)
    for partner, public, sig in _cosignatures(note, keys):
        record.cosign(partner, public, sig)
    return record


def _cosignatures(note: SignedNote, keys: dict[str, tuple[str, bytes]]
                  ) -> list[tuple[str, bytes, NoteSignature]]:
    """Each signature line of ``note`` under a key its partner has signed with."""
    return [(partner, public, sig) for sig in note.signatures
            for partner, public in sorted(set(keys.values()))
            if partner == sig.name
            and sig.key_id == note_key_id(partner, public, COSIGNATURE_KEY_TYPE)]


class StaleCopy(LedgerError):
    """A copy's log is not the one verified before: it must be made again, whole."""


def extend_copy(ledger: Ledger, note: SignedNote, new: Sequence[BundleEntry],
                seen: Seen) -> Report:
    """Check what follows an auditor's verified copy of a ledger and, only if every check
    passes, add it: the entries since, then the checkpoint that covers them. The incremental
    form of :func:`import_bundle`.

    The copy's log must still give the root verified before (``seen``), from its O(log n)
    peaks; the entries after it must grow that tree to the checkpoint's root, which the
    operator's key (the one verified before) signed; each is read strictly and replayed,
    signature and rules, on its agreement as the copy holds it; cosignatures are checked
    under every key the partners have signed with. The entries before are not read again:
    the root verified before binds them. Raises :class:`StaleCopy` if the copy's log is not
    the one verified before."""
    report = Report()
    fail = report.failures.append
    identity = ledger.identity
    if identity.operator_public_key != seen.operator_key:
        raise StaleCopy("the copy's operator key is not the one verified before")
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        log.catch_up()
        if log.current_size() != seen.size:
            raise StaleCopy(f"the copy holds {log.current_size()} entries, not the "
                            f"{seen.size} verified before")
        tree = merkle.CompactRange.of_peaks(seen.size, log.peaks(seen.size))
        if tree.root() != seen.root:
            raise StaleCopy("the copy's log no longer gives the root verified before")
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.size < seen.size:
            fail(Failure(f"the log has {checkpoint.size} entries; {seen.size} were verified "
                         f"here before: it was cut back"))
            return report
        if [e.log_index for e in new] != list(range(seen.size, checkpoint.size)):
            raise InvalidInput(f"the entries after {seen.size} must be those up to the "
                               f"checkpoint's size {checkpoint.size}, in log order")
        for item in new:
            tree.append(merkle.leaf_hash(item.text.encode()))
        if tree.root() != checkpoint.root:
            fail(Failure(f"the {seen.size} entries verified here before and the {len(new)} "
                         f"served since do not give the checkpoint's root: the log was "
                         f"rewritten, or the entries served are not its own"))
            return report
        report.checks.append(f"consistent with the checkpoint of size {seen.size} verified "
                             f"here before: its entries, and the {len(new)} since, give the "
                             f"root of size {checkpoint.size}")
        replayed = _replay_new(ledger, identity.origin, new, report)
        keys = {**models.signatory_keys(), **partner_keys(list(replayed.values()))}
        check_checkpoint(note, identity.origin, identity.operator, identity.operator_public_key,
                         keys, report)
        report.checks.append(f"each of the {len(new)} new entries: read strictly, its place "
                             f"in its agreement's chain, its signature by the key its partner "
                             f"held, every rule replayed on the agreement as verified before")
        report.entries = checkpoint.size
        report.agreements = len(ledger.references())
        if report.ok:
            if new:
                kept = _kept_checkpoint(note, identity.origin, identity.operator,
                                        identity.operator_public_key, keys)
                ledger.store_verified([ledger.stored_event(e) for e in new]
                                      + ledger.checkpoint_events_of(kept))
            else:
                # The checkpoint verified before: only the cosignatures made since are new.
                for witness, public, sig in _cosignatures(note, keys):
                    ledger.add_cosignature(checkpoint.size, witness, public, sig)
    finally:
        models.close()
    return report


def _replay_new(ledger: Ledger, origin: str, new: Sequence[BundleEntry],
                report: Report) -> dict[str, Agreement]:
    """Each agreement the new entries touch, with them replayed (every rule and signature)
    after what the copy holds of it; a failure names the first entry that breaks a rule."""
    touched: dict[str, list[BundleEntry]] = {}
    for item in new:
        touched.setdefault(item.agreement, []).append(item)
    replayed: dict[str, Agreement] = {}
    for reference, items in touched.items():
        try:
            start = ledger.agreement(reference) if ledger.exists(reference) else None
            replayed[reference] = Agreement.replay(
                [(Entry.parse(item.text), item.recorded) for item in items], origin,
                start=start)
        except LedgerError as exc:
            report.failures.append(Failure(f"agreement {reference}: {exc.diagnostics()}"))
    return replayed


def _empty_ledger(location: Location, bundle: BundleHead) -> tuple[Ledger, bool]:
    """The ledger to import into, and whether it already has the bundle's identity."""
    ledger = Ledger(location, create=True)
    if not ledger.is_initialised():
        return ledger, False
    identity = ledger.identity
    if identity.origin != bundle.origin or identity.operator_public_key != bundle.operator_key:
        ledger.close()
        raise InvalidInput(f"{location.describe()} is the ledger {identity.origin!r}; import "
                           f"into an empty ledger or a new file")
    if len(ledger.recorder.select_notifications(1, 2)) > 1:
        ledger.close()
        raise StorageError(f"{location.describe()} already holds entries; import into an "
                           f"empty ledger or a new file")
    return ledger, True


# --- the operator's checkpoint, a partner's cosignature ------------------------------------------


def make_checkpoint(ledger: Ledger, signer: Signer, memory: WitnessState | None = None,
                    progress: Progress | None = None) -> CheckpointRecord:
    """Sign a checkpoint of the log as its entries give it, never as its tables say.

    The whole log is verified first (every entry, the tree recomputed from the entries, the
    stored tree against it, every earlier checkpoint against the entries, and the last
    checkpoint this operator signed, as it remembers it outside the database: ``memory``);
    anything wrong refuses the checkpoint, naming it. The root signed is the recomputed one,
    and the operator remembers it.
    """
    identity = ledger.identity
    if signer.public_key != identity.operator_public_key:
        raise InvalidInput("that key is not this ledger's operator key; sign checkpoints with "
                           "the key 'ledger init' made")
    report = verify_ledger(ledger, progress=progress, read_models=False,
                           remembered=remembered(memory, "the operator") if memory else ())
    refuse_unless_verified(report, "no checkpoint was signed")
    assert report.log_size is not None
    assert report.log_root is not None
    if report.log_size == 0:
        raise InvalidInput("the log is empty; there is nothing to checkpoint yet")
    note = signed_checkpoint(identity.origin, report.log_size, report.log_root,
                             identity.operator, signer)
    record = ledger.record_checkpoint(note)
    if memory is not None:
        memory.remember(identity.origin, record.checkpoint, signer.public_key, record.note)
    return record


def remembered(memory: WitnessState, who: str) -> list[Remembered]:
    """The checkpoints a memory holds, one per ledger, as :func:`verify_ledger` takes them."""
    return [Remembered(who, origin, seen.size, seen.root)
            for origin, seen in memory.ledgers.items()]


def refuse_unless_verified(report: Report, what: str) -> None:
    """Raise :class:`VerificationFailed` naming the first failure, saying ``what`` was not
    done, unless everything checked out."""
    if not report.ok:
        more = f" (and {len(report.failures) - 1} more)" if len(report.failures) > 1 else ""
        raise VerificationFailed(f"REFUSED, {what}: the record does not check out: "
                                 f"{report.failures[0].line()}{more}; 'ledger verify' lists "
                                 f"every failure")


@dataclass(frozen=True)
class Cosigned:
    """A cosignature made: the checkpoint, and the size of the one cosigned before."""

    checkpoint: Checkpoint
    note: SignedNote
    previous: int | None


def cosign_latest(ledger: Ledger, partner: str, memory: WitnessState,
                  signer_for: Callable[[set[bytes]], Signer],
                  progress: Progress | None = None) -> Cosigned:
    """A partner, as a witness, cosigns the latest checkpoint (C2SP tlog-cosignature).

    Only after the whole log checks out (the checkpoint's root is the one its entries give),
    the operator key is the one this partner saw before, and the checkpoint extends the last
    one this partner cosigned (``memory``): a forked or rewritten log is refused. The
    cosignature is made with a key the partner acts with now, chosen by ``signer_for`` among
    them, under its partner id, which must stand for one partner in this ledger.
    """
    identity = ledger.identity
    seen = memory.get(identity.origin)
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        # Read first, so that the verification below, which begins later, covers it.
        latest = log.latest_checkpoint()
        if latest is None:
            raise NotFound("no checkpoint to cosign yet; the operator makes one with "
                           "'ledger checkpoint'")
        cp = latest.checkpoint
        operator_key = identity.operator_public_key
        check_operator_key(partner, seen, operator_key)  # before the long verification
        report = verify_ledger(ledger, progress=progress, read_models=False)
        refuse_unless_verified(report, f"{partner} did not cosign")
        proof = [] if seen is None or seen.size in (0, cp.size) or cp.size < seen.size else (
            log.consistency(seen.size, cp.size))
        witnesses = report.witnesses
        signer = signer_for(witnesses.current.get(partner, set()))
        witnesses.check(partner, signer.public_key, now=True)
        check_may_cosign(partner, seen, operator_key, cp, proof, latest.cosigners)
        signature = cosign(cp.body(), partner, signer.private_key, int(time.time()))
        ledger.add_cosignature(cp.size, partner, signer.public_key, signature)
    finally:
        models.close()
    memory.remember(identity.origin, cp, operator_key, latest.note.format())
    return Cosigned(cp, latest.note, seen.size if seen else None)
