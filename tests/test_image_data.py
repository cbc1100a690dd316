"""Real image sources: stratified draws, a disjoint deterministic split, file round-trips, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from genfair.data import DigitsData, ImageFileData, stratified_counts
from genfair.errors import ConfigError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def write_npz(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, x=x, y=y)
    return str(path)


def id_images(sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Constant 2x3 images whose pixel value identifies the image; class k has sizes[k] images."""
    total = sum(sizes)
    x = np.repeat((np.arange(total, dtype=np.float32) / total)[:, None, None], 2, 1).repeat(3, 2)
    return x, np.repeat(np.arange(len(sizes)), sizes)


def ids(x: torch.Tensor, total: int) -> set[int]:
    return set(torch.round(x.reshape(-1, 6)[:, 0] * total).long().tolist())


def test_digits_draw_is_stratified_shaped_and_in_range():
    data = DigitsData(classes=[3, 6], proportions=[0.9, 0.1])
    batch = data.draw(4, 97, generator=gen())
    expected = stratified_counts(97, [0.9, 0.1])
    assert batch.x.shape == (4, 97, 1, 8, 8) and batch.x.dtype == torch.float32
    assert batch.y.dtype == torch.int64 and batch.class_counts(2).tolist() == [expected] * 4
    assert 0.0 <= batch.x.min() and batch.x.max() <= 1.0 and batch.x.max() == 1.0
    assert data.group_names == ("3", "6") and data.sample_shape == (1, 8, 8)
    assert DigitsData(class_names=["three", "six"]).group_names == ("three", "six")


def test_digits_split_covers_each_class_and_draws_match_the_source():
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = DigitsData(classes=[6, 3], proportions=[0.5, 0.5], holdout=0.25)
    held = data.heldout()
    n3, n6 = (digits.target == 3).sum(), (digits.target == 6).sum()
    assert held.class_counts(2).tolist() == [[round(0.25 * n6), round(0.25 * n3)]]
    # Drawing a whole training pool gives every non-held-out image of that class, once.
    pool6 = int(n6 - round(0.25 * n6))
    batch = data.draw(1, 2 * pool6, generator=gen())
    drawn = batch.x[0, batch.y[0] == 0].reshape(-1, 64) * 16
    held6 = held.x[0, held.y[0] == 0].reshape(-1, 64) * 16
    source = torch.tensor(digits.data[digits.target == 6], dtype=torch.float32)
    rows = lambda t: sorted(map(tuple, t.round().long().tolist()))  # noqa: E731
    assert rows(torch.cat([drawn, held6])) == rows(source)


def test_split_is_disjoint_and_draws_are_without_replacement(tmp_path):
    sizes = [40, 20]
    x, y = id_images(sizes)
    data = ImageFileData(write_npz(tmp_path / "d.npz", x, y), classes=["0"], proportions=[1.0], holdout=0.3)
    held = ids(data.heldout().x, 60)
    pool = data.draw(3, 28, generator=gen())  # the whole training pool of class 0, per replicate
    for r in range(3):
        drawn = ids(pool.x[r], 60)
        assert len(drawn) == 28 and not drawn & held and drawn | held == set(range(40))
    assert len(held) == 12


def test_split_and_draws_are_deterministic_and_replicates_differ():
    a, b = DigitsData(), DigitsData()
    assert torch.equal(a.heldout().x, b.heldout().x)
    assert not torch.equal(a.heldout().x, DigitsData(split_seed=1).heldout().x)
    first, again = a.draw(2, 40, generator=gen(5)), b.draw(2, 40, generator=gen(5))
    assert torch.equal(first.x, again.x)
    assert not torch.equal(first.x[0], first.x[1])
    assert not torch.equal(first.x, a.draw(2, 40, generator=gen(6)).x)


def test_a_class_split_does_not_depend_on_the_other_classes():
    pair = DigitsData(classes=[3, 6], proportions=[0.5, 0.5]).heldout()
    alone = DigitsData(classes=[3], proportions=[1.0]).heldout()
    assert torch.equal(pair.x[0, pair.y[0] == 0], alone.x[0])


def test_npz_round_trip_uint8_channels_and_default_shares(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 3, 4, 5), dtype=np.uint8)
    y = np.array([7] * 20 + [2] * 10)
    data = ImageFileData(write_npz(tmp_path / "d.npz", x, y), holdout=0.5)
    assert data.group_names == ("2", "7") and data.sample_shape == (3, 4, 5)
    assert data.shares == pytest.approx((1 / 3, 2 / 3))
    held = data.heldout()
    assert held.class_counts(2).tolist() == [[5, 10]]
    source = {tuple(v) for v in (x.reshape(30, -1) / 255.0).astype(np.float32).round(6).tolist()}
    got = {tuple(v) for v in held.x.reshape(15, -1).numpy().round(6).tolist()}
    assert got <= source
    batch = data.draw(2, 9, generator=gen())
    assert batch.class_counts(2).tolist() == [[3, 6]] * 2 and batch.x.dtype == torch.float32


def test_npz_gray_float_images_get_one_channel(tmp_path):
    x, y = id_images([4, 4])
    data = ImageFileData(write_npz(tmp_path / "d.npz", x, y), classes=["1", "0"], proportions=[0.5, 0.5])
    assert data.sample_shape == (1, 2, 3) and data.group_names == ("1", "0")
    held = data.heldout()
    assert ids(held.x[0, held.y[0] == 0], 8) <= {4, 5, 6, 7}


def write_folder(root: Path, counts: dict[str, int], mode: str = "L", size=(5, 4)) -> str:
    rng = np.random.default_rng(0)
    channels = {"L": (), "RGB": (3,)}[mode]
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(size[1], size[0], *channels), dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / name / f"{i:03d}.png")
    return str(root)


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3)])
def test_folder_round_trip(tmp_path, mode, channels):
    root = write_folder(tmp_path / "imgs", {"dog": 8, "cat": 4}, mode=mode)
    (tmp_path / "imgs" / "cat" / "notes.txt").write_text("ignored")
    data = ImageFileData(root, holdout=0.25)
    assert data.group_names == ("cat", "dog") and data.sample_shape == (channels, 4, 5)
    assert data.heldout().class_counts(2).tolist() == [[1, 2]]
    batch = data.draw(2, 6, generator=gen())
    assert batch.class_counts(2).tolist() == [[2, 4]] * 2
    first = np.asarray(Image.open(tmp_path / "imgs" / "cat" / "000.png"), dtype=np.float32) / 255
    first = torch.from_numpy(first.reshape(4, 5, channels)).permute(2, 0, 1)
    everything = torch.cat([data.heldout().x[0], data.draw(1, 9, generator=gen()).x[0]])
    assert any(torch.allclose(img, first) for img in everything)


def test_configs_are_plain_and_omegaconf_compatible(tmp_path):
    data = DigitsData()
    data.draw(1, 10, generator=gen())  # the cache must not leak into the config
    assert OmegaConf.to_container(OmegaConf.structured(data)) == {
        "classes": [3, 6], "proportions": [0.9, 0.1], "holdout": 0.25, "split_seed": 0, "class_names": None
    }
    assert OmegaConf.to_container(OmegaConf.structured(ImageFileData(path="x.npz")))["classes"] is None


def test_no_io_in_constructor(tmp_path):
    ImageFileData(str(tmp_path / "missing.npz"))  # only fails on first use
    with pytest.raises(ConfigError, match="path does not exist"):
        ImageFileData(str(tmp_path / "missing.npz")).heldout()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(classes=[3, 10], proportions=[0.5, 0.5]), r"classes must be distinct digits 0-9, got \[3, 10\]"),
        (dict(classes=[3, 3], proportions=[0.5, 0.5]), "distinct digits"),
        (dict(proportions=[0.9, 0.2]), r"proportions must be shares in \(0, 1\] summing to 1, got \[0.9, 0.2\]"),
        (dict(proportions=[1.0]), r"one share per class \(2 classes: \[3, 6\]\), got 1"),
        (dict(holdout=1.0), r"holdout must be a number in \(0, 1\).*got 1.0"),
        (dict(holdout=0), "holdout must be"),
        (dict(split_seed=-1), "split_seed must be an integer >= 0, got -1"),
        (dict(class_names=["a"]), "class_names must be 2 unique names"),
    ],
)
def test_digits_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DigitsData(**kwargs)


def test_a_pool_too_small_names_the_class_and_the_counts():
    data = DigitsData(classes=[3, 6], proportions=[0.2, 0.8])
    with pytest.raises(ConfigError, match=r"class '6' needs 160 training images for n=200 .* holds only 136"):
        data.draw(1, 200, generator=gen())


def bad_npz(tmp_path, **arrays) -> ImageFileData:
    np.savez(tmp_path / "bad.npz", **arrays)
    return ImageFileData(str(tmp_path / "bad.npz"))


X, Y = id_images([3, 3])


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(x=X), r"must hold arrays 'x' and 'y'; missing \['y'\]"),
        (dict(x=X[:, 0], y=Y), r"x must have shape \(N, H, W\) or \(N, C, H, W\).*got shape \(6, 3\)"),
        (dict(x=np.zeros((6, 5, 5, 3), np.uint8), y=Y), r"channels-first.*looks channels-last; pass x.transpose"),
        (dict(x=np.where(X > 0.5, np.nan, X), y=Y), "x must be finite, got 12 NaN"),
        (dict(x=X * 255, y=Y), r"float x must lie in \[0, 1\], got values in \[0, 212.5\]"),
        (dict(x=(X * 255).astype(np.int64), y=Y), "x must be uint8 .* got dtype int64"),
        (dict(x=X, y=Y.astype(np.float64)), "integer class labels, got shape .* dtype float64"),
        (dict(x=X, y=Y[:5]), "same length, got 6 images and 5 labels"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    with pytest.raises(ConfigError, match=message):
        bad_npz(tmp_path, **arrays).heldout()


def test_file_config_errors(tmp_path):
    path = write_npz(tmp_path / "d.npz", X, Y)
    with pytest.raises(ConfigError, match=r"classes \['5'\] are not in .*; its classes are \['0', '1'\]"):
        ImageFileData(path, classes=["0", "5"], proportions=[0.5, 0.5]).heldout()
    with pytest.raises(ConfigError, match=r"one share per class \(2 classes: \['0', '1'\]\), got 3"):
        ImageFileData(path, proportions=[0.2, 0.3, 0.5]).heldout()
    with pytest.raises(ConfigError, match="one share per class"):
        ImageFileData(path, classes=["0"], proportions=[0.5, 0.5])
    with pytest.raises(ConfigError, match="path must be a non-empty path"):
        ImageFileData("")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ConfigError, match="path must be an .npz file or a folder"):
        ImageFileData(str(tmp_path / "x.txt")).heldout()
    with pytest.raises(ConfigError, match="each class needs at least 2"):
        ImageFileData(write_npz(tmp_path / "one.npz", X[:4], np.array([0, 0, 0, 1]))).heldout()


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no class sub-folders"):
        ImageFileData(str(tmp_path / "empty")).heldout()
    (tmp_path / "empty" / "cat").mkdir()
    with pytest.raises(ConfigError, match="class folder .*cat holds no images"):
        ImageFileData(str(tmp_path / "empty")).heldout()
    root = write_folder(tmp_path / "mixed", {"a": 2, "b": 2})
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(tmp_path / "mixed" / "b" / "999.png")
    with pytest.raises(ConfigError, match=r"one size and mode: .*000.png is 5x4 L but .*999.png is 6x4 L"):
        ImageFileData(root).heldout()
