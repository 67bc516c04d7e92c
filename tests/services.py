"""``ledger serve`` and ``ledger`` as separate processes, as partners and operators run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.keys import store_fixed_key
from tests.tamper import PASSPHRASE

ROOT = Path(__file__).resolve().parents[1]
#: The ``ledger`` console script, as a partner runs it.
LEDGER = [sys.executable, "-c", "from commands.entry import main; main()"]


def free_port() -> int:
    """A TCP port free on loopback now."""
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url``: its status and JSON document."""
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class Services:
    """``ledger serve`` processes over one ledger, each on its own port."""

    def __init__(self, ledger_url: str, count: int, folder: Path) -> None:
        self.ledger_url = ledger_url
        self.ports = [free_port() for _ in range(count)]
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        for n in range(count):
            self.start(n)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def start(self, n: int) -> None:
        log = (self.folder / f"service-{n}.log").open("ab")
        self.procs[n] = subprocess.Popen(
            [*LEDGER, "serve", "--ledger", self.ledger_url, "--port", str(self.ports[n])],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "LEDGER_URL": ""})
        deadline = time.monotonic() + 60
        while True:
            try:
                if get_json(self.urls[n] + "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "ledger serve did not start"
            time.sleep(0.05)

    def kill(self, n: int) -> None:
        proc = self.procs[n]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)




class ProcessCli:
    """``ledger`` run as its own process, on a partner's (or auditor's) machine: its own key
    folder, and only the URL of a service."""

    def __init__(self, folder: Path, *names: str) -> None:
        self.keys = folder / "keys"
        self.keys.mkdir(parents=True, exist_ok=True)
        from ledger.keystore import KeyStore  # noqa: PLC0415

        store = KeyStore(self.keys)
        for name in names:
            store_fixed_key(store, name, PASSPHRASE.encode())

    def run(self, *args: str, ledger: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        """Run one command against ``ledger``; it must end with exit status ``code``."""
        env = {**os.environ, "LEDGER_KEYS": str(self.keys), "LEDGER_PASSPHRASE": PASSPHRASE,
               "LEDGER_URL": "", "COLUMNS": "200"}
        done = subprocess.run([*LEDGER, *args, "--ledger", ledger], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == code, (f"ledger {' '.join(args)}: exit {done.returncode}, "
                                         f"expected {code}\n{done.stdout}{done.stderr}")
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def json(self, *args: str, ledger: str, code: int = 0) -> Any:
        """Run one command with ``--json`` and read its document."""
        return json.loads(self.run(*args, "--json", ledger=ledger, code=code).stdout)
