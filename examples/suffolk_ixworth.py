"""The Ixworth Young Persons with Dementia Support Housing Scheme, from its Partnering Agreement.

Eight partners as page 1 lists them (four commissioning partners, the provider partner, three
other partners), each with the signatory and designation section 18 gives, the commencement on
1 January 2005 and the end date of 31 December 2008 (clause 3), six months' written notice and
"If any of the Partners terminate their involvement in this Agreement, then this Agreement will
be wholly terminated" (clause 8), the funding schedule of Appendix 1 with its TBAs, and all
eight signatures. Then one partner gives notice: a termination before the six months have run
is refused, the one after them ends the whole agreement for everyone. Ends with status, budget
and verification.

    python examples/suffolk_ixworth.py [--ledger PATH_OR_URL] [--workdir DIR]
"""

from __future__ import annotations

from _run import Ledger, check, main

REF = "suffolk-ixworth-2005"

#: (id, name, role, signatory, designation) in the order of section 18, where each partner
#: signs. Names are those section 18 signs for, except "Social Care Services", which the funding
#: schedule places in Suffolk County Council: the name says so, since a department alone does not
#: identify the body that commits its funds.
PARTNERS = (
    ("suffolk-sp", "Suffolk Supporting People", "commissioning",
     "Clare Smith", "Interim Head of Supporting People Suffolk"),
    ("suffolk-scs", "Social Care Services (Suffolk County Council)", "commissioning",
     "Graham Wrycroft", "Assistant Director Older People Services"),
    ("st-edmundsbury", "St Edmundsbury Borough Council", "commissioning",
     "Carole Herries", "Head of Environmental Health and Housing"),
    ("suffolk-west-pct", "Suffolk West Primary Care Trust", "other",
     "Tony Ranzetta", "Chief Executive"),
    ("havebury", "Havebury Housing Partnership", "commissioning",
     "Karen Mayhew", "Director of Housing Services"),
    ("orwell", "Orwell Housing Association Ltd", "provider",
     "Stephen Javes", "Chief Executive"),
    ("suffolk-mh-trust", "Suffolk Mental Health Partnership NHS Trust", "other",
     "Mark Halladay", "Chief Executive"),
    ("age-concern", "Age Concern", "other",
     "Daphney Savage", "Chief Executive"),
)

#: Appendix 1, the Scheme Funding Schedule: (partner, source, amount or None for £TBA).
#:
#: The ledger holds funding per partner. The schedule's housing capital comes from the Housing
#: Corporation (SHG), the Housing Corporation with Suffolk County Council (LASHG) and private
#: finance; the Housing Corporation is not a partner, so the capital lines sit with Havebury,
#: which owns the Scheme and receives the capital, and the source names who provides it. Rents
#: (tenants or Housing Benefit) and the Borough Council's line are St Edmundsbury's; the
#: schedule's "Will vary depending on Housing Benefit eligibility" is an amount not yet known,
#: so it is tba like the others. The Supporting People grant is recorded as the schedule
#: states it, "NO FUNDS AT THIS TIME": a confirmed line of £0, which a later variation can
#: raise, rather than tba, since the amount is known to be nothing. Health (existing
#: resources), day care and other services (resources) commit no money and have no lines; the
#: terms document keeps them.
#:
#: The schedule names no financial year. The lines are for 2004/05, in which the Agreement
#: commences; clause 16.3 settles each later year at the joint annual budget meeting, and on
#: the ledger that is a variation all partners consent to.
FUNDING = (
    ("havebury", "Housing capital, public sector: SHG (Housing Corporation)", None),
    ("havebury", "Housing capital, public sector: LASHG (Housing Corporation and Suffolk "
                 "County Council)", None),
    ("havebury", "Housing capital, private (Havebury Housing Partnership)", None),
    ("st-edmundsbury", "Housing revenue/rents: tenants or Housing Benefit", None),
    ("st-edmundsbury", "Local authority: Borough Council (will vary depending on Housing "
                       "Benefit eligibility)", None),
    ("suffolk-sp", "Supporting People Grant (block subsidy tenants and self payers): no funds "
                   "at this time", "0"),
    ("suffolk-scs", "Personal care: core budget, four hours a week per tenant (not recharged)",
     None),
    ("suffolk-scs", "Personal care: flexi budget, additional assessed hours at an hourly rate "
                    "(revised annually)", None),
)
YEAR = "2004/05"

TERMS = """\
PARTNERING AGREEMENT in respect of the Ixworth Young Persons with Dementia Support Housing Scheme.
Commissioning Partners: Suffolk Supporting People; Social Care Services (Suffolk County
Council); St Edmundsbury Borough Council; Havebury Housing Partnership. Provider Partner:
Orwell Housing Association Ltd. Other Partners: Suffolk West Primary Care Trust; Age Concern
YPWD Access Team West Suffolk; Suffolk Mental Health Partnership NHS Trust.
1 Definitions: "Partners" means the Commissioning and Provider Partners; Client means younger
persons with dementia; Scheme means the Havebury Housing Partnership supported housing scheme.
2 The Scheme is owned by Havebury Housing Partnership; Orwell Housing Association Ltd provides
the care and support services. Services: housing, personal care, support, specialist health
care, landlord services. 2.4 The Agreement does not create a contract between the Partners.
3 Commences on 01/01/2005 and continues in force until the end date 31/12/2008, subject to
clause 8 (Termination).
4-7 Partner roles, commissioning of services, monitoring and liaison (joint strategic review
every three years), performance indicators, partner liaison meetings.
8 Any of the Partners wishing to terminate their involvement will give not less than 6 months'
written notice to all of the Partners. Any change of a Partner's signatory should be notified
to all other signatories. If any of the Partners terminate their involvement, this Agreement
will be wholly terminated and where possible replaced by a new Agreement.
9 No major variation without full Partner consultation and consent.
10-15 Confidentiality; dispute resolution (28 working days, then the JAG, then 7 working days,
then an independent arbitrator whose decision is final); operational conduct; communication
(the JAG meets not less than three times a year); documentation.
16 Funding as Appendix 1; funding reviewed at a joint annual budget meeting; variations agreed
between all Partners and stakeholders.
Appendix 1: Housing capital SHG, LASHG, private and revenue/rents: TBA. Supporting People
Grant: no funds at this time. Personal care core budget (four hours per week, not recharged)
and flexi budget (revised annually): TBA. Borough Council: will vary depending on Housing
Benefit eligibility. Health: existing resources. Day care, other services: resources.
18 Signatories: Clare Smith; Graham Wrycroft; Carole Herries; Tony Ranzetta; Karen Mayhew;
Stephen Javes; Mark Halladay; Daphney Savage.
"""


def record(ledger: Ledger) -> None:
    """The Partnering Agreement, act by act, and its end."""
    ledger("init", "--origin", "ledger.suffolk.example/ixworth")
    # Each partner makes its own key, independently of the others.
    ledger.together(*[("keys", "new", pid) for pid, *_ in PARTNERS])

    # Section 18 leaves every date of signature blank. The drafting, joining and funding in
    # early December 2004 and the signatures on 20 December 2004, before the commencement, are
    # assumed. Suffolk Supporting People, first of the commissioning partners and first to
    # sign, convenes; the Agreement names no lead, host or pool (there is no pooled fund).
    (convenor, name, role, signatory, designation), *others = PARTNERS
    ledger("draft", REF, "--as", convenor,
           "--title", "The Ixworth Young Persons with Dementia Support Housing Scheme",
           "--terms", ledger.document("suffolk-ixworth-terms.txt", TERMS),
           "--basis", "Partnering Agreement; does not create a contract between the Partners "
                      "(clause 2.4)",
           "--start", "2005-01-01", "--end", "2008-12-31", "--notice", "6m",
           "--on-withdrawal", "terminate",
           "--name", name, "--role", role,
           "--signatory", signatory, "--designation", designation, "--at", "2004-12-01")
    for pid, name, role, signatory, designation in others:
        ledger("join", REF, "--as", pid, "--name", name, "--role", role,
               "--signatory", signatory, "--designation", designation, "--at", "2004-12-02")

    for pid, source, amount in FUNDING:
        figure = ["--tba"] if amount is None else ["--amount", amount]
        ledger("contribute", REF, "--as", pid, "--year", YEAR, "--source", source, *figure,
               "--at", "2004-12-06")

    for pid, *_ in PARTNERS:
        ledger("sign", REF, "--as", pid, "--at", "2004-12-20")

    # The documents record no notice; this one is illustrative, to show clause 8 at work. The
    # notice comes from the provider partner, one of the "Partners" of definition 1.4, whose
    # leaving the clause says ends the Agreement wholly. Given on 31 August 2006, six calendar
    # months run to 28 February 2007 (there is no 31 February).
    notice = ledger.json("notice", REF, "--as", "orwell", "--at", "2006-08-31",
                         "--reason", "Orwell Housing Association Ltd gives six months' written "
                                     "notice of terminating its involvement (clause 8.1); "
                                     "illustrative")
    # Entered on the ledger long after its date, the notice runs from the day it is recorded
    # until the other partners confirm the date it was given: a notice entered late cannot
    # shorten their six months. Each of the other seven acknowledges 31 August 2006.
    ledger.refused("terminate", REF, "--as", "orwell", "--at", "2007-02-28",
                   says="runs until")
    for pid, *_ in PARTNERS:
        if pid != "orwell":
            ledger("acknowledge", REF, str(notice["seq"]), "--as", pid, "--at", "2006-09-01")
    ledger.refused("terminate", REF, "--as", "orwell", "--at", "2007-02-27",
                   says="runs until 2007-02-28")
    ledger("terminate", REF, "--as", "orwell", "--at", "2007-02-28",
           "--reason", "Notice period ended: the Agreement is wholly terminated (clause 8.3)")
    # Wholly terminated: no partner can act on it any more, not only the one that left.
    ledger.refused("notice", REF, "--as", "havebury", "--at", "2007-03-01",
                   says="was terminated on 2007-02-28")

    status = ledger.json("status", REF)
    check(status["state"] == "terminated", f"the Agreement should be terminated, not "
                                           f"{status['state']}")
    check(all(p["signed"] and p["status"] == "active" for p in status["partners"]),
          "all eight partners signed and the Agreement ended as a whole, not one partner's part")

    ledger("checkpoint")
    ledger("status", REF)
    ledger("budget", REF, "--by", "source")
    ledger("verify")


if __name__ == "__main__":
    main(record, __doc__)
