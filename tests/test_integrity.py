"""The ledger's two promises: an act reported "recorded" is in the record exactly once, and
nobody who can write the database changes the record without ``verify`` naming it, or gets the
operator or a partner to sign what the entries do not say.

Each test guards one defect that was found by using the ledger as a partner, an operator or an
attacker would (the integrity issue's defects 1 to 8); each failed before the fix it guards.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from eventsourcing.persistence import OperationalError

from ledger import merkle
from ledger.application import Ledger
from ledger.checkpoints import CheckpointRecord
from ledger.domain import agreement_id
from ledger.errors import AlreadyRecorded
from ledger.identity import IDENTITY_ID
from ledger.note import SignedNote, sign_note
from ledger.statement import Entry, Statement, new_act_id
from ledger.storage import parse_location
from projections.audit import verify_ledger
from projections.readmodels import ReadModels
from projections.views import budget_view
from tests import load
from tests.keys import fixed_key
from tests.tamper import (
    ALCOHOL,
    COUNCIL,
    ENTRIES,
    ORIGIN,
    PCT,
    SALFORD,
    SALFORD_LOG,
    Backdoor,
    Cli,
    entry_text,
    mallory,
)

ROOT = Path(__file__).resolve().parents[1]


# --- 1. every act reported "recorded" is stored exactly once -------------------------------------


def _payments_paid(url: str) -> Decimal:
    ledger = Ledger(parse_location(url))
    models = ReadModels(ledger)
    try:
        reference = load.SAME_ACT[0]
        return budget_view(models.load(reference)).years[0].position.paid
    finally:
        models.close()
        ledger.close()


def _stored_acts(url: str) -> Counter[str]:
    """How many times each act identity of the repeated payment is stored."""
    ledger = Ledger(parse_location(url))
    try:
        acts: Counter[str] = Counter()
        for act in ledger.agreement(load.SAME_ACT[0]).history:
            s = act.entry.statement
            if s.action == "contribute" and "payment" in s.body and s.act is not None:
                acts[s.act] += 1
        return acts
    finally:
        ledger.close()


def _identical_writers(url: str, tmp: Path, acts: int, workers: int = 8
                       ) -> list[tuple[subprocess.Popen[bytes], Path]]:
    started = []
    for n in range(workers):
        out = tmp / f"identical-{n}.jsonl"
        started.append((subprocess.Popen([sys.executable, "-m", "tests.load", "identical", url,
                                          str(acts), str(out)], cwd=ROOT), out))
    return started


def _reported(outs: list[Path]) -> list[dict[str, Any]]:
    found = []
    for out in outs:
        if out.exists():
            for line in out.read_text(encoding="utf-8").splitlines():
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue  # a line torn by SIGKILL was never reported
    return found


@pytest.mark.slow
def test_eight_writers_making_the_same_payment_fifty_times_each_store_every_one(
        ledger_url: str, tmp_path: Path) -> None:
    load.prepare(ledger_url).close()
    workers = _identical_writers(ledger_url, tmp_path, acts=50)
    for proc, _ in workers:
        assert proc.wait(timeout=600) == 0
    reported = _reported([out for _, out in workers])
    assert len(reported) == 8 * 50
    stored = _stored_acts(ledger_url)
    # Each act reported is stored once; nothing else is.
    assert sorted(stored) == sorted(r["act"] for r in reported)
    assert set(stored.values()) == {1}
    assert len({r["entry_hash"] for r in reported}) == len(reported)
    assert _payments_paid(ledger_url) == load.SAME_ACT[2] * len(reported)
    assert verify_ledger(Ledger(parse_location(ledger_url))).ok


@pytest.mark.slow
def test_writers_of_the_same_payment_killed_at_random_store_every_act_they_reported_once(
        ledger_url: str, tmp_path: Path) -> None:
    load.prepare(ledger_url).close()
    rng = random.Random(20261130)
    workers = _identical_writers(ledger_url, tmp_path, acts=50)
    killed = 0
    for proc, out in workers:
        # Killed at a random point of its run, after it has reported some acts: by the
        # writer's own progress, not by the clock, which a fast or a loaded machine moves.
        after = rng.randint(1, 25)
        while proc.poll() is None and len(_reported([out])) < after:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
    for proc, _ in workers:
        proc.wait(timeout=600)
    assert killed > 0, "every writer finished before it could be killed; kill sooner"
    reported = _reported([out for _, out in workers])
    stored = _stored_acts(ledger_url)
    assert set(stored.values()) <= {1}, "an act is stored twice"
    missing = {r["act"] for r in reported} - set(stored)
    assert not missing, f"{len(missing)} acts reported as recorded are not stored"
    # A killed writer may have had one act land before it could report it; no more.
    assert len(stored) - len(reported) <= killed
    assert _payments_paid(ledger_url) == load.SAME_ACT[2] * len(stored)
    assert verify_ledger(Ledger(parse_location(ledger_url))).ok


def test_two_partners_machines_making_the_same_payment_in_the_same_second_make_two_entries(
        ledger_url: str) -> None:
    load.prepare(ledger_url).close()
    second = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    one = Ledger(parse_location(ledger_url), clock=lambda: second)
    other = Ledger(parse_location(ledger_url), clock=lambda: second)
    reference, partner, amount = load.SAME_ACT
    try:
        # Both read the agreement at the same point, then act: the same statement but for
        # its identity.
        one.agreement(reference)
        other.agreement(reference)
        first = one.pay(reference, partner, load.YEAR, amount, "pool", fixed_key(partner))
        then = other.pay(reference, partner, load.YEAR, amount, "pool", fixed_key(partner))
    finally:
        one.close()
        other.close()
    assert first.entry.statement.act != then.entry.statement.act
    assert then.entry.statement.seq == first.entry.statement.seq + 1
    assert sum(_stored_acts(ledger_url).values()) == 2
    assert _payments_paid(ledger_url) == 2 * amount


def test_an_act_whose_answer_was_lost_after_it_landed_is_reported_once_and_stored_once(
        ledger_url: str) -> None:
    load.prepare(ledger_url).close()
    ledger = Ledger(parse_location(ledger_url))
    reference, partner, amount = load.SAME_ACT
    real_put = ledger.events.put

    def put_then_lose_the_answer(*args: Any, **kwargs: Any) -> Any:
        real_put(*args, **kwargs)  # committed...
        raise OperationalError("server closed the connection unexpectedly")  # ...answer lost

    try:
        with mock.patch.object(ledger.events, "put", put_then_lose_the_answer):
            done = ledger.pay(reference, partner, load.YEAR, amount, "pool", fixed_key(partner))
        stored = _stored_acts(ledger_url)
        assert stored == Counter({done.entry.statement.act: 1})
        # The same act offered again is recognised by its identity, never stored again.
        with pytest.raises(AlreadyRecorded, match=f"is already recorded as entry "
                                                  f"{done.entry.statement.seq}"):
            ledger.submit(_again(ledger, done.entry))
        assert _stored_acts(ledger_url) == stored
    finally:
        ledger.close()


def _again(ledger: Ledger, entry: Entry) -> Entry:
    """``entry``'s act signed again at the agreement's next place, as a retry would."""
    agreement = ledger.agreement(entry.statement.agreement)
    s = entry.statement
    statement = Statement(s.origin, s.agreement, agreement.version + 1, agreement.head,
                          s.action, s.partner, s.key, s.at, s.body, s.act)
    return Entry.sign(statement, fixed_key(s.partner))


# --- 2. the operator never signs a tree the entries do not give ----------------------------------


@pytest.fixture
def cli(ledger_url: str, tmp_path: Path) -> Cli:
    """The Salford partnership with its first quarter's payments, checkpointed by the operator
    and cosigned by the council."""
    cli = Cli(ledger_url, tmp_path)
    cli.salford()
    cli.payments()
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    return cli


def _forged_payment(cli: Cli) -> tuple[Entry, int]:
    """The PCT pays £5.00 (Salford seq 11), and also signs, with its own key, another entry
    for the same place: a payment of £900,000.00. Returns that entry and the log index."""
    cli.run("contribute", SALFORD, "--as", PCT, "--year", "2003/04", "--amount", "5",
            "--paid", "--at", "2004-05-01T09:00:00Z")
    cli.run("prove", "0")  # any read of the log sequences the new entry
    genuine = Backdoor(cli.url).entry_row(SALFORD, 11).entry
    statement = Statement.from_json(genuine["statement"])
    body = {"payment": {**statement.body["payment"], "amount": "900000.00"}}
    forged = Entry.sign(Statement(statement.origin, statement.agreement, statement.seq,
                                  statement.prev, statement.action, statement.partner,
                                  statement.key, statement.at, body, new_act_id()),
                        fixed_key(PCT))
    return forged, ENTRIES + 2


def _plant_leaf(backdoor: Backdoor, index: int, size: int, leaf: bytes) -> None:
    """Put ``leaf`` at ``index`` of the stored tree and make every stored node consistent with
    it: a tree that is whole, but of other entries."""
    leaves = [leaf if i == index else backdoor.node(0, i) for i in range(size)]
    nodes: dict[tuple[int, int], bytes] = {}
    for i, digest in enumerate(leaves):
        for level, position, value in merkle.nodes_to_store(i, digest,
                                                            lambda lv, ix: nodes[(lv, ix)]):
            nodes[(level, position)] = value
    for (level, position), value in nodes.items():
        backdoor.set_node(level, position, value)


def test_the_operator_refuses_to_checkpoint_a_tree_holding_a_leaf_the_entries_do_not_give(
        cli: Cli) -> None:
    forged, index = _forged_payment(cli)
    size = index + 1
    backdoor = Backdoor(cli.url)
    _plant_leaf(backdoor, index, size, merkle.leaf_hash(forged.text.encode()))
    refused = cli.run("checkpoint", code=3).stderr
    assert refused.startswith("error: REFUSED, no checkpoint was signed: the record does not "
                              f"check out: log index {index}, agreement {SALFORD}, seq 11: leaf "
                              f"hash in the stored log does not match the entry")
    # Nothing was signed: the latest checkpoint is still the one of size ENTRIES + 2.
    assert cli.json("prove", "0")["tree_size"] == ENTRIES + 2
    # Nor will anyone cosign over it, or prove the forged entry in a signed tree.
    assert "REFUSED" in cli.run("cosign", "--as", PCT, code=3).stderr


def test_no_bundle_carrying_a_forged_entry_passes_verification(cli: Cli) -> None:
    forged, index = _forged_payment(cli)
    cli.run("checkpoint")
    bundle_path = cli.folder / "bundle.json"
    cli.run("export", SALFORD, "-o", str(bundle_path))
    backdoor = Backdoor(cli.url)
    _plant_leaf(backdoor, index, index + 1, merkle.leaf_hash(forged.text.encode()))
    # The forger's bundle: its entry where the genuine one was, with the forged tree's proof.
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    item = next(e for e in bundle["entries"] if e["log_index"] == index)
    item["entry"] = json.loads(forged.text)
    with Cli_log(cli) as log:
        item["proof"] = [merkle_b64(p) for p in log.inclusion(index, index + 1)]
    bundle_path.write_text(json.dumps(bundle), encoding="utf-8")
    report = cli.json("verify-bundle", str(bundle_path), "--operator-key",
                      fixed_key("operator").public_key.hex(), code=3)
    assert any(f["log_index"] == index and "inclusion proof" in f["what"]
               for f in report["failures"]), report["failures"]


class Cli_log:  # noqa: N801 - a context manager read like a function
    """The stored log of ``cli``'s ledger, read as the ledger reads it."""

    def __init__(self, cli: Cli) -> None:
        self.ledger = Ledger(parse_location(cli.url))
        self.models = ReadModels(self.ledger)

    def __enter__(self) -> Any:
        from projections.log import MerkleLog  # noqa: PLC0415

        return MerkleLog(self.models)

    def __exit__(self, *_: object) -> None:
        self.models.close()
        self.ledger.close()


def merkle_b64(digest: bytes) -> str:
    import base64  # noqa: PLC0415

    return base64.b64encode(digest).decode()


# --- 3. the checkpoint tables are verified, and never trusted ------------------------------------


def test_deleted_cosignature_rows_are_named_and_bundles_keep_the_cosignature(cli: Cli) -> None:
    cli.run("prove", "0")  # the log's tables list the cosignature...
    Backdoor(cli.url).execute("DELETE FROM cosignatures")  # ...until it is deleted
    failures = cli.verify_fails()
    assert [f["what"] for f in failures] == [
        f"the cosignature by {COUNCIL!r} of the checkpoint of size {ENTRIES + 2} is missing "
        f"from the cosignatures table; run 'ledger rebuild'"]
    bundle = cli.folder / "bundle.json"
    cli.run("export", "-o", str(bundle))
    note = SignedNote.parse(json.loads(bundle.read_text(encoding="utf-8"))["checkpoint"])
    assert [s.name for s in note.signatures] == [ORIGIN, COUNCIL]
    cli.run("rebuild")
    cli.run("verify")


def test_a_forged_note_in_the_checkpoints_table_is_named_and_proofs_still_come_from_the_store(
        cli: Cli) -> None:
    forged = SignedNote.parse(cli.json("prove", "0")["checkpoint"])
    text = forged.text.replace(f"\n{ENTRIES + 2}\n", f"\n{ENTRIES + 3}\n")
    note = SignedNote(text, (sign_note(text, ORIGIN, mallory().private_key),)).format()
    Backdoor(cli.url).execute("UPDATE checkpoints SET note = ?", (note,))
    failures = cli.verify_fails()
    assert [f["what"] for f in failures] == [
        f"the checkpoint of size {ENTRIES + 2} differs from the event store in the checkpoints "
        f"table; run 'ledger rebuild'"]
    proof = cli.json("prove", f"{SALFORD}:3")
    assert proof["log_index"] == SALFORD_LOG[3]
    assert SignedNote.parse(proof["checkpoint"]).text == forged.text


# --- 4. cosigning ---------------------------------------------------------------------------------


def test_a_partner_cannot_cosign_with_a_key_it_never_held(cli: Cli) -> None:
    cli.run("checkpoint")  # nothing new since: the same size, already cosigned by the council
    refused = cli.run("cosign", "--as", PCT, "--key", "mallory", code=1)
    assert refused.stderr.startswith(f"error: key {mallory().key_id[:16]} is not a key "
                                     f"{PCT!r} acts with now")
    assert json.loads(cli.run("prove", "0", "--json").stdout)["checkpoint"].count("—") == 2
    cli.run("verify")
    cli.run("report", SALFORD, "-o", str(cli.folder / "report.html"))


def test_after_an_appointment_the_partner_cosigns_with_its_new_key(cli: Cli) -> None:
    from ledger.keystore import KeyStore  # noqa: PLC0415
    from tests.keys import TEST_COST  # noqa: PLC0415
    from tests.tamper import PASSPHRASE  # noqa: PLC0415

    KeyStore(cli.keys).create("council-2004", PASSPHRASE.encode(), cost=TEST_COST)
    cli.run("appoint", SALFORD, "--as", COUNCIL, "--signatory", "Jane Doe",
            "--designation", "Director", "--key", "council-2004", "--at", "2004-05-01T09:00:00Z")
    cli.run("appoint", ALCOHOL, "--as", COUNCIL, "--signatory", "Jane Doe",
            "--designation", "Director", "--key", "council-2004", "--at", "2004-05-01T09:00:00Z")
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    new_key = KeyStore(cli.keys).public("council-2004").public_key
    from ledger.note import COSIGNATURE_KEY_TYPE, note_key_id  # noqa: PLC0415

    note = SignedNote.parse(cli.json("prove", "0")["checkpoint"])
    council = [s for s in note.signatures if s.name == COUNCIL]
    assert [s.key_id for s in council] == [note_key_id(COUNCIL, new_key, COSIGNATURE_KEY_TYPE)]
    cli.run("verify")


def test_verify_bundle_ignores_a_signature_line_under_a_key_it_does_not_know(cli: Cli) -> None:
    path = cli.folder / "bundle.json"
    cli.run("export", "-o", str(path))
    bundle = json.loads(path.read_text(encoding="utf-8"))
    note = SignedNote.parse(bundle["checkpoint"])
    stranger = sign_note(note.text, "witness.elsewhere.example", mallory().private_key)
    bundle["checkpoint"] = note.format() + stranger.line()
    path.write_text(json.dumps(bundle), encoding="utf-8")
    out = cli.run("verify-bundle", str(path), "--operator-key",
                  fixed_key("operator").public_key.hex()).stdout
    assert (f"checked: checkpoint signed by the operator, cosigned by {COUNCIL}; 1 signature "
            f"line under keys the bundle does not give were ignored") in out


def test_the_operator_signs_checkpoints_under_the_ledgers_origin(cli: Cli) -> None:
    note = SignedNote.parse(cli.json("prove", "0")["checkpoint"])
    assert note.signatures[0].name == ORIGIN


def test_a_cosigner_name_stands_for_one_partner_in_the_ledger(cli: Cli) -> None:
    # Another organisation joins another agreement under the id the probation service holds
    # in Salford's, with a key of its own: "gm-probation" now names two partners.
    from tests.tamper import PROBATION  # noqa: PLC0415

    cli.run("draft", "bolton-alcohol-2005", "--as", PCT, "--title", "Bolton alcohol services",
            "--terms-hash", "ab" * 32, "--start", "2005-04-01", "--notice", "3m",
            "--name", "Salford PCT", "--role", "commissioning", "--signatory", "Anne Williams",
            "--designation", "Chair", "--at", "2004-05-01T09:00:00Z")
    cli.run("join", "bolton-alcohol-2005", "--as", PROBATION, "--key", "mallory",
            "--name", "Bolton Probation", "--role", "other", "--signatory", "M. Allory",
            "--designation", "Officer", "--at", "2004-05-01T10:00:00Z")
    cli.run("checkpoint")
    # The probation service cosigns first, and so holds the name in this ledger...
    cli.run("cosign", "--as", PROBATION, "--key", PROBATION)
    cli.run("checkpoint")
    cli.run("cosign", "--as", PCT)
    # ...and the other partner of that id may not cosign under it.
    refused = cli.run("cosign", "--as", PROBATION, "--key", "mallory", code=1).stderr
    assert (f"the cosigner name {PROBATION!r} is held in this ledger by another partner of that "
            f"id") in refused
    cli.run("verify")


# --- 6. import is all or nothing --------------------------------------------------------------


def test_an_import_stopped_after_its_first_write_leaves_all_or_nothing(cli: Cli) -> None:
    bundle = cli.folder / "whole.jsonl"
    cli.run("export", "-o", str(bundle))
    sqlite = Backdoor(cli.url).sqlite
    target = str(cli.folder / "copy.db") if sqlite else _fresh_postgres()
    from eventsourcing.sqlite import SQLiteApplicationRecorder  # noqa: PLC0415

    from ledger import application  # noqa: PLC0415

    calls = {"n": 0}

    def insert_then_stop(real: Any) -> Any:
        def insert(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            calls["n"] += 1
            raise KeyboardInterrupt  # the process dies after its first write
        return insert

    # The import writes its batches in one transaction, each through the recorder's own
    # insert step (on PostgreSQL, a COPY): the first batch is written, then the process stops.
    with (mock.patch.object(SQLiteApplicationRecorder, "_insert_events",
                            insert_then_stop(SQLiteApplicationRecorder._insert_events)),
          mock.patch.object(application, "copy_events",
                            insert_then_stop(application.copy_events))):
        result = cli.runner.invoke(_app(), ["import", str(bundle), "--ledger", target],
                                   env={"LEDGER_KEYS": str(cli.keys), "LEDGER_URL": None})
    assert calls["n"] == 1
    assert result.exit_code == 130
    # Nothing at all: the ledger file the import made is gone, the schema holds no event.
    if sqlite:
        assert not Path(target).exists()
    else:
        assert Backdoor(target).event_count() == 0
    # The same import, not stopped, gives everything, checkpoint and cosignature included.
    cli.run("import", str(bundle), ledger=target)
    copy = Backdoor(target)
    entries = sum(1 for r in copy.rows() if r.topic.startswith("agreement-ledger:Agreement."))
    assert entries == ENTRIES + 2
    report = cli.json("verify", ledger=target)
    assert report["ok"]
    assert cli.json("prove", "0", ledger=target)["tree_size"] == ENTRIES + 2


def _app() -> Any:
    from commands.app import app  # noqa: PLC0415

    return app


def _fresh_postgres() -> str:
    from tests.conftest import POSTGRES_URL, fresh_schema  # noqa: PLC0415

    assert POSTGRES_URL is not None
    return fresh_schema(POSTGRES_URL)[1]


# --- 7. verify checks one snapshot while others write -------------------------------------------


@pytest.mark.slow
def test_verify_while_a_writer_acts_finds_nothing_wrong(ledger_url: str, tmp_path: Path) -> None:
    load.prepare(ledger_url).close()
    writer = subprocess.Popen([sys.executable, "-m", "tests.load", "worker", ledger_url, "1",
                               "400", str(tmp_path / "writer.jsonl")], cwd=ROOT)
    ledger = Ledger(parse_location(ledger_url))
    try:
        runs = []
        while writer.poll() is None and len(runs) < 8:
            report = verify_ledger(ledger, workers=1)
            runs.append([f.line() for f in report.failures])
        assert len(runs) >= 2, "the writer finished before verify could run beside it"
        assert runs == [[]] * len(runs)
    finally:
        writer.kill()
        writer.wait()
        ledger.close()


# --- 8. damage is named, never a traceback ------------------------------------------------------


def test_a_reset_log_tracking_position_is_named(cli: Cli) -> None:
    Backdoor(cli.url).execute("UPDATE projection_tracking SET position = 0 WHERE name = 'log'")
    failures = cli.verify_fails()
    assert any("the stored log cannot be brought up to date" in f["what"] for f in failures)


def test_an_entry_replayed_under_another_agreement_is_named(cli: Cli) -> None:
    backdoor = Backdoor(cli.url)
    # The alcohol agreement's join, stored again as the next event of Salford's.
    join = backdoor.entry_row(ALCOHOL, 2)
    salford = backdoor.entry_row(SALFORD, 10)
    backdoor.execute("INSERT INTO stored_events (originator_id, originator_version, topic, "
                     "state) VALUES (?, ?, ?, ?)",
                     (agreement_id(SALFORD), 11, join.topic,
                      json.dumps({**salford.state, "entry": entry_text(join.entry)}).encode()))
    failures = cli.verify_fails()
    assert any(f["agreement"] == SALFORD and f["seq"] == 11
               and f"entry names agreement {ALCOHOL!r} but is stored under another" in f["what"]
               for f in failures), failures


def test_an_extra_tree_node_is_named(cli: Cli) -> None:
    Backdoor(cli.url).execute('INSERT INTO log_nodes (level, "index", hash) VALUES (?, ?, ?)',
                              (3, 5, b"\x00" * 32))
    failures = cli.verify_fails()
    assert any("that no log of" in f["what"] and "level 3, index 5" in f["what"]
               for f in failures), failures


def test_a_second_identity_event_is_named(cli: Cli) -> None:
    backdoor = Backdoor(cli.url)
    first = next(r for r in backdoor.rows() if r.originator_id == IDENTITY_ID)
    backdoor.execute("INSERT INTO stored_events (originator_id, originator_version, topic, "
                     "state) VALUES (?, ?, ?, ?)",
                     (IDENTITY_ID, 2, first.topic, json.dumps(first.state).encode()))
    refused = cli.run("verify", code=3).stderr
    assert refused.startswith("error: the ledger's identity was altered: 2 events are stored "
                              "under it")


def test_a_cosignature_event_forged_under_a_key_the_partner_never_held_is_named(
        cli: Cli) -> None:
    backdoor = Backdoor(cli.url)
    cosigned = next(r for r in backdoor.rows()
                    if r.topic == CheckpointRecord.Cosigned.TOPIC)
    backdoor.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                     (json.dumps({**cosigned.state, "public_key": mallory().public_key.hex()})
                      .encode(), cosigned.notification_id))
    failures = cli.verify_fails()
    assert any(f"a cosignature by {COUNCIL!r} was made with a key that partner never held"
               in f["what"] for f in failures), failures


# --- ledgers written before acts had an identity --------------------------------------------------


def test_a_ledger_written_before_acts_had_an_identity_verifies_and_takes_new_acts(
        location: Any) -> None:
    from dataclasses import dataclass  # noqa: PLC0415
    from datetime import timedelta  # noqa: PLC0415

    from ledger.errors import RuleViolation  # noqa: PLC0415
    from ledger.values import FinancialYear  # noqa: PLC0415
    from tests.fixtures.generate import PCT as FIXTURE_PCT  # noqa: PLC0415
    from tests.fixtures.generate import REFERENCE, SIGNED_V1  # noqa: PLC0415

    @dataclass(frozen=True)
    class Stored:
        text: str
        agreement: str
        seq: int
        action: str
        recorded: datetime

    # The fixture agreement's five version 1 entries, stored as 0.1 stored them.
    entries = [Entry.parse(json.loads(p.read_bytes())["entry"])
               for p in sorted(SIGNED_V1.glob("*.json"))]
    origin = entries[0].statement.origin
    ledger = Ledger(location, create=True)
    try:
        ledger.store_verified([
            ledger.identity_event(origin, "operator", fixed_key("operator").public_key),
            *(ledger.stored_event(Stored(e.text, e.statement.agreement, e.statement.seq,
                                         e.statement.action,
                                         e.statement.at + timedelta(minutes=1)))
              for e in entries)])
        assert verify_ledger(ledger).ok
        paid = ledger.pay(REFERENCE, FIXTURE_PCT, FinancialYear(2003), Decimal("100.00"),
                          "PCT mainstream", fixed_key(FIXTURE_PCT))
        assert paid.entry.statement.version == 2
        assert verify_ledger(ledger).ok
        # A new act is signed as version 2; version 1 is only read in the history before.
        agreement = ledger.agreement(REFERENCE)
        s = paid.entry.statement
        old_style = Statement(s.origin, s.agreement, agreement.version + 1, agreement.head,
                              s.action, s.partner, s.key, s.at, s.body)
        with pytest.raises(RuleViolation, match="a new act is a version 2 statement"):
            ledger.submit(Entry.sign(old_style, fixed_key(FIXTURE_PCT)))
    finally:
        ledger.close()


# --- found by an attacker reviewing the change ----------------------------------------------------
#
# Someone who can write the database, or colludes with the operator, tried to make the record
# lie while these checks pass. Each test is one such attempt, refused.


def test_a_tracking_position_moved_past_the_last_event_is_named(cli: Cli) -> None:
    Backdoor(cli.url).execute(
        "UPDATE projection_tracking SET position = 1000000000 WHERE name = 'views'")
    cli.run("contribute", SALFORD, "--as", PCT, "--year", "2003/04", "--amount", "5",
            "--paid", "--at", "2004-05-01T09:00:00Z")
    for args in ((), (SALFORD,)):
        failures = cli.json("verify", *args, code=3)["failures"]
        assert any("the tracking position of 'views' is 1000000000, past the last event"
                   in f["what"] for f in failures), failures


def test_read_models_rolled_back_to_an_earlier_state_are_named(cli: Cli) -> None:
    # Salford's rows as they stood after its seventh entry, consistent among themselves.
    from projections.rows import rows_for  # noqa: PLC0415

    ledger = Ledger(parse_location(cli.url))
    models = ReadModels(ledger)
    try:
        models.catch_up()
        old = rows_for(ledger.agreement(SALFORD, version=7))
        from projections.db import writing  # noqa: PLC0415

        with writing(models.engine) as conn:
            models.write(conn, [old])
            from sqlalchemy import delete  # noqa: PLC0415

            from projections.models import AGREEMENT_TABLES  # noqa: PLC0415
            for table in AGREEMENT_TABLES:
                t: Any = table.__table__
                if "seq" in t.c:
                    conn.execute(delete(table).where(t.c.reference == SALFORD, t.c.seq > 7))
    finally:
        models.close()
        ledger.close()
    # The screens that read the tables lie (status replays the agreement's own entries)...
    listed = {a["reference"]: a["entries"] for a in cli.json("list")["agreements"]}
    assert listed[SALFORD] == 7
    assert cli.json("status", SALFORD)["entries"] > 7
    for args in ((), (SALFORD,)):  # ...and verify says so
        failures = cli.json("verify", *args, code=3)["failures"]
        assert any(f["agreement"] == SALFORD and "read model shows 7 entries of" in f["what"]
                   for f in failures), failures


def test_a_partner_cannot_claim_another_partners_act_by_reusing_its_identity(
        cli: Cli) -> None:
    # The operator drops the council's payment, answers "conflict", and hands its act
    # identity to a colluding partner, who records an act of its own under it.
    from eventsourcing.persistence import IntegrityError  # noqa: PLC0415

    from ledger.values import FinancialYear  # noqa: PLC0415
    from tests.tamper import PROBATION  # noqa: PLC0415

    council = Ledger(parse_location(cli.url))
    real_put = council.events.put
    hijacked: dict[str, Any] = {}

    def dropping_put(events: Any, *args: Any, **kwargs: Any) -> Any:
        if not hijacked:
            act = json.loads(events[0].entry)["statement"]["act"]
            colluder = Ledger(parse_location(cli.url), new_act=lambda: act)
            try:
                hijacked["entry"] = colluder.notice(SALFORD, PROBATION, "withdrawal", "",
                                                    fixed_key(PROBATION)).entry
            finally:
                colluder.close()
            raise IntegrityError("seq taken")
        return real_put(events, *args, **kwargs)

    try:
        with mock.patch.object(council.events, "put", dropping_put):
            done = council.pay(SALFORD, COUNCIL, FinancialYear(2003), Decimal("1000.00"), None,
                               fixed_key(COUNCIL))
    finally:
        council.close()
    # The council's own act was recorded, as its own, after the colluder's.
    assert hijacked["entry"].statement.act == done.entry.statement.act
    assert (done.entry.statement.partner, done.entry.statement.action) == (COUNCIL,
                                                                            "contribute")
    assert done.entry.statement.seq == hijacked["entry"].statement.seq + 1
    assert cli.json("budget", SALFORD)["years"][0]["partners"][COUNCIL]["paid"] == "73500.00"


def test_a_cosignature_made_while_verify_runs_is_not_taken_for_damage(cli: Cli) -> None:
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.logcheck import LogCheck  # noqa: PLC0415

    ledger = Ledger(parse_location(cli.url))
    models = ReadModels(ledger)
    try:
        snapshot = ledger.recorder.max_notification_id()
        check = LogCheck(MerkleLog(models), snapshot, None)
        # Another partner cosigns, and the log's tables catch up, after the snapshot.
        cli.run("cosign", "--as", PCT)
        cli.run("prove", "0")
        check.check_log()
        check.check_tables()
        assert check.failures == []
    finally:
        models.close()
        ledger.close()


def test_an_entry_stored_under_the_wrong_event_type_is_named(cli: Cli) -> None:
    backdoor = Backdoor(cli.url)
    row = backdoor.entry_row(SALFORD, 2)
    backdoor.execute("UPDATE stored_events SET topic = ? WHERE rowid = ?",
                     ("agreement-ledger:Agreement.Drafted", row.notification_id))
    failures = cli.verify_fails()
    assert any(f["agreement"] == SALFORD and f["seq"] == 2
               and "is a 'join' but is stored as a 'agreement-ledger:Agreement.Drafted' event"
               in f["what"] for f in failures), failures
    # Nothing else crashes on it: each command names the damage in one line.
    assert "cannot be replayed" in cli.run("history", SALFORD, "--as-of-entry", "3",
                                           code=3).stderr
    cli.run("rebuild")  # the read models are rebuilt from what is there; verify names it
    assert cli.verify_fails()


@pytest.mark.parametrize("under", ["a checkpoint", "nothing"])
def test_an_event_of_a_type_the_ledger_never_writes_is_named(cli: Cli, under: str) -> None:
    from ledger.checkpoints import checkpoint_id  # noqa: PLC0415

    originator = checkpoint_id(ENTRIES + 2) if under == "a checkpoint" else new_uuid()
    version = 3 if under == "a checkpoint" else 1
    Backdoor(cli.url).execute(
        "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)", (originator, version, "mallory:Event", b"{}"))
    failures = cli.verify_fails()
    assert any("of a type the ledger never writes ('mallory:Event')" in f["what"]
               for f in failures), failures


def new_uuid() -> Any:
    import uuid  # noqa: PLC0415

    return uuid.uuid4()


def test_a_log_leaf_naming_another_entry_is_named(cli: Cli) -> None:
    cli.run("prove", "0")
    Backdoor(cli.url).execute('UPDATE log_leaves SET seq = 99 WHERE "index" = 3')
    failures = cli.verify_fails()
    assert any(f["log_index"] == 3 and "the stored log says this is entry 99" in f["what"]
               for f in failures), failures


@pytest.mark.parametrize("state", [b"not json", b"{}", b'{"entry": 7, "timestamp": 1}'])
def test_garbage_stored_events_are_named_by_every_command(cli: Cli, state: bytes) -> None:
    backdoor = Backdoor(cli.url)
    row = backdoor.entry_row(SALFORD, 10)
    backdoor.execute("UPDATE stored_events SET state = ? WHERE rowid = ?",
                     (state, row.notification_id))
    assert cli.verify_fails()
    for command in (("checkpoint",), ("rebuild",), ("export", "-o", str(cli.folder / "b.json")),
                    ("prove", "0"), ("status", SALFORD), ("budget", SALFORD)):
        result = cli.runner.invoke(_app(), [*command, "--ledger", cli.url],
                                   env={"LEDGER_KEYS": str(cli.keys), "LEDGER_URL": None,
                                        "LEDGER_PASSPHRASE": "correct horse battery staple"})
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command, result.exception)
        assert result.exit_code in (0, 1, 3), (command, result.output)


def test_a_bundle_missing_a_key_its_partners_held_is_refused(cli: Cli) -> None:
    path = cli.folder / "bundle.json"
    cli.run("export", "-o", str(path))
    bundle = json.loads(path.read_text(encoding="utf-8"))
    bundle["keys"] = {}
    path.write_text(json.dumps(bundle), encoding="utf-8")
    failures = cli.json("verify-bundle", str(path), code=3)["failures"]
    assert any("which the bundle's keys do not list" in f["what"] for f in failures)


@pytest.mark.parametrize("args", [
    ("verify-bundle", "BUNDLE", "--operator-key", "zz"),
    ("import", "BUNDLE", "--operator-key", "zz"),
    ("prove", "²"),
    ("prove", f"{SALFORD}:²"),
])
def test_bad_arguments_are_one_line_never_a_traceback(cli: Cli, args: tuple[str, ...]) -> None:
    path = cli.folder / "bundle.json"
    cli.run("export", "-o", str(path))
    argv = [str(path) if a == "BUNDLE" else a for a in args]
    refused = cli.run(*argv, code=1, ledger=str(cli.folder / "other.db")
                      if args[0] == "import" else None)
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: ")


@pytest.mark.parametrize("content", ["[]", '"x"', "null"])
def test_a_corrupt_witness_memory_is_one_line(cli: Cli, content: str) -> None:
    (cli.keys / f"{COUNCIL}.witness.json").write_text(content, encoding="utf-8")
    refused = cli.run("cosign", "--as", COUNCIL, code=1)
    assert refused.stderr.startswith("error: witness state")


def test_a_bundle_whose_scope_is_not_references_is_one_line(cli: Cli) -> None:
    path = cli.folder / "bundle.json"
    cli.run("export", SALFORD, "-o", str(path))
    bundle = json.loads(path.read_text(encoding="utf-8"))
    bundle["scope"] = {"agreements": [[SALFORD]]}
    path.write_text(json.dumps(bundle), encoding="utf-8")
    refused = cli.run("verify-bundle", str(path), code=1)
    assert refused.stderr == ("error: the bundle is malformed: Expected `str`, got `array` - at "
                              "`$.scope.agreements[0]`\n")
