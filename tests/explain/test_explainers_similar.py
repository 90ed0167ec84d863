"""Model-based explainers: the model's own attention map, embeddings and similar cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from explain.compute.explainers import attention_map, attribute, embeddings, nearest_cases, resolve
from explain.compute.models import AttentionResNet
from tests.explain.explainer_models import SmallNet, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_attention_map_is_the_gate_output_upsampled_to_the_input():
    torch.manual_seed(0)
    model = AttentionResNet(1, 2, width=4).eval()
    torch.nn.init.normal_(model.attention.conv.weight)  # a gate that varies over the image
    x = torch.randn(2, 1, 64, 64)
    maps = attention_map(model, x)
    captured = []
    handle = model.attention.conv.register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        model(x)
    handle.remove()
    gate = torch.sigmoid(captured[0])
    expected = F.interpolate(gate, size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    assert maps.shape == (2, 64, 64)
    assert torch.allclose(maps, expected, atol=1e-6)
    assert maps.std() > 0.01
    assert torch.equal(attribute(model, x, 1, resolve("attention")), maps)


def test_attention_map_needs_a_module_with_last_map():
    with pytest.raises(ValueError, match="last_map"):
        attention_map(SmallNet().eval(), torch.rand(1, 1, 16, 16))


def test_embeddings_are_the_models_penultimate_features():
    model = AttentionResNet(1, 2, width=4).eval()
    x = torch.randn(3, 1, 32, 32)
    vectors = embeddings(model, x)
    assert vectors.shape == (3, 16) and vectors.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(model.fc(vectors), model(x), atol=1e-6)


def test_embeddings_need_an_embedding_method():
    class Bare(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)

    with pytest.raises(ValueError, match="no `embedding"):
        embeddings(Bare(), torch.rand(1, 1, 2, 2))


REFERENCE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])


def test_nearest_cases_by_cosine_distance_break_ties_by_index():
    result = nearest_cases(torch.tensor([1.0, 0.0]), REFERENCE, k=3)
    # rows 0 and 4 point the same way (distance 0, tie -> index order), then row 2 (45 deg)
    assert [i for i, _ in result[0]] == [0, 4, 2]
    assert result[0][0][1] == pytest.approx(0.0, abs=1e-12)
    assert result[0][2][1] == pytest.approx(1 - 1 / math.sqrt(2))


def test_nearest_cases_by_euclidean_distance_with_exclusions_and_large_k():
    result = nearest_cases(
        torch.tensor([[1.0, 0.0], [0.0, 0.0]]), REFERENCE, k=10, metric="euclidean", exclude=[0]
    )
    assert len(result) == 2 and len(result[0]) == 4  # k > candidates -> all but the excluded
    assert [i for i, _ in result[0]] == [2, 4, 1, 3]  # distances 1, 1 (tie), sqrt 2, 2
    assert result[0][2][1] == pytest.approx(math.sqrt(2))
    assert [i for i, _ in result[1]] == [1, 3, 2, 4]  # 1, 1, sqrt 2, 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "positive integer"),
        ({"k": 2, "metric": "manhattan"}, "unknown metric"),
        ({"k": 2, "exclude": [9]}, "not a reference row"),
    ],
)
def test_nearest_cases_refuse_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nearest_cases(torch.ones(2), REFERENCE, **kwargs)


def test_nearest_cases_refuse_mismatched_dimensions():
    with pytest.raises(ValueError, match="dimension 3 differs"):
        nearest_cases(torch.ones(3), REFERENCE, k=1)
