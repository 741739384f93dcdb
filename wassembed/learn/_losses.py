"""Loss terms for learning a Wasserstein embedding, as small composable objects.

With embeddings ``z = φ(x)`` of the distinct images of a batch, pairs ``(i, j)`` indexing rows of ``z`` and
exact targets ``y = W_p^p(x_i, x_j)``, the DWE objective (Courty et al., 2018) is

.. math::

    L = \\frac{1}{s^2}\\,\\mathrm{mean}_{(i,j)}\\big(\\|z_i - z_j\\|^p - y_{ij}\\big)^2
        + \\mu\\,\\mathrm{mean}_{(i,j)}\\Big(\\frac{\\|z_i - z_j\\|^p - y_{ij}}{y_{ij} + \\epsilon s}\\Big)^2
        + 2\\lambda\\,\\mathrm{mean}_{x}\\,\\mathrm{KL}\\big(x \\,\\|\\, \\mathrm{softmax}(\\psi(\\phi(x)))\\big)

where ``s`` is a target scale (1 reproduces the paper's units), ``μ`` weights a relative-error term and
``λ`` the reconstruction (paper: ``λ = 10`` per input of a pair, hence the factor 2 for a mean over images).
"""


from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError, explain
from ..nn import LatentDistance, reconstruction_kl

__all__ = ["DWELoss", "DistanceLoss", "ReconstructionLoss", "pair_distance"]


def pair_distance(z: torch.Tensor, i: torch.Tensor, j: torch.Tensor, p: int = 2) -> torch.Tensor:
    """Latent estimate ``‖z_i − z_j‖^p`` of ``W_p^p`` for index pairs: ``LatentDistance(p).pairs(z, i, j)``.

    Parameters
    ----------
    z : Tensor, shape (n, d)
        Embeddings.
    i, j : Tensor, shape (m,), int64
        Row indices into ``z``.
    p : {1, 2}
        ``2``: squared Euclidean distance (estimates W2²); ``1``: Euclidean distance (estimates W1), through
        :func:`wassembed.nn.safe_sqrt` so that its gradient stays finite at 0.

    Returns
    -------
    Tensor, shape (m,)

    Examples
    --------
    >>> z = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> pair_distance(z, torch.tensor([0]), torch.tensor([1])).tolist()
    [25.0]
    >>> round(pair_distance(z, torch.tensor([0]), torch.tensor([1]), p=1).item(), 4)
    5.0
    """
    return LatentDistance(p).pairs(z, i, j)


@dataclass(frozen=True)
class DistanceLoss:
    """Squared error of latent distances against exact ``W_p^p``, optionally scaled and with a relative term.

    Parameters
    ----------
    p : {1, 2}
    scale : float
        Target scale ``s``: residuals are divided by it (``1.0``: the paper's units).
    relative_weight : float
        ``μ``, weight of the squared relative error ``((ŷ − y) / (y + ε s))²``.
    eps : float
        ``ε``, relative-error floor as a fraction of ``s``.

    Examples
    --------
    >>> z = torch.tensor([[0.0], [2.0]])
    >>> DistanceLoss(scale=2.0)(z, torch.tensor([0]), torch.tensor([1]), torch.tensor([2.0])).item()
    1.0
    """

    p: int = 2
    scale: float = 1.0
    relative_weight: float = 0.0
    eps: float = 0.05

    def __post_init__(self):
        if self.p not in (1, 2):
            raise InputError(explain("bad p for DistanceLoss", expected="1 or 2", received=repr(self.p),
                                     fix="pass p=1 or p=2"))
        if not (self.scale > 0) or self.relative_weight < 0 or self.eps <= 0:
            raise InputError(explain("bad DistanceLoss settings", expected="scale > 0, relative_weight >= 0, eps > 0",
                                     received=f"scale={self.scale}, relative_weight={self.relative_weight}, "
                                              f"eps={self.eps}", fix="use positive values"))

    @property
    def latent(self) -> LatentDistance:
        """The latent distance the loss fits (the one serving uses)."""
        return LatentDistance(self.p)

    def __call__(self, z, i, j, target) -> torch.Tensor:
        """Scalar loss for embeddings ``z (n, d)``, pairs ``i, j (m,)`` and targets ``(m,)``."""
        pred = self.latent.pairs(z.float(), i, j)
        target = target.to(pred.dtype)
        err = pred - target
        loss = err.square().mean() / self.scale ** 2
        if self.relative_weight:
            loss = loss + self.relative_weight * (err / (target + self.eps * self.scale)).square().mean()
        return loss


@dataclass(frozen=True)
class ReconstructionLoss:
    """Mean ``KL(x ‖ softmax(logits))`` over rows (:func:`wassembed.nn.reconstruction_kl`, ``0 log 0 = 0``).

    Examples
    --------
    >>> x = torch.tensor([[0.5, 0.5, 0.0]])
    >>> ReconstructionLoss().per_row(torch.log(torch.tensor([[0.5, 0.5, 1e-30]])), x).abs().item() < 1e-6
    True
    """

    def per_row(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """KL per row, shape (n,), for logits ``(n, k)`` and histograms ``x (n, k)`` (the served OOD score)."""
        return reconstruction_kl(logits, x)

    def __call__(self, logits, x) -> torch.Tensor:
        return self.per_row(logits, x).mean()


@dataclass(frozen=True)
class DWELoss:
    """Distance regression plus ``2 λ`` times the mean reconstruction KL over the batch's distinct images.

    Call with embeddings ``z (n, d)``, decoder logits ``(n, k)`` (or None when ``λ = 0``), histograms
    ``x (n, k)``, pairs ``i, j (m,)`` and targets ``(m,)``; returns ``(total, parts)`` with ``parts`` a dict
    of detached 0-d tensors ``{"distance", "recon"}`` on the loss's device (no host read: the trainer reads
    them in batches, :mod:`wassembed.learn._epoch`).
    """

    distance: DistanceLoss = DistanceLoss()
    recon_weight: float = 10.0
    #: ``reconstruction(decoded, x)``: the KL for histograms; for point clouds the Sinkhorn divergence
    #: (:class:`~wassembed.learn._clouds.CloudReconstructionLoss`)
    reconstruction: ReconstructionLoss = ReconstructionLoss()

    def __call__(self, z, logits, x, i, j, target):
        d = self.distance(z, i, j, target)
        if logits is None:
            return d, {"distance": d.detach(), "recon": torch.full_like(d.detach(), float("nan"))}
        r = self.reconstruction(logits, x)
        total = d + 2.0 * self.recon_weight * r
        return total, {"distance": d.detach(), "recon": r.detach()}
