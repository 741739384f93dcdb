"""``wassembed bench exact|serve|dask|ood|gpu|index|clouds|threads``: speed and accuracy figures measured in one run.

``bench exact`` and ``bench dask`` measure the exact stage as ``wassembed precompute`` runs it (POT without
its torch backend, also in the workers they start); ``bench serve``, ``bench ood``, ``bench gpu`` and ``bench
threads`` need the learning stack.
"""

from __future__ import annotations

from pathlib import Path

import click

from .._deps import exact_stage_only
from ._common import echo_json, handle_errors, needs_learning_stack

#: the images every bench command reads: --data, or the environment variable (set it once per machine)
DATA_ENV = "WASSEMBED_BENCH_DATA"
_data = click.option("--data", envvar=DATA_ENV, show_envvar=True, required=True,
                     help="Images: an MNIST IDX file (as in docs/benchmarks.md), .npy/.npz images or 'digits'.")
#: the benchmark functions' parameter names for what these commands call otherwise (see handle_errors)
_WORDS = {"n_pairs": "--pairs", "n_speed_pairs": "--speed-pairs", "scaling_sizes": "--scaling"}
_count = click.IntRange(min=1)


@click.group()
def bench() -> None:
    """Benchmarks (speed and accuracy figures, measured in one run)."""


@bench.command("exact")
@_data
@click.option("--pairs", default=2000, show_default=True, type=int, help="Random pairs solved by each method.")
@click.option("--workers", default=None, type=int, help="Processes of the all-workers run [default: all cores].")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the pair draw.")
@click.option("--repeats", default=3, show_default=True, type=_count, help="Alternating rounds; best kept.")
@click.option("--tables", default="loop,solvers,end-to-end", show_default=True,
              help="Tables to measure: loop (naive ot.emd2 loop vs precompute), solvers (POT vs the grid path per "
                   "pair and per LOT solve), end-to-end (the default precompute, POT only vs the default path).")
@click.option("--also", "others", multiple=True, metavar="FILE",
              help="More images for the solvers and end-to-end tables, e.g. Fashion-MNIST (repeatable).")
@click.option("--sizes", default="56,64", show_default=True,
              help="Grid sides the solvers table resamples every data set to (comma-separated; '' for none).")
@click.option("--solver-pairs", default=300, show_default=True, type=_count,
              help="Pairs per data set in the solvers table at 28×28 (fewer at larger sizes).")
@click.option("--end-to-end-pairs", default=6000, show_default=True, type=_count,
              help="Pairs of the end-to-end precompute (plus one LOT solve per image of the plan).")
@click.option("--end-to-end-images", default="0:8000", show_default=True,
              help="Index range A:B the end-to-end pairs are drawn among.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_exact(data, pairs, workers, seed, repeats, tables, others, sizes, solver_pairs, end_to_end_pairs,
                end_to_end_images, as_json):
    """Naive ot.emd2 loop vs precompute; POT vs the grid path; the default precompute before and after."""
    exact_stage_only()
    from ..bench import format_exact_benchmark, run_exact_benchmark
    from ..bench._solvers import format_solver_benchmark, run_end_to_end, run_solver_benchmark
    from ..data import load_dataset

    chosen = {t.strip() for t in tables.split(",") if t.strip()}
    unknown = chosen - {"loop", "solvers", "end-to-end"}
    if unknown:
        raise click.BadParameter(f"unknown table(s) {', '.join(sorted(unknown))}: use loop, solvers, end-to-end",
                                 param_hint="--tables")
    names = [data, *others]
    sets = {_short_name(n): load_dataset(n) for n in names}
    log = lambda msg: click.echo(msg, err=True)
    out: dict = {}
    if "loop" in chosen:
        log("bench exact: naive loop vs precompute")
        out["loop"] = run_exact_benchmark(sets[next(iter(sets))], pairs, workers=workers, seed=seed, repeats=repeats)
    if "solvers" in chosen:
        out["solvers"] = run_solver_benchmark({k: _integer_images(v) for k, v in sets.items()}, seed=seed,
                                              sizes=tuple(int(x) for x in sizes.split(",") if x.strip()),
                                              n_pairs=solver_pairs, log=log)
    if "end-to-end" in chosen:
        out["end_to_end"] = []
        for name, hs in sets.items():
            log(f"bench exact: end-to-end precompute on {name}")
            out["end_to_end"].append(run_end_to_end(hs, name, end_to_end_pairs, images=end_to_end_images,
                                                    seed=seed, workers=workers))
    if as_json:
        echo_json(out)
        return
    if "loop" in out:
        click.echo(format_exact_benchmark(out["loop"]) + "\n")
    click.echo(format_solver_benchmark(out.get("solvers"), out.get("end_to_end", [])))


def _short_name(path: str) -> str:
    """A data file's name in a table: ``mnist-8k`` for ``mnist-8k-images-idx3-ubyte.gz``, ``fashion-mnist/train``
    for ``.../fashion-mnist/train-images-idx3-ubyte.gz`` (a generic stem keeps its folder's name)."""
    if path == "digits":
        return path
    p = Path(path)
    stem = p.name.split("-images")[0].split(".")[0]
    return f"{p.parent.name}/{stem}" if stem in ("train", "t10k", "test") and p.parent.name else stem


def _integer_images(hs):
    """The integer images ``(n, H, W)`` behind a grid HistogramSet (weights × their rational scales)."""
    import numpy as np

    from ..exact._rational import rational_scales

    scales = rational_scales(hs.weights)
    if hs.grid is None or (scales == 0).any():
        raise click.BadParameter("the solvers table needs integer images on a grid (IDX files, .npy of integers)",
                                 param_hint="--data/--also")
    return np.rint(hs.weights * scales[:, None]).astype(np.int64).reshape(hs.n, *hs.grid)


@needs_learning_stack
@bench.command("serve")
@_data
@click.option("--model", "models", multiple=True,
              help="Model path or preset name (repeatable) [default: untrained 'paper' and 'fast', speed only].")
@click.option("--test-cache", default=None, help="Cache of unseen pairs: measures interval coverage.")
@click.option("--pairs", "n_pairs", default=200, show_default=True, type=click.IntRange(min=2),
              help="Pairs with exact values.")
@click.option("--speed-pairs", default=10_000, show_default=True, type=_count,
              help="Pairs timed for the learned paired distance.")
@click.option("--matrix-size", default=2000, show_default=True, type=_count,
              help="cdist of N × N raw images, timed.")
@click.option("--rerank-queries", default=20, show_default=True, type=_count,
              help="Queries of the exact re-ranking check against brute-force exact kNN.")
@click.option("--rerank-refs", default=2000, show_default=True, type=_count,
              help="References of the re-ranking check (queries × references exact solves).")
@click.option("--threads", default=1, show_default=True, type=_count, help="torch threads (CPU figures: 1).")
@click.option("--device", default="cpu", show_default=True, help="Where the learned models run: cpu or cuda.")
@click.option("--scaling", default="14,28,56", show_default=True, help="Grid sizes for the scaling table.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_serve(data, models, test_cache, n_pairs, speed_pairs, matrix_size, rerank_queries, rerank_refs, threads,
                device, scaling, as_json):
    """Exact POT, Sinkhorn, sliced Wasserstein and wassembed side by side: pairs/s and error."""
    from ..bench import format_serve_benchmark, run_serve_benchmark
    from ..data import load_dataset

    res = run_serve_benchmark(load_dataset(data), list(models) or None, n_pairs=n_pairs,
                              n_speed_pairs=speed_pairs, matrix_size=matrix_size, threads=threads, device=device,
                              scaling_sizes=tuple(int(x) for x in scaling.split(",") if x), test_cache=test_cache,
                              rerank_queries=rerank_queries, rerank_refs=rerank_refs,
                              log=lambda msg: click.echo(msg, err=True))
    echo_json(res) if as_json else click.echo(format_serve_benchmark(res))


@bench.command("dask")
@_data
@click.option("--pairs", default=4000, show_default=True, type=int,
              help="Random pairs (one plan, run by both executors).")
@click.option("--workers", default=2, show_default=True, type=int,
              help="Local pool processes, and Dask worker processes (one thread each).")
@click.option("--repeats", default=1, show_default=True, type=int,
              help="Runs per executor, alternating; medians reported.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_dask(data, pairs, workers, repeats, as_json):
    """Precompute on a Dask LocalCluster vs the local process pool, same pairs; checks identical caches."""
    exact_stage_only()
    from ..bench import format_dask_benchmark, run_dask_benchmark
    from ..data import load_dataset

    r = run_dask_benchmark(load_dataset(data), pairs, workers=workers, repeats=repeats)
    echo_json(r) if as_json else click.echo(format_dask_benchmark(r))


@needs_learning_stack
@bench.command("ood")
@_data
@click.option("--model", required=True, help="A trained model (path).")
@click.option("--ood", "ood_data", required=True,
              help="Images of another distribution on the same grid (e.g. Fashion-MNIST's IDX file).")
@click.option("--unseen", required=True, help="Index range A:B of --data the model never saw (e.g. 6000:8000).")
@click.option("--pairs", "n_pairs", default=10_000, show_default=True, type=_count, help="Timed pairs.")
@click.option("--exact-pairs", default=200, show_default=True, type=_count, help="Pairs timed with exact OT.")
@click.option("--error-pairs", default=150, show_default=True, type=click.IntRange(min=0),
              help="(foreign, unseen) pairs with exact values for the errors.")
@click.option("--level", default=0.99, show_default=True, type=float,
              help="Quantile of the held-out inputs' scores above which an input is flagged.")
@click.option("--repeats", default=3, show_default=True, type=_count, help="Alternating rounds; best kept.")
@click.option("--threads", default=1, show_default=True, type=_count, help="torch threads.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the pair and noise draws.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_ood(data, model, ood_data, unseen, n_pairs, exact_pairs, error_pairs, level, repeats, threads,
              seed, as_json):
    """Out-of-distribution scores: detection, false alarms, cost in paired distance vs exact POT."""
    from ..bench._ood import format_ood_benchmark, run_ood_benchmark
    from ..data import load_dataset

    res = run_ood_benchmark(load_dataset(data), model, load_dataset(ood_data), unseen=unseen,
                            ood_name=ood_data.rsplit("/", 1)[-1], n_pairs=n_pairs,
                            n_exact=exact_pairs, n_error_pairs=error_pairs, level=level, repeats=repeats,
                            threads=threads, seed=seed, log=lambda msg: click.echo(msg, err=True))
    echo_json(res) if as_json else click.echo(format_ood_benchmark(res))


@needs_learning_stack
@bench.command("gpu")
@_data
@click.option("--device", default="auto", show_default=True, help="cuda, cuda:N or cpu (auto: CUDA if available).")
@click.option("--model", default=None, help="Model path or preset name [default: an untrained 'fast' model].")
@click.option("--embed", "n_embed", default=None, type=_count, help="Images embedded [default: 1M on CUDA, 4k on CPU].")
@click.option("--pairs", "n_pairs", default=None, type=_count, help="Pairs [default: 1M on CUDA, 2k on CPU].")
@click.option("--matrix-size", default=None, type=_count, help="cdist side [default: 16384 on CUDA, 1000 on CPU].")
@click.option("--batch-size", default=None, type=_count, help="Inputs per forward pass [default: the model's].")
@click.option("--repeats", default=3, show_default=True, type=_count, help="Timed calls per row; best kept.")
@click.option("--threads", default=None, type=_count, help="torch threads [default: 1 on CPU, torch's on CUDA].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_gpu(data, device, model, n_embed, n_pairs, matrix_size, batch_size, repeats, threads, as_json):
    """The serving path at the device's speed: embed, distance, cdist from uint8 images, the encoder alone, parity."""
    from ..bench._gpu import format_gpu_benchmark, run_gpu_benchmark
    from ..data import load_dataset

    res = run_gpu_benchmark(load_dataset(data), device=device, model=model, n_embed=n_embed, n_pairs=n_pairs,
                            matrix_size=matrix_size, batch_size=batch_size, repeats=repeats, threads=threads,
                            log=lambda msg: click.echo(msg, err=True))
    echo_json(res) if as_json else click.echo(format_gpu_benchmark(res))


@needs_learning_stack
@bench.command("index")
@_data
@click.option("--extra", multiple=True, help="More IDX image files on the same grid, added to the base images "
                                             "(repeatable; e.g. Fashion-MNIST's train-images-idx3-ubyte.gz).")
@click.option("--model", required=True, help="A trained model (path).")
@click.option("--out", required=True, help="Index directory (replaced).")
@click.option("--n", "n_refs", default=1_000_000, show_default=True, type=_count,
              help="References: the base images extended by flips, transposes and 1–2 pixel shifts.")
@click.option("--k", default=10, show_default=True, type=_count, help="Neighbours per query.")
@click.option("--queries", default=1000, show_default=True, type=_count, help="Queries timed without re-ranking.")
@click.option("--rerank-queries", default=100, show_default=True, type=click.IntRange(min=0),
              help="Queries timed with exact re-ranking of --n-candidates candidates each.")
@click.option("--n-candidates", default=20, show_default=True, type=_count,
              help="Candidates re-ranked per query in the timed re-ranking.")
@click.option("--adaptive-queries", default=0, show_default=True, type=click.IntRange(min=0),
              help="Queries timed with the adaptive re-ranking rule (0: skip; it can solve many candidates).")
@click.option("--references-per-block", default=8192, show_default=True, type=_count,
              help="References read, stored and embedded at a time by the build.")
@click.option("--search-references-per-block", default=4096, show_default=True, type=_count,
              help="References per block of the streamed matrix products of the queries.")
@click.option("--check-refs", default=2000, show_default=True, type=click.IntRange(min=0),
              help="References of the brute-force check (0: skip it).")
@click.option("--check-queries", default=20, show_default=True, type=click.IntRange(min=0),
              help="Queries of the brute-force check (0: skip it).")
@click.option("--threads", default=1, show_default=True, type=_count, help="torch threads (CPU figures: 1).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the query and subset draws.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words={**_WORDS, "n": "--n"})
def bench_index(data, extra, model, out, n_refs, k, queries, rerank_queries, n_candidates, adaptive_queries,
                references_per_block, search_references_per_block, check_refs, check_queries, threads, seed, as_json):
    """On-disk reference index of symmetry-extended images (--data and --extra: IDX files): build, size,
    query time, brute-force check of the re-ranking."""
    from ..bench._index import format_index_benchmark, run_index_benchmark

    res = run_index_benchmark(data, model, out, extra=extra, n=n_refs, k=k, queries=queries,
                              rerank_queries=rerank_queries, n_candidates=n_candidates,
                              adaptive_queries=adaptive_queries, references_per_block=references_per_block,
                              search_references_per_block=search_references_per_block, check_refs=check_refs,
                              check_queries=check_queries,
                              threads=threads, seed=seed, log=lambda msg: click.echo(msg, err=True))
    echo_json(res) if as_json else click.echo(format_index_benchmark(res))


@needs_learning_stack
@bench.command("clouds")
@click.option("--train-cache", required=True, help="The cache of clouds the models were trained on (LOT fits there).")
@click.option("--test-cache", required=True, help="A cache of pairs among clouds no model was trained on.")
@click.option("--model", "models", multiple=True, help="Trained point-cloud model (path; repeatable).")
@click.option("--lot-points", default=64, show_default=True, type=_count, help="Points of the LOT reference.")
@click.option("--speed-pairs", default=1000, show_default=True, type=_count,
              help="Test pairs timed for each method's speed on new pairs.")
@click.option("--threads", default=1, show_default=True, type=_count, help="torch threads (CPU figures: 1).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the timed pairs and the LOT reference.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_clouds(train_cache, test_cache, models, lot_points, speed_pairs, threads, seed, as_json):
    """Point-cloud models against linear optimal transport and the exact solver on unseen pairs: accuracy,
    exact solves spent, speed on new pairs."""
    from ..bench._clouds import format_clouds_benchmark, run_clouds_benchmark

    r = run_clouds_benchmark(train_cache, test_cache, models, lot_points=lot_points, speed_pairs=speed_pairs,
                             threads=threads, seed=seed)
    echo_json(r) if as_json else click.echo(format_clouds_benchmark(r))


@needs_learning_stack
@bench.command("threads")
@click.option("--data", default="digits", show_default=True,
              help="Images for the grid presets (MNIST IDX, .npy/.npz images or 'digits'); the set preset trains "
                   "on synthetic 3-D shapes.")
@click.option("--preset", "presets", multiple=True, type=click.Choice(["fast", "paper", "mlp", "set"]),
              help="Preset to measure (repeatable) [default: all four].")
@click.option("--condition", "conditions", multiple=True, type=click.Choice(["idle", "loaded"]),
              help="idle: no load started; loaded: one busy-loop process per core beside training (repeatable) "
                   "[default: both].")
@click.option("--images", default=1400, show_default=True, type=_count, help="Images (or clouds) per cache.")
@click.option("--pairs", default=3000, show_default=True, type=_count, help="Exact pairs per cache.")
@click.option("--epochs", default=3, show_default=True, type=_count, help="Pair epochs per training run.")
@click.option("--distill-epochs", default=10, show_default=True, type=click.IntRange(min=0),
              help="Distillation epochs per training run (before the pair epochs).")
@click.option("--repeats", default=1, show_default=True, type=_count,
              help="Runs per preset, thread setting and condition (medians reported).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the data, pairs and training.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_threads(data, presets, conditions, images, pairs, epochs, distill_epochs, repeats, seed, as_json):
    """Training throughput with the default thread count vs 1 thread vs all cores, on an idle machine and
    with a load beside it."""
    from ..bench._threads import CONDITIONS, PRESETS, format_threads_benchmark, run_threads_benchmark

    r = run_threads_benchmark(data, presets=presets or PRESETS, conditions=conditions or CONDITIONS,
                              images=images, pairs=pairs, epochs=epochs, distill_epochs=distill_epochs,
                              repeats=repeats, seed=seed, log=lambda msg: click.echo(msg, err=True))
    echo_json(r) if as_json else click.echo(format_threads_benchmark(r))


def _recipe(text: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> (name, train overrides); values parsed as int, float, or kept text."""
    name, _, spec = text.partition(":")
    kw = {}
    for item in filter(None, spec.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--recipe")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        kw[key.strip()] = value
    if not name.strip():
        raise click.BadParameter(f"{text!r} has no name (NAME:KEY=VALUE,...)", param_hint="--recipe")
    return name.strip(), kw


@needs_learning_stack
@bench.command("accuracy")
@_data
@click.option("--test-data", default=None, help="Images of the unseen test pairs [default: --data].")
@click.option("--train-images", default="0:6000", show_default=True, help="Index range A:B of the training images.")
@click.option("--test-images", default="6000:8000", show_default=True,
              help="Index range of the test images (in --test-data): never used in training.")
@click.option("--pairs", "budgets", default="3000,6000,12000", show_default=True,
              help="Exact training pairs per point of the curve (comma-separated).")
@click.option("--test-pairs", default=10_000, show_default=True, type=_count, help="Unseen exact test pairs.")
@click.option("--recipe", "recipes", multiple=True, metavar="NAME:KEY=VALUE,...",
              help="Extra recipe: wassembed.train with these overrides, e.g. 'mlp:model=mlp' (repeatable).")
@click.option("--work", default="accuracy-work", show_default=True, type=click.Path(file_okay=False),
              help="Caches and models of the run (kept; a rerun reuses the caches).")
@click.option("--workers", default=None, type=int, help="Precompute processes [default: all cores].")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the pair plans and the training.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@handle_errors(words=_WORDS)
def bench_accuracy(data, test_data, train_images, test_images, budgets, test_pairs, recipes, work, workers, seed,
                   as_json):
    """Unseen accuracy against wall seconds (precompute + training): defaults, pairs only, LOT itself, your
    recipes."""
    from ..bench._accuracy import format_accuracy_benchmark, run_accuracy_benchmark
    from ..data import load_dataset

    train_set = load_dataset(data)
    test_set = load_dataset(test_data) if test_data else train_set
    sizes = tuple(int(x) for x in budgets.split(",") if x.strip())
    r = run_accuracy_benchmark(train_set, test_set, train_images=train_images, test_images=test_images,
                               budgets=sizes, test_pairs=test_pairs, recipes=dict(_recipe(x) for x in recipes),
                               work=work, workers=workers, seed=seed, log=lambda msg: click.echo(msg, err=True))
    echo_json(r) if as_json else click.echo(format_accuracy_benchmark(r))
