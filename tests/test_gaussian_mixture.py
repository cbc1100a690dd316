"""GaussianMixtureModel against scipy, its sampling moments, rsample's gradients, and the
Monte-Carlo KL estimator against closed forms."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from genfair.errors import ConfigError
from genfair.metrics import monte_carlo_kl
from genfair.models import GaussianMixtureModel, GenerativeModel, ReparameterizedSampler
from genfair.hypernets import HyperNetwork

Z = 5.0  # standard errors allowed in statistical checks


def mixture(weights, means, variances) -> GaussianMixtureModel:
    """A model holding the given ``weights (R, K)``, ``means (R, K, d)``, ``variances (R, K, d)``."""
    weights, means, variances = (torch.tensor(v, dtype=torch.float64) for v in (weights, means, variances))
    r, k, d = means.shape
    model = GaussianMixtureModel(k, d, replicates=r)
    with torch.no_grad():
        model.weights.copy_(weights)
        model.means.copy_(means)
        model.variances.copy_(variances)
    return model


WEIGHTS = [[0.7, 0.3], [0.25, 0.75]]
MEANS = [[[0.0, 1.0], [3.0, -1.0]], [[-2.0, 0.5], [1.0, 1.0]]]
VARIANCES = [[[1.0, 0.5], [2.0, 1.5]], [[0.3, 1.0], [1.0, 4.0]]]


def test_initial_components_differ_and_follow_the_protocol():
    model = GaussianMixtureModel(3, 2, replicates=4)
    assert isinstance(model, GenerativeModel) and isinstance(model, ReparameterizedSampler)
    assert model.weights.shape == (4, 3) and model.means.shape == (4, 3, 2) and model.variances.shape == (4, 3, 2)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    torch.testing.assert_close(model.means[0, :, 0], torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(model.weights.sum(1), torch.ones(4, dtype=torch.float64))


def test_log_prob_matches_scipy():
    model = mixture(WEIGHTS, MEANS, VARIANCES)
    x = torch.randn(2, 9, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    expected = np.empty((2, 9))
    for r in range(2):
        per_component = [
            np.log(WEIGHTS[r][k]) + stats.multivariate_normal(MEANS[r][k], np.diag(VARIANCES[r][k])).logpdf(x[r].numpy())
            for k in range(2)
        ]
        expected[r] = logsumexp(np.stack(per_component), axis=0)
    np.testing.assert_allclose(model.log_prob(x).detach().numpy(), expected, rtol=1e-12)
    labels = torch.ones(2, 9, dtype=torch.int64)  # components are latent: labels change nothing
    torch.testing.assert_close(model.loss(x, labels), -model.log_prob(x))


def test_log_prob_broadcasts_one_set_over_replicates():
    model = mixture(WEIGHTS, MEANS, VARIANCES)
    x = torch.randn(1, 5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = model.log_prob(x)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out, model.log_prob(x.expand(2, -1, -1)))


def test_sampling_moments_match_the_mixture():
    model = mixture(WEIGHTS, MEANS, VARIANCES)
    n = 200_000
    x = model.sample(n, generator=torch.Generator().manual_seed(2)).numpy()  # (R, n, d)
    w, m, v = (np.array(a) for a in (WEIGHTS, MEANS, VARIANCES))
    mean = (w[..., None] * m).sum(1)  # (R, d)
    second = (w[..., None] * (v + m**2)).sum(1)
    variance = second - mean**2
    # The sample mean's sd is sqrt(variance / n); the sample variance's sd is sqrt((m4 - var^2) / n),
    # with the fourth central moment estimated from the sample itself.
    centred = x - x.mean(1, keepdims=True)
    m4 = (centred**4).mean(1)
    assert np.all(np.abs(x.mean(1) - mean) <= Z * np.sqrt(variance / n))
    assert np.all(np.abs(x.var(1) - variance) <= Z * np.sqrt((m4 - variance**2) / n))


def test_component_frequencies_and_fixed_components():
    model = mixture(WEIGHTS, MEANS, VARIANCES)
    n = 50_000
    components = model.draw_components(n, generator=torch.Generator().manual_seed(3))
    share = (components == 1).double().mean(1).numpy()
    p = np.array(WEIGHTS)[:, 1]
    assert np.all(np.abs(share - p) <= Z * np.sqrt(p * (1 - p) / n))
    only_first = torch.zeros(2, n, dtype=torch.int64)
    x = model.sample(n, components=only_first, generator=torch.Generator().manual_seed(4))
    assert np.all(np.abs(x.mean(1).numpy() - np.array(MEANS)[:, 0]) <= Z * np.sqrt(np.array(VARIANCES)[:, 0] / n))


def test_sample_ignores_labels_and_is_reproducible():
    model = mixture(WEIGHTS, MEANS, VARIANCES)
    labels = torch.ones(2, 6, dtype=torch.int64)
    a = model.sample(6, generator=torch.Generator().manual_seed(5))
    b = model.sample(6, labels=labels, generator=torch.Generator().manual_seed(5))
    c = model.sample(6, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.testing.assert_close(model.rsample(6, generator=torch.Generator().manual_seed(5)), a)


def test_rsample_gradients_follow_the_reparameterisation():
    """x = mu[c] + sqrt(v[c]) z: d sum(x) / d mu_k = #{c = k}, d sum(x) / d v_k = sum_{c=k} z / (2 sqrt v_k)."""
    model = mixture(WEIGHTS, MEANS, VARIANCES)
    n = 64
    generator = torch.Generator().manual_seed(7)
    components = model.draw_components(n, generator=generator)
    z = torch.randn(2, n, 2, generator=generator, dtype=torch.float64)
    x = model.rsample(n, generator=torch.Generator().manual_seed(7))
    d_weights, d_means, d_variances = torch.autograd.grad(x.sum(), [model.weights, model.means, model.variances], allow_unused=True)
    onehot = torch.nn.functional.one_hot(components, 2).double()  # (R, n, K)
    torch.testing.assert_close(d_means, onehot.sum(1)[..., None].expand(-1, -1, 2))
    expected = torch.einsum("rnk,rnd->rkd", onehot, z) / (2 * model.variances.detach().sqrt())
    torch.testing.assert_close(d_variances, expected)
    assert d_weights is None or bool((d_weights == 0).all())  # discrete draws carry no gradient


def test_generated_weights_of_another_replicate_count():
    """Every method reads R from the parameters, so a per-replicate hypernetwork's weights for
    5 sets work in a target built with one replicate."""
    target = GaussianMixtureModel(2, 1, replicates=1)
    hnet = HyperNetwork(target, sample_shape=(1,), per_replicate=True, positive={"weights": "softmax", "variances": "softplus"}, hidden=8)
    x = torch.randn(5, 10, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = hnet(x)
    assert hnet.run(weights, "sample", 3, generator=torch.Generator().manual_seed(1)).shape == (5, 3, 1)
    assert hnet.run(weights, "loss", x).shape == (5, 10)
    torch.testing.assert_close(weights["weights"].sum(1), torch.ones(5, dtype=torch.float64))


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="num_components must be a positive integer, got 0"):
        GaussianMixtureModel(0)
    with pytest.raises(ConfigError, match="dim must be a positive integer, got -1"):
        GaussianMixtureModel(2, -1)


# ------------------------------------------------------------------------------ Monte-Carlo KL
def test_kl_of_a_distribution_with_itself_is_zero():
    truth = mixture([WEIGHTS[0]], [MEANS[0]], [VARIANCES[0]])
    kl = monte_carlo_kl(truth, truth, samples=1000, generator=torch.Generator().manual_seed(0))
    assert kl.value.shape == (1,) and kl.value.item() == 0.0 and kl.se.item() == 0.0


def test_kl_between_gaussians_matches_the_closed_form():
    """KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2."""
    truth = mixture([[1.0]], [[[0.0]]], [[[1.0]]])
    model = mixture([[1.0], [1.0], [1.0]], [[[1.0]], [[0.0]], [[-0.5]]], [[[2.0]], [[0.5]], [[1.0]]])
    kl = monte_carlo_kl(truth, model, samples=100_000, generator=torch.Generator().manual_seed(1), chunk=7_000)
    m2, v2 = model.means[:, 0, 0].detach(), model.variances[:, 0, 0].detach()
    exact = 0.5 * torch.log(v2) + (1.0 + m2**2) / (2 * v2) - 0.5
    assert torch.all((kl.value - exact).abs() <= Z * kl.se)
    assert torch.all(kl.se < 0.01)


def test_kl_rejects_a_replicated_truth():
    truth = mixture(WEIGHTS, MEANS, VARIANCES)
    with pytest.raises(ConfigError, match="replicates == 1"):
        monte_carlo_kl(truth, truth, samples=10)
