"""From an explainer request to the configuration a precompute job stores: the one resolver.

A request names an explainer (an alias is accepted), optionally its parameters and a seed,
and whether it is a placebo (run on the weight-randomized model). Resolving it checks that the
model supports the explainer, fills in the registry's defaults, checks every value and computes
the parameter hash (name, parameters, seed and algorithm version: see
:class:`explain.compute.explainers.ExplainerConfig`). The `precompute` command, the API, the
coordinator pages, the study configuration and the worker all go through here, so a stored
result is found again by whoever asks for the same thing.

A resolved configuration is a plain dict (it is stored in `PrecomputeJob.configs`):
``{key, explainer, params, seed, placebo, param_hash}``.
"""

from __future__ import annotations

from core.errors import ServiceError
from explain.compute.explainers import FUNCTIONS, ExplainerConfig, resolve

ALIASES = {
    "ig": "integrated_gradients",
    "gradcam++": "gradcam_plus_plus",
    "gradcampp": "gradcam_plus_plus",
    "guided": "guided_gradcam",
    "shap": "kernel_shap",
    "gshap": "gradient_shap",
    "similar": "similar_cases",
}
SLOW_EXPLAINERS = frozenset({"occlusion", "lime", "kernel_shap"})
"""Explainers whose batches go to the low-priority accelerator queue."""
SEED_PROBLEM = "seed must be a whole number from 0 to 2**63 - 1"


def canonical_explainer(name: str) -> str:
    """The registry's name for `name` (case, dashes and aliases forgiven)."""
    name = name.strip().lower().replace("-", "_")
    return ALIASES.get(name, name)


def queue_for(explainer: str | None) -> str:
    """The worker queue of a batch of `explainer` (None: predictions)."""
    return "gpu_low" if explainer in SLOW_EXPLAINERS else "gpu"


def explainer_config(entry: dict) -> ExplainerConfig:
    """The engine's configuration of a stored (already resolved) configuration dict."""
    return resolve(entry["explainer"], entry["params"], entry["seed"])


def _resolve_one(model, entry, placebo: bool) -> dict:
    """One request resolved; raises ValueError with the reason (one line)."""
    if isinstance(entry, str):
        entry = {"explainer": entry}
    name = canonical_explainer(str(entry.get("explainer", "")))
    support = model.explainers.get(name)
    if support is None:
        raise ValueError(
            f"unknown explainer {entry.get('explainer')!r}; known: {', '.join(model.explainers)}"
        )
    if not support.get("supported"):
        raise ValueError(f"{name} is unavailable for model {model.name}: {support.get('reason')}")
    if placebo and name not in FUNCTIONS:
        raise ValueError(f"{name} has no placebo form")
    seed = entry.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"{name}: {SEED_PROBLEM}")
    try:
        config = resolve(name, entry.get("params"), seed)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(
            message if message.startswith(f"{name}:") else f"{name}: {message}"
        ) from None
    return {
        "key": name + (":placebo" if placebo else ""),
        "explainer": name,
        "params": config.params,
        "seed": config.seed,
        "placebo": placebo,
        "param_hash": config.param_hash(),
    }


def explainer_configs_resolve(
    *, model, explainers: list, placebo: list | None = None
) -> list[dict]:
    """Every request resolved for `model` (placebo ones after the others), each with a key
    unique in the list; raises ServiceError with one line per refused request."""
    problems, configs, seen = [], [], set()
    requests = [(entry, False) for entry in explainers] + [(entry, True) for entry in placebo or []]
    for entry, is_placebo in requests:
        try:
            config = _resolve_one(model, entry, is_placebo)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if config["key"] in seen:
            config["key"] = f"{config['key']}@{config['param_hash'][:8]}"
        seen.add(config["key"])
        configs.append(config)
    if problems:
        raise ServiceError(problems)
    return configs


def explainer_config_resolve(
    *, model, explainer: str, params: dict | None = None, seed: int = 0, placebo: bool = False
) -> dict:
    """The configuration of one explainer for `model`, exactly as a precompute job stores it
    (so other apps can ask whether its results exist). Raises ServiceError when the model
    cannot run it."""
    entry = {"explainer": explainer, "params": params or None, "seed": seed}
    return explainer_configs_resolve(
        model=model, explainers=[] if placebo else [entry], placebo=[entry] if placebo else []
    )[0]
