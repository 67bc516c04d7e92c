"""The key folder: a partner's private keys, encrypted, never overwritten, never in the ledger.

Whoever can write a partner's key folder, without its passphrase, may replace any file in it: no
public key goes into the ledger from a ``.pub`` alone, and a stolen ``.pem`` costs real work per
guessed passphrase (scrypt).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from typer.testing import CliRunner, Result

import commands.common
from commands.app import app
from commands.common import Common
from ledger.errors import InvalidInput, KeyFileError, NotFound
from ledger.keys import raw_public_key, verify_signature
from ledger.keystore import DEFAULT_COST, KeyStore, check_key_name
from tests.keys import TEST_COST, fixed_key, store_fixed_key
from tests.tamper import MALLORY, PCT, SALFORD, Backdoor, Cli

PASSPHRASE = b"correct horse battery staple"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    """An empty key folder (not yet created on disk)."""
    return KeyStore(tmp_path / "keys")


def test_a_new_key_is_kept_encrypted_and_opens_with_its_passphrase(store: KeyStore) -> None:
    info = store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    pem = (store.folder / "salford-pct.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert stat.S_IMODE((store.folder / "salford-pct.pem").stat().st_mode) == 0o600
    assert (store.folder / "salford-pct.pub").read_text() == info.public_key.hex() + "\n"
    signer = store.open("salford-pct", PASSPHRASE)
    assert signer.public_key == info.public_key
    assert signer.key_id == info.key_id
    verify_signature(info.public_key, signer.sign(b"minutes of the JCG"), b"minutes of the JCG")


def test_a_key_can_be_stored_from_a_given_seed(store: KeyStore) -> None:
    info = store_fixed_key(store, "salford-pct", PASSPHRASE)
    assert info.public_key == fixed_key("salford-pct").public_key
    assert store.open("salford-pct", PASSPHRASE).key_id == fixed_key("salford-pct").key_id


@needs_openssl
@pytest.mark.parametrize("cost", [TEST_COST, 2**14])
def test_openssl_pkey_reads_the_key_file_with_the_passphrase(store: KeyStore, cost: int
                                                             ) -> None:
    # 2**14 is the most that openssl 3's own PBES2 code allows itself (32 MiB of scrypt memory);
    # a key at the default cost is opened by openssl in steps, in the test after this one.
    info = store.create("salford-pct", PASSPHRASE, cost=cost)
    done = subprocess.run(
        ["openssl", "pkey", "-in", str(store.folder / "salford-pct.pem"), "-passin",
         f"pass:{PASSPHRASE.decode()}", "-pubout", "-outform", "DER"],
        capture_output=True, timeout=30, check=True)
    assert done.stdout[-32:] == info.public_key


def test_keys_are_listed_by_name_and_found_by_key_id(store: KeyStore) -> None:
    assert store.list() == []
    council = store.create("salford-council", PASSPHRASE, cost=TEST_COST)
    pct = store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    assert [(i.name, i.key_id) for i in store.list()] == [
        ("salford-council", council.key_id), ("salford-pct", pct.key_id)]
    assert store.find(pct.key_id) == pct
    assert store.find(fixed_key("nobody").key_id) is None
    assert store.exists("salford-pct")
    assert not store.exists("gm-probation")


def test_a_wrong_passphrase_is_named_as_such(store: KeyStore) -> None:
    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    with pytest.raises(KeyFileError, match="wrong passphrase for key 'salford-pct'"):
        store.open("salford-pct", b"Tr0ub4dor&3")


def test_an_empty_passphrase_neither_makes_nor_opens_a_key(store: KeyStore) -> None:
    with pytest.raises(InvalidInput, match="non-empty passphrase"):
        store.create("salford-pct", b"")
    assert not store.folder.exists()
    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
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
    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
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
    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    # Someone swaps in the council's public key so that the PCT's key would be "found" for it.
    (store.folder / "salford-pct.pub").write_text(fixed_key("salford-council").public_key.hex())
    assert store.public("salford-pct").public_key == fixed_key("salford-council").public_key
    with pytest.raises(KeyFileError, match="the public half was replaced"):
        store.open("salford-pct", PASSPHRASE)


@pytest.mark.parametrize("content", ["", "zz" * 32, "ab" * 31, "AB" * 32])
def test_a_corrupt_public_half_is_named_as_such(store: KeyStore, content: str) -> None:
    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    (store.folder / "salford-pct.pub").write_text(content)
    with pytest.raises(KeyFileError, match=r"salford-pct\.pub is corrupt"):
        store.public("salford-pct")


def test_a_missing_public_half_is_named_as_such(store: KeyStore) -> None:
    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    (store.folder / "salford-pct.pub").unlink()
    with pytest.raises(KeyFileError, match="public half of key 'salford-pct' is missing"):
        store.public("salford-pct")


def test_a_key_is_never_overwritten(store: KeyStore) -> None:
    first = store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    pem = (store.folder / "salford-pct.pem").read_bytes()
    with pytest.raises(InvalidInput, match="a key named 'salford-pct' already exists"):
        store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    with pytest.raises(InvalidInput, match="already exists"):
        store_fixed_key(store, "salford-pct", b"another passphrase")
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
        store.create(name, PASSPHRASE, cost=TEST_COST)
    assert not store.folder.exists()


@pytest.mark.parametrize("name", ["salford-pct", "operator", "pct.2004", "pct_ce", "0", "x" * 64])
def test_key_names(name: str) -> None:
    assert check_key_name(name) == name


# --- the file a new key is written to ----------------------------------------------------------

runner = CliRunner()
NEW_PASSPHRASE = "board-secretary-only"


def ledger(tmp_path: Path, *args: str, db: str = "ledger.db", **env: str | None) -> Result:
    """``ledger ARGS`` in-process on ``tmp_path``'s ledger (or ``db``) and key folder."""
    return runner.invoke(app, [*args, "--ledger", str(tmp_path / db)], env={
        "LEDGER_KEYS": str(tmp_path / "keys"), "LEDGER_PASSPHRASE": NEW_PASSPHRASE,
        "LEDGER_PASSPHRASE_FILE": None, "LEDGER_URL": None, **env})


def one_error_line(result: Result) -> str:
    """A refusal: exit status 1 and one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), f"not handled: {result.exception!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def asn1(path: Path) -> list[tuple[str, str]]:
    """The primitive values of a PEM file as ``openssl asn1parse`` reads them: (type, value)."""
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, "asn1parse", "-in", str(path)], capture_output=True,
                          text=True, timeout=30, check=True)
    found = re.findall(r"prim: (OBJECT|INTEGER|OCTET STRING)\s*(?:\[HEX DUMP\])?:(\S*)",
                       done.stdout)
    return [(kind, value) for kind, value in found]


@needs_openssl
def test_keys_new_writes_pbes2_with_scrypt_at_the_default_cost(tmp_path: Path) -> None:
    made = ledger(tmp_path, "keys", "new", PCT, "--json")
    assert made.exit_code == 0, made.output
    public_key = bytes.fromhex(json_of(made)["public_key"])
    path = tmp_path / "keys" / f"{PCT}.pem"
    values = asn1(path)
    assert [v for kind, v in values if kind == "OBJECT"] == ["PBES2", "scrypt", "aes-256-cbc"]
    cost, block, parallel, length = (int(v, 16) for kind, v in values if kind == "INTEGER")
    assert DEFAULT_COST == 2**14
    assert (cost, block, parallel, length) == (2**14, 8, 5, 32)
    salt, iv, _ = (bytes.fromhex(v) for kind, v in values if kind == "OCTET STRING")
    assert (len(salt), len(iv)) == (16, 16)

    # cryptography opens it...
    key = load_pem_private_key(path.read_bytes(), NEW_PASSPHRASE.encode())
    assert isinstance(key, Ed25519PrivateKey)
    assert raw_public_key(key) == public_key
    # ...and so does openssl, with nothing but the passphrase.
    public = subprocess.run(
        [OPENSSL, "pkey", "-in", str(path), "-passin", f"pass:{NEW_PASSPHRASE}", "-pubout",
         "-outform", "DER"], capture_output=True, timeout=30, check=True).stdout
    assert public[-32:] == public_key


def json_of(result: Result) -> Any:
    """The JSON document a ``--json`` command printed."""
    import json  # noqa: PLC0415

    return json.loads(result.stdout)


def test_a_key_file_written_before_scrypt_still_opens(store: KeyStore) -> None:
    # PBES2 with PBKDF2, as BestAvailableEncryption wrote every key file before, under a
    # passphrase shorter than a new key may have: the rule is for new keys only.
    store.folder.mkdir()
    old = fixed_key(PCT).private_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"salford1"))
    (store.folder / f"{PCT}.pem").write_bytes(old)
    (store.folder / f"{PCT}.pub").write_text(fixed_key(PCT).public_key.hex() + "\n")
    if OPENSSL is not None:
        assert ("OBJECT", "PBKDF2") in asn1(store.folder / f"{PCT}.pem")
    assert store.open(PCT, b"salford1").key_id == fixed_key(PCT).key_id
    with pytest.raises(KeyFileError, match=f"wrong passphrase for key '{PCT}'"):
        store.open(PCT, b"salford2")


def test_a_key_file_asking_for_far_more_scrypt_work_is_refused_before_it_is_tried(
        store: KeyStore) -> None:
    store.create(PCT, PASSPHRASE, cost=TEST_COST)
    path = store.folder / f"{PCT}.pem"
    # The same file with N = 2**14 and p = 127 in place of N = 2**10 and p = 5: 25 times the
    # work of a new key. A replaced key file must not make opening it take minutes (or, with a
    # large N, the machine's memory).
    params = b"\x02\x02\x04\x00\x02\x01\x08\x02\x01\x05"  # INTEGER N, r, p
    der = load_pem_body(path.read_bytes())
    assert der.count(params) == 1
    path.write_bytes(pem_of(der.replace(params, b"\x02\x02\x40\x00\x02\x01\x08\x02\x01\x7f")))
    with pytest.raises(KeyFileError, match=r"\(N=16384, r=8, p=127\) ask for more work"):
        store.open(PCT, PASSPHRASE)


def test_a_key_file_asking_for_millions_of_pbkdf2_iterations_is_refused_before_it_is_tried(
        store: KeyStore) -> None:
    # PBES2 with PBKDF2 (HMAC-SHA256) and AES-256-CBC at 20 million iterations: ten times the
    # most a key file from before scrypt may ask for (they were written with 2,048).
    def der(tag: int, *parts: bytes) -> bytes:
        body = b"".join(parts)
        size = len(body)
        length = bytes([size]) if size < 0x80 else bytes([0x81, size])
        return bytes([tag]) + length + body

    oid = bytes.fromhex
    pbkdf2 = der(0x30, oid("06092a864886f70d01050c"), der(
        0x30, der(0x04, b"s" * 16), der(0x02, (20_000_000).to_bytes(4, "big")),
        der(0x30, oid("06082a864886f70d0209"), b"\x05\x00")))
    aes = der(0x30, oid("060960864801650304012a"), der(0x04, b"i" * 16))
    algorithm = der(0x30, oid("06092a864886f70d01050d"), der(0x30, pbkdf2, aes))
    store.folder.mkdir()
    (store.folder / f"{PCT}.pem").write_bytes(pem_of(der(0x30, algorithm, der(0x04, b"c" * 48))))
    with pytest.raises(KeyFileError, match=r"its PBKDF2 parameters \(20000000 iterations\) ask"):
        store.open(PCT, PASSPHRASE)


def load_pem_body(pem: bytes) -> bytes:
    """The DER inside one PEM block."""
    import base64  # noqa: PLC0415

    return base64.b64decode(b"".join(pem.splitlines()[1:-1]))


def pem_of(der: bytes) -> bytes:
    """An ENCRYPTED PRIVATE KEY PEM block around ``der``."""
    import base64  # noqa: PLC0415

    text = base64.b64encode(der)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return b"\n".join([b"-----BEGIN ENCRYPTED PRIVATE KEY-----", *lines,
                       b"-----END ENCRYPTED PRIVATE KEY-----", b""])


# --- passphrases --------------------------------------------------------------------------------


def test_a_new_key_needs_a_passphrase_of_twelve_characters(store: KeyStore) -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        store.create(PCT, b"salford-pct", cost=TEST_COST)  # 11
    assert not store.folder.exists()
    assert store.create(PCT, b"salford-pct!", cost=TEST_COST).name == PCT  # 12


def test_keys_new_and_init_refuse_a_short_passphrase_in_one_line(tmp_path: Path) -> None:
    line = one_error_line(ledger(tmp_path, "keys", "new", PCT, LEDGER_PASSPHRASE="salford1"))
    assert line == "error: the passphrase of a new key must have at least 12 characters"
    line = one_error_line(ledger(tmp_path, "init", LEDGER_PASSPHRASE="salford1"))
    assert line == "error: the passphrase of a new key must have at least 12 characters"
    assert not (tmp_path / "keys").exists()
    assert Backdoor(str(tmp_path / "ledger.db")).event_count() == 0


def test_a_passphrase_file_gives_the_passphrase_in_place_of_the_environment(tmp_path: Path
                                                                             ) -> None:
    cli = Cli(str(tmp_path / "ledger.db"), tmp_path)
    cli.make_keys()
    secret = tmp_path / "passphrase.txt"
    # The first line is the passphrase; its newline and any later line are not.
    secret.write_text("correct horse battery staple\nnot this line\n")
    made = ledger(tmp_path, "init", "--passphrase-file", str(secret), "--json",
                  LEDGER_KEYS=str(cli.keys), LEDGER_PASSPHRASE=None)
    assert made.exit_code == 0, made.output
    assert json_of(made)["operator_key_id"] == fixed_key("operator").key_id
    # LEDGER_PASSPHRASE_FILE does the same, and is used rather than LEDGER_PASSPHRASE.
    again = ledger(tmp_path, "init", "--json", db="other.db",
                   LEDGER_KEYS=str(cli.keys), LEDGER_PASSPHRASE="not the passphrase",
                   LEDGER_PASSPHRASE_FILE=str(secret))
    assert again.exit_code == 0, again.output
    secret.write_text("not the passphrase\n")
    line = one_error_line(ledger(tmp_path, "init", "--passphrase-file", str(secret),
                                 db="third.db", LEDGER_KEYS=str(cli.keys)))
    assert line == ("error: wrong passphrase for key 'operator'; check LEDGER_PASSPHRASE or "
                    "--passphrase-file")


def test_a_missing_passphrase_file_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    cli = Cli(str(tmp_path / "ledger.db"), tmp_path)
    cli.make_keys()
    missing = tmp_path / "nowhere" / "passphrase.txt"
    line = one_error_line(ledger(tmp_path, "init", "--passphrase-file", str(missing),
                                 LEDGER_KEYS=str(cli.keys)))
    assert line == (f"error: cannot read the passphrase file {missing}: "
                    f"No such file or directory")
    assert Backdoor(cli.url).event_count() == 0


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_the_terminal_prompt_names_the_key_it_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, **options: Any) -> str:
        asked.append((text, options["confirmation_prompt"]))
        return "correct horse battery staple"

    monkeypatch.delenv("LEDGER_PASSPHRASE", raising=False)
    monkeypatch.setattr(commands.common.sys, "stdin", _Terminal())
    monkeypatch.setattr(commands.common.typer, "prompt", prompt)
    assert Common().passphrase(PCT) == PASSPHRASE
    assert Common().passphrase("salford-pct-ce", new=True) == PASSPHRASE
    assert asked == [(f"Passphrase for key {PCT}", False),
                     ("New passphrase for key salford-pct-ce (at least 12 characters)", True)]
    assert sys.stdin.isatty() is True


# --- a swapped public half never reaches the ledger ---------------------------------------------

HOSPICE = "st-anns-hospice"


def swap_public_half(folder: Path, name: str) -> bytes:
    """Put mallory's public key in NAME.pub, as anyone who can write the folder could; return
    what was there."""
    path = folder / f"{name}.pub"
    before = path.read_bytes()
    path.write_text(fixed_key(MALLORY).public_key.hex() + "\n")
    return before


def keys_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def salford(tmp_path: Path) -> Cli:
    """The Salford agreement, signed by its three partners, each key in one folder."""
    cli = Cli(str(tmp_path / "ledger.db"), tmp_path)
    cli.salford()
    return cli


def test_init_refuses_an_operator_key_whose_public_half_was_swapped(tmp_path: Path) -> None:
    cli = Cli(str(tmp_path / "ledger.db"), tmp_path)
    cli.make_keys()
    genuine = swap_public_half(cli.keys, "operator")
    refused = cli.run("init", "--origin", "ledger.test.example/keys", code=1)
    assert one_error_line(refused).endswith(
        "operator.pem: the public half was replaced; restore it")
    assert Backdoor(cli.url).event_count() == 0
    (cli.keys / "operator.pub").write_bytes(genuine)
    made = cli.json("init", "--origin", "ledger.test.example/keys")
    assert made["operator_key_id"] == fixed_key("operator").key_id


def test_appoint_refuses_a_new_key_whose_public_half_was_swapped(salford: Cli) -> None:
    store_fixed_key(KeyStore(salford.keys), "salford-pct-ce", PASSPHRASE)
    genuine = swap_public_half(salford.keys, "salford-pct-ce")
    events, keys = Backdoor(salford.url).event_count(), keys_of(salford.keys)
    appoint = ("appoint", SALFORD, "--as", PCT, "--signatory", "Mike Farrar",
               "--designation", "Chief Executive", "--key", "salford-pct-ce")
    line = one_error_line(salford.run(*appoint, code=1))
    assert "salford-pct-ce.pub does not match" in line
    assert "the public half was replaced" in line
    assert Backdoor(salford.url).event_count() == events
    assert keys_of(salford.keys) == keys
    # With the genuine public half back, the key appointed is the one in the private half.
    (salford.keys / "salford-pct-ce.pub").write_bytes(genuine)
    salford.run(*appoint)
    body = Backdoor(salford.url).rows()[-1].entry["statement"]["body"]
    assert body["public_key"] == fixed_key("salford-pct-ce").public_key.hex()


def _vary_adding_the_hospice(partner_key: str) -> tuple[str, ...]:
    return ("vary", SALFORD, "--as", PCT, "--id", "v1", "--reason", "The hospice joins the pool",
            "--add-partner", HOSPICE, "--partner-name", "St Ann's Hospice",
            "--partner-signatory", "Eileen Fairhurst", "--partner-designation",
            "Chief Executive", "--partner-key", partner_key)


def _added_key(cli: Cli) -> str:
    body = Backdoor(cli.url).rows()[-1].entry["statement"]["body"]
    added: str = body["changes"]["add_partners"][0]["public_key"]
    return added


def test_vary_refuses_a_partner_key_name_whose_public_half_was_swapped(salford: Cli) -> None:
    store_fixed_key(KeyStore(salford.keys), HOSPICE, PASSPHRASE)
    genuine = swap_public_half(salford.keys, HOSPICE)
    events = Backdoor(salford.url).event_count()
    line = one_error_line(salford.run(*_vary_adding_the_hospice(HOSPICE), code=1))
    assert f"{HOSPICE}.pub does not match" in line
    assert Backdoor(salford.url).event_count() == events
    (salford.keys / f"{HOSPICE}.pub").write_bytes(genuine)
    salford.run(*_vary_adding_the_hospice(HOSPICE))
    assert _added_key(salford) == fixed_key(HOSPICE).public_key.hex()


def test_vary_refuses_a_partner_key_name_with_only_a_public_half(salford: Cli) -> None:
    # The folder holds the hospice's .pub alone (mallory's, as it happens): not to be trusted.
    (salford.keys / f"{HOSPICE}.pub").write_text(fixed_key(MALLORY).public_key.hex() + "\n")
    events = Backdoor(salford.url).event_count()
    line = one_error_line(salford.run(*_vary_adding_the_hospice(HOSPICE), code=1))
    assert line == (f"error: --partner-key {HOSPICE}: the key folder holds only the public half "
                    f"of that key, which is not trusted; give the new partner's public key as "
                    f"64 hex digits instead")
    assert Backdoor(salford.url).event_count() == events
    # The 64 hex digits the hospice sent are taken as they are.
    salford.run(*_vary_adding_the_hospice(fixed_key(HOSPICE).public_key.hex()))
    assert _added_key(salford) == fixed_key(HOSPICE).public_key.hex()


# --- opening a key beside the rest of the command -------------------------------------------


def _private_bytes(signer: Any) -> bytes:
    return bytes(signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                  NoEncryption()))


def test_a_key_opened_in_the_background_is_the_key_the_loader_opens(store: KeyStore) -> None:
    from ledger import keystore  # noqa: PLC0415

    info = store.create("p", PASSPHRASE, cost=TEST_COST)
    data = (store.folder / "p.pem").read_bytes()
    sealed = keystore._Sealed.read(data)
    assert sealed is not None
    # The reference: cryptography's loader of PBES2 key files.
    loaded = load_pem_private_key(data, PASSPHRASE)
    opened = sealed.open(PASSPHRASE)
    assert opened is not None
    assert _private_bytes(opened) == loaded.private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                          NoEncryption())
    assert sealed.open(b"not the passphrase at all") is None
    # This key's opening, whatever other tests of this process left begun.
    ident = (data, hashlib.sha256(PASSPHRASE).digest())
    store.prepare("p", PASSPHRASE)
    assert ident in keystore._OPENING, "nothing was begun"
    signer = store.open("p", PASSPHRASE)
    assert signer.public_key == info.public_key
    assert ident not in keystore._OPENING


def test_a_key_begun_with_a_wrong_passphrase_is_refused_as_ever(store: KeyStore) -> None:
    store.create("p", PASSPHRASE, cost=TEST_COST)
    store.prepare("p", b"not the passphrase at all")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        store.open("p", b"not the passphrase at all")


def test_a_key_file_replaced_after_its_opening_began_is_opened_as_it_now_is(
        store: KeyStore) -> None:
    store.create("p", PASSPHRASE, cost=TEST_COST)
    store.prepare("p", PASSPHRASE)
    replaced = store.folder / "q"
    replaced.mkdir()
    other = KeyStore(replaced).create("p", PASSPHRASE, cost=TEST_COST)
    (store.folder / "p.pem").write_bytes((replaced / "p.pem").read_bytes())
    (store.folder / "p.pub").write_bytes((replaced / "p.pub").read_bytes())
    assert store.open("p", PASSPHRASE).public_key == other.public_key


def test_only_key_files_of_the_ledgers_own_form_are_opened_in_the_background(
        store: KeyStore) -> None:
    from ledger import keystore  # noqa: PLC0415

    # A key file written before scrypt (PBES2 with PBKDF2), as in the test above.
    store.folder.mkdir(parents=True)
    (store.folder / f"{PCT}.pem").write_bytes(fixed_key(PCT).private_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"salford1")))
    store.prepare(PCT, b"salford1")
    store.prepare("missing", PASSPHRASE)
    store.prepare("../escape", PASSPHRASE)
    pem = (store.folder / f"{PCT}.pem").read_bytes()
    assert not any(data == pem for data, _ in keystore._OPENING)
    assert store.open(PCT, b"salford1").key_id == fixed_key(PCT).key_id


def test_an_act_begins_opening_its_likely_key_before_the_command_line_loads(
        store: KeyStore) -> None:
    from commands.entry import begin_opening_key  # noqa: PLC0415
    from ledger import keystore  # noqa: PLC0415

    store.create("salford-pct", PASSPHRASE, cost=TEST_COST)
    store.create("spare", PASSPHRASE, cost=TEST_COST)
    env = {"LEDGER_KEYS": str(store.folder), "LEDGER_PASSPHRASE": PASSPHRASE.decode()}

    def begun(name: str) -> bool:
        pem = (store.folder / f"{name}.pem").read_bytes()
        return any(data == pem for data, _ in keystore._OPENING)

    act = ["contribute", "ref", "--as", "salford-pct", "--year", "2004/05"]
    # No passphrase at hand, or one in a file, or no folder named: nothing is begun.
    begin_opening_key(act, {"LEDGER_KEYS": str(store.folder)})
    begin_opening_key([*act, "--passphrase-file", "p.txt"], env)
    begin_opening_key(act, {"LEDGER_PASSPHRASE": PASSPHRASE.decode()})
    begin_opening_key(["contribute", "ref", "--as"], env)
    assert not begun("salford-pct")
    # --key names the key; else --as.
    begin_opening_key([*act, "--key=spare"], env)
    assert begun("spare")
    assert not begun("salford-pct")
    begin_opening_key(act, env)
    assert begun("salford-pct")
    assert store.open("salford-pct", PASSPHRASE).key_id == store.public("salford-pct").key_id
    assert not begun("salford-pct")
    # A name that is no key name, or a folder that is a file: left to the command to tell.
    begin_opening_key([*act[:2], "--as", "../x"], env)
    begin_opening_key(act, {**env, "LEDGER_KEYS": str(store.folder / "spare.pem")})


def test_a_key_file_that_hides_its_scrypt_work_is_not_opened_in_the_background(
        store: KeyStore) -> None:
    import base64  # noqa: PLC0415

    from ledger import keystore as k  # noqa: PLC0415

    def sealed_file(salt: bytes, cost: int, block: int, parallel: int) -> bytes:
        params = k._sequence(salt, k._integer(cost), k._integer(block), k._integer(parallel),
                             k._integer(32))
        algorithm = k._sequence(k._oid(k._PBES2), k._sequence(
            k._sequence(k._oid(k._SCRYPT), params),
            k._sequence(k._oid(k._AES256_CBC), k._tlv(k._OCTETS, bytes(16)))))
        der = k._sequence(algorithm, k._tlv(k._OCTETS, bytes(48)))
        return (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + base64.b64encode(der)
                + b"\n-----END ENCRYPTED PRIVATE KEY-----\n")

    # The form itself, at a new key's cost, is read.
    assert k._Sealed.read(sealed_file(k._tlv(k._OCTETS, bytes(16)), 2**14, 8, 5)) is not None
    # A salt written as an INTEGER shifts what a reader taking the first three integers for
    # N, r and p would see; and a file may not ask for more work than a key file may.
    hidden = sealed_file(k._integer(1), 2**16, 8, 29)
    assert k._Sealed.read(hidden) is None
    assert k._Sealed.read(sealed_file(k._tlv(k._OCTETS, bytes(16)), 2**16, 8, 29)) is None
    store.folder.mkdir(parents=True)
    (store.folder / "victim.pem").write_bytes(hidden)
    store.prepare("victim", PASSPHRASE)
    assert not any(data == hidden for data, _ in k._OPENING)
    with pytest.raises(KeyFileError):
        store.open("victim", PASSPHRASE)
