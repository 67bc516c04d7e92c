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
from ledger.errors import InvalidInput
from ledger.statement import parse_origin

IDENTITY_ID = uuid.uuid5(NAMESPACE, "ledger-identity")


def new_origin(text: str) -> str:
    """The origin of a new ledger: a statement origin that is also a signed-note key name (no
    spaces), since the operator signs checkpoints under the origin (C2SP tlog-checkpoint)."""
    parse_origin(text)
    if " " in text:
        raise InvalidInput(f"{text!r} is not a valid origin for a new ledger: its operator signs "
                           f"checkpoints under the origin, which may hold no spaces; e.g. "
                           f"'ledger.salford.example/dat'")
    return text


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
