"""The audit commands: checkpoints, cosigning, proofs, bundles and the auditor's own copy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from commands import render, screen
from commands.app import app
from commands.common import Common, command, emit_json, many_objects
from ledger import merkle
from ledger.bundle import Bundle, read_bundle, verify_bundle
from ledger.errors import InvalidInput, NotFound, ProofError, VerificationFailed
from ledger.keys import Signer, key_id, parse_public_key
from ledger.note import Checkpoint, parse_verifier_key
from ledger.values import parse_slug
from ledger.witness import WitnessState
from projections.audit import cosign_latest, export_bundle, import_bundle, make_checkpoint
from projections.db import default_workers
from projections.log import MerkleLog, b64
from projections.readmodels import ReadModels


@contextmanager
def _log(opts: Common) -> Iterator[MerkleLog]:
    models = ReadModels(opts.open_ledger())
    try:
        log = MerkleLog(models)
        log.catch_up()
        yield log
    finally:
        models.close()


@command(app, "checkpoint")
def checkpoint(opts: Common,
               key: Annotated[str | None, typer.Option(
                   help="The operator's key in the key folder (default: the one whose key id "
                        "is this ledger's operator key).")] = None) -> None:
    """Verify the log, then sign a checkpoint of it with the operator key (C2SP
    tlog-checkpoint): its size and the root the entries themselves give. The operator keeps
    the last checkpoint it signed beside its key, and refuses a log that no longer extends it."""
    ledger = opts.open_ledger()
    operator_key = ledger.identity.operator_public_key
    name = key or opts.key_name("operator", key_id(operator_key))
    signer = opts.signer(name)
    memory_file = WitnessState.path_for(opts.keystore.folder, name)
    memory = WitnessState.load(memory_file)
    with render.progress("verifying the log", quiet=opts.json) as advance:
        record = make_checkpoint(ledger, signer, memory, advance)
    memory.save(memory_file)
    with _log(opts) as log:
        stored = log.checkpoint(record.checkpoint.size)
    cp = stored.checkpoint
    text = stored.note.format()
    if opts.json:
        emit_json({"size": cp.size, "root": b64(cp.root), "checkpoint": text})
        return
    screen.echo(text, nl=False)


@command(app, "cosign")
def cosign_command(opts: Common,
                   partner: Annotated[str, typer.Option("--as", help="The partner cosigning.")],
                   key: Annotated[str | None, typer.Option(
                       help="Key to cosign with; it must be a key the partner acts with now "
                            "(default: found in the key folder by its key id).")]
                   = None) -> None:
    """Verify the log, check the latest checkpoint is consistent with the last one this partner
    cosigned, then cosign it (C2SP tlog-cosignature). A forked log is refused, loudly."""
    parse_slug(partner, "partner id")
    state_file = WitnessState.path_for(opts.keystore.folder, partner)
    state = WitnessState.load(state_file)

    def signer_for(current: set[bytes]) -> Signer:
        if key is not None:
            return opts.signer(key)
        for public in sorted(current):
            found = opts.keystore.find(key_id(public))
            if found is not None:
                return opts.signer(found.name)
        raise NotFound(f"no key in {opts.keystore.folder} is a key {partner!r} acts with now; "
                       f"use --keys to name the folder that holds it")

    remote = opts.remote
    if remote is not None:
        cp, previous = remote.cosign(partner, state, signer_for)
    else:
        with render.progress("verifying the log", quiet=opts.json) as advance:
            done = cosign_latest(opts.open_ledger(), partner, state, signer_for, advance)
        cp, previous = done.checkpoint, done.previous
    state.save(state_file)
    if opts.json:
        emit_json({"partner": partner, "size": cp.size, "root": b64(cp.root),
                   "previous_size": previous})
        return
    since = f" (consistent with size {previous} cosigned before)" if previous else ""
    screen.echo(f"{partner} cosigned the checkpoint of size {cp.size}{since}")


def _checked(check: Any, what: str) -> None:
    try:
        check()
    except ProofError as exc:
        raise VerificationFailed(f"the stored log does not give a valid proof for {what} "
                                 f"({exc}): its tables were altered; run 'ledger verify'") from None


def _entry_index(log: MerkleLog, entry: str) -> int:
    if _NUMBER.fullmatch(entry):
        return int(entry)
    reference, sep, seq = entry.rpartition(":")
    if not sep or not _NUMBER.fullmatch(seq):
        raise InvalidInput(f"ENTRY {entry!r}: give a log index (e.g. 12) or REF:SEQ "
                           f"(e.g. salford-dat-2004:3)")
    return log.index_of(parse_slug(reference, "agreement reference"), int(seq))


@command(app, "prove")
def prove(opts: Common,
          entry: Annotated[str | None, typer.Argument(
              metavar="ENTRY",
              help="A log index, or REF:SEQ, to prove included in the latest checkpoint.")]
          = None,
          size_from: Annotated[int | None, typer.Option(
              "--from", help="Consistency proof from this tree size...")] = None,
          size_to: Annotated[int | None, typer.Option(
              "--to", help="...to this one (default: the latest checkpoint's).")] = None
          ) -> None:
    """An inclusion proof of one entry, or a consistency proof between two tree sizes
    (RFC 9162), each checked before it is printed."""
    if (entry is None) == (size_from is None):
        raise InvalidInput("give ENTRY for an inclusion proof or --from N [--to M] for a "
                           "consistency proof")
    with _log(opts) as log:
        latest = log.latest_checkpoint()
        if entry is not None:
            if latest is None:
                raise NotFound("no checkpoint yet; the operator makes one with "
                               "'ledger checkpoint'")
            cp = latest.checkpoint
            index = _entry_index(log, entry)
            if index >= log.current_size():
                raise NotFound(f"the log has {log.current_size()} entries; there is no entry "
                               f"{index}")
            if index >= cp.size:
                raise InvalidInput(f"entry {index} is newer than the latest checkpoint "
                                   f"(size {cp.size}); ask for a new checkpoint")
            leaf = log.leaf(index)
            # The leaf is hashed from the entry as the event store holds it, and the proof is
            # checked against the signed root: edited log tables can make this fail, never
            # prove what the entries do not say.
            stored = opts.open_ledger().agreement(leaf.reference).history
            if not 0 < leaf.seq <= len(stored):
                raise VerificationFailed(f"the log's index {index} names entry {leaf.seq} of "
                                         f"{leaf.reference!r}, which is not stored; run "
                                         f"'ledger verify'")
            digest = merkle.leaf_hash(stored[leaf.seq - 1].entry.text.encode())
            proof = log.inclusion(index, cp.size)
            _checked(lambda: merkle.verify_inclusion(digest, index, cp.size, proof, cp.root),
                     f"entry {index}")
            document: dict[str, Any] = {
                "log_index": index, "reference": leaf.reference, "seq": leaf.seq,
                "leaf_hash": b64(digest), "tree_size": cp.size, "root": b64(cp.root),
                "proof": [b64(p) for p in proof], "checkpoint": latest.note.format()}
        else:
            assert size_from is not None
            target = size_to if size_to is not None else (
                latest.checkpoint.size if latest else log.current_size())
            proof = log.consistency(size_from, target)
            # Each root is a signed checkpoint's, or recomputed from the entries.
            old, new = log.trusted_root(size_from), log.trusted_root(target)
            _checked(lambda: merkle.verify_consistency(size_from, target, old, new, proof),
                     f"sizes {size_from} to {target}")
            document = {"from": size_from, "to": target, "root_from": b64(old),
                        "root_to": b64(new), "proof": [b64(p) for p in proof]}
    if opts.json:
        emit_json(document)
        return
    for name, value in document.items():
        if isinstance(value, list):
            screen.echo(f"{name}:")
            for item in value:
                screen.echo(f"  {item}")
        elif name == "checkpoint":
            screen.echo("checkpoint:")
            screen.echo("  " + str(value).rstrip("\n").replace("\n", "\n  "))
        else:
            screen.echo(f"{name}: {value}")


@command(app, "export")
def export(opts: Common,
           reference: Annotated[str | None, typer.Argument(
               metavar="REF", help="The agreement to export (default: the whole ledger).")] = None,
           output: Annotated[Path, typer.Option("-o", "--output", help="Bundle file to write.")]
           = Path("bundle.json")) -> None:
    """Write an audit bundle: every entry, the partners' keys, the latest checkpoint with its
    cosignatures, and an inclusion proof of every entry."""
    if output.is_dir():
        raise InvalidInput(f"-o {output} is a folder; give the bundle file's name, e.g. "
                           f"{output / 'bundle.json'}")
    if not output.parent.is_dir():
        raise InvalidInput(f"-o {output}: there is no folder {output.parent}; make it first")
    remote = opts.remote
    if remote is not None:
        if reference is not None:
            raise InvalidInput("over a service, export the whole ledger (leave out REF); "
                               "'ledger verify-bundle' then checks it offline")
        # Made here from the service's checkpoint, tiles and entries, then checked here.
        bundle = remote.bundle()
        verify_bundle(bundle).raise_for_failures()
    else:
        with render.progress("exporting", quiet=opts.json) as advance:
            bundle = export_bundle(opts.open_ledger(), reference, advance)
    entries, cp = bundle.entries, Checkpoint.parse(bundle.checkpoint.text)
    agreements = bundle.agreements
    try:
        output.write_bytes(bundle.dumps())
    except OSError as exc:
        raise InvalidInput(f"cannot write the bundle to {output}: {exc.strerror}") from None
    if opts.json:
        emit_json({"file": str(output), "entries": len(entries), "checkpoint_size": cp.size})
        return
    screen.echo(f"wrote {output}: {len(entries)} entries of {len(agreements)} agreements, "
               f"checkpoint of size {cp.size}")


OperatorKey = Annotated[str | None, typer.Option(
    "--operator-key", metavar="KEY",
    help="The operator's key as you know it independently: its key id or its public key (64 "
         "hex digits each, as 'ledger init' and verify-bundle print them), or its note "
         "verifier key (NAME+ID+KEY).")]

_NUMBER = re.compile(r"[0-9]{1,18}")


def _operator_key(given: str | None, bundle: Bundle) -> tuple[bytes | None, str | None]:
    """The operator key (and note name) the auditor holds, from any of the forms the ledger
    shows it in: its key id, its public key, or its verifier key."""
    if given is None:
        return None, None
    text = given.strip()
    if "+" in text:
        vkey = parse_verifier_key(text)
        return vkey.public_key, vkey.name
    hex_text = text.lower()
    if len(hex_text) == 64 and hex_text == key_id(bundle.operator_key):
        return bundle.operator_key, None  # the key id of the bundle's key: the same key
    return parse_public_key(hex_text), None


@command(app, "verify-bundle")
def verify_bundle_command(opts: Common,
                          path: Annotated[Path, typer.Argument(metavar="FILE",
                                                               help="The bundle file.")],
                          operator_key: OperatorKey = None) -> None:
    """Check an audit bundle offline: signatures, chains, rules replayed, every proof and the
    checkpoint's signatures. Exit 3 on any failure."""
    with many_objects():
        bundle = read_bundle(path)
    expected, name = _operator_key(operator_key, bundle)
    report = verify_bundle(bundle, expected, default_workers(), expected_operator_name=name)
    _report(opts, report, bundle)


def _report(opts: Common, report: Any, bundle: Bundle) -> None:
    cp = Checkpoint.parse(bundle.checkpoint.text)
    if opts.json:
        emit_json({**report.to_json(), "origin": bundle.origin,
                   "operator_key_id": key_id(bundle.operator_key), "checkpoint_size": cp.size})
    else:
        for failure in report.failures:
            screen.echo(f"FAILED {failure.line()}", err=True)
        for check in report.checks:
            screen.echo(f"checked: {check}")
        screen.echo(f"operator key id {key_id(bundle.operator_key)} (compare it with the one "
                   f"you hold)")
        screen.echo(f"{report.verdict()}, checkpoint of size {cp.size} of {bundle.origin}")
    report.raise_for_failures()


@command(app, "import")
def import_command(opts: Common,
                   path: Annotated[Path, typer.Argument(metavar="FILE", help="The bundle file.")],
                   operator_key: OperatorKey = None) -> None:
    """Load a verified bundle into an empty ledger (an auditor's own copy). A bundle that fails
    any check is refused whole and nothing is written."""
    with many_objects():
        bundle = read_bundle(path)
    expected, name = _operator_key(operator_key, bundle)
    location = opts.location
    report = import_bundle(location, bundle, expected, expected_operator_name=name)
    if not report.ok:
        _report(opts, report, bundle)
    if opts.json:
        emit_json({"ledger": location.describe(), "entries": len(bundle.entries),
                   "origin": bundle.origin})
        return
    screen.echo(f"imported {len(bundle.entries)} verified entries into {location.describe()}")
