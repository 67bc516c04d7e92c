"""Partners as witnesses of the log: who may cosign, and what each remembers.

:class:`Witnesses` says which keys may cosign under a partner's name: a cosigner's name is its
partner id, which must stand for one partner throughout the ledger (the keys it has held in its
agreements have something in common), and a new cosignature is made with a key the partner
acts with now.

:class:`WitnessState` is a partner's memory of the last checkpoint it cosigned for each
ledger, kept beside its keys (``PARTNER.witness.json`` in the key folder), never in the
ledger's database: it is what the partner saw, against which it checks what the operator shows
it next. If the operator ever shows a checkpoint that is not an extension of this one, the
partner refuses to cosign and keeps the evidence (:func:`check_extends`).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ledger import merkle
from ledger.errors import (
    InvalidInput,
    KeyFileError,
    LedgerError,
    RuleViolation,
    VerificationFailed,
)
from ledger.keys import key_id
from ledger.keystore import check_key_name
from ledger.note import Checkpoint


@dataclass
class Witnesses:
    """The keys each partner id has held across the ledger's agreements, holds now, and which
    partner first cosigned under it.

    One partner id may name different organisations in different agreements (each agreement
    only keeps its own ids apart). Keys tell them apart: key sets that share a key are one
    partner's. A cosignature line names its signer only by the partner id, so a cosigner's
    name must stand for one partner within the ledger: the partner that first cosigns under a
    name holds it, and a key of any other partner under that name is refused, when cosigning
    and when verifying.
    """

    #: partner id -> its keys, in sets that share no key (one set per partner it names)
    held: dict[str, list[frozenset[bytes]]] = field(default_factory=dict)
    #: partner id -> the key it acts with now, in each agreement it is part of
    current: dict[str, set[bytes]] = field(default_factory=dict)
    #: cosigner name -> keys of the partner that first cosigned under it
    owners: dict[str, frozenset[bytes]] = field(default_factory=dict)

    def learn(self, partner: str, keys: frozenset[bytes], current: bytes) -> None:
        """Add what one agreement says of ``partner``: every key it has held there, and the
        one it acts with now."""
        self._hold(partner, keys)
        self.current.setdefault(partner, set()).add(current)

    def _hold(self, partner: str, keys: frozenset[bytes]) -> None:
        # Key sets that share a key are one partner's: merge them.
        lineages = self.held.setdefault(partner, [])
        merged = keys
        for lineage in [group for group in lineages if group & keys]:
            lineages.remove(lineage)
            merged |= lineage
        lineages.append(merged)

    def merge(self, other: Witnesses) -> None:
        """Add what another share of the agreements said."""
        for partner, lineages in other.held.items():
            for keys in lineages:
                self._hold(partner, keys)
        for partner, now in other.current.items():
            self.current.setdefault(partner, set()).update(now)

    def check(self, name: str, public_key: bytes, *, now: bool) -> None:
        """Raise unless ``name`` may cosign with ``public_key``: a key the partner of that id
        holds now (``now``: a new cosignature) or has held (one stored), of the partner that
        holds the name as a cosigner if another already does."""
        if not self.held.get(name):
            raise RuleViolation(f"{name!r} is not a partner of any agreement of this ledger; "
                                f"only partners cosign its checkpoints")
        lineage = next((keys for keys in self.held[name] if public_key in keys), None)
        if now and public_key not in self.current.get(name, set()):
            raise RuleViolation(
                f"key {key_id(public_key)[:16]} is not a key {name!r} acts with now; cosign "
                f"with its current key (the one its latest appointment names)")
        if lineage is None:
            raise RuleViolation(f"a cosignature by {name!r} was made with a key that partner "
                                f"never held")
        owner = self.owners.get(name)
        if owner is not None and not owner & lineage:
            raise RuleViolation(
                f"the cosigner name {name!r} is held in this ledger by another partner of that "
                f"id (it cosigned first, with key {key_id(min(owner))[:16]}); a cosigner's "
                f"name must be unique within a ledger")

    def claim(self, name: str, public_key: bytes) -> None:
        """Record a cosignature under ``name`` (checked): its partner holds the name."""
        if name not in self.owners:
            self.owners[name] = next(keys for keys in self.held[name] if public_key in keys)


def check_extends(seen_size: int, seen_root: bytes, new: Checkpoint, proof: list[bytes],
                  partner: str) -> None:
    """Raise :class:`VerificationFailed` unless checkpoint ``new`` extends the one of size
    ``seen_size`` and root ``seen_root`` that ``partner`` cosigned before (``proof``: the
    consistency proof between them, wherever it came from: only the two roots are trusted)."""
    message = (f"REFUSED: the checkpoint of size {new.size} is not consistent with the "
               f"checkpoint of size {seen_size} that {partner} cosigned before; the log has been "
               f"rewritten or forked. Keep both checkpoints as evidence")
    if new.size < seen_size:
        raise VerificationFailed(f"{message} (it is smaller)")
    if new.size == seen_size:
        if new.root != seen_root:
            raise VerificationFailed(message)
        return
    try:
        merkle.verify_consistency(seen_size, new.size, seen_root, new.root, proof)
    except LedgerError as exc:
        raise VerificationFailed(f"{message} ({exc})") from None


def check_operator_key(partner: str, seen: Seen | None, operator_key: bytes) -> None:
    """Refuse, loudly, a ledger whose operator key is not the one ``partner`` saw before."""
    if seen is not None and seen.operator_key != operator_key:
        raise VerificationFailed(
            f"REFUSED: the ledger's operator key changed since {partner} last cosigned "
            f"(was {key_id(seen.operator_key)[:16]}, now {key_id(operator_key)[:16]})")


def check_may_cosign(partner: str, seen: Seen | None, operator_key: bytes, new: Checkpoint,
                     proof: list[bytes], cosigners: tuple[str, ...]) -> None:
    """The witness protocol: ``partner`` may cosign checkpoint ``new`` only if the operator key
    is the one it saw before, ``new`` extends the last checkpoint it cosigned (``seen``, with
    ``proof`` between them), and it has not cosigned ``new`` already. A forked or rewritten log,
    or a new operator, is refused loudly."""
    check_operator_key(partner, seen, operator_key)
    if seen is not None:
        check_extends(seen.size, seen.root, new, proof, partner)
    if partner in cosigners:
        raise InvalidInput(f"{partner} has already cosigned the checkpoint of size {new.size}")


@dataclass(frozen=True)
class Seen:
    """The last checkpoint cosigned for one ledger, and the operator key it was signed with."""

    size: int
    root: bytes
    operator_key: bytes
    note: str


@dataclass
class WitnessState:
    """Every ledger a partner has cosigned for: origin -> last checkpoint cosigned."""

    ledgers: dict[str, Seen] = field(default_factory=dict)

    @staticmethod
    def path_for(folder: Path, partner: str) -> Path:
        """Where ``partner``'s witness state lives in a key folder."""
        return folder / f"{check_key_name(partner)}.witness.json"

    @classmethod
    def all_in(cls, folder: Path) -> dict[str, WitnessState]:
        """Every memory kept in a key folder (a partner's as witness, the operator's), by the
        name of the key it belongs to."""
        if not folder.is_dir():
            return {}
        return {path.name.removesuffix(".witness.json"): cls.load(path)
                for path in sorted(folder.glob("*.witness.json"))}

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        """Read the state (empty if this partner has never cosigned)."""
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls({origin: Seen(int(v["size"]), base64.b64decode(v["root"]),
                                     bytes.fromhex(v["operator_key"]), str(v["checkpoint"]))
                        for origin, v in data.items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyFileError(f"witness state {path} is corrupt; restore it from a backup "
                               f"before cosigning again") from None

    def get(self, origin: str) -> Seen | None:
        """The last checkpoint cosigned for ``origin``."""
        return self.ledgers.get(origin)

    def remember(self, origin: str, checkpoint: Checkpoint, operator_key: bytes,
                 note: str) -> None:
        """Record a checkpoint just cosigned."""
        self.ledgers[origin] = Seen(checkpoint.size, checkpoint.root, operator_key, note)

    def save(self, path: Path) -> None:
        """Write the state atomically (a crash leaves the old state or the new one)."""
        data = {origin: {"size": s.size, "root": base64.b64encode(s.root).decode(),
                         "operator_key": s.operator_key.hex(), "checkpoint": s.note}
                for origin, s in sorted(self.ledgers.items())}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
