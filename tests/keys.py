"""Fixed test keys: FOR TESTS ONLY, derived from public seeds, never to sign anything real.

Each key's 32-byte Ed25519 seed is SHA-256("agreement-ledger test key: " + name), so any test,
fixture or document can recreate it byte for byte.

:func:`store_fixed_key` writes one into a key folder at :data:`TEST_COST`, a scrypt cost far
below a real key's, so that suites making many key folders stay fast.
"""

from __future__ import annotations

import hashlib

from ledger.keys import Signer
from ledger.keystore import KeyStore, PublicKeyInfo

#: scrypt's N for fixed test keys in key folders (a real key's is ``keystore.DEFAULT_COST``).
TEST_COST = 2**10

SEED_PREFIX = b"agreement-ledger test key: "


def fixed_seed(name: str) -> bytes:
    """The fixed seed of test key ``name``."""
    return hashlib.sha256(SEED_PREFIX + name.encode()).digest()


def fixed_key(name: str) -> Signer:
    """The fixed test key ``name``."""
    return Signer.from_seed(fixed_seed(name))


def store_fixed_key(store: KeyStore, name: str, passphrase: bytes) -> PublicKeyInfo:
    """Write the fixed test key ``name`` into ``store``, encrypted at :data:`TEST_COST`."""
    return store.create(name, passphrase, fixed_key(name), cost=TEST_COST)
