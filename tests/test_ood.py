"""The out-of-distribution check: the default "pca" score (no network pass) and the reconstruction score.

A tiny model is trained on scikit-learn's 8×8 digits (pairs among images 0–1199, a third of them held out to
calibrate); images 1200–1796 were never seen and measure false alarms; inverted digits and uniform noise are
clearly foreign.
"""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch

import wassembed
from wassembed.errors import InputError
from wassembed.serve import OutOfDistributionWarning
from wassembed.serve._ood import n_components, pca_reference, pca_scores

PCA_KEYS = ("pca_mean", "pca_basis", "pca_scores")


#: one torch thread (conftest): on a shared 2-core machine, oversubscribed threads are many times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    cache = tmp_path_factory.mktemp("ood") / "cache"
    wassembed.precompute(digits, cache, pairs=1000, images="0:1200", seed=0, workers=1, progress=False, lot=False)
    return wassembed.train(cache, model="mlp", epochs=3, batch_images=64, val_fraction=0.3, progress=False,
                           seed=0, threads=1, device="cpu")


@pytest.fixture(scope="module")
def foreign(digits):
    U = digits.images()[1200:]
    inverted = U.max(axis=(1, 2), keepdims=True) - U
    noise = np.random.default_rng(0).random((200, 8, 8))
    return U, inverted, noise


def _without_pca(model, path):
    """The model as a file written before the "pca" score (no pca_* arrays), loaded back."""
    old = copy.deepcopy(model)
    old.calibration = {k: v for k, v in old.calibration.items() if k not in PCA_KEYS}
    old.save(path)
    return wassembed.load(path)


def _boom(*args, **kwargs):
    raise AssertionError("the decoder ran")


def test_training_calibrates_both_scores(trained):
    cal = trained.calibration
    k, q = 64, n_components(64, 800)
    assert cal["pca_mean"].shape == (k,) and cal["pca_basis"].shape == (k, q) == (64, 8)
    # reference scores: the held-out images', then the training images' cross-fitted (each fold of the training
    # images scored against the subspace of the others)
    assert cal["pca_scores"].size == cal["train_recon"].size + cal["train_images"].size
    assert cal["train_recon"].size >= 200
    np.testing.assert_allclose(cal["pca_basis"].T @ cal["pca_basis"], np.eye(q), atol=1e-9)
    assert trained.ood_threshold() > 0 and trained.ood_threshold(score="reconstruction") > 0


def test_false_alarms_near_the_nominal_level_and_foreign_inputs_flagged(trained, foreign):
    unseen, inverted, noise = foreign
    # ~850 reference scores (~290 held-out images, the training images cross-fitted), and images 1200+ are other
    # writers: over three pair draws the false alarms at this level measured 2.2-2.9 % (3.0-4.9 % with the
    # held-out images alone as reference, the rule of before)
    assert trained.is_ood(unseen, level=0.99).mean() <= 0.04
    assert 0.03 <= trained.is_ood(unseen, level=0.9).mean() <= 0.2
    assert trained.is_ood(inverted).mean() >= 0.95
    assert trained.is_ood(noise).all()
    with pytest.warns(OutOfDistributionWarning, match=r"principal subspace.*out of distribution\? score 'pca'"):
        trained.distance(noise[:5], unseen[:5])


def test_distance_does_not_run_the_decoder_by_default(trained, foreign, monkeypatch):
    unseen, _, noise = foreign
    monkeypatch.setattr(trained.decoder, "forward", _boom)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # about 1 % of typical inputs are flagged
        trained.distance(unseen[:50], unseen[50:100])
    with pytest.warns(OutOfDistributionWarning):
        trained.distance(noise[:3], unseen[:3])
    assert trained.is_ood(noise).all()
    with pytest.raises(AssertionError, match="the decoder ran"):  # the patch holds: the old score needs it
        trained.distance(unseen[:3], unseen[:3], warn_ood="reconstruction")


def test_the_reconstruction_score_stays_available(trained, foreign):
    from wassembed.nn import reconstruction_kl

    unseen, inverted, _ = foreign
    x = torch.from_numpy(trained.histograms(unseen[:20])).float()
    with torch.no_grad():
        want = reconstruction_kl(trained.decoder(trained.encoder(x)), x).double().numpy()
    np.testing.assert_allclose(trained.ood_score(unseen[:20], score="reconstruction"), want, rtol=1e-5)
    assert trained.is_ood(inverted, score="reconstruction").mean() >= 0.95
    with pytest.warns(OutOfDistributionWarning, match="reconstruct worse.*score 'reconstruction'"):
        trained.distance(inverted[:3], unseen[:3], warn_ood="reconstruction")
    with pytest.raises(InputError, match="unknown out-of-distribution score.*'pca' or 'latent' or 'reconstruction'"):
        trained.ood_score(unseen, score="mahalanobis")
    with pytest.raises(InputError, match="no 'latent' out-of-distribution reference.*fix: use score='pca'"):
        trained.ood_score(unseen, score="latent")  # the score of point-cloud models


def test_old_model_files_load_and_use_the_reconstruction_score(trained, foreign, tmp_path, monkeypatch):
    unseen, inverted, _ = foreign
    old = _without_pca(trained, tmp_path / "old")
    assert not any(k in old.calibration for k in PCA_KEYS)
    np.testing.assert_array_equal(old.ood_score(unseen), trained.ood_score(unseen, score="reconstruction"))
    assert old.ood_threshold() == trained.ood_threshold(score="reconstruction")
    with pytest.warns(OutOfDistributionWarning, match="reconstruct worse"):
        old.distance(inverted[:3], unseen[:3])
    with pytest.raises(InputError, match="no 'pca' out-of-distribution reference.*score='reconstruction'"):
        old.is_ood(unseen, score="pca")
    monkeypatch.setattr(old.decoder, "forward", _boom)
    with pytest.raises(AssertionError, match="the decoder ran"):  # the default check of an old model decodes
        old.distance(unseen[:3], unseen[:3])
    old.distance(unseen[:3], unseen[:3], warn_ood=False)


def test_new_arrays_survive_save_and_load(trained, foreign, tmp_path):
    unseen, _, _ = foreign
    trained.save(tmp_path / "m")
    back = wassembed.load(tmp_path / "m")
    for k in PCA_KEYS:
        np.testing.assert_array_equal(back.calibration[k], trained.calibration[k])
    np.testing.assert_array_equal(back.ood_score(unseen), trained.ood_score(unseen))
    t = torch.from_numpy(unseen)
    np.testing.assert_array_equal(back.ood_score(t), trained.ood_score(unseen))  # torch in: same scores


def test_pca_score_is_the_distance_to_the_principal_subspace():
    rng = np.random.default_rng(0)
    for n, k in ((300, 40), (20, 64)):  # the (k, k) scatter and the (n, n) Gram paths
        X = rng.random((n, k)) ** 3
        X /= X.sum(1, keepdims=True)
        ref = pca_reference(X)
        S = np.sqrt(X)
        U, s, Vt = np.linalg.svd(S - S.mean(0), full_matrices=False)
        V = Vt[:n_components(k, n)].T
        B = ref["pca_basis"]
        np.testing.assert_allclose(B @ B.T, V @ V.T, atol=1e-8)  # the same subspace
        Y = rng.random((5, k))
        Y /= Y.sum(1, keepdims=True)
        c = np.sqrt(Y) - ref["pca_mean"]
        want = ((c - c @ B @ B.T) ** 2).sum(1)
        got = pca_scores(torch.from_numpy(Y), torch.from_numpy(ref["pca_mean"]), torch.from_numpy(B))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)


def test_ood_benchmark_smoke(trained, digits):
    from wassembed.bench._ood import format_ood_benchmark, run_ood_benchmark

    ood = np.random.default_rng(1).random((60, 8, 8)) ** 4
    r = run_ood_benchmark(digits, trained, ood, unseen="1200:1300", n_pairs=40, n_exact=5, n_error_pairs=5,
                          repeats=1)
    names = [s["name"] for s in r["scores"]]  # the served scores (candidates: benchmarks/ood_candidates.py)
    assert names == ["served 'pca'", "served 'reconstruction'"] and r["scores"][0]["default"]
    assert [s["check"] for s in r["speed"]][1:] == ["default (warn_ood=True)", "warn_ood='reconstruction'",
                                                     "warn_ood=False"]
    assert "| served 'pca' (default) |" in format_ood_benchmark(r)
    with pytest.raises(InputError, match="unseen holds training images"):
        run_ood_benchmark(digits, trained, ood, unseen="0:100", n_pairs=4, n_exact=2, n_error_pairs=0)


def test_bench_ood_command(trained, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from wassembed.cli import main

    trained.save(tmp_path / "m")
    np.save(tmp_path / "foreign.npy", (np.random.default_rng(2).random((40, 8, 8)) * 255).astype(np.uint8))
    args = ["bench", "ood", "--model", str(tmp_path / "m"), "--ood", str(tmp_path / "foreign.npy"),
            "--unseen", "1200:1300", "--pairs", "20", "--exact-pairs", "3", "--error-pairs", "0"]
    monkeypatch.delenv("WASSEMBED_BENCH_DATA", raising=False)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "--data" in r.stderr and "WASSEMBED_BENCH_DATA" in r.output + r.stderr
    r = CliRunner().invoke(main, [*args, "--data", "digits", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["sets"]["foreign.npy"] == 40 and res["scores"][0]["name"] == "served 'pca'"
