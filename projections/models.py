"""The read models: SQLAlchemy tables in the same database as the events.

Every table here can be dropped and rebuilt from the event store (``ledger rebuild``). Money is
stored as whole pence in a BIGINT and read back as ``Decimal``: SQLite has no exact decimal
type, and a float must never stand between a partner's signed amount and the budget.
Times are stored as text in their canonical RFC 3339 form, which sorts in time order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ledger.values import PENNY
from projections import tables


class Pence(TypeDecorator[Decimal]):
    """An amount of money kept exactly: ``Decimal`` pounds in Python, whole pence in the table."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:  # noqa: ARG002
        if value is None:
            return None
        pence = Decimal(value) * 100
        if pence != pence.to_integral_value():
            raise ValueError(f"{value} has a fraction of a penny")
        return int(pence)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:  # noqa: ARG002
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(PENNY)


class Base(DeclarativeBase):
    """Every read model."""


#: The shape of the read-model tables. A ledger whose tables are of another shape has them
#: rebuilt from its entries the first time a role that may write reads them.
SCHEMA_VERSION = 3
SCHEMA = "schema"
#: Tables earlier shapes had and this one has not (dropped when the tables are rebuilt): an
#: agreement's history is read from its own entries, and a leaf's hash is kept with its leaf.
RETIRED_TABLES = ("timeline",)


class Tracking(Base):
    """How far each projection has read the notification log (written with its rows)."""

    __tablename__ = "projection_tracking"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class AgreementRow(Base):
    """An agreement as it stands."""

    __tablename__ = tables.AGREEMENTS
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(Text)
    flexibilities: Mapped[str] = mapped_column(Text)  # JSON list
    terms_hash: Mapped[str] = mapped_column(String(64))
    agreed: Mapped[str | None] = mapped_column(String(10))
    start: Mapped[str] = mapped_column(String(10))
    end: Mapped[str | None] = mapped_column(String(10))
    notice_months: Mapped[int] = mapped_column(Integer)
    on_withdrawal: Mapped[str] = mapped_column(String(16))
    entries: Mapped[int] = mapped_column(Integer)
    head: Mapped[str] = mapped_column(String(64))
    last_at: Mapped[str] = mapped_column(String(20))
    state_digest: Mapped[str] = mapped_column(String(64))
    executed_seq: Mapped[int | None] = mapped_column(Integer)
    executed_at: Mapped[str | None] = mapped_column(String(20))
    executed_state: Mapped[str | None] = mapped_column(String(64))
    terminated_seq: Mapped[int | None] = mapped_column(Integer)
    terminated_at: Mapped[str | None] = mapped_column(String(20))
    terminated_by: Mapped[str | None] = mapped_column(String(64))
    pending_notices: Mapped[int] = mapped_column(Integer)


class PartnerRow(Base):
    """A partner of an agreement: role, flags, status and whether it has signed."""

    __tablename__ = tables.PARTNERS
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    lead: Mapped[bool] = mapped_column(Boolean)
    host: Mapped[bool] = mapped_column(Boolean)
    pool_manager: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    signed: Mapped[bool] = mapped_column(Boolean)
    joined_seq: Mapped[int] = mapped_column(Integer)
    left_seq: Mapped[int | None] = mapped_column(Integer)
    left_at: Mapped[str | None] = mapped_column(String(20))


class SignatoryRow(Base):
    """One appointment of a partner's signatory and key, with the entry that made it."""

    __tablename__ = tables.SIGNATORIES
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    designation: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[str] = mapped_column(String(20))


class SignatureRow(Base):
    """Who signed which state, with which key, when it was said and when recorded."""

    __tablename__ = tables.SIGNATURES
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(20))
    recorded: Mapped[str] = mapped_column(String(40))


class FundingLineRow(Base):
    """One partner's funding from one source for one year, and what has been paid against it."""

    __tablename__ = tables.FUNDING_LINES
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    year: Mapped[str] = mapped_column(String(7), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Pence)
    paid: Mapped[Decimal] = mapped_column(Pence)
    #: Nothing is owed on it: its year begins after its partner left or the agreement ended.
    released: Mapped[bool] = mapped_column(Boolean)


class PaymentRow(Base):
    """A payment into the pool, or the reversal of one (a negative amount, naming the entry of
    the payment it reverses): rows are only ever added."""

    __tablename__ = tables.PAYMENTS
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))
    year: Mapped[str] = mapped_column(String(7))
    source: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Pence)
    at: Mapped[str] = mapped_column(String(20))
    #: The finance officer's own reference for the payment, if given.
    payment_ref: Mapped[str | None] = mapped_column(Text)
    #: For a reversal: the seq of the payment it reverses.
    reverses: Mapped[int | None] = mapped_column(Integer)


class VariationRow(Base):
    """A variation: what it changes, who has consented, who is still to."""

    __tablename__ = tables.VARIATIONS
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    variation: Mapped[str] = mapped_column(String(64), primary_key=True)
    proposer: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    changes: Mapped[str] = mapped_column(Text)  # canonical JSON of the changes
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(20))
    waiting_for: Mapped[str] = mapped_column(Text)  # JSON list of partner ids
    effective_seq: Mapped[int | None] = mapped_column(Integer)
    effective_at: Mapped[str | None] = mapped_column(String(20))
    #: The hash of the entry that proposed it: what a consent binds to.
    proposal: Mapped[str] = mapped_column(String(64))
    expires: Mapped[str | None] = mapped_column(String(10))
    #: How it ended without taking effect (lapsed, withdrawn, rejected), when and by what.
    ended: Mapped[str | None] = mapped_column(String(16))
    ended_seq: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[str | None] = mapped_column(String(20))
    ended_by: Mapped[str | None] = mapped_column(String(64))


class ConsentRow(Base):
    """One partner's consent to one variation (the proposer's is its proposal)."""

    __tablename__ = tables.CONSENTS
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    variation: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


class NoticeRow(Base):
    """A notice and its earliest effective date."""

    __tablename__ = tables.NOTICES
    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[str] = mapped_column(String(20))
    effective_from: Mapped[str] = mapped_column(String(10))
    done: Mapped[bool] = mapped_column(Boolean)
    #: The day its period runs from (later than ``at`` when it was recorded late).
    runs_from: Mapped[str] = mapped_column(String(10))
    acknowledged: Mapped[str] = mapped_column(Text)  # JSON list of partner ids
    withdrawn: Mapped[bool] = mapped_column(Boolean)


#: Tables that hold one agreement's rows, keyed by reference first, in the order they are
#: compared by ``verify`` and written by a sync.
AGREEMENT_TABLES = (AgreementRow, PartnerRow, SignatoryRow, SignatureRow, FundingLineRow,
                    PaymentRow, VariationRow, ConsentRow, NoticeRow)


class LogLeafRow(Base):
    """The log's dense index: the n-th entry committed, whatever its notification id, with
    its leaf hash (the tree's level 0)."""

    __tablename__ = "log_leaves"
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    notification_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    reference: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogNodeRow(Base):
    """The hash of every complete subtree of the Merkle tree of two leaves or more (level 1
    up; the leaf hashes, level 0, are kept with the leaves)."""

    __tablename__ = "log_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class CheckpointRow(Base):
    """A checkpoint the operator signed (its note as signed, without cosignatures)."""

    __tablename__ = "checkpoints"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    notification_id: Mapped[int] = mapped_column(BigInteger)


class CosignatureRow(Base):
    """A partner's cosignature of a checkpoint (a C2SP tlog-cosignature line)."""

    __tablename__ = "cosignatures"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    witness: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[str] = mapped_column(Text)


Index("ix_log_leaves_entry", LogLeafRow.reference, LogLeafRow.seq, unique=True)
