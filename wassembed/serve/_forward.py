"""Batched forward passes of the served model's networks, without gradients.

:func:`encode` gives embeddings :math:`\\varphi(x)` and, on request, the reconstruction errors
:math:`KL(x \\| \\mathrm{softmax}(\\psi(\\varphi(x))))` of :func:`wassembed.nn.reconstruction_kl` (the
out-of-distribution score, the same function training minimises and calibrates its threshold with);
:func:`decode` gives histograms :math:`\\mathrm{softmax}(\\psi(z))`. Inputs arrive validated
(:mod:`._inputs`); the networks are the model's copies on the device ``dev``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError, explain
from ..nn import reconstruction_kl

__all__ = ["decode", "encode", "need_decoder"]


def need_decoder(dec):
    """``dec``, or an :class:`~wassembed.errors.InputError` when the model has no decoder."""
    if dec is None:
        raise InputError(explain("this model has no decoder", expected="a decoder ψ", received="decoder=None",
                                 fix="load a model trained with a decoder"))
    return dec


def encode(enc, dec, w: np.ndarray, dev: torch.device, batch_size: int, *, recon: bool = False):
    """Embeddings ``(n, d)`` float32 on ``dev`` of histograms ``w (n, k)``; with ``recon``, also their
    reconstruction errors ``(n,)`` float64 (nats)."""
    if recon:
        need_decoder(dec)
    zs, errs = [], []
    with torch.inference_mode():
        for s in range(0, w.shape[0], batch_size):
            x = torch.from_numpy(w[s:s + batch_size]).to(dev, torch.float32)
            z = enc(x)
            zs.append(z.float())
            if recon:
                errs.append(reconstruction_kl(dec(z), x).double().cpu())
    Z = torch.cat(zs) if len(zs) > 1 else zs[0]
    return (Z, torch.cat(errs).numpy()) if recon else Z


def decode(dec, Z: np.ndarray, dev: torch.device, batch_size: int) -> torch.Tensor:
    """Histograms ``softmax(ψ(z))`` ``(n, k)`` float32 on ``dev`` of embeddings ``Z (n, d)``."""
    need_decoder(dec)
    outs = []
    with torch.inference_mode():
        for s in range(0, Z.shape[0], batch_size):
            z = torch.as_tensor(Z[s:s + batch_size]).to(dev, torch.float32)
            try:
                outs.append(torch.softmax(dec(z).float(), dim=1))
            except RuntimeError as exc:
                raise InputError(explain("Z does not fit the decoder", expected="the model's embedding "
                                         "dimension", received=f"shape {Z.shape}",
                                         fix="pass embed(X)'s output")) from exc
    return torch.cat(outs)
