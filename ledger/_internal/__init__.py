"""Not the ledger's API: the fast paths that sit behind its public doors.

Each module here does, faster, what a public function defines, and is tested against it:
``fastjson`` against :func:`ledger.canonical.canonical` and the reference RFC 8785
implementation, ``codec`` against eventsourcing's own mapper, ``once`` against computing the
value afresh. Nothing outside :mod:`ledger` imports from here.
"""
