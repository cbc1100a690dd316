"""Real labelled images: stratified training draws from per-class pools, held-out images apart.

Every image source splits each chosen class once, deterministically from ``split_seed``, into
a training pool and a held-out set that never overlap. ``draw`` builds an imbalanced training
set on purpose (exactly ``stratified_counts(n, proportions)`` images of each class, drawn
without replacement from that class's pool, independently per replicate); ``heldout`` returns
every held-out image for evaluation. Pixels come back float32 in [0, 1], ``(C, H, W)``.
Nothing is downloaded: scikit-learn's digits are bundled, user data is read from disk.

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from genfair.data._gaussian import stratified_counts
from genfair.errors import ConfigError, check_number, check_positive_int

if TYPE_CHECKING:
    import torch

    from genfair.data._batch import Batch

__all__ = ["DigitsData", "RawImages"]


@dataclass(frozen=True)
class RawImages:
    """Everything a source holds, before classes are chosen and split.

    Attributes:
        pixels: ``(N, C, H, W)`` uint8 or float32; ``pixels / scale`` lies in [0, 1].
        labels: ``(N,)`` int64 index into ``names``.
        names: one name per class in the source, in its natural order.
        scale: the value of a white pixel (255 for uint8 files, 16 for scikit-learn digits).
    """

    pixels: torch.Tensor
    labels: np.ndarray
    names: tuple[str, ...]
    scale: float


@dataclass(frozen=True)
class _Pools:
    """The chosen classes, split: ``train[k]`` and ``held[k]`` are ``(n_k, C, H, W)`` raw pixels."""

    classes: tuple[str, ...]
    shares: tuple[float, ...]
    train: tuple[torch.Tensor, ...]
    held: tuple[torch.Tensor, ...]
    scale: float


class _ImageSource:
    """Shared behaviour of image sources. Subclasses are dataclasses with ``proportions``,
    ``holdout`` and ``split_seed`` fields and implement ``_read`` (all images, no choice) and
    ``_choose`` (indices into ``RawImages.names`` of the chosen classes, in order)."""

    proportions: list[float] | None
    holdout: float
    split_seed: int

    def _read(self) -> RawImages:
        raise NotImplementedError

    def _choose(self, names: tuple[str, ...]) -> list[int]:
        raise NotImplementedError

    def _display_names(self, chosen: list[str]) -> tuple[str, ...]:
        return tuple(chosen)

    def _check_split_args(self) -> None:
        check_number("holdout", self.holdout, above=0, below=1, note="(the share of each class kept apart)")
        check_positive_int("split_seed", self.split_seed, minimum=0)
        if self.proportions is not None:
            _check_shares(self.proportions)

    # ``classes`` is the configuration (which classes, in which order), as in ``data.classes=[3,6]``,
    # so the resolved names get their own property rather than shadowing that field.
    @property
    def group_names(self) -> tuple[str, ...]:
        """Class names in label order: ``y == k`` means ``group_names[k]``."""
        return self._pools().classes

    @property
    def shares(self) -> tuple[float, ...]:
        """The class shares ``draw`` uses: ``proportions``, or the data's own shares if unset."""
        return self._pools().shares

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one image."""
        return tuple(self._pools().train[0].shape[1:])

    def draw(self, replicates: int, n: int, *, generator: torch.Generator) -> Batch:
        """A stratified training set per replicate: x ``(replicates, n, C, H, W)`` float32 in
        [0, 1], y ``(replicates, n)`` int64 class indices, grouped by class.

        Class k contributes exactly ``stratified_counts(n, shares)[k]`` images, drawn without
        replacement from its training pool, independently in every replicate.
        """
        import torch
        from genfair.data._batch import Batch

        check_positive_int("replicates", replicates)
        check_positive_int("n", n)
        pools = self._pools()
        counts = stratified_counts(n, list(pools.shares))
        for name, count, pool in zip(pools.classes, counts, pools.train):
            if count > len(pool):
                raise ConfigError(
                    f"class {name!r} needs {count} training images for n={n} at shares "
                    f"{[round(s, 4) for s in pools.shares]}, but its training pool holds only {len(pool)} "
                    f"(holdout={self.holdout} keeps the rest apart); lower n or that class's share"
                )
        parts = []
        for count, pool in zip(counts, pools.train):
            if count:
                keys = torch.rand(replicates, len(pool), generator=generator, device=generator.device)
                parts.append(pool[keys.argsort(dim=1)[:, :count].cpu()])  # (R, count, C, H, W)
        x = torch.cat(parts, dim=1).to(torch.float32) / pools.scale
        y = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).expand(replicates, -1)
        return Batch(x, y.contiguous())

    def training_pool(self) -> Batch:
        """Every training-pool image of the chosen classes, whatever ``proportions`` say:
        x ``(1, N, C, H, W)`` float32 in [0, 1], y ``(1, N)`` int64, grouped by class.

        What an evaluation classifier is trained on; never overlaps ``heldout()``.
        """
        import torch
        from genfair.data._batch import Batch

        pools = self._pools()
        x = torch.cat(pools.train).to(torch.float32) / pools.scale
        sizes = torch.tensor([len(t) for t in pools.train])
        y = torch.repeat_interleave(torch.arange(len(pools.train)), sizes)
        return Batch(x[None], y[None])

    def heldout(self) -> Batch:
        """Every held-out image of the chosen classes: x ``(1, m, C, H, W)``, y ``(1, m)``."""
        import torch
        from genfair.data._batch import Batch

        pools = self._pools()
        x = torch.cat(pools.held).to(torch.float32) / pools.scale
        sizes = torch.tensor([len(h) for h in pools.held])
        y = torch.repeat_interleave(torch.arange(len(pools.held)), sizes)
        return Batch(x[None], y[None])

    def _pools(self) -> _Pools:
        cached = self.__dict__.get("_cache")  # not a dataclass field: configs stay plain
        if cached is None:
            cached = self.__dict__["_cache"] = self._split(self._read())
        return cached

    def _split(self, raw: RawImages) -> _Pools:
        import torch

        chosen = self._choose(raw.names)
        names = self._display_names([raw.names[i] for i in chosen])
        sizes = [int((raw.labels == i).sum()) for i in chosen]
        if self.proportions is None:
            shares = tuple(s / sum(sizes) for s in sizes)
        elif len(self.proportions) != len(chosen):
            raise ConfigError(
                f"proportions must have one share per class ({len(chosen)} classes: {list(names)}), "
                f"got {len(self.proportions)}: {list(self.proportions)}"
            )
        else:
            shares = tuple(float(p) for p in self.proportions)
        train, held = [], []
        for name, index in zip(names, chosen):
            members = np.flatnonzero(raw.labels == index)
            if len(members) < 2:
                raise ConfigError(
                    f"class {name!r} has {len(members)} image(s); each class needs at least 2 "
                    f"(one for training, one held out)"
                )
            n_held = min(max(round(self.holdout * len(members)), 1), len(members) - 1)
            # Keyed by the class's index in the source, so its split does not depend on which
            # other classes are chosen.
            rng = np.random.default_rng(np.random.SeedSequence(self.split_seed, spawn_key=(index,)))
            order = torch.from_numpy(members[rng.permutation(len(members))])
            held.append(raw.pixels[order[:n_held]])
            train.append(raw.pixels[order[n_held:]])
        return _Pools(names, shares, tuple(train), tuple(held), raw.scale)


@dataclass
class DigitsData(_ImageSource):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 0-9; no download).

    Args:
        classes: digits to use, in label order; default the paper's pair, 3 then 6.
        proportions: training shares per class, each in (0, 1], summing to 1.
        holdout: share of each class's images kept apart for evaluation, in (0, 1).
        split_seed: seed of the per-class train/held-out split.
        class_names: one unique name per class; default the digits as strings.

    Example:
        >>> data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
        >>> batch = data.draw(2, 50, generator=torch.Generator().manual_seed(0))
        >>> tuple(batch.x.shape), batch.class_counts(2).tolist()
        ((2, 50, 1, 8, 8), [[45, 5], [45, 5]])
    """

    classes: list[int] = field(default_factory=lambda: [3, 6])
    proportions: list[float] = field(default_factory=lambda: [0.9, 0.1])
    holdout: float = 0.25
    split_seed: int = 0
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        digits = list(self.classes)
        bad = [d for d in digits if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 9]
        if not digits or bad or len(set(digits)) != len(digits):
            raise ConfigError(f"classes must be distinct digits 0-9, got {digits!r}")
        self._check_split_args()
        if len(self.proportions) != len(digits):
            raise ConfigError(
                f"proportions must have one share per class ({len(digits)} classes: {digits}), "
                f"got {len(self.proportions)}: {list(self.proportions)}"
            )
        names = self.class_names
        if names is not None and (len(names) != len(digits) or len(set(names)) != len(digits)):
            raise ConfigError(f"class_names must be {len(digits)} unique names, got {list(names)}")

    def _read(self) -> RawImages:
        import torch

        from sklearn.datasets import load_digits

        digits = load_digits()
        pixels = torch.from_numpy(digits.images.astype(np.uint8)).reshape(-1, 1, 8, 8)
        return RawImages(pixels, digits.target.astype(np.int64), tuple(str(d) for d in range(10)), 16.0)

    def _choose(self, names: tuple[str, ...]) -> list[int]:
        return list(self.classes)

    def _display_names(self, chosen: list[str]) -> tuple[str, ...]:
        return tuple(self.class_names) if self.class_names is not None else tuple(chosen)


def _check_shares(proportions: list[float]) -> None:
    p = list(proportions)
    ok = len(p) >= 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
    if not ok or any(not 0.0 < v <= 1.0 for v in p) or not math.isclose(sum(p), 1.0, abs_tol=1e-6):
        raise ConfigError(f"proportions must be shares in (0, 1] summing to 1, got {p}")
