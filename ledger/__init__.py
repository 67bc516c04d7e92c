"""The agreement ledger's core: rules, signed entries, canonical bytes, the Merkle log.

What other packages use, by module: :mod:`ledger.application` (``Ledger``: acting and
reading a ledger), :mod:`ledger.domain` (``Agreement``: every rule, and replay),
:mod:`ledger.bodies` and :mod:`ledger.values` (what a statement's body says),
:mod:`ledger.statement` (statements and entries), :mod:`ledger.canonical` (the one canonical
byte form), :mod:`ledger.keys` and :mod:`ledger.keystore` (keys and partners' key folders),
:mod:`ledger.merkle`, :mod:`ledger.note`, :mod:`ledger.checkpoints` and :mod:`ledger.witness`
(the log, its checkpoints and cosigning), :mod:`ledger.verify` and :mod:`ledger.bundle`
(verification, offline bundles), :mod:`ledger.storage` and :mod:`ledger.protect` (where a
ledger is stored), :mod:`ledger.identity` and :mod:`ledger.errors`. ``ledger._internal`` holds
the fast paths behind these and is not imported from outside the core;
``docs/ARCHITECTURE.md`` says where each thing lives.
"""
