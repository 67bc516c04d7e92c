"""Salford drug action team pooled treatment budget, from its Section 31 notification form.

Records what ``ledger demo`` records, through the ``ledger`` command line: the two statutory
partners (question 1), the officer responsible for the partnership (question 4), the
flexibilities used (question 5), the date of agreement, 3 July 2003 (question 2), the intended
start, 1 April 2004 (question 3), and every funding source for 2003/04 and 2004/05 (question 12),
then both partners' signatures. Ends with the agreement's status, budget and verification.

    python examples/salford_dat.py [--ledger PATH_OR_URL] [--workdir DIR]
"""

from __future__ import annotations

from _run import Ledger, check, main

from commands.demo import FUNDING, TERMS_TEXT
from commands.demo import TOTALS as DEMO_TOTALS

REF = "salford-dat-2004"
COUNCIL, PCT = "salford-city-council", "salford-pct"

# The notification's own words (the text whose SHA-256 every signature binds) and its
# funding table (question 12) are the demo's: the example and the demo record the same state
# of the agreement. The form lists sources, not who pays them; the local authority's own
# sources (social services, supporting people) are the council's, and the NHS, national
# treatment and criminal justice allocations, which reach the DAT through the primary care
# trust, are the PCT's. The form prints "82, 300", "15, 150" and a total of "2262, 440": stray
# spaces, read as 82,300, 15,150 and 2,262,440, which is what the lines add up to.
TOTALS = {year: f"{total:f}" for year, total in DEMO_TOTALS.items()}


def record(ledger: Ledger) -> None:
    """The notification, act by act."""
    ledger("init", "--origin", "ledger.salford.example/dat")
    # Each partner makes its own key (at the same time: they are independent).
    ledger.together(("keys", "new", COUNCIL), ("keys", "new", PCT))

    # The form gives the date of agreement and the start; the drafting, joining and funding
    # dates before it are not on the form: a month before the date of agreement is assumed,
    # as in the demo. The form gives no notice period either, and the ledger needs one: six
    # months is assumed (the demo's). The council convenes as lead commissioner, host and pool
    # manager, as the demo records it; the form names no lead.
    ledger("draft", REF, "--as", COUNCIL,
           "--title", "Salford drug action team pooled treatment budget",
           "--terms", ledger.document("salford-dat-terms.txt", TERMS_TEXT),
           "--basis", "Health Act 1999 s.31",
           "--flexibility", "pooled-budget", "--flexibility", "lead-commissioning",
           "--agreed", "2003-07-03", "--start", "2004-04-01", "--notice", "6m",
           "--on-withdrawal", "terminate",
           "--name", "Salford City Council", "--role", "commissioning",
           "--lead", "--host", "--pool-manager",
           "--signatory", "Anne Williams",
           "--designation", "Chair of the Salford Drug Action Team; officer responsible for "
                            "the partnership",
           "--at", "2003-06-02")
    # Question 1 asks for "the signature of the representative of each partner" but the copy
    # names no one for the PCT: the designation says so rather than inventing a name.
    ledger("join", REF, "--as", PCT, "--name", "Salford PCT", "--role", "commissioning",
           "--signatory", "Authorised signatory",
           "--designation", "Salford PCT (the notification does not name the signatory)",
           "--at", "2003-06-03")

    for row in FUNDING:
        for year, amount in row.amounts:
            ledger("contribute", REF, "--as", row.partner, "--year", year, "--amount", amount,
                   "--source", row.source, "--at", "2003-06-10")

    # Both sign on the date of agreement the form gives; the PCT first, as in the demo.
    ledger("sign", REF, "--as", PCT, "--at", "2003-07-03")
    ledger("sign", REF, "--as", COUNCIL, "--at", "2003-07-03")

    budget = ledger.json("budget", REF)
    totals = {y["year"]: y["total"] for y in budget["years"]}
    check(totals == TOTALS, f"the pool should hold the form's totals {TOTALS}, not {totals}")

    ledger("checkpoint")
    ledger("status", REF)
    ledger("budget", REF)
    ledger("budget", REF, "--by", "source")
    ledger("verify")


if __name__ == "__main__":
    main(record, __doc__)
