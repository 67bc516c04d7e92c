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
import subprocess
import sys
import time
from collections import Counter
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


def _restart_command() -> list[str] | None:
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        return None
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() \
        else []
    if not versions:
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "restart"]


def test_server_restarted_mid_run_loses_and_duplicates_nothing(
        shared: tuple[str, set[str]], tmp_path: Path) -> None:
    command = _restart_command()
    if command is None:
        pytest.skip("this machine does not let the test restart PostgreSQL "
                    "(needs root and pg_ctlcluster)")
    url, setup = shared
    host = parse_location(url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"the server at {host} is not this machine's; not restarting it")
    workers = _start(url, tmp_path, acts=150)
    time.sleep(2.0)
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    for proc, _ in workers:
        assert proc.wait(timeout=900) == 0
    landed = load.read_landed([out for _, out in workers])
    assert len(landed) == WORKERS * 150
    figures = _check(url, setup, landed, killed=0)
    print(f"\nrestart: {len(landed)} acts landed across a server restart, "
          f"{figures['lost']:.0f} lost, none twice")
