"""What every example shares: run the installed ``ledger`` command, show each call as a
transcript, and stop loudly the moment something unexpected happens.

An example is a function that takes a :class:`Ledger` and makes its calls one by one::

    def record(ledger: Ledger) -> None:
        ledger("init", "--origin", "ledger.example/x")
        ledger.refused("terminate", "x", "--as", "p", says="runs until 2007-02-28")

    if __name__ == "__main__":
        main(record, __doc__)

Every call must succeed, and a call written with :meth:`Ledger.refused` must be refused with
the message it names: a refusal the example expects is part of what it shows, so it is checked
as strictly as a success. Anything else ends the script with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The exit status of a refused act or bad input (DESIGN section 5).
REFUSED = 1
#: Transcript lines are wrapped before an option once they grow longer than this.
WIDTH = 100


class Unexpected(Exception):
    """A ``ledger`` call ended otherwise than the example says it must."""


def _find_ledger() -> str:
    # The console script sits beside the interpreter in a virtual environment, so the examples
    # also run as /path/to/venv/bin/python examples/X.py without activating it.
    found = shutil.which("ledger") or shutil.which("ledger", path=str(Path(sys.executable).parent))
    if found is None:
        raise Unexpected("the 'ledger' command is not installed: run 'pip install .' in the "
                         "repository (in the virtual environment you run this with)")
    return found


def _quote(arg: str) -> str:
    # Names and reasons often hold an apostrophe; double quotes read better than '"'"'.
    if "'" in arg and not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return shlex.quote(arg)


def shown(args: tuple[str, ...]) -> str:
    """A call as a person would type it, wrapped between options so long calls stay readable."""
    chunks: list[list[str]] = [[]]
    for arg in args:
        if arg.startswith("--"):
            chunks.append([])
        chunks[-1].append(_quote(arg))
    lines, line = [], "$ ledger"
    for chunk in chunks:
        text = " ".join(chunk)
        if len(line) > 4 and len(line) + 1 + len(text) > WIDTH:
            lines.append(line + " \\")
            line = "   "
        line += " " + text
    lines.append(line)
    return "\n".join(lines)


@dataclass
class Ledger:
    """The ``ledger`` command, run against one ledger and one key folder."""

    executable: str
    env: dict[str, str]
    workdir: Path
    calls: int = 0
    #: Run each call inside this process (the same command line, without starting Python for
    #: every call): what the test suite does, keeping a few examples as real processes.
    in_process: bool = False

    def _run(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        print(f"\n{shown(args)}", flush=True)
        self.calls += 1
        return self._call(args)

    def _call(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        if not self.in_process:
            return subprocess.run([self.executable, *args], env=self.env, capture_output=True,
                                  text=True, check=False, timeout=300)
        from typer.testing import CliRunner  # noqa: PLC0415 - only in-process runs need it

        from commands.cli import app  # noqa: PLC0415

        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LEDGER_")}
        env.update(self.env)
        result = CliRunner().invoke(app, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise Unexpected(f"'ledger {args[0]}' crashed: {result.exception!r}")
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout,
                                           result.stderr)

    def __call__(self, *args: str) -> str:
        """Run ``ledger ARGS``, which must succeed; print and return what it printed."""
        done = self._run(args)
        print(done.stdout, end="", flush=True)
        print(done.stderr, end="", file=sys.stderr, flush=True)
        if done.returncode != 0:
            raise Unexpected(f"'ledger {args[0]}' failed with exit status {done.returncode}: "
                             f"{done.stderr.strip() or '(no message)'}")
        return done.stdout

    def together(self, *calls: tuple[str, ...]) -> None:
        """Run independent calls at the same time (each partner making its own key, say), each
        of which must succeed; print them in the order given."""
        if self.in_process:
            for args in calls:
                self(*args)
            return
        started = [subprocess.Popen([self.executable, *args], env=self.env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                   for args in calls]
        # Every call is waited for before any is judged, so none is left running on failure.
        finished = [process.communicate(timeout=300) for process in started]
        for args, process, (stdout, stderr) in zip(calls, started, finished, strict=True):
            print(f"\n{shown(args)}")
            print(stdout, end="", flush=True)
            self.calls += 1
            if process.returncode != 0:
                print(stderr, end="", file=sys.stderr, flush=True)
                raise Unexpected(f"'ledger {args[0]}' failed with exit status "
                                 f"{process.returncode}: {stderr.strip() or '(no message)'}")

    def refused(self, *args: str, says: str) -> str:
        """Run ``ledger ARGS``, which the ledger must refuse (exit status 1) with a message
        containing ``says``; return the message."""
        done = self._run(args)
        message = done.stderr.strip()
        print(message)
        if done.returncode != REFUSED or says not in message:
            print(done.stdout, end="")
            raise Unexpected(f"'ledger {args[0]}' should have been refused saying {says!r}; "
                             f"it ended with exit status {done.returncode}: "
                             f"{message or '(no message)'}")
        print(f"(refused, as the agreement requires: exit status {done.returncode})")
        return message

    def json(self, *args: str) -> Any:
        """Run ``ledger ARGS --json`` quietly and return the document it prints."""
        self.calls += 1
        done = self._call((*args, "--json"))
        if done.returncode != 0:
            raise Unexpected(f"'ledger {args[0]} --json' failed with exit status "
                             f"{done.returncode}: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def document(self, name: str, text: str) -> str:
        """Write a terms document into the work folder and return its path, for ``--terms``."""
        path = self.workdir / name
        path.write_text(text, encoding="utf-8")
        return str(path)


def check(condition: bool, what: str) -> None:
    """Stop the example if the ledger does not show what the document says."""
    if not condition:
        raise Unexpected(what)


def without_password(location: str) -> str:
    """A ledger location fit to print: a URL's password is left out."""
    url = urllib.parse.urlsplit(location)
    if url.password is None:
        return location
    host = url.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(url._replace(netloc=f"{url.username}:***@{host}"))


def _arguments(description: str) -> argparse.Namespace:
    summary = " ".join(description.strip().split("\n\n")[0].split())
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument("--ledger", metavar="PATH_OR_URL",
                        help="record on this ledger: a new SQLite file, or a postgresql:// URL "
                             "of an empty database or schema (default: a new file in the work "
                             "folder)")
    parser.add_argument("--workdir", metavar="DIR", type=Path,
                        help="folder for the ledger file, the key folder and the terms "
                             "documents (default: a new temporary folder)")
    parser.add_argument("--in-process", action="store_true",
                        help="run each ledger call inside this process rather than as its own "
                             "(quicker; the transcript is the same)")
    return parser.parse_args()


def _prepare(args: argparse.Namespace) -> Ledger:
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="ledger-example-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    keys = workdir / "keys"
    # The example creates every partner's key; keys left by an earlier run would clash.
    if keys.exists() and any(keys.iterdir()):
        raise Unexpected(f"{keys} already holds keys; give an empty --workdir")
    location = args.ledger or str(workdir / "ledger.db")
    if "://" not in location:
        path = Path(location).resolve()
        if path.exists():
            raise Unexpected(f"{path} exists; the example records on a new ledger")
        location = str(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    # A passphrase of this run only: the keys are the example's, made and used here.
    env.update(LEDGER_URL=location, LEDGER_KEYS=str(keys),
               LEDGER_PASSPHRASE=secrets.token_urlsafe(12))
    return Ledger(_find_ledger(), env, workdir, in_process=args.in_process)


def main(record: Callable[[Ledger], None], description: str | None) -> None:
    """Parse ``--ledger`` and ``--workdir``, run the example, exit 1 on anything unexpected."""
    args = _arguments(description or "")
    try:
        ledger = _prepare(args)
        print("# Each partner's key is made here and kept in the key folder; the ledger holds")
        print("# only public keys. Every call below runs with:")
        for name in ("LEDGER_URL", "LEDGER_KEYS", "LEDGER_PASSPHRASE"):
            print(f"export {name}={shlex.quote(without_password(ledger.env[name]))}")
        record(ledger)
    except (Unexpected, subprocess.TimeoutExpired) as exc:
        print(f"\nexample FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
    where = without_password(ledger.env["LEDGER_URL"])
    print(f"\nexample complete: {ledger.calls} ledger calls; the ledger is kept at {where} and "
          f"its keys in {ledger.env['LEDGER_KEYS']}")
