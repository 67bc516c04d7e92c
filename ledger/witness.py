"""A partner's memory, as a witness, of the last checkpoint it cosigned for each ledger.

Kept beside the partner's keys (``PARTNER.witness.json`` in the key folder), never in the
ledger's database: it is what the partner saw, against which it checks what the operator shows
it next. If the operator ever shows a checkpoint that is not an extension of this one, the
partner refuses to cosign and keeps the evidence.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ledger.errors import KeyFileError
from ledger.keystore import check_key_name
from ledger.note import Checkpoint


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
    def load(cls, path: Path) -> WitnessState:
        """Read the state (empty if this partner has never cosigned)."""
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls({origin: Seen(int(v["size"]), base64.b64decode(v["root"]),
                                     bytes.fromhex(v["operator_key"]), str(v["checkpoint"]))
                        for origin, v in data.items()})
        except (OSError, ValueError, KeyError, TypeError):
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
