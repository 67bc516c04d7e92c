"""How the read commands print their views for people (tables with rich) and as CSV."""

from __future__ import annotations

import csv
import io
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

from commands.screen import cell as c
from commands.screen import safe
from ledger.values import at_text, money_text
from projections.budget import BudgetView, LineRow, Position, Share
from projections.summary import pounds
from projections.views import HistoryRow, StatusView, Task

# Markup and emoji codes are off: every string printed is shown as written (a title holding
# "[/]" or ":warning:" is that text), and our own emphasis is given as styled Text. Its width is
# set by _width before anything is laid out.
console = Console(highlight=False, soft_wrap=False, markup=False, emoji=False)


def _width() -> int:
    """The width to print at, read each time: COLUMNS if set (also when piped), else the
    terminal's, else 80."""
    console.width = max(shutil.get_terminal_size((80, 24)).columns, 20)
    return console.width

#: A table cell: text as shown (made safe by the caller), or styled text.
Cell = str | Text


def _plain(value: Cell) -> str:
    return value.plain if isinstance(value, Text) else value


def _least(value: Cell) -> int:
    """The narrowest a cell can be without cutting a word (an amount, a date, an id or a hash
    is one word)."""
    return max((cell_len(word) for word in _plain(value).split()), default=0)


#: A column of text is wrapped no narrower than this (or its longest word): "in force" is not
#: split, nor a title made a column of single words.
NARROWEST_TEXT = 16


def _emit(renderable: Cell | Table) -> None:
    """Print ``renderable`` at the console's width, each line without trailing blanks."""
    _width()
    for line in console.render_lines(renderable, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line and not line[-1].control:
            last = line.pop()
            line.append(Segment(last.text.rstrip(), last.style))
        console.print(Segments([*line, Segment.line()]))


def _natural(value: Cell) -> int:
    return max((cell_len(line) for line in _plain(value).splitlines()), default=0)


def _fit(columns: Sequence[Cell], rows: Sequence[Sequence[Cell]], room: int) -> list[int] | None:
    """The width of each column's text so that the table takes at most ``room`` characters
    with no word cut (text columns wrap between words, the widest first); None if none does."""
    cells = [[header, *(row[i] for row in rows)] for i, header in enumerate(columns)]
    widths = [max(_natural(v) for v in column) for column in cells]
    least = [max(*(_least(v) for v in column), min(natural, NARROWEST_TEXT))
             for column, natural in zip(cells, widths, strict=True)]
    if sum(least) > room:
        return None
    excess = sum(widths) - room
    while excess > 0:
        widest = max((i for i in range(len(widths)) if widths[i] > least[i]),
                     key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


#: The layouts a table is tried in, widest first: (box, edges shown, padding of a cell, and the
#: width the borders and padding take: a per column and b in all). Then, if no word would fit
#: whole, one block per row.
_Padding = tuple[int, int] | tuple[int, int, int, int]
_LAYOUTS: tuple[tuple[box.Box, bool, _Padding, int, int], ...] = (
    (box.HEAVY_HEAD, True, (0, 1), 3, 1),
    (box.SIMPLE_HEAD, False, (0, 1, 0, 0), 2, -2),
    (box.SIMPLE_HEAD, False, (0, 0), 1, -1),
)


def table(title: Cell, columns: Sequence[str], rows: Sequence[Sequence[Cell]], *,
          right: Sequence[str] = ()) -> None:
    """Print ``rows`` under ``title``: as a table if one fits the width with every word whole
    (an amount, a date, an id, a hash), else each row as a block of "column: value" lines.
    Columns named in ``right`` are right-aligned (amounts)."""
    width = _width()
    _emit(Text(title, style="table.title") if isinstance(title, str) else title)
    for frame, edge, padding, per_column, fixed in _LAYOUTS:
        widths = _fit(columns, rows, width - per_column * len(columns) - fixed)
        if widths is None:
            continue
        grid = Table(box=frame, show_edge=edge, pad_edge=edge, padding=padding)
        for name, size in zip(columns, widths, strict=True):
            grid.add_column(name, width=size, overflow="fold",
                            justify="right" if name in right else "left")
        for row in rows:
            grid.add_row(*row)
        _emit(grid)
        return
    for row in rows:
        _emit(Text.assemble(f"{columns[0]}: ", (_plain(row[0]), "bold")))
        pairs(list(zip(columns[1:], row[1:], strict=True)), indent=2)


def pairs(items: Sequence[tuple[str, Cell]], *, indent: int = 2) -> None:
    """"label: value" lines, the values aligned and wrapped between words; empty values are
    left out. A value with a word too long for its place (a hash on a narrow terminal) starts
    on the line below, and only a word longer than the whole width is folded."""
    shown = [(label, value) for label, value in items if _plain(value)]
    if not shown:
        return
    label_width = max(cell_len(label) for label, _ in shown) + 1
    width = _width()
    room = width - indent - label_width - 1
    for label, value in shown:
        text = value.copy() if isinstance(value, Text) else Text(value)
        head = " " * indent + f"{label}:".ljust(label_width) + " "
        if _least(value) > room:
            _emit(Text(head.rstrip()))
            head, room_here = " " * (indent + 2), width - indent - 2
        else:
            room_here = room
        for number, line in enumerate(text.wrap(console, max(room_here, 1), overflow="fold")):
            _emit(Text(head if number == 0 else " " * len(head)) + line)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def status(view: StatusView) -> None:
    """The agreement, its partners and what is pending."""
    _emit(Text.assemble((c(view.reference), "bold"), f": {c(view.title)}"))
    pairs([("state", Text.assemble((c(view.state), "bold"), f" (as of {c(view.as_of)})")),
           ("basis", c(view.basis or "-")),
           ("flexibilities", c(", ".join(view.flexibilities) or "-")),
           ("agreed", c(view.agreed or "-")),
           ("start", c(view.start)),
           ("end", c(view.end or "open-ended")),
           ("notice period", f"{c(view.notice_months)} months; on withdrawal: "
                             f"{c(view.on_withdrawal)}"),
           ("terms hash", c(view.terms_hash)),
           ("entries", f"{c(view.entries)}; state digest {c(view.state_digest[:16])}"),
           ("signed by all", at_text(view.executed_at) if view.executed_at else ""),
           ("terminated", at_text(view.terminated_at) if view.terminated_at else "")])
    table("Partners", ("partner", "name", "role", "lead", "host", "pool", "signatory", "key id",
                       "status", "signed"),
          [(c(p.id), c(p.name), c(p.role), _yes(p.lead), _yes(p.host), _yes(p.pool_manager),
            c(f"{p.signatory.name}, {p.signatory.designation}"),
            c(p.signatory.key_id[:16]), c(p.status), "yes" if p.signed else "no")
           for p in view.partners])
    for v in view.variations:
        if v.status == "pending":
            expiry = f"; lapses after {v.expires}" if v.expires else ""
            _emit(c(f"  variation {v.id} pending (proposed by {v.proposer}, proposal "
                            f"{v.proposal[:16]}): {v.reason}; waiting for "
                            f"{', '.join(v.waiting_for)}{expiry}"))
        elif v.status in ("lapsed", "withdrawn", "rejected", "expired"):
            how = {"lapsed": f"lapsed when variation {v.ended_by} took effect",
                   "withdrawn": f"withdrawn by {v.ended_by}",
                   "rejected": f"rejected by {v.ended_by}",
                   "expired": f"expired after {v.expires}"}[v.status]
            when = f" on {v.ended_at.date()}" if v.ended_at else ""
            _emit(c(f"  variation {v.id} {how}{when}: it will not take effect"))
    for n in view.notices:
        if not n.done:
            late = ""
            if n.backdated:
                late = (f" (recorded late: runs from {n.runs_from} until every other partner "
                        f"acknowledges its date; acknowledged by "
                        f"{', '.join(n.acknowledged) or 'nobody yet'})")
            _emit(c(f"  notice of {n.kind} by {n.partner} given {n.at.date()} (entry "
                            f"{n.seq}); earliest effective date {n.effective_from}{late}"))


def signatures(view: StatusView) -> None:
    """Who signed which state, with which key, when."""
    current = {view.state_digest}
    table(f"Signatures of {c(view.reference)}",
          ("seq", "partner", "state signed", "key id", "at", "recorded", "current"),
          [(str(s.seq), c(s.partner), c(s.state[:16]), c(s.key_id[:16]), at_text(s.at),
            at_text(s.recorded), "yes" if s.state in current else "")
           for s in view.signatures])
    waiting = [p.id for p in view.partners if p.status == "active" and not p.signed]
    active = [p for p in view.partners if p.status == "active"]
    if view.state == "draft" and len(active) < 2:
        _emit("  an agreement needs at least two partners: it stays a draft until "
                      "another partner joins (ledger join) and every partner signs")
    elif view.state == "draft":
        _emit(c(f"  still to sign the current state: {', '.join(waiting) or 'nobody'}"))


def history(reference: str, rows: Sequence[HistoryRow]) -> None:
    """Every entry, oldest first."""
    table(f"History of {c(reference)}",
          ("seq", "action", "partner", "key id", "at", "recorded", "summary"),
          [(str(r.seq), c(r.action), c(r.partner), c(r.key_id[:12]), at_text(r.at),
            at_text(r.recorded), c(r.summary)) for r in rows])


def _share_rows(shares: Sequence[Share]) -> list[tuple[Cell, ...]]:
    return [(c(s.name), pounds(s.position.confirmed), pounds(s.position.indicative),
             str(s.position.tba), pounds(s.position.paid), pounds(s.position.outstanding),
             f"{s.share}%") for s in shares]


def _pool(position: Position) -> str:
    """A year's pool, saying how many of its lines have no amount yet."""
    if not position.tba:
        return pounds(position.total)
    lines = "line" if position.tba == 1 else "lines"
    return f"{pounds(position.total)} + {position.tba} {lines} TBA"


def budget(view: BudgetView, by: str) -> None:
    """Per year: each partner (or source) with the pool total."""
    if not view.years:
        _emit(f"{c(view.reference)}: no funding declared")
    columns = (by, "confirmed", "indicative", "tba", "paid", "outstanding", "share")
    for year in view.years:
        p = year.position
        rows = _share_rows(year.partners if by == "partner" else year.sources)
        rows.append((Text("total", style="bold"), pounds(p.confirmed), pounds(p.indicative),
                     str(p.tba), pounds(p.paid), pounds(p.outstanding),
                     "100.00%" if p.total else "0.00%"))
        table(f"{c(view.reference)} {c(year.year)}: pool {_pool(p)}", columns, rows,
              right=columns[1:])


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
    columns = ("year", *(c(partner) for partner in partners), "pool", "paid", "outstanding")
    rows = []
    for year in view.years:
        shares = {s.name: s.position for s in year.partners}
        p = year.position
        rows.append((c(year.year), *(_to_fund(shares[n]) if n in shares else ""
                                     for n in partners),
                     _to_fund(p), pounds(p.paid), pounds(p.outstanding)))
    table(f"{c(view.reference)}: funding by year and partner", columns, rows,
          right=columns[1:])


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
    table(f"Funding lines of {c(reference)}", _LINE_COLUMNS[1:],
          [(c(line.year), c(line.partner), c(line.source), c(line.status), pounds(line.amount),
            pounds(line.paid), "yes" if line.released else "") for line in rows],
          right=("amount", "paid"))


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
    if not rows:
        _emit(f"no payments recorded in {c(reference)}")
        return
    shown = []
    for row in rows:
        j = payment_json(row)
        note = f"reverses entry {j['reverses']}" if j["reverses"] else ""
        shown.append((str(j["seq"]), c(j["at"]), c(j["partner"]), c(j["year"]), c(j["source"]),
                      pounds(str(j["amount"])), c(j["reference"] or ""), note))
    table(f"Payments of {c(reference)}",
          ("seq", "at", "partner", "year", "source", "amount", "reference", "note"), shown,
          right=("amount",))


def todo(partner: str, tasks: Sequence[Task]) -> None:
    """What is waiting for a partner, soonest first."""
    if not tasks:
        _emit(f"nothing is waiting for {c(partner)}")
        return
    table(f"Waiting for {c(partner)}", ("due", "agreement", "what"),
          [(str(task.due or ""), c(task.reference), c(task.what)) for task in tasks])


def agreements(rows: Sequence[dict[str, object]]) -> None:
    """One line per agreement."""
    if not rows:
        _emit("no agreements yet; draft one with 'ledger draft'")
        return
    table("Agreements", ("reference", "title", "state", "entries", "start", "end"),
          [(c(r["reference"]), c(r["title"]), c(r["state"]), str(r["entries"]), c(r["start"]),
            c(r["end"] or "")) for r in rows])


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
