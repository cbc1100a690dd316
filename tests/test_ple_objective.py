"""Guards of the PLE objective (``genfair.hypernets.PLEObjective``) and of the weight discrepancy D.

Mayer et al. (arXiv 2405.13977), Eq. (5): ``NLL(X; H(X)) + lam * D(H(X), H(Y))``, Y ~ p(.; H(X)),
and the augmented-Lagrangian form of Eq. (4). Each test pins one thing that could silently go
wrong and still train: the penalty's sign; where each stop-gradient sits (``detach_target``,
``detach_samples``); D's normalisation per value or per tensor and its pooling over sets; the
residual base as the replicates' mean; the autograd gradient against finite differences; the
constraint estimate and the multiplier's update. Expected values are written out by hand or
rebuilt from public pieces (``hnet(x)``, ``hnet.run``) with every stop-gradient explicit.

Everything runs in float64 on a hypernetwork of about 200 parameters, with the residual
head pushed away from its zero start so that H(X) depends on X.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from _fixtures import seeded as _seeded
from genfair.hypernets import HyperNetwork, PLEConfig, PLEObjective, expected_discrepancy, weight_discrepancy
from genfair.models import ClassGaussianModel

F64 = torch.float64
N = 6  # samples per set
SEED = 5  # the generator seed of Y's draws


class LocationScale(nn.Module):
    """``x = loc + exp(log_scale) z`` in 2-D, one replicate: ``x (1, n, 2)``.

    Two generated tensors of different sizes (``loc``: 2 values, ``log_scale``: 1), so per-value
    and per-tensor normalisations differ. ``sample`` is differentiable on purpose (no
    ``no_grad``): only the objective's own stop-gradient keeps D's gradient out of the samples.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.tensor([0.5, -0.3], dtype=F64))
        self.log_scale = nn.Parameter(torch.tensor([0.2], dtype=F64))

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample NLL ``(1, n)``."""
        z = (x - self.loc) / self.log_scale.exp()
        return 0.5 * z.square().sum(-1) + 2 * (self.log_scale + 0.5 * math.log(2 * math.pi))

    def sample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        z = torch.randn(1, n, 2, generator=generator, dtype=self.loc.dtype)
        return self.loc + self.log_scale.exp() * z


class ReparameterisedLocationScale(LocationScale):
    """The same model declaring ``rsample`` (same values as ``sample``)."""

    def rsample(
        self, n: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.sample(n, labels=labels, generator=generator)


def _perturb_head(hnet: HyperNetwork) -> HyperNetwork:
    """Move the residual head off its exact-zero start, so that H(X) depends on X."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in hnet.head.parameters():
            p.add_(2.0 * torch.randn_like(p))
    return hnet


def _location_scale(reparameterised: bool = True) -> tuple[HyperNetwork, torch.Tensor]:
    """A hypernetwork of :class:`LocationScale` and a data set ``x (1, N, 2)``."""
    torch.manual_seed(0)
    target = ReparameterisedLocationScale() if reparameterised else LocationScale()
    hnet = HyperNetwork(target, sample_shape=(2,), hidden=8, embedding_dim=4, chunk_dim=4)
    x = 1.3 * torch.randn(1, N, 2, generator=_seeded(1), dtype=F64) + 0.4
    return _perturb_head(hnet), x


def _flat(weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """LocationScale's generated values ``(3,)``: loc, then log_scale."""
    return torch.cat([weights["loc"].flatten(), weights["log_scale"].flatten()])


def _zeros() -> torch.Tensor:
    return torch.zeros(1, N, dtype=torch.int64)


def _draws(hnet: HyperNetwork, w_x: dict[str, torch.Tensor], seed: int, count: int) -> list[torch.Tensor]:
    """``count`` draws of Y ``(1, N, 2)`` from one generator, as the objective makes them."""
    generator = _seeded(seed)
    return [hnet.run(w_x, "sample", N, labels=_zeros(), generator=generator) for _ in range(count)]


# ------------------------------------------------------------------------ 1. the penalty's sign
@pytest.mark.parametrize("normalize", ["parameter", "relative"])
def test_total_is_nll_plus_lam_times_the_hand_computed_discrepancy(normalize):
    hnet, x = _location_scale()
    lam = 0.7
    terms = PLEObjective(PLEConfig(lam=lam, normalize=normalize))(hnet, x, generator=_seeded(SEED))

    w_x = hnet(x[0])
    (y,) = _draws(hnet, w_x, SEED, 1)
    w_y = hnet(y[0])
    nll = hnet.run(w_x, "loss", x, _zeros()).mean()
    gap = {name: w_y[name] - w_x[name] for name in w_x}
    if normalize == "parameter":  # mean over the 3 values
        d = (gap["loc"].square().sum() + gap["log_scale"].square().sum()) / 3
    else:  # mean over the 2 tensors of ||gap_t||^2 / ||H(X)_t||^2
        d = (gap["loc"].square().sum() / w_x["loc"].square().sum() + (gap["log_scale"] / w_x["log_scale"]).square().sum()) / 2
    assert d > 1e-3  # large enough for the sign to matter
    torch.testing.assert_close(terms.nll, nll)
    torch.testing.assert_close(terms.discrepancy, d)
    torch.testing.assert_close(terms.total, nll + lam * d)
    assert terms.constraint is None
    objective = PLEObjective(PLEConfig(lam=lam, normalize=normalize))
    objective.update_multiplier(terms)  # the penalty form has no multiplier
    assert objective.multiplier is None


# ------------------------------------------------------------------------ 2. the stop-gradients
@pytest.mark.parametrize("detach_target", [False, True])
def test_detach_target_stops_only_ds_gradient_through_h_of_x(detach_target):
    """With Y as data and a residual hypernetwork ``H = base + gain * delta``, ``dH/dbase = I`` for
    H(X) and H(Y) alike. In ``D = ||H(Y) - H(X)||^2 / 3`` the base then cancels when both sides
    carry gradient; with H(X) stopped only H(Y)'s path is left, ``2 (H(Y) - H(X)) / 3``. The NLL's
    gradient flows in both cases."""
    hnet, x = _location_scale()
    lam = 0.7
    config = PLEConfig(lam=lam, detach_target=detach_target, detach_samples=True)
    terms = PLEObjective(config)(hnet, x, generator=_seeded(SEED))
    (grad_total,) = torch.autograd.grad(terms.total, hnet.base)

    w_x = hnet(x[0])
    (grad_nll,) = torch.autograd.grad(hnet.run(w_x, "loss", x, _zeros()).mean(), hnet.base)
    (y,) = _draws(hnet, w_x, SEED, 1)
    gap = (_flat(hnet(y[0].detach())) - _flat(w_x)).detach()
    assert gap.abs().min() > 1e-3 and grad_nll.abs().min() > 1e-3
    expected = grad_nll + (2 * lam * gap / 3 if detach_target else 0.0)
    torch.testing.assert_close(grad_total, expected)


def _reference_total(
    hnet: HyperNetwork, x: torch.Tensor, *, lam: float, detach_target: bool, detach_samples: bool
) -> torch.Tensor:
    """Eq. (5) written out with its stop-gradients explicit (parameter normalisation, one draw)."""
    w_x = hnet(x[0])
    nll = hnet.run(w_x, "loss", x, _zeros()).mean()
    (y,) = _draws(hnet, w_x, SEED, 1)  # differentiable in w_x: LocationScale.sample is
    w_y = hnet((y.detach() if detach_samples else y)[0])
    reference = _flat(w_x).detach() if detach_target else _flat(w_x)
    return nll + lam * (_flat(w_y) - reference).square().sum() / 3


def _grads(total: torch.Tensor, hnet: HyperNetwork) -> list[torch.Tensor]:
    return list(torch.autograd.grad(total, list(hnet.parameters())))


@pytest.mark.parametrize("reparameterised", [True, False], ids=["rsample", "sample_only"])
@pytest.mark.parametrize("detach_samples", [False, True])
@pytest.mark.parametrize("detach_target", [False, True])
def test_gradient_paths_match_the_written_out_objective(detach_target, detach_samples, reparameterised):
    """Every hypernetwork parameter's gradient equals that of Eq. (5) written out with explicit
    stop-gradients. Y carries gradient back into H(X) only for a model with ``rsample`` and
    without ``detach_samples``; a model with only ``sample`` (here differentiable) gives Y as data."""
    hnet, x = _location_scale(reparameterised)
    lam = 0.7
    config = PLEConfig(lam=lam, detach_target=detach_target, detach_samples=detach_samples)
    got = _grads(PLEObjective(config)(hnet, x, generator=_seeded(SEED)).total, hnet)

    through_samples = reparameterised and not detach_samples
    options = dict(lam=lam, detach_target=detach_target)
    expected = _grads(_reference_total(hnet, x, **options, detach_samples=not through_samples), hnet)
    other = _grads(_reference_total(hnet, x, **options, detach_samples=through_samples), hnet)
    # The path through Y is not negligible, so putting it in or leaving it out is seen.
    assert max((e - o).abs().max().item() for e, o in zip(expected, other)) > 1e-3
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)


# --------------------------------------------------------- 3 and 5. D against hand-computed values
# One set: two tensors of different sizes. reference a = [1, 2, 2] (||a||^2 = 9), b = [[4]] (16).
REFERENCE = {"a": torch.tensor([1.0, 2.0, 2.0], dtype=F64), "b": torch.tensor([[4.0]], dtype=F64)}
FIRST = {"a": torch.tensor([2.0, 2.0, 0.0], dtype=F64), "b": torch.tensor([[1.0]], dtype=F64)}  # gaps [1, 0, -2], -3
SECOND = {"a": torch.tensor([0.0, 3.0, 2.0], dtype=F64), "b": torch.tensor([[5.0]], dtype=F64)}  # gaps [-1, 1, 0], 1
# Squared gaps: a 5, b 9. Products of FIRST's and SECOND's gaps: a -1, b -3.
ONE_SET = {
    ("draw", "parameter"): (5 + 9) / 4,  # per value: 4 values
    ("draw", "relative"): (5 / 9 + 9 / 16) / 2,  # per tensor: 161/288
    ("expectation", "parameter"): (-1 - 3) / 4,
    ("expectation", "relative"): (-1 / 9 - 3 / 16) / 2,  # -43/288: one pair of draws may be negative
}

# Two sets (B = (2,)): set 0 as above; set 1: reference a = [0, 3, 4] (25), b = [[2]] (4),
# first a = [0, 0, 4] (gaps [0, -3, 0]: 9), b = [[0]] (gap -2: 4),
# second a = [1, 1, 5] (gaps [1, -2, 1]; product with first's 6), b = [[4]] (gap 2; product -4).
# Pooled: "parameter" averages over all 8 values; "relative" sums each tensor's numerator and
# denominator over the sets before the ratio (not a mean of per-set ratios: 0.6195 for "draw").
TWO_SETS = {
    ("draw", "parameter"): (14 + 13) / 8,
    ("draw", "relative"): ((5 + 9) / (9 + 25) + (9 + 4) / (16 + 4)) / 2,  # 361/680
    ("expectation", "parameter"): (-1 - 3 + 6 - 4) / 8,
    ("expectation", "relative"): ((-1 + 6) / (9 + 25) + (-3 - 4) / (16 + 4)) / 2,  # -69/680
}


def _stack(one: dict[str, torch.Tensor], other: list[float], other_b: float) -> dict[str, torch.Tensor]:
    return {"a": torch.stack([one["a"], torch.tensor(other, dtype=F64)]), "b": torch.stack([one["b"], torch.tensor([[other_b]], dtype=F64)])}


def _discrepancy(form: str, reference, first, second, normalize: str) -> torch.Tensor:
    if form == "draw":
        return weight_discrepancy(reference, first, normalize=normalize)
    return expected_discrepancy(reference, first, second, normalize=normalize)


@pytest.mark.parametrize("normalize", ["parameter", "relative"])
@pytest.mark.parametrize("form", ["draw", "expectation"])
def test_discrepancy_of_one_set_matches_hand_computation(form, normalize):
    d = _discrepancy(form, REFERENCE, FIRST, SECOND, normalize)
    assert d.shape == ()
    assert d.item() == pytest.approx(ONE_SET[form, normalize], rel=1e-12)


@pytest.mark.parametrize("normalize", ["parameter", "relative"])
@pytest.mark.parametrize("form", ["draw", "expectation"])
def test_discrepancy_pools_leading_set_dimensions_as_documented(form, normalize):
    reference = _stack(REFERENCE, [0.0, 3.0, 4.0], 2.0)
    first = _stack(FIRST, [0.0, 0.0, 4.0], 0.0)
    second = _stack(SECOND, [1.0, 1.0, 5.0], 4.0)
    d = _discrepancy(form, reference, first, second, normalize)
    assert d.item() == pytest.approx(TWO_SETS[form, normalize], rel=1e-12)


def test_relative_discrepancy_holds_the_references_scale_constant():
    """d/d reference_a of ``(||F_a - r_a||^2 / ||r_a||^2 + ...) / 2`` with the denominator constant:
    ``-(F_a - r_a) / ||r_a||^2 = -[1, 0, -2] / 9``; and ``3 / 16`` for b."""
    reference = {name: value.clone().requires_grad_() for name, value in REFERENCE.items()}
    grads = torch.autograd.grad(weight_discrepancy(reference, FIRST, normalize="relative"), list(reference.values()))
    torch.testing.assert_close(grads[0], torch.tensor([-1.0, 0.0, 2.0], dtype=F64) / 9)
    torch.testing.assert_close(grads[1], torch.tensor([[3.0]], dtype=F64) / 16)


# -------------------------------------------------------------------- 4. the residual base
def test_residual_base_is_the_mean_of_the_replicates():
    """A replicated ClassGaussianModel whose three replicates differ: the base (and so a fresh
    wrap's weights for every set) is their mean, through the positivity transforms' inverses."""
    k, d, r = 2, 2, 3
    model = ClassGaussianModel(k, d, replicates=r)
    labels = torch.arange(20).remainder(k)[None].expand(r, -1).contiguous()
    spread = torch.tensor([1.0, 2.0, 4.0], dtype=F64)[:, None, None]
    x = spread * torch.randn(r, 20, d, generator=_seeded(2), dtype=F64) + 3 * labels[..., None] + spread
    model.fit(x, labels)
    assert (model.means[0] - model.means.mean(0)).abs().min() > 0.1  # replicate 0 is not the mean
    assert (model.covs[0] - model.covs.mean(0)).abs().max() > 0.1
    hnet = HyperNetwork(model, sample_shape=(d,), num_classes=k, per_replicate=True, positive=ClassGaussianModel.CONSTRAINTS)

    means = hnet.layout.slots[[s.name for s in hnet.layout.slots].index("means")]
    torch.testing.assert_close(hnet.base.detach()[means.start : means.stop], model.means.detach().mean(0).flatten())
    base = hnet.layout.split(hnet.base.detach())
    weights = hnet(x, labels)  # the head starts at zero: every set gets the base
    for name, value in model.named_parameters():
        mean = value.detach().mean(0)
        torch.testing.assert_close(base[name], mean)
        torch.testing.assert_close(weights[name].detach(), mean.expand_as(value))


# ----------------------------------------------------- 6. autograd against finite differences
FD_STEP = 1e-6
# Central differences in float64 on this hypernetwork: truncation STEP^2 |f'''| / 6, with |f'''|
# up to ~6e4 (measured from the error's STEP^2 scaling: 1e-2 at STEP = 1e-3, 1e-4 at 1e-4), so
# ~1e-8; rounding ~ eps |f| / STEP ~ 2e-9 for |f| ~ 10. Every coordinate agrees within 5e-8 (all
# three forms), so 1e-6 leaves a margin of 20, and every path the test must see changes the
# gradient by more than 1e-3 (checked below).
FD_TOL = 1e-6


def _objective_value(objective: PLEObjective, hnet: HyperNetwork, x: torch.Tensor) -> torch.Tensor:
    return objective(hnet, x, generator=_seeded(SEED)).total


@pytest.mark.parametrize(
    "options",
    [
        dict(lam=0.5),
        dict(lam=0.5, discrepancy="expectation"),
        dict(constraint="augmented_lagrangian", rho=3.0, dual_lr=0.5),
    ],
    ids=["draw", "expectation", "augmented_lagrangian"],
)
def test_gradient_matches_central_finite_differences(options):
    """The same generator seed in every evaluation gives the same noise z, so the objective is a
    smooth function of the hypernetwork's parameters (Y = loc + exp(log_scale) z moves with
    them); autograd must agree with its central differences on two coordinates of every tensor.
    Parameter normalisation only: ``"relative"`` holds its scale constant by design, so its
    gradient is not the derivative of its value (that stop-gradient is pinned above)."""
    hnet, x = _location_scale()
    objective = PLEObjective(PLEConfig(**options))
    if objective.config.constraint == "augmented_lagrangian":  # a non-zero multiplier, so mu . c counts
        objective.update_multiplier(objective(hnet, x, generator=_seeded(SEED + 1)))
        assert objective.multiplier.abs().min() > 1e-4
    params = dict(hnet.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(_objective_value(objective, hnet, x), list(params.values()))))
    as_data = PLEObjective(PLEConfig(**options, detach_samples=True))
    as_data.multiplier = objective.multiplier
    grads_as_data = dict(zip(params, torch.autograd.grad(_objective_value(as_data, hnet, x), list(params.values()))))

    path_through_samples = 0.0
    for name, p in params.items():
        flat = p.data.view(-1)
        for i in sorted({0, int(grads[name].abs().argmax())}):
            original = flat[i].item()
            with torch.no_grad():
                flat[i] = original + FD_STEP
                up = _objective_value(objective, hnet, x).item()
                flat[i] = original - FD_STEP
                down = _objective_value(objective, hnet, x).item()
                flat[i] = original
            estimate = (up - down) / (2 * FD_STEP)
            assert grads[name].reshape(-1)[i].item() == pytest.approx(estimate, abs=FD_TOL, rel=FD_TOL), (name, i)
            path_through_samples = max(path_through_samples, abs(grads[name].reshape(-1)[i] - grads_as_data[name].reshape(-1)[i]).item())
    assert path_through_samples > 1e-3


# ----------------------------------------------------------- 7. the augmented Lagrangian
def test_augmented_lagrangian_single_set_matches_hand_computation():
    """One set: two draws Y1, Y2 (one generator); per value ``g_j = (H(Y_j) - H(X)) / sqrt(3)``,
    ``c = (g_1 + g_2) / 2``, quadratic ``<g_1, g_2>``; ``total = NLL + mu . c + rho / 2 <g_1, g_2>``
    and ``mu <- mu + dual_lr * c`` after each step, from ``mu = 0``."""
    hnet, x = _location_scale()
    rho, dual_lr = 3.0, 0.25
    objective = PLEObjective(PLEConfig(constraint="augmented_lagrangian", rho=rho, dual_lr=dual_lr))
    w_x = hnet(x[0])
    nll = hnet.run(w_x, "loss", x, _zeros()).mean()

    def hand(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g1, g2 = ((_flat(hnet(y[0])) - _flat(w_x)) / math.sqrt(3) for y in _draws(hnet, w_x, seed, 2))
        return (g1 + g2) / 2, g1 @ g2, g1 @ g1  # c, quadratic, the reported per-draw D (first draw)

    c1, quadratic1, d1 = hand(SEED)
    terms = objective(hnet, x, generator=_seeded(SEED))
    assert c1.abs().min() > 1e-3
    torch.testing.assert_close(terms.constraint, c1)
    torch.testing.assert_close(terms.total, nll + 0.5 * rho * quadratic1)
    torch.testing.assert_close(terms.discrepancy, d1)
    objective.update_multiplier(terms)
    torch.testing.assert_close(objective.multiplier, dual_lr * c1)

    c2, quadratic2, _ = hand(SEED + 1)
    terms = objective(hnet, x, generator=_seeded(SEED + 1))
    torch.testing.assert_close(terms.constraint, c2)
    torch.testing.assert_close(terms.total, nll + dual_lr * c1 @ c2 + 0.5 * rho * quadratic2)
    objective.update_multiplier(terms)
    torch.testing.assert_close(objective.multiplier, dual_lr * (c1 + c2))


def test_augmented_lagrangian_over_sets_matches_hand_computation():
    """Four sets (a per-replicate ClassGaussianModel), one draw, ``normalize="relative"``: each
    value's gap is divided by its tensor's RMS in H(X) over all sets and by ``sqrt(numel)``;
    ``c`` is the mean over the sets, the quadratic ``<mean of sets 0-1, mean of sets 2-3>``."""
    k, d, r = 2, 2, 4
    model = ClassGaussianModel(k, d, replicates=r)
    labels = torch.arange(N).remainder(k)[None].expand(r, -1).contiguous()
    x = torch.randn(r, N, d, generator=_seeded(3), dtype=F64) + 2 * labels[..., None]
    model.fit(x, labels)
    torch.manual_seed(0)
    hnet = HyperNetwork(
        model, sample_shape=(d,), num_classes=k, per_replicate=True, positive=ClassGaussianModel.CONSTRAINTS,
        hidden=8, embedding_dim=4, chunk_dim=4,
    )
    _perturb_head(hnet)
    rho = 3.0
    objective = PLEObjective(PLEConfig(constraint="augmented_lagrangian", normalize="relative", rho=rho))
    terms = objective(hnet, x, labels, generator=_seeded(SEED))

    w_x = hnet(x, labels)
    y = hnet.run(w_x, "rsample", N, labels=labels, generator=_seeded(SEED))
    w_y = hnet(y, labels)
    numel = sum(w_x[name][0].numel() for name in hnet.generated)
    gaps = torch.cat(
        [(w_y[name] - w_x[name]).flatten(1) / w_x[name].square().mean().sqrt() for name in hnet.generated], dim=1
    ) / math.sqrt(numel)  # (4 sets, numel)
    c = gaps.mean(0)
    quadratic = gaps[:2].mean(0) @ gaps[2:].mean(0)
    nll = hnet.run(w_x, "loss", x, labels).mean()
    assert c.abs().max() > 1e-3 and abs(quadratic.item()) > 1e-6
    torch.testing.assert_close(terms.constraint, c)
    torch.testing.assert_close(terms.total, nll + 0.5 * rho * quadratic)
    objective.update_multiplier(terms)
    torch.testing.assert_close(objective.multiplier, objective.config.dual_lr * c)
