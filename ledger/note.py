"""Signed notes, checkpoints and cosignatures in the C2SP formats.

* ``c2sp.org/signed-note``: a text ending in a newline, a blank line, then one or more lines
  ``U+2014 EM DASH, space, key name, space, base64(4-byte key id || signature), newline``.
  Ed25519 key ids are ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``.
* ``c2sp.org/tlog-checkpoint``: the note text ``<origin>\\n<size>\\n<base64 root>\\n``
  followed by optional extension lines.
* ``c2sp.org/tlog-cosignature`` (``cosignature/v1``, Ed25519): a witness signs
  ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint text``; its line carries
  ``key id (type 0x04) || 8-byte big-endian timestamp || 64-byte signature``.

Parsing is strict: anything the specifications call malformed raises
:class:`~ledger.errors.InvalidInput`, and base64 must be canonical so that a parsed note
formats back to the same bytes. ``verify_*`` functions return nothing (or the verified
timestamp) and raise :class:`~ledger.errors.VerificationFailed` naming the signer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import InvalidInput, VerificationFailed

__all__ = [
    "COSIGNATURE_KEY_TYPE",
    "ED25519_KEY_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "SignedNote",
    "VerifierKey",
    "add_signatures",
    "cosign",
    "cosignature_message",
    "note_key_id",
    "parse_verifier_key",
    "sign_note",
    "verifier_key",
    "verify_cosignature",
    "verify_note_signature",
]

ED25519_KEY_TYPE = 0x01
"""Signature type byte of plain Ed25519 note signatures (c2sp.org/signed-note)."""

COSIGNATURE_KEY_TYPE = 0x04
"""Signature type byte of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature)."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry; the spec asks verifiers to bound it (at least 16)."""

KEY_ID_SIZE = 4
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
TIMESTAMP_SIZE = 8
ROOT_HASH_SIZE = 32

# Cosignature timestamps are u64 on the wire but MUST NOT exceed 2^63 - 1; tree sizes get the
# same bound so that every checkpoint reader, signed or unsigned 64-bit, can hold them.
MAX_TIMESTAMP = 2**63 - 1
MAX_TREE_SIZE = 2**63 - 1

_SIGNATURE_PREFIX = "\u2014 "
_COSIGNATURE_HEADER = "cosignature/v1\n"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")
# Control characters (below U+0020) other than the newline that separates lines.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SUPPORTED_KEY_TYPES = {ED25519_KEY_TYPE: "Ed25519", COSIGNATURE_KEY_TYPE: "Ed25519 cosigner"}


# --- checks shared by every format --------------------------------------------------------


def _check_chars(text: str, what: str) -> None:
    """The character rules of the signed-note spec: valid UTF-8, no control characters."""
    if _CONTROL.search(text):
        raise InvalidInput(f"{what} contains a control character; only newlines are allowed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid UTF-8 (it holds a lone surrogate)") from None


def _check_name(name: str) -> None:
    """Key names are non-empty, with no Unicode space, no "+" and no control character."""
    if not name:
        raise InvalidInput("a key name cannot be empty")
    if any(ch.isspace() for ch in name) or "+" in name:
        raise InvalidInput(f"key name {name!r} must not contain spaces or '+'")
    _check_chars(name, f"key name {name!r}")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise InvalidInput("a note's text must end with a newline")
    _check_chars(text, "the note's text")


def _check_line(line: str, what: str) -> None:
    if not line:
        raise InvalidInput(f"{what} cannot be empty")
    if "\n" in line:
        raise InvalidInput(f"{what} must be a single line")
    _check_chars(line, what)


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise InvalidInput(
            f"cosignature timestamp {timestamp} is out of range: give POSIX seconds "
            f"from 0 to {MAX_TIMESTAMP}"
        )


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 with padding, and only its canonical spelling.

    Decoders tolerate non-zero padding bits, so one value has several spellings; accepting
    just one keeps a parsed note byte-identical to what was signed and formatted.
    """
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise InvalidInput(f"{what} is not valid base64") from None
    if _b64encode(data) != text:
        raise InvalidInput(f"{what} is not canonical base64")
    return data


def _raw_public_key(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _load_public_key(public_key: bytes) -> Ed25519PublicKey:
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise InvalidInput(
            f"an Ed25519 public key is {ED25519_PUBLIC_KEY_SIZE} bytes, not {len(public_key)}"
        )
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise InvalidInput("the bytes given are not an Ed25519 public key") from None


# --- key ids and verifier keys ------------------------------------------------------------


def note_key_id(name: str, public_key: bytes, key_type: int = ED25519_KEY_TYPE) -> bytes:
    """The 4-byte key id: ``SHA-256(name || 0x0A || key_type || public_key)[:4]``.

    ``key_type`` is :data:`ED25519_KEY_TYPE` for note signatures and
    :data:`COSIGNATURE_KEY_TYPE` for cosignatures, so one key gets a distinct id per use.
    """
    _check_name(name)
    if not 0 <= key_type <= 0xFF:
        raise InvalidInput(f"a signature type is one byte, not {key_type}")
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key)
    return digest.digest()[:KEY_ID_SIZE]


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key (vkey): who signs, with which algorithm and public key."""

    name: str
    key_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id the signer's lines carry."""
        return note_key_id(self.name, self.public_key, self.key_type)

    def __str__(self) -> str:
        return verifier_key(self.name, self.public_key, self.key_type)


def verifier_key(name: str, public_key_raw: bytes, key_type: int = ED25519_KEY_TYPE) -> str:
    """The vkey ``<name>+<hex key id>+<base64(key_type || public key)>`` of a signer."""
    _check_key_type(key_type, public_key_raw)
    key_id = note_key_id(name, public_key_raw, key_type)
    return f"{name}+{key_id.hex()}+{_b64encode(bytes([key_type]) + public_key_raw)}"


def parse_verifier_key(text: str) -> VerifierKey:
    """Read a vkey, checking its key id; Ed25519 (0x01) and cosigner (0x04) keys only."""
    # The name cannot hold a "+" but base64 can, so only the first two split the vkey.
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise InvalidInput(f"{text!r} is not a verifier key: expected <name>+<key id>+<base64 key>")
    name, key_id_hex, key_b64 = parts
    _check_name(name)
    if not _KEY_ID_HEX.fullmatch(key_id_hex):
        raise InvalidInput(
            f"the key id {key_id_hex!r} in a verifier key must be 8 lower-case hex digits"
        )
    material = _b64decode(key_b64, "the key in the verifier key")
    if not material:
        raise InvalidInput("the verifier key holds no key")
    key_type, public_key = material[0], material[1:]
    _check_key_type(key_type, public_key)
    if note_key_id(name, public_key, key_type).hex() != key_id_hex:
        raise InvalidInput(
            f"the verifier key for {name} is corrupt: its key id does not match its key"
        )
    return VerifierKey(name, key_type, public_key)


def _check_key_type(key_type: int, public_key: bytes) -> None:
    if key_type not in _SUPPORTED_KEY_TYPES:
        raise InvalidInput(
            f"signature type 0x{key_type:02x} is not supported: only Ed25519 (0x01) and "
            "Ed25519 cosigner (0x04) keys are"
        )
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise InvalidInput(
            f"an {_SUPPORTED_KEY_TYPES[key_type]} public key is {ED25519_PUBLIC_KEY_SIZE} "
            f"bytes, not {len(public_key)}"
        )


# --- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint: the log's origin, tree size and root hash, plus extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "a checkpoint's origin")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise InvalidInput(
                f"checkpoint tree size {self.size!r} is out of range: 0 to {MAX_TREE_SIZE}"
            )
        if len(self.root) != ROOT_HASH_SIZE:
            raise InvalidInput(
                f"a checkpoint's root hash is {ROOT_HASH_SIZE} bytes, not {len(self.root)}"
            )
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            _check_line(line, "a checkpoint extension line")

    def body(self) -> str:
        """The note text: origin, size and base64 root, each on its own line, then extensions."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a checkpoint's note text (without the blank line and signatures)."""
        if not body.endswith("\n"):
            raise InvalidInput("a checkpoint must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise InvalidInput(
                "a checkpoint needs at least three lines: origin, tree size and root hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise InvalidInput(
                f"checkpoint tree size {size_text!r} must be a decimal number without a sign "
                "or leading zeros"
            )
        return cls(
            origin=origin,
            size=int(size_text),
            root=_b64decode(root_text, "the checkpoint's root hash"),
            extensions=tuple(extensions),
        )


# --- signatures and notes ------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the signer's name, key id, and the bytes after the key id.

    For a cosignature ``signature`` holds the 8-byte timestamp followed by the Ed25519
    signature.
    """

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.key_id) != KEY_ID_SIZE:
            raise InvalidInput(f"a key id is {KEY_ID_SIZE} bytes, not {len(self.key_id)}")
        if not self.signature:
            raise InvalidInput(f"the signature by {self.name} is empty")

    def line(self) -> str:
        """The signature line, newline included."""
        return f"{_SIGNATURE_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        """Read one signature line (without its newline)."""
        if not line.startswith(_SIGNATURE_PREFIX):
            raise InvalidInput(
                f"signature line {line!r} must start with an em dash (U+2014) and a space"
            )
        name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        if not space:
            raise InvalidInput(f"signature line {line!r} has no space after the key name")
        _check_name(name)
        raw = _b64decode(encoded, f"the signature by {name}")
        if len(raw) <= KEY_ID_SIZE:
            raise InvalidInput(
                f"the signature by {name} is {len(raw)} bytes: too short to hold a key id "
                "and a signature"
            )
        return cls(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


@dataclass(frozen=True)
class SignedNote:
    """A note text and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text)
        object.__setattr__(self, "signatures", tuple(self.signatures))
        if len(self.signatures) > MAX_SIGNATURES:
            raise InvalidInput(
                f"a note carries at most {MAX_SIGNATURES} signatures, not {len(self.signatures)}"
            )

    def format(self) -> str:
        """The note as text: the text, a blank line, then one line per signature."""
        if not self.signatures:
            raise InvalidInput("a note needs at least one signature before it is written out")
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)

    @classmethod
    def parse(cls, note: str) -> SignedNote:
        """Read a signed note; raises :class:`InvalidInput` if it is malformed.

        The text may hold blank lines of its own: the signatures start after the last one.
        """
        _check_chars(note, "the note")
        split = note.rfind("\n\n")
        if split < 0:
            raise InvalidInput(
                "a signed note needs a blank line between its text and its signatures"
            )
        text, block = note[: split + 1], note[split + 2 :]
        if not block:
            raise InvalidInput("the note has no signature lines after its blank line")
        if not block.endswith("\n"):
            raise InvalidInput("the note's last signature line must end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise InvalidInput(
                f"a note carries at most {MAX_SIGNATURES} signatures, not {len(lines)}"
            )
        return cls(text, tuple(NoteSignature.parse_line(line) for line in lines))

    def signatures_by(self, name: str, key_id: bytes) -> tuple[NoteSignature, ...]:
        """The signatures whose line names ``name`` and ``key_id``."""
        return tuple(s for s in self.signatures if s.name == name and s.key_id == key_id)


def add_signatures(note: SignedNote, *signatures: NoteSignature) -> SignedNote:
    """``note`` with ``signatures`` added after its own.

    One line per (name, key id): a new signature replaces an earlier one by the same key, as
    when a witness cosigns again with a newer timestamp.
    """
    latest: dict[tuple[str, bytes], NoteSignature] = {}
    for sig in signatures:
        latest.pop((sig.name, sig.key_id), None)
        latest[(sig.name, sig.key_id)] = sig
    kept = tuple(s for s in note.signatures if (s.name, s.key_id) not in latest)
    return SignedNote(note.text, kept + tuple(latest.values()))


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> NoteSignature:
    """An Ed25519 note signature by ``name`` over ``text`` (which ends with a newline)."""
    _check_text(text)
    key_id = note_key_id(name, _raw_public_key(private_key), ED25519_KEY_TYPE)
    return NoteSignature(name, key_id, private_key.sign(text.encode("utf-8")))


def verify_note_signature(note: SignedNote, name: str, public_key: bytes) -> None:
    """Check that ``name`` with ``public_key`` signed ``note``'s text.

    Every line carrying that name and key id must verify, since a bad signature from a known
    key means the note was tampered with. Lines of other keys are ignored.
    """
    key = _load_public_key(public_key)
    key_id = note_key_id(name, public_key, ED25519_KEY_TYPE)
    found = note.signatures_by(name, key_id)
    if not found:
        raise VerificationFailed(
            f"the note is not signed by {name} (key id {key_id.hex()}): no signature line "
            "carries that name and key; check the signer's public key"
        )
    message = note.text.encode("utf-8")
    for sig in found:
        if not _ed25519_verifies(key, sig.signature, message):
            raise VerificationFailed(
                f"the signature by {name} (key id {key_id.hex()}) does not verify: the note "
                "was altered after it was signed"
            )


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: the cosignature/v1 header, the time line, the checkpoint."""
    _check_timestamp(timestamp)
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{checkpoint_body}".encode()


def cosign(
    checkpoint_body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> NoteSignature:
    """A witness's cosignature/v1 over a checkpoint's text, at POSIX time ``timestamp``."""
    Checkpoint.parse(checkpoint_body)
    message = cosignature_message(checkpoint_body, timestamp)
    key_id = note_key_id(name, _raw_public_key(private_key), COSIGNATURE_KEY_TYPE)
    payload = timestamp.to_bytes(TIMESTAMP_SIZE, "big") + private_key.sign(message)
    return NoteSignature(name, key_id, payload)


def verify_cosignature(note: SignedNote, name: str, public_key: bytes) -> int:
    """Check the cosignature of witness ``name`` on a checkpoint note; return its timestamp.

    Every cosignature line of that witness must verify; when there are several, the latest
    timestamp is returned.
    """
    key = _load_public_key(public_key)
    key_id = note_key_id(name, public_key, COSIGNATURE_KEY_TYPE)
    found = note.signatures_by(name, key_id)
    if not found:
        raise VerificationFailed(
            f"the checkpoint is not cosigned by {name} (key id {key_id.hex()}): no signature "
            "line carries that name and cosigner key; check the witness's public key"
        )
    try:
        Checkpoint.parse(note.text)
    except InvalidInput as error:
        raise VerificationFailed(
            f"the note cosigned by {name} is not a checkpoint: {error}"
        ) from None
    latest = 0
    for sig in found:
        if len(sig.signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            raise VerificationFailed(
                f"the cosignature by {name} is {len(sig.signature)} bytes after its key id, "
                f"not {TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE}: it was cut or altered"
            )
        timestamp = int.from_bytes(sig.signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            raise VerificationFailed(
                f"the cosignature by {name} has timestamp {timestamp}, beyond 2^63 - 1"
            )
        message = cosignature_message(note.text, timestamp)
        if not _ed25519_verifies(key, sig.signature[TIMESTAMP_SIZE:], message):
            raise VerificationFailed(
                f"the cosignature by {name} (key id {key_id.hex()}) does not verify: the "
                "checkpoint or the cosignature's timestamp was altered"
            )
        latest = max(latest, timestamp)
    return latest


def _ed25519_verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
