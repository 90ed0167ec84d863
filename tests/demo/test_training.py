"""Training helpers for the demo model: AUC, input loading, determinism and export."""

import itertools

import numpy as np
import pydicom
import pytest
import torch
from safetensors.torch import load_file

from demo.synthetic import generate_demo_dataset
from demo.training import (
    TrainingDataError,
    dicom_to_unit_image,
    export_torchscript,
    load_torchscript,
    load_training_arrays,
    predict_scores,
    roc_auc,
    save_weights,
    train_demo_model,
)
from explain.compute.models import AttentionResNet

SMALL_SPEC = {"size": [32, 32], "channels": 1, "mean": [0.5], "std": [0.25]}
TINY = {"epochs": 2, "width": 4, "batch_size": 6, "max_shift": 2}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-train")
    generate_demo_dataset(out, cases=24, seed=5)
    return out


@pytest.fixture(scope="module")
def arrays(dataset_dir):
    return load_training_arrays(dataset_dir, input_spec=SMALL_SPEC)


# ----------------------------------------------------------------------------- roc_auc


def test_auc_of_perfectly_separated_scores_is_one_and_of_reversed_scores_zero():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_auc_counts_a_tied_positive_negative_pair_as_one_half():
    # pairs (pos, neg): (.5,.5) tie = 1/2, (.5,.2) = 1, (.8,.5) = 1, (.8,.2) = 1 -> 3.5 / 4
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.8]) == pytest.approx(0.875)
    assert roc_auc([0, 1, 1, 0, 1], [0.3] * 5) == pytest.approx(0.5)


def test_auc_matches_counting_every_pair_by_hand():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    scores = rng.integers(0, 6, 40) / 5.0  # many ties
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[y == 1], scores[y == 0])
    ]
    assert roc_auc(y, scores) == pytest.approx(sum(pairs) / len(pairs))
    assert roc_auc(y.astype(bool), scores) == pytest.approx(sum(pairs) / len(pairs))


@pytest.mark.parametrize(
    ("y", "scores", "reason"),
    [
        ([1, 1], [0.2, 0.3], "one positive and one negative"),
        ([0, 1], [0.2], "has 2 values"),
        ([0, 1], [0.2, float("nan")], "finite"),
        ([0, 2], [0.2, 0.3], "0/1"),
    ],
)
def test_auc_refuses_unusable_input_with_a_reason(y, scores, reason):
    with pytest.raises(ValueError, match=reason):
        roc_auc(y, scores)


# ------------------------------------------------------------------------------ inputs


def test_training_arrays_follow_the_split_and_the_input_spec(dataset_dir, arrays):
    train_x, train_y, test_x, test_y = arrays
    assert train_x.shape == (18, 1, 32, 32) and test_x.shape == (6, 1, 32, 32)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int64
    assert sorted(np.bincount(train_y)) == [9, 9] and sorted(np.bincount(test_y)) == [3, 3]
    # (x - 0.5) / 0.25 of a [0, 1] image lies in [-2, 2]
    assert train_x.min() >= -2.0 - 1e-6 and train_x.max() <= 2.0 + 1e-6
    labels = (dataset_dir / "labels.csv").read_text().splitlines()[1:]
    first_test = next(line for line in labels if line.endswith(",test"))
    assert test_y[0] == (1 if ",nodule," in first_test else 0)


def test_a_custom_input_function_replaces_the_dicom_pipeline(dataset_dir):
    seen = []

    def to_input(path):
        seen.append(path.name)
        return np.full((1, 32, 32), len(seen), dtype=np.float32)

    train_x, _, test_x, _ = load_training_arrays(
        dataset_dir, input_spec=SMALL_SPEC, to_input=to_input
    )
    assert len(seen) == 24
    assert {float(v) for v in np.concatenate([train_x, test_x])[:, 0, 0, 0]} == set(
        map(float, range(1, 25))
    )


def test_an_input_function_with_the_wrong_shape_is_reported(dataset_dir):
    with pytest.raises(TrainingDataError, match="expected"):
        load_training_arrays(
            dataset_dir, input_spec=SMALL_SPEC, to_input=lambda p: np.zeros((1, 16, 16))
        )


def test_monochrome1_file_gives_the_same_unit_image_as_its_monochrome2_twin(
    dataset_dir, tmp_path
):
    source = next(
        p
        for p in sorted((dataset_dir / "images").glob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).PhotometricInterpretation
        == "MONOCHROME2"
    )
    ds = pydicom.dcmread(source)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    center = float(ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter)
    width = float(ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth)
    twin = pydicom.dcmread(source)
    twin.PixelData = (4095 - ds.pixel_array).astype(np.uint16).tobytes()
    twin.PhotometricInterpretation = "MONOCHROME1"
    # stored s -> 4095 - s maps modality value m to K - m with K = 4095 * slope + 2 * intercept
    twin.WindowCenter = round(4095 * slope + 2 * intercept - center, 4)
    twin.WindowWidth = width
    twin_path = tmp_path / "twin.dcm"
    twin.save_as(twin_path)
    original, inverted = dicom_to_unit_image(source), dicom_to_unit_image(twin_path)
    assert np.abs(original - inverted).max() < 2e-3
    rows, cols = original.shape
    assert original[: rows // 10, : cols // 10].mean() < original[rows // 2, cols // 2]


# ---------------------------------------------------------------------------- training


def test_training_is_deterministic_for_a_seed(arrays, tmp_path):
    first = train_demo_model(*arrays, seed=3, **TINY)
    second = train_demo_model(*arrays, seed=3, **TINY)
    other = train_demo_model(*arrays, seed=4, **TINY)
    digest = save_weights(first.model, tmp_path / "a.safetensors")
    assert save_weights(second.model, tmp_path / "b.safetensors") == digest
    assert save_weights(other.model, tmp_path / "c.safetensors") != digest
    assert [h.loss for h in first.history] == [h.loss for h in second.history]


def test_training_reports_history_and_a_held_out_auc_of_the_returned_model(arrays):
    _, _, test_x, test_y = arrays
    seen = []
    result = train_demo_model(*arrays, seed=1, progress=seen.append, **TINY)
    assert not result.model.training
    assert [s.epoch for s in seen] == [1, 2] and result.history == seen
    assert result.test_auc == pytest.approx(roc_auc(test_y, predict_scores(result.model, test_x)))
    assert result.train_seconds > 0 and result.settings["seed"] == 1


def test_training_leaves_global_torch_settings_as_it_found_them(arrays):
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    state = torch.get_rng_state()
    train_demo_model(*arrays, seed=2, num_threads=1, **TINY)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.get_rng_state(), state)


def test_training_refuses_labels_of_a_single_class(arrays):
    train_x, train_y, test_x, test_y = arrays
    with pytest.raises(TrainingDataError, match="both classes"):
        train_demo_model(train_x, np.zeros_like(train_y), test_x, test_y, **TINY)


# ------------------------------------------------------------------------------- files


def trained_tiny_model() -> AttentionResNet:
    torch.manual_seed(0)
    model = AttentionResNet(width=4)
    model.train()
    with torch.no_grad():  # move BatchNorm running statistics away from their defaults
        model(torch.randn(8, 1, 32, 32) * 2 + 1)
    return model.eval()


def test_saved_weights_load_into_a_fresh_model_with_identical_outputs(tmp_path):
    model = trained_tiny_model()
    path = tmp_path / "weights.safetensors"
    digest = save_weights(model, path)
    assert len(digest) == 64 and digest == save_weights(model, tmp_path / "again.safetensors")
    fresh = AttentionResNet(width=4)
    fresh.load_state_dict(load_file(str(path)))
    fresh.eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


def test_torchscript_export_reloads_and_matches_the_eager_model(tmp_path):
    model = trained_tiny_model()
    path = tmp_path / "model.pt"
    digest = export_torchscript(model, path, example=torch.zeros(1, 1, 32, 32))
    assert len(digest) == 64 and path.is_file()
    reloaded = load_torchscript(path)
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), model(x), atol=1e-5)
