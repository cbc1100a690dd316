"""Checkpoint I/O shared by every procedure: atomic writes, safetensors, checksums, no pickle.

Every file is written to a temporary name in the same directory and moved into place with
``os.replace``, so a killed process leaves either the old file or the new one, never half of
one (at most a stale ``.<name>.*.tmp`` beside it, which no reader looks at). A file gets the
mode that a plain ``open`` would give it, ``0o666`` less the umask, so that other users and
tools can read the results where the umask allows. A write that
fails (a read-only folder, a full disk) removes its temporary file, leaves the old file as it
was and raises an ``OSError`` naming the file it was writing. Tensor files are safetensors;
everything else is strict JSON (a NaN or infinite number is written ``null``). A reader that finds a truncated or altered file raises
:class:`~genfair.errors.ConfigError` naming the file.

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genfair.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["check_writable_dir", "file_sha256", "finite_or_null", "load_tensors", "read_json", "save_tensors", "write_bytes_atomic", "write_json"]


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (temporary file + ``os.replace``)."""
    _write_atomic(path, lambda tmp: tmp.write_bytes(payload))


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON (RFC 8259), atomically: a NaN or infinite float,
    which the ``json`` module would write as the non-standard ``NaN`` / ``Infinity``, becomes
    ``null``; other objects that JSON lacks are written as their ``str``."""
    text = json.dumps(finite_or_null(obj), indent=2, sort_keys=False, default=str, allow_nan=False)
    write_bytes_atomic(path, (text + "\n").encode())


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (NumPy's float64 is a ``float``) replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite_or_null(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(value) for value in obj]
    return obj


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing or unreadable one raises :class:`ConfigError` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Save ``tensors`` as safetensors, atomically; returns the file's sha256."""
    from safetensors.torch import save_file  # torch: imported where used (the CLI's checks import this module)

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    digest: list[str] = []

    def fill(tmp: Path) -> None:
        save_file(tensors, str(tmp))
        digest.append(file_sha256(tmp))  # of the bytes written, before they are moved into place

    _write_atomic(path, fill)
    return digest[0]


def load_tensors(path: Path, *, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Load a safetensors file, checking its sha256 when given; never unpickles."""
    if sha256 is not None and file_sha256(path) != sha256:
        raise ConfigError(f"checkpoint {path} does not match its recorded sha256: it was truncated or altered")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError(f"checkpoint {path} cannot be read ({error}): it is truncated or not safetensors") from None


def check_writable_dir(directory: Path, *, key: str) -> None:
    """Raise :class:`~genfair.errors.ConfigError` unless ``directory``, or the nearest existing
    folder above it (where it would be made), is a folder this process may write into; ``key``
    names the setting to change (``hydra.run.dir``)."""
    directory = Path(directory)
    absolute = directory.absolute()
    existing = next(p for p in [absolute, *absolute.parents] if p.exists())
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return
    where = "" if existing == absolute else f" (it would be made in {existing})"
    raise ConfigError(f"run directory {directory}{where} is not writable; choose another {key}")


def _write_atomic(path: Path, fill: Callable[[Path], object]) -> None:
    """Have ``fill`` write a temporary file beside ``path``, then move it into place. On any
    error the temporary file is removed and ``path`` is left as it was; an ``OSError`` (a
    read-only folder, a full disk) is raised again naming ``path``, not the temporary file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    os.close(fd)
    tmp = Path(name)
    try:
        _fill(tmp, fill)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0o600 whatever the umask (after fill: it may remake the file)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc/self/status``,
    since 4.7): ``os.umask`` reads it only by setting it, which for that moment would give the
    files that another thread creates the wrong mode."""
    try:
        found = re.search(r"^Umask:\s*([0-7]+)", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        found = None
    if found:
        return int(found.group(1), 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fill(tmp: Path, fill: Callable[[Path], object]) -> None:
    """Every byte genfair writes goes through here (tests replace it to simulate a full disk)."""
    fill(tmp)


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise ConfigError(f"cannot read checkpoint {path}: {error}") from None
