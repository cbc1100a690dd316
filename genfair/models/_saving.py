"""Save a deep model as its weights beside its config, and rebuild it from them (STYLE 4).

A model directory holds two files, both written atomically (``genfair.checkpoint``):
  - ``model.safetensors``: the model's ``state_dict`` (parameters and persistent buffers such
    as BatchNorm's running statistics); never a pickle;
  - ``model.json``: the config's class name and fields (a built-in's ``_target_`` left out: its
    name picks its registered class), the ``sample_shape`` and
    ``num_classes`` the model was built for, its dtype and training mode, and the sha256 of
    ``model.safetensors``. It is written last, so it only ever names weights that exist.
Loading rebuilds the model from the JSON with :func:`build_model` and loads the weights only
if their sha256 matches. Any missing, truncated, altered or unknown piece raises one
:class:`~genfair.errors.ConfigError` that names the file.

Example:
    >>> import tempfile
    >>> config = VAEConfig(hidden=[16], latent_dim=2)
    >>> model = config.build(sample_shape=(64,), num_classes=3)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_model(Path(folder), model, config)
    ...     type(load_model(Path(folder))).__name__
    'VAE'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genfair.checkpoint import load_tensors, read_json, save_tensors, write_json
from genfair.errors import ConfigError
from genfair.models._deep_config import DeepModelConfig, VAEConfig, build_model, deep_configs

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "load_model", "save_model"]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
_FORMAT = "genfair-model/1"
_DTYPES = ("float32", "float64", "float16", "bfloat16")


def save_model(
    directory: Path, model: nn.Module, config: DeepModelConfig, *, sample_shape: Sequence[int] | None = None
) -> None:
    """Write ``model``'s weights and ``config`` to ``directory`` (created if needed).

    The model must be the one ``config`` builds for ``sample_shape`` (default: the model's own
    ``sample_shape`` attribute) and its ``num_classes`` (checked: same tensor names and shapes),
    so that :func:`load_model` can rebuild it.
    """
    configs = deep_configs()
    if not isinstance(config, tuple(configs.values())):
        raise ConfigError(f"config must be one of {list(configs)}, got {type(config).__name__}")
    if sample_shape is None:
        sample_shape = getattr(model, "sample_shape", None)
    num_classes = getattr(model, "num_classes", None)
    if sample_shape is None:
        raise ConfigError(f"{type(model).__name__} has no sample_shape attribute: pass sample_shape= (one sample's shape)")
    state = model.state_dict()
    _check_same_layout(state, build_model(config, sample_shape=sample_shape, num_classes=num_classes), config)
    directory = Path(directory)
    digest = save_tensors(directory / WEIGHTS_FILE, state)
    dtype = next(iter(model.parameters())).dtype
    write_json(
        directory / CONFIG_FILE,
        {
            "format": _FORMAT,
            "config_class": type(config).__name__,
            "config": _plain(_saved_fields(config)),
            "sample_shape": list(sample_shape),
            "num_classes": num_classes,
            "dtype": str(dtype).removeprefix("torch."),
            "training": model.training,
            "sha256": digest,
        },
    )


def load_model(directory: Path) -> nn.Module:
    """The model saved in ``directory`` by :func:`save_model`: rebuilt from ``model.json``, its
    weights read from ``model.safetensors`` after checking their sha256, in the dtype and
    training mode it was saved in."""
    directory = Path(directory)
    meta_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    meta = read_json(meta_path)
    try:
        model, dtype, training, digest = _rebuild(meta)
    except (ConfigError, KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        raise ConfigError(f"{meta_path} does not describe a genfair model: {detail}") from None
    tensors = load_tensors(weights_path, sha256=digest)
    model.to(dtype)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        summary = " ".join(str(error).split())[:300]
        raise ConfigError(f"checkpoint {weights_path} does not fit the model in {meta_path}: {summary}") from None
    return model.train(training)


def _rebuild(meta: Any) -> tuple[nn.Module, torch.dtype, bool, str]:
    """The untrained model, dtype, training mode and weights' sha256 that ``meta`` describes."""
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ConfigError(f"format must be {_FORMAT!r}, got {found!r}")
    name, configs = meta["config_class"], deep_configs()
    if name not in configs:
        raise ConfigError(f"config_class must be one of {list(configs)}, got {name!r}")
    config = configs[name](**meta["config"])
    num_classes = meta["num_classes"]
    model = build_model(config, sample_shape=tuple(meta["sample_shape"]), num_classes=num_classes)
    if meta["dtype"] not in _DTYPES:
        raise ConfigError(f"dtype must be one of {list(_DTYPES)}, got {meta['dtype']!r}")
    training, digest = meta["training"], meta["sha256"]
    if not isinstance(training, bool) or not isinstance(digest, str):
        raise ConfigError(f"training must be true or false and sha256 a string, got {training!r} and {digest!r}")
    return model, getattr(torch, meta["dtype"]), training, digest


def _check_same_layout(state: dict[str, torch.Tensor], built: nn.Module, config: Any) -> None:
    expected = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        differ = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))[:5]
        raise ConfigError(
            f"model does not match {type(config).__name__}: tensors {differ} differ from the ones the config builds"
        )


def _saved_fields(config: DeepModelConfig) -> dict[str, Any]:
    """The config's fields but a built-in's ``_target_``: its name picks the registered class when
    it is rebuilt, so a checkpoint does not depend on the path its class is registered under."""
    fields = dataclasses.asdict(config)
    fields.pop("_target_", None)
    return fields


def _plain(value: Any) -> Any:
    """Tuples as lists, so that the JSON reads back into the same config."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
