"""Inputs read on the model's device: validated float32 histograms, batch by batch, without a host round trip.

The serving path of :meth:`~wassembed.serve.WassersteinEmbedding.embed`, ``distance``, ``cdist``, ``pdist``
and ``kneighbors``. An input keeps its dtype until it reaches the device of the call: uint8 images travel as
bytes (through two pinned staging buffers, asynchronously, when the device is CUDA and the input is in host
memory; a CUDA tensor never leaves its GPU), and each batch becomes float32 histograms there
(:func:`normalise`):

* uint8 and bool: converted to float32 and divided by the row sums (exact sums for 8-bit images of up to
  65,793 bins);
* other integers, float16, bfloat16 and float32: in float32, divided by the row maximum, then by the row sum
  (as :func:`~wassembed.data.as_weights` does, so that a row sum never overflows);
* float64: the same in float64 (the arithmetic of ``as_weights``), then rounded to float32.

Validation is that of ``as_weights``, with the same errors. Shapes are checked before any data moves, on the
shape alone (:func:`prepare`); values batch by batch on the device, one flag per batch for non-finite,
negative or all-zero rows. When a flag is set, the whole input is checked again by ``as_weights`` on the
host, which raises the error of the numpy path word for word (which problem first, which rows). On the CPU
the first bad batch raises; on CUDA the flags are read once, after the last batch (one synchronisation per
input). Inputs of other kinds (lists, other integer widths, complex, empty or badly ranked arrays) go through
``as_weights`` first (its float64 histograms then follow the float64 rule).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..data import as_weights
from ..errors import InputError, explain, param
from . import _inputs

__all__ = ["DeviceInputs", "normalise", "prepare"]

#: numpy dtypes read on the device as they are (native byte order); others go through ``as_weights`` first
NUMPY_DTYPES = frozenset(np.dtype(t) for t in (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64,
                                               np.float16, np.float32, np.float64))
#: torch dtypes read on the device as they are
TORCH_DTYPES = frozenset((torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                          torch.float16, torch.bfloat16, torch.float32, torch.float64))


class DeviceInputs:
    """An input whose shape is checked: ``data`` ``(n, k)`` (a numpy array or a tensor on any device, in its
    own dtype), ``like`` (the torch device of a tensor input, None for numpy), read by :meth:`batches`."""

    __slots__ = ("data", "grid", "k", "like", "what")

    def __init__(self, data, like, what: str, grid, k):
        self.data, self.like, self.what, self.grid, self.k = data, like, what, grid, k

    @property
    def n(self) -> int:
        """Number of inputs."""
        return int(self.data.shape[0])

    def batches(self, dev: torch.device, batch_size: int, *, staged: bool | None = None) -> Iterator[torch.Tensor]:
        """Float32 histograms ``(b, k)`` on ``dev``, ``batch_size`` inputs at a time, validated (see the module
        docstring). ``staged``: copy through the two staging buffers (default: when ``dev`` is CUDA and the
        data in host memory; pinned only then)."""
        host = isinstance(self.data, np.ndarray) or self.data.device.type == "cpu"
        if staged is None:
            staged = dev.type == "cuda" and host
        stage = _Staging(dev, (min(batch_size, self.n), self.data.shape[1]), _torch_dtype(self.data)) \
            if staged else None
        flag = None
        for s in range(0, self.n, batch_size):
            part = self.data[s:s + batch_size]
            x = stage.put(part) if stage is not None else _host_tensor(part).to(dev)
            w, bad = normalise(x)
            if dev.type != "cuda":
                if bad:
                    self.raise_invalid()
            else:
                flag = bad if flag is None else flag | bad
            yield w
        if flag is not None and bool(flag):
            self.raise_invalid()

    def raise_invalid(self):
        """Raise the :class:`~wassembed.errors.InputError` of ``as_weights`` on the whole input (host copy)."""
        arr = self.data if isinstance(self.data, np.ndarray) else _inputs.unwrap(self.data)[0]
        as_weights(arr, what=self.what, grid=self.grid, k=None if self.grid else self.k)
        raise InputError(explain(f"{self.what} has invalid weights", expected="finite nonnegative weights with a "
                                 "positive sum per row", received="a batch flagged on the device",
                                 fix="check the input's values"))


def prepare(X, what: str, *, grid, k) -> DeviceInputs:
    """``X`` (images ``(n, H, W)``, histograms ``(n, k)``, or one of either; numpy, torch on any device, or
    array-like) as :class:`DeviceInputs`, its shape checked with the errors of the numpy path
    (:func:`~wassembed.serve._inputs.as_batch`, then ``as_weights``'s shape checks on one row)."""
    if isinstance(X, DeviceInputs):
        return X
    data, like, what = *_direct(X), param(what)
    if data is None:  # lists, other dtypes, empty or badly ranked arrays: as_weights (which explains errors)
        w, like = _inputs.weights(X, what, grid=grid, k=k)
        return DeviceInputs(w, like, what, grid, k)
    probe = _inputs.as_batch(np.broadcast_to(np.zeros((), np.uint8), tuple(data.shape)), what, grid=grid, k=k)
    as_weights(np.ones((1, *probe.shape[1:]), np.uint8), what=what, grid=grid, k=None if grid else k)
    return DeviceInputs(data.reshape(probe.shape[0], -1), like, what, grid, k)


def _direct(X):
    """``(data, like)`` of a numpy array or tensor read on the device as it is, or ``(None, None)``."""
    if isinstance(X, torch.Tensor):
        if X.dtype in TORCH_DTYPES and 1 <= X.ndim <= 3 and X.numel() > 0:
            return X.detach(), X.device
    elif isinstance(X, np.ndarray):
        a = np.asarray(X)
        if a.dtype in NUMPY_DTYPES and a.dtype.isnative and 1 <= a.ndim <= 3 and a.size > 0:
            return a, None
    return None, None


def normalise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w, bad)``: float32 histograms ``(b, k)`` of the weights ``x (b, k)`` (rows divided by their sums, see
    the module docstring) and a 0-d bool tensor on ``x``'s device, True when a row is non-finite, negative or
    all zero (``w`` is then meaningless). ``x`` is never modified.

    Examples
    --------
    >>> w, bad = normalise(torch.tensor([[0, 2, 2]], dtype=torch.uint8))
    >>> w.tolist(), w.dtype, bool(bad)
    ([[0.0, 0.5, 0.5]], torch.float32, False)
    >>> bool(normalise(torch.tensor([[0.0, -1.0, 2.0]]))[1]), bool(normalise(torch.zeros(1, 3))[1])
    (True, True)
    """
    if x.dtype in (torch.uint8, torch.bool):  # nonnegative by type, exact float32 sums
        w = x.to(torch.float32)
        s = w.sum(1, keepdim=True)
        return w.div_(s), (s <= 0).any()
    w = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    lo, hi = w.amin(1, keepdim=True), w.amax(1, keepdim=True)  # (torch.aminmax is ~10× slower on the CPU)
    w = w / hi  # a new tensor: x stays untouched
    s = w.sum(1, keepdim=True)
    bad = (lo < 0).any() | (hi <= 0).any() | ~torch.isfinite(s).all()  # NaN and inf make s non-finite
    return w.div_(s).to(torch.float32), bad


def _torch_dtype(data) -> torch.dtype:
    return torch.from_numpy(np.empty(0, data.dtype)).dtype if isinstance(data, np.ndarray) else data.dtype


def _host_tensor(part):
    """A tensor of a slice of the input: a view of a writable numpy array, a copy of a read-only one or of one
    with negative strides (which torch cannot view)."""
    if isinstance(part, torch.Tensor):
        return part
    return torch.from_numpy(part if part.flags.writeable and min(part.strides) >= 0 else part.copy())


class _Staging:
    """Two host buffers (pinned when ``dev`` is CUDA): batch ``t`` is copied into buffer ``t % 2``, then sent to
    ``dev`` asynchronously; a buffer is refilled only after the copy that last read it has finished (its CUDA
    event), so copies overlap the device's work on the previous batch."""

    def __init__(self, dev: torch.device, shape, dtype: torch.dtype):
        cuda = dev.type == "cuda"
        self.dev, self.cuda = dev, cuda
        self.bufs = [torch.empty(shape, dtype=dtype, pin_memory=cuda) for _ in range(2)]
        self.done = [None, None]
        self.t = 0

    def put(self, part) -> torch.Tensor:
        """``part`` (numpy or tensor, ``(b, k)``) on the device, through the next buffer."""
        i, self.t = self.t % 2, self.t + 1
        if self.done[i] is not None:
            self.done[i].synchronize()
        buf = self.bufs[i][:part.shape[0]]
        if isinstance(part, np.ndarray) and not part.flags.writeable:
            buf.numpy()[...] = part
        else:
            buf.copy_(_host_tensor(part))
        x = buf.to(self.dev, non_blocking=True)
        if self.cuda:
            self.done[i] = torch.cuda.Event()
            self.done[i].record(torch.cuda.current_stream(self.dev))
        return x
