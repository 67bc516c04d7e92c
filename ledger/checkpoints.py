"""Checkpoints of the log: the operator's signed tree heads and the partners' cosignatures.

A checkpoint is a C2SP ``tlog-checkpoint`` signed note over the log's origin, size and root,
signed by the operator key named in the ledger's identity. Partners cosign it as witnesses
(C2SP ``tlog-cosignature``), each only after checking that it is consistent with the last one it
cosigned. Both are kept in the event store, so they survive a rebuild of the read models and
are part of what an auditor checks. A checkpoint is identified by its size: for one log, one
size has one root, and an Ed25519 signature of the same text is always the same.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.domain import NAMESPACE
from ledger.errors import RuleViolation
from ledger.keys import Signer
from ledger.note import (
    COSIGNATURE_KEY_TYPE,
    Checkpoint,
    NoteSignature,
    SignedNote,
    add_signatures,
    note_key_id,
    sign_note,
    verify_cosignature,
    verify_note_signature,
)


def checkpoint_id(size: int) -> uuid.UUID:
    """The aggregate id of the checkpoint of a log of ``size`` entries."""
    return uuid.uuid5(NAMESPACE, f"checkpoint:{size}")


def signed_checkpoint(origin: str, size: int, root: bytes, operator: str,
                      signer: Signer) -> SignedNote:
    """The operator's checkpoint note for a tree of ``size`` leaves with root ``root``."""
    body = Checkpoint(origin, size, root).body()
    return SignedNote(body, (sign_note(body, operator, signer.private_key),))


class CheckpointRecord(Aggregate):
    """A checkpoint and the cosignatures it has gathered."""

    TOPIC = "agreement-ledger:Checkpoint"

    class Created(Aggregate.Created):
        """Never triggered; required of every event class under an explicit topic."""

        TOPIC = "agreement-ledger:Checkpoint.Created"

    class Signed(Aggregate.Created):
        """The operator signed a checkpoint."""

        TOPIC = "agreement-ledger:Checkpoint.Signed"
        note: str

    class Cosigned(Aggregate.Event):
        """A partner cosigned the checkpoint as a witness."""

        TOPIC = "agreement-ledger:Checkpoint.Cosigned"
        witness: str
        public_key: str
        line: str

        def apply(self, aggregate: Any) -> None:
            aggregate.cosignatures.append((self.witness, self.public_key, self.line))

    def __init__(self, note: str) -> None:
        self.note = note
        self.cosignatures: list[tuple[str, str, str]] = []

    @classmethod
    def record(cls, note: SignedNote, origin: str, operator: str,
               operator_key: bytes) -> CheckpointRecord:
        """Keep a checkpoint the operator signed; refused unless the signature checks out."""
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.origin != origin:
            raise RuleViolation(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
        verify_note_signature(note, operator, operator_key)
        created: Any = cls._create(cls.Signed, id=checkpoint_id(checkpoint.size),
                                   note=note.format())
        return created  # type: ignore[no-any-return]

    @property
    def signed_note(self) -> SignedNote:
        """The operator's note."""
        return SignedNote.parse(self.note)

    @property
    def checkpoint(self) -> Checkpoint:
        """Origin, size and root."""
        return Checkpoint.parse(self.signed_note.text)

    def cosign(self, witness: str, public_key: bytes, signature: NoteSignature) -> None:
        """Add a partner's cosignature; refused unless it verifies over this checkpoint."""
        expected = note_key_id(witness, public_key, COSIGNATURE_KEY_TYPE)
        if signature.name != witness or signature.key_id != expected:
            raise RuleViolation(f"that cosignature is not {witness!r}'s under the key given")
        note = add_signatures(self.signed_note, signature)
        verify_cosignature(note, witness, public_key)
        if any(w == witness and k == public_key.hex() for w, k, _ in self.cosignatures):
            raise RuleViolation(f"{witness!r} has already cosigned this checkpoint")
        self.trigger_event(self.Cosigned, witness=witness, public_key=public_key.hex(),
                           line=signature.line())

    def with_cosignatures(self) -> SignedNote:
        """The note with every cosignature line added, by witness name."""
        return add_signatures(self.signed_note,
                              *(NoteSignature.parse_line(line.rstrip("\n"))
                                for _, _, line in sorted(self.cosignatures)))
