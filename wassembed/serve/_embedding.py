"""The served model's base: fast approximate Wasserstein distances from a learned embedding, for any kind of data.

An encoder :math:`\\varphi` maps an input (a histogram, a point cloud) to :math:`\\mathbb R^d` so that
:math:`\\|\\varphi(x) - \\varphi(y)\\|^2 \\approx W_2^2(x, y)` (``p = 2``) or
:math:`\\|\\varphi(x) - \\varphi(y)\\| \\approx W_1(x, y)` (``p = 1``); a decoder :math:`\\psi` maps embeddings
back to inputs. Every distance returned is in the units of the cache, :math:`W_p^p`, unless ``root=True`` asks
for :math:`W_p`.

:class:`BaseEmbedding` holds what every served model shares: the state, persistence, embeddings, distances,
error bars, matrices, neighbours with exact re-ranking, decoded geometry and the out-of-distribution scores.
What depends on the kind of data is a few hooks, implemented by its two siblings:
:class:`~wassembed.serve.WassersteinEmbedding` (histograms and images, :mod:`._histogram_model`) and
:class:`~wassembed.serve.CloudEmbedding` (point clouds, :mod:`._cloud_model`):

- ``_prepare(X, what)``: inputs validated and read in batches on a device;
- ``_exact_data(Q, R)`` and ``_exact_solver()``: the prepared inputs as the exact solver reads them, and the
  solver (exact re-ranking);
- ``decode(Z)``: decoded inputs; ``_encode(data, dev, batch_size)``: embeddings of validated data;
- ``_describe()`` (``repr``), ``_support_mismatch(data)`` (whether data of the model's kind is on its support),
  ``_input_scores`` (OOD scores computed on the inputs, without a network pass).

Every estimate comes from one :class:`~wassembed.nn.LatentDistance` (``distance_fn``, the one training uses);
the out-of-distribution scores and their calibration are :mod:`._ood`'s. The class composes :mod:`._inputs`
(validation), :mod:`._forward` (batched passes), :mod:`._neighbors` (distance tiles, kNN, re-ranking),
:mod:`._geometry` (decoded geometry), :mod:`._ood`.

Calls share no mutable state: one model can serve many threads at once.
"""


from __future__ import annotations

import abc
import os
import threading
import warnings

import numpy as np
import torch

from .._results import Neighbors
from ..data import kind_class, parse_p
from ..errors import CacheMismatchError, InputError, ModelFileError, explain, param
from ..nn import LatentDistance, resolve_device
from . import _forward, _geometry, _inputs, _neighbors, _ood
from ._conformal import ConformalCalibrator, DistanceEstimate, check_level
from ._geometry import PrincipalDirections
from ._inputs import Device, Inputs, Outputs
from ._inputs import rewrap as _out
from ._modelfile import read_model, save_model
from ._warnings import warn_few_calibration_pairs

__all__ = ["BaseEmbedding", "OutOfDistributionWarning", "PrincipalDirections"]

OutOfDistributionWarning = _ood.OutOfDistributionWarning


class BaseEmbedding(abc.ABC):
    """A trained encoder/decoder pair serving approximate :math:`W_p^p` (see the module docstring): the base of
    :class:`~wassembed.serve.WassersteinEmbedding` (histograms) and :class:`~wassembed.serve.CloudEmbedding`
    (point clouds).

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Inputs (as the kind's networks read them) → ``(n, d)``; ``(n, d)`` → decoded inputs.
    config : ModelConfig
        The architecture (:class:`~wassembed.nn.HistogramConfig` or :class:`~wassembed.nn.SetConfig`).
    p : {1, 2}
    info : dict, JSON-able metadata. calibration : dict of arrays ``val_pred``, ``val_target``,
        ``train_images`` (see ``docs/design.md``) and the OOD reference of the kind (:mod:`._ood`).
    device : "cpu", "cuda", "cuda:N" or "auto"; the default device of every method.

    Attributes
    ----------
    distance_fn : wassembed.nn.LatentDistance
        Estimates of :math:`W_p^p` from embeddings (and :math:`W_p` with ``root``), as in training.
    """

    #: the configuration class of the networks this model serves (set by each sibling)
    config_type: type | None = None
    #: the kind of data it reads (a :class:`~wassembed.data.DataSet` kind)
    data_kind: str = ""
    #: the serving class of each configuration class (filled by ``__init_subclass__``)
    _by_config: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("config_type") is not None:
            BaseEmbedding._by_config[cls.config_type] = cls

    @staticmethod
    def model_class(config) -> type:
        """The serving class of ``config``'s kind (a :class:`~wassembed.nn.ModelConfig`)."""
        for ctype, cls in BaseEmbedding._by_config.items():
            if isinstance(config, ctype):
                return cls
        raise ModelFileError(explain("no served model for this configuration",
                                     expected=" or ".join(c.__name__ for c in BaseEmbedding._by_config),
                                     received=type(config).__name__, fix="train or save the model again"))

    def __init__(self, encoder, decoder, *, config, p, info=None, calibration=None, device="cpu"):
        self.p = parse_p(p)
        self.distance_fn = LatentDistance(self.p)
        self.config = config
        self.info = dict(info or {})
        self.calibration = {key: np.asarray(v) for key, v in (calibration or {}).items()}
        self.device = resolve_device(device)
        self.encoder = encoder.to(self.device).eval()
        self.decoder = decoder.to(self.device).eval() if decoder is not None else None
        self._init_runtime()

    def _init_runtime(self):
        self._lock = threading.Lock()
        self._copies = {}            # device -> (encoder, decoder) copies for calls on another device
        self._cal_cache = None       # (val_pred, val_target, ConformalCalibrator)
        self._solver = None
        self._ood_cache = {}         # device -> the "pca" OOD reference as tensors (see _ood.encode)

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_lock", "_copies", "_cal_cache", "_solver", "_ood_cache"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(p={self.p}, {self._describe()}, device={self.device}, "
                f"calibrated={self._calibrator() is not None})")

    # -- what the kinds implement (see the module docstring) ----------------------------------------
    @abc.abstractmethod
    def _describe(self) -> str:
        """The inputs the model reads, for ``repr`` (``grid=(28, 28)``, ``point_dim=3``)."""

    @abc.abstractmethod
    def _prepare(self, X, what: str):
        """``X`` checked on its shape, ready to be read in batches on a device (``.n``, ``.like``,
        ``.batches(dev, batch_size)``)."""

    @abc.abstractmethod
    def _exact_data(self, Q, R):
        """``(data, nq)``: the prepared inputs ``Q`` then ``R`` (:meth:`_prepare`) in the form the exact solver
        reads, and the number of queries."""

    @abc.abstractmethod
    def _exact_solver(self):
        """The exact solver of pairs of inputs (built once)."""

    @abc.abstractmethod
    def _encode(self, data, dev, batch_size: int, *, score: str | None = None):
        """Embeddings ``(n, d)`` float32 on ``dev`` of validated inputs (and OOD scores of ``score``)."""

    @abc.abstractmethod
    def _support_mismatch(self, data) -> tuple[str, str] | None:
        """``(expected, received)`` when ``data`` (a :class:`~wassembed.data.DataSet` of the model's kind) is on
        another support (grid, bins, point dimension); None when the model reads it."""

    def _check_data(self, data) -> None:
        """:class:`~wassembed.errors.CacheMismatchError` unless ``data`` (e.g. a cache's) is of the model's kind
        and support."""
        if data.kind != self.data_kind:
            raise CacheMismatchError(explain("the cache and the model hold different data",
                                             expected=kind_class(self.data_kind).noun, received=data.describe(),
                                             fix="evaluate on a cache of the model's kind of data"))
        wrong = self._support_mismatch(data)
        if wrong is not None:
            raise CacheMismatchError(explain("the cache and the model have different supports", expected=wrong[0],
                                             received=wrong[1], fix="evaluate on a cache of data on the model's "
                                                                    "support"))

    @abc.abstractmethod
    def decode(self, Z: Inputs, *, batch_size: int | None = None, device: Device = None) -> Outputs:
        """Decoded inputs of embeddings ``(n, d)`` (one ``(d,)``: ``n = 1``), float32."""

    def _input_scores(self, X, score: str, dev, batch_size: int | None):
        """OOD scores computed on the inputs without a network pass, or None when ``score`` needs the network."""
        return None

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the model to directory ``path`` (safetensors + JSON, sha256-checked; see :func:`save_model`)."""
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: Device = "cpu") -> BaseEmbedding:
        """Deprecated: ``wassembed.load(path, device=...)`` reads a model of either kind."""
        warnings.warn(f"{cls.__name__}.load is deprecated: use wassembed.load(path, device=...), which reads a model "
                      "of either kind", DeprecationWarning, stacklevel=2)
        kwargs = read_model(path)
        model_class = BaseEmbedding.model_class(kwargs["config"])
        if not issubclass(model_class, cls):
            raise ModelFileError(explain(f"{path} holds another kind of model", expected=f"a model of {cls.__name__}",
                                         received=f"a {kwargs['config'].kind!r} model",
                                         fix="load it with wassembed.load(path), which reads either kind"))
        return model_class(**model_class._kwargs(kwargs), device=device)

    @classmethod
    def _kwargs(cls, parts: dict) -> dict:
        """The keyword arguments of the class among the parts of a model file (:func:`read_model`)."""
        return {key: parts[key] for key in ("encoder", "decoder", "config", "p", "info", "calibration")}

    @classmethod
    @abc.abstractmethod
    def support_of(cls, data) -> dict:
        """The arguments, beside the networks, of a model of ``data`` (a :class:`~wassembed.data.DataSet` of the
        model's kind): the support of histograms, nothing for point clouds."""

    def to(self, device: Device) -> BaseEmbedding:
        """Move the model (and the default device of every method) to ``device``; returns self."""
        dev = resolve_device(device)
        with self._lock:
            self.encoder.to(dev)
            if self.decoder is not None:
                self.decoder.to(dev)
            self.device, self._copies = dev, {}
        return self

    # -- network ------------------------------------------------------------------------------------
    def _device(self, device) -> torch.device:
        """The device of a call: ``device``, or the model's when None."""
        return self.device if device is None else resolve_device(device)

    def _nets(self, dev: torch.device):
        """``(encoder, decoder)`` on ``dev`` in eval mode (copies made once for another device)."""
        return _forward.nets_on(self.device, (self.encoder, self.decoder), dev, self._copies, self._lock)

    def _embed_input(self, X, what, device, batch_size, score=None):
        """``(embeddings, like, dev)`` of inputs ``X`` (or an already prepared input: :meth:`_prepare`), read on
        the device (with their OOD scores ``(n,)`` float64 numpy of ``score`` unless None: ``((Z, s), like,
        dev)``)."""
        src = self._prepare(X, what)
        dev = self._device(device)
        enc, dec = self._nets(dev)
        Z, s = _forward.encode_batches(enc, dec, src.batches(dev, _inputs.batch_size(batch_size, dev)),
                                       recon=score == "reconstruction",
                                       score=_ood.batch_score(score, self.calibration, dev, self._ood_cache))
        return ((Z, s.cpu().numpy()) if score is not None else Z), src.like, dev

    def embed(self, X: Inputs, *, batch_size: int | None = None, device: Device = None) -> Outputs:
        """Embeddings ``φ(x)`` ``(n, d)`` float32 of the inputs ``X`` (one input: ``(1, d)``)."""
        Z, like, _ = self._embed_input(X, "X", device, batch_size)
        return _out(Z, like)

    # -- distances ----------------------------------------------------------------------------------
    def _finish(self, D: torch.Tensor, root: bool) -> torch.Tensor:
        """:math:`W_p` from estimates of :math:`W_p^p` when ``root`` (``distance_fn.root``), else ``D``."""
        return self.distance_fn.root(D) if root else D

    def _paired(self, X, Y, warn_ood, batch_size, device, stacklevel: int):
        """``(D, like)``: paired estimates ``D`` float64 tensor of :math:`W_p^p` (:meth:`distance`), and the
        input type of ``X`` (OOD warnings point ``stacklevel`` frames up)."""
        score = _ood.warn_score(self.calibration, warn_ood)
        ZX, like, dev = self._embed_input(X, "X", device, batch_size, score=score)
        ZY = self._embed_input(Y, "Y", dev, batch_size, score=score)[0]
        if score is not None:
            (ZX, ex), (ZY, ey) = ZX, ZY
            _ood.warn_if_ood((ex, ey), self.ood_threshold(score=score), score=score, stacklevel=stacklevel)
        if ZX.shape[0] != ZY.shape[0] and 1 not in (ZX.shape[0], ZY.shape[0]):
            raise InputError(explain(f"{param('X')} and {param('Y')} hold different numbers of inputs",
                                     expected="equal counts (paired distances) or a single input on one side",
                                     received=f"{ZX.shape[0]} and {ZY.shape[0]}",
                                     fix=f"use {param('cdist(X, Y)')} for all pairs"))
        return self.distance_fn.paired(ZX, ZY).double(), like

    def distance(self, X: Inputs, Y: Inputs, *, root: bool = False, warn_ood: bool | str = True,
                 batch_size: int | None = None, device: Device = None) -> Outputs:
        """Paired estimates ``(n,)`` float64 of :math:`W_p^p(x_i, y_i)` (``root=True``: :math:`W_p`).

        ``X`` and ``Y`` hold the same number ``n`` of inputs, or one of them a single input (one image
        ``(H, W)`` or histogram ``(k,)``, or a batch of one), broadcast against the other: one against many.
        ``warn_ood`` warns (:class:`OutOfDistributionWarning`) when an input scores above 99 % of the images
        held out at training (:meth:`is_ood`; only for models with that reference): ``True`` with the model's
        default score (``"pca"``, almost free; ``"reconstruction"`` for older model files), or a score's name.
        Error bars: :meth:`interval`.
        """
        D, like = self._paired(X, Y, warn_ood, batch_size, device, stacklevel=4)
        return _out(self._finish(D, root), like)

    def interval(self, X: Inputs, Y: Inputs, level: float = 0.9, *, root: bool = False, warn_ood: bool | str = True,
                 batch_size: int | None = None, device: Device = None) -> DistanceEstimate:
        """:meth:`distance` with split-conformal error bars: ``(estimate, lower, upper, level)``, each ``(n,)``.

        ``estimate`` is :meth:`distance`'s value; ``lower <= exact <= upper`` holds with probability at least
        ``level`` for new pairs like the model's calibration pairs (pairs of two images held out at training).
        Warns (:class:`CalibrationWarning`) when they are too few for that level; needs a trained model."""
        cal, level = self._need_calibrator("an error bar"), check_level(level)
        warn_few_calibration_pairs(level, *cal.support(level), np.size(self.calibration["val_pred"]), stacklevel=3)
        D, like = self._paired(X, Y, warn_ood, batch_size, device, stacklevel=4)
        lo, hi = cal.interval(D.cpu().numpy(), level)
        t = lambda a: _out(self._finish(torch.from_numpy(a), root), like)
        return DistanceEstimate(_out(self._finish(D, root), like), t(lo), t(hi), level)

    def _calibrator(self) -> ConformalCalibrator | None:
        vp, vt = self.calibration.get("val_pred"), self.calibration.get("val_target")
        if vp is None or vt is None or np.size(vp) == 0:
            return None
        cached = self._cal_cache
        if cached is not None and cached[0] is vp and cached[1] is vt:
            return cached[2]
        cal = ConformalCalibrator(vp, vt)
        self._cal_cache = (vp, vt, cal)
        return cal

    def _need_calibrator(self, what: str) -> ConformalCalibrator:
        cal = self._calibrator()
        if cal is None:
            raise InputError(explain(f"{what} needs calibration pairs", expected="calibration['val_pred'] and "
                                     "['val_target'] stored at training time", received="a model without them",
                                     fix=f"use a model from {param('wassembed.train')}, or pass "
                                         f"{param('n_candidates')} for kNN"))
        return cal

    def cdist(self, XA: Inputs, XB: Inputs, *, root: bool = False, tile_size: int = 2048,
              batch_size: int | None = None, precision: str = "fp32", device: Device = None) -> Outputs:
        """All-pairs estimates ``(nA, nB)`` float64 (scipy's ``cdist`` shape), one matrix product per tile of at
        most ``tile_size × tile_size`` estimates, on CPU or CUDA; ``precision="bf16"``: its cross term in
        bfloat16 (Notes)."""
        return _neighbors.cdist(self, XA, XB, root=root, tile_size=tile_size, batch_size=batch_size,
                                precision=precision, device=device)

    def pdist(self, X: Inputs, *, root: bool = False, tile_size: int = 2048, batch_size: int | None = None,
              device: Device = None) -> Outputs:
        """Condensed estimates ``(n(n−1)/2,)`` float64 over pairs ``i < j`` (scipy's ``pdist`` order)."""
        return _neighbors.pdist(self, X, root=root, tile_size=tile_size, batch_size=batch_size, device=device)

    # -- nearest neighbours -------------------------------------------------------------------------
    def kneighbors(self, Q: Inputs, R: Inputs, k: int = 10, *, exact_rerank: bool = False, level: float = 0.99,
                   n_candidates: int | None = None, tile_size: int = 256, batch_size: int | None = None,
                   device: Device = None) -> Neighbors:
        """The ``k`` nearest references ``R`` of each query ``Q``: ``(distances, indices)``, ascending.

        ``distances`` ``(nq, k)`` float64 and ``indices`` ``(nq, k)`` int64 (scikit-learn's order; one query
        ``(H, W)`` or ``(k,)``: ``nq = 1``). Without re-ranking (the default), ``distances`` are embedding
        estimates of :math:`W_p^p`. With ``exact_rerank=True`` the best-estimated references are re-scored by
        the exact solver and ``distances`` are exact :math:`W_p^p`; ``result.n_exact`` counts the exact solves
        spent. Estimates come in tiles of at most ``tile_size × tile_size``.

        - ``n_candidates=None`` (adaptive; needs calibration pairs): candidates are added in order of
          estimate until every other reference has a one-sided conformal lower bound (at ``level``) no
          smaller than the current ``k``-th exact value. What is guaranteed: ``distances`` are exact and are
          the ``k`` smallest among the solved candidates; a true neighbour is left out only if its exact
          value lies below its conformal lower bound, an event of probability at most ``1 − level`` for a
          pair drawn like the validation pairs, so at most ``k (1 − level)`` per query by a union bound.
          Neighbours are not random pairs, so this is a coverage level, not a certainty; inputs flagged by
          :meth:`is_ood` void it. When the bounds are too loose to rule references out and the rule solves
          more than half of all pairs (no cheaper than brute force), it warns (:class:`RerankWarning`).
        - ``n_candidates=m``: exactly the ``m`` best-estimated references are solved (no guarantee).
        """
        return _neighbors.kneighbors(self, Q, R, k, exact_rerank=exact_rerank, level=level,
                                     n_candidates=n_candidates, tile_size=tile_size, batch_size=batch_size,
                                     device=device)

    # -- geometry (decoded; see :mod:`._geometry`) -------------------------------------------------
    def barycenter(self, X: Inputs, weights: Inputs | None = None, *, device: Device = None) -> Outputs:
        """Approximate Wasserstein barycenter ``ψ(Σ αᵢ φ(xᵢ))`` of the inputs ``X`` (``weights`` α ≥ 0,
        normalised): one image ``(H, W)`` for a grid model, one histogram ``(k,)`` otherwise; float32."""
        return _geometry.barycenter(self, X, weights, device=device)

    def interpolate(self, a: Inputs, b: Inputs, steps: int = 5, *, device: Device = None) -> Outputs:
        """Decoded path ``ψ((1 − t) φ(a) + t φ(b))`` for ``t = 0 … 1`` between two single inputs: ``(steps, H,
        W)`` for a grid model, ``(steps, k)`` otherwise; float32."""
        return _geometry.interpolate(self, a, b, steps, device=device)

    def principal_directions(self, X: Inputs, n_components: int = 3, scales=_geometry.DEFAULT_SCALES, *,
                             device: Device = None) -> PrincipalDirections:
        """PCA of the embeddings of ``X``, each direction decoded at ``mean + s σ v`` (paper's PGA);
        ``histograms`` ``(n_components, len(scales), H, W)`` for a grid model, ``(…, k)`` otherwise."""
        return _geometry.principal_directions(self, X, n_components, scales, device=device)

    # -- out of distribution (scores and calibration: :mod:`._ood`) ----------------------------------
    def ood_score(self, X: Inputs, *, score: str | None = None, batch_size: int | None = None,
                  device: Device = None) -> np.ndarray:
        """Out-of-distribution scores ``(n,)`` float64 of the inputs (one image ``(H, W)`` or histogram
        ``(k,)``: ``(1,)``): ``score="pca"`` (the default of models that store its reference; no network pass),
        ``"latent"`` (Mahalanobis distance of the embedding; the default of point-cloud models) or
        ``"reconstruction"`` (``KL(x ‖ ψ(φ(x)))`` in nats, the function training minimises; one encoder and
        one decoder pass; the default of older model files). Training stores the scores of images it held out
        (unseen, like new inputs) to calibrate :meth:`ood_threshold`."""
        score, dev = _ood.resolve_score(self.calibration, score), self._device(device)
        scores = self._input_scores(X, score, dev, batch_size)  # "pca": no network pass
        return scores if scores is not None else self._embed_input(X, "X", dev, batch_size, score=score)[0][1]

    def ood_threshold(self, level: float = 0.99, *, score: str | None = None) -> float:
        """The ``level`` quantile of the held-out images' scores (``score``: as in :meth:`ood_score`)."""
        return _ood.ood_threshold(self.calibration, level, score=score)

    def is_ood(self, X: Inputs, *, level: float = 0.99, score: str | None = None, batch_size: int | None = None,
               device: Device = None) -> np.ndarray:
        """Boolean mask ``(n,)``: inputs scoring above the held-out images' ``level`` quantile."""
        thr = self.ood_threshold(level, score=score)
        return self.ood_score(X, score=score, batch_size=batch_size, device=device) > thr
