"""scikit-learn estimator: a Wasserstein embedding as a transformer (``transform`` = embed).

``fit(X)`` learns the embedding of the rows of ``X`` itself: it solves exact :math:`W_p^p` for a budget of
random pairs among them (and, by default, one LOT problem per row: the distillation targets) with
:func:`wassembed.exact.precompute` in a temporary cache, trains on them with :func:`wassembed.learn.train`,
and removes the cache. ``transform`` embeds: squared Euclidean distances between embeddings approximate the
exact distances. Instead of solving, ``fit`` can train on a cache that exists (``cache=``, from
``wassembed precompute``) or load a trained model (``pretrained=``); ``X`` is then only checked against its
support.

Examples
--------
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.neighbors import KNeighborsClassifier
>>> pipe = make_pipeline(WassersteinEmbedder(n_pairs=2000, epochs=5), KNeighborsClassifier())
>>> pipe.steps[0][1].get_params()["n_pairs"]
2000
"""

from __future__ import annotations

import numbers
import tempfile
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._validation import check_pos_int
from ..data import HISTOGRAMS, HistogramSet
from ..errors import InputError, explain
from ..exact import DistanceCache, precompute
from ..nn import ModelConfig
from ..serve import BaseEmbedding, load
from ._settings import TrainSettings
from ._trainer import train

__all__ = ["WassersteinEmbedder"]

#: The fewest rows ``fit`` solves and trains on: with every pair solved, 3 held-out rows (2 calibrate the error
#: bars, 1 selects the model) leave 5 training rows, i.e. the trainer's minimum of 10 training and 5 selection
#: pairs.
MIN_SAMPLES = 8
#: Held-out rows ``fit`` asks the trainer for at least (``val_fraction`` raised to ``3 / n`` below 30 rows).
MIN_HELD_OUT = 3


class _NotNumbers(InputError, TypeError):
    """Values that are not numbers (scikit-learn's convention: a ``TypeError``)."""


class WassersteinEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn a Wasserstein embedding of ``X``; ``transform`` embeds, ``inverse_transform`` decodes.

    Parameters
    ----------
    cache : str, path or DistanceCache, optional
        Train on this distance cache (``wassembed precompute``) instead of solving pairs among ``X``.
    n_pairs : int
        Budget of exact pairs ``fit(X)`` solves among the rows of ``X``: that many random pairs, or all
        ``n (n - 1) / 2`` when fewer. Per-image LOT targets add one exact solve per row (turn them off with
        ``precompute_options={"lot": False}``).
    p : {1, 2}
        2: W2² with squared Euclidean ground cost; 1: W1 with Euclidean ground cost.
    grid : tuple (H, W), optional
        Read histograms ``(n, H * W)`` as images on this pixel grid. Images ``(n, H, W)`` bring their own grid;
        without ``grid`` or ``coords``, the ``k`` bins of histograms ``(n, k)`` lie on a line (bin ``b`` at
        position ``b``).
    coords : array-like, shape (k, d), optional
        Positions of the bins of histograms ``(n, k)`` (instead of a grid).
    workers : int, optional
        Local processes for the exact solves (default: all cores; 1 solves in this process).
    precompute_options : dict, optional
        Any other keyword of :func:`wassembed.exact.precompute` (``lot``, ``sampling``, ``chunk_size``,
        ``client``, ``method``, ...).
    architecture : str or ModelConfig
        Model preset (``"fast"``, ``"paper"``, ``"mlp"``; an MLP without a grid) or a config.
    n_components : int, optional
        Embedding dimension ``d`` (default: the preset's).
    epochs, lr, recon_weight : optional
        Common training settings (``None``: the training defaults).
    train_options : dict, optional
        Any other keyword of :func:`wassembed.learn.train` or field of ``TrainSettings`` (e.g.
        ``{"distill_epochs": 10, "patience": 3}``). When ``fit(X)`` solves pairs and ``val_fraction`` is not
        given, at least 3 rows are held out (2 calibrate the error bars, 1 selects the model).
    pretrained : str, path or served model (WassersteinEmbedding, CloudEmbedding), optional
        Use this trained model (``fit`` only loads it).
    device : {"auto", "cpu", "cuda"}
        Device for training and for ``transform``.
    random_state : int, RandomState or None
        Seeds the pairs drawn and the training run.
    batch_size : int, optional
        Inputs per forward pass in ``transform`` (default: 256 on CPU, 4096 on CUDA).
    progress : bool
        Show the progress of the exact solves and of training (stderr).

    Attributes
    ----------
    embedding_ : WassersteinEmbedding or CloudEmbedding
        The served model (``distance``, ``cdist``, ``kneighbors``, ``barycenter``, ... are available on it).
    n_features_in_ : int
        Number of bins ``k`` of the inputs (``H * W`` for images).
    grid_ : tuple or None
        Pixel grid of the inputs.
    p_ : int
        Transport exponent (2: W2²; 1: W1).
    embed_dim_ : int
        Embedding dimension ``d``.
    precompute_result_ : PrecomputeResult or None
        What ``fit(X)`` solved (pairs, per-image solves, seconds); None when it trained on ``cache`` or loaded
        ``pretrained``.
    """

    def __init__(self, cache=None, *, n_pairs=10_000, p=2, grid=None, coords=None, workers=None,
                 precompute_options=None, architecture="fast", n_components=None, epochs=None, lr=None,
                 recon_weight=None, train_options=None, pretrained=None, device="auto", random_state=0,
                 batch_size=None, progress=False):
        self.cache = cache
        self.n_pairs = n_pairs
        self.p = p
        self.grid = grid
        self.coords = coords
        self.workers = workers
        self.precompute_options = precompute_options
        self.architecture = architecture
        self.n_components = n_components
        self.epochs = epochs
        self.lr = lr
        self.recon_weight = recon_weight
        self.train_options = train_options
        self.pretrained = pretrained
        self.device = device
        self.random_state = random_state
        self.batch_size = batch_size
        self.progress = progress

    def fit(self, X=None, y=None):
        """Solve exact pairs among the rows of ``X`` and train on them (or train on ``cache``, or load
        ``pretrained``, checking ``X`` if given); ``y`` is ignored. Returns self."""
        seed = _seed(self.random_state)
        result = None
        if self.pretrained is not None:
            emb = self.pretrained if isinstance(self.pretrained, BaseEmbedding) else \
                load(self.pretrained, device=self.device)  # either kind of model
        elif self.cache is not None:
            emb = train(self.cache, **self._train_kwargs(None, seed))
        elif X is None:
            raise InputError(explain("WassersteinEmbedder.fit needs data", expected="X (images (n, H, W) or "
                                     "histograms (n, k)), or cache= (a distance cache) or pretrained= (a model)",
                                     received="none of them", fix="call fit(X)"))
        else:
            emb, result = self._fit_on(self._data(X), seed)
        if X is not None and result is None:
            arr = _array(X)
            _check_support(arr, emb)
            emb.histograms(arr, "X")
        self.embedding_ = emb
        self.precompute_result_ = result
        self.p_ = int(emb.p)
        self.grid_ = emb.grid
        self.n_features_in_ = int(emb.k) if emb.k is not None else None
        dim = getattr(emb.config, "embed_dim", None)
        self.embed_dim_ = int(dim) if dim is not None else int(emb.embed(_probe(emb)).shape[1])
        self._n_features_out = self.embed_dim_
        return self

    def transform(self, X):
        """Embeddings ``(n, d)`` of images ``(n, H, W)`` or histograms ``(n, k)``: float32 for float32 input,
        float64 otherwise."""
        check_is_fitted(self, "embedding_")
        arr = _array(X)
        _check_support(arr, self.embedding_, estimator=type(self).__name__)
        Z = self.embedding_.embed(arr, batch_size=self.batch_size)
        return Z.astype(np.float32 if arr.dtype == np.float32 else np.float64, copy=False)

    def inverse_transform(self, Z):
        """Decoded inputs of embeddings ``(n, d)``: images ``(n, H, W)`` (grid model) or histograms ``(n, k)``."""
        check_is_fitted(self, "embedding_")
        return self.embedding_.decode(Z, batch_size=self.batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = True  # histogram weights
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -- fit(X): solve, then train --------------------------------------------------------------------------
    def _data(self, X) -> HistogramSet:
        """``X`` validated as the histograms to solve pairs among (at least :data:`MIN_SAMPLES` rows, 2 bins)."""
        arr = _array(X)
        n, k = arr.shape[0], int(np.prod(arr.shape[1:]))
        if n < MIN_SAMPLES:
            raise InputError(explain(f"X has {n} sample(s) (shape={arr.shape}) while a minimum of {MIN_SAMPLES} is "
                                     "required", expected=f"at least {MIN_SAMPLES} images or histograms (a training, "
                                     "a model-selection and a calibration set of pairs among them)",
                                     received=f"{n}", fix="fit on more samples, or pass pretrained= (a model)"))
        if k < 2:
            raise InputError(explain(f"X has {k} feature(s) (shape={arr.shape}) while a minimum of 2 is required",
                                     expected="histograms of at least 2 bins (one bin holds all the mass: every "
                                              "distance is 0)", received=f"{k} bin(s)",
                                     fix="pass the bins of each histogram as the columns of X"))
        _screen(arr, "X")
        if arr.ndim == 3:
            if self.grid is not None or self.coords is not None:
                raise InputError(explain("X are images with their own grid", expected="grid=None and coords=None "
                                         "for images (n, H, W)", received=f"grid={self.grid}, coords given: "
                                         f"{self.coords is not None}", fix="pass histograms (n, H * W) with grid="))
            return HistogramSet.from_images(arr, name="X")
        if self.grid is not None:
            return HistogramSet.from_histograms(arr, grid=tuple(self.grid), name="X")
        coords = np.arange(k, dtype=np.float64)[:, None] if self.coords is None else self.coords
        return HistogramSet.from_histograms(arr, coords=coords, name="X")

    def _fit_on(self, hs: HistogramSet, seed: int):
        """Solve the pairs (and per-image targets) among ``hs`` in a temporary cache and train on them."""
        budget = check_pos_int("n_pairs", self.n_pairs, example=10_000)
        pairs = "all" if budget >= hs.n * (hs.n - 1) // 2 else budget
        options = dict(self.precompute_options or {})
        with tempfile.TemporaryDirectory(prefix="wassembed-fit-") as tmp:
            out = Path(tmp) / "cache"
            result = precompute(hs, out, pairs=pairs, seed=seed, workers=self.workers, p=self.p,
                                progress=self.progress, **options)
            emb = train(out, **self._train_kwargs(hs, seed))
        return emb, result

    def _train_kwargs(self, data: HistogramSet | None, seed: int) -> dict:
        """Keywords of :func:`train`; ``data``: the histograms ``fit(X)`` solved pairs among (None: ``cache``)."""
        kw = {name: getattr(self, name) for name in ("epochs", "lr", "recon_weight") if getattr(self, name) is not None}
        extra = dict(self.train_options or {})
        clash = sorted(set(kw) & set(extra))
        if clash:
            raise InputError(explain("training option given twice", expected="each option once",
                                     received=f"{clash} both as parameters and in train_options",
                                     fix="remove them from train_options"))
        kw.update(extra)
        kw.setdefault("model", self._architecture(data))
        kw.setdefault("device", self.device)
        kw.setdefault("seed", seed)
        kw.setdefault("progress", self.progress)
        if data is not None and "settings" not in kw:  # fit(X): hold out enough rows for the three sets
            kw.setdefault("val_fraction", max(TrainSettings().val_fraction, MIN_HELD_OUT / data.n))
        return kw

    def _architecture(self, data: HistogramSet | None):
        """``architecture``, with ``n_components`` as its embedding dimension when given."""
        if self.n_components is None:
            return self.architecture
        d = check_pos_int("n_components", self.n_components, example=50)
        if isinstance(self.architecture, ModelConfig):
            return self.architecture.replace(embed_dim=d)
        if data is None:
            data = DistanceCache.open(self.cache).data
        if data.kind != HISTOGRAMS:
            raise InputError(explain("n_components is for histograms only", expected="n_components=None for a "
                                     "cache of point clouds", received=f"n_components={self.n_components}",
                                     fix="pass architecture=ModelConfig.preset('set', ..., embed_dim=d)"))
        return ModelConfig.preset(str(self.architecture), grid=data.grid, k=data.k).replace(embed_dim=d)


def _seed(random_state) -> int:
    """The integer seed of ``random_state`` (an int itself; None or a RandomState: drawn from it).

    Examples
    --------
    >>> _seed(7), _seed(np.random.RandomState(0)) == _seed(np.random.RandomState(0))
    (7, True)
    """
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _array(X) -> np.ndarray:
    """``X`` as a numeric array of images ``(n, H, W)`` or histograms ``(n, k)`` with at least one of each, in
    the words scikit-learn's conventions look for (sparse, complex, not numbers, 1-D: "Reshape your data").

    Examples
    --------
    >>> _array([[1, 2]]).shape
    (1, 2)
    >>> _array(np.ones(3))
    Traceback (most recent call last):
    ...
    wassembed.errors.InputError: X has 1 dimension (shape=(3,)): ...; fix: Reshape your data: ...
    """
    if sparse.issparse(X):
        raise InputError(explain("X is a sparse matrix: sparse input is not supported",
                                 expected="a dense array of images (n, H, W) or histograms (n, k)",
                                 received=f"{type(X).__name__} of shape {X.shape}", fix="pass X.toarray()"))
    try:
        arr = np.asarray(X)
        if arr.dtype == object:
            arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise _NotNumbers(explain(f"X holds values that are not numbers ({exc})", expected="numbers",
                                  received=f"{type(X).__name__}", fix="convert X to a float array")) from None
    if np.iscomplexobj(arr):
        raise InputError(explain("Complex data not supported in X", expected="real, nonnegative weights",
                                 received=f"dtype {arr.dtype}", fix="pass the magnitudes (np.abs) or the real part"))
    if arr.dtype.kind not in "biuf":
        raise _NotNumbers(explain("X is not a numeric array", expected="an int or float array",
                                  received=f"dtype {arr.dtype}", fix="convert X to a float array"))
    if arr.ndim not in (2, 3):
        raise InputError(explain(f"X has {arr.ndim} dimension{'s' if arr.ndim != 1 else ''} (shape={arr.shape})",
                                 expected="histograms (n_samples, n_features) or images (n_samples, H, W)",
                                 received=f"shape {arr.shape}", fix="Reshape your data: X.reshape(1, -1) for one "
                                 "histogram, X[None] for one image"))
    if arr.shape[0] == 0:
        raise InputError(explain(f"X has 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required",
                                 expected="at least one image or histogram", received="none", fix="pass data"))
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise InputError(explain(f"X has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required",
                                 expected="histograms (n, k) or images (n, H, W)", received=f"shape {arr.shape}",
                                 fix="pass the bins of each histogram as the columns"))
    return arr


def _check_support(arr: np.ndarray, emb, estimator: str = "WassersteinEmbedder") -> None:
    """Refuse ``arr`` (from :func:`_array`) unless it has the model's number of bins and no negative value."""
    k = int(np.prod(arr.shape[1:]))
    if emb.k is not None and k != emb.k:
        raise InputError(explain(f"X has {k} features, but {estimator} is expecting {emb.k} features as input",
                                 expected=f"{emb.k} bins per row" + (f" (images of {emb.grid[0]}×{emb.grid[1]})"
                                                                     if emb.grid is not None else ""),
                                 received=f"shape {arr.shape}", fix="pass data on the support the model learned"))
    _screen(arr, "X")  # the model's own validation then refuses a wrong image size, NaN or inf, all-zero rows


def _screen(arr: np.ndarray, name: str) -> None:
    """Refuse negative values, in the words scikit-learn's conventions look for.

    Examples
    --------
    >>> _screen(np.ones((2, 3)), "X")  # fine: the model checks the rest
    >>> _screen(-np.ones((2, 3)), "X")
    Traceback (most recent call last):
    ...
    wassembed.errors.InputError: Negative values in data passed to X: ...
    """
    if (arr < 0).any():
        raise InputError(explain(f"Negative values in data passed to {name}", expected="nonnegative weights "
                                 "(histograms or images)", received=f"{int((arr < 0).sum())} negative values",
                                 fix="clip at 0 (np.clip(X, 0, None)) or shift each row by its minimum"))


def _probe(emb):
    k = emb.k
    if k is None:
        raise InputError(explain("cannot tell the model's number of bins", expected="a grid, coords or cost",
                                 received="none", fix="save the model with its support"))
    return np.full((1, k), 1.0 / k)
