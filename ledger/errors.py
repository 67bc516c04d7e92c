"""The one error root of the ledger.

Every error the core raises is a :class:`LedgerError`. Its message is one line that says what
is wrong and what to do about it; the command line prints it as it is. Subclasses tell the
caller *how* it went wrong (a refused act, bad input, a failed verification, ...), which the
command line turns into its exit status.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""

    exit_code = 1

    def diagnostics(self) -> str:
        """The one line to show a person."""
        return str(self)


class InvalidInput(LedgerError):
    """A value given by a person or a file is malformed (an amount, a date, a year...)."""


class RuleViolation(LedgerError):
    """An act the agreement's rules do not allow at this point; nothing was written."""


class SignatureInvalid(RuleViolation):
    """A signature does not verify, or was made by a key that may not sign this statement."""


class AlreadyRecorded(RuleViolation):
    """The act (by its identity) is already in the record: a retry of an act that landed."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        #: The seq of the entry that recorded the act.
        self.seq = seq


class NotFound(LedgerError):
    """An agreement, partner, key or variation that does not exist."""


class AgreementBusy(LedgerError):
    """Other acts kept landing on the agreement while this one was being written."""


class KeyFileError(LedgerError):
    """A key file is missing, corrupt, or the passphrase does not open it."""


class StorageError(LedgerError):
    """The ledger's database cannot be reached or is not a ledger."""


class NotPermitted(StorageError):
    """The database role this ledger was opened with may not do what was asked."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not check out."""

    exit_code = 3


class VerificationFailed(LedgerError):
    """The record does not check out: a signature, chain, rule, tree or checkpoint is wrong."""

    exit_code = 3
