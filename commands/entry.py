"""The ``ledger`` console script: what runs before anything is imported.

Importing the command line takes a moment; a Ctrl-C in that moment is still an interruption
told in one line, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path


def main() -> None:
    """Run the ``ledger`` command."""
    try:
        begin_opening_key(sys.argv[1:], os.environ)
        from commands.cli import main as run  # noqa: PLC0415 - after the handler is in place

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing more was written\n")
        sys.exit(130)


def begin_opening_key(argv: list[str], environ: Mapping[str, str]) -> None:
    """Begin opening the key an act will most likely sign with, before the command line is
    loaded: scrypt, most of the work of an act, then runs beside the loading
    (:meth:`ledger.keystore.KeyStore.prepare`). The key named by ``--key``, else the one named
    like the partner (``--as``), in the folder ``--keys`` or ``LEDGER_KEYS`` names, with the
    passphrase in ``LEDGER_PASSPHRASE``. It is a guess and nothing more: the act opens the
    key it needs as ever, and takes this work only for the same key file and passphrase."""
    passphrase = environ.get("LEDGER_PASSPHRASE")
    name = _value(argv, "--key") or _value(argv, "--as")
    folder = _value(argv, "--keys") or environ.get("LEDGER_KEYS")
    if (not passphrase or not name or not folder or "--passphrase-file" in argv
            or environ.get("LEDGER_PASSPHRASE_FILE")):
        return
    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.keystore import KeyStore  # noqa: PLC0415

    try:
        KeyStore(Path(folder).expanduser()).prepare(name, passphrase.encode())
    except (LedgerError, UnicodeEncodeError, OSError):
        return  # the command itself says what is wrong, when it opens the key


def _value(argv: list[str], option: str) -> str | None:
    """The value given to ``option`` (``--option VALUE`` or ``--option=VALUE``), if any."""
    for at, word in enumerate(argv):
        if word == "--":
            return None
        if word == option and at + 1 < len(argv):
            return argv[at + 1]
        if word.startswith(option + "="):
            return word[len(option) + 1:]
    return None
