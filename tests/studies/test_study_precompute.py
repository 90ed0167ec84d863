"""A study asks the engine for exactly what its arms show, on its cases only."""

from __future__ import annotations

import pytest

from core.errors import ServiceError
from explain.models import Explanation, Prediction
from explain.services import precompute_start
from studies import selectors, services
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engine_study(coordinator, demo_dataset, tmp_path, eager):
    collection = import_demo_collection(demo_dataset, name="study-engine")
    model = register_demo_architecture(tmp_path, name="study-engine-net")
    study = services.study_create(
        acting_user=coordinator, title="Engine", model=model, collections=[collection], consent_text="ok"
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.arm_add(acting_user=coordinator, study=study, kind="placebo", explainer="saliency")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=3)
    return study


def test_study_precompute_computes_only_the_studys_cases_and_arms(coordinator, engine_study):
    services.study_precompute(acting_user=coordinator, study=engine_study)
    chosen = set(engine_study.study_cases.values_list("case_id", flat=True))
    assert set(Prediction.objects.values_list("case_id", flat=True)) == chosen
    stored = set(Explanation.objects.values_list("case_id", "explainer", "placebo"))
    assert stored == {(pk, "gradcam", False) for pk in chosen} | {(pk, "saliency", True) for pk in chosen}
    assert all(row["ready"] for row in selectors.arm_readiness(study=engine_study))
    services.study_open(acting_user=coordinator, study=engine_study)


def test_study_precompute_twice_recomputes_nothing(coordinator, engine_study):
    services.study_precompute(acting_user=coordinator, study=engine_study)
    first = dict(Explanation.objects.values_list("pk", "created_at"))
    (job,) = services.study_precompute(acting_user=coordinator, study=engine_study)
    assert dict(Explanation.objects.values_list("pk", "created_at")) == first
    assert set(job.items.values_list("worker", flat=True)) == {"existing result"}


def test_a_study_without_ai_arms_has_nothing_to_precompute(coordinator, engine_study):
    for arm in engine_study.arms.exclude(kind="unaided"):
        services.arm_remove(acting_user=coordinator, arm=arm)
    with pytest.raises(ServiceError, match="nothing to precompute"):
        services.study_precompute(acting_user=coordinator, study=engine_study)


def test_a_precompute_without_explainers_computes_predictions_only(coordinator, engine_study):
    job = precompute_start(
        acting_user=coordinator, model=engine_study.model, collection=engine_study.collections.get(),
        explainers=[], case_ids=[engine_study.study_cases.first().case_id],
    )
    assert list(job.items.values_list("config_key", flat=True)) == ["prediction"]
    assert Prediction.objects.count() == 1 and not Explanation.objects.exists()


def test_the_readiness_page_starts_the_studys_precompute(client, coordinator, engine_study):
    client.force_login(coordinator)
    response = client.post(f"/studies/{engine_study.pk}/precompute/", follow=True)
    assert response.status_code == 200
    assert "Precompute job" in response.content.decode()
    assert all(row["ready"] for row in selectors.arm_readiness(study=engine_study))


def test_the_statistician_cannot_start_a_precompute(client, coordinator, statistician, engine_study):
    services.study_role_add(acting_user=coordinator, study=engine_study, user=statistician, role="statistician")
    client.force_login(statistician)
    assert client.post(f"/studies/{engine_study.pk}/precompute/").status_code == 403
    assert not Prediction.objects.exists()


def test_the_api_starts_the_studys_precompute(client, coordinator, engine_study):
    client.force_login(coordinator)
    response = client.post(f"/api/v1/studies/{engine_study.pk}/precompute/")
    assert response.status_code == 202
    (job_id,) = response.json()["jobs"]
    assert client.get(f"/api/v1/precompute/{job_id}/").json()["status"] == "done"
