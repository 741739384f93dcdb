"""Inputs and outputs of the served model: numpy in, numpy out; torch in, torch out on its device."""

from __future__ import annotations

import torch

__all__ = ["rewrap", "unwrap"]



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
