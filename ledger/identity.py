"""The ledger's own identity: its origin name and its operator's public key.

Written once by ``ledger init`` as the first event of the store. The origin is part of every
statement (so an entry cannot be replayed into another ledger) and the first line of every
checkpoint; the operator key signs checkpoints.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.domain import NAMESPACE

IDENTITY_ID = uuid.uuid5(NAMESPACE, "ledger-identity")


class LedgerIdentity(Aggregate):
    """Who this ledger is."""

    TOPIC = "agreement-ledger:LedgerIdentity"

    class Created(Aggregate.Created):
        """Never triggered; required of every event class under an explicit topic."""

        TOPIC = "agreement-ledger:LedgerIdentity.Created"

    class Initialised(Aggregate.Created):
        """``ledger init`` created the ledger."""

        TOPIC = "agreement-ledger:LedgerIdentity.Initialised"
        origin: str
        operator: str
        operator_key: str

    def __init__(self, origin: str, operator: str, operator_key: str) -> None:
        self.origin = origin
        self.operator = operator
        self.operator_key = operator_key

    @classmethod
    def initialise(cls, origin: str, operator: str, operator_key: bytes) -> LedgerIdentity:
        """A new ledger named ``origin`` whose checkpoints ``operator``'s key signs."""
        created: Any = cls._create(cls.Initialised, id=IDENTITY_ID, origin=origin,
                                   operator=operator, operator_key=operator_key.hex())
        return created  # type: ignore[no-any-return]

    @property
    def operator_public_key(self) -> bytes:
        """The operator's raw Ed25519 public key."""
        return bytes.fromhex(self.operator_key)
