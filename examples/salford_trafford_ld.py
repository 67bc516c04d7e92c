"""Integrated commissioning for people with learning difficulties in Salford, from the report to
Salford's Cabinet on the Salford and Trafford five-year plan.

The report proposes option 1(b): the Local Authority as lead agency, commissioning through a
Local Authority led board, with "a joint service, with joint management, a pooled budget and
lead commissioner status to the Local Authority" under Section 31 of the Health Act 1999. The
NHS partner is Salford and Trafford Health Authority; integrated commissioning is taken forward
"in both Salford and Trafford separately", so this is Salford's agreement and Trafford Borough
Council is not a party to it. The report gives no figures: the comprehensive joint budget is
still "to be agreed", and so is the NHS money released by the closure of the long-stay
hospitals, so every funding line is tba, and nothing can be paid into the pool. Ends with
status, budget and verification.

    python examples/salford_trafford_ld.py [--ledger PATH_OR_URL] [--workdir DIR]
"""

from __future__ import annotations

from _run import Ledger, main

REF = "salford-ld-2001"
COUNCIL, HA = "salford-city-council", "salford-trafford-ha"

TERMS = """\
Integrated commissioning for people with learning difficulties in Salford.
At its meeting on 25 April 2000 the Cabinet received a presentation and considered a five year
plan for supporting people with learning difficulties in Salford and Trafford. Integrated
commissioning is taken forward in both Salford and Trafford separately.
Partners: Salford City Council (Community & Social Services Directorate) and Salford and
Trafford Health Authority.
Preferred option 1(b): the Local Authority is the lead agency, commissioning through a Local
Authority led board comprising a wide range of partners, including users and carers.
Application under Section 31 of the Health Act 1999 for the Local Authority and the NHS to be
granted the flexibility to develop a joint service, with joint management, a pooled budget and
lead commissioner status to the Local Authority.
Over the following six months: set a board in place and agree staffing, including a senior
manager to manage the commissioning arrangements across health and social care; agree the
make-up of community learning disability teams; agree future commissioning of the social care
services currently provided in the Salford Community NHS Trust; agree a comprehensive joint
budget for the service.
External consultancy, a joint NHS/Local Authority implementation team and the initial funding
of the senior manager are met from resources released from the final closures of the
long-stay hospitals for people with learning difficulties, channelled through the NHS and
allocated by agreement with the Local Authority.
"""

#: (partner, year, source): every line is tba, because the report gives no amount. The joint
#: budget is for the first year of the joint service; the implementation costs fall in the six
#: months of work before it, 2000/01.
FUNDING = (
    (HA, "2000/01", "Resources released from the final closures of the long-stay hospitals: "
                    "implementation team, external consultancy, initial funding of the senior "
                    "manager"),
    (COUNCIL, "2001/02", "Social services learning difficulties budget (joint budget to be "
                         "agreed)"),
    (HA, "2001/02", "NHS learning difficulties budget (joint budget to be agreed)"),
)


def record(ledger: Ledger) -> None:
    """The Cabinet report's agreement, as far as the report settles it."""
    ledger("init", "--origin", "ledger.salford.example/learning-difficulties")
    ledger.together(("keys", "new", COUNCIL), ("keys", "new", HA))

    # Dates: the only one the report gives is the Cabinet meeting of 25 April 2000 at which
    # the five-year plan was considered; the terms document and the basis keep it. The report
    # itself came later (it cites the NHS Plan of July 2000 as recent), and no date of
    # agreement is given, so --agreed is left out. Assumed: drafting on 2 October 2000, after
    # the Cabinet endorses option 1(b); six months of work; signatures on 30 March 2001 and the
    # start on 1 April 2001, the first financial year of the joint service. No notice period is
    # given; six months is assumed. No end date: the agreement is open-ended.
    #
    # The Local Authority is lead commissioner. The report does not say which body hosts the
    # pooled fund or manages it, so neither partner is marked host or pool manager.
    ledger("draft", REF, "--as", COUNCIL,
           "--title", "Integrated commissioning for people with learning difficulties in "
                      "Salford",
           "--terms", ledger.document("salford-ld-terms.txt", TERMS),
           "--basis", "Health Act 1999 s.31; option 1(b) of the Salford and Trafford five-year "
                      "plan for people with learning difficulties (Cabinet, 25 April 2000)",
           # "a joint service, with joint management" is integrated provision.
           "--flexibility", "pooled-budget", "--flexibility", "lead-commissioning",
           "--flexibility", "integrated-provision",
           "--start", "2001-04-01", "--notice", "6m", "--on-withdrawal", "terminate",
           "--name", "Salford City Council", "--role", "commissioning", "--lead",
           "--signatory", "Director of Community & Social Services",
           "--designation", "Salford City Council, Community & Social Services Directorate "
                            "(the report does not name the holder)",
           "--at", "2000-10-02")
    ledger("join", REF, "--as", HA, "--name", "Salford and Trafford Health Authority",
           "--role", "commissioning", "--signatory", "Chief Executive",
           "--designation", "Salford and Trafford Health Authority (the report does not name "
                            "the holder)",
           "--at", "2000-10-02")
    for partner, year, source in FUNDING:
        ledger("contribute", REF, "--as", partner, "--year", year, "--source", source, "--tba",
               "--at", "2000-10-09")
    ledger("sign", REF, "--as", COUNCIL, "--at", "2001-03-30")
    ledger("sign", REF, "--as", HA, "--at", "2001-03-30")

    # With the joint budget still to be agreed there is nothing to pay against: a payment into
    # the pool waits for a variation that gives the line its amount. (The amount tried is any
    # amount at all; the report gives none, and the refusal writes nothing.)
    ledger.refused("contribute", REF, "--as", COUNCIL, "--year", "2001/02", "--paid",
                   "--amount", "100000", "--source", FUNDING[1][2], "--at", "2001-04-02",
                   says="payments are made against declared funding")

    ledger("checkpoint")
    ledger("status", REF)
    ledger("budget", REF, "--by", "source")
    ledger("verify")


if __name__ == "__main__":
    main(record, __doc__)
