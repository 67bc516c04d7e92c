"""The database edited behind the ledger's back: ``ledger verify`` must fail and name the damage.

Each test records the Salford partnership through the command line, has the operator sign a
checkpoint and the council cosign it, then changes the stored record directly with SQL (see
:mod:`tests.tamper`), as someone with write access to the database could. ``ledger verify``
must exit 3 and name the damaged entry by log index, agreement and seq, in its ``--json``
failures and on stderr, without blaming the agreement that was left alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.statement import Entry, Statement
from tests.keys import fixed_key
from tests.tamper import (
    ALCOHOL,
    COUNCIL,
    ENTRIES,
    PCT,
    PROBATION,
    SALFORD,
    SALFORD_LOG,
    Backdoor,
    Cli,
    flip_base64,
    forged_next,
    mallory,
)

Failures = list[dict[str, Any]]


@pytest.fixture
def cli(ledger_url: str, tmp_path: Any) -> Cli:
    """The Salford partnership, checkpointed by the operator and cosigned by the council."""
    cli = Cli(ledger_url, tmp_path)
    cli.salford()
    cli.run("checkpoint")
    cli.run("cosign", "--as", COUNCIL)
    return cli


@pytest.fixture
def backdoor(ledger_url: str) -> Backdoor:
    """Write access to the same database, past the ledger."""
    return Backdoor(ledger_url)


def damage(cli: Cli) -> Failures:
    """Run ``ledger verify`` both ways: it exits 3, and every failure its ``--json`` lists is
    also a ``FAILED`` line on stderr, so a person reading the terminal sees the same."""
    stderr = cli.run("verify", code=3).stderr
    failures = cli.verify_fails()
    for failure in failures:
        where = [f"{name} {failure[key]}" for name, key in (
            ("log index", "log_index"), ("agreement", "agreement"), ("seq", "seq"))
            if failure[key] is not None]
        line = f"{', '.join(where)}: {failure['what']}" if where else failure["what"]
        assert f"FAILED {line}" in stderr
    return failures


def named(failures: Failures, what: str, **where: Any) -> dict[str, Any]:
    """The one failure at ``where`` (log_index, agreement, seq) whose text holds ``what``."""
    found = [f for f in failures if what in f["what"]
             and all(f[key] == value for key, value in where.items())]
    assert len(found) == 1, f"expected one failure {where} {what!r}, got {failures}"
    return found[0]


def untouched(failures: Failures, reference: str = ALCOHOL) -> None:
    """No failure blames ``reference``, which nobody touched."""
    assert not [f for f in failures if f["agreement"] == reference], failures


def test_an_untouched_ledger_verifies(cli: Cli) -> None:
    out = cli.run("verify").stdout
    assert f"verified: {ENTRIES} entries in 2 agreements" in out
    report = cli.json("verify")
    assert report["ok"] is True
    assert report["failures"] == []
    assert (report["entries"], report["agreements"]) == (ENTRIES, 2)
    assert f"the stored Merkle tree against all {ENTRIES} entries" in report["checks"]
    assert ("1 checkpoints: operator signature, the root the entries give, cosignatures, and the "
            "checkpoint tables") in report["checks"]


def test_one_changed_byte_in_an_entry_body_is_named(cli: Cli, backdoor: Backdoor) -> None:
    # The PCT's 2003/04 funding: £341,740.00 becomes £341,749.00, one digit.
    def change(entry: dict[str, Any]) -> None:
        line = entry["statement"]["body"]["line"]
        assert line["amount"] == "341740.00"
        line["amount"] = "341749.00"

    backdoor.edit_entry(SALFORD, 4, change)
    failures = damage(cli)
    named(failures, "signature does not verify", agreement=SALFORD, seq=4)
    named(failures, "leaf hash in the stored log does not match", log_index=SALFORD_LOG[4],
          agreement=SALFORD, seq=4)
    untouched(failures)


def test_a_failed_verification_says_how_many_of_all_the_entries_checked_out(
        cli: Cli, backdoor: Backdoor, tmp_path: Any) -> None:
    bundle = tmp_path / "bundle.json"
    cli.run("export", "-o", str(bundle))
    backdoor.edit_entry(SALFORD, 4, lambda e: e.update(signature=flip_base64(e["signature"])))
    checked = cli.json("verify", code=3)["entries"]
    assert checked < ENTRIES
    # Not "verification FAILED: 12 entries", as if only those were in the ledger.
    verdict = cli.run("verify", code=3).stdout.splitlines()[-1]
    assert verdict == (f"verification FAILED: {checked} of {ENTRIES} entries in 2 agreements "
                       f"checked out")
    # The same of a bundle whose entry was changed after it was exported.
    document = json.loads(bundle.read_text(encoding="utf-8"))
    entry = document["entries"][SALFORD_LOG[4]]["entry"]
    entry["signature"] = flip_base64(entry["signature"])
    bundle.write_text(json.dumps(document), encoding="utf-8")
    told = cli.run("verify-bundle", str(bundle), code=3).stdout.splitlines()[-1]
    assert told.startswith(f"verification FAILED: {checked} of {ENTRIES} entries in 2 "
                           f"agreements checked out, checkpoint of size")


def test_a_changed_signature_is_named(cli: Cli, backdoor: Backdoor) -> None:
    # The PCT's signature of the agreement (seq 6).
    backdoor.edit_entry(SALFORD, 6, lambda e: e.update(signature=flip_base64(e["signature"])))
    failures = damage(cli)
    named(failures, "signature does not verify", agreement=SALFORD, seq=6)
    named(failures, "leaf hash", log_index=SALFORD_LOG[6], agreement=SALFORD, seq=6)
    untouched(failures)


def test_an_entry_deleted_from_the_middle_is_named(cli: Cli, backdoor: Backdoor) -> None:
    # The PCT's funding declaration (seq 4) disappears; seq 5 now follows seq 3.
    backdoor.delete_entry(SALFORD, 4)
    failures = damage(cli)
    named(failures, "does not follow entry 3", agreement=SALFORD, seq=5)
    named(failures, "missing from the event store", log_index=SALFORD_LOG[4], agreement=SALFORD,
          seq=4)
    # Verifying that one agreement names it too, rather than failing to load it.
    one = cli.json("verify", SALFORD, code=3)
    named(one["failures"], "does not follow entry 3", agreement=SALFORD, seq=5)
    # A rebuild cannot replay the gap: it refuses with one line, not a traceback.
    rebuilt = cli.run("rebuild", code=3)
    assert "deleted, moved or altered" in rebuilt.stderr
    assert "Traceback" not in rebuilt.output


def test_two_swapped_entries_are_named(cli: Cli, backdoor: Backdoor) -> None:
    # The two funding declarations (seq 4 and 5) exchange places in the store.
    backdoor.swap_entries(SALFORD, 4, 5)
    failures = damage(cli)
    named(failures, "entry says seq 5 but is stored as entry 4", agreement=SALFORD, seq=4)
    named(failures, "leaf hash", log_index=SALFORD_LOG[4], agreement=SALFORD, seq=4)
    named(failures, "leaf hash", log_index=SALFORD_LOG[5], agreement=SALFORD, seq=5)
    untouched(failures)


@pytest.mark.parametrize(("claims", "why"), [
    ("her own key", "is not the current key of partner 'salford-pct'"),
    ("the PCT's key", "signature does not verify"),
])
def test_a_forged_entry_inserted_is_named(cli: Cli, backdoor: Backdoor, claims: str,
                                          why: str) -> None:
    # Mallory writes a £100,000 payment by the PCT as Salford's next entry (seq 9), well formed
    # and chained to seq 8, but signed with her key: she does not hold the PCT's.
    body = {"payment": {"year": "2003/04", "source": "PCT mainstream", "amount": "100000.00"}}
    forged = forged_next(backdoor.entry_row(SALFORD, 8).entry, "contribute", PCT, body,
                         mallory())
    if claims == "the PCT's key":
        statement = Statement.from_json({**forged.statement.to_json(),
                                         "key": fixed_key(PCT).key_id})
        forged = Entry.of(statement, forged.signature)
    backdoor.append_entry(SALFORD, forged, like=(SALFORD, 4))
    failures = damage(cli)
    named(failures, why, agreement=SALFORD, seq=9)
    assert [f for f in failures if f["agreement"] == SALFORD] == [
        named(failures, why, agreement=SALFORD, seq=9)]
    untouched(failures)


def test_a_truncated_tail_fails_against_the_cosigned_checkpoint(cli: Cli,
                                                                backdoor: Backdoor) -> None:
    # The last two entries (the PCT joining the alcohol agreement, the probation service's
    # signature) are deleted after the checkpoint of size 10 was signed and cosigned.
    backdoor.delete_entry(SALFORD, 8)
    backdoor.delete_entry(ALCOHOL, 2)
    failures = damage(cli)
    named(failures, "holds entries the event store does not", log_index=8, agreement=ALCOHOL,
          seq=2)
    # Rebuilding the tree from what is left hides the gap from the tree, not from the
    # checkpoint: what remains is a valid prefix of each agreement, but the signed checkpoint
    # covers 10 entries.
    cli.run("rebuild")
    report = cli.json("verify", code=3)
    assert report["entries"] == ENTRIES - 2
    assert [f["what"] for f in report["failures"]] == [
        "checkpoint of size 10 is beyond the 8 entries in the event store: entries it covers "
        "were removed",
        # And what the partners remember outside the database says the same, should the
        # checkpoint be deleted too.
        *(f"the checkpoint of size 10 that {who} remembers is beyond the 8 entries the event "
          f"store holds: entries it covered were removed" for who in ("operator", COUNCIL))]


@pytest.mark.parametrize("resigned", [False, True], ids=["key-only", "join-re-signed"])
def test_a_partners_public_key_replaced_in_its_join_is_named(cli: Cli, backdoor: Backdoor,
                                                             resigned: bool) -> None:
    # The probation service's join (seq 3) is made to introduce Mallory's key. Re-signing the
    # join with her key makes it self-consistent, but the next entry's prev still names the
    # join as it was, and the log's leaf still holds its old hash.
    row = backdoor.entry_row(SALFORD, 3)
    statement = Statement.from_json(row.entry["statement"])
    assert statement.partner == PROBATION
    body = {**statement.body, "public_key": mallory().public_key.hex()}
    if resigned:
        changed = Entry.sign(Statement.from_json(
            {**statement.to_json(), "key": mallory().key_id, "body": body}), mallory())
        backdoor.write_entry(row, changed.to_json())
    else:
        backdoor.write_entry(row, {**row.entry, "statement": {**row.entry["statement"],
                                                              "body": body}})
    failures = damage(cli)
    if resigned:
        named(failures, "does not follow entry 3", agreement=SALFORD, seq=4)
    else:
        named(failures, "is not the current key of partner 'gm-probation'", agreement=SALFORD,
              seq=3)
    named(failures, "leaf hash", log_index=SALFORD_LOG[3], agreement=SALFORD, seq=3)
    untouched(failures)


@pytest.mark.parametrize(("level", "index", "what", "where"), [
    (1, 1, "tree node at level 1, index 1 is not the hash of its children", {}),
    (0, 4, "leaf hash in the stored log does not match",
     {"log_index": 4, "agreement": SALFORD, "seq": 5}),
], ids=["interior-node", "leaf"])
def test_an_altered_tree_node_is_named(cli: Cli, backdoor: Backdoor, level: int, index: int,
                                       what: str, where: dict[str, Any]) -> None:
    backdoor.set_node(level, index, bytes(reversed(backdoor.node(level, index))))
    named(damage(cli), what, **where)
    # The tree is derived from the entries, which are intact: a rebuild restores it, and the
    # cosigned checkpoint holds again.
    cli.run("rebuild")
    assert cli.json("verify")["ok"] is True


@pytest.mark.parametrize(("level", "index"), [(0, 3), (-1, 0), (1, -1), (2_000_000_000, 0)],
                         ids=["leaf-level", "below-the-leaves", "before-the-first",
                              "far-above-the-root"])
def test_a_tree_node_the_tables_never_hold_is_named(cli: Cli, backdoor: Backdoor, level: int,
                                                    index: int) -> None:
    """Leaf hashes are kept with the leaves: a row of log_nodes at level 0 (or below it, or at
    a negative index) was inserted, wherever it sits; so was one far above the root, which
    verify looked for level by level, two billion look-ups."""
    backdoor.execute('INSERT INTO log_nodes (level, "index", hash) VALUES (?, ?, ?)',
                     [level, index, bytes(32)])
    named(damage(cli), f"the stored tree holds a node at level {level}, index {index}")


@pytest.mark.parametrize("index", [2**40, -5], ids=["far-past-the-log", "before-it"])
def test_a_leaf_inserted_outside_the_log_is_named(cli: Cli, backdoor: Backdoor,
                                                  index: int) -> None:
    """A log_leaves row far past the last entry, under a notification id the event store has
    not reached (as if sequenced after verify's snapshot), went unseen: verify said
    "verified" while the next entry could not be sequenced after it."""
    backdoor.execute('INSERT INTO log_leaves ("index", notification_id, reference, seq, hash) '
                     "VALUES (?, ?, ?, ?, ?)", [index, 10**9, SALFORD, 99, bytes(32)])
    named(damage(cli), "leaves were inserted")


@pytest.mark.parametrize("edit", ["another-checkpoints-id", "upper-case", "cosignature-only"])
def test_a_checkpoint_filed_under_another_id_is_named(cli: Cli, backdoor: Backdoor,
                                                      edit: str) -> None:
    """A checkpoint's events moved under another id (another checkpoint's, or on SQLite the
    same id in upper case, which the store reads as another) still verified, while prove,
    export and cosign, which read the checkpoint by its id, could no longer find it."""
    from ledger.checkpoints import checkpoint_id  # noqa: PLC0415

    if edit != "another-checkpoints-id" and not backdoor.sqlite:
        pytest.skip("PostgreSQL keeps originator_id as a uuid: it has no upper case")
    topics = ["agreement-ledger:Checkpoint.Signed", "agreement-ledger:Checkpoint.Cosigned"]
    if edit == "cosignature-only":
        topics = topics[1:]
    for topic in topics:
        if edit == "another-checkpoints-id":
            backdoor.execute("UPDATE stored_events SET originator_id = ? WHERE topic = ?",
                             [checkpoint_id(5), topic])
        else:
            backdoor.execute("UPDATE stored_events SET originator_id = upper(originator_id) "
                             "WHERE topic = ?", [topic])
    failures = damage(cli)
    assert [f for f in failures if f["what"].startswith(f"the checkpoint of size {ENTRIES} ")
            and f["what"].endswith("the event store was altered")], failures
    if edit == "another-checkpoints-id":
        cli.run("prove", "3", code=3)  # what verify failed to warn of


def test_an_altered_cosignature_in_the_store_is_named(cli: Cli, backdoor: Backdoor) -> None:
    cosigned = [r for r in backdoor.rows() if r.topic.endswith("Checkpoint.Cosigned")]
    assert len(cosigned) == 1
    row = cosigned[0]
    # Past the 4-byte key id and 8-byte timestamp (16 base64 characters): the signature.
    name, encoded = row.state["line"].rstrip("\n").rsplit(" ", 1)
    backdoor.write_state(row, {**row.state, "line": f"{name} {flip_base64(encoded, 40)}\n"})
    named(damage(cli), f"checkpoint: the cosignature by {COUNCIL}")


@pytest.mark.parametrize("topic", ["Agreement.Drafted", "Checkpoint.Cosigned"])
def test_an_originator_id_that_is_no_uuid_is_named_in_one_line(cli: Cli, backdoor: Backdoor,
                                                               topic: str) -> None:
    if not backdoor.sqlite:
        pytest.skip("PostgreSQL keeps originator_id as a uuid column: no other text fits")
    backdoor.execute("UPDATE stored_events SET originator_id = 'not-a-uuid' WHERE rowid = "
                     "(SELECT min(rowid) FROM stored_events WHERE topic = ?)",
                     [f"agreement-ledger:{topic}"])
    # Cli.run refuses a traceback: the edit is damage to name, exit 3, in one line.
    result = cli.run("verify", code=3)
    assert "altered" in result.stderr, result.stderr
    cli.run("rebuild", code=3)


def test_tables_of_an_older_shape_under_the_current_shape_number_are_named(
        cli: Cli, backdoor: Backdoor) -> None:
    # Shape 2 kept the leaf hashes in log_nodes, at level 0, and had no log_leaves.hash.
    backdoor.execute("ALTER TABLE log_leaves DROP COLUMN hash")
    # One line naming the damage (Cli.run refuses a traceback), and the way out.
    failed = cli.run("verify", code=3)
    assert "tables are not as this ledger keeps them" in failed.stderr, failed.stderr
    assert "'ledger rebuild'" in failed.stderr
    # A command that reads the tables says the same, in one line.
    listed = cli.run("prove", "0", code=3)
    assert "tables are not as this ledger keeps them" in listed.stderr, listed.stderr
    cli.run("rebuild")
    assert "verified:" in cli.run("verify").stdout
