"""The key folder: a partner's private keys, encrypted, never overwritten, never in the ledger."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from ledger.errors import InvalidInput, KeyFileError, NotFound
from ledger.keys import verify_signature
from ledger.keystore import KeyStore, check_key_name
from tests.keys import fixed_key

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    """An empty key folder (not yet created on disk)."""
    return KeyStore(tmp_path / "keys")


def test_a_new_key_is_kept_encrypted_and_opens_with_its_passphrase(store: KeyStore) -> None:
    info = store.create("salford-pct", PASSPHRASE)
    pem = (store.folder / "salford-pct.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert stat.S_IMODE((store.folder / "salford-pct.pem").stat().st_mode) == 0o600
    assert (store.folder / "salford-pct.pub").read_text() == info.public_key.hex() + "\n"
    signer = store.open("salford-pct", PASSPHRASE)
    assert signer.public_key == info.public_key
    assert signer.key_id == info.key_id
    verify_signature(info.public_key, signer.sign(b"minutes of the JCG"), b"minutes of the JCG")


def test_a_key_can_be_stored_from_a_given_seed(store: KeyStore) -> None:
    info = store.create("salford-pct", PASSPHRASE, fixed_key("salford-pct"))
    assert info.public_key == fixed_key("salford-pct").public_key
    assert store.open("salford-pct", PASSPHRASE).key_id == fixed_key("salford-pct").key_id


def test_openssl_reads_the_key_file_with_the_passphrase(store: KeyStore) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    info = store.create("salford-pct", PASSPHRASE)
    done = subprocess.run(
        ["openssl", "pkey", "-in", str(store.folder / "salford-pct.pem"), "-passin",
         f"pass:{PASSPHRASE.decode()}", "-pubout", "-outform", "DER"],
        capture_output=True, timeout=30, check=True)
    assert done.stdout[-32:] == info.public_key


def test_keys_are_listed_by_name_and_found_by_key_id(store: KeyStore) -> None:
    assert store.list() == []
    council = store.create("salford-council", PASSPHRASE)
    pct = store.create("salford-pct", PASSPHRASE)
    assert [(i.name, i.key_id) for i in store.list()] == [
        ("salford-council", council.key_id), ("salford-pct", pct.key_id)]
    assert store.find(pct.key_id) == pct
    assert store.find(fixed_key("nobody").key_id) is None
    assert store.exists("salford-pct")
    assert not store.exists("gm-probation")


def test_a_wrong_passphrase_is_named_as_such(store: KeyStore) -> None:
    store.create("salford-pct", PASSPHRASE)
    with pytest.raises(KeyFileError, match="wrong passphrase for key 'salford-pct'"):
        store.open("salford-pct", b"Tr0ub4dor&3")


def test_an_empty_passphrase_neither_makes_nor_opens_a_key(store: KeyStore) -> None:
    with pytest.raises(InvalidInput, match="non-empty passphrase"):
        store.create("salford-pct", b"")
    assert not store.folder.exists()
    store.create("salford-pct", PASSPHRASE)
    with pytest.raises(KeyFileError, match="is encrypted: set LEDGER_PASSPHRASE"):
        store.open("salford-pct", b"")


def test_a_missing_key_says_how_to_make_one(store: KeyStore) -> None:
    with pytest.raises(NotFound, match="create it with 'ledger keys new salford-pct'"):
        store.open("salford-pct", PASSPHRASE)
    with pytest.raises(NotFound, match="no key named 'salford-pct'"):
        store.public("salford-pct")


@pytest.mark.parametrize("damage", [
    pytest.param(b"", id="empty"),
    pytest.param(b"not a key at all\n", id="not-pem"),
    pytest.param(lambda pem: pem[:100] + b"\n-----END ENCRYPTED PRIVATE KEY-----\n",
                 id="truncated"),
    pytest.param(lambda pem: pem.replace(pem[40:48], b"AAAAAAAA"), id="scribbled-header"),
])
def test_a_corrupt_key_file_is_named_as_such(store: KeyStore, damage: object) -> None:
    store.create("salford-pct", PASSPHRASE)
    path = store.folder / "salford-pct.pem"
    pem = path.read_bytes()
    path.write_bytes(damage(pem) if callable(damage) else damage)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError, match=r"salford-pct\.pem is corrupt"):
        store.open("salford-pct", PASSPHRASE)


def test_a_key_file_that_was_never_encrypted_is_refused_saying_so(store: KeyStore) -> None:
    store.folder.mkdir()
    plain = fixed_key("salford-pct").private_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (store.folder / "salford-pct.pem").write_bytes(plain)
    (store.folder / "salford-pct.pub").write_text(fixed_key("salford-pct").public_key.hex())
    with pytest.raises(KeyFileError, match="is not encrypted"):
        store.open("salford-pct", PASSPHRASE)


def test_a_key_of_another_kind_is_refused(store: KeyStore) -> None:
    store.folder.mkdir()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(PASSPHRASE))
    (store.folder / "salford-pct.pem").write_bytes(other)
    with pytest.raises(KeyFileError, match="does not hold an Ed25519 key"):
        store.open("salford-pct", PASSPHRASE)


def test_a_replaced_public_half_is_caught_when_the_key_is_opened(store: KeyStore) -> None:
    store.create("salford-pct", PASSPHRASE)
    # Someone swaps in the council's public key so that the PCT's key would be "found" for it.
    (store.folder / "salford-pct.pub").write_text(fixed_key("salford-council").public_key.hex())
    assert store.public("salford-pct").public_key == fixed_key("salford-council").public_key
    with pytest.raises(KeyFileError, match="the public half was replaced"):
        store.open("salford-pct", PASSPHRASE)


@pytest.mark.parametrize("content", ["", "zz" * 32, "ab" * 31, "AB" * 32])
def test_a_corrupt_public_half_is_named_as_such(store: KeyStore, content: str) -> None:
    store.create("salford-pct", PASSPHRASE)
    (store.folder / "salford-pct.pub").write_text(content)
    with pytest.raises(KeyFileError, match=r"salford-pct\.pub is corrupt"):
        store.public("salford-pct")


def test_a_missing_public_half_is_named_as_such(store: KeyStore) -> None:
    store.create("salford-pct", PASSPHRASE)
    (store.folder / "salford-pct.pub").unlink()
    with pytest.raises(KeyFileError, match="public half of key 'salford-pct' is missing"):
        store.public("salford-pct")


def test_a_key_is_never_overwritten(store: KeyStore) -> None:
    first = store.create("salford-pct", PASSPHRASE)
    pem = (store.folder / "salford-pct.pem").read_bytes()
    with pytest.raises(InvalidInput, match="a key named 'salford-pct' already exists"):
        store.create("salford-pct", PASSPHRASE)
    with pytest.raises(InvalidInput, match="already exists"):
        store.create("salford-pct", b"another passphrase", fixed_key("salford-pct"))
    assert (store.folder / "salford-pct.pem").read_bytes() == pem
    assert store.public("salford-pct") == first
    assert store.open("salford-pct", PASSPHRASE).public_key == first.public_key


@pytest.mark.parametrize("name", [
    "../salford-pct", "salford/pct", "Salford-PCT", "", ".hidden", "-pct", "salford pct",
    "x" * 65,
])
def test_key_names_that_could_escape_or_confuse_the_folder_are_refused(
        store: KeyStore, name: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid key name"):
        check_key_name(name)
    with pytest.raises(InvalidInput, match="not a valid key name"):
        store.create(name, PASSPHRASE)
    assert not store.folder.exists()


@pytest.mark.parametrize("name", ["salford-pct", "operator", "pct.2004", "pct_ce", "0", "x" * 64])
def test_key_names(name: str) -> None:
    assert check_key_name(name) == name
