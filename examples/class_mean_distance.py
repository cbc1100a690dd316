"""A metric plug-in (``evaluation.extra_metrics``): per class, the distance between the mean of
the model's samples and the mean of the generation's training samples of that class.

    genfair experiment=class_mixture_mad \
        '+evaluation.extra_metrics=[{_target_:examples.class_mean_distance.ClassMeanDistance,samples:200}]'

For each class c and replicate r: ``|| mean(x ~ model(. | c)) - mean(train_r[y = c]) ||_2``
over ``samples`` samples drawn for class c (NaN where the training set has none of c), and
``all``, the mean over the classes present. Unbounded above: ``bounds = (0, None)``. The protocol:
``genfair.metrics.ExtraMetric``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genfair.errors import ConfigError

__all__ = ["ClassMeanDistance"]


class ClassMeanDistance:
    """Distance between each class's sample mean and its training mean (see the module docstring).

    Args:
        classes: the data's class names (passed by genfair).
        samples: samples drawn per class and replicate.
    """

    name = "mean_dist"
    bounds = (0, None)

    def __init__(self, classes: Sequence[str], samples: int = 100) -> None:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"samples must be a positive integer, got {samples!r}")
        self.classes, self.samples = tuple(classes), samples

    def measure(self, model, train, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``{class: (R,), "all": (R,)}`` float64 distances."""
        replicates = train.x.shape[0]
        distances = {}
        with torch.no_grad():
            for c, name in enumerate(self.classes):
                labels = torch.full((replicates, self.samples), c, dtype=torch.int64)
                drawn = model.sample(self.samples, labels=labels, generator=generator).flatten(2).double().cpu()
                x, mask = train.x.flatten(2).double().cpu(), (train.y.cpu() == c)
                count = mask.sum(dim=1, keepdim=True)
                mean = (x * mask[..., None]).sum(dim=1) / count.clamp(min=1)
                distance = torch.linalg.vector_norm(drawn.mean(dim=1) - mean, dim=-1)
                distances[name] = torch.where(count[:, 0] > 0, distance, torch.nan)
        distances["all"] = torch.stack(list(distances.values())).nanmean(dim=0)
        return distances
