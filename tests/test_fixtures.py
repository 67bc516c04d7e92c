"""The committed signed fixtures and docs/FORMAT.md: stable to the byte, checkable by outsiders.

The outside checker here imports nothing of the ledger: only ``json``, ``hashlib``, ``base64``,
``cryptography`` and ``rfc8785``, following docs/FORMAT.md as an auditor would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.bodies import Changes, FundingLine, NewPartner, NoticeBody, VaryBody
from ledger.domain import Agreement
from ledger.statement import ACTIONS, Entry
from ledger.values import FinancialYear
from tests.fixtures.generate import SIGNED, SIGNED_V1, example, render
from tests.scenarios import details

FORMAT_MD = Path(__file__).parent.parent / "docs" / "FORMAT.md"
CONTEXT = b"agreement-ledger/v1\n"


def committed() -> list[dict[str, Any]]:
    """The committed fixture files, in chain order."""
    return [json.loads(path.read_bytes()) for path in sorted(SIGNED.glob("*.json"))]


def format_md() -> str:
    return FORMAT_MD.read_text(encoding="utf-8")


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- stable to the byte -------------------------------------------------------------------------


def test_the_committed_fixtures_regenerate_byte_for_byte() -> None:
    wanted = render()
    on_disk = {path.name: path.read_bytes() for path in SIGNED.glob("*.json")}
    assert sorted(on_disk) == sorted(wanted), "run: python -m tests.fixtures.generate"
    for name, data in wanted.items():
        assert on_disk[name] == data, f"{name} differs from what the generator writes now"


# --- an outside checker -------------------------------------------------------------------------


def test_every_committed_entry_checks_out_with_cryptography_and_rfc8785_alone() -> None:
    keys: dict[str, bytes] = {}  # partner id -> public key, as the chain introduces them
    prev = "0" * 64
    for seq, fixture in enumerate(committed(), start=1):
        statement = fixture["statement"]
        entry_text: str = fixture["entry"]
        assert (statement["seq"], statement["prev"]) == (seq, prev)
        assert statement["v"] == 2
        assert len(statement["act"]) == 32
        body = statement["body"]
        if statement["action"] == "draft":
            keys[statement["partner"]] = bytes.fromhex(body["partner"]["public_key"])
        elif statement["action"] == "join":
            keys[statement["partner"]] = bytes.fromhex(body["public_key"])
        public_key = keys[statement["partner"]]
        assert fixture["public_key"] == public_key.hex()
        assert statement["key"] == hashlib.sha256(public_key).hexdigest()

        signed = CONTEXT + rfc8785.dumps(statement)
        assert bytes.fromhex(fixture["signing_input_hex"]) == signed
        signature = base64.b64decode(fixture["signature"], validate=True)
        assert len(signature) == 64
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed)

        document = {"signature": fixture["signature"], "statement": statement}
        assert entry_text.encode() == rfc8785.dumps(document)
        assert fixture["entry_hash"] == hashlib.sha256(entry_text.encode()).hexdigest()
        prev = fixture["entry_hash"]
    assert len(keys) == 2


def state_document(fixtures: list[dict[str, Any]]) -> bytes:
    """The canonical state the sign entries cover, built from the entries before them."""
    terms: dict[str, Any] = {}
    partners: list[dict[str, Any]] = []
    lines: dict[tuple[str, str, str], dict[str, Any]] = {}
    for fixture in fixtures:
        s = fixture["statement"]
        if s["action"] in ("draft", "join"):
            details = s["body"]["partner"] if s["action"] == "draft" else s["body"]
            partners.append({"id": s["partner"], **{k: details[k] for k in (
                "name", "role", "lead", "host", "pool_manager")}})
            terms = s["body"].get("agreement", terms)
        elif s["action"] == "contribute":
            line = {**s["body"]["line"], "partner": s["partner"]}
            lines[(line["year"], line["partner"], line["source"])] = line
    return rfc8785.dumps({
        "agreement": terms,
        "partners": sorted(partners, key=lambda p: p["id"]),
        "funding": [lines[k] for k in sorted(lines)],
    })


def test_both_signatures_cover_the_state_digest_as_documented() -> None:
    fixtures = committed()
    signs = [f for f in fixtures if f["statement"]["action"] == "sign"]
    state = state_document([f for f in fixtures if f["statement"]["action"] != "sign"])
    digest = hashlib.sha256(state).hexdigest()
    assert [f["statement"]["body"]["state"] for f in signs] == [digest, digest]
    assert {f["statement"]["partner"] for f in signs} == {"salford-pct", "salford-council"}
    assert state.decode() in format_md()


# --- docs/FORMAT.md -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "seed", "public_key", "key_id", "statement", "signature", "entry", "entry_hash", "state",
])
def test_format_md_shows_the_generated_example(name: str) -> None:
    assert example()[name] in format_md(), f"docs/FORMAT.md lacks the example's {name}"


def test_format_md_shows_the_exact_signed_bytes() -> None:
    assert example()["signing_input_hex"] in _squeezed(format_md())


def _block(heading: str, language: str) -> str:
    match = re.search(rf"{re.escape(heading)}\n.*?```{language}\n(.*?)```", format_md(), re.S)
    assert match is not None, f"docs/FORMAT.md has no {language} block under {heading!r}"
    return match.group(1)


def test_the_openssl_commands_of_format_md_check_the_example(tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "openssl", "xxd", "sed", "cmp")
               if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the documented commands need {', '.join(missing)}")
    script = tmp_path / "check.sh"
    script.write_text(_block("### Checking it with openssl", "sh"), encoding="utf-8")
    done = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    values = example()
    assert f"{values['key_id']} *stdin" in done.stdout
    assert f"{values['entry_hash']} *entry.json" in done.stdout
    assert "signed bytes as documented" in done.stdout
    assert "Signature Verified Successfully" in done.stdout
    assert "signature reproduced from the seed" in done.stdout


def test_the_python_check_of_format_md_verifies_the_example(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(_block("### Checking it with Python", "python"), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"verified; entry hash {example()['entry_hash']}"


def test_format_md_documents_every_action_and_every_body_field() -> None:
    text = format_md()
    for action in ACTIONS:
        assert f"### `{action}`" in text
    year = FinancialYear(2004)
    every_change = Changes(
        title="t", basis="b", flexibilities=("pooled-budget",), terms_hash="0" * 64,
        start=date(2004, 4, 1), end=None, notice_months=3, on_withdrawal="continue",
        funding=(FundingLine("p", year, "s", Decimal("1.00"), "confirmed"),),
        add_partners=(NewPartner("q", details("gm-probation")),), remove_partners=("r",),
        ends_agreement=True)
    names: set[str] = set(every_change.to_json())
    names |= set(VaryBody("v1", "why", every_change).to_json())
    names |= set(every_change.to_json()["funding"][0]) | set(NoticeBody("withdrawal", "").to_json())
    for fixture in committed():
        names |= set(fixture["statement"])
        names |= _keys(fixture["statement"]["body"])
    names |= {"payment", "variation", "reason", "signatory", "designation", "public_key"}
    undocumented = sorted(n for n in names if f"`{n}`" not in text and f'"{n}"' not in text)
    assert undocumented == []


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    return set()


# --- statements written before acts had an identity ---------------------------------------------


def test_entries_written_before_acts_had_an_identity_still_replay_through_every_rule() -> None:
    # The five entries as version 1 statements, as ledgers written by 0.1 hold them.
    acts = []
    for path in sorted(SIGNED_V1.glob("*.json")):
        entry = Entry.parse(json.loads(path.read_bytes())["entry"])
        assert (entry.statement.version, entry.statement.act) == (1, None)
        acts.append((entry, entry.statement.at + timedelta(minutes=1)))
    agreement = Agreement.replay(acts, acts[0][0].statement.origin)
    assert agreement.executed_seq == 5
    # After them, the agreement takes version 2 statements, and never goes back.
    assert agreement.format_version == 1
