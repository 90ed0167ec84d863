"""Superpixels and the closed-form linear models behind LIME and Kernel SHAP."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from explain.compute.explainers.perturbation import (
    WeightedLinearModel,
    grid_segments,
    lime_kernel,
    scaled_window,
    superpixels,
)


def test_superpixels_number_about_n_segments_on_noise_and_label_contiguously():
    image = torch.randn(1, 48, 48, generator=torch.Generator().manual_seed(0))
    labels = superpixels(image, 36, 0.1)
    count = len(np.unique(labels))
    assert 18 <= count <= 72
    assert labels.shape == (48, 48)
    assert set(np.unique(labels)) == set(range(count))


def test_superpixels_follow_a_sharp_edge():
    image = torch.zeros(1, 32, 32)
    image[:, :, 16:] = 1.0
    labels = superpixels(image, 16, 0.1)
    left, right = set(np.unique(labels[:, :16])), set(np.unique(labels[:, 16:]))
    assert not left & right  # no superpixel straddles the edge


def test_a_constant_image_falls_back_to_a_grid_of_superpixels():
    labels = superpixels(torch.full((1, 20, 20), 0.5), 16, 0.1)
    assert len(np.unique(labels)) == 16
    assert np.array_equal(labels, grid_segments((20, 20), 16))


def test_weighted_least_squares_recovers_an_exact_linear_function():
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, 2, (40, 5), generator=generator).float()
    truth = torch.tensor([0.5, -1.0, 2.0, 0.0, 3.0])
    y = x @ truth + 0.7
    weights = torch.rand(40, generator=generator) + 0.1
    model = WeightedLinearModel(alpha=0.0)
    model.fit(DataLoader(TensorDataset(x, y, weights), batch_size=40))
    assert torch.allclose(model.representation(), truth.view(1, -1), atol=1e-5)
    assert abs(model.intercept - 0.7) < 1e-5
    assert torch.allclose(model(x[:3]).float().flatten(), y[:3], atol=1e-5)


def test_ridge_shrinks_coefficients_towards_zero():
    x = torch.eye(4).repeat(3, 1)
    y = x @ torch.tensor([1.0, 2.0, 3.0, 4.0])
    plain, ridge = WeightedLinearModel(0.0), WeightedLinearModel(1.0)
    for model in (plain, ridge):
        model.fit(DataLoader(TensorDataset(x, y, torch.ones(12)), batch_size=12))
    assert (ridge.representation().abs() < plain.representation().abs()).all()


def test_lime_kernel_weights_the_unperturbed_sample_most():
    kernel = lime_kernel(0.25)
    full = kernel(None, None, torch.ones(1, 8))
    half = kernel(None, None, torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0]]))
    empty = kernel(None, None, torch.zeros(1, 8))
    assert full == 1.0
    assert 0 < empty < half < full
    # cosine distance of half-on to all-on is 1 - 4 / (2 * sqrt(8))
    distance = 1 - 4 / (2 * np.sqrt(8))
    assert np.isclose(half, np.sqrt(np.exp(-(distance**2) / 0.25**2)))


def test_occlusion_windows_are_given_for_a_128_pixel_side():
    assert scaled_window(16, 128) == 16
    assert scaled_window(16, 256) == 32
    assert scaled_window(16, 32) == 4
    assert scaled_window(1, 16) == 1  # never below one pixel
    assert scaled_window(400, 64) == 64  # never above the side
