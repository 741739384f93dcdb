"""``wassembed bench threads``: training throughput against torch's thread count, on an idle and a loaded CPU.

For each preset the bench builds a small cache in a temporary directory — the first ``images`` images of
``data`` (the 8×8 digits by default) for the grid presets (``fast``, ``paper``, ``mlp``), 3-D point clouds
(:func:`~wassembed.data.make_shapes`) for the ``set`` preset, ``pairs`` random exact pairs and the per-image LOT
targets, as ``wassembed precompute`` makes by default — then trains it with each thread setting:

* **default**: what :func:`wassembed.train` and ``wassembed train`` use when no thread count is given;
* **1 thread**;
* **all cores**: as many threads as this process may use (torch's own default on most machines).

Each training run is short and fixed (``distill_epochs`` distillation epochs, ``epochs`` pair epochs, no early
stopping), on the CPU, seeded, and the settings alternate within each repeat. Two figures per run: the
throughput of the pair epochs (training pairs per second of their training steps, as the epoch lines print it,
the median over the epochs) and the wall seconds of the whole :func:`~wassembed.train` call (distillation,
pair epochs, validation, calibration). A table row gives the median over ``repeats``.

**Loaded** repeats every run with one busy-loop process per usable core started by the bench beside it (and
ended afterwards): a reproducible stand-in for a machine busy with other jobs. "Idle" means no load started by
the bench; the 1-minute load average before each block is reported, since other jobs may be running.
torch's thread count is restored after every run.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from ..data import load_dataset, make_shapes
from ..errors import InputError, explain, param
from ..exact import precompute
from ..exact._executors import default_workers
from ..learn._trainer import DEFAULT_CPU_THREADS as DEFAULT_THREADS
from ._hardware import hardware

__all__ = ["DEFAULT_THREADS", "PRESETS", "format_threads_benchmark", "run_threads_benchmark"]

#: presets measured by default: the three grid presets and the point-cloud preset
PRESETS = ("fast", "paper", "mlp", "set")
CONDITIONS = ("idle", "loaded")


@contextlib.contextmanager
def busy_load(processes: int):
    """``processes`` busy-loop Python processes for the duration of the block (killed and reaped on exit)."""
    procs = []
    try:
        for _ in range(processes):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)  # running before the first measurement
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _caches(root: Path, data, presets, *, images: int, pairs: int, seed: int) -> dict:
    """preset -> cache path: one cache of images for the grid presets, one of point clouds for ``set`` (solved in
    this process: small caches, no worker processes to start)."""
    out = {}
    if any(p != "set" for p in presets):
        hs = load_dataset(data)
        if hs.grid is None:
            raise InputError(explain("bench threads needs images on a grid", expected="MNIST IDX, .npy images or "
                                     "'digits'", received=f"{data} (histograms without a grid)",
                                     fix=f"pass {param('data', repr('digits'))} or an image file"))
        n = min(images, hs.n)
        precompute(hs, root / "images", pairs=pairs, images=f"0:{n}", seed=seed, workers=1, progress=False)
        out.update({p: root / "images" for p in presets if p != "set"})
    if "set" in presets:
        clouds = make_shapes(images, seed=seed, min_points=20, max_points=60)
        precompute(clouds, root / "clouds", pairs=pairs, seed=seed, workers=1, progress=False)
        out["set"] = root / "clouds"
    return out


def _run(cache: Path, preset: str, threads: int | None, *, epochs: int, distill_epochs: int, seed: int) -> dict:
    """One short training run on the CPU: pair-epoch throughput (median over epochs), wall seconds, threads."""
    import torch

    from ..learn import train

    before = torch.get_num_threads()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small caches: SmallDataWarning says so, as expected here
        model = train(cache, model="fast" if preset == "set" else preset, epochs=epochs,
                      distill_epochs=distill_epochs, patience=0, device="cpu", seed=seed, progress=False,
                      threads=threads)
    wall = time.perf_counter() - t0
    if torch.get_num_threads() != before:  # train() restores torch's setting: a bench must not change it
        raise RuntimeError(f"torch threads changed from {before} to {torch.get_num_threads()}")
    info = model.info["training"]
    rates = [r["pairs_per_s"] for r in info["history"]]
    return {"pairs_per_s": statistics.median(rates), "wall_s": wall, "threads": info["threads"]}


def _settings(cores: int) -> list[tuple[str, int | None]]:
    return [("default", None), ("1 thread", 1), (f"all cores ({cores})", cores)]


def _block(caches: dict, presets, cores: int, *, repeats: int, **kw) -> list[dict]:
    """Rows of one condition: every preset × setting, ``repeats`` times (settings alternating)."""
    rows = []
    for preset in presets:
        settings = _settings(cores)
        runs: dict = {name: [] for name, _ in settings}
        for r in range(repeats):
            order = settings[r % len(settings):] + settings[:r % len(settings)]
            for name, threads in order:
                runs[name].append(_run(caches[preset], preset, threads, **kw))
        for name, _ in settings:
            got = runs[name]
            rows.append({"preset": preset, "setting": name, "threads": got[0]["threads"],
                         "pairs_per_s": statistics.median(g["pairs_per_s"] for g in got),
                         "wall_s": statistics.median(g["wall_s"] for g in got),
                         "runs_pairs_per_s": [round(g["pairs_per_s"]) for g in got],
                         "runs_wall_s": [round(g["wall_s"], 2) for g in got]})
    return rows


def run_threads_benchmark(data="digits", *, presets=PRESETS, conditions=CONDITIONS, images: int = 1400,
                          pairs: int = 3000, epochs: int = 3, distill_epochs: int = 10, repeats: int = 1,
                          seed: int = 0, log=None) -> dict:
    """Training throughput with the default thread count, 1 thread and all cores, idle and loaded.

    Parameters
    ----------
    data : str or path
        Images for the grid presets (``load_dataset``); the ``set`` preset trains on synthetic 3-D clouds.
    presets : sequence of str
        Among ``"fast"``, ``"paper"``, ``"mlp"``, ``"set"``.
    conditions : sequence of str
        Among ``"idle"`` (no load started) and ``"loaded"`` (one busy-loop process per core beside training).
    images, pairs : int
        Images (or clouds) and exact pairs of each cache.
    epochs, distill_epochs : int
        Pair epochs and distillation epochs of every training run.
    repeats : int
        Runs per preset, setting and condition (the table gives medians).
    seed : int
    log : callable, optional
        Receives one line per finished block (progress on stderr for the command line).

    Returns
    -------
    dict
        ``rows`` (one per condition, preset and setting: ``pairs_per_s``, ``wall_s``, ``threads``, the runs),
        ``loads`` (1-minute load average before each condition's block), the sizes, ``cores``,
        ``torch_default_threads`` (torch's own setting in this process) and ``hardware``.
    """
    import torch

    bad = [p for p in presets if p not in PRESETS] + [c for c in conditions if c not in CONDITIONS]
    if bad or not presets or not conditions:
        raise InputError(explain("bad presets or conditions", expected=f"presets among {', '.join(PRESETS)}, "
                                 f"conditions among {', '.join(CONDITIONS)}", received=repr(bad or "none"),
                                 fix="e.g. presets=('fast', 'set'), conditions=('idle', 'loaded')"))
    cores = default_workers()
    kw = dict(epochs=epochs, distill_epochs=distill_epochs, seed=seed)
    with tempfile.TemporaryDirectory(prefix="wassembed-bench-threads-") as tmp:
        caches = _caches(Path(tmp), data, presets, images=images, pairs=pairs, seed=seed)
        for preset in dict.fromkeys(presets):  # warm-up: the first training run of a process pays one-off costs
            _run(caches[preset], preset, 1, **dict(kw, epochs=1, distill_epochs=1))
        rows, loads = [], {}
        for condition in conditions:
            with busy_load(cores if condition == "loaded" else 0):
                loads[condition] = os.getloadavg()[0]
                block = _block(caches, presets, cores, repeats=repeats, **kw)
            rows += [dict(r, condition=condition) for r in block]
            if log:
                log(f"bench threads: {condition} done")
    return {"data": str(data), "presets": list(presets), "images": images, "pairs": pairs, "epochs": epochs,
            "distill_epochs": distill_epochs, "repeats": repeats, "cores": cores,
            "torch_default_threads": torch.get_num_threads(), "rows": rows, "loads": loads,
            "hardware": hardware()}


def format_threads_benchmark(r: dict) -> str:
    """The table of :func:`run_threads_benchmark` (markdown), speeds relative to 1 thread in the same block."""
    loads = "; ".join(f"{c}: {v:.2f}" for c, v in r["loads"].items())
    lines = [f"training on the CPU: {r['pairs']} exact pairs per cache, {r['distill_epochs']} distillation + "
             f"{r['epochs']} pair epochs per run, median of {r['repeats']} run(s); data {r['data']} (the set "
             f"preset: 3-D shapes); {r['hardware']}; torch's own default here: {r['torch_default_threads']} "
             f"threads; loaded = one busy-loop process per core beside training; load average (1 min) before "
             f"each block: {loads}", "",
             "| condition | preset | threads | pair epochs: pairs/s | vs 1 thread | train() wall s | vs 1 thread |",
             "|---|---|---|---:|---:|---:|---:|"]
    one = {(x["condition"], x["preset"]): x for x in r["rows"] if x["setting"] == "1 thread"}
    for x in r["rows"]:
        ref = one[(x["condition"], x["preset"])]
        name = x["setting"] if x["setting"] != "default" else f"default ({x['threads']})"
        lines.append(f"| {x['condition']} | {x['preset']} | {name} | {x['pairs_per_s']:,.0f} | "
                     f"{x['pairs_per_s'] / ref['pairs_per_s']:.2f}× | {x['wall_s']:.1f} | "
                     f"{ref['wall_s'] / x['wall_s']:.2f}× |")
    return "\n".join(lines)
