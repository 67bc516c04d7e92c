"""``ledger report``: one self-contained HTML page auditing one agreement.

The page's content is :class:`projections.report.ReportData`; this module only renders it with
the Jinja2 template ``commands/templates/report.html.j2`` and writes the file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands import screen
from commands.app import app
from commands.common import Common, command, emit_json
from ledger.errors import InvalidInput, VerificationFailed
from ledger.values import at_text, parse_date, parse_slug

if TYPE_CHECKING:
    from jinja2 import Environment

    from projections.report import ReportData

# Only this command loads Jinja2 and the report's data: every other command starts without.

TEMPLATE = "report.html.j2"
SHORT_HASH = 16


def _short(digest: str) -> str:
    return digest[:SHORT_HASH]


def environment() -> Environment:
    """The templates, with autoescape on: every text in the ledger is a partner's input."""
    from jinja2 import Environment, PackageLoader, StrictUndefined  # noqa: PLC0415

    from projections.summary import pounds  # noqa: PLC0415

    env = Environment(loader=PackageLoader("commands", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(at=at_text, day=lambda moment: moment.date().isoformat(), money=pounds,
                       short=_short)
    return env


def render_report(data: ReportData) -> str:
    """The report as one HTML document."""
    return environment().get_template(TEMPLATE).render(r=data)


Ref = Annotated[str, typer.Argument(metavar="REF",
                                    help="Agreement reference, e.g. salford-dat-2004.")]
Output = Annotated[Path | None, typer.Option(
    "-o", "--output", help="HTML file to write (default: REF.html).")]
AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="Show the agreement as it stood at the end of this date (YYYY-MM-DD).")]


@command(app, "report")
def report(opts: Common, reference: Ref, output: Output = None, as_of: AsOf = None) -> None:
    """Write a self-contained HTML audit report of one agreement: terms, partners and
    signatories, signatures, timeline, variations, notices, budget with a chart, and the
    verification of every entry against the latest checkpoint (made now, even with --as-of).
    Exit 3 if verification fails; the report is written either way."""
    from commands import render  # noqa: PLC0415
    from projections.report import build_report  # noqa: PLC0415

    parse_slug(reference, "agreement reference")
    day: date | None = None if as_of is None else parse_date(as_of, "--as-of")
    path = output or Path(f"{reference}.html")
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give the report's file name with -o")
    if not path.parent.is_dir():
        raise InvalidInput(f"there is no folder {path.parent} to write the report in; "
                           f"create it or name another file with -o")
    with opts.reading() as ledger, render.progress("verifying", quiet=opts.json) as advance:
        data = build_report(ledger, reference, day, progress=advance)
    try:
        path.write_text(render_report(data), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write the report to {path}: {exc.strerror or exc}; "
                           f"name a writable file with -o") from None
    verdict = data.verification
    if opts.json:
        emit_json({"file": str(path), "reference": reference, "state": data.agreement.state,
                   "as_of": data.agreement.as_of.isoformat(), "entries": data.agreement.entries,
                   "verified": verdict.ok,
                   "checkpoint_size": None if data.checkpoint is None else data.checkpoint.size})
    else:
        checked = "verified" if verdict.ok else "verification FAILED"
        screen.echo(f"wrote {path}: {reference} {data.agreement.state} as of "
                   f"{data.agreement.as_of}, {data.agreement.entries} entries; {checked}")
    if not verdict.ok:
        more = f" (and {len(verdict.failures) - 1} more)" if len(verdict.failures) > 1 else ""
        raise VerificationFailed(f"verification failed: {verdict.failures[0]}{more}; the "
                                 f"report {path} lists every failure")
