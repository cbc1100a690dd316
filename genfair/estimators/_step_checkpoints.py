"""In-generation checkpoints of a fit trained by gradient steps (``loop.checkpoint_every``).

Every ``every`` steps the fit hands the loop's :class:`~genfair.loops.FitCheckpoint` its whole state as
tensors, so that a killed run can restart the generation at that step and end bitwise where an
uninterrupted run ends (on the CPU):

  - ``module.<name>.<key>``: the ``state_dict`` of each trained module (weights and buffers,
    e.g. BatchNorm's running statistics; a hypernetwork's and its target's);
  - ``optimizer.<i>.<key>``: the optimiser's per-parameter state (Adam's ``step``, ``exp_avg``,
    ``exp_avg_sq``), ``i`` the parameter's index in the optimiser;
  - ``rng.generator``: the fit's ``torch.Generator`` state, ``rng.global``: the forked global
    CPU RNG's state (``get_state()``, uint8);
  - ``extra.<key>``: whatever else the fit carries between steps (Group DRO's class weights,
    the augmented Lagrangian's multiplier).

Restoring happens after everything the fit draws before its first step (the hypernetwork's
initialisation, a remedy's preparation of the training set), which the resumed fit redraws
from its freshly seeded generator exactly as before; then the generator's and the global RNG's
states are replaced by the saved ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import torch
from torch import nn

from genfair.loops import FitCheckpoint

__all__ = ["StepCheckpoints"]

log = logging.getLogger(__name__)


class StepCheckpoints:
    """Save and restore a fit's state between its steps (see the module docstring).

    Args:
        checkpoint: where to (``None``: never; every method is then a no-op).
        modules: the trained modules by name, e.g. ``{"model": model}``.
        optimiser: their optimiser.
        generator: the fit's generator.
    """

    def __init__(
        self,
        checkpoint: FitCheckpoint | None,
        *,
        modules: Mapping[str, nn.Module],
        optimiser: torch.optim.Optimizer,
        generator: torch.Generator,
    ) -> None:
        self.checkpoint, self.modules, self.optimiser, self.generator = checkpoint, dict(modules), optimiser, generator

    def resume(self) -> tuple[int, dict[str, torch.Tensor]]:
        """``(first step, extras)``: the steps a killed run had done and its extras, with the
        modules, optimiser, generator and global RNG restored; ``(0, {})`` without a checkpoint.
        Call it inside the fit's ``fork_rng``, right before the first step."""
        loaded = self.checkpoint.load() if self.checkpoint is not None else None
        if loaded is None:
            return 0, {}
        step, tensors = loaded
        log.info("restarting the fit after step %d of its in-generation checkpoint (%s)", step, self.checkpoint)
        for name, module in self.modules.items():
            module.load_state_dict(_section(tensors, f"module.{name}."))
        state = {}
        for key, value in _section(tensors, "optimizer.").items():
            index, entry = key.split(".", 1)
            state.setdefault(int(index), {})[entry] = value
        self.optimiser.load_state_dict({"state": state, "param_groups": self.optimiser.state_dict()["param_groups"]})
        self.generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.global"])
        return step, _section(tensors, "extra.")

    def step_done(self, done: int, total: int, extras: Callable[[], Mapping[str, torch.Tensor]] = dict) -> None:
        """After step ``done`` (1-based) of ``total``: save every ``every`` steps, but not after
        the last (the loop then saves the finished generation)."""
        if self.checkpoint is None or done % self.checkpoint.every or done >= total:
            return
        tensors = {"rng.generator": self.generator.get_state(), "rng.global": torch.get_rng_state()}
        for name, module in self.modules.items():
            tensors.update({f"module.{name}.{key}": value for key, value in module.state_dict().items()})
        for index, entry in self.optimiser.state_dict()["state"].items():
            for key, value in entry.items():
                tensors[f"optimizer.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        tensors.update({f"extra.{key}": value for key, value in extras().items()})
        self.checkpoint.save(done, tensors)


def _section(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
