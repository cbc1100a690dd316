"""Which data the next model trains on: the training set of each generation (step 1), and the
classes of the synthetic samples drawn for it (step 4's label policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from genfair.data import Batch, stratified_counts
from genfair.errors import ConfigError, GenerationFailed

__all__ = [
    "TrainingSetRule", "build_rule", "check_label_policy", "check_training_set", "draw_labels", "policy_labels",
    "training_rule", "training_set", "training_set_size",
]


class TrainingSetRule(Protocol):
    """What a loop kind is: how generation g >= 1's training set is composed (step 1 of
    :func:`~genfair.loops.simulate`). Every kind's rule, a built-in one's (``genfair.loops._kinds``)
    as a user's, is built by :func:`training_rule` from ``loop.training_set``'s ``_target_``.

    Attributes:
        keeps_history: whether ``compose`` reads every synthetic set drawn so far (the run then
            keeps them all, and resumes with them); else only the last one is kept.
    """

    keeps_history: bool

    def size(self, generation: int, *, n_real: int, n_synthetic: int) -> int:
        """Samples per replicate in generation ``generation``'s training set (g >= 1)."""

    def compose(
        self, generation: int, *, real: Batch, synthetic: list[Batch], draw_real: Callable[[], Batch],
        generator: torch.Generator,
    ) -> Batch:
        """Generation ``generation``'s training set, ``Batch(x (R, size, *shape), y (R, size))``,
        from generation 0's ``real`` set, the ``synthetic`` sets drawn so far (oldest first; only
        the last one unless ``keeps_history``), ``draw_real()`` (a new real draw of ``n_real``
        samples, from the generation's own stream) and the generation's ``generator``."""


def training_rule(config) -> TrainingSetRule:
    """The rule of ``config`` (a :class:`~genfair.loops.LoopConfig`): what
    ``config.training_set["_target_"]`` builds from the node's other keys. A built-in kind's node
    is its YAML's (``configs/loop/<kind>.yaml``, filled in by ``LoopConfig``), a user's is theirs;
    both are built and checked here, the same way."""
    return build_rule(config.training_set)


def build_rule(node: dict) -> TrainingSetRule:
    """The object that ``node["_target_"]`` (a class or function) builds from ``node``'s other
    keys, checked to have ``keeps_history``, ``size`` and ``compose``; refused in one line naming
    ``loop.training_set._target_`` and the target."""
    from genfair.targets import import_target

    node = dict(node)
    target = node.pop("_target_")
    key = f"loop.training_set._target_={target}"
    factory = import_target(target, key="loop.training_set._target_")
    if not callable(factory):
        raise ConfigError(f"{key} must be a class or function, got {type(factory).__name__}")
    try:
        rule = factory(**node)
    except TypeError as error:
        raise ConfigError(f"{key} refused its arguments {sorted(node)}: {error}") from None
    missing = [m for m in ("size", "compose") if not callable(getattr(rule, m, None))]
    if missing or not isinstance(getattr(rule, "keeps_history", None), bool):
        raise ConfigError(
            f"{key} built a {type(rule).__name__}, which needs methods size(generation, *, n_real, n_synthetic) "
            f"and compose(generation, *, real, synthetic, draw_real, generator) and keeps_history (true or false)"
            + (f"; missing: {missing}" if missing else "")
        )
    return rule


def check_training_set(
    train: Batch, *, rule: TrainingSetRule, config, generation: int, num_classes: int, shortfall: int = 0
) -> None:
    """Raise :class:`~genfair.errors.GenerationFailed` naming the rule and the generation when the
    training set it composed has the wrong size or classes outside the data's. ``shortfall``: the
    samples the synthetic sets it was given lack (curation without redraw keeps fewer than
    ``n_synthetic``), by which the set may fall short of the rule's ``size``."""
    what = f"loop.kind={config.kind}" if config.built_in else f"loop.training_set._target_={config.training_set['_target_']}"
    size = rule.size(generation, n_real=config.n_real, n_synthetic=config.n_synthetic)
    fits = isinstance(train, Batch) and train.x.shape[0] == config.replicates and train.y.shape == train.x.shape[:2]
    if not fits or not size - shortfall <= train.x.shape[1] <= size:
        got = f"x {tuple(train.x.shape)}, y {tuple(train.y.shape)}" if isinstance(train, Batch) else type(train).__name__
        expected = f"{size}" if not shortfall else f"{size - shortfall} to {size} (curation kept {shortfall} fewer)"
        raise GenerationFailed(generation, f"{what} composed a training set of {got}, expected ({config.replicates}, {expected}) samples")
    bad = (train.y < 0) | (train.y >= num_classes)
    if bad.any():
        raise GenerationFailed(
            generation, f"{what} composed a training set with class labels {sorted(set(train.y[bad].tolist()))[:5]} "
            f"outside the data's classes 0..{num_classes - 1}"
        )


def training_set(kind: str, *, real: Batch, fresh: Batch | None, synthetic: list[Batch]) -> Batch:
    """The training set of a generation g >= 1 of a built-in ``kind`` (``fresh``: this
    generation's new real draw, for a kind that draws one)."""
    from genfair.loops import _registry

    kinds = _registry.registered_kinds()
    if kind not in kinds:
        raise ValueError(f"kind must be one of {list(kinds)}, got {kind!r}")

    def draw_real() -> Batch:
        if fresh is None:
            raise ValueError(f"a {kind} loop needs this generation's real draw, got fresh=None")
        return fresh

    rule = build_rule(kinds[kind])
    return rule.compose(len(synthetic), real=real, synthetic=synthetic, draw_real=draw_real, generator=None)


def training_set_size(config, generation: int) -> int:
    """Samples per replicate in generation ``generation``'s training set under ``config``
    (a :class:`~genfair.loops.LoopConfig`), as its rule composes it."""
    if generation == 0:
        return config.n_real
    return training_rule(config).size(generation, n_real=config.n_real, n_synthetic=config.n_synthetic)


def draw_labels(counts: torch.Tensor, n: int, *, generator: torch.Generator) -> torch.Tensor:
    """Classes for ``n`` synthetic samples per replicate, drawn from the class shares of the
    training set (``counts (R, K)``), so a class that fades in one generation stays faded.
    Drawn on the generator's device (the loop's are CPU generators, see ``genfair.devices``),
    whatever device ``counts`` is on; returned there too."""
    if counts.shape[1] == 1:
        return torch.zeros(counts.shape[0], n, dtype=torch.int64, device=generator.device)
    return torch.multinomial(counts.to(generator.device, torch.float64), n, replacement=True, generator=generator)


def policy_labels(
    policy: str,
    *,
    train_counts: torch.Tensor,
    real_counts: torch.Tensor,
    shares: list[float] | None,
    n: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Classes ``(R, n)`` int64 of the ``n`` synthetic samples per replicate under a label policy
    (``loop.synthetic_labels``, see :class:`~genfair.loops.LoopConfig`):

      - ``counts``: :func:`draw_labels` from ``train_counts (R, K)``, the generation's training set;
      - ``real_shares``: exactly ``stratified_counts(n, real_counts[r] / real_counts[r].sum())``
        of each class in replicate r (``real_counts (R, K)``: generation 0's real set);
      - ``balanced``: exactly ``stratified_counts(n, [1/K] * K)``;
      - ``shares``: exactly ``stratified_counts(n, shares)``.

    The stratified policies draw no random numbers and return the classes in order (class 0's
    samples first); the loop's fits and measures do not depend on the order. On the generator's
    device, like :func:`draw_labels`.
    """
    if policy == "counts":
        return draw_labels(train_counts, n, generator=generator)
    replicates, num_classes = train_counts.shape
    if policy == "real_shares":
        rows, which = torch.unique(real_counts.cpu(), dim=0, return_inverse=True)
        counts = [stratified_counts(n, (row / row.sum()).tolist()) for row in rows.to(torch.float64)]
        labels = torch.stack([_in_order(c) for c in counts])[which]
        return labels.to(generator.device)
    if policy == "balanced":
        target = stratified_counts(n, [1.0 / num_classes] * num_classes)
    elif policy == "shares":
        if shares is None or len(shares) != num_classes:
            raise ConfigError(f"synthetic_shares must give one share to each of the {num_classes} classes, got {shares!r}")
        target = stratified_counts(n, list(shares))
    else:
        raise ConfigError(f"synthetic_labels must be one of ['counts', 'real_shares', 'balanced', 'shares'], got {policy!r}")
    return _in_order(target).expand(replicates, -1).contiguous().to(generator.device)


def check_label_policy(config, *, num_classes: int, relabelled: bool) -> None:
    """Refuse, before any work, a label policy (``config.synthetic_labels`` of a
    :class:`~genfair.loops.LoopConfig`) the loop cannot apply: shares that do not match the
    data's ``num_classes``, or any policy but ``counts`` where the samples are ``relabelled``
    after they are drawn (an unconditional model: the classes they were drawn for mean nothing)."""
    config.check_classes(num_classes)
    if relabelled and config.synthetic_labels != "counts":
        raise ConfigError(
            f"loop.synthetic_labels={config.synthetic_labels} sets the classes samples are drawn for, but this "
            "loop's samples are labelled after they are drawn (an unconditional model, or "
            "evaluation.synthetic_labels=classifier); allowed there: loop.synthetic_labels=counts"
        )


def _in_order(counts: list[int]) -> torch.Tensor:
    """``(n,)`` int64: ``counts[k]`` samples of class k, class 0 first."""
    return torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts, dtype=torch.int64))
