import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from tests.analysis.reference_data import shared_path

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    out = StringIO()
    call_command("mrmc", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_van_dyke_report_shows_every_table_and_json_holds_the_library_numbers(tmp_path):
    path = shared_path("vandyke/RocData.csv")
    out_json = tmp_path / "out.json"
    text = run(path, "--json", out_json)
    for heading in ("Figure of merit by reader and treatment", "OR variance components",
                    "Analysis RRRC", "Analysis FRRC", "Analysis RRFC", "Single-arm 95%",
                    "Single-reader differences"):
        assert heading in text
    assert "F(1, 15.26) = 4.4563, p = 0.0517" in text
    assert "treatment 0 - treatment 1" in text and "(-0.08796, 0.00036)" in text
    data = json.loads(out_json.read_text())
    expected = or_analysis(read_long_csv(path))
    rrrc = data["analyses"]["rrrc"]
    assert rrrc["global_test"]["statistic"] == expected.analysis("rrrc").global_test.statistic
    assert rrrc["comparisons"][0]["p_holm"] == expected.analysis("rrrc").comparisons[0].p_holm
    assert data["components"]["var_error"] == expected.components.var_error
    assert len(data["fom_table"]) == 10


def test_imrmc_format_with_delong_and_one_analysis(tmp_path):
    out_json = tmp_path / "out.json"
    text = run(shared_path("vandyke/RocData.imrmc"), "--format", "imrmc", "--cov", "delong",
               "--analysis", "frrc", "--json", out_json)
    assert "Covariance: delong" in text and "Analysis RRRC" not in text
    assert set(json.loads(out_json.read_text())["analyses"]) == {"frrc"}


def test_bootstrap_json_is_reproducible_for_a_seed(tmp_path):
    path = shared_path("vandyke/RocData.csv")
    outputs = []
    for name in ("a.json", "b.json"):
        run(path, "--cov", "bootstrap", "--seed", 7, "--bootstrap-samples", 300,
            "--json", tmp_path / name)
        outputs.append(json.loads((tmp_path / name).read_text()))
    assert outputs[0] == outputs[1]
    assert outputs[0]["seed"] == 7 and outputs[0]["bootstrap_samples"] == 300


def test_binary_figure_of_merit_with_threshold():
    text = run(shared_path("vandyke/RocData.csv"), "--fom", "specificity", "--threshold", 3,
               "--analysis", "rrrc")
    assert "Figure of merit: specificity (positive when rating >= 3)" in text


def test_split_plot_case_column_is_reported_as_its_design():
    text = run(shared_path("mrmcaov_datasets/VanDyke.csv"), "--case-column", "case2")
    assert "Design: cases within readers" in text


def test_malformed_input_raises_one_line_per_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,treatment,case,truth,rating\n0,0,1,0,abc\n0,0,2,1,3\n0,0,2,1,4\n"
                   "0,1,1,1,2\n1,0,1,0,2\n")
    with pytest.raises(CommandError) as info:
        run(bad)
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("line 2: rating 'abc' is not a number")


def test_a_reader_missing_an_arm_and_a_single_truth_class_are_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,treatment,case,truth,rating\n0,0,1,1,1\n0,1,1,1,2\n1,0,1,1,3\n")
    with pytest.raises(CommandError) as info:
        run(bad)
    message = str(info.value)
    assert "reader 1 has no ratings under treatment 1" in message
    assert "truth has a single class" in message


def test_manage_py_exits_1_with_readable_errors_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,treatment,case,truth\n0,0,1,0\n")
    proc = subprocess.run([sys.executable, "manage.py", "mrmc", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "missing required column(s): rating" in proc.stderr


def test_manage_py_runs_mrmc_without_loading_the_apps_and_prints_what_call_command_prints():
    path = shared_path("mrmcaov_datasets/Kundel.csv")
    proc = subprocess.run([sys.executable, "manage.py", "mrmc", str(path), "--analysis", "frrc"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run(path, "--analysis", "frrc")
    assert "treatment 1 - treatment 2" in proc.stdout


def test_the_mrmc_command_imports_no_models_no_celery_and_not_scipy_stats():
    # what manage.py's fast path loads for mrmc; scipy.stats alone costs ~0.5 s of every run
    probe = ("import sys, manage, analysis.management.commands.mrmc; "
             "print(sorted(m for m in sys.modules if m in ('scipy.stats', 'celery') "
             "or m.startswith('django.contrib') or m.split('.')[0] in "
             "('config', 'core', 'library', 'explain', 'studies', 'demo') "
             "or m.startswith('analysis.') and not m.startswith(('analysis.stats', "
             "'analysis.management'))))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_text_output_names_the_design_as_mrmcaov_does():
    text = run(shared_path("mrmcaov_datasets/VanDyke.csv"), "--case-column", "case3")
    assert "(MRMCaov: cases nested within treatment)" in text
