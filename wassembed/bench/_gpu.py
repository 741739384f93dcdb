"""``wassembed bench gpu``: the serving path at the device's speed, in one table.

:func:`run_gpu_benchmark` times, in one run on one device (CUDA, or the CPU with smaller sizes so that the
same table can be checked anywhere), on uint8 images (per image rescaled to 0–255; MNIST's own pixels):

* the **encoder alone** on float32 histograms already on the device, in float32 and under bfloat16 autocast
  (the ceiling of every row below);
* ``embed`` from uint8 images, numpy in → numpy out and device tensors in → device tensors out;
* paired ``distance`` from raw images (both inputs of every pair validated, normalised and encoded), numpy
  and device tensors;
* ``cdist`` ``m × m`` from raw images: device tensors in and out (float32 and ``precision="bf16"``), numpy
  in and out, and ``torch.cdist`` on the embeddings as a reference;
* parity: the largest difference between the device's distances and the CPU's on the same pairs, between
  the numpy and the tensor paths, and between bf16 and float32 ``cdist`` (relative to the mean distance).

Each timed row is the best of ``repeats`` calls after one warm-up call (CUDA: synchronised before and after),
with the fraction of its time spent outside the encoder's forward passes (input transfer, normalisation and
validation, distances, output transfer): one minus the encoder-alone time of its images over its time.

A second table times **training** on the same device: pair epochs of the trainer's own loop
(:func:`wassembed.learn._epoch.run_epoch`: batches laid out on the device once per epoch, one Adam step per
batch, losses read every few dozen steps) on random pairs of the images with synthetic targets (the squared
distance between the images' centroids: the speed does not depend on them), a fresh network of the model's
architecture, for a few batch sizes: seconds per epoch (the best of ``train_epochs`` after a warm-up epoch),
pairs per second and the number of Python steps per epoch. Accuracy per epoch is measured by the learning
benchmarks.
"""

from __future__ import annotations

import time

import numpy as np

from .._validation import check_int, check_pos_int
from ..errors import InputError, explain
from ._hardware import hardware

__all__ = ["DEFAULT_SIZES", "format_gpu_benchmark", "run_gpu_benchmark"]

#: default sizes per device type: images embedded, pairs, cdist side
DEFAULT_SIZES = {"cuda": {"n_embed": 1_000_000, "n_pairs": 1_000_000, "matrix_size": 16_384},
                 "cpu": {"n_embed": 4_000, "n_pairs": 2_000, "matrix_size": 1_000}}
#: default training rows per device type: pairs per epoch, images per batch of each row
DEFAULT_TRAINING = {"cuda": {"train_pairs": 262_144, "train_batch_images": (128, 1024, 4096)},
                    "cpu": {"train_pairs": 2_048, "train_batch_images": (128, 1024)}}


def _uint8_images(images) -> np.ndarray:
    """``(n, H, W)`` uint8 images: uint8 arrays as they are, other images rescaled to a maximum of 255."""
    from ..data import HISTOGRAMS, DataSet, as_dataset

    X = as_dataset(images, "images", kind=HISTOGRAMS).images() if isinstance(images, DataSet) else np.asarray(images)
    if X.ndim != 3:
        raise InputError(explain("the benchmark needs images", expected="an array (n, H, W) or a HistogramSet "
                                 "with a grid", received=f"shape {X.shape}", fix="load MNIST with load_dataset"))
    if X.dtype == np.uint8:
        return X
    peak = X.reshape(X.shape[0], -1).max(axis=1)[:, None, None]
    return np.rint(255.0 * X / np.where(peak > 0, peak, 1)).astype(np.uint8)


def _model(model, grid, dev):
    from ..nn import ModelConfig, build_decoder, build_encoder
    from ..serve import WassersteinEmbedding, load

    if isinstance(model, WassersteinEmbedding):
        return getattr(model.config, "name", "model"), model.to(dev)
    if model is None or model in ("paper", "fast", "mlp"):
        cfg = ModelConfig.preset(model or "fast", grid=grid)
        emb = WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2,
                                   grid=grid, device=dev)
        return f"{model or 'fast'} (untrained)", emb
    emb = load(model, device=dev)
    return f"{getattr(emb.config, 'name', 'model')} ({model})", emb


class _Timer:
    """Best of ``repeats`` calls after a warm-up, synchronising CUDA around each."""

    def __init__(self, dev, repeats: int):
        import torch

        self.sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
        self.repeats = repeats

    def __call__(self, fn):
        fn()
        best = float("inf")
        for _ in range(self.repeats):
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            best = min(best, time.perf_counter() - t)
        return best


def _encoder_rows(emb, W, dev, batch_size, timer):
    """The encoder alone on the float32 histograms ``W`` already on ``dev``: float32 and bf16 autocast."""
    import torch

    def run(low):
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=low):
            for s in range(0, W.shape[0], batch_size):
                emb.encoder(W[s:s + batch_size])

    n = W.shape[0]
    return [_row("encoder alone, fp32", "float32 histograms on the device", n, "images", timer(lambda: run(False))),
            _row("encoder alone, bf16 autocast", "float32 histograms on the device", n, "images",
                 timer(lambda: run(True)))]


def _row(what, mode, n, unit, seconds, note="", encoded=0):
    """One timed row: ``n`` results in ``seconds``, ``encoded`` images through the encoder on the way."""
    return {"what": what, "mode": mode, "n": int(n), "unit": unit, "seconds": float(seconds),
            "rate": float(n / seconds) if seconds > 0 else float("inf"), "note": note, "encoded": int(encoded)}


def _outside(rows) -> None:
    """Each row's fraction of time outside the encoder's forward passes (``outside_encoder``): one minus the
    time the encoder alone (first row) takes for the row's images, over the row's time; None without images."""
    per_image = rows[0]["seconds"] / rows[0]["n"]
    for r in rows:
        r["outside_encoder"] = max(0.0, 1.0 - r["encoded"] * per_image / r["seconds"]) if r["encoded"] else None


def _serving_rows(emb, X, sizes, dev, batch_size, timer, rng):
    """embed, distance and cdist rows (numpy and device tensors) and the arrays the parity rows reuse."""
    import torch

    n, m = sizes["n_embed"], sizes["matrix_size"]
    E = X[rng.integers(0, X.shape[0], n)]
    P, Q = (X[rng.integers(0, X.shape[0], sizes["n_pairs"])] for _ in range(2))
    A, B = X[rng.integers(0, X.shape[0], m)], X[rng.integers(0, X.shape[0], m)]
    tE, tP, tQ, tA, tB = (torch.from_numpy(a).to(dev) for a in (E, P, Q, A, B))
    kw = {"batch_size": batch_size, "device": dev}
    on = "CUDA" if dev.type == "cuda" else "CPU"
    npairs = P.shape[0]
    rows = [_row("embed", "uint8 numpy in, numpy out", n, "images", timer(lambda: emb.embed(E, **kw)), encoded=n),
            _row("embed", f"uint8 {on} tensors in, out", n, "images", timer(lambda: emb.embed(tE, **kw)), encoded=n),
            _row("distance", "uint8 numpy in, numpy out", npairs, "pairs",
                 timer(lambda: emb.distance(P, Q, warn_ood=False, **kw)), encoded=2 * npairs),
            _row("distance", f"uint8 {on} tensors in, out", npairs, "pairs",
                 timer(lambda: emb.distance(tP, tQ, warn_ood=False, **kw)), encoded=2 * npairs)]
    cd = {}
    for key, label, args in [("fp32", f"uint8 {on} tensors in, out", (tA, tB)),
                             ("numpy", "uint8 numpy in, numpy out", (A, B)),
                             ("bf16", f"uint8 {on} tensors in, out, precision='bf16'", (tA, tB))]:
        prec = "bf16" if key == "bf16" else "fp32"
        call = lambda key=key, args=args, prec=prec: cd.__setitem__(key, emb.cdist(*args, precision=prec, **kw))
        rows.append(_row(f"cdist {m}×{m}", label, m * m, "distances", timer(call), note="float64 out",
                         encoded=2 * m))
    ZA, ZB = emb.embed(tA, **kw), emb.embed(tB, **kw)
    rows.append(_row(f"torch.cdist {m}×{m}", "float32 embeddings on the device (reference)", m * m, "distances",
                     timer(lambda: torch.cdist(ZA, ZB)), note="float32 out, no encoder"))
    return rows, {"P": P, "Q": Q, "tP": tP, "tQ": tQ, "cdist": cd}


def _parity(emb, arrays, dev, parity_pairs, batch_size):
    """Largest differences: device vs CPU distances, numpy vs tensor path, bf16 vs float32 cdist."""
    P, Q = arrays["P"][:parity_pairs], arrays["Q"][:parity_pairs]
    on_dev = emb.distance(P, Q, warn_ood=False, batch_size=batch_size, device=dev)
    on_cpu = emb.distance(P, Q, warn_ood=False, device="cpu")
    tensors = emb.distance(arrays["tP"][:parity_pairs], arrays["tQ"][:parity_pairs], warn_ood=False,
                           batch_size=batch_size, device=dev).cpu().numpy()
    fp32, bf16, host = arrays["cdist"]["fp32"], arrays["cdist"]["bf16"], arrays["cdist"]["numpy"]
    mean = float(fp32.mean())
    return {"pairs": int(P.shape[0]), "mean_distance": float(on_cpu.mean()),
            "device_vs_cpu_max_abs": float(np.max(np.abs(on_dev - on_cpu))),
            "numpy_vs_tensor_max_abs": max(float(np.max(np.abs(on_dev - tensors))),
                                           float(np.max(np.abs(fp32.cpu().numpy() - host)))),
            "cdist_mean": mean, "bf16_vs_fp32_max_abs": float((bf16 - fp32).abs().max()),
            "bf16_vs_fp32_mean_abs": float((bf16 - fp32).abs().mean())}


def _training_rows(X, emb, dev, train: dict, epochs: int, seed: int) -> dict:
    """Pair epochs of the trainer's loop on random pairs of ``X`` (synthetic targets), one row per batch size."""
    import torch

    from ..exact import PairTable
    from ..learn import TrainSettings
    from ..learn._epoch import EpochPlan, run_epoch
    from ..learn._losses import DistanceLoss, DWELoss
    from ..learn._state import new_state
    from ..nn import ModelConfig

    rng = np.random.default_rng([seed, 0x7A1])
    n = min(X.shape[0], 2 * train["train_pairs"])
    i, j = rng.integers(0, n, (2, train["train_pairs"]))
    i, j = np.minimum(i, j)[i != j], np.maximum(i, j)[i != j]
    H, W = X.shape[1:]
    w = X[:n].reshape(n, -1).astype(np.float64)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
    rows, cols = np.divmod(np.arange(H * W), W)
    centroid = np.stack([w @ rows, w @ cols], axis=1)
    pairs = PairTable(i, j, ((centroid[i] - centroid[j]) ** 2).sum(1) + 1.0)
    Xd = torch.as_tensor(w, dtype=torch.float32, device=dev)
    cfg = emb.config if isinstance(emb.config, ModelConfig) else ModelConfig.preset("fast", grid=(H, W))
    loss = DWELoss(DistanceLoss(p=2, scale=float(pairs.value.mean())), recon_weight=1.0)
    out = []
    for b in train["train_batch_images"]:
        settings = TrainSettings(epochs=epochs + 1, batch_images=b, distill_epochs=0)
        plan = EpochPlan(settings=settings, X=Xd, train=pairs, units=list(np.arange(len(pairs))[:, None]),
                         loss=loss, amp=dev.type == "cuda", progress=False, checkpoint_dir=None)
        state = new_state(cfg, settings, seed, dev)
        records = [run_epoch(state, plan, e) for e in range(1, epochs + 2)][1:]  # the first warms up
        best, done = min(r["seconds"] for r in records), int(records[0]["train_pairs"])
        out.append({"batch_images": int(b), "steps": int(records[0]["batches"]), "pairs": done,
                    "seconds": float(best), "rate": float(done / best), "loss": float(records[-1]["train_loss"])})
    return {"model": getattr(cfg, "name", "model"), "images": int(n), "pairs": len(pairs), "epochs": int(epochs),
            "amp": dev.type == "cuda", "rows": out}


def run_gpu_benchmark(images, *, device: str = "auto", model=None, n_embed: int | None = None,
                      n_pairs: int | None = None, matrix_size: int | None = None, batch_size: int | None = None,
                      parity_pairs: int = 4096, repeats: int = 3, threads: int | None = None, seed: int = 0,
                      train_pairs: int | None = None, train_batch_images=None, train_epochs: int = 2,
                      log=None) -> dict:
    """Time the serving path and training on one device (see the module docstring).

    Parameters
    ----------
    images : ndarray (n, H, W) or HistogramSet
        Images (uint8 kept as they are; others rescaled to 0–255 per image), drawn with replacement.
    device : "auto", "cuda", "cuda:N" or "cpu"
        Where the model runs; the default sizes are :data:`DEFAULT_SIZES` of its type.
    model : WassersteinEmbedding, model path, preset name or None (an untrained ``fast`` model: speed only)
    n_embed, n_pairs, matrix_size : int, optional
        Images embedded, pairs of the paired distance, side of the ``cdist`` matrix.
    batch_size : int, optional
        Inputs per forward pass (default: the model's default for the device).
    parity_pairs : int
        Pairs of the device-vs-CPU parity check.
    repeats : int
        Timed calls per row after a warm-up (best kept).
    threads : int, optional
        ``torch.set_num_threads`` during the run (restored after); None: 1 on the CPU, unchanged on CUDA.
    train_pairs : int, optional
        Random pairs of the training rows (default: :data:`DEFAULT_TRAINING` of the device type).
    train_batch_images : sequence of int, optional
        Images per batch of each training row (at least 4 each; default: :data:`DEFAULT_TRAINING`).
    train_epochs : int
        Timed epochs per training row, after a warm-up epoch (best kept).

    Returns
    -------
    dict with ``environment``, ``settings``, ``rows``, ``parity`` and ``training`` (``rows``: one per batch
    size, with ``steps`` per epoch, ``pairs``, ``seconds`` per epoch and ``rate`` in pairs per second).
    """
    import torch

    from ..nn import resolve_device
    from ..serve._inputs import batch_size as default_batch

    dev, say = resolve_device(device), log or (lambda msg: None)
    sizes = {**DEFAULT_SIZES["cuda" if dev.type == "cuda" else "cpu"],
             **{k: check_pos_int(k, v) for k, v in (("n_embed", n_embed), ("n_pairs", n_pairs),
                                                    ("matrix_size", matrix_size)) if v is not None}}
    repeats, parity_pairs = check_pos_int("repeats", repeats), check_pos_int("parity_pairs", parity_pairs)
    train = dict(DEFAULT_TRAINING["cuda" if dev.type == "cuda" else "cpu"])
    if train_pairs is not None:
        train["train_pairs"] = check_pos_int("train_pairs", train_pairs)
    if train_batch_images is not None:
        train["train_batch_images"] = tuple(check_int("train_batch_images", b, minimum=4, example=1024)
                                            for b in train_batch_images)
    train_epochs = check_pos_int("train_epochs", train_epochs)
    X = _uint8_images(images)
    old_threads = torch.get_num_threads()
    threads = 1 if threads is None and dev.type == "cpu" else threads
    if threads is not None:
        torch.set_num_threads(check_pos_int("threads", threads))
    try:
        name, emb = _model(model, (int(X.shape[1]), int(X.shape[2])), dev)
        bs = default_batch(batch_size, dev)
        timer, rng = _Timer(dev, repeats), np.random.default_rng(seed)
        say(f"encoder alone on {dev}")
        Xd = torch.from_numpy(X[rng.integers(0, X.shape[0], sizes["n_embed"])]).to(dev)
        W = Xd.reshape(Xd.shape[0], -1).float()
        W /= W.sum(1, keepdim=True)
        del Xd
        rows = _encoder_rows(emb, W, dev, bs, timer)
        del W
        say("embed, distance, cdist")
        more, arrays = _serving_rows(emb, X, sizes, dev, bs, timer, rng)
        say("parity")
        parity = _parity(emb, arrays, dev, min(parity_pairs, sizes["n_pairs"]), bs)
        _outside(rows + more)
        say(f"training: batches of {', '.join(map(str, train['train_batch_images']))} images")
        training = _training_rows(X, emb, dev, train, train_epochs, seed)
    finally:
        torch.set_num_threads(old_threads)
    env = {"hardware": hardware(), "device": str(dev), "torch": torch.__version__, "torch_threads":
           torch.get_num_threads() if threads is None else threads,
           "cuda": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None}
    return {"environment": env, "settings": {**sizes, "batch_size": bs, "repeats": repeats, "model": name,
                                             "grid": [int(X.shape[1]), int(X.shape[2])]},
            "rows": rows + more, "parity": parity, "training": training}


def format_gpu_benchmark(result: dict) -> str:
    """One markdown table of a :func:`run_gpu_benchmark` result, with its parity lines."""
    env, st, par = result["environment"], result["settings"], result["parity"]
    lines = [f"Device {env['device']}" + (f" ({env['cuda']})" if env.get("cuda") else "")
             + f"; {env['hardware']}; torch {env['torch']}, torch threads {env['torch_threads']}",
             f"Model {st['model']}, grid {st['grid'][0]}×{st['grid'][1]}, batch size {st['batch_size']}, best of "
             f"{st['repeats']} after a warm-up", "",
             "| what | inputs / outputs | n | per second | seconds | outside the encoder | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        out = "–" if r.get("outside_encoder") is None else f"{r['outside_encoder']:.1%}"
        lines.append(f"| {r['what']} | {r['mode']} | {r['n']:,} | {r['rate']:,.0f} {r['unit']} | "
                     f"{r['seconds']:.4f} | {out} | {r['note']} |")
    rel = lambda v, ref: f"{v:.3g} ({v / ref:.2e} of the mean)" if ref > 0 else f"{v:.3g}"
    vs_cpu = ("– (the device is the CPU)" if env["device"] == "cpu"
              else rel(par["device_vs_cpu_max_abs"], par["mean_distance"]))
    lines += ["", f"Parity on {par['pairs']:,} pairs (mean distance {par['mean_distance']:.4g}): device vs CPU max "
                  f"|Δ| {vs_cpu}; numpy vs tensor paths (distance, cdist) max |Δ| {par['numpy_vs_tensor_max_abs']:.3g}",
              f"cdist bf16 vs fp32 (mean distance {par['cdist_mean']:.4g}): max |Δ| "
              f"{rel(par['bf16_vs_fp32_max_abs'], par['cdist_mean'])}, mean |Δ| "
              f"{rel(par['bf16_vs_fp32_mean_abs'], par['cdist_mean'])}"]
    return "\n".join(lines + _training_table(result.get("training")))


def _training_table(tr: dict | None) -> list[str]:
    """The lines of the training table (none without training rows)."""
    if not tr:
        return []
    lines = ["", f"Training: a fresh {tr['model']} network, {tr['pairs']:,} random pairs of {tr['images']:,} images, "
                 f"synthetic targets{', bf16 autocast' if tr['amp'] else ''}; seconds per epoch: best of "
                 f"{tr['epochs']} after a warm-up epoch", "",
             "| training, batch images | pairs per step | Python steps per epoch | seconds per epoch "
             "| pairs per second |",
             "|---:|---:|---:|---:|---:|"]
    for r in tr["rows"]:
        lines.append(f"| {r['batch_images']:,} | {r['pairs'] / r['steps']:,.0f} | {r['steps']:,} | "
                     f"{r['seconds']:.4f} | {r['rate']:,.0f} |")
    return lines
