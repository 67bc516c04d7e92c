"""Operations timed in a process of their own (for wall time and peak memory).

``python -m benchmarks.tasks TASK URL [ARG]`` runs one task on the ledger at URL and prints one
JSON line: how many entries it handled, the seconds the task itself took (after imports), and
the process's peak resident memory. Each baseline is measured the same way, in the same run.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _peak_mb() -> float:
    """This process's peak resident memory, with that of any worker processes it ran.

    VmHWM, not ru_maxrss: after fork and exec, ru_maxrss still holds the parent's peak.
    """
    status = Path("/proc/self/status")
    own = 0.0
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    else:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own + children


def _cpu() -> float:
    """CPU seconds of this process and of the worker processes it has waited for, and of the
    PostgreSQL server's processes on this machine (its work shares the same cores)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime + _server_cpu()


def _server_cpu() -> float:
    """CPU seconds the local PostgreSQL server's processes have used (0 without one)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # a process that ended meanwhile
        name, _, rest = text.partition(") ")
        if name.endswith("(postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def verify(url: str, workers: str = "0") -> dict[str, Any]:
    """The full ``ledger verify`` (``workers``: how many processes; 0, one per core)."""
    from ledger.application import Ledger  # noqa: PLC0415 - timed imports stay out
    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.audit import verify_ledger  # noqa: PLC0415

    ledger = Ledger(parse_location(url))
    started, cpu = time.perf_counter(), _cpu()
    report = verify_ledger(ledger, workers=int(workers) or None)
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"verification failed: {report.failures[0].line()}")
    return {"entries": report.entries, "seconds": seconds, "cpu_seconds": _cpu() - cpu}


def rebuild(url: str, workers: str = "0") -> dict[str, Any]:
    """``ledger rebuild``: every read model and the log from the event store (``workers``:
    how many processes replay the agreements; 0, one per core)."""
    from ledger.application import Ledger  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.db import default_workers  # noqa: PLC0415
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

    ledger = Ledger(parse_location(url))
    models = ReadModels(ledger)
    started, cpu = time.perf_counter(), _cpu()
    entries = models.rebuild(workers=int(workers) or default_workers())
    MerkleLog(models).catch_up()
    return {"entries": entries, "seconds": time.perf_counter() - started,
            "cpu_seconds": _cpu() - cpu}


def select(url: str) -> dict[str, Any]:
    """Baseline of rebuild: read every row of the notification log."""
    from ledger.application import Ledger  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415

    ledger = Ledger(parse_location(url))
    started = time.perf_counter()
    rows, position = 0, 1
    while True:
        batch = ledger.recorder.select_notifications(position, 2000)
        rows += len(batch)
        if len(batch) < 2000:
            break
        position = batch[-1].id + 1
    return {"entries": rows, "seconds": time.perf_counter() - started}


def import_bundle(url: str, path: str) -> dict[str, Any]:
    """``ledger import``: a whole-ledger bundle into an empty ledger, read entry by entry (a
    bundle in lines) or whole (a document)."""
    from commands.common import many_objects  # noqa: PLC0415
    from ledger.bundle import open_bundle  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.audit import import_bundle as load  # noqa: PLC0415
    from projections.db import default_workers  # noqa: PLC0415

    # What `ledger import FILE` does, from reading the file to the last entry stored.
    started = time.perf_counter()
    with many_objects(), open_bundle(Path(path)) as source:
        report = load(parse_location(url), source)
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"import refused: {report.failures[0].line()}")
    return {"entries": report.read, "seconds": seconds, "workers": default_workers()}


def raw_verify(_url: str, count: str = "3000") -> dict[str, Any]:
    """Baseline: bare Ed25519 verifications on one core, of entry-sized messages."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [os.urandom(900) for _ in range(int(count))]
    signatures = [key.sign(m) for m in messages]
    started = time.perf_counter()
    for message, signature in zip(messages, signatures, strict=True):
        public.verify(signature, message)
    return {"entries": len(messages), "seconds": time.perf_counter() - started}


def raw_verify_sodium(_url: str, count: str = "3000") -> dict[str, Any]:
    """Bare Ed25519 verifications with libsodium (what verification uses past its first
    checks), on one core, of entry-sized messages."""
    from nacl.bindings import crypto_sign_open  # noqa: PLC0415

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    signed = [key.sign(m) + m for m in (os.urandom(900) for _ in range(int(count)))]
    started = time.perf_counter()
    for message in signed:
        crypto_sign_open(message, public)
    return {"entries": len(signed), "seconds": time.perf_counter() - started}


def replay(_url: str, path: str) -> dict[str, Any]:
    """Where verification's floor is: a bundle's agreements replayed in this one process.

    Each entry read strictly and every rule checked, its signature included, as ``verify`` and
    ``import`` do, but nothing read from a store, no tree, no read models.
    """
    from ledger.bundle import ReplayItem, _Replays, open_bundle  # noqa: PLC0415

    with open_bundle(Path(path)) as source:
        items: list[ReplayItem] = [(e.agreement, e.text, e.recorded, e.last)
                              for batch in source.batches() for e in batch]
        origin = source.head.origin
    replays = _Replays(origin)
    started = time.perf_counter()
    entries, _, failures, _ = replays.add(items)
    failures += replays.end()[2]
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"replay failed: {failures[0].line()}")
    return {"entries": entries, "seconds": seconds}


def rebuild_replay(url: str) -> dict[str, Any]:
    """Where rebuild's other floor is: what its workers do, in this one process. Every
    agreement restored from its stored entries and its rows made (:func:`rows_for`), nothing
    written; the CPU time it takes."""
    from ledger.application import Ledger  # noqa: PLC0415
    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415
    from projections.rows import rows_for  # noqa: PLC0415

    ledger = Ledger(parse_location(url))
    models = ReadModels(ledger)
    ids = list(models.agreement_ids())
    started, entries = time.process_time(), 0
    for uuid in ids:
        agreement = ledger.restored(uuid)
        rows_for(agreement)
        entries += agreement.version
    return {"entries": entries, "seconds": time.process_time() - started}


def inserts(url: str) -> dict[str, Any]:
    """Where rebuild's floor is: SQLite's own time to insert the rows a rebuild writes.

    Every row of the read models and the log, read back from the (rebuilt) ledger, inserted
    again through the driver's executemany into empty tables of the same schema and indexes
    in a scratch file; only the inserts and their commit are timed.
    """
    import sqlite3  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from ledger.storage import parse_location  # noqa: PLC0415
    from projections.models import Base  # noqa: PLC0415

    location = parse_location(url)
    assert location.path is not None, "SQLite only"
    source = sqlite3.connect(location.path)
    entries = source.execute("SELECT count(*) FROM log_leaves").fetchone()[0]
    with tempfile.TemporaryDirectory() as scratch:
        target = sqlite3.connect(Path(scratch) / "inserts.db", isolation_level=None)
        target.execute("PRAGMA journal_mode=WAL")
        seconds = 0.0
        for table in Base.metadata.sorted_tables:
            schema = [row[0] for row in source.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
                (table.name,))]
            for statement in schema:
                target.execute(statement)
            rows = source.execute(f'SELECT * FROM "{table.name}"').fetchall()
            if not rows:
                continue
            marks = ", ".join("?" for _ in rows[0])
            started = time.perf_counter()
            target.execute("BEGIN")
            target.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)
            target.execute("COMMIT")
            seconds += time.perf_counter() - started
        target.close()
    return {"entries": entries, "seconds": seconds}


def payments(agreement: Any) -> tuple[list[tuple[str, Any, str]], dict[str, Any]]:
    """The confirmed lines of active partners an agreement can be paid against, and the
    signer of each partner's current key (the synthetic partners' fixed keys)."""
    from benchmarks.synthetic import partner_key  # noqa: PLC0415

    payable = [(p, y, s) for (p, y, s), line in agreement.funding.items()
               if line.status == "confirmed" and p in agreement.partners
               and agreement.partners[p].active]
    signers = {}
    for slot in range(8):
        for generation in (0, 1):
            signer = partner_key(slot, generation)
            signers[signer.public_key] = signer
    held = {p.id: signers.get(p.current.public_key) for p in agreement.partners.values()}
    payable = [line for line in payable if held.get(line[0]) is not None]
    return payable, {partner: signer for partner, signer in held.items() if signer is not None}


def service_client(url: str, reference: str, count: str, start_at: str) -> dict[str, Any]:
    """One partner's ``ledger`` against a service: ``count`` payments into one agreement,
    each signed here and posted, from the moment ``start_at`` (so that every client starts
    together, after its imports); the latency of each."""
    from decimal import Decimal  # noqa: PLC0415

    from commands.remote import RemoteLedger  # noqa: PLC0415

    remote = RemoteLedger(url)
    payable, signers = payments(remote.agreement(reference))
    time.sleep(max(0.0, float(start_at) - time.time()))
    started = time.time()
    latencies = []
    for i in range(int(count)):
        partner, year, source = payable[i % len(payable)]
        begun = time.perf_counter()
        remote.pay(reference, partner, year, Decimal("0.01"), source, signers[partner])
        latencies.append(time.perf_counter() - begun)
    return {"started": started, "ended": time.time(), "latencies": latencies}


TASKS = {"verify": verify, "rebuild": rebuild, "select": select, "import": import_bundle,
         "raw-verify": raw_verify, "replay": replay, "inserts": inserts,
         "rebuild-replay": rebuild_replay, "raw-verify-sodium": raw_verify_sodium,
         "service-client": service_client}

if __name__ == "__main__":
    result = TASKS[sys.argv[1]](*sys.argv[2:])
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result))
