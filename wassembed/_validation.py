"""Validators of user options shared by every stage (messages: expected / received / fix)."""

from __future__ import annotations

import numpy as np

from .errors import InputError, explain

__all__ = ["check_pos_int"]



def check_pos_int(name: str, v) -> int:
    """Validate a positive int option."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(explain(f"bad {name}", expected="a positive int", received=repr(v),
                                 fix=f"pass e.g. {name}=1024"))
    return int(v)

