"""Known-answer tests for the explanation-quality metrics (hand-built maps and tiny models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from explain.compute.metric_summary import summarize
from explain.compute.metrics import (
    METRIC_DESCRIPTIONS,
    CurveResult,
    MetricError,
    deletion_curve,
    insertion_curve,
    max_sensitivity,
    pointing_game,
    rank_correlation,
    relevance_mass,
    topk_iou,
)

# A 4x4 one-channel image; the class-0 logit is a weighted sum of four pixels, class 1 is 0, so
# the class-0 softmax probability is sigmoid(weighted sum).
WEIGHTS = {5: 3.0, 6: 2.0, 9: 1.0, 10: 0.5}  # flat index -> weight


class PixelSum(nn.Module):
    """logit_0 = sum_c sum_p W[c, p] * x[c, p]; logit_1 = 0. Counts forwards and batch sizes."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weights.clone(), requires_grad=False)
        self.batch_sizes: list[int] = []
        self.training_seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(x.shape[0])
        self.training_seen.append(self.training)
        logit = (x * self.weight).sum(dim=(1, 2, 3))
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def weight_map(weights: dict[int, float], size: int = 4) -> np.ndarray:
    flat = np.zeros(size * size)
    for index, value in weights.items():
        flat[index] = value
    return flat.reshape(size, size)


def pixel_model(weights: dict[int, float] = WEIGHTS) -> PixelSum:
    return PixelSum(torch.tensor(weight_map(weights), dtype=torch.float32)[None])


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def trapezoid(ys: list[float], dx: float) -> float:
    return sum((ys[i] + ys[i + 1]) / 2 * dx for i in range(len(ys) - 1))


ONES = torch.ones(1, 4, 4)


# Deletion / insertion -------------------------------------------------------------------------


def test_deletion_with_perfect_attribution_drops_as_computed_by_hand():
    # One pixel per step; removal order 5 (3.0), 6 (2.0), 9 (1.0), 10 (0.5), then the zeros.
    sums = [6.5, 3.5, 1.5, 0.5] + [0.0] * 13
    expected = [sigmoid(s) for s in sums]
    result = deletion_curve(pixel_model(), ONES, weight_map(WEIGHTS), 0, steps=16)
    assert isinstance(result, CurveResult)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-6)
    np.testing.assert_allclose(result.fractions, [k / 16 for k in range(17)])
    assert result.auc == pytest.approx(trapezoid(expected, 1 / 16), rel=1e-6)
    assert result.steps == 16
    assert result.baseline == "zeros"


def test_insertion_with_perfect_attribution_rises_as_computed_by_hand():
    sums = [0.0, 3.0, 5.0, 6.0] + [6.5] * 13
    expected = [sigmoid(s) for s in sums]
    result = insertion_curve(pixel_model(), ONES, weight_map(WEIGHTS), 0, steps=16)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-6)
    assert result.auc == pytest.approx(trapezoid(expected, 1 / 16), rel=1e-6)


def test_reversed_attribution_gives_worse_deletion_and_insertion_auc():
    perfect = weight_map(WEIGHTS)
    reversed_ = -perfect
    model = pixel_model()
    good_del = deletion_curve(model, ONES, perfect, 0, steps=16)
    bad_del = deletion_curve(model, ONES, reversed_, 0, steps=16)
    # Reversed: the 12 zero-weight pixels go first (index order), then 10, 9, 6, 5.
    bad_sums = [6.5] * 13 + [6.0, 5.0, 3.0, 0.0]
    np.testing.assert_allclose(bad_del.scores, [sigmoid(s) for s in bad_sums], rtol=1e-6)
    assert bad_del.auc > good_del.auc
    good_ins = insertion_curve(model, ONES, perfect, 0, steps=16)
    bad_ins = insertion_curve(model, ONES, reversed_, 0, steps=16)
    assert bad_ins.auc < good_ins.auc


def test_tied_attributions_are_ranked_by_pixel_index():
    flat = np.zeros((4, 4))
    first_pixel = deletion_curve(pixel_model({0: 1.0}), ONES, flat, 0, steps=16, softmax=False)
    last_pixel = deletion_curve(pixel_model({15: 1.0}), ONES, flat, 0, steps=16, softmax=False)
    np.testing.assert_allclose(first_pixel.scores, [1.0] + [0.0] * 16)
    np.testing.assert_allclose(last_pixel.scores, [1.0] * 16 + [0.0])


def test_softmax_false_records_the_raw_logits():
    result = deletion_curve(pixel_model(), ONES, weight_map(WEIGHTS), 0, steps=16, softmax=False)
    np.testing.assert_allclose(result.scores, [6.5, 3.5, 1.5, 0.5] + [0.0] * 13, rtol=1e-6)
    # Class 1 always scores logit 0.
    other = deletion_curve(pixel_model(), ONES, weight_map(WEIGHTS), 1, steps=16, softmax=False)
    np.testing.assert_array_equal(other.scores, np.zeros(17))


def test_batched_evaluation_equals_one_image_at_a_time():
    attribution = np.arange(16, dtype=float).reshape(4, 4)[::-1]
    batched_model, single_model = pixel_model(), pixel_model()
    batched = deletion_curve(batched_model, ONES, attribution, 0, steps=16, batch_size=3)
    single = deletion_curve(single_model, ONES, attribution, 0, steps=16, batch_size=1)
    np.testing.assert_allclose(batched.scores, single.scores, rtol=1e-12)
    assert batched.auc == pytest.approx(single.auc, rel=1e-12)
    # 17 images: five full batches of 3 and one of 2, one forward each.
    assert batched_model.batch_sizes == [3, 3, 3, 3, 3, 2]
    assert single_model.batch_sizes == [1] * 17


def test_steps_that_do_not_divide_the_pixel_count_round_to_the_nearest_pixel():
    # 16 pixels, 3 steps: round(16/3) = 5, round(32/3) = 11.
    result = deletion_curve(pixel_model(), ONES, weight_map(WEIGHTS), 0, steps=3, softmax=False)
    np.testing.assert_allclose(result.fractions, [0, 5 / 16, 11 / 16, 1])
    assert result.steps == 3
    # The top 5 pixels include all four weighted ones, so the logit is 0 from step 1 on.
    np.testing.assert_allclose(result.scores, [6.5, 0.0, 0.0, 0.0], atol=1e-6)


def test_mean_baseline_fills_with_the_per_channel_mean():
    channel0 = torch.arange(16, dtype=torch.float32).reshape(4, 4)  # mean 7.5
    channel1 = torch.full((4, 4), 2.0)  # mean 2.0
    x = torch.stack([channel0, channel1])
    weights = torch.zeros(2, 4, 4)
    weights[0].view(-1)[5] = 1.0
    weights[1].view(-1)[6] = 1.0
    attribution = np.ones((4, 4))
    deletion = deletion_curve(
        PixelSum(weights), x, attribution, 0, steps=4, baseline="mean", softmax=False
    )
    # Original logit: x0[5] + x1[6] = 5 + 2; fully replaced: 7.5 + 2.
    assert deletion.scores[0] == pytest.approx(7.0)
    assert deletion.scores[-1] == pytest.approx(9.5)
    assert deletion.baseline == "mean"
    insertion = insertion_curve(
        PixelSum(weights), x, attribution, 0, steps=4, baseline="mean", softmax=False
    )
    assert insertion.scores[0] == pytest.approx(9.5)
    assert insertion.scores[-1] == pytest.approx(7.0)


def test_blur_baseline_leaves_a_constant_image_unchanged_and_records_sigma():
    x = torch.full((1, 1, 4, 4), 0.25)
    result = deletion_curve(pixel_model(), x, weight_map(WEIGHTS), 0, steps=4, baseline="blur")
    np.testing.assert_allclose(result.scores, [sigmoid(6.5 * 0.25)] * 5, rtol=1e-6)
    assert result.baseline == "blur(sigma=5)"
    custom = deletion_curve(
        pixel_model(), x, weight_map(WEIGHTS), 0, steps=4, baseline="blur(sigma=1.5)"
    )
    assert custom.baseline == "blur(sigma=1.5)"


def test_blur_baseline_differs_from_zeros_for_a_structured_image():
    x = torch.zeros(1, 4, 4)
    x[0, 1, 1] = 1.0  # flat index 5, weight 3
    blurred = deletion_curve(
        pixel_model(), x, np.ones((4, 4)), 0, steps=1, baseline="blur(sigma=1)", softmax=False
    )
    # Blurring spreads the bright pixel: the fully deleted image keeps some of its mass.
    assert blurred.scores[0] == pytest.approx(3.0)
    assert 0.0 < blurred.scores[-1] < 3.0


def test_model_is_evaluated_in_eval_mode_and_its_flag_restored():
    model = pixel_model()
    model.train()
    deletion_curve(model, ONES, weight_map(WEIGHTS), 0, steps=2)
    assert model.training_seen == [False]
    assert model.training is True


def test_three_and_four_dimensional_inputs_give_the_same_curve():
    three = deletion_curve(pixel_model(), ONES, weight_map(WEIGHTS), 0, steps=4)
    four = deletion_curve(pixel_model(), ONES[None], weight_map(WEIGHTS), 0, steps=4)
    np.testing.assert_array_equal(three.scores, four.scores)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"attribution": np.zeros((3, 4))}, "does not match the image size"),
        ({"attribution": np.full((4, 4), np.nan)}, "NaN"),
        ({"baseline": "noise"}, "unknown baseline"),
        ({"target": 2}, "out of range"),
        ({"steps": 0}, "steps must be"),
        ({"batch_size": 0}, "batch_size must be"),
    ],
)
def test_bad_curve_input_raises_a_readable_error(kwargs, reason):
    arguments = {"attribution": weight_map(WEIGHTS), "target": 0} | kwargs
    attribution = arguments.pop("attribution")
    target = arguments.pop("target")
    with pytest.raises(MetricError, match=reason):
        deletion_curve(pixel_model(), ONES, attribution, target, **arguments)


# Pointing game --------------------------------------------------------------------------------


def test_pointing_game_hits_when_the_maximum_is_inside_the_mask():
    attribution = np.array([[0, 1, 0], [2, 9, 3], [0, 1, 0]], dtype=float)
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 1] = True
    assert pointing_game(attribution, mask) is True
    assert pointing_game(attribution, ~mask) is False


def test_pointing_game_uses_the_first_maximum_in_row_major_order_on_ties():
    attribution = np.zeros((3, 3))
    attribution[0, 2] = attribution[2, 0] = 5.0
    bottom_left = np.zeros((3, 3), dtype=bool)
    bottom_left[2, 0] = True
    top_right = np.zeros((3, 3), dtype=bool)
    top_right[0, 2] = True
    assert pointing_game(attribution, bottom_left) is False
    assert pointing_game(attribution, top_right) is True


def test_pointing_game_tolerance_is_a_euclidean_distance_in_pixels():
    attribution = np.zeros((5, 5))
    attribution[0, 0] = 1.0
    off_diagonal = np.zeros((5, 5), dtype=int)
    off_diagonal[2, 1] = 1  # distance sqrt(5) ~ 2.24 from (0, 0)
    assert pointing_game(attribution, off_diagonal, tolerance=2) is False
    assert pointing_game(attribution, off_diagonal, tolerance=3) is True
    straight = np.zeros((5, 5), dtype=bool)
    straight[2, 0] = True  # distance exactly 2: inclusive
    assert pointing_game(attribution, straight, tolerance=1) is False
    assert pointing_game(attribution, straight, tolerance=2) is True


def test_pointing_game_is_undefined_for_an_empty_mask():
    assert pointing_game(np.ones((3, 3)), np.zeros((3, 3), dtype=bool)) is None


def test_pointing_game_rejects_a_mask_of_another_shape_or_non_binary_values():
    with pytest.raises(MetricError, match="does not match"):
        pointing_game(np.ones((3, 3)), np.ones((3, 4), dtype=bool))
    with pytest.raises(MetricError, match="only 0 and 1"):
        pointing_game(np.ones((3, 3)), np.full((3, 3), 2))


# Relevance mass -------------------------------------------------------------------------------


def test_relevance_mass_is_the_positive_share_inside_the_mask():
    attribution = np.array([[4, -2, 0, 1], [3, 5, -1, 0], [0, 0, 2, -3], [1, 0, 0, 4]], dtype=float)
    mask = np.zeros((4, 4), dtype=bool)
    mask[:2, :2] = True
    # Inside: 4 + 3 + 5 = 12 (the -2 is ignored); all positive: 4+1+3+5+2+1+4 = 20.
    assert relevance_mass(attribution, mask) == pytest.approx(12 / 20)


def test_relevance_mass_of_a_map_without_positive_values_is_zero():
    attribution = -np.abs(np.arange(16, dtype=float).reshape(4, 4))
    mask = np.ones((4, 4), dtype=bool)
    assert relevance_mass(attribution, mask) == 0.0


def test_relevance_mass_is_undefined_for_an_empty_mask():
    assert relevance_mass(np.ones((4, 4)), np.zeros((4, 4), dtype=bool)) is None


# Top-k IoU ------------------------------------------------------------------------------------


def test_topk_iou_for_a_quarter_of_the_pixels_with_a_tie_at_the_cut():
    flat = np.array([9, 1, 8, 0, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 6], dtype=float)
    # k = 0.25 * 16 = 4: indices 0 (9), 2 (8), 4 and 5 (7, 7); index 6 (also 7) loses the tie.
    mask = np.zeros(16, dtype=bool)
    mask[[0, 1, 4, 6]] = True
    # Intersection {0, 4} = 2; union {0, 1, 2, 4, 5, 6} = 6.
    assert topk_iou(flat.reshape(4, 4), mask.reshape(4, 4), fraction=0.25) == pytest.approx(1 / 3)


def test_topk_iou_is_one_when_the_top_pixels_are_exactly_the_mask():
    attribution = np.zeros((4, 4))
    attribution[1:3, 1:3] = 1.0
    assert topk_iou(attribution, attribution > 0, fraction=0.25) == 1.0


def test_topk_iou_is_undefined_for_an_empty_mask_and_rejects_a_bad_fraction():
    assert topk_iou(np.ones((4, 4)), np.zeros((4, 4), dtype=bool)) is None
    with pytest.raises(MetricError, match="fraction"):
        topk_iou(np.ones((4, 4)), np.ones((4, 4), dtype=bool), fraction=0.0)


# Rank correlation -----------------------------------------------------------------------------


def test_rank_correlation_of_identical_and_monotonically_related_maps_is_one():
    a = np.random.default_rng(3).normal(size=(6, 6))
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, a**3) == pytest.approx(1.0)


def test_rank_correlation_of_a_reversed_ranking_is_minus_one():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)


def test_rank_correlation_with_constant_maps_follows_the_documented_rule():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert rank_correlation(a, np.zeros((4, 4))) == 0.0
    assert rank_correlation(np.ones((4, 4)), a) == 0.0
    assert rank_correlation(np.zeros((4, 4)), np.full((4, 4), 7.0)) == 1.0


def test_rank_correlation_rejects_maps_of_different_shapes():
    with pytest.raises(MetricError, match="differ"):
        rank_correlation(np.ones((4, 4)), np.ones((4, 5)))


# Max-sensitivity ------------------------------------------------------------------------------

# x: 1x32x32 (D = 1024 values) spanning [1, 2], so the value range is 1.
X_SENS = (1.0 + torch.linspace(0.0, 1.0, 1024)).reshape(1, 1, 32, 32)


def test_max_sensitivity_perturbations_fill_the_relative_linf_ball():
    # E(z) = max |z - x| per example: E(x) = 0 (norm replaced by 1), so the metric is the
    # largest sup-norm of the noise. Range 4 and radius 0.05 -> noise in [-0.2, 0.2]; with 1024
    # uniform draws per sample, P(max < 0.99 * 0.2) = 0.99**1024 ~ 3e-5 per sample.
    x = X_SENS * 4.0 - 4.0  # range exactly 4

    def sup_distance(z: torch.Tensor) -> torch.Tensor:
        return (z - x).abs().amax(dim=(1, 2, 3)).reshape(-1, 1, 1)

    value = max_sensitivity(sup_distance, x, radius=0.05, n_perturb=10, seed=1)
    assert 0.99 * 0.2 <= value <= 0.2 + 1e-9


def test_max_sensitivity_of_the_identity_is_the_largest_relative_noise_norm():
    # E(z) = z: the metric is max_i ||d_i|| / ||x||. Each of the D = 1024 noise values is
    # uniform on [-r, r] (r = 0.02 * range 1), so E||d||^2 = D r^2 / 3 and ||d|| concentrates at
    # r sqrt(D / 3) with relative sd ~ sqrt(Var(d^2) D) / (2 E||d||^2) = sqrt(4/45 D)/(2 D/3)
    # ~ 0.014; the max of 10 draws lies within -4 % / +8 % of it with overwhelming probability,
    # and never above the hard bound r sqrt(D).
    r, d = 0.02, 1024
    x_norm = float(torch.linalg.vector_norm(X_SENS))
    value = max_sensitivity(lambda z: z[:, 0], X_SENS, radius=r, n_perturb=10, seed=0)
    typical = r * math.sqrt(d / 3) / x_norm
    assert 0.96 * typical < value < 1.08 * typical
    assert value <= r * math.sqrt(d) / x_norm
    # Linear maps give the same relative change: scaling E by 3 leaves the metric unchanged.
    scaled = max_sensitivity(lambda z: 3.0 * z[:, 0], X_SENS, radius=r, n_perturb=10, seed=0)
    assert scaled == pytest.approx(value, rel=1e-6)  # float32 inputs: rounding only


def test_max_sensitivity_is_deterministic_for_a_seed():
    def explain(z):
        return z[:, 0] ** 2

    first = max_sensitivity(explain, X_SENS, seed=7)
    again = max_sensitivity(explain, X_SENS, seed=7)
    other = max_sensitivity(explain, X_SENS, seed=8)
    assert first == again
    assert first != other


def test_max_sensitivity_runs_gradient_explainers_despite_captums_no_grad():
    weights = torch.linspace(-1.0, 1.0, 1024).reshape(1, 1, 32, 32)

    def saliency(z: torch.Tensor) -> torch.Tensor:
        z = z.clone().requires_grad_(True)
        (z * weights).sum().backward()
        return z.grad[:, 0]

    # A linear model's gradient does not depend on the input: sensitivity exactly 0.
    assert max_sensitivity(saliency, X_SENS[0], n_perturb=4) == 0.0


def test_max_sensitivity_explains_at_most_batch_size_copies_at_once():
    sizes: list[int] = []

    def explain(z):
        sizes.append(z.shape[0])
        return z[:, 0]

    max_sensitivity(explain, X_SENS, n_perturb=7, batch_size=3)
    assert sizes == [1, 3, 3, 1]  # the original, then 7 perturbed copies in chunks of 3


def test_max_sensitivity_rejects_a_batch_of_images():
    with pytest.raises(MetricError, match="one|shape"):
        max_sensitivity(lambda z: z[:, 0], torch.ones(2, 1, 4, 4))


# Aggregation and descriptions -----------------------------------------------------------------


def test_summarize_ignores_none_and_nan():
    summary = summarize([1.0, None, float("nan"), 3.0, 2.0])
    assert summary == {"n": 3, "mean": 2.0, "sd": 1.0, "median": 2.0, "min": 1.0, "max": 3.0}


def test_summarize_counts_pointing_game_hits_as_ones():
    summary = summarize([True, False, True, None])
    assert summary["n"] == 3
    assert summary["mean"] == pytest.approx(2 / 3)


def test_summarize_of_nothing_or_one_value_leaves_undefined_statistics_as_none():
    assert summarize([None, float("nan")]) == {
        "n": 0,
        "mean": None,
        "sd": None,
        "median": None,
        "min": None,
        "max": None,
    }
    single = summarize([0.4])
    assert single["n"] == 1 and single["mean"] == 0.4 and single["sd"] is None


def test_every_metric_description_states_its_direction():
    expected = {
        "deletion_auc",
        "insertion_auc",
        "pointing_game",
        "relevance_mass",
        "topk_iou",
        "rank_correlation",
        "max_sensitivity",
    }
    assert set(METRIC_DESCRIPTIONS) == expected
    for description in METRIC_DESCRIPTIONS.values():
        assert ("higher is better" in description) != ("lower is better" in description)
    assert "lower is better" in METRIC_DESCRIPTIONS["deletion_auc"]
    assert "higher is better" in METRIC_DESCRIPTIONS["insertion_auc"]
