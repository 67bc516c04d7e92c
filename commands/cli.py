"""``ledger``: the command line of the agreement ledger.

Each command parses its options, makes one call into the core (:mod:`ledger`) or the read side
(:mod:`projections`), and prints the result; every rule lives in the core. ``--json`` prints the
documented JSON form of the result (docs/CLI.md).
"""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands import screen
from commands.app import app, keys_app
from commands.common import Common, command, emit_json, open_regular
from ledger.errors import InvalidInput, NotFound
from ledger.values import (
    at_text,
    parse_date,
    parse_slug,
    parse_year,
    read_at,
    read_money,
    read_notice,
)

if TYPE_CHECKING:
    from ledger.acts import Recorded
    from ledger.bodies import FundingLine, PartnerDetails
    from ledger.domain import Agreement
    from ledger.verify import Report
    from projections.rows import AgreementRows

# A command imports what it uses in its body (the event store, the read models, the tables):
# '--help' and every command start without loading what the others need.

# --- shared option types -------------------------------------------------------------------------

Ref = Annotated[str, typer.Argument(metavar="REF",
                                    help="Agreement reference, e.g. salford-dat-2004.")]
As = Annotated[str, typer.Option("--as", metavar="PARTNER", help="The partner acting (its id).")]
At = Annotated[str | None, typer.Option(
    "--at", metavar="WHEN",
    help="When the act was done: YYYY-MM-DD or RFC 3339 (default: now).")]
KeyName = Annotated[str | None, typer.Option(
    "--key", metavar="KEY",
    help="Key to sign with (default: the partner's current key in the key folder).")]
DEFAULT_SOURCE = "contribution"


def _at(value: str | None) -> datetime | None:
    return None if value is None else read_at(value)


def _day(value: str | None, what: str) -> date | None:
    return None if value is None else parse_date(value, what)


def _today() -> date:
    return datetime.now(UTC).date()


def _acted(opts: Common, recorded: Recorded) -> None:
    def tell() -> None:
        s = recorded.entry.statement
        agreement = recorded.agreement
        state = agreement.state_on(s.at.date())
        if opts.json:
            emit_json({"reference": s.agreement, "seq": s.seq, "action": s.action,
                       "partner": s.partner, "key_id": s.key, "at": at_text(s.at),
                       "entry_hash": recorded.entry.hash, "state": state,
                       "state_digest": agreement.state_digest(),
                       "attempts": recorded.attempts})
            return
        screen.echo(f"recorded {s.agreement} entry {s.seq}: {s.action} by {s.partner} "
                    f"at {at_text(s.at)} (entry {recorded.entry.hash[:16]}); "
                    f"agreement then {state}")

    # The act has landed: from here on, however the command ends, it is reported as done.
    opts.landed = tell
    tell()
    opts.told = True


def _terms_hash(terms: Path | None, terms_hash: str | None) -> str | None:
    if terms is not None and terms_hash is not None:
        raise InvalidInput("give --terms FILE or --terms-hash HEX, not both")
    if terms is not None:
        import hashlib  # noqa: PLC0415

        with open_regular(terms, "terms document") as file:
            try:
                return hashlib.file_digest(file, "sha256").hexdigest()
            except OSError as exc:
                raise InvalidInput(f"cannot read terms document {terms}: "
                                   f"{exc.strerror}") from None
    if terms_hash is not None:
        digest = terms_hash.strip().lower()
        if len(digest) != 64 or digest.strip(string.hexdigits.lower()):
            raise InvalidInput(f"--terms-hash {terms_hash!r}: a SHA-256 is 64 hex digits (or give "
                               f"the document itself with --terms FILE)")
        return digest
    return None


def _details(*, name: str, role: str, lead: bool, host: bool, pool: bool,
             signatory: str, designation: str, public_key: bytes) -> PartnerDetails:
    from ledger.bodies import PartnerDetails  # noqa: PLC0415

    return PartnerDetails(name, role, lead, host, pool, signatory, designation,
                          public_key).checked()


def _signer_for_partner(opts: Common, reference: str, partner: str, key: str | None) -> Any:
    # The key is most often the one named like the partner: its opening begins now, beside
    # the reading of the agreement that says which key is the partner's current one.
    opts.prepare_key(key or partner)
    agreement = opts.open_acting().agreement(reference)
    current = agreement.partners.get(partner)
    if current is None:
        raise NotFound(f"{partner!r} is not a partner of agreement {reference!r}")
    return opts.signer_for(partner, current.current.key_id, key)


# --- the ledger and keys -----------------------------------------------------------------------


@command(app, "init")
def init(opts: Common,
         origin: Annotated[str | None, typer.Option(
             help="The ledger's origin name, first line of its checkpoints "
                  "(e.g. ledger.salford.example/dat).")] = None,
         operator: Annotated[str, typer.Option(
             help="Name of the operator's key in the key folder (created if missing).")]
         = "operator") -> None:
    """Create a new ledger and its operator (checkpoint-signing) key."""
    from ledger.identity import new_origin  # noqa: PLC0415
    from ledger.keystore import PublicKeyInfo, check_key_name  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

    location = opts.location
    stem = location.path.stem if location.path else location.dbname
    # Everything that can be refused is refused before a file or table is made.
    name = new_origin(origin or f"agreement-ledger/{'-'.join(stem.split()) or 'ledger'}")
    check_key_name(operator)
    if location.is_sqlite and location.sqlite_kind() == "ledger":
        raise InvalidInput(f"{location.describe()} already holds a ledger; nothing was changed")
    store = opts.keystore
    if store.exists(operator):
        # The public key the ledger will trust comes from the private key, never from the
        # .pub beside it (which opening checks): anyone who can write the folder can swap that.
        info = PublicKeyInfo(operator, opts.signer(operator).public_key)
    else:
        info = store.create(operator, opts.passphrase(operator, new=True))
    made = location.is_sqlite and location.sqlite_kind() == "missing"
    try:
        # The operator signs checkpoints under the origin as its key name (C2SP
        # tlog-checkpoint); a database that holds a ledger already is refused.
        ledger = opts.open_ledger(must_exist=False)
        identity = ledger.initialise(name, name, info.public_key)
        # Every table is made now, by the role that makes the ledger (its owner): the roles
        # that write acts or read need no right to create anything.
        models = ReadModels(ledger)
        try:
            models.ensure_tables()
        finally:
            models.close()
    except BaseException:
        if made:
            opts.close()
            _remove_sqlite(location)
        raise
    if opts.json:
        emit_json({"ledger": location.describe(), "origin": identity.origin,
                   "operator": operator, "operator_key_id": info.key_id})
        return
    screen.echo(f"created ledger {identity.origin!r} at {location.describe()}; "
                f"operator key {operator} ({info.key_id[:16]})")


def _remove_sqlite(location: Any) -> None:
    """Take away a ledger file this command made and could not finish."""
    assert location.path is not None
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{location.path}{suffix}").unlink(missing_ok=True)


@command(keys_app, "new")
def keys_new(opts: Common,
             partner: Annotated[str, typer.Argument(
                 metavar="NAME", help="Name of the key (usually the partner id).")]) -> None:
    """Create an Ed25519 key, stored encrypted (PKCS#8 PEM) in the key folder."""
    from ledger.keystore import check_key_name  # noqa: PLC0415

    store = opts.keystore
    check_key_name(partner)
    if store.exists(partner):
        raise InvalidInput(f"a key named {partner!r} already exists in {store.folder}")
    info = store.create(partner, opts.passphrase(partner, new=True))
    if opts.json:
        emit_json({"name": info.name, "key_id": info.key_id,
                   "public_key": info.public_key.hex(), "folder": str(store.folder)})
        return
    screen.echo(f"created key {info.name} in {store.folder}")
    screen.echo(f"  key id:     {info.key_id}")
    screen.echo(f"  public key: {info.public_key.hex()}")


@command(keys_app, "list")
def keys_list(opts: Common) -> None:
    """List the keys in the key folder with their key ids."""
    infos = opts.keystore.list()
    if opts.json:
        emit_json({"folder": str(opts.keystore.folder), "keys": [
            {"name": i.name, "key_id": i.key_id, "public_key": i.public_key.hex()}
            for i in infos]})
        return
    if not infos:
        screen.echo(f"no keys in {opts.keystore.folder}")
    for info in infos:
        screen.echo(f"{info.name:24} {info.key_id}")


@command(keys_app, "show")
def keys_show(opts: Common,
              partner: Annotated[str, typer.Argument(metavar="NAME",
                                                     help="Name of the key.")]) -> None:
    """Show one key's id and public key."""
    info = opts.keystore.public(partner)
    if opts.json:
        emit_json({"name": info.name, "key_id": info.key_id, "public_key": info.public_key.hex()})
        return
    screen.echo(f"name:       {info.name}")
    screen.echo(f"key id:     {info.key_id}")
    screen.echo(f"public key: {info.public_key.hex()}")


# --- partner acts --------------------------------------------------------------------------------


@command(app, "draft")
def draft(opts: Common, reference: Ref, partner: As,
          title: Annotated[str, typer.Option(help="Title of the agreement.")],
          start: Annotated[str, typer.Option(help="Start date, YYYY-MM-DD.")],
          notice: Annotated[str, typer.Option(help="Notice period, e.g. 6m.")],
          name: Annotated[str, typer.Option(help="The convening partner's name.")],
          role: Annotated[str, typer.Option(help="commissioning, provider or other.")],
          signatory: Annotated[str, typer.Option(help="Who signs for the convenor.")],
          designation: Annotated[str, typer.Option(help="The signatory's designation.")],
          terms: Annotated[Path | None, typer.Option(
              help="The terms document; the ledger keeps its SHA-256.")] = None,
          terms_hash: Annotated[str | None, typer.Option(
              help="SHA-256 of the terms document, if the file is not at hand.")] = None,
          end: Annotated[str | None, typer.Option(help="End date, YYYY-MM-DD.")] = None,
          agreed: Annotated[str | None, typer.Option(
              help="Date of agreement as the document states it.")] = None,
          basis: Annotated[str, typer.Option(help="Legal basis.")] = "",
          flexibility: Annotated[list[str] | None, typer.Option(
              help="A flexibility used (repeat): pooled-budget, lead-commissioning, "
                   "integrated-provision.")] = None,
          on_withdrawal: Annotated[str, typer.Option(
              help="terminate: one partner leaving ends it; continue: the others carry on.")]
          = "terminate",
          lead: Annotated[bool, typer.Option(help="The convenor is lead commissioner.")] = False,
          host: Annotated[bool, typer.Option(help="The convenor is the host partner.")] = False,
          pool_manager: Annotated[bool, typer.Option(
              help="The convenor manages the pooled fund.")] = False,
          key: KeyName = None, at: At = None) -> None:
    """Draft a new agreement; the convening partner is its first partner."""
    from ledger.bodies import Terms  # noqa: PLC0415

    parse_slug(reference, "agreement reference")
    parse_slug(partner, "partner id")
    digest = _terms_hash(terms, terms_hash)
    if digest is None:
        raise InvalidInput("give the terms document with --terms FILE (or --terms-hash HEX)")
    flex = sorted(set(flexibility or []))
    agreement_terms = Terms(
        title, basis, tuple(flex), digest, _day(agreed, "--agreed"),
        parse_date(start, "--start"), _day(end, "--end"), read_notice(notice),
        on_withdrawal).checked()
    signer = opts.signer(key or partner)
    details = _details(name=name, role=role, lead=lead, host=host, pool=pool_manager,
                       signatory=signatory, designation=designation,
                       public_key=signer.public_key)
    _acted(opts, opts.open_acting().draft(reference, partner, agreement_terms, details, signer,
                                          _at(at)))


@command(app, "join")
def join(opts: Common, reference: Ref, partner: As,
         name: Annotated[str, typer.Option(help="The partner's name.")],
         role: Annotated[str, typer.Option(help="commissioning, provider or other.")],
         signatory: Annotated[str, typer.Option(help="Who signs for the partner.")],
         designation: Annotated[str, typer.Option(help="The signatory's designation.")],
         lead: Annotated[bool, typer.Option(help="Lead commissioner.")] = False,
         host: Annotated[bool, typer.Option(help="Host partner.")] = False,
         pool_manager: Annotated[bool, typer.Option(help="Manages the pooled fund.")] = False,
         key: KeyName = None, at: At = None) -> None:
    """Join a draft agreement, signing with the partner's own key (proof of possession)."""
    parse_slug(partner, "partner id")
    signer = opts.signer(key or partner)
    details = _details(name=name, role=role, lead=lead, host=host, pool=pool_manager,
                       signatory=signatory, designation=designation,
                       public_key=signer.public_key)
    _acted(opts, opts.open_acting().join(reference, partner, details, signer, _at(at)))


@command(app, "contribute")
def contribute(opts: Common, reference: Ref, partner: As,
               year: Annotated[str, typer.Option(help="Financial year, e.g. 2003/04.")],
               amount: Annotated[str | None, typer.Option(
                   help="Pounds, e.g. 341740 or 341740.50 (omit with --tba).")] = None,
               source: Annotated[str | None, typer.Option(
                   help=f"Funding source (default {DEFAULT_SOURCE!r}; for a payment, the "
                        f"partner's only line that year).")] = None,
               indicative: Annotated[bool, typer.Option(
                   help="The amount is indicative, not confirmed.")] = False,
               tba: Annotated[bool, typer.Option(help="Amount to be announced.")] = False,
               paid: Annotated[bool, typer.Option(
                   help="Record a payment into the pool instead of declaring funding.")]
               = False,
               payment_reference: Annotated[str | None, typer.Option(
                   "--reference", help="With --paid: your own reference for the payment "
                                       "(invoice or remittance number).")] = None,
               key: KeyName = None, at: At = None) -> None:
    """Declare one of the partner's funding lines, or record a payment (--paid)."""
    from ledger.bodies import FundingLine  # noqa: PLC0415

    if sum((indicative, tba, paid)) > 1:
        raise InvalidInput("give at most one of --indicative, --tba and --paid")
    if payment_reference is not None and not paid:
        raise InvalidInput("--reference belongs to a payment: give --paid")
    fy = parse_year(year)
    if tba and amount is not None:
        raise InvalidInput("a --tba line has no amount yet; leave out --amount")
    if not tba and amount is None:
        raise InvalidInput("give --amount (or --tba when the amount is not yet known)")
    money = None if amount is None else read_money(amount)
    signer = _signer_for_partner(opts, reference, partner, key)
    ledger = opts.open_acting()
    if paid:
        assert money is not None
        _acted(opts, ledger.pay(reference, partner, fy, money, source, signer, _at(at),
                                payment_reference))
        return
    status = "tba" if tba else "indicative" if indicative else "confirmed"
    line = FundingLine(partner, fy, source or DEFAULT_SOURCE, money, status).checked()
    _acted(opts, ledger.declare(reference, line, signer, _at(at)))


@command(app, "reverse")
def reverse(opts: Common, reference: Ref,
            payment: Annotated[int, typer.Argument(
                metavar="SEQ", help="The entry (seq) of the payment recorded in error.")],
            partner: As,
            reason: Annotated[str, typer.Option(help="Why it is reversed.")],
            key: KeyName = None, at: At = None) -> None:
    """Reverse a payment the partner recorded in error: the entry stays in the record and no
    longer counts. Record the right payment afterwards with 'contribute --paid'."""
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().reverse(reference, partner, payment, reason, signer,
                                            _at(at)))


@command(app, "sign")
def sign(opts: Common, reference: Ref, partner: As,
         state: Annotated[str | None, typer.Option(
             help="The state digest you reviewed (from 'ledger status'); refused if it "
                  "changed.")] = None,
         key: KeyName = None, at: At = None) -> None:
    """Sign the agreement's current terms, partners and funding."""
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().sign(reference, partner, signer, _at(at), state))


def _fund(spec: str) -> FundingLine:
    from ledger.bodies import FundingLine  # noqa: PLC0415

    fields: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise InvalidInput(f"--fund {spec!r}: write partner=P,year=Y,amount=A"
                               f"[,source=S][,status=indicative]")
        fields[name.strip()] = value.strip()
    unknown = set(fields) - {"partner", "year", "amount", "source", "status"}
    if unknown or not {"partner", "year"} <= set(fields):
        raise InvalidInput(f"--fund {spec!r}: needs partner= and year=, knows amount=, "
                           f"source=, status=")
    status = fields.get("status", "confirmed")
    amount = fields.get("amount")
    money = None if status == "tba" or amount is None else read_money(amount)
    return FundingLine(parse_slug(fields["partner"], "partner id"), parse_year(fields["year"]),
                       fields.get("source", DEFAULT_SOURCE), money, status).checked()


def _partner_key(opts: Common, given: str) -> bytes:
    """``--partner-key``: 64 hex digits as the new partner sent them, or the name of a key
    whose private key is in the folder, opened so that its public half cannot be swapped."""
    from ledger.keys import parse_public_key  # noqa: PLC0415

    if len(given) == 64 and all(c in string.hexdigits for c in given):
        return parse_public_key(given)
    store = opts.keystore
    if store.only_public(given):
        raise InvalidInput(f"--partner-key {given}: the key folder holds only the public half "
                           f"of that key, which is not trusted; give the new partner's public "
                           f"key as 64 hex digits instead")
    return opts.signer(given).public_key


@command(app, "vary")
def vary(opts: Common, reference: Ref, partner: As,
         variation: Annotated[str, typer.Option("--id", help="Id of the variation, e.g. v1.")],
         reason: Annotated[str, typer.Option(help="Why the agreement changes.")],
         terms: Annotated[Path | None, typer.Option(help="New terms document.")] = None,
         terms_hash: Annotated[str | None, typer.Option(help="SHA-256 of new terms.")] = None,
         title: Annotated[str | None, typer.Option(help="New title.")] = None,
         basis: Annotated[str | None, typer.Option(help="New legal basis.")] = None,
         start: Annotated[str | None, typer.Option(help="New start date.")] = None,
         end: Annotated[str | None, typer.Option(help="New end date.")] = None,
         no_end: Annotated[bool, typer.Option(help="Remove the end date.")] = False,
         notice: Annotated[str | None, typer.Option(help="New notice period, e.g. 3m.")]
         = None,
         flexibility: Annotated[list[str] | None, typer.Option(
             help="The flexibilities after the variation (repeat; replaces the list).")] = None,
         on_withdrawal: Annotated[str | None, typer.Option(help="New withdrawal policy.")]
         = None,
         fund: Annotated[list[str] | None, typer.Option(
             metavar="LINE", help="A funding line to set (repeat), as partner=P,year=Y,amount=A "
                                 "and if need be ,source=S and ,status=confirmed|indicative|tba "
                                 "(e.g. partner=salford-pct,year=2004/05,amount=368220).")]
         = None,
         remove_partner: Annotated[list[str] | None, typer.Option(
             help="A partner to remove (repeat).")] = None,
         add_partner: Annotated[str | None, typer.Option(help="Id of a partner to add.")]
         = None,
         partner_name: Annotated[str | None, typer.Option(help="Added partner's name.")]
         = None,
         partner_role: Annotated[str, typer.Option(help="Added partner's role.")] = "other",
         partner_signatory: Annotated[str | None, typer.Option(
             help="Added partner's signatory.")] = None,
         partner_designation: Annotated[str | None, typer.Option(
             help="Added partner's signatory's designation.")] = None,
         partner_key: Annotated[str | None, typer.Option(
             help="Added partner's key: a key name in the folder or 64 hex digits.")] = None,
         end_agreement: Annotated[bool, typer.Option(
             help="The variation ends the agreement once all consent.")] = False,
         expires: Annotated[str | None, typer.Option(
             help="The last day it may gather consents, YYYY-MM-DD; it lapses after.")] = None,
         succeed: Annotated[str | None, typer.Option(
             help="The partner (abolished, say) whose place, funding and obligations the "
                  "partner given with --add-partner takes over.")] = None,
         recover_key: Annotated[str | None, typer.Option(
             help="The partner that lost its key: it gets --partner-signatory, "
                  "--partner-designation and --partner-key, and consents with that key.")]
         = None,
         key: KeyName = None, at: At = None) -> None:
    """Propose a variation; it takes effect when every partner has consented."""
    from ledger import bodies  # noqa: PLC0415
    from ledger.bodies import Changes, NewPartner  # noqa: PLC0415

    if end is not None and no_end:
        raise InvalidInput("give --end or --no-end, not both")
    adds: tuple[NewPartner, ...] = ()
    successions: tuple[bodies.Succession, ...] = ()
    recoveries: tuple[bodies.Recovery, ...] = ()
    if add_partner is not None:
        if not (partner_name and partner_signatory and partner_designation and partner_key):
            raise InvalidInput("--add-partner needs --partner-name, --partner-signatory, "
                               "--partner-designation and --partner-key")
        public = _partner_key(opts, partner_key)
        adds = (NewPartner(parse_slug(add_partner, "partner id"), _details(
            name=partner_name, role=partner_role, lead=False, host=False, pool=False,
            signatory=partner_signatory, designation=partner_designation, public_key=public)),)
        if succeed is not None:
            successions = (bodies.Succession(parse_slug(succeed, "partner id"), adds[0]),)
            adds = ()
    elif succeed is not None:
        raise InvalidInput("--succeed needs the successor: --add-partner ID with its "
                           "--partner-name, --partner-signatory, --partner-designation and "
                           "--partner-key")
    if recover_key is not None:
        if not (partner_signatory and partner_designation and partner_key):
            raise InvalidInput("--recover-key needs --partner-signatory, "
                               "--partner-designation and --partner-key (the new key)")
        recoveries = (bodies.Recovery(parse_slug(recover_key, "partner id"), partner_signatory,
                                      partner_designation, _partner_key(opts, partner_key)),)
    kwargs: dict[str, Any] = {}
    if end is not None or no_end:
        kwargs["end"] = None if no_end else parse_date(end, "--end")
    changes = Changes(
        title=title, basis=basis,
        flexibilities=None if flexibility is None else tuple(sorted(set(flexibility))),
        terms_hash=_terms_hash(terms, terms_hash), start=_day(start, "--start"),
        notice_months=None if notice is None else read_notice(notice),
        on_withdrawal=on_withdrawal, funding=tuple(_fund(f) for f in fund or []),
        add_partners=adds, remove_partners=tuple(remove_partner or []),
        ends_agreement=end_agreement, successions=successions, recoveries=recoveries, **kwargs)
    changes = changes.checked()
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().vary(reference, partner, variation, reason, changes, signer,
                                         _at(at), _day(expires, "--expires")))


@command(app, "consent")
def consent(opts: Common, reference: Ref,
            variation: Annotated[str, typer.Argument(metavar="VARIATION",
                                                     help="Id of the variation.")],
            partner: As,
            proposal: Annotated[str | None, typer.Option(
                help="The hash of the proposal you reviewed (from 'ledger status'); refused if "
                     "the variation is another.")] = None,
            key: KeyName = None, at: At = None) -> None:
    """Consent to a pending variation; the last consent puts it into effect."""
    from ledger.keys import key_id  # noqa: PLC0415

    ledger = opts.open_acting()
    # The core says which key signs: the partner's own, a key recovered for it, or the key a
    # partner the variation brings in proves by consenting.
    wanted = ledger.agreement(reference).consent_key(partner, variation)
    if wanted is None and key is None:
        raise NotFound(f"{partner!r} is not a partner of agreement {reference!r}")
    signer = opts.signer_for(partner, key_id(wanted) if wanted else "", key)
    _acted(opts, ledger.consent(reference, partner, variation, signer, _at(at),
                                proposal and proposal.lower()))


@command(app, "withdraw")
def withdraw(opts: Common, reference: Ref, partner: As,
             variation: Annotated[str | None, typer.Option(
                 help="Withdraw this variation, which the partner proposed.")] = None,
             notice_entry: Annotated[int | None, typer.Option(
                 "--notice", help="Withdraw the partner's notice given by this entry "
                                  "(its seq), before it takes effect.")] = None,
             reason: Annotated[str, typer.Option(help="Why it is withdrawn.")] = "",
             key: KeyName = None, at: At = None) -> None:
    """Take back the partner's own pending variation, or its notice before it takes effect."""
    if (variation is None) == (notice_entry is None):
        raise InvalidInput("give --variation ID or --notice SEQ, one of them")
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().withdraw(reference, partner, signer, variation=variation,
                                             notice=notice_entry, reason=reason, at=_at(at)))


@command(app, "reject")
def reject(opts: Common, reference: Ref,
           variation: Annotated[str, typer.Argument(metavar="VARIATION",
                                                    help="Id of the variation.")],
           partner: As,
           reason: Annotated[str, typer.Option(help="Why it is rejected.")] = "",
           key: KeyName = None, at: At = None) -> None:
    """Reject a pending variation the partner is asked to consent to: it can no longer take
    effect."""
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().reject(reference, partner, variation, reason, signer,
                                           _at(at)))


@command(app, "acknowledge")
def acknowledge(opts: Common, reference: Ref,
                notice_entry: Annotated[int, typer.Argument(
                    metavar="SEQ", help="The entry (seq) of the backdated notice.")],
                partner: As, key: KeyName = None, at: At = None) -> None:
    """Accept the date a notice recorded late gives itself: once every other partner has,
    its notice period runs from that date rather than from when it was recorded."""
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().acknowledge(reference, partner, notice_entry, signer,
                                                _at(at)))


@command(app, "notice")
def notice(opts: Common, reference: Ref, partner: As,
           reason: Annotated[str, typer.Option(help="Why notice is given.")] = "",
           termination: Annotated[bool, typer.Option(
               help="Notice to end the whole agreement, not only the partner's part.")]
           = False,
           key: KeyName = None, at: At = None) -> None:
    """Give notice of withdrawal (or of termination)."""
    signer = _signer_for_partner(opts, reference, partner, key)
    kind = "termination" if termination else "withdrawal"
    _acted(opts, opts.open_acting().notice(reference, partner, kind, reason, signer, _at(at)))


@command(app, "terminate")
def terminate(opts: Common, reference: Ref, partner: As,
              reason: Annotated[str, typer.Option(help="Why it ends.")] = "",
              key: KeyName = None, at: At = None) -> None:
    """Record the end of the agreement once notice has run out or its end date has come."""
    signer = _signer_for_partner(opts, reference, partner, key)
    _acted(opts, opts.open_acting().terminate(reference, partner, reason, signer, _at(at)))


@command(app, "appoint")
def appoint(opts: Common, reference: Ref, partner: As,
            signatory: Annotated[str, typer.Option(help="The new signatory.")],
            designation: Annotated[str, typer.Option(help="Their designation.")],
            new_key: Annotated[str, typer.Option(
                "--key", help="Name of the new signatory's key in the key folder.")],
            current_key: Annotated[str | None, typer.Option(
                help="Name of the current key, if not found by its id.")] = None,
            at: At = None) -> None:
    """Change the partner's signatory and key, signed by the current key."""
    # The new key is opened: its public half comes from the private key, not from a .pub.
    public = opts.signer(new_key).public_key
    signer = _signer_for_partner(opts, reference, partner, current_key)
    _acted(opts, opts.open_acting().appoint(reference, partner, signatory, designation, public,
                                            signer, _at(at)))


# --- reading -------------------------------------------------------------------------------------

AsOf = Annotated[str | None, typer.Option(
    "--as-of", metavar="DATE", help="Show the agreement as it stood at the end of this date.")]
AsOfEntry = Annotated[int | None, typer.Option(
    "--as-of-entry", metavar="N", help="Show the agreement as it stood after entry N.")]


def _agreement_at(opts: Common, reference: str, as_of: str | None,
                  as_of_entry: int | None) -> tuple[Agreement, date]:
    """The agreement now, or as it stood at a date or entry, replayed from its own entries:
    one agreement replayed costs less than bringing every read model up to date (which acts
    leave to the next read), and needs no SQLAlchemy. Over a service, every signature and rule
    is checked here. With it, the day it is judged on."""
    from projections.asof import agreement_as_of  # noqa: PLC0415

    day = _day(as_of, "--as-of")
    remote = opts.remote
    source = remote if remote is not None else opts.open_ledger()
    agreement = agreement_as_of(source, reference, day, as_of_entry)
    # As of an entry, the agreement is judged on that entry's own date, not today's.
    return agreement, day or (agreement.last_at.date() if as_of_entry is not None else _today())


def _rows_at(opts: Common, reference: str, as_of: str | None,
             as_of_entry: int | None) -> tuple[AgreementRows, date]:
    """The agreement's rows (:func:`_agreement_at`) and the day they are judged on."""
    from projections.rows import rows_for  # noqa: PLC0415

    agreement, day = _agreement_at(opts, reference, as_of, as_of_entry)
    return rows_for(agreement), day


@command(app, "list")
def list_agreements(opts: Common,
                    partner: Annotated[str | None, typer.Option(
                        help="Only agreements this partner is (or was) part of.")] = None,
                    state: Annotated[str | None, typer.Option(
                        help="Only agreements in this state today (draft, signed, in force, "
                             "notice given, terminated, expired).")] = None,
                    ending_before: Annotated[str | None, typer.Option(
                        help="Only agreements whose end date is before this date.")] = None
                    ) -> None:
    """Every agreement in the ledger with its state today (or those a filter picks)."""
    from ledger.domain import STATES  # noqa: PLC0415
    from projections.models import PartnerRow  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415
    from projections.rows import rows_for  # noqa: PLC0415

    if state is not None and state not in STATES:
        raise InvalidInput(f"--state {state!r}: give one of {', '.join(STATES)}")
    before = _day(ending_before, "--ending-before")
    remote = opts.remote
    if remote is not None:
        everything = [rows_for(remote.agreement(r)) for r in remote.references()]
        if partner is not None:
            parse_slug(partner, "partner id")
            everything = [r for r in everything
                          if any(p["partner"] == partner for p in r[PartnerRow])]
        _list(opts, [r.agreement for r in everything], state, before)
        return
    models = ReadModels(opts.open_ledger())
    try:
        if partner is not None:
            parse_slug(partner, "partner id")
            everything = models.all_rows()
            with_partner = {r.reference for r in everything
                            if any(p["partner"] == partner for p in r[PartnerRow])}
            rows = [r.agreement for r in everything if r.reference in with_partner]
        else:
            rows = models.list()
    finally:
        models.close()
    _list(opts, rows, state, before)


def _list(opts: Common, rows: list[dict[str, Any]], state: str | None,
          before: date | None) -> None:
    from commands import render  # noqa: PLC0415
    from projections.views import agreement_list  # noqa: PLC0415

    listed = agreement_list(rows, _today(), state, before)
    if opts.json:
        emit_json({"agreements": listed})
        return
    render.agreements(listed)


@command(app, "todo")
def todo(opts: Common, partner: As,
         within: Annotated[int, typer.Option(
             help="Show end dates due within this many days.")] = 90) -> None:
    """What is waiting for a partner across every agreement: states to sign, variations to
    consent to, late notices to acknowledge, notices running, end dates due."""
    from commands import render  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415
    from projections.views import todo_view  # noqa: PLC0415

    parse_slug(partner, "partner id")
    if within < 0:
        raise InvalidInput("--within is a number of days, 0 or more")
    with opts.reading() as ledger:
        models = ReadModels(ledger)
        try:
            tasks = todo_view(partner, models.all_rows(), _today(), within)
        finally:
            models.close()
    if opts.json:
        emit_json({"partner": partner, "as_of": _today().isoformat(),
                   "tasks": [t.to_json() for t in tasks]})
        return
    render.todo(partner, tasks)


@command(app, "status")
def status(opts: Common, reference: Ref, as_of: AsOf = None, as_of_entry: AsOfEntry = None
           ) -> None:
    """The agreement's state, partners, signatures, pending variations and notices."""
    from commands import render  # noqa: PLC0415
    from projections.views import status_view  # noqa: PLC0415

    rows, day = _rows_at(opts, reference, as_of, as_of_entry)
    view = status_view(rows, day)
    if opts.json:
        emit_json(view.to_json())
        return
    render.status(view)


@command(app, "signatures")
def signatures(opts: Common, reference: Ref, as_of: AsOf = None,
               as_of_entry: AsOfEntry = None) -> None:
    """Who signed which state of the agreement, with which key and when."""
    from commands import render  # noqa: PLC0415
    from projections.views import status_view  # noqa: PLC0415

    rows, day = _rows_at(opts, reference, as_of, as_of_entry)
    view = status_view(rows, day)
    if opts.json:
        emit_json(view.signatures_json())
        return
    render.signatures(view)


@command(app, "history")
def history(opts: Common, reference: Ref, as_of: AsOf = None, as_of_entry: AsOfEntry = None
            ) -> None:
    """Every entry of the agreement: seq, action, partner, key, time signed and recorded."""
    from commands import render  # noqa: PLC0415
    from projections.views import history_json, history_view  # noqa: PLC0415

    agreement, _ = _agreement_at(opts, reference, as_of, as_of_entry)
    entries = history_view(agreement)
    if opts.json:
        emit_json(history_json(reference, entries))
        return
    render.history(reference, entries)


@command(app, "budget")
def budget(opts: Common, reference: Ref,
           year: Annotated[str | None, typer.Option(help="Only this financial year.")] = None,
           by: Annotated[str, typer.Option(
               help="Break down by partner or source (per year), or year: one table of every "
                    "year by partner.")] = "partner",
           csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
           lines: Annotated[bool, typer.Option(
               "--lines", help="List every funding line instead.")] = False,
           payments: Annotated[bool, typer.Option(
               "--payments", help="List every payment (and reversal) instead.")] = False,
           as_of: AsOf = None, as_of_entry: AsOfEntry = None) -> None:
    """Funding per financial year: confirmed, indicative, tba, paid, outstanding, share."""
    from commands import render  # noqa: PLC0415
    from projections.budget import BudgetView  # noqa: PLC0415
    from projections.tables import PAYMENTS  # noqa: PLC0415
    from projections.views import budget_view  # noqa: PLC0415

    if by not in ("partner", "source", "year"):
        raise InvalidInput("--by is partner, source or year")
    if lines and payments:
        raise InvalidInput("give --lines or --payments, not both")
    wanted = None if year is None else str(parse_year(year))
    rows, _ = _rows_at(opts, reference, as_of, as_of_entry)
    if payments:
        listed = [p for p in sorted(rows[PAYMENTS], key=lambda p: p["seq"])
                  if wanted is None or p["year"] == wanted]
        if opts.json:
            emit_json({"reference": reference, "payments": [render.payment_json(p)
                                                            for p in listed]})
        elif csv:
            screen.echo(render.payments_csv(reference, listed), nl=False)
        else:
            render.payments(reference, listed)
        return
    view = budget_view(rows)
    if wanted is not None:
        view = BudgetView(view.reference, tuple(y for y in view.years if y.year == wanted))
    if lines:
        every = [line for y in view.years for line in y.lines]
        if opts.json:
            emit_json({"reference": reference, "lines": [line.to_json() for line in every]})
        elif csv:
            screen.echo(render.lines_csv(reference, every), nl=False)
        else:
            render.lines(reference, every)
        return
    if opts.json:
        emit_json(view.to_json())
    elif csv:
        screen.echo(render.budget_csv(view, "partner" if by == "year" else by), nl=False)
    elif by == "year":
        render.budget_grid(view)
    else:
        render.budget(view, by)


@command(app, "rebuild")
def rebuild(opts: Common) -> None:
    """Drop every read model and the log's tables and rebuild them from the event store."""
    from commands import render  # noqa: PLC0415
    from projections.db import default_workers  # noqa: PLC0415
    from projections.readmodels import ReadModels  # noqa: PLC0415

    models = ReadModels(opts.open_ledger())
    try:
        with render.progress("rebuilding read models", quiet=opts.json) as advance:
            entries = models.rebuild(progress=advance, workers=default_workers())
    finally:
        models.close()
    if opts.json:
        emit_json({"rebuilt": True, "entries": entries})
        return
    screen.echo(f"rebuilt the read models from {entries} entries")


@command(app, "verify")
def verify(opts: Common, reference: Annotated[str | None, typer.Argument(metavar="REF",
        help="Only this agreement (default: the whole ledger).")] = None) -> None:
    """Check the whole record: every entry (signatures, seq/prev chains, keys when used, the
    rules replayed), the stored Merkle tree against the entries, every checkpoint and
    cosignature, and that the read models equal a fresh rebuild. Exit 3 on any failure,
    naming each by log index, agreement and seq. Over a service (--ledger https://...),
    every entry it serves is checked here."""
    from commands import render  # noqa: PLC0415
    from ledger.witness import WitnessState  # noqa: PLC0415
    from projections.audit import remembered, verify_ledger  # noqa: PLC0415

    if reference is not None:
        parse_slug(reference, "agreement reference")
    remote = opts.remote
    if remote is not None:
        if reference is not None:
            _verdict(opts, remote.verify(reference))
            return
        try:
            path, checked = opts.verified_copy()
        except NotFound:
            checked = remote.verify()
            checked.checks.append("no checkpoint yet: the log is checked once the operator "
                                  "has signed one")
        else:
            checked.checks.append(f"kept, checked, in {path}: what 'prove', 'report', "
                                  f"'export' and 'todo' read over this service")
        _verdict(opts, checked)
        return
    ledger = opts.open_ledger()
    # What this key folder remembers of the ledger (the last checkpoint each partner cosigned,
    # the last the operator signed) must still be what the entries give.
    memories = [seen for name, memory in WitnessState.all_in(opts.keystore.folder).items()
                for seen in remembered(memory, name)]
    with render.progress("verifying", quiet=opts.json) as advance:
        report = verify_ledger(ledger, reference, advance, remembered=memories)
    _verdict(opts, report)


def _verdict(opts: Common, checked: Report) -> None:
    if opts.json:
        emit_json(checked.to_json())
    else:
        for failure in checked.failures:
            screen.echo(f"FAILED {failure.line()}", err=True)
        for check in checked.checks:
            screen.echo(f"checked: {check}")
        screen.echo(checked.verdict())
    checked.raise_for_failures()


def main() -> None:
    """Entry point of the ``ledger`` console script."""
    app()


# The audit commands register themselves on the same app.
from commands import audit, demo, report, serve  # noqa: E402, F401
