"""``estimator=mle`` for a model without a likelihood (:class:`~genfair.models.AdversarialTraining`,
a GAN): simultaneous gradient descent on the players' own losses.

Every step, on one minibatch (``config.batch_size`` samples drawn without replacement, the whole
set if ``None``, as :class:`~genfair.estimators.GradientFit` draws them):

  1. the model's ``adversarial_losses(x, labels, generator=...)``: ``{player: scalar loss}``,
     each player a submodule named by its key (``"generator"``, ``"discriminator"``);
  2. for every player, the gradient of its loss with respect to its own submodule's parameters
     only (``torch.autograd.grad``): the discriminator's loss never moves the generator, nor
     the generator's loss the discriminator, whatever flows through the other network;
  3. one Adam step of every parameter at once, from the gradients of step 2 (Adam is applied
     per parameter, so one optimiser over all of them is each player's own Adam).

Every parameter of the model must belong to exactly one player: a parameter no loss trains, or
one two players would both step, is refused in one line at the first step, before any weight
moves (the players' names are known only once the model has returned its losses). A NaN or
infinite loss raises :class:`~genfair.errors.GenerationFailed` naming the player and the step,
before the step is taken. Like ``GradientFit`` the fit starts from the model's current weights,
runs under a forked global RNG seeded from its generator, passes that generator to the model
for its noise, and checkpoints the generation in progress every ``loop.checkpoint_every``
steps (weights, Adam's moments, generator and RNG states), from which a killed run restarts
the generation and ends where an uninterrupted one ends.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn

from genfair.data import Batch
from genfair.errors import ConfigError, GenerationFailed
from genfair.estimators._config import EstimatorConfig
from genfair.estimators._step_checkpoints import StepCheckpoints
from genfair.loops import FitContext
from genfair.remedies import Remedy, RemedyConfig
from genfair.training import check_finite_loss

__all__ = ["AdversarialFit"]


class AdversarialFit:
    """``config.steps`` simultaneous Adam steps (learning rate ``config.lr``) of every player on
    its own loss (see the module docstring); ``estimator=mle`` only, without a remedy (a remedy
    reweights per-sample likelihoods, which such a model has none of).

    Example:
        >>> fit = AdversarialFit(EstimatorConfig(name="mle", steps=5, batch_size=32))
        >>> # fitted = fit(model, train, generator, context): the loop calls it every generation
    """

    def __init__(self, config: EstimatorConfig, *, remedy: RemedyConfig | None = None) -> None:
        if config.name != "mle" or config.uses_hypernetwork:
            raise ConfigError(
                f"estimator={config.name} needs a per-sample likelihood; a model trained by its adversarial losses "
                "takes estimator=mle"
            )
        if remedy is not None and remedy.name != "none":
            raise ConfigError(
                f"remedy={remedy.name} reweights per-sample losses, which a model trained by its adversarial losses "
                "has none of: use remedy=none"
            )
        self.config = config

    def __call__(self, model: nn.Module, train: Batch, generator: torch.Generator, context: FitContext) -> nn.Module:
        parameters = list(model.parameters())
        optimiser = torch.optim.Adam(parameters, lr=self.config.lr)
        checkpoints = StepCheckpoints(context.checkpoint, modules={"model": model}, optimiser=optimiser, generator=generator)
        batches = Remedy(RemedyConfig(), num_classes=1, minority=0)  # no remedy: GradientFit's minibatches
        model.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            train = batches.prepare(train, generator=generator)
            first, _ = checkpoints.resume()
            for step in range(first, self.config.steps):
                index = batches.batch(self.config.batch_size, generator=generator).to(train.x.device)
                losses = model.adversarial_losses(train.x[:, index], train.y[:, index], generator=generator)
                players = _players(model, losses)
                self._check_finite(losses, step, context)
                gradients = {}
                for name, loss in losses.items():  # 2. each loss moves its own player only
                    owned = players[name]
                    grads = torch.autograd.grad(loss, owned, retain_graph=True, allow_unused=True)
                    if all(g is None for g in grads):
                        raise ConfigError(
                            f"{type(model).__name__}.adversarial_losses: the loss of {name!r} does not depend on any "
                            f"parameter of the submodule {name!r} it trains"
                        )
                    gradients.update(zip(owned, grads))
                optimiser.zero_grad(set_to_none=True)
                for parameter, grad in gradients.items():
                    parameter.grad = grad
                optimiser.step()  # 3. every player at once
                checkpoints.step_done(step + 1, self.config.steps)
        model.eval()
        return model

    def _check_finite(self, losses: Mapping[str, torch.Tensor], step: int, context: FitContext) -> None:
        """Raise :class:`GenerationFailed` if a loss of 0-based ``step`` is NaN or infinite
        (``estimator mle: discriminator loss is nan at step 2 of 3``)."""
        for name, loss in losses.items():
            check_finite_loss(loss, what=f"estimator {self.config.name}", step=step, steps=self.config.steps,
                              name=f"{name} loss", error=functools.partial(GenerationFailed, context.generation))


def _players(model: nn.Module, losses: object) -> dict[str, list[nn.Parameter]]:
    """The parameters each loss trains, ``{player: its submodule's parameters}``; refused in one
    line unless ``losses`` maps submodule names to scalars and every parameter of ``model``
    belongs to exactly one of those submodules."""
    name = f"{type(model).__name__}.adversarial_losses"
    if not isinstance(losses, Mapping) or not losses:
        raise ConfigError(f"{name} must return {{submodule name: scalar loss}}, got {type(losses).__name__}")
    players: dict[str, list[nn.Parameter]] = {}
    owner: dict[int, str] = {}
    for player, loss in losses.items():
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ConfigError(f"{name}: the loss of {player!r} must be a scalar tensor, got {shape}")
        try:
            submodule = model.get_submodule(player) if isinstance(player, str) and player else None
        except AttributeError:
            submodule = None
        if submodule is None:
            names = [child for child, _ in model.named_children()]
            raise ConfigError(f"{name}: {player!r} must name a submodule of {type(model).__name__}, one of {names}")
        players[player] = list(submodule.parameters())
        for parameter in players[player]:
            if id(parameter) in owner:
                raise ConfigError(
                    f"{name}: every parameter must belong to exactly one player; {_name_of(model, parameter)} is in "
                    f"both {owner[id(parameter)]!r} and {player!r}"
                )
            owner[id(parameter)] = player
    untrained = [key for key, parameter in model.named_parameters() if id(parameter) not in owner]
    if untrained:
        raise ConfigError(
            f"{name}: every parameter must belong to exactly one player of {sorted(players)}; "
            f"{untrained[:3]}{' ...' if len(untrained) > 3 else ''} belong to none"
        )
    return players


def _name_of(model: nn.Module, parameter: nn.Parameter) -> str:
    return next((repr(key) for key, p in model.named_parameters() if p is parameter), "a parameter")
