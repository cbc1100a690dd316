"""Checkpoint I/O shared by every procedure: atomic writes, safetensors, checksums, no pickle.

Every file is written to a temporary name in the same directory and moved into place with
``os.replace``, so a killed process leaves either the old file or the new one, never half of
one. Tensor files are safetensors; everything else is JSON. A reader that finds a truncated or
altered file raises :class:`~genfair.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genfair.errors import ConfigError

__all__ = ["file_sha256", "load_tensors", "read_json", "save_tensors", "write_bytes_atomic", "write_json"]


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing or unreadable one raises :class:`ConfigError` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Save ``tensors`` as safetensors, atomically; returns the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp)
        digest = file_sha256(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def load_tensors(path: Path, *, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Load a safetensors file, checking its sha256 when given; never unpickles."""
    if sha256 is not None and file_sha256(path) != sha256:
        raise ConfigError(f"checkpoint {path} does not match its recorded sha256: it was truncated or altered")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError(f"checkpoint {path} cannot be read ({error}): it is truncated or not safetensors") from None


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(f"cannot read checkpoint {path}: {error}") from None
