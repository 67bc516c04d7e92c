"""The benchmark: every figure beside a baseline measured in the same run, on the same machine.

See ``benchmarks/RESULTS.md`` for the latest full run and what each optimisation changed.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.sqlite import SQLiteApplicationRecorder

from benchmarks.synthetic import ORIGIN, build, partner_key
from ledger.application import Ledger
from ledger.checkpoints import signed_checkpoint
from ledger.errors import LedgerError
from ledger.storage import Location, parse_location

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Figure:
    """One line of the table."""

    name: str
    value: float
    unit: str
    baseline: float | None
    baseline_name: str
    ratio: float | None
    target: str
    met: bool | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


def _task(name: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.tasks", name, *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark task {name} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class _Baseline(Aggregate):
    """An unsigned event of an entry's size, saved by bare eventsourcing."""

    @event("Created")
    def __init__(self) -> None:
        pass

    @event("Noted")
    def note(self, entry: str) -> None:
        pass


class _BaselineApp(Application):  # type: ignore[type-arg]
    name = "baseline"


class _BaselineRecorder(SQLiteApplicationRecorder):
    """Bare eventsourcing's SQLite recorder, on a table of its own in the ledger's file."""

    def __init__(self, datastore: Any, events_table_name: str = "bench_baseline_events") -> None:
        super().__init__(datastore, events_table_name)


def _location(base: str | None, work: Path, name: str) -> tuple[str, Location]:
    if base and base.startswith("postgres"):
        import psycopg  # noqa: PLC0415
        from psycopg import sql  # noqa: PLC0415

        schema = f"bench_{name}_{os.getpid()}"
        location = parse_location(base)
        with psycopg.connect(**location.connect_args(), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)))
        sep = "&" if "?" in base else "?"
        url = f"{base}{sep}schema={schema}"
    else:
        url = str(work / f"{name}.db")
    return url, parse_location(url)


def _prepare(location: Location, entries: int) -> tuple[int, float]:
    ledger = Ledger(location, create=True)
    ledger.initialise(ORIGIN, "operator", partner_key(99).public_key)
    started = time.perf_counter()
    _agreements, total = build(ledger, entries)
    seconds = time.perf_counter() - started
    ledger.close()
    return total, seconds


def _checkpoint(location: Location) -> int:
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

    ledger = Ledger(location)
    models = ReadModels(ledger)
    try:
        models.catch_up()
        log = MerkleLog(models)
        size = log.current_size()
        ledger.record_checkpoint(signed_checkpoint(ORIGIN, size, log.root(size), "operator",
                                                   partner_key(99)))
        log.catch_up()
        return size
    finally:
        models.close()
        ledger.close()


def _acts(location: Location, count: int) -> tuple[float, float]:
    """Signed acts per second through the core, and bare saves per second, same store."""
    ledger = Ledger(location)
    reference = "agreement-0000000"
    agreement = ledger.agreement(reference)
    payable = [(p, y, s) for (p, y, s), line in agreement.funding.items()
               if line.status == "confirmed" and p in agreement.partners
               and agreement.partners[p].active]
    keys = {p.id: p.current.public_key for p in agreement.partners.values()}
    signers = {}
    for slot in range(8):
        for generation in (0, 1):
            signer = partner_key(slot, generation)
            signers[signer.public_key] = signer
    started = time.perf_counter()
    for i in range(count):
        partner, year, source = payable[i % len(payable)]
        ledger.pay(reference, partner, year, Decimal("0.01"), source, signers[keys[partner]])
    core = count / (time.perf_counter() - started)
    # The baseline's event carries an entry of the same size as the acts just made.
    text = ledger.agreement(reference).history[-1].entry.text
    ledger.close()
    # The same store: the ledger's own database (file or schema), in a table of its own.
    env = location.eventsourcing_env()
    if location.is_sqlite:
        env["APPLICATION_RECORDER_TOPIC"] = "benchmarks.run:_BaselineRecorder"
    app = _BaselineApp(env=env)
    aggregate = _Baseline()
    app.save(aggregate)
    started = time.perf_counter()
    for _ in range(count):
        aggregate.note(text)
        app.save(aggregate)
    bare = count / (time.perf_counter() - started)
    app.close()
    return core, bare


def _service(url: str, location: Location, clients: int, acts: int) -> dict[str, float]:
    """Signed acts per second through ``ledger serve`` with ``clients`` concurrent clients
    (each its own process and agreement), the same acts through the core in this process,
    and the p50 and p99 latency of one act through the service."""
    from benchmarks.tasks import payments  # noqa: PLC0415

    per_client = max(1, acts // clients)
    ledger = Ledger(location)
    # Agreements a payment can be made into (in force, a confirmed line of an active partner
    # whose key is at hand), one for each client: a first payment into each shows which.
    references: list[str] = []
    for n in range(10 * clients):
        reference = f"agreement-{n:07d}"
        if len(references) == clients or not ledger.exists(reference):
            break
        payable, signers = payments(ledger.agreement(reference, copy=False))
        if not payable:
            continue
        partner, year, source = payable[0]
        try:
            ledger.pay(reference, partner, year, Decimal("0.01"), source, signers[partner])
        except LedgerError:
            continue
        references.append(reference)
    if len(references) < clients:
        raise SystemExit(f"only {len(references)} agreements take payments; build more entries")
    started = time.perf_counter()
    for n in range(per_client):
        for reference in references:
            agreement = ledger.agreement(reference, copy=False)
            payable, signers = payments(agreement)
            partner, year, source = payable[n % len(payable)]
            ledger.pay(reference, partner, year, Decimal("0.01"), source, signers[partner])
    core = per_client * clients / (time.perf_counter() - started)
    ledger.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    beside = Path(sys.executable).with_name("ledger")
    command = [str(beside)] if beside.exists() else [sys.executable, "-c",
                                                     "from commands.entry import main; main()"]
    workers = "1" if location.is_sqlite else str(os.cpu_count() or 1)
    server = subprocess.Popen([*command, "serve", "--ledger", url, "--port", str(port),
                               "--workers", workers], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        service = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(service + "/healthz", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("ledger serve did not start") from None
                time.sleep(0.1)
        start_at = time.time() + 3 + clients * 0.4  # every client imported and ready
        procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.tasks", "service-client",
                                   service, reference, str(per_client), str(start_at)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for reference in references]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"a service client failed:\n{err}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=60)
    latencies = sorted(x for r in results for x in r["latencies"])
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {"service": len(latencies) / wall, "core": core,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


#: The floor of a command's start-up: Python with the two libraries every act needs loaded.
FLOOR = "import sqlite3, cryptography.hazmat.primitives.asymmetric.ed25519"
#: The passphrase of the start-up ledger's keys (made for the run, thrown away with it).
_STARTUP_PASSPHRASE = "start-up benchmark only"


def _startup(ledger_cmd: str, status_url: str, work: Path, rounds: int) -> dict[str, float]:
    """Wall time of whole ``ledger`` processes beside the floor, in the same rounds: the median
    of each. The act is a payment on a small SQLite ledger, signed with a key at the scrypt
    cost every new key gets; ``status`` reads the benchmark's largest ledger."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

    from commands.demo import REFERENCE, record_salford  # noqa: PLC0415
    from ledger.keystore import KeyStore  # noqa: PLC0415

    folder = work / "startup"
    store = KeyStore(folder / "keys")
    secret = _STARTUP_PASSPHRASE.encode()
    council, pct, operator = (store.open(store.create(name, secret).name, secret)
                              for name in ("salford-city-council", "salford-pct", "operator"))
    db = str(folder / "acts.db")
    ledger = Ledger(parse_location(db), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", operator.public_key)
        record_salford(ledger, council, pct)
    finally:
        ledger.close()
    # As an installed program runs: with its modules' bytecode cached (the first, untimed
    # round writes it where the environment would otherwise forbid it).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LEDGER_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LEDGER_KEYS=str(store.folder), LEDGER_PASSPHRASE=_STARTUP_PASSPHRASE)
    commands = {
        "floor": [sys.executable, "-c", FLOOR],
        "help": [ledger_cmd, "--help"],
        "act": [ledger_cmd, "contribute", REFERENCE, "--as", "salford-pct", "--year",
                "2004/05", "--amount", "0.01", "--paid", "--source", "PCT mainstream",
                "--ledger", db],
        "status": [ledger_cmd, "status", "agreement-0000001", "--ledger", status_url],
    }
    times: dict[str, list[float]] = {name: [] for name in [*commands, "key"]}
    pem = (store.folder / "salford-pct.pem").read_bytes()
    for round_ in range(rounds + 1):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=folder, env=env, capture_output=True, check=True)
            if round_:
                times[name].append(time.perf_counter() - started)
        # What the act spends opening its key (scrypt, by design), timed in this process.
        started = time.perf_counter()
        load_pem_private_key(pem, secret)
        times["key"].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _proofs(location: Location) -> tuple[float, int, int]:
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

    ledger = Ledger(location)
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        size = log.current_size()
        rng = random.Random(3)
        times, longest = [], 0
        for _ in range(200):
            index = rng.randrange(size)
            started = time.perf_counter()
            proof = log.inclusion(index, size)
            times.append(time.perf_counter() - started)
            longest = max(longest, len(proof))
        return max(times) * 1000, longest, size
    finally:
        models.close()
        ledger.close()


def _export(location: Location, path: Path) -> None:
    """A whole-ledger bundle in lines, as ``ledger export -o FILE.jsonl`` writes it."""
    from projections.audit import export_bundle  # noqa: PLC0415

    ledger = Ledger(location)
    try:
        bundle = export_bundle(ledger, proofs=False)
    finally:
        ledger.close()
    with path.open("wb") as file:
        bundle.write_lines(file)


def run(entries: int, base: str | None, work: Path, quick: bool) -> dict[str, Any]:
    """Build the ledgers, measure every figure, return the table."""
    small_entries = max(1000, entries // 10)
    url, location = _location(base, work, f"n{entries}")
    small_url, small_location = _location(base, work, f"n{small_entries}")
    built, build_seconds = _prepare(location, entries)
    small, _ = _prepare(small_location, small_entries)
    acts = 300 if quick else 2000
    core, bare = _acts(location, acts)
    size = _checkpoint(location)
    _checkpoint(small_location)
    figures: list[Figure] = []
    figures.append(Figure("signed acts per second through the core", core, "acts/s", bare,
                          "bare eventsourcing save of an unsigned event, same store",
                          core / bare, ">= 0.6 x baseline", core / bare >= 0.6))
    # Each figure's baseline is measured just before it (the median of three rounds): the
    # machine's speed drifts over a long run, and a ratio compares two moments that are close.
    def raw_rate() -> float:
        rounds = [_task("raw-verify", url, "2000" if quick else "5000") for _ in range(3)]
        return statistics.median(r["entries"] / r["seconds"] for r in rounds)

    # Import: the whole ledger's bundle in lines, read entry by entry, and the one-tenth
    # ledger's beside it for the memory figure.
    bundle_path, small_bundle_path = work / "bundle.jsonl", work / "bundle-small.jsonl"
    _export(location, bundle_path)
    _export(small_location, small_bundle_path)
    target_url, _ = _location(base, work, "imported")
    small_target_url, _ = _location(base, work, "imported_small")
    raw = raw_rate()
    imported = _task("import", target_url, str(bundle_path))
    imported_small = _task("import", small_target_url, str(small_bundle_path))
    import_rate = imported["entries"] / imported["seconds"]
    cores = int(imported["workers"])
    figures.append(Figure(f"bulk import of an exported bundle ({imported['entries']} entries)",
                          import_rate, "entries/s", raw * cores,
                          f"raw Ed25519 verifications/s x {cores} cores",
                          import_rate / (raw * cores), ">= 0.5 x baseline",
                          import_rate >= 0.5 * raw * cores))
    raw = raw_rate()
    verified = _task("verify", url)
    verified_small = _task("verify", small_url)
    verify_rate = verified["entries"] / verified["seconds"]
    figures.append(Figure("full verify", verify_rate, "entries/s", raw,
                          "raw Ed25519 verifications/s on one core", verify_rate / raw,
                          ">= 1.5 x baseline on 2 cores", verify_rate >= 1.5 * raw))
    rebuilt = _task("rebuild", url)
    rebuilt_small = _task("rebuild", small_url)
    selected = _task("select", url)
    rebuild_rate = rebuilt["entries"] / rebuilt["seconds"]
    select_rate = selected["entries"] / selected["seconds"]
    figures.append(Figure("projection rebuild", rebuild_rate, "entries/s", select_rate,
                          "recorder.select_notifications rows/s", rebuild_rate / select_rate,
                          ">= 0.3 x baseline", rebuild_rate >= 0.3 * select_rate))
    # The installed command beside this interpreter (a venv need not be activated).
    beside = Path(sys.executable).with_name("ledger")
    ledger_cmd = str(beside) if beside.exists() else (shutil.which("ledger") or "ledger")
    # Start-up: whole processes beside the floor, each target a margin over it.
    startup = _startup(ledger_cmd, url, work, 5 if quick else 11)
    floor = startup["floor"]
    floor_name = f'python -c "{FLOOR}"'
    for key, name, margin in (
            ("help", "ledger --help wall time", 0.15),
            ("act", "an act on SQLite wall time (ledger contribute --paid)", 0.25),
            ("status", "ledger status REF wall time on the largest ledger", 0.25)):
        value = startup[key]
        figures.append(Figure(name, value, "s", floor, floor_name, value - floor,
                              f"<= baseline + {margin} s", value <= floor + margin))
    figures.append(Figure("of which the act's opening of its key (scrypt N=2^14, r=8, p=5)",
                          startup["key"], "s", None, "timed in-process, the same rounds", None,
                          "reported", True))
    served = _service(url, location, 16, 320 if quick else 1600)
    store = "SQLite, one service process" if location.is_sqlite else \
        "PostgreSQL, a service process per core"
    figures.append(Figure(f"signed acts per second through ledger serve, 16 clients ({store})",
                          served["service"], "acts/s", served["core"],
                          "the same acts through the core in one process, same store",
                          served["service"] / served["core"], ">= 0.5 x baseline",
                          served["service"] >= 0.5 * served["core"]))
    figures.append(Figure("latency of one act through ledger serve, p50 (p99 as baseline)",
                          served["p50_ms"], "ms", served["p99_ms"], "p99 of the same acts",
                          None, "reported", True))
    proof_ms, longest, log_size = _proofs(location)
    bound = math.ceil(math.log2(log_size))
    figures.append(Figure(f"inclusion proof at {log_size} entries (slowest of 200)", proof_ms,
                          "ms", None, f"proof length {longest}, ceil(log2 n) = {bound}", None,
                          "<= 20 ms, <= ceil(log2 n) hashes", proof_ms <= 20 and longest <= bound))
    for name, big, little in (("verify", verified, verified_small),
                              ("rebuild", rebuilt, rebuilt_small),
                              ("import", imported, imported_small)):
        growth = big["peak_mb"] / little["peak_mb"]
        figures.append(Figure(f"peak memory of {name}", big["peak_mb"], "MB",
                              little["peak_mb"], f"the same at {small} entries", growth,
                              "< 2 x for 10 x the entries", growth < 2))
    # Where the floors are for the figures furthest from their targets, in the same run:
    # replaying the bundle's agreements in one process (what verifying costs before reading a
    # store, checking a tree or comparing tables); what rebuild's workers do, in one process
    # (restoring every agreement and making its rows); and SQLite's own time to insert the rows
    # a rebuild writes (which one process must do, whatever the number of cores).
    replayed = _task("replay", url, str(small_bundle_path))
    restored = _task("rebuild-replay", url)
    inserted = _task("inserts", url) if location.is_sqlite else None
    sodium = _task("raw-verify-sodium", url, "2000" if quick else "5000")
    # All the CPU an entry costs, in one process, with a PostgreSQL server's own (on the
    # one-tenth ledger: it does not depend on the size): what the cores share at best.
    verified_one = _task("verify", small_url, "1")
    rebuilt_one = _task("rebuild", small_url, "1")
    verify_cpu = verified_one["cpu_seconds"] / verified_one["entries"] * 1e6
    rebuild_cpu = rebuilt_one["cpu_seconds"] / rebuilt_one["entries"] * 1e6
    cores = os.cpu_count() or 1
    floors = {
        "verify_cpu_us_per_entry": verify_cpu,
        "verify_best_ratio": cores * 1e6 / verify_cpu / raw,
        "sodium_verify_us": sodium["seconds"] / sodium["entries"] * 1e6,
        "rebuild_cpu_us_per_entry": rebuild_cpu,
        "rebuild_best_ratio": cores * 1e6 / rebuild_cpu / select_rate,
        "replay_us_per_entry": replayed["seconds"] / replayed["entries"] * 1e6,
        "raw_verify_us": 1e6 / raw,
        "verify_budget_us_per_entry": 2e6 / (1.5 * raw),
        "rebuild_replay_us_per_entry": restored["seconds"] / restored["entries"] * 1e6,
        "inserts_us_per_entry": (None if inserted is None
                                 else inserted["seconds"] / inserted["entries"] * 1e6),
        "rebuild_budget_us_per_entry": 1e6 / (0.3 * select_rate),
    }
    return {
        "floors": floors,
        "entries": built, "small_entries": small, "checkpoint_size": size,
        "build_seconds": build_seconds, "when": datetime.now(UTC).isoformat(),
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                    "store": "postgresql" if base and base.startswith("postgres") else "sqlite"},
        "figures": [f.to_json() for f in figures],
    }


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    lines = ["| figure | value | baseline (same run) | ratio | target | met |",
             "|---|---|---|---|---|---|"]
    for f in result["figures"]:
        baseline = "" if f["baseline"] is None else f"{f['baseline']:.3g} ({f['baseline_name']})"
        if f["baseline"] is None:
            baseline = f["baseline_name"]
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}"
        if f["ratio"] is not None and f["target"].startswith("<= baseline +"):
            ratio = f"{f['ratio']:+.3f} s"  # a margin over the baseline, not a ratio
        met = {True: "yes", False: "no", None: ""}[f["met"]]
        lines.append(f"| {f['name']} | {f['value']:.4g} {f['unit']} | {baseline} | {ratio} | "
                     f"{f['target']} | {met} |")
    return "\n".join(lines)


def floors_text(floors: dict[str, Any]) -> str:
    """The floors, a line each, beside the CPU time per entry each target allows."""
    lines = [
        f"verify in one process, all the CPU it takes (a database server's included): "
        f"{floors['verify_cpu_us_per_entry']:.0f} us an entry, so at best "
        f"{floors['verify_best_ratio']:.2f} x the baseline with every core busy (target 1.5 x: "
        f"{floors['verify_budget_us_per_entry']:.0f} us an entry on 2 cores); of it, replaying "
        f"the agreements alone {floors['replay_us_per_entry']:.0f} us, a signature check with "
        f"libsodium {floors['sodium_verify_us']:.0f} us (with OpenSSL, the baseline, "
        f"{floors['raw_verify_us']:.0f} us)",
        f"rebuild in one process, all the CPU it takes (a database server's included): "
        f"{floors['rebuild_cpu_us_per_entry']:.1f} us an entry, so at best "
        f"{floors['rebuild_best_ratio']:.2f} x the baseline with every core busy (target 0.3 x)"]
    lines.append(
        f"rebuild's replay alone (every agreement restored and its rows made, one process): "
        f"{floors['rebuild_replay_us_per_entry']:.1f} us of CPU an entry; rebuild's target "
        f"allows {2 * floors['rebuild_budget_us_per_entry']:.1f} us of CPU an entry on 2 cores "
        f"({floors['rebuild_budget_us_per_entry']:.1f} us of wall time), everything included")
    if floors["inserts_us_per_entry"] is not None:
        lines.append(
            f"SQLite inserting the rows a rebuild writes: {floors['inserts_us_per_entry']:.1f} us "
            f"an entry, in the one process that may write")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks``."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--ledger", help="postgresql://... (default: SQLite files)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (the CI smoke run)")
    parser.add_argument("--workdir", type=Path, help="keep the ledgers here")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = run(args.entries, args.ledger, work, args.quick)
    result["seconds"] = time.perf_counter() - started
    print(f"ledger benchmark: {result['entries']} entries ({result['machine']['store']}, "
          f"{result['machine']['cores']} cores), {result['seconds']:.0f} s")
    print(table(result))
    print(floors_text(result["floors"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0
