"""Every file shipped in pydicom's test data, through the real import path.

Each must either be imported (and then be displayable) or be rejected with a
reason; none may crash the import or leave files behind.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from library.imaging.errors import REJECTION_CODES
from library.models import Case

pytestmark = pytest.mark.django_db

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def test_every_pydicom_test_file_is_imported_or_rejected_with_a_reason():
    files = [p for p in TEST_FILES.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(files) > 100
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_cases", str(TEST_FILES), collection="pydicom", no_progress=True,
                     stdout=out, stderr=err)
    rejected = [line for line in err.getvalue().splitlines() if line.startswith("rejected ")]
    codes = Counter(line.rsplit("[", 1)[1].rstrip("]") for line in rejected)
    assert set(codes) <= set(REJECTION_CODES) | {"bad_mask", "duplicate_key"}
    imported = Case.objects.count()
    # identical files shipped twice are skipped as already present, never stored twice;
    # text files beside them (.txt, .json) are not candidates at all
    duplicates_skipped = int(re.search(r"(\d+) already present", out.getvalue()).group(1))
    tables = [p for p in files if p.suffix.lower() in {".txt", ".json", ".csv", ".md"}]
    assert imported + duplicates_skipped + len(rejected) + len(tables) == len(files)
    assert imported >= 60
    for case in Case.objects.all():
        display = np.array(Image.open(default_storage.open(case.display_file.name)))
        assert display.shape[:2] == (case.rows, case.columns)
        assert display.dtype == np.uint8
    stored_folders = {p.parent.name for p in Path(default_storage.location).rglob("*") if p.is_file()}
    assert stored_folders == {str(uid) for uid in Case.objects.values_list("uid", flat=True)}
    print(f"\npydicom test data: {len(files)} files, {imported} imported, {duplicates_skipped} duplicates "
          f"skipped, {len(rejected)} rejected: {dict(sorted(codes.items()))}")
