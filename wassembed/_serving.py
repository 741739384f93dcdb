"""Small helpers shared by the serving modules: devices, option checks, numpy/torch in and out."""

from __future__ import annotations

import numpy as np
import torch

from .errors import InputError, explain

__all__ = ["resolve_device", "check_pos_int", "unwrap", "rewrap"]


def resolve_device(device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` (CUDA when available) or a ``torch.device``."""
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(explain("unknown device", expected="'cpu', 'cuda', 'cuda:N' or 'auto'",
                                 received=repr(device), fix="pass device='auto'")) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(explain("CUDA was requested but no GPU is available", expected="a CUDA GPU and a "
                                 "CUDA build of torch", received=f"torch {torch.__version__}, "
                                 "torch.cuda.is_available() = False", fix="use device='cpu' or 'auto'"))
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(explain("no such GPU", expected=f"an index < {torch.cuda.device_count()}",
                                 received=str(dev), fix="use device='cuda'"))
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type not in ("cpu", "cuda"):
        raise InputError(explain("unsupported device", expected="'cpu' or 'cuda'", received=str(dev),
                                 fix="use device='auto'"))
    return dev


def check_pos_int(name: str, v) -> int:
    """Validate a positive int option."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(explain(f"bad {name}", expected="a positive int", received=repr(v),
                                 fix=f"pass e.g. {name}=1024"))
    return int(v)


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
