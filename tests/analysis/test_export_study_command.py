"""``manage.py export_study``: a closed study's ratings for iMRMC, MRMCaov and RJafroc."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analysis.export import study_mrmc_data
from analysis.stats.io import read_imrmc, read_long_csv
from analysis.study_data import study_rows
from core.models import AuditEntry
from studies.services import study_close
from tests.analysis.test_export import closed_study, crossed_study  # noqa: F401


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("export_study", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fails(*args) -> list[str]:
    err = StringIO()
    with pytest.raises(CommandError) as info:
        call_command("export_study", *[str(a) for a in args], stdout=StringIO(), stderr=err)
    assert info.value.returncode == 1
    return err.getvalue().splitlines()


def test_the_imrmc_file_goes_to_stdout_and_reads_back(closed_study, tmp_path):  # noqa: F811
    text, _ = run(closed_study.pk, "--format", "imrmc")
    assert "BEGIN DATA:" in text and closed_study.title in text
    path = tmp_path / "s.imrmc"
    path.write_text(text)
    direct = study_mrmc_data(study_rows(study=closed_study))
    read = read_imrmc(path)
    assert read.cases == direct.cases
    np.testing.assert_array_equal(read.ratings, direct.ratings)
    entry = AuditEntry.objects.get(action="study.ratings_export")
    assert entry.actor is None and entry.actor_repr == "system"


def test_the_mrmcaov_csv_is_written_to_a_file_and_audited_for_the_user(
    closed_study, coordinator, tmp_path  # noqa: F811
):
    out = tmp_path / "exports" / "ratings.csv"
    out.parent.mkdir()
    out.write_text("old")
    text, err = run(closed_study.pk, "--format", "mrmcaov", "--output", out, "--user", "coordinator")
    assert text == "" and str(out) in err
    read = read_long_csv(out)
    direct = study_mrmc_data(study_rows(study=closed_study))
    np.testing.assert_array_equal(read.ratings, direct.ratings)
    np.testing.assert_array_equal(read.diagnosis, direct.diagnosis)
    assert [p.name for p in out.parent.iterdir()] == ["ratings.csv"]  # no temporary file left
    assert AuditEntry.objects.get(action="study.ratings_export").actor == coordinator


def test_the_rjafroc_workbook_of_a_crossed_study(crossed_study, tmp_path):  # noqa: F811
    from openpyxl import load_workbook  # only this test reads Excel

    out = tmp_path / "ratings.xlsx"
    run(crossed_study.pk, "--format", "rjafroc", "--output", out)
    book = load_workbook(out, read_only=True)
    assert book.sheetnames == ["Truth", "FP", "TP", "Cases"]
    rows = book["FP"].max_row - 1 + book["TP"].max_row - 1
    assert rows == 2 * 4 * 12


def test_every_problem_with_the_arguments_is_a_line(closed_study, tmp_path):  # noqa: F811
    lines = fails(999999, "--format", "sas", "--output", tmp_path / "missing" / "f.csv")
    assert lines == [
        "--format 'sas': choose one of imrmc, mrmcaov, rjafroc",
        f"--output {tmp_path / 'missing' / 'f.csv'}: folder {tmp_path / 'missing'} does not exist",
        "study '999999': no such study",
    ]
    assert fails(closed_study.pk, "--format", "rjafroc") == [
        "--format rjafroc writes an Excel workbook: give --output FILE.xlsx"
    ]


def test_an_open_study_a_latin_square_workbook_and_a_stranger_are_refused(
    finished_study, reader_a, tmp_path, coordinator  # noqa: F811
):
    assert fails(finished_study.pk, "--format", "imrmc") == [
        f"study {finished_study.pk} is open; close it before exporting its ratings"
    ]
    study_close(acting_user=coordinator, study=finished_study)
    out = tmp_path / "x.xlsx"
    lines = fails(finished_study.pk, "--format", "rjafroc", "--output", out)
    assert len(lines) == 1 and "fully crossed" in lines[0] and not out.exists()
    assert fails(finished_study.pk, "--format", "imrmc", "--user", "reader_a") == [
        f"--user reader_a: may not export study {finished_study.pk}"
    ]
    assert not AuditEntry.objects.filter(action="study.ratings_export").exists()
