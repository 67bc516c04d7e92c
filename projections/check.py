"""Verification of the read models: the stored rows must equal a fresh rebuild.

Each agreement, as rebuilt from its entries by verification, gives the rows the tables should
hold (:func:`projections.rows.rows_for`); they are compared table by table and row by row with
what is stored, and the first difference is named. Rows of agreements the ledger does not hold
are found too. A read model edited behind the ledger's back cannot pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select

from ledger.domain import Agreement
from ledger.verify import Failure, Report
from projections.db import RawRows, reading
from projections.models import AGREEMENT_TABLES, AgreementRow, Base
from projections.readmodels import ReadModels, stored_rows_of
from projections.rows import AgreementRows, Row, primary_key, rows_for

#: Agreements compared with their stored rows at a time.
BATCH = 32


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _first_difference(table: type[Base], stored: list[Row], wanted: list[Row]) -> str | None:
    # Stored rows come in primary-key order: in the same order, the lists compare whole.
    if len(stored) == len(wanted) and stored == sorted(
            wanted, key=lambda row: primary_key(table, row)):
        return None
    name = table.__tablename__
    have = {primary_key(table, r): r for r in stored}
    want = {primary_key(table, r): r for r in wanted}
    for key in sorted(set(have) | set(want), key=repr):
        if key not in have:
            return f"table {name}, row {_show(key)}: missing from the stored read model"
        if key not in want:
            return f"table {name}, row {_show(key)}: stored but not in a rebuild"
        for column, value in want[key].items():
            if have[key].get(column) != value:
                return (f"table {name}, row {_show(key)}: column {column} is "
                        f"{_show(have[key].get(column))}, a rebuild gives {_show(value)}")
    return None


def _equal_as_stored(conn: Connection, agreements: list[AgreementRows]) -> set[str]:
    """The agreements whose stored rows are exactly their wanted rows, table by table."""
    references = [rows.reference for rows in agreements]
    equal = set(references)
    parameter = (json.dumps(references),)
    driver: Any = conn.connection.dbapi_connection  # the sqlite3 connection, in this transaction
    for table in AGREEMENT_TABLES:
        raw = RawRows(conn, table)
        at = raw.names.index("reference")
        stored: dict[str, list[tuple[Any, ...]]] = {reference: [] for reference in references}
        for row in driver.execute(raw.select_sql, parameter).fetchall():
            stored[row[at]].append(row)
        for rows in agreements:
            if rows.reference not in equal:
                continue
            wanted = sorted((raw.values(r) for r in rows[table]),
                            key=lambda v: tuple(v[i] for i in raw.key))
            if wanted != stored[rows.reference]:
                equal.discard(rows.reference)
    return equal


class ReadModelCheck:
    """Collects each verified agreement and compares its stored rows with a rebuild.

    A writer may act while verification runs, and catch the read models up: stored rows of an
    agreement that say it has more (or fewer) entries than the replay had are compared with
    the agreement replayed to exactly that many (``replay``), so that only damage fails, never
    timing. How many entries each agreement's rows said is kept in ``versions``, for the
    caller to compare with what the event store held when verification began.
    """

    def __init__(self, models: ReadModels, skip: bool | None = None,
                 replay: Callable[[str, int], Agreement | None] | None = None) -> None:
        self.models = models
        self.failures: list[Failure] = []
        self.seen: set[str] = set()
        #: reference -> how many entries its stored rows reflect
        self.versions: dict[str, int] = {}
        # Tables a read-only role could not bring up to date are behind, not wrong.
        self.skip = (models.read_only and models.behind()) if skip is None else skip
        self.replay = replay
        self._pending: list[AgreementRows] = []

    def __call__(self, agreement: Agreement, whole: bool = True) -> None:
        """Compare one agreement's stored rows with the rows its entries give.

        Agreements are compared a batch at a time (one query per table for the batch);
        :meth:`flush` compares what is left.
        """
        self.seen.add(agreement.reference)
        if not whole or self.skip:
            return  # its entries fail verification already; rows cannot be judged
        self._pending.append(rows_for(agreement))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Compare every agreement still waiting with its stored rows."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        with reading(self.models.engine) as conn:
            if conn.dialect.name == "sqlite":
                # Most agreements are as they should be: compare the driver's own tuples, and
                # read rows the slower way only to name what differs.
                equal = _equal_as_stored(conn, pending)
                for rows in pending:
                    if rows.reference in equal:
                        self.versions[rows.reference] = int(rows.agreement["entries"])
                pending = [rows for rows in pending if rows.reference not in equal]
                if not pending:
                    return
            stored = stored_rows_of(conn, [rows.reference for rows in pending])
        for rebuilt in pending:
            have = stored[rebuilt.reference]
            wanted = self._as_stored(rebuilt, have)
            if wanted is None:
                continue
            for table in AGREEMENT_TABLES:
                difference = _first_difference(table, have[table], wanted[table])
                if difference is not None:
                    self.failures.append(Failure(
                        f"read model differs from a rebuild: {difference}", wanted.reference))
                    break

    def _as_stored(self, wanted: AgreementRows, have: AgreementRows) -> AgreementRows | None:
        """The rows to compare ``have`` with: ``wanted``, or, where the stored rows reflect
        another number of entries (a writer acted meanwhile), the agreement replayed to that
        number; None (and a failure) when the event store does not hold that many."""
        reference = wanted.reference
        entries = int(wanted.agreement["entries"])
        stored = [int(row["entries"]) for row in have[AgreementRow]]
        if not stored or stored[0] == entries or self.replay is None:
            self.versions[reference] = stored[0] if stored else entries
            return wanted
        self.versions[reference] = stored[0]
        agreement = self.replay(reference, stored[0]) if stored[0] > 0 else None
        if agreement is None:
            self.failures.append(Failure(
                f"read model differs from a rebuild: it shows {stored[0]} entries, which the "
                f"event store does not hold (it holds {entries} that check out)", reference))
            return None
        return rows_for(agreement)

    def finish(self, report: Report, *, whole_ledger: bool) -> None:
        """Add what was found to ``report``, first looking for rows of agreements that are not
        in the ledger."""
        self.flush()
        if self.skip:
            why = ("this role may not update them" if self.models.read_only else
                   "damaged entries stopped them catching up")
            report.checks.append(f"read models not compared: they are behind the entries and "
                                 f"{why}")
            return
        if whole_ledger:
            with reading(self.models.engine) as conn:
                for table in AGREEMENT_TABLES:
                    column: Any = table.__table__.c.reference
                    for (reference,) in conn.execute(select(column).distinct()):
                        # An agreement drafted after verification began is not "not held".
                        if reference not in self.seen and not any(
                                f.agreement == reference for f in report.failures) and not (
                                self.models.ledger.exists(reference)):
                            self.failures.append(Failure(
                                f"read model differs from a rebuild: table "
                                f"{table.__tablename__} holds rows of agreement {reference!r}, "
                                f"which the ledger does not hold (or which failed "
                                f"verification)", reference))
                            break
        report.failures.extend(self.failures)
        report.checks.append("read models equal a fresh rebuild")
