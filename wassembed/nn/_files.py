"""Checked files: safetensors and JSON written atomically, read back only when their sha256 matches.

Shared by model files (:mod:`wassembed.serve`) and training checkpoints (:mod:`wassembed.learn`); nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .._io import atomic_write
from ..errors import ModelFileError, explain

__all__ = ["write_bytes_atomic", "write_tensors", "read_tensors", "read_json", "check_format"]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync of the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(data), prefix=f".tmp-{path.name}-")


def write_tensors(path, tensors: dict) -> dict:
    """Write ``{name: Tensor or ndarray}`` as safetensors atomically; returns ``{"sha256", "bytes"}``."""
    t = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach())
         .cpu().contiguous().clone() for k, v in tensors.items()}
    data = st_save(t)
    write_bytes_atomic(Path(path), data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def read_tensors(path, *, sha256: str, size: int | None = None, what: str = "weights file") -> dict:
    """Read a safetensors file after checking its size and sha256; :class:`ModelFileError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(explain(f"missing {what} {path}", expected="the file written with the JSON",
                                     received="no such file", fix="copy the whole directory, or save/train again"))
    data = path.read_bytes()
    if size is not None and len(data) != size:
        raise ModelFileError(explain(f"{what} {path} is truncated" if len(data) < size else f"{what} {path} has the "
                                     "wrong size", expected=f"{size} bytes", received=f"{len(data)} bytes",
                                     fix="copy the file again or save/train again"))
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelFileError(explain(f"{what} {path} was modified", expected=f"sha256 {sha256[:16]}…",
                                     received=f"sha256 {digest[:16]}…", fix="restore the original files or retrain"))
    try:
        return st_load(data)
    except Exception as exc:
        raise ModelFileError(explain(f"unreadable {what} {path}", expected="a safetensors file",
                                     received=str(exc)[:200], fix="save or train again")) from None


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ModelFileError(explain(f"missing {what} {path}", expected=f"a directory with {path.name}",
                                     received="no such file" if path.parent.exists() else "no such directory",
                                     fix="pass the directory written by model.save() or `wassembed train --out`"))
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        problem = explain(f"unreadable {what} {path}", expected="complete JSON", received=str(exc)[:200],
                          fix="the file is truncated or edited: save again")
        raise ModelFileError(problem) from None
    if not isinstance(out, dict):
        raise ModelFileError(explain(f"unreadable {what} {path}", expected="a JSON object",
                                     received=type(out).__name__, fix="save again"))
    return out


def check_format(meta: dict, fmt: str, version: int, path: Path) -> None:
    if meta.get("format") != fmt or meta.get("format_version") != version:
        raise ModelFileError(explain(f"incompatible file format in {path}", expected=f"{fmt} version {version}",
                                     received=f"{meta.get('format')} version {meta.get('format_version')}",
                                     fix="use the wassembed version that wrote it, or retrain"))
