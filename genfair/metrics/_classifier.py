"""The evaluation classifier: a small CNN trained once on a source's real images, then cached.

No Inception network can be downloaded here (docs/references.md §3), so every image metric
works in the space of a classifier trained on the real training pool of the image source
under study: its penultimate layer gives the features of precision/recall, density/coverage,
FD and KID (reported as "FD"/"KID", never "FID"), and its predictions give the class shares
of generated samples and the classes of samples from unconditional models. Its held-out
confusion matrix is what a class-share correction (CLEAM, Teo et al. 2023) needs.

The classifier is trained once per (data, config) and kept under
``<cache>/classifiers/<key>/`` as ``model.safetensors`` plus ``classifier.json``; the key is a
sha256 of the training pool, the held-out set, the class names, the config and
:data:`CLASSIFIER_VERSION`, so different data or settings never share an entry. A bad entry
is retrained and replaced, never unpickled.

Example:
    >>> from genfair.data import DigitsData
    >>> trained = load_or_train_classifier(DigitsData(classes=[3, 6]))  # doctest: +SKIP
    >>> trained.model.features(DigitsData().heldout().x[0]).shape  # doctest: +SKIP
    torch.Size([91, 32])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genfair.checkpoint import load_tensors, read_json, save_tensors, write_json
from genfair.data._batch import Batch
from genfair.errors import ConfigError, check_positive_int
from genfair.metrics._classifier_config import ClassifierConfig
from genfair.training import take_step

__all__ = [
    "CLASSIFIER_VERSION",
    "ClassifierConfig",
    "EvaluationClassifier",
    "LabelledImageSource",
    "TrainedClassifier",
    "default_cache_dir",
    "load_or_train_classifier",
    "train_classifier",
]

log = logging.getLogger("genfair")

# Part of every cache key: bump it whenever the architecture, the training procedure or the
# stored format changes, so old entries are never loaded into a different network.
CLASSIFIER_VERSION = 1
MIN_SIDE = 8  # smallest image height/width the network accepts (scikit-learn's 8x8 digits)
POOLED_SIDE = 4  # the convolutional features are average-pooled to POOLED_SIDE x POOLED_SIDE


class EvaluationClassifier(nn.Module):
    """A small CNN on ``(C, H, W)`` images in [0, 1], any ``H, W >= 8``.

    conv3x3(C -> w) ReLU, conv3x3(w -> 2w) ReLU, maxpool 2, conv3x3(2w -> 2w) ReLU, adaptive
    average pool to 4x4, linear -> ``feature_dim`` (the penultimate layer: the features, a
    linear bottleneck), linear -> ``num_classes`` (the logits). Adaptive pooling makes one design serve 8x8 digits
    and 28x28 or 32x32 images alike.

    Args:
        sample_shape: ``(C, H, W)`` of the images it will see; inputs must match it.
        num_classes: number of classes K.
        feature_dim: width of the penultimate layer.
        width: channels of the first convolution (``2 * width`` after it).

    ``features``, ``logits`` and ``predict`` run without gradients, in chunks of
    ``batch_size`` images, and return on the input's device; training uses ``forward``.
    """

    def __init__(
        self, sample_shape: tuple[int, int, int], num_classes: int, *, feature_dim: int = 32, width: int = 16
    ) -> None:
        super().__init__()
        shape = tuple(sample_shape)
        ok = len(shape) == 3 and all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        if not ok or shape[0] < 1 or min(shape[1:]) < MIN_SIDE:
            raise ConfigError(
                f"sample_shape must be (C, H, W) with C >= 1 and H, W >= {MIN_SIDE}, got {sample_shape!r}"
            )
        self.sample_shape = shape
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.feature_dim = check_positive_int("feature_dim", feature_dim)
        self.width = check_positive_int("width", width)
        self.body = nn.Sequential(
            nn.Conv2d(shape[0], width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(POOLED_SIDE),
            nn.Flatten(),
            # No activation after the feature layer: with a ReLU here a third of the 32
            # features died (zero on every image), wasting the space the metrics work in.
            nn.Linear(2 * width * POOLED_SIDE**2, feature_dim),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, K)`` of ``x`` ``(n, C, H, W)``, with gradients (for training)."""
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """Penultimate-layer features ``(n, feature_dim)`` of images ``x`` ``(n, C, H, W)``."""
        return self._chunked(self.body, x, batch_size)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """Class logits ``(n, K)`` of images ``x`` ``(n, C, H, W)``."""
        return self._chunked(self, x, batch_size)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
        """Predicted classes ``(n,)`` int64 of images ``x`` ``(n, C, H, W)``."""
        return self.logits(x, batch_size=batch_size).argmax(dim=1)

    def _chunked(self, layer: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        check_positive_int("batch_size", batch_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"x must have shape (n, {', '.join(map(str, self.sample_shape))}) (the classifier's "
                f"sample_shape), got {tuple(x.shape)}; flatten replicates with x.reshape(-1, *x.shape[2:])"
            )
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        try:
            parts = [layer(chunk.to(device, torch.float32)).to(x.device) for chunk in x.split(batch_size)]
        finally:
            self.train(was_training)
        out_dim = self.feature_dim if layer is self.body else self.num_classes
        return torch.cat(parts) if parts else x.new_zeros((0, out_dim), dtype=torch.float32)


@dataclass(frozen=True)
class TrainedClassifier:
    """A trained evaluation classifier and how well it does on held-out real images.

    Attributes:
        model: the network, in eval mode, on the CPU (or the training data's device).
        heldout_accuracy: share of all held-out images classified correctly.
        per_class_accuracy: ``(K,)`` float32 recall of each class on its held-out images
            (NaN for a class with none).
        confusion: ``(K, K)`` int64 held-out counts; row = true class, column = predicted.
    """

    model: EvaluationClassifier
    heldout_accuracy: float
    per_class_accuracy: torch.Tensor
    confusion: torch.Tensor


class LabelledImageSource(Protocol):
    """What :func:`load_or_train_classifier` needs of an image source (``DigitsData``,
    ``ImageFileData``)."""

    @property
    def group_names(self) -> tuple[str, ...]: ...

    def training_pool(self) -> Batch: ...

    def heldout(self) -> Batch: ...


def train_classifier(
    train: Batch, heldout: Batch, num_classes: int, config: ClassifierConfig | None = None
) -> TrainedClassifier:
    """Train an :class:`EvaluationClassifier` on ``train`` and score it on ``heldout``.

    Both batches hold images x ``(R, n, C, H, W)`` in [0, 1] and labels y ``(R, n)`` in
    ``0..K-1``; replicates are pooled. Training is class-balanced by a weighted loss: class k's
    images weigh ``N / (K n_k)`` in the cross-entropy, so every class counts equally whatever
    its size (no image is repeated or dropped, unlike balanced sampling). It is deterministic
    given ``config.seed``: the initial weights come from a forked global RNG, the batch order
    and shifts from a ``torch.Generator``; the caller's global RNG state is left untouched.
    """
    config = config if config is not None else ClassifierConfig()
    check_positive_int("num_classes", num_classes, minimum=2)
    x, y = _images("train", train, num_classes)
    x_held, y_held = _images("heldout", heldout, num_classes)
    if x_held.shape[1:] != x.shape[1:]:
        raise ConfigError(
            f"heldout images must have the training images' shape {tuple(x.shape[1:])}, got {tuple(x_held.shape[1:])}"
        )
    counts = torch.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ConfigError(
            f"train must hold images of every one of the {num_classes} classes; classes {missing} have none"
        )
    class_weight = (len(y) / (num_classes * counts)).to(torch.float32)

    start = time.perf_counter()
    init_seed, order_seed = (int(s) for s in np.random.SeedSequence(config.seed).generate_state(2))
    with torch.random.fork_rng(devices=[]):  # nn layers draw their initial weights from the global RNG
        torch.manual_seed(init_seed)
        model = EvaluationClassifier(
            tuple(x.shape[1:]), num_classes, feature_dim=config.feature_dim, width=config.width
        ).to(x.device)
    generator = torch.Generator(device=x.device).manual_seed(order_seed)
    _fit(model, x, y, class_weight, config, generator)
    model.eval()
    result = _score(model, x_held, y_held, num_classes)
    log.info(
        "evaluation classifier trained in %.1f s on %d images: held-out accuracy %.4f (%d images), per class %s",
        time.perf_counter() - start,
        len(y),
        result.heldout_accuracy,
        len(y_held),
        [round(a, 4) for a in result.per_class_accuracy.tolist()],
    )
    return result


def _fit(
    model: EvaluationClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    class_weight: torch.Tensor,
    config: ClassifierConfig,
    generator: torch.Generator,
) -> None:
    """AdamW on the class-weighted cross-entropy, cosine-annealed learning rate; a NaN or
    infinite loss raises :class:`FloatingPointError` naming the step and the value
    (``evaluation classifier: loss is nan at step 3 of 40``, :func:`genfair.training.take_step`)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(y) / config.batch_size)
    total, step = config.epochs * steps_per_epoch, 0
    class_weight = class_weight.to(x.device)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator, device=x.device)
        for index in order.split(config.batch_size):
            for group in optimizer.param_groups:
                group["lr"] = config.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            images = _shift(x[index], generator) if config.augment else x[index]
            loss = F.cross_entropy(model(images), y[index], weight=class_weight)
            take_step(loss, optimizer, what="evaluation classifier", step=step, steps=total)
            step += 1


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image ``(n, C, H, W)`` moved by its own random -1/0/+1 pixel in each direction
    (edges replicated)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dy, dx = torch.randint(0, 3, (2, n, 1), generator=generator, device=x.device)
    rows = dy + torch.arange(h, device=x.device)  # (n, H)
    cols = dx + torch.arange(w, device=x.device)  # (n, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def _score(model: EvaluationClassifier, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> TrainedClassifier:
    """Held-out accuracy, per-class recall and confusion counts (rows true, columns predicted)."""
    predicted = model.predict(x)
    confusion = torch.bincount(y * num_classes + predicted, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes).cpu()
    return _result(model, confusion)


def _result(model: EvaluationClassifier, confusion: torch.Tensor) -> TrainedClassifier:
    correct = confusion.diagonal()
    per_class = correct.to(torch.float32) / confusion.sum(dim=1).to(torch.float32)  # NaN where a row is empty
    accuracy = float(correct.sum()) / max(int(confusion.sum()), 1)
    return TrainedClassifier(model, accuracy, per_class, confusion)


def _images(name: str, batch: Batch, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch``'s images ``(R * n, C, H, W)`` float32 and labels ``(R * n,)`` int64, checked."""
    if not isinstance(batch, Batch) or batch.x.dim() != 5:
        shape = tuple(batch.x.shape) if isinstance(batch, Batch) else type(batch).__name__
        raise ConfigError(f"{name} must be a Batch of images x (replicates, n, C, H, W), got {shape}")
    x = batch.x.reshape(-1, *batch.x.shape[2:]).to(torch.float32)
    y = batch.y.reshape(-1).to(torch.int64)
    if len(y) == 0:
        raise ConfigError(f"{name} must hold at least one image, got none")
    if y.min() < 0 or y.max() >= num_classes:
        raise ConfigError(
            f"{name} labels must lie in 0..{num_classes - 1}, got values in [{int(y.min())}, {int(y.max())}]"
        )
    return x, y


# --- the cache -------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$GENFAIR_CACHE`` if set, else ``~/.cache/genfair``."""
    return Path(os.environ.get("GENFAIR_CACHE") or "~/.cache/genfair").expanduser()


def load_or_train_classifier(
    data: LabelledImageSource, *, config: ClassifierConfig | None = None, cache_dir: str | Path | None = None
) -> TrainedClassifier:
    """The evaluation classifier of ``data``: loaded from the cache, else trained and cached.

    Args:
        data: an image source with ``training_pool()``, ``heldout()`` and ``group_names``.
        config: how to build and train it; default :class:`ClassifierConfig()`.
        cache_dir: root of the cache; default :func:`default_cache_dir`. Entries live under
            ``<cache_dir>/classifiers/<key>/``.

    A corrupt, truncated or altered entry is logged as a warning, retrained and replaced; a
    cache that cannot be written is logged and the trained classifier returned anyway.
    """
    config = config if config is not None else ClassifierConfig()
    train, heldout, names = data.training_pool(), data.heldout(), tuple(data.group_names)
    key = _cache_key(train, heldout, names, config)
    entry = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "classifiers" / key
    if (entry / "classifier.json").exists():
        try:
            trained = _load_entry(entry, key, heldout)
        except (ConfigError, KeyError, TypeError, ValueError, RuntimeError) as error:
            log.warning("evaluation classifier cache entry %s is unusable (%s); retraining it", entry, error)
        else:
            log.info(
                "evaluation classifier loaded from %s: held-out accuracy %.4f", entry, trained.heldout_accuracy
            )
            return trained
    trained = train_classifier(train, heldout, len(names), config)
    try:
        _save_entry(entry, key, trained, names, config)
    except OSError as error:
        log.warning("evaluation classifier could not be cached at %s (%s); using it uncached", entry, error)
    return trained


def _cache_key(train: Batch, heldout: Batch, names: tuple[str, ...], config: ClassifierConfig) -> str:
    """sha256 of the version, config, class names, and both sets' shapes, dtypes and bytes."""
    tensors = (train.x, train.y, heldout.x, heldout.y)
    header = {
        "classifier_version": CLASSIFIER_VERSION,
        "config": dataclasses.asdict(config),
        "group_names": list(names),
        "tensors": [[list(t.shape), str(t.dtype)] for t in tensors],
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _save_entry(
    entry: Path, key: str, trained: TrainedClassifier, names: tuple[str, ...], config: ClassifierConfig
) -> None:
    # Weights first, then the record naming their sha256: a reader never trusts weights the
    # record does not vouch for.
    sha = save_tensors(entry / "model.safetensors", trained.model.state_dict())
    model = trained.model
    write_json(
        entry / "classifier.json",
        {
            "classifier_version": CLASSIFIER_VERSION,
            "key": key,
            "config": dataclasses.asdict(config),
            "group_names": list(names),
            "sample_shape": list(model.sample_shape),
            "num_classes": model.num_classes,
            "feature_dim": model.feature_dim,
            "width": model.width,
            "heldout_accuracy": trained.heldout_accuracy,
            "per_class_accuracy": [None if math.isnan(a) else a for a in trained.per_class_accuracy.tolist()],
            "confusion": trained.confusion.tolist(),
            "weights_sha256": sha,
        },
    )


def _load_entry(entry: Path, key: str, heldout: Batch) -> TrainedClassifier:
    """Rebuild a cached classifier; raises on anything inconsistent."""
    record = read_json(entry / "classifier.json")
    if record["classifier_version"] != CLASSIFIER_VERSION or record["key"] != key:
        raise ConfigError("its classifier_version or key does not match")
    model = EvaluationClassifier(
        tuple(record["sample_shape"]),
        record["num_classes"],
        feature_dim=record["feature_dim"],
        width=record["width"],
    )
    state = load_tensors(entry / "model.safetensors", sha256=str(record["weights_sha256"]))
    model.load_state_dict(state, strict=True)  # RuntimeError on missing or misshapen weights
    model.eval()
    confusion = torch.tensor(record["confusion"], dtype=torch.int64)
    k = model.num_classes
    held_counts = torch.bincount(heldout.y.reshape(-1).cpu(), minlength=k)
    if confusion.shape != (k, k) or (confusion < 0).any() or not torch.equal(confusion.sum(dim=1), held_counts):
        raise ConfigError("its confusion matrix does not match the held-out class counts")
    return _result(model, confusion)
