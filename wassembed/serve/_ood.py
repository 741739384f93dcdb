"""Out-of-distribution check: inputs that reconstruct worse than the images held out at training.

The score of an input is its reconstruction error :math:`KL(x \\| \\mathrm{softmax}(\\psi(\\varphi(x))))`
(:func:`wassembed.nn.reconstruction_kl`, computed by the served model in its forward pass, the same function
training uses). Training stores the scores of held-out images as ``calibration["train_recon"]``; an input is
flagged when its score exceeds their ``level`` quantile (99 % by default).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError, explain
from ._conformal import check_level
from ._warnings import ServingWarning

__all__ = ["OutOfDistributionWarning", "has_reference", "ood_threshold", "warn_if_ood"]


class OutOfDistributionWarning(ServingWarning):
    """Some inputs reconstruct worse than 99 % of the images held out at training: estimates may be unreliable."""


def has_reference(calibration: dict) -> bool:
    """Whether ``calibration`` holds the held-out images' reconstruction errors."""
    return calibration.get("train_recon") is not None


def ood_threshold(calibration: dict, level: float = 0.99) -> float:
    """The ``level`` quantile of ``calibration["train_recon"]`` (nats)."""
    tr = calibration.get("train_recon")
    if tr is None or np.size(tr) == 0:
        raise InputError(explain("no out-of-distribution reference", expected="calibration['train_recon'] "
                                 "stored at training time", received="a model without it",
                                 fix="use a model from wassembed.train"))
    return float(np.quantile(np.asarray(tr, dtype=np.float64), check_level(level, "OOD")))


def warn_if_ood(scores, threshold: float, *, stacklevel: int = 3) -> int:
    """Warn (:class:`OutOfDistributionWarning`) when some of the ``scores`` (arrays) exceed ``threshold``;
    returns how many do. ``stacklevel`` 3 points at the caller of the method that calls this."""
    flagged = int(sum((np.asarray(s) > threshold).sum() for s in scores))
    if flagged:
        total = sum(np.size(s) for s in scores)
        warnings.warn(f"{flagged} of {total} inputs reconstruct worse than 99 % of the held-out images of the "
                      "training data (out of distribution?): estimates may be unreliable; pass warn_ood=False "
                      "to silence", OutOfDistributionWarning, stacklevel=stacklevel)
    return flagged
