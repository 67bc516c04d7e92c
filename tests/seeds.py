"""The funding tables of the seed documents, recorded act by act through the Ledger.

Two tables from ``../shared/seeds``:

- the Salford drug action team notification (question 12: "how much resource is to be
  committed to the partnership by each partner?"), seven funding sources over 2003/04 and
  2004/05;
- the Southwark integrated community equipment service report (paragraph 31, "Proposed
  Budget"), Social Services and the PCT over 2003/04 to 2005/06, in thousands of pounds, the
  PCT's contribution indicative.

The figures are typed here as the documents print them, so that the read-side tests compute
what the budget must show from the documents, never from the code under test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

import commands.cli  # noqa: F401 - registers every command on the app
from commands.app import app
from ledger.application import Ledger
from ledger.bodies import FundingLine, PartnerDetails, Terms
from ledger.keystore import KeyStore
from ledger.storage import parse_location
from ledger.values import parse_year
from tests.conftest import ORIGIN, at
from tests.keys import TEST_COST, fixed_key
from tests.scenarios import COUNCIL, PCT, REF, Partnership


def pounds(printed: str) -> Decimal:
    """An amount as a seed document prints it ("909,710", "82, 300") in exact pounds."""
    return Decimal(printed.replace(",", "").replace(" ", "")).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class SeedLine:
    """One row of a seed funding table: a source, the partner it is attributed to, the amount
    printed for each year and whether the document calls it confirmed or indicative."""

    source: str
    partner: str
    printed: dict[str, str]
    status: str = "confirmed"

    def amount(self, year: str) -> Decimal:
        """The amount for ``year`` in pounds."""
        return pounds(self.printed[year])


# --- Salford --------------------------------------------------------------------------------------

SALFORD = REF
SALFORD_YEARS = ("2003/04", "2004/05")

# The notification names two statutory partners (Salford PCT, Salford City Council) but does not
# attribute every funding source to one of them. The NTA pooled treatment budget lines and the
# CJIP lines are NHS funding routed through the PCT, so they are recorded as the PCT's, with its
# mainstream money; Social Services and Supporting People are the council's. The form as scanned
# has stray spaces inside two figures ("82, 300", "15, 150") and in its total ("2262, 440").
SALFORD_TABLE: tuple[SeedLine, ...] = (
    SeedLine("NTA Pooled Treatment Budget (PTB)", PCT,
             {"2003/04": "909,710", "2004/05": "921,990"}),
    SeedLine("NTA PTB underspend carried forward from previous year", PCT,
             {"2003/04": "346,920", "2004/05": "190,000"}),
    SeedLine("CJIP (if applicable)", PCT, {"2003/04": "276,620", "2004/05": "410,000"}),
    SeedLine("CJIP /Throughcare", PCT, {"2003/04": "82, 300", "2004/05": "297,000"}),
    SeedLine("PCT mainstream", PCT, {"2003/04": "341,740", "2004/05": "368,220"}),
    SeedLine("Social Services", COUNCIL, {"2003/04": "290,000", "2004/05": "311,000"}),
    SeedLine("Supporting People Funding", COUNCIL, {"2003/04": "15, 150", "2004/05": "15,150"}),
)

#: The "Total Funding" row as the notification prints it.
SALFORD_PRINTED_TOTALS = {"2003/04": "2262, 440", "2004/05": "2,513,360"}


def ledger_file(path: Path, record: Callable[[Ledger], object]) -> str:
    """A new SQLite ledger at ``path`` (the operator's fixed key), holding what ``record``
    records in it; its URL."""
    url = str(path)
    ledger = Ledger(parse_location(url), create=True)
    try:
        ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
        record(ledger)
    finally:
        ledger.close()
    return url


def record_salford(ledger: Ledger, *, sign: bool = True) -> Partnership:
    """Salford PCT drafts, the council joins, each partner declares its lines source by source
    (2 July 2003), and both sign on the date of agreement (3 July 2003) unless ``sign`` is off."""
    deal = Partnership(ledger)
    deal.draft("2003-07-01T09:00:00")
    deal.join(COUNCIL, "2003-07-01T11:00:00")
    when = at("2003-07-02T09:00:00")
    for row in SALFORD_TABLE:
        for year in SALFORD_YEARS:
            when += timedelta(minutes=5)
            deal.declare(row.partner, str(row.amount(year)), when, year=parse_year(year),
                         source=row.source, status=row.status)
    if sign:
        deal.sign(PCT, "2003-07-03T10:00:00")
        deal.sign(COUNCIL, "2003-07-03T14:00:00")
    return deal


# --- Southwark ------------------------------------------------------------------------------------

SOUTHWARK = "southwark-ices-2004"
SOUTHWARK_COUNCIL = "southwark-council"
SOUTHWARK_PCT = "southwark-pct"
SOUTHWARK_YEARS = ("2003/04", "2004/05", "2005/06")
SOUTHWARK_TERMS_HASH = hashlib.sha256(
    b"Southwark integrated community equipment service: s.31 arrangement (test copy)\n"
).hexdigest()

# Paragraph 31: "The Southwark PCT contribution is indicative", in thousands of pounds.
SOUTHWARK_TABLE: tuple[SeedLine, ...] = (
    SeedLine("Social Services (SSD)", SOUTHWARK_COUNCIL,
             {"2003/04": "730,000", "2004/05": "748,000", "2005/06": "767,000"}),
    SeedLine("PCT", SOUTHWARK_PCT,
             {"2003/04": "296,000", "2004/05": "303,000", "2005/06": "310,000"},
             status="indicative"),
)

#: The "Total" row of the report, in £,000.
SOUTHWARK_PRINTED_TOTALS = {"2003/04": "1,026", "2004/05": "1,051", "2005/06": "1,077"}

SOUTHWARK_DETAILS = {
    SOUTHWARK_COUNCIL: ("London Borough of Southwark (Social Services)", "commissioning", True,
                        True, True, "Strategic Director of Social Services",
                        "Strategic Director of Social Services"),
    SOUTHWARK_PCT: ("Southwark Primary Care Trust", "commissioning", False, False, False,
                    "Chief Executive", "Chief Executive, Southwark PCT"),
}


def southwark_terms() -> Terms:
    """Lead commissioning from December 2003, the pool from March 2004; the council may
    renew year by year, so the three years of the proposed budget are its span."""
    return Terms(
        title="Integrated Community Equipment Service",
        basis="Health Act 1999 s.31",
        flexibilities=("lead-commissioning", "pooled-budget"),
        terms_hash=SOUTHWARK_TERMS_HASH,
        agreed=date(2003, 12, 16),
        start=date(2004, 3, 1),
        end=date(2006, 3, 31),
        notice_months=3,
        on_withdrawal="terminate",
    )


def southwark_details(partner: str) -> PartnerDetails:
    """A Southwark partner's own details with its fixed test key."""
    name, role, lead, host, pool, signatory, designation = SOUTHWARK_DETAILS[partner]
    return PartnerDetails(name, role, lead, host, pool, signatory, designation,
                          fixed_key(partner).public_key)


def record_southwark(ledger: Ledger, *, sign: bool = True) -> None:
    """The council (lead commissioner, pool manager) drafts on 16 December 2003, the PCT joins,
    each declares its table row, and both sign on 18 December."""
    when = at("2003-12-16T10:00:00")
    ledger.draft(SOUTHWARK, SOUTHWARK_COUNCIL, southwark_terms(),
                 southwark_details(SOUTHWARK_COUNCIL), fixed_key(SOUTHWARK_COUNCIL), when)
    ledger.join(SOUTHWARK, SOUTHWARK_PCT, southwark_details(SOUTHWARK_PCT),
                fixed_key(SOUTHWARK_PCT), at("2003-12-16T15:00:00"))
    when = at("2003-12-17T09:00:00")
    for row in SOUTHWARK_TABLE:
        for year in SOUTHWARK_YEARS:
            when += timedelta(minutes=10)
            line = FundingLine(row.partner, parse_year(year), row.source, row.amount(year),
                               row.status)
            ledger.declare(SOUTHWARK, line, fixed_key(row.partner), when)
    if sign:
        for partner, moment in ((SOUTHWARK_COUNCIL, "2003-12-18T10:00:00"),
                                (SOUTHWARK_PCT, "2003-12-18T12:00:00")):
            ledger.sign(SOUTHWARK, partner, fixed_key(partner), at(moment))



# --- the command line, over the same ledger -----------------------------------------------

PASSPHRASE = "correct horse battery staple"


def key_folder(folder: Path, names: Iterable[str]) -> Path:
    """A partner's key folder holding the fixed test keys ``names``, encrypted as
    ``ledger keys new`` would leave them."""
    store = KeyStore(folder)
    for name in names:
        store.create(name, PASSPHRASE.encode(), signer=fixed_key(name), cost=TEST_COST)
    return folder


@dataclass(frozen=True)
class Cli:
    """``ledger`` run in-process on one ledger and key folder, as a partner would run it."""

    ledger_url: str
    keys: Path

    def __call__(self, *args: str, code: int = 0) -> Result:
        """Run ``ledger ARGS --ledger URL`` on a wide terminal (tables on one line each); the
        exit status must be ``code``."""
        result = CliRunner().invoke(
            app, [*args, "--ledger", self.ledger_url],
            env={"LEDGER_KEYS": str(self.keys), "LEDGER_PASSPHRASE": PASSPHRASE,
                 "LEDGER_URL": None, "COLUMNS": "200"})
        assert result.exit_code == code, (
            f"ledger {' '.join(args)}: exit {result.exit_code}, wanted {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        """The ``--json`` document of a command that succeeds; a float anywhere in it fails
        (money and shares are decimal strings)."""
        return json.loads(self(*args, "--json").stdout, parse_float=_no_float)


def _no_float(text: str) -> Any:
    raise AssertionError(f"the JSON holds the float {text}; money must be a decimal string")
