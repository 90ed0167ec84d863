"""Study test data built straight in the database: a collection whose cases carry labels, a
registered model row, and precomputed predictions and explanations (rows only, no files)."""

from __future__ import annotations

import hashlib

from explain.explainer_requests import explainer_config_resolve
from explain.models import ClassifierModel, Explanation, Prediction
from library.models import Case, CaseLabel, Collection

EXPLAINERS = ["gradcam", "occlusion", "attention", "saliency", "similar_cases"]


def make_model(name: str = "study-net") -> ClassifierModel:
    return ClassifierModel.objects.create(
        name=name,
        form="eager",
        architecture="explain.compute.models:AttentionResNet",
        file_sha256="0" * 64,
        input_spec={"size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.25]},
        class_labels=["normal", "nodule"],
        positive_class="nodule",
        cam_layer="layer3",
        explainers={name: {"supported": True, "reason": ""} for name in EXPLAINERS},
    )


def make_collection(name: str = "study-cases", *, cases: int = 12, split_every: int = 0) -> Collection:
    """`cases` cases; every other case is positive; with split_every=k, every k-th case is 'train'."""
    collection = Collection.objects.create(name=name)
    for index in range(cases):
        case = Case.objects.create(
            collection=collection,
            key=f"{name}-{index:03d}",
            source_format="png",
            source_sha256=hashlib.sha256(f"{name}-{index}".encode()).hexdigest(),
            stored_sha256="s" * 64,
            rows=32,
            columns=32,
            split="train" if split_every and index % split_every == 0 else "test",
        )
        label = "nodule" if index % 2 else "normal"
        CaseLabel.objects.create(case=case, name=label, value=1)
    return collection


def add_predictions(model: ClassifierModel, cases, *, wrong: set[int] = frozenset()) -> None:
    """Predictions that are right except for the case ids in `wrong`."""
    for case in cases:
        positive = case.labels.filter(name="nodule", value=1).exists()
        if case.pk in wrong:
            positive = not positive
        Prediction.objects.update_or_create(
            model=model, case=case,
            defaults={
                "probabilities": [0.2, 0.8] if positive else [0.8, 0.2],
                "predicted_class": "nodule" if positive else "normal",
                "positive_probability": 0.8 if positive else 0.2,
            },
        )


def add_explanations(
    model: ClassifierModel, cases, explainer: str, *, placebo: bool = False, empty: set[int] = frozenset()
) -> None:
    """Explanation rows (no files); those of the case ids in `empty` highlight no pixel."""
    config = explainer_config_resolve(model=model, explainer=explainer, placebo=placebo)
    for case in cases:
        Explanation.objects.update_or_create(
            model=model, case=case, explainer=config["explainer"], placebo=placebo,
            param_hash=config["param_hash"],
            defaults={
                "params": config["params"], "seed": config["seed"], "target_class": "nodule",
                "raw_min": 0.0, "raw_max": 0.0 if case.pk in empty else 1.0,
                "highlighted_fraction": 0.0 if case.pk in empty else 0.2,
            },
        )
