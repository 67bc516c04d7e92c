"""``ledger demo``: the Salford drug action team pooled budget, recorded end to end.

From the Section 31 notification form (DESIGN seeds: salford-dat-s31-notification.txt): the two
statutory partners, the officer responsible for the partnership, the flexibilities used, the
date of agreement (3 July 2003), the intended start (1 April 2004) and every funding source for
2003/04 and 2004/05, then both partners' signatures. It needs no key setup and no server: it
makes its own keys in a folder beside a fresh SQLite ledger, then shows ``status``, ``budget``
and ``verify`` as a user would see them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from commands import screen
from commands.app import app
from commands.common import Common, command, emit_json
from ledger.errors import InvalidInput
from ledger.storage import parse_location
from ledger.values import FinancialYear

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.keys import Signer

REFERENCE = "salford-dat-2004"
ORIGIN = "ledger.salford.example/dat"

#: What the ledger binds the signatures to: the notification's own words for the arrangement.
TERMS_TEXT = (
    "Section 31 partnership arrangements notification: Salford drug action team.\n"
    "Statutory partners: Salford PCT; Salford City Council.\n"
    "Date of agreement: July 3rd 2003. Intended start: April 1st 2004.\n"
    "Officer responsible: Ms. Anne Williams, Chair of the Salford Drug Action Team.\n"
    "Flexibilities: budget pooling; lead commissioning.\n"
    "Aim: to commission adult drug treatment services within the City of Salford using the "
    "identified budgets, through a lead commissioning arrangement.\n"
)


@dataclass(frozen=True)
class Source:
    """One row of the notification's funding table (question 12)."""

    source: str
    partner: str
    amounts: tuple[tuple[str, str], ...]


#: The funding table to the pound. The form lists sources, not who pays them: sources of the
#: local authority (social services, supporting people) are the council's; the NHS and national
#: treatment and criminal justice allocations, which reach the DAT through the primary care
#: trust, are the PCT's.
FUNDING: tuple[Source, ...] = (
    Source("NTA Pooled Treatment Budget (PTB)", "salford-pct",
           (("2003/04", "909710"), ("2004/05", "921990"))),
    Source("NTA PTB underspend carried forward from previous year", "salford-pct",
           (("2003/04", "346920"), ("2004/05", "190000"))),
    Source("CJIP", "salford-pct", (("2003/04", "276620"), ("2004/05", "410000"))),
    Source("CJIP / Throughcare", "salford-pct", (("2003/04", "82300"), ("2004/05", "297000"))),
    Source("PCT mainstream", "salford-pct", (("2003/04", "341740"), ("2004/05", "368220"))),
    Source("Social Services", "salford-city-council",
           (("2003/04", "290000"), ("2004/05", "311000"))),
    Source("Supporting People Funding", "salford-city-council",
           (("2003/04", "15150"), ("2004/05", "15150"))),
)

#: The totals the notification gives, which the ledger must reproduce.
TOTALS = {"2003/04": Decimal("2262440.00"), "2004/05": Decimal("2513360.00")}


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def record_salford(ledger: Ledger, council: Signer, pct: Signer) -> None:
    """Record the Salford DAT pooled budget from draft to both signatures."""
    import hashlib  # noqa: PLC0415

    from ledger.bodies import FundingLine, PartnerDetails, Terms  # noqa: PLC0415

    terms = Terms(
        title="Salford drug action team pooled treatment budget",
        basis="Health Act 1999 s.31",
        flexibilities=("lead-commissioning", "pooled-budget"),
        terms_hash=hashlib.sha256(TERMS_TEXT.encode()).hexdigest(),
        agreed=date(2003, 7, 3), start=date(2004, 4, 1), end=None, notice_months=6,
        on_withdrawal="terminate")
    ledger.draft(REFERENCE, "salford-city-council", terms, PartnerDetails(
        "Salford City Council", "commissioning", lead=True, host=True, pool_manager=True,
        signatory="Anne Williams",
        designation="Chair of the Salford Drug Action Team; officer responsible for the "
                    "partnership",
        public_key=council.public_key), council, _at("2003-06-02"))
    ledger.join(REFERENCE, "salford-pct", PartnerDetails(
        "Salford PCT", "commissioning", lead=False, host=False, pool_manager=False,
        signatory="Authorised signatory",
        designation="Salford PCT (the notification does not name the signatory)",
        public_key=pct.public_key), pct, _at("2003-06-03"))
    signers = {"salford-pct": pct, "salford-city-council": council}
    for row in FUNDING:
        for year, amount in row.amounts:
            line = FundingLine(row.partner, _year(year), row.source, Decimal(amount).quantize(
                Decimal("0.01")), "confirmed")
            ledger.declare(REFERENCE, line, signers[row.partner], _at("2003-06-10"))
    ledger.sign(REFERENCE, "salford-pct", pct, _at("2003-07-03"))
    ledger.sign(REFERENCE, "salford-city-council", council, _at("2003-07-03"))


def _year(text: str) -> FinancialYear:
    return FinancialYear(int(text[:4]))


def _run(args: Sequence[str], env: dict[str, str]) -> int:
    """Run one ``ledger`` command in this process, as a user would type it."""
    screen.echo(f"\n$ ledger {' '.join(args)}")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        app(list(args), standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return int(exc.code or 0)
    else:
        return 0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@command(app, "demo")
def demo(opts: Common) -> None:
    """Record the Salford drug action team pooled budget on a fresh ledger, then show its
    status, budget and verification. Needs no keys and no server."""
    # Loaded here, when the demo runs: every other command starts without them.
    import secrets  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from ledger.application import Ledger  # noqa: PLC0415
    from ledger.keystore import KeyStore  # noqa: PLC0415
    from projections.audit import make_checkpoint  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    location = parse_location(opts.ledger_url or str(folder / "ledger.db"))
    if location.is_sqlite and location.path is not None and location.path.exists():
        raise InvalidInput(f"{location.path} exists; the demo records on a fresh ledger")
    keys_dir = folder / "keys"
    passphrase = secrets.token_urlsafe(12)
    store = KeyStore(keys_dir)
    council = store.open(store.create("salford-city-council", passphrase.encode()).name,
                         passphrase.encode())
    pct = store.open(store.create("salford-pct", passphrase.encode()).name, passphrase.encode())
    operator = store.open(store.create("operator", passphrase.encode()).name,
                          passphrase.encode())
    ledger = Ledger(location, create=True)
    try:
        ledger.initialise(ORIGIN, ORIGIN, operator.public_key)
        record_salford(ledger, council, pct)
        # The operator checkpoints the log as any operator does: verified first.
        make_checkpoint(ledger, operator)
    finally:
        ledger.close()
    env = {"LEDGER_URL": str(location.path) if location.is_sqlite else (opts.ledger_url or ""),
           "LEDGER_KEYS": str(keys_dir), "LEDGER_PASSPHRASE": passphrase}
    if opts.json:
        emit_json({"ledger": location.describe(), "keys": str(keys_dir),
                   "reference": REFERENCE,
                   "totals": {year: f"{total:f}" for year, total in TOTALS.items()}})
        return
    screen.echo(f"Recorded the Salford drug action team pooled budget in {location.describe()}")
    codes = [_run(["status", REFERENCE], env), _run(["budget", REFERENCE], env),
             _run(["budget", REFERENCE, "--by", "source"], env),
             _run(["cosign", "--as", "salford-pct"], env), _run(["verify"], env)]
    screen.echo(f"\nThe demo ledger is kept at {location.describe()}; its keys are in "
               f"{keys_dir}. To explore it:\n"
               f"  export LEDGER_URL={env['LEDGER_URL']} LEDGER_KEYS={keys_dir} "
               f"LEDGER_PASSPHRASE={passphrase}\n"
               f"  ledger history {REFERENCE}; ledger export {REFERENCE} -o bundle.json; "
               f"ledger verify-bundle bundle.json")
    if any(codes):
        raise typer.Exit(max(codes))
