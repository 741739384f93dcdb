"""The reconstruction error: one definition of :math:`KL(x \\| \\mathrm{softmax}(\\psi(\\varphi(x))))`.

Training minimises it (the decoder term of the loss) and serving reports it (the out-of-distribution
score, whose threshold is calibrated at training time): both call :func:`reconstruction_kl`.
"""

from __future__ import annotations

import torch

__all__ = ["reconstruction_kl"]


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
