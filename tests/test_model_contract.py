"""The one contract every generative model follows (STYLE 3): shapes, labels, seeding, fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genfair.data import ClassMixtureData, GaussianData
from genfair.models import BiasedSampler, ClassGaussianModel, ClosedFormFit, GenerativeModel

R, N = 3, 40


def gaussian_case():
    return ClassGaussianModel(1, 2, replicates=R), GaussianData(dim=2)


def mixture_case():
    data = ClassMixtureData(proportions=[0.7, 0.3], dim=2, class_names=["a", "b"])
    return ClassGaussianModel(2, 2, replicates=R, estimator="unbiased"), data


CASES = {"gaussian": gaussian_case, "class_mixture": mixture_case}


@pytest.fixture(params=sorted(CASES))
def fitted(request):
    model, data = CASES[request.param]()
    batch = data.draw(R, N, generator=torch.Generator().manual_seed(0))
    if isinstance(model, ClosedFormFit):
        model.fit(batch.x, batch.y)
    return model, data, batch


class TestGenerativeModelContract:
    def test_follows_the_protocol(self, fitted):
        model, _, _ = fitted
        assert isinstance(model, torch.nn.Module) and isinstance(model, GenerativeModel)

    def test_loss_is_per_sample_and_finite(self, fitted):
        model, _, batch = fitted
        loss = model.loss(batch.x, batch.y)
        assert loss.shape == (R, N) and torch.isfinite(loss).all()

    def test_sample_shape_and_labels(self, fitted):
        model, data, _ = fitted
        labels = torch.randint(len(data.classes), (R, 7), generator=torch.Generator().manual_seed(1))
        x = model.sample(7, labels=labels, generator=torch.Generator().manual_seed(2))
        assert x.shape == (R, 7, data.dim) and torch.isfinite(x).all()

    def test_sample_is_reproducible_from_its_generator(self, fitted):
        model, _, _ = fitted
        a = model.sample(5, generator=torch.Generator().manual_seed(3))
        b = model.sample(5, generator=torch.Generator().manual_seed(3))
        c = model.sample(5, generator=torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_biased_sampling_scales_the_spread(self, fitted):
        model, _, _ = fitted
        assert isinstance(model, BiasedSampler)
        n = 20_000  # per replicate; the variance ratio's relative sd is about sqrt(2/n) ~ 1 %
        labels = torch.zeros(R, n, dtype=torch.int64)
        full = model.sample_biased(n, bias=1.0, labels=labels, generator=torch.Generator().manual_seed(5))
        half = model.sample_biased(n, bias=0.5, labels=labels, generator=torch.Generator().manual_seed(6))
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
    model, data = mixture_case()
    batch = data.draw(R, N, generator=torch.Generator().manual_seed(0))
    model.fit(batch.x, batch.y)
    ref = torch.distributions.MultivariateNormal(model.means[0, 1], model.covs[0, 1]).log_prob(batch.x[0])
    expected = ref + torch.log(model.shares[0, 1])
    labels = torch.ones(R, N, dtype=torch.int64)
    assert torch.allclose(model.log_prob(batch.x, labels)[0], expected)


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
