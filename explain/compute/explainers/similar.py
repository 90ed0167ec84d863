"""Similar cases: penultimate embeddings and nearest neighbours among reference cases."""

from __future__ import annotations

import torch
from torch import nn

from explain.compute.explainers.common import check_inputs, check_same_device, evaluation

METRICS = ("cosine", "euclidean")


def embeddings(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(N, D) float32 from ``model.embedding(inputs)`` in eval mode, without gradients."""
    check_inputs(inputs)
    check_same_device(model, inputs)
    method = getattr(model, "embedding", None)
    if not callable(method) or isinstance(method, nn.Module):
        raise ValueError("the model has no `embedding(x)` method")
    with evaluation(model), torch.inference_mode(False), torch.no_grad():
        result = method(inputs.clone())
    if (
        not isinstance(result, torch.Tensor)
        or result.dim() != 2
        or result.shape[0] != inputs.shape[0]
    ):
        shape = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        raise ValueError(f"`embedding(x)` returned {shape}; expected ({inputs.shape[0]}, D)")
    return result.detach().float()


def distances(query: torch.Tensor, reference: torch.Tensor, metric: str) -> torch.Tensor:
    """(N, M) float64 distances: cosine (1 - cosine similarity) or Euclidean."""
    q = query.detach().to("cpu", torch.float64)
    r = reference.detach().to("cpu", torch.float64)
    if metric == "cosine":
        qn = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
        rn = r / r.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (1.0 - qn @ rn.T).clamp_min(0.0)
    if metric == "euclidean":
        return torch.cdist(q, r)
    raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def nearest_cases(
    query: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    *,
    metric: str = "cosine",
    exclude: list[int] | None = None,
) -> list[list[tuple[int, float]]]:
    """Per query row, the ``k`` nearest reference rows as (index, distance), nearest first.

    Ties are broken by the smaller index; ``exclude`` lists reference indices never returned
    (e.g. the query case itself); fewer than ``k`` candidates -> all of them.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not isinstance(query, torch.Tensor) or not isinstance(reference, torch.Tensor):
        raise ValueError("query and reference must be tensors")
    if query.dim() == 1:
        query = query.unsqueeze(0)
    if query.dim() != 2 or reference.dim() != 2:
        raise ValueError(
            f"query must be (D,) or (N, D) and reference (M, D); got {tuple(query.shape)} "
            f"and {tuple(reference.shape)}"
        )
    if query.shape[1] != reference.shape[1]:
        raise ValueError(
            f"query dimension {query.shape[1]} differs from "
            f"reference dimension {reference.shape[1]}"
        )
    if not (torch.isfinite(query).all() and torch.isfinite(reference).all()):
        raise ValueError("query or reference embeddings hold NaN or infinite values")
    excluded = set(exclude or [])
    bad = [i for i in excluded if not isinstance(i, int) or not 0 <= i < reference.shape[0]]
    if bad:
        raise ValueError(
            f"exclude index {bad[0]!r} is not a reference row (0..{reference.shape[0] - 1})"
        )
    table = distances(query, reference, metric)
    results = []
    for row in table.tolist():
        candidates = sorted(
            ((d, i) for i, d in enumerate(row) if i not in excluded), key=lambda pair: pair
        )
        results.append([(i, float(d)) for d, i in candidates[:k]])
    return results
