"""The audit report: the data the page is built from, the page itself, and ``ledger report``.

The Salford drug action team agreement is recorded as ``ledger demo`` records it (from the
Section 31 notification), checkpointed by the operator and cosigned by the PCT, on SQLite and
on PostgreSQL. The page must carry the notification's totals to the penny, every signatory,
every entry, and the verification made when it was generated; it must load nothing from any
network, and a partner's text must never become markup.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from commands.demo import REFERENCE, TOTALS, record_salford
from commands.report import render_report
from ledger.application import Ledger
from ledger.bodies import Changes, PartnerDetails
from ledger.checkpoints import signed_checkpoint
from ledger.errors import NotFound
from ledger.keys import key_id
from ledger.note import cosign
from projections.log import MerkleLog
from projections.readmodels import ReadModels
from projections.report import ReportData, budget_chart, build_report
from tests.conftest import ORIGIN
from tests.keys import fixed_key
from tests.scenarios import COUNCIL, FY2004, PCT, REF, line, signed, terms
from tests.seeds import Cli, key_folder
from tests.tamper import Backdoor

COUNCIL_KEY = fixed_key("salford-city-council")
PCT_KEY = fixed_key("salford-pct")
OPERATOR = fixed_key("operator")
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def checkpoint(ledger: Ledger, *cosigners: str) -> int:
    """The operator signs a checkpoint of the whole log; each of ``cosigners`` cosigns it with
    its fixed key. Returns the checkpoint's size."""
    models = ReadModels(ledger)
    try:
        log = MerkleLog(models)
        size = log.current_size()
        record = ledger.record_checkpoint(
            signed_checkpoint(ORIGIN, size, log.root(size), "operator", OPERATOR))
    finally:
        models.close()
    body = record.checkpoint.body()
    for name in cosigners:
        key = fixed_key(name)
        ledger.add_cosignature(size, name, key.public_key,
                               cosign(body, name, key.private_key, int(NOW.timestamp())))
    return size


@pytest.fixture
def salford(ledger: Ledger) -> Ledger:
    """The Salford DAT pooled budget signed by both partners, checkpointed, cosigned by the PCT."""
    record_salford(ledger, COUNCIL_KEY, PCT_KEY)
    checkpoint(ledger, "salford-pct")
    return ledger


@pytest.fixture
def report(salford: Ledger) -> ReportData:
    return build_report(salford, REFERENCE, now=NOW)


class _Page(HTMLParser):
    """The page's text as a reader sees it, and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src", "srcset", "action", "poster", "data", "xlink:href"):
                self.links.append((tag, name, value or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


# --- the data the template receives ---------------------------------------------------------------


def test_the_budget_carries_the_notifications_totals_to_the_penny(report: ReportData) -> None:
    totals = {y.year: y.total for y in report.budget}
    assert {year: t.total for year, t in totals.items()} == TOTALS
    assert totals["2003/04"].total == Decimal("2262440.00")
    assert totals["2004/05"].total == Decimal("2513360.00")
    for year in report.budget:
        assert sum(s.position.total for s in year.partners) == year.total.total
        assert [s.name for s in year.partners] == ["Salford City Council", "Salford PCT"]
    assert sum(len(y.lines) for y in report.budget) == 14


def test_every_partner_and_signatory_is_named_with_its_key(report: ReportData) -> None:
    partners = {p.id: p for p in report.partners}
    assert set(partners) == {"salford-city-council", "salford-pct"}
    council, pct = partners["salford-city-council"], partners["salford-pct"]
    assert (council.name, council.signatory.name) == ("Salford City Council", "Anne Williams")
    assert (council.lead, council.host, council.pool_manager) == (True, True, True)
    assert (pct.name, pct.signatory.name) == ("Salford PCT", "Authorised signatory")
    assert council.signatory.key_id == COUNCIL_KEY.key_id
    assert pct.signatory.key_id == PCT_KEY.key_id


def test_the_signature_table_says_who_signed_which_state_when_and_where_it_is_logged(
        report: ReportData) -> None:
    rows = [(s.seq, s.log_index, s.partner, s.key_id, s.standing, s.at.date())
            for s in report.signatures]
    assert rows == [
        (17, 16, "salford-pct", PCT_KEY.key_id, "executed", date(2003, 7, 3)),
        (18, 17, "salford-city-council", COUNCIL_KEY.key_id, "executed", date(2003, 7, 3))]
    assert {s.state for s in report.signatures} == {report.agreement.state_digest}
    assert report.signatures[1].signatory.startswith("Anne Williams, Chair of the Salford")
    assert all(s.recorded >= s.at for s in report.signatures)


def test_the_timeline_holds_every_entry_with_its_log_index(report: ReportData) -> None:
    assert len(report.timeline) == report.agreement.entries == 18
    assert [t.seq for t in report.timeline] == list(range(1, 19))
    assert [t.log_index for t in report.timeline] == list(range(18))
    assert [t.action for t in report.timeline][:2] == ["draft", "join"]
    assert report.timeline[-1].action == "sign"


def test_the_agreement_and_its_state(report: ReportData) -> None:
    a = report.agreement
    assert (a.reference, a.basis, a.notice_months) == (REFERENCE, "Health Act 1999 s.31", 6)
    assert a.flexibilities == ("lead-commissioning", "pooled-budget")
    assert (a.agreed, a.start, a.end) == (date(2003, 7, 3), date(2004, 4, 1), None)
    assert a.state == "in force"
    assert a.as_of == NOW.date()
    assert len(a.terms_hash) == 64
    assert report.as_of is None
    assert report.generated_at == NOW
    assert report.origin == ORIGIN


def test_verification_is_ok_against_the_cosigned_checkpoint(report: ReportData) -> None:
    v, cp = report.verification, report.checkpoint
    assert v.ok, v.failures
    assert v.entries == v.recorded == 18
    assert v.failures == ()
    assert any("signatures" in c for c in v.checks)
    assert any("inclusion proof" in c for c in v.checks)
    assert cp is not None
    assert (cp.size, cp.covered, cp.newer) == (18, 18, 0)
    assert (cp.origin, cp.operator) == (ORIGIN, "operator")
    assert cp.operator_key_id == key_id(OPERATOR.public_key)
    assert [(c.name, c.verified) for c in cp.cosigners] == [("salford-pct", True)]
    assert cp.cosigners[0].timestamp == NOW
    assert cp.note.startswith(f"{ORIGIN}\n18\n")


def test_entries_after_the_checkpoint_are_counted_as_not_yet_covered(salford: Ledger) -> None:
    salford.pay(REFERENCE, "salford-pct", FY2004, Decimal("100000.00"), "PCT mainstream",
                PCT_KEY, datetime(2004, 5, 1, tzinfo=UTC))
    data = build_report(salford, REFERENCE, now=NOW)
    assert data.verification.ok
    assert data.checkpoint is not None
    assert (data.checkpoint.size, data.checkpoint.covered, data.checkpoint.newer) == (18, 18, 1)
    pct = next(s for y in data.budget if y.year == "2004/05" for s in y.partners
               if s.partner == "salford-pct")
    assert pct.position.paid == Decimal("100000.00")
    assert any(b.kind == "paid" for b in data.chart.bars)


def test_without_a_checkpoint_the_entries_are_still_verified(ledger: Ledger) -> None:
    record_salford(ledger, COUNCIL_KEY, PCT_KEY)
    data = build_report(ledger, REFERENCE, now=NOW)
    assert data.checkpoint is None
    assert data.verification.ok
    assert data.verification.entries == 18
    assert "no checkpoint yet" in render_report(data)


def test_as_of_a_date_before_signing_the_report_shows_the_draft(salford: Ledger) -> None:
    data = build_report(salford, REFERENCE, as_of=date(2003, 6, 15), now=NOW)
    assert data.as_of == date(2003, 6, 15)
    assert data.agreement.state == "draft"
    assert data.agreement.as_of == date(2003, 6, 15)
    assert data.signatures == ()
    assert len(data.timeline) == data.agreement.entries == 16
    assert all(not p.signed for p in data.partners)
    assert {y.year: y.total.total for y in data.budget} == TOTALS
    # The verification is the check made now, of the record as it stands.
    assert data.verification.ok
    assert data.verification.entries == 18
    assert data.checkpoint is not None
    assert data.checkpoint.covered == 18
    html = render_report(data)
    assert "as it stood at the end of 2003-06-15" in html


def test_as_of_a_date_before_the_draft_is_refused(salford: Ledger) -> None:
    with pytest.raises(NotFound, match="had not been drafted by 2003-05-01"):
        build_report(salford, REFERENCE, as_of=date(2003, 5, 1), now=NOW)


def test_an_unknown_agreement_is_refused(salford: Ledger) -> None:
    with pytest.raises(NotFound, match="no agreement 'salford-dat-2005'"):
        build_report(salford, "salford-dat-2005", now=NOW)


def test_variations_consents_notices_and_a_new_signatory_are_reported(ledger: Ledger) -> None:
    deal = signed(ledger)
    deal.pay(PCT, "100000.00", "2004-04-05T09:00:00")
    deal.vary(PCT, "v1", "2004-06-01T10:00:00",
              Changes(end=date(2007, 3, 31),
                      funding=(line(PCT, "368220.00", FY2004, status="indicative"),)))
    deal.consent(COUNCIL, "v1", "2004-07-01T10:00:00")
    deal.appoint(PCT, fixed_key("salford-pct-ce"), "2004-07-02T10:00:00")
    deal.notice(PCT, "2004-08-31T10:00:00")
    checkpoint(ledger, COUNCIL)
    data = build_report(ledger, REF, now=datetime(2004, 9, 15, tzinfo=UTC))

    assert data.agreement.state == "notice given"
    (v1,) = data.variations
    assert (v1.id, v1.proposer, v1.effective, v1.waiting_for) == ("v1", PCT, True, ())
    assert [(c.partner, c.seq) for c in v1.consents] == [(PCT, 8), (COUNCIL, 9)]
    assert v1.consents[1].at == datetime(2004, 7, 1, 10, tzinfo=UTC)
    assert v1.consents[1].log_index == 8
    assert dict(v1.changes)["end"] == "2007-03-31"
    assert "£368,220.00 indicative" in dict(v1.changes)["funding"]
    (notice,) = data.notices
    assert (notice.partner, notice.kind, notice.effective_from, notice.done) == (
        PCT, "withdrawal", date(2005, 2, 28), False)
    pct = next(p for p in data.partners if p.id == PCT)
    assert [s.key_id for s in pct.signatories] == [fixed_key(PCT).key_id,
                                                   fixed_key("salford-pct-ce").key_id]
    assert len(data.timeline) == 11
    kinds = {b.kind for b in data.chart.bars}
    assert kinds == {"confirmed", "indicative", "paid"}
    assert data.verification.ok, data.verification.failures
    assert data.checkpoint is not None
    assert [(c.name, c.verified) for c in data.checkpoint.cosigners] == [(COUNCIL, True)]
    html = render_report(data)
    assert "2005-02-28" in html
    assert "in effect from entry 9" in html


# --- the chart ------------------------------------------------------------------------------------


def test_the_chart_puts_every_year_on_one_scale(report: ReportData) -> None:
    chart = report.chart
    bars = {b.title.split(":")[0]: b for b in chart.bars}
    pct_2004 = bars["Salford PCT 2004/05 confirmed"]
    pct_2003 = bars["Salford PCT 2003/04 confirmed"]
    council_2003 = bars["Salford City Council 2003/04 confirmed"]
    # One scale: widths are in proportion to the amounts, and none runs past the chart.
    assert pct_2004.width / pct_2003.width == pytest.approx(2187210 / 1957290, rel=1e-3)
    assert council_2003.width / pct_2003.width == pytest.approx(305150 / 1957290, rel=1e-3)
    assert all(b.x >= 0 and b.x + b.width <= 100 for b in chart.bars)
    assert max(b.x + b.width for b in chart.bars) > 80
    ticks = [label.text for label in chart.labels if label.kind == "tick"]
    assert ticks == ["£0", "£500k", "£1m", "£1.5m", "£2m", "£2.5m"]
    assert chart.height > max(b.y + b.height for b in chart.bars)
    assert "Salford PCT confirmed £1,957,290.00" in chart.description


def test_an_agreement_without_funding_has_an_empty_chart() -> None:
    chart = budget_chart(())
    assert chart.bars == ()
    assert chart.description == "no funding declared"


# --- the page -------------------------------------------------------------------------------------


def test_the_page_shows_the_totals_signatories_and_verdict(report: ReportData) -> None:
    html = render_report(report)
    text = " ".join(parse(html).text)
    for figure in ("£2,262,440.00", "£2,513,360.00", "Pool total 2003/04", "Pool total 2004/05",
                   "£341,740.00"):
        assert figure in text
    for name in ("Anne Williams", "Authorised signatory", "Salford City Council", "Salford PCT"):
        assert name in text
    assert COUNCIL_KEY.key_id in text
    assert "Verified: every check passed" in text
    assert "ledger export salford-dat-2004 -o bundle.json && ledger verify-bundle bundle.json" \
        in text
    assert html.count('<tr><td class="num">') >= 18 + 2


def test_the_page_is_self_contained(report: ReportData) -> None:
    html = render_report(report)
    page = parse(html)
    assert "http://" not in html
    assert "https://" not in html
    assert "url(" not in html
    assert "@import" not in html
    assert "script" not in page.tags
    assert {"link", "img", "iframe", "object", "embed"}.isdisjoint(page.tags)
    # Every link is to a section of the page itself.
    assert page.links
    assert all(name == "href" and value.startswith("#") for _, name, value in page.links)
    assert "default-src 'none'" in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_the_page_prints_on_a4_without_cutting_rows(report: ReportData) -> None:
    html = render_report(report)
    style = re.search(r"<style>(.*)</style>", html, re.S)
    assert style is not None
    css = style.group(1)
    assert "@page { size: A4;" in css
    assert "@media print" in css
    assert "display: table-header-group" in css
    assert re.search(r"tr, [^{]*\{ break-inside: avoid", css)
    assert ".table-wrap { overflow-x: auto;" in css


def test_a_partners_text_is_escaped_not_run(ledger: Ledger) -> None:
    evil = "<script>alert('pwned')</script> & Co"
    ledger.draft("escape-test", "salford-pct", terms(title="Pool <b>bold</b>"),
                 PartnerDetails(evil, "commissioning", lead=True, host=False,
                                pool_manager=False, signatory="<img src=x onerror=alert(1)>",
                                designation="Chief \"Executive\"",
                                public_key=PCT_KEY.public_key),
                 PCT_KEY, datetime(2003, 7, 1, tzinfo=UTC))
    html = render_report(build_report(ledger, "escape-test", now=NOW))
    page = parse(html)
    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; Co" in html
    assert "Pool &lt;b&gt;bold&lt;/b&gt;" in html
    assert "script" not in page.tags
    assert "img" not in page.tags
    # The text reads back as the partner wrote it.
    assert evil in "".join(page.text)


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def cli(salford: Ledger, ledger_url: str, tmp_path: Path) -> Cli:
    return Cli(ledger_url, key_folder(tmp_path / "keys", ()))


def test_ledger_report_writes_the_page(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "salford.html"
    result = cli("report", REFERENCE, "-o", str(out))
    assert f"wrote {out}: {REFERENCE} in force" in result.stdout
    assert "18 entries; verified" in result.stdout
    html = out.read_text(encoding="utf-8")
    assert "£2,262,440.00" in html
    assert "https://" not in html


def test_ledger_report_as_of_and_json(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "draft.html"
    document = cli.json("report", REFERENCE, "-o", str(out), "--as-of", "2003-06-15")
    assert document == {"file": str(out), "reference": REFERENCE, "state": "draft",
                        "as_of": "2003-06-15", "entries": 16, "verified": True,
                        "checkpoint_size": 18}
    assert "as it stood at the end of 2003-06-15" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "message"), [
    (["salford-dat-2005"], "there is no agreement 'salford-dat-2005'"),
    (["Not A Ref"], "agreement reference"),
    ([REFERENCE, "--as-of", "2003-13-01"], "--as-of"),
    ([REFERENCE, "--as-of", "2003-05-01"], "had not been drafted by 2003-05-01"),
])
def test_ledger_report_refuses_bad_input(cli: Cli, tmp_path: Path, args: list[str],
                                         message: str) -> None:
    out = tmp_path / "refused.html"
    result = cli("report", *args, "-o", str(out), code=1)
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output
    assert not out.exists()


def test_ledger_report_refuses_a_file_it_cannot_write(cli: Cli, tmp_path: Path) -> None:
    result = cli("report", REFERENCE, "-o", str(tmp_path / "missing" / "r.html"), code=1)
    assert "there is no folder" in result.stderr
    result = cli("report", REFERENCE, "-o", str(tmp_path), code=1)
    assert "is a folder" in result.stderr


def test_a_tampered_entry_is_reported_and_the_command_exits_3(cli: Cli, tmp_path: Path,
                                                              ledger_url: str) -> None:
    cli("report", REFERENCE, "-o", str(tmp_path / "before.html"))

    # Behind the ledger's back, the PCT's NTA pooled treatment budget gains £9.
    def change(entry: dict[str, Any]) -> None:
        line = entry["statement"]["body"]["line"]
        assert line["amount"] == "909710.00"
        line["amount"] = "909719.00"

    Backdoor(ledger_url).edit_entry(REFERENCE, 3, change)
    out = tmp_path / "after.html"
    result = cli("report", REFERENCE, "-o", str(out), code=3)
    assert "verification FAILED" in result.stdout
    assert result.stderr.startswith("error: verification failed: ")
    assert "seq 3" in result.stderr
    html = out.read_text(encoding="utf-8")
    assert "Verification FAILED" in html
    assert "seq 3: signature does not verify" in html
    assert "of 18 entries of salford-dat-2004 checked" in html
