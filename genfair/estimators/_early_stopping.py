"""Early stopping on a held-out share of each generation's training set
(``estimator.early_stopping``), so that arms of different estimators are trained to the same
standard: until their held-out loss stops improving.

With ``validation = v > 0`` a fit holds out ``round(v * n)`` of the generation's n training
samples, in the classes' own shares (largest remainder, so a 10 % minority keeps about 10 % of
the held-out samples), drawn by the fit's generator; it trains on the rest. Before its first step
and after every ``every`` steps it scores the held-out samples (their mean per-sample loss:
the model's own, or the model under ``H(X_train)`` for a hypernetwork), always under the same
noise (the model's reparameterisation noise is drawn from one seed for every check), and keeps
the state with the lowest score. It stops after ``patience`` checks without a lower score, or at
``steps``, and returns the kept state. The fit reports

  - ``train_steps/all``: the steps it took before it stopped;
  - ``best_step/all``: the step of the state it kept;
  - ``validation_loss/all``: that state's held-out loss.

With ``validation = 0`` (the default) nothing is held out, nothing is drawn, and the fit takes
its ``steps`` as before (:data:`NO_EARLY_STOPPING`).

The options are :class:`~genfair.estimators.EarlyStoppingConfig`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from genfair.data import Batch, stratified_counts
from genfair.estimators._config import EarlyStoppingConfig
from genfair.hypernets import call_method

__all__ = ["EarlyStopping", "held_out_loss", "split_validation"]


def split_validation(train: Batch, config: EarlyStoppingConfig, generator: torch.Generator) -> tuple[Batch, Batch | None]:
    """``(training part, held-out part)`` of a one-replicate training set ``(1, n, ...)``: the
    held-out samples in the classes' shares, drawn without replacement; ``(train, None)`` when
    early stopping is off (nothing drawn)."""
    if not config.active:
        return train, None
    config.check_size(train.n)
    labels = train.y[0].cpu()
    classes = torch.unique(labels)
    sizes = [int((labels == c).sum()) for c in classes]
    counts = stratified_counts(config.held_out(train.n), [size / train.n for size in sizes])
    held = [
        torch.nonzero(labels == c).flatten()[torch.randperm(size, generator=generator)[:count]]
        for c, size, count in zip(classes, sizes, counts)
    ]
    held_index = torch.cat(held).sort().values
    keep = torch.ones(train.n, dtype=torch.bool)
    keep[held_index] = False
    return train.select(torch.nonzero(keep).flatten()), train.select(held_index)


def held_out_loss(model: nn.Module, weights: Mapping[str, torch.Tensor], held: Batch) -> torch.Tensor:
    """The mean per-sample loss of the held-out samples under ``weights`` (a hypernetwork's
    output; empty: the model's own), with the model in evaluation mode (BatchNorm's running
    statistics, as when it generates)."""
    training = model.training
    model.eval()
    try:
        losses = call_method(model, weights, "loss", held.x, held.y) if weights else model.loss(held.x, held.y)
    finally:
        model.train(training)
    return losses.mean()


class EarlyStopping:
    """The stopping rule of one fit: :meth:`check` after every step (it scores the held-out
    samples every ``every`` steps and says whether to stop), :meth:`restore` at the end.

    Args:
        config: the rule.
        steps: the fit's step budget (``estimator.steps``).
        modules: the trained modules whose state is kept (``{"model": model}``, or the
            hypernetwork's).
        loss: the held-out loss of the current state, a float (called without gradients).
        seed: the seed of the noise every check scores under.
    """

    def __init__(self, config: EarlyStoppingConfig, *, steps: int, modules: Mapping[str, nn.Module],
                 loss: Callable[[], torch.Tensor], seed: int) -> None:
        self.config, self.steps, self.modules, self.loss, self.seed = config, steps, dict(modules), loss, seed
        self.best_loss = float("inf")
        self.best_step = 0
        self.waited = 0
        self.stopped = steps
        self.best: dict[str, dict[str, torch.Tensor]] = {}

    def resume(self, first: int, extras: Mapping[str, torch.Tensor]) -> None:
        """Before the first step of a fit that starts at step ``first``: score the starting state
        (``first == 0``), or take the rule's state from a step checkpoint's ``extras``."""
        if first == 0:
            self.check(0)
        else:
            self.load(extras)

    def check(self, done: int) -> bool:
        """After ``done`` steps (0: before the first): score every ``every`` steps and return
        whether to stop (``patience`` checks without improvement, or the budget spent)."""
        if done % self.config.every and done < self.steps:
            return False
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            value = float(self.loss())
        if value < self.best_loss:
            self.best_loss, self.best_step, self.waited = value, done, 0
            self.best = {name: {key: t.detach().clone() for key, t in module.state_dict().items()}
                         for name, module in self.modules.items()}
        else:
            self.waited += 1
        stop = self.waited >= self.config.patience or done >= self.steps
        if stop:
            self.stopped = done
        return stop

    def restore(self) -> dict[str, torch.Tensor]:
        """Load the kept state into the modules; the fit's ``values`` (see the module docstring)."""
        for name, module in self.modules.items():
            module.load_state_dict(self.best[name])
        return {key: torch.tensor([value], dtype=torch.float64) for key, value in
                (("train_steps/all", self.stopped), ("best_step/all", self.best_step), ("validation_loss/all", self.best_loss))}

    def state(self) -> dict[str, torch.Tensor]:
        """What a step checkpoint keeps of the rule (``loop.checkpoint_every``)."""
        scalars = {"early_stopping.best_loss": torch.tensor(self.best_loss, dtype=torch.float64),
                   "early_stopping.best_step": torch.tensor(self.best_step), "early_stopping.waited": torch.tensor(self.waited)}
        kept = {f"early_stopping.best.{name}.{key}": value for name, state in self.best.items() for key, value in state.items()}
        return {**scalars, **kept}

    def load(self, extras: Mapping[str, torch.Tensor]) -> None:
        """Resume the rule from a step checkpoint's extras (see :meth:`state`)."""
        if "early_stopping.best_loss" not in extras:
            return
        self.best_loss = float(extras["early_stopping.best_loss"])
        self.best_step, self.waited = int(extras["early_stopping.best_step"]), int(extras["early_stopping.waited"])
        for name in self.modules:
            prefix = f"early_stopping.best.{name}."
            self.best[name] = {key[len(prefix):]: value for key, value in extras.items() if key.startswith(prefix)}
