"""The audit commands: checkpoints, cosigning, proofs, bundles and the auditor's own copy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands import screen
from commands.app import app
from commands.common import Common, command, emit_json, many_objects
from ledger.errors import InvalidInput, NotFound
from ledger.values import parse_slug

if TYPE_CHECKING:
    from ledger.bundle import BundleHead
    from ledger.keys import Signer
    from projections.log import MerkleLog

# Each command imports what it uses in its body: the others, and '--help', start without the
# read models, the log and bundles.


@contextmanager
def _log(opts: Common) -> Iterator[MerkleLog]:
    from projections.log import MerkleLog  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

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
    from commands import render  # noqa: PLC0415
    from ledger.keys import key_id  # noqa: PLC0415
    from ledger.witness import WitnessState  # noqa: PLC0415
    from projections.audit import make_checkpoint  # noqa: PLC0415
    from projections.log import b64  # noqa: PLC0415

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
    from commands import render  # noqa: PLC0415
    from ledger.keys import key_id  # noqa: PLC0415
    from ledger.witness import WitnessState  # noqa: PLC0415
    from projections.audit import cosign_latest  # noqa: PLC0415
    from projections.log import b64  # noqa: PLC0415

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
    from projections.audit import proof_document  # noqa: PLC0415

    with opts.reading() as ledger:
        document = proof_document(ledger, entry, size_from, size_to)
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
           output: Annotated[Path, typer.Option(
               "-o", "--output", help="Bundle file to write: one JSON document, or JSON lines "
                                      "read entry by entry if its name ends in .jsonl.")]
           = Path("bundle.json")) -> None:
    """Write an audit bundle: every entry, the partners' keys, the latest checkpoint with its
    cosignatures, and an inclusion proof of every entry (a whole ledger in lines leaves the
    proofs out: its tree is rebuilt from the entries)."""
    from commands import render  # noqa: PLC0415
    from ledger.note import Checkpoint  # noqa: PLC0415
    from projections.audit import export_bundle  # noqa: PLC0415

    if output.is_dir():
        raise InvalidInput(f"-o {output} is a folder; give the bundle file's name, e.g. "
                           f"{output / 'bundle.json'}")
    if not output.parent.is_dir():
        raise InvalidInput(f"-o {output}: there is no folder {output.parent}; make it first")
    lines = output.suffix == ".jsonl"
    with opts.reading() as ledger, render.progress("exporting", quiet=opts.json) as advance:
        # A whole ledger in lines is checked against its root whole: it carries no proofs.
        bundle = export_bundle(ledger, reference, advance,
                               proofs=not (lines and reference is None))
    entries, cp = bundle.entries, Checkpoint.parse(bundle.checkpoint.text)
    agreements = bundle.agreements
    try:
        with output.open("wb") as file:
            if lines:
                bundle.write_lines(file)
            else:
                file.write(bundle.dumps())
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

def _operator_key(given: str | None, bundle: BundleHead) -> tuple[bytes | None, str | None]:
    """The operator key (and note name) the auditor holds, from any of the forms the ledger
    shows it in: its key id, its public key, or its verifier key."""
    from ledger.keys import key_id, parse_public_key  # noqa: PLC0415
    from ledger.note import parse_verifier_key  # noqa: PLC0415

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
    from ledger.bundle import open_bundle, verify_bundle  # noqa: PLC0415
    from projections.db import default_workers  # noqa: PLC0415

    with many_objects(), open_bundle(path) as source:
        expected, name = _operator_key(operator_key, source.head)
        report = verify_bundle(source, expected, default_workers(), expected_operator_name=name)
    _report(opts, report, source.head)


def _report(opts: Common, report: Any, bundle: BundleHead) -> None:
    from ledger.keys import key_id  # noqa: PLC0415
    from ledger.note import Checkpoint  # noqa: PLC0415

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
    from ledger.bundle import open_bundle  # noqa: PLC0415
    from projections.audit import import_bundle  # noqa: PLC0415

    location = opts.location
    with many_objects(), open_bundle(path) as source:
        head = source.head
        expected, name = _operator_key(operator_key, head)
        report = import_bundle(location, source, expected, expected_operator_name=name)
    if not report.ok:
        _report(opts, report, head)
    if opts.json:
        emit_json({"ledger": location.describe(), "entries": report.read,
                   "origin": head.origin})
        return
    screen.echo(f"imported {report.read} verified entries into {location.describe()}")
