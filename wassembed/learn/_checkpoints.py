"""Training checkpoints: ``state.json`` (training state, sha256 of its tensors) and one
``epoch-NNNN.safetensors``, written atomically, JSON last.

:func:`save_checkpoint` / :func:`load_checkpoint` are the file format; :func:`save_training_checkpoint` /
:func:`restore_training_checkpoint` put a :class:`~wassembed.learn._state.TrainerState` into it and back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import InputError, explain, param
from ..nn._files import (
    check_format,
    read_json,
    read_tensors,
    write_bytes_atomic,
    write_tensors,
)

if TYPE_CHECKING:
    from ._settings import TrainSettings
    from ._state import TrainerState

__all__ = ["load_checkpoint", "save_checkpoint", "CHECKPOINT_VERSION", "refuse_overwrite",
           "restore_training_checkpoint", "save_training_checkpoint", "state_tensors"]

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


# -- a training run's state in a checkpoint -----------------------------------------------------------
def state_tensors(state: TrainerState) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: ``model.encoder.*``, ``model.decoder.*``, ``best.*`` and ``optim.<id>.*``.

    Parameters
    ----------
    state : TrainerState

    Returns
    -------
    dict of str to Tensor
    """
    t = {f"model.encoder.{k}": v for k, v in state.encoder.state_dict().items()}
    t.update({f"model.decoder.{k}": v for k, v in state.decoder.state_dict().items()})
    t.update({f"best.{k}": v for k, v in state.best.items()})
    for pid, st in state.optimizer.state_dict()["state"].items():
        t.update({f"optim.{pid}.{k}": v if torch.is_tensor(v) else torch.tensor(v) for k, v in st.items()})
    return t


def save_training_checkpoint(directory, state: TrainerState, ident: dict) -> Path:
    """Checkpoint ``state`` after its epoch ``state.epoch`` into ``directory`` (see :func:`save_checkpoint`).

    Parameters
    ----------
    directory : path
    state : TrainerState
    ident : dict
        What the run was made with (cache, data, model, seed, settings): a resumed run must match it.
    """
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
              for g in state.optimizer.state_dict()["param_groups"]]
    return save_checkpoint(directory, state.epoch, state_tensors(state),
                           {"ident": ident, "train_state": state.train_state(), "param_groups": groups})


def refuse_overwrite(directory) -> None:
    """An :class:`InputError` when ``directory`` already holds a checkpoint (a new run must not replace it)."""
    if directory is not None and (Path(directory) / "state.json").exists():
        raise InputError(explain(f"{directory} already holds a training checkpoint", expected="an empty directory",
                                 received="state.json",
                                 fix=f"pass {param('resume', True)} to continue it, or another "
                                     f"{param('checkpoint_dir')}"))


def restore_training_checkpoint(directory, state: TrainerState, ident: dict, settings: TrainSettings) -> None:
    """Continue ``state`` (fresh, on its device) from the checkpoint in ``directory``.

    Restores the networks, the best weights, Adam's state, the counters and history, and recomputes the
    learning-rate schedule from the history (``settings.epochs`` may differ from the checkpoint's).

    Raises
    ------
    InputError
        No checkpoint there, or one made with another cache, dataset, architecture, seed or settings
        (``epochs`` and ``patience`` excepted).
    """
    found = load_checkpoint(directory) if directory is not None else None
    if found is None:
        raise InputError(explain("nothing to resume", expected=f"a checkpoint in {directory}",
                                 received="no state.json",
                                 fix=f"train without {param('resume', True)} first (a checkpoint is written after "
                                     "each pair epoch; a run stopped before its first pair epoch ended, e.g. during "
                                     "the distillation phase, left none)"))
    meta, tensors = found
    for key, value in ident.items():
        made = meta.get("ident", {}).get(key)
        if json.dumps(made, sort_keys=True) != json.dumps(value, sort_keys=True):
            raise InputError(explain(f"checkpoint in {directory} was made with another {key.replace('_', ' ')}",
                                     expected=str(value)[:120], received=str(made)[:120],
                                     fix="resume with the same cache, model and settings, or train into "
                                         "another checkpoint_dir"))
    dev = next(state.encoder.parameters()).device
    tensors = {k: v.to(dev) for k, v in tensors.items()}
    state.encoder.load_state_dict({k[14:]: v for k, v in tensors.items() if k.startswith("model.encoder.")})
    state.decoder.load_state_dict({k[14:]: v for k, v in tensors.items() if k.startswith("model.decoder.")})
    optim: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            optim.setdefault(int(pid), {})[name] = v
    state.optimizer.load_state_dict({"state": optim, "param_groups": meta["param_groups"]})
    state.best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    state.load_train_state(meta["train_state"], settings)
