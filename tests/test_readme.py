"""The README's walk-through, run as a new user would type it, with the installed ``ledger``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_gives_one_install_and_one_test_command() -> None:
    install, tests = _blocks()[:2]
    assert "pip install ." in install
    assert "ledger demo" in install
    assert "pytest" in tests


@pytest.mark.skipif(shutil.which("ledger") is None, reason="the ledger command is not installed")
def test_the_southwark_walk_through_runs_as_written(tmp_path: Path) -> None:
    walk = _blocks()[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    done = subprocess.run(["bash", "-e", "-c", walk], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    # What the walk-through prints is what its comments say: in force on its start date, and
    # each signatory named once, with the body they sign for.
    assert re.search(r"^  state: +in force \(as of 2003-12-17\)$", done.stdout, re.M)
    assert "signatory: Chief Executive, Southwark PCT" in done.stdout
    assert ("signatory: Strategic Director of Social Services, London Borough of Southwark"
            in " ".join(done.stdout.split()))
    assert "Chief Executive, Chief Executive" not in done.stdout
    # The early termination is refused with the date the notice period ends...
    assert "runs until 2005-01-01" in done.stderr
    # ...and the agreement ends, with every figure the executive report gives.
    run_env = {**env, "LEDGER_URL": str(tmp_path / "southwark.db"),
               "LEDGER_KEYS": str(tmp_path / "keys"), "LEDGER_PASSPHRASE": "walk-through-only"}
    status = json.loads(subprocess.run(
        ["ledger", "status", "southwark-ices", "--json"], env=run_env, capture_output=True,
        text=True, check=True).stdout)
    assert status["state"] == "terminated"
    budget = json.loads(subprocess.run(
        ["ledger", "budget", "southwark-ices", "--json"], env=run_env, capture_output=True,
        text=True, check=True).stdout)
    totals = {y["year"]: y["total"] for y in budget["years"]}
    # The agreement ended on 1 January 2005: 2005/06, which begins after, owes nothing; its
    # funding is shown as released.
    assert totals == {"2003/04": "1026000.00", "2004/05": "1051000.00", "2005/06": "0.00"}
    assert budget["years"][2]["released"] == "1077000.00"
    assert "verified: 10 entries" in done.stdout
    page = (tmp_path / "southwark.html").read_text(encoding="utf-8")
    assert "1,026,000.00" in page
