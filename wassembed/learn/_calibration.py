"""What a trained model keeps for serving's error bars and out-of-distribution warnings.

* **Conformal pairs** (``val_pred``, ``val_target``): latent estimates (:class:`~wassembed.nn.LatentDistance`,
  as served) and exact values of pairs of two *calibration images* (:mod:`._split`: the last held-out images
  by index, which no training pair used and which took no part in model selection): the cache's pairs among
  them and pairs solved for the run. They are drawn as test pairs of two new images are, so their errors are
  those of such pairs (errors of pairs with one training image are smaller: error bars calibrated on them
  covered 83 % instead of 90 % of new pairs on the digits). When there are no such pairs (fewer than two
  calibration images), the validation pairs (which selected the model) stand in, and the model says so (and
  training warns: :mod:`._smalldata`).
* **OOD references**, one per score of :mod:`wassembed.serve._ood`, each with reference scores of inputs the
  score's reference never saw, whose conformal quantile is the served model's threshold:
  ``pca_mean``, ``pca_basis`` (:func:`~wassembed.serve._ood.pca_reference` of the training images) and
  ``pca_scores`` (the default score, the distance of :math:`\\sqrt{x}` to their principal subspace: the
  held-out images' scores, then the training images' scores *cross-fitted*, each against the subspace of the
  other training images, :func:`cross_fitted`); ``latent_*`` for point clouds (the same, on the embeddings);
  and ``train_recon``, the reconstruction errors :func:`~wassembed.nn.reconstruction_kl` of the held-out images
  (a decoder pass each; the decoder trained on the others).
* ``train_images``: the images trained on (``evaluate`` drops pairs that touch them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..nn import reconstruction_kl
from ..serve._ood import MAX_FIT_IMAGES, latent_reference, latent_scores, pca_reference, pca_scores
from ._predict import CHUNK, embed_rows, predict_pairs
from ._split import TrainingPairs

__all__ = ["Calibration", "calibrate", "cross_fitted", "latent_arrays", "pca_arrays", "reconstruction_errors"]

HELD_OUT = "pairs of two held-out calibration images (not used for training or model selection)"
FALLBACK = "validation pairs (also used for early stopping: fewer than two calibration images)"
#: folds of the cross-fitted reference scores of the training images
FOLDS = 5


@dataclass(frozen=True)
class Calibration:
    """The calibration arrays of a model and where its conformal pairs came from.

    Attributes
    ----------
    arrays : dict of str to ndarray
        ``val_pred (m,)`` and ``val_target (m,)`` float64, ``train_recon (h,)`` float64 (nats),
        ``pca_mean (k,)``, ``pca_basis (k, q)`` and ``pca_scores (h + t,)`` float64 (or the ``latent_*``
        arrays for point clouds), ``train_images (t,)`` int64: the model's ``calibration``.
    source : str
        Which pairs calibrate the intervals (for ``info["training"]["calibration_source"]``).
    """

    arrays: dict
    source: str


def reconstruction_errors(encoder: nn.Module, decoder: nn.Module, X: torch.Tensor,
                          rows: np.ndarray) -> np.ndarray:
    """``KL(x ‖ softmax ψ(φ(x)))`` ``(len(rows),)`` float64 of the histograms ``X[rows]`` (networks as they are).

    Examples
    --------
    >>> x = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    >>> reconstruction_errors(nn.Identity(), nn.Identity(), x, np.array([0])).round(6).tolist()  # uniform
    [0.0]
    """
    out = []
    with torch.no_grad():
        for s in range(0, rows.size, CHUNK):
            xb = X[torch.as_tensor(rows[s:s + CHUNK], device=X.device)]
            out.append(reconstruction_kl(decoder(encoder(xb)), xb).cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.empty(0)


def cross_fitted(fit: Callable, score: Callable, n: int, folds: int = FOLDS) -> np.ndarray:
    """Out-of-fold scores ``(n,)`` float64 of ``n`` rows: each fold scored against the reference ``fit`` on the
    other folds. The folds are contiguous runs of rows (rows are in image order), so that where the order of
    the data carries structure (writers, recording days, time) a fold's images are new to its reference, as images
    from later in the data are; for data in random order they are random folds.

    ``fit(rows)`` returns a reference, ``score(rows, reference)`` the scores of ``rows``. A row's score then
    comes from a reference that never saw it, as a new input's does (from a reference fitted on a fraction
    ``(folds - 1) / folds`` of the rows, so slightly larger on average: fewer false alarms, not more).

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> cross_fitted(lambda r: x[r].mean(), lambda r, m: np.abs(x[r] - m), 10, folds=2).tolist()[:2]
    [7.0, 6.0]
    """
    out = np.empty(n, dtype=np.float64)
    rows = np.arange(n)
    edges = np.linspace(0, n, min(folds, n) + 1).round().astype(np.int64)
    for a, b in zip(edges[:-1], edges[1:]):
        test = (rows >= a) & (rows < b)
        out[test] = np.asarray(score(rows[test], fit(rows[~test])), dtype=np.float64)
    return out


def _evenly(rows: np.ndarray, most: int = MAX_FIT_IMAGES) -> np.ndarray:
    """At most ``most`` of ``rows``, evenly spaced (as the references are fitted)."""
    return rows if rows.size <= most else rows[np.linspace(0, rows.size - 1, most).round().astype(np.int64)]


def pca_arrays(X: torch.Tensor, train_rows: np.ndarray, held_rows: np.ndarray) -> dict:
    """The ``"pca"`` OOD reference fitted on the histograms ``X[train_rows]``, and the reference scores
    (float32 inputs, as served): those of ``X[held_rows]``, then the cross-fitted ones of the training images
    (:func:`cross_fitted`; at most :data:`~wassembed.serve._ood.MAX_FIT_IMAGES`): ``pca_mean``, ``pca_basis``,
    ``pca_scores``; empty with fewer than 2 training images.

    Examples
    --------
    >>> X = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.75, 0.25, 0.0], [0.0, 0.0, 1.0]])
    >>> pca_arrays(X, np.array([0, 1, 2]), np.array([3]))["pca_scores"].round(3).tolist()[0]  # far from the rest
    1.955
    """
    if train_rows.size < 2:
        return {}
    ref = pca_reference(X[torch.as_tensor(train_rows, device=X.device)])

    def score(rows, r):
        mean, basis = (torch.as_tensor(r[k], dtype=torch.float32, device=X.device) for k in ("pca_mean", "pca_basis"))
        with torch.no_grad():
            return torch.cat([pca_scores(X[torch.as_tensor(rows[s:s + CHUNK], device=X.device)].float(), mean, basis)
                              for s in range(0, rows.size, CHUNK)] or [torch.zeros(0, dtype=torch.float64)]
                             ).cpu().numpy()

    fit_rows = _evenly(train_rows)
    q = ref["pca_basis"].shape[1]
    oof = cross_fitted(lambda r: pca_reference(X[torch.as_tensor(fit_rows[r], device=X.device)], q=q),
                       lambda r, fitted: score(fit_rows[r], fitted), fit_rows.size)
    ref["pca_scores"] = np.concatenate([score(held_rows, ref), oof])
    return ref


def latent_arrays(encoder: nn.Module, X: torch.Tensor, train_rows: np.ndarray, held_rows: np.ndarray) -> dict:
    """The ``"latent"`` OOD reference fitted on the embeddings of ``X[train_rows]``, and the reference scores:
    those of ``X[held_rows]``, then the cross-fitted ones of the training inputs (:func:`cross_fitted`):
    ``latent_mean``, ``latent_whiten``, ``latent_scores``; empty with fewer than 3 training inputs."""
    if train_rows.size < 3:
        return {}
    Z = embed_rows(encoder, X, _evenly(train_rows))
    ref = latent_reference(Z)

    def score(z, r):
        return latent_scores(z, *(torch.as_tensor(r[k], dtype=torch.float32, device=z.device)
                                  for k in ("latent_mean", "latent_whiten"))).cpu().numpy()

    held = score(embed_rows(encoder, X, held_rows), ref) if held_rows.size else np.empty(0)
    oof = cross_fitted(lambda r: latent_reference(Z[torch.as_tensor(r, device=Z.device)]),
                       lambda r, fitted: score(Z[torch.as_tensor(r, device=Z.device)], fitted), Z.shape[0])
    ref["latent_scores"] = np.concatenate([held, oof])
    return ref


def calibrate(encoder: nn.Module, decoder: nn.Module, X: torch.Tensor, pairs: TrainingPairs, p: int,
              val_pred: np.ndarray, *, ood_arrays: Callable | None = None) -> Calibration:
    """Calibration arrays of the final networks (in eval mode).

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
    X : Tensor, shape (n, k) or (n, kmax, d + 1)
        Every histogram (or packed cloud) of the dataset, on the networks' device.
    pairs : TrainingPairs
        The run's split (calibration pairs, validation pairs, held-out and training images).
    p : {1, 2}
    val_pred : ndarray, shape (len(pairs.val),)
        The final model's predictions on the validation pairs (used when there are no calibration pairs).
    ood_arrays : callable ``(encoder, decoder, X, pairs) -> dict``, optional
        The arrays of the data's OOD reference (:mod:`._kinds`: ``"pca"`` and the reconstruction errors for
        histograms, the default; ``"latent"`` for point clouds, :func:`latent_arrays`).

    Returns
    -------
    Calibration
    """
    if len(pairs.calibration):
        pred, target, source = predict_pairs(encoder, X, pairs.calibration, p), pairs.calibration.value, HELD_OUT
    else:
        pred, target, source = val_pred, pairs.val.value, FALLBACK
    arrays = {"val_pred": pred, "val_target": target.astype(np.float64),
              "train_images": pairs.train_images.astype(np.int64)}
    if ood_arrays is None:
        arrays.update(train_recon=reconstruction_errors(encoder, decoder, X, pairs.val_images),
                      **pca_arrays(X, pairs.train_images, pairs.val_images))
    else:
        arrays.update(ood_arrays(encoder, decoder, X, pairs))
    return Calibration(arrays, source)
