"""Value types of the domain and their one written form.

Each value has a strict *canonical* form used inside signed statements (``parse_*``) and, where
people type it, a lenient reader for the command line (``read_*``) that produces the canonical
form or a one-line error. Money is ``Decimal`` with pence, never a float.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta

from ledger.errors import InvalidInput

# --- identifiers -------------------------------------------------------------------------------

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def parse_slug(text: str, what: str) -> str:
    """A reference, partner id or variation id: lower-case letters, digits and inner dashes."""
    if not isinstance(text, str) or not _SLUG.fullmatch(text):
        raise InvalidInput(
            f"{text!r} is not a valid {what}: use lower-case letters, digits and dashes "
            f"(e.g. 'salford-pct'), at most 64 characters"
        )
    return text


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


#: Characters a signed text may not hold (statement version 2): format characters, among them
#: the bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make a name
#: display as something else, and the invisible joiners and marks; private-use and surrogate
#: code points; line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cf", "Co", "Cs", "Zl", "Zp"})


def text_problem(text: str) -> str | None:
    """Why ``text`` may not be signed in a version 2 statement, or None: it must be in Unicode
    normal form C, with no space at either end, and show what it says (no invisible format or
    direction characters)."""
    if text != text.strip():
        return "has spaces at its start or end"
    if text.isascii():
        return None
    for char in text:
        if unicodedata.category(char) in _HIDDEN_CATEGORIES:
            return (f"holds the invisible character U+{ord(char):04X} "
                    f"({unicodedata.name(char, 'unnamed')}), which changes how it displays")
    if not unicodedata.is_normalized("NFC", text):
        return "is not in Unicode normal form C"
    return None


def normal_text(text: str) -> str:
    """``text`` as it is signed: Unicode normal form C, without spaces at either end."""
    return unicodedata.normalize("NFC", text).strip()


def parse_text(text: object, what: str, *, max_length: int = 500, empty: bool = False) -> str:
    """A line of free text (a name, a title, a reason): no control characters."""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be text")
    if not empty and not text.strip():
        raise InvalidInput(f"{what} must not be empty")
    if len(text) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    if _CONTROL.search(text):
        raise InvalidInput(f"{what} must be one line of text with no control characters")
    return text


# --- money -------------------------------------------------------------------------------------

PENNY = Decimal("0.01")
#: A sanity ceiling: no partnership fund is a trillion pounds; larger numbers are typing errors.
MAX_AMOUNT = Decimal("1000000000000")
_CANONICAL_MONEY = re.compile(r"(0|[1-9][0-9]*)\.[0-9]{2}")
_TYPED_MONEY = re.compile(r"£?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")


def money_text(amount: Decimal) -> str:
    """The canonical written form of an amount: pounds and exactly two decimals."""
    pennies = amount.quantize(PENNY)
    if pennies != amount:
        # Rounding here would sign an amount nobody gave.
        raise InvalidInput(f"amount {amount} has fractions of a penny")
    return f"{pennies:f}"


def parse_money(text: object) -> Decimal:
    """An amount as written in a statement: ``"341740.00"`` exactly (two decimals, no sign)."""
    if not isinstance(text, str) or not _CANONICAL_MONEY.fullmatch(text):
        raise InvalidInput(
            f"{text!r} is not an amount in canonical form (pounds and pence, e.g. '341740.00')"
        )
    amount = Decimal(text)
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"amount {text} is implausibly large")
    return amount


def read_money(text: str) -> Decimal:
    """An amount typed by a person: ``341740``, ``341,740.5``, ``£1,026,000.00``."""
    cleaned = text.strip()
    if cleaned.startswith("-"):
        raise InvalidInput(f"amount {text!r} is negative; amounts are never below zero")
    if not _TYPED_MONEY.fullmatch(cleaned):
        raise InvalidInput(f"{text!r} is not an amount: give pounds, e.g. 341740 or 341740.50")
    try:
        amount = Decimal(cleaned.lstrip("£").replace(",", ""))
    except InvalidOperation:
        raise InvalidInput(f"{text!r} is not an amount") from None
    # Checked before anything is rounded: a number of thirty digits is more than the decimal
    # arithmetic holds, and no partnership fund is a trillion pounds.
    pence = amount.scaleb(2)
    if pence != pence.to_integral_value():
        raise InvalidInput(f"amount {text!r} has fractions of a penny; give at most two decimals")
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"amount {text!r} is implausibly large (at most "
                           f"{MAX_AMOUNT:,} pounds)")
    return amount.quantize(PENNY)


# --- financial years ---------------------------------------------------------------------------

_YEAR = re.compile(r"([0-9]{4})/([0-9]{2})")


@dataclass(frozen=True, order=True)
class FinancialYear:
    """A UK public-sector financial year, 1 April to 31 March, written ``2003/04``."""

    first: int

    def __str__(self) -> str:
        return _year_text(self.first)

    @property
    def starts(self) -> date:
        """1 April of its first calendar year."""
        return date(self.first, 4, 1)

    @property
    def ends(self) -> date:
        """31 March of its second calendar year."""
        return date(self.first + 1, 3, 31)

    @classmethod
    def containing(cls, day: date) -> FinancialYear:
        """The financial year a day falls in."""
        return cls(day.year if day.month >= 4 else day.year - 1)


@functools.lru_cache(maxsize=1024)
def _year_text(first: int) -> str:
    return f"{first}/{(first + 1) % 100:02d}"


def parse_year(text: object) -> FinancialYear:
    """``2003/04``; refuses ``2003/05`` (not consecutive) and ``03/04`` (century missing)."""
    if type(text) is str:
        return _parse_year(text)
    raise InvalidInput(f"{text!r} is not a financial year: write it like 2003/04")


@functools.lru_cache(maxsize=1024)
def _parse_year(text: str) -> FinancialYear:
    # A year read once is the same year every time it is read again (it is immutable).
    match = _YEAR.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"{text!r} is not a financial year: write it like 2003/04")
    first, second = int(match.group(1)), int(match.group(2))
    if (first + 1) % 100 != second:
        raise InvalidInput(
            f"{text!r} is not a financial year: the second part must be the year after "
            f"({first}/{(first + 1) % 100:02d})"
        )
    if not 1900 <= first <= 2999:
        raise InvalidInput(f"{text!r} is outside the years the ledger accepts")
    return FinancialYear(first)


# --- dates and times ---------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def parse_date(text: object, what: str = "date") -> date:
    """A calendar date ``YYYY-MM-DD``; impossible dates (2003-02-30) are refused."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise InvalidInput(f"{what} {text!r} is not a date: write it as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a real calendar date") from None


def at_text(moment: datetime) -> str:
    """The canonical form of a moment: RFC 3339 UTC to the second, ``2003-07-03T10:00:00Z``."""
    if moment.utcoffset() != _NO_OFFSET:
        moment = moment.astimezone(UTC)
    # isoformat begins YYYY-MM-DDTHH:MM:SS whatever follows; it is much faster than strftime.
    return moment.isoformat()[:19] + "Z"


_NO_OFFSET = timedelta(0)


def parse_at(text: object) -> datetime:
    """A moment as written in a statement (canonical form only)."""
    if not isinstance(text, str) or not _AT.fullmatch(text):
        raise InvalidInput(f"{text!r} is not a time in the form 2003-07-03T10:00:00Z")
    try:
        # The pattern above has fixed the form; fromisoformat is many times faster than
        # strptime, and every stored entry's time is read whenever its agreement loads.
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a real time") from None


def read_at(text: str) -> datetime:
    """A moment typed by a person: a date (taken as midnight UTC) or an RFC 3339 time."""
    cleaned = text.strip()
    if _DATE.fullmatch(cleaned):
        day = parse_date(cleaned, "--at")
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--at {text!r} is not a date or time: write 2003-07-03 or 2003-07-03T10:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"--at {text!r} has no time zone: add Z for UTC")
    try:
        return moment.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        raise InvalidInput(f"--at {text!r} is out of range: give a date from year 1900") from None


# --- notice periods ----------------------------------------------------------------------------

_NOTICE = re.compile(r"([0-9]{1,3})\s*(m|months?|y|years?)")
MAX_NOTICE_MONTHS = 120


def read_notice(text: str) -> int:
    """A notice period typed by a person (``6m``, ``6 months``, ``1y``) in calendar months."""
    match = _NOTICE.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidInput(f"notice period {text!r} is not understood: write it like 6m or 1y")
    months = int(match.group(1)) * (12 if match.group(2).startswith("y") else 1)
    return parse_notice_months(months)


def parse_notice_months(value: object) -> int:
    """A notice period in whole calendar months, 0 to 120."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("a notice period is a whole number of months")
    if not 0 <= value <= MAX_NOTICE_MONTHS:
        raise InvalidInput(f"a notice period of {value} months is outside 0 to 120 months")
    return value


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months; the 31st lands on the last day of a shorter month."""
    result: date = day + relativedelta(months=months)
    return result
