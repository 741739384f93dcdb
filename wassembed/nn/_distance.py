"""The latent distance: one definition of the estimate of :math:`W_p^p` from two embeddings.

For embeddings :math:`z, z' \\in \\mathbb R^d` the model estimates

.. math::

    \\widehat{W_2^2}(x, x') = \\|z - z'\\|^2 \\quad (p = 2), \\qquad
    \\widehat{W_1}(x, x') = \\|z - z'\\| \\quad (p = 1).

Every place that turns embeddings into distances (the training loss, validation, metrics, the served
``distance`` / ``cdist`` / ``pdist`` and the neighbour search) uses :class:`LatentDistance`, so training and
serving cannot disagree. For ``p = 1`` the square root is :func:`safe_sqrt`: exact above ``1e-12``, linear
below it, so that its gradient stays finite where two embeddings meet.

It works on torch tensors and numpy arrays alike (numpy in, numpy out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..data import parse_p

__all__ = ["LatentDistance", "safe_sqrt"]

#: below this squared norm the square root is replaced by its chord (finite gradient at 0)
SQRT_EPS = 1e-12


def safe_sqrt(sq):
    """:math:`\\sqrt{s}` for :math:`s > 10^{-12}`, :math:`s / 10^{-6}` below (continuous, finite gradient).

    Parameters
    ----------
    sq : Tensor or ndarray
        Squared norms (negative rounding errors count as 0).

    Examples
    --------
    >>> safe_sqrt(np.array([25.0, 0.0])).tolist()
    [5.0, 0.0]
    >>> z = torch.zeros(1, requires_grad=True)
    >>> safe_sqrt(z).sum().backward(); bool(torch.isfinite(z.grad).all())
    True
    """
    if isinstance(sq, torch.Tensor):
        s = sq.clamp_min(0.0)
        return torch.where(s > SQRT_EPS, s.clamp_min(SQRT_EPS).sqrt(), s / math.sqrt(SQRT_EPS))
    s = np.maximum(np.asarray(sq), 0.0)
    return np.where(s > SQRT_EPS, np.sqrt(np.maximum(s, SQRT_EPS)), s / math.sqrt(SQRT_EPS))


@dataclass(frozen=True)
class LatentDistance:
    """The estimate of :math:`W_p^p` between embeddings: :math:`\\|z - z'\\|^2` (p=2) or :math:`\\|z - z'\\|` (p=1).

    Parameters
    ----------
    p : {1, 2}
        The exponent of the exact values the model was trained on.

    Examples
    --------
    >>> z = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> LatentDistance(2).pairs(z, torch.tensor([0]), torch.tensor([1])).tolist()
    [25.0]
    >>> LatentDistance(1).paired(z[:1], z[1:]).tolist()
    [5.0]
    >>> LatentDistance(2).root(np.array([25.0])).tolist()
    [5.0]
    """

    p: int = 2

    def __post_init__(self):
        object.__setattr__(self, "p", parse_p(self.p))

    def from_squared(self, sq):
        """Estimates from squared Euclidean distances ``sq`` (any shape; tensor or array)."""
        return sq if self.p == 2 else safe_sqrt(sq)

    def paired(self, za, zb):
        """Row-wise estimates between ``za (m, d)`` and ``zb (m, d)``: shape ``(m,)``."""
        diff = za - zb
        return self.from_squared((diff * diff).sum(-1))

    def pairs(self, z, i, j):
        """Estimates for index pairs: rows ``i (m,)`` and ``j (m,)`` of ``z (n, d)``; shape ``(m,)``."""
        return self.paired(z[i], z[j])

    def root(self, d):
        """:math:`W_p` from estimates of :math:`W_p^p` (the square root for p=2, unchanged for p=1)."""
        if self.p == 1:
            return d
        return d.clamp_min(0).sqrt() if isinstance(d, torch.Tensor) else np.sqrt(np.maximum(d, 0.0))

    def __call__(self, za, zb):
        return self.paired(za, zb)
