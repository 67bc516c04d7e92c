"""Southwark integrated community equipment service, from the report to the Executive of
16 December 2003 ("Section 31 Arrangements for the Integrated Community Equipment Service").

Southwark Social Services becomes lead commissioner for community equipment from December 2003
(recommendation 1), an arrangement that "must be in place by 31 December 2003" for the £54,000
Access and Systems Capacity Grant (paragraphs 14 and 33). A variation adds the pooled budget
from March 2004 with Social Services, the lead commissioner, as pool manager (recommendation 2,
paragraph 15) and the budgets of paragraph 31 for 2003/04 to 2005/06, the PCT's lines
indicative. The agreement is "renewable year by year" (paragraph 28): each renewal is a
variation extending the end date by one financial year, to which the PCT consents. Two acts a
user might try are refused on the way. Ends with status, budget and verification.

    python examples/southwark_ices.py [--ledger PATH_OR_URL] [--workdir DIR]
"""

from __future__ import annotations

from _run import Ledger, check, main

REF = "southwark-ices"
SSD, PCT = "southwark-ssd", "southwark-pct"

LEAD_COMMISSIONING_TERMS = (
    "Section 31 Arrangement under the Health Act 1999 between Southwark Social Services and "
    "Southwark Primary Care Trust: Southwark Social Services to be the lead commissioner in "
    "relation to community equipment, commencing from December 2003.\n"
    "Approved by the Executive on 16 December 2003 (report of the Strategic Director of Social "
    "Services); negotiation, approval of and signature to the final terms delegated to the "
    "Strategic Director of Social Services.\n"
    "To be in place by 31 December 2003: grant funding of £54,000 (Access and Systems Capacity "
    "Grant, Department of Health) cannot be accessed unless it is.\n"
    "Renewable year by year; the Council decides each year on its participation for the "
    "following year and the level of its financial commitment.\n"
)

POOLED_BUDGET_TERMS = (
    "Section 31 Arrangement under the Health Act 1999 between Southwark Social Services and "
    "Southwark Primary Care Trust: a pooled budget for the purchase of community equipment, "
    "commencing in March 2004, with the lead commissioner (Southwark Social Services) as pool "
    "manager; lead commissioning continues.\n"
    "Each party contributes its cash limit budget (£,000): Social Services 730 (2003/04), "
    "748 (2004/05), 767 (2005/06); PCT 296, 303, 310, indicative until the South East London "
    "Shared Services Partnership block contract is disaggregated; total 1,026, 1,051, 1,077.\n"
    "An extra £350,000 requested in the 2004/05 budget setting, if agreed, is also part of the "
    "arrangement.\n"
)

#: Paragraph 31, in pounds: (partner, year, amount, status).
BUDGET = (
    (SSD, "2003/04", "730000", "confirmed"),
    (SSD, "2004/05", "748000", "confirmed"),
    (SSD, "2005/06", "767000", "confirmed"),
    (PCT, "2003/04", "296000", "indicative"),
    (PCT, "2004/05", "303000", "indicative"),
    (PCT, "2005/06", "310000", "indicative"),
)
TOTALS = {"2003/04": "1026000.00", "2004/05": "1051000.00", "2005/06": "1077000.00"}
SOURCE = {SSD: "Social Services community equipment cash limit budget",
          PCT: "PCT community equipment budget (SELSSP block contract share)"}
#: Paragraph 32: asked for, not agreed, so its amount is not yet known to the pool. (The
#: command line's --fund is comma-separated, so the figure is written without a comma.)
EXTRA = "Additional investment requested in 2004/05 budget setting (£350000; not yet agreed)"


def record(ledger: Ledger) -> None:
    """The report's two arrangements and their renewals, act by act."""
    ledger("init", "--origin", "ledger.southwark.example/ices")
    ledger.together(("keys", "new", SSD), ("keys", "new", PCT))

    # Drafted on the day the Executive approves and delegates the terms to the Strategic
    # Director. The first term runs to the end of the financial year: the report makes the
    # arrangement renewable year by year, with the Council's commitment decided a year at a
    # time. The report gives no notice period; three months is assumed. It is silent on the date
    # the terms were signed too: 19 December 2003, inside the 31 December deadline, is assumed,
    # and the arrangement starts that day ("commencing from December 2003").
    #
    # The report makes the lead commissioner the pool manager once the pool exists (paragraph
    # 15). A variation can change the flexibilities and the funding but not a partner's flags,
    # so Social Services is marked pool manager from the start; the pool itself (the
    # pooled-budget flexibility and the budgets) begins with the variation of March 2004.
    ledger("draft", REF, "--as", SSD,
           "--title", "Integrated Community Equipment Service (ICES)",
           "--terms", ledger.document("southwark-ices-lead-commissioning.txt",
                                      LEAD_COMMISSIONING_TERMS),
           "--basis", "Health Act 1999 s.31",
           "--flexibility", "lead-commissioning",
           "--start", "2003-12-19", "--end", "2004-03-31", "--notice", "3m",
           "--on-withdrawal", "terminate",
           "--name", "Southwark Social Services", "--role", "commissioning",
           "--lead", "--pool-manager",
           "--signatory", "The Strategic Director of Social Services",
           "--designation", "Southwark Council; signature delegated by the Executive on "
                            "16 December 2003 (the report does not name the holder)",
           "--at", "2003-12-16")
    ledger("join", REF, "--as", PCT, "--name", "Southwark Primary Care Trust",
           "--role", "commissioning", "--signatory", "Authorised signatory",
           "--designation", "Southwark Primary Care Trust (the report does not name the "
                            "signatory)",
           "--at", "2003-12-16")
    ledger("sign", REF, "--as", SSD, "--at", "2003-12-19")
    ledger("sign", REF, "--as", PCT, "--at", "2003-12-19")

    # The PCT tries to put its indicative budget in on its own once the arrangement is signed:
    # committed funding changes only by a variation both partners agree.
    ledger.refused("contribute", REF, "--as", PCT, "--year", "2003/04", "--amount", "296000",
                   "--indicative", "--source", SOURCE[PCT], "--at", "2004-01-15",
                   says="funding is committed once signed: propose a variation")

    # The pooled budget: proposed in March 2004 (the report: "to commence in March 2004", "in
    # place by 31 March 2004"); the exact days are assumed.
    funds = [f"partner={p},year={y},amount={a},source={SOURCE[p]},status={s}"
             for p, y, a, s in BUDGET]
    funds.append(f"partner={SSD},year=2004/05,source={EXTRA},status=tba")
    ledger("vary", REF, "--as", SSD, "--id", "pooled-budget",
           "--reason", "Pooled budget for the purchase of community equipment from March 2004, "
                       "Social Services (lead commissioner) as pool manager: Executive "
                       "16 December 2003, recommendation 2",
           "--terms", ledger.document("southwark-ices-pooled-budget.txt", POOLED_BUDGET_TERMS),
           "--flexibility", "lead-commissioning", "--flexibility", "pooled-budget",
           *[arg for fund in funds for arg in ("--fund", fund)],
           "--at", "2004-03-01")
    ledger("consent", REF, "pooled-budget", "--as", PCT, "--at", "2004-03-08")

    # Year-by-year renewal (paragraphs 28 and 30): a variation per financial year, proposed
    # before the term runs out and taking effect on the PCT's consent. Days assumed.
    for vid, end, proposed, consented, year in (
            ("renewal-2004-05", "2005-03-31", "2004-03-15", "2004-03-22", "2004/05"),
            ("renewal-2005-06", "2006-03-31", "2005-03-01", "2005-03-08", "2005/06")):
        ledger("vary", REF, "--as", SSD, "--id", vid, "--end", end,
               "--reason", f"Annual renewal for {year}: the Council's participation and "
                           f"financial commitment for the following year (report, para 30)",
               "--at", proposed)
        ledger("consent", REF, vid, "--as", PCT, "--at", consented)

    # The budgets stop at 2005/06 and no renewal follows: one proposed after the term has run
    # out comes too late.
    ledger.refused("vary", REF, "--as", SSD, "--id", "renewal-2006-07", "--end", "2007-03-31",
                   "--reason", "Annual renewal for 2006/07", "--at", "2006-04-03",
                   says="its end date has passed")

    budget = ledger.json("budget", REF)
    totals = {y["year"]: y["total"] for y in budget["years"]}
    check(totals == TOTALS, f"the pool should hold paragraph 31's totals {TOTALS}, not {totals}")

    ledger("checkpoint")
    ledger("status", REF)
    ledger("budget", REF)
    ledger("verify")


if __name__ == "__main__":
    main(record, __doc__)
