"""Which data the next model trains on: the training set of each generation (step 1), and the
classes of the synthetic samples drawn for it (step 4's label policy)."""

from __future__ import annotations

import torch

from genfair.data import Batch, stratified_counts
from genfair.errors import ConfigError

__all__ = ["check_label_policy", "draw_labels", "policy_labels", "training_set", "training_set_size"]


def training_set(kind: str, *, real: Batch, fresh: Batch | None, synthetic: list[Batch]) -> Batch:
    """The training set of a generation g >= 1 (see :class:`~genfair.loops.LoopConfig` for the kinds).

    Args:
        real: generation 0's real set.
        fresh: this generation's new real draw (``fresh`` loops only).
        synthetic: the synthetic sets drawn so far, oldest first (only the last is used
            except by ``accumulate``).
    """
    if kind == "fully_synthetic":
        return synthetic[-1]
    if kind == "augment":
        return Batch.concat([real, synthetic[-1]])
    if kind == "fresh":
        if fresh is None:
            raise ValueError("a fresh loop needs this generation's real draw, got fresh=None")
        return Batch.concat([fresh, synthetic[-1]])
    if kind == "accumulate":
        return Batch.concat([real, *synthetic])
    raise ValueError(f"kind must be one of ['fully_synthetic', 'augment', 'fresh', 'accumulate'], got {kind!r}")


def training_set_size(config, generation: int) -> int:
    """Samples per replicate in generation ``generation``'s training set under ``config``
    (a :class:`~genfair.loops.LoopConfig`), as :func:`training_set` builds it."""
    n, m = config.n_real, config.n_synthetic
    if generation == 0:
        return n
    sizes = {"fully_synthetic": m, "augment": n + m, "fresh": n + m, "accumulate": n + generation * m}
    if config.kind not in sizes:
        raise ValueError(f"kind must be one of {list(sizes)}, got {config.kind!r}")
    return sizes[config.kind]


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
