"""The VAE beyond the shared contract: its loss against torch.distributions, training, errors."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Categorical, Normal, kl_divergence
from torch.nn.functional import conv2d, one_hot

from _fixtures import digits as _digits
from genfair.errors import ConfigError
from genfair.models import VAE, VAEConfig, build_model


@pytest.mark.parametrize("architecture, sample_shape", [("mlp", (64,)), ("conv", (1, 8, 8))])
def test_loss_is_the_negative_elbo_of_the_joint(architecture, sample_shape):
    """-log N(x; mu(z, y), sigma^2) + KL(q(z|x,y) || N(0, I)) - log p(y), with z from the same draw."""
    torch.manual_seed(0)
    vae = VAE(sample_shape=sample_shape, hidden=(16,), latent_dim=3, num_classes=10, architecture=architecture).eval()
    with torch.no_grad():
        vae.class_logits.copy_(torch.randn(10))
    x, y = _digits(8)
    loss = vae.loss(x.reshape(1, 8, *sample_shape), y, generator=torch.Generator().manual_seed(1))
    inputs = torch.cat([x[0], torch.nn.functional.one_hot(y[0], 10).float()], -1)
    mean, log_var = vae.encoder(inputs).chunk(2, -1)
    q = Normal(mean, (0.5 * log_var).exp())
    z = mean + q.scale * torch.randn(mean.shape, generator=torch.Generator().manual_seed(1))
    decoded = vae.decoder(torch.cat([z, torch.nn.functional.one_hot(y[0], 10).float()], -1))
    expected = (
        -Normal(decoded, vae.scale()).log_prob(x[0]).sum(-1)
        + kl_divergence(q, Normal(torch.zeros_like(mean), torch.ones_like(mean))).sum(-1)
        - Categorical(logits=vae.class_logits).log_prob(y[0])
    )
    torch.testing.assert_close(loss, expected[None])


def test_unconditional_vae_ignores_labels():
    vae = VAE(sample_shape=(2, 3), hidden=(8,), latent_dim=2)
    x = torch.rand(1, 5, 2, 3)
    a = vae.loss(x, generator=torch.Generator().manual_seed(0))
    b = vae.loss(x, torch.full((1, 5), 7), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and vae.sample(3).shape == (1, 3, 2, 3)


def test_training_on_digits_lowers_the_loss_and_moves_the_class_shares():
    torch.manual_seed(0)
    x, y = _digits(300)
    y = torch.where(y < 5, torch.zeros_like(y), torch.ones_like(y))  # two classes
    y[0, :200] = 0  # shares about 0.8 / 0.2
    vae = VAE(sample_shape=(64,), hidden=(64,), latent_dim=4, batch_norm=True, num_classes=2)
    optimiser = torch.optim.Adam(vae.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    first = vae.loss(x, y, generator=generator).mean().item()
    for _ in range(300):
        optimiser.zero_grad()
        vae.loss(x, y, generator=generator).mean().backward()
        optimiser.step()
    assert vae.loss(x, y, generator=generator).mean().item() < first - 40  # nats per sample
    # the class shares move to the data's: d mean loss / d logits = softmax(logits) - empirical shares
    vae.zero_grad()
    vae.loss(x, y).mean().backward()
    empirical = torch.stack([(y == 0).float().mean(), (y == 1).float().mean()])
    torch.testing.assert_close(vae.class_logits.grad, vae.class_logits.softmax(-1).detach() - empirical)
    assert vae.class_logits.softmax(-1)[1] < 0.5  # on its way from 0.5 to 0.17


def test_scale_has_a_floor():
    vae = VAE(sample_shape=(4,), hidden=(8,), latent_dim=2, min_scale=0.05)
    with torch.no_grad():
        vae.raw_scale.fill_(-50.0)
    assert torch.allclose(vae.scale(), torch.full((4,), 0.05))
    assert torch.isfinite(vae.loss(torch.zeros(1, 3, 4))).all()


def test_rsample_differentiates_into_the_decoder():
    vae = VAE(sample_shape=(4,), hidden=(8,), latent_dim=2, num_classes=3)
    x = vae.rsample(5, labels=torch.tensor([[0, 1, 2, 1, 0]]), generator=torch.Generator().manual_seed(0))
    x.square().sum().backward()
    assert vae.decoder[0].weight.grad.abs().sum() > 0 and vae.raw_scale.grad.abs().sum() > 0
    assert vae.encoder[0].weight.grad is None  # sampling does not use the encoder


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sample_shape": ()}, r"sample_shape must be a non-empty tuple of positive integers, got \(\)"),
        ({"hidden": (8, 0)}, r"hidden must be a non-empty tuple of positive integers, got \(8, 0\)"),
        ({"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
        ({"batch_norm": 1}, "batch_norm must be True or False, got 1"),
        ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
        ({"architecture": "resnet"}, r"architecture must be one of \['mlp', 'conv'\], got 'resnet'"),
        (
            {"architecture": "conv"},
            r"sample_shape must be \(channels, height, width\) for architecture='conv', got \(4,\)",
        ),
        (
            {"architecture": "conv", "sample_shape": (1, 8, 6), "hidden": (4, 4)},
            r"sample_shape height and width must be divisible by 2 \*\* len\(hidden\) = 4 for architecture='conv' "
            r"\(each of the 2 hidden layers halves them\), got \(1, 8, 6\)",
        ),
        ({"min_scale": 0.0}, "min_scale must be a number > 0, got 0.0"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"sample_shape": (4,), **kwargs}
    with pytest.raises(ConfigError, match=message):
        VAE(**arguments)


def test_bad_data_and_labels_are_named():
    vae = VAE(sample_shape=(4,), hidden=(8,), latent_dim=2, num_classes=3)
    with pytest.raises(ConfigError, match=r"x must have shape \(1, n, 4\) \(one replicate, n samples\), got \(2, 5, 4\)"):
        vae.loss(torch.zeros(2, 5, 4), torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(ConfigError, match=r"labels must have shape \(1, 5\), got \(5,\)"):
        vae.loss(torch.zeros(1, 5, 4), torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ConfigError, match=r"labels \(1, n\) are required: this VAE is conditional on 3 classes"):
        vae.loss(torch.zeros(1, 5, 4))
    with pytest.raises(ConfigError, match=r"labels must be integers in \[0, 3\)"):
        vae.sample(2, labels=torch.tensor([[0, 3]]))
    with pytest.raises(ConfigError, match="n must be a positive integer, got 0"):
        vae.sample(0)


def test_parameter_count_of_the_authors_mnist_shape():
    """784-1024x4 -> 32 (mean and log-variance), mirrored decoder, BatchNorm: about 8.0M."""
    vae = VAE(sample_shape=(784,), hidden=(1024,) * 4, latent_dim=32, batch_norm=True)
    linear = (784 * 1024 + 3 * 1024 * 1024 + 1024 * 64) + (32 * 1024 + 3 * 1024 * 1024 + 1024 * 784)
    biases = (4 * 1024 + 64) + (4 * 1024 + 784)
    batch_norm = 2 * 8 * 1024
    expected = linear + biases + batch_norm + 784  # + the decoder's per-pixel scale
    assert sum(p.numel() for p in vae.parameters()) == expected
    assert math.isclose(expected / 1e6, 8.0, abs_tol=0.1)


# ---------------------------------------------------------------------------------------------
# The convolutional variant


@pytest.mark.parametrize("num_classes", [None, 3])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_conv_vae_shapes(num_classes, batch_norm):
    """Non-square, several channels: loss (1, n), samples (1, n, C, H, W), rsample differentiable."""
    vae = VAE(
        sample_shape=(2, 8, 16),
        hidden=(4, 8),
        latent_dim=3,
        num_classes=num_classes,
        architecture="conv",
        batch_norm=batch_norm,
    )
    labels = torch.tensor([[0, 1, 2, 1, 0]])
    assert vae.loss(torch.rand(1, 5, 2, 8, 16), labels).shape == (1, 5)
    assert vae.sample(4, generator=torch.Generator().manual_seed(0)).shape == (1, 4, 2, 8, 16)
    x = vae.rsample(5, labels=labels, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 5, 2, 8, 16)
    x.square().sum().backward()
    assert vae.decoder.project.weight.grad.abs().sum() > 0 and vae.encoder.out.weight.grad is None
    convs = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in vae.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [4, 8] and [m.out_channels for m in deconvs] == [4, 2]
    assert convs[0].in_channels == 2 + (num_classes or 0) and all(m.stride == (2, 2) for m in convs + deconvs)
    assert vae.decoder.project.in_features == 3 + (num_classes or 0)


def test_conv_encoder_reads_the_label_as_constant_channels():
    torch.manual_seed(0)
    vae = VAE(sample_shape=(1, 8, 8), hidden=(4,), latent_dim=2, num_classes=3, architecture="conv")
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 2, 1, 1, 0])
    planes = one_hot(y, 3).float()[:, :, None, None].expand(-1, -1, 8, 8)
    first = vae.encoder.convs[0]
    hidden = torch.relu(conv2d(torch.cat([x, planes], 1), first.weight, first.bias, stride=2, padding=1))
    expected = vae.encoder.out(hidden.flatten(1))
    torch.testing.assert_close(vae.encoder(torch.cat([x.flatten(1), one_hot(y, 3).float()], 1)), expected)


def test_conv_vae_training_on_digits_lowers_the_loss():
    torch.manual_seed(0)
    x, y = _digits(200)
    vae = VAE(sample_shape=(1, 8, 8), hidden=(8, 16), latent_dim=4, num_classes=10, architecture="conv")
    images = x.reshape(1, 200, 1, 8, 8)
    optimiser = torch.optim.Adam(vae.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    first = vae.loss(images, y, generator=generator).mean().item()
    for _ in range(150):  # from ~67 to ~-2 nats; fitting the scales alone gets ~44
        optimiser.zero_grad()
        vae.loss(images, y, generator=generator).mean().backward()
        optimiser.step()
    assert vae.loss(images, y, generator=generator).mean().item() < first - 40  # nats per sample


def test_config_builds_from_omegaconf_lists():
    schema = OmegaConf.structured(VAEConfig)
    values = {"architecture": "conv", "hidden": [4, 8], "latent_dim": 3, "batch_norm": True}
    config = OmegaConf.to_object(OmegaConf.merge(schema, values))
    vae = build_model(config, sample_shape=[1, 8, 8], num_classes=10)
    assert isinstance(vae, VAE) and vae.architecture == "conv" and vae.hidden == (4, 8) and vae.num_classes == 10
    assert vae.sample_shape == (1, 8, 8) and vae.batch_norm and vae.min_scale == 0.01
    unconditional = VAEConfig(hidden=[8], conditional=False).build(sample_shape=(64,), num_classes=10)
    assert unconditional.num_classes is None and unconditional.class_logits is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "ae"}, r"name must be one of \['vae'\], got 'ae'"),
        ({"architecture": "resnet"}, r"architecture must be one of \['mlp', 'conv'\], got 'resnet'"),
        ({"hidden": []}, r"hidden must be a non-empty list of positive integers, got \[\]"),
        ({"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
        ({"batch_norm": "no"}, "batch_norm must be True or False, got 'no'"),
        ({"conditional": 1}, "conditional must be True or False, got 1"),
        ({"min_scale": -1.0}, "min_scale must be a number > 0, got -1.0"),
    ],
)
def test_bad_config_values_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VAEConfig(**kwargs)
