"""``HyperNetwork``: predict a target module's weights from a data set, for any ``nn.Module``.

The target is never modified or subclassed: the hypernetwork returns a dict keyed exactly like
``target.named_parameters()`` and the target runs under it with ``torch.func.functional_call``,
so gradients reach the hypernetwork and not the target's own copies of those tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ._encoder import SetEncoder
from ._errors import HyperNetworkError, check_choice
from ._functional import call_method
from ._heads import ChunkedHead, DenseHead
from ._options import BUFFER_POLICIES, HEADS, BufferPolicy, Head
from ._targets import Positivity, TargetLayout

__all__ = ["BUFFER_POLICIES", "HEADS", "BufferPolicy", "Head", "HyperNetwork", "SizeReport"]

Randomness = Literal["different", "same"]
RANDOMNESS: tuple[str, ...] = ("different", "same")


@dataclass(frozen=True)
class SizeReport:
    """Parameter counts: the target's, the generated values', and the hypernetwork's split into
    its base weights (residual only), encoder and head. ``ratio`` = hypernetwork / target."""

    target: int
    generated: int
    hypernetwork: int
    base: int
    encoder: int
    head: int

    @property
    def ratio(self) -> float:
        return self.hypernetwork / self.target


class HyperNetwork(nn.Module):
    """Weights of ``target`` predicted from a data set: ``H(X) = R(h2(mean_i h1(x_i)))``.

    Args:
        target: any ``nn.Module``; its parameters are read once, the module is not changed.
            It is not a submodule of the hypernetwork: move it to a device yourself.
        sample_shape: shape of one data sample, e.g. ``(64,)`` or ``(1, 8, 8)``.
        include, exclude: ``fnmatch`` patterns on parameter names choosing the generated tensors;
            the rest stay the target's own (see :attr:`kept`).
        head: ``"chunked"`` (a shared generator with chunk embeddings; default) or ``"dense"``
            (one linear head per tensor, as in the authors' torchhyper).
        residual: generate ``base + delta(X)`` around base weights that start as the target's own
            and a delta that starts at exactly zero, so a fresh wrap *is* the unwrapped model
            (default). Without it the weights are generated outright, each tensor's outputs
            starting at the scale ``1 / sqrt(fan_in)`` of its own initialisation.
        positive: ``{pattern: "softplus" | "softmax" | "exp" | "psd"}`` for tensors that must be
            positive (variances; mixture weights take ``softmax`` over their last dimension;
            covariance matrices take ``psd``, ``A A^T`` of a generated square factor ``A``).
        buffers: who owns buffers such as BatchNorm's running statistics, whose values the
            hypernetwork never generates:
            ``"batch"`` (default) normalisation layers always use the statistics of the batch
            they see, in training and evaluation alike; running statistics are neither read nor
            written, so weight sets predicted from different data never share state.
            ``"frozen"``: the target's buffers are read and never written (updates go to copies).
            ``"track"``: the target's buffers are read and updated as in ordinary training; every
            weight set then shares one set of running statistics (only for a single data set).
        num_classes: if set, the encoder also takes the samples' labels.
        hidden, embedding_dim: widths of the set encoder.
        set_size_input: the encoder also reads each set's size n (as ``log n``), for an
            estimator trained over sets of several sizes (see :class:`SetEncoder`).
        chunk_size, chunk_dim: the chunked head's chunk length (default ~sqrt of the generated
            size) and chunk-embedding width.
        per_replicate: the target holds independent replicates along every parameter's first
            dimension (genfair's analytic models); data ``(R, n, *sample_shape)`` then gives each
            replicate its own weights, with one shared hypernetwork.

    Example:
        >>> target = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
        >>> hnet = HyperNetwork(target, sample_shape=(4,))
        >>> x = torch.randn(32, 4)
        >>> weights = hnet(x)                       # {"0.weight": (8, 4), "0.bias": (8,), ...}
        >>> y = torch.func.functional_call(target, weights, (x,))
        >>> torch.allclose(y, target(x))            # residual: a fresh wrap is the target itself
        True
    """

    def __init__(
        self,
        target: nn.Module,
        *,
        sample_shape: Sequence[int],
        include: Sequence[str] = ("*",),
        exclude: Sequence[str] = (),
        head: Head = "chunked",
        residual: bool = True,
        positive: Mapping[str, Positivity] | None = None,
        buffers: BufferPolicy = "batch",
        num_classes: int | None = None,
        hidden: int = 64,
        embedding_dim: int = 32,
        chunk_size: int | None = None,
        chunk_dim: int = 16,
        per_replicate: bool = False,
        set_size_input: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(target, nn.Module):
            raise HyperNetworkError(f"target must be a torch.nn.Module, got {type(target).__name__}")
        self.head_kind = check_choice("head", head, HEADS)
        self.buffers_policy = check_choice("buffers", buffers, BUFFER_POLICIES)
        self.residual = bool(residual)
        self.layout = TargetLayout.from_module(
            target, include=include, exclude=exclude, positive=positive, per_replicate=per_replicate
        )
        # Not a submodule: the target's parameters must not become the hypernetwork's.
        object.__setattr__(self, "_target", target)
        self.encoder = SetEncoder(
            tuple(sample_shape), num_classes=num_classes, hidden=hidden, embedding_dim=embedding_dim,
            set_size_input=set_size_input,
        )
        numel = self.layout.numel
        if self.head_kind == "chunked":
            self.head = ChunkedHead(
                numel, embedding_dim=embedding_dim, chunk_size=chunk_size, chunk_dim=chunk_dim, zero_init=self.residual
            )
        else:
            sizes = [slot.numel for slot in self.layout.slots]
            self.head = DenseHead(sizes, embedding_dim=embedding_dim, zero_init=self.residual)
        gains = torch.cat([torch.full((slot.numel,), slot.gain) for slot in self.layout.slots])
        self.register_buffer("gain", gains)
        self.base = nn.Parameter(self.layout.flatten(dict(target.named_parameters()))) if self.residual else None
        self.to(device=_device(target), dtype=_dtype(target))  # the hypernetwork computes in the target's precision

    @property
    def target(self) -> nn.Module:
        return self._target

    @property
    def generated(self) -> tuple[str, ...]:
        """Names of the generated tensors, as in ``target.named_parameters()``."""
        return tuple(slot.name for slot in self.layout.slots)

    @property
    def kept(self) -> tuple[str, ...]:
        """Names of the target's parameters left as they are (not matched by include/exclude)."""
        return self.layout.kept

    @property
    def per_replicate(self) -> bool:
        return self.layout.per_replicate

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Weights predicted from the set ``x (n, *sample_shape)``: ``{name: tensor}`` with each
        tensor exactly its parameter's shape. Sets stacked as ``(*B, n, *sample_shape)`` give
        ``(*B, *shape)``; for a ``per_replicate`` target, ``x (R, n, ...)`` gives every
        parameter's own ``(R, ...)`` shape."""
        if self.layout.per_replicate and x.dim() != len(self.encoder.sample_shape) + 2:
            raise HyperNetworkError(
                f"x has shape {tuple(x.shape)}; a per_replicate hypernetwork takes one set per replicate, "
                f"(R, n, *sample_shape) with sample_shape {self.encoder.sample_shape}"
            )
        x = x.to(self.gain.dtype)
        flat = self.head(self.encoder(x, labels), gain=self.gain, base=self.base)  # (*B, numel): base + gain * delta
        return self.layout.split(flat)

    def flat(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The generated tensors joined into one ``(*B, numel)`` vector, in layout order."""
        batch = weights[self.layout.slots[0].name].dim() - len(self.layout.slots[0].shape)
        return torch.cat([weights[slot.name].flatten(batch) for slot in self.layout.slots], dim=-1)

    def run(self, weights: Mapping[str, torch.Tensor], method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``target.<method>(*args, **kwargs)`` under ``weights`` (``"forward"``, ``"loss"``,
        ``"sample"``, or any other method): the supported way to use generated weights beyond
        ``forward``. Buffers follow the ``buffers`` policy; the target is left unchanged."""
        tensors = dict(weights)
        norms = _batch_norms(self._target) if self.buffers_policy == "batch" else {}
        if self.buffers_policy != "track":  # the target's buffers are never written: copies take the updates
            untouched = {f"{prefix}.{name}" for prefix, m in norms.items() for name, _ in m.named_buffers()}
            tensors.update({name: b.clone() for name, b in self._target.named_buffers() if name not in untouched})
        with _batch_statistics(norms.values()):
            return call_method(self._target, tensors, method, *args, **kwargs)

    def run_each(
        self, weights: Mapping[str, torch.Tensor], method: str, /, *args: Any, vectorise: bool = True,
        randomness: Randomness = "different", **kwargs: Any,
    ) -> torch.Tensor:
        """:meth:`run` once per weight set: ``weights {name: (B, *shape)}`` (e.g. ``hnet(x)`` for
        ``x (B, n, *sample_shape)``); every tensor argument, positional or keyword, holds one
        entry per set along its first dimension, the other arguments (sizes, a generator) are
        shared. Returns the ``B`` results stacked, ``(B, ...)`` (the method must return a tensor).

        ``vectorise``: one call under ``torch.func.vmap`` (fast; random draws follow
        ``randomness``: ``"different"``, independent per set, or ``"same"``, one draw shared by
        every set); ``False``: a Python loop over the sets, for targets vmap cannot run (e.g.
        GroupNorm in diffusers' UNet), each set drawing after the one before.
        """
        sets = weights[self.layout.slots[0].name].shape[0]
        positions = [i for i, value in enumerate(args) if torch.is_tensor(value)]
        keys = [key for key, value in kwargs.items() if torch.is_tensor(value)]

        def one(weights_b: dict[str, torch.Tensor], args_b: list[torch.Tensor], kwargs_b: list[torch.Tensor]) -> Any:
            call_args = list(args)
            for i, value in zip(positions, args_b):
                call_args[i] = value
            return self.run(weights_b, method, *call_args, **{**kwargs, **dict(zip(keys, kwargs_b))})

        per_set = ([args[i] for i in positions], [kwargs[key] for key in keys])
        if vectorise:
            return torch.func.vmap(one, randomness=check_choice("randomness", randomness, RANDOMNESS))(dict(weights), *per_set)
        return torch.stack([
            one({k: v[b] for k, v in weights.items()}, [a[b] for a in per_set[0]], [a[b] for a in per_set[1]])
            for b in range(sets)
        ])

    def bind(self, weights: Mapping[str, torch.Tensor]) -> BoundModel:
        """The target under ``weights`` as an object: ``hnet.bind(w).sample(16, generator=g)``."""
        return BoundModel(self, weights)

    @torch.no_grad()
    def load_into_target(self, weights: Mapping[str, torch.Tensor]) -> nn.Module:
        """Copy ``weights`` into the target's own parameters (the target becomes the estimate
        ``H(X)``, to save, sample or measure without the hypernetwork); returns the target."""
        params = dict(self._target.named_parameters())
        for name, value in weights.items():
            if value.shape != params[name].shape:
                raise HyperNetworkError(f"weights[{name!r}] has shape {tuple(value.shape)}, the target's is {tuple(params[name].shape)}")
            params[name].copy_(value)
        return self._target

    def size(self) -> SizeReport:
        """Parameter counts of the target and of this hypernetwork."""
        count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        base = 0 if self.base is None else self.base.numel()
        return SizeReport(
            target=count(self._target),
            generated=self.layout.numel,
            hypernetwork=count(self),
            base=base,
            encoder=count(self.encoder),
            head=count(self.head),
        )


class BoundModel:
    """The target under one set of generated weights; every method call goes through
    :meth:`HyperNetwork.run`, so ``bound.loss(x)`` or ``bound.sample(n)`` differentiate into
    the hypernetwork."""

    def __init__(self, hnet: HyperNetwork, weights: Mapping[str, torch.Tensor]) -> None:
        self.hnet = hnet
        self.weights = dict(weights)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.hnet.run(self.weights, "forward", *args, **kwargs)

    def __getattr__(self, method: str) -> Any:
        # Only the target's own methods, so that ``isinstance(bound, BiasedSampler)`` and the other
        # ability protocols answer for the target; ``fit`` would overwrite the generated weights
        # in place (the estimate comes from the hypernetwork: train it, or ``load_into_target``).
        target = self.hnet.target
        if method.startswith("_") or method == "fit" or not callable(getattr(target, method, None)):
            raise AttributeError(f"{type(target).__name__} bound to generated weights has no method {method!r}")
        return lambda *args, **kwargs: self.hnet.run(self.weights, method, *args, **kwargs)


def _batch_norms(target: nn.Module) -> dict[str, nn.Module]:
    """The target's BatchNorm layers by name."""
    return {name: m for name, m in target.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


@contextmanager
def _batch_statistics(norms: Iterable[nn.Module]) -> Iterator[None]:
    """For the duration, BatchNorm layers normalise with the statistics of the batch and neither
    read nor update their running statistics (training mode without tracking), so those need
    no copies."""
    norms = list(norms)
    modes = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, tracking) in zip(norms, modes):
            m.training, m.track_running_stats = training, tracking


def _dtype(target: nn.Module) -> torch.dtype:
    return next(target.parameters()).dtype


def _device(target: nn.Module) -> torch.device:
    return next(target.parameters()).device
