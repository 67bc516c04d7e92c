"""Budget positions: per agreement, financial year, partner and source, in exact pence.

One function, :func:`budget_from_lines`, turns funding lines (with what has been paid against
each) into positions, whether the lines come from the read-model tables or from an agreement
replayed to a past date, so both views always add up the same way. ``Decimal`` throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledger.values import PENNY, money_text

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineRow:
    """One funding line and what has been paid against it."""

    partner: str
    year: str
    source: str
    status: str
    amount: Decimal | None
    paid: Decimal
    #: Nothing is owed on it: its year begins after its partner left or the agreement ended.
    released: bool = False

    def to_json(self) -> dict[str, Any]:
        """Money as decimal strings."""
        return {"partner": self.partner, "year": self.year, "source": self.source,
                "status": self.status,
                "amount": None if self.amount is None else money_text(self.amount),
                "paid": money_text(self.paid), "released": self.released}


@dataclass(frozen=True)
class Position:
    """Sums over a set of lines (a partner's year, a source's year, a whole year)."""

    confirmed: Decimal = ZERO
    indicative: Decimal = ZERO
    tba: int = 0
    paid: Decimal = ZERO
    #: Funding of lines released when a partner left or the agreement ended: shown, not owed;
    #: and what had been paid against them all the same.
    released: Decimal = ZERO
    released_paid: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        """Confirmed and indicative together: what the pool expects."""
        return self.confirmed + self.indicative

    @property
    def outstanding(self) -> Decimal:
        """Confirmed funding still owed: not yet paid in, on lines not released."""
        return self.confirmed - (self.paid - self.released_paid)

    def add(self, line: LineRow) -> Position:
        """This position with one more line counted (a released line owes nothing)."""
        amount = line.amount or ZERO
        if line.released:
            return Position(self.confirmed, self.indicative, self.tba, self.paid + line.paid,
                            self.released + amount, self.released_paid + line.paid)
        return Position(
            self.confirmed + (amount if line.status == "confirmed" else ZERO),
            self.indicative + (amount if line.status == "indicative" else ZERO),
            self.tba + (1 if line.status == "tba" else 0),
            self.paid + line.paid,
            self.released,
            self.released_paid,
        )

    def to_json(self) -> dict[str, Any]:
        """Money as decimal strings."""
        return {"confirmed": money_text(self.confirmed), "indicative": money_text(self.indicative),
                "tba": self.tba, "paid": money_text(self.paid),
                "outstanding": money_text(self.outstanding), "total": money_text(self.total),
                "released": money_text(self.released)}


@dataclass(frozen=True)
class Share:
    """One partner's (or source's) position in a year and its share of the pool."""

    name: str
    position: Position
    share: Decimal

    def to_json(self) -> dict[str, Any]:
        """Money as decimal strings, the share as a percentage string."""
        return {**self.position.to_json(), "share": f"{self.share:f}"}


@dataclass(frozen=True)
class YearBudget:
    """The pool for one financial year."""

    year: str
    position: Position
    partners: tuple[Share, ...]
    sources: tuple[Share, ...]
    lines: tuple[LineRow, ...]

    def to_json(self) -> dict[str, Any]:
        """The year's total, then per partner and per source."""
        return {
            "year": self.year,
            "total": money_text(self.position.total),
            **{k: v for k, v in self.position.to_json().items() if k != "total"},
            "partners": {s.name: s.to_json() for s in self.partners},
            "sources": {s.name: s.to_json() for s in self.sources},
            "lines": [line.to_json() for line in self.lines],
        }


@dataclass(frozen=True)
class BudgetView:
    """Every year of an agreement's funding."""

    reference: str
    years: tuple[YearBudget, ...]

    def year(self, year: str) -> YearBudget | None:
        """The budget of one year, if any funding names it."""
        return next((y for y in self.years if y.year == year), None)

    def to_json(self) -> dict[str, Any]:
        """``{"reference", "years": [...]}``; see docs/CLI.md."""
        return {"reference": self.reference, "years": [y.to_json() for y in self.years]}


def share_of(part: Decimal, whole: Decimal) -> Decimal:
    """``part`` as a percentage of ``whole``, to two decimals (0 when the pool is empty)."""
    if whole == 0:
        return ZERO
    return (part * HUNDRED / whole).quantize(PENNY, rounding=ROUND_HALF_UP)


def _shares(groups: dict[str, Position], whole: Decimal) -> tuple[Share, ...]:
    return tuple(Share(name, pos, share_of(pos.total, whole))
                 for name, pos in sorted(groups.items()))


def budget_from_lines(reference: str, lines: Iterable[LineRow]) -> BudgetView:
    """Positions per year, partner and source from funding lines."""
    by_year: dict[str, list[LineRow]] = {}
    for line in lines:
        by_year.setdefault(line.year, []).append(line)
    years = []
    for year in sorted(by_year):
        rows = sorted(by_year[year], key=lambda r: (r.partner, r.source))
        total, partners, sources = Position(), dict[str, Position](), dict[str, Position]()
        for row in rows:
            total = total.add(row)
            partners[row.partner] = partners.get(row.partner, Position()).add(row)
            sources[row.source] = sources.get(row.source, Position()).add(row)
        years.append(YearBudget(year, total, _shares(partners, total.total),
                                _shares(sources, total.total), tuple(rows)))
    return BudgetView(reference, tuple(years))
