"""``wassembed demo``: the whole pipeline on one dataset, timed, with a report folder.

On scikit-learn's bundled digits (1,797 images of 8×8, no download) by default, or any file
:func:`wassembed.data.load_dataset` reads (``--data PATH``, e.g. MNIST IDX files):

1. **precompute** exact :math:`W_2^2` (POT's network simplex) for pairs among the *training images*
   (``0:1400`` for digits; the first 78 % otherwise) and for pairs among the *test images* (the rest);
2. **train** the encoder/decoder on the training cache alone (its own validation pairs, of training-range
   images held out by the trainer, give the early stopping and the conformal calibration);
3. **evaluate** on the test pairs, whose images were never seen in training: Pearson r, MSE, relative
   MSE, errors, and the coverage of conformal intervals;
4. **serve**: the measured speed of ``distance`` and ``cdist`` against exact POT (``ot.emd2``) in the same
   run, kNN with exact re-ranking (checked against brute force), class barycenters next to POT's entropic
   barycenters, an interpolation and principal directions.

It prints a results table and writes ``OUT/``: ``report.html`` and ``report.md`` (figures with captions and
the numbers), ``results.json``, the PNG figures, the trained model (``model/``, loadable with
``wassembed.load``), the two caches and the training log (``checkpoints/train_log.jsonl``).

The run is a sequence of named steps, each returning the numbers it measured (and the arrays its figure
draws): :mod:`~wassembed.demo._fit` (precompute, train, evaluate, conformal coverage, OOD check),
:mod:`~wassembed.demo._serving` (speed, kNN) and :mod:`~wassembed.demo._geometry` (barycenters,
interpolation, principal directions, model file check). The words are built from those numbers in
:mod:`~wassembed.demo._text` (table, intro, notes) and :mod:`~wassembed.demo._captions` (figures), the
figures drawn by :mod:`~wassembed.demo._figures` with :mod:`wassembed.demo.plots`; this module only chains them.

Only the public API is used (``wassembed.load_dataset``, ``precompute``, ``DistanceCache``, ``ExactSolver``,
``train``, ``load``, ``wassembed.serve.evaluate``, the model's methods, ``wassembed.metrics``): the steps double
as an example.
Heavy modules (torch, POT, matplotlib) are imported inside the functions; ``import wassembed.demo`` stays
light for the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._validation import check_pos_int
from . import _figures as figures
from ._fit import (
    Trained,
    UnseenPairs,
    conformal_coverage,
    evaluate_unseen,
    ood_check,
    precompute_caches,
    train_model,
)
from ._geometry import class_barycenters, interpolation, model_file_check, principal_directions
from ._serving import knn_accuracy, knn_search, serving_speed
from ._setup import DemoSetup, Stopwatch, header_numbers, prepare, say
from ._text import done_message, format_results, intro, notes, report_title, step_message, table_rows

__all__ = ["run_demo"]


def run_demo(data="digits", out="demo-output", *, seed: int = 0, device: str = "auto", tiny: bool = False,
             train_pairs: int | None = None, epochs: int | None = None, workers: int | None = None,
             threads: int | None = 1, progress: bool = True, echo=print) -> dict:
    """Run the demo pipeline and write its report folder.

    Parameters
    ----------
    data : str or path
        ``"digits"`` (default) or a data file readable by :func:`wassembed.data.load_dataset`.
    out : str or path
        Report folder (created; files of an earlier demo there are replaced, its caches reused).
    seed : int
        Seeds the pair plans, the training and the picks of examples.
    device : {"auto", "cpu", "cuda"}
        Where the network trains and serves.
    tiny : bool
        A few-second version (small sizes, 2 epochs) for tests; its numbers mean little.
    train_pairs, epochs : int, optional
        Override the default sizes (:func:`demo_sizes`).
    workers : int, optional
        Processes for the exact precompute (default: all cores).
    threads : int or None
        torch CPU threads while the demo runs (restored afterwards). The default 1 is the fastest for these
        small networks on a small or shared CPU (measured on a loaded 2-core machine: 3 epochs in 5.5 s with
        1 thread, 22 s with 2); ``None`` keeps torch's setting.
    progress : bool
        Progress bars on stderr.
    echo : callable or None
        Where the step messages and the final table go (``print`` by default; ``None``: silent).

    Returns
    -------
    dict
        Every number of the report (also in ``OUT/results.json``), plus ``table`` (the printed text) and
        ``files`` (paths written).
    """
    import torch

    if threads is not None:
        check_pos_int("threads", threads, example=1)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _pipeline(data, Path(out), seed=seed, device=device, tiny=tiny, train_pairs=train_pairs,
                         epochs=epochs, workers=workers, progress=progress, echo=echo)
    finally:
        torch.set_num_threads(before)


def _pipeline(data, out: Path, *, seed, device, tiny, train_pairs, epochs, workers, progress, echo) -> dict:
    """The named steps in order; each step's numbers go into the results, its figure into the report."""
    clock = Stopwatch()
    setup = prepare(data, out, seed=seed, device=device, tiny=tiny, train_pairs=train_pairs, epochs=epochs,
                    workers=workers, progress=progress)
    R = header_numbers(setup)
    clock.start_laps()
    trained, pairs, figs = _fit_steps(setup, R, clock, echo)
    figs += _serve_steps(setup, R, clock, echo, trained, pairs)
    return _finish(setup, R, figs, clock, echo, trained.model_dir)


def _message(setup: DemoSetup, step: str) -> str:
    return step_message(step, setup.sizes, setup.train_range, setup.test_range, setup.device)


def _fit_steps(setup: DemoSetup, R: dict, clock: Stopwatch, echo) -> tuple[Trained, UnseenPairs, list]:
    """Steps 1–3: precompute the two caches, train, evaluate on unseen pairs (with conformal coverage).

    Returns the trained model (:class:`~wassembed.demo._fit.Trained`), the test pairs and the figures.
    """
    say(echo, _message(setup, "precompute"))
    R["precompute"] = precompute_caches(setup)
    clock.lap("precompute")

    say(echo, _message(setup, "train"))
    trained = train_model(setup)
    R["training"] = trained.numbers
    figs = [figures.training_figure(setup, trained)]
    clock.lap("train")

    say(echo, _message(setup, "evaluate"))
    model = trained.model
    ev = evaluate_unseen(setup, model)
    R["test"] = ev.numbers
    R["conformal"] = conformal_coverage(setup, model, ev.pairs)
    R["ood"] = ood_check(setup, model)
    figs += [figures.scatter_figure(setup, ev),
             figures.errors_figure(setup, ev, R["conformal"], R["training"]["validation"])]
    clock.lap("evaluate")
    return trained, ev.pairs, figs


def _serve_steps(setup: DemoSetup, R: dict, clock: Stopwatch, echo, trained: Trained, pairs: UnseenPairs) -> list:
    """Step 4: speed against exact POT, kNN against brute force, barycenters, interpolation, directions."""
    say(echo, _message(setup, "serve"))
    model, rng = trained.model, np.random.default_rng(setup.seed)  # one stream: speed's picks, then kNN's
    R["speed"] = serving_speed(setup, model, pairs, rng)
    clock.lap("speed")

    nb = knn_search(setup, model, rng)
    R["knn"] = nb.numbers
    if setup.has_labels:
        R["knn"]["test_accuracy_5nn_embedding"] = knn_accuracy(setup, model)
    figs = [figures.knn_figure(setup, nb)]
    clock.lap("knn")

    bary = class_barycenters(setup, model)
    R["barycenters"] = bary.numbers
    figs.append(figures.barycenter_figure(setup, bary))
    clock.lap("barycenters")

    figs.append(figures.interpolation_figure(setup, interpolation(setup, model)))
    clock.lap("interpolation")

    pd = principal_directions(setup, model)
    R["principal_directions"] = pd.numbers
    figs.append(figures.principal_figure(setup, pd))
    clock.lap("principal_directions")

    R["model_file_check_max_abs_diff"] = model_file_check(setup, model, trained.model_dir)
    clock.lap("model_file_check")
    return figs


def _finish(setup: DemoSetup, R: dict, figs: list, clock: Stopwatch, echo, model_dir) -> dict:
    """Add the timings and the table, write the report and ``results.json``, print the table."""
    from ._report import to_jsonable, write_report

    out = setup.out
    R["step_seconds"] = clock.wall
    R["step_cpu_seconds"] = clock.cpu  # this process only (the exact precompute runs in worker processes)
    R["total_seconds"] = clock.total()
    R["table"] = format_results(R)
    paths = write_report(out, title=report_title(setup.hs.name), rows=table_rows(R), figures=figs,
                         numbers=None, intro=intro(R), notes=notes(R))
    files = [out / f.file for f in figs]
    R["files"] = [str(p) for p in files] + [str(paths["html"]), str(paths["markdown"]), str(out / "results.json")]
    (out / "results.json").write_text(json.dumps(to_jsonable(R), indent=2) + "\n")
    say(echo, R["table"])
    say(echo, done_message(paths["html"], len(files), model_dir))
    return R
