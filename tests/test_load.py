"""A shared ledger on PostgreSQL under load and faults: every act lands once or not at all.

Eight processes each record 250 acts (payments and funding lines over a few agreements)
against the local server. Afterwards the store must hold exactly the acts reported as landed,
no entry twice, ``verify`` must pass and the budget must equal the sum of the landed amounts.
The same checks hold when writers are killed with SIGKILL at random moments, and when the
server restarts mid-run (where this machine lets the test restart it). Figures (acts per
second, retries per act, acts lost) are printed; speed is never asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.cli import app
from ledger.application import Ledger
from ledger.storage import parse_location
from projections.readmodels import ReadModels
from projections.views import budget_view
from tests import load
from tests.conftest import drop_schema, fresh_schema

ROOT = Path(__file__).resolve().parents[1]
WORKERS, ACTS = 8, 250

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _start(url: str, tmp: Path, acts: int = ACTS) -> list[tuple[subprocess.Popen[bytes], Path]]:
    workers = []
    for n in range(WORKERS):
        out = tmp / f"worker-{n}.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "tests.load", "worker", url, str(n),
                                 str(acts), str(out)], cwd=ROOT)
        workers.append((proc, out))
    return workers


def _stored(ledger: Ledger) -> list[tuple[str, str, str]]:
    """(entry hash, reference, entry text) of every entry in the store."""
    rows = []
    for stored in ledger.stored_entries():
        statement = json.loads(stored.entry_text)["statement"]
        rows.append((hashlib.sha256(stored.entry_text.encode()).hexdigest(),
                     statement["agreement"], stored.entry_text))
    return rows


def _amount(text: str) -> tuple[str, Decimal] | None:
    body = json.loads(text)["statement"]["body"]
    if "payment" in body:
        return "payment", Decimal(body["payment"]["amount"])
    if "line" in body and body["line"]["source"].startswith("w"):
        return "line", Decimal(body["line"]["amount"])
    return None


def _sums(stored: list[tuple[str, str, str]], new: set[str], ref: str) -> tuple[Decimal, Decimal]:
    """Payments and worker-declared funding of one agreement, from the entries stored."""
    paid = lines = Decimal(0)
    for digest, reference, text in stored:
        found = _amount(text) if reference == ref and digest in new else None
        if found is not None:
            kind, amount = found
            if kind == "payment":
                paid += amount
            else:
                lines += amount
    return paid, lines


def _check(url: str, setup: set[str], landed: list[load.Landed], killed: int) -> dict[str, float]:
    ledger = Ledger(parse_location(url))
    try:
        stored = _stored(ledger)
        counts = Counter(h for h, _, _ in stored)
        assert max(counts.values()) == 1, "an entry is stored twice"
        new = {h for h, _, _ in stored} - setup
        reported = {a.entry_hash for a in landed}
        assert len(reported) == len(landed), "an act was reported twice"
        lost = reported - new
        assert not lost, f"{len(lost)} acts reported as landed are not in the store"
        # A killed worker may have had one act commit before it could report it; nothing else
        # may be in the store.
        assert len(new - reported) <= killed
        result = CliRunner().invoke(app, ["verify", "--ledger", url])
        assert result.exit_code == 0, result.output
        # The budget equals the sum of the amounts of the acts in the store.
        models = ReadModels(ledger)
        try:
            for ref in (*load.SIGNED, *load.DRAFTS):
                paid, lines = _sums(stored, new, ref)
                view = budget_view(models.load(ref))
                year = view.years[0]
                if ref in load.SIGNED:
                    assert year.position.paid == paid
                    assert year.position.confirmed == load.POOL_LINE * 3
                else:
                    assert year.position.confirmed == lines
                    assert year.position.paid == 0
        finally:
            models.close()
        landed_total = sum(a.amount for a in landed)
        stored_total = sum((found[1] for h, _, t in stored
                            if h in reported and (found := _amount(t)) is not None), Decimal(0))
        assert landed_total == stored_total
        retries = sum(a.attempts - 1 for a in landed)
        return {"landed": len(landed), "lost": len(lost), "retries_per_act":
                retries / max(1, len(landed))}
    finally:
        ledger.close()


@pytest.fixture
def shared(postgres_url: str) -> object:
    schema, url = fresh_schema(postgres_url)
    ledger = load.prepare(url)
    setup = {h for h, _, _ in _stored(ledger)}
    ledger.close()
    yield url, setup
    drop_schema(postgres_url, schema)


def test_eight_writers_land_every_act_exactly_once(shared: tuple[str, set[str]],
                                                    tmp_path: Path) -> None:
    url, setup = shared
    started = time.perf_counter()
    workers = _start(url, tmp_path)
    for proc, _ in workers:
        assert proc.wait(timeout=900) == 0
    elapsed = time.perf_counter() - started
    landed = load.read_landed([out for _, out in workers])
    assert len(landed) == WORKERS * ACTS
    figures = _check(url, setup, landed, killed=0)
    print(f"\nload: {len(landed)} acts landed in {elapsed:.1f} s "
          f"({len(landed) / elapsed:.0f} acts/s), "
          f"{figures['retries_per_act']:.3f} retries per act, {figures['lost']:.0f} lost")


def test_writers_killed_at_random_moments_lose_nothing(shared: tuple[str, set[str]],
                                                       tmp_path: Path) -> None:
    url, setup = shared
    rng = random.Random(20261122)
    workers = _start(url, tmp_path, acts=120)
    killed = 0
    deadline = time.monotonic() + 600
    for proc, _ in workers:
        time.sleep(rng.uniform(0.2, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
    for proc, _ in workers:
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    assert killed > 0, "every writer finished before it could be killed; kill sooner"
    landed = load.read_landed([out for _, out in workers])
    figures = _check(url, setup, landed, killed=killed)
    print(f"\nfaults: {killed} writers killed, {len(landed)} acts reported landed, "
          f"{figures['lost']:.0f} lost")


class PrivateServer:
    """A PostgreSQL cluster of the test's own, on a free loopback port.

    Restarting the shared test server would cut every other test's connections (the suite
    runs on every core), so the restart test starts, and restarts, a server nobody else uses.
    It needs the PostgreSQL server programs and, when run as root, the ``postgres`` account
    to run them under (the server refuses to run as root).
    """

    def __init__(self) -> None:
        bindir = self._bindir()
        if bindir is None:
            pytest.skip("this machine has no PostgreSQL server programs (initdb, pg_ctl) "
                        "to start a private server with")
        self.as_user: list[str] = []
        if os.name == "posix" and os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: cannot start a private server")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.bindir = bindir
        self.home = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        if self.as_user:
            shutil.chown(self.home, "postgres", "postgres")
        self.data = self.home / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.home / "log"), "-w", "start")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def _bindir() -> Path | None:
        found = shutil.which("pg_ctl")
        if found:
            return Path(found).parent
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        return versions[-1].parent if versions else None

    def _run(self, program: str, *args: str) -> None:
        # The server's output goes to its log file; the programs' own output is not captured,
        # so a server they start never holds a pipe the test waits on.
        subprocess.run([*self.as_user, str(self.bindir / program), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                       cwd=self.home)

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "log"), "-m", "fast",
                  "-w", "restart")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def private_server(postgres_url: str) -> Iterator[PrivateServer]:
    server = PrivateServer()
    try:
        yield server
    finally:
        server.stop()


def test_server_restarted_mid_run_loses_and_duplicates_nothing(
        private_server: PrivateServer, tmp_path: Path) -> None:
    url = private_server.url
    ledger = load.prepare(url)
    setup = {h for h, _, _ in _stored(ledger)}
    ledger.close()
    workers = _start(url, tmp_path, acts=150)

    def reported() -> int:
        return sum(len(out.read_bytes().splitlines()) for _, out in workers if out.exists())

    deadline = time.monotonic() + 300
    while reported() < WORKERS * 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    private_server.restart()
    before = reported()
    running = sum(proc.poll() is None for proc, _ in workers)
    assert running > 0, "the writers finished before the restart"
    assert before < WORKERS * 150
    for proc, _ in workers:
        assert proc.wait(timeout=900) == 0
    landed = load.read_landed([out for _, out in workers])
    assert len(landed) == WORKERS * 150
    errors = sum(len(out.with_suffix(".errors").read_text().splitlines())
                 for _, out in workers if out.with_suffix(".errors").exists())
    figures = _check(url, setup, landed, killed=0)
    print(f"\nrestart: {len(landed)} acts landed ({before} before the restart ended) "
          f"({errors} attempts the writers had to retry), {figures['lost']:.0f} lost, none twice")
