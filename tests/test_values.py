"""Value types and their one written form: money, financial years, dates, times, notice periods.

Known-bad inputs are named datasets: each is a mistake a finance officer could make at the
keyboard (or a tampered statement could carry), and each must be refused with ``InvalidInput``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.values import (
    MAX_AMOUNT,
    FinancialYear,
    add_months,
    at_text,
    money_text,
    parse_at,
    parse_date,
    parse_money,
    parse_notice_months,
    parse_slug,
    parse_text,
    parse_year,
    read_at,
    read_money,
    read_notice,
)

#: These properties are about values, never speed: a busy machine must not fail them.
untimed = settings(deadline=None)

#: Every amount the ledger can hold: whole pence from nothing to the sanity ceiling.
amounts = st.integers(min_value=0, max_value=int(MAX_AMOUNT * 100)).map(
    lambda pence: Decimal(pence).scaleb(-2))

# --- money -------------------------------------------------------------------------------------


@untimed
@given(amounts)
def test_an_amount_survives_its_canonical_form(amount: Decimal) -> None:
    text = money_text(amount)
    assert parse_money(text) == amount
    assert money_text(parse_money(text)) == text
    whole, pence = text.split(".")
    assert len(pence) == 2
    assert whole == "0" or not whole.startswith("0")


@untimed
@given(amounts)
def test_an_amount_typed_as_people_write_it_is_read_exactly(amount: Decimal) -> None:
    assert read_money(money_text(amount)) == amount
    assert read_money(f"£{amount:,.2f}") == amount
    assert read_money(f"  {amount:,.2f} ") == amount
    if amount == amount.to_integral_value():
        assert read_money(f"{amount:.0f}") == amount


@untimed
@given(amounts, st.integers(min_value=1, max_value=9))
def test_fractions_of_a_penny_are_refused_not_rounded(amount: Decimal, tenths: int) -> None:
    typed = f"{amount + Decimal(tenths).scaleb(-3):f}"
    with pytest.raises(InvalidInput, match="fractions of a penny"):
        read_money(typed)


@pytest.mark.parametrize(("typed", "amount"), [
    pytest.param("341740", "341740.00", id="whole-pounds"),
    pytest.param("341,740.5", "341740.50", id="thousands-and-half-pounds"),
    pytest.param("£1,026,000.00", "1026000.00", id="pound-sign"),
    pytest.param("0", "0.00", id="nothing"),
    pytest.param("15150.000", "15150.00", id="trailing-zero-beyond-the-pence"),
])
def test_typed_amounts(typed: str, amount: str) -> None:
    assert money_text(read_money(typed)) == amount


@pytest.mark.parametrize("typed", [
    pytest.param("-5", id="negative"),
    pytest.param("£-5", id="negative-after-pound-sign"),
    pytest.param("abc", id="not-a-number"),
    pytest.param("", id="empty"),
    pytest.param("0.001", id="tenth-of-a-penny"),
    pytest.param("1e5", id="exponent"),
    pytest.param("NaN", id="not-a-number-literal"),
    pytest.param("Infinity", id="infinity"),
    pytest.param("82, 300", id="space-inside-thousands"),
    pytest.param("1,2345", id="misplaced-comma"),
    pytest.param(".5", id="no-pounds"),
    pytest.param("1.", id="no-pence-after-point"),
    pytest.param("1000000000000.01", id="above-the-ceiling"),
])
def test_typed_amounts_refused(typed: str) -> None:
    with pytest.raises(InvalidInput):
        read_money(typed)


@pytest.mark.parametrize("written", [
    pytest.param("341740", id="no-pence"),
    pytest.param("341740.0", id="one-decimal"),
    pytest.param("341740.000", id="three-decimals"),
    pytest.param("-1.00", id="negative"),
    pytest.param("01.00", id="leading-zero"),
    pytest.param("1,000.00", id="thousands-separator"),
    pytest.param("£1.00", id="pound-sign"),
    pytest.param(" 1.00", id="space"),
    pytest.param(341740, id="a-number-not-a-string"),
    pytest.param("1000000000000.01", id="above-the-ceiling"),
])
def test_an_amount_in_a_statement_has_exactly_one_form(written: object) -> None:
    with pytest.raises(InvalidInput):
        parse_money(written)


# --- financial years ---------------------------------------------------------------------------


@untimed
@given(st.dates(min_value=date(1900, 4, 1), max_value=date(2999, 3, 31)))
def test_every_day_falls_in_the_financial_year_from_1_april_to_31_march(day: date) -> None:
    year = FinancialYear.containing(day)
    assert year.starts <= day <= year.ends
    assert (year.starts.month, year.starts.day) == (4, 1)
    assert (year.ends.month, year.ends.day) == (3, 31)
    assert year.ends + timedelta(days=1) == FinancialYear(year.first + 1).starts
    assert parse_year(str(year)) == year


@pytest.mark.parametrize(("written", "first"), [
    pytest.param("2003/04", 2003, id="salford-first-year"),
    pytest.param("1999/00", 1999, id="across-the-century"),
    pytest.param("2009/10", 2009, id="across-a-decade"),
])
def test_financial_years(written: str, first: int) -> None:
    year = parse_year(written)
    assert year == FinancialYear(first)
    assert str(year) == written


@pytest.mark.parametrize("written", [
    pytest.param("2003/05", id="not-consecutive"),
    pytest.param("03/04", id="century-missing"),
    pytest.param("2003-04", id="dash"),
    pytest.param("2003/4", id="one-digit"),
    pytest.param("2003/2004", id="both-in-full"),
    pytest.param("2003", id="one-year"),
    pytest.param("1899/00", id="before-the-ledger"),
    pytest.param(2003, id="a-number"),
])
def test_financial_years_refused(written: object) -> None:
    with pytest.raises(InvalidInput, match=r"financial year|outside the years"):
        parse_year(written)


# --- dates and times ---------------------------------------------------------------------------


@pytest.mark.parametrize("written", [
    pytest.param("2003-02-30", id="30-february"),
    pytest.param("2003-02-29", id="29-february-not-leap"),
    pytest.param("2003-13-01", id="month-13"),
    pytest.param("2003-7-3", id="no-leading-zeros"),
    pytest.param("03/07/2003", id="british-order"),
    pytest.param("2003-07-03T00:00:00Z", id="a-time"),
])
def test_impossible_or_misshapen_dates_are_refused(written: str) -> None:
    with pytest.raises(InvalidInput, match="date"):
        parse_date(written)


def test_29_february_of_a_leap_year_is_a_date() -> None:
    assert parse_date("2004-02-29") == date(2004, 2, 29)


@untimed
@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2999, 12, 31),
                    timezones=st.just(UTC)))
def test_a_moment_survives_its_canonical_form_to_the_second(moment: datetime) -> None:
    text = at_text(moment)
    assert parse_at(text) == moment.replace(microsecond=0)
    assert at_text(parse_at(text)) == text
    assert read_at(text) == parse_at(text)


@pytest.mark.parametrize(("typed", "meant"), [
    pytest.param("2003-07-03", "2003-07-03T00:00:00Z", id="a-date-is-midnight-utc"),
    pytest.param("2003-07-03T10:00:00Z", "2003-07-03T10:00:00Z", id="utc"),
    pytest.param("2003-07-03T10:00:00+01:00", "2003-07-03T09:00:00Z", id="british-summer-time"),
    pytest.param("2003-07-03T10:00:00.75Z", "2003-07-03T10:00:00Z", id="fraction-dropped"),
])
def test_times_typed_on_the_command_line(typed: str, meant: str) -> None:
    assert at_text(read_at(typed)) == meant


@pytest.mark.parametrize("typed", [
    pytest.param("2003-02-30", id="impossible-date"),
    pytest.param("2003-07-03T10:00:00", id="no-time-zone"),
    pytest.param("yesterday", id="words"),
    pytest.param("3 July 2003", id="written-out"),
])
def test_times_typed_on_the_command_line_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="--at"):
        read_at(typed)


@pytest.mark.parametrize("written", [
    pytest.param("2003-07-03T10:00:00", id="no-zone"),
    pytest.param("2003-07-03T10:00:00+00:00", id="offset-not-z"),
    pytest.param("2003-07-03T10:00:00.000Z", id="fraction"),
    pytest.param("2003-07-03 10:00:00Z", id="space"),
    pytest.param("2003-02-30T10:00:00Z", id="impossible-date"),
    pytest.param("2003-07-03T24:00:00Z", id="hour-24"),
])
def test_a_moment_in_a_statement_has_exactly_one_form(written: str) -> None:
    with pytest.raises(InvalidInput):
        parse_at(written)


# --- notice periods ----------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "months"), [
    ("6m", 6), ("6 months", 6), ("1 month", 1), ("1y", 12), ("2 years", 24), ("0m", 0),
    (" 6M ", 6),
])
def test_notice_periods(typed: str, months: int) -> None:
    assert read_notice(typed) == months


@pytest.mark.parametrize("typed", ["6 weeks", "-1m", "121m", "11y", "six months", "6"])
def test_notice_periods_refused(typed: str) -> None:
    with pytest.raises(InvalidInput):
        read_notice(typed)


@pytest.mark.parametrize("value", [True, 6.0, "6", -1, 121])
def test_a_notice_period_in_a_statement_is_whole_months_0_to_120(value: object) -> None:
    with pytest.raises(InvalidInput):
        parse_notice_months(value)


@pytest.mark.parametrize(("day", "months", "result"), [
    pytest.param(date(2004, 8, 31), 6, date(2005, 2, 28), id="31-aug-to-28-feb"),
    pytest.param(date(2003, 8, 31), 6, date(2004, 2, 29), id="31-aug-to-29-feb-leap"),
    pytest.param(date(2004, 3, 31), 6, date(2004, 9, 30), id="31-mar-to-30-sep"),
    pytest.param(date(2004, 1, 15), 12, date(2005, 1, 15), id="a-year"),
    pytest.param(date(2004, 1, 15), 0, date(2004, 1, 15), id="no-notice"),
])
def test_calendar_months(day: date, months: int, result: date) -> None:
    assert add_months(day, months) == result


@untimed
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2900, 12, 31)),
       st.integers(min_value=0, max_value=120))
def test_calendar_months_land_in_the_right_month_on_the_same_day_or_its_end(
        day: date, months: int) -> None:
    later = add_months(day, months)
    assert later.year * 12 + later.month == day.year * 12 + day.month + months
    if day.day <= 28:
        assert later.day == day.day
    else:
        assert later.day == day.day or (later + timedelta(days=1)).day == 1


# --- identifiers and text ----------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["salford-pct", "salford-dat-2004", "v1", "a", "x" * 64])
def test_slugs(slug: str) -> None:
    assert parse_slug(slug, "partner id") == slug


@pytest.mark.parametrize("slug", [
    "Salford-PCT", "salford pct", "-salford", "salford-", "salford_pct", "", "x" * 65,
    "salford/pct", "café",
])
def test_slugs_refused(slug: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid partner id"):
        parse_slug(slug, "partner id")


@pytest.mark.parametrize("text", ["two\nlines", "tab\there", "bell\x07", "del\x7f", "\x85nel",
                                  "   ", "", "x" * 501])
def test_free_text_is_one_non_empty_line_of_reasonable_length(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_text(text, "title")


def test_free_text_keeps_what_people_write() -> None:
    title = "Salford DAT — pooled treatment budget 2003/04 (£2,262,440)"
    assert parse_text(title, "title") == title
