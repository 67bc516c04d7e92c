"""The service's OpenAPI document: served at ``/openapi.json`` and committed as
``docs/openapi.json`` (``python -m commands.openapi`` writes it; a test checks the two agree
and that every route the service has is in it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _error(description: str) -> dict[str, Any]:
    """A response that is the one-line error of docs/CLI.md, as JSON."""
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Agreement ledger service",
        "version": "1",
        "description": (
            "The service of `ledger serve`. Writes are signed entries, checked with every "
            "rule of the core; reads give the entries themselves, which clients check before "
            "believing. See docs/OPERATIONS.md."
        ),
    },
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Whether the ledger can be read",
                "responses": {
                    "200": {
                        "description": "ready",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["ok", "origin"],
                                    "properties": {
                                        "ok": {"const": True},
                                        "origin": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "503": {
                        "description": "the database cannot be reached",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "ok": {"const": False},
                                        "error": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {}},
                    }
                },
            }
        },
        "/checkpoint": {
            "get": {
                "summary": "The latest checkpoint, with its cosignatures (C2SP tlog-checkpoint)",
                "security": [{}, {"readToken": []}],
                "responses": {
                    "200": {
                        "description": "a signed note",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": {"description": "reads need the read token"},
                    "404": {"description": "no checkpoint yet"},
                },
            }
        },
        "/tile/{path}": {
            "get": {
                "summary": "A tile of the log (C2SP tlog-tiles, height 8)",
                "description": (
                    "`tile/L/N[.p/W]`: the hashes of tree level 8L from 256N on; "
                    "`tile/entries/N[.p/W]`: the entries, each after its length as a "
                    "big-endian uint16. N is written in groups of three digits, every group "
                    "but the last after an x. A full tile never changes."
                ),
                "security": [{}, {"readToken": []}],
                "parameters": [
                    {
                        "name": "path",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "the tile",
                        "content": {"application/octet-stream": {}},
                    },
                    "400": {"description": "not a tile path"},
                    "401": {"description": "reads need the read token"},
                    "404": {"description": "the log does not hold this tile yet"},
                },
            }
        },
        "/v1/ledger": {
            "get": {
                "summary": "The ledger's origin and operator",
                "security": [{}, {"readToken": []}],
                "responses": {
                    "200": {
                        "description": "identity",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["origin", "operator", "operator_public_key"],
                                    "properties": {
                                        "origin": {"type": "string"},
                                        "operator": {"type": "string"},
                                        "operator_public_key": {
                                            "type": "string",
                                            "pattern": "^[0-9a-f]{64}$",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "401": _error("reads need the read token"),
                    "503": _error("the ledger's database cannot be reached"),
                },
            }
        },
        "/v1/agreements": {
            "get": {
                "summary": "Every agreement, as `ledger list --json` lists it",
                "security": [{}, {"readToken": []}],
                "responses": {
                    "200": {
                        "description": "the agreements, by reference, with their state today",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["agreements"],
                                    "properties": {
                                        "agreements": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "required": ["reference", "title", "state",
                                                             "entries", "start", "end"],
                                            },
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "401": _error("reads need the read token"),
                    "503": _error("the ledger's database cannot be reached"),
                },
            }
        },
        "/v1/agreements/{reference}/entries": {
            "get": {
                "summary": "An agreement's entries as stored, with the time each was recorded",
                "security": [{}, {"readToken": []}],
                "parameters": [
                    {
                        "name": "reference",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
                        },
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                        "description": (
                            "the entries the client already holds: only later ones are "
                            "given, with the hash of entry `after`"
                        ),
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the entries, in order",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["reference", "entries"],
                                    "properties": {
                                        "reference": {"type": "string"},
                                        "after_hash": {
                                            "type": "string",
                                            "pattern": "^[0-9a-f]{64}$",
                                            "description": (
                                                "with after: the hash of entry `after`, for "
                                                "the client to compare with its own copy"
                                            ),
                                        },
                                        "entries": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "required": ["seq", "entry", "recorded"],
                                                "properties": {
                                                    "seq": {"type": "integer", "minimum": 1},
                                                    "entry": {"type": "string"},
                                                    "recorded": {
                                                        "type": "string",
                                                        "format": "date-time",
                                                    },
                                                },
                                            },
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "400": _error("malformed: the body is not a canonical entry"),
                    "401": _error("reads need the read token"),
                    "404": _error("no such agreement"),
                    "503": _error("the ledger's database cannot be reached"),
                },
            }
        },
        "/v1/agreements/{reference}/{view}": {
            "get": {
                "summary": "What ledger status, signatures, history or budget --json print",
                "description": (
                    "The documents of docs/CLI.md, from the service's read models (or, with "
                    "as_of, the agreement replayed to that date). A partner's ledger computes "
                    "the same from the entries it checks itself."
                ),
                "security": [{}, {"readToken": []}],
                "parameters": [
                    {
                        "name": "reference",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "view",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "enum": ["status", "signatures", "history", "budget", "report",
                                     "export"],
                        },
                    },
                    {
                        "name": "as_of",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": (
                            "the document docs/CLI.md defines; for report, the page `ledger "
                            "report` writes; for export, the agreement's audit bundle "
                            "(docs/FORMAT.md)"
                        ),
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    **{
                        code: {"description": text}
                        for code, text in (
                            ("400", "malformed reference or date"),
                            ("401", "reads need the read token"),
                            ("404", "no such agreement or view"),
                        )
                    },
                },
            }
        },
        "/v1/todo/{partner}": {
            "get": {
                "summary": "What `ledger todo --as PARTNER --json` prints",
                "security": [{}, {"readToken": []}],
                "parameters": [
                    {"name": "partner", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "within", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0, "default": 90},
                     "description": "end dates due within this many days"},
                ],
                "responses": {
                    "200": {
                        "description": "the partner's tasks (docs/CLI.md)",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **{
                        code: {"description": text}
                        for code, text in (
                            ("400", "malformed partner id or number of days"),
                            ("401", "reads need the read token"),
                        )
                    },
                },
            }
        },
        "/v1/prove": {
            "get": {
                "summary": "What `ledger prove --json` prints (RFC 9162 proofs)",
                "description": (
                    "entry=INDEX or entry=REF:SEQ: an inclusion proof in the latest "
                    "checkpoint; from=N (and to=M): a consistency proof. Each is checked "
                    "against the signed root before it is given; a client checks it again "
                    "against the checkpoint the operator signed."
                ),
                "security": [{}, {"readToken": []}],
                "parameters": [
                    {"name": "entry", "in": "query", "required": False,
                     "schema": {"type": "string"}},
                    {"name": "from", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0}},
                    {"name": "to", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0}},
                ],
                "responses": {
                    "200": {
                        "description": "the proof (docs/CLI.md)",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **{
                        code: {"description": text}
                        for code, text in (
                            ("400", "neither or both of entry and from, or malformed"),
                            ("401", "reads need the read token"),
                            ("404", "no such entry, or no checkpoint yet"),
                        )
                    },
                },
            }
        },
        "/v1/cosignatures": {
            "post": {
                "summary": "Keep a partner's cosignature of a checkpoint (C2SP tlog-cosignature)",
                "description": (
                    "Kept once the whole log checks out and the key is one the witness "
                    "partner acts with now. The same cosignature posted again is kept once."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["size", "witness", "public_key", "signature"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "witness": {"type": "string"},
                                    "public_key": {"type": "string"},
                                    "signature": {
                                        "type": "string",
                                        "description": "the signature line, no newline",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {"description": "kept"},
                    **{
                        code: {"description": text}
                        for code, text in (
                            ("400", "malformed"),
                            ("404", "no checkpoint of that size"),
                            ("413", "larger than a cosignature can be"),
                            ("422", "refused: the signature or the key"),
                            ("500", "the log does not check out: nothing was kept"),
                        )
                    },
                },
            }
        },
        "/v1/entries": {
            "post": {
                "summary": "Store a partner's signed entry",
                "description": (
                    "The body is the entry's canonical JSON (docs/FORMAT.md section 3). "
                    "Posting the same act again (the same partner and act identity) answers "
                    "with the first result, never a second entry."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["signature", "statement"],
                                "properties": {
                                    "signature": {"type": "string"},
                                    "statement": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "recorded",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Landed"}}
                        },
                    },
                    "200": {
                        "description": "this act was already recorded: the first result",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Landed"}}
                        },
                    },
                    "400": _error("malformed: the body is not a canonical entry"),
                    "403": _error("the operator's policy does not allow this key to draft"),
                    "404": _error("no such agreement"),
                    "409": _error("conflict: the agreement moved on; read it again and sign "
                                  "the same act again"),
                    "413": _error("the body is larger than an entry can be"),
                    "422": _error("refused by a rule or a signature check"),
                    "503": _error("the ledger's database cannot be reached"),
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "kind"],
                "properties": {
                    "error": {
                        "type": "string",
                        "description": "one line, as the command line prints it",
                    },
                    "kind": {
                        "type": "string",
                        "enum": [
                            "malformed",
                            "refused",
                            "conflict",
                            "not-found",
                            "not-permitted",
                            "too-large",
                            "unauthorised",
                            "damaged",
                            "unavailable",
                        ],
                    },
                },
            },
            "Landed": {
                "type": "object",
                "required": [
                    "agreement",
                    "seq",
                    "entry_hash",
                    "entry",
                    "recorded",
                    "at",
                    "already",
                ],
                "properties": {
                    "agreement": {"type": "string"},
                    "seq": {"type": "integer", "minimum": 1},
                    "entry_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "entry": {
                        "type": "string",
                        "description": "the entry's canonical text, as stored",
                    },
                    "recorded": {"type": "string", "format": "date-time"},
                    "at": {"type": "string", "format": "date-time"},
                    "already": {
                        "type": "boolean",
                        "description": "true when this act was recorded before: the first result",
                    },
                },
            },
        },
        "securitySchemes": {
            "readToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "only when the service runs with --read-token-file",
            }
        },
    },
}


def text() -> str:
    """The document as committed."""
    return json.dumps(DOCUMENT, indent=2) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/openapi.json")
    target.write_text(text(), encoding="utf-8")
