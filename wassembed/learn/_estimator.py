"""scikit-learn estimator: a Wasserstein embedding as a transformer (``transform`` = embed).

The embedding is learned from a *distance cache* (exact :math:`W_p^p` of pairs, ``wassembed precompute``),
not from the ``X`` passed to :meth:`WassersteinEmbedder.fit`: in a :class:`~sklearn.pipeline.Pipeline`,
``fit(X, y)`` trains on the cache given to the constructor (``X`` is only checked against the model's
support) and later steps see the embeddings, in which squared Euclidean distances approximate W2².

Examples
--------
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.neighbors import KNeighborsClassifier
>>> pipe = make_pipeline(WassersteinEmbedder(cache="cache-dir", epochs=5), KNeighborsClassifier())
>>> pipe.steps[0][1].get_params()["epochs"]
5
"""


from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError, explain
from ..serve import WassersteinEmbedding
from ._trainer import train

__all__ = ["WassersteinEmbedder"]


class WassersteinEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Learn (or load) a Wasserstein embedding; ``transform`` embeds, ``inverse_transform`` decodes.

    Parameters
    ----------
    cache : str, path or DistanceCache, optional
        Distance cache to train on (required unless ``pretrained`` is given).
    architecture : str or ModelConfig
        Model preset (``"fast"``, ``"paper"``, ``"mlp"``) or a config, passed to :func:`wassembed.learn.train`.
    epochs, lr, recon_weight : optional
        Common training settings (``None``: the training defaults).
    train_options : dict, optional
        Any other keyword of :func:`wassembed.learn.train` or field of ``TrainSettings`` (e.g.
        ``{"patience": 3, "checkpoint_dir": "runs/x"}``).
    pretrained : str, path or WassersteinEmbedding, optional
        Use this trained model instead of training (``fit`` only loads it).
    device : {"auto", "cpu", "cuda"}
        Device for training and for ``transform``.
    random_state : int
        Seed of the training run.
    batch_size : int, optional
        Inputs per forward pass in ``transform`` (default: 256 on CPU, 4096 on CUDA).
    progress : bool
        Show the training progress bar (stderr).

    Attributes
    ----------
    embedding_ : WassersteinEmbedding
        The served model (``distance``, ``cdist``, ``kneighbors``, ``barycenter``, ... are available on it).
    n_features_in_ : int
        Number of bins ``k`` of the inputs.
    grid_ : tuple or None
        Pixel grid of the inputs.
    p_ : int
        Transport exponent (2: W2²; 1: W1).
    embed_dim_ : int
        Embedding dimension ``d``.
    """

    def __init__(self, cache=None, *, architecture="fast", epochs=None, lr=None, recon_weight=None,
                 train_options=None, pretrained=None, device="auto", random_state=0, batch_size=None,
                 progress=False):
        self.cache = cache
        self.architecture = architecture
        self.epochs = epochs
        self.lr = lr
        self.recon_weight = recon_weight
        self.train_options = train_options
        self.pretrained = pretrained
        self.device = device
        self.random_state = random_state
        self.batch_size = batch_size
        self.progress = progress

    def _train_kwargs(self) -> dict:
        kw = {name: getattr(self, name) for name in ("epochs", "lr", "recon_weight") if getattr(self, name) is not None}
        extra = dict(self.train_options or {})
        clash = sorted(set(kw) & set(extra))
        if clash:
            raise InputError(explain("training option given twice", expected="each option once",
                                     received=f"{clash} both as parameters and in train_options",
                                     fix="remove them from train_options"))
        kw.update(extra)
        kw.setdefault("model", self.architecture)
        kw.setdefault("device", self.device)
        kw.setdefault("seed", self.random_state)
        kw.setdefault("progress", self.progress)
        return kw

    def fit(self, X=None, y=None):
        """Train on ``cache`` (or load ``pretrained``); ``X``, if given, is only checked; returns self."""
        if self.pretrained is not None:
            if isinstance(self.pretrained, WassersteinEmbedding):
                emb = self.pretrained
            else:
                emb = WassersteinEmbedding.load(self.pretrained, device=self.device)
        elif self.cache is None:
            raise InputError(explain("WassersteinEmbedder has nothing to fit on",
                                     expected="cache= (a distance cache from `wassembed precompute`) or "
                                              "pretrained= (a trained model)", received="neither",
                                     fix="pass WassersteinEmbedder(cache='path/to/cache')"))
        else:
            emb = train(self.cache, **self._train_kwargs())
        if X is not None:
            _screen(X, "X")
            emb.histograms(X, "X")  # same support as the model, valid weights
        self.embedding_ = emb
        self.p_ = int(emb.p)
        self.grid_ = emb.grid
        self.n_features_in_ = int(emb.k) if emb.k is not None else None
        dim = getattr(emb.config, "embed_dim", None)
        self.embed_dim_ = int(dim) if dim is not None else int(emb.embed(_probe(emb)).shape[1])
        self._n_features_out = self.embed_dim_
        return self

    def transform(self, X):
        """Embeddings ``(n, d)`` of images ``(n, H, W)`` or histograms ``(n, k)``."""
        check_is_fitted(self, "embedding_")
        _screen(X, "X")
        return self.embedding_.embed(X, batch_size=self.batch_size)

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
        return tags


def _screen(X, name: str) -> None:
    """Refuse what no histogram can be, in the words scikit-learn's conventions look for: sparse matrices,
    complex numbers, no features, negative values (the model then checks the shape against its support).

    Examples
    --------
    >>> _screen(np.ones((2, 3)), "X")  # fine: the model checks the rest
    >>> _screen(-np.ones((2, 3)), "X")
    Traceback (most recent call last):
    ...
    wassembed.errors.InputError: Negative values in data passed to X: ...
    """
    if sparse.issparse(X):
        raise InputError(explain(f"{name} is a sparse matrix: sparse input is not supported",
                                 expected="a dense array of images (n, H, W) or histograms (n, k)",
                                 received=f"{type(X).__name__} of shape {X.shape}", fix=f"pass {name}.toarray()"))
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError):
        return  # ragged or odd objects: the model's own validation explains them
    if np.iscomplexobj(arr):
        raise InputError(explain(f"Complex data not supported in {name}", expected="real, nonnegative weights",
                                 received=f"dtype {arr.dtype}", fix="pass the magnitudes (np.abs) or the real part"))
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise InputError(explain(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required",
                                 expected="histograms (n, k) or images (n, H, W)", received=f"shape {arr.shape}",
                                 fix="pass the bins of each histogram as the columns"))
    if arr.dtype.kind in "biuf" and (arr < 0).any():
        raise InputError(explain(f"Negative values in data passed to {name}", expected="nonnegative weights "
                                 "(histograms or images)", received=f"{int((arr < 0).sum())} negative values",
                                 fix="clip at 0 (np.clip(X, 0, None)) or shift each row by its minimum"))


def _probe(emb):
    k = emb.k
    if k is None:
        raise InputError(explain("cannot tell the model's number of bins", expected="a grid, coords or cost",
                                 received="none", fix="save the model with its support"))
    return np.full((1, k), 1.0 / k)
