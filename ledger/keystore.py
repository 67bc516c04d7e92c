"""The key folder: where a partner's private keys live, never in the ledger's database.

Each key NAME is two files in the folder:

- ``NAME.pem``: the private key, PKCS#8 ``EncryptedPrivateKeyInfo`` in PEM, encrypted with the
  passphrase by PBES2 (RFC 8018) with scrypt (RFC 7914) as its KDF and AES-256-CBC as its
  cipher, readable by ``cryptography`` and by openssl;
- ``NAME.pub``: the raw public key as 64 hex digits and a newline, so that keys can be listed
  and matched to a partner without the passphrase. It is a hint, never trusted: whoever can
  write the folder can replace it, so a public key that goes into the ledger is always taken
  from the opened private key, which checks the ``.pub`` against itself.

Key files written before scrypt (PBES2 with PBKDF2, as ``BestAvailableEncryption`` writes them)
still open.

The core touches files in three places: here (the keys), :mod:`ledger.witness` (the
checkpoints a partner and the operator remember, beside their keys) and :mod:`ledger.bundle`
(reading an audit bundle).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InternalError
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
    load_pem_private_key,
)

from ledger.errors import InvalidInput, KeyFileError, NotFound
from ledger.keys import Signer, key_id, parse_public_key

#: The scrypt cost N of a new key. With r = 8 and p = 5 this is one of OWASP's equivalent
#: settings for scrypt (N = 2**14, r = 8, p = 5): 16 MiB of memory and a fraction of a second
#: to open, for the owner once per command, for someone guessing passphrases once per guess;
#: and within what ``openssl pkey`` will spend on a PBES2 key file (32 MiB).
DEFAULT_COST = 2**14
#: The fewest characters a new key's passphrase may have.
MIN_PASSPHRASE = 12
#: The most work a key file may ask for before it is opened, so that a replaced file cannot make
#: opening it take gigabytes or minutes: for scrypt, 128 * N * r * p bytes, four times a new
#: key's; for PBKDF2 (key files from before scrypt, written with 2,048), iterations.
_MAX_WORK = 4 * 128 * DEFAULT_COST * 8 * 5
_MAX_ITERATIONS = 2_000_000
_BLOCK_SIZE = 8  # scrypt's r
_PARALLEL = 5  # scrypt's p

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

#: Keys this process has opened: (the key file's bytes, SHA-256 of the passphrase) -> key.
_OPENED: dict[tuple[bytes, bytes], Signer] = {}
_OPENED_MAX = 64


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


# --- PKCS#8 EncryptedPrivateKeyInfo with PBES2 and scrypt ------------------------------------
#
# EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm AlgorithmIdentifier,
#                                        encryptedData OCTET STRING }          (RFC 5958)
# AlgorithmIdentifier = { id-PBES2, PBES2-params ::= SEQUENCE {
#     keyDerivationFunc { id-scrypt, scrypt-params ::= SEQUENCE {
#         salt OCTET STRING, costParameter INTEGER, blockSize INTEGER,
#         parallelizationParameter INTEGER, keyLength INTEGER } },            (RFC 7914)
#     encryptionScheme { aes256-CBC, iv OCTET STRING } } }                    (RFC 8018)

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_SEQUENCE, _INTEGER, _OCTETS, _OID = 0x30, 0x02, 0x04, 0x06
_PEM_LABEL = "ENCRYPTED PRIVATE KEY"
_PEM_BODY = re.compile(
    rb"-----BEGIN ENCRYPTED PRIVATE KEY-----(.*?)-----END ENCRYPTED PRIVATE KEY-----", re.DOTALL)


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _sequence(*parts: bytes) -> bytes:
    return _tlv(_SEQUENCE, b"".join(parts))


def _integer(value: int) -> bytes:
    # Non-negative only: one leading zero byte keeps a set high bit from reading as a sign.
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        # Base 128, most significant group first, every group but the last with its top bit set.
        groups = [arc & 0x7F]
        groups += [0x80 | (arc >> shift) & 0x7F for shift in range(7, arc.bit_length(), 7)]
        body += bytes(reversed(groups))
    return _tlv(_OID, bytes(body))


def _encrypt_pkcs8(private_key: Ed25519PrivateKey, passphrase: bytes, cost: int) -> bytes:
    """The key as PEM ``EncryptedPrivateKeyInfo``: PBES2, scrypt(N = cost, r = 8, p = 5) over a
    16-byte random salt, AES-256-CBC with a 16-byte random IV over the PKCS#8 DER."""
    plain = private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    salt, iv = os.urandom(16), os.urandom(16)
    secret = Scrypt(salt=salt, length=32, n=cost, r=_BLOCK_SIZE, p=_PARALLEL).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    algorithm = _sequence(_oid(_PBES2), _sequence(
        _sequence(_oid(_SCRYPT), _sequence(_tlv(_OCTETS, salt), _integer(cost),
                                           _integer(_BLOCK_SIZE), _integer(_PARALLEL),
                                           _integer(32))),
        _sequence(_oid(_AES256_CBC), _tlv(_OCTETS, iv))))
    text = base64.b64encode(_sequence(algorithm, _tlv(_OCTETS, encrypted))).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "\n".join([f"-----BEGIN {_PEM_LABEL}-----", *lines,
                      f"-----END {_PEM_LABEL}-----", ""]).encode("ascii")


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """One DER element at ``pos``: its tag, its contents and where the next one starts."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, size = data[pos], data[pos + 1]
    pos += 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad length")
        size = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + size > len(data):
        raise ValueError("truncated")
    return tag, data[pos:pos + size], pos + size


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    """The elements of a SEQUENCE's contents."""
    found, pos = [], 0
    while pos < len(data):
        tag, body, pos = _read_tlv(data, pos)
        found.append((tag, body))
    return found


@dataclass(frozen=True)
class _Pbes2:
    """What a PBES2 key file (RFC 8018) says of itself: its KDF with that KDF's salt and
    numbers (an integer field stands for a number only after the salt, whatever it is), its
    cipher with its IV, and the encrypted key. The one reading of a key file's parameters,
    for the work guard and for opening it in the background alike."""

    kdf: bytes
    salt: tuple[int, bytes]
    numbers: tuple[tuple[int, bytes], ...]
    cipher: bytes
    iv: bytes
    encrypted: bytes

    @staticmethod
    def read(pem: bytes) -> _Pbes2 | None:
        """The parameters of ``pem``, if it is a PBES2 key file; None for any other file."""
        match = _PEM_BODY.search(pem)
        if match is None:
            return None
        try:
            der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
            _, info, _ = _read_tlv(der, 0)
            (_, algorithm), (_, encrypted) = _elements(info)[:2]
            (_, scheme), (_, pbes2) = _elements(algorithm)[:2]
            (_, kdf), (_, cipher) = _elements(pbes2)[:2]
            (_, kdf_name), (_, kdf_params) = _elements(kdf)[:2]
            (_, cipher_name), (_, iv) = _elements(cipher)[:2]
            salt, *numbers = _elements(kdf_params)
        except (ValueError, IndexError, binascii.Error):
            return None
        if scheme != _oid(_PBES2)[2:]:
            return None
        return _Pbes2(kdf_name, salt, tuple(numbers), cipher_name, iv, encrypted)

    def integers(self) -> list[int]:
        """The KDF's numbers after its salt: scrypt's N, r, p and key length; PBKDF2's
        iteration count (and key length)."""
        return [int.from_bytes(body, "big") for tag, body in self.numbers if tag == _INTEGER]


def _excessive_work(pem: bytes) -> str | None:
    """The KDF parameters of a PBES2 key file, told as ``"scrypt parameters (N=.., r=.., p=..)"``,
    when they ask for more work than a key file may; None for any other file, left to the
    loader to open or to name as corrupt."""
    sealed = _Pbes2.read(pem)
    if sealed is None:
        return None
    numbers = sealed.integers()
    if sealed.kdf == _oid(_SCRYPT)[2:] and len(numbers) >= 3:
        cost, block, parallel = numbers[:3]
        if 128 * cost * block * parallel > _MAX_WORK:
            return f"scrypt parameters (N={cost}, r={block}, p={parallel})"
    if sealed.kdf == _oid(_PBKDF2)[2:] and numbers and numbers[0] > _MAX_ITERATIONS:
        return f"PBKDF2 parameters ({numbers[0]} iterations)"
    return None


@dataclass(frozen=True)
class _Sealed:
    """What a key file written by :func:`_encrypt` holds: scrypt's salt and parameters, and
    the AES-256-CBC IV and ciphertext of the PKCS#8 key."""

    salt: bytes
    cost: int
    block: int
    parallel: int
    iv: bytes
    encrypted: bytes

    @staticmethod
    def read(pem: bytes) -> _Sealed | None:
        """The sealed key, if ``pem`` is a key file of exactly the form this module writes
        (PBES2, scrypt with a 32-byte key, AES-256-CBC) and within the work a key file may ask
        for (:func:`_excessive_work`); None for any other file."""
        found = _Pbes2.read(pem)
        if (found is None or found.kdf != _oid(_SCRYPT)[2:]
                or found.cipher != _oid(_AES256_CBC)[2:] or found.salt[0] != _OCTETS
                or [tag for tag, _ in found.numbers] != [_INTEGER] * 4
                or _excessive_work(pem) is not None):
            return None
        cost, block, parallel, length = found.integers()
        if length != 32:
            return None
        return _Sealed(found.salt[1], cost, block, parallel, found.iv, found.encrypted)

    def open(self, passphrase: bytes) -> Signer | None:
        """The key, opened with ``passphrase``; None if it does not open it (the ordinary
        opening, :meth:`KeyStore.open`, then says why). scrypt runs here through
        :func:`hashlib.scrypt`, which leaves Python's lock to other threads while it works
        (the same function, RFC 7914, as the loader's)."""
        try:
            secret = hashlib.scrypt(passphrase, salt=self.salt, n=self.cost, r=self.block,
                                    p=self.parallel, dklen=32,
                                    maxmem=128 * self.cost * self.block * (self.parallel + 2))
            decryptor = Cipher(algorithms.AES(secret), modes.CBC(self.iv)).decryptor()
            padded = decryptor.update(self.encrypted) + decryptor.finalize()
            unpadder = padding.PKCS7(128).unpadder()
            key = load_der_private_key(unpadder.update(padded) + unpadder.finalize(), None)
        except (ValueError, TypeError, MemoryError, InternalError):
            return None
        return Signer(key) if isinstance(key, Ed25519PrivateKey) else None


#: Keys being opened in the background (:meth:`KeyStore.prepare`), as :data:`_OPENED`.
_OPENING: dict[tuple[bytes, bytes], tuple[threading.Thread, list[Signer | None]]] = {}


class KeyStore:
    """A folder of encrypted Ed25519 keys."""

    def __init__(self, folder: Path) -> None:
        if folder.exists() and not folder.is_dir():
            raise KeyFileError(f"the key folder {folder} is a file, not a folder")
        self.folder = folder

    def _pem(self, name: str) -> Path:
        return self.folder / f"{check_key_name(name)}.pem"

    def _pub(self, name: str) -> Path:
        return self.folder / f"{check_key_name(name)}.pub"

    def exists(self, name: str) -> bool:
        """Whether a private key of that name is in the folder."""
        return self._pem(name).exists()

    def only_public(self, name: str) -> bool:
        """Whether the folder holds NAME's public half but not its private key."""
        return self._pub(name).exists() and not self._pem(name).exists()

    def create(self, name: str, passphrase: bytes, signer: Signer | None = None, *,
               cost: int = DEFAULT_COST) -> PublicKeyInfo:
        """Write a new key (random unless ``signer`` is given); never overwrite one.

        ``cost`` is scrypt's N; keep the default. A lower one is for fixed test keys only, so
        that a test suite making many keys stays fast: it makes guessing the passphrase cheap.
        """
        if not passphrase:
            raise InvalidInput("a key needs a non-empty passphrase (set LEDGER_PASSPHRASE)")
        if len(passphrase.decode("utf-8", errors="replace")) < MIN_PASSPHRASE:
            raise InvalidInput(f"the passphrase of a new key must have at least "
                               f"{MIN_PASSPHRASE} characters")
        if cost < 2 or cost & (cost - 1) or 128 * cost * _BLOCK_SIZE * _PARALLEL > _MAX_WORK:
            raise InvalidInput(f"scrypt cost {cost} is not a power of two from 2 to "
                               f"{_MAX_WORK // (128 * _BLOCK_SIZE * _PARALLEL)}")
        pem_path, pub_path = self._pem(name), self._pub(name)
        if pem_path.exists():
            raise InvalidInput(
                f"a key named {name!r} already exists in {self.folder}; choose another name"
            )
        signer = signer or Signer.generate()
        pem = _encrypt_pkcs8(signer.private_key, passphrase, cost)
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
        """The public key of NAME as its ``.pub`` says, read without the passphrase: to list
        keys and find one by its key id, never to put a key into the ledger (see :meth:`open`).
        """
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

    def prepare(self, name: str, passphrase: bytes) -> None:
        """Begin opening key NAME with ``passphrase`` in a thread of its own, while the
        command goes on (reading the ledger, loading its modules): scrypt's work, most of the
        time an act takes beyond start-up, then overlaps the rest. :meth:`open` of the same
        file with the same passphrase takes the key from it; anything else (no such key, a
        file of another form, a wrong passphrase) is left to :meth:`open` to tell."""
        try:
            data = self._pem(name).read_bytes()
        except (OSError, InvalidInput):
            return  # open() says what is wrong with the name or the file
        ident = (data, hashlib.sha256(passphrase).digest())
        sealed = _Sealed.read(data)
        if sealed is None or ident in _OPENED or ident in _OPENING or _excessive_work(data):
            return
        result: list[Signer | None] = []
        thread = threading.Thread(target=lambda: result.append(sealed.open(passphrase)),
                                  name=f"open key {name}", daemon=True)
        _OPENING[ident] = (thread, result)
        thread.start()

    def open(self, name: str, passphrase: bytes) -> Signer:
        """Decrypt NAME with the passphrase; one clear error for every way that can fail.

        A ``.pub`` that does not match the private key is refused: it was replaced.
        """
        path = self._pem(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if self._pub(name).exists():
                raise NotFound(
                    f"the key folder {self.folder} holds only the public half of key {name!r} "
                    f"({name}.pub), not its private key {name}.pem"
                ) from None
            raise NotFound(
                f"no key named {name!r} in {self.folder}; create it with 'ledger keys new {name}'"
            ) from None
        ident = (data, hashlib.sha256(passphrase).digest())
        opening = _OPENING.pop(ident, None)
        if opening is not None:
            thread, result = opening
            thread.join()
            if result and result[0] is not None:
                if len(_OPENED) >= _OPENED_MAX:
                    _OPENED.clear()
                _OPENED[ident] = result[0]
        opened = _OPENED.get(ident)
        if opened is not None:
            return self._checked(name, opened)
        excessive = _excessive_work(data)
        if excessive is not None:
            raise KeyFileError(
                f"key file {path} is corrupt or was not written by the ledger: its {excessive} "
                f"ask for more work than a key file may"
            )
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
                    f"wrong passphrase for key {name!r}; check LEDGER_PASSPHRASE or "
                    f"--passphrase-file"
                ) from None
            raise KeyFileError(f"key file {path} is corrupt and cannot be read") from None
        except (InternalError, MemoryError):
            raise KeyFileError(f"key file {path} is corrupt and cannot be read") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"key file {path} does not hold an Ed25519 key")
        signer = Signer(key)
        if len(_OPENED) >= _OPENED_MAX:
            _OPENED.clear()
        # This process may open the same key again (a long run of acts, the service): the
        # passphrase's work is done once per file and passphrase, never kept on disk.
        _OPENED[(data, hashlib.sha256(passphrase).digest())] = signer
        return self._checked(name, signer)

    def _checked(self, name: str, signer: Signer) -> Signer:
        pub = self._pub(name)
        if pub.exists() and self.public(name).public_key != signer.public_key:
            raise KeyFileError(
                f"{pub} does not match {self._pem(name)}: the public half was replaced; "
                f"restore it"
            )
        return signer
