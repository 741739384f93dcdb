"""What training does differently for point clouds (a cache of :class:`~wassembed.data.PointCloudSet`).

The pipeline is the one of histograms (:mod:`._trainer`): split by cloud, batches sharing clouds, early
stopping, checkpoints, conformal calibration. The pieces that differ are looked up by kind in :mod:`._kinds`
(the architecture: the ``"set"`` preset, :class:`~wassembed.nn.SetEncoder`, DeepSets on the centred cloud with
its exact mean appended, ``coord_scale`` from the data, unless a :class:`~wassembed.nn.SetConfig` is given);
the mathematics of two of them lives here:

* the reconstruction term: the debiased Sinkhorn divergence :math:`S_\\varepsilon` between a cloud and its
  decoding (:func:`~wassembed.nn.cloud_reconstruction_loss`, in the units of :math:`W_2^2`), divided by the
  target scale ``s``, on :data:`RECON_CLOUDS` clouds of each batch (it costs several encoder steps
  per cloud on a CPU):

  .. math:: L = \\frac{1}{s^2}\\,\\mathrm{mean}\\big(\\|z_i - z_j\\|^2 - y_{ij}\\big)^2
      + 2\\lambda\\,\\mathrm{mean}_{x}\\, S_\\varepsilon\\big(x, \\psi(\\varphi(x))\\big) / s;

* the exact symmetries (``augment``): one rigid motion applied to every cloud of a batch leaves every
  :math:`W_2^2` between them unchanged: ``"rot"`` a uniformly random rotation, ``"flip"`` a reflection
  through a random hyperplane of the axes, ``"shift"`` a translation of at most ``max_shift`` (coordinate
  units) per axis.

The out-of-distribution reference is the ``"latent"`` score (:func:`wassembed.serve._ood.latent_reference`)
fitted on the training clouds' embeddings (:func:`wassembed.learn._calibration.latent_arrays`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..nn import cloud_reconstruction_loss

__all__ = ["RECON_CLOUDS", "CloudReconstructionLoss", "augment_clouds"]

#: clouds of each batch whose reconstruction enters the loss
RECON_CLOUDS = 16


@dataclass(frozen=True)
class CloudReconstructionLoss:
    """Mean Sinkhorn divergence between ``clouds`` inputs of the batch (evenly spaced) and their decodings,
    divided by ``scale``.

    Called as ``loss(decoded, x)`` with packed decoded clouds ``(n, m, d + 1)`` and inputs ``(n, k, d + 1)``
    (the argument order of :class:`~wassembed.learn._losses.ReconstructionLoss`). The inputs' self-transport term is
    left out (``input_term=False``): the same gradients at a fraction of the cost.
    """

    scale: float = 1.0
    clouds: int = RECON_CLOUDS

    def __call__(self, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # evenly spaced rows: a batch's clouds come sorted by index, so its first rows would favour low indices
        take = torch.linspace(0, x.shape[0] - 1, min(self.clouds, x.shape[0]), device=x.device).round().long()
        return cloud_reconstruction_loss(x[take].float(), decoded[take].float(), input_term=False).mean() / self.scale


def _random_orthogonal(d: int, rng: np.random.Generator, reflect: bool) -> np.ndarray:
    """A uniformly random rotation of :math:`\\mathbb{R}^d` (QR of a Gaussian matrix), or with ``reflect`` a
    reflection of one random axis."""
    if reflect:
        R = np.eye(d)
        R[int(rng.integers(d))] *= -1.0
        return R
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def augment_clouds(x: torch.Tensor, ops, max_shift: float, rng: np.random.Generator) -> torch.Tensor:
    """Apply one rigid motion to every cloud of a packed batch (every :math:`W_2^2` between them is unchanged).

    Parameters
    ----------
    x : Tensor, shape (n, k, d + 1)
        Packed clouds (points, then the weight).
    ops : sequence of str
        Among ``"rot"`` (a random rotation), ``"flip"`` (negate a random axis, with probability 1/2) and
        ``"shift"`` (a translation uniform in ``[-max_shift, max_shift]`` per axis).
    max_shift : float
    rng : numpy.random.Generator
        Draws the motion (consumed in a fixed order: rotation, flip, shift).

    Returns
    -------
    Tensor, shape (n, k, d + 1)

    Examples
    --------
    >>> x = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]])
    >>> y = augment_clouds(x, ["rot"], 0, np.random.default_rng(0))
    >>> bool(torch.allclose(torch.cdist(y[0, :, :2], y[0, :, :2]), torch.cdist(x[0, :, :2], x[0, :, :2])))
    True
    """
    d = x.shape[2] - 1
    R = np.eye(d)
    if "rot" in ops:
        R = _random_orthogonal(d, rng, reflect=False)
    if "flip" in ops and rng.random() < 0.5:
        R = R @ _random_orthogonal(d, rng, reflect=True)
    t = rng.uniform(-max_shift, max_shift, d) if "shift" in ops else np.zeros(d)
    M = torch.as_tensor(R, dtype=x.dtype, device=x.device)
    pts = x[..., :d] @ M + torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return torch.cat([pts, x[..., d:]], dim=-1)
