# ruff: noqa: F811  (tests take the imported fixtures as arguments)
"""Mutated DICOM files are imported or refused but never crash the import; helpers in
upload_helpers.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from library.imaging.errors import REJECTION_CODES
from library.models import Case
from tests.library.upload_helpers import (  # noqa: F401  (fixtures here are used by name)
    _fast_passwords,
    api,
    api_import,
    collection,
    compressed_file,
    ct_file,
    implicit_file,
    rejections,
    rgb_file,
    sandbox,
)

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- mutation fuzzing

SEEDS = {
    "ct": ct_file,
    "implicit": implicit_file,
    "rgb": rgb_file,
    "rle": lambda: compressed_file("rle"),
    "jpeg": lambda: compressed_file("jpeg"),
}

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 32)),
    st.tuples(
        st.just("word"),
        st.integers(0, 10**6),
        st.sampled_from([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0xFFFFFFF0, 0xFFFFFFFF]),
    ),
)


def mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, position, argument in mutations:
        at = position % (len(out) + 1)
        if kind == "flip" and out:
            out[at % len(out)] ^= argument
        elif kind == "insert":
            out[at:at] = argument
        elif kind == "delete":
            del out[at : at + argument]
        elif kind == "word":
            out[at : at + 4] = struct.pack("<I", argument)
    return bytes(out)


def _clear_imported() -> None:
    for case in Case.objects.all():
        for field in ("source_file", "pixels_file", "pixels_encoded_file", "display_file", "thumbnail_file"):
            if getattr(case, field).name:  # a colour case has no encoded pixels
                default_storage.delete(getattr(case, field).name)
    Case.objects.all().delete()


FUZZ_EXAMPLES = 500


def test_mutated_dicom_files_are_imported_or_refused_but_never_crash_the_import(
    api, collection, sandbox
):
    outcomes = {"imported": 0, "refused": 0}

    @hypothesis_settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(_mutation, min_size=1, max_size=6)
    )
    def one_request(seed, mutations):
        data = mutate(SEEDS[seed](), mutations)
        response = api_import(api, collection, {"mutant.dcm": data})
        assert response.status_code in (201, 400), (response.status_code, response.content[:500])
        if response.status_code == 400:
            outcomes["refused"] += 1
            ((name, (code, reason)),) = rejections(response.json()).items()
            assert name == "mutant.dcm" and reason.strip() and "\n" not in reason
            assert code in REJECTION_CODES
            assert not Case.objects.exists()
        else:
            outcomes["imported"] += 1
            case = Case.objects.get()
            with default_storage.open(case.source_file.name, "rb") as handle:
                stored = handle.read()
            assert stored[:128] == b"\x00" * 128 and stored[128:132] == b"DICM"
            assert api.get(f"/api/v1/cases/{case.pk}/").status_code == 200
            _clear_imported()
        assert list(sandbox.iterdir()) == []

    one_request()
    print(f"mutation fuzzer: {outcomes}")
    assert outcomes["imported"] + outcomes["refused"] >= FUZZ_EXAMPLES * 0.9
    assert outcomes["imported"] > 0 and outcomes["refused"] > 0
    assert not Case.objects.exists()
    assert [p for p in Path(default_storage.location).rglob("*") if p.is_file()] == []
