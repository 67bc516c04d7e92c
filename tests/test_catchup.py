"""Catching up is never wrong: incremental read models equal a rebuild, whatever happened.

The read models are kept up to date incrementally (``ReadModels.catch_up``), in batches, by
whichever process reads first; they can also be dropped and rebuilt from the event store. The
two must always agree with each other and with :func:`projections.rows.rows_for` of each
agreement replayed from its own entries, after:

- any valid sequence of acts on several agreements, caught up at random moments (hypothesis);
- a catch-up killed with SIGKILL half way through and resumed;
- two processes catching up at the same time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.application import Ledger
from ledger.bodies import Changes, FundingLine, NewPartner
from ledger.domain import (
    EXPIRED,
    IN_FORCE,
    NOTICE_GIVEN,
    SIGNED,
    Agreement,
)
from ledger.keys import Signer
from ledger.statement import Entry
from ledger.storage import parse_location
from ledger.values import FinancialYear
from projections.db import reading, tables_exist
from projections.models import AGREEMENT_TABLES, Base, Tracking
from projections.readmodels import VIEWS, ReadModels
from projections.rows import Row, primary_key, rows_for
from tests.conftest import ORIGIN, at
from tests.keys import fixed_key
from tests.scenarios import (
    COUNCIL,
    PCT,
    PROBATION,
    details,
    draft_statement,
    next_statement,
    payment_body,
    recorded_at,
    terms,
)

ROOT = Path(__file__).resolve().parent.parent
Dump = dict[str, Any]


# --- what the tables hold, and what they should ---------------------------------------------------


def by_key(table: type[Base]) -> Callable[[Row], tuple[Any, ...]]:
    """Sorting rows of ``table`` by primary key."""
    return lambda row: primary_key(table, row)


def stored(models: ReadModels) -> Dump:
    """Every row of every agreement table, in primary-key order, and the tracked position."""
    dump: Dump = {}
    with reading(models.engine) as conn:
        for table in AGREEMENT_TABLES:
            rows = [dict(r._mapping) for r in conn.execute(select(table.__table__))]
            dump[table.__tablename__] = sorted(rows, key=by_key(table))
        dump["position"] = conn.execute(
            select(Tracking.position).where(Tracking.name == VIEWS)).scalar()
    return dump


def expected(ledger: Ledger, models: ReadModels) -> Dump:
    """The rows every agreement's own entries give, replayed with every rule checked again."""
    dump: dict[str, list[Row]] = {table.__tablename__: [] for table in AGREEMENT_TABLES}
    for agreement in models.agreements():
        again = Agreement.replay(ledger.entries(agreement.reference), ledger.origin)
        rows = rows_for(again)
        for table in AGREEMENT_TABLES:
            dump[table.__tablename__].extend(rows[table])
    for table in AGREEMENT_TABLES:
        dump[table.__tablename__].sort(key=by_key(table))
    return {**dump, "position": ledger.recorder.max_notification_id()}


def assert_incremental_equals_rebuild(ledger: Ledger, models: ReadModels) -> Dump:
    """Catch up; the tables must equal the replayed entries, and a rebuild must change nothing."""
    models.catch_up()
    incremental = stored(models)
    assert incremental == expected(ledger, models)
    models.rebuild()
    assert stored(models) == incremental
    return incremental


# --- a partnership's whole life, caught up after every act ----------------------------------------


@dataclass
class Scripted:
    """The Salford agreement through draft, signing, payments, an appointment, a third partner
    brought in and another removed by variation, notice and termination."""

    ledger: Ledger
    reference: str
    keys: dict[str, Signer] = field(default_factory=dict)

    @property
    def agreement(self) -> Agreement:
        return self.ledger.agreement(self.reference)

    def key(self, partner: str) -> Signer:
        return self.keys.setdefault(partner, fixed_key(partner))

    def acts(self) -> Iterator[Any]:
        ref, lg, k = self.reference, self.ledger, self.key
        fy3, fy4 = FinancialYear(2003), FinancialYear(2004)
        new_pct = fixed_key(f"{ref}/pct-chief-executive")

        def appoint() -> None:
            lg.appoint(ref, PCT, "Mike Farrar", "Chief Executive", new_pct.public_key, k(PCT),
                       at("2004-05-01"))
            self.keys[PCT] = new_pct

        yield lambda: lg.draft(ref, PCT, terms(on_withdrawal="continue"), details(PCT), k(PCT),
                               at("2003-07-01T09:00:00"))
        yield lambda: lg.join(ref, COUNCIL, details(COUNCIL), k(COUNCIL), at("2003-07-01T11:00"))
        yield lambda: lg.declare(ref, FundingLine(PCT, fy3, "PCT mainstream",
                                                  Decimal("341740.00"), "confirmed"),
                                 k(PCT), at("2003-07-02T10:00"))
        yield lambda: lg.declare(ref, FundingLine(COUNCIL, fy3, "Social Services",
                                                  Decimal("290000.00"), "confirmed"),
                                 k(COUNCIL), at("2003-07-02T11:00"))
        yield lambda: lg.declare(ref, FundingLine(PCT, fy4, "NTA Pooled Treatment Budget", None,
                                                  "tba"), k(PCT), at("2003-07-02T12:00"))
        yield lambda: lg.sign(ref, PCT, k(PCT), at("2003-07-03T10:00"))
        # The council amends its line: the PCT's signature no longer covers the state.
        yield lambda: lg.declare(ref, FundingLine(COUNCIL, fy3, "Social Services",
                                                  Decimal("290000.50"), "confirmed"),
                                 k(COUNCIL), at("2003-07-03T11:00"))
        yield lambda: lg.sign(ref, COUNCIL, k(COUNCIL), at("2003-07-03T12:00"))
        yield lambda: lg.sign(ref, PCT, k(PCT), at("2003-07-03T14:00"))
        yield lambda: lg.pay(ref, PCT, fy3, Decimal("0.10"), "PCT mainstream", k(PCT),
                             at("2004-04-05"))
        yield lambda: lg.pay(ref, COUNCIL, fy3, Decimal("100000.00"), None, k(COUNCIL),
                             at("2004-04-06"))
        yield appoint
        yield lambda: lg.pay(ref, PCT, fy3, Decimal("0.10"), "PCT mainstream", k(PCT),
                             at("2004-05-02"))
        adds = Changes(add_partners=(NewPartner(PROBATION, details(PROBATION)),),
                       funding=(FundingLine(PROBATION, fy4, "Probation", Decimal("50000.00"),
                                            "indicative"),))
        yield lambda: lg.vary(ref, COUNCIL, "probation-joins", "Criminal justice money",
                              adds, k(COUNCIL), at("2004-06-01"))
        yield lambda: lg.consent(ref, PCT, "probation-joins", k(PCT), at("2004-06-02"))
        yield lambda: lg.consent(ref, PROBATION, "probation-joins", k(PROBATION),
                                 at("2004-06-03"))
        fund = Changes(end=date(2007, 3, 31), funding=(
            FundingLine(PCT, fy4, "NTA Pooled Treatment Budget", Decimal("921990.00"),
                        "confirmed"),))
        yield lambda: lg.vary(ref, PCT, "ptb-2004", "PTB allocation announced", fund, k(PCT),
                              at("2004-06-10"))
        yield lambda: lg.vary(ref, PROBATION, "council-leaves", "Council withdraws",
                              Changes(remove_partners=(COUNCIL,)), k(PROBATION),
                              at("2004-06-11"))
        yield lambda: lg.consent(ref, COUNCIL, "council-leaves", k(COUNCIL), at("2004-06-12"))
        yield lambda: lg.consent(ref, PCT, "council-leaves", k(PCT), at("2004-06-13"))
        # ptb-2004 was proposed against the agreement before the council left: it lapsed when
        # council-leaves took effect. The PCT proposes it again; the probation service consents.
        yield lambda: lg.vary(ref, PCT, "ptb-2004-again", "PTB allocation announced", fund,
                              k(PCT), at("2004-06-14T09:00"))
        yield lambda: lg.consent(ref, PROBATION, "ptb-2004-again", k(PROBATION),
                                 at("2004-06-14T10:00"))
        yield lambda: lg.pay(ref, PCT, fy4, Decimal("921990.00"), "NTA Pooled Treatment Budget",
                             k(PCT), at("2004-06-15"))
        yield lambda: lg.notice(ref, PROBATION, "termination", "Funding ends", k(PROBATION),
                                at("2004-09-30"))
        # Recorded long after it was given, the notice runs from its own date only once the
        # other partner acknowledges that date.
        yield lambda: lg.acknowledge(ref, PCT, lg.agreement(ref).pending_notices()[0].seq,
                                     k(PCT), at("2004-10-01"))
        yield lambda: lg.terminate(ref, PCT, "Notice period ended", k(PCT), at("2005-03-30"))


def test_a_whole_partnership_caught_up_entry_by_entry_equals_a_rebuild(ledger: Ledger) -> None:
    models = ReadModels(ledger)
    life = Scripted(ledger, "salford-dat-2004")
    for act in life.acts():
        act()
        # One entry at a time, as a partner reading after every act would see it.
        models.catch_up(batch=1)
        assert stored(models) == expected(ledger, models)
    final = assert_incremental_equals_rebuild(ledger, models)
    assert {r["partner"]: r["status"] for r in final["partners"]} == {
        PCT: "active", COUNCIL: "removed", PROBATION: "active"}
    assert [r["terminated_by"] for r in final["agreements"]] == [PCT]
    assert final["agreements"][0]["entries"] == life.agreement.version == 26
    models.close()


def test_agreements_acted_on_in_turn_caught_up_in_small_batches(ledger: Ledger) -> None:
    # Two agreements' entries interleave in the log: a batch holds the tail of one and the head
    # of the other, and an agreement is often synced ahead of the batch that names it.
    models = ReadModels(ledger)
    lives = [Scripted(ledger, "salford-dat-2004"), Scripted(ledger, "salford-dat-2005")]
    for n, (first, second) in enumerate(zip(lives[0].acts(), lives[1].acts(), strict=True)):
        first()
        second()
        if n % 3 == 0:
            models.catch_up(batch=2)
    assert_incremental_equals_rebuild(ledger, models)
    models.close()


# --- any valid sequence of acts (hypothesis) ------------------------------------------------------

PARTNERS = (PCT, COUNCIL, PROBATION)
SOURCES = ("PCT mainstream", "Social Services", "NTA Pooled Treatment Budget")
YEARS = (FinancialYear(2003), FinancialYear(2004))
STEPS = (timedelta(minutes=1), timedelta(hours=5), timedelta(days=3), timedelta(days=40),
         timedelta(days=200))
AFTER_SIGNING = (SIGNED, IN_FORCE, NOTICE_GIVEN, EXPIRED)
VARIABLE = (SIGNED, IN_FORCE, NOTICE_GIVEN)

pence = st.integers(min_value=0, max_value=10**9)


@dataclass
class Life:
    """One agreement's random life, one valid act at a time: a few acts in draft, signing by
    every partner, then a few acts of a signed agreement. Acts are chosen among those the
    agreement's state allows, so every one of them must be accepted."""

    ledger: Ledger
    reference: str
    draft_acts: int
    later_acts: int
    clock: datetime = field(default_factory=lambda: at("2003-07-01T09:00:00"))
    keys: dict[str, Signer] = field(default_factory=dict)
    made: int = 0

    def key(self, partner: str) -> Signer:
        return self.keys.setdefault(partner, fixed_key(partner))

    def step(self, data: st.DataObject) -> bool:
        """Make one act; False once this agreement's life is over."""
        if not self.ledger.exists(self.reference):
            policy = data.draw(st.sampled_from(("terminate", "continue")))
            with recorded_at(self.ledger, self.clock):
                self.ledger.draft(self.reference, PCT, terms(on_withdrawal=policy),
                                  details(PCT), self.key(PCT), self.clock)
            return True
        agreement = self.ledger.agreement(self.reference)
        if agreement.terminated_seq is not None:
            return False
        # A draft moves on by hours and days, so that it never reaches its start date unsigned;
        # a signed agreement may jump months, into force and past its end.
        steps = STEPS if agreement.executed_seq is not None else STEPS[:3]
        self.clock += data.draw(st.sampled_from(steps))
        # Each act is recorded when it is done, as the partnership lives it.
        with recorded_at(self.ledger, self.clock):
            if agreement.executed_seq is None:
                return self.draft_step(agreement, data)
            if self.later_acts == 0:
                return False
            self.later_acts -= 1
            return self.later_step(agreement, data)

    def draft_step(self, agreement: Agreement, data: st.DataObject) -> bool:
        members = list(agreement.partners)
        outside = [p for p in PARTNERS if p not in agreement.partners]
        unsigned = [p for p in members if p not in agreement.signers_of(agreement.state_digest())]
        if self.draft_acts > 0:
            self.draft_acts -= 1
            choices = ["declare", "appoint", *(["join"] if outside else []),
                       *(["sign"] if unsigned else [])]
            choice = data.draw(st.sampled_from(choices))
        else:
            # Bring the agreement to signature: the council in, then everyone signs.
            choice = "join" if COUNCIL in outside else "sign"
            outside = [COUNCIL] if COUNCIL in outside else outside
        if choice == "join":
            partner = data.draw(st.sampled_from(outside))
            self.ledger.join(self.reference, partner, details(partner, self.key(partner)),
                             self.key(partner), self.clock)
        elif choice == "sign":
            partner = data.draw(st.sampled_from(unsigned))
            self.ledger.sign(self.reference, partner, self.key(partner), self.clock)
        elif choice == "declare":
            partner = data.draw(st.sampled_from(members))
            self.ledger.declare(self.reference, self.funding_line(partner, Decimal(0), data),
                                self.key(partner), self.clock)
        else:
            self.appoint(data.draw(st.sampled_from(members)))
        return True

    def funding_line(self, partner: str, paid: Decimal, data: st.DataObject) -> FundingLine:
        # A line something has been paid against stays confirmed (payments need confirmed
        # funding, and a variation may not take that away).
        status = data.draw(st.sampled_from(("confirmed", "indicative", "tba") if not paid
                                           else ("confirmed",)))
        amount = None if status == "tba" else paid + Decimal(data.draw(pence)) / 100
        return FundingLine(partner, data.draw(st.sampled_from(YEARS)),
                           data.draw(st.sampled_from(SOURCES)), amount, status)

    def appoint(self, partner: str) -> None:
        self.made += 1
        new = fixed_key(f"{self.reference}/{partner}/{self.made}")
        self.ledger.appoint(self.reference, partner, f"Signatory {self.made}", "Director",
                            new.public_key, self.key(partner), self.clock)
        self.keys[partner] = new

    def later_step(self, agreement: Agreement, data: st.DataObject) -> bool:
        state = agreement.state_on(self.clock.date())
        active = [p.id for p in agreement.active_partners]
        payable = [line for line in agreement.funding_lines()
                   if line.partner in active and line.amount is not None
                   and line.status == "confirmed"
                   and line.amount > agreement.paid.get(line.key, Decimal(0))]
        consents = [(v, p) for v in agreement.pending_variations()
                    if not any(n.id in agreement.partners for n in v.changes.add_partners)
                    and agreement.uncovered_payment(v.changes) is None
                    and len(({*active} | {n.id for n in v.changes.add_partners})
                            - set(v.changes.remove_partners)) >= 2
                    for p in agreement.required_consents(v) if not v.consented(p)]
        pending = {n.partner for n in agreement.pending_notices()}
        notices = [n for n in agreement.pending_notices() if n.partner in active]
        choices = ["appoint"]
        if state in AFTER_SIGNING and payable:
            choices.append("pay")
        if state in VARIABLE:
            choices.append("vary")
            if [p for p in active if p not in pending]:
                choices.append("notice")
        if state in AFTER_SIGNING and consents:
            choices.append("consent")
        if state == EXPIRED or notices:
            choices.append("terminate")
        choice = data.draw(st.sampled_from(choices))
        event(f"{state}: {choice}")
        ref = self.reference
        if choice == "appoint":
            self.appoint(data.draw(st.sampled_from(active)))
        elif choice == "pay":
            line = data.draw(st.sampled_from(payable))
            assert line.amount is not None
            room = int((line.amount - agreement.paid.get(line.key, Decimal(0))) * 100)
            amount = Decimal(data.draw(st.integers(1, room))) / 100
            self.ledger.pay(ref, line.partner, line.year, amount, line.source,
                            self.key(line.partner), self.clock)
        elif choice == "consent":
            variation, partner = data.draw(st.sampled_from(consents))
            self.ledger.consent(ref, partner, variation.id, self.key(partner), self.clock)
        elif choice == "notice":
            partner = data.draw(st.sampled_from([p for p in active if p not in pending]))
            kind = data.draw(st.sampled_from(("withdrawal", "termination")))
            self.ledger.notice(ref, partner, kind, "", self.key(partner), self.clock)
        elif choice == "terminate":
            if notices:
                notice = data.draw(st.sampled_from(notices))
                moment = datetime.combine(notice.effective_from, datetime.min.time(),
                                          self.clock.tzinfo)
                self.clock, partner = max(self.clock, moment), notice.partner
            else:
                partner = data.draw(st.sampled_from(active))
            with recorded_at(self.ledger, self.clock):
                self.ledger.terminate(ref, partner, "", self.key(partner), self.clock)
        else:
            self.propose(agreement, active, data)
        return True

    def propose(self, agreement: Agreement, active: list[str], data: st.DataObject) -> None:
        proposer = data.draw(st.sampled_from(active))
        self.made += 1
        self.ledger.vary(self.reference, proposer, f"v{self.made}", "Agreed at the board",
                         self.changes(agreement, active, data), self.key(proposer), self.clock)

    def changes(self, agreement: Agreement, active: list[str], data: st.DataObject) -> Changes:
        adding = any(n.id == PROBATION for v in agreement.pending_variations()
                     for n in v.changes.add_partners)
        kinds = ["end", "notice", "fund", "wind-up"]
        if PROBATION not in agreement.partners and not adding:
            kinds.append("add")
        if len(active) >= 3:
            kinds.append("remove")
        kind = data.draw(st.sampled_from(kinds))
        if kind == "end":
            return Changes(end=date(data.draw(st.integers(2006, 2008)), 3, 31))
        if kind == "notice":
            return Changes(notice_months=data.draw(st.integers(1, 12)))
        if kind == "wind-up":
            return Changes(ends_agreement=True)
        if kind == "add":
            return Changes(add_partners=(NewPartner(PROBATION, details(PROBATION)),))
        if kind == "remove":
            return Changes(remove_partners=(data.draw(st.sampled_from(active)),))
        partner = data.draw(st.sampled_from(active))
        line = self.funding_line(partner, Decimal(0), data)
        paid = agreement.paid.get(line.key, Decimal(0))
        if paid:
            line = FundingLine(line.partner, line.year, line.source,
                               paid + Decimal(data.draw(pence)) / 100, "confirmed")
        return Changes(funding=(line,))


def new_sqlite_ledger(folder: str) -> Ledger:
    ledger = Ledger(parse_location(str(Path(folder) / "ledger.db")), create=True)
    ledger.initialise(ORIGIN, "operator", fixed_key("operator").public_key)
    return ledger


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_any_sequence_of_acts_caught_up_at_any_moment_equals_a_rebuild(
        data: st.DataObject) -> None:
    # A fresh SQLite ledger per example: every example starts from an empty log.
    with tempfile.TemporaryDirectory() as folder:
        ledger = new_sqlite_ledger(folder)
        models = ReadModels(ledger)
        try:
            count = data.draw(st.integers(1, 3), label="agreements")
            lives = [Life(ledger, f"pool-{n}", data.draw(st.integers(0, 6)),
                          data.draw(st.integers(0, 12))) for n in range(count)]
            while lives:
                life = data.draw(st.sampled_from(lives))
                if not life.step(data):
                    lives.remove(life)
                if data.draw(st.booleans()):
                    models.catch_up(batch=data.draw(st.sampled_from((1, 2, 5, 1000))))
            final = assert_incremental_equals_rebuild(ledger, models)
            entries = sum(a["entries"] for a in final["agreements"])
            event(f"{entries // 10 * 10}+ entries")
        finally:
            models.close()
            ledger.close()


# --- many entries, written quickly ----------------------------------------------------------------


def populate(ledger: Ledger, agreements: int, payments: int, width: int) -> int:
    """Signed agreements with ``payments`` payments each, written a round at a time so that the
    entries of ``width`` agreements interleave in the log; return how many entries.

    Each entry is signed and checked by the aggregate as an act through the Ledger would be, but
    a whole round is saved in one transaction: thousands of entries in a second or two.
    """
    pct, council = fixed_key(PCT), fixed_key(COUNCIL)
    fy = FinancialYear(2003)
    now = ledger.clock()

    def line(partner: str, source: str, amount: str) -> dict[str, Any]:
        return {"line": FundingLine(partner, fy, source, Decimal(amount), "confirmed")
                .to_json(with_partner=False)}

    rounds: list[tuple[str, str, Signer, Any, str]] = [
        ("join", COUNCIL, council, lambda a: details(COUNCIL).to_json(), "2003-07-01T10:00"),
        ("contribute", PCT, pct, lambda a: line(PCT, "PCT mainstream", "341740.00"),
         "2003-07-02T10:00"),
        ("contribute", COUNCIL, council, lambda a: line(COUNCIL, "Social Services", "290000.00"),
         "2003-07-02T11:00"),
        ("sign", PCT, pct, lambda a: {"state": a.state_digest()}, "2003-07-03T10:00"),
        ("sign", COUNCIL, council, lambda a: {"state": a.state_digest()}, "2003-07-03T11:00"),
        *(("contribute", PCT, pct, lambda a: payment_body("0.10"), f"2004-04-05T10:{n:02d}")
          for n in range(payments)),
    ]
    references = [f"pool-{n:04d}" for n in range(agreements)]
    for first in range(0, agreements, width):
        group = [Agreement.draft(Entry.sign(draft_statement(reference=ref), pct),
                                 ledger.origin, now) for ref in references[first:first + width]]
        ledger.save(*group)
        for action, partner, key, body, when in rounds:
            for agreement in group:
                statement = next_statement(agreement, action, partner, key, body(agreement),
                                           at(when))
                agreement.record(Entry.sign(statement, key), now)
            ledger.save(*group)
    return agreements * (len(rounds) + 1)


def entries_after(ledger: Ledger, position: int) -> int:
    """How many entries the log holds past notification ``position``."""
    return sum(1 for _ in ledger.stored_entries(start=position + 1))


# --- a catch-up killed half way, and two at once --------------------------------------------------

CATCH_UP = """
import sys
from ledger.application import Ledger
from ledger.storage import parse_location
from projections.readmodels import ReadModels

ledger = Ledger(parse_location(sys.argv[1]))
print(ReadModels(ledger).catch_up(batch=int(sys.argv[2])), flush=True)
"""


def start_catch_up(ledger_url: str, batch: int) -> subprocess.Popen[str]:
    """``ReadModels.catch_up(batch)`` in a process of its own, as another partner's reader."""
    return subprocess.Popen([sys.executable, "-c", CATCH_UP, ledger_url, str(batch)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tracked(models: ReadModels) -> int:
    """The position the read models have committed (0 before their tables exist)."""
    if not tables_exist(models.engine):
        return 0
    with reading(models.engine) as conn:
        found = conn.execute(select(Tracking.position).where(Tracking.name == VIEWS)).scalar()
    return int(found or 0)


def test_a_catch_up_killed_half_way_resumes_without_counting_anything_twice(
        ledger: Ledger, ledger_url: str) -> None:
    total = populate(ledger, agreements=50, payments=34, width=5)
    assert total == 2000
    first = next(ledger.stored_entries()).notification_id
    models = ReadModels(ledger)
    child = start_catch_up(ledger_url, batch=10)
    try:
        # Let it commit a few batches of ten, then pull the plug mid-stride.
        deadline = time.monotonic() + 60
        while tracked(models) < first + 30:
            if child.poll() is not None:
                pytest.fail(f"the catch-up ended before it was killed: {child.communicate()}")
            assert time.monotonic() < deadline, "the catch-up made no progress in 60 s"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    killed_at = tracked(models)
    left = entries_after(ledger, killed_at)
    assert 0 < left <= total - 30, "the kill did not land half way through"
    # Resuming applies exactly the entries past the committed position, no more, no fewer.
    assert models.catch_up() == left
    final = assert_incremental_equals_rebuild(ledger, models)
    assert len(final["payments"]) == 50 * 34
    assert {r["paid"] for r in final["funding_lines"] if r["partner"] == PCT} == {
        Decimal("3.40")}
    models.close()


def test_two_readers_catching_up_at_once_apply_each_entry_once(
        ledger: Ledger, ledger_url: str) -> None:
    # Neither finds the read-model tables: both create them, then race through the log.
    total = populate(ledger, agreements=20, payments=4, width=2)
    readers = [start_catch_up(ledger_url, batch=10) for _ in range(2)]
    try:
        finished = [reader.communicate(timeout=120) for reader in readers]
    finally:
        for reader in readers:
            reader.kill()  # only those still running, if the other failed
    for reader, (_, err) in zip(readers, finished, strict=True):
        assert reader.returncode == 0, err
    applied = [int(out) for out, _ in finished]
    # Each batch is applied by whichever reader holds the lock; together, every entry once.
    assert sum(applied) == total
    models = ReadModels(ledger)
    assert models.catch_up() == 0
    assert_incremental_equals_rebuild(ledger, models)
    models.close()
