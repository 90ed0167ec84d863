"""Studies fixtures: a draft study configured far enough to open once its outputs exist."""

from __future__ import annotations

import pytest

from studies import services
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model


@pytest.fixture
def study_model(db):
    return make_model()


@pytest.fixture
def study_collection(db):
    return make_collection(cases=12)


@pytest.fixture
def draft_study(coordinator, study_model, study_collection):
    """A configured draft: 4 arms (unaided, AI, AI + Grad-CAM, placebo Grad-CAM), the default
    questions, every case of the collection as a main case. Outputs are not precomputed."""
    study = services.study_create(
        acting_user=coordinator,
        title="Heatmap reader study",
        model=study_model,
        collections=[study_collection],
        consent_text="I agree to take part.",
        design="latin_square",
        sessions=2,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.arm_add(acting_user=coordinator, study=study, kind="placebo", explainer="gradcam")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study)
    study.refresh_from_db()
    return study


@pytest.fixture
def ready_study(draft_study, study_model, study_collection):
    """The draft study with every prediction and explanation its arms need."""
    cases = list(study_collection.cases.all())
    add_predictions(study_model, cases, wrong={cases[0].pk, cases[3].pk, cases[6].pk})
    add_explanations(study_model, cases, "gradcam")
    add_explanations(study_model, cases, "gradcam", placebo=True)
    return draft_study


@pytest.fixture
def open_study(ready_study, coordinator):
    return services.study_open(acting_user=coordinator, study=ready_study)
