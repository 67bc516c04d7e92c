"""The ledger service: partners on their own machines, the service the only writer.

Partners keep their keys in their own folders and hold no database URL: their ``ledger`` signs
each act and posts it to ``ledger serve``, which checks it with every rule of the core. An
auditor in a third folder reads and checks everything over the same interface. Hostile posts
(forged, replayed from another ledger, signed by a key the partner does not hold, oversized,
malformed) are refused and write nothing; the same act posted twice is stored once.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from http.client import IncompleteRead
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import openapi
from commands.remote import RemoteLedger, _Unreachable
from commands.service import MAX_BODY, Policy, make_app
from ledger import merkle, tiles
from ledger.application import Ledger
from ledger.bodies import DraftBody, FundingLine, PartnerDetails, Terms
from ledger.canonical import ZERO_HASH
from ledger.checkpoints import signed_checkpoint
from ledger.errors import VerificationFailed
from ledger.keystore import KeyStore
from ledger.note import Checkpoint, SignedNote, cosign, verifier_key
from ledger.statement import Entry, Statement
from ledger.storage import parse_location
from ledger.values import FinancialYear
from ledger.witness import WitnessState
from tests.keys import fixed_key, store_fixed_key
from tests.scenarios import ORIGIN
from tests.services import LEDGER, ROOT, ProcessCli, Services, free_port
from tests.tamper import PASSPHRASE, Cli

SSD, PCT = "southwark-ssd", "southwark-pct"
REF = "southwark-ices"


@dataclass
class Served:
    """A ledger and the service over it, on loopback."""

    url: str
    ledger_url: str


def _serve(ledger_url: str, policy: Policy) -> Iterator[str]:
    """Run the service over ``ledger_url`` in this process (uvicorn in a thread)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(parse_location(ledger_url), policy),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _init(ledger_url: str) -> None:
    ledger = Ledger(parse_location(ledger_url), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
    finally:
        ledger.close()


@pytest.fixture
def served(ledger_url: str) -> Iterator[Served]:
    """An initialised ledger on each backend, served with open reads and drafts."""
    _init(ledger_url)
    for url in _serve(ledger_url, Policy()):
        yield Served(url, ledger_url)


def partner_cli(url: str, folder: Path, *names: str) -> Cli:
    """``ledger`` on a partner's own machine: its own key folder, only the service's URL."""
    cli = Cli(url, folder)
    store = KeyStore(cli.keys)
    for name in names:
        store_fixed_key(store, name, PASSPHRASE.encode())
    return cli


def stored_texts(ledger_url: str) -> list[str]:
    ledger = Ledger(parse_location(ledger_url))
    try:
        return [s.entry_text for s in ledger.stored_entries()]
    finally:
        ledger.close()


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


# --- partners on their own machines ------------------------------------------------------------


SOUTHWARK = [
    (SSD, ["draft", REF, "--title", "Integrated community equipment service",
           "--terms-hash", "ab" * 32, "--start", "2003-12-17", "--end", "2004-03-31",
           "--notice", "3m", "--basis", "Health Act 1999 s.31",
           "--flexibility", "lead-commissioning", "--name", "Southwark Social Services",
           "--role", "commissioning", "--lead", "--signatory", "Strategic Director",
           "--designation", "Strategic Director", "--at", "2003-12-16"]),
    (PCT, ["join", REF, "--name", "Southwark PCT", "--role", "commissioning",
           "--signatory", "Chief Executive", "--designation", "Chief Executive",
           "--at", "2003-12-16"]),
    (SSD, ["sign", REF, "--at", "2003-12-17"]),
    (PCT, ["sign", REF, "--at", "2003-12-17"]),
    (SSD, ["vary", REF, "--id", "pooled-budget", "--reason", "Pooled budget from March 2004",
           "--flexibility", "lead-commissioning", "--flexibility", "pooled-budget",
           "--end", "2005-03-31",
           "--fund", "partner=southwark-ssd,year=2004/05,amount=748000,source=Social Services",
           "--fund", "partner=southwark-pct,year=2004/05,amount=303000,source=PCT,"
                     "status=indicative", "--at", "2004-03-01"]),
    (PCT, ["consent", REF, "pooled-budget", "--at", "2004-03-02"]),
    (SSD, ["contribute", REF, "--year", "2004/05", "--amount", "748000", "--paid",
           "--at", "2004-04-30"]),
    (PCT, ["notice", REF, "--reason", "Service re-tendered", "--at", "2004-10-01"]),
    (SSD, ["acknowledge", REF, "8", "--at", "2004-10-04"]),
    (PCT, ["terminate", REF, "--at", "2005-01-01"]),
]


def test_the_southwark_walk_through_over_the_service(served: Served, tmp_path: Path) -> None:
    clis = {SSD: partner_cli(served.url, tmp_path / "ssd", SSD),
            PCT: partner_cli(served.url, tmp_path / "pct", PCT)}
    for partner, args in SOUTHWARK:
        done = clis[partner].json(*args, "--as", partner, "--json")
        assert done["partner"] == partner
    # A partner cannot sign with a key it does not hold: the PCT's folder has no SSD key.
    clis[PCT].run("terminate", REF, "--as", SSD, "--at", "2005-01-02", code=1)
    # Every act the partners were told was recorded is stored once, in order.
    texts = stored_texts(served.ledger_url)
    assert len(texts) == len(SOUTHWARK) == len(set(texts))
    # The auditor, in a third folder with no keys, reads over the service what the database
    # itself gives, and checks every entry it is served.
    auditor = Cli(served.url, tmp_path / "auditor")
    local = Cli(served.ledger_url, tmp_path / "operator")
    for command in (["status", REF], ["history", REF], ["budget", REF],
                    ["status", REF, "--as-of", "2004-06-30"], ["list"]):
        assert auditor.json(*command, "--json") == local.json(*command, "--json"), command
    # The service's own views are those documents too, for reading at a glance.
    for view, query in (("status", ""), ("signatures", ""), ("history", ""), ("budget", ""),
                        ("status", "?as_of=2004-06-30")):
        command = [view, REF] + (["--as-of", "2004-06-30"] if query else [])
        code, document = http("GET", f"{served.url}/v1/agreements/{REF}/{view}{query}")
        assert (code, document) == (200, local.json(*command, "--json")), view
    assert http("GET", f"{served.url}/v1/agreements/{REF}/secrets")[0] == 404
    assert http("GET", f"{served.url}/v1/agreements/{REF}/status?as_of=yesterday")[0] == 400
    report = auditor.json("verify", "--json")
    assert (report["ok"], report["entries"], report["agreements"]) == (True, 10, 1)
    assert "no checkpoint yet" in " ".join(report["checks"])
    # Once the operator (where the service runs) signs a checkpoint and the PCT cosigns it,
    # the auditor checks the log too: the checkpoint, its cosignature, the tree the entries
    # in the tiles give. And takes a bundle away to check offline.
    local.make_keys()
    local.run("checkpoint")
    assert "cosigned the checkpoint of size 10" in clis[PCT].run("cosign", "--as", PCT).stdout
    report = auditor.json("verify", "--json")
    checks = " ".join(report["checks"])
    assert report["ok"] is True, report
    assert "checkpoint signed by the operator, cosigned by southwark-pct" in checks
    bundle = tmp_path / "bundle.json"
    auditor.run("export", "-o", str(bundle))
    offline = auditor.json("verify-bundle", str(bundle), "--json")
    assert (offline["ok"], offline["entries"], offline["checkpoint_size"]) == (True, 10, 10)
    # What the auditor verified is kept in its folder; damaged, it is never silently dropped.
    kept = WitnessState.path_for(auditor.keys, "verified")
    assert WitnessState.load(kept).ledgers[ORIGIN].size == 10
    kept.write_text("{not json", encoding="utf-8")
    assert "is corrupt" in auditor.run("verify", code=1).stderr
    kept.unlink()
    assert local.json("verify", "--json")["ok"] is True
    # A later checkpoint is cosigned over the service once it extends the one cosigned before.
    clis[SSD].run("contribute", REF, "--as", SSD, "--year", "2004/05", "--amount", "1",
                  "--paid", "--at", "2005-01-01", code=1)  # terminated: refused
    local.run("checkpoint")
    assert "already cosigned" in clis[PCT].run("cosign", "--as", PCT, code=1).stderr


def test_an_act_posted_again_is_answered_with_the_first_result(served: Served) -> None:
    ssd = fixed_key(SSD)
    draft = _draft_entry(ssd, act="a" * 32)
    first = http("POST", served.url + "/v1/entries", draft.text.encode())
    again = http("POST", served.url + "/v1/entries", draft.text.encode())
    assert (first[0], first[1]["already"]) == (201, False)
    assert (again[0], again[1]["already"]) == (200, True)
    assert again[1]["entry_hash"] == first[1]["entry_hash"] == draft.hash
    # The same act signed again at a later time (a client that lost its answer and re-read)
    # is still the one act: the first result, nothing stored twice.
    resigned = _draft_entry(ssd, act="a" * 32, at=datetime(2003, 12, 16, 10, tzinfo=UTC))
    status, answer = http("POST", served.url + "/v1/entries", resigned.text.encode())
    assert (status, answer["entry_hash"], answer["already"]) == (200, draft.hash, True)
    assert stored_texts(served.ledger_url) == [draft.text]


def test_a_client_whose_answer_was_lost_learns_its_act_landed(served: Served) -> None:
    remote = RemoteLedger(served.url)
    ssd = fixed_key(SSD)
    remote.declare  # noqa: B018 - the client has every act the core defines
    http("POST", served.url + "/v1/entries", _draft_entry(ssd, act="b" * 32).text.encode())
    real = remote._request
    lost = {"count": 0}

    def answer_lost(method: str, path: str, body: bytes | None = None) -> Any:
        result = real(method, path, body)
        if method == "POST" and lost["count"] == 0:
            lost["count"] += 1
            raise _Unreachable("connection reset after the service committed")
        return result

    line = FundingLine(SSD, FinancialYear(2004), "Social Services", Decimal(748000),
                       "confirmed")
    with mock.patch.object(remote, "_request", answer_lost):
        done = remote.declare(REF, line, ssd, datetime(2003, 12, 16, 12, tzinfo=UTC))
    assert lost["count"] == 1
    assert done.entry.statement.seq == 2
    texts = stored_texts(served.ledger_url)
    assert len(texts) == 2
    assert texts[1] == done.entry.text


def _signed(origin: str, reference: str, seq: int, prev: str, action: str, partner: str,
            signer: Any, at: datetime, body: dict[str, Any], act: str) -> Entry:
    """Any statement, signed: what a client (or an attacker) may post."""
    return Entry.sign(Statement(origin, reference, seq, prev, action, partner, signer.key_id,
                                at, body, act), signer)


def _draft_entry(signer: Any, *, act: str, origin: str = ORIGIN, reference: str = REF,
                 at: datetime | None = None) -> Entry:
    terms = Terms("Integrated community equipment service", "Health Act 1999 s.31",
                  ("lead-commissioning",), "ab" * 32, None, date(2003, 12, 17),
                  date(2004, 3, 31), 3, "terminate")
    body = DraftBody(terms, _details("Southwark Social Services", signer)).to_json()
    return _signed(origin, reference, 1, ZERO_HASH, "draft", SSD, signer,
                        at or datetime(2003, 12, 16, tzinfo=UTC), body, act)


def _details(name: str, signer: Any) -> PartnerDetails:
    return PartnerDetails(name, "commissioning", False, False, False, "Chief Executive",
                          "Chief Executive", signer.public_key)


# --- hostile clients ---------------------------------------------------------------------------


def _forged(entry: Entry) -> bytes:
    data = json.loads(entry.text)
    data["statement"]["body"]["agreement"]["title"] = "Something else entirely"
    # Another act on another agreement: the same act would be answered with the first result.
    data["statement"]["act"] = "9" * 32
    data["statement"]["agreement"] = "forged-agreement"
    return Entry.of(Entry.parse(json.dumps(data, sort_keys=True, separators=(",", ":")))
                    .statement, entry.signature).text.encode()


HOSTILE = {
    "forged": (_forged, 422, "signature"),
    "another-ledger": (lambda e: _draft_entry(fixed_key(SSD), act="c" * 32,
                                              origin="ledger.example/trafford",
                                              reference="trafford-ld").text.encode(),
                       422, "belongs to ledger"),
    "key-not-held": (lambda e: _signed(
        ORIGIN, REF, 2, e.hash, "sign", SSD, fixed_key(PCT), datetime(2003, 12, 17, tzinfo=UTC),
        {"state": "00" * 32}, "d" * 32).text.encode(), 422, "key"),
    # The very act, its signature broken: not the act, so not answered with its result.
    "same-act-broken-signature": (lambda e: e.text.replace(
        '"signature":"' + e.text.split('"signature":"')[1][:2],
        '"signature":"' + ("AB" if not e.text.split('"signature":"')[1].startswith("AB")
                           else "BA"), 1).encode(), 422, "signature"),
    "not-json": (lambda e: b"{not json", 400, "JSON"),
    "not-canonical": (lambda e: e.text.replace('","statement":', '", "statement":').encode(),
                      400, "canonical"),
    "stale-seq": (lambda e: e.text.encode(), 200, ""),  # the very entry: the first result
    "unknown-agreement": (lambda e: _signed(
        ORIGIN, "nowhere", 2, e.hash, "sign", SSD, fixed_key(SSD),
        datetime(2003, 12, 17, tzinfo=UTC), {"state": "00" * 32}, "e" * 32).text.encode(),
        404, "no agreement"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_post_is_refused_and_writes_nothing(served: Served, case: str) -> None:
    genuine = _draft_entry(fixed_key(SSD), act="f" * 32)
    assert http("POST", served.url + "/v1/entries", genuine.text.encode())[0] == 201
    make, status, says = HOSTILE[case]
    code, answer = http("POST", served.url + "/v1/entries", make(genuine))
    assert code == status, answer
    if code >= 400:
        assert says in answer["error"], answer
        assert "\n" not in answer["error"]
    assert stored_texts(served.ledger_url) == [genuine.text]


def test_a_body_larger_than_an_entry_is_refused_before_it_is_read(served: Served) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     f"\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        answer_text = answer.decode()
    assert answer_text.startswith("HTTP/1.1 413"), answer_text
    assert "larger than an entry can be" in answer_text
    assert stored_texts(served.ledger_url) == []


def test_an_entry_that_lost_the_race_is_a_conflict_to_retry(served: Served) -> None:
    ssd, pct = fixed_key(SSD), fixed_key(PCT)
    draft = _draft_entry(ssd, act="1" * 32)
    http("POST", served.url + "/v1/entries", draft.text.encode())
    join_body = _details("Southwark PCT", pct).to_json()
    at = datetime(2003, 12, 16, 1, tzinfo=UTC)
    join = _signed(ORIGIN, REF, 2, draft.hash, "join", PCT, pct, at, join_body, "2" * 32)
    assert http("POST", served.url + "/v1/entries", join.text.encode())[0] == 201
    # Signed against the draft alone, after the join landed: the same seq, another act.
    late = _signed(ORIGIN, REF, 2, draft.hash, "sign", SSD, ssd, at,
                        {"state": "00" * 32}, "3" * 32)
    code, answer = http("POST", served.url + "/v1/entries", late.text.encode())
    assert (code, answer["kind"]) == (409, "conflict")
    assert "read it again" in answer["error"]
    assert len(stored_texts(served.ledger_url)) == 2


def test_a_client_signs_on_what_it_read_and_reads_again_only_when_it_must(
        served: Served, tmp_path: Path) -> None:
    clis = {SSD: partner_cli(served.url, tmp_path / "ssd", SSD),
            PCT: partner_cli(served.url, tmp_path / "pct", PCT)}
    for partner, args in SOUTHWARK[:2]:
        clis[partner].json(*args, "--as", partner, "--json")
    ssd, pct = RemoteLedger(served.url), RemoteLedger(served.url)
    assert ssd.agreement(REF).version == 2
    asked: list[str] = []
    sending = RemoteLedger._send

    def send(self: RemoteLedger, method: str, path: str, body: bytes | None = None) -> bytes:
        asked.append(f"{method} {path}")
        return sending(self, method, path, body)

    entries = f"GET /v1/agreements/{REF}/entries"
    with mock.patch.object(RemoteLedger, "_send", send):
        # The PCT signs first: the SSD's signature, signed on what it read, is a conflict;
        # it reads again and signs the same act again.
        clis[PCT].json(*SOUTHWARK[3][1], "--as", PCT, "--json")
        asked.clear()
        done = ssd.sign(REF, SSD, fixed_key(SSD), datetime(2003, 12, 17, tzinfo=UTC))
        assert asked == ["POST /v1/entries", f"{entries}?after=2", "POST /v1/entries"]
        assert (done.entry.statement.seq, done.attempts) == (4, 2)
        # The SSD proposes a variation the PCT has not read: refused on what the PCT read,
        # its consent is judged again on the agreement as it now stands, and lands.
        assert pct.agreement(REF).version == 4
        clis[SSD].json(*SOUTHWARK[4][1], "--as", SSD, "--json")
        asked.clear()
        done = pct.consent(REF, PCT, "pooled-budget", fixed_key(PCT),
                           datetime(2004, 3, 2, tzinfo=UTC))
        assert asked == [f"{entries}?after=4", "POST /v1/entries"]
        assert (done.entry.statement.seq, done.attempts, done.agreement.version) == (6, 1, 6)
        # Nothing new since: one post, and the agreement after it is the stored entry
        # replayed here.
        asked.clear()
        done = pct.notice(REF, PCT, "termination", "Service re-tendered", fixed_key(PCT),
                          datetime(2004, 10, 1, tzinfo=UTC))
        assert asked == ["POST /v1/entries"]
        assert (done.entry.statement.seq, done.agreement.version) == (7, 7)
    texts = stored_texts(served.ledger_url)
    assert len(texts) == len(set(texts)) == 7


def test_the_operator_decides_who_may_draft_and_who_may_read(tmp_path: Path) -> None:
    ledger_url = str(tmp_path / "ledger.db")
    _init(ledger_url)
    keys = tmp_path / "drafters.txt"
    keys.write_text(f"# only the PCT convenes here\n{fixed_key(PCT).public_key.hex()}\n")
    token = tmp_path / "token"
    token.write_text("a-long-enough-read-token\n")
    for url in _serve(ledger_url, Policy.load(str(keys), token)):
        code, answer = http("POST", url + "/v1/entries",
                            _draft_entry(fixed_key(SSD), act="4" * 32).text.encode())
        assert (code, answer["kind"]) == (403, "not-permitted")
        assert stored_texts(ledger_url) == []
        assert http("GET", url + "/v1/agreements")[0] == 401
        assert http("GET", url + "/v1/agreements", headers={
            "Authorization": "Bearer a-long-enough-read-token"}) == (200, {"agreements": []})
        assert http("GET", url + "/v1/agreements", headers={
            "Authorization": "Bearer a-long-enough-read-toke"})[0] == 401
        assert http("GET", url + "/healthz")[1]["ok"] is True


def test_the_openapi_document_is_committed_and_names_every_route(served: Served) -> None:
    assert (ROOT / "docs" / "openapi.json").read_text() == openapi.text(), \
        "run: python -m commands.openapi"
    code, served_doc = http("GET", served.url + "/openapi.json")
    assert (code, served_doc) == (200, openapi.DOCUMENT)
    app = make_app(parse_location(served.ledger_url), Policy())
    routes = {route.path.replace(":path}", "}") for route in app.routes}  # type: ignore[attr-defined]
    assert routes == set(openapi.DOCUMENT["paths"])


# --- the real process --------------------------------------------------------------------------


def test_ledger_serve_runs_as_a_process_and_partners_use_it(tmp_path: Path) -> None:
    ledger_url = str(tmp_path / "ledger.db")
    _init(ledger_url)
    services = Services(ledger_url, 1, tmp_path)
    try:
        partner, args = SOUTHWARK[0]
        done = ProcessCli(tmp_path / "ssd", SSD).json(*args, "--as", partner,
                                                      ledger=services.urls[0])
        assert done["seq"] == 1
        assert len(stored_texts(ledger_url)) == 1
    finally:
        services.stop()
    # One structured line per request.
    log = (tmp_path / "service-0.log").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line["path"] == "/v1/entries" and line["status"] == 201 for line in lines)
    # Stopped by SIGTERM after a graceful shutdown (uvicorn exits by the signal it was sent).
    server = services.procs[0]
    assert server is not None
    assert server.returncode in (0, -signal.SIGTERM)


def test_a_client_catches_a_history_the_service_rewrote(tmp_path: Path) -> None:
    # Two ledgers of one origin that agree on the draft and then differ: what a client sees
    # when the service it read from rewrites the agreement's history behind it.
    urls = [str(tmp_path / "first.db"), str(tmp_path / "rewritten.db")]
    ssd = fixed_key(SSD)
    draft = _draft_entry(ssd, act="5" * 32)
    for n, url in enumerate(urls):
        _init(url)
        ledger = Ledger(parse_location(url))
        try:
            ledger.submit(draft)
            for year in (2004 + n, 2006):
                ledger.declare(REF, FundingLine(SSD, FinancialYear(year), "Social Services",
                                                Decimal(1000 + n), "confirmed"), ssd,
                               datetime(2003, 12, 16, 1, tzinfo=UTC))
        finally:
            ledger.close()
    servers = [_serve(url, Policy()) for url in urls]
    first, rewritten = (next(server) for server in servers)
    try:
        remote = RemoteLedger(first)
        assert remote.agreement(REF).version == 3
        remote.url = rewritten
        with pytest.raises(VerificationFailed, match="the history was rewritten"):
            remote.agreement(REF)
        # A client with nothing kept checks the rewritten history as it finds it (it is well
        # signed): only what it remembered shows the rewrite.
        assert RemoteLedger(rewritten).agreement(REF).version == 3
    finally:
        for server in servers:
            for _ in server:
                pass


# --- the log as C2SP tlog-tiles ----------------------------------------------------------------

GOPATH = Path("/usr/share/gocode")
TILES_GO = Path(__file__).parent / "independent" / "tiles.go"


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """A served ledger of 600 entries (two full tiles and a partial one at level 0, a partial
    tile at level 1) with a signed checkpoint: its URL, the operator's verifier key, its file."""
    from benchmarks.run import _checkpoint, _prepare  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("tiles")
    ledger_url = str(folder / "ledger.db")
    location = parse_location(ledger_url)
    total, _ = _prepare(location, 600)
    assert total >= 600
    _checkpoint(location)
    ledger = Ledger(location)
    try:
        identity = ledger.identity
        vkey = verifier_key(identity.operator, identity.operator_public_key)
    finally:
        ledger.close()
    for url in _serve(ledger_url, Policy()):
        yield url, vkey, Path(ledger_url)


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_tiles_give_the_checkpoints_tree(tiled: tuple[str, str, Path]) -> None:
    url, _, path = tiled
    code, note = _fetch(url + "/checkpoint")
    assert code == 200
    checkpoint = Checkpoint.parse(SignedNote.parse(note.decode()).text)
    size = checkpoint.size
    # The level-0 tiles are the leaf hashes of the entries in the entry tiles, and the tree
    # the project's own code builds from them has the checkpoint's root.
    leaves: list[bytes] = []
    entries: list[bytes] = []
    for first in range(0, size, tiles.WIDTH):
        width = min(tiles.WIDTH, size - first)
        index = first // tiles.WIDTH
        code, hashes = _fetch(f"{url}/{tiles.tile_path(0, index, width)}")
        assert code == 200
        code, bundle = _fetch(f"{url}/{tiles.tile_path(None, index, width)}")
        assert code == 200
        leaves += [hashes[k:k + 32] for k in range(0, len(hashes), 32)]
        entries += tiles.read_entry_bundle(bundle)
    assert [merkle.leaf_hash(e) for e in entries] == leaves
    assert merkle.Tree(leaves).root == checkpoint.root
    # A level-1 tile holds the roots of whole level-0 tiles.
    code, upper = _fetch(f"{url}/{tiles.tile_path(1, 0, size // tiles.WIDTH)}")
    assert code == 200
    assert upper[:32] == merkle.Tree(leaves[:256]).root
    # What the log does not hold, and what is not a tile path, is refused.
    for bad, status in ((tiles.tile_path(0, 9, 1), 404), ("tile/0/002", 404), ("tile/0/1", 400),
                        ("tile/0/0001", 400), ("tile/0/x000/001", 400), ("tile/0/000.p/0", 400),
                        ("tile/0/000.p/256", 400), ("tile/64/000", 400), ("tile/00/000", 400),
                        ("tile/entries/000.p/x", 400), ("tile/../000", 400)):
        assert _fetch(f"{url}/{bad}")[0] == status, bad
    assert path.exists()


@pytest.mark.parametrize("index", [0, 1, 999, 1000, 1234067, 10**18])
def test_tile_paths_read_back(index: int) -> None:
    for level in (None, 0, 3):
        for width in (1, 255, 256):
            assert tiles.parse_tile_path(tiles.tile_path(level, index, width)) == \
                (level, index, width)


def test_gos_tlog_reads_the_tiles(tiled: tuple[str, str, Path],
                                  tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        pytest.skip("no Go with x/mod (apt-get install golang-go golang-golang-x-mod-dev)")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": "",
           "GOCACHE": str(tmp_path / "cache"), "CGO_ENABLED": "0"}
    binary = tmp_path / "tiles"
    built = subprocess.run([go, "build", "-o", str(binary), str(TILES_GO)], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    url, vkey, _ = tiled
    done = subprocess.run([str(binary), url, vkey], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: ")
    assert "entries proved" in done.stdout
    # Signed by another key, the checkpoint is refused by Go's note.Open.
    other = verifier_key("operator", fixed_key("mallory").public_key)
    refused = subprocess.run([str(binary), url, other], capture_output=True, text=True,
                             timeout=120, check=False)
    assert refused.returncode == 1
    assert refused.stdout.startswith("FAIL: checkpoint")


def _checkpoint(ledger_url: str, operator: str = "operator") -> int:
    """The operator signs a checkpoint of the whole log, where the ledger is."""
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

    ledger = Ledger(parse_location(ledger_url))
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        log.catch_up()
        size = log.current_size()
        ledger.record_checkpoint(signed_checkpoint(ORIGIN, size, log.root(size), "operator",
                                                   fixed_key(operator)))
        return size
    finally:
        models.close()
        ledger.close()


def _ledger_of(url: str, amounts: list[int], operator: str = "operator") -> None:
    """A ledger of one agreement: the Southwark draft, then one funding line per amount."""
    ledger = Ledger(parse_location(url), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", fixed_key(operator).public_key)
        ledger.submit(_draft_entry(fixed_key(SSD), act="6" * 32))
        for n, amount in enumerate(amounts):
            ledger.declare(REF, FundingLine(SSD, FinancialYear(2004 + n), "Social Services",
                                            Decimal(amount), "confirmed"), fixed_key(SSD),
                           datetime(2003, 12, 16, 1, tzinfo=UTC))
    finally:
        ledger.close()
    _checkpoint(url, operator)


@pytest.mark.parametrize("copy_kept", [True, False], ids=["copy-kept", "copy-lost"])
@pytest.mark.parametrize(("later", "amounts", "operator", "says"), [
    ("rewritten", [1000, 2000], "operator", "the log was rewritten"),
    ("cut back", [1000], "operator", "it was cut back"),
    ("another operator", [1000, 1000, 3000], "mallory", "is not the expected one"),
])
def test_an_auditor_remembers_what_it_verified(tmp_path: Path, later: str, amounts: list[int],
                                               operator: str, says: str,
                                               copy_kept: bool) -> None:
    first, second = str(tmp_path / "first.db"), str(tmp_path / "second.db")
    _ledger_of(first, [1000, 1000])
    _ledger_of(second, amounts, operator)
    memory = WitnessState()
    copy = tmp_path / "auditor" / "copy.db"
    copy.parent.mkdir()
    servers = [_serve(url, Policy()) for url in (first, second)]
    url_first, url_second = (next(server) for server in servers)
    try:
        assert RemoteLedger(url_first).copy(copy, memory).ok
        assert memory.ledgers[ORIGIN].size == 3
        if not copy_kept:
            copy.unlink()  # made again, whole: what is remembered still holds it to account
        # The service now serves another history under the same origin: a fresh auditor
        # finds it well signed, the one that remembers catches it.
        assert RemoteLedger(url_second).copy(tmp_path / "fresh.db", WitnessState()).ok
        report = RemoteLedger(url_second).copy(copy, memory)
        assert not report.ok, later
        assert any(says in f.what for f in report.failures), report.failures
        assert memory.ledgers[ORIGIN].size == 3  # a failed check remembers nothing
    finally:
        for server in servers:
            for _ in server:
                pass


def test_a_re_check_reads_only_what_is_new(tmp_path: Path) -> None:
    url = str(tmp_path / "ledger.db")
    _ledger_of(url, [1000, 1000])
    memory = WitnessState()
    copy = tmp_path / "copy.db"
    asked: list[str] = []
    sending = RemoteLedger._send

    def send(self: RemoteLedger, method: str, path: str, body: bytes | None = None) -> bytes:
        asked.append(path)
        return sending(self, method, path, body)

    for served in _serve(url, Policy()):
        with mock.patch.object(RemoteLedger, "_send", send):
            assert RemoteLedger(served).copy(copy, memory).ok
            assert f"/v1/agreements/{REF}/entries?after=0" in asked
            # Two more entries and a checkpoint of 5: the next check reads the checkpoint,
            # the entries since (from the entry tile), and when they were recorded.
            ledger = Ledger(parse_location(url))
            try:
                for amount in (5000, 6000):
                    ledger.declare(REF, FundingLine(SSD, FinancialYear(2006), "Grant",
                                                    Decimal(amount), "confirmed"),
                                   fixed_key(SSD), datetime(2003, 12, 17, tzinfo=UTC))
            finally:
                ledger.close()
            assert _checkpoint(url) == 5
            asked.clear()
            report = RemoteLedger(served).copy(copy, memory)
            assert report.ok, report.failures
            assert asked == ["/v1/ledger", "/checkpoint",
                             "/tile/entries/000.p/5", f"/v1/agreements/{REF}/entries?after=3"]
            assert "consistent with the checkpoint of size 3 verified here before" in " ".join(
                report.checks)
            assert (report.entries, memory.ledgers[ORIGIN].size) == (5, 5)
            # The copy holds what was checked: the same entries as the service's ledger.
            assert stored_texts(str(copy)) == stored_texts(url)
            # Nothing new: nothing but the checkpoint is read, and nothing is added.
            asked.clear()
            assert RemoteLedger(served).copy(copy, memory).ok
            assert "/tile/entries/000.p/5" not in asked
            assert stored_texts(str(copy)) == stored_texts(url)
            # A copy whose log was damaged is not extended: it is made again, whole.
            with sqlite3.connect(copy) as db:
                db.execute("UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 2")
            asked.clear()
            assert RemoteLedger(served).copy(copy, memory).ok
            assert f"/v1/agreements/{REF}/entries?after=0" in asked
            assert stored_texts(str(copy)) == stored_texts(url)


def test_a_re_check_refuses_entries_that_are_not_the_logs(tmp_path: Path) -> None:
    # The agreement's entries, as served, differ from those of the log's tiles: nothing is
    # added to the copy, nothing remembered.
    url = str(tmp_path / "ledger.db")
    _ledger_of(url, [1000])
    memory = WitnessState()
    copy = tmp_path / "copy.db"
    for served in _serve(url, Policy()):
        assert RemoteLedger(served).copy(copy, memory).ok
        ledger = Ledger(parse_location(url))
        try:
            ledger.declare(REF, FundingLine(SSD, FinancialYear(2006), "Grant", Decimal(7),
                                            "confirmed"), fixed_key(SSD),
                           datetime(2003, 12, 17, tzinfo=UTC))
        finally:
            ledger.close()
        _checkpoint(url)
        def get(self: RemoteLedger, path: str, getting: Any = RemoteLedger._get
                ) -> dict[str, Any]:
            answer = getting(self, path)
            if "/entries?after=" in path:
                for item in answer["entries"]:
                    item["entry"] = item["entry"].replace('"Grant"', '"Grunt"')
            return answer

        with mock.patch.object(RemoteLedger, "_get", get):
            report = RemoteLedger(served).copy(copy, memory)
        assert not report.ok
        assert "are not the ones its log's tiles give" in report.failures[0].what
        assert memory.ledgers[ORIGIN].size == 2
        assert len(stored_texts(str(copy))) == 2


# --- hostile clients, generated ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Entry]]:
    """A served ledger holding one genuine draft, for generated requests."""
    ledger_url = str(tmp_path_factory.mktemp("fuzz") / "ledger.db")
    _init(ledger_url)
    genuine = _draft_entry(fixed_key(SSD), act="7" * 32)
    for url in _serve(ledger_url, Policy()):
        assert http("POST", url + "/v1/entries", genuine.text.encode())[0] == 201
        yield url, ledger_url, genuine


def _mutated(genuine: Entry, data: st.DataObject) -> bytes:
    """The genuine entry with one generated change: a byte, a field's value, a field gone."""
    text = genuine.text
    kind = data.draw(st.sampled_from(["byte", "value", "drop"]))
    if kind == "byte":
        at = data.draw(st.integers(0, len(text) - 1))
        return (text[:at] + data.draw(st.characters()) + text[at + 1:]).encode()
    document = json.loads(text)
    statement = document["statement"]
    key = data.draw(st.sampled_from(sorted(statement)))
    if kind == "drop":
        del statement[key]
    else:
        statement[key] = data.draw(st.none() | st.booleans() | st.integers() | st.text()
                                   | st.lists(st.integers(), max_size=3))
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_posts_never_fail_the_service_nor_write(fuzzed: tuple[str, str, Entry],
                                                         data: st.DataObject) -> None:
    url, ledger_url, genuine = fuzzed
    body = data.draw(st.one_of(st.binary(max_size=300), st.just(b""),
                               st.builds(lambda v: json.dumps(v).encode(),
                                         st.dictionaries(st.text(max_size=10), st.integers())),
                               st.builds(_mutated, st.just(genuine), st.data())))
    code, answer = http("POST", url + "/v1/entries", body,
                        headers={"Content-Type": "application/json"})
    if body == genuine.text.encode():
        assert code == 200
    else:
        assert code in (400, 403, 404, 409, 413, 422), (code, answer, body)
        assert answer["kind"] != "error"
    assert stored_texts(ledger_url) == [genuine.text]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40))
def test_generated_reads_never_fail_the_service(fuzzed: tuple[str, str, Entry],
                                                path: str) -> None:
    url, _, _ = fuzzed
    for route in ("/tile/", "/v1/agreements/", "/tile/entries/"):
        target = url + route + urllib.parse.quote(path, safe="/.")
        try:
            with urllib.request.urlopen(target, timeout=30) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        assert code in (200, 400, 404, 405), (target, code)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (test-only, made afresh)."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now.replace(year=now.year + 1))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                  critical=True)
                   .sign(key, hashes.SHA256()))
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, private


def test_ledger_serve_speaks_https_and_partners_check_its_certificate(tmp_path: Path) -> None:
    ledger_url = str(tmp_path / "ledger.db")
    _init(ledger_url)
    cert, key = _self_signed(tmp_path)
    port = free_port()
    server = subprocess.Popen([*LEDGER, "serve", "--ledger", ledger_url, "--port", str(port),
                               "--certfile", str(cert), "--keyfile", str(key)], cwd=ROOT,
                              env={**os.environ, "LEDGER_URL": ""}, stderr=subprocess.DEVNULL)
    try:
        url = f"https://127.0.0.1:{port}"
        store = KeyStore(tmp_path / "ssd")
        store_fixed_key(store, SSD, PASSPHRASE.encode())
        partner, args = SOUTHWARK[0]
        env = {**os.environ, "LEDGER_PASSPHRASE": PASSPHRASE, "LEDGER_URL": "",
               "LEDGER_KEYS": str(tmp_path / "ssd")}
        deadline = time.monotonic() + 60
        while True:
            # A partner that trusts the service's certificate acts over https...
            done = subprocess.run([*LEDGER, *args, "--as", partner, "--ledger", url, "--json"],
                                  cwd=ROOT, env={**env, "SSL_CERT_FILE": str(cert)},
                                  capture_output=True, text=True, timeout=120, check=False)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # the service is still starting
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["seq"] == 1
        # ...one that does not know it is refused, in one line, and nothing is written.
        untrusted = subprocess.run([*LEDGER, "status", REF, "--ledger", url], cwd=ROOT,
                                   env=env, capture_output=True, text=True, timeout=120,
                                   check=False)
        assert untrusted.returncode != 0
        assert untrusted.stderr.startswith("error: cannot reach the ledger service")
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert untrusted.stderr.count("\n") == 1
        assert len(stored_texts(ledger_url)) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_a_partner_refuses_to_cosign_a_forked_log(tmp_path: Path) -> None:
    first, second = str(tmp_path / "first.db"), str(tmp_path / "second.db")
    _ledger_of(first, [1000, 1000])
    _ledger_of(second, [1000, 2000])
    memory = WitnessState()
    servers = [_serve(url, Policy()) for url in (first, second)]
    url_first, url_second = (next(server) for server in servers)
    try:
        signer = fixed_key(SSD)
        cp, previous = RemoteLedger(url_first).cosign(SSD, memory, lambda _current: signer)
        assert (cp.size, previous) == (3, None)
        assert f"— {SSD} " in http_text(url_first + "/checkpoint")
        # The same origin now serves another history: the partner refuses, loudly.
        with pytest.raises(VerificationFailed, match="not consistent"):
            RemoteLedger(url_second).cosign(SSD, memory, lambda _current: signer)
        assert f"— {SSD} " not in http_text(url_second + "/checkpoint")
        # A key the partner does not act with is refused by the service itself.
        note = SignedNote.parse(http_text(url_second + "/checkpoint"))
        line = cosign(note.text, SSD, fixed_key(PCT).private_key, 1_700_000_000).line()
        code, answer = http("POST", url_second + "/v1/cosignatures", json.dumps(
            {"size": 3, "witness": SSD, "public_key": fixed_key(PCT).public_key.hex(),
             "signature": line.rstrip("\n")}).encode())
        assert (code, answer["kind"]) == (422, "refused")
    finally:
        for server in servers:
            for _ in server:
                pass


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def test_an_answer_cut_off_mid_transfer_is_no_answer() -> None:
    # The service stopped while sending: the client must ask again, not stop on the error.
    class CutOff:
        status = 201

        def __enter__(self) -> CutOff:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def read(self) -> bytes:
            raise IncompleteRead(b"", 22500)

    remote = RemoteLedger("http://127.0.0.1:9")
    with mock.patch("urllib.request.urlopen", return_value=CutOff()), \
            pytest.raises(_Unreachable):
        remote._request("POST", "/v1/entries", b"{}")


# --- a service that lies about what it stored ---------------------------------------------------


def _lied_to(post: Any, get: Any = None) -> RemoteLedger:
    """A client whose agreement, as last read and checked, is the Southwark draft; the
    service's answers are ``post`` (and ``get``)."""
    from ledger.domain import Agreement  # noqa: PLC0415

    draft = _draft_entry(fixed_key(SSD), act="b" * 32)
    remote = RemoteLedger("http://127.0.0.1:9")
    remote._ledger = {"origin": ORIGIN}
    remote._kept[REF] = Agreement.replay([(draft, datetime(2003, 12, 16, 10, tzinfo=UTC))],
                                         ORIGIN)
    remote._post = post  # type: ignore[method-assign]
    if get is not None:
        remote._get = get  # type: ignore[method-assign]
    return remote


LINE = FundingLine(SSD, FinancialYear(2004), "Social Services", Decimal(748000), "confirmed")


@pytest.mark.parametrize("recorded", ["2003-12-01T00:00:00+00:00", "2003-12-16T12:00:00"])
def test_an_act_stored_as_posted_at_a_time_the_rules_refuse_is_not_reported_recorded(
        recorded: str) -> None:
    # The entry as posted, with a recorded time two weeks before its own stated time (or a
    # time with no zone): stored so, it breaks a rule, and no verifier would take it.
    def post(path: str, body: bytes, lost: str = "") -> dict[str, Any]:
        return {"entry": body.decode(), "recorded": recorded}

    remote = _lied_to(post)
    with pytest.raises(VerificationFailed, match="does not check out"):
        remote.declare(REF, LINE, fixed_key(SSD), datetime(2003, 12, 16, 12, tzinfo=UTC))
    assert REF not in remote._kept


def test_an_answer_naming_an_entry_the_agreement_does_not_hold_is_not_reported_recorded(
        ) -> None:
    # The service answers with an entry of this act further on, signed by another key; the
    # agreement, read again, holds no such entry.
    draft = _draft_entry(fixed_key(SSD), act="b" * 32)

    def post(path: str, body: bytes, lost: str = "") -> dict[str, Any]:
        s = Entry.parse(body.decode()).statement
        forged = Statement(s.origin, s.agreement, s.seq + 1, ZERO_HASH, s.action, s.partner,
                           s.key, s.at, s.body, s.act)
        return {"entry": Entry.sign(forged, fixed_key(PCT)).text,
                "recorded": "2003-12-16T12:00:00+00:00"}

    def get(path: str) -> dict[str, Any]:
        if path == "/v1/ledger":
            return {"origin": ORIGIN}
        return {"entries": [{"entry": draft.text, "recorded": "2003-12-16T10:00:00+00:00"}]}

    remote = _lied_to(post, get)
    with pytest.raises(VerificationFailed, match="does not hold"):
        remote.declare(REF, LINE, fixed_key(SSD), datetime(2003, 12, 16, 12, tzinfo=UTC))


def test_tables_the_service_cannot_read_are_named_in_one_line(served: Served,
                                                              tmp_path: Path) -> None:
    """A refusal of the ledger's own tables (here a column dropped behind the ledger's back)
    is answered as the damage it is, in one line, not as the server's traceback."""
    from tests.tamper import Backdoor  # noqa: PLC0415

    partner, args = SOUTHWARK[0]
    partner_cli(served.url, tmp_path / partner, partner).run(*args, "--as", partner)
    assert http("GET", served.url + "/v1/agreements")[0] == 200
    Backdoor(served.ledger_url).execute("ALTER TABLE agreements DROP COLUMN head")
    code, answer = http("GET", served.url + "/v1/agreements")
    assert (code, answer["kind"]) == (500, "damaged")
    assert "tables are not as this ledger keeps them" in answer["error"]
