"""Signed notes, checkpoints and witness cosignatures in the C2SP formats."""

from __future__ import annotations

import base64
import dataclasses
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput, LedgerError, VerificationFailed
from ledger.merkle import leaf_hash, root_of
from ledger.note import (
    COSIGNATURE_KEY_TYPE,
    ED25519_KEY_TYPE,
    Checkpoint,
    NoteSignature,
    SignedNote,
    VerifierKey,
    add_signatures,
    cosign,
    cosignature_message,
    note_key_id,
    parse_verifier_key,
    sign_note,
    verifier_key,
    verify_cosignature,
    verify_note_signature,
)

# --- fixed keys ----------------------------------------------------------------------------

OPERATOR = "ledger.example/salford"
WITNESS = "witness.example/suffolk"
OTHER_WITNESS = "witness.example/southwark"
OPERATOR_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
TIMESTAMP = 1_700_000_000


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def checkpoint() -> Checkpoint:
    """The ledger after its first three entries."""
    leaves = [leaf_hash(b"entry %d" % i) for i in range(3)]
    return Checkpoint(OPERATOR, 3, root_of(leaves))


def signed_checkpoint() -> SignedNote:
    body = checkpoint().body()
    return SignedNote(body, (sign_note(body, OPERATOR, OPERATOR_KEY),))


def cosigned_checkpoint() -> SignedNote:
    note = signed_checkpoint()
    return add_signatures(note, cosign(note.text, WITNESS, WITNESS_KEY, TIMESTAMP))


def with_text(note: SignedNote, text: str) -> SignedNote:
    return dataclasses.replace(note, text=text)


# --- published examples, byte for byte -----------------------------------------------------

# golang.org/x/mod/sumdb/note, example_test.go: the skey's payload is 0x01 || Ed25519 seed.
NEUMANN_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
NEUMANN_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NEUMANN_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
NEUMANN_NOTE = (
    NEUMANN_TEXT + "\n"
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

# c2sp.org/signed-note, "Verifier keys: Example".
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# c2sp.org/signed-note, opening example: the text holds a blank line of its own.
C2SP_POEM = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# c2sp.org/tlog-cosignature, opening example: a checkpoint with a log signature and a
# cosignature whose timestamp is the spec's "time 1679315147".
C2SP_COSIGNED = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def neumann_key() -> Ed25519PrivateKey:
    payload = base64.b64decode(NEUMANN_SKEY.split("+", 4)[4])
    assert payload[0] == ED25519_KEY_TYPE
    return Ed25519PrivateKey.from_private_bytes(payload[1:])


def test_peter_neumanns_note_is_reproduced_byte_for_byte() -> None:
    key = neumann_key()
    note = SignedNote(NEUMANN_TEXT, (sign_note(NEUMANN_TEXT, "PeterNeumann", key),))
    assert note.format() == NEUMANN_NOTE
    assert verifier_key("PeterNeumann", raw(key)) == NEUMANN_VKEY
    assert note_key_id("PeterNeumann", raw(key)).hex() == "c74f20a3"


def test_peter_neumanns_note_verifies_under_his_vkey() -> None:
    vkey = parse_verifier_key(NEUMANN_VKEY)
    assert vkey == VerifierKey("PeterNeumann", ED25519_KEY_TYPE, raw(neumann_key()))
    note = SignedNote.parse(NEUMANN_NOTE)
    assert note.text == NEUMANN_TEXT
    verify_note_signature(note, vkey.name, vkey.public_key)


def test_the_signed_note_spec_example_verifies() -> None:
    vkey = parse_verifier_key(C2SP_VKEY)
    assert str(vkey) == C2SP_VKEY
    assert vkey.key_id.hex() == "530d903a"
    verify_note_signature(SignedNote.parse(C2SP_NOTE), vkey.name, vkey.public_key)


def test_a_note_text_may_hold_blank_lines() -> None:
    note = SignedNote.parse(C2SP_POEM)
    assert note.text.endswith("trafitto da un raggio di sole:\n\ned è subito sera.\n")
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert note.format() == C2SP_POEM


def test_the_cosignature_spec_example_carries_its_timestamp() -> None:
    note = SignedNote.parse(C2SP_COSIGNED)
    assert note.format() == C2SP_COSIGNED
    cp = Checkpoint.parse(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    log_sig, witness_sig = note.signatures
    assert len(log_sig.signature) == 64
    assert witness_sig.name == "witness.example.com/w1"
    assert len(witness_sig.signature) == 8 + 64
    assert int.from_bytes(witness_sig.signature[:8], "big") == 1679315147


def test_the_cosigned_message_is_the_one_in_the_spec() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosignature_message(body, 1679315147) == (
        b"cosignature/v1\n"
        b"time 1679315147\n"
        b"example.com/behind-the-sofa\n"
        b"20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


# --- the ledger's own checkpoint, pinned ---------------------------------------------------

# Ed25519 is deterministic: with the fixed keys these are the only right answers, so a change
# to any signed byte (body layout, key id, cosigned message) fails here.
PINNED = (
    "ledger.example/salford\n"
    "3\n"
    "lPvQ3YNvUDAWkubQ6t5yjuGexSv/8WBu2AfIV11aqhk=\n"
    "\n"
    "— ledger.example/salford "
    "YWdDJjDBZ3MWp2Mztb62AFj7FsspUq5mIQ5C8VFcbEr2tmiUYlRNdOEYb2OmtNKC4f6LJ5P5mVXUxf8AEm3hq4XK7wE=\n"
    "— witness.example/suffolk "
    "ZWZvmQAAAABlU/EAl9y6uxvuuQ4YWInqt7P5uJ6At4BSVLTVJsJQyl5PL7r7/PD0ZXYyYjMzPo9XwbP+wxJGD79IZ07FK33UmdbvDg==\n"
)
OPERATOR_VKEY = "ledger.example/salford+61674326+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
WITNESS_VKEY = "witness.example/suffolk+65666f99+BCmsuuFBvMrwsi4alNNNC8c2HlJtC/4SyJeUvJMilm3X"


def test_the_operator_signs_and_a_witness_cosigns_the_checkpoint() -> None:
    note = cosigned_checkpoint()
    assert note.format() == PINNED
    assert verifier_key(OPERATOR, raw(OPERATOR_KEY)) == OPERATOR_VKEY
    assert verifier_key(WITNESS, raw(WITNESS_KEY), COSIGNATURE_KEY_TYPE) == WITNESS_VKEY

    read = SignedNote.parse(PINNED)
    assert read == note
    operator = parse_verifier_key(OPERATOR_VKEY)
    witness = parse_verifier_key(WITNESS_VKEY)
    verify_note_signature(read, operator.name, operator.public_key)
    assert verify_cosignature(read, witness.name, witness.public_key) == TIMESTAMP
    assert Checkpoint.parse(read.text) == checkpoint()


def test_a_cosignature_is_an_ed25519_signature_over_the_spec_message() -> None:
    body = checkpoint().body()
    sig = cosign(body, WITNESS, WITNESS_KEY, TIMESTAMP)
    assert sig.key_id == note_key_id(WITNESS, raw(WITNESS_KEY), 0x04)
    assert sig.signature[:8] == TIMESTAMP.to_bytes(8, "big")
    # Rebuilt here from the spec's words rather than through the module.
    message = f"cosignature/v1\ntime {TIMESTAMP}\n".encode() + body.encode()
    Ed25519PublicKey.from_public_bytes(raw(WITNESS_KEY)).verify(sig.signature[8:], message)


def test_key_ids_differ_by_signature_type() -> None:
    public = raw(WITNESS_KEY)
    plain, cosigner = note_key_id(WITNESS, public), note_key_id(WITNESS, public, 0x04)
    assert plain != cosigner
    assert len(plain) == len(cosigner) == 4


def test_several_witnesses_cosign_one_checkpoint() -> None:
    note = cosigned_checkpoint()
    later = cosign(note.text, OTHER_WITNESS, OTHER_KEY, TIMESTAMP + 60)
    both = SignedNote.parse(add_signatures(note, later).format())
    assert verify_cosignature(both, WITNESS, raw(WITNESS_KEY)) == TIMESTAMP
    assert verify_cosignature(both, OTHER_WITNESS, raw(OTHER_KEY)) == TIMESTAMP + 60
    verify_note_signature(both, OPERATOR, raw(OPERATOR_KEY))


def test_cosigning_again_replaces_the_witness_line() -> None:
    note = cosigned_checkpoint()
    again = add_signatures(note, cosign(note.text, WITNESS, WITNESS_KEY, TIMESTAMP + 3600))
    assert [s.name for s in again.signatures] == [OPERATOR, WITNESS]
    assert verify_cosignature(again, WITNESS, raw(WITNESS_KEY)) == TIMESTAMP + 3600


def test_every_line_of_a_witness_must_verify() -> None:
    body = checkpoint().body()
    first = cosign(body, WITNESS, WITNESS_KEY, TIMESTAMP)
    second = cosign(body, WITNESS, WITNESS_KEY, TIMESTAMP + 5)
    assert verify_cosignature(SignedNote(body, (second, first)), WITNESS, raw(WITNESS_KEY)) == (
        TIMESTAMP + 5
    )
    broken = dataclasses.replace(second, signature=second.signature[:-1] + b"\x00")
    with pytest.raises(VerificationFailed):
        verify_cosignature(SignedNote(body, (first, broken)), WITNESS, raw(WITNESS_KEY))


def test_unknown_signatures_are_ignored() -> None:
    note = cosigned_checkpoint()
    stranger = sign_note(note.text, "stranger.example", OTHER_KEY)
    verify_note_signature(add_signatures(note, stranger), OPERATOR, raw(OPERATOR_KEY))


# --- tampering ------------------------------------------------------------------------------


def test_a_changed_byte_in_the_text_is_caught() -> None:
    note = cosigned_checkpoint()
    forged = with_text(note, note.text.replace("\n3\n", "\n4\n"))
    with pytest.raises(VerificationFailed, match=re.escape(OPERATOR)):
        verify_note_signature(forged, OPERATOR, raw(OPERATOR_KEY))
    with pytest.raises(VerificationFailed, match=re.escape(WITNESS)):
        verify_cosignature(forged, WITNESS, raw(WITNESS_KEY))


def test_a_signature_by_another_key_is_not_the_operators() -> None:
    body = checkpoint().body()
    impostor = SignedNote(body, (sign_note(body, OPERATOR, OTHER_KEY),))
    with pytest.raises(VerificationFailed, match=f"not signed by {re.escape(OPERATOR)}"):
        verify_note_signature(impostor, OPERATOR, raw(OPERATOR_KEY))


def test_a_signature_under_a_right_key_id_but_wrong_key_bytes_fails() -> None:
    body = checkpoint().body()
    genuine = sign_note(body, OPERATOR, OPERATOR_KEY)
    forged = dataclasses.replace(genuine, signature=OTHER_KEY.sign(body.encode()))
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_note_signature(SignedNote(body, (genuine, forged)), OPERATOR, raw(OPERATOR_KEY))


def test_a_signature_under_another_name_is_not_accepted() -> None:
    note = signed_checkpoint()
    with pytest.raises(VerificationFailed):
        verify_note_signature(note, "ledger.example/trafford", raw(OPERATOR_KEY))
    renamed = SignedNote(
        note.text, (dataclasses.replace(note.signatures[0], name="ledger.example/trafford"),)
    )
    with pytest.raises(VerificationFailed):
        verify_note_signature(renamed, "ledger.example/trafford", raw(OPERATOR_KEY))


def test_a_truncated_signature_line_is_refused() -> None:
    line = PINNED.splitlines(keepends=True)[4]
    # Cutting a whole base64 quantum still parses, but leaves a signature too short to hold.
    cut = PINNED.replace(line, line[:-5] + "\n")
    with pytest.raises(VerificationFailed, match="does not verify"):
        verify_note_signature(SignedNote.parse(cut), OPERATOR, raw(OPERATOR_KEY))
    # Cutting mid-quantum breaks the base64 itself.
    with pytest.raises(InvalidInput, match="base64"):
        SignedNote.parse(PINNED.replace(line, line[:-3] + "\n"))


def test_a_cosignature_with_a_changed_timestamp_is_caught() -> None:
    note = cosigned_checkpoint()
    genuine = note.signatures[1]
    later = (TIMESTAMP + 1).to_bytes(8, "big") + genuine.signature[8:]
    forged = SignedNote(
        note.text, (note.signatures[0], dataclasses.replace(genuine, signature=later))
    )
    with pytest.raises(VerificationFailed, match="timestamp was altered"):
        verify_cosignature(forged, WITNESS, raw(WITNESS_KEY))


def test_a_cut_cosignature_is_caught() -> None:
    note = cosigned_checkpoint()
    genuine = note.signatures[1]
    cut = SignedNote(note.text, (dataclasses.replace(genuine, signature=genuine.signature[:70]),))
    with pytest.raises(VerificationFailed, match="70 bytes"):
        verify_cosignature(cut, WITNESS, raw(WITNESS_KEY))


def test_a_note_signature_is_not_a_cosignature() -> None:
    # Same name and key, but signature type 0x01: a different key id, so no cosignature.
    body = checkpoint().body()
    note = SignedNote(body, (sign_note(body, WITNESS, WITNESS_KEY),))
    with pytest.raises(VerificationFailed, match="not cosigned"):
        verify_cosignature(note, WITNESS, raw(WITNESS_KEY))
    with pytest.raises(VerificationFailed, match="not signed"):
        verify_note_signature(cosigned_checkpoint(), WITNESS, raw(WITNESS_KEY))


def test_a_cosignature_needs_a_checkpoint() -> None:
    with pytest.raises(InvalidInput):
        cosign("just some text\n", WITNESS, WITNESS_KEY, TIMESTAMP)


@pytest.mark.parametrize("timestamp", [-1, 2**63])
def test_a_cosignature_timestamp_fits_63_bits(timestamp: int) -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        cosign(checkpoint().body(), WITNESS, WITNESS_KEY, timestamp)


def test_verification_errors_are_ledger_errors() -> None:
    assert issubclass(VerificationFailed, LedgerError)
    assert issubclass(InvalidInput, LedgerError)


# --- malformed notes -----------------------------------------------------------------------

GOOD_LINE = "— a.example " + base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode() + "\n"

MALFORMED_NOTES = {
    "no blank line": "text\n" + GOOD_LINE,
    "no signature lines": "text\n\n",
    "last line without newline": "text\n\n" + GOOD_LINE[:-1],
    "hyphen instead of em dash": "text\n\n-" + GOOD_LINE[1:],
    "en dash instead of em dash": "text\n\n\u2013" + GOOD_LINE[1:],
    "no space after the dash": "text\n\n—" + GOOD_LINE[2:],
    "no signature after the name": "text\n\n— a.example\n",
    "empty name": "text\n\n— " + GOOD_LINE[len("— a.example ") - 1 :],
    "name with a plus": "text\n\n" + GOOD_LINE.replace("a.example", "a+example"),
    "bad base64": "text\n\n" + GOOD_LINE.replace("AQID", "AQ!D"),
    "non-canonical base64": "text\n\n— a.example AQIDBAF=\n",
    "only a key id": "text\n\n— a.example AQIDBA==\n",
    "carriage return": "text\r\n\n" + GOOD_LINE,
    "tab in text": "te\txt\n\n" + GOOD_LINE,
    "nothing": "",
    "too many signatures": "text\n\n" + GOOD_LINE * 101,
}


@pytest.mark.parametrize("note", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_a_malformed_note_is_refused(note: str) -> None:
    with pytest.raises(InvalidInput):
        SignedNote.parse(note)


def test_the_signature_bytes_follow_the_key_id() -> None:
    note = SignedNote.parse("text\n\n" + GOOD_LINE)
    (sig,) = note.signatures
    assert (sig.name, sig.key_id, sig.signature) == ("a.example", b"\x01\x02\x03\x04", bytes(64))


@pytest.mark.parametrize("text", ["no newline", "", "tab\there\n", "lone \ud800 surrogate\n"])
def test_a_note_text_must_be_newline_terminated_printable_utf8(text: str) -> None:
    with pytest.raises(InvalidInput):
        sign_note(text, OPERATOR, OPERATOR_KEY)
    with pytest.raises(InvalidInput):
        SignedNote(text, ())


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "non\u00a0breaking", "tab\t"])
def test_a_key_name_has_no_spaces_or_plus(name: str) -> None:
    with pytest.raises(InvalidInput):
        sign_note("text\n", name, OPERATOR_KEY)
    with pytest.raises(InvalidInput):
        NoteSignature(name, b"\x00" * 4, b"\x00")


def test_an_unsigned_note_cannot_be_written_out() -> None:
    with pytest.raises(InvalidInput):
        SignedNote("text\n", ()).format()


# --- verifier keys -------------------------------------------------------------------------

BAD_VKEYS = {
    "two parts": "PeterNeumann+c74f20a3",
    "four parts": NEUMANN_VKEY + "+x",
    "wrong key id": NEUMANN_VKEY.replace("c74f20a3", "c74f20a4"),
    "upper-case key id": NEUMANN_VKEY.replace("c74f20a3", "C74F20A3"),
    "short key id": NEUMANN_VKEY.replace("c74f20a3", "74f20a3"),
    "bad base64": NEUMANN_VKEY[:-2] + "!!",
    # golang.org/x/mod's note_test.go: a 38-byte key, then an unknown algorithm, each with a
    # key id that matches.
    "long key": "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    "unknown type": "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "empty key": "PeterNeumann+c74f20a3+",
    "name with space": "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
}


@pytest.mark.parametrize("vkey", BAD_VKEYS.values(), ids=BAD_VKEYS.keys())
def test_a_malformed_verifier_key_is_refused(vkey: str) -> None:
    with pytest.raises(InvalidInput):
        parse_verifier_key(vkey)


def test_a_cosigner_vkey_round_trips() -> None:
    vkey = parse_verifier_key(WITNESS_VKEY)
    assert vkey.key_type == COSIGNATURE_KEY_TYPE
    assert vkey.key_id == note_key_id(WITNESS, raw(WITNESS_KEY), COSIGNATURE_KEY_TYPE)
    assert str(vkey) == WITNESS_VKEY


def test_a_public_key_must_be_32_bytes() -> None:
    with pytest.raises(InvalidInput):
        verify_note_signature(signed_checkpoint(), OPERATOR, raw(OPERATOR_KEY)[:31])
    with pytest.raises(InvalidInput):
        verifier_key(OPERATOR, b"\x00" * 33)


# --- checkpoints ---------------------------------------------------------------------------

ROOT_B64 = base64.b64encode(bytes(range(32))).decode()

MALFORMED_CHECKPOINTS = {
    "two lines": f"origin\n{ROOT_B64}\n",
    "no final newline": f"origin\n1\n{ROOT_B64}",
    "empty origin": f"\n1\n{ROOT_B64}\n",
    "leading zero": f"origin\n01\n{ROOT_B64}\n",
    "plus sign": f"origin\n+1\n{ROOT_B64}\n",
    "minus sign": f"origin\n-1\n{ROOT_B64}\n",
    "space in size": f"origin\n 1\n{ROOT_B64}\n",
    "underscore in size": f"origin\n1_000\n{ROOT_B64}\n",
    "arabic-indic digit": f"origin\n\u0661\n{ROOT_B64}\n",
    "size beyond 2^63 - 1": f"origin\n{2**63}\n{ROOT_B64}\n",
    "short root": "origin\n1\nAAAA\n",
    "root not base64": "origin\n1\n!!!!\n",
    "empty extension line": f"origin\n1\n{ROOT_B64}\n\nextension\n",
    "trailing blank line": f"origin\n1\n{ROOT_B64}\n\n",
}


@pytest.mark.parametrize("body", MALFORMED_CHECKPOINTS.values(), ids=MALFORMED_CHECKPOINTS.keys())
def test_a_malformed_checkpoint_is_refused(body: str) -> None:
    with pytest.raises(InvalidInput):
        Checkpoint.parse(body)


def test_a_checkpoint_keeps_its_extension_lines() -> None:
    body = f"origin\n0\n{ROOT_B64}\nfirst extension\nsecond\n"
    cp = Checkpoint.parse(body)
    assert (cp.size, cp.root, cp.extensions) == (0, bytes(range(32)), ("first extension", "second"))
    assert cp.body() == body


# Any printable text: surrogates are not UTF-8 and control characters are not allowed in notes.
origins = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=40)


@given(
    origin=origins,
    size=st.integers(0, 2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(origins, max_size=3).map(tuple),
)
def test_a_checkpoint_round_trips(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    body = cp.body()
    assert Checkpoint.parse(body) == cp
    # The body is a valid note text, so it can be signed, written, read and verified.
    note = SignedNote(body, (sign_note(body, OPERATOR, OPERATOR_KEY),))
    read = SignedNote.parse(note.format())
    assert read == note
    verify_note_signature(read, OPERATOR, raw(OPERATOR_KEY))
