"""Budget positions read from the projections: the seed funding tables to the penny.

The Salford and Southwark tables are recorded line by line through the Ledger (see
:mod:`tests.seeds`); every figure expected here is computed from those tables as the documents
print them, and compared with what the read models (and ``ledger budget``) show.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from projections.budget import BudgetView, Position
from projections.models import FundingLineRow, PaymentRow
from projections.readmodels import ReadModels
from projections.views import budget_view
from tests.scenarios import COUNCIL, PCT
from tests.seeds import (
    SALFORD,
    SALFORD_PRINTED_TOTALS,
    SALFORD_TABLE,
    SALFORD_YEARS,
    SOUTHWARK,
    SOUTHWARK_COUNCIL,
    SOUTHWARK_PCT,
    SOUTHWARK_PRINTED_TOTALS,
    SOUTHWARK_TABLE,
    SOUTHWARK_YEARS,
    Cli,
    key_folder,
    pounds,
    record_salford,
    record_southwark,
)

SALFORD_SOURCES = [row.source for row in SALFORD_TABLE]


@pytest.fixture
def cli(ledger: Ledger, ledger_url: str, tmp_path: Path) -> Cli:
    """The command line on the test's ledger, with every seed partner's key in its folder."""
    names = (PCT, COUNCIL, SOUTHWARK_COUNCIL, SOUTHWARK_PCT)
    return Cli(ledger_url, key_folder(tmp_path / "keys", names))


@pytest.fixture
def models(ledger: Ledger) -> Iterator[ReadModels]:
    """The ledger's read models, closed after the test."""
    read_models = ReadModels(ledger)
    yield read_models
    read_models.close()


def budget(models: ReadModels, reference: str) -> BudgetView:
    """The budget as the read models give it (caught up first)."""
    return budget_view(models.load(reference))


def table_total(year: str, partner: str | None = None) -> Decimal:
    """The Salford table's sum for a year (and partner), from the figures as printed."""
    return sum((row.amount(year) for row in SALFORD_TABLE
                if partner is None or row.partner == partner), Decimal("0.00"))


# --- Salford: the notification's table, source by source ------------------------------------------


def test_the_salford_table_as_printed_adds_up_to_its_own_total_funding_row() -> None:
    # The expected figures below are the table's sums; they must agree with the form's own total
    # before they can stand for it (its total for 2003/04 is printed "2262, 440").
    for year in SALFORD_YEARS:
        assert table_total(year) == pounds(SALFORD_PRINTED_TOTALS[year])
    assert table_total("2003/04") == Decimal("2262440.00")
    assert table_total("2004/05") == Decimal("2513360.00")


def test_the_salford_pool_totals_each_year_as_the_notification_states(
        ledger: Ledger, models: ReadModels) -> None:
    record_salford(ledger)
    view = budget(models, SALFORD)
    assert [y.year for y in view.years] == list(SALFORD_YEARS)
    y2003, y2004 = view.year("2003/04"), view.year("2004/05")
    assert y2003 is not None
    assert y2004 is not None
    assert y2003.position.total == Decimal("2262440.00")
    assert y2004.position.total == Decimal("2513360.00")
    # Every line is confirmed in the notification: nothing indicative, nothing to be announced.
    for year in view.years:
        assert year.position.confirmed == year.position.total
        assert year.position.indicative == Decimal("0.00")
        assert year.position.tba == 0


@pytest.mark.parametrize("year", SALFORD_YEARS)
def test_each_salford_funding_source_shows_its_amount_to_the_pound(
        ledger: Ledger, models: ReadModels, year: str) -> None:
    record_salford(ledger)
    found = budget(models, SALFORD).year(year)
    assert found is not None
    by_source = {s.name: s.position.confirmed for s in found.sources}
    assert by_source == {row.source: row.amount(year) for row in SALFORD_TABLE}
    lines = {(line.partner, line.source): line.amount for line in found.lines}
    assert lines == {(row.partner, row.source): row.amount(year) for row in SALFORD_TABLE}
    by_partner = {s.name: s.position.confirmed for s in found.partners}
    assert by_partner == {PCT: table_total(year, PCT), COUNCIL: table_total(year, COUNCIL)}


def test_salford_budget_json_gives_each_partners_position_as_decimal_strings(
        ledger: Ledger, cli: Cli) -> None:
    record_salford(ledger)
    document = cli.json("budget", SALFORD)
    assert document["reference"] == SALFORD
    years = {y["year"]: y for y in document["years"]}
    assert set(years) == set(SALFORD_YEARS)
    assert years["2003/04"]["total"] == "2262440.00"
    assert years["2004/05"]["total"] == "2513360.00"
    # Shares of the pool, worked by hand from the table: the PCT brings 1,957,290 of 2,262,440
    # in 2003/04 (86.51%) and 2,187,210 of 2,513,360 in 2004/05 (87.02%).
    shares = {"2003/04": {PCT: "86.51", COUNCIL: "13.49"},
              "2004/05": {PCT: "87.02", COUNCIL: "12.98"}}
    for year in SALFORD_YEARS:
        for partner in (PCT, COUNCIL):
            position = years[year]["partners"][partner]
            expected = f"{table_total(year, partner):.2f}"
            assert position == {"confirmed": expected, "indicative": "0.00", "tba": 0,
                                "paid": "0.00", "outstanding": expected, "total": expected,
                                "released": "0.00", "share": shares[year][partner]}
        assert set(years[year]["sources"]) == set(SALFORD_SOURCES)
        for row in SALFORD_TABLE:
            assert Decimal(years[year]["sources"][row.source]["confirmed"]) == row.amount(year)


def test_salford_budget_csv_has_a_row_per_year_and_partner_and_the_year_total(
        ledger: Ledger, cli: Cli) -> None:
    record_salford(ledger)
    rows = list(csv.DictReader(io.StringIO(cli("budget", SALFORD, "--csv").stdout)))
    assert [(r["year"], r["partner"]) for r in rows] == [
        ("2003/04", COUNCIL), ("2003/04", PCT), ("2003/04", "total"),
        ("2004/05", COUNCIL), ("2004/05", PCT), ("2004/05", "total")]
    for r in rows:
        assert r["reference"] == SALFORD
        who = None if r["partner"] == "total" else r["partner"]
        assert r["confirmed"] == f"{table_total(r['year'], who):.2f}"
        assert r["indicative"] == "0.00"
        assert r["outstanding"] == r["confirmed"]
    assert [r["share"] for r in rows if r["year"] == "2004/05"] == ["12.98", "87.02", "100.00"]


def test_salford_budget_by_source_for_one_year(ledger: Ledger, cli: Cli) -> None:
    record_salford(ledger)
    rows = list(csv.DictReader(io.StringIO(
        cli("budget", SALFORD, "--csv", "--by", "source", "--year", "2004/05").stdout)))
    assert {r["year"] for r in rows} == {"2004/05"}
    found = {r["source"]: r["confirmed"] for r in rows}
    assert found == {**{row.source: f"{row.amount('2004/05'):.2f}" for row in SALFORD_TABLE},
                     "total": "2513360.00"}
    # People read the same breakdown as a table, with the amounts in pounds.
    text = cli("budget", SALFORD, "--by", "source", "--year", "2004/05").stdout
    assert "NTA Pooled Treatment Budget (PTB)" in text
    assert "£921,990.00" in text
    assert "£2,513,360.00" in text
    assert "2003/04" not in text


def test_a_budget_by_anything_but_partner_source_or_year_is_refused(ledger: Ledger,
                                                                    cli: Cli) -> None:
    record_salford(ledger)
    result = cli("budget", SALFORD, "--by", "quarter", code=1)
    assert "--by is partner, source or year" in result.stderr


# --- Southwark: the equipment service's proposed budget -------------------------------------------


def test_the_southwark_table_as_printed_adds_up_to_its_total_row() -> None:
    for year in SOUTHWARK_YEARS:
        assert sum(row.amount(year) for row in SOUTHWARK_TABLE) == (
            pounds(SOUTHWARK_PRINTED_TOTALS[year]) * 1000)


def test_southwark_pool_totals_with_the_pct_contribution_indicative(
        ledger: Ledger, models: ReadModels) -> None:
    record_southwark(ledger)
    view = budget(models, SOUTHWARK)
    totals = {y.year: y.position.total for y in view.years}
    assert totals == {"2003/04": Decimal("1026000.00"), "2004/05": Decimal("1051000.00"),
                      "2005/06": Decimal("1077000.00")}
    council, pct = SOUTHWARK_TABLE
    for year in view.years:
        partners = {s.name: s for s in year.partners}
        # The council's cash limit is committed; the PCT's figure is only indicative (the
        # report: "Further work to confirm the actual Southwark PCT funding is ongoing").
        assert partners[SOUTHWARK_COUNCIL].position == Position(
            confirmed=council.amount(year.year))
        assert partners[SOUTHWARK_PCT].position == Position(indicative=pct.amount(year.year))
        assert year.position.confirmed == council.amount(year.year)
        assert year.position.indicative == pct.amount(year.year)
        # Outstanding counts confirmed funding only: nothing is owed on an indicative figure.
        assert partners[SOUTHWARK_PCT].position.outstanding == Decimal("0.00")
    shares = {y.year: {s.name: s.share for s in y.partners} for y in view.years}
    assert shares == {
        "2003/04": {SOUTHWARK_COUNCIL: Decimal("71.15"), SOUTHWARK_PCT: Decimal("28.85")},
        "2004/05": {SOUTHWARK_COUNCIL: Decimal("71.17"), SOUTHWARK_PCT: Decimal("28.83")},
        "2005/06": {SOUTHWARK_COUNCIL: Decimal("71.22"), SOUTHWARK_PCT: Decimal("28.78")},
    }


def test_southwark_partners_type_their_budgets_in_pounds_on_the_command_line(
        ledger: Ledger, cli: Cli, tmp_path: Path) -> None:
    terms = tmp_path / "ices-s31.txt"
    terms.write_text("Section 31 arrangement: integrated community equipment service\n")
    cli("draft", SOUTHWARK, "--as", SOUTHWARK_COUNCIL, "--title",
        "Integrated Community Equipment Service", "--terms", str(terms), "--start",
        "2004-03-01", "--end", "2006-03-31", "--notice", "3m", "--name",
        "London Borough of Southwark (Social Services)", "--role", "commissioning",
        "--signatory", "Strategic Director of Social Services", "--designation",
        "Strategic Director", "--lead", "--pool-manager", "--at", "2003-12-16")
    cli("join", SOUTHWARK, "--as", SOUTHWARK_PCT, "--name", "Southwark Primary Care Trust",
        "--role", "commissioning", "--signatory", "Chief Executive", "--designation",
        "Chief Executive", "--at", "2003-12-16T15:00:00Z")
    for row in SOUTHWARK_TABLE:
        for year in SOUTHWARK_YEARS:
            extra = ["--indicative"] if row.status == "indicative" else []
            cli("contribute", SOUTHWARK, "--as", row.partner, "--year", year, "--amount",
                f"£{row.printed[year]}", "--source", row.source, *extra,
                "--at", "2003-12-17")
    document = cli.json("budget", SOUTHWARK)
    years = {y["year"]: y for y in document["years"]}
    assert {y: years[y]["total"] for y in SOUTHWARK_YEARS} == {
        "2003/04": "1026000.00", "2004/05": "1051000.00", "2005/06": "1077000.00"}
    pct = years["2005/06"]["partners"][SOUTHWARK_PCT]
    assert (pct["confirmed"], pct["indicative"], pct["share"]) == ("0.00", "310000.00", "28.78")
    council = years["2005/06"]["partners"][SOUTHWARK_COUNCIL]
    assert (council["confirmed"], council["indicative"], council["share"]) == (
        "767000.00", "0.00", "71.22")
    lines = [(ln["partner"], ln["status"], ln["amount"]) for ln in years["2004/05"]["lines"]]
    assert lines == [(SOUTHWARK_COUNCIL, "confirmed", "748000.00"),
                     (SOUTHWARK_PCT, "indicative", "303000.00")]


# --- payments into the pool -----------------------------------------------------------------------


def pay_salford(ledger: Ledger) -> None:
    """After signing, the PCT pays three instalments of 10p against its mainstream line and the
    council pays £100,000 of social services money and its Supporting People line in full."""
    deal = record_salford(ledger)
    for when in ("2004-04-05", "2004-04-06", "2004-04-07"):
        deal.pay(PCT, "0.10", when, source="PCT mainstream")
    deal.pay(COUNCIL, "100000.00", "2004-04-08", source="Social Services")
    deal.pay(COUNCIL, "15150.00", "2004-04-09", source="Supporting People Funding")


def test_three_payments_of_ten_pence_make_thirty_pence_exactly(
        ledger: Ledger, models: ReadModels) -> None:
    pay_salford(ledger)
    # In binary floating point 0.1 + 0.1 + 0.1 is not 0.3; a float anywhere on the way would
    # show here as 0.30000000000000004 or an outstanding balance off by a fraction of a penny.
    assert 0.1 + 0.1 + 0.1 != 0.3
    year = budget(models, SALFORD).year("2003/04")
    assert year is not None
    sources = {s.name: s.position for s in year.sources}
    assert sources["PCT mainstream"].paid == Decimal("0.30")
    assert sources["PCT mainstream"].outstanding == Decimal("341739.70")


def test_paid_and_outstanding_per_partner_and_per_source(
        ledger: Ledger, models: ReadModels) -> None:
    pay_salford(ledger)
    year = budget(models, SALFORD).year("2003/04")
    assert year is not None
    partners = {s.name: s.position for s in year.partners}
    assert (partners[PCT].paid, partners[PCT].outstanding) == (
        Decimal("0.30"), table_total("2003/04", PCT) - Decimal("0.30"))
    assert (partners[COUNCIL].paid, partners[COUNCIL].outstanding) == (
        Decimal("115150.00"), Decimal("190000.00"))
    sources = {s.name: (s.position.paid, s.position.outstanding) for s in year.sources}
    assert sources["Social Services"] == (Decimal("100000.00"), Decimal("190000.00"))
    assert sources["Supporting People Funding"] == (Decimal("15150.00"), Decimal("0.00"))
    assert sources["NTA Pooled Treatment Budget (PTB)"] == (Decimal("0.00"),
                                                             Decimal("909710.00"))
    assert (year.position.paid, year.position.outstanding) == (
        Decimal("115150.30"), Decimal("2262440.00") - Decimal("115150.30"))
    # Payments are against 2003/04 only: the next year is still wholly outstanding.
    later = budget(models, SALFORD).year("2004/05")
    assert later is not None
    assert (later.position.paid, later.position.outstanding) == (
        Decimal("0.00"), Decimal("2513360.00"))


def test_paid_and_outstanding_on_the_command_line(ledger: Ledger, cli: Cli) -> None:
    pay_salford(ledger)
    year = next(y for y in cli.json("budget", SALFORD)["years"] if y["year"] == "2003/04")
    assert (year["paid"], year["outstanding"]) == ("115150.30", "2147289.70")
    assert (year["partners"][PCT]["paid"], year["partners"][PCT]["outstanding"]) == (
        "0.30", "1957289.70")
    assert year["sources"]["Supporting People Funding"]["outstanding"] == "0.00"
    line = next(ln for ln in year["lines"] if ln["source"] == "PCT mainstream")
    assert (line["amount"], line["paid"]) == ("341740.00", "0.30")
    rows = list(csv.DictReader(io.StringIO(
        cli("budget", SALFORD, "--csv", "--year", "2003/04").stdout)))
    council = next(r for r in rows if r["partner"] == COUNCIL)
    assert (council["paid"], council["outstanding"]) == ("115150.00", "190000.00")


def leaves(value: Any) -> Iterator[Any]:
    """Every plain value inside a view (dataclasses, tuples, dicts), depth first."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from leaves(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    else:
        yield value


def test_no_float_stands_anywhere_between_the_signed_amounts_and_the_budget(
        ledger: Ledger, models: ReadModels) -> None:
    pay_salford(ledger)
    rows = models.load(SALFORD)
    # The stored rows come back from whole pence as Decimal pounds with two places.
    for line in rows[FundingLineRow]:
        assert isinstance(line["amount"], Decimal)
        assert isinstance(line["paid"], Decimal)
        assert line["amount"].as_tuple().exponent == -2
    assert [p["amount"] for p in rows[PaymentRow]] == [
        Decimal("0.10"), Decimal("0.10"), Decimal("0.10"), Decimal("100000.00"),
        Decimal("15150.00")]
    assert all(type(p["amount"]) is Decimal for p in rows[PaymentRow])
    view = budget_view(rows)
    values = list(leaves(view))
    assert not [v for v in values if isinstance(v, float)]
    for year in view.years:
        for share in (*year.partners, *year.sources):
            position = share.position
            for amount in (position.confirmed, position.indicative, position.paid,
                           position.outstanding, position.total, share.share):
                assert type(amount) is Decimal
