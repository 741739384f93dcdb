"""One device resolver for training and serving."""

from __future__ import annotations

import torch

from ..errors import InputError, explain

__all__ = ["resolve_device"]




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

