"""Train a Wasserstein embedding from a distance cache alone.

Given exact values ``y_ij = W_p^p(x_i, x_j)`` of a cache, the encoder φ and decoder ψ minimise
:class:`~wassembed.losses.DWELoss` (``(‖φ(x_i) − φ(x_j)‖^p − y_ij)²`` plus ``2λ·KL(x ‖ softmax ψ(φ(x)))``).

* **Split by image.** A seeded fraction of the images is held out; validation pairs have both images held
  out, training pairs none (pairs between the two sets are dropped and counted).
* **Batches share images.** The loss needs φ only once per distinct image. Pairs computed together (one
  shard) are grouped into connected components; a component whose images lie inside a larger one of
  another shard (pieces of one "blocks" group) joins it; whole groups are packed into batches of at most
  ``batch_images`` images (shuffled every epoch). A group larger than that (random-pair caches) is cut
  into ordinary pair batches. One 64-image forward pass of a blocks cache serves ~2,000 pair terms.
* **Exact symmetries** (optional ``augment``): one in-bounds translation, flip or 90° rotation applied to
  every image of a batch leaves every ``W_2^2`` between them unchanged (grid supports).
* Adam, cosine / plateau / constant learning rate, early stopping on the validation MSE, a checkpoint
  every epoch (safetensors + JSON, see :mod:`wassembed.modelio`), ``resume``, seeded and reproducible,
  per-epoch metrics appended to a JSON-lines log, progress bar on stderr, bf16 autocast on CUDA.
"""


from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..errors import InputError, TrainingError, explain
from ..metrics import regression_metrics
from ..nn import ModelConfig, build_decoder, build_encoder, resolve_device
from ._batching import (
    _augment,
    _bboxes,
    pack_batches,
    plan_units,
    split_by_image,
    split_calibration,
)
from ._losses import DistanceLoss, DWELoss
from ._settings import TrainSettings

__all__ = ["train"]
# -- the training loop --------------------------------------------------------------------------------
def _open_cache(cache):
    from ..exact import DistanceCache

    return DistanceCache.open(cache) if isinstance(cache, (str, Path)) else cache


def _model_config(model, data) -> ModelConfig:
    if isinstance(model, ModelConfig):
        cfg = model
        if cfg.k != data.k or (cfg.grid is not None and tuple(cfg.grid) != tuple(data.grid or ())):
            raise InputError(explain("the model config does not fit the cache's support",
                                     expected=f"k={data.k}, grid={data.grid}", received=f"k={cfg.k}, grid={cfg.grid}",
                                     fix="use ModelConfig.preset(name, grid=cache.data.grid)"))
        return cfg
    return ModelConfig.preset(str(model), grid=data.grid, k=data.k)


def _versions() -> dict:
    import numpy
    import safetensors

    return {"wassembed": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _merge(shards):
    """All pairs of the shards, unique and sorted by ``(i, j)`` (as ``DistanceCache.read``)."""
    from ..exact import PairTable

    if not shards:
        e = np.empty(0, dtype=np.int64)
        return PairTable(e, e.copy(), np.empty(0))
    i, j, v = (np.concatenate([getattr(t, f) for t in shards]) for f in ("i", "j", "value"))
    order = np.lexsort((j, i))
    i, j, v = i[order], j[order], v[order]
    keep = np.r_[True, (i[1:] != i[:-1]) | (j[1:] != j[:-1])]
    return PairTable(i[keep], j[keep], v[keep])


def _state_tensors(enc, dec, best, opt) -> dict:
    t = {f"model.encoder.{k}": v for k, v in enc.state_dict().items()}
    t.update({f"model.decoder.{k}": v for k, v in dec.state_dict().items()})
    t.update({f"best.{k}": v for k, v in best.items()})
    for pid, st in opt.state_dict()["state"].items():
        t.update({f"optim.{pid}.{k}": v if torch.is_tensor(v) else torch.tensor(v) for k, v in st.items()})
    return t


def _restore(tensors, enc, dec, opt, groups) -> dict:
    enc.load_state_dict({k[14:]: v for k, v in tensors.items() if k.startswith("model.encoder.")})
    dec.load_state_dict({k[14:]: v for k, v in tensors.items() if k.startswith("model.decoder.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": groups})
    return {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}


def train(cache, *, model="fast", settings: TrainSettings | None = None, checkpoint_dir=None,
          resume: bool = False, device: str = "auto", seed: int = 0, progress: bool = True, log=None,
          threads: int | None = None, **overrides):
    """Train a :class:`~wassembed.embedding.WassersteinEmbedding` on the pairs of a distance cache.

    Parameters
    ----------
    cache : DistanceCache or path
        A cache with stored data (``wassembed precompute``).
    model : str or ModelConfig
        Preset name (``"fast"``, ``"paper"``, ``"mlp"``; non-grid supports always get an MLP) or a config.
    settings : TrainSettings, optional
        Hyper-parameters; keyword ``overrides`` (e.g. ``epochs=10``) replace fields.
    checkpoint_dir : path, optional
        Where a checkpoint is written every epoch and the JSON-lines log appended (``train_log.jsonl``).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` (refused if it was made for another cache,
        architecture or settings; ``epochs`` and ``patience`` may change).
    device : {"auto", "cpu", "cuda"}
    seed : int
        Seeds the split, initialisation, batch order and augmentation.
    progress : bool
        tqdm progress bar on stderr.
    log : path, optional
        JSON-lines log (default ``checkpoint_dir / "train_log.jsonl"``).
    threads : int, optional
        CPU threads for torch during training (restored afterwards). On a busy machine 1 thread can be
        several times faster than oversubscribed cores.

    Returns
    -------
    WassersteinEmbedding
        The best model on validation, with ``info`` and ``calibration``.
    """
    old_threads = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InputError(explain("bad thread count", expected="a positive int", received=repr(threads),
                                     fix="pass threads=1 (or leave it unset)"))
        torch.set_num_threads(threads)
    try:
        return _train(cache, model, settings, checkpoint_dir, resume, device, seed, progress, log, overrides)
    finally:
        torch.set_num_threads(old_threads)


def _train(cache, model, settings, checkpoint_dir, resume, device, seed, progress, log, overrides):
    from tqdm.auto import tqdm

    from ..serve import WassersteinEmbedding

    t_start = time.time()
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    if set(overrides) - known:
        raise InputError(explain("unknown training options", expected=f"names among {sorted(known)}",
                                 received=str(sorted(set(overrides) - known)), fix="check the spelling"))
    settings = dataclasses.replace(settings or TrainSettings(), **overrides)
    dev = resolve_device(device)
    cache = _open_cache(cache)
    data = cache.data
    p = int(cache.p)
    cfg = _model_config(model, data)
    shards = cache.read_shards()
    table = _merge(shards)
    if len(table) == 0:
        raise InputError(explain(f"cache {cache.path} holds no pairs", expected="exact distances to train on",
                                 received="0 pairs", fix="run `wassembed precompute DATA --out CACHE --pairs N`"))
    tr_mask, va_mask, val_images = split_by_image(table.i, table.j, data.n, settings.val_fraction, seed)
    va_mask, cal_mask = split_calibration(table.i, table.j, va_mask, val_images, data.n, seed)
    n_tr, n_va = int(tr_mask.sum()), int(va_mask.sum())
    if n_tr < 10 or n_va < 5:
        raise InputError(explain(f"cache {cache.path} is too small to train on",
                                 expected="at least 10 training and 5 validation pairs after the split by image",
                                 received=f"{len(table)} pairs: {n_tr} train, {n_va} validation",
                                 fix="precompute more pairs (e.g. --pairs 10000) or raise val_fraction"))
    ti, tj, ty = table.i[tr_mask], table.j[tr_mask], table.value[tr_mask]
    vi, vj, vy = table.i[va_mask], table.j[va_mask], table.value[va_mask]
    key = ti * data.n + tj  # map shard pairs onto training-pair indices
    shard_idx = []
    for sh in shards:
        s = np.searchsorted(key, sh.i * data.n + sh.j)
        s = np.minimum(s, key.size - 1)
        shard_idx.append(np.unique(s[key[s] == sh.i * data.n + sh.j]))
    if settings.batching == "groups":
        units = plan_units(shard_idx, ti, tj)
    else:
        units = list(np.arange(ti.size, dtype=np.int64)[:, None])
    pairs_digest = hashlib.sha256(table.i.tobytes() + table.j.tobytes() + table.value.tobytes()).hexdigest()
    scale = float(ty.mean()) if settings.target_scale == "mean" else float(settings.target_scale)
    loss_fn = DWELoss(DistanceLoss(p=p, scale=scale, relative_weight=settings.relative_weight),
                      recon_weight=settings.recon_weight)
    ops = [o for o in settings.augment.split(",") if o] if data.grid is not None else []
    bboxes = _bboxes(data.weights, data.grid) if ops else None
    X = torch.as_tensor(data.weights, dtype=torch.float32, device=dev)
    enc = build_encoder(cfg, seed=seed).to(dev)
    dec = build_decoder(cfg, seed=seed).to(dev)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    amp = dev.type == "cuda"
    ident = {"cache_fingerprint": pairs_digest, "dataset_fingerprint": cache.fingerprint,
             "config_digest": cfg.digest(), "seed": int(seed),
             "settings": {k: v for k, v in settings.to_dict().items() if k not in ("epochs", "patience")}}
    st = {"epoch": 0, "lr": settings.lr, "best_mse": math.inf, "best_epoch": 0, "bad_epochs": 0, "history": []}
    best = {f"encoder.{k}": v.detach().clone() for k, v in enc.state_dict().items()}
    best.update({f"decoder.{k}": v.detach().clone() for k, v in dec.state_dict().items()})
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    log = Path(log) if log is not None else (ckpt / "train_log.jsonl" if ckpt else None)
    if resume:
        from ._checkpoints import load_checkpoint

        found = load_checkpoint(ckpt) if ckpt is not None else None
        if found is None:
            raise InputError(explain("nothing to resume", expected=f"a checkpoint in {ckpt}",
                                     received="no state.json", fix="train without --resume first"))
        meta, tensors = found
        for k2, v2 in ident.items():
            if json.dumps(meta.get("ident", {}).get(k2), sort_keys=True) != json.dumps(v2, sort_keys=True):
                raise InputError(explain(f"checkpoint in {ckpt} was made with another {k2.replace('_', ' ')}",
                                         expected=str(v2)[:120], received=str(meta.get("ident", {}).get(k2))[:120],
                                         fix="resume with the same cache, model and settings, or use a new --out"))
        best = _restore({k: v.to(dev) for k, v in tensors.items()}, enc, dec, opt, meta["param_groups"])
        st = meta["train_state"]
    elif ckpt is not None and (ckpt / "state.json").exists():
        raise InputError(explain(f"{ckpt} already holds a training checkpoint", expected="an empty directory",
                                 received="state.json", fix="pass --resume to continue it, or another --out"))
    Xv_idx, vinv = np.unique(np.concatenate([vi, vj]), return_inverse=True)
    Xv = X[torch.as_tensor(Xv_idx, device=dev)]
    va, vb = torch.as_tensor(vinv[:vi.size], device=dev), torch.as_tensor(vinv[vi.size:], device=dev)

    def validate():
        enc.eval()
        with torch.no_grad():
            z = torch.cat([enc(Xv[s:s + 4096]).float() for s in range(0, Xv.shape[0], 4096)])
            pred = ((z[va] - z[vb]).square().sum(-1)).cpu().numpy().astype(np.float64)
        enc.train()
        return np.sqrt(pred) if p == 1 else pred

    stopped = "epochs"
    for epoch in range(st["epoch"] + 1, settings.epochs + 1):
        rng = np.random.default_rng([int(seed), epoch])
        batches = pack_batches(units, ti, tj, settings.batch_images, rng)
        t0, tot, tot_d, seen = time.time(), 0.0, 0.0, 0
        bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{settings.epochs}", file=sys.stderr,
                   disable=not progress, leave=False, unit="batch")
        for b, idx in enumerate(batches):
            if settings.schedule == "cosine":
                frac = (epoch - 1 + b / len(batches)) / settings.epochs
                lr = settings.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))
            else:
                lr = st["lr"]
            for g in opt.param_groups:
                g["lr"] = lr
            imgs, inv = np.unique(np.concatenate([ti[idx], tj[idx]]), return_inverse=True)
            x = X[torch.as_tensor(imgs, device=dev)]
            if ops:
                x = _augment(x, data.grid, bboxes[imgs], ops, settings.max_shift, rng)
            li = torch.as_tensor(inv[:idx.size], device=dev)
            lj = torch.as_tensor(inv[idx.size:], device=dev)
            y = torch.as_tensor(ty[idx], dtype=torch.float32, device=dev)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                z = enc(x)
                logits = dec(z) if settings.recon_weight > 0 else None
            loss, parts = loss_fn(z, logits, x, li, lj, y)
            if not torch.isfinite(loss):
                bar.close()
                where = f"the last good checkpoint (epoch {st['epoch']}) is kept in {ckpt}" if ckpt else \
                    "no checkpoint directory was given"
                raise TrainingError(explain(f"training diverged at epoch {epoch}, batch {b + 1}",
                                            expected="finite losses", received=f"loss {float(loss.detach())}",
                                            fix=f"lower the learning rate (now {lr:g}) or check the cache; {where}"))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * idx.size
            tot_d += parts["distance"] * scale ** 2 * idx.size
            seen += idx.size
            bar.update(1)
            if b % 10 == 0:
                bar.set_postfix(loss=f"{tot / seen:.4g}", mse=f"{parts['distance'] * scale ** 2:.4g}")
        bar.close()
        train_s = time.time() - t0
        vm = regression_metrics(validate(), vy)
        improved = vm["mse"] < st["best_mse"]
        if improved:
            st.update(best_mse=vm["mse"], best_epoch=epoch, bad_epochs=0)
            best = {f"encoder.{k}": v.detach().clone() for k, v in enc.state_dict().items()}
            best.update({f"decoder.{k}": v.detach().clone() for k, v in dec.state_dict().items()})
        else:
            st["bad_epochs"] += 1
            if settings.schedule == "plateau" and st["bad_epochs"] % max(1, settings.lr_patience) == 0:
                st["lr"] = st["lr"] * 0.5
        rec = {"epoch": epoch, "train_loss": tot / max(seen, 1), "train_mse": tot_d / max(seen, 1),
               "val_mse": vm["mse"], "val_pearson": vm["pearson"],
               "val_relative_mse": vm["relative_mse"], "lr": lr, "batches": len(batches), "train_pairs": seen,
               "seconds": train_s, "pairs_per_s": seen / train_s, "best_epoch": st["best_epoch"]}
        st["epoch"] = epoch
        st["history"].append(rec)
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        if progress:
            print(f"epoch {epoch}: loss {rec['train_loss']:.4g}, val mse {vm['mse']:.4g}, r {vm['pearson']:.5f}, "
                  f"{rec['pairs_per_s']:.0f} pairs/s", file=sys.stderr)
        if ckpt is not None:
            from ._checkpoints import save_checkpoint

            groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                      for g in opt.state_dict()["param_groups"]]
            save_checkpoint(ckpt, epoch, _state_tensors(enc, dec, best, opt),
                            {"ident": ident, "train_state": st, "param_groups": groups})
        if settings.patience and st["bad_epochs"] >= settings.patience:
            stopped = "early stopping"
            break
    # final model: best weights on validation
    enc.load_state_dict({k[8:]: v for k, v in best.items() if k.startswith("encoder.")})
    dec.load_state_dict({k[8:]: v for k, v in best.items() if k.startswith("decoder.")})
    enc.eval()
    dec.eval()
    val_pred = validate()
    enc.eval()
    train_images = np.unique(np.concatenate([ti, tj]))
    with torch.no_grad():
        def embed_rows(rows):
            return torch.cat([enc(X[torch.as_tensor(rows[s:s + 4096], device=dev)]).float()
                              for s in range(0, rows.size, 4096)])

        # conformal calibration on pairs that played no part in training or model selection
        if cal_mask.any():
            ci, cj, cal_y = table.i[cal_mask], table.j[cal_mask], table.value[cal_mask]
            rows, inv = np.unique(np.concatenate([ci, cj]), return_inverse=True)
            z = embed_rows(rows)
            a, b = torch.as_tensor(inv[:ci.size], device=dev), torch.as_tensor(inv[ci.size:], device=dev)
            cal_pred = (z[a] - z[b]).square().sum(-1).cpu().numpy().astype(np.float64)
            cal_pred = np.sqrt(cal_pred) if p == 1 else cal_pred
            cal_source = "held-out calibration pairs (not used for training or model selection)"
        else:
            cal_pred, cal_y = val_pred, vy
            cal_source = "validation pairs (also used for early stopping: too few held-out images to split)"
        # reconstruction errors of held-out images: the out-of-distribution threshold is that of unseen inputs
        recon = []
        for s in range(0, val_images.size, 4096):
            xb = X[torch.as_tensor(val_images[s:s + 4096], device=dev)]
            recon.append(loss_fn.reconstruction.per_row(dec(enc(xb)), xb).cpu().numpy())
    vm = regression_metrics(val_pred, vy)
    info = {"dataset_fingerprint": cache.fingerprint, "cache_fingerprint": pairs_digest,
            "dataset": cache.manifest.get("dataset", {}) | {"weights": None},
            "ground_cost": cache.manifest.get("ground_cost"), "cache_path": str(cache.path),
            "training": {"settings": settings.to_dict(), "seed": int(seed), "device": str(dev),
                         "epochs_run": st["epoch"], "best_epoch": st["best_epoch"], "stopped": stopped,
                         "train_pairs": n_tr, "val_pairs": n_va, "calibration_pairs": int(cal_mask.sum()),
                         "calibration_source": cal_source,
                         "dropped_pairs": len(table) - n_tr - n_va - int(cal_mask.sum()),
                         "train_images": int(train_images.size), "val_images": int(val_images.size),
                         "units": len(units), "target_scale": scale, "wall_seconds": time.time() - t_start,
                         "threads": torch.get_num_threads(),
                         "validation": vm, "history": st["history"]},
            "versions": _versions()}
    info["dataset"].pop("weights")
    calib = {"val_pred": cal_pred, "val_target": cal_y.astype(np.float64),
             "train_recon": np.concatenate(recon).astype(np.float64), "train_images": train_images.astype(np.int64)}
    return WassersteinEmbedding(enc.cpu(), dec.cpu(), config=cfg, p=p, grid=data.grid, coords=data.coords,
                                cost=data.cost, info=info, calibration=calib, device=str(dev))
