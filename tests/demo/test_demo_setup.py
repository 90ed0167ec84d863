"""The demo commands end to end, on a tiny configuration."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from core.permissions import is_coordinator
from demo import setup as demo
from explain.models import ClassifierModel
from library.models import Collection

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_setup_builds_once_then_loads_from_the_cache(settings, tmp_path, eager):
    settings.VAR_DIR = tmp_path / "var"
    out = io.StringIO()
    call_command(
        "demo_setup", cases=8, seed=3, epochs=2, no_progress=True, no_background=True, stdout=out, stderr=io.StringIO()
    )
    text = out.getvalue()
    assert "demo data generated" in text and "demo model trained" in text
    assert "coordinator" in text and "demo-coordinator" in text and "held-out AUC" in text
    collection = Collection.objects.get(name=demo.DEMO_COLLECTION)
    assert collection.cases.count() == 8
    eager = ClassifierModel.objects.get(name=demo.DEMO_MODEL)
    scripted = ClassifierModel.objects.get(name=demo.DEMO_MODEL_TORCHSCRIPT)
    assert eager.form == "eager" and scripted.form == "torchscript"
    assert eager.class_labels == ["normal", "nodule"] and eager.cam_layer == "layer3"
    assert len(eager.supported_explainers) == len(eager.explainers)
    assert is_coordinator(User.objects.get(username="coordinator"))
    assert User.objects.get(username="admin").check_password("demo-admin")

    again = io.StringIO()
    call_command(
        "demo_setup",
        cases=8,
        seed=3,
        epochs=2,
        no_progress=True,
        no_background=True,
        stdout=again,
        stderr=io.StringIO(),
    )
    assert "demo data: cached" in again.getvalue() and "demo model: cached" in again.getvalue()
    assert "already loaded (8 cases)" in again.getvalue()
    from explain.models import Explanation, Prediction

    test_cases = collection.cases.filter(split="test").count()
    assert Prediction.objects.filter(model=eager).count() == test_cases
    assert Explanation.objects.filter(model=eager, explainer="gradcam", placebo=True).count() == test_cases
    assert ClassifierModel.objects.count() == 2


def test_demo_setup_refuses_to_run_in_production(settings):
    from django.core.management.base import CommandError

    settings.PRODUCTION = True
    with pytest.raises(CommandError):
        call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())


def test_a_failed_build_leaves_no_half_written_cache(tmp_path):
    (tmp_path / "demo").mkdir()
    target = tmp_path / "demo" / "cache"

    def broken(folder):
        (folder / "half.txt").write_text("x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        demo.build_cached(target, broken)
    assert not target.exists() and not list(target.parent.iterdir())
    assert demo.build_cached(target, lambda folder: (folder / "ok.txt").write_text("y")) is True
    assert demo.build_cached(target, broken) is False
    assert (target / "ok.txt").read_text() == "y"
