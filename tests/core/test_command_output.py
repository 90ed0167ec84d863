"""A command prints what its user needs, not library start-up chatter."""

from __future__ import annotations

import os
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


EAGER_TASK = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from core.tasks import worker_probe
print(worker_probe.delay().get())
"""


def test_a_task_run_inside_a_command_logs_no_line_of_its_own():
    """Without a broker tasks run eagerly in the command (make demo): Celery's per-task INFO
    line and kombu's in-memory-broker warning would flood its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL",
                                                            "CELERY_TASK_ALWAYS_EAGER")}
    run = subprocess.run([sys.executable, "-c", EAGER_TASK], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert "celery.app.trace" not in run.stderr and "succeeded in" not in run.stderr
    assert "kombu" not in run.stderr
    assert run.stdout.strip()  # the task did run and returned its result
