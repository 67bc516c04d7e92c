"""The key folder: where a partner's private keys live, never in the ledger's database.

Each key NAME is two files in the folder:

- ``NAME.pem``: the private key, PKCS#8 PEM encrypted with the passphrase (PBES2), readable by
  ``openssl pkey -in NAME.pem``;
- ``NAME.pub``: the raw public key as 64 hex digits and a newline, so that keys can be listed
  and matched to a partner without the passphrase.

This is the only module of the core that touches files other than the event store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    load_pem_private_key,
)

from ledger.errors import InvalidInput, KeyFileError, NotFound
from ledger.keys import Signer, key_id, parse_public_key, raw_public_key

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_key_name(name: str) -> str:
    """A key name is a slug: lower-case letters, digits, dot, dash and underscore."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is not a valid key name: use lower-case letters, digits, '.', '-', '_'"
        )
    return name


@dataclass(frozen=True)
class PublicKeyInfo:
    """What the folder says about one key without opening it."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> str:
        """The key id (hex SHA-256 of the raw public key)."""
        return key_id(self.public_key)


class KeyStore:
    """A folder of encrypted Ed25519 keys."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _pem(self, name: str) -> Path:
        return self.folder / f"{check_key_name(name)}.pem"

    def _pub(self, name: str) -> Path:
        return self.folder / f"{check_key_name(name)}.pub"

    def exists(self, name: str) -> bool:
        """Whether a private key of that name is in the folder."""
        return self._pem(name).exists()

    def create(self, name: str, passphrase: bytes, signer: Signer | None = None) -> PublicKeyInfo:
        """Write a new key (random unless ``signer`` is given); never overwrite one."""
        if not passphrase:
            raise InvalidInput("a key needs a non-empty passphrase (set LEDGER_PASSPHRASE)")
        pem_path, pub_path = self._pem(name), self._pub(name)
        if pem_path.exists():
            raise InvalidInput(
                f"a key named {name!r} already exists in {self.folder}; choose another name"
            )
        signer = signer or Signer.generate()
        pem = signer.private_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase)
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes creating the same key name cannot both win.
        try:
            fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise InvalidInput(f"a key named {name!r} already exists in {self.folder}") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        pub_path.write_text(signer.public_key.hex() + "\n", encoding="ascii")
        return PublicKeyInfo(name, signer.public_key)

    def public(self, name: str) -> PublicKeyInfo:
        """The public key of NAME, read without the passphrase."""
        path = self._pub(name)
        if not path.exists():
            if self._pem(name).exists():
                raise KeyFileError(
                    f"public half of key {name!r} is missing ({path}); "
                    f"restore it or re-create it from the private key"
                )
            raise NotFound(
                f"no key named {name!r} in {self.folder}; create it with 'ledger keys new {name}'"
            )
        try:
            text = path.read_text(encoding="ascii").strip()
            return PublicKeyInfo(name, parse_public_key(text))
        except (InvalidInput, UnicodeDecodeError):
            raise KeyFileError(f"key file {path} is corrupt: expected 64 hex digits") from None

    def list(self) -> list[PublicKeyInfo]:
        """Every key in the folder, by name."""
        if not self.folder.is_dir():
            return []
        return [self.public(name) for name in sorted(p.stem for p in self.folder.glob("*.pem"))]

    def find(self, wanted_key_id: str) -> PublicKeyInfo | None:
        """The key in the folder whose key id is ``wanted_key_id``, if any."""
        for info in self.list():
            if info.key_id == wanted_key_id:
                return info
        return None

    def open(self, name: str, passphrase: bytes) -> Signer:
        """Decrypt NAME with the passphrase; one clear error for every way that can fail."""
        path = self._pem(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"no key named {name!r} in {self.folder}; create it with 'ledger keys new {name}'"
            ) from None
        try:
            key = load_pem_private_key(data, passphrase or None)
        except TypeError:
            # cryptography raises TypeError both for a missing passphrase and for a passphrase
            # given to a key that was never encrypted.
            if passphrase:
                raise KeyFileError(
                    f"key file {path} is not encrypted; keys are kept encrypted: re-create it "
                    f"with 'ledger keys new'"
                ) from None
            raise KeyFileError(
                f"key {name!r} is encrypted: set LEDGER_PASSPHRASE or enter the passphrase"
            ) from None
        except ValueError as exc:
            if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
                raise KeyFileError(
                    f"wrong passphrase for key {name!r}; check LEDGER_PASSPHRASE"
                ) from None
            raise KeyFileError(f"key file {path} is corrupt and cannot be read") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"key file {path} does not hold an Ed25519 key")
        signer = Signer(key)
        pub = self._pub(name)
        if pub.exists() and self.public(name).public_key != raw_public_key(key):
            raise KeyFileError(
                f"{pub} does not match {path}: the public half was replaced; restore it"
            )
        return signer
