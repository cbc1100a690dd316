"""A user's own labelled images, read offline: an ``.npz`` with ``x`` and ``y``, or a folder
with one sub-folder of images per class (how MNIST or CIFAR are brought in).

torch is imported inside the functions that use it: the command line checks a config
without importing torch (docs/architecture.md, section 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genfair.data._images import RawImages, _ImageSource
from genfair.errors import ConfigError

__all__ = ["ImageFileData"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_MODES = {"L": 1, "RGB": 3, "RGBA": 4}  # Pillow mode -> channels


@dataclass
class ImageFileData(_ImageSource):
    """Labelled images from ``path``, split per class into a training pool and a held-out set.

    ``path`` is either
      * an ``.npz`` with ``x`` ``(N, H, W)`` or ``(N, C, H, W)``, uint8 in 0-255 or float in
        [0, 1], and integer labels ``y`` ``(N,)``; classes are named by their label (``"0"``...);
      * a folder with one sub-folder per class (its name is the class name) of PNG/JPEG images,
        all of one size and one mode (L, RGB or RGBA).

    Args:
        path: the ``.npz`` file or the folder.
        classes: classes to use, in label order; default all, sorted (labels numerically).
        proportions: training shares per class, each in (0, 1], summing to 1; default the
            data's own shares among the chosen classes.
        holdout: share of each class's images kept apart for evaluation, in (0, 1).
        split_seed: seed of the per-class train/held-out split.

    Files are read on first use (``draw``, ``heldout``, ``group_names``...), then cached.
    """

    path: str
    classes: list[str] | None = None
    proportions: list[float] | None = None
    holdout: float = 0.25
    split_seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ConfigError(f"path must be a non-empty path to an .npz file or a folder, got {self.path!r}")
        if self.classes is not None:
            names = [str(c) for c in self.classes]
            if not names or len(set(names)) != len(names):
                raise ConfigError(f"classes must be a non-empty list of distinct class names, got {list(self.classes)}")
        self._check_split_args()
        if self.classes is not None and self.proportions is not None and len(self.proportions) != len(self.classes):
            raise ConfigError(
                f"proportions must have one share per class ({len(self.classes)} classes: {list(self.classes)}), "
                f"got {len(self.proportions)}: {list(self.proportions)}"
            )

    def _read(self) -> RawImages:
        path = Path(self.path).expanduser()
        if path.is_dir():
            return read_folder(path)
        if path.is_file() and path.suffix.lower() == ".npz":
            return read_npz(path)
        if not path.exists():
            raise ConfigError(f"path does not exist: {self.path!r}; give an .npz file or a folder of class sub-folders")
        raise ConfigError(f"path must be an .npz file or a folder of class sub-folders, got {self.path!r}")

    def _choose(self, names: tuple[str, ...]) -> list[int]:
        if self.classes is None:
            return list(range(len(names)))
        unknown = [str(c) for c in self.classes if str(c) not in names]
        if unknown:
            raise ConfigError(f"classes {unknown} are not in {self.path!r}; its classes are {list(names)}")
        return [names.index(str(c)) for c in self.classes]


def read_npz(path: Path) -> RawImages:
    """Images ``x`` and integer labels ``y`` from an ``.npz``, checked."""
    import torch

    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise ConfigError(f"{path} must hold arrays 'x' and 'y'; missing {missing}, found {archive.files}")
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{path} could not be read as an .npz archive: {error}") from error
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ConfigError(f"x must have shape (N, H, W) or (N, C, H, W) with N >= 1, got shape {x.shape}")
    if x.ndim == 4 and x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        raise ConfigError(
            f"x must be channels-first (N, C, H, W), got shape {x.shape}, which looks channels-last; "
            f"pass x.transpose(0, 3, 1, 2)"
        )
    if x.dtype == np.uint8:
        scale = 255.0
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise ConfigError(f"x must be finite, got {int((~np.isfinite(x)).sum())} NaN or infinite values")
        if x.min() < 0.0 or x.max() > 1.0:
            raise ConfigError(
                f"float x must lie in [0, 1], got values in [{x.min():g}, {x.max():g}]; "
                f"store 0-255 pixels as uint8 instead"
            )
        x, scale = x.astype(np.float32), 1.0
    else:
        raise ConfigError(f"x must be uint8 (0-255) or float in [0, 1], got dtype {x.dtype}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"y must be a 1-d array of integer class labels, got shape {y.shape} and dtype {y.dtype}")
    if len(y) != len(x):
        raise ConfigError(f"x and y must have the same length, got {len(x)} images and {len(y)} labels")
    values, labels = np.unique(y, return_inverse=True)
    pixels = torch.from_numpy(np.ascontiguousarray(x))
    if pixels.dim() == 3:
        pixels = pixels[:, None]
    return RawImages(pixels, labels.astype(np.int64), tuple(str(v) for v in values), scale)


def read_folder(path: Path) -> RawImages:
    """Images from ``path/<class>/*.{png,jpg,jpeg}``, classes sorted by name, checked."""
    import torch

    from PIL import Image, UnidentifiedImageError

    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ConfigError(
            f"{path} holds no class sub-folders; expected one sub-folder of images per class, e.g. {path}/cat/0001.png"
        )
    arrays, labels, first = [], [], None
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for file in files:
            try:
                with Image.open(file) as image:
                    image.load()
                    kind = (image.size, image.mode)
                    array = np.asarray(image, dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as error:
                raise ConfigError(f"{file} could not be read as an image: {error}") from error
            if kind[1] not in IMAGE_MODES:
                raise ConfigError(f"{file} has mode {kind[1]!r}; images must be one of {list(IMAGE_MODES)}")
            if first is None:
                first = (file, kind)
            elif kind != first[1]:
                raise ConfigError(
                    f"all images must share one size and mode: {first[0]} is {_describe(first[1])} "
                    f"but {file} is {_describe(kind)}"
                )
            arrays.append(array if array.ndim == 3 else array[..., None])
            labels.append(label)
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    return RawImages(pixels, np.asarray(labels, dtype=np.int64), tuple(p.name for p in folders), 255.0)


def _describe(kind: tuple[tuple[int, int], str]) -> str:
    (width, height), mode = kind
    return f"{width}x{height} {mode}"
