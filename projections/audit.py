"""The whole audit of a ledger, and its bundles: what ``verify``, ``export`` and ``import`` do.

Verification checks each agreement on its own (signatures, chain, keys, rules, read-model rows),
so a large ledger's agreements are shared out between worker processes, one per core, while
this process streams the log against the stored tree. The checkpoints are checked last, once the
workers have said which keys each partner held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.bundle import Bundle, BundleEntry, partner_keys, verify_bundle
from ledger.domain import Agreement, agreement_id
from ledger.errors import InvalidInput, NotFound, StorageError, VerificationFailed
from ledger.note import COSIGNATURE_KEY_TYPE, note_key_id
from ledger.storage import Location
from ledger.verify import Failure, Report, drafted_agreements, verify_agreements
from projections.check import ReadModelCheck
from projections.db import default_workers
from projections.log import MerkleLog
from projections.logcheck import LogCheck
from projections.readmodels import ReadModels

Progress = Callable[[int], None]

#: Below this many agreements, starting worker processes costs more than it saves.
PARALLEL_FROM = 64
CHUNK = 32


@dataclass
class _Partial:
    """What one worker found in its share of the agreements."""

    report: Report
    keys: dict[str, set[bytes]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    table_failures: list[Failure] = field(default_factory=list)


_worker: dict[str, Any] = {}


def _start_worker(location: Location, skip_tables: bool) -> None:
    ledger = Ledger(location)
    models = ReadModels(ledger)
    _worker.update(ledger=ledger, models=models, skip=skip_tables)


def _check_share(agreements: Sequence[tuple[UUID, str | None]]) -> _Partial:
    ledger: Ledger = _worker["ledger"]
    models: ReadModels = _worker["models"]
    tables = ReadModelCheck(models, skip=_worker["skip"])
    tree = LogCheck(MerkleLog(models))

    def visit(agreement: Agreement, whole: bool) -> None:
        tables(agreement, whole)
        tree(agreement, whole)

    report = verify_agreements(ledger, agreements, visit=visit)
    tables.flush()
    return _Partial(report, tree.partner_keys, tables.seen, tables.failures)


def verify_ledger(ledger: Ledger, reference: str | None = None,
                  progress: Progress | None = None, workers: int | None = None) -> Report:
    """Check the whole record (or one agreement): entries, log, checkpoints, read models."""
    if reference is not None and not ledger.exists(reference):
        raise NotFound(f"there is no agreement {reference!r} in this ledger; "
                       f"'ledger list' shows them")
    models = ReadModels(ledger)
    try:
        stale: Failure | None = None
        try:
            models.catch_up()
        except VerificationFailed as exc:
            # Entries deleted or moved stop the read models short; the checks below name them.
            stale = Failure(f"read models cannot be brought up to date: {exc.diagnostics()}")
        # Read models that could not catch up are behind for every agreement in the batch
        # that failed, intact ones included: compare them only when they are current.
        tables = ReadModelCheck(models, skip=True if stale is not None else None)
        tree = LogCheck(MerkleLog(models))
        if reference is not None:
            drafted: dict[UUID, str | None] = {agreement_id(reference): reference}
            orphans: list[Failure] = []
        else:
            # Entries that belong to no drafted agreement are found by the log's pass over
            # every entry, rather than by a pass of their own.
            drafted, orphans = drafted_agreements(ledger, orphans=False)
            tree.drafted = set(drafted)
            tree.log.catch_up()
        shares = list(drafted.items())
        count = workers if workers is not None else default_workers()
        report = Report(failures=list(orphans))
        if count > 1 and len(shares) >= PARALLEL_FROM:
            _in_parallel(ledger.location, shares, count, report, tables, tree, progress)
        else:
            def visit(agreement: Agreement, whole: bool) -> None:
                tables(agreement, whole)
                tree(agreement, whole)
            found = verify_agreements(ledger, shares, progress, visit)
            report.agreements, report.entries = found.agreements, found.entries
            report.failures.extend(found.failures)
            if reference is None:
                tree.check_log(progress)
        report.checks.append("signatures, seq/prev chains, keys and rules of every entry")
        if stale is not None:
            report.failures.append(stale)
        if reference is None:
            tree.finish(report)
        tables.finish(report, whole_ledger=reference is None)
    finally:
        models.close()
    return report


def _in_parallel(location: Location, shares: list[tuple[UUID, str | None]], workers: int,
                 report: Report, tables: ReadModelCheck, tree: LogCheck,
                 progress: Progress | None) -> None:
    chunks = [shares[i:i + CHUNK] for i in range(0, len(shares), CHUNK)]
    # "spawn": a forked child would share this process's open database connections.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(location, tables.skip)) as pool:
        futures = [pool.submit(_check_share, chunk) for chunk in chunks]
        # While the workers check agreements, this process checks the log against the tree.
        tree.check_log(progress)
        for future in futures:
            part = future.result()
            report.agreements += part.report.agreements
            report.entries += part.report.entries
            report.failures.extend(part.report.failures)
            tables.failures.extend(part.table_failures)
            tables.seen |= part.seen
            for partner, keys in part.keys.items():
                tree.partner_keys.setdefault(partner, set()).update(keys)
            if progress is not None:
                progress(part.report.entries)


# --- bundles ------------------------------------------------------------------------------------


def export_bundle(ledger: Ledger, reference: str | None = None,
                  progress: Progress | None = None) -> Bundle:
    """A bundle of one agreement (or the whole ledger) against the latest checkpoint."""
    identity = ledger.identity
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        log.catch_up()
        latest = log.latest_checkpoint()
        if latest is None:
            raise NotFound("no checkpoint yet; the operator makes one with 'ledger checkpoint'")
        cp = latest.checkpoint
        references = [reference] if reference else [r["reference"] for r in models.list()]
        agreements = [ledger.agreement(ref) for ref in references]
        entries = []
        for agreement in agreements:
            indexes = log.indexes(agreement.reference)
            newer = [seq for seq, index in indexes.items() if index >= cp.size]
            if newer:
                raise InvalidInput(
                    f"entry {min(newer)} of {agreement.reference!r} is newer than the latest "
                    f"checkpoint (size {cp.size}); make a checkpoint first")
            proofs = log.inclusions(indexes.values(), cp.size)
            for act in agreement.history:
                index = indexes[act.entry.statement.seq]
                entries.append(BundleEntry.of(index, act.recorded, act.entry,
                                              tuple(proofs[index])))
            if progress is not None:
                progress(agreement.version)
        if reference is None and len(entries) != cp.size:
            raise InvalidInput(f"the ledger has {log.current_size()} entries and the latest "
                               f"checkpoint covers {cp.size}; make a checkpoint first")
    finally:
        models.close()
    entries.sort(key=lambda e: e.log_index)
    return Bundle(identity.origin, identity.operator, identity.operator_public_key,
                  latest.note, reference is None, tuple(references), partner_keys(agreements),
                  tuple(entries))


def import_bundle(location: Location, bundle: Bundle,
                  expected_operator_key: bytes | None = None,
                  workers: int | None = None) -> Report:
    """Check a bundle and, only if every check passes, load it into an empty ledger.

    Returns the verification report; a failing bundle is returned unloaded, nothing written.
    """
    report = verify_bundle(bundle, expected_operator_key,
                           workers if workers is not None else default_workers())
    if not report.ok:
        return report
    ledger = _empty_ledger(location, bundle)
    try:
        # Every entry was read strictly and replayed by the verification just passed.
        in_log_order = sorted(bundle.entries, key=lambda e: e.log_index)
        ledger.store_verified(in_log_order)
        if bundle.whole_ledger:
            # The copy's log is the original's, so its checkpoint and cosignatures hold too.
            signatures = bundle.checkpoint.signatures
            operator_only = type(bundle.checkpoint)(bundle.checkpoint.text, tuple(
                s for s in signatures if s.name == bundle.operator))
            size = ledger.record_checkpoint(operator_only).checkpoint.size
            for sig in signatures:
                for partner, public in bundle.keys.values():
                    if partner == sig.name and sig.key_id == note_key_id(
                            partner, public, COSIGNATURE_KEY_TYPE):
                        ledger.add_cosignature(size, partner, public, sig)
        # The read models and the log catch up at the copy's first read, as after any act.
    finally:
        ledger.close()
    return report


def _empty_ledger(location: Location, bundle: Bundle) -> Ledger:
    ledger = Ledger(location, create=True)
    if not ledger.is_initialised():
        ledger.initialise(bundle.origin, bundle.operator, bundle.operator_key)
        return ledger
    identity = ledger.identity
    if identity.origin != bundle.origin or identity.operator_public_key != bundle.operator_key:
        ledger.close()
        raise InvalidInput(f"{location.describe()} is the ledger {identity.origin!r}; import "
                           f"into an empty ledger or a new file")
    if next(ledger.stored_entries(), None) is not None:
        ledger.close()
        raise StorageError(f"{location.describe()} already holds entries; import into an "
                           f"empty ledger or a new file")
    return ledger
