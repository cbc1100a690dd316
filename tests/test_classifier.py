"""The evaluation classifier: accuracy on digits, shapes, determinism, and its on-disk cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import genfair.metrics._classifier as classifier_module
from genfair.data import Batch, DigitsData, ImageFileData
from genfair.errors import ConfigError
from genfair.metrics import (
    ClassifierConfig,
    EvaluationClassifier,
    TrainedClassifier,
    load_or_train_classifier,
    train_classifier,
)

QUICK = ClassifierConfig(epochs=2)  # for cache plumbing, where accuracy does not matter


@pytest.fixture(scope="module")
def digits36() -> DigitsData:
    return DigitsData(classes=[3, 6], proportions=[0.9, 0.1])


@pytest.fixture(scope="module")
def trained36(digits36: DigitsData) -> TrainedClassifier:
    return train_classifier(digits36.training_pool(), digits36.heldout(), 2, ClassifierConfig())


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "classifiers").iterdir())


def forbid_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("the classifier was retrained instead of loaded")

    monkeypatch.setattr(classifier_module, "train_classifier", fail)


def count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def counted(*args, **kwargs):
        calls.append(1)
        return train_classifier(*args, **kwargs)

    monkeypatch.setattr(classifier_module, "train_classifier", counted)
    return calls


def test_training_pool_and_heldout_are_disjoint_and_cover_each_class():
    digits = load_digits()
    data = DigitsData(classes=[6, 3], proportions=[0.5, 0.5])
    pool, held = data.training_pool(), data.heldout()
    assert pool.x.shape[0] == 1 and pool.x.shape[2:] == (1, 8, 8) and pool.x.dtype == torch.float32
    assert pool.y.dtype == torch.int64 and 0.0 <= pool.x.min() and pool.x.max() == 1.0
    for label, digit in enumerate([6, 3]):
        train_rows = {r.tobytes() for r in (pool.x[0, pool.y[0] == label] * 16).round().to(torch.uint8).numpy()}
        held_rows = {r.tobytes() for r in (held.x[0, held.y[0] == label] * 16).round().to(torch.uint8).numpy()}
        source = {r.astype(np.uint8).tobytes() for r in digits.images[digits.target == digit][:, None]}
        assert not train_rows & held_rows
        assert train_rows | held_rows == source and len(train_rows) + len(held_rows) == len(source)
    # The pool ignores proportions: every non-held-out image, whatever the training shares.
    assert torch.equal(DigitsData(classes=[6, 3], proportions=[0.9, 0.1]).training_pool().x, pool.x)


def test_digits_3_vs_6_is_classified_almost_perfectly(digits36, trained36):
    held = digits36.heldout()
    assert trained36.heldout_accuracy >= 0.97
    assert trained36.per_class_accuracy.shape == (2,) and (trained36.per_class_accuracy >= 0.9).all()
    assert trained36.confusion.dtype == torch.int64 and trained36.confusion.shape == (2, 2)
    assert torch.equal(trained36.confusion.sum(dim=1), held.class_counts(2)[0])
    assert not trained36.model.training


def test_features_logits_and_predictions_have_the_documented_shapes(digits36, trained36):
    model, x = trained36.model, digits36.heldout().x[0]
    features = model.features(x)
    assert features.shape == (len(x), 32) and features.dtype == torch.float32
    assert (features.std(dim=0) > 0).all()  # no dead features
    assert torch.allclose(model.features(x, batch_size=7), features, atol=1e-6)
    assert model.logits(x).shape == (len(x), 2) and not model.logits(x).requires_grad
    assert model.predict(x).dtype == torch.int64 and model.predict(x[:0]).shape == (0,)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1, 8, 8\)"):
        model.features(x[None])


def test_training_is_deterministic_and_leaves_the_global_rng_alone(digits36):
    pool, held = digits36.training_pool(), digits36.heldout()
    config = ClassifierConfig(epochs=2, seed=3, augment=True)
    state = torch.get_rng_state()
    first = train_classifier(pool, held, 2, config).model.state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    second = train_classifier(pool, held, 2, config).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = train_classifier(pool, held, 2, ClassifierConfig(epochs=2, seed=4, augment=True)).model.state_dict()
    assert not torch.equal(first["head.weight"], other["head.weight"])


def test_a_cached_classifier_is_loaded_without_training(digits36, tmp_path, monkeypatch, caplog):
    first = load_or_train_classifier(digits36, config=QUICK, cache_dir=tmp_path)
    (entry,) = entries(tmp_path)
    record = json.loads((entry / "classifier.json").read_text())
    assert record["num_classes"] == 2 and record["sample_shape"] == [1, 8, 8] and record["config"]["epochs"] == 2
    forbid_training(monkeypatch)
    with caplog.at_level(logging.INFO, logger="genfair"):
        second = load_or_train_classifier(digits36, config=QUICK, cache_dir=tmp_path)
    assert "loaded" in caplog.text
    x = digits36.heldout().x[0]
    assert torch.equal(first.model.features(x), second.model.features(x))
    assert torch.equal(first.confusion, second.confusion) and first.heldout_accuracy == second.heldout_accuracy


@pytest.mark.parametrize("damage", ["weights", "record"])
def test_a_damaged_cache_entry_is_retrained_and_replaced(digits36, tmp_path, monkeypatch, caplog, damage):
    first = load_or_train_classifier(digits36, config=QUICK, cache_dir=tmp_path)
    (entry,) = entries(tmp_path)
    if damage == "weights":
        weights = bytearray((entry / "model.safetensors").read_bytes())
        weights[-4:] = b"\x00\x00\x80\x7f"  # the last float becomes +inf
        (entry / "model.safetensors").write_bytes(bytes(weights))
    else:
        (entry / "classifier.json").write_text('{"classifier_version": 1, "key": ')
    calls = count_training(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="genfair"):
        second = load_or_train_classifier(digits36, config=QUICK, cache_dir=tmp_path)
    assert calls == [1] and "retraining" in caplog.text
    x = digits36.heldout().x[0]
    assert torch.equal(first.model.features(x), second.model.features(x))
    forbid_training(monkeypatch)  # the entry was replaced by a good one
    load_or_train_classifier(digits36, config=QUICK, cache_dir=tmp_path)


def test_different_data_or_config_get_different_entries(tmp_path, monkeypatch):
    config = ClassifierConfig(epochs=1)
    load_or_train_classifier(DigitsData(), config=config, cache_dir=tmp_path)
    load_or_train_classifier(DigitsData(split_seed=1), config=config, cache_dir=tmp_path)
    load_or_train_classifier(DigitsData(class_names=["three", "six"]), config=config, cache_dir=tmp_path)
    load_or_train_classifier(DigitsData(), config=ClassifierConfig(epochs=1, seed=1), cache_dir=tmp_path)
    assert len(entries(tmp_path)) == 4
    # Training shares do not change the pool or the held-out set, so they share an entry.
    forbid_training(monkeypatch)
    load_or_train_classifier(DigitsData(proportions=[0.5, 0.5]), config=config, cache_dir=tmp_path)


def test_the_cache_lives_under_genfair_cache_and_an_unwritable_one_is_only_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GENFAIR_CACHE", str(tmp_path / "env"))
    load_or_train_classifier(DigitsData(), config=ClassifierConfig(epochs=1))
    assert len(entries(tmp_path / "env")) == 1
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="genfair"):
        trained = load_or_train_classifier(DigitsData(), config=ClassifierConfig(epochs=1), cache_dir=blocker)
    assert isinstance(trained, TrainedClassifier) and "could not be cached" in caplog.text


def test_an_npz_of_16x16_images_gets_its_own_classifier(tmp_path):
    digits = load_digits()
    keep = np.isin(digits.target, [3, 6])
    x = np.kron(digits.images[keep], np.ones((2, 2))) * 15  # (N, 16, 16) in 0-240
    np.savez(tmp_path / "digits16.npz", x=x.astype(np.uint8), y=digits.target[keep])
    data = ImageFileData(str(tmp_path / "digits16.npz"))
    trained = load_or_train_classifier(data, config=ClassifierConfig(epochs=10), cache_dir=tmp_path)
    held = data.heldout()
    assert trained.model.sample_shape == (1, 16, 16) and trained.heldout_accuracy >= 0.95
    assert trained.model.features(held.x[0]).shape == (held.n, 32)


def test_bad_configs_and_inputs_are_refused_by_name(digits36):
    for options, name in [
        ({"epochs": 0}, "epochs"),
        ({"feature_dim": 2.5}, "feature_dim"),
        ({"lr": -1.0}, "lr"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"augment": "yes"}, "augment"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(ConfigError, match=rf"^{name} must be"):
            ClassifierConfig(**options)
    with pytest.raises(ConfigError, match="sample_shape"):
        EvaluationClassifier((1, 4, 4), 2)
    pool, held = digits36.training_pool(), digits36.heldout()
    only_threes = Batch(pool.x[:, pool.y[0] == 0], pool.y[:, pool.y[0] == 0])
    with pytest.raises(ConfigError, match=r"classes \[1\] have none"):
        train_classifier(only_threes, held, 2, QUICK)
    with pytest.raises(ConfigError, match=r"train labels must lie in 0\.\.1, got values in \[1, 2\]"):
        train_classifier(Batch(pool.x, pool.y + 1), held, 2, QUICK)
    with pytest.raises(ConfigError, match="num_classes must be an integer >= 2, got 1"):
        train_classifier(pool, held, 1, QUICK)
