"""The ledger service: one process (or several) that is the only writer of a shared ledger.

Partners keep their keys on their own machines: their ``ledger`` signs each act locally and
posts the entry here; the service checks it with every rule of the core (``Ledger.submit``)
and stores it, or answers with the one-line error the command line would print. Reads give
the entries themselves, which a client replays and checks before it believes anything.

Starlette serves it (a small, well-kept ASGI toolkit with no framework of its own to learn:
the routes are plain functions over the core) under uvicorn. ``docs/OPERATIONS.md`` shows how
to run it; ``docs/openapi.json`` (:mod:`commands.openapi`) describes every route, and is
served at ``/openapi.json``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from commands import openapi
from commands.common import open_regular
from ledger import tiles
from ledger.application import Ledger
from ledger.bodies import DraftBody
from ledger.canonical import sha256_hex
from ledger.domain import agreement_id
from ledger.errors import (
    AgreementBusy,
    AlreadyRecorded,
    InvalidInput,
    LedgerError,
    NotFound,
    NotPermitted,
    RuleViolation,
    SignatureInvalid,
    StorageError,
    VerificationFailed,
)
from ledger.keys import parse_public_key
from ledger.note import NoteSignature, add_signatures, verify_cosignature
from ledger.statement import MAX_ENTRY_BYTES, Entry
from ledger.storage import Location
from ledger.values import at_text, parse_date, parse_slug
from ledger.verify import stored_records
from projections.asof import agreement_as_of
from projections.audit import (
    export_bundle,
    proof_document,
    refuse_unless_verified,
    verify_ledger,
)
from projections.db import table_refusal
from projections.log import MerkleLog
from projections.readmodels import ReadModels
from projections.report import build_report
from projections.rows import rows_for
from projections.views import (
    agreement_list,
    budget_view,
    history_json,
    history_view,
    status_view,
    todo_view,
)

#: The largest request body read: one entry, with room for its JSON string quoting.
MAX_BODY = MAX_ENTRY_BYTES + 1024

log = logging.getLogger("ledger.serve")


@dataclass(frozen=True)
class Policy:
    """Who may do what: drafting (open, or only the listed keys) and reading (open, or with
    the token)."""

    drafters: frozenset[bytes] | None = None
    read_token: str | None = None

    @staticmethod
    def load(drafts: str, read_token_file: Path | None) -> Policy:
        """``--drafts open|KEYS_FILE`` (a file of hex public keys, one a line, ``#`` comments)
        and ``--read-token-file``."""
        drafters = None
        if drafts != "open":
            lines = _read_small(Path(drafts), "the drafts keys file").splitlines()
            drafters = frozenset(parse_public_key(line.split("#", 1)[0].strip())
                                 for line in lines if line.split("#", 1)[0].strip())
        token = None
        if read_token_file is not None:
            token = _read_small(read_token_file, "the read token file").strip()
            if len(token) < 16:
                raise InvalidInput("the read token must be at least 16 characters")
        return Policy(drafters, token)


def _read_small(path: Path, what: str) -> str:
    with open_regular(path, what) as file:
        try:
            data = file.read(65537)
        except OSError as exc:
            raise InvalidInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > 65536:
        raise InvalidInput(f"{what} {path} is larger than 64 KiB")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} {path} is not UTF-8 text") from None


#: How each error of the core is told over HTTP: its status, and the kind a client reads.
STATUS: tuple[tuple[type[LedgerError], int, str], ...] = (
    (NotPermitted, 403, "not-permitted"),
    (AgreementBusy, 409, "conflict"),
    (NotFound, 404, "not-found"),
    (SignatureInvalid, 422, "refused"),
    (RuleViolation, 422, "refused"),
    (InvalidInput, 400, "malformed"),
    (VerificationFailed, 500, "damaged"),
    (StorageError, 503, "unavailable"),
)


def error_response(exc: LedgerError) -> JSONResponse:
    """The one-line error, with the status that says which kind it is."""
    for kind, status, name in STATUS:
        if isinstance(exc, kind):
            return JSONResponse({"error": exc.diagnostics(), "kind": name}, status)
    return JSONResponse({"error": exc.diagnostics(), "kind": "error"}, 500)


class Service:
    """The routes, over one :class:`Ledger` per process."""

    def __init__(self, location: Location, policy: Policy) -> None:
        self.location = location
        self.policy = policy
        self.ledger = Ledger(location)
        if not self.ledger.is_initialised():
            self.ledger.close()
            raise StorageError(f"{location.describe()} is not a ledger; create one with "
                               f"'ledger init'")
        # One write at a time in this process; processes sharing PostgreSQL are kept apart by
        # the store itself (a seq taken is refused, and the client signs again).
        self.writing = threading.Lock()
        self.models = ReadModels(self.ledger)
        self.log = MerkleLog(self.models)
        self.catching_up = threading.Lock()

    def close(self) -> None:
        """Close the ledger."""
        self.models.close()
        self.ledger.close()

    def _log(self) -> MerkleLog:
        """The log, brought up to date with the entries (one catch-up at a time)."""
        with self.catching_up:
            self.log.catch_up()
        return self.log

    def checkpoint(self, _request: Request) -> Response:
        """The latest checkpoint the operator signed, with its cosignatures (C2SP
        tlog-checkpoint, signed note)."""
        latest = self._log().latest_checkpoint()
        if latest is None:
            raise NotFound("no checkpoint yet; the operator makes one with 'ledger checkpoint'")
        return Response(latest.note.format(), media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    def tile(self, request: Request) -> Response:
        """A tile of the log (C2SP tlog-tiles): hashes, or entries after their uint16
        lengths. A full tile never changes, and says so."""
        level, index, width = tiles.parse_tile_path(request.path_params["path"])
        log = self._log()
        if level is None:
            body = tiles.entry_bundle([t.encode() for t in log.entries_tile(index, width)])
        else:
            body = log.tile(level, index, width)
        cache = ("public, max-age=31536000, immutable" if width == tiles.WIDTH
                 else "no-cache")
        return Response(body, media_type="application/octet-stream",
                        headers={"Cache-Control": cache})

    # --- routes ---------------------------------------------------------------------------

    async def health(self, _request: Request) -> Response:
        """Whether the ledger can be read."""
        try:
            origin = self.ledger.origin
        except LedgerError as exc:
            return JSONResponse({"ok": False, "error": exc.diagnostics()}, 503)
        return JSONResponse({"ok": True, "origin": origin})

    async def openapi(self, _request: Request) -> Response:
        """The service's OpenAPI document."""
        return Response(openapi.text(), media_type="application/json")

    def identity(self, _request: Request) -> Response:
        """The ledger's origin and operator."""
        identity = self.ledger.identity
        return JSONResponse({"origin": identity.origin, "operator": identity.operator,
                             "operator_public_key": identity.operator_public_key.hex()})

    def agreements(self, _request: Request) -> Response:
        """Every agreement, as ``ledger list --json`` lists it."""
        with self.catching_up:
            rows = self.models.list()
        return JSONResponse({"agreements": agreement_list(rows, datetime.now(UTC).date())})

    def todo(self, request: Request) -> Response:
        """What ``ledger todo --as PARTNER --json`` prints."""
        partner = parse_slug(request.path_params["partner"], "partner id")
        within_text = request.query_params.get("within", "90")
        if not within_text.isdigit() or len(within_text) > 6:
            raise InvalidInput(f"within={within_text!r}: give a number of days, 0 or more")
        today = datetime.now(UTC).date()
        with self.catching_up:
            rows = self.models.all_rows()
        tasks = todo_view(partner, rows, today, int(within_text))
        return JSONResponse({"partner": partner, "as_of": today.isoformat(),
                             "tasks": [t.to_json() for t in tasks]})

    def prove(self, request: Request) -> Response:
        """What ``ledger prove --json`` prints: ``?entry=INDEX|REF:SEQ`` for an inclusion
        proof, ``?from=N[&to=M]`` for a consistency proof. A client checks it against the
        checkpoint the operator signed."""
        query = request.query_params
        sizes: list[int | None] = []
        for name in ("from", "to"):
            text = query.get(name)
            if text is not None and (not text.isdigit() or len(text) > 18):
                raise InvalidInput(f"{name}={text!r}: give a tree size (0 or more)")
            sizes.append(None if text is None else int(text))
        with self.catching_up:
            return JSONResponse(proof_document(self.ledger, query.get("entry"), *sizes))

    def report(self, reference: str, day: date | None) -> Response:
        """What ``ledger report`` writes: one self-contained HTML page."""
        from commands.report import render_report  # noqa: PLC0415 - jinja2 only here

        with self.catching_up:
            data = build_report(self.ledger, reference, day)
        return HTMLResponse(render_report(data))

    def export(self, reference: str) -> Response:
        """What ``ledger export REF`` writes: the agreement's audit bundle."""
        with self.catching_up:
            bundle = export_bundle(self.ledger, reference)
        return Response(bundle.dumps(), media_type="application/json")

    def entries(self, request: Request) -> Response:
        """An agreement's entries as stored, each with the time the ledger recorded it: what
        a client replays, checking every signature and rule, before it shows or signs."""
        reference = parse_slug(request.path_params["reference"], "agreement reference")
        after_text = request.query_params.get("after", "0")
        if not after_text.isdigit() or len(after_text) > 18:
            raise InvalidInput(f"after={after_text!r}: give the number of entries already "
                               f"held (0 or more)")
        after = int(after_text)
        records, broken = stored_records(self.ledger, agreement_id(reference),
                                         max(after - 1, 0))
        if broken is not None:
            raise VerificationFailed(broken.what)
        if not records:
            raise NotFound(f"there is no agreement {reference!r} in this ledger"
                           + (f" with {after} entries" if after else ""))
        answer: dict[str, Any] = {"reference": reference}
        if after:
            # The hash of the last entry the client holds: it checks its copy is this one.
            answer["after_hash"] = sha256_hex(records[0].text.encode())
            records = records[1:]
        answer["entries"] = [{"seq": r.version, "entry": r.text,
                              "recorded": r.recorded.isoformat()} for r in records]
        return JSONResponse(answer)

    def view(self, request: Request) -> Response:
        """What ``ledger status``, ``signatures``, ``history`` or ``budget --json`` print, from
        the agreement's entries (with ``as_of=DATE``, as it stood at the end of that day): for
        reading at a glance; a partner's ``ledger`` computes the same from the entries it
        checks itself."""
        reference = parse_slug(request.path_params["reference"], "agreement reference")
        as_of = request.query_params.get("as_of")
        day = None if as_of is None else parse_date(as_of, "as_of")
        view = request.path_params["view"]
        if view == "report":
            return self.report(reference, day)
        if view == "export":
            if day is not None:
                raise InvalidInput("an export is of the agreement as it stands: leave out as_of")
            return self.export(reference)
        with self.catching_up:
            agreement = agreement_as_of(self.ledger, reference, day)
        if view == "history":
            return JSONResponse(history_json(reference, history_view(agreement)))
        rows = rows_for(agreement)
        if view == "budget":
            return JSONResponse(budget_view(rows).to_json())
        status = status_view(rows, day or datetime.now(UTC).date())
        if view == "signatures":
            return JSONResponse(status.signatures_json())
        if view == "status":
            return JSONResponse(status.to_json())
        raise NotFound(f"there is no view {view!r}: status, signatures, history, budget, report "
                       f"or export")

    async def post_entry(self, request: Request) -> Response:
        """Store a partner's signed entry: 201 with the entry as stored; 200 with the first
        result if this act (its partner and identity) is already recorded."""
        text = await _body(request)
        entry = Entry.parse(text)
        s = entry.statement
        if s.action == "draft" and self.policy.drafters is not None:
            drafter = s.body_of(DraftBody).partner.public_key
            if drafter not in self.policy.drafters:
                raise NotPermitted("this service's operator has not allowed that key to "
                                   "draft agreements here")
        return await _in_thread(lambda: self._store(entry))

    async def post_cosignature(self, request: Request) -> Response:
        """Keep a partner's cosignature of a checkpoint (C2SP tlog-cosignature), once the
        whole log checks out and the key is one the partner acts with now, as ``ledger
        cosign`` where the ledger is would."""
        try:
            posted = json.loads(await _body(request))
            size, witness = int(posted["size"]), parse_slug(str(posted["witness"]), "witness")
            public_key = parse_public_key(str(posted["public_key"]))
            signature = NoteSignature.parse_line(str(posted["signature"]))
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("a cosignature is {size, witness, public_key, signature}") \
                from None
        return await _in_thread(lambda: self._cosign(size, witness, public_key, signature))

    def _cosign(self, size: int, witness: str, public_key: bytes,
                signature: NoteSignature) -> Response:
        with self.writing:
            latest = self._log().checkpoint(size)
            verify_cosignature(add_signatures(latest.note, signature), witness, public_key)
            report = verify_ledger(self.ledger, read_models=False)
            refuse_unless_verified(report, f"{witness}'s cosignature was not kept")
            report.witnesses.check(witness, public_key, now=True)
            self.ledger.add_cosignature(size, witness, public_key, signature)
        return JSONResponse({"size": size, "witness": witness}, 201)

    def _store(self, entry: Entry) -> Response:
        s = entry.statement
        with self.writing:
            try:
                agreement = self.ledger.submit(entry)
            except AlreadyRecorded as exc:
                stored = self.ledger.agreement(s.agreement, copy=False).history[exc.seq - 1]
                return JSONResponse(_landed(stored.entry, stored.recorded, already=True), 200)
            except RuleViolation as exc:
                # An entry that no longer follows the agreement's last one lost a race: the
                # client reads the agreement again and signs the same act anew.
                if s.action != "draft" and self.ledger.exists(s.agreement):
                    version = self.ledger.agreement(s.agreement, copy=False).version
                    if version >= s.seq:
                        raise AgreementBusy(f"agreement {s.agreement!r} has moved on to entry "
                                            f"{version}; read it again and sign again") from exc
                raise
        stored = agreement.history[s.seq - 1]
        return JSONResponse(_landed(stored.entry, stored.recorded, already=False), 201)


def _landed(entry: Entry, recorded: Any, *, already: bool) -> dict[str, Any]:
    s = entry.statement
    return {"agreement": s.agreement, "seq": s.seq, "entry_hash": entry.hash,
            "entry": entry.text, "recorded": recorded.isoformat(), "at": at_text(s.at),
            "already": already}


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise _TooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _TooLarge(Exception):
    pass


async def _in_thread(work: Callable[[], Response]) -> Response:
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415

    return await run_in_threadpool(work)


def make_app(location: Location, policy: Policy) -> Starlette:
    """The ASGI application over the ledger at ``location``."""
    service = Service(location, policy)

    def guarded(handler: Callable[[Request], Any], *, read: bool) -> Callable[
            [Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if read and policy.read_token is not None:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(),
                                           f"Bearer {policy.read_token}".encode()):
                    return JSONResponse({"error": "reading this ledger needs its read token",
                                         "kind": "unauthorised"}, 401)
            try:
                result = handler(request)
                answer: Response = result if isinstance(result, Response) else await result
            except _TooLarge:
                return JSONResponse({"error": f"the request is larger than an entry can be "
                                              f"({MAX_BODY} bytes)", "kind": "too-large"}, 413)
            except LedgerError as exc:
                return error_response(exc)
            except DBAPIError as exc:
                # The database refused what no route turned into one of the ledger's errors.
                return error_response(table_refusal(location, exc))
            return answer
        return endpoint

    routes = [
        Route("/healthz", service.health),
        Route("/openapi.json", service.openapi),
        Route("/v1/ledger", guarded(service.identity, read=True)),
        Route("/v1/agreements", guarded(service.agreements, read=True)),
        Route("/v1/agreements/{reference}/entries", guarded(service.entries, read=True)),
        Route("/v1/agreements/{reference}/{view}", guarded(service.view, read=True)),
        Route("/v1/todo/{partner}", guarded(service.todo, read=True)),
        Route("/v1/prove", guarded(service.prove, read=True)),
        Route("/v1/entries", guarded(service.post_entry, read=False), methods=["POST"]),
        Route("/v1/cosignatures", guarded(service.post_cosignature, read=False),
              methods=["POST"]),
        Route("/checkpoint", guarded(service.checkpoint, read=True)),
        Route("/tile/{path:path}", guarded(service.tile, read=True)),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_RequestLog)
    return app


class _RequestLog:
    """One structured line (JSON) per request, to the ``ledger.serve`` logger (which
    ``ledger serve`` writes to stderr)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            line = {"method": scope["method"], "path": scope["path"], "status": status["code"],
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0]}
            log.info(json.dumps(line))
