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

REF = "salford-dat-2004"
COUNCIL, PCT = "salford-city-council", "salford-pct"

#: The notification's own words for the arrangement. The ledger keeps the SHA-256 of this text
#: and binds every signature to it; it is the same text the demo signs, so the example and the
#: demo record the same state of the agreement.
TERMS = (
    "Section 31 partnership arrangements notification: Salford drug action team.\n"
    "Statutory partners: Salford PCT; Salford City Council.\n"
    "Date of agreement: July 3rd 2003. Intended start: April 1st 2004.\n"
    "Officer responsible: Ms. Anne Williams, Chair of the Salford Drug Action Team.\n"
    "Flexibilities: budget pooling; lead commissioning.\n"
    "Aim: to commission adult drug treatment services within the City of Salford using the "
    "identified budgets, through a lead commissioning arrangement.\n"
)

#: Question 12, to the pound: (source, partner, amount in 2003/04, amount in 2004/05). The form
#: lists sources, not who pays them; as in the demo, the local authority's own sources (social
#: services, supporting people) are the council's, and the NHS, national treatment and criminal
#: justice allocations, which reach the DAT through the primary care trust, are the PCT's. The
#: form prints "82, 300", "15, 150" and a total of "2262, 440": stray spaces, read as 82,300,
#: 15,150 and 2,262,440, which is what the lines add up to.
FUNDING = (
    ("NTA Pooled Treatment Budget (PTB)", PCT, "909710", "921990"),
    ("NTA PTB underspend carried forward from previous year", PCT, "346920", "190000"),
    ("CJIP", PCT, "276620", "410000"),
    ("CJIP / Throughcare", PCT, "82300", "297000"),
    ("PCT mainstream", PCT, "341740", "368220"),
    ("Social Services", COUNCIL, "290000", "311000"),
    ("Supporting People Funding", COUNCIL, "15150", "15150"),
)
TOTALS = {"2003/04": "2262440.00", "2004/05": "2513360.00"}


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
           "--terms", ledger.document("salford-dat-terms.txt", TERMS),
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

    for source, partner, first, second in FUNDING:
        for year, amount in (("2003/04", first), ("2004/05", second)):
            ledger("contribute", REF, "--as", partner, "--year", year, "--amount", amount,
                   "--source", source, "--at", "2003-06-10")

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
