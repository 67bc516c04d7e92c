"""A load driver for a shared ledger: many processes recording acts at once.

``python -m tests.load worker URL WORKER ACTS OUT`` records ACTS acts (funding lines on the
draft agreements, payments on the signed ones) and appends one JSON line to OUT per act as soon
as it lands, flushed, so that a parent that kills the worker knows exactly what it was told had
landed. The parent side (:func:`prepare`, :func:`check`) sets up the agreements and checks the
store afterwards: every landed act stored once, nothing else, verification passing and the
budget adding up.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ledger.application import Ledger
from ledger.bodies import FundingLine, PartnerDetails, Terms
from ledger.errors import AgreementBusy, StorageError
from ledger.statement import new_act_id
from ledger.storage import parse_location
from ledger.values import FinancialYear
from tests.keys import fixed_key

ORIGIN = "ledger.load.example/shared"
PARTNERS = ("city-council", "health-trust", "housing-assoc")
SIGNED = ("pool-a", "pool-b", "pool-c")
DRAFTS = ("plan-d", "plan-e")
YEAR = FinancialYear(2005)
POOL_LINE = Decimal("100000000.00")
START = datetime(2005, 1, 3, tzinfo=UTC)


def _terms(title: str) -> Terms:
    return Terms(title, "Health Act 1999 s.31", ("pooled-budget",), "0" * 63 + "1", None,
                 START.date(), None, 6, "continue")


def _details(partner: str) -> PartnerDetails:
    return PartnerDetails(partner.replace("-", " ").title(), "commissioning", False, False,
                          False, f"Signatory of {partner}", "Director",
                          fixed_key(partner).public_key)


def prepare(url: str) -> Ledger:
    """A ledger with signed pooled budgets (for payments) and drafts (for funding lines)."""
    ledger = Ledger(parse_location(url), create=True)
    ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
    for ref in (*SIGNED, *DRAFTS):
        ledger.draft(ref, PARTNERS[0], _terms(ref), _details(PARTNERS[0]),
                     fixed_key(PARTNERS[0]), START)
        for partner in PARTNERS[1:]:
            ledger.join(ref, partner, _details(partner), fixed_key(partner), START)
        if ref in SIGNED:
            for partner in PARTNERS:
                ledger.declare(ref, FundingLine(partner, YEAR, "pool", POOL_LINE, "confirmed"),
                               fixed_key(partner), START)
            for partner in PARTNERS:
                ledger.sign(ref, partner, fixed_key(partner), START)
    return ledger


@dataclass(frozen=True)
class Landed:
    """An act a worker was told had landed."""

    worker: int
    entry_hash: str
    reference: str
    kind: str
    amount: Decimal
    attempts: int


def _open(url: str) -> Any:
    """The ledger at ``url``: its database, or the ledger service it names."""
    from commands.common import is_remote  # noqa: PLC0415
    from commands.remote import RemoteLedger  # noqa: PLC0415

    if is_remote(url):
        return RemoteLedger(url)
    for _ in range(100):
        try:
            return Ledger(parse_location(url))
        except StorageError:
            # The server is restarting: opening the ledger changes nothing, so try again.
            time.sleep(0.2)
    raise SystemExit("the server never came back")


def worker(url: str, number: int, acts: int, out: Path) -> None:
    """Record ``acts`` acts, reporting each as it lands."""
    rng = random.Random(number)
    ledger = _open(url)
    signers = {p: fixed_key(p) for p in PARTNERS}
    with out.open("a", encoding="utf-8") as report:
        for i in range(acts):
            partner = rng.choice(PARTNERS)
            amount = Decimal(rng.randrange(1, 100000)) / 100
            pay = rng.random() < 0.6
            reference = rng.choice(SIGNED if pay else DRAFTS)
            # One identity for this act, kept across every try below: a try whose answer was
            # lost but which landed is then found, never made again.
            act = new_act_id()
            ledger.new_act = lambda act=act: act
            while True:
                try:
                    if pay:
                        done = ledger.pay(reference, partner, YEAR, amount, "pool",
                                          signers[partner])
                    else:
                        line = FundingLine(partner, YEAR, f"w{number}-{i}", amount, "confirmed")
                        done = ledger.declare(reference, line, signers[partner])
                    break
                except (AgreementBusy, StorageError) as exc:
                    # Busy, or the store (or service) did not answer: the same act is tried
                    # again, and is recognised if an earlier try landed.
                    with out.with_suffix(".errors").open("a", encoding="utf-8") as errors:
                        errors.write(f"{type(exc).__name__}: {exc}\n")
                    time.sleep(0.2)
            report.write(json.dumps({
                "worker": number, "entry_hash": done.entry.hash, "reference": reference,
                "kind": "payment" if pay else "line", "amount": str(amount),
                "attempts": done.attempts, "act": done.entry.statement.act}) + "\n")
            report.flush()
    ledger.close()


#: The one act the identical-acts workers repeat: the same partner paying the same amount into
#: the same agreement, with no stated time (so in the same second, the same statement but for
#: its identity).
SAME_ACT = ("pool-a", "city-council", Decimal("1.00"))


def identical_worker(url: str, acts: int, out: Path) -> None:
    """Record the same payment ``acts`` times, reporting each act (its identity and entry)
    as soon as it lands."""
    reference, partner, amount = SAME_ACT
    ledger = Ledger(parse_location(url))
    signer = fixed_key(partner)
    with out.open("a", encoding="utf-8") as report:
        for _ in range(acts):
            while True:
                try:
                    done = ledger.pay(reference, partner, YEAR, amount, "pool", signer)
                    break
                except (AgreementBusy, StorageError):
                    time.sleep(0.05)  # nothing was written: the same act is tried again
            s = done.entry.statement
            report.write(json.dumps({"act": s.act, "entry_hash": done.entry.hash,
                                     "seq": s.seq}) + "\n")
            report.flush()
    ledger.close()


def read_landed(paths: list[Path]) -> list[Landed]:
    """Every act the workers reported as landed (a torn last line from a kill is skipped)."""
    landed = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                d: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            landed.append(Landed(d["worker"], d["entry_hash"], d["reference"], d["kind"],
                                 Decimal(d["amount"]), d["attempts"]))
    return landed


if __name__ == "__main__":
    if sys.argv[1] == "identical":
        _, _, url, count, out = sys.argv
        identical_worker(url, int(count), Path(out))
    else:
        _, command, url, number, count, out = sys.argv
        assert command == "worker"
        worker(url, int(number), int(count), Path(out))
