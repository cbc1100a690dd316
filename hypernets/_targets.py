"""Which of a target module's tensors a hypernetwork generates, and how.

A :class:`TargetLayout` is read once from ``target.named_parameters()``: the generated tensors
in order, their shapes, their place in one flat vector, the scale each one's output starts at
(from its fan-in) and the positivity transform it goes through.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.functional import softplus

from ._errors import HyperNetworkError, check_choice
from ._options import POSITIVITY, Positivity

__all__ = ["POSITIVITY", "Positivity", "TargetLayout", "TensorSlot"]

_PSD_JITTER = 1e-6


@dataclass(frozen=True)
class TensorSlot:
    """One generated tensor: ``name`` as in ``named_parameters()``, its ``shape`` (per replicate
    for replicated targets), its ``[start, stop)`` in the flat vector, its initial output ``gain``
    and its positivity transform (``None``: unconstrained)."""

    name: str
    shape: tuple[int, ...]
    start: int
    stop: int
    gain: float
    positivity: Positivity | None

    @property
    def numel(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class TargetLayout:
    """The generated tensors of a target, in ``named_parameters()`` order, and the kept ones."""

    slots: tuple[TensorSlot, ...]
    kept: tuple[str, ...]
    per_replicate: bool

    @property
    def numel(self) -> int:
        """Total number of generated values (per replicate)."""
        return self.slots[-1].stop

    @staticmethod
    def from_module(
        target: nn.Module,
        *,
        include: Sequence[str] = ("*",),
        exclude: Sequence[str] = (),
        positive: Mapping[str, Positivity] | None = None,
        per_replicate: bool = False,
    ) -> TargetLayout:
        """Read the layout from ``target.named_parameters()`` (tied weights appear once).

        ``include``/``exclude`` are ``fnmatch`` patterns on parameter names; ``positive`` maps
        patterns to a transform. ``per_replicate``: every parameter's first dimension indexes
        independent replicates (genfair's analytic models) and is not part of the template.
        """
        named = list(target.named_parameters())
        if not named:
            raise HyperNetworkError(f"target {type(target).__name__} has no parameters to generate")
        positive = dict(positive or {})
        for pattern, transform in positive.items():
            check_choice(f"positive[{pattern!r}]", transform, POSITIVITY)
        chosen = [
            (name, p)
            for name, p in named
            if _matches(name, include) and not _matches(name, exclude)
        ]
        if not chosen:
            raise HyperNetworkError(
                f"include={list(include)} exclude={list(exclude)} match none of the target's parameters; "
                f"they are: {[name for name, _ in named][:12]}{' ...' if len(named) > 12 else ''}"
            )
        for what, patterns in (("include", include), ("positive", list(positive))):
            for pattern in patterns:
                if not any(fnmatch.fnmatchcase(name, pattern) for name, _ in named):
                    raise HyperNetworkError(f"{what} pattern {pattern!r} matches no parameter of {type(target).__name__}")
        if per_replicate:
            leading = {p.shape[0] if p.dim() else None for _, p in chosen}
            if len(leading) != 1 or None in leading:
                raise HyperNetworkError(
                    "per_replicate=True needs every generated parameter to share a leading replicate "
                    f"dimension; got first dimensions {sorted(map(str, leading))}"
                )
        templates = {name: tuple(p.shape[1:] if per_replicate else p.shape) for name, p in named}
        slots, start = [], 0
        for name, _ in chosen:
            shape = templates[name]
            numel = math.prod(shape)
            transform = next((t for pattern, t in positive.items() if fnmatch.fnmatchcase(name, pattern)), None)
            fan_in = _fan_in(name, templates)
            slots.append(TensorSlot(name, shape, start, start + numel, 1.0 / math.sqrt(fan_in), transform))
            start += numel
        kept = tuple(name for name, _ in named if name not in {slot.name for slot in slots})
        return TargetLayout(tuple(slots), kept, per_replicate)

    def flatten(self, tensors: Mapping[str, torch.Tensor], *, average_replicates: bool = True) -> torch.Tensor:
        """The unconstrained flat vector ``(numel,)`` whose transforms give ``tensors``: each slot's
        value through its inverse positivity. For a replicated target, the replicates' mean, or
        ``(R, numel)`` one row per replicate with ``average_replicates=False``."""
        pieces = []
        for slot in self.slots:
            value = tensors[slot.name].detach()
            if self.per_replicate and average_replicates:
                value = value.mean(dim=0)
            batch = value.dim() - len(slot.shape)
            pieces.append(_inverse(slot, value).flatten(batch))
        return torch.cat(pieces, dim=-1)

    def split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``flat (*B, numel)`` -> ``{name: (*B, *shape)}`` after each slot's positivity transform."""
        batch = flat.shape[:-1]
        # One split rather than a slice per slot: the backward of a split concatenates the pieces'
        # gradients once, where every slice's backward would fill a zero vector of all numel values.
        pieces = flat.split([slot.numel for slot in self.slots], dim=-1)
        return {slot.name: _forward(slot, piece.reshape(*batch, *slot.shape)) for slot, piece in zip(self.slots, pieces)}


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _fan_in(name: str, templates: dict[str, tuple[int, ...]]) -> int:
    """A matrix's or kernel's own fan-in, ``shape[1] * prod(shape[2:])``; for a vector (a bias, a
    norm's scale) the fan-in of its module's ``weight`` when that is a matrix, else 1."""
    shape = templates[name]
    if len(shape) < 2:
        module = name.rsplit(".", 1)[0] + "." if "." in name else ""
        shape = templates.get(module + "weight", ())
    return shape[1] * math.prod(shape[2:]) if len(shape) >= 2 else 1


def _forward(slot: TensorSlot, value: torch.Tensor) -> torch.Tensor:
    if slot.positivity is None:
        return value
    if slot.positivity == "softplus":
        return softplus(value)
    if slot.positivity == "softmax":
        return value.softmax(dim=-1)
    if slot.positivity == "exp":
        return value.exp()
    if slot.positivity == "psd":  # A A^T + eps I: positive definite even where A is singular
        return value @ value.mT + _PSD_JITTER * torch.eye(value.shape[-1], dtype=value.dtype, device=value.device)
    raise HyperNetworkError(f"positivity must be one of {list(POSITIVITY)}, got {slot.positivity!r}")


def _inverse(slot: TensorSlot, value: torch.Tensor) -> torch.Tensor:
    if slot.positivity is None:
        return value
    if slot.positivity == "psd":
        eye = torch.eye(value.shape[-1], dtype=value.dtype, device=value.device)
        factor, info = torch.linalg.cholesky_ex(value - _PSD_JITTER * eye)
        failed = info > 0
        if bool(failed.any()):  # eigenvalues below the jitter (a collapsed class): keep them tiny, not negative
            fallback, info = torch.linalg.cholesky_ex(value + _PSD_JITTER * eye)
            factor = torch.where(failed[..., None, None], fallback, factor)
            info = torch.where(failed, info, 0)
        if bool(info.any()):
            raise HyperNetworkError(f"positive[{slot.name!r}]='psd' needs the target's {slot.name} to be positive definite")
        return factor
    if not bool((value > 0).all()) and slot.positivity != "softmax":
        raise HyperNetworkError(
            f"positive[{slot.name!r}]={slot.positivity!r} needs the target's {slot.name} to be > 0, "
            f"its smallest value is {value.min().item():.3g}"
        )
    if slot.positivity == "softplus":
        return value + torch.log(-torch.expm1(-value))
    if slot.positivity in ("softmax", "exp"):
        return value.clamp(min=1e-30).log()  # a share of exactly 0 (an extinct class) stays finite
    raise HyperNetworkError(f"positivity must be one of {list(POSITIVITY)}, got {slot.positivity!r}")
