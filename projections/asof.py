"""The agreement as it stood on a date or after an entry, replayed from its own entries.

Only that one agreement's entries are read (eventsourcing loads an aggregate at a version), so a
look into the past costs the size of the agreement, never of the ledger.
"""

from __future__ import annotations

from datetime import date

from ledger.acts import Acts
from ledger.application import as_of_version
from ledger.domain import Agreement
from ledger.errors import InvalidInput, NotFound


def agreement_as_of(ledger: Acts, reference: str, day: date | None = None,
                    entry: int | None = None) -> Agreement:
    """The agreement now, at the end of ``day``, or just after its entry number ``entry``."""
    if day is not None and entry is not None:
        raise InvalidInput("give --as-of or --as-of-entry, not both")
    current = ledger.agreement(reference)
    if entry is not None:
        if not 1 <= entry <= current.version:
            raise InvalidInput(f"agreement {reference!r} has entries 1 to {current.version}; "
                               f"--as-of-entry {entry} is not one of them")
        return ledger.agreement(reference, version=entry)
    if day is None:
        return current
    version = as_of_version(current.history, day)
    if version == 0:
        raise NotFound(f"agreement {reference!r} had not been drafted by {day}")
    return ledger.agreement(reference, version=version)
