"""Canonical JSON, statements, signatures and entries: the bytes everyone must agree on."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger._internal import fastjson
from ledger.canonical import SIGNING_CONTEXT, canonical, parse_canonical, signing_input
from ledger.errors import InvalidInput, SignatureInvalid
from ledger.keys import Signer, key_id, parse_public_key
from ledger.statement import ACTIONS, ACTIONS_FROM_V2, Entry, Statement
from tests.keys import fixed_key
from tests.scenarios import draft_statement

#: These properties are about values, never speed: a busy machine must not fail them.
untimed = settings(deadline=None)

# --- strategies --------------------------------------------------------------------------------

#: JSON values the ledger may sign: no floats (money and dates are strings), and integers that
#: every JSON reader holds exactly (RFC 8785 works in IEEE doubles).
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
           | st.text())
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)
#: And what the ledger never signs but canonical() may be handed: any integer, and text with
#: lone surrogates, which RFC 8785 refuses.
any_text = st.text(st.characters(exclude_categories=()))
wide_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=16,
)
#: And floats, which RFC 8785 writes in its own form and the ledger never signs.
float_values = st.recursive(
    st.floats() | scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16,
)

slugs = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
origins = st.from_regex(r"[a-z]{1,12}\.example/[a-z0-9]{1,12}", fullmatch=True)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC)).map(lambda m: m.replace(microsecond=0))
SIGNER = fixed_key("salford-pct")
OTHER = fixed_key("salford-council")


@st.composite
def statements(draw: st.DrawFn, signer: Signer = SIGNER) -> Statement:
    """Any well-formed statement whose key is ``signer``'s, of either version."""
    act = draw(st.none() | st.text("0123456789abcdef", min_size=32, max_size=32))
    actions = ACTIONS if act is not None else [a for a in ACTIONS if a not in ACTIONS_FROM_V2]
    return Statement(
        origin=draw(origins), agreement=draw(slugs), seq=draw(st.integers(1, 2**31)),
        prev=draw(hashes), action=draw(st.sampled_from(actions)), partner=draw(slugs),
        key=signer.key_id, at=draw(moments), body=draw(json_objects), act=act)


# --- canonical JSON ----------------------------------------------------------------------------


def _reference(value: Any) -> bytes | None:
    """What the reference implementation writes for ``value``; None where it refuses it."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return None  # UnicodeEncodeError: rfc8785's answer to a lone surrogate in a key


@untimed
@given(json_values | wide_values | float_values)
def test_canonical_json_is_what_the_reference_rfc_8785_writes(value: Any) -> None:
    # Whichever way canonical() takes (orjson, the standard library, rfc8785 itself), its
    # bytes are the reference implementation's, or it refuses what RFC 8785 refuses.
    reference = _reference(value)
    if reference is None:
        with pytest.raises(InvalidInput):
            canonical(value)
        return
    assert canonical(value) == reference


@untimed
@given(json_values | wide_values | float_values)
def test_the_fast_writer_answers_only_what_the_reference_writes(value: Any) -> None:
    # The fast path behind canonical() may decline, never differ.
    quick = fastjson.write(value)
    if quick is not None:
        assert quick == _reference(value)


@untimed
@given(json_values | float_values, st.sampled_from([
    {}, {"ensure_ascii": True}, {"sort_keys": False}, {"indent": 1},
]))
def test_the_fast_reader_accepts_only_what_the_reference_writes(
        value: Any, style: dict[str, Any]) -> None:
    options = {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": True, **style}
    try:
        spelt = json.dumps(value, **options).encode()
    except (UnicodeEncodeError, ValueError):
        return  # a lone surrogate has no UTF-8 spelling; NaN none in JSON
    quick = fastjson.read(spelt)
    if quick is not fastjson.NOT_SURE:
        assert spelt == _reference(value)
        assert quick == value


@untimed
@given(json_values)
def test_canonical_json_reads_back_as_the_same_value(value: Any) -> None:
    assert parse_canonical(canonical(value)) == value


@untimed
@given(json_objects, st.randoms(use_true_random=False))
def test_canonical_json_does_not_depend_on_key_order(value: dict[str, Any],
                                                     rnd: random.Random) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert canonical(dict(items)) == canonical(value)


@untimed
@given(json_values, st.sampled_from([
    {"indent": 1}, {"separators": (", ", ": ")}, {"ensure_ascii": True},
    {"sort_keys": False, "separators": (",", ":")},
]))
def test_any_other_spelling_of_a_value_is_refused(value: Any, style: dict[str, Any]) -> None:
    options = {"ensure_ascii": False, **style}
    spelt = json.dumps(value, **options).encode()
    if spelt == canonical(value):
        return  # this spelling happens to be the canonical one (e.g. a bare number)
    with pytest.raises(InvalidInput, match="canonical"):
        parse_canonical(spelt)


@untimed
@given(json_values, st.sampled_from([
    {}, {"ensure_ascii": True}, {"sort_keys": False},
]))
def test_text_is_read_as_canonical_exactly_when_rfc_8785_writes_it_so(
        value: Any, style: dict[str, Any]) -> None:
    # Whatever path parse_canonical takes (the quick one or the strict one), it accepts text
    # if and only if the reference implementation of RFC 8785 writes that very text.
    options = {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": True, **style}
    try:
        spelt = json.dumps(value, **options).encode()
    except UnicodeEncodeError:
        return  # a lone surrogate has no UTF-8 spelling
    try:
        reference = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        reference = None
    if spelt == reference:
        assert parse_canonical(spelt) == value
    else:
        with pytest.raises(InvalidInput):
            parse_canonical(spelt)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), [float("nan")],
                                   {"a": float("inf")}, {"a": None, "b": [1, float("-inf")]}])
def test_numbers_json_cannot_hold_are_refused_not_written_as_null(value: Any) -> None:
    with pytest.raises(InvalidInput):
        canonical(value)


@pytest.mark.parametrize("text", [b"1.5", b"1e3", b'{"a":1.0}', b'{"a":[2,-3.25]}',
                                  b'{"a":1E+2}', b'[0.5]', b'{"a":"x","b":4e-1}'])
def test_numbers_with_fractions_or_exponents_are_refused(text: bytes) -> None:
    with pytest.raises(InvalidInput, match="not allowed"):
        parse_canonical(text)


def test_a_fraction_written_inside_a_string_is_only_text() -> None:
    assert parse_canonical(b'{"reason":"ratio:1.5,[2e3"}') == {"reason": "ratio:1.5,[2e3"}


def test_keys_are_sorted_by_utf16_code_units_as_rfc_8785_requires() -> None:
    # U+1F600 is written as the surrogates D83D DE00, which sort before U+FB33.
    assert canonical({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()


def test_text_is_utf8_with_only_the_escapes_json_requires() -> None:
    assert canonical({"title": "Salford — £2,262,440\n"}) == (
        '{"title":"Salford — £2,262,440\\n"}'.encode())


@pytest.mark.parametrize("value", [2**53, -(2**53), {"amount": 2**64}])
def test_integers_beyond_what_json_readers_hold_exactly_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match="cannot canonicalise"):
        canonical(value)


@pytest.mark.parametrize("text", [b"{", b"\xff", b"", b"[1,]"])
def test_what_is_not_json_is_refused(text: bytes) -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_canonical(text)


# --- statements --------------------------------------------------------------------------------


_DROP = object()


def _statement_json(**changes: Any) -> dict[str, Any]:
    data = draft_statement().to_json()
    data.update(changes)
    return {k: v for k, v in data.items() if v is not _DROP}

BAD_ENVELOPES: dict[str, dict[str, Any]] = {
    "version-3": {"v": 3},
    "version-2-without-act": {"act": _DROP},
    "version-1-with-act": {"v": 1},
    "act-not-hex": {"act": "X" * 32},
    "act-too-short": {"act": "0" * 31},
    "version-true": {"v": True},
    "seq-0": {"seq": 0},
    "seq-true": {"seq": True},
    "seq-as-text": {"seq": "1"},
    "unknown-action": {"action": "amend"},
    "body-a-list": {"body": []},
    "origin-with-plus": {"origin": "ledger+salford"},
    "origin-with-leading-space": {"origin": " ledger.example"},
    "upper-case-prev": {"prev": "A" * 64},
    "short-key": {"key": "ab" * 31},
    "partner-with-capitals": {"partner": "Salford-PCT"},
    "at-with-offset": {"at": "2003-07-01T09:00:00+00:00"},
    "missing-body": {"body": _DROP},
    "extra-field": {"comment": "signed in the presence of the board"},
}


@pytest.mark.parametrize("name", sorted(BAD_ENVELOPES))
def test_malformed_statement_envelopes_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        Statement.from_json(_statement_json(**BAD_ENVELOPES[name]))


def test_a_statement_reads_back_from_its_json() -> None:
    statement = draft_statement()
    assert Statement.from_json(json.loads(json.dumps(statement.to_json()))) == statement


def test_the_signature_covers_the_context_line_and_the_jcs_of_the_statement() -> None:
    statement = draft_statement()
    expected = b"agreement-ledger/v1\n" + rfc8785.dumps(statement.to_json())
    assert statement.signing_input() == expected == signing_input(statement.to_json())
    assert SIGNING_CONTEXT == b"agreement-ledger/v1\n"


def test_the_entry_hash_is_the_sha256_of_the_canonical_entry() -> None:
    entry = Entry.sign(draft_statement(), SIGNER)
    document = {"statement": entry.statement.to_json(), "signature": entry.to_json()["signature"]}
    assert entry.text.encode() == rfc8785.dumps(document)
    assert entry.hash == hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def test_a_key_id_is_the_sha256_of_the_raw_public_key() -> None:
    raw = SIGNER.public_key
    assert len(raw) == 32
    assert SIGNER.key_id == key_id(raw) == hashlib.sha256(raw).hexdigest()
    assert parse_public_key(raw.hex()) == raw
    with pytest.raises(InvalidInput):
        parse_public_key(raw.hex().upper())


# --- signatures --------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(statements())
def test_a_signed_statement_reads_back_and_verifies(statement: Statement) -> None:
    entry = Entry.sign(statement, SIGNER)
    read = Entry.parse(entry.text)
    assert read.statement == statement
    assert read.signature == entry.signature
    assert read.hash == entry.hash
    read.verify_signature(SIGNER.public_key)
    with pytest.raises(SignatureInvalid):
        read.verify_signature(OTHER.public_key)


@settings(max_examples=200, deadline=None)
@given(statements(), st.data())
def test_any_single_flipped_bit_is_caught(statement: Statement, data: st.DataObject) -> None:
    text = bytearray(Entry.sign(statement, SIGNER).text.encode())
    bit = data.draw(st.integers(min_value=0, max_value=len(text) * 8 - 1), label="bit")
    text[bit // 8] ^= 1 << (bit % 8)
    try:
        damaged = Entry.parse(bytes(text))
    except InvalidInput:
        return
    with pytest.raises(SignatureInvalid):
        damaged.verify_signature(SIGNER.public_key)


def test_a_signature_does_not_verify_for_a_statement_one_second_later() -> None:
    statement = draft_statement()
    entry = Entry.sign(statement, SIGNER)
    moved = Entry.of(Statement.from_json({**statement.to_json(), "at": "2003-07-01T09:00:01Z"}),
                     entry.signature)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        moved.verify_signature(SIGNER.public_key)


def test_ed25519_signatures_are_deterministic() -> None:
    # Regenerating the committed fixtures byte for byte relies on this (RFC 8032 section 5.1.6).
    statement = draft_statement()
    assert Entry.sign(statement, SIGNER).text == Entry.sign(statement, SIGNER).text


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33])
def test_a_seed_is_exactly_32_bytes(seed: bytes) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        Signer.from_seed(seed)


@pytest.mark.parametrize("character", ["é", "\u0000", "!", "\u2028"])
def test_a_signature_with_a_character_base64_never_holds_is_refused(character: str) -> None:
    entry = Entry.sign(draft_statement(), SIGNER)
    text = entry.text.replace('"signature":"', '"signature":"' + character, 1)
    with pytest.raises(InvalidInput):
        Entry.parse(text)


# --- Ed25519's edge cases ---------------------------------------------------------------------


def _speccheck() -> list[tuple[bytes, bytes, bytes]]:
    from pathlib import Path  # noqa: PLC0415

    lines = (Path(__file__).parent / "vectors" / "ed25519-speccheck" / "cases.txt").read_text(
        ).split()
    count, fields = int(lines[0]), [line.split("=", 1)[1] for line in lines[1:]]
    assert len(fields) == 3 * count
    return [(bytes.fromhex(fields[i]), bytes.fromhex(fields[i + 1]), bytes.fromhex(fields[i + 2]))
            for i in range(0, len(fields), 3)]


#: The published outcomes ("Taming the many EdDSAs", results.md): True where accepted.
OPENSSL_ACCEPTS = [True, True, True, True] + [False] * 7 + [True]
LIBSODIUM_ACCEPTS = [False, False, False, True] + [False] * 8


def _accepts(check: Any, key: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    try:
        check(key, signature, message)
    except (SignatureInvalid, InvalidSignature, ValueError):
        return False
    return True


@pytest.fixture(params=["openssl", "libsodium"])
def equation(request: pytest.FixtureRequest) -> Iterator[str]:
    """verify_signature with the equation checked by each library in turn."""
    from ledger import keys  # noqa: PLC0415

    kept = keys._verifier["checked"]
    keys._equation_holds.cache_clear()
    keys._verifier["checked"] = 0 if request.param == "openssl" else keys.SODIUM_AFTER
    try:
        yield request.param
    finally:
        keys._verifier["checked"] = kept


def test_the_ledgers_rule_gives_libsodiums_outcome_on_every_ed25519_edge_case(
        equation: str) -> None:
    from ledger import keys  # noqa: PLC0415

    cases = _speccheck()
    assert len(cases) == 12
    # Each library alone gives its published row: OpenSSL takes a small-order R or key.
    alone = keys.openssl_verifies if equation == "openssl" else keys.sodium_verifies
    published = OPENSSL_ACCEPTS if equation == "openssl" else LIBSODIUM_ACCEPTS
    assert [alone(k, s, m) for m, k, s in cases] == published
    # The ledger's rule refuses those before the library is asked: libsodium's row, whichever
    # library checks the equation.
    assert [_accepts(keys.verify_signature, k, s, m) for m, k, s in cases] == LIBSODIUM_ACCEPTS
    assert (keys._verifier["checked"] > keys.SODIUM_AFTER) == (equation == "libsodium")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_both_libraries_judge_every_signature_alike_under_the_ledgers_rule(
        data: st.DataObject) -> None:
    from ledger import keys  # noqa: PLC0415

    signer = fixed_key(data.draw(st.sampled_from(["salford-pct", "southwark-ssd"])))
    message = data.draw(st.binary(max_size=200))
    signature = bytearray(signer.sign(message))
    key = bytearray(signer.public_key)
    # A genuine signature, or one with a byte of it, of the key or of the message changed.
    where = data.draw(st.sampled_from(["none", "signature", "key", "message"]))
    if where == "signature":
        signature[data.draw(st.integers(0, 63))] ^= data.draw(st.integers(1, 255))
    elif where == "key":
        key[data.draw(st.integers(0, 31))] ^= data.draw(st.integers(1, 255))
    elif where == "message":
        message += b"!"
    verdicts = {keys.openssl_verifies(bytes(key), bytes(signature), message),
                keys.sodium_verifies(bytes(key), bytes(signature), message)}
    assert len(verdicts) == 1
    assert verdicts == {where == "none"}
