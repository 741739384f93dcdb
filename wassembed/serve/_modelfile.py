"""Model files: safetensors + JSON, sha256-checked, nothing unpickled.

A model is a directory::

    MODEL/
      model.json          format + version, architecture (ModelConfig), p, ground cost, support, info
                          (dataset and cache fingerprints, training metrics, library versions), and the
                          sha256 and size of the weights file
      weights.safetensors encoder.* and decoder.* parameters (float32), support arrays (coords / cost,
                          float64) and calibration arrays (float64 / int64)

The JSON is written last, so a crash leaves the previous consistent state.
Loading refuses missing, truncated or tampered files and other format versions with
:class:`~wassembed.errors.ModelFileError`.
"""


from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, explain
from ..nn import ModelConfig, build_decoder, build_encoder
from ..nn._config import config_digest
from ..nn._files import (
    check_format,
    read_json,
    read_tensors,
    write_bytes_atomic,
    write_tensors,
)

__all__ = ["FORMAT_VERSION", "read_model", "save_model"]

FORMAT = "wassembed-model"
FORMAT_VERSION = 1
MODEL_JSON, WEIGHTS = "model.json", "weights.safetensors"


def save_model(emb, path) -> Path:
    """Save a :class:`~wassembed.serve.WassersteinEmbedding` to directory ``path``.

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
            "support": {"grid": list(emb.grid) if getattr(emb, "grid", None) is not None else None, "k": cfg.k,
                        "coords": getattr(emb, "coords", None) is not None,
                        "cost": getattr(emb, "cost", None) is not None},
            "weights_file": WEIGHTS, "weights_sha256": digest["sha256"], "weights_bytes": digest["bytes"],
            "info": emb.info or {}}
    meta["meta_sha256"] = _meta_digest(meta)
    write_bytes_atomic(path / MODEL_JSON, json.dumps(meta, indent=2, sort_keys=True).encode())
    return path


def _meta_digest(meta: dict) -> str:
    """sha256 of the model description without its own checksum (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_model(path) -> dict:
    """Read a model directory written by :func:`save_model` (checked; nothing unpickled).

    Returns the keyword arguments of :class:`~wassembed.serve.WassersteinEmbedding` (networks on the CPU):
    ``encoder``, ``decoder``, ``config``, ``p``, ``grid``, ``coords``, ``cost``, ``info``, ``calibration``.
    Raises :class:`~wassembed.errors.ModelFileError` when a file is missing, truncated, modified or of
    another format version.
    """
    path = Path(path)
    meta = read_json(path / MODEL_JSON, "model file")
    check_format(meta, FORMAT, FORMAT_VERSION, path / MODEL_JSON)
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
    except Exception as exc:  # any malformed field
        raise ModelFileError(explain(f"invalid model description {path / MODEL_JSON}",
                                     expected="the fields written by save_model", received=str(exc)[:200],
                                     fix="save or train the model again")) from None
    if config_digest(meta["config"]) != meta.get("config_digest"):  # the dict as written (older files included)
        raise ModelFileError(explain(f"model config in {path / MODEL_JSON} was modified",
                                     expected=f"digest {str(meta.get('config_digest'))[:16]}…",
                                     received=f"{config_digest(meta['config'])[:16]}…",
                                     fix="restore the original file"))
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
    return dict(encoder=enc, decoder=dec, config=cfg, p=p, grid=grid, coords=coords, cost=cost,
                info=meta.get("info") or {}, calibration=calib or None)


