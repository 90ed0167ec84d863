"""Explainer configs: names, defaults, parameter checks and the parameter hash."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from explain.compute.catalog import EXPLAINERS
from explain.compute.explainers import (
    ALGORITHM_VERSION,
    FUNCTIONS,
    PARAMETERS,
    ExplainerConfig,
    attribute,
    default_params,
    resolve,
)
from tests.explain.explainer_models import SmallNet, one_thread  # noqa: F401


def test_registry_knows_exactly_the_catalog_explainers():
    assert list(PARAMETERS) == list(EXPLAINERS)
    assert set(FUNCTIONS) == set(EXPLAINERS) - {"similar_cases"}


def test_resolve_without_params_fills_in_the_documented_defaults():
    config = resolve("smoothgrad", seed=7)
    assert config.params == {"n_samples": 25, "stdev": 0.15, "absolute": True}
    assert config.seed == 7
    assert resolve("occlusion").params == {"window": 16, "stride": 8, "baseline": "zeros"}
    assert resolve("lrp").params == {"rule": "epsilon", "epsilon": 1e-6, "gamma": 0.25}


def test_default_params_returns_a_fresh_dict_each_time():
    first = default_params("lime")
    first["n_samples"] = 1
    assert default_params("lime")["n_samples"] == 200


def test_resolve_keeps_given_values_and_converts_integral_numbers():
    config = resolve("integrated_gradients", {"n_steps": 64.0, "baseline": "min"})
    assert config.params == {"n_steps": 64, "baseline": "min"}
    assert isinstance(config.params["n_steps"], int)
    assert resolve("smoothgrad", {"stdev": 1}).params["stdev"] == 1.0


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("gradcam_pp", None, "unknown explainer 'gradcam_pp'"),
        ("gradcam", {"alpha": 1}, "unknown parameter 'alpha'"),
        ("smoothgrad", {"n_samples": 0}, "must be >= 1"),
        ("smoothgrad", {"n_samples": 2.5}, "whole number"),
        ("smoothgrad", {"stdev": "high"}, "must be a number"),
        ("smoothgrad", {"absolute": 1}, "true or false"),
        ("lime", {"kernel_width": 0}, "must be > 0"),
        ("occlusion", {"baseline": "black"}, "must be one of zeros, min, given"),
        ("lrp", {"rule": "alpha_beta"}, "must be one of"),
        ("integrated_gradients", {"n_steps": float("nan")}, "whole number"),
        ("smoothgrad", {"stdev": float("inf")}, "finite"),
        ("saliency", {"absolute": True, "n_samples": 3}, "unknown parameter 'n_samples'"),
    ],
)
def test_resolve_refuses_unknown_names_and_bad_parameters_with_a_reason(name, params, message):
    with pytest.raises(ValueError, match=message):
        resolve(name, params)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_resolve_refuses_a_seed_that_is_not_a_non_negative_integer(seed):
    with pytest.raises(ValueError, match="seed"):
        resolve("lime", seed=seed)


def test_param_hash_is_the_sha256_of_the_canonical_json():
    config = resolve("kernel_shap", {"n_samples": 300}, seed=4)
    document = {
        "algorithm_version": ALGORITHM_VERSION,
        "name": "kernel_shap",
        "params": {
            "baseline": "zeros",
            "compactness": 0.1,
            "n_samples": 300,
            "n_segments": 50,
        },
        "seed": 4,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert config.param_hash() == hashlib.sha256(text.encode()).hexdigest()


def test_param_hash_is_stable_and_changes_with_name_params_or_seed():
    base = resolve("smoothgrad", seed=1)
    assert base.param_hash() == resolve("smoothgrad", {"n_samples": 25}, seed=1).param_hash()
    others = {
        resolve("smoothgrad", {"n_samples": 26}, seed=1).param_hash(),
        resolve("smoothgrad", seed=2).param_hash(),
        resolve("saliency", seed=1).param_hash(),
    }
    assert base.param_hash() not in others
    assert len(others) == 3


def test_configs_are_equal_and_hashable_when_resolved_the_same_way():
    assert resolve("lime", seed=3) == resolve("lime", {}, seed=3)
    assert len({resolve("lime", seed=3), resolve("lime", seed=3)}) == 1


@pytest.mark.usefixtures("one_thread")
def test_attribute_refuses_similar_cases_and_hand_made_unresolved_configs():
    model = SmallNet().eval()
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="similar cases, not a map"):
        attribute(model, x, 0, resolve("similar_cases"))
    with pytest.raises(ValueError, match="not fully resolved"):
        attribute(model, x, 0, ExplainerConfig("smoothgrad", {"n_samples": 5}, 0))
    with pytest.raises(ValueError, match="unknown parameter"):
        attribute(model, x, 0, ExplainerConfig("saliency", {"absolute": True, "x": 1}, 0))
    with pytest.raises(ValueError, match="not fully resolved"):  # 25.0 would hash differently
        attribute(
            model,
            x,
            0,
            ExplainerConfig("smoothgrad", {**default_params("smoothgrad"), "n_samples": 25.0}, 0),
        )
