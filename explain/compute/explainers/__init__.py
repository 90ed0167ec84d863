"""The explanation engine's explainers: pure torch + captum, no Django.

Entry points: :func:`resolve` builds an :class:`ExplainerConfig`, :func:`attribute` computes
an (N, H, W) map with it; :func:`attention_map`, :func:`embeddings` and
:func:`nearest_cases` serve the model-based explainers; :func:`randomized_copy` builds the
placebo model. Post-processing for display lives in ``explain.compute.heatmaps``.
"""

from explain.compute.explainers.attention import attention_map
from explain.compute.explainers.lrp import GateRule
from explain.compute.explainers.placebo import randomized_copy
from explain.compute.explainers.registry import (
    ALGORITHM_VERSION,
    FUNCTIONS,
    PARAMETERS,
    SAMPLING,
    ExplainerConfig,
    Param,
    attribute,
    default_params,
    resolve,
)
from explain.compute.explainers.similar import embeddings, nearest_cases

__all__ = [
    "ALGORITHM_VERSION",
    "FUNCTIONS",
    "PARAMETERS",
    "SAMPLING",
    "ExplainerConfig",
    "GateRule",
    "Param",
    "attention_map",
    "attribute",
    "default_params",
    "embeddings",
    "nearest_cases",
    "randomized_copy",
    "resolve",
]
