"""The names of the read-model tables that hold an agreement's rows.

An agreement's rows (:class:`projections.rows.AgreementRows`) are keyed by these names, so that
the views a command shows (``status``, ``budget``) can be made from an agreement
without loading SQLAlchemy; :mod:`projections.models` names its tables with them.
"""

from __future__ import annotations

AGREEMENTS = "agreements"
PARTNERS = "partners"
SIGNATORIES = "signatories"
SIGNATURES = "signatures"
FUNDING_LINES = "funding_lines"
PAYMENTS = "payments"
VARIATIONS = "variations"
CONSENTS = "consents"
NOTICES = "notices"
