"""Inputs and outputs of the served model: numpy in, numpy out; torch in, torch out on its device.

Every query validates its inputs here: histograms or images become float64 weights summing to 1 (as stored
in a cache, :func:`wassembed.data.as_weights`), embeddings are checked before decoding, and batch sizes get
their per-device defaults.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_pos_int
from ..data import as_weights
from ..errors import InputError, explain

__all__ = ["batch_size", "embeddings", "rewrap", "single", "unwrap", "weights"]


def unwrap(X):
    """(array for validation, torch device of the input or None)."""
    if isinstance(X, torch.Tensor):
        t = X.detach().to("cpu")
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.numpy(), X.device
    return X, None


def rewrap(t: torch.Tensor, like):
    """Numpy (``like`` is None) or a tensor on the device ``like``."""
    return t.to(like) if like is not None else t.cpu().numpy()


def weights(X, what: str, *, grid, k):
    """``(w, like)``: float64 histograms ``(n, k)`` summing to 1 of images or histograms ``X``, and
    :func:`unwrap`'s device of ``X``. ``grid`` is the model's grid (or None, then ``k`` its number of bins)."""
    arr, like = unwrap(X)
    return as_weights(arr, what=what, grid=grid, k=None if grid else k)[0], like


def single(X, what: str, *, grid, k):
    """``(w (1, k), like)`` of one image ``(H, W)`` or histogram ``(k,)`` (a batch of one is accepted)."""
    arr, like = unwrap(X)
    arr = np.asarray(arr)
    if arr.ndim == 1 or (arr.ndim == 2 and grid is not None and arr.shape == grid):
        arr = arr[None]
    w = as_weights(arr, what=what, grid=grid, k=None if grid else k)[0]
    if w.shape[0] != 1:
        raise InputError(explain(f"{what} must be one input", expected="one image (H, W) or histogram (k,)",
                                 received=f"{w.shape[0]} inputs", fix=f"pass {what}[i]"))
    return w, like


def embeddings(Z):
    """``(arr (n, d), like)`` of embeddings to decode (one ``(d,)`` is a batch of one), checked finite."""
    arr, like = unwrap(Z)
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise InputError(explain("Z has the wrong shape", expected="embeddings (n, d) with n >= 1",
                                 received=f"shape {arr.shape}, dtype {arr.dtype}", fix="pass embed(X)'s output"))
    if not np.isfinite(arr).all():
        raise InputError(explain("Z has NaN or infinite values", expected="finite embeddings",
                                 received="non-finite values", fix="pass embed(X)'s output"))
    return arr, like


def batch_size(value, dev: torch.device) -> int:
    """Inputs per forward pass: ``value``, or the default of ``dev`` (measured best on one CPU thread is
    ~256; GPUs want large batches)."""
    if value is None:
        return 4096 if dev.type == "cuda" else 256
    return check_pos_int("batch_size", value)
