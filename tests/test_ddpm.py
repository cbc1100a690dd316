"""The DDPM beyond the shared contract: its loss against diffusers' forward process, sampling,
class shares, training, the hypernetwork wrap, its config and its errors. Tiny UNets throughout."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler
from omegaconf import OmegaConf

from _fixtures import digits, seeded as _seeded
from genfair.errors import ConfigError
from genfair.data import Batch
from genfair.estimators import EstimatorConfig, HypernetworkFit
from genfair.loops import FitContext
from genfair.models import DDPM, DDPMConfig, GenerativeModel, SteppedSampler, VAEConfig, build_model
from genfair.hypernets import HyperNetwork, HyperNetworkError, PLEConfig, PLEObjective, check_sample_steps

TINY = dict(block_out_channels=(8, 16), norm_num_groups=4, num_train_timesteps=50, sample_steps=4)


def _ddpm(**kwargs) -> DDPM:
    torch.manual_seed(0)
    return DDPM(**{"sample_shape": (1, 8, 8), **TINY, **kwargs})


def test_loss_is_l_simple_on_diffusers_forward_process():
    """||eps - eps_theta(x_t, t, y)||^2 summed over pixels, x_t from DDPMScheduler.add_noise on
    2 x - 1, with t then eps drawn from the generator, minus log p(y)."""
    model = _ddpm(num_classes=10, beta_schedule="squaredcos_cap_v2")
    with torch.no_grad():
        model.class_logits.copy_(torch.randn(10))
    x, y = digits(6, (1, 8, 8))
    loss = model.loss(x, y, generator=_seeded(1))
    generator = _seeded(1)
    t = torch.randint(50, (6,), generator=generator)
    eps = torch.randn(6, 1, 8, 8, generator=generator)
    scheduler = DDPMScheduler(num_train_timesteps=50, beta_schedule="squaredcos_cap_v2")
    noisy = scheduler.add_noise(2 * x[0] - 1, eps, t)
    predicted = model.unet(noisy, t, class_labels=y[0]).sample
    expected = (predicted - eps).square().sum((1, 2, 3)) - model.class_logits.log_softmax(-1)[y[0]]
    torch.testing.assert_close(loss, expected[None])


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samples_are_images_in_the_unit_interval(sampler):
    model = _ddpm(sample_shape=(3, 4, 8), sampler=sampler)
    x = model.sample(5, generator=_seeded(0))
    assert x.shape == (1, 5, 3, 4, 8) and x.min() >= 0 and x.max() <= 1
    assert model.loss(torch.rand(1, 7, 3, 4, 8)).shape == (1, 7)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_sampling_and_loss_are_reproducible_and_share_no_state(sampler):
    model = _ddpm(num_classes=3, sampler=sampler)
    labels = torch.tensor([[0, 1, 2, 1]])
    first = model.sample(4, labels=labels, generator=_seeded(2))
    model.sample(9, generator=_seeded(7))  # a call in between leaves nothing behind
    assert torch.equal(model.sample(4, labels=labels, generator=_seeded(2)), first)
    assert not torch.equal(model.sample(4, labels=labels, generator=_seeded(3)), first)
    x, y = digits(5, (1, 8, 8))
    assert torch.equal(model.loss(x, y % 3, generator=_seeded(4)), model.loss(x, y % 3, generator=_seeded(4)))
    assert not torch.equal(model.loss(x, y % 3, generator=_seeded(4)), model.loss(x, y % 3, generator=_seeded(5)))


def test_ancestral_sampler_draws_its_noise_from_the_generator():
    """DDPM steps add noise, DDIM (eta = 0) steps do not: from the same x_T they differ, and each
    is fixed by the generator alone (the global RNG is not used)."""
    ddim, ddpm = _ddpm(sampler="ddim"), _ddpm(sampler="ddpm")
    torch.manual_seed(123)
    a = ddpm.sample(3, generator=_seeded(0))
    torch.manual_seed(456)
    assert torch.equal(ddpm.sample(3, generator=_seeded(0)), a)
    assert not torch.equal(ddim.sample(3, generator=_seeded(0)), a)


def test_labels_reach_the_unet_and_unlabelled_samples_follow_the_class_shares():
    model = _ddpm(num_classes=3, sample_steps=1)
    seen: list[torch.Tensor] = []
    model.unet.class_embedding.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    labels = torch.tensor([[2, 0, 1, 1]])
    model.sample(4, labels=labels, generator=_seeded(0))
    assert torch.equal(seen[-1], labels[0])
    shares = torch.tensor([0.7, 0.2, 0.1])
    with torch.no_grad():
        model.class_logits.copy_(shares.log())
    n = 4000
    model.sample(n, generator=_seeded(1))
    counts = torch.bincount(seen[-1], minlength=3) / n
    tolerance = 6 * (shares * (1 - shares) / n).sqrt()  # six binomial standard deviations
    assert ((counts - shares).abs() < tolerance).all(), counts


def test_conditional_loss_adds_minus_log_class_share():
    model = _ddpm(num_classes=3)
    x, y = digits(6, (1, 8, 8))
    y = y % 3
    uniform = model.loss(x, y, generator=_seeded(0))
    logits = torch.tensor([1.0, -2.0, 0.5])
    with torch.no_grad():
        model.class_logits.copy_(logits)
    shifted = model.loss(x, y, generator=_seeded(0))
    expected = uniform + torch.log(torch.tensor(1 / 3)) - logits.log_softmax(-1)[y[0]]
    torch.testing.assert_close(shifted, expected)


def test_training_lowers_the_loss_and_moves_the_class_shares():
    torch.manual_seed(0)
    x, y = digits(32, (1, 8, 8))
    y = (y >= 8).long()  # two classes, shares 0.84 / 0.16 in the first 32 digits
    model = _ddpm(num_classes=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)

    def evaluate() -> float:  # the same t and eps each time, four draws per image
        return model.loss(x.repeat(1, 4, 1, 1, 1), y.repeat(1, 4), generator=_seeded(99)).mean().item()

    before = evaluate()
    generator = _seeded(1)
    for _ in range(100):  # ~3 s on one thread; the loss falls from ~70 to ~28
        optimiser.zero_grad()
        model.loss(x, y, generator=generator).mean().backward()
        optimiser.step()
    assert evaluate() < 0.5 * before
    assert model.class_logits.softmax(-1)[1] < 0.4  # on its way from 0.5 to 0.16


def test_a_hypernetwork_wraps_the_ddpm():
    model = _ddpm(num_classes=10)
    x, y = digits(20, (1, 8, 8))
    hnet = HyperNetwork(model, sample_shape=(1, 8, 8), num_classes=10, hidden=16, embedding_dim=8)
    weights = hnet(x[0], y[0])
    assert list(weights) == [name for name, _ in model.named_parameters()]
    loss = hnet.run(weights, "loss", x, y, generator=_seeded(0))
    torch.testing.assert_close(loss, model.loss(x, y, generator=_seeded(0)))  # a fresh residual wrap
    loss.mean().backward()
    assert all(p.grad is None for p in model.parameters())
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in hnet.parameters())
    bound = hnet.bind(weights)
    assert isinstance(bound, GenerativeModel)
    assert torch.equal(bound.sample(3, generator=_seeded(1)), model.sample(3, generator=_seeded(1)))


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_a_call_chooses_its_reverse_steps(sampler):
    """``steps`` overrides ``sample_steps`` for one call (SteppedSampler), ``None`` keeps it; the
    UNet runs once per step."""
    model = _ddpm(num_classes=2, sampler=sampler)
    assert isinstance(model, SteppedSampler) and model.max_sample_steps == 50
    assert torch.equal(model.sample(3, generator=_seeded(0), steps=None), model.sample(3, generator=_seeded(0)))
    calls = _count_unet_calls(model)
    model.sample(3, generator=_seeded(0), steps=2)
    assert calls == [2]
    assert not torch.equal(model.sample(3, generator=_seeded(0), steps=2), model.sample(3, generator=_seeded(0)))


@pytest.mark.parametrize("steps, message", [(0, "steps must be a positive integer, got 0"),
                                            (51, "steps must be at most num_train_timesteps=50, got 51")])
def test_bad_steps_of_a_call_are_named(steps, message):
    with pytest.raises(ConfigError, match=message):
        _ddpm().sample(3, steps=steps)


@pytest.mark.parametrize("lam", [0.1, 0.0])
def test_ple_draws_its_own_samples_in_the_configured_steps(lam):
    """PLEObjective.sets with ``sample_steps=2`` runs the UNet once per set for the loss and twice
    per set for Y (the model's own 4 without it); hyper_mle (lam = 0) draws no Y."""
    model = _ddpm(num_classes=2)
    hnet = HyperNetwork(model, sample_shape=(1, 8, 8), num_classes=2, hidden=16, embedding_dim=8)
    x, y = digits(10, (1, 8, 8))
    sets = x[0].reshape(2, 5, 1, 8, 8), (y[0] % 2).reshape(2, 5)
    counts = []
    for steps in (2, None):
        calls = _count_unet_calls(model)
        PLEObjective(PLEConfig(lam=lam, sample_steps=steps)).sets(hnet, *sets, generator=_seeded(0), vectorise=False)
        counts.append(calls[0])
    assert counts == ([2 + 2 * 2, 2 + 2 * 4] if lam else [2, 2])


def test_own_samples_in_steps_the_sampler_does_not_take_are_refused_before_any_work():
    model = _ddpm(num_classes=2)
    fit = HypernetworkFit(EstimatorConfig(name="ple", steps=1, sets_per_step=2, ple={"sample_steps": 51}), sample_shape=(1, 8, 8),
                          num_classes=2, positive={}, per_replicate=False)
    x, y = digits(20, (1, 8, 8))
    calls = _count_unet_calls(model)
    with pytest.raises(ConfigError, match=r"sample_steps=51: DDPM's sampler takes at most 50 steps; allowed: 1 to 50, or None"):
        fit(model, Batch(x, y % 2), _seeded(0), FitContext(0, None))
    assert calls == [0]
    vae = VAEConfig(hidden=[8], latent_dim=2).build(sample_shape=(1, 8, 8), num_classes=2)
    with pytest.raises(HyperNetworkError, match=r"sample_steps=2: VAE does not choose its sampler's steps .*allowed: sample_steps=None"):
        check_sample_steps(vae, 2)
    with pytest.raises(ConfigError, match="ple.sample_steps must be a positive integer, got 0"):
        EstimatorConfig(name="ple", ple={"sample_steps": 0})


def _count_unet_calls(model: DDPM) -> list[int]:
    """A one-element list counting the UNet's forward calls from now on (a forward pre-hook;
    it sees calls under functional_call too)."""
    calls = [0]
    model.unet.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_config_builds_from_omegaconf_lists():
    schema = OmegaConf.structured(DDPMConfig)
    values = {"block_out_channels": [8, 16, 16], "norm_num_groups": 4, "sample_steps": 5, "sampler": "ddpm"}
    config = OmegaConf.to_object(OmegaConf.merge(schema, values))
    model = build_model(config, sample_shape=[1, 8, 8], num_classes=4)
    assert isinstance(model, DDPM) and model.block_out_channels == (8, 16, 16) and model.num_classes == 4
    assert model.sampler == "ddpm" and model.sample_steps == 5 and model.num_train_timesteps == 1000
    unconditional = DDPMConfig(block_out_channels=[8], norm_num_groups=4, conditional=False)
    assert unconditional.build(sample_shape=(1, 4, 4), num_classes=4).class_logits is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sample_shape": (64,)}, r"sample_shape must be \(channels, height, width\), got \(64,\)"),
        ({"block_out_channels": ()}, r"block_out_channels must be a non-empty tuple of positive integers, got \(\)"),
        (
            {"block_out_channels": (8, 10)},
            r"block_out_channels must all be divisible by norm_num_groups=4, got \[8, 10\] \(\[10\] are not\)",
        ),
        (
            {"block_out_channels": (8, 8, 8, 8), "sample_shape": (1, 4, 4)},
            r"sample_shape height and width must be divisible by 2 \*\* \(len\(block_out_channels\) - 1\) = 8",
        ),
        ({"layers_per_block": 0}, "layers_per_block must be a positive integer, got 0"),
        ({"norm_num_groups": 0}, "norm_num_groups must be a positive integer, got 0"),
        ({"num_classes": 0}, "num_classes must be a positive integer, got 0"),
        ({"num_train_timesteps": 1}, "num_train_timesteps must be an integer >= 2, got 1"),
        (
            {"beta_schedule": "cosine"},
            r"beta_schedule must be one of \['linear', 'scaled_linear', 'squaredcos_cap_v2'\], got 'cosine'",
        ),
        ({"sampler": "euler"}, r"sampler must be one of \['ddpm', 'ddim'\], got 'euler'"),
        ({"sample_steps": 0}, "sample_steps must be a positive integer, got 0"),
        ({"sample_steps": 51}, "sample_steps must be at most num_train_timesteps=50, got 51"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DDPM(**{"sample_shape": (1, 8, 8), **TINY, **kwargs})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "unet"}, r"name must be one of \['ddpm'\], got 'unet'"),
        ({"block_out_channels": [32, 0]}, r"block_out_channels must be a non-empty list of positive integers"),
        ({"block_out_channels": [32, 60]}, r"block_out_channels must all be divisible by norm_num_groups=8"),
        ({"layers_per_block": 0}, "layers_per_block must be a positive integer, got 0"),
        ({"conditional": "yes"}, "conditional must be True or False, got 'yes'"),
        ({"num_train_timesteps": 0}, "num_train_timesteps must be an integer >= 2, got 0"),
        (
            {"beta_schedule": "cosine"},
            r"beta_schedule must be one of \['linear', 'scaled_linear', 'squaredcos_cap_v2'\], got 'cosine'",
        ),
        ({"sampler": "euler"}, r"sampler must be one of \['ddpm', 'ddim'\], got 'euler'"),
        ({"sample_steps": 2000}, "sample_steps must be at most num_train_timesteps=1000, got 2000"),
    ],
)
def test_bad_config_values_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DDPMConfig(**kwargs)


def test_bad_data_and_labels_are_named():
    model = _ddpm(num_classes=3)
    message = r"x must have shape \(1, n, 1, 8, 8\) \(one replicate, n samples\), got \(5, 1, 8, 8\)"
    with pytest.raises(ConfigError, match=message):
        model.loss(torch.zeros(5, 1, 8, 8), torch.zeros(1, 5, dtype=torch.int64))
    with pytest.raises(ConfigError, match=r"labels \(1, n\) are required: this DDPM is conditional on 3 classes"):
        model.loss(torch.zeros(1, 5, 1, 8, 8))
    with pytest.raises(ConfigError, match=r"labels must be integers in \[0, 3\)"):
        model.sample(2, labels=torch.tensor([[0, 3]]))
    with pytest.raises(ConfigError, match=r"labels must have shape \(1, 2\), got \(2,\)"):
        model.sample(2, labels=torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="n must be a positive integer, got 0"):
        model.sample(0)
