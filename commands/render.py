"""How the read commands print their views for people (tables with rich) and as CSV."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table
from rich.text import Text

from commands.screen import cell as c
from commands.screen import safe
from ledger.values import at_text, money_text
from projections.budget import BudgetView, LineRow, Position, Share
from projections.summary import pounds
from projections.views import HistoryRow, StatusView, Task

# Piped output is read by people in files and logs too: give tables room rather than
# rich's default of 80 columns, which would wrap every hash and date.
# Markup and emoji codes are off: every string printed is shown as written (a title holding
# "[/]" or ":warning:" is that text), and our own emphasis is given as styled Text.
console = Console(highlight=False, soft_wrap=False, markup=False, emoji=False,
                  width=None if sys.stdout.isatty() else 160)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def status(view: StatusView) -> None:
    """The agreement, its partners and what is pending."""
    console.print(Text.assemble((c(view.reference), "bold"), f": {c(view.title)}"))
    console.print(Text.assemble("  state:          ", (c(view.state), "bold"),
                                f" (as of {c(view.as_of)})"))
    console.print(f"  basis:          {c(view.basis or '-')}")
    console.print(f"  flexibilities:  {c(', '.join(view.flexibilities) or '-')}")
    console.print(f"  agreed:         {c(view.agreed or '-')}    start: {c(view.start)}    "
                  f"end: {c(view.end or 'open-ended')}")
    console.print(f"  notice period:  {c(view.notice_months)} months; on withdrawal: "
                  f"{c(view.on_withdrawal)}")
    console.print(f"  terms hash:     {c(view.terms_hash)}")
    console.print(f"  entries:        {c(view.entries)}; state digest "
                  f"{c(view.state_digest[:16])}")
    if view.executed_at:
        console.print(f"  signed by all:  {at_text(view.executed_at)}")
    if view.terminated_at:
        console.print(f"  terminated:     {at_text(view.terminated_at)}")
    table = Table(title="Partners", title_justify="left")
    for col in ("partner", "name", "role", "lead", "host", "pool", "signatory", "key id",
                "status", "signed"):
        table.add_column(col)
    for p in view.partners:
        table.add_row(c(p.id), c(p.name), c(p.role), _yes(p.lead), _yes(p.host),
                      _yes(p.pool_manager), c(f"{p.signatory.name}, {p.signatory.designation}"),
                      c(p.signatory.key_id[:16]), c(p.status), "yes" if p.signed else "no")
    console.print(table)
    for v in view.variations:
        if v.status == "pending":
            expiry = f"; lapses after {v.expires}" if v.expires else ""
            console.print(c(f"  variation {v.id} pending (proposed by {v.proposer}, proposal "
                            f"{v.proposal[:16]}): {v.reason}; waiting for "
                            f"{', '.join(v.waiting_for)}{expiry}"))
        elif v.status in ("lapsed", "withdrawn", "rejected", "expired"):
            how = {"lapsed": f"lapsed when variation {v.ended_by} took effect",
                   "withdrawn": f"withdrawn by {v.ended_by}",
                   "rejected": f"rejected by {v.ended_by}",
                   "expired": f"expired after {v.expires}"}[v.status]
            when = f" on {v.ended_at.date()}" if v.ended_at else ""
            console.print(c(f"  variation {v.id} {how}{when}: it will not take effect"))
    for n in view.notices:
        if not n.done:
            late = ""
            if n.backdated:
                late = (f" (recorded late: runs from {n.runs_from} until every other partner "
                        f"acknowledges its date; acknowledged by "
                        f"{', '.join(n.acknowledged) or 'nobody yet'})")
            console.print(c(f"  notice of {n.kind} by {n.partner} given {n.at.date()} (entry "
                            f"{n.seq}); earliest effective date {n.effective_from}{late}"))


def signatures(view: StatusView) -> None:
    """Who signed which state, with which key, when."""
    table = Table(title=f"Signatures of {c(view.reference)}", title_justify="left")
    for col in ("seq", "partner", "state signed", "key id", "at", "recorded", "current"):
        table.add_column(col)
    current = {view.state_digest}
    for s in view.signatures:
        table.add_row(str(s.seq), c(s.partner), c(s.state[:16]), c(s.key_id[:16]),
                      at_text(s.at), at_text(s.recorded), "yes" if s.state in current else "")
    console.print(table)
    waiting = [p.id for p in view.partners if p.status == "active" and not p.signed]
    active = [p for p in view.partners if p.status == "active"]
    if view.state == "draft" and len(active) < 2:
        console.print("  an agreement needs at least two partners: it stays a draft until "
                      "another partner joins (ledger join) and every partner signs")
    elif view.state == "draft":
        console.print(c(f"  still to sign the current state: {', '.join(waiting) or 'nobody'}"))


def history(reference: str, rows: Sequence[HistoryRow]) -> None:
    """Every entry, oldest first."""
    table = Table(title=f"History of {c(reference)}", title_justify="left")
    for col in ("seq", "action", "partner", "key id", "at", "recorded", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.seq), c(r.action), c(r.partner), c(r.key_id[:12]), at_text(r.at),
                      at_text(r.recorded), c(r.summary))
    console.print(table)


def _share_rows(table: Table, shares: Sequence[Share]) -> None:
    for s in shares:
        p = s.position
        table.add_row(c(s.name), pounds(p.confirmed), pounds(p.indicative), str(p.tba),
                      pounds(p.paid), pounds(p.outstanding), f"{s.share}%")


def budget(view: BudgetView, by: str) -> None:
    """Per year: each partner (or source) with the pool total."""
    if not view.years:
        console.print(f"{c(view.reference)}: no funding declared")
    for year in view.years:
        table = Table(title=f"{c(view.reference)} {c(year.year)}: pool "
                            f"{pounds(year.position.total)}", title_justify="left")
        for col in (by, "confirmed", "indicative", "tba", "paid", "outstanding", "share"):
            table.add_column(col, justify="left" if col == by else "right")
        _share_rows(table, year.partners if by == "partner" else year.sources)
        p = year.position
        table.add_row(Text("total", style="bold"), pounds(p.confirmed), pounds(p.indicative),
                      str(p.tba), pounds(p.paid), pounds(p.outstanding), "100.00%"
                      if p.total else "0.00%")
        console.print(table)


#: What a spreadsheet takes for the start of a formula (OWASP, CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _text(value: object) -> str:
    """A text cell of a CSV file: shown safe, and never read by a spreadsheet as a formula
    (a leading ' makes it text, and every cell is quoted, so that a ';' or ',' inside one
    cannot start another cell whichever separator the spreadsheet takes: as OWASP advises)."""
    text = safe(str(value))
    return f"'{text}" if text.startswith(_FORMULA) else text


def budget_csv(view: BudgetView, by: str) -> str:
    """One row per year and partner (or source), money as decimal strings."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["reference", "year", by, "confirmed", "indicative", "tba", "paid",
                     "outstanding", "share"])
    for year in view.years:
        for s in year.partners if by == "partner" else year.sources:
            p = s.position
            writer.writerow([_text(view.reference), _text(year.year), _text(s.name),
                             money_text(p.confirmed),
                             money_text(p.indicative), p.tba, money_text(p.paid),
                             money_text(p.outstanding), f"{s.share:f}"])
        p = year.position
        writer.writerow([_text(view.reference), _text(year.year), "total",
                         money_text(p.confirmed),
                         money_text(p.indicative), p.tba, money_text(p.paid),
                         money_text(p.outstanding), "100.00" if p.total else "0.00"])
    return out.getvalue()


def budget_grid(view: BudgetView) -> None:
    """Every year by partner: what each partner is to fund (confirmed and indicative), and the
    pool, one row per year."""
    partners = sorted({s.name for y in view.years for s in y.partners})
    table = Table(title=f"{c(view.reference)}: funding by year and partner",
                  title_justify="left")
    table.add_column("year")
    for partner in partners:
        table.add_column(c(partner), justify="right")
    for col in ("pool", "paid", "outstanding"):
        table.add_column(col, justify="right")
    for year in view.years:
        shares = {s.name: s.position for s in year.partners}
        p = year.position
        table.add_row(c(year.year), *(_to_fund(shares[n]) if n in shares else ""
                                   for n in partners),
                      _to_fund(p), pounds(p.paid), pounds(p.outstanding))
    console.print(table)


def _to_fund(position: Position) -> str:
    """What a partner (or the pool) is to fund in a year; lines whose amount is still to be
    agreed show as TBA, never as nothing."""
    if not position.tba:
        return pounds(position.total)
    return "TBA" if not position.total else f"{pounds(position.total)} + TBA"


_LINE_COLUMNS = ("reference", "year", "partner", "source", "status", "amount", "paid",
                 "released")
_PAYMENT_COLUMNS = ("reference", "seq", "at", "partner", "year", "source", "amount",
                    "payment_reference", "reverses")


def lines_csv(reference: str, lines: Sequence[LineRow]) -> str:
    """Every funding line, one row each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(_LINE_COLUMNS)
    for line in lines:
        writer.writerow([_text(reference), _text(line.year), _text(line.partner),
                         _text(line.source), _text(line.status),
                         "" if line.amount is None else money_text(line.amount),
                         money_text(line.paid), "yes" if line.released else ""])
    return out.getvalue()


def lines(reference: str, rows: Sequence[LineRow]) -> None:
    """Every funding line."""
    table = Table(title=f"Funding lines of {c(reference)}", title_justify="left")
    for col in _LINE_COLUMNS[1:]:
        table.add_column(col, justify="right" if col in ("amount", "paid") else "left")
    for line in rows:
        table.add_row(c(line.year), c(line.partner), c(line.source), c(line.status),
                      pounds(line.amount), pounds(line.paid), "yes" if line.released else "")
    console.print(table)


def payment_json(row: dict[str, object]) -> dict[str, object]:
    """A payment row as ``budget --payments --json`` gives it."""
    return {"seq": row["seq"], "at": row["at"], "partner": row["partner"], "year": row["year"],
            "source": row["source"], "amount": money_text(row["amount"]),  # type: ignore[arg-type]
            "reference": row["payment_ref"], "reverses": row["reverses"]}


def payments_csv(reference: str, rows: Sequence[dict[str, object]]) -> str:
    """Every payment and reversal, one row each (a reversal's amount is negative)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(_PAYMENT_COLUMNS)
    for row in rows:
        j = payment_json(row)
        writer.writerow([_text(reference), j["seq"], _text(j["at"]), _text(j["partner"]),
                         _text(j["year"]), _text(j["source"]), j["amount"],
                         _text(j["reference"] or ""), j["reverses"] or ""])
    return out.getvalue()


def payments(reference: str, rows: Sequence[dict[str, object]]) -> None:
    """Every payment and reversal."""
    table = Table(title=f"Payments of {c(reference)}", title_justify="left")
    for col in ("seq", "at", "partner", "year", "source", "amount", "reference", "note"):
        table.add_column(col, justify="right" if col == "amount" else "left")
    for row in rows:
        j = payment_json(row)
        note = f"reverses entry {j['reverses']}" if j["reverses"] else ""
        table.add_row(str(j["seq"]), c(j["at"]), c(j["partner"]), c(j["year"]), c(j["source"]),
                      pounds(str(j["amount"])), c(j["reference"] or ""), note)
    console.print(table)


def todo(partner: str, tasks: Sequence[Task]) -> None:
    """What is waiting for a partner, soonest first."""
    if not tasks:
        console.print(f"nothing is waiting for {c(partner)}")
        return
    table = Table(title=f"Waiting for {c(partner)}", title_justify="left")
    for col in ("due", "agreement", "what"):
        table.add_column(col)
    for task in tasks:
        table.add_row(str(task.due or ""), c(task.reference), c(task.what))
    console.print(table)


def agreements(rows: Sequence[dict[str, object]]) -> None:
    """One line per agreement."""
    if not rows:
        console.print("no agreements yet; draft one with 'ledger draft'")
        return
    table = Table(title="Agreements", title_justify="left")
    for col in ("reference", "title", "state", "entries", "start", "end"):
        table.add_column(col)
    for r in rows:
        table.add_row(c(r["reference"]), c(r["title"]), c(r["state"]), str(r["entries"]),
                      c(r["start"]), c(r["end"] or ""))
    console.print(table)


@contextmanager
def progress(what: str, *, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); nothing when piped or with --json."""
    if quiet or not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.progress import (  # noqa: PLC0415 - only a long command on a terminal shows one
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True, emoji=False),
                  transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda n: bar.advance(task, n)
