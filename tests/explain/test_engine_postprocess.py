"""The engine's post-processing of a batch: maps on each case's grid, the documented
normalisation, one overlay per case, and results handed on case by case."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from explain.compute import engine, heatmaps
from explain.compute.explainers import attribute, resolve
from tests.explain.toy_models import GoodNet

SIZES = [(40, 23), (16, 16), (9, 12)]  # enlarged, unchanged, shrunk


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GoodNet(in_channels=1, num_classes=2, width=4).eval()


@pytest.fixture
def cases():
    rng = np.random.default_rng(0)
    return [
        engine.CaseInput(
            case_id=100 + index,
            x=rng.normal(size=(1, 16, 16)).astype(np.float32),
            rows=rows,
            columns=columns,
        )
        for index, (rows, columns) in enumerate(SIZES)
    ]


@pytest.mark.parametrize("explainer", ["saliency", "gradcam"])
def test_each_case_gets_the_explainers_map_resampled_normalised_and_coloured_on_its_grid(
    model, cases, explainer
):
    config = resolve(explainer)
    x = torch.from_numpy(np.stack([case.x for case in cases]))
    raw = attribute(model, x, 1, config, cam_layer="conv2")
    outputs = engine.explain_batch(
        model, cases, config, target=1, device=torch.device("cpu"), cam_layer="conv2",
        with_metrics=False,
    )
    assert [output.case_id for output in outputs] == [case.case_id for case in cases]
    for output, attribution, (rows, columns) in zip(outputs, raw, SIZES, strict=True):
        grid = heatmaps.to_case_grid(attribution, rows=rows, columns=columns)
        assert output.heatmap.shape == (rows, columns) and output.heatmap.dtype == np.float32
        assert np.allclose(output.heatmap, grid, atol=1e-6)
        assert np.allclose(output.normalized, heatmaps.normalize(output.heatmap), atol=1e-6)
        assert (output.raw_min, output.raw_max) == heatmaps.raw_range(output.heatmap)
        overlay = Image.open(io.BytesIO(output.overlay_png))
        assert overlay.mode == "RGBA" and overlay.size == (columns, rows)
        assert output.overlay_png == heatmaps.render_overlay_png(output.normalized)
        stored = np.load(io.BytesIO(output.maps.heatmap_npy()), allow_pickle=False)
        assert stored.dtype == np.float16 and stored.shape == (rows, columns)
        assert output.seconds > 0


def test_each_output_is_handed_on_in_order_as_soon_as_its_map_is_ready(model, cases):
    handed: list[tuple[int, dict, bool]] = []
    outputs = engine.explain_batch(
        model, cases, resolve("saliency"), target=1, device=torch.device("cpu"),
        with_metrics=True, metric_steps=4,
        on_output=lambda output: handed.append(
            (output.case_id, dict(output.metrics), output.maps is not None)
        ),
    )
    # every case, in order, with its map but before its metrics were computed
    assert handed == [(case.case_id, {}, True) for case in cases]
    assert all("deletion_auc" in output.metrics for output in outputs)


def test_a_batch_with_a_non_finite_map_fails_before_any_output_is_handed_on(
    model, cases, monkeypatch
):
    def broken_maps(model_, x, target, config, cam_layer):
        maps = torch.zeros(x.shape[0], x.shape[2], x.shape[3])
        maps[-1, 0, 0] = float("inf")
        return maps

    monkeypatch.setattr(engine, "_raw_maps", broken_maps)
    handed = []
    with pytest.raises(ValueError, match="NaN or infinite"):
        engine.explain_batch(
            model, cases, resolve("saliency"), target=1, device=torch.device("cpu"),
            with_metrics=False, on_output=handed.append,
        )
    assert handed == []


def test_similar_cases_outputs_carry_no_map_and_no_overlay(model, cases):
    reference = np.stack([case.x for case in cases])
    outputs = engine.similar_cases(
        model, cases[:1], reference, [case.case_id for case in cases], k=2,
        device=torch.device("cpu"),
    )
    assert outputs[0].maps is None and outputs[0].overlay_png is None
    neighbours = [neighbour["case_id"] for neighbour in outputs[0].similar]
    assert len(neighbours) == 2 and cases[0].case_id not in neighbours
