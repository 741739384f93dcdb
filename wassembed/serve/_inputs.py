"""Inputs and outputs of the served model: numpy in, numpy out; torch in, torch out on its device.

The rules every query shares: the accepted shapes (below), float64 weights summing to 1 (as stored in a
cache, :func:`wassembed.data.as_weights`) for the methods that need them on the host (``histograms``, exact
re-ranking, OOD scores, geometry), embeddings checked before decoding, and per-device batch sizes. ``embed``,
``distance``, ``cdist``, ``pdist`` and ``kneighbors`` read their inputs on the device instead
(:mod:`._device_inputs`: the same shapes and errors, float32 histograms; the dtype and precision rule is in the
Notes of :class:`~wassembed.serve.WassersteinEmbedding`).

An input is a stack of images ``(n, H, W)`` or histograms ``(n, k)``, or a single one: an image ``(H, W)``
of the model's grid or a histogram ``(k,)``, read as a batch of one (the same as ``X[None]``). The two
forms never collide: a 2-D array is one image only when its shape is the model's grid ``(H, W)``, and a
stack of histograms only when its rows have ``k = H·W`` bins (for ``H = 1`` both readings agree). A shape
that fits neither is refused with both forms spelled out (:func:`as_batch`).
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_pos_int
from ..data import as_weights
from ..errors import InputError, explain, param

#: images ``(n, H, W)`` / ``(H, W)`` or histograms ``(n, k)`` / ``(k,)``: numpy (or array-like) or torch
Inputs = np.ndarray | torch.Tensor | list
#: numpy in, numpy out; torch in, torch out on the input's device
Outputs = np.ndarray | torch.Tensor
#: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``, a ``torch.device``, or None (the model's device)
Device = str | torch.device | None

__all__ = ["Device", "Inputs", "Outputs", "as_batch", "batch_size", "embeddings", "rewrap", "single", "unwrap",
           "weights"]


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


def _forms(grid, k) -> str:
    """The accepted shapes of an input, in words."""
    if grid is not None:
        H, W = grid
        return (f"{k} bins per row: histograms (n, {k}) or one ({k},); or images of {H}×{W}: (n, {H}, {W}) or "
                f"one ({H}, {W})")
    if k is not None:
        return f"{k} bins per row: histograms (n, {k}) or one ({k},)"
    return "histograms (n, k) or one histogram (k,)"


def as_batch(arr, what: str, *, grid, k):
    """``arr`` as a stack: a single image ``(H, W)`` (of the model's ``grid``) or histogram ``(k,)`` becomes a
    batch of one; a stack passes unchanged (:func:`~wassembed.data.as_weights` validates it). A 0-D, 1-D or
    2-D array that fits neither form raises :class:`~wassembed.errors.InputError` naming both forms.

    Examples
    --------
    >>> as_batch(np.ones((2, 3)), "X", grid=(2, 3), k=6).shape, as_batch(np.ones(6), "X", grid=(2, 3), k=6).shape
    ((1, 2, 3), (1, 6))
    >>> as_batch(np.ones((4, 6)), "X", grid=(2, 3), k=6).shape
    (4, 6)
    """
    what = param(what)  # the argument's name (the command line names its file instead)
    try:
        a = np.asarray(arr)
    except ValueError:  # ragged nested lists: as_weights explains them
        return arr
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or a.ndim > 3 or a.size == 0:
        return a  # not numbers, too many axes, or empty: as_weights explains
    if a.ndim == 1 and (k is None or a.shape[0] == k):
        return a[None]
    if a.ndim == 2 and grid is not None and a.shape == tuple(grid):
        return a[None]
    if a.ndim == 3 or (a.ndim == 2 and (k is None or a.shape[1] == k)):
        return a
    problem = f"{what} has the wrong rank" if a.ndim == 0 else f"{what} has the wrong number of bins"
    if a.ndim == 2 and grid is not None:
        problem += " or the wrong image size"
    raise InputError(explain(problem, expected=_forms(grid, k), received=f"an array of shape {a.shape}",
                             fix="pass data on the model's support; stack several inputs along axis 0"))


def weights(X, what: str, *, grid, k):
    """``(w, like)``: float64 histograms ``(n, k)`` summing to 1 of images or histograms ``X`` (a single one
    is a batch of one, :func:`as_batch`), and :func:`unwrap`'s device of ``X``. ``grid`` is the model's grid
    (or None, then ``k`` its number of bins)."""
    arr, like, what = *unwrap(X), param(what)
    arr = as_batch(arr, what, grid=grid, k=k)
    return as_weights(arr, what=what, grid=grid, k=None if grid else k)[0], like


def single(X, what: str, *, grid, k):
    """``(w (1, k), like)`` of one image ``(H, W)`` or histogram ``(k,)`` (a batch of one is accepted)."""
    w, like = weights(X, what, grid=grid, k=k)
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
