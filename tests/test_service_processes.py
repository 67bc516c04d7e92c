"""The Southwark walk-through end to end, every part its own process.

``ledger serve`` runs as a real process on loopback (two processes sharing one PostgreSQL
database, acts alternating between them); the partners run the real ``ledger`` command, each
with its own key folder and no database URL; the operator, where the service runs, signs a
checkpoint; the PCT cosigns it over a service; an auditor in a third folder, with no keys,
verifies everything over the service and reads every document ``ledger`` shows: each is the one
the database itself gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services import ProcessCli, Services, get_json
from tests.tamper import Cli
from tests.test_service import PCT, REF, SOUTHWARK, SSD, _init, stored_texts

pytestmark = pytest.mark.slow


def _read(url: str) -> bytes:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def test_the_southwark_walk_through_with_real_processes(ledger_url: str, tmp_path: Path) -> None:
    _init(ledger_url)
    count = 1 if "://" not in ledger_url else 2
    services = Services(ledger_url, count, tmp_path)
    try:
        urls = services.urls
        partners = {SSD: ProcessCli(tmp_path / "ssd", SSD), PCT: ProcessCli(tmp_path / "pct", PCT)}
        for n, (partner, args) in enumerate(SOUTHWARK, 1):
            done = partners[partner].json(*args, "--as", partner, ledger=urls[n % count])
            assert (done["seq"], done["partner"]) == (n, partner)
        assert len(set(stored_texts(ledger_url))) == len(SOUTHWARK)
        # A key the partner's folder does not hold signs nothing.
        partners[PCT].run("contribute", REF, "--as", SSD, "--year", "2004/05", "--amount",
                          "1", ledger=urls[0], code=1)

        # The operator, where the service runs, signs a checkpoint; the PCT cosigns it over
        # the other service.
        operator = Cli(ledger_url, tmp_path / "operator")
        operator.make_keys()
        operator.run("checkpoint")
        cosigned = partners[PCT].run("cosign", "--as", PCT, ledger=urls[-1]).stdout
        assert "cosigned the checkpoint of size 10" in cosigned

        # The auditor verifies everything over the service, in a folder of its own.
        auditor = ProcessCli(tmp_path / "auditor")
        report = auditor.json("verify", ledger=urls[0])
        assert (report["ok"], report["entries"]) == (True, 10), report
        assert "cosigned by southwark-pct" in " ".join(report["checks"])

        # Every document the command line shows is, over the service, the one the database
        # gives: computed by the auditor's ledger from entries it checked itself.
        for command in (["status", REF], ["signatures", REF], ["history", REF],
                        ["budget", REF], ["budget", REF, "--payments"], ["list"],
                        ["todo", "--as", PCT, "--within", "100000"],
                        ["status", REF, "--as-of", "2004-06-30"],
                        ["prove", f"{REF}:3"], ["prove", "--from", "4"]):
            assert auditor.json(*command, ledger=urls[-1]) == operator.json(*command), command

        # The agreement's bundle, exported over the service, checks out offline.
        bundle = tmp_path / "southwark.json"
        auditor.run("export", REF, "-o", str(bundle), ledger=urls[0])
        offline = auditor.json("verify-bundle", str(bundle), ledger=urls[0])
        assert (offline["ok"], offline["entries"], offline["checkpoint_size"]) == (True, 10, 10)

        # The report, made by the auditor from what it checked, and as the service serves it.
        page = tmp_path / "report.html"
        made = auditor.json("report", REF, "-o", str(page), ledger=urls[0])
        assert (made["verified"], made["entries"], made["checkpoint_size"]) == (True, 10, 10)
        html = page.read_text(encoding="utf-8")
        served = _read(f"{urls[-1]}/v1/agreements/{REF}/report").decode()
        for text in ("Integrated community equipment service", "£748,000.00",
                     "Southwark PCT", "Service re-tendered"):
            assert text in html, text
            assert text in served, text

        # The service's own JSON documents are the command line's.
        for path, command in ((f"/v1/agreements/{REF}/status", ["status", REF]),
                              ("/v1/agreements", ["list"]),
                              (f"/v1/todo/{PCT}?within=100000",
                               ["todo", "--as", PCT, "--within", "100000"]),
                              (f"/v1/prove?entry={REF}:3", ["prove", f"{REF}:3"]),
                              ("/v1/prove?from=4", ["prove", "--from", "4"])):
            assert get_json(urls[0] + path) == (200, operator.json(*command)), path
        exported = json.loads(_read(f"{urls[0]}/v1/agreements/{REF}/export"))
        assert exported["scope"] == {"agreements": [REF]}
        assert exported["checkpoint"] == json.loads(bundle.read_text())["checkpoint"]
        assert len(exported["entries"]) == 10
        assert get_json(f"{urls[0]}/v1/prove?entry=99")[0] == 404
        assert get_json(f"{urls[0]}/v1/prove?from=x")[0] == 400
        assert get_json(f"{urls[0]}/v1/prove")[0] == 400
    finally:
        services.stop()
