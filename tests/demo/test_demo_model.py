"""The demo AttentionResNet: shapes, explainer-friendliness and TorchScript export."""

import json
from collections import Counter

import pytest
import torch
from torch import nn

from explain.compute.models import (
    DEMO_CLASS_LABELS,
    DEMO_INPUT_SPEC,
    Add,
    AttentionResNet,
    Multiply,
)


@pytest.fixture
def model() -> AttentionResNet:
    torch.manual_seed(0)
    return AttentionResNet(in_channels=1, num_classes=2, width=8).eval()


def demo_batch(n: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    height, width = DEMO_INPUT_SPEC["size"]
    return torch.randn(n, DEMO_INPUT_SPEC["channels"], height, width, generator=generator)


def test_forward_gives_one_logit_per_class_for_each_image(model):
    logits = model(demo_batch(3))
    assert logits.shape == (3, len(DEMO_CLASS_LABELS))
    assert DEMO_CLASS_LABELS == ["normal", "nodule"]


def test_embedding_is_the_vector_the_classifier_reads(model):
    x = demo_batch(2)
    embedding = model.embedding(x)
    assert embedding.shape == (2, model.embedding_dim)
    assert torch.allclose(model.fc(embedding), model(x), atol=1e-6)


def test_attention_map_of_the_latest_forward_is_kept(model):
    model(demo_batch(2))
    first = model.attention.last_map.clone()
    height, width = DEMO_INPUT_SPEC["size"]
    assert first.shape == (2, 1, height // 8, width // 8)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    model(demo_batch(1) * 3.0)
    assert model.attention.last_map.shape[0] == 1


def test_every_relu_is_its_own_module_called_once_per_forward(model):
    calls: Counter[str] = Counter()
    relus = {name: m for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
    assert len(relus) == 7  # stem + two per residual block
    assert len({id(m) for m in relus.values()}) == len(relus)
    handles = [
        module.register_forward_hook(lambda _m, _i, _o, name=name: calls.update([name]))
        for name, module in relus.items()
    ]
    model(demo_batch(2))
    for handle in handles:
        handle.remove()
    assert calls == Counter(dict.fromkeys(relus, 1))


def test_no_module_works_in_place(model):
    for name, module in model.named_modules():
        assert getattr(module, "inplace", False) is False, name


def test_residual_additions_and_attention_product_are_explicit_modules(model):
    calls: Counter[type] = Counter()
    handles = [
        m.register_forward_hook(lambda mod, _i, _o: calls.update([type(mod)]))
        for m in model.modules()
        if isinstance(m, Add | Multiply | nn.Sigmoid)
    ]
    model(demo_batch(1))
    for handle in handles:
        handle.remove()
    assert calls == Counter({Add: 3, Multiply: 1, nn.Sigmoid: 1})


def test_gradients_reach_the_input(model):
    x = demo_batch(2).requires_grad_(True)
    model(x)[:, 1].sum().backward()
    assert x.grad is not None
    assert float(x.grad.abs().sum()) > 0.0


def test_cam_layer_name_resolves_to_the_last_convolutional_block(model):
    layer = model.get_submodule(model.cam_layer_name)
    seen: list[torch.Size] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    model(demo_batch(1))
    handle.remove()
    assert seen == [torch.Size([1, 4 * 8, 16, 16])]
    assert any(isinstance(m, nn.Conv2d) for m in layer.modules())


def test_constructor_arguments_survive_a_json_round_trip():
    kwargs = json.loads(json.dumps({"in_channels": 1, "num_classes": 2, "width": 4}))
    rebuilt = AttentionResNet(**kwargs)
    assert rebuilt.fc.out_features == 2


def test_invalid_width_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="positive"):
        AttentionResNet(width=0)


@pytest.mark.filterwarnings("ignore:.*torch\\.jit:DeprecationWarning")
def test_traced_model_gives_the_same_outputs_as_the_eager_model(model, tmp_path):
    x = demo_batch(2)
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
    path = tmp_path / "model.pt"
    traced.save(str(path))
    reloaded = torch.jit.load(str(path))
    other = demo_batch(3) * 0.5  # a different batch size than the trace example
    with torch.no_grad():
        assert torch.allclose(reloaded(other), model(other), atol=1e-5)
