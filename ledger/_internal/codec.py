"""Entry events' stored state, read and written directly.

eventsourcing's mapper makes an event object and transcodes it for every entry stored or
read; verifying, rebuilding and importing handle every entry of a ledger, so with the usual
settings (JSON transcoding, neither cipher nor compressor) they read and write the state
directly instead. ``tests/test_stored_events.py`` checks that the bytes are the mapper's own;
:class:`ledger.application.Ledger` takes the mapper's way with any other settings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson


def read_state(stored: bytes) -> dict[str, Any] | None:
    """An entry event's state as eventsourcing's JSON transcoding writes it (the entry's
    text, and the time as ``{"_type_": "datetime_iso", "_data_": ...}``), read directly; None
    if it is not of that shape (the transcoder then reads it, or refuses it)."""
    try:
        state: dict[str, Any] = orjson.loads(stored)
        moment = state["timestamp"]
        if moment["_type_"] != "datetime_iso" or type(state["entry"]) is not str:
            return None
        state["timestamp"] = datetime.fromisoformat(moment["_data_"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return state


def write_state(entry_text: str, recorded: datetime, originator_topic: str | None) -> bytes:
    """The state the mapper stores for an entry event (with the aggregate's topic for the
    event that creates it), byte for byte."""
    state: dict[str, Any] = {"timestamp": {"_type_": "datetime_iso",
                                           "_data_": recorded.isoformat()}}
    if originator_topic is not None:
        state["originator_topic"] = originator_topic
    state["entry"] = entry_text
    return orjson.dumps(state)
