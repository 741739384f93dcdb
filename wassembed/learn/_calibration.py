"""What a trained model keeps for serving's error bars and out-of-distribution warnings.

* **Conformal pairs** (``val_pred``, ``val_target``): latent estimates (:class:`~wassembed.nn.LatentDistance`,
  as served) and exact values of held-out pairs that played no part in training or model selection. Each
  has an image of the calibration half of the held-out images, which no training pair used; the other image
  is held out too or (most of them, with random pairs) a training image, so their errors are those of a new
  image against another. When too few held-out pairs could be split off, the validation pairs (which
  selected the model) stand in, and the model says so (and training warns: :mod:`._smalldata`).
* **OOD references**, one per score of :mod:`wassembed.serve._ood`, each with the scores of the held-out
  images (unseen inputs of the training distribution), whose quantile is the served model's threshold:
  ``pca_mean``, ``pca_basis`` (:func:`~wassembed.serve._ood.pca_reference` of the training images) and
  ``pca_scores`` (the default score: the distance of :math:`\\sqrt{x}` to their principal subspace); and
  ``train_recon``, the reconstruction errors :func:`~wassembed.nn.reconstruction_kl` (a decoder pass each).
* ``train_images``: the images trained on (``evaluate`` drops pairs that touch them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..nn import reconstruction_kl
from ..serve._ood import pca_reference, pca_scores
from ._clouds import latent_arrays
from ._predict import CHUNK, predict_pairs
from ._split import TrainingPairs

__all__ = ["Calibration", "calibrate", "pca_arrays", "reconstruction_errors"]

HELD_OUT = "held-out calibration pairs (not used for training or model selection)"
FALLBACK = "validation pairs (also used for early stopping: too few held-out images to split)"


@dataclass(frozen=True)
class Calibration:
    """The calibration arrays of a model and where its conformal pairs came from.

    Attributes
    ----------
    arrays : dict of str to ndarray
        ``val_pred (m,)`` and ``val_target (m,)`` float64, ``train_recon (h,)`` float64 (nats),
        ``pca_mean (k,)``, ``pca_basis (k, q)`` and ``pca_scores (h,)`` float64, ``train_images (t,)`` int64:
        the model's ``calibration``.
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


def pca_arrays(X: torch.Tensor, train_rows: np.ndarray, held_rows: np.ndarray) -> dict:
    """The ``"pca"`` OOD reference fitted on the histograms ``X[train_rows]`` and the scores of ``X[held_rows]``
    (float32, as served): ``pca_mean``, ``pca_basis``, ``pca_scores``; empty without training images.

    Examples
    --------
    >>> X = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.75, 0.25, 0.0], [0.0, 0.0, 1.0]])
    >>> pca_arrays(X, np.array([0, 1, 2]), np.array([3]))["pca_scores"].round(3).tolist()  # far from the rest
    [1.955]
    """
    if train_rows.size == 0:
        return {}
    ref = pca_reference(X[torch.as_tensor(train_rows, device=X.device)])
    mean, basis = (torch.as_tensor(ref[k], dtype=torch.float32, device=X.device) for k in ("pca_mean", "pca_basis"))
    with torch.no_grad():
        held = [pca_scores(X[torch.as_tensor(held_rows[s:s + CHUNK], device=X.device)].float(), mean, basis)
                for s in range(0, held_rows.size, CHUNK)]
    ref["pca_scores"] = torch.cat(held).cpu().numpy() if held else np.empty(0)
    return ref


def calibrate(encoder: nn.Module, decoder: nn.Module, X: torch.Tensor, pairs: TrainingPairs, p: int,
              val_pred: np.ndarray, *, clouds: bool = False) -> Calibration:
    """Calibration arrays of the final networks (in eval mode).

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
    X : Tensor, shape (n, k)
        Every histogram of the dataset, on the networks' device.
    pairs : TrainingPairs
        The run's split (calibration pairs, validation pairs, held-out and training images).
    p : {1, 2}
    val_pred : ndarray, shape (len(pairs.val),)
        The final model's predictions on the validation pairs (used when there are no calibration pairs).
    clouds : bool
        ``X`` holds packed point clouds: the ``"latent"`` OOD reference instead of ``"pca"`` and the
        reconstruction KL (:func:`._clouds.latent_arrays`).

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
    if clouds:
        arrays.update(latent_arrays(encoder, X, pairs.train_images, pairs.val_images))
    else:
        arrays.update(train_recon=reconstruction_errors(encoder, decoder, X, pairs.val_images),
                      **pca_arrays(X, pairs.train_images, pairs.val_images))
    return Calibration(arrays, source)
