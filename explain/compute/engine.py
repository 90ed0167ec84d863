"""The explanation engine's computation for a batch of cases (pure torch, no Django).

Given a loaded model, the model inputs of a few cases and one explainer
configuration, compute each case's heatmap on its own pixel grid, the
normalized map, the overlay and the quality metrics. Resampling, normalisation
and colouring run as torch operations on the compute device for the whole
batch (:func:`explain.compute.heatmaps.postprocess`); only the overlay's
deflate and the file writes are left, and the caller can run those in threads
while the next case is processed (``on_output``). The Celery task around it
only loads, claims and stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from explain.compute import heatmaps, metrics
from explain.compute.explainers import (
    ExplainerConfig,
    attention_map,
    attribute,
    embeddings,
    nearest_cases,
)

# Explainers cheap enough to repeat n_perturb times for max-sensitivity.
SENSITIVITY_EXPLAINERS = frozenset({"gradcam", "gradcam_plus_plus", "layercam", "saliency"})
MODEL_EXPLAINERS = frozenset({"attention", "similar_cases"})


@dataclass
class CaseInput:
    case_id: int
    x: np.ndarray  # float32 (C, H, W) model input
    rows: int
    columns: int
    mask: np.ndarray | None = None  # bool (rows, columns)


@dataclass
class ExplanationOutput:
    case_id: int
    heatmap: np.ndarray | None  # float32 (rows, columns), raw
    normalized: np.ndarray | None
    raw_min: float | None
    raw_max: float | None
    metrics: dict = field(default_factory=dict)
    highlighted: float | None = None  # share of highlighted pixels (heatmaps.HIGHLIGHT_VALUE)
    similar: list = field(default_factory=list)
    seconds: float = 0.0
    maps: heatmaps.CaseMaps | None = None  # the stored forms (float16 maps, overlay scanlines)

    @property
    def overlay_png(self) -> bytes | None:
        """The overlay PNG, encoded on each access (the deflate is the costly part)."""
        return None if self.maps is None else self.maps.overlay_png()


def pick_device(preferred: str | None = None) -> torch.device:
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batch(cases: Sequence[CaseInput], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack([case.x for case in cases]).astype(np.float32)).to(device)


@torch.no_grad()
def predict(model: nn.Module, cases: Sequence[CaseInput], device: torch.device) -> np.ndarray:
    """Softmax probabilities (N, K)."""
    model.eval()
    logits = model(_batch(cases, device))
    return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _raw_maps(model, x, target, config, cam_layer) -> torch.Tensor:
    if config.name == "attention":
        with torch.no_grad():
            return attention_map(model, x)
    return attribute(model, x, target, config, cam_layer=cam_layer)


def explain_batch(
    model: nn.Module,
    cases: Sequence[CaseInput],
    config: ExplainerConfig,
    *,
    target: int,
    device: torch.device,
    cam_layer: str | None = None,
    randomized_model: nn.Module | None = None,
    with_metrics: bool = True,
    metric_steps: int = 20,
    on_output: Callable[[ExplanationOutput], None] | None = None,
) -> list[ExplanationOutput]:
    """Heatmaps and metrics for `cases` (one batch, one explainer configuration).

    `randomized_model` is the weight-randomized copy: the explainer runs on it
    instead when `config` is a placebo (the caller passes it as `model`), and
    it is used for the sanity metric otherwise.

    `on_output` is called with each case's output, in order, as soon as its
    maps are ready and before its metrics are computed (its `metrics` and
    `seconds` are filled in afterwards), so that the caller can start writing
    the case's files while the next cases are processed.
    """
    model.eval()
    started = time.perf_counter()
    x = _batch(cases, device)
    raw = _raw_maps(model, x, target, config, cam_layer).detach().float()
    sanity = None
    if with_metrics and randomized_model is not None and config.name != "attention":
        sanity = (
            _raw_maps(randomized_model, x, target, config, cam_layer).detach().float().cpu().numpy()
        )
    compute_seconds = (time.perf_counter() - started) / len(cases)
    attributions = raw.cpu().numpy() if with_metrics else None

    outputs = []
    item_started = time.perf_counter()
    maps_of_cases = heatmaps.postprocess(raw, [(case.rows, case.columns) for case in cases])
    for index, (case, maps) in enumerate(zip(cases, maps_of_cases, strict=True)):
        result = ExplanationOutput(
            case_id=case.case_id,
            heatmap=maps.heatmap,
            normalized=maps.normalized,
            raw_min=maps.raw_min,
            raw_max=maps.raw_max,
            highlighted=maps.highlighted,
            maps=maps,
        )
        if on_output is not None:
            on_output(result)
        if with_metrics:
            result.metrics = _metrics(
                model,
                x[index : index + 1],
                attributions[index],
                maps.heatmap,
                case,
                target,
                config,
                cam_layer,
                sanity[index] if sanity is not None else None,
                metric_steps,
            )
        now = time.perf_counter()
        result.seconds = compute_seconds + (now - item_started)
        item_started = now
        outputs.append(result)
    return outputs


def _metrics(
    model, x, attribution, grid, case, target, config, cam_layer, sanity_map, steps
) -> dict:
    values: dict = {}
    deletion = metrics.deletion_curve(model, x, attribution, target, steps=steps)
    insertion = metrics.insertion_curve(model, x, attribution, target, steps=steps)
    values["deletion_auc"] = deletion.auc
    values["insertion_auc"] = insertion.auc
    values["faithfulness_steps"] = deletion.steps
    values["faithfulness_baseline"] = deletion.baseline
    if case.mask is not None and case.mask.any():
        values["pointing_game"] = metrics.pointing_game(grid, case.mask)
        values["relevance_mass"] = metrics.relevance_mass(grid, case.mask)
        values["topk_iou"] = metrics.topk_iou(grid, case.mask)
    if sanity_map is not None:
        values["sanity_rank_correlation"] = metrics.rank_correlation(attribution, sanity_map)
    if config.name in SENSITIVITY_EXPLAINERS:
        values["max_sensitivity"] = metrics.max_sensitivity(
            lambda inputs: attribute(model, inputs, target, config, cam_layer=cam_layer),
            x,
            seed=config.seed,
        )
    return values


def similar_cases(
    model: nn.Module,
    cases: Sequence[CaseInput],
    reference_inputs: np.ndarray,
    reference_ids: Sequence[int],
    *,
    k: int,
    device: torch.device,
    batch_size: int = 32,
) -> list[ExplanationOutput]:
    """Case-based explanation: the k nearest reference cases in the embedding space."""
    started = time.perf_counter()
    model.eval()
    with torch.no_grad():
        reference = torch.cat(
            [
                embeddings(model, torch.from_numpy(reference_inputs[i : i + batch_size]).to(device))
                for i in range(0, len(reference_inputs), batch_size)
            ]
        ).cpu()
        query = embeddings(model, _batch(cases, device)).cpu()
    outputs = []
    per_case = (time.perf_counter() - started) / len(cases)
    for index, case in enumerate(cases):
        exclude = [i for i, rid in enumerate(reference_ids) if rid == case.case_id]
        neighbours = nearest_cases(query[index], reference, k, exclude=exclude)[0]
        outputs.append(
            ExplanationOutput(
                case_id=case.case_id,
                heatmap=None,
                normalized=None,
                raw_min=None,
                raw_max=None,
                similar=[
                    {"case_id": int(reference_ids[i]), "distance": float(d)} for i, d in neighbours
                ],
                seconds=per_case,
            )
        )
    return outputs
