"""Reader-facing texts that name an explainer or an arm kind are flagged for the coordinator."""

from __future__ import annotations

import pytest

from explain.compute.catalog import EXPLAINERS
from studies import blinding, selectors, services
from studies.models import NEUTRAL_READER_TITLE
from tests.studies.factories import add_explanations, add_predictions


def _flagged(text: str) -> list[str]:
    return [written for _, written in blinding.unblinding_terms(text)]


def test_the_demo_studys_old_description_is_flagged_for_every_arm_it_names():
    text = "Unaided reading against AI with Grad-CAM, AI with occlusion, and AI with a placebo heatmap"
    assert _flagged(text) == ["Unaided", "Grad-CAM", "occlusion", "placebo"]


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_every_explainer_is_flagged_by_its_name_and_its_label(name):
    info = EXPLAINERS[name]
    if name not in blinding.GENERIC_WORDS:
        assert _flagged(f"We show {name} maps.")
    assert _flagged(f"We show {info.label} maps.")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gradcam++ and grad cam", ["gradcam++", "grad cam"]),  # spelling variants, longest first
        ("Integrated-Gradients", ["Integrated-Gradients"]),
        ("IG and SHAP", ["IG", "SHAP"]),
        ("a sham explanation", ["sham"]),
        ("Layer-wise Relevance Propagation (LRP)", ["Layer-wise Relevance Propagation", "LRP"]),
    ],
)
def test_variants_and_aliases_are_found_as_written(text, expected):
    assert _flagged(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "You will read chest radiographs, sometimes with AI advice and a coloured overlay.",
        "Decide whether a nodule is present. Similar findings may occur; take your time.",
        "The attention of the reader matters: please read carefully.",  # not "attention map"
        "Limestone, paligraph, digit",  # substrings of aliases are not words
    ],
)
def test_neutral_wording_is_not_flagged(text):
    assert _flagged(text) == []


def test_warnings_name_the_field_and_the_words_once_per_field():
    warnings = blinding.text_warnings(
        {"The consent text": "Grad-CAM here, Grad-CAM there", "Question q": ["fine", "placebo"]}
    )
    assert len(warnings) == 2
    assert warnings[0].startswith("The consent text names an explainer ('Grad-CAM')")
    assert warnings[1].startswith("Question q names an arm kind ('placebo')")


# The study's warnings -------------------------------------------------------------------------


def test_a_study_warns_about_reader_text_that_names_an_explainer(draft_study, coordinator):
    services.study_update(
        acting_user=coordinator, study=draft_study,
        reader_title="Chest reading", reader_description="Some cases come with Grad-CAM maps.",
    )
    warnings = selectors.study_warnings(study=draft_study)
    assert any("reader-facing description names an explainer ('Grad-CAM')" in w for w in warnings)
    assert not any("reader-facing title" in w for w in warnings)


def test_a_study_without_a_reader_title_warns_that_readers_see_the_neutral_one(draft_study):
    warnings = selectors.study_warnings(study=draft_study)
    assert any(f"readers will see '{NEUTRAL_READER_TITLE}'" in w for w in warnings)
    assert draft_study.reader_facing_title == NEUTRAL_READER_TITLE


def test_the_internal_title_is_never_the_reader_facing_one(draft_study, coordinator):
    services.study_update(acting_user=coordinator, study=draft_study, reader_title="Chest reading")
    draft_study.refresh_from_db()
    assert draft_study.reader_facing_title == "Chest reading"
    assert draft_study.title not in draft_study.reader_facing_title


def test_empty_explanations_of_heatmap_arms_are_listed_with_their_arm_and_case(
    draft_study, study_model, study_collection
):
    cases = list(study_collection.cases.order_by("pk"))
    add_predictions(study_model, cases, wrong={cases[0].pk})
    add_explanations(study_model, cases, "gradcam", empty={cases[2].pk, cases[5].pk})
    add_explanations(study_model, cases, "gradcam", placebo=True, empty={cases[5].pk})
    rows = selectors.study_empty_explanations(study=draft_study)
    codes = {arm.kind: arm.code for arm in draft_study.arms.all()}
    assert [(row["arm"], row["case_id"]) for row in rows] == [
        (codes["ai_explainer"], cases[2].pk), (codes["ai_explainer"], cases[5].pk),
        (codes["placebo"], cases[5].pk),
    ]
    assert all(row["role"] == "main" and row["case_key"] for row in rows)
    warning = [w for w in selectors.study_warnings(study=draft_study) if "highlight no region" in w]
    assert len(warning) == 1 and warning[0].startswith("3 explanation(s) on 2 case(s)")


def test_maps_stored_before_the_share_was_recorded_are_empty_when_nothing_is_positive(
    draft_study, study_model, study_collection
):
    cases = list(study_collection.cases.order_by("pk"))
    add_explanations(study_model, cases, "gradcam")
    explanation = study_model.explanations.get(case=cases[1], placebo=False)
    explanation.highlighted_fraction = None
    explanation.raw_max = 0.0
    explanation.save()
    assert selectors.explanation_is_empty(explanation=explanation)
    explanation.raw_max = 0.5
    assert not selectors.explanation_is_empty(explanation=explanation)


def test_a_study_whose_ai_is_never_wrong_warns_with_the_numbers(draft_study, study_model, study_collection):
    cases = list(study_collection.cases.all())
    add_predictions(study_model, cases)
    warnings = selectors.study_warnings(study=draft_study)
    assert any(w.startswith("The AI is wrong on 0 of 12 main cases") for w in warnings)
    add_predictions(study_model, cases, wrong={cases[0].pk})
    assert not any("The AI is wrong on 0" in w for w in selectors.study_warnings(study=draft_study))
