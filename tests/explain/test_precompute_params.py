"""Explainer requests with bad parameters are refused with one clear line per problem."""

from __future__ import annotations

import pytest

from explain import services
from explain.models import PrecomputeJob
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture


@pytest.fixture
def engine_setup(db, demo_dataset, tmp_path, eager):
    return register_demo_architecture(tmp_path), import_demo_collection(demo_dataset)


def _problems(model, collection, explainers) -> list[str]:
    with pytest.raises(services.ServiceError) as excinfo:
        services.precompute_start(
            acting_user=None, model=model, collection=collection, explainers=explainers,
            with_metrics=False,
        )
    return excinfo.value.problems


def test_bad_parameters_are_refused_with_one_line_each_naming_the_explainer_once(engine_setup):
    model, collection = engine_setup
    problems = _problems(
        model,
        collection,
        [
            {"explainer": "gradcam", "params": {"magic": 1}},
            {"explainer": "saliency", "seed": "seven"},
            {"explainer": "saliency", "seed": -1},
            {"explainer": "similar_cases", "params": {"k": "many"}},
            {"explainer": "similar_cases", "params": {"k": 0}},
            {"explainer": "similar_cases", "params": {"metric": "l1"}},
            {"explainer": "similar_cases", "params": ["k"]},
        ],
    )
    assert problems == [
        "gradcam: unknown parameter 'magic' (known: " + problems[0].split("(known: ")[1],
        "saliency: seed must be a whole number from 0 to 2**63 - 1",
        "saliency: seed must be a whole number from 0 to 2**63 - 1",
        "similar_cases: k must be a whole number from 1 to 100",
        "similar_cases: k must be a whole number from 1 to 100",
        "similar_cases: unknown parameter 'metric' (known: k)",
        "similar_cases: k must be a whole number from 1 to 100",
    ]
    assert all(problem.count("gradcam") <= 1 for problem in problems)
    assert not PrecomputeJob.objects.exists()


def test_valid_parameters_and_seeds_are_accepted(engine_setup):
    model, collection = engine_setup
    job = services.precompute_start(
        acting_user=None, model=model, collection=collection, with_metrics=False,
        explainers=[{"explainer": "similar_cases", "params": {"k": 2}}, {"explainer": "saliency", "seed": 3}],
    )
    assert {c["explainer"]: (c["params"].get("k"), c["seed"]) for c in job.configs} == {
        "similar_cases": (2, 0),
        "saliency": (None, 3),
    }
