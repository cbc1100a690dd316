"""The one contract every generative model follows (STYLE 3): shapes, labels, seeding, fit.

It runs against every model and against models bound to hypernetwork-generated weights
(``HyperNetwork(model, ...).bind(weights)``), which must behave as models too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from _fixtures import digits as _digits
from genfair.data import ClassMixtureData, GaussianData
from genfair.models import (
    DDPM,
    VAE,
    BiasedSampler,
    ClassGaussianModel,
    ClosedFormFit,
    GaussianMixtureModel,
    GenerativeModel,
    ReparameterizedSampler,
)
from genfair.hypernets import BoundModel, HyperNetwork

R, N = 3, 40


@dataclass
class Case:
    """A model under contract, data ``x (R, n, *sample_shape)`` / ``y (R, n)`` it was fitted or
    bound on, its number of classes, and the tensors that ``rsample`` must differentiate into."""

    model: GenerativeModel
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    learned: list[torch.Tensor]

    @property
    def replicates(self) -> int:
        return self.x.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])


def _analytic(model: ClassGaussianModel, data) -> Case:
    batch = data.draw(R, N, generator=torch.Generator().manual_seed(0))
    model.fit(batch.x, batch.y)
    return Case(model, batch.x, batch.y, len(data.classes), list(model.parameters()))


def gaussian_case() -> Case:
    return _analytic(ClassGaussianModel(1, 2, replicates=R), GaussianData(dim=2))


def mixture_case() -> Case:
    data = ClassMixtureData(proportions=[0.7, 0.3], dim=2, class_names=["a", "b"])
    return _analytic(ClassGaussianModel(2, 2, replicates=R, estimator="unbiased"), data)


def vae_case() -> Case:
    torch.manual_seed(0)
    model = VAE(sample_shape=(64,), hidden=(32, 32), latent_dim=4, batch_norm=True, num_classes=10)
    x, y = _digits(N)
    return Case(model, x, y, 10, list(model.parameters()))


def conv_vae_case(num_classes: int | None) -> Case:
    torch.manual_seed(0)
    model = VAE(
        sample_shape=(1, 8, 8),
        hidden=(4, 8),
        latent_dim=4,
        batch_norm=True,
        num_classes=num_classes,
        architecture="conv",
    )
    x, y = _digits(N)
    y = y if num_classes else torch.zeros_like(y)
    return Case(model, x.reshape(1, N, 1, 8, 8), y, num_classes or 1, list(model.parameters()))


def _tiny_ddpm(num_classes: int | None, sampler: str) -> DDPM:
    """Two levels of 8 and 16 channels, 20 noise levels, 3 sampling steps."""
    torch.manual_seed(0)
    return DDPM(
        sample_shape=(1, 8, 8),
        block_out_channels=(8, 16),
        norm_num_groups=4,
        num_classes=num_classes,
        num_train_timesteps=20,
        sampler=sampler,
        sample_steps=3,
    )


def ddpm_case(num_classes: int | None, sampler: str) -> Case:
    model = _tiny_ddpm(num_classes, sampler)
    x, y = _digits(N)
    y = y if num_classes else torch.zeros_like(y)
    return Case(model, x.reshape(1, N, 1, 8, 8), y, num_classes or 1, list(model.parameters()))


def hyper_ddpm_case() -> Case:
    fitted = ddpm_case(10, "ddim")
    hnet = HyperNetwork(fitted.model, sample_shape=(1, 8, 8), num_classes=10, hidden=16, embedding_dim=8)
    bound = hnet.bind(hnet(fitted.x[0], fitted.y[0]))
    return Case(bound, fitted.x, fitted.y, 10, list(hnet.parameters()))


def hyper_vae_case() -> Case:
    torch.manual_seed(0)
    target = VAE(sample_shape=(64,), hidden=(32, 32), latent_dim=4, batch_norm=True)
    hnet = HyperNetwork(target, sample_shape=(64,), hidden=16, embedding_dim=8)
    x, y = _digits(N)
    return Case(hnet.bind(hnet(x[0])), x, torch.zeros_like(y), 1, list(hnet.parameters()))


def hyper_mixture_case() -> Case:
    torch.manual_seed(0)
    fitted = mixture_case()
    hnet = HyperNetwork(
        fitted.model, sample_shape=(2,), num_classes=2, per_replicate=True, positive={"shares": "softmax"}, hidden=16
    )
    bound = hnet.bind(hnet(fitted.x, fitted.y))
    return Case(bound, fitted.x, fitted.y, 2, list(hnet.parameters()))


def gaussian_mixture_case() -> Case:
    """Latent components: the class labels of the data are ignored by loss and sample."""
    data = ClassMixtureData(proportions=[0.7, 0.3], dim=2, class_names=["a", "b"])
    batch = data.draw(R, N, generator=torch.Generator().manual_seed(0))
    model = GaussianMixtureModel(2, 2, replicates=R)
    return Case(model, batch.x, batch.y, 2, list(model.parameters()))


def hyper_gaussian_mixture_case() -> Case:
    torch.manual_seed(0)
    fitted = gaussian_mixture_case()
    positive = {"weights": "softmax", "variances": "softplus"}
    hnet = HyperNetwork(fitted.model, sample_shape=(2,), per_replicate=True, positive=positive, hidden=16)
    return Case(hnet.bind(hnet(fitted.x)), fitted.x, fitted.y, 2, list(hnet.parameters()))


CASES = {
    "gaussian": gaussian_case,
    "gaussian_mixture": gaussian_mixture_case,
    "hyper_gaussian_mixture": hyper_gaussian_mixture_case,
    "class_mixture": mixture_case,
    "vae": vae_case,
    "conv_vae": lambda: conv_vae_case(10),
    "conv_vae_unconditional": lambda: conv_vae_case(None),
    "ddpm": lambda: ddpm_case(10, "ddim"),
    "ddpm_unconditional": lambda: ddpm_case(None, "ddpm"),
    "hyper_ddpm": hyper_ddpm_case,
    "hyper_vae": hyper_vae_case,
    "hyper_class_mixture": hyper_mixture_case,
}


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]()


class TestGenerativeModelContract:
    def test_follows_the_protocol(self, case):
        assert isinstance(case.model, GenerativeModel)
        assert isinstance(case.model, (torch.nn.Module, BoundModel))
        if isinstance(case.model, BoundModel):  # generated weights are not refitted in closed form
            assert not isinstance(case.model, ClosedFormFit)

    def test_loss_is_per_sample_and_finite(self, case):
        loss = case.model.loss(case.x, case.y)
        assert loss.shape == (case.replicates, N) and torch.isfinite(loss).all()

    def test_sample_shape_and_labels(self, case):
        labels = torch.randint(case.num_classes, (case.replicates, 7), generator=torch.Generator().manual_seed(1))
        x = case.model.sample(7, labels=labels, generator=torch.Generator().manual_seed(2))
        assert x.shape == (case.replicates, 7, *case.sample_shape) and torch.isfinite(x).all()

    def test_sample_is_reproducible_from_its_generator(self, case):
        a = case.model.sample(5, generator=torch.Generator().manual_seed(3))
        b = case.model.sample(5, generator=torch.Generator().manual_seed(3))
        c = case.model.sample(5, generator=torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_rsample_is_differentiable_in_the_weights(self, case):
        if not isinstance(case.model, ReparameterizedSampler):
            pytest.skip("no reparameterised sampler")
        x = case.model.rsample(6, generator=torch.Generator().manual_seed(5))
        assert x.shape == (case.replicates, 6, *case.sample_shape)
        grads = torch.autograd.grad(x.square().sum(), case.learned, allow_unused=True)
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads)

    def test_biased_sampling_scales_the_spread(self, case):
        if not isinstance(case.model, BiasedSampler):
            pytest.skip("no biased sampler")
        n = 20_000  # per replicate; the variance ratio's relative sd is about sqrt(2/n) ~ 1 %
        labels = torch.zeros(case.replicates, n, dtype=torch.int64)
        full = case.model.sample_biased(n, bias=1.0, labels=labels, generator=torch.Generator().manual_seed(5))
        half = case.model.sample_biased(n, bias=0.5, labels=labels, generator=torch.Generator().manual_seed(6))
        ratio = half.var(dim=1) / full.var(dim=1)
        assert torch.allclose(ratio, torch.full_like(ratio, 0.5), atol=0.5 * 6 * (2 / n) ** 0.5)


def test_closed_form_fit_matches_numpy_per_class():
    data = ClassMixtureData(proportions=[0.6, 0.4], dim=3)
    batch = data.draw(2, 50, generator=torch.Generator().manual_seed(0))
    for estimator, ddof in (("mle", 0), ("unbiased", 1)):
        model = ClassGaussianModel(2, 3, replicates=2, estimator=estimator)
        model.fit(batch.x, batch.y)
        for r in range(2):
            for k in range(2):
                xs = batch.x[r][batch.y[r] == k].numpy()
                assert torch.allclose(model.means[r, k], torch.tensor(xs.mean(0)))
                assert torch.allclose(model.covs[r, k], torch.tensor(np.cov(xs.T, ddof=ddof)))
                assert model.shares[r, k].item() == pytest.approx(len(xs) / 50)


def test_log_prob_matches_torch_distributions():
    fitted = mixture_case()
    model, x = fitted.model, fitted.x
    ref = torch.distributions.MultivariateNormal(model.means[0, 1], model.covs[0, 1]).log_prob(x[0])
    expected = ref + torch.log(model.shares[0, 1])
    labels = torch.ones(R, N, dtype=torch.int64)
    assert torch.allclose(model.log_prob(x, labels)[0], expected)


def test_extinct_class_is_frozen_and_never_sampled():
    model = ClassGaussianModel(2, 1, replicates=1)
    x = torch.tensor([[[0.0], [1.0], [2.0], [10.0], [12.0]]], dtype=torch.float64)
    model.fit(x, torch.tensor([[0, 0, 0, 1, 1]]))
    before = model.means[0, 1].clone(), model.covs[0, 1].clone()
    model.fit(x[:, :3], torch.tensor([[0, 0, 0]]))
    assert model.shares[0, 1] == 0 and torch.equal(model.means[0, 1], before[0]) and torch.equal(model.covs[0, 1], before[1])
    assert (model.draw_labels(1000, generator=torch.Generator().manual_seed(0)) == 0).all()


def test_single_sample_class_refits_mean_and_keeps_covariance():
    model = ClassGaussianModel(2, 1, replicates=1, estimator="unbiased")
    model.fit(torch.tensor([[[0.0], [2.0], [10.0], [14.0]]], dtype=torch.float64), torch.tensor([[0, 0, 1, 1]]))
    assert model.covs[0, 1, 0, 0].item() == pytest.approx(8.0)
    model.fit(torch.tensor([[[0.0], [2.0], [11.0]]], dtype=torch.float64), torch.tensor([[0, 0, 1]]))
    assert model.means[0, 1, 0].item() == pytest.approx(11.0)
    assert model.covs[0, 1, 0, 0].item() == pytest.approx(8.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
        ({"estimator": "bessel"}, "estimator must be one of \\['mle', 'unbiased'\\], got 'bessel'"),
        ({"min_class_samples": 1}, "min_class_samples must be an integer >= 2, got 1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClassGaussianModel(**kwargs)
