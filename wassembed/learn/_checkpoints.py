"""Training checkpoints: ``state.json`` (training state, sha256 of its tensors) and one
``epoch-NNNN.safetensors``, written atomically, JSON last."""

from __future__ import annotations

import json
from pathlib import Path

from ..nn._files import (
    check_format,
    read_json,
    read_tensors,
    write_bytes_atomic,
    write_tensors,
)

__all__ = ["load_checkpoint", "save_checkpoint", "CHECKPOINT_VERSION"]

CHECKPOINT = "wassembed-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(directory, epoch: int, tensors: dict, state: dict) -> Path:
    """Write ``epoch-NNNN.safetensors`` then ``state.json`` (pointing at it, with its sha256); drop older files."""
    directory = Path(directory)
    name = f"epoch-{epoch:04d}.safetensors"
    digest = write_tensors(directory / name, tensors)
    meta = dict(state, format=CHECKPOINT, format_version=CHECKPOINT_VERSION, epoch=int(epoch),
                tensors_file=name, tensors_sha256=digest["sha256"], tensors_bytes=digest["bytes"])
    write_bytes_atomic(directory / "state.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    for old in directory.glob("epoch-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return directory / "state.json"


def load_checkpoint(directory) -> tuple[dict, dict] | None:
    """``(state, tensors)`` of the last complete checkpoint in ``directory``, or None when there is none."""
    directory = Path(directory)
    if not (directory / "state.json").exists():
        return None
    meta = read_json(directory / "state.json", "checkpoint state")
    check_format(meta, CHECKPOINT, CHECKPOINT_VERSION, directory / "state.json")
    tensors = read_tensors(directory / str(meta.get("tensors_file")), sha256=str(meta.get("tensors_sha256")),
                           size=meta.get("tensors_bytes"), what="checkpoint file")
    return meta, tensors
