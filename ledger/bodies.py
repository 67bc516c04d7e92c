"""The body of each action's statement: its fields, their types and their one written form.

Each body is read from JSON into a frozen dataclass by a ``parse_*`` function that refuses
anything malformed (a missing or extra field, an amount with a fraction of a penny, an
impossible date), and written back by ``to_json``. What a body *means* for the agreement is the
business of :mod:`ledger.domain`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from ledger.errors import InvalidInput
from ledger.keys import parse_public_key
from ledger.values import (
    FinancialYear,
    money_text,
    parse_date,
    parse_money,
    parse_notice_months,
    parse_slug,
    parse_text,
    parse_year,
)

ROLES = ("commissioning", "provider", "other")
FUNDING_STATUSES = ("confirmed", "indicative", "tba")
WITHDRAWAL_POLICIES = ("terminate", "continue")
NOTICE_KINDS = ("withdrawal", "termination")


def _fields(data: object, what: str, required: AbstractSet[str],
            optional: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    if data.keys() == required:
        return data  # the usual case, without building sets
    keys = set(data)
    missing, extra = required - keys, keys - required - optional
    if missing or extra:
        raise InvalidInput(
            f"{what} fields are wrong (missing: {sorted(missing)}, unexpected: {sorted(extra)})"
        )
    return data


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false")
    return value


def _optional_date(value: object, what: str) -> date | None:
    return None if value is None else parse_date(value, what)


def _date_text(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _terms_hash(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise InvalidInput("the terms hash must be the 64 lower-case hex digits of a SHA-256")
    return value


def _flexibilities(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidInput("flexibilities must be a list")
    items = tuple(parse_slug(v, "flexibility") for v in value)
    if list(items) != sorted(set(items)):
        raise InvalidInput("flexibilities must be listed once each, in alphabetical order")
    return items


# --- partners ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerDetails:
    """Who a partner is and who signs for it (the public key is the signatory's)."""

    name: str
    role: str
    lead: bool
    host: bool
    pool_manager: bool
    signatory: str
    designation: str
    public_key: bytes

    def checked(self) -> PartnerDetails:
        """This partner as a statement may carry it: every field checked, text as signed."""
        return parse_partner(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {
            "name": self.name,
            "role": self.role,
            "lead": self.lead,
            "host": self.host,
            "pool_manager": self.pool_manager,
            "signatory": self.signatory,
            "designation": self.designation,
            "public_key": self.public_key.hex(),
        }


_PARTNER_FIELDS = {"name", "role", "lead", "host", "pool_manager", "signatory", "designation",
                   "public_key"}


def parse_partner(data: object, what: str = "partner") -> PartnerDetails:
    """Partner details as written in draft, join and variation bodies."""
    d = _fields(data, what, _PARTNER_FIELDS)
    role = d["role"]
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(d["public_key"], str):
        raise InvalidInput("public_key must be 64 hex digits")
    return PartnerDetails(
        name=parse_text(d["name"], "partner name"),
        role=role,
        lead=_bool(d["lead"], "lead"),
        host=_bool(d["host"], "host"),
        pool_manager=_bool(d["pool_manager"], "pool_manager"),
        signatory=parse_text(d["signatory"], "signatory"),
        designation=parse_text(d["designation"], "designation"),
        public_key=parse_public_key(d["public_key"]),
    )


# --- the agreement's terms ---------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """What the convening partner drafts: the agreement as a whole."""

    title: str
    basis: str
    flexibilities: tuple[str, ...]
    terms_hash: str
    agreed: date | None
    start: date
    end: date | None
    notice_months: int
    on_withdrawal: str

    def checked(self) -> Terms:
        """These terms as a statement may carry them: every field checked, text as signed."""
        return parse_terms(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {
            "title": self.title,
            "basis": self.basis,
            "flexibilities": list(self.flexibilities),
            "terms_hash": self.terms_hash,
            "agreed": _date_text(self.agreed),
            "start": self.start.isoformat(),
            "end": _date_text(self.end),
            "notice_months": self.notice_months,
            "on_withdrawal": self.on_withdrawal,
        }


_TERMS_FIELDS = {"title", "basis", "flexibilities", "terms_hash", "agreed", "start", "end",
                 "notice_months", "on_withdrawal"}


def check_dates(start: date, end: date | None) -> None:
    """An agreement cannot end before it starts."""
    if end is not None and end < start:
        raise InvalidInput(f"end date {end} is before the start date {start}")


def parse_terms(data: object) -> Terms:
    """The agreement part of a draft body."""
    d = _fields(data, "agreement terms", _TERMS_FIELDS)
    policy = d["on_withdrawal"]
    if policy not in WITHDRAWAL_POLICIES:
        raise InvalidInput(
            f"on_withdrawal {policy!r} is not one of {', '.join(WITHDRAWAL_POLICIES)}")
    terms = Terms(
        title=parse_text(d["title"], "title"),
        basis=parse_text(d["basis"], "basis", empty=True),
        flexibilities=_flexibilities(d["flexibilities"]),
        terms_hash=_terms_hash(d["terms_hash"]),
        agreed=_optional_date(d["agreed"], "date of agreement"),
        start=parse_date(d["start"], "start date"),
        end=_optional_date(d["end"], "end date"),
        notice_months=parse_notice_months(d["notice_months"]),
        on_withdrawal=policy,
    )
    check_dates(terms.start, terms.end)
    return terms


@dataclass(frozen=True)
class DraftBody:
    """Body of ``draft``: the agreement and the convenor's own details."""

    terms: Terms
    partner: PartnerDetails

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"agreement": self.terms.to_json(), "partner": self.partner.to_json()}


def parse_draft(data: object) -> DraftBody:
    """Body of ``draft``."""
    d = _fields(data, "draft body", {"agreement", "partner"})
    return DraftBody(parse_terms(d["agreement"]), parse_partner(d["partner"]))


# --- funding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FundingLine:
    """One partner's funding from one source for one financial year."""

    partner: str
    year: FinancialYear
    source: str
    amount: Decimal | None
    status: str

    @property
    def key(self) -> tuple[str, FinancialYear, str]:
        """A line is identified by partner, year and source."""
        return (self.partner, self.year, self.source)

    def checked(self) -> FundingLine:
        """This line as a statement may carry it: every field checked, text as signed."""
        return parse_line(self.to_json())

    def to_json(self, *, with_partner: bool = True) -> dict[str, Any]:
        """As written in a statement (the partner is implicit in a contribute body)."""
        data: dict[str, Any] = {
            "year": str(self.year),
            "source": self.source,
            "amount": None if self.amount is None else money_text(self.amount),
            "status": self.status,
        }
        if with_partner:
            data["partner"] = self.partner
        return data


def parse_line(data: object, partner: str | None = None) -> FundingLine:
    """A funding line; ``partner`` is given for contribute bodies, read for variations."""
    base = {"year", "source", "amount", "status"}
    d = _fields(data, "funding line", base if partner else base | {"partner"})
    status = d["status"]
    if status not in FUNDING_STATUSES:
        raise InvalidInput(f"funding status {status!r} is not one of {', '.join(FUNDING_STATUSES)}")
    if status == "tba":
        if d["amount"] is not None:
            raise InvalidInput("a 'tba' funding line has no amount yet")
        amount = None
    else:
        if d["amount"] is None:
            raise InvalidInput(f"a {status} funding line needs an amount")
        amount = parse_money(d["amount"])
    who = partner if partner else parse_slug(d["partner"], "partner id")
    source = parse_text(d["source"], "source", max_length=200)
    return FundingLine(who, parse_year(d["year"]), source, amount, status)


@dataclass(frozen=True)
class Payment:
    """Money a partner paid into the pool against one of its funding lines, with the
    finance officer's own reference for it (an invoice or remittance number), if any."""

    year: FinancialYear
    source: str
    amount: Decimal
    reference: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As written in a statement (``reference`` only when there is one)."""
        data = {"year": str(self.year), "source": self.source, "amount": money_text(self.amount)}
        if self.reference is not None:
            data["reference"] = self.reference
        return data


@dataclass(frozen=True)
class Reversal:
    """A payment recorded in error, reversed by the partner that recorded it: the entry stays,
    and no longer counts."""

    payment: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"payment": self.payment, "reason": self.reason}


@dataclass(frozen=True)
class ContributeBody:
    """Body of ``contribute``: a funding line declared, a payment recorded, or a payment
    reversed."""

    line: FundingLine | None
    payment: Payment | None
    reversal: Reversal | None = None

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        if self.line is not None:
            return {"line": self.line.to_json(with_partner=False)}
        if self.reversal is not None:
            return {"reversal": self.reversal.to_json()}
        assert self.payment is not None
        return {"payment": self.payment.to_json()}


def parse_contribute(data: object, partner: str) -> ContributeBody:
    """Body of ``contribute``: exactly one of ``line``, ``payment`` or ``reversal``."""
    if isinstance(data, dict) and data.keys() == {"line"}:
        return ContributeBody(parse_line(data["line"], partner), None)
    if isinstance(data, dict) and data.keys() == {"payment"}:
        p = _fields(data["payment"], "payment", {"year", "source", "amount"}, {"reference"})
        amount = parse_money(p["amount"])
        if amount <= 0:
            raise InvalidInput("a payment must be more than zero")
        reference = (None if "reference" not in p
                     else parse_text(p["reference"], "payment reference", max_length=100))
        return ContributeBody(
            None, Payment(parse_year(p["year"]), parse_text(p["source"], "source", max_length=200),
                          amount, reference))
    if isinstance(data, dict) and data.keys() == {"reversal"}:
        r = _fields(data["reversal"], "reversal", {"payment", "reason"})
        return ContributeBody(None, None, Reversal(_seq(r["payment"], "payment reversed"),
                                                   parse_text(r["reason"], "reason")))
    raise InvalidInput("a contribute body holds exactly one of 'line', 'payment' or 'reversal'")


# --- the other actions -------------------------------------------------------------------------


def parse_join(data: object) -> PartnerDetails:
    """Body of ``join``: the joining partner's details."""
    return parse_partner(data, "join body")


def parse_sign(data: object) -> str:
    """Body of ``sign``: the hash of the agreement state being signed."""
    d = _fields(data, "sign body", {"state"})
    value = d["state"]
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise InvalidInput("the signed state must be 64 lower-case hex digits")
    return value


@dataclass(frozen=True)
class NewPartner:
    """A partner brought in by a variation."""

    id: str
    details: PartnerDetails

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"id": self.id, **self.details.to_json()}


@dataclass(frozen=True)
class Succession:
    """A successor body takes a partner's place, funding and obligations (a PCT abolished and
    its agreements passed to its successor): agreed by every other partner, and by the
    successor with the key it brings."""

    predecessor: str
    successor: NewPartner

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"from": self.predecessor, "to": self.successor.to_json()}


@dataclass(frozen=True)
class Recovery:
    """A partner that lost its key is given a new signatory and key by the others' agreement
    (it consents with the new key, proving it holds it)."""

    partner: str
    signatory: str
    designation: str
    public_key: bytes

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"partner": self.partner, "signatory": self.signatory,
                "designation": self.designation, "public_key": self.public_key.hex()}


class _Unset:
    """The one "end date not changed" marker. Aggregates are deep-copied out of the repository's
    cache, and a copy of a plain ``object()`` is a new object, which ``is _UNSET`` would take
    for an end date; copies (and pickles) of this one are the marker itself."""

    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET: Any = _Unset()


@dataclass(frozen=True)
class Changes:
    """What a variation changes; fields left unset are not changed."""

    title: str | None = None
    basis: str | None = None
    flexibilities: tuple[str, ...] | None = None
    terms_hash: str | None = None
    start: date | None = None
    #: ``_UNSET`` leaves the end date; ``None`` removes it; a date sets it.
    end: Any = _UNSET
    notice_months: int | None = None
    on_withdrawal: str | None = None
    funding: tuple[FundingLine, ...] = ()
    add_partners: tuple[NewPartner, ...] = ()
    remove_partners: tuple[str, ...] = ()
    ends_agreement: bool = False
    successions: tuple[Succession, ...] = ()
    recoveries: tuple[Recovery, ...] = ()

    @property
    def changes_end(self) -> bool:
        """Whether the variation touches the end date."""
        return self.end is not _UNSET

    def checked(self) -> Changes:
        """These changes as a statement may carry them: every field checked, text as signed."""
        return parse_changes(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """As written in a statement: only the fields that change."""
        data: dict[str, Any] = {}
        for name in ("title", "basis", "terms_hash", "notice_months", "on_withdrawal"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.flexibilities is not None:
            data["flexibilities"] = list(self.flexibilities)
        if self.start is not None:
            data["start"] = self.start.isoformat()
        if self.changes_end:
            data["end"] = _date_text(self.end)
        if self.funding:
            data["funding"] = [line.to_json() for line in self.funding]
        if self.add_partners:
            data["add_partners"] = [p.to_json() for p in self.add_partners]
        if self.remove_partners:
            data["remove_partners"] = list(self.remove_partners)
        if self.ends_agreement:
            data["ends_agreement"] = True
        if self.successions:
            data["successions"] = [item.to_json() for item in self.successions]
        if self.recoveries:
            data["recoveries"] = [item.to_json() for item in self.recoveries]
        return data

    def is_empty(self) -> bool:
        """A variation must change something."""
        return not self.to_json()


_CHANGE_FIELDS = {"title", "basis", "flexibilities", "terms_hash", "start", "end", "notice_months",
                  "on_withdrawal", "funding", "add_partners", "remove_partners", "ends_agreement",
                  "successions", "recoveries"}


def parse_changes(data: object) -> Changes:
    """The ``changes`` of a variation body."""
    d = _fields(data, "variation changes", set(), _CHANGE_FIELDS)
    if not d:
        raise InvalidInput("a variation must change something")
    policy = d.get("on_withdrawal")
    if policy is not None and policy not in WITHDRAWAL_POLICIES:
        raise InvalidInput(
            f"on_withdrawal {policy!r} is not one of {', '.join(WITHDRAWAL_POLICIES)}")
    funding = d.get("funding", [])
    adds = d.get("add_partners", [])
    removes = d.get("remove_partners", [])
    if not isinstance(funding, list) or not isinstance(adds, list) or not isinstance(removes, list):
        raise InvalidInput("funding, add_partners and remove_partners must be lists")
    if "funding" in d and not funding:
        raise InvalidInput("a funding change lists at least one line")
    new_partners = [_new_partner(item) for item in adds]
    successions = d.get("successions", [])
    recoveries = d.get("recoveries", [])
    if not isinstance(successions, list) or not isinstance(recoveries, list):
        raise InvalidInput("successions and recoveries must be lists")
    if ("successions" in d and not successions) or ("recoveries" in d and not recoveries):
        raise InvalidInput("a succession or recovery change lists at least one")
    if "ends_agreement" in d and d["ends_agreement"] is not True:
        raise InvalidInput("ends_agreement, when present, must be true")
    lines = tuple(parse_line(item) for item in funding)
    if len({line.key for line in lines}) != len(lines):
        raise InvalidInput("a variation lists each funding line (partner, year, source) once")
    return Changes(
        title=None if "title" not in d else parse_text(d["title"], "title"),
        basis=None if "basis" not in d else parse_text(d["basis"], "basis", empty=True),
        flexibilities=None if "flexibilities" not in d else _flexibilities(d["flexibilities"]),
        terms_hash=None if "terms_hash" not in d else _terms_hash(d["terms_hash"]),
        start=None if "start" not in d else parse_date(d["start"], "start date"),
        end=_UNSET if "end" not in d else _optional_date(d["end"], "end date"),
        notice_months=None if "notice_months" not in d else parse_notice_months(d["notice_months"]),
        on_withdrawal=policy,
        funding=lines,
        add_partners=tuple(new_partners),
        remove_partners=tuple(parse_slug(p, "partner id") for p in removes),
        ends_agreement="ends_agreement" in d,
        successions=tuple(_succession(item) for item in successions),
        recoveries=tuple(_recovery(item) for item in recoveries),
    )


def _new_partner(item: object) -> NewPartner:
    if not isinstance(item, dict) or "id" not in item:
        raise InvalidInput("each added partner needs an id")
    rest = {k: v for k, v in item.items() if k != "id"}
    return NewPartner(parse_slug(item["id"], "partner id"), parse_partner(rest))


def _succession(item: object) -> Succession:
    d = _fields(item, "succession", {"from", "to"})
    return Succession(parse_slug(d["from"], "partner id"), _new_partner(d["to"]))


def _recovery(item: object) -> Recovery:
    d = _fields(item, "key recovery", {"partner", "signatory", "designation", "public_key"})
    if not isinstance(d["public_key"], str):
        raise InvalidInput("public_key must be 64 hex digits")
    return Recovery(parse_slug(d["partner"], "partner id"),
                    parse_text(d["signatory"], "signatory"),
                    parse_text(d["designation"], "designation"),
                    parse_public_key(d["public_key"]))


@dataclass(frozen=True)
class VaryBody:
    """Body of ``vary``: a proposed variation, and the last day it may gather consents."""

    id: str
    reason: str
    changes: Changes
    expires: date | None = None

    def to_json(self) -> dict[str, Any]:
        """As written in a statement (``expires`` only when there is one)."""
        data: dict[str, Any] = {"id": self.id, "reason": self.reason,
                                "changes": self.changes.to_json()}
        if self.expires is not None:
            data["expires"] = self.expires.isoformat()
        return data


def parse_vary(data: object) -> VaryBody:
    """Body of ``vary``."""
    d = _fields(data, "vary body", {"id", "reason", "changes"}, {"expires"})
    return VaryBody(parse_slug(d["id"], "variation id"), parse_text(d["reason"], "reason"),
                    parse_changes(d["changes"]),
                    None if "expires" not in d else parse_date(d["expires"], "expiry date"))


@dataclass(frozen=True)
class ConsentBody:
    """Body of ``consent``: the variation consented to, and (from statement version 2) the
    hash of the entry that proposed it, so that a consent binds to what was proposed."""

    variation: str
    proposal: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        data: dict[str, Any] = {"variation": self.variation}
        if self.proposal is not None:
            data["proposal"] = self.proposal
        return data


def parse_consent(data: object) -> ConsentBody:
    """Body of ``consent``."""
    d = _fields(data, "consent body", {"variation"}, {"proposal"})
    return ConsentBody(parse_slug(d["variation"], "variation id"),
                       None if "proposal" not in d else _hash(d["proposal"], "proposal"))


def _hash(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise InvalidInput(f"the {what} must be the 64 lower-case hex digits of an entry hash")
    return value


@dataclass(frozen=True)
class WithdrawBody:
    """Body of ``withdraw``: a partner takes back its own pending variation or notice."""

    variation: str | None = None
    notice: int | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        data: dict[str, Any] = {"reason": self.reason}
        if self.variation is not None:
            data["variation"] = self.variation
        else:
            data["notice"] = self.notice
        return data


def parse_withdraw(data: object) -> WithdrawBody:
    """Body of ``withdraw``: ``reason`` and exactly one of ``variation`` (its id) or ``notice``
    (the seq of the notice entry)."""
    d = _fields(data, "withdraw body", {"reason"}, {"variation", "notice"})
    reason = parse_text(d["reason"], "reason", empty=True)
    if ("variation" in d) == ("notice" in d):
        raise InvalidInput("a withdraw body names exactly one of 'variation' or 'notice'")
    if "variation" in d:
        return WithdrawBody(parse_slug(d["variation"], "variation id"), None, reason)
    return WithdrawBody(None, _seq(d["notice"], "notice"), reason)


def _seq(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**53:
        raise InvalidInput(f"the {what} is named by the seq of its entry, a whole number from 1")
    return value


@dataclass(frozen=True)
class RejectBody:
    """Body of ``reject``: a partner whose consent a variation needs refuses it."""

    variation: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"variation": self.variation, "reason": self.reason}


def parse_reject(data: object) -> RejectBody:
    """Body of ``reject``."""
    d = _fields(data, "reject body", {"variation", "reason"})
    return RejectBody(parse_slug(d["variation"], "variation id"),
                      parse_text(d["reason"], "reason", empty=True))


def parse_acknowledge(data: object) -> int:
    """Body of ``acknowledge``: the seq of the backdated notice whose date is acknowledged."""
    d = _fields(data, "acknowledge body", {"notice"})
    return _seq(d["notice"], "notice")


@dataclass(frozen=True)
class NoticeBody:
    """Body of ``notice``."""

    kind: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"kind": self.kind, "reason": self.reason}


def parse_notice(data: object) -> NoticeBody:
    """Body of ``notice``: withdrawal (the partner's own part) or termination (the whole)."""
    d = _fields(data, "notice body", {"kind", "reason"})
    if d["kind"] not in NOTICE_KINDS:
        raise InvalidInput(f"notice kind {d['kind']!r} is not one of {', '.join(NOTICE_KINDS)}")
    return NoticeBody(d["kind"], parse_text(d["reason"], "reason", empty=True))


def parse_terminate(data: object) -> str:
    """Body of ``terminate``: the reason given."""
    d = _fields(data, "terminate body", {"reason"})
    return parse_text(d["reason"], "reason", empty=True)


@dataclass(frozen=True)
class AppointBody:
    """Body of ``appoint``: the new signatory and their key."""

    signatory: str
    designation: str
    public_key: bytes

    def to_json(self) -> dict[str, Any]:
        """As written in a statement."""
        return {"signatory": self.signatory, "designation": self.designation,
                "public_key": self.public_key.hex()}


def parse_appoint(data: object) -> AppointBody:
    """Body of ``appoint``."""
    d = _fields(data, "appoint body", {"signatory", "designation", "public_key"})
    if not isinstance(d["public_key"], str):
        raise InvalidInput("public_key must be 64 hex digits")
    return AppointBody(parse_text(d["signatory"], "signatory"),
                       parse_text(d["designation"], "designation"),
                       parse_public_key(d["public_key"]))


#: What a statement's body is once read: the value its action's parser gives (a sign's and a
#: terminate's are the state signed and the reason, an acknowledge's the notice's seq).
Body = (DraftBody | PartnerDetails | ContributeBody | VaryBody | ConsentBody | WithdrawBody
        | RejectBody | NoticeBody | AppointBody | str | int)


def parse_body(action: str, body: object, partner: str) -> Body:
    """The body of a statement of ``action``, read by that action's parser."""
    if action == "contribute":
        return parse_contribute(body, partner)
    return _PARSERS[action](body)


_PARSERS: dict[str, Callable[[object], Body]] = {
    "draft": parse_draft, "join": parse_join, "sign": parse_sign, "vary": parse_vary,
    "consent": parse_consent, "notice": parse_notice, "terminate": parse_terminate,
    "appoint": parse_appoint, "withdraw": parse_withdraw, "reject": parse_reject,
    "acknowledge": parse_acknowledge,
}
