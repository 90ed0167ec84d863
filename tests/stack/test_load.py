"""The load test's short configuration on the production stack: gunicorn (production settings,
its default worker count for this machine), PostgreSQL, Redis and a Celery worker, started by
tests/stack/launcher.py.

`manage.py load_study` builds an open two-stage study with 50 readers (its predictions and
heatmaps computed by the stack's Celery worker), then bench/load_readers.py makes the 50
readers log in and read their first two trials at once, as their browsers would, with deliberate
duplicate submits (concurrent and sequential), submits the client gives up on and retries, and
page reloads mid-trial. It checks afterwards, in the stack's database, that every answer a
reader meant to store is stored exactly once. Its latency table is printed and left in
var/test-artifacts/load-test.txt (or $XRS_TEST_ARTIFACTS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, require_service
from tests.stack.launcher import Stack, stack_services

pytestmark = [pytest.mark.service, pytest.mark.slow]

READERS = 50
CASES_PER_READER = 4  # one unaided, one AI alone, two AI + (real or placebo) Grad-CAM
TRIALS_READ = 2  # of each reader's 4, in schedule order: all four arms come up across readers
PASSWORD = "Load-test-readers-2026"


def test_fifty_readers_reading_at_once_get_no_server_error_and_every_answer_is_stored_exactly_once(tmp_path):
    ok, how = stack_services()
    require_service("PostgreSQL and Redis", ok, how)
    summary_file = tmp_path / "summary.json"
    with Stack(storage="filesystem", workers=1, web_workers=5) as stack:
        setup = stack.manage(
            "load_study", "--readers", str(READERS), "--cases-per-reader", str(CASES_PER_READER),
            "--password", PASSWORD, "--allow-production", "--precompute-timeout", "240", timeout=400,
        )
        study_json = tmp_path / "study.json"
        study_json.write_text(setup.stdout)
        run = subprocess.run(
            [sys.executable, "bench/load_readers.py", "--url", stack.url, "--study-json", str(study_json),
             "--password", PASSWORD, "--trials", str(TRIALS_READ), "--json", str(summary_file),
             "--max-seconds", "240"],
            cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=420, check=False,
        )
    print(run.stdout)
    artifacts = os.environ.get("XRS_TEST_ARTIFACTS") or REPO_ROOT / "var" / "test-artifacts"
    os.makedirs(artifacts, exist_ok=True)
    with open(os.path.join(artifacts, "load-test.txt"), "w") as out:
        out.write(run.stdout)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-4000:]
    summary = json.loads(summary_file.read_text())
    assert summary["https_proxy"] is True  # production cookies are Secure; the client stood in for the proxy
    assert summary["http_5xx"] == 0 and summary["errors"] == []
    assert summary["readers"] == READERS
    assert summary["trials_read"] == READERS * TRIALS_READ
    stored = summary["stored"]
    # one response per trial, plus the unaided first answer of each two-stage trial
    assert stored["intended"] == stored["stored_once"] > READERS * TRIALS_READ
    assert stored["missing"] == stored["duplicated"] == stored["different"] == stored["unexpected"] == 0
    # the faults were really exercised
    counts = summary["counts"]
    assert counts.get("duplicates sent (concurrent)", 0) > 0
    assert counts.get("duplicates sent (sequential)", 0) > 0
    assert counts.get("client timeouts then retried", 0) > 0
    assert counts.get("resumes", 0) > 0
    kinds = {row["kind"]: row["count"] for row in summary["latency"]}
    assert kinds["trial page"] >= READERS * TRIALS_READ
    assert kinds["image"] >= READERS * TRIALS_READ and kinds["heatmap"] > 0 and kinds["reveal"] > 0
