"""Fixed test keys: FOR TESTS ONLY, derived from public seeds, never to sign anything real.

Each key's 32-byte Ed25519 seed is SHA-256("agreement-ledger test key: " + name), so any test,
fixture or document can recreate it byte for byte.
"""

from __future__ import annotations

import hashlib

from ledger.keys import Signer

SEED_PREFIX = b"agreement-ledger test key: "


def fixed_seed(name: str) -> bytes:
    """The fixed seed of test key ``name``."""
    return hashlib.sha256(SEED_PREFIX + name.encode()).digest()


def fixed_key(name: str) -> Signer:
    """The fixed test key ``name``."""
    return Signer.from_seed(fixed_seed(name))
