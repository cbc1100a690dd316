"""Curation: a verifier between sampling and retraining (step 4 of the loop, ``loop.curation``).

A verifier judges each synthetic sample ``x`` against the class ``y`` it was drawn for and
returns a :class:`Verdict`: a predicted class and a score in [0, 1]. A rule of
:class:`~genfair.loops.CurationConfig` turns verdicts into the samples that the next generation
trains on (agreement, confidence, top fraction per class), with or without redrawing the
rejected ones. Two verifiers come with the loop:

  - :class:`ClassifierVerifier`: a classifier of images (the deep arms build one on the real
    training pool, separate from the evaluation classifier): predicted = argmax_k p(k | x),
    score = p(y | x), the softmax probability of the class the sample was drawn for;
  - :func:`gaussian_verifier`: the analytic models' fitted class Gaussians: predicted = the
    class of highest fitted density, score = P(chi2_d >= r^2), r the Mahalanobis radius of x
    around its class's fitted mean; the confidence rule then keeps the ball r <= c (truncation,
    whose effect on the variance has the closed form
    ``genfair.loops._theory.truncated_gaussian_variance_factor``).

Curation as in self-consuming loops with a verifier: Feng et al. 2024 (arXiv 2406.07515),
Yi et al. 2025 (arXiv 2510.16657).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genfair.errors import ConfigError, GenerationFailed
from genfair.loops._config import CurationConfig, LoopConfig

__all__ = [
    "ClassifierVerifier",
    "Curated",
    "Verdict",
    "Verifier",
    "check_curation",
    "curate",
    "gaussian_verifier",
]


@dataclass(frozen=True)
class Verdict:
    """What a verifier says of samples ``(R, n)``: ``predicted`` int64 classes and ``score``
    float64 in [0, 1], its confidence that each sample is a good one of the class it was drawn for."""

    predicted: torch.Tensor
    score: torch.Tensor


Verifier = Callable[[nn.Module, torch.Tensor, torch.Tensor], Verdict]
"""``(model that drew the samples, x (R, n, *shape), labels (R, n)) -> Verdict``."""

Draw = Callable[[torch.Tensor], torch.Tensor]
"""``labels (R, n) -> x (R, n, *shape)``: one draw from the generation's model for those classes."""


class ClassifierVerifier:
    """Judge image samples by a classifier: predicted = argmax of its logits, score = the
    softmax probability of the class each sample was drawn for.

    Args:
        logits: ``x (n, C, H, W) -> (n, K)`` logits, e.g. the ``logits`` method of a
            ``genfair.metrics.EvaluationClassifier`` (no gradients needed).
    """

    def __init__(self, logits: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.logits = logits

    def __call__(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> Verdict:
        probs = torch.softmax(self.logits(x.reshape(-1, *x.shape[2:])).to(torch.float64), dim=-1)
        probs = probs.reshape(*x.shape[:2], -1).to(labels.device)
        return Verdict(probs.argmax(dim=-1), probs.gather(-1, labels[..., None])[..., 0])


def gaussian_verifier(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> Verdict:
    """The fitted class Gaussians of ``model`` as verifier (see the module docstring).

    ``model`` has ``means (R, K, d)`` and ``covs (R, K, d, d)`` (``genfair.models.ClassGaussianModel``);
    ``x (R, n, d)``, ``labels (R, n)``. r^2 = (x - mu_y)^T Sigma_y^+ (x - mu_y) with the
    pseudo-inverse (a class refitted on too few samples may have a singular covariance), and
    score = P(chi2_d >= r^2) = Q(d / 2, r^2 / 2) (the regularised upper incomplete gamma).
    """
    means, covs = model.means.detach(), model.covs.detach()
    eigenvalues, vectors = torch.linalg.eigh(covs)  # (R, K, d), (R, K, d, d)
    floor = eigenvalues.amax(dim=-1, keepdim=True).clamp(min=0) * 1e-12
    usable = eigenvalues > floor
    inverse = torch.where(usable, 1.0 / eigenvalues.clamp(min=torch.finfo(eigenvalues.dtype).tiny), 0.0)
    centred = x.to(means.dtype)[:, :, None, :] - means[:, None]  # (R, n, K, d)
    projected = (centred[..., None, :] @ vectors[:, None]).squeeze(-2)  # (R, n, K, d)
    radius_sq = (projected.square() * inverse[:, None]).sum(-1)  # (R, n, K)
    log_det = torch.where(usable, eigenvalues.clamp(min=torch.finfo(eigenvalues.dtype).tiny).log(), 0.0).sum(-1)
    predicted = (-0.5 * (radius_sq + log_det[:, None])).argmax(dim=-1)
    own = radius_sq.gather(-1, labels[..., None])[..., 0]
    dim = torch.tensor(means.shape[-1] / 2.0, dtype=own.dtype)
    return Verdict(predicted, torch.special.gammaincc(dim, own / 2.0))


@dataclass(frozen=True)
class Curated:
    """The synthetic samples that survived curation, and what it cost.

    Attributes:
        x: ``(R, m, *shape)`` kept samples (m = ``n_synthetic`` with redraw, fewer without).
        labels: ``(R, m)`` their classes.
        drawn: ``(R, K)`` samples the verifier judged, per class.
        kept: ``(R, K)`` samples it accepted, per class.
        unverified: ``(R,)`` samples left in the set unaccepted when ``max_draws`` ran out
            (``on_cap=mark``); 0 otherwise.
    """

    x: torch.Tensor
    labels: torch.Tensor
    drawn: torch.Tensor
    kept: torch.Tensor
    unverified: torch.Tensor

    def values(self, classes: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Record entries, each ``(R,)`` float64: ``accept_rate/<class>`` and ``accept_rate/all``
        (kept / drawn; NaN for a class with no sample drawn), ``draws/all`` (samples drawn per
        replicate) and ``unverified/all``."""
        drawn, kept = self.drawn.to(torch.float64), self.kept.to(torch.float64)
        rate = torch.where(drawn > 0, kept / drawn.clamp(min=1), torch.nan)
        values = {f"accept_rate/{name}": rate[:, k] for k, name in enumerate(classes)}
        values["accept_rate/all"] = kept.sum(1) / drawn.sum(1)
        values["draws/all"] = drawn.sum(1)
        values["unverified/all"] = self.unverified.to(torch.float64)
        return values


def check_curation(
    config: LoopConfig, *, replicates: int, relabelled: bool, has_verifier: bool
) -> None:
    """Refuse, before any work, a curation the loop cannot run (messages name the key).

    Args:
        config: the loop's settings.
        replicates: chains the model holds at once (``redraw=false`` leaves each a different
            number of samples, so it needs one).
        relabelled: the synthetic samples get their classes from a labeller after they are drawn
            (``label_synthetic``: an unconditional model): there is no class to verify against.
        has_verifier: a verifier was given.
    """
    curation = config.curation
    if curation.rule == "none":
        return
    where = f"loop.curation.rule={curation.rule}"
    if relabelled:
        raise ConfigError(
            f"{where} verifies each sample against the class it was drawn for, but this loop's samples are "
            "labelled after they are drawn (an unconditional model, or evaluation.synthetic_labels=classifier); "
            "allowed there: loop.curation.rule=none"
        )
    if not has_verifier:
        raise ConfigError(f"{where} needs a verifier (simulate(verifier=...)); none was given")
    if not curation.redraw and replicates != 1:
        raise ConfigError(
            f"loop.curation.redraw=false keeps a different number of samples in each replicate; a model "
            f"holding {replicates} replicates at once needs loop.curation.redraw=true (or loop.replicates=1)"
        )


def curate(
    draw: Draw,
    labels: torch.Tensor,
    *,
    model: nn.Module,
    verifier: Verifier,
    config: CurationConfig,
    num_classes: int,
    generation: int,
) -> Curated:
    """Draw samples for ``labels (R, n)`` and keep those the verifier accepts under ``config.rule``.

    ``agreement`` / ``confidence``: every sample is judged on its own; with ``redraw``, each
    rejected one is drawn again for its class (a whole round of ``n`` is drawn, the rejected
    slots take theirs) until accepted or ``max_draws`` rounds, so the kept samples are independent
    draws from the model restricted to the accepted region and the class counts are ``labels``'.
    ``top_fraction``: per class, the ``ceil(fraction * n_k)`` best-scored of ``n_k`` draws
    (no redraw), or with ``redraw`` the ``n_k`` best of ``rounds * n_k`` draws
    (``rounds = ceil(1 / fraction)``); the kept samples come back grouped by class.

    Raises:
        GenerationFailed: ``max_draws`` ran out with ``on_cap=fail``, or no sample was kept.
    """
    if config.rule == "top_fraction":
        return _top_fraction(draw, labels, model=model, verifier=verifier, config=config, num_classes=num_classes)
    x = draw(labels)
    pending = torch.ones_like(labels, dtype=torch.bool)
    drawn = torch.zeros(labels.shape[0], num_classes, dtype=torch.int64, device=labels.device)
    kept = torch.zeros_like(drawn)
    for round_ in range(config.max_draws if config.redraw else 1):
        if round_:
            fresh = draw(labels)
            slots = pending.to(x.device)
            x[slots] = fresh[slots]  # a rejected slot takes the new draw (kept if accepted, else marked)
        accepted = _accepts(config, verifier(model, x, labels), labels)
        drawn += _per_class(pending, labels, num_classes)
        kept += _per_class(pending & accepted, labels, num_classes)
        pending &= ~accepted
        if not pending.any():
            break
    if not config.redraw:
        keep = ~pending[0]  # one replicate (check_curation)
        if not keep.any():
            raise GenerationFailed(generation, f"curation ({config.rule}) kept none of the {labels.shape[1]} samples")
        return Curated(x[:, keep.to(x.device)], labels[:, keep], drawn, kept, torch.zeros(1, dtype=torch.int64))
    left = pending.sum(dim=1)
    if left.any() and config.on_cap == "fail":
        raise GenerationFailed(
            generation,
            f"curation ({config.rule}) left {int(left.max())} of {labels.shape[1]} samples unaccepted after "
            f"loop.curation.max_draws={config.max_draws} draws each; raise max_draws, loosen the rule, "
            "or set loop.curation.on_cap=mark",
        )
    return Curated(x, labels, drawn, kept, left)


def _accepts(config: CurationConfig, verdict: Verdict, labels: torch.Tensor) -> torch.Tensor:
    """``(R, n)`` bool: which samples the rule keeps (agreement or confidence)."""
    if config.rule == "agreement":
        return verdict.predicted.to(labels.device) == labels
    if config.rule == "confidence":
        return verdict.score.to(labels.device) >= config.threshold
    raise ConfigError(f"curation.rule must be 'agreement' or 'confidence' here, got {config.rule!r}")


def _top_fraction(
    draw: Draw, labels: torch.Tensor, *, model: nn.Module, verifier: Verifier, config: CurationConfig, num_classes: int
) -> Curated:
    rounds = config.rounds if config.redraw else 1
    xs, scores = [], []
    for _ in range(rounds):
        x = draw(labels)
        xs.append(x)
        scores.append(verifier(model, x, labels).score.to(labels.device))
    x, score, candidates = torch.cat(xs, dim=1), torch.cat(scores, dim=1), labels.repeat(1, rounds)
    counts = _per_class(torch.ones_like(labels, dtype=torch.bool), labels, num_classes)  # (R, K)
    quota = counts if config.redraw else torch.ceil(config.fraction * counts - 1e-9).to(torch.int64)
    # Candidates class by class (class 0 first), best score first within a class.
    order = torch.argsort(score, dim=1, descending=True, stable=True)
    order = order.gather(1, torch.argsort(candidates.gather(1, order), dim=1, stable=True))
    ranked = candidates.gather(1, order)  # (R, rounds * n) classes in that order
    start = torch.cumsum(rounds * counts, dim=1) - rounds * counts  # first position of each class
    rank = torch.arange(ranked.shape[1], device=labels.device) - start.gather(1, ranked)
    keep = rank < quota.gather(1, ranked)
    index = order[keep].reshape(labels.shape[0], -1)  # the same number per replicate (check_curation)
    shape = (*index.shape, *x.shape[2:])
    kept_x = x.gather(1, index.to(x.device).reshape(*index.shape, *([1] * (x.dim() - 2))).expand(shape))
    return Curated(
        kept_x, candidates.gather(1, index), rounds * counts, quota,
        torch.zeros(labels.shape[0], dtype=torch.int64, device=labels.device),
    )


def _per_class(mask: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(R, K)`` int64: how many samples of each class ``mask (R, n)`` holds."""
    rows = num_classes * torch.arange(labels.shape[0], device=labels.device)[:, None]
    flat = torch.bincount((labels + rows)[mask], minlength=labels.shape[0] * num_classes)
    return flat.reshape(labels.shape[0], num_classes)
