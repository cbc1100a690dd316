"""Fidelity, minority fidelity and class shares of one generation's samples, with bootstrap intervals.

:func:`fidelity_metrics` is what an image experiment calls once per generation. From features of
an evaluation classifier (real held-out images and generated ones, ``(m, d)`` and ``(n, d)``) it
reports, as ``"metric/group"`` keys, each with a value on the full sets and a percentile interval:

1. precision, recall, density, coverage (:mod:`genfair.metrics._prdc`), FD and KID
   (:mod:`genfair.metrics._feature_distances`): pooled (``/all``) and per class (the real images
   of class c against the generated images assigned to class c);
2. minority fidelity, ``<metric>/minority_to_majority``: the minority class's value over the
   majority class's, the majority being the other class with the largest target share. For FD and
   KID the ratio is of distances (> 1: the minority is the worse), and both carry a class-size
   bias (FD by about (d^2 + 5d)/(2N) for N samples, KID through its variance), so a small minority
   looks worse than it is; KID's denominator can be near 0 or negative;
3. class shares of the generated samples as the classifier sees them (``share_raw/<group>``) and
   corrected for its confusion matrix (``share/<group>``, :mod:`genfair.metrics._class_shares`),
   ``representation_ratio/<minority>`` and ``fairness_discrepancy/all`` (l2, Choi et al. 2020).

The bootstrap (:mod:`genfair.metrics._bootstrap`), with B resamples, is stratified on both sides
for the fidelity metrics: real images within their classes, generated ones within their assigned
classes, so a resample never loses the minority. The class shares are the exception: their
spread is what the interval is for, so the generated images are resampled as one set (stratified
resamples would hold each class's count fixed), and each row of the confusion matrix is resampled
from its own counts, so the share intervals include the classifier's own uncertainty.

FD and KID are recomputed on every resample, without copying features: FD from count-weighted
moments, KID as the U-statistic over pairs of distinct samples (two copies of one sample are not
an independent pair; counting them would bias every KID replicate upward). FD has no unbiased
estimator, and a resample's FD carries its (d^2 + 5d)/(2N) bias a second time, so the raw FD
replicates sit about one bias above the value (at m = 100, d = 32 the whole percentile interval
lies above it). The FD replicates are therefore shifted by the bootstrap's bias estimate,
mean(FD*) - FD (Efron & Tibshirani 1993, ch. 10), before taking percentiles: the FD interval
describes the estimator's spread around its expectation at these sample sizes (the quantity that
is comparable across generations of equal sizes), not an interval for the unbiased distance.

Precision, recall, density and coverage resample their per-sample terms (over fake samples for
precision and density, over real ones for recall and coverage) with the k-NN radii of the full sets
held fixed: recomputing radii on a resample would give duplicated points zero-radius balls and bias
all four. Their intervals are therefore conditional on the estimated real and fake manifolds (the
radii, and the other set), and narrower than the metrics' spread across fresh data sets. In a
simulation (m = 100, n = 1000, d = 16, 150 data sets, B = 100) the 95 % intervals held the expected
value 56 % of the time for precision, 44-51 % for density, 91 % for recall; FD's intervals 100 %
(too wide: a resample's duplicates widen FD's spread) and KID's 99 %.

Undefined values are NaN, never errors, so that a vanished class cannot crash a generation: a
class with fewer than k + 1 generated samples has NaN precision/recall/density/coverage, one with
fewer than 2 has NaN FD and KID (and NaN intervals); a ratio with a zero or NaN denominator is NaN,
and an interval is NaN where some replicate is. The held-out real set is fixed by the config, so
every real class needs more than k samples or the call raises :class:`ConfigError`. A class that
no generated sample is predicted as has raw share 0 and a bootstrap interval [0, 0], which would
claim certainty: its ``hi`` (and that of its corrected share and representation ratio) is widened
to at least the exact binomial upper bound for 0 of n, 1 - ((1 - level)/2)^(1/n) (~3.7/n at level
0.95; the rule of three, 3/n, is its one-sided version).

At m = 100 real, n = 1000 generated, d = 32, K = 2 and B = 200 a call takes 0.25 s on one CPU
thread (0.5 s median on a loaded 2-core machine; mostly the batched eigendecompositions of the FD
replicates). Memory is O((m + n)^2) for the distance and kernel matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from genfair.errors import ConfigError, check_positive_int
from genfair.metrics._bootstrap import check_level, percentile_interval, resample_confusion, stratified_resample
from genfair.metrics._class_shares import _discrepancy, _ratio, as_confusion, as_labels, correct_shares
from genfair.metrics._feature_distances import _frechet_distances, _kernel_options, _kids, as_features
from genfair.metrics._prdc import prdc_contributions

__all__ = ["RATIO_GROUP", "Estimate", "fidelity_metrics"]

PRDC_METRICS = ("precision", "recall", "density", "coverage")
SET_METRICS = PRDC_METRICS + ("fd", "kid")
# The group of the minority's value over the majority's (a ratio: not bounded by its metric's range).
RATIO_GROUP = "minority_to_majority"
_RESERVED_GROUPS = ("all", RATIO_GROUP)
Stat = tuple[torch.Tensor, torch.Tensor]  # a statistic's value () on the full sets and its replicates (B,)


@dataclass(frozen=True)
class Estimate:
    """``value`` on the full sets and its percentile bootstrap interval ``[lo, hi]`` (NaN when undefined)."""

    value: float
    lo: float
    hi: float


def fidelity_metrics(
    real_features: Any,
    real_labels: Any,
    fake_features: Any,
    fake_groups: Any,
    fake_predicted: Any,
    confusion: Any,
    *,
    group_names: Sequence[str],
    minority: int,
    target_shares: Sequence[float],
    k: int = 5,
    bootstrap: int = 200,
    level: float = 0.95,
    generator: torch.Generator,
) -> dict[str, Estimate]:
    """Fidelity and class-share metrics of one generation with stratified bootstrap intervals.

    Args:
        real_features, real_labels: held-out real images, ``(m, d)`` features and ``(m,)`` classes in [0, K).
        fake_features, fake_groups: generated images, ``(n, d)`` and ``(n,)`` the class each was assigned.
        fake_predicted: ``(n,)`` the evaluation classifier's predicted class of each generated image.
        confusion: ``(K, K)`` the classifier's held-out confusion counts, rows the true class.
        group_names: the K class names (unique, not ``all`` or ``minority_to_majority``).
        minority: the index of the minority class; target_shares: the K target shares (sum 1).
        k: the PRDC neighbour; bootstrap: B, the number of resamples; level: the interval's level.
        generator: draws the resamples, e.g. ``torch_generator(seed, generation, "bootstrap")``.

    Returns ``{"metric/group": Estimate}``, python floats; see the module docstring for the keys.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> real, fake = torch.randn(60, 4, generator=g), torch.randn(200, 4, generator=g)
    >>> labels, groups = torch.arange(60) % 2, (torch.arange(200) % 5 == 0).long()
    >>> out = fidelity_metrics(real, labels, fake, groups, groups, [[28, 2], [3, 27]], group_names=["a", "b"],
    ...                        minority=1, target_shares=[0.5, 0.5], bootstrap=20, generator=g)
    >>> out["precision/all"].lo <= out["precision/all"].value <= out["precision/all"].hi
    True
    """
    # 1. Check the inputs.
    names = _check_group_names(group_names)
    num_classes = len(names)
    real = as_features("real_features", real_features)
    fake = as_features("fake_features", fake_features, dim=real.shape[1])
    real_labels = _labels("real_labels", real_labels, num_classes, len(real), "real_features")
    fake_groups = _labels("fake_groups", fake_groups, num_classes, len(fake), "fake_features")
    fake_predicted = _labels("fake_predicted", fake_predicted, num_classes, len(fake), "fake_features")
    confusion = as_confusion(confusion)
    if confusion.shape[0] != num_classes:
        k_by_k = f"({num_classes}, {num_classes})"
        raise ConfigError(f"confusion must have shape (K, K) = {k_by_k}, got {tuple(confusion.shape)}")
    target = _check_target(target_shares, num_classes)
    if isinstance(minority, bool) or not isinstance(minority, int) or not 0 <= minority < num_classes:
        raise ConfigError(f"minority must be a class index in [0, {num_classes}), got {minority!r}")
    k, replicates = check_positive_int("k", k), check_positive_int("bootstrap", bootstrap)
    level = check_level(level)
    if len(fake) == 0:
        raise ConfigError("fake_features must hold at least one generated sample, got 0")
    real_sizes = torch.bincount(real_labels, minlength=num_classes).tolist()
    if min(real_sizes) <= k:  # the held-out real set is fixed by the config: too small is a config error
        raise ConfigError(
            f"k must be smaller than the number of real samples of every class "
            f"({dict(zip(names, real_sizes))} in real_labels), got k = {k}"
        )

    # 2. Draw the stratified resamples once; every statistic below uses the same ones.
    real_counts = _counts(stratified_resample(real_labels, num_classes, generator=generator, replicates=replicates))
    fake_counts = _counts(stratified_resample(fake_groups, num_classes, generator=generator, replicates=replicates))
    confusions = resample_confusion(confusion, generator=generator, replicates=replicates)

    # 3. Fidelity of the pooled sets and of each class: (value, replicates (B,)) per key.
    stats: dict[str, Stat] = {}
    subsets = [("all", torch.ones_like(real_labels, dtype=torch.bool), torch.ones_like(fake_groups, dtype=torch.bool))]
    subsets += [(name, real_labels == c, fake_groups == c) for c, name in enumerate(names)]
    for group, in_real, in_fake in subsets:
        per_set = _set_metrics(real[in_real], fake[in_fake], real_counts[:, in_real], fake_counts[:, in_fake], k=k)
        stats.update({f"{metric}/{group}": v for metric, v in per_set.items()})

    # 4. Minority fidelity: the minority's value over the majority's, replicate by replicate.
    stats.update(_minority_ratios(stats, names, minority=minority, majority=_majority(target, minority)))

    # 5. Class shares, raw and corrected for the (resampled) confusion matrix. The share is the
    #    quantity whose sampling spread is wanted, so its resamples are plain, not stratified: a
    #    resample within fixed groups (the classifier's own classes, for an unconditional model)
    #    would hold every predicted count, and the share's interval would collapse to a point.
    plain = torch.randint(len(fake), (replicates, len(fake)), generator=generator, device=generator.device)
    share_counts = _counts(plain.to(fake_groups.device))
    stats.update(_share_stats(fake_predicted, share_counts, confusion, confusions, target, names, minority=minority))

    # 6. Percentile intervals, widened for classes no generated sample was predicted as.
    keys = list(stats)
    lo, hi = percentile_interval(torch.stack([stats[key][1] for key in keys], dim=1), level=level)
    estimates = {key: Estimate(float(stats[key][0]), float(lo[i]), float(hi[i])) for i, key in enumerate(keys)}
    vanished = (torch.bincount(fake_predicted, minlength=num_classes) == 0).nonzero().flatten().tolist()
    return _widen_vanished(estimates, vanished, names, target, minority=minority, n=len(fake), level=level)


def _minority_ratios(
    stats: dict[str, Stat], names: tuple[str, ...], *, minority: int, majority: int | None
) -> dict[str, Stat]:
    """``<metric>/minority_to_majority`` for the six set metrics; NaN without a majority (K = 1)."""
    out = {}
    for metric in SET_METRICS:
        if majority is None:
            out[f"{metric}/{RATIO_GROUP}"] = _nan_stat(len(stats[f"{metric}/all"][1]))
            continue
        (v_min, r_min), (v_maj, r_maj) = stats[f"{metric}/{names[minority]}"], stats[f"{metric}/{names[majority]}"]
        out[f"{metric}/{RATIO_GROUP}"] = (_ratio(v_min, v_maj), _ratio(r_min, r_maj))
    return out


def _share_stats(
    fake_predicted: torch.Tensor,
    fake_counts: torch.Tensor,
    confusion: torch.Tensor,
    confusions: torch.Tensor,
    target: torch.Tensor,
    names: tuple[str, ...],
    *,
    minority: int,
) -> dict[str, Stat]:
    """Raw and corrected shares, the minority's representation ratio and the fairness discrepancy.

    ``fake_counts (B, n)`` resample counts; ``confusions (B, K, K)`` the resampled confusion matrices.
    """
    predicted = torch.nn.functional.one_hot(fake_predicted, len(names)).double()  # (n, K)
    raw = (predicted.mean(0), fake_counts @ predicted / len(fake_predicted))  # (K,), (B, K)
    shares = (correct_shares(raw[0], confusion), correct_shares(raw[1], confusions))
    out: dict[str, Stat] = {}
    for c, name in enumerate(names):
        out[f"share_raw/{name}"] = (raw[0][c], raw[1][:, c])
        out[f"share/{name}"] = (shares[0][c], shares[1][:, c])
    out[f"representation_ratio/{names[minority]}"] = tuple(_ratio(s[..., minority], target[minority]) for s in shares)
    out["fairness_discrepancy/all"] = tuple(_discrepancy(s, target, norm="l2") for s in shares)
    return out


def _widen_vanished(
    estimates: dict[str, Estimate],
    vanished: list[int],
    names: tuple[str, ...],
    target: torch.Tensor,
    *,
    minority: int,
    n: int,
    level: float,
) -> dict[str, Estimate]:
    """Raise ``hi`` of the shares (and representation ratio) of classes seen 0 times in n to at least
    the exact binomial upper bound 1 - ((1 - level)/2)^(1/n) (~3.7/n at 0.95; see the module docstring)."""
    bound = 1 - ((1 - level) / 2) ** (1 / n)
    for c in vanished:
        scales = {f"share_raw/{names[c]}": 1.0, f"share/{names[c]}": 1.0}
        if c == minority and target[c] > 0:
            scales[f"representation_ratio/{names[c]}"] = 1 / float(target[c])
        for key, scale in scales.items():
            e = estimates[key]
            estimates[key] = Estimate(e.value, e.lo, max(e.hi, bound * scale))
    return estimates


def _set_metrics(
    real: torch.Tensor, fake: torch.Tensor, real_counts: torch.Tensor, fake_counts: torch.Tensor, *, k: int
) -> dict[str, Stat]:
    """The six metrics of one real/fake pair: (value, replicates ``(B,)``); NaN where too few samples.

    ``real_counts (B, m)`` and ``fake_counts (B, n)``: how often each sample appears in each resample.
    """
    replicates = real_counts.shape[0]
    out: dict[str, Stat] = {}
    if len(real) > k and len(fake) > k:
        terms = prdc_contributions(real, fake, k=k)
        for metric in PRDC_METRICS:
            term = getattr(terms, metric)
            counts = fake_counts if metric in ("precision", "density") else real_counts
            out[metric] = (term.mean(), counts.double() @ term / len(term))
    else:
        out.update({metric: _nan_stat(replicates) for metric in PRDC_METRICS})
    if len(real) >= 2 and len(fake) >= 2:
        real_weights = torch.cat([torch.ones(1, len(real)), real_counts.double()])  # row 0: the full set
        fake_weights = torch.cat([torch.ones(1, len(fake)), fake_counts.double()])
        fd = _frechet_distances(real, fake, real_weights, fake_weights)
        cubic = _kernel_options(real.shape[1], degree=3, gamma=None, coef0=1)  # the KID kernel
        kid = _kids(real, fake, real_weights, fake_weights, cubic)
        fd_replicates = fd[1:] - (fd[1:].mean() - fd[0])  # bias-shifted: see the module docstring
        out["fd"], out["kid"] = (fd[0], fd_replicates), (kid[0], kid[1:])
    else:
        out["fd"] = out["kid"] = _nan_stat(replicates)
    return out


def _nan_stat(replicates: int) -> Stat:
    return torch.tensor(float("nan"), dtype=torch.float64), torch.full((replicates,), float("nan"), dtype=torch.float64)


def _counts(index: torch.Tensor) -> torch.Tensor:
    """``index (B, n)`` of resamples -> ``(B, n)`` how often each original sample appears in each."""
    counts = torch.zeros(index.shape, dtype=torch.float64)
    return counts.scatter_add_(1, index, torch.ones(index.shape, dtype=torch.float64))


def _majority(target: torch.Tensor, minority: int) -> int | None:
    """The class other than ``minority`` with the largest target share (the first on ties); None if K = 1."""
    others = [c for c in range(len(target)) if c != minority]
    return max(others, key=lambda c: (float(target[c]), -c)) if others else None


def _labels(name: str, labels: Any, num_classes: int, n: int, features: str) -> torch.Tensor:
    labels = as_labels(name, labels, num_classes)
    if len(labels) != n:
        raise ConfigError(f"{name} must have one entry per row of {features} ({n}), got {len(labels)}")
    return labels


def _check_group_names(group_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(group_names) if not isinstance(group_names, str) else ()
    ok = names and all(isinstance(n, str) and n and "/" not in n for n in names) and len(set(names)) == len(names)
    if not ok or set(names) & set(_RESERVED_GROUPS):
        raise ConfigError(
            f"group_names must be K >= 1 unique non-empty names without '/', none of {list(_RESERVED_GROUPS)}, "
            f"got {group_names!r}"
        )
    return names


def _check_target(target_shares: Sequence[float], num_classes: int) -> torch.Tensor:
    try:
        target = None if isinstance(target_shares, str) else torch.as_tensor(list(target_shares), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        target = None
    ok = target is not None and target.shape == (num_classes,) and bool((target >= 0).all())
    if not ok or abs(float(target.sum()) - 1) > 1e-6:
        raise ConfigError(
            f"target_shares must be {num_classes} nonnegative shares summing to 1 (one per group name), "
            f"got {target_shares!r}"
        )
    return target
