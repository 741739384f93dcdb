"""Model files and training checkpoints: safetensors + JSON, sha256-checked, nothing unpickled.

A model is a directory::

    MODEL/
      model.json          format + version, architecture (ModelConfig), p, ground cost, support, info
                          (dataset and cache fingerprints, training metrics, library versions), and the
                          sha256 and size of the weights file
      weights.safetensors encoder.* and decoder.* parameters (float32), support arrays (coords / cost,
                          float64) and calibration arrays (float64 / int64)

A checkpoint directory holds ``state.json`` (training state, sha256 of its tensors) and one
``epoch-NNNN.safetensors`` (model, best model and optimizer tensors). Files are written to a temporary
name and renamed; the JSON is written last, so a crash leaves the previous consistent state.
Loading refuses missing, truncated or tampered files and other format versions with
:class:`~wassembed.errors.ModelFileError`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import ModelFileError, explain
from .models import ModelConfig, build_decoder, build_encoder

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "FORMAT_VERSION",
           "CHECKPOINT_VERSION", "write_tensors", "read_tensors"]

FORMAT = "wassembed-model"
FORMAT_VERSION = 1
CHECKPOINT = "wassembed-checkpoint"
CHECKPOINT_VERSION = 1
MODEL_JSON, WEIGHTS = "model.json", "weights.safetensors"


def _atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync of the directory)."""
    from .cache import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(data), prefix=f".tmp-{path.name}-")


def write_tensors(path, tensors: dict) -> dict:
    """Write ``{name: Tensor or ndarray}`` as safetensors atomically; returns ``{"sha256", "bytes"}``."""
    t = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach())
         .cpu().contiguous().clone() for k, v in tensors.items()}
    data = st_save(t)
    _atomic_bytes(Path(path), data)
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
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise ModelFileError(explain(f"unreadable {what} {path}", expected="a safetensors file",
                                     received=str(exc)[:200], fix="save or train again")) from None


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ModelFileError(explain(f"missing {what} {path}", expected=f"a directory with {path.name}",
                                     received="no such file" if path.parent.exists() else "no such directory",
                                     fix="pass the directory written by model.save() or `wassembed train --out`"))
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(explain(f"unreadable {what} {path}", expected="complete JSON",
                                     received=str(exc)[:200], fix="the file is truncated or edited: save again"))
    if not isinstance(out, dict):
        raise ModelFileError(explain(f"unreadable {what} {path}", expected="a JSON object",
                                     received=type(out).__name__, fix="save again"))
    return out


def _check_format(meta: dict, fmt: str, version: int, path: Path) -> None:
    if meta.get("format") != fmt or meta.get("format_version") != version:
        raise ModelFileError(explain(f"incompatible file format in {path}", expected=f"{fmt} version {version}",
                                     received=f"{meta.get('format')} version {meta.get('format_version')}",
                                     fix="use the wassembed version that wrote it, or retrain"))


def save_model(emb, path) -> Path:
    """Save a :class:`~wassembed.embedding.WassersteinEmbedding` to directory ``path``.

    Parameters
    ----------
    emb : WassersteinEmbedding
        With ``encoder``, ``decoder``, ``config``, ``p``, support (``grid`` / ``coords`` / ``cost``),
        ``info`` (JSON-able dict) and ``calibration`` (dict of numpy arrays or None).
    path : str or path
        Directory, created if needed; an existing model there is replaced.

    Returns
    -------
    Path
    """
    path = Path(path)
    tensors = {f"encoder.{k}": v.float() for k, v in emb.encoder.state_dict().items()}
    tensors.update({f"decoder.{k}": v.float() for k, v in emb.decoder.state_dict().items()})
    for name in ("coords", "cost"):
        if getattr(emb, name, None) is not None:
            tensors[f"support.{name}"] = np.asarray(getattr(emb, name), dtype=np.float64)
    for k, v in (emb.calibration or {}).items():
        v = np.asarray(v)
        tensors[f"calibration.{k}"] = v.astype(np.int64 if v.dtype.kind in "iub" else np.float64)
    digest = write_tensors(path / WEIGHTS, tensors)
    cfg: ModelConfig = emb.config
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": cfg.to_dict(),
            "config_digest": cfg.digest(), "p": int(emb.p),
            "ground_cost": (emb.info or {}).get("ground_cost"),
            "support": {"grid": list(emb.grid) if emb.grid is not None else None, "k": cfg.k,
                        "coords": emb.coords is not None, "cost": emb.cost is not None},
            "weights_file": WEIGHTS, "weights_sha256": digest["sha256"], "weights_bytes": digest["bytes"],
            "info": emb.info or {}}
    meta["meta_sha256"] = _meta_digest(meta)
    _atomic_bytes(path / MODEL_JSON, json.dumps(meta, indent=2, sort_keys=True).encode())
    return path


def _meta_digest(meta: dict) -> str:
    """sha256 of the model description without its own checksum (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load_model(path, *, device: str = "cpu"):
    """Load a model directory written by :func:`save_model` (checked; nothing unpickled).

    Raises :class:`~wassembed.errors.ModelFileError` when a file is missing, truncated, modified or of
    another format version.
    """
    from .embedding import WassersteinEmbedding

    path = Path(path)
    meta = _read_json(path / MODEL_JSON, "model file")
    _check_format(meta, FORMAT, FORMAT_VERSION, path / MODEL_JSON)
    if meta.get("meta_sha256") != _meta_digest(meta):  # p, support, info, ... are covered, not only the config
        raise ModelFileError(explain(f"model file {path / MODEL_JSON} was modified",
                                     expected=f"content matching sha256 {str(meta.get('meta_sha256'))[:16]}…"
                                     if meta.get("meta_sha256") else "a meta_sha256 checksum field (missing)",
                                     received=f"{_meta_digest(meta)[:16]}…",
                                     fix="restore the original file or save/train the model again"))
    try:
        cfg = ModelConfig.from_dict(meta["config"])
        sha, size = str(meta["weights_sha256"]), int(meta["weights_bytes"])
        p, support = int(meta["p"]), meta["support"]
    except Exception as exc:  # noqa: BLE001 - any malformed field
        raise ModelFileError(explain(f"invalid model description {path / MODEL_JSON}",
                                     expected="the fields written by save_model", received=str(exc)[:200],
                                     fix="save or train the model again")) from None
    if cfg.digest() != meta.get("config_digest"):
        raise ModelFileError(explain(f"model config in {path / MODEL_JSON} was modified",
                                     expected=f"digest {str(meta.get('config_digest'))[:16]}…",
                                     received=f"{cfg.digest()[:16]}…", fix="restore the original file"))
    tensors = read_tensors(path / meta.get("weights_file", WEIGHTS), sha256=sha, size=size)
    enc, dec = build_encoder(cfg), build_decoder(cfg)
    try:
        enc.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")})
        dec.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
    except RuntimeError as exc:
        raise ModelFileError(explain(f"weights in {path} do not fit the architecture", expected=cfg.name,
                                     received=str(exc).splitlines()[0][:200], fix="save or train again")) from None
    calib = {k[12:]: v.numpy() for k, v in tensors.items() if k.startswith("calibration.")}
    grid = tuple(support["grid"]) if support.get("grid") is not None else None
    coords = tensors["support.coords"].numpy() if "support.coords" in tensors else None
    cost = tensors["support.cost"].numpy() if "support.cost" in tensors else None
    return WassersteinEmbedding(enc, dec, config=cfg, p=p, grid=grid, coords=coords, cost=cost,
                                info=meta.get("info") or {}, calibration=calib or None, device=device)


def save_checkpoint(directory, epoch: int, tensors: dict, state: dict) -> Path:
    """Write ``epoch-NNNN.safetensors`` then ``state.json`` (pointing at it, with its sha256); drop older files."""
    directory = Path(directory)
    name = f"epoch-{epoch:04d}.safetensors"
    digest = write_tensors(directory / name, tensors)
    meta = dict(state, format=CHECKPOINT, format_version=CHECKPOINT_VERSION, epoch=int(epoch),
                tensors_file=name, tensors_sha256=digest["sha256"], tensors_bytes=digest["bytes"])
    _atomic_bytes(directory / "state.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    for old in directory.glob("epoch-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return directory / "state.json"


def load_checkpoint(directory) -> tuple[dict, dict] | None:
    """``(state, tensors)`` of the last complete checkpoint in ``directory``, or None when there is none."""
    directory = Path(directory)
    if not (directory / "state.json").exists():
        return None
    meta = _read_json(directory / "state.json", "checkpoint state")
    _check_format(meta, CHECKPOINT, CHECKPOINT_VERSION, directory / "state.json")
    tensors = read_tensors(directory / str(meta.get("tensors_file")), sha256=str(meta.get("tensors_sha256")),
                           size=meta.get("tensors_bytes"), what="checkpoint file")
    return meta, tensors
