"""explain 0006 and studies 0005 re-label similar_cases results and arms with the registry's
parameter hash, so what was computed before the change is found by a request made after it."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from explain.compute.explainers import resolve
from explain.models import Explanation, PrecomputeJob
from studies.models import Arm

BEFORE = [("explain", "0005_case_library_leaves"), ("studies", "0004_case_library_app")]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    ContentType.objects.clear_cache()
    return executor


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _old_hash(k: int) -> str:
    """How the precompute service hashed similar_cases before the registry did."""
    return hashlib.sha256(json.dumps({"similar_cases": {"k": k}}, sort_keys=True).encode()).hexdigest()


@pytest.fixture
def apps_before(transactional_db):
    try:
        executor = _migrate(BEFORE)
        yield executor.loader.project_state(list(executor.loader.applied_migrations)).apps
    finally:
        _migrate(_latest())


def _fill(apps, user_id: int) -> dict:
    get = apps.get_model
    collection = get("library", "Collection").objects.create(name="c")
    case = get("library", "Case").objects.create(
        collection=collection, key="k", source_format="png", source_sha256="a" * 64,
        stored_sha256="b" * 64, rows=4, columns=4,
    )
    model = get("explain", "ClassifierModel").objects.create(
        name="m", form="eager", file_sha256="c" * 64, input_spec={}, class_labels=["a", "b"]
    )

    def explanation(explainer, params, param_hash):
        return get("explain", "Explanation").objects.create(
            model=model, case=case, explainer=explainer, params=params, seed=0,
            param_hash=param_hash, target_class="b",
        ).pk

    similar = explanation("similar_cases", {"k": 4}, _old_hash(4))
    gradcam = explanation("gradcam", {"layer": "x"}, "d" * 64)
    job = get("explain", "PrecomputeJob").objects.create(
        model=model, collection=collection, created_by_id=user_id,
        configs=[
            {"key": "similar_cases", "explainer": "similar_cases", "params": {"k": 4}, "seed": 0,
             "placebo": False, "param_hash": _old_hash(4)},
            {"key": "gradcam", "explainer": "gradcam", "params": {}, "seed": 0, "placebo": False,
             "param_hash": "e" * 64},
        ],
    )
    study = get("studies", "Study").objects.create(title="s", seed=1, model=model)
    arm = get("studies", "Arm").objects.create(
        study=study, code="A", kind="ai_explainer", explainer="similar_cases", params={"k": 4},
        seed=0, param_hash=_old_hash(4),
    )
    return {"similar": similar, "gradcam": gradcam, "job": job.pk, "arm": arm.pk}


def test_similar_cases_results_and_arms_take_the_hash_a_request_resolves_to_today(
    apps_before, coordinator
):
    ids = _fill(apps_before, coordinator.pk)
    _migrate(_latest())
    today = resolve("similar_cases", {"k": 4}, 0).param_hash()
    assert today != _old_hash(4)
    assert Explanation.objects.get(pk=ids["similar"]).param_hash == today
    assert Arm.objects.get(pk=ids["arm"]).param_hash == today
    configs = PrecomputeJob.objects.get(pk=ids["job"]).configs
    assert [c["param_hash"] for c in configs] == [today, "e" * 64]
    assert Explanation.objects.get(pk=ids["gradcam"]).param_hash == "d" * 64  # not similar_cases


def test_migrating_back_gives_similar_cases_its_old_hash_again(apps_before, coordinator):
    ids = _fill(apps_before, coordinator.pk)
    _migrate(_latest())
    _migrate(BEFORE)
    assert Explanation.objects.filter(pk=ids["similar"]).values_list("param_hash", flat=True).get() == _old_hash(4)
    assert Arm.objects.filter(pk=ids["arm"]).values_list("param_hash", flat=True).get() == _old_hash(4)
