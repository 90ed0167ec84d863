"""``manage.py power``: power and sample size from a pilot file, a study or assumed components."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.export import study_mrmc_data
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from analysis.stats.power import arms_power, assumed_components, cases_needed, power, readers_needed
from analysis.study_data import study_rows
from tests.analysis.conftest import finished_study  # noqa: F401
from tests.analysis.reference_data import shared_path
from tests.analysis.test_export import closed_study, crossed_study  # noqa: F401
from tests.studies.conftest import (  # noqa: F401
    draft_study,
    ready_study,
    study_collection,
    study_model,
)

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {"var_tr": 0.0002, "var_error": 0.0008, "cov1": 0.00035, "cov2": 0.00034,
              "cov3": 0.00024, "pilot_cases": 114}
COMPONENT_ARGS = [x for k, v in COMPONENTS.items() for x in (f"--{k.replace('_', '-')}", v)]


def run(*args):
    out = StringIO()
    call_command("power", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def fails(*args) -> list[str]:
    with pytest.raises(CommandError) as info:
        run(*args)
    return str(info.value).splitlines()


def cells(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_csv_pilot_uses_the_observed_aucs_and_reproduces_rjafroc(tmp_path):
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    out = tmp_path / "power.json"
    text = run("--pilot-csv", path, "--readers", 6, "--cases", 111, "--target-power", 0.8,
               "--analysis", "rrrc", "--json", out)
    pilot = or_analysis(read_long_csv(path))
    aucs = [float(a) for a in pilot.arm_means]
    data = json.loads(out.read_text())
    assert data["aucs"] == aucs
    assert data["observed_aucs"] == dict(zip(pilot.treatments, aucs, strict=True))
    (row,) = data["power"]
    assert row["power"] == pytest.approx(0.5526116, abs=5e-8)  # RJafroc's known answer
    assert row["power"] == power(pilot, 6, 111, aucs[1] - aucs[0]).power
    (cases,) = data["cases_needed"]
    assert cases["result"]["n_cases"] == 251 and cases["problem"] == ""
    (readers,) = data["readers_needed"]
    assert readers["result"] == readers_needed(pilot, 111, aucs, target=0.8).to_dict()
    assert data["components"]["var_error"] == pilot.components.var_error
    assert "Observed arm AUCs: 1 0.8970, 2 0.9408" in text
    assert ["RRRC", "6", "111", "0.553"] in [row[:4] for row in cells(text)]
    assert f"JSON written to {out}" in text


def test_assumed_components_with_three_arms_give_the_library_numbers(tmp_path):
    out = tmp_path / "p.json"
    text = run(*COMPONENT_ARGS, "--aucs", 0.80, 0.85, 0.88, "--readers", 4, 8, "--cases", 100,
               200, "--json", out)
    vc = assumed_components(**COMPONENTS)
    data = json.loads(out.read_text())
    assert len(data["power"]) == 3 * 2 * 2  # analyses x readers x cases
    for row in data["power"]:
        expected = arms_power(vc, row["n_readers"], row["n_cases"], (0.80, 0.85, 0.88),
                              analysis=row["analysis"])
        assert row == expected.to_dict()
        assert row["df1"] == 2
    assert "t = 3 arms" in text and "Observed" not in text
    assert data["cases_needed"] == [] and data["components"]["var_r"] is None


def test_an_effect_is_a_two_arm_difference():
    vc = assumed_components(**COMPONENTS)
    text = run(*COMPONENT_ARGS, "--effect", 0.05, "--readers", 5, "--analysis", "frrc",
               "--target-power", 0.8)
    found = cases_needed(vc, 5, (0.0, 0.05), target=0.8, analysis="frrc")
    assert "AUC difference 0.0500" in text
    assert ["FRRC", "5", str(found.n_cases), f"{found.power:.3f}"] in cells(text)


def test_an_unreachable_target_is_a_row_with_the_reason_not_an_error():
    text = run(*COMPONENT_ARGS, "--aucs", 0.80, 0.81, "--readers", 2, "--analysis", "rrrc",
               "--target-power", 0.9)
    assert "power 0.9 is not reachable with 2 readers" in text


def test_every_problem_with_the_arguments_is_a_line():
    assert fails("--readers", 1, "x", "--cases", 100, "--alpha", 2, "--analysis", "foo",
                 "--target-power", 1.5) == [
        "give one pilot: --pilot-csv FILE, --pilot-study ID, or the assumed components "
        "--var-tr --var-error --cov1 --cov2 --cov3 --pilot-cases",
        "give the assumed arm AUCs (--aucs A B ...) or --effect D",
        "--analysis: 'foo' is not one of rrrc, frrc, rrfc, all",
        "--readers: 'x' is not a whole number",
        "--readers: 1 is below 2",
        "--alpha: 2.0 is not between 0 and 1",
        "--target-power: 1.5 is not between alpha and 1",
    ]
    assert fails("--var-tr", 0.001, "--cov1", "abc", "--readers", 5, "--cases", 50) == [
        "--cov1: 'abc' is not a number",
        "assumed components: missing --var-error --cov2 --cov3 --pilot-cases",
        "give the assumed arm AUCs (--aucs A B ...) or --effect D",
    ]
    assert fails(*COMPONENT_ARGS, "--aucs", 0.8, "--effect", 0.1, "--readers", 5) == [
        "give --aucs or --effect, not both",
        "--aucs: give the AUC of at least 2 arms",
        "give --readers N... and --cases N... (or --target-power P)",
    ]
    assert fails(*COMPONENT_ARGS, "--effect", 2, "--readers", 5, "--cases", 50) == [
        "--effect: 2.0 is not an AUC difference (from -1 to 1)"
    ]


def test_a_malformed_pilot_file_gives_its_problems(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,treatment,case,truth\n0,0,1,0\n")
    lines = fails("--pilot-csv", bad, "--readers", 5, "--cases", 50)
    assert any("rating" in line for line in lines)


def test_manage_py_exits_1_with_one_line_per_problem():
    proc = subprocess.run(
        [sys.executable, "manage.py", "power", *map(str, COMPONENT_ARGS), "--aucs", "0.8", "x",
         "--readers", "1", "--alpha", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "CommandError: --aucs: 'x' is not a number",
        "--readers: 1 is below 2",
        "--alpha: 0.0 is not between 0 and 1",
        "--aucs: give the AUC of at least 2 arms",
        "give --readers N... and --cases N... (or --target-power P)",
    ]


@pytest.mark.django_db
def test_a_study_is_a_pilot_through_its_own_or_analysis(crossed_study, tmp_path):  # noqa: F811
    out = tmp_path / "s.json"
    text = run("--pilot-study", crossed_study.pk, "--readers", 4, "--cases", 60,
               "--analysis", "rrrc", "--json", out)
    expected = or_analysis(study_mrmc_data(study_rows(study=crossed_study)))
    data = json.loads(out.read_text())
    assert data["observed_aucs"] == dict(
        zip(expected.treatments, map(float, expected.arm_means), strict=True))
    assert data["power"][0] == arms_power(expected, 4, 60, list(expected.arm_means)).to_dict()
    assert data["power"][0]["df1"] == len(expected.treatments) - 1 == 3
    assert f"study {crossed_study.pk} (closed): AUC OR analysis" in text


@pytest.mark.django_db
def test_a_study_without_an_analysis_or_no_study_is_refused(draft_study):  # noqa: F811
    assert fails("--pilot-study", draft_study.pk, "--readers", 4, "--cases", 60) == [
        f"study {draft_study.pk} cannot be the pilot: a draft study has no responses yet"
    ]
    assert fails("--pilot-study", 987654, "--readers", 4, "--cases", 60) == [
        "--pilot-study: no study 987654"
    ]
