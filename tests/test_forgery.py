"""Forged, altered and replayed entries, made by hand and submitted as an outsider would.

Each forgery starts from a genuine entry that the ledger accepts (the control at the end of most
tests), changes one thing, and must be refused with the right error class and nothing written.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.canonical import canonical
from ledger.errors import AlreadyRecorded, InvalidInput, RuleViolation, SignatureInvalid
from ledger.statement import Entry, Statement
from ledger.storage import parse_location
from projections.audit import verify_ledger
from tests.conftest import at
from tests.keys import fixed_key
from tests.scenarios import (
    COUNCIL,
    PCT,
    PCT_MAINSTREAM,
    REF,
    details,
    draft_statement,
    drafted,
    next_statement,
    refused,
)

PCT_KEY = fixed_key(PCT)
COUNCIL_KEY = fixed_key(COUNCIL)
WHEN = at("2003-07-02T10:00:00")
LINE = {"line": {"year": "2003/04", "source": PCT_MAINSTREAM, "amount": "341740.00",
                 "status": "confirmed"}}


def pct_declares(ledger: Ledger, reference: str = REF, **fields: Any) -> Statement:
    """The PCT declaring its 2003/04 funding as the next act on ``reference``."""
    statement = next_statement(ledger.agreement(reference), "contribute", PCT, PCT_KEY, LINE,
                               WHEN)
    return replace(statement, **fields)


def accepted(ledger: Ledger, entry: Entry, reference: str = REF) -> None:
    """The genuine entry goes in, byte for byte."""
    ledger.submit(entry)
    stored = ledger.agreement(reference).history[-1].entry
    assert stored.text == entry.text
    assert stored.hash == entry.hash


def test_a_hand_made_entry_signed_by_the_partner_is_accepted(ledger: Ledger) -> None:
    drafted(ledger)
    entry = Entry.sign(pct_declares(ledger), PCT_KEY)
    accepted(ledger, Entry.parse(entry.text))
    assert ledger.agreement(REF).funding_lines()[0].amount is not None
    assert verify_ledger(ledger).ok


def test_an_entry_signed_with_another_key_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    statement = pct_declares(ledger)  # names the PCT's key
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(Entry.sign(statement, COUNCIL_KEY))
    accepted(ledger, Entry.sign(statement, PCT_KEY))


def test_an_entry_naming_and_signed_by_another_partners_key_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    ledger.join(REF, COUNCIL, details(COUNCIL), COUNCIL_KEY, at("2003-07-01T11:00:00"))
    statement = pct_declares(ledger, key=COUNCIL_KEY.key_id)
    with refused(ledger, SignatureInvalid, "not the current key of partner 'salford-pct'"):
        ledger.submit(Entry.sign(statement, COUNCIL_KEY))
    accepted(ledger, Entry.sign(pct_declares(ledger), PCT_KEY))


def test_a_body_altered_after_signing_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    genuine = Entry.sign(pct_declares(ledger), PCT_KEY)
    bigger = {"line": {**LINE["line"], "amount": "941740.00"}}
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(Entry.of(replace(genuine.statement, body=bigger), genuine.signature))
    # The same alteration made in the stored text: still canonical, no longer signed.
    edited = Entry.parse(genuine.text.replace("341740.00", "941740.00"))
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(edited)
    accepted(ledger, genuine)


def test_an_entry_whose_text_says_other_than_its_statement_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    genuine = Entry.sign(pct_declares(ledger), PCT_KEY)
    # The text is what is stored, hashed and later verified, so it is the text that is checked.
    smuggled = Entry(genuine.statement, genuine.signature,
                     genuine.text.replace("341740.00", "941740.00"))
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(smuggled)
    accepted(ledger, genuine)


def test_an_entry_replayed_into_another_agreement_is_refused(ledger: Ledger) -> None:
    other = "salford-dat-2005"
    drafted(ledger)
    ledger.submit(Entry.sign(draft_statement(reference=other), PCT_KEY))
    genuine = Entry.sign(pct_declares(ledger), PCT_KEY)
    accepted(ledger, genuine)
    relabelled = replace(genuine.statement, agreement=other)
    # Moved as it is, it does not follow the other agreement's history...
    with refused(ledger, RuleViolation, "does not follow entry 1 of 'salford-dat-2005'"):
        ledger.submit(Entry.of(relabelled, genuine.signature))
    # ...and made to follow it, the signature no longer covers it.
    chained = replace(relabelled, prev=ledger.agreement(other).head)
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(Entry.of(chained, genuine.signature))
    with refused(ledger, AlreadyRecorded, "is already recorded as entry 2"):
        ledger.submit(genuine)  # nor can it be replayed where it already stands


def test_an_entry_replayed_into_another_ledger_is_refused(ledger: Ledger, tmp_path: Path
                                                          ) -> None:
    trafford = Ledger(parse_location(str(tmp_path / "trafford.db")), create=True)
    try:
        trafford.initialise("ledger.example/trafford", "operator",
                            fixed_key("trafford-operator").public_key)
        genuine = Entry.sign(draft_statement(origin="ledger.example/trafford"), PCT_KEY)
        trafford.submit(genuine)
        assert trafford.agreement(REF).head == genuine.hash
    finally:
        trafford.close()
    with refused(ledger, RuleViolation, "belongs to ledger 'ledger.example/trafford'"):
        ledger.submit(genuine)
    home = replace(genuine.statement, origin=ledger.origin)
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(Entry.of(home, genuine.signature))
    assert not ledger.exists(REF)


@pytest.mark.parametrize("seq", [1, 3, 99])
def test_an_entry_with_another_seq_is_refused(ledger: Ledger, seq: int) -> None:
    drafted(ledger)
    with refused(ledger, RuleViolation, f"entry seq {seq} does not follow entry 1"):
        ledger.submit(Entry.sign(pct_declares(ledger, seq=seq), PCT_KEY))
    accepted(ledger, Entry.sign(pct_declares(ledger), PCT_KEY))


def test_an_entry_with_a_wrong_prev_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    head = ledger.agreement(REF).head
    for wrong in ("0" * 64, head[::-1], "f" * 64):
        with refused(ledger, RuleViolation, "does not follow entry 1"):
            ledger.submit(Entry.sign(pct_declares(ledger, prev=wrong), PCT_KEY))
    accepted(ledger, Entry.sign(pct_declares(ledger), PCT_KEY))


def test_a_join_naming_the_new_key_but_signed_by_another_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    statement = next_statement(ledger.agreement(REF), "join", COUNCIL, COUNCIL_KEY,
                               details(COUNCIL).to_json(), at("2003-07-01T11:00:00"))
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(Entry.sign(statement, PCT_KEY))
    accepted(ledger, Entry.sign(statement, COUNCIL_KEY))


def test_a_signature_without_the_context_line_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    statement = pct_declares(ledger)
    # A signature over the bare statement could be one made for another protocol.
    bare = PCT_KEY.sign(canonical(statement.to_json()))
    with refused(ledger, SignatureInvalid, "signature does not verify"):
        ledger.submit(Entry.of(statement, bare))
    accepted(ledger, Entry.sign(statement, PCT_KEY))


def test_a_second_draft_submitted_by_hand_is_refused(ledger: Ledger) -> None:
    drafted(ledger)
    with refused(ledger, InvalidInput, "agreement 'salford-dat-2004' already exists"):
        ledger.submit(Entry.sign(draft_statement(partner=COUNCIL), COUNCIL_KEY))


def test_a_draft_with_a_malformed_reference_is_refused(ledger: Ledger) -> None:
    # Well signed, but an envelope the verifier would reject must not be stored either.
    statement = draft_statement(reference="Salford DAT")
    with refused(ledger, InvalidInput, "'Salford DAT' is not a valid agreement reference"):
        ledger.submit(Entry.sign(statement, PCT_KEY))
    assert verify_ledger(ledger).ok


# --- the entry's one written form ---------------------------------------------------------------


def genuine_text() -> str:
    return Entry.sign(draft_statement(), PCT_KEY).text


NON_CANONICAL = {
    "pretty-printed": lambda t: json.dumps(json.loads(t), indent=1, sort_keys=True),
    "statement-before-signature": lambda t: json.dumps(
        dict(reversed(list(json.loads(t).items()))), separators=(",", ":")),
    "space-after-colon": lambda t: t.replace('"seq":1', '"seq": 1'),
    "trailing-newline": lambda t: t + "\n",
    "escaped-letter": lambda t: t.replace('"action":"draft"', '"action":"\\u0064raft"'),
    "seq-as-float": lambda t: t.replace('"seq":1', '"seq":1.0'),
    "seq-with-exponent": lambda t: t.replace('"seq":1', '"seq":1e0'),
    "byte-order-mark": lambda t: "\ufeff" + t,
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
def test_a_non_canonical_entry_text_is_refused(name: str) -> None:
    text = genuine_text()
    mutated = NON_CANONICAL[name](text)
    assert mutated != text
    with pytest.raises(InvalidInput, match=r"canonical|not valid JSON") as caught:
        Entry.parse(mutated)
    assert type(caught.value) is InvalidInput


def test_the_genuine_entry_text_is_canonical() -> None:
    text = genuine_text()
    assert Entry.parse(text).text == text
    assert canonical(json.loads(text)).decode() == text


def _with_signature(text: str, signature_b64: str) -> str:
    data = json.loads(text)
    data["signature"] = signature_b64
    return canonical(data).decode()


@pytest.mark.parametrize("length", [63, 65, 0])
def test_a_signature_of_the_wrong_length_is_refused(ledger: Ledger, length: int) -> None:
    genuine = Entry.sign(draft_statement(), PCT_KEY)
    cut = (genuine.signature * 2)[:length]
    with pytest.raises(InvalidInput, match="64 bytes"):
        Entry.parse(_with_signature(genuine.text, base64.b64encode(cut).decode()))
    # Made by hand rather than parsed, it is refused all the same.
    with refused(ledger, InvalidInput, "entry signature must be 64 bytes"):
        ledger.submit(Entry.of(genuine.statement, cut))
    accepted(ledger, genuine)


def test_a_signature_in_non_canonical_base64_is_refused() -> None:
    genuine = Entry.sign(draft_statement(), PCT_KEY)
    encoded = base64.b64encode(genuine.signature).decode()
    # 64 bytes leave 4 unused bits before "=="; setting one decodes to the same bytes.
    last = encoded[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = encoded[:-3] + alphabet[alphabet.index(last) ^ 1] + "=="
    assert base64.b64decode(twin) == genuine.signature
    with pytest.raises(InvalidInput, match="canonical base64"):
        Entry.parse(_with_signature(genuine.text, twin))
    for broken in (encoded.rstrip("="), encoded[:-2] + "!!", 12345):
        with pytest.raises(InvalidInput, match="signature"):
            Entry.parse(_with_signature(genuine.text, broken))  # type: ignore[arg-type]
