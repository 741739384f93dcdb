"""Batched forward passes of the served model's networks, without gradients.

:func:`encode_batches` gives embeddings :math:`\\varphi(x)` of a stream of float32 histogram batches already
on the device (:meth:`._device_inputs.DeviceInputs.batches`) and, on request, a score per input computed in
the same batches: the reconstruction errors
:math:`KL(x \\| \\mathrm{softmax}(\\psi(\\varphi(x))))` of :func:`wassembed.nn.reconstruction_kl` (the
out-of-distribution score training minimises and calibrates its threshold with) or any function of the batch
and its embeddings (the ``"pca"`` and ``"latent"`` scores of :mod:`._ood`). :func:`encode` does the same for
float64 histograms in host memory;
:func:`decode` gives histograms :math:`\\mathrm{softmax}(\\psi(z))`. The networks are the model's copies on
the device of the batches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import numpy as np
import torch

from ..errors import InputError, explain
from ..nn import reconstruction_kl

__all__ = ["decode", "encode", "encode_batches", "need_decoder", "nets_on"]


def nets_on(home: torch.device, nets: tuple, dev: torch.device, copies: dict, lock) -> tuple:
    """The networks ``nets = (encoder, decoder)`` (decoder may be None) for a call on ``dev``: themselves on
    their ``home`` device, else copies on ``dev`` made once and kept in ``copies`` (under ``lock``); in eval
    mode."""
    if dev != home:
        got = copies.get(dev)
        if got is None:
            with lock:
                got = copies.get(dev)
                if got is None:
                    got = copies[dev] = tuple(None if m is None else copy.deepcopy(m).to(dev).eval() for m in nets)
        nets = got
    if any(m is not None and m.training for m in nets):
        with lock:
            for m in nets:
                if m is not None:
                    m.eval()
    return nets


def need_decoder(dec):
    """``dec``, or an :class:`~wassembed.errors.InputError` when the model has no decoder."""
    if dec is None:
        raise InputError(explain("this model has no decoder", expected="a decoder ψ", received="decoder=None",
                                 fix="load a model trained with a decoder"))
    return dec


def encode_batches(enc, dec, batches: Iterable[torch.Tensor], *, recon: bool = False,
                   score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None):
    """``(Z, s)``: embeddings ``(n, d)`` float32 of the float32 histogram batches ``(b, k)`` (on the networks'
    device), and their scores ``(n,)`` float64 on that device: the reconstruction errors (nats) with ``recon``,
    ``score(x, z)`` of each batch ``x`` and its embeddings ``z`` with ``score``, else None."""
    if recon:
        need_decoder(dec)
    zs, ss = [], []
    with torch.inference_mode():
        for x in batches:
            z = enc(x).float()
            zs.append(z)
            if recon:
                ss.append(reconstruction_kl(dec(z), x).double())
            elif score is not None:
                ss.append(score(x, z).double())
    cat = lambda ts: ts[0] if len(ts) == 1 else torch.cat(ts)
    return cat(zs), (cat(ss) if ss else None)


def encode(enc, dec, w: np.ndarray, dev: torch.device, batch_size: int, *, recon: bool = False):
    """Embeddings ``(n, d)`` float32 on ``dev`` of histograms ``w (n, k)`` in host memory; with ``recon``, also
    their reconstruction errors ``(n,)`` float64 numpy (nats)."""
    batches = (torch.from_numpy(w[s:s + batch_size]).to(dev, torch.float32) for s in range(0, w.shape[0], batch_size))
    Z, errs = encode_batches(enc, dec, batches, recon=recon)
    return (Z, errs.cpu().numpy()) if recon else Z


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
