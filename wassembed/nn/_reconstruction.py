"""The reconstruction error: one definition of :math:`KL(x \\| \\mathrm{softmax}(\\psi(\\varphi(x))))`.

Training minimises it (the decoder term of the loss) and serving reports it (the out-of-distribution
score, whose threshold is calibrated at training time): both call :func:`reconstruction_kl`.

For point clouds (``kind="set"``) the decoder returns a packed cloud, compared to the input by an
optimal-transport loss instead: :func:`cloud_reconstruction_loss`, a Sinkhorn divergence (GeomLoss).
"""

from __future__ import annotations

import torch

from .._deps import GEOMLOSS_HINT, require
from ..errors import InputError, explain

__all__ = ["cloud_reconstruction_loss", "reconstruction_kl"]


def reconstruction_kl(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_b x_b \\log x_b - x_b \\log q_b` per row, with :math:`q = \\mathrm{softmax}(\\text{logits})`.

    Computed in float32 or wider (``0 log 0 = 0``), in nats.

    Parameters
    ----------
    logits : Tensor, shape (n, k)
        Decoder outputs.
    x : Tensor, shape (n, k)
        Histograms (rows summing to 1).

    Returns
    -------
    Tensor, shape (n,)

    Examples
    --------
    >>> x = torch.tensor([[0.5, 0.5, 0.0]])
    >>> reconstruction_kl(torch.log(torch.tensor([[0.5, 0.5, 1e-30]])), x).abs().item() < 1e-6
    True
    >>> round(reconstruction_kl(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])).item(), 4)  # log 2
    0.6931
    """
    logq = torch.log_softmax(logits.float(), dim=-1)
    x = x.to(logq.dtype) if x.dtype not in (torch.float32, torch.float64) else x
    return (torch.xlogy(x, x) - x * logq).sum(-1)


def cloud_reconstruction_loss(x: torch.Tensor, decoded: torch.Tensor, *, blur: float = 0.05,
                              scaling: float = 0.5, input_term: bool = True) -> torch.Tensor:
    """Debiased Sinkhorn divergence between packed clouds, in the units of :math:`W_2^2`, per row.

    .. math::

        S_\\varepsilon(\\alpha, \\beta) = \\mathrm{OT}_\\varepsilon(\\alpha, \\beta)
            - \\tfrac12 \\mathrm{OT}_\\varepsilon(\\alpha, \\alpha)
            - \\tfrac12 \\mathrm{OT}_\\varepsilon(\\beta, \\beta),
        \\qquad \\varepsilon = \\text{blur}^2,

    with ground cost :math:`\\|x - y\\|^2` (twice GeomLoss's ``SamplesLoss("sinkhorn", p=2)``, whose cost is
    :math:`\\|x - y\\|^2 / 2`). It is 0 for identical clouds, :math:`\\|t\\|^2` for a cloud and its translate
    by :math:`t`, tends to :math:`W_2^2` as ``blur`` → 0, and is differentiable in both clouds' points and
    weights. Padding (weight 0) carries no mass.

    Parameters
    ----------
    x : Tensor, shape (n, k, d + 1)
        Input clouds, packed (:func:`wassembed.nn.pack_clouds`): points then weight (rows sum to 1).
    decoded : Tensor, shape (n, m, d + 1)
        Decoder outputs, packed the same way.
    blur : float
        Entropic blur :math:`\\sqrt\\varepsilon`, in the points' units (small against the clouds' size).
    scaling : float in (0, 1)
        GeomLoss's ε-scaling ratio (closer to 1: more iterations, more accurate).
    input_term : bool
        Include :math:`\\tfrac12 \\mathrm{OT}_\\varepsilon(\\alpha, \\alpha)` of the inputs. It does not
        depend on the decoded clouds, so ``False`` gives the same gradients for training at a fraction of the
        cost (the input's self-transport is the largest of the three problems) and a value shifted by a
        constant per input (no longer 0 for identical clouds).

    Returns
    -------
    Tensor, shape (n,), float32

    Raises
    ------
    MissingDependencyError
        GeomLoss is not installed.

    Examples
    --------
    >>> x = torch.tensor([[[0.0, 0.0, 0.5], [1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]])
    >>> round(cloud_reconstruction_loss(x, x).item(), 6) == 0
    True
    >>> shifted = x + torch.tensor([0.0, 2.0, 0.0])
    >>> round(cloud_reconstruction_loss(x, shifted).item(), 4)  # translation by (0, 2): 2²
    4.0
    """
    if not isinstance(x, torch.Tensor) or not isinstance(decoded, torch.Tensor) or x.ndim != 3 \
            or decoded.ndim != 3 or x.shape[0] != decoded.shape[0] or x.shape[2] != decoded.shape[2] \
            or x.shape[2] < 2:
        raise InputError(explain("bad clouds for the reconstruction loss",
                                 expected="tensors (n, k, d + 1) and (n, m, d + 1), one n and one d",
                                 received=f"shapes {tuple(getattr(x, 'shape', ()))} and "
                                          f"{tuple(getattr(decoded, 'shape', ()))}",
                                 fix="pass packed inputs and the decoder's output"))
    geomloss = require("geomloss", GEOMLOSS_HINT, what="the point-cloud reconstruction loss")
    d = x.shape[2] - 1
    x = x.float()
    x = x[:, (x[..., d] > 0).any(0)]  # columns of padding only carry nothing
    a = x[..., d].clamp_min(0.0)
    b = decoded[..., d].float().clamp_min(0.0)
    a, px = a / a.sum(1, keepdim=True), x[..., :d].contiguous()
    b, py = b / b.sum(1, keepdim=True), decoded[..., :d].float().contiguous()
    options = dict(p=2, blur=float(blur), scaling=float(scaling), backend="tensorized")
    if input_term:
        return 2.0 * geomloss.SamplesLoss("sinkhorn", **options)(a, px, b, py)
    ot = geomloss.SamplesLoss("sinkhorn", debias=False, **options)
    return 2.0 * ot(a, px, b, py) - ot(b, py, b, py)
