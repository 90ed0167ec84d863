"""The placebo model: a fully re-initialised copy whose maps must not look like the real ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from explain.compute.explainers import attribute, randomized_copy, resolve
from explain.compute.models import AttentionResNet
from tests.explain.explainer_models import SmallNet, one_thread, single_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _squares(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images; class 1 has a bright 8x8 square somewhere."""
    x = 0.1 * torch.randn(n, 1, 32, 32, generator=generator)
    y = torch.randint(0, 2, (n,), generator=generator)
    for i in range(n):
        row, column = torch.randint(0, 24, (2,), generator=generator).tolist()
        if y[i]:
            x[i, 0, row : row + 8, column : column + 8] += 1.0
    return x, y


@pytest.fixture(scope="module")
def trained() -> SmallNet:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = SmallNet(classes=2, width=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    with torch.enable_grad(), single_thread():
        for _ in range(60):
            x, y = _squares(32, generator)
            loss = F.cross_entropy(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    x, y = _squares(64, generator)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean()
    assert accuracy > 0.9  # it has learned something for the placebo to destroy
    return model.eval()


def test_saliency_of_the_placebo_is_not_rank_correlated_with_the_trained_model(trained):
    generator = torch.Generator().manual_seed(2)
    x, y = _squares(16, generator)
    x = x[y == 1][:4]
    placebo = randomized_copy(trained, seed=0)
    real = attribute(trained, x, 1, resolve("saliency"))
    fake = attribute(placebo, x, 1, resolve("saliency"))
    rhos = [spearmanr(real[i].flatten(), fake[i].flatten())[0] for i in range(len(x))]
    assert max(abs(rho) for rho in rhos) < 0.5, rhos


def test_randomized_copy_changes_every_parameter_and_leaves_the_original_alone(trained):
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    placebo = randomized_copy(trained, seed=3)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    for (name, original), (_, new) in zip(
        trained.named_parameters(), placebo.named_parameters(), strict=True
    ):
        assert not torch.equal(original, new), name
        assert new.data_ptr() != original.data_ptr()


def test_randomized_copy_is_reproducible_for_a_seed():
    model = SmallNet()
    a, b, c = (randomized_copy(model, seed=s) for s in (4, 4, 5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_randomized_copy_resets_batchnorm_statistics_and_keeps_the_mode_and_device():
    model = AttentionResNet(1, 2, width=4)
    with torch.no_grad():
        model.stem_bn.running_mean.fill_(3.0)
        model.stem_bn.running_var.fill_(9.0)
    model.eval()
    placebo = randomized_copy(model, seed=0)
    assert torch.equal(placebo.stem_bn.running_mean, torch.zeros(4))
    assert torch.equal(placebo.stem_bn.running_var, torch.ones(4))
    assert model.stem_bn.running_mean[0] == 3.0
    assert not placebo.training
    assert torch.isfinite(placebo(torch.randn(1, 1, 32, 32))).all()


def test_parameters_of_modules_without_reset_parameters_are_drawn_anew():
    class Scale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(3, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.weight.T

    placebo = randomized_copy(Scale(), seed=1)
    assert not torch.equal(placebo.weight, torch.ones(3, 4))
    assert placebo.weight.std() < 1.5  # N(0, 1/fan_in), fan_in = 4


def test_randomized_copy_refuses_a_non_integer_seed():
    with pytest.raises(ValueError, match="seed"):
        randomized_copy(SmallNet(), seed="1")
