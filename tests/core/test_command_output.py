"""A command prints what its user needs, not library start-up chatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_management_command_prints_no_library_banner():
    run = subprocess.run(  # a fresh process: the banner is logged while the apps start
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "AXES" not in run.stderr + run.stdout
    assert run.stdout.strip() == "System check identified no issues (0 silenced)."
