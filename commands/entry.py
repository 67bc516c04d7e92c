"""The ``ledger`` console script: what runs before anything is imported.

Importing the command line takes a moment; a Ctrl-C in that moment is still an interruption
told in one line, never a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``ledger`` command."""
    try:
        from commands.cli import main as run  # noqa: PLC0415 - after the handler is in place

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing more was written\n")
        sys.exit(130)
