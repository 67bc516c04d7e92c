"""The read models as partners and auditors read them: ``list``, ``signatures``, ``history``,
and ``verify`` catching a read model edited behind the ledger's back.

Every read command catches up before it reads, so acts made a moment earlier (here through the
Ledger, as another partner's machine would) show at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)

from ledger.application import Ledger
from ledger.domain import DRAFT, EXPIRED
from ledger.errors import NotFound
from projections.db import tables_exist, writing
from projections.log import MerkleLog
from projections.models import (
    SCHEMA,
    SCHEMA_VERSION,
    AgreementRow,
    FundingLineRow,
    LogNodeRow,
    PartnerRow,
    SignatoryRow,
    SignatureRow,
    Tracking,
)
from projections.readmodels import ReadModels, stored_rows
from projections.rows import rows_for
from tests.keys import fixed_key
from tests.scenarios import COUNCIL, PCT, REF, Partnership, as_history, funded, signed
from tests.seeds import (
    SALFORD,
    SOUTHWARK,
    SOUTHWARK_COUNCIL,
    SOUTHWARK_PCT,
    Cli,
    key_folder,
    record_salford,
    record_southwark,
)


@pytest.fixture
def cli(ledger: Ledger, ledger_url: str, tmp_path: Path) -> Cli:
    """The command line on the test's ledger, with the Salford partners' keys."""
    return Cli(ledger_url, key_folder(tmp_path / "keys", (PCT, COUNCIL)))


@pytest.fixture
def models(ledger: Ledger) -> Iterator[ReadModels]:
    """The ledger's read models, closed after the test."""
    read_models = ReadModels(ledger)
    yield read_models
    read_models.close()


def now_to_the_second() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --- list ---------------------------------------------------------------------------------------


def test_list_shows_each_agreement_with_its_state_and_entries(ledger: Ledger, cli: Cli) -> None:
    assert cli.json("list") == {"agreements": []}
    record_salford(ledger)
    record_southwark(ledger, sign=False)
    listed = cli.json("list")["agreements"]
    # Salford's end date (31 March 2006) has passed: today it has expired. Southwark's partners
    # have declared but not signed, so it is still a draft.
    assert listed == [
        {"reference": SALFORD, "title": "Salford Drug Action Team pooled treatment budget",
         "state": EXPIRED, "entries": 18, "start": "2004-04-01", "end": "2006-03-31"},
        {"reference": SOUTHWARK, "title": "Integrated Community Equipment Service",
         "state": DRAFT, "entries": 8, "start": "2004-03-01", "end": "2006-03-31"},
    ]


def test_list_sees_an_agreement_drafted_since_the_last_read(ledger: Ledger, cli: Cli) -> None:
    record_southwark(ledger)
    assert [a["reference"] for a in cli.json("list")["agreements"]] == [SOUTHWARK]
    funded(ledger)
    listed = cli.json("list")["agreements"]
    assert [(a["reference"], a["entries"]) for a in listed] == [(SALFORD, 4), (SOUTHWARK, 10)]
    text = cli("list").stdout
    assert SALFORD in text
    assert SOUTHWARK in text


# --- signatures ---------------------------------------------------------------------------------


def test_signatures_show_who_signed_which_state(ledger: Ledger, cli: Cli) -> None:
    deal = funded(ledger)
    first = deal.sign(PCT, "2003-07-03T10:00:00").agreement.state_digest()
    # The council amends its line after the PCT signed: the PCT's signature stands, of the
    # state it saw, but no longer covers the agreement.
    deal.declare(COUNCIL, "290000.50", "2003-07-03T11:00:00")
    pending = cli.json("signatures", REF)
    assert pending["state"] == DRAFT
    assert pending["state_digest"] != first
    assert [(s["partner"], s["state"], s["seq"]) for s in pending["signatures"]] == [
        (PCT, first, 5)]
    assert pending["partners"] == [{"id": PCT, "signed": False}, {"id": COUNCIL, "signed": False}]
    deal.sign(COUNCIL, "2003-07-03T12:00:00")
    deal.sign(PCT, "2003-07-03T13:00:00")
    done = cli.json("signatures", REF)
    current = done["state_digest"]
    assert [(s["partner"], s["state"], s["key_id"], s["at"]) for s in done["signatures"]] == [
        (PCT, first, fixed_key(PCT).key_id, "2003-07-03T10:00:00Z"),
        (COUNCIL, current, fixed_key(COUNCIL).key_id, "2003-07-03T12:00:00Z"),
        (PCT, current, fixed_key(PCT).key_id, "2003-07-03T13:00:00Z"),
    ]
    assert done["partners"] == [{"id": PCT, "signed": True}, {"id": COUNCIL, "signed": True}]
    text = cli("signatures", REF).stdout
    assert current[:16] in text
    assert first[:16] in text


def test_signatures_name_the_key_in_use_when_the_signatory_changed(
        ledger: Ledger, cli: Cli) -> None:
    deal = Partnership(ledger)
    deal.draft("2003-07-01T09:00:00")
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    new_key = fixed_key("salford-pct/chief-executive")
    deal.appoint(PCT, new_key, "2003-07-02T09:00:00")
    deal.declare(PCT, "341740.00", "2003-07-02T10:00:00")
    deal.sign(PCT, "2003-07-03T10:00:00")
    signatures = cli.json("signatures", REF)["signatures"]
    assert [(s["partner"], s["key_id"]) for s in signatures] == [(PCT, new_key.key_id)]
    status = cli.json("status", REF)
    pct = status["partners"][0]
    assert (pct["signatory"], pct["key_id"]) == ("Mike Farrar", new_key.key_id)
    assert [s["key_id"] for s in pct["signatories"]] == [fixed_key(PCT).key_id, new_key.key_id]


# --- history ------------------------------------------------------------------------------------


def test_history_lists_every_entry_with_who_when_and_what(ledger: Ledger, cli: Cli) -> None:
    started = now_to_the_second()
    with as_history(ledger):
        deal = signed(ledger)
        deal.pay(PCT, "1250.50", "2004-04-05T09:30:00")
    entries = cli.json("history", REF)["entries"]
    assert [(e["seq"], e["action"], e["partner"]) for e in entries] == [
        (1, "draft", PCT), (2, "join", COUNCIL), (3, "contribute", PCT),
        (4, "contribute", COUNCIL), (5, "sign", PCT), (6, "sign", COUNCIL),
        (7, "contribute", PCT)]
    assert [e["key_id"] for e in entries] == [
        fixed_key(e["partner"]).key_id for e in entries]
    assert [e["at"] for e in entries] == [
        "2003-07-01T09:00:00Z", "2003-07-01T11:00:00Z", "2003-07-02T10:00:00Z",
        "2003-07-02T11:00:00Z", "2003-07-03T10:00:00Z", "2003-07-03T14:00:00Z",
        "2004-04-05T09:30:00Z"]
    # Paper history recorded today: the ledger's own recording time is now, not the stated one.
    recorded = [datetime.fromisoformat(e["recorded"].replace("Z", "+00:00")) for e in entries]
    assert all(started <= r <= now_to_the_second() for r in recorded)
    assert recorded == sorted(recorded)
    assert entries[2]["summary"] == (
        "salford-pct declared £341,740.00 confirmed for 2003/04 from PCT mainstream")
    assert entries[6]["summary"] == "salford-pct paid £1,250.50 for 2003/04 from PCT mainstream"
    assert entries[5]["summary"].startswith("salford-council signed state ")
    hashes = [act.entry.hash for act in deal.agreement.history]
    assert [e["entry_hash"] for e in entries] == hashes


def test_history_shows_an_act_made_after_the_previous_read(ledger: Ledger, cli: Cli) -> None:
    deal = signed(ledger)
    assert len(cli.json("history", REF)["entries"]) == 6
    deal.notice(COUNCIL, "2004-08-31")
    entries = cli.json("history", REF)["entries"]
    assert [(e["seq"], e["action"], e["summary"]) for e in entries[6:]] == [
        (7, "notice", "salford-council gave notice of withdrawal: Commissioning moves to the "
                      "regional pool")]
    assert "gave notice of withdrawal" in cli("history", REF).stdout


def test_reading_an_agreement_that_does_not_exist(ledger: Ledger, cli: Cli,
                                                  models: ReadModels) -> None:
    record_salford(ledger)
    with pytest.raises(NotFound, match="there is no agreement 'salford-dat-2005'"):
        models.load("salford-dat-2005")
    for command in ("status", "history", "signatures", "budget"):
        result = cli(command, "salford-dat-2005", code=1)
        assert "there is no agreement 'salford-dat-2005'" in result.stderr


# --- verify finds read models edited behind the ledger's back ------------------------------------

Tamper = Callable[[Connection], None]


def raise_an_amount(conn: Connection) -> None:
    conn.execute(update(FundingLineRow).where(
        FundingLineRow.reference == SALFORD, FundingLineRow.year == "2003/04",
        FundingLineRow.partner == PCT, FundingLineRow.source == "PCT mainstream",
    ).values(amount=341749))


def unsign_the_council(conn: Connection) -> None:
    conn.execute(update(PartnerRow).where(
        PartnerRow.reference == SALFORD, PartnerRow.partner == COUNCIL).values(signed=False))


def rename_a_signatory(conn: Connection) -> None:
    conn.execute(update(SignatoryRow).where(
        SignatoryRow.reference == SALFORD, SignatoryRow.partner == PCT, SignatoryRow.seq == 1,
    ).values(designation="Chair of the Board"))


def delete_a_signature(conn: Connection) -> None:
    conn.execute(delete(SignatureRow).where(
        SignatureRow.reference == SALFORD, SignatureRow.seq == 17))


def add_an_unknown_agreement(conn: Connection) -> None:
    row = conn.execute(select(AgreementRow.__table__).where(
        AgreementRow.reference == SALFORD)).one()
    conn.execute(insert(AgreementRow), [{**row._asdict(), "reference": "ghost-2004"}])


@pytest.mark.parametrize(("tamper", "named"), [
    pytest.param(raise_an_amount,
                 "table funding_lines, row ('salford-dat-2004', '2003/04', 'salford-pct', "
                 "'PCT mainstream'): column amount is 341749.00, a rebuild gives 341740.00",
                 id="funding-line-amount"),
    pytest.param(unsign_the_council,
                 "table partners, row ('salford-dat-2004', 'salford-council'): column signed "
                 "is False, a rebuild gives True",
                 id="partner-signed"),
    pytest.param(rename_a_signatory,
                 "table signatories, row ('salford-dat-2004', 'salford-pct', 1): column "
                 "designation is 'Chair of the Board', a rebuild gives",
                 id="signatory-designation"),
    pytest.param(delete_a_signature,
                 "table signatures, row ('salford-dat-2004', 17): missing from the stored read "
                 "model",
                 id="signature-deleted"),
    pytest.param(add_an_unknown_agreement,
                 "table agreements holds rows of agreement 'ghost-2004', which the ledger does "
                 "not hold",
                 id="unknown-agreement"),
])
def test_verify_names_the_table_and_row_edited_and_rebuild_repairs_it(
        ledger: Ledger, cli: Cli, models: ReadModels, tamper: Tamper, named: str) -> None:
    record_salford(ledger)
    cli("verify")
    with writing(models.engine) as conn:
        tamper(conn)
    failed = cli("verify", code=3)
    assert named in failed.stderr
    assert "read model differs from a rebuild" in failed.stderr
    assert "verification FAILED" in failed.stdout
    # A read command before the rebuild does not mask the damage: catch-up has nothing new to
    # apply, so the edited row stays until the read models are rebuilt.
    cli("status", SALFORD)
    assert named in cli("verify", code=3).stderr
    rebuilt = cli("rebuild")
    assert "rebuilt the read models from 18 entries" in rebuilt.stdout
    passed = cli("verify")
    assert "verified: 18 entries in 1 agreements" in passed.stdout
    assert passed.stderr == ""


def test_verify_json_names_every_damaged_agreement(ledger: Ledger, cli: Cli,
                                                   models: ReadModels) -> None:
    record_salford(ledger)
    record_southwark(ledger)
    models.catch_up()
    with writing(models.engine) as conn:
        raise_an_amount(conn)
        conn.execute(update(PartnerRow).where(
            PartnerRow.reference == SOUTHWARK, PartnerRow.partner == SOUTHWARK_PCT,
        ).values(name="Lambeth Primary Care Trust"))
    result = cli("verify", "--json", code=3)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(f["agreement"], f["what"].split(":")[1].strip()) for f in report["failures"]] == [
        (SALFORD, "table funding_lines, row ('salford-dat-2004', '2003/04', 'salford-pct', "
                  "'PCT mainstream')"),
        (SOUTHWARK, "table partners, row ('southwark-ices-2004', 'southwark-pct')"),
    ]
    assert "(and 1 more)" in result.stderr
    # Verifying one agreement names only that agreement's damage.
    one = cli("verify", SOUTHWARK, code=3)
    assert "agreement southwark-ices-2004" in one.stderr
    assert "salford" not in one.stderr
    assert SOUTHWARK_COUNCIL not in one.stderr


def test_the_stored_rows_are_exactly_what_the_entries_give(ledger: Ledger,
                                                            models: ReadModels) -> None:
    deal = record_salford(ledger)
    deal.pay(PCT, "0.10", "2004-04-05", source="PCT mainstream")
    stored = models.load(SALFORD)
    wanted = rows_for(ledger.agreement(SALFORD))
    for table, rows in wanted.tables.items():
        assert sorted(stored[table], key=repr) == sorted(rows, key=repr), table
    # Rows of another agreement stay out of this one's.
    record_southwark(ledger)
    models.catch_up()
    with models.engine.connect() as conn:
        again = stored_rows(conn, SALFORD)
    assert all(r["reference"] == SALFORD for rows in again.tables.values() for r in rows)
    assert again.tables == stored.tables


def test_tables_of_the_earlier_shape_are_rebuilt_without_what_it_kept_twice(
        ledger: Ledger, cli: Cli, models: ReadModels) -> None:
    """A ledger whose tables are of shape 2 (a timeline table beside the entries, the leaf
    hashes stored again as level-0 nodes) has them rebuilt at its first read: the tables it no
    longer keeps are dropped, and verification passes."""
    record_salford(ledger)
    models.catch_up()
    MerkleLog(models).catch_up()
    with writing(models.engine) as conn:
        timeline = Table("timeline", MetaData(), Column("reference", String(64)),
                         Column("seq", Integer))
        timeline.create(conn)
        conn.execute(insert(timeline), [{"reference": SALFORD, "seq": 1}])
        conn.execute(insert(LogNodeRow), [{"level": 0, "index": 0, "hash": bytes(32)}])
        conn.execute(update(Tracking).where(Tracking.name == SCHEMA).values(position=2))
    assert tables_exist(models.engine)
    assert "timeline" in table_names(models)
    assert cli.json("list")["agreements"][0]["reference"] == SALFORD
    again = ReadModels(ledger)
    try:
        assert again.schema() == SCHEMA_VERSION == 3
    finally:
        again.close()
    assert "timeline" not in table_names(models)
    with writing(models.engine) as conn:
        assert conn.execute(select(func.count()).select_from(LogNodeRow)
                            .where(LogNodeRow.level == 0)).scalar() == 0
    assert "verified: 18 entries in 1 agreements" in cli("verify").stdout


def table_names(models: ReadModels) -> list[str]:
    """The tables of the ledger's database (its schema, on PostgreSQL)."""
    schema = models.engine.get_execution_options().get("schema_translate_map", {}).get(None)
    return inspect(models.engine).get_table_names(schema=schema)
