"""Training from a cache: learning on synthetic blobs, split by image, batching, resume, bad input, CLI."""

import json
import shutil

import numpy as np
import ot
import pytest
import torch

import wassembed
from wassembed.data import HistogramSet
from wassembed.errors import CacheError, CacheMismatchError, InputError, TrainingError
from wassembed.exact import DistanceCache, precompute
from wassembed.learn import TrainSettings, pack_batches, plan_units, split_by_image
from wassembed.learn._batching import augment_images, bounding_boxes

from .conftest import run_cli

FAST = dict(epochs=2, progress=False, batch_images=64, threads=1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine, oversubscribed threads are many times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def blobs(n, grid=(12, 12), seed=0):
    """Gaussian blobs of random centre and width, cut at 1e-3 (translated copies of a few shapes)."""
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
    cy = rng.uniform(2.5, grid[0] - 3.5, n)[:, None, None]
    cx = rng.uniform(2.5, grid[1] - 3.5, n)[:, None, None]
    s = rng.uniform(0.8, 1.6, n)[:, None, None]
    img = np.exp(-((r - cy) ** 2 + (c - cx) ** 2) / (2 * s ** 2))
    img[img < 1e-3] = 0
    return HistogramSet.from_images(img, name="blobs")


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    d = tmp_path_factory.mktemp("caches")
    hs = blobs(200)
    precompute(hs, d / "train", pairs=5400, images="0:150", sampling="blocks", block_size=25, seed=0,
               workers=1, progress=False)
    precompute(hs, d / "test", pairs=400, images="150:200", seed=1, workers=1, progress=False)
    return d


@pytest.fixture(scope="module")
def trained(caches):
    return wassembed.train(caches / "train", epochs=20, batch_images=32, progress=False, seed=0, threads=1)


def test_learns_unseen_pairs(trained, caches):
    m = wassembed.evaluate(trained, caches / "test")
    assert m["n_dropped"] == 0 and m["n_pairs"] == 400
    assert m["pearson"] > 0.9, m
    assert m["relative_mse"] < 0.1, m


def test_info_and_calibration(trained, caches):
    info, cal = trained.info, trained.calibration
    tr = info["training"]
    assert info["dataset_fingerprint"] == DistanceCache.open(caches / "train").fingerprint
    assert len(info["cache_fingerprint"]) == 64 and "torch" in info["versions"]
    assert tr["train_pairs"] + tr["val_pairs"] + tr["calibration_pairs"] + tr["dropped_pairs"] == 5400
    # conformal calibration uses held-out pairs that did not select the model (early stopping)
    # (this small cache has too few held-out images to split: it says so and falls back to validation pairs)
    assert tr["calibration_pairs"] == 0 and tr["calibration_source"].startswith("validation pairs")
    assert cal["val_pred"].shape == cal["val_target"].shape == (tr["val_pairs"],)
    assert cal["train_images"].shape == (tr["train_images"],)
    assert cal["train_recon"].shape == (tr["val_images"],)  # reconstruction errors of unseen images
    assert cal["train_images"].dtype == np.int64 and cal["train_images"].max() < 150
    # units recover the blocks: ~25 images and ~300 pairs each, far fewer than pairs
    assert tr["units"] < tr["train_pairs"] / 50


def test_evaluate_drops_training_images(trained, caches):
    m = wassembed.evaluate(trained, caches / "train")
    tr = trained.info["training"]
    t = DistanceCache.open(caches / "train").read()
    seen = np.isin(t.i, trained.calibration["train_images"]) | np.isin(t.j, trained.calibration["train_images"])
    assert m["n_dropped"] == int(seen.sum()) and m["n_pairs"] == int((~seen).sum())
    assert m["n_pairs"] >= tr["val_pairs"] + tr["calibration_pairs"]


def test_calibration_pairs_are_image_disjoint_from_selection_pairs():
    from wassembed.learn import split_by_image
    from wassembed.learn._batching import split_calibration

    i, j = np.triu_indices(300, 1)
    tr, va, held = split_by_image(i, j, 300, 0.2, seed=1)
    sel, cal = split_calibration(i, j, va, held, 300, seed=1)
    assert sel.sum() >= 100 and cal.sum() >= 100 and not (sel & cal).any() and not ((sel | cal) & tr).any()
    sel_images = set(np.r_[i[sel], j[sel]].tolist())
    cal_images = set(np.r_[i[cal], j[cal]].tolist())
    assert not sel_images & cal_images


def test_split_by_image_is_disjoint():
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 50, (2, 400))
    i, j = np.minimum(i, j), np.maximum(i, j)
    tr, va, held = split_by_image(i, j, 50, 0.2, seed=3)
    train_imgs = set(np.r_[i[tr], j[tr]])
    val_imgs = set(np.r_[i[va], j[va]])
    assert not train_imgs & val_imgs and val_imgs <= set(held)
    assert np.array_equal(split_by_image(i, j, 50, 0.2, seed=3)[2], held)


def test_units_and_batches():
    # two groups of 5 images, pairs split over 3 shards; plus random pairs forming a big component
    g1, g2 = np.arange(5), np.arange(5, 10)
    a1, b1 = np.triu_indices(5, 1)
    i = np.r_[g1[a1], g2[a1], 20 + np.arange(30)]
    j = np.r_[g1[b1], g2[b1], 21 + np.arange(30)]
    shards = [np.arange(0, 7), np.arange(7, 20), np.arange(20, 50)]
    units = plan_units(shards, i, j)
    sets = sorted(tuple(np.unique(np.r_[i[u], j[u]])) for u in units)
    assert (tuple(range(5)) in sets) and (tuple(range(5, 10)) in sets)
    rng = np.random.default_rng(0)
    batches = pack_batches(units, i, j, 12, rng)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(50))
    assert all(np.unique(np.r_[i[b], j[b]]).size <= 12 for b in batches)


def test_units_of_random_pairs_cover_every_pair_once():
    rng = np.random.default_rng(1)
    a, b = rng.choice(1000, (2, 300))
    keep = a != b
    i = np.r_[0, 1, np.minimum(a, b)[keep]]
    j = np.r_[1, 2, np.maximum(a, b)[keep]]  # a 3-image chain inside no other unit
    units = plan_units(np.array_split(np.arange(i.size), 5), i, j)
    assert np.array_equal(np.sort(np.concatenate(units)), np.arange(i.size))


def test_pair_batching_mode(caches):
    m = wassembed.train(caches / "train", batching="pairs", **FAST)
    assert m.info["training"]["units"] == m.info["training"]["train_pairs"]


def test_augmentation_preserves_exact_w2():
    hs = blobs(2, grid=(10, 10), seed=4)
    M = hs.ground_cost(2)
    w0 = ot.emd2(hs.weights[0], hs.weights[1], M)
    x = torch.as_tensor(hs.weights)
    rng = np.random.default_rng(0)
    for _ in range(6):
        boxes = bounding_boxes(hs.weights, (10, 10))
        y = augment_images(x, (10, 10), boxes, ["shift", "flip", "rot"], 3, rng).numpy()
        assert np.allclose(y.sum(1), 1) and not np.array_equal(y, hs.weights) or True
        assert ot.emd2(y[0] / y[0].sum(), y[1] / y[1].sum(), M) == pytest.approx(w0, rel=1e-9)


def test_resume_after_a_crash_continues_exactly(caches, tmp_path, monkeypatch):
    import wassembed.learn._checkpoints as mio

    four = FAST | dict(epochs=4)
    straight = wassembed.train(caches / "train", checkpoint_dir=tmp_path / "a", seed=1, **four)
    real = mio.save_checkpoint

    def crash_after_two(directory, epoch, *a, **k):
        out = real(directory, epoch, *a, **k)
        if epoch == 2:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(mio, "save_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        wassembed.train(caches / "train", checkpoint_dir=tmp_path / "b", seed=1, **four)
    monkeypatch.setattr(mio, "save_checkpoint", real)
    meta = json.loads((tmp_path / "b" / "state.json").read_text())
    assert meta["epoch"] == 2 and not list((tmp_path / "b").glob("*.pt"))
    resumed = wassembed.train(caches / "train", checkpoint_dir=tmp_path / "b", seed=1, resume=True, **four)
    for pa, pb in zip(straight.encoder.parameters(), resumed.encoder.parameters()):
        assert torch.equal(pa, pb)
    assert straight.info["training"]["history"][-1]["val_mse"] == resumed.info["training"]["history"][-1]["val_mse"]
    log = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    # extending a finished run: more epochs continue from the checkpoint
    longer = wassembed.train(caches / "train", checkpoint_dir=tmp_path / "b", seed=1, resume=True,
                             **(FAST | dict(epochs=5)))
    assert longer.info["training"]["epochs_run"] == 5
    with pytest.raises(InputError, match="another settings"):
        wassembed.train(caches / "train", checkpoint_dir=tmp_path / "b", seed=1, resume=True, lr=0.01, **FAST)
    with pytest.raises(InputError, match="already holds a training checkpoint"):
        wassembed.train(caches / "train", checkpoint_dir=tmp_path / "b", seed=1, **FAST)


def test_nan_loss_stops_and_keeps_checkpoint(caches, tmp_path, monkeypatch):
    from wassembed.learn import DWELoss

    calls = {"n": 0}
    real = DWELoss.__call__

    def flaky(self, *a):
        calls["n"] += 1
        total, parts = real(self, *a)
        return (total * float("nan") if calls["n"] > 12 else total), parts

    monkeypatch.setattr(DWELoss, "__call__", flaky)
    with pytest.raises(TrainingError, match=r"diverged at epoch \d+.*last good checkpoint \(epoch 1\)"):
        wassembed.train(caches / "train", checkpoint_dir=tmp_path / "c", **(FAST | dict(epochs=5)))
    assert json.loads((tmp_path / "c" / "state.json").read_text())["epoch"] == 1


def test_bad_caches(caches, tmp_path):
    hs = blobs(30, grid=(8, 8))
    DistanceCache.create(tmp_path / "empty", hs, p=2)
    with pytest.raises(InputError, match="holds no pairs.*fix: run"):
        wassembed.train(tmp_path / "empty", **FAST)
    precompute(hs, tmp_path / "tiny", pairs=8, workers=1, progress=False)
    with pytest.raises(InputError, match="too small to train on.*fix:"):
        wassembed.train(tmp_path / "tiny", **FAST)
    shutil.copytree(caches / "test", tmp_path / "nodata")
    (tmp_path / "nodata" / "data.npz").unlink()
    with pytest.raises(CacheError, match="no stored data"):
        wassembed.train(tmp_path / "nodata", **FAST)


def test_model_cache_mismatch(trained, tmp_path):
    other_grid = blobs(30, grid=(8, 8))
    precompute(other_grid, tmp_path / "g8", pairs=50, workers=1, progress=False)
    with pytest.raises(CacheMismatchError, match="different supports.*grid \\(12, 12\\).*grid \\(8, 8\\)"):
        wassembed.evaluate(trained, tmp_path / "g8")
    precompute(blobs(20), tmp_path / "p1", pairs=50, workers=1, progress=False, p=1)
    with pytest.raises(CacheMismatchError, match="different exponents p.*p=2.*p=1"):
        wassembed.evaluate(trained, tmp_path / "p1")


def test_p1_trains(tmp_path):
    hs = blobs(60)
    precompute(hs, tmp_path / "c", pairs=1500, sampling="blocks", block_size=20, p=1, workers=1, progress=False)
    m = wassembed.train(tmp_path / "c", epochs=8, progress=False, batch_images=64, threads=1)
    assert m.p == 1 and m.info["training"]["validation"]["pearson"] > 0.7


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "epochs"), (dict(lr=2.0), "lr"), (dict(schedule="step"), "schedule"),
    (dict(augment="shear"), "augment"), (dict(val_fraction=0.95), "val_fraction"),
    (dict(target_scale=-1.0), "target_scale"), (dict(batch_images=2), "batch_images"),
])
def test_settings_validation(kw, match):
    with pytest.raises(InputError, match=match):
        TrainSettings(**kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_requested_without_gpu(caches):
    with pytest.raises(InputError, match="CUDA was requested but no GPU.*fix: use device='cpu'"):
        wassembed.train(caches / "train", device="cuda", **FAST)
    with pytest.raises(InputError, match="unknown device"):
        wassembed.train(caches / "train", device="tpu", **FAST)


def test_unknown_option_is_explained(caches):
    with pytest.raises(InputError, match="unknown training options.*epocs"):
        wassembed.train(caches / "train", epocs=3)


def test_cli_train_evaluate(caches, tmp_path):
    out = tmp_path / "m"
    p = run_cli("train", caches / "train", "--out", out, "--epochs", "2", "--seed", "0", "--threads", "1", check=True)
    assert p.stdout.strip() == str(out) and "epoch 1" in p.stderr
    assert (out / "model.json").exists() and (out / "checkpoints" / "state.json").exists()
    p = run_cli("evaluate", out, caches / "test", "--json", check=True)
    m = json.loads(p.stdout)
    assert {"mse", "relative_mse", "pearson", "spearman"} <= set(m)
    p = run_cli("train", caches / "train", "--out", out, "--epochs", "3", "--resume", "--threads", "1", check=True)
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 3
    p = run_cli("train", caches / "train", "--out", out)
    assert p.returncode == 2 and "already holds" in p.stderr
