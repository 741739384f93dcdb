"""WassersteinEmbedder: fit(X) solves exact pairs among X and trains (real runs on the digits); scikit-learn
conventions and Pipeline use, where training on a given cache is replaced by a stub."""

from __future__ import annotations

import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from wassembed.errors import InputError
from wassembed.exact import DistanceCache, ExactSolver
from wassembed.learn import WassersteinEmbedder
from wassembed.serve import WassersteinEmbedding

GRID = (6, 6)
#: the cheapest real training run: a few epochs of each phase
TINY = {"epochs": 2, "train_options": {"distill_epochs": 2}, "workers": 1, "device": "cpu"}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::wassembed.learn.SmallDataWarning")]


def _model():
    torch.manual_seed(0)
    return WassersteinEmbedding(torch.nn.Linear(36, 5), torch.nn.Linear(5, 36), config=None, p=2, grid=GRID)


@pytest.fixture
def fake_train(monkeypatch):
    calls = []

    def train(cache, **kwargs):
        calls.append((cache, kwargs))
        return _model()

    monkeypatch.setattr("wassembed.learn._estimator.train", train)
    return calls


@pytest.fixture
def own_tempdir(tmp_path, monkeypatch):
    """Temporary directories of this test under ``tmp_path / "tmp"`` (to see what fit leaves behind)."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, *GRID))
    y = (X[:, :3].sum((1, 2)) > X[:, 3:].sum((1, 2))).astype(int)
    return X, y


def _pearson_on_unseen(est, digits, lo, hi):
    """Pearson r between exact W2² and the embedding's squared distances on 300 pairs of images lo:hi."""
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, hi - lo, (2, 300))
    i, j = i[i != j], j[i != j]
    w = digits.weights[lo:hi]
    exact = ExactSolver.for_support(grid=digits.grid, p=2).solve_pairs(w, i, j)
    Z = est.transform(digits.images()[lo:hi])
    return float(np.corrcoef(exact, ((Z[i] - Z[j]) ** 2).sum(1))[0, 1])


def test_fit_solves_pairs_among_x_trains_and_embeds_unseen_images(digits, own_tempdir):
    X = digits.images()[:120]
    est = WassersteinEmbedder(n_pairs=1000, workers=1, device="cpu", random_state=3)
    assert est.fit(X) is est
    r = est.precompute_result_
    assert (r.requested, r.computed, r.lot_requested, r.lot_computed) == (1000, 1000, 120, 120)
    assert est.n_features_in_ == 64 and est.grid_ == (8, 8) and est.p_ == 2 and est.embed_dim_ == 50
    assert est.embedding_.info["training"]["distillation"]["used"]
    # the solved pairs lived in a temporary cache, removed after training
    assert Path(r.cache).parent.parent == own_tempdir and Path(r.cache).parent.name.startswith("wassembed-fit-")
    assert not Path(r.cache).parent.exists()
    # unseen images (not among X): the squared distances follow the exact W2² (0.91 when measured)
    assert _pearson_on_unseen(est, digits, 120, 180) > 0.85
    Z = est.transform(X.astype(np.float32))
    assert Z.shape == (120, 50) and Z.dtype == np.float32
    np.testing.assert_array_equal(Z, est.embedding_.embed(X.astype(np.float32)))
    assert est.transform(X).dtype == np.float64 and est.transform((X * 1000).astype(np.uint8)).dtype == np.float64
    assert list(est.get_feature_names_out())[:2] == ["wassersteinembedder0", "wassersteinembedder1"]


def test_fit_is_reproducible_and_the_budget_caps_the_pairs(digits):
    H = digits.weights[:30]  # histograms (n, 64) read on the 8x8 grid
    a = WassersteinEmbedder(n_pairs=200, grid=(8, 8), random_state=5, **TINY).fit(H)
    b = WassersteinEmbedder(n_pairs=200, random_state=5, **TINY).fit(digits.images()[:30])  # same as images
    np.testing.assert_array_equal(a.transform(H), b.transform(H))
    assert a.precompute_result_.requested == 200 and a.grid_ == (8, 8)
    c = WassersteinEmbedder(n_pairs=200, grid=(8, 8), random_state=6, **TINY).fit(H)
    assert not np.array_equal(a.transform(H), c.transform(H))  # other pairs, other initialisation
    every = WassersteinEmbedder(n_pairs=10_000, grid=(8, 8), precompute_options={"lot": False}, **TINY).fit(H)
    assert every.precompute_result_.requested == 30 * 29 // 2  # the budget is more than all pairs: all pairs
    assert every.precompute_result_.lot_computed == 0
    assert not every.embedding_.info["training"]["distillation"]["used"]


def test_histograms_without_a_grid_lie_on_a_line_or_on_given_coords():
    rng = np.random.default_rng(0)
    X = rng.random((12, 5))
    est = WassersteinEmbedder(n_pairs=60, n_components=3, **TINY).fit(X)
    np.testing.assert_array_equal(est.embedding_.coords, np.arange(5.0)[:, None])
    assert est.grid_ is None and est.transform(X).shape == (12, 3) and est.embed_dim_ == 3
    assert est.embedding_.info["training"]["split"]["calibration_images"] == 2  # 3 of 12 rows held out
    pts = rng.normal(size=(5, 2))
    est = WassersteinEmbedder(n_pairs=60, coords=pts, p=1, **TINY).fit(X)
    np.testing.assert_array_equal(est.embedding_.coords, pts)
    assert est.p_ == 1


def test_fit_refuses_what_it_cannot_learn_from():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match=r"X has 7 sample\(s\) \(shape=\(7, 4\)\) while a minimum of 8"):
        WassersteinEmbedder(**TINY).fit(rng.random((7, 4)))
    with pytest.raises(InputError, match=r"1 feature\(s\).*every distance is 0"):
        WassersteinEmbedder(**TINY).fit(rng.random((10, 1)))
    with pytest.raises(InputError, match="n_pairs"):
        WassersteinEmbedder(n_pairs=0, **TINY).fit(rng.random((10, 4)))
    with pytest.raises(InputError, match="images with their own grid"):
        WassersteinEmbedder(grid=(2, 2), **TINY).fit(rng.random((10, 2, 2)))
    with pytest.raises(InputError, match="all-zero rows.*row 3"):
        X = rng.random((10, 4))
        X[3] = 0
        WassersteinEmbedder(**TINY).fit(X)
    with pytest.raises(TypeError, match="not numbers"):
        WassersteinEmbedder(**TINY).fit(np.array([[1.0, {}]] * 10, dtype=object))
    with pytest.raises(InputError, match="Reshape your data"):
        WassersteinEmbedder(**TINY).fit(np.ones(10))
    with pytest.raises(InputError, match="needs data"):
        WassersteinEmbedder().fit()


def test_fit_trains_from_the_cache_with_the_options(fake_train):
    est = WassersteinEmbedder(cache="some/cache", epochs=3, lr=1e-3, train_options={"patience": 2},
                              device="cpu", random_state=7)
    assert est.fit() is est
    cache, kw = fake_train[0]
    assert cache == "some/cache"
    assert kw == {"epochs": 3, "lr": 1e-3, "patience": 2, "model": "fast", "device": "cpu", "seed": 7,
                  "progress": False}
    assert est.n_features_in_ == 36 and est.grid_ == GRID and est.p_ == 2 and est.embed_dim_ == 5
    assert est.precompute_result_ is None
    X, _ = _data()
    Z = est.transform(X)
    assert Z.shape == (40, 5)
    np.testing.assert_array_equal(Z, est.embedding_.embed(X))
    assert est.inverse_transform(Z).shape == (40, *GRID)  # the model's decode: images for a grid model
    np.testing.assert_array_equal(est.transform(X.reshape(40, 36)), Z)  # histograms on the model's grid
    with pytest.raises(InputError, match="X has 6 features, but WassersteinEmbedder is expecting 36"):
        est.transform(X[0])  # one image is not a batch (scikit-learn's convention): X[None] is


def test_random_state_none_or_a_generator_gives_an_int_seed(fake_train):
    WassersteinEmbedder(cache="c", random_state=np.random.RandomState(0)).fit()
    WassersteinEmbedder(cache="c", random_state=np.random.RandomState(0)).fit()
    WassersteinEmbedder(cache="c", random_state=None).fit()
    seeds = [kw["seed"] for _, kw in fake_train]
    assert all(isinstance(s, int) and s >= 0 for s in seeds) and seeds[0] == seeds[1]


def test_n_components_with_a_cache_sets_the_embedding_dimension(fake_train, digits, tmp_path):
    from wassembed.exact import precompute

    precompute(digits.subset(np.arange(10)), tmp_path / "c", pairs=20, workers=1, progress=False, lot=False)
    WassersteinEmbedder(cache=tmp_path / "c", n_components=7, architecture="mlp").fit()
    cfg = fake_train[0][1]["model"]
    assert (cfg.embed_dim, cfg.kind, cfg.grid) == (7, "mlp", (8, 8))
    assert DistanceCache.open(tmp_path / "c").data.grid == (8, 8)


def test_pipeline_fit_predict_clone_and_pickle(fake_train):
    X, y = _data()
    pipe = Pipeline([("wemb", WassersteinEmbedder(cache="c")), ("knn", KNeighborsClassifier(3))])
    pred = pipe.fit(X, y).predict(X)
    assert pred.shape == (40,)
    assert pipe.score(X, y) > 0.5
    pipe.set_params(wemb__epochs=2)
    assert clone(pipe).get_params()["wemb__epochs"] == 2
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict(X), pred)
    Z = pipe.named_steps["wemb"].fit_transform(X)
    assert Z.shape == (40, 5)


def test_pretrained_model_skips_training(fake_train, tmp_path):
    from wassembed.nn import ModelConfig, build_decoder, build_encoder

    est = WassersteinEmbedder(pretrained=_model()).fit()
    assert fake_train == [] and est.embed_dim_ == 5
    cfg = ModelConfig.preset("mlp", grid=GRID).replace(hidden=(8,), embed_dim=5)
    est = WassersteinEmbedder(pretrained=WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0),
                                                              config=cfg, p=2, grid=GRID)).fit()
    est.embedding_.save(tmp_path / "m")
    X, _ = _data()
    again = WassersteinEmbedder(pretrained=Path(tmp_path / "m"), device="cpu").fit(X)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


def test_not_fitted_and_bad_setups(fake_train):
    with pytest.raises(NotFittedError):
        WassersteinEmbedder(cache="c").transform(np.ones((1, *GRID)))
    with pytest.raises(InputError, match="given twice.*epochs"):
        WassersteinEmbedder(cache="c", epochs=2, train_options={"epochs": 3}).fit()
    with pytest.raises(InputError, match="X has 25 features, but WassersteinEmbedder is expecting 36"):
        WassersteinEmbedder(cache="c").fit(np.ones((3, 5, 5)))
    with pytest.raises(InputError, match="wrong image size"):
        WassersteinEmbedder(cache="c").fit(np.ones((3, 4, 9)))  # 36 bins, but not 6x6 images
    est = WassersteinEmbedder(cache="c").fit()
    with pytest.raises(InputError, match="Negative values"):
        est.transform(-np.ones((2, *GRID)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="NaN"):
            est.transform(np.full((2, *GRID), np.nan))
