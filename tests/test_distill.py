"""The distillation phase: targets from per-image LOT embeddings, then the pair epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wassembed.exact import PairTable, precompute
from wassembed.exact._teacher import LOTTargets
from wassembed.learn import train
from wassembed.learn._distill import distill, distill_targets
from wassembed.nn import ModelConfig, build_encoder


def _synthetic(m=30, D=6, factor=2.0, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(m, D)).astype(np.float32)
    i, j = np.triu_indices(m, 1)
    y = factor * ((E[i].astype(np.float64) - E[j]) ** 2).sum(1)
    lot = LOTTargets(index=np.arange(m), embedding=E, split=np.zeros(m), reference=np.ones(3) / 3)
    return lot, PairTable(i=i, j=j, value=y)


def test_targets_keep_every_distance_when_the_latent_holds_every_axis():
    lot, pairs = _synthetic(factor=2.0)
    t = distill_targets(lot, np.arange(30), pairs, dim=8)  # 8 ≥ D = 6: nothing is cut
    assert t.scale == pytest.approx(2.0) and t.explained == pytest.approx(1.0)
    d = ((t.targets[pairs.i].astype(np.float64) - t.targets[pairs.j]) ** 2).sum(1)
    np.testing.assert_allclose(d, pairs.value, rtol=1e-4)
    assert t.summary()["pairs_for_scale"] == len(pairs)


def test_targets_use_training_images_only_and_need_more_images_than_dimensions():
    lot, pairs = _synthetic()
    t = distill_targets(lot, np.arange(0, 30, 2), pairs, dim=4)
    assert t.images.tolist() == list(range(0, 30, 2)) and t.targets.shape == (15, 4)
    assert 0 < t.explained < 1
    assert distill_targets(lot, np.arange(5), pairs, dim=8) is None


def test_cloud_targets_end_with_the_exact_means_and_fit_what_they_leave():
    """LOT embeddings of clouds (m = 3 reference points in 2-D): the last 2 targets are each cloud's mean, the
    others the scaled principal axes of the centred part; the scale is fitted on y - |mean_i - mean_j|²."""
    rng = np.random.default_rng(0)
    T = rng.normal(size=(25, 3, 2))  # barycentric maps of 25 clouds
    means = T.mean(1)
    E = (np.sqrt(1 / 3) * T).reshape(25, 6).astype(np.float32)
    i, j = np.triu_indices(25, 1)
    centred = (T - means[:, None, :]) * np.sqrt(1 / 3)
    y = ((means[i] - means[j]) ** 2).sum(1) + 3.0 * ((centred[i] - centred[j]) ** 2).sum((1, 2))
    lot = LOTTargets(index=np.arange(25), embedding=E, split=np.zeros(25), reference=np.zeros((3, 2)))
    t = distill_targets(lot, np.arange(25), PairTable(i=i, j=j, value=y), dim=8, mean_dims=2)
    np.testing.assert_allclose(t.targets[:, 6:], means, atol=1e-5)
    assert t.scale == pytest.approx(3.0, rel=1e-4) and t.explained == pytest.approx(1.0)
    d = ((t.targets[i].astype(np.float64) - t.targets[j]) ** 2).sum(1)
    np.testing.assert_allclose(d, y, rtol=1e-4)


def test_distillation_lowers_the_target_error():
    lot, pairs = _synthetic(m=40, D=4)
    t = distill_targets(lot, np.arange(40), pairs, dim=4)
    X = torch.softmax(torch.as_tensor(np.random.default_rng(1).normal(size=(40, 9)), dtype=torch.float32), 1)
    enc = build_encoder(ModelConfig.preset("mlp", k=9, embed_dim=4), seed=0)
    with torch.no_grad():
        before = float(((enc(X) - torch.as_tensor(t.targets)) ** 2).sum(1).mean())
    done = distill(enc, X, t, epochs=30, batch=16, lr=3e-3, seed=0)
    assert done["epochs"] == 30 and done["final_loss"] < 0.5 * before


@pytest.mark.filterwarnings("ignore::wassembed.learn.SmallDataWarning")
def test_train_distils_when_the_cache_has_targets_and_says_why_not_otherwise(tmp_path, small_digits):
    with_lot = precompute(small_digits, tmp_path / "a", pairs=400, workers=1, progress=False).cache
    cfg = ModelConfig.preset("fast", grid=(8, 8), embed_dim=8)
    m = train(with_lot, model=cfg, epochs=1, distill_epochs=2, progress=False, val_fraction=0.2)
    d = m.info["training"]["distillation"]
    assert d["used"] is True and d["images"] == m.info["training"]["train_images"] and d["dim"] == 8
    m50 = train(with_lot, epochs=1, distill_epochs=2, progress=False, val_fraction=0.2)  # 48 images, 50 axes
    assert m50.info["training"]["distillation"]["reason"] == "fewer than 51 training images have LOT targets"
    m0 = train(with_lot, epochs=1, distill_epochs=0, progress=False, val_fraction=0.2)
    assert m0.info["training"]["distillation"] == {"used": False, "reason": "distill_epochs=0"}
    without = precompute(small_digits, tmp_path / "b", pairs=400, workers=1, progress=False, lot=False).cache
    m1 = train(without, epochs=1, progress=False, val_fraction=0.2)
    assert m1.info["training"]["distillation"]["reason"] == "the cache has no per-image LOT targets"
