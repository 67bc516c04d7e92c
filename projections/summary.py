"""One line of plain English for each entry: what the timeline and ``history`` show."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledger.statement import Statement


def pounds(amount: Decimal | str | None) -> str:
    """Money for people: ``£341,740.00``, ``-£50.00``; ``TBA`` where no amount is known yet."""
    if amount is None:
        return "TBA"
    value = Decimal(amount)
    return f"-£{-value:,.2f}" if value < 0 else f"£{value:,.2f}"


def summarise(s: Statement) -> str:
    """What the partner did, in one line."""
    b: dict[str, Any] = s.body
    who = s.partner
    if s.action == "draft":
        return f"{who} drafted {b['agreement']['title']!r} ({b['partner']['name']})"
    if s.action == "join":
        return f"{who} joined as {b['role']} partner ({b['name']}), signatory {b['signatory']}"
    if s.action == "contribute":
        if "line" in b:
            line = b["line"]
            return (f"{who} declared {pounds(line['amount'])} {line['status']} for "
                    f"{line['year']} from {line['source']}")
        if "reversal" in b:
            undo = b["reversal"]
            return f"{who} reversed the payment of entry {undo['payment']}: {undo['reason']}"
        pay = b["payment"]
        ref = f" (ref. {pay['reference']})" if pay.get("reference") else ""
        return f"{who} paid {pounds(pay['amount'])} for {pay['year']} from {pay['source']}{ref}"
    if s.action == "sign":
        return f"{who} signed state {b['state'][:12]}"
    if s.action == "vary":
        changed = ", ".join(sorted(b["changes"])) or "nothing"
        return f"{who} proposed variation {b['id']} ({changed}): {b['reason']}"
    if s.action == "consent":
        return f"{who} consented to variation {b['variation']}"
    if s.action == "notice":
        reason = f": {b['reason']}" if b["reason"] else ""
        return f"{who} gave notice of {b['kind']}{reason}"
    if s.action == "terminate":
        reason = f": {b['reason']}" if b["reason"] else ""
        return f"{who} recorded termination{reason}"
    if s.action == "appoint":
        return f"{who} appointed {b['signatory']} ({b['designation']}) as signatory"
    reason = f": {b['reason']}" if b.get("reason") else ""
    if s.action == "withdraw":
        what = (f"variation {b['variation']}" if "variation" in b
                else f"its notice of entry {b['notice']}")
        return f"{who} withdrew {what}{reason}"
    if s.action == "reject":
        return f"{who} rejected variation {b['variation']}{reason}"
    if s.action == "acknowledge":
        return f"{who} acknowledged the date of the notice of entry {b['notice']}"
    return f"{who} {s.action}"
