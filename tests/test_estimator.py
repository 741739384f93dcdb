"""WassersteinEmbedder: scikit-learn conventions, Pipeline use; training is replaced by a stub."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from wassembed.errors import InputError
from wassembed.learn import WassersteinEmbedder
from wassembed.serve import WassersteinEmbedding

GRID = (6, 6)


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


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, *GRID))
    y = (X[:, :3].sum((1, 2)) > X[:, 3:].sum((1, 2))).astype(int)
    return X, y


def test_fit_trains_from_the_cache_with_the_options(fake_train):
    est = WassersteinEmbedder(cache="some/cache", epochs=3, lr=1e-3, train_options={"patience": 2},
                              device="cpu", random_state=7)
    assert est.fit() is est
    cache, kw = fake_train[0]
    assert cache == "some/cache"
    assert kw == {"epochs": 3, "lr": 1e-3, "patience": 2, "model": "fast", "device": "cpu", "seed": 7,
                  "progress": False}
    assert est.n_features_in_ == 36 and est.grid_ == GRID and est.p_ == 2 and est.embed_dim_ == 5
    X, _ = _data()
    Z = est.transform(X)
    assert Z.shape == (40, 5)
    np.testing.assert_array_equal(Z, est.embedding_.embed(X))
    assert est.inverse_transform(Z).shape == (40, *GRID)  # the model's decode: images for a grid model
    assert est.transform(X[0]).shape == (1, 5)  # one image is a batch of one
    assert list(est.get_feature_names_out())[:2] == ["wassersteinembedder0", "wassersteinembedder1"]


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


def test_pretrained_model_skips_training(fake_train):
    est = WassersteinEmbedder(pretrained=_model()).fit()
    assert fake_train == [] and est.embed_dim_ == 5


def test_not_fitted_and_bad_setups(fake_train):
    with pytest.raises(NotFittedError):
        WassersteinEmbedder(cache="c").transform(np.ones((1, *GRID)))
    with pytest.raises(InputError, match="nothing to fit on.*cache="):
        WassersteinEmbedder().fit()
    with pytest.raises(InputError, match="given twice.*epochs"):
        WassersteinEmbedder(cache="c", epochs=2, train_options={"epochs": 3}).fit()
    with pytest.raises(InputError, match="wrong image size"):
        WassersteinEmbedder(cache="c").fit(np.ones((3, 5, 5)))
    est = WassersteinEmbedder(cache="c").fit()
    with pytest.raises(InputError, match="negative"):
        est.transform(-np.ones((2, *GRID)))
