"""Plug-ins that break their protocol, for tests/test_plugins.py (imported by ``genfair`` from the
repository root as ``tests._plugin_cases.<Name>``, like a user's own module)."""

from __future__ import annotations

import torch
from torch import nn

from genfair.data import Batch


class NoBounds:
    """A metric that does not declare the range of its values."""

    name = "unbounded"

    def measure(self, model, train, generator):
        return {"all": torch.zeros(train.x.shape[0])}


class WrongShapeMetric:
    """A metric whose values are one number, not one per replicate."""

    name = "scalar"
    bounds = (0, 1)

    def measure(self, model, train, generator):
        return {"all": torch.zeros(())}


class UnitShare:
    """A metric in [0, 1]: the training set's share of class 0, per replicate."""

    name = "class0_share"
    bounds = (0, 1)

    def measure(self, model, train, generator):
        return {"all": (train.y == 0).double().mean(dim=1)}


class ShapeBreaker:
    """The closed-form fit, except that from generation ``break_at`` on it replaces the means by
    a tensor of another shape."""

    def __init__(self, break_at: int = 1) -> None:
        self.break_at = break_at

    def fit(self, model, train, generator, context):
        model.fit(train.x, train.y)
        if context.generation >= self.break_at:
            model.means = nn.Parameter(model.means.detach()[..., :1].clone())
        return model


class Truncating:
    """Keeps the real set and the last synthetic set but from generation ``break_at`` on drops
    one sample: the wrong size."""

    keeps_history = False

    def __init__(self, break_at: int = 1) -> None:
        self.break_at = break_at

    def size(self, generation, *, n_real, n_synthetic):
        return n_real + n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator):
        train = Batch.concat([real, synthetic[-1]])
        return Batch(train.x[:, 1:], train.y[:, 1:]) if generation >= self.break_at else train


class Relabelling:
    """Augment, with every label shifted past the data's classes."""

    keeps_history = False

    def size(self, generation, *, n_real, n_synthetic):
        return n_real + n_synthetic

    def compose(self, generation, *, real, synthetic, draw_real, generator):
        train = Batch.concat([real, synthetic[-1]])
        return Batch(train.x, train.y + 5)


class NoCompose:
    """A loop kind without compose."""

    keeps_history = False

    def size(self, generation, *, n_real, n_synthetic):
        return n_real + n_synthetic
