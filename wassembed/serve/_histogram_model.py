"""The served model of histograms and images: :class:`WassersteinEmbedding`, a sibling of the point-cloud model.

Every method it serves (embeddings, distances, error bars, matrices, neighbours, geometry, OOD scores) is
:class:`~wassembed.serve._embedding.BaseEmbedding`'s; what is particular to histograms lives here: the support
(a grid, coordinates or a cost matrix), input validation on the device (:mod:`._device_inputs`), exact
re-ranking with :class:`~wassembed.exact.ExactSolver`, decoded histograms in the shape of the inputs, and the
``"pca"`` OOD score, computed on the inputs without a network pass.
"""

from __future__ import annotations

import numpy as np

from ..data import HISTOGRAMS, DataSet, as_dataset, make_ground_cost
from ..nn import HistogramConfig
from . import _device_inputs, _forward, _inputs, _ood
from ._embedding import BaseEmbedding
from ._inputs import Device, Inputs, Outputs
from ._inputs import rewrap as _out

__all__ = ["WassersteinEmbedding"]


class WassersteinEmbedding(BaseEmbedding):
    """A trained encoder/decoder pair serving approximate :math:`W_p^p` between histograms (or images).

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        ``(n, k)`` float32 histograms → ``(n, d)``; ``(n, d)`` → ``(n, k)`` logits (softmax gives a histogram).
    config : HistogramConfig (any object is kept as given)
    p : {1, 2}
    grid, coords, cost : the support (a grid ``(H, W)``, coordinates ``(k, dim)`` or a cost ``(k, k)``).
    info : dict, JSON-able metadata. calibration : dict of arrays ``val_pred``, ``val_target``,
        ``train_recon``, ``train_images`` (see ``docs/design.md``), ``pca_mean``, ``pca_basis``, ``pca_scores``
        (:mod:`._ood`).
    device : "cpu", "cuda", "cuda:N" or "auto"; the default device of every method.

    Notes
    -----
    **Inputs.** Images ``(n, H, W)`` or histograms ``(n, k)`` (uint8 or float, numpy or torch), a
    :class:`~wassembed.data.HistogramSet`, or a single image ``(H, W)`` of the model's grid or histogram ``(k,)``:
    a batch of one, the same as ``X[None]``. Paired :meth:`distance` broadcasts a single input (or a batch of
    one) against the other side, one against many; every other method reads it as ``n = 1``. A shape that fits
    neither form is refused with both forms spelled out. Inputs travel in their own dtype to the device of the
    call (CUDA: in large pinned batches) and are validated and normalised there (:mod:`._device_inputs`; the
    errors of :func:`wassembed.data.as_weights`). Numpy in, numpy out; torch in, torch out on the input's
    device (:meth:`embed`, :meth:`distance`, :meth:`cdist`, :meth:`kneighbors` never copy a CUDA input to the
    host).

    **Dtypes and precision.** Inputs of any dtype become float32 histograms (float64 inputs are normalised in
    float64 first, uint8 images are divided by their exact float32 pixel sums), the network's precision.
    Every distance is float64, numpy or torch: estimates, interval bounds, exact re-ranked values, OOD scores
    (so estimates and exact values compare and mix without casts); embeddings and decoded histograms are
    float32; the estimates are the float32 network's, widened. ``cdist(..., precision="bf16")`` (opt-in)
    rounds the embeddings to bfloat16 for the matrix product's cross term ``a·b`` (norms and sums stay
    float32; error at most ~1 % of ``‖a − c‖² + ‖b − c‖²``, ``c`` the centre; see
    ``docs/benchmarks-serving.md``); the output stays float64.

    **Decoded shapes.** :meth:`decode`, :meth:`barycenter`, :meth:`interpolate` and
    :meth:`principal_directions` return histograms in the form of the model's inputs: images ``(…, H, W)``
    for a grid model, ``(…, k)`` for coordinates or a cost matrix; each sums to 1.

    Examples
    --------
    >>> import torch
    >>> enc, dec = torch.nn.Linear(4, 3), torch.nn.Linear(3, 4)
    >>> emb = WassersteinEmbedding(enc, dec, config=None, p=2, grid=(2, 2))
    >>> emb.embed(np.eye(4)).shape, emb.cdist(np.eye(4), np.eye(4)[:2]).shape
    ((4, 3), (4, 2))
    >>> d = emb.distance(np.eye(4)[0], np.eye(4))  # one histogram (k,) against four
    >>> d.shape, d.dtype, emb.barycenter(np.eye(4)).shape  # a grid model decodes images (H, W)
    ((4,), dtype('float64'), (2, 2))
    """

    config_type = HistogramConfig
    data_kind = HISTOGRAMS

    def __init__(self, encoder, decoder, *, config, p, grid=None, coords=None, cost=None, info=None,
                 calibration=None, device="cpu"):
        self.grid = (int(grid[0]), int(grid[1])) if grid is not None else None
        self.coords = None if coords is None else np.asarray(coords, dtype=np.float64)
        self.cost = None if cost is None else np.asarray(cost, dtype=np.float64)
        super().__init__(encoder, decoder, config=config, p=p, info=info, calibration=calibration, device=device)

    @classmethod
    def _kwargs(cls, parts: dict) -> dict:
        return {**super()._kwargs(parts), **{key: parts.get(key) for key in ("grid", "coords", "cost")}}

    @classmethod
    def support_of(cls, data) -> dict:
        """The support arguments (``grid``, ``coords``, ``cost``) of a model of ``data`` (a HistogramSet)."""
        return {"grid": data.grid, "coords": data.coords, "cost": data.cost}

    def _describe(self) -> str:
        return f"grid={self.grid}" if self.grid else f"k={self.k}"

    # -- support ------------------------------------------------------------------------------------
    @property
    def k(self) -> int | None:
        """Number of bins of the inputs."""
        if self.grid is not None:
            return self.grid[0] * self.grid[1]
        for a in (self.coords, self.cost):
            if a is not None:
                return int(a.shape[0])
        return getattr(self.config, "k", None)

    def ground_cost(self) -> np.ndarray:
        """The ``(k, k)`` ground cost of the support for ``p``."""
        return make_ground_cost(grid=self.grid, coords=self.coords, cost=self.cost, p=self.p)

    def histograms(self, X: Inputs, what: str = "input") -> np.ndarray:
        """Validate ``X`` and return float64 histograms ``(n, k)`` summing to 1 (as stored in a cache).

        ``X``: images ``(n, H, W)`` or histograms ``(n, k)``, a HistogramSet, or one image ``(H, W)`` or
        histogram ``(k,)`` (then ``n = 1``); ``what`` names it in error messages.
        """
        return _inputs.weights(self._arrays(X, what), what, grid=self.grid, k=self.k)[0]

    def _arrays(self, X, what: str):
        """A :class:`~wassembed.data.HistogramSet`'s weights; any other input as given."""
        return as_dataset(X, what, kind=HISTOGRAMS).weights if isinstance(X, DataSet) else X

    def _support_mismatch(self, data) -> tuple[str, str] | None:
        grid, k = tuple(self.grid) if self.grid is not None else None, getattr(self.config, "k", self.k)
        dgrid = tuple(data.grid) if data.grid is not None else None
        if grid != dgrid or data.k != k:
            return f"grid {grid}, {k} bins", f"grid {dgrid}, {data.k} bins"
        return None

    # -- the hooks of the base class ----------------------------------------------------------------------
    def _prepare(self, X, what: str):
        return _device_inputs.prepare(self._arrays(X, what), what, grid=self.grid, k=self.k)

    def _exact_data(self, Q, R):
        """The prepared inputs as float64 histograms ``(nq + nr, k)``, and ``nq``."""
        wq = self.histograms(Q.data, "Q")
        return np.concatenate([wq, self.histograms(R.data, "R")]), wq.shape[0]

    def _exact_solver(self):
        if self._solver is None:
            from ..exact import ExactSolver
            self._solver = ExactSolver.for_support(grid=self.grid, coords=self.coords, cost=self.cost, p=self.p)
        return self._solver

    def _encode(self, w: np.ndarray, dev, batch_size: int, *, score: str | None = None):
        """Embeddings ``(n, d)`` float32 on ``dev`` (and OOD scores ``(n,)`` float64 of ``score``: :mod:`._ood`)."""
        enc, dec = self._nets(dev)
        return _ood.encode(enc, dec, w, dev, batch_size, score=score, calibration=self.calibration,
                           cache=self._ood_cache)

    def _input_scores(self, X, score: str, dev, batch_size: int | None):
        if score != "pca":
            return None
        return _ood.scores(self.histograms(X, "X"), dev, _inputs.batch_size(batch_size, dev),
                           calibration=self.calibration, cache=self._ood_cache)

    def decode(self, Z: Inputs, *, batch_size: int | None = None, device: Device = None) -> Outputs:
        """Histograms ``softmax(ψ(z))`` float32 of embeddings ``(n, d)`` (one ``(d,)``: ``n = 1``): images
        ``(n, H, W)`` for a grid model, ``(n, k)`` otherwise; each sums to 1."""
        arr, like = _inputs.embeddings(Z)
        dev = self._device(device)
        H = _forward.decode(self._nets(dev)[1], arr, dev, _inputs.batch_size(batch_size, dev))
        return _out(H.reshape(H.shape[0], *self.grid) if self.grid is not None else H, like)
