"""Training from a cache: learning on synthetic blobs, split by image, batching, resume, bad input, CLI."""

import json
import re
import shutil

import numpy as np
import ot
import pytest
import torch

import wassembed
from wassembed.data import HistogramSet
from wassembed.errors import CacheError, CacheMismatchError, InputError, TrainingError
from wassembed.exact import DistanceCache, precompute
from wassembed.learn import SmallDataWarning, TrainSettings
from wassembed.learn._batching import augment_images, bounding_boxes, pack_batches, plan_units

from .conftest import run_cli

FAST = dict(epochs=2, progress=False, batch_images=64, threads=1)


#: one torch thread (conftest): on a shared 2-core machine, oversubscribed threads are many times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    # a quarter held out: 25 of the 150 images calibrate (300 pairs among them), 13 select the model
    return wassembed.train(caches / "train", epochs=20, batch_images=32, val_fraction=0.25, progress=False, seed=0,
                           threads=1)


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
    # info says where each pair went: dropped pairs join a calibration image and another image; the
    # calibration pairs (two calibration images) are the cache's and pairs solved for the run
    sp = tr["split"]
    assert tr["dropped_pairs"] == sp["dropped"] > 0
    assert tr["train_pairs"] + tr["val_pairs"] + tr["dropped_pairs"] + tr["calibration_pairs"] - \
        sp["calibration_solved"] == 5400
    assert (sp["train"], sp["validation"], sp["calibration"]) == (tr["train_pairs"], tr["val_pairs"],
                                                                  tr["calibration_pairs"])
    # conformal calibration uses pairs of two held-out images that did not select the model (early stopping)
    assert tr["calibration_pairs"] >= 200 and tr["calibration_source"].startswith("pairs of two held-out")
    assert sp["calibration_images"] == 25 and sp["selection_images"] == 13  # 38 held out: the last 25 calibrate
    assert tr["calibration_pairs"] == 300  # every pair of the 25 calibration images (fewer than 2000)
    assert cal["val_pred"].shape == cal["val_target"].shape == (tr["calibration_pairs"],)
    assert cal["train_images"].shape == (tr["train_images"],)
    assert cal["train_recon"].shape == (tr["val_images"],)  # reconstruction errors of unseen images
    assert cal["train_images"].dtype == np.int64 and cal["train_images"].max() < 150
    assert tr["warnings"] == []  # enough held-out pairs for both uses
    # units recover the blocks: ~25 images and ~300 pairs each, far fewer than pairs
    assert tr["units"] < tr["train_pairs"] / 50


def test_evaluate_drops_training_images(trained, caches):
    m = wassembed.evaluate(trained, caches / "train")
    tr = trained.info["training"]
    t = DistanceCache.open(caches / "train").read()
    seen = np.isin(t.i, trained.calibration["train_images"]) | np.isin(t.j, trained.calibration["train_images"])
    assert m["n_dropped"] == int(seen.sum()) and m["n_pairs"] == int((~seen).sum())
    # what is left are the pairs of two held-out images: among them the cache's calibration pairs
    sp = tr["split"]
    assert m["n_pairs"] >= sp["validation"] - sp["validation_mixed"] + sp["calibration"] - sp["calibration_solved"]


def test_random_pair_cache_calibrates_on_pairs_of_two_unseen_images(tmp_path):
    """4,000 random pairs among 300 images: few of them join two of the 20 calibration images, so the run solves
    pairs among them; every calibration pair joins two images that no training pair used."""
    hs = blobs(300, grid=(8, 8), seed=2)
    precompute(hs, tmp_path / "r", pairs=4000, workers=1, progress=False)
    m = wassembed.train(tmp_path / "r", **FAST)
    tr = m.info["training"]
    sp = tr["split"]
    assert sp["calibration_images"] == 20 and tr["calibration_pairs"] == 190  # all pairs of 20 images
    assert 150 < sp["calibration_solved"] < 190  # the cache held a few of them
    assert tr["val_pairs"] >= 200 and tr["calibration_source"].startswith("pairs of two held-out")
    seen = np.zeros(hs.n, bool)
    seen[m.calibration["train_images"]] = True
    cal_pairs = split_pairs_of(tmp_path / "r", seed=0).calibration
    assert not (seen[cal_pairs.i] | seen[cal_pairs.j]).any()
    assert np.allclose(np.sort(cal_pairs.value), np.sort(m.calibration["val_target"]))
    assert len(tr["warnings"]) == 1 and "190 pairs of two held-out calibration images" in tr["warnings"][0]


def split_pairs_of(cache, seed):
    from wassembed.learn._split import split_pairs

    return split_pairs(DistanceCache.open(cache), TrainSettings(), seed)


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
    boxes = bounding_boxes(hs.weights, (10, 10))
    moved = 0
    for _ in range(6):
        y = augment_images(x, (10, 10), boxes, ["shift", "flip", "rot"], 3, rng).numpy()
        assert np.allclose(y.sum(1), 1)  # in bounds: no mass wrapped around or lost
        assert ot.emd2(y[0], y[1], M) == pytest.approx(w0, rel=1e-9)
        moved += not np.array_equal(y, hs.weights)  # a draw may be the identity; most move the images
    assert moved >= 4


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
    from wassembed.learn._losses import DWELoss

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
    with pytest.raises(InputError, match="holds no pairs.*fix: precompute exact distances"):
        wassembed.train(tmp_path / "empty", **FAST)
    precompute(hs, tmp_path / "tiny", pairs=8, workers=1, progress=False)
    with pytest.raises(InputError, match=r"too small to train on.*fix: precompute more pairs \(pairs=\d+ in "
                                         r"precompute: its \d+ images allow up to n\(n-1\)/2 = \d+\).*"
                                         r"val_fraction") as ei:
        wassembed.train(tmp_path / "tiny", **FAST)
    assert "--pairs" not in str(ei.value)  # parameters, not flags (the CLI writes its flags for them)
    assert ei.value.params == ("val_fraction", "pairs", "precompute")
    # every pair of 5 images (10): more pairs cannot help, more images can
    precompute(blobs(5, grid=(8, 8)), tmp_path / "all5", pairs="all", workers=1, progress=False)
    with pytest.raises(InputError, match=r"10 pairs.*its 5 images allow no more than n\(n-1\)/2 = 10 pairs "
                                         r"and the cache holds them all.*images of precompute"):
        wassembed.train(tmp_path / "all5", **FAST)
    shutil.copytree(caches / "test", tmp_path / "nodata")
    (tmp_path / "nodata" / "data.npz").unlink()
    with pytest.raises(CacheError, match="no stored data"):
        wassembed.train(tmp_path / "nodata", **FAST)


def test_small_data_warns_at_the_end(tmp_path):
    """400 random pairs of 150 images: training works, but its error bars and early stopping rest on a
    few dozen held-out pairs; it says so, with the numbers and the parameters to change."""
    precompute(blobs(150, grid=(8, 8), seed=3), tmp_path / "s", pairs=400, workers=1, progress=False)
    with pytest.warns(SmallDataWarning) as rec:
        m = wassembed.train(tmp_path / "s", **FAST)
    msgs = [str(w.message) for w in rec if w.category is SmallDataWarning]
    tr = m.info["training"]
    n_cal = m.calibration["val_pred"].size
    assert len(msgs) == 2 and msgs == tr["warnings"]
    c = tr["split"]["calibration_images"]
    assert f"calibrated on {n_cal} pairs of two held-out calibration images (the last {c} images, which allow " \
           f"{c * (c - 1) // 2} pairs)" in msgs[0]
    assert "(n + 1)(1 − level) >= 5" in msgs[0]
    assert "fix: hold out more images: raise val_fraction (now 0.1; two thirds of the held-out images " \
           "calibrate), or precompute pairs over more images" in msgs[0], msgs[0]
    assert f"early stopping compared epochs on {tr['val_pairs']} validation pairs" in msgs[1]
    assert "val_fraction" in msgs[1] and "--" not in msgs[0] + msgs[1]
    assert rec[0].filename == __file__  # points at the caller of train


def test_progress_in_a_log_is_plain_lines(caches, capfd):
    """stderr is not a terminal (a file, a CI log): no carriage-return frames, one line per epoch."""
    wassembed.train(caches / "train", **(FAST | dict(epochs=3, progress=True)))
    err = capfd.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 3, err
    assert re.fullmatch(r"epoch 1/3: loss [\d.e+-]+, val mse [\d.e+-]+, r [\d.-]+, [\d,]+ pairs/s, ETA .+", lines[0])
    assert lines[2].endswith("last epoch")


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
    with pytest.warns(SmallDataWarning, match=r"calibrated on \d+ pairs of two held-out calibration images"):
        m = wassembed.train(tmp_path / "c", epochs=8, progress=False, batch_images=64, threads=1)
    t = DistanceCache.open(tmp_path / "c").read()
    pred = m.distance(hs.weights[t.i], hs.weights[t.j], warn_ood=False)
    # W1 learned: r 0.69 on the cache's pairs after 8 epochs on 60 images (0.71 with the split of before, whose
    # validation pairs, of 3 other images, gave 0.82 where these, of 2 images, give 0.67: too few to test on)
    assert m.p == 1 and np.corrcoef(pred, t.value)[0, 1] > 0.6


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=0), "epochs"), (dict(lr=2.0), "lr"), (dict(schedule="step"), "schedule"),
    (dict(augment="shear"), "augment"), (dict(val_fraction=0.95), "val_fraction"),
    (dict(target_scale=-1.0), "target_scale"), (dict(batch_images=2), "batch_images"),
    (dict(distill_epochs=-1), "distill_epochs"),
])
def test_settings_validation(kw, match):
    with pytest.raises(InputError, match=match):
        TrainSettings(**kw)


def test_distillation_epochs_default_by_kind_of_data():
    assert TrainSettings().distillation_epochs(clouds=False) == 80
    assert TrainSettings().distillation_epochs(clouds=True) == 40
    assert TrainSettings(distill_epochs=7).distillation_epochs(clouds=True) == 7


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
    # the rest in this process (the console script itself ran above): evaluate, resume, a refused --out
    from click.testing import CliRunner

    from wassembed.cli import main

    r = CliRunner().invoke(main, ["evaluate", str(out), str(caches / "test"), "--json"])
    assert r.exit_code == 0, r.output
    assert {"mse", "relative_mse", "pearson", "spearman"} <= set(json.loads(r.stdout))
    before = torch.get_num_threads()
    r = CliRunner().invoke(main, ["train", str(caches / "train"), "--out", str(out), "--epochs", "3", "--resume",
                                  "--threads", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert torch.get_num_threads() == before  # restored
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 3
    r = CliRunner().invoke(main, ["train", str(caches / "train"), "--out", str(out)])
    assert r.exit_code == 2 and "already holds" in r.output


def test_training_threads_default_to_one_on_cpu_and_torch_is_restored(caches, tmp_path):
    """Without ``threads`` (Python) or ``--threads`` (CLI) a CPU run trains on 1 thread, the measured choice
    (docs/benchmarks-learning.md); torch's setting is restored after the run (``training_threads``'s examples
    check 0 and explicit counts)."""
    from click.testing import CliRunner

    from wassembed.cli import main
    from wassembed.learn._trainer import DEFAULT_CPU_THREADS

    assert DEFAULT_CPU_THREADS == 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        quick = dict(epochs=1, distill_epochs=0, progress=False, device="cpu")
        assert wassembed.train(caches / "train", **quick).info["training"]["threads"] == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(InputError, match=r"bad threads.*received -1"):
            wassembed.train(caches / "train", threads=-1, **quick)
        r = CliRunner().invoke(main, ["train", str(caches / "train"), "--out", str(tmp_path / "m"), "--epochs", "1",
                                      "--distill-epochs", "0", "--device", "cpu", "--quiet"])
        assert r.exit_code == 0, r.output
        assert json.loads((tmp_path / "m" / "model.json").read_text())["info"]["training"]["threads"] == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
