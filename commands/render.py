"""How the read commands print their views for people (tables with rich) and as CSV."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.values import at_text, money_text
from projections.budget import BudgetView, Share
from projections.summary import pounds
from projections.views import HistoryRow, StatusView

# Piped output is read by people in files and logs too: give tables room rather than
# rich's default of 80 columns, which would wrap every hash and date.
console = Console(highlight=False, soft_wrap=False,
                  width=None if sys.stdout.isatty() else 160)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def status(view: StatusView) -> None:
    """The agreement, its partners and what is pending."""
    console.print(f"[bold]{view.reference}[/bold]: {view.title}")
    console.print(f"  state:          [bold]{view.state}[/bold] (as of {view.as_of})")
    console.print(f"  basis:          {view.basis or '-'}")
    console.print(f"  flexibilities:  {', '.join(view.flexibilities) or '-'}")
    console.print(f"  agreed:         {view.agreed or '-'}    start: {view.start}    "
                  f"end: {view.end or 'open-ended'}")
    console.print(f"  notice period:  {view.notice_months} months; on withdrawal: "
                  f"{view.on_withdrawal}")
    console.print(f"  terms hash:     {view.terms_hash}")
    console.print(f"  entries:        {view.entries}; state digest {view.state_digest[:16]}")
    if view.executed_at:
        console.print(f"  signed by all:  {at_text(view.executed_at)}")
    if view.terminated_at:
        console.print(f"  terminated:     {at_text(view.terminated_at)}")
    table = Table(title="Partners", title_justify="left")
    for col in ("partner", "name", "role", "lead", "host", "pool", "signatory", "key id",
                "status", "signed"):
        table.add_column(col)
    for p in view.partners:
        table.add_row(p.id, p.name, p.role, _yes(p.lead), _yes(p.host), _yes(p.pool_manager),
                      f"{p.signatory.name}, {p.signatory.designation}",
                      p.signatory.key_id[:16], p.status, "yes" if p.signed else "no")
    console.print(table)
    for v in view.pending_variations:
        console.print(f"  variation {v.id} pending (proposed by {v.proposer}): {v.reason}; "
                      f"waiting for {', '.join(v.waiting_for)}")
    for n in view.notices:
        if not n.done:
            console.print(f"  notice of {n.kind} by {n.partner} given {n.at.date()}; "
                          f"earliest effective date {n.effective_from}")


def signatures(view: StatusView) -> None:
    """Who signed which state, with which key, when."""
    table = Table(title=f"Signatures of {view.reference}", title_justify="left")
    for col in ("seq", "partner", "state signed", "key id", "at", "recorded", "current"):
        table.add_column(col)
    current = {view.state_digest}
    for s in view.signatures:
        table.add_row(str(s.seq), s.partner, s.state[:16], s.key_id[:16], at_text(s.at),
                      at_text(s.recorded), "yes" if s.state in current else "")
    console.print(table)
    waiting = [p.id for p in view.partners if p.status == "active" and not p.signed]
    if view.state == "draft":
        console.print(f"  still to sign the current state: {', '.join(waiting) or 'nobody'}")


def history(reference: str, rows: Sequence[HistoryRow]) -> None:
    """Every entry, oldest first."""
    table = Table(title=f"History of {reference}", title_justify="left")
    for col in ("seq", "action", "partner", "key id", "at", "recorded", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.seq), r.action, r.partner, r.key_id[:12], at_text(r.at),
                      at_text(r.recorded), r.summary)
    console.print(table)


def _share_rows(table: Table, shares: Sequence[Share]) -> None:
    for s in shares:
        p = s.position
        table.add_row(s.name, pounds(p.confirmed), pounds(p.indicative), str(p.tba),
                      pounds(p.paid), pounds(p.outstanding), f"{s.share}%")


def budget(view: BudgetView, by: str) -> None:
    """Per year: each partner (or source) with the pool total."""
    if not view.years:
        console.print(f"{view.reference}: no funding declared")
    for year in view.years:
        table = Table(title=f"{view.reference} {year.year}: pool {pounds(year.position.total)}",
                      title_justify="left")
        for col in (by, "confirmed", "indicative", "tba", "paid", "outstanding", "share"):
            table.add_column(col, justify="left" if col == by else "right")
        _share_rows(table, year.partners if by == "partner" else year.sources)
        p = year.position
        table.add_row("[bold]total[/bold]", pounds(p.confirmed), pounds(p.indicative),
                      str(p.tba), pounds(p.paid), pounds(p.outstanding), "100.00%"
                      if p.total else "0.00%")
        console.print(table)


def budget_csv(view: BudgetView, by: str) -> str:
    """One row per year and partner (or source), money as decimal strings."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["reference", "year", by, "confirmed", "indicative", "tba", "paid",
                     "outstanding", "share"])
    for year in view.years:
        for s in year.partners if by == "partner" else year.sources:
            p = s.position
            writer.writerow([view.reference, year.year, s.name, money_text(p.confirmed),
                             money_text(p.indicative), p.tba, money_text(p.paid),
                             money_text(p.outstanding), f"{s.share:f}"])
        p = year.position
        writer.writerow([view.reference, year.year, "total", money_text(p.confirmed),
                         money_text(p.indicative), p.tba, money_text(p.paid),
                         money_text(p.outstanding), "100.00" if p.total else "0.00"])
    return out.getvalue()


def agreements(rows: Sequence[dict[str, object]]) -> None:
    """One line per agreement."""
    if not rows:
        console.print("no agreements yet; draft one with 'ledger draft'")
        return
    table = Table(title="Agreements", title_justify="left")
    for col in ("reference", "title", "state", "entries", "start", "end"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["reference"]), str(r["title"]), str(r["state"]), str(r["entries"]),
                      str(r["start"]), str(r["end"] or ""))
    console.print(table)


@contextmanager
def progress(what: str, *, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); nothing when piped or with --json."""
    if quiet or not sys.stderr.isatty():
        yield lambda _n: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda n: bar.advance(task, n)
