"""The ledger service under faults: every act a client was told had landed is stored once.

Eight client processes record 100 acts each through ``ledger serve`` (two service processes
sharing one PostgreSQL database, or one over SQLite) while the service is killed with SIGKILL
and started again, twice. A client whose answer is lost posts the same entry again, and the
service answers with the first result. Afterwards the store holds exactly the acts the clients
were told had landed, each once, and ``verify`` passes. Figures are printed; speed is never
asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.statement import Entry
from ledger.storage import parse_location
from projections.audit import verify_ledger
from tests import load
from tests.services import ROOT, Services

CLIENTS, ACTS = 8, 100

pytestmark = pytest.mark.slow


def test_clients_lose_nothing_while_the_service_is_killed_twice(ledger_url: str,
                                                                 tmp_path: Path) -> None:
    setup = {s.entry_text for s in load.prepare(ledger_url).stored_entries()}
    shared = not parse_location(ledger_url).is_sqlite
    services = Services(ledger_url, 2 if shared else 1, tmp_path)
    try:
        started = time.perf_counter()
        outs = [tmp_path / f"client-{n}.jsonl" for n in range(CLIENTS)]
        clients = [subprocess.Popen(
            [sys.executable, "-m", "tests.load", "worker", services.urls[n % len(services.urls)],
             str(n), str(ACTS), str(out)], cwd=ROOT) for n, out in enumerate(outs)]

        def reported() -> int:
            return sum(len(out.read_bytes().splitlines()) for out in outs if out.exists())

        kills = []
        for share, victim in ((0.15, 0), (0.5, len(services.ports) - 1)):
            deadline = time.monotonic() + 600
            while reported() < CLIENTS * ACTS * share and time.monotonic() < deadline:
                time.sleep(0.05)
            services.kill(victim)
            kills.append(reported())
            time.sleep(0.5)
            services.start(victim)
        for proc in clients:
            assert proc.wait(timeout=900) == 0
        elapsed = time.perf_counter() - started
    finally:
        services.stop()
    assert kills[-1] < CLIENTS * ACTS, "the clients finished before the service was killed"
    landed = [json.loads(line) for out in outs for line in out.read_text().splitlines()]
    assert len(landed) == CLIENTS * ACTS
    ledger = Ledger(parse_location(ledger_url))
    try:
        stored = [s.entry_text for s in ledger.stored_entries() if s.entry_text not in setup]
        acts = Counter(json.loads(text)["statement"]["act"] for text in stored)
        # Every act stored once, and nothing stored that no client was told about.
        assert max(acts.values()) == 1
        assert set(acts) == {item["act"] for item in landed}
        hashes = {Entry.parse(text).hash for text in stored}
        assert hashes == {item["entry_hash"] for item in landed}
        report = verify_ledger(ledger)
        assert report.ok, report.failures[:3]
    finally:
        ledger.close()
    retried = sum(len(out.with_suffix(".errors").read_text().splitlines())
                  for out in outs if out.with_suffix(".errors").exists())
    print(f"\nservice faults: {len(landed)} acts through {len(services.ports)} service "
          f"process(es), killed at {kills} acts reported, in {elapsed:.1f} s "
          f"({len(landed) / elapsed:.0f} acts/s); {retried} tries the clients repeated; "
          f"0 lost, none twice")
