"""Predictions of the networks being trained, without gradients: embeddings of stored images, latent
distances of pairs (:class:`~wassembed.nn.LatentDistance`, as served) and the validation step."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..exact import PairTable
from ..metrics import regression_metrics
from ..nn import LatentDistance

__all__ = ["CHUNK", "embed_rows", "predict_pairs", "validate"]

#: images per forward pass outside training
CHUNK = 4096


def embed_rows(encoder: nn.Module, X: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """Embeddings ``(len(rows), d)`` float32 of the histograms ``X[rows]``, ``CHUNK`` images at a time.

    Parameters
    ----------
    encoder : torch.nn.Module
    X : Tensor, shape (n, k)
        Every histogram of the dataset, on the encoder's device.
    rows : ndarray, shape (r,), int

    Examples
    --------
    >>> embed_rows(nn.Linear(3, 2), torch.eye(3), np.array([0, 2])).shape
    torch.Size([2, 2])
    """
    with torch.no_grad():
        return torch.cat([encoder(X[torch.as_tensor(rows[s:s + CHUNK], device=X.device)]).float()
                          for s in range(0, rows.size, CHUNK)])


def predict_pairs(encoder: nn.Module, X: torch.Tensor, pairs: PairTable, p: int) -> np.ndarray:
    """Latent estimates ``(m,)`` float64 of :math:`W_p^p` for ``pairs``, each image embedded once.

    Parameters
    ----------
    encoder : torch.nn.Module
    X : Tensor, shape (n, k)
    pairs : PairTable
        Image indices ``i, j``; values are not used.
    p : {1, 2}

    Examples
    --------
    >>> enc = nn.Identity()
    >>> predict_pairs(enc, torch.tensor([[0.0, 0.0], [3.0, 4.0]]), PairTable(np.array([0]), np.array([1]),
    ...               np.array([0.0])), p=1).tolist()
    [5.0]
    """
    rows, inv = np.unique(np.concatenate([pairs.i, pairs.j]), return_inverse=True)
    z = embed_rows(encoder, X, rows)
    m = len(pairs)
    a, b = torch.as_tensor(inv[:m], device=z.device), torch.as_tensor(inv[m:], device=z.device)
    return LatentDistance(p).pairs(z, a, b).cpu().numpy().astype(np.float64)


def validate(encoder: nn.Module, X: torch.Tensor, pairs: PairTable, p: int) -> tuple[np.ndarray, dict]:
    """Predictions on the validation ``pairs`` (encoder in eval mode) and their metrics against the values.

    Returns
    -------
    pred : ndarray, shape (m,), float64
    metrics : dict
        :func:`wassembed.metrics.regression_metrics` (``mse``, ``pearson``, ``relative_mse``, ...).
    """
    was_training = encoder.training
    encoder.eval()
    try:
        pred = predict_pairs(encoder, X, pairs, p)
    finally:
        encoder.train(was_training)
    return pred, regression_metrics(pred, pairs.value)
