"""HyperNetwork wraps any target: genfair's models, diffusers' UNet2DModel and AutoencoderKL,
BatchNorm and GroupNorm nets, tied weights and parametrizations (issue: "Built automatically from
``target.named_parameters()`` for any ``torch.nn.Module``").

Every target is checked for: exact shapes; a fresh residual wrap reproducing the unwrapped model;
gradients reaching the hypernetwork and not the target, through ``functional_call`` and ``run``;
permutation invariance; batched sets; the output scale ``1 / sqrt(fan_in)`` of a non-residual wrap.
Then: include/exclude, positivity, buffer policies, heads, errors and size.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DModel
from scipy.stats import chi2
from torch import nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import orthogonal, weight_norm

from _fixtures import digits, seeded as _seeded
from genfair.models import VAE, ClassGaussianModel
from genfair.hypernets import (
    ChunkedHead,
    HyperNetwork,
    HyperNetworkError,
    PLEConfig,
    input_sensitivity,
    predict_weights,
    weight_discrepancy,
)


@dataclass
class Target:
    """A target, a data set ``x (n, *sample_shape)`` (``(R, n, ...)`` per replicate) with labels,
    the HyperNetwork options it needs, and the method call that is compared and differentiated:
    ``method(*args(x, labels), **kwargs())``, its output reduced to one tensor by ``out``."""

    build: Callable[[], nn.Module]
    data: Callable[[], tuple[torch.Tensor, torch.Tensor | None]]
    options: dict[str, Any] = field(default_factory=dict)
    method: str = "forward"
    args: Callable[..., tuple] = lambda x, labels: (x,)
    kwargs: Callable[[], dict[str, Any]] = dict
    out: Callable[[Any], torch.Tensor] = lambda y: y
    differentiable: tuple[str, ...] = ("forward",)  # methods whose output carries gradients


def _class_gaussian() -> nn.Module:
    """Three replicates fitted on the same data (so the residual base, their mean, is each one)."""
    x, labels = _class_gaussian_data()
    model = ClassGaussianModel(2, 2, replicates=3, estimator="unbiased")
    model.fit(x[:1].expand(3, -1, -1), labels[:1].expand(3, -1))
    return model


def _class_gaussian_data() -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(30).remainder(2)[None].expand(3, -1).contiguous()
    x = torch.randn(3, 30, 2, generator=_seeded(1), dtype=torch.float64) + 3.0 * labels[..., None]
    return x, labels


def _digits(n: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits(n)
    return x[0], y[0]


def _vae() -> nn.Module:
    return VAE(sample_shape=(64,), hidden=(32, 32), latent_dim=4, batch_norm=True, num_classes=10)


def _unet() -> nn.Module:
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64),
        norm_num_groups=8,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    )


def _autoencoder() -> nn.Module:
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=2,
        norm_num_groups=4,
        sample_size=8,
        layers_per_block=1,
    )


class Tied(nn.Module):
    """One Parameter at two names: ``b.weight`` is ``a.weight``."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(5, 5), nn.Linear(5, 5)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


def _parametrized() -> nn.Module:
    return nn.Sequential(weight_norm(nn.Linear(5, 6)), nn.Tanh(), orthogonal(nn.Linear(6, 6)))


def _images(n: int = 12) -> tuple[torch.Tensor, None]:
    return torch.randn(n, 1, 8, 8, generator=_seeded(2)), None


def _vectors(n: int = 20, d: int = 5) -> tuple[torch.Tensor, None]:
    return torch.randn(n, d, generator=_seeded(3)), None


TARGETS: dict[str, Target] = {
    "class_gaussian": Target(
        _class_gaussian,
        _class_gaussian_data,
        options=dict(per_replicate=True, num_classes=2, positive={"shares": "softmax"}),
        method="loss",
        args=lambda x, labels: (x, labels),
        differentiable=("loss", "rsample"),
    ),
    "vae": Target(
        _vae,
        _digits,
        options=dict(num_classes=10),
        method="loss",
        args=lambda x, labels: (x[None], labels[None]),
        kwargs=lambda: {"generator": _seeded(4)},
        differentiable=("loss", "rsample"),
    ),
    "mlp_batchnorm": Target(
        lambda: nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5)), _vectors
    ),
    "conv_groupnorm": Target(
        lambda: nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.SiLU(), nn.Conv2d(8, 1, 3, padding=1)),
        _images,
    ),
    "unet": Target(
        _unet, _images, args=lambda x, labels: (x, torch.arange(len(x)) * 50), out=lambda y: y.sample
    ),
    "autoencoder_kl": Target(
        _autoencoder,
        _images,
        kwargs=lambda: {"sample_posterior": False},
        out=lambda y: y.sample,
        differentiable=("forward", "decode"),
    ),
    "tied": Target(Tied, _vectors),
    "parametrized": Target(_parametrized, _vectors),
}


def _wrap(name: str, **options: Any) -> tuple[nn.Module, HyperNetwork, torch.Tensor, torch.Tensor | None]:
    spec = TARGETS[name]
    torch.manual_seed(0)
    target = spec.build()
    hnet = HyperNetwork(target, sample_shape=_sample_shape(name), hidden=16, embedding_dim=8, **{**spec.options, **options})
    return target, hnet, *spec.data()


def _sample_shape(name: str) -> tuple[int, ...]:
    x, _ = TARGETS[name].data()
    return tuple(x.shape[2:] if TARGETS[name].options.get("per_replicate") else x.shape[1:])


def _call(name: str, run: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``run(method, *args, **kwargs)`` of the target's spec, reduced to one tensor."""
    spec = TARGETS[name]
    return spec.out(run(spec.method, *spec.args(x, labels), **spec.kwargs()))


def _hnet_grads(hnet: HyperNetwork) -> dict[str, torch.Tensor]:
    return {n: p.grad for n, p in hnet.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}


# ---------------------------------------------------------------------------------------------
# Every target


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("head", ["chunked", "dense"])
def test_weights_have_exactly_the_parameters_shapes(name, head):
    target, hnet, x, labels = _wrap(name, head=head)
    weights = hnet(x, labels)
    params = dict(target.named_parameters())
    assert list(weights) == list(params) == list(hnet.generated)
    replicates = x.shape[:1] if hnet.per_replicate else ()
    for key, value in weights.items():
        expected = params[key].shape if hnet.per_replicate else (*replicates, *params[key].shape)
        assert value.shape == expected, key
        assert value.dtype == params[key].dtype


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fresh_residual_wrap_is_the_unwrapped_model(name):
    target, hnet, x, labels = _wrap(name)
    weights = hnet(x, labels)
    reference = copy.deepcopy(target)  # BatchNorm in training mode writes its running statistics
    expected = _call(name, lambda method, *a, **k: getattr(reference, method)(*a, **k), x, labels)
    through_run = _call(name, lambda method, *a, **k: hnet.run(weights, method, *a, **k), x, labels)
    torch.testing.assert_close(through_run, expected)
    spec = TARGETS[name]
    if spec.method == "forward":
        direct = spec.out(functional_call(copy.deepcopy(target), weights, spec.args(x, labels), spec.kwargs()))
        torch.testing.assert_close(direct, expected)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_gradients_reach_the_hypernetwork_and_not_the_target(name):
    spec = TARGETS[name]
    outright = name != "class_gaussian"  # generated outright, covariances would not be positive definite
    target, hnet, x, labels = _wrap(name, residual=not outright)
    calls: list[Callable[[], torch.Tensor]] = []
    if spec.method == "forward":
        calls.append(lambda: spec.out(functional_call(target, hnet(x, labels), spec.args(x, labels), spec.kwargs())))
    calls.append(lambda: _call(name, lambda m, *a, **k: hnet.run(hnet(x, labels), m, *a, **k), x, labels))
    if "rsample" in spec.differentiable:
        calls.append(lambda: hnet.run(hnet(x, labels), "rsample", 7, generator=_seeded(5)))
    if "decode" in spec.differentiable:
        calls.append(lambda: hnet.run(hnet(x, labels), "decode", torch.randn(3, 2, 4, 4)).sample)
    for call in calls:
        hnet.zero_grad()
        call().square().mean().backward()
        assert all(p.grad is None for p in target.parameters())
        grads = _hnet_grads(hnet)
        assert "head.out.weight" in grads or any(k.startswith("head.heads") for k in grads)
        if outright:  # the encoder learns from the first step (a residual head starts at zero)
            assert any(k.startswith("encoder.") for k in grads)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_weights_are_invariant_to_the_order_of_the_set(name):
    _, hnet, x, labels = _wrap(name, residual=False)
    dim = 1 if hnet.per_replicate else 0
    order = torch.randperm(x.shape[dim], generator=_seeded(6))
    permuted = x.index_select(dim, order)
    permuted_labels = None if labels is None else labels.index_select(dim, order)
    first, second = hnet(x, labels), hnet(permuted, permuted_labels)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(first[k], hnet(x * 2, labels)[k]) for k in first)  # it does read the data


@pytest.mark.parametrize("name", sorted(set(TARGETS) - {"class_gaussian"}))
def test_stacked_sets_give_stacked_weights(name):
    _, hnet, x, labels = _wrap(name, residual=False)
    sets = torch.stack([x, x.flip(0) * 0.5, x + 1.0])  # (B = 3, n, *sample_shape)
    set_labels = None if labels is None else torch.stack([labels, labels.flip(0), labels])
    batched = hnet(sets, set_labels)
    for key, value in batched.items():
        assert value.shape == (3, *dict(hnet.target.named_parameters())[key].shape)
    for b in range(3):
        single = hnet(sets[b], None if set_labels is None else set_labels[b])
        for key in single:
            torch.testing.assert_close(batched[key][b], single[key], rtol=1e-5, atol=1e-6)


def _fan_in(name: str, params: dict[str, torch.Tensor], per_replicate: bool) -> int:
    """Fan-in of a matrix or kernel; for a vector, that of its module's ``weight`` (else 1)."""
    shape = params[name].shape[1:] if per_replicate else params[name].shape
    if len(shape) < 2:
        sibling = params.get(name.rsplit(".", 1)[0] + ".weight") if "." in name else None
        shape = () if sibling is None else (sibling.shape[1:] if per_replicate else sibling.shape)
    return shape[1] * math.prod(shape[2:]) if len(shape) >= 2 else 1


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("head", ["chunked", "dense"])
def test_generated_weights_start_at_their_fan_in_scale(name, head):
    """Mean square of each generated tensor ~ 1 / fan_in.

    Over the head's random output layer, a tensor's m values are independent N(0, 1 / fan_in)
    for the dense head, so m * fan_in * mean square ~ chi2(m). The chunked head reuses its
    ``chunk_size`` output rows from chunk to chunk: at most ``chunk_size`` values are independent,
    and chi2(min(m, chunk_size)) bounds the spread. Accepted: the central 1 - 1e-6 of that law.
    """
    target, hnet, x, labels = _wrap(name, head=head, residual=False, positive={})
    params = dict(target.named_parameters())
    weights = hnet(x, labels)
    for key, value in weights.items():
        values = value.detach().reshape(-1)
        m = values.numel() if head == "dense" else min(values.numel(), hnet.head.chunk_size)
        ratio = values.double().square().mean().item() * _fan_in(key, params, hnet.per_replicate)
        low, high = chi2.ppf([0.5e-6, 1 - 0.5e-6], m) / m
        assert low <= ratio <= high, (key, ratio, m)


# ---------------------------------------------------------------------------------------------
# Tied weights and parametrizations


def test_tied_weights_are_generated_once_and_used_at_both_names():
    target, hnet, x, _ = _wrap("tied", residual=False)
    weights = hnet(x)
    assert "b.weight" not in weights and "a.weight" in weights
    w = weights["a.weight"]
    expected = nn.functional.linear(torch.tanh(nn.functional.linear(x, w, weights["a.bias"])), w, weights["b.bias"])
    torch.testing.assert_close(functional_call(target, weights, (x,)), expected)
    torch.testing.assert_close(hnet.run(weights, "forward", x), expected)


def test_parametrizations_apply_to_generated_tensors():
    target, hnet, x, _ = _wrap("parametrized", residual=False)
    weights = hnet(x)
    assert "0.parametrizations.weight.original0" in weights and "2.parametrizations.weight.original" in weights
    # weight_norm: weight = g * v / ||v|| (row norms), from the generated g and v
    g, v = weights["0.parametrizations.weight.original0"], weights["0.parametrizations.weight.original1"]
    first = nn.functional.linear(x, g * v / v.norm(dim=1, keepdim=True), weights["0.bias"])
    hidden = functional_call(target[0], {k[2:]: w for k, w in weights.items() if k.startswith("0.")}, (x,))
    torch.testing.assert_close(hidden, first)
    # orthogonal: the layer's matrix, read off the identity, is orthogonal
    layer = {k[2:]: w for k, w in weights.items() if k.startswith("2.")}
    matrix = (functional_call(target[2], layer, (torch.eye(6),)) - layer["bias"]).T
    torch.testing.assert_close(matrix @ matrix.T, torch.eye(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(functional_call(target, weights, (x,)), torch.tanh(first) @ matrix.T + layer["bias"])


# ---------------------------------------------------------------------------------------------
# Include / exclude and positivity


def test_include_exclude_keep_the_other_tensors_the_targets_own():
    target, hnet, x, _ = _wrap("mlp_batchnorm", include=["*.weight"], exclude=["1.*"])
    assert hnet.generated == ("0.weight", "3.weight")
    assert hnet.kept == ("0.bias", "1.weight", "1.bias", "3.bias")
    weights = hnet(x)
    out = functional_call(target, weights, (x,))
    out.square().mean().backward()
    params = dict(target.named_parameters())
    assert all(params[k].grad is not None for k in hnet.kept)  # kept tensors stay trainable in the target
    assert all(params[k].grad is None for k in hnet.generated)
    with torch.no_grad():
        params["3.bias"].add_(1.0)
    torch.testing.assert_close(functional_call(target, weights, (x,)), out.detach() + 1.0)


class Positive(nn.Module):
    """A scale that must be > 0 and rows of probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.rand(7, generator=_seeded(7)) + 0.1)
        self.probs = nn.Parameter(torch.rand(3, 4, generator=_seeded(8)).softmax(-1))
        self.rate = nn.Parameter(torch.rand(5, generator=_seeded(9)) * 3 + 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum() * self.scale.sum() + self.probs.sum() + self.rate.sum()


POSITIVE = {"scale": "softplus", "probs": "softmax", "rate": "exp"}


@pytest.mark.parametrize("head", ["chunked", "dense"])
def test_positivity_outputs_are_valid(head):
    hnet = HyperNetwork(Positive(), sample_shape=(3,), residual=False, positive=POSITIVE, head=head)
    weights = hnet(torch.randn(4, 10, 3, generator=_seeded(10)) * 5)  # 4 sets
    assert (weights["scale"] > 0).all() and (weights["rate"] > 0).all() and (weights["probs"] > 0).all()
    torch.testing.assert_close(weights["probs"].sum(-1), torch.ones(4, 3))


def test_residual_base_inverts_the_positivity_transforms():
    target = Positive()
    hnet = HyperNetwork(target, sample_shape=(3,), positive=POSITIVE)
    weights = hnet(torch.randn(10, 3, generator=_seeded(11)))
    for key, value in target.named_parameters():
        torch.testing.assert_close(weights[key], value.detach(), rtol=1e-5, atol=1e-6)


def test_positivity_of_a_nonpositive_tensor_is_refused():
    target = Positive()
    with torch.no_grad():
        target.scale[0] = -1.0
    with pytest.raises(HyperNetworkError, match=r"positive\['scale'\]='softplus' needs the target's scale to be > 0"):
        HyperNetwork(target, sample_shape=(3,), positive=POSITIVE)


# ---------------------------------------------------------------------------------------------
# Buffers: the three policies


def _batchnorm_target() -> nn.Module:
    torch.manual_seed(0)
    target = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5))
    with torch.no_grad():  # running statistics far from any batch's, so reading them shows
        target[1].running_mean.fill_(3.0)
        target[1].running_var.fill_(9.0)
    return target


def _buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: b.clone() for k, b in module.named_buffers()}


@pytest.mark.parametrize("training", [True, False])
def test_batch_policy_neither_reads_nor_writes_running_statistics(training):
    target = _batchnorm_target().train(training)
    hnet = HyperNetwork(target, sample_shape=(5,), buffers="batch")
    x, _ = _vectors()
    before = _buffers(target)
    out = hnet.run(hnet(x), "forward", x)
    assert all(torch.equal(before[k], b) for k, b in target.named_buffers())  # not written
    torch.testing.assert_close(out, copy.deepcopy(target).train()(x))  # batch statistics, even in eval mode
    with torch.no_grad():
        target[1].running_mean.fill_(-7.0)
    torch.testing.assert_close(hnet.run(hnet(x), "forward", x), out)  # not read
    assert target.training == training


def test_batch_policy_keeps_weight_sets_apart():
    target = _batchnorm_target()
    hnet = HyperNetwork(target, sample_shape=(5,), buffers="batch", residual=False)
    x, _ = _vectors()
    first, second = hnet(x), hnet(x + 3.0)
    alone = hnet.run(second, "forward", x)
    hnet.run(first, "forward", x * 10)
    torch.testing.assert_close(hnet.run(second, "forward", x), alone)


def test_frozen_policy_reads_and_never_writes_running_statistics():
    target = _batchnorm_target()
    hnet = HyperNetwork(target, sample_shape=(5,), buffers="frozen")
    x, _ = _vectors()
    before = _buffers(target)
    hnet.run(hnet(x), "forward", x)  # training mode: batch statistics, updates go to copies
    assert all(torch.equal(before[k], b) for k, b in target.named_buffers())
    target.eval()
    torch.testing.assert_close(hnet.run(hnet(x), "forward", x), target(x))  # eval mode reads them
    assert all(torch.equal(before[k], b) for k, b in target.named_buffers())


def test_track_policy_updates_running_statistics():
    target = _batchnorm_target()
    reference = copy.deepcopy(target)
    hnet = HyperNetwork(target, sample_shape=(5,), buffers="track")
    x, _ = _vectors()
    hnet.run(hnet(x), "forward", x)
    reference(x)  # one ordinary training-mode forward
    for (key, value), expected in zip(target.named_buffers(), reference.buffers()):
        torch.testing.assert_close(value, expected, msg=key)
    assert target[1].num_batches_tracked.item() == 1


# ---------------------------------------------------------------------------------------------
# Bound models and run


def test_bound_model_runs_the_targets_methods_and_only_those():
    target, hnet, x, labels = _wrap("vae")
    bound = hnet.bind(hnet(x, labels))
    sample = bound.sample(4, generator=_seeded(12))  # the protocol's sample draws without gradients
    assert sample.shape == (1, 4, 64) and not sample.requires_grad
    assert bound.rsample(4, generator=_seeded(12)).requires_grad  # rsample differentiates
    assert not hasattr(bound, "sample_biased")  # the VAE has none: protocol checks stay honest
    assert not hasattr(bound, "fit")  # would overwrite generated weights in place
    with pytest.raises(HyperNetworkError, match="has no method 'sample_biased'"):
        hnet.run(bound.weights, "sample_biased", 4, bias=0.5)


def test_run_leaves_the_target_unchanged():
    target, hnet, x, labels = _wrap("vae", residual=False)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    hnet.run(hnet(x, labels), "loss", x[None], labels[None]).mean().backward()
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


# ---------------------------------------------------------------------------------------------
# Errors: each says what and why


def test_target_without_parameters_is_refused():
    with pytest.raises(HyperNetworkError, match="target ReLU has no parameters to generate"):
        HyperNetwork(nn.ReLU(), sample_shape=(3,))


def test_include_matching_nothing_is_refused():
    with pytest.raises(HyperNetworkError, match=r"match none of the target's parameters; they are: \['0.weight'"):
        HyperNetwork(nn.Sequential(nn.Linear(3, 3)), sample_shape=(3,), include=["decoder.*"])
    with pytest.raises(HyperNetworkError, match=r"include pattern 'decoder.\*' matches no parameter of Sequential"):
        HyperNetwork(nn.Sequential(nn.Linear(3, 3)), sample_shape=(3,), include=["*.bias", "decoder.*"])


def test_data_of_the_wrong_shape_is_refused():
    hnet = HyperNetwork(nn.Linear(4, 4), sample_shape=(4,))
    with pytest.raises(HyperNetworkError, match=r"x has shape \(10, 5\); this hypernetwork takes sets of samples of shape \(4,\)"):
        hnet(torch.randn(10, 5))
    with pytest.raises(HyperNetworkError, match=r"x has shape \(4,\)"):
        hnet(torch.randn(4))
    replicated = HyperNetwork(ClassGaussianModel(1, 2, replicates=3), sample_shape=(2,), per_replicate=True)
    with pytest.raises(HyperNetworkError, match=r"a per_replicate hypernetwork takes one set per replicate, \(R, n, \*sample_shape\)"):
        replicated(torch.randn(10, 2, dtype=torch.float64))


def test_labels_of_the_wrong_shape_are_refused():
    hnet = HyperNetwork(nn.Linear(4, 4), sample_shape=(4,), num_classes=3)
    with pytest.raises(HyperNetworkError, match=r"labels must have shape \(10,\) for this class-aware hypernetwork, got \(1, 10\)"):
        hnet(torch.randn(10, 4), torch.zeros(1, 10, dtype=torch.int64))
    with pytest.raises(HyperNetworkError, match=r"labels must have shape \(10,\) for this class-aware hypernetwork, got None"):
        hnet(torch.randn(10, 4))


# ---------------------------------------------------------------------------------------------
# Size


def test_chunked_head_is_at_most_1_1_times_a_million_parameter_target():
    torch.manual_seed(0)
    target = nn.Sequential(nn.Linear(784, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Linear(1024, 256))
    assert target_parameters(target) >= 1_000_000
    for residual in (True, False):
        size = HyperNetwork(target, sample_shape=(784,), residual=residual).size()
        assert size.generated == size.target == target_parameters(target)
        assert size.ratio <= 1.1, size
        assert size.hypernetwork == size.base + size.encoder + size.head


def test_dense_head_costs_embedding_dim_plus_one_per_value():
    target = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))
    size = HyperNetwork(target, sample_shape=(6,), head="dense", residual=False, embedding_dim=8).size()
    assert size.head == (8 + 1) * target_parameters(target)


def target_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------
# The chunked head's fused read-out equals its composed definition


@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("with_base", [True, False])
def test_chunked_readout_matches_its_composed_definition(batch, with_base):
    """``base + gain * out(hidden).flatten()[:numel]``: values and gradients, float64, with a
    padded last chunk (numel = 37 in chunks of 8)."""
    torch.manual_seed(0)
    head = ChunkedHead(37, embedding_dim=4, chunk_size=8, chunk_dim=3, zero_init=False).double()
    gain = torch.rand(37, dtype=torch.float64) + 0.5
    base = torch.randn(37, dtype=torch.float64, requires_grad=True) if with_base else None
    z = torch.randn(*batch, 4, dtype=torch.float64, requires_grad=True)
    fused = head(z, gain=gain, base=base)
    composed = head(z) * gain + (0 if base is None else base)
    torch.testing.assert_close(fused, composed)
    inputs = [z, *head.parameters(), *([base] if with_base else [])]
    upstream = torch.randn_like(fused)
    expected = torch.autograd.grad(composed, inputs, upstream)
    for got, want in zip(torch.autograd.grad(fused, inputs, upstream), expected):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda z, b: head(z, gain=gain, base=b), (z, base))


# ----------------------------------------------------------------- options: one clear message each
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"head": "wide"}, "head must be one of \\['chunked', 'dense'\\], got 'wide'"),
        ({"buffers": "shared"}, "buffers must be one of \\['batch', 'frozen', 'track'\\], got 'shared'"),
        ({"positive": {"0.weight": "square"}}, "positive\\['0.weight'\\] must be one of .*'psd'\\], got 'square'"),
        ({"positive": {"nothing.*": "softplus"}}, "positive pattern 'nothing.\\*' matches no parameter"),
        ({"sample_shape": ()}, "sample_shape must be a non-empty tuple of positive sizes, got \\(\\)"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0"),
    ],
)
def test_bad_hypernetwork_options_are_refused(options, message):
    target = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(HyperNetworkError, match=message):
        HyperNetwork(target, **{"sample_shape": (3,), **options})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lam": -0.1}, "lam must be a number >= 0, got -0.1"),
        ({"rho": 0}, "rho must be a number > 0, got 0"),
        ({"dual_lr": -1.0}, "dual_lr must be a number >= 0, got -1.0"),
        ({"discrepancy": "pairwise"}, "discrepancy must be one of \\['draw', 'expectation'\\], got 'pairwise'"),
        ({"normalize": "global"}, "normalize must be one of \\['parameter', 'relative'\\], got 'global'"),
        ({"constraint": "hard"}, "constraint must be one of \\['penalty', 'augmented_lagrangian'\\], got 'hard'"),
    ],
)
def test_bad_ple_options_are_refused(options, message):
    with pytest.raises(HyperNetworkError, match=message):
        PLEConfig(**options)


def test_discrepancy_and_probe_refuse_bad_input():
    weights = {"w": torch.zeros(2)}
    with pytest.raises(HyperNetworkError, match="normalize must be one of"):
        weight_discrepancy(weights, weights, normalize="global")
    with pytest.raises(HyperNetworkError, match="weight sets must have the same keys"):
        weight_discrepancy(weights, {"v": torch.zeros(2)})
    hnet = HyperNetwork(nn.Linear(3, 2), sample_shape=(3,))
    with pytest.raises(HyperNetworkError, match=r"x must have shape \(R, n >= 2, \*sample_shape\), got \(1, 1, 3\)"):
        input_sensitivity(hnet, torch.zeros(1, 1, 3))


def test_input_sensitivity_per_set_is_each_sets_own_value():
    """``per_set=True``: set r's value is rms(H(A_r) - H(B_r)) / rms(H(A_r)) over set r's own
    generated values (computed here by hand, same split), not the pool's."""
    torch.manual_seed(0)
    hnet = HyperNetwork(ClassGaussianModel(1, 2, replicates=4), sample_shape=(2,), per_replicate=True)
    with torch.no_grad():  # an untrained head starts at zero (a constant H); give it weights that read x
        for parameter in hnet.parameters():
            parameter.normal_(0.0, 0.5, generator=_seeded(2))
    scales = torch.tensor([0.1, 1.0, 3.0, 10.0], dtype=torch.float64).view(4, 1, 1)
    x = torch.randn(4, 10, 2, dtype=torch.float64) * scales
    order = torch.randperm(10, generator=_seeded(1))
    per_set = input_sensitivity(hnet, x, order=order, per_set=True)["disjoint"]
    with torch.no_grad():
        a, b = (hnet.flat(predict_weights(hnet, x[:, half], None)) for half in (order[:5], order[5:]))
    by_hand = torch.stack([(a[r] - b[r]).norm() / a[r].norm() for r in range(4)])
    torch.testing.assert_close(per_set, by_hand.to(per_set.dtype))
    pooled = input_sensitivity(hnet, x, order=order)["disjoint"]
    assert per_set.shape == (4,) and (per_set - pooled).abs().max() > 0.1 * pooled
