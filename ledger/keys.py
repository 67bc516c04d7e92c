"""Ed25519 keys: key ids, signing and verifying (RFC 8032), with no file handling.

A partner's key is named in statements by its *key id*: the lower-case hex SHA-256 of the raw
32-byte public key. Public keys travel in statement bodies as 64 hex digits.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import InvalidInput, SignatureInvalid

_HEX64 = re.compile(r"[0-9a-f]{64}")


@functools.lru_cache(maxsize=4096)
def key_id(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


def raw_public_key(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


#: The field prime of Curve25519, and the y-coordinates of the points of small order (1, 2, 4
#: and 8): a public key that is one of them, in any encoding, signs every message with one
#: signature ("Taming the many EdDSAs", Chalkias et al., 2020).
_P = 2**255 - 19
_Y8 = 0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})


def check_public_key(raw: bytes) -> bytes:
    """``raw`` if it is a 32-byte Ed25519 public key that can be trusted to sign: its encoding
    canonical (y below the field prime) and its point not of small order."""
    if len(raw) != 32:
        raise InvalidInput("an Ed25519 public key is 32 bytes")
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise InvalidInput("that public key is not in canonical form; it is refused")
    if y in _SMALL_ORDER_Y:
        raise InvalidInput("that public key is a point of small order, with which any message "
                           "can be signed; it is refused")
    return raw


def parse_public_key(text: str) -> bytes:
    """A public key given as 64 lower-case hex digits, as raw bytes (refused if a signature
    under it would prove nothing: see :func:`check_public_key`)."""
    if not _HEX64.fullmatch(text):
        raise InvalidInput(f"{text!r} is not a public key: give 64 lower-case hex digits")
    return check_public_key(bytes.fromhex(text))


@functools.lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    # A partner's key checks every entry it signed: it is read from its bytes once.
    return Ed25519PublicKey.from_public_bytes(raw)


def _check_commitment(signature: bytes) -> None:
    """A signature's R (its first 32 bytes) must be a canonical encoding of a point not of
    small order: the rule libsodium applies, so that whichever library checks the equation,
    the same signatures are valid (OpenSSL alone accepts a small-order R)."""
    if len(signature) != 64:
        raise InvalidInput("an Ed25519 signature is 64 bytes")
    y = int.from_bytes(signature[:32], "little") & ((1 << 255) - 1)
    if y >= _P or y in _SMALL_ORDER_Y:
        raise InvalidInput("the signature's R is not a canonical point of large order")


def openssl_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032's equation, by OpenSSL (through ``cryptography``): the reference."""
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sodium_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032's equation, by libsodium (through PyNaCl): about twice as fast as OpenSSL on
    these machines, so used where many signatures are checked (:func:`verify_signature`)."""
    from nacl.bindings.crypto_sign import crypto_sign_open  # noqa: PLC0415
    from nacl.exceptions import CryptoError  # noqa: PLC0415

    try:
        crypto_sign_open(signature + message, public_key)
    except (CryptoError, ValueError, TypeError):
        return False
    return True


#: A process checks its first signatures with OpenSSL, whose module every command loads
#: anyway; after these many, with libsodium (whose module takes 40 ms to load): an act checks
#: one or two, a verification thousands. Under the ledger's rule the two give the same
#: outcome (tests/test_statement.py), so which one checks a signature changes nothing.
SODIUM_AFTER = 64
_verifier = {"checked": 0}


@functools.lru_cache(maxsize=256)
def _equation_holds(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032's equation for these exact bytes, remembered for the last few: an act checks
    its own entry before posting it, and again as the service stored it."""
    _verifier["checked"] += 1
    equation = sodium_verifies if _verifier["checked"] > SODIUM_AFTER else openssl_verifies
    return equation(public_key, signature, message)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Check an Ed25519 signature by the ledger's rule: RFC 8032's equation (cofactorless,
    S below the group order), under a key and with an R that are canonical points not of
    small order (docs/FORMAT.md); raise :class:`SignatureInvalid` if it does not hold."""
    try:
        _check_commitment(signature)
        check_public_key(public_key)
    except InvalidInput:
        holds = False
    else:
        holds = _equation_holds(public_key, signature, message)
    if not holds:
        raise SignatureInvalid(
            f"signature does not verify under key {key_id(public_key)[:16]}"
        )


@dataclass(frozen=True)
class Signer:
    """A private key at hand, able to sign statements for the partner that holds it."""

    private_key: Ed25519PrivateKey = field(repr=False)
    public_key: bytes = field(init=False)
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        public = raw_public_key(self.private_key)
        object.__setattr__(self, "public_key", public)
        object.__setattr__(self, "key_id", key_id(public))

    @classmethod
    def generate(cls) -> Signer:
        """A new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        """The key whose 32-byte RFC 8032 private seed is ``seed`` (fixed test keys)."""
        if len(seed) != 32:
            raise InvalidInput("an Ed25519 seed is exactly 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self.private_key.sign(message)
