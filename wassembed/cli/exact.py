"""``wassembed precompute`` and ``wassembed cache info|export|verify``: no torch, even when it is installed.

POT imports torch (and jax, cupy, tensorflow) at ``import ot`` unless told not to; these commands only
solve numpy problems, so importing this module tells it not to (:func:`wassembed._deps.exact_stage_only`,
inherited by the worker processes). Nothing here imports ``ot`` before that.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .._deps import exact_stage_only
from ._common import _pairs_option, echo_json, handle_errors

exact_stage_only()


@click.command()
@click.argument("data")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Cache directory.")
@click.option("--pairs", "pairs", default=None, help="Number of pairs to sample, or 'all'.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the pair sampler.")
@click.option("--workers", default=None, type=int, help="Local worker processes [default: all cores].")
@click.option("--p", "p", default=2, show_default=True, type=click.Choice(["1", "2"]),
              help="2: W2² (squared Euclidean ground cost); 1: W1 (Euclidean).")
@click.option("--images", default=None, help="Index range A:B the pairs are drawn among (e.g. 0:6000).")
@click.option("--against", default=None, help="Index range C:D: pairs between --images and these.")
@click.option("--sampling", default="random", show_default=True, type=click.Choice(["random", "blocks", "sparse"]),
              help="Uniform pairs; all pairs inside random groups of --block-size images; or sparse blocks: "
                   "inside such groups, each image with 2 random partners per round.")
@click.option("--block-size", default=64, show_default=True, type=int,
              help="Images per random group of --sampling blocks and sparse (ignored by random).")
@click.option("--pairs-file", default=None, type=click.Path(dir_okay=False),
              help="Explicit pairs (.npy (m, 2), .npz with i and j, or text).")
@click.option("--chunk-size", default=256, show_default=True, type=int, help="Pairs per shard.")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://HOST:PORT) to run on a cluster.")
@click.option("--worker-timeout", default=None, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="With --scheduler: how long to wait for workers whenever the cluster has none, before "
                   "failing (the cache stays resumable)  [default: 60]")
@click.option("--lot/--no-lot", default=True, show_default=True,
              help="Also cache one exact LOT solve per image (the trainer's distillation targets; p=2 on a grid, "
                   "coordinates or point clouds).")
@click.option("--lot-images", default=None, help="Index range A:B: only the plan's images inside it get a LOT "
                                                   "solve [default: every image of the plan].")
@click.option("--lot-copies", default="auto", show_default=True, metavar="K|auto",
              help="Also solve K elastic copies of each image with a LOT target (images on a grid): more images "
                   "for the distillation where the data has few. auto: once the plan holds 90 % of the images it "
                   "draws from, enough for 24,000 images with targets, at most 3 per image, on grids of 16×16 "
                   "pixels or more; 0: none.")
@click.option("--method", default="auto", show_default=True, type=click.Choice(["auto", "grid", "pot"]),
              help="Exact solver for histograms: the grid path (W2² on pixel grids, integer images: a separable "
                   "network simplex) where it applies and pays, POT elsewhere; or POT only; or the grid path only. "
                   "The values agree within float64 rounding.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors(words={"address": "--scheduler"})
def precompute(data, out, pairs, seed, workers, p, images, against, sampling, block_size, pairs_file, chunk_size,
               scheduler, worker_timeout, lot, lot_images, lot_copies, method, quiet, as_json) -> None:
    """Compute exact W_p^p for pairs of DATA into the cache --out (resumable; rerun to resume).

    DATA is a file (IDX .gz/raw, .npy images, .npz of images or histograms, or a ragged .npz of point clouds
    with points, offsets and optional weights, labels) or 'digits' (scikit-learn's bundled 8×8 digits).
    """
    from ..data import load_dataset
    from ..exact import precompute as run

    pairs = _pairs_option(pairs)
    if pairs is None and pairs_file is None:
        raise click.UsageError("give --pairs N (or --pairs all, or --pairs-file FILE)")
    if worker_timeout is not None and scheduler is None:
        raise click.UsageError("--worker-timeout applies to a Dask cluster: give --scheduler ADDRESS too")
    hs = load_dataset(data)
    client = executor = None
    if scheduler is not None:
        from ..exact import DaskExecutor, connect

        client = connect(scheduler)
    click.echo(f"{_summary(hs, data)}; computing exact W_{p}^{p} into {out}", err=True)
    try:
        if worker_timeout is not None:
            executor = DaskExecutor(client, worker_timeout=worker_timeout)
        res = run(hs, out, pairs, seed=seed, workers=workers, p=int(p), images=images, against=against,
                  sampling=sampling, block_size=block_size, pairs_file=pairs_file, chunk_size=chunk_size,
                  progress=not quiet, client=client, executor=executor, lot=lot,
                  lot_images=lot_images, lot_copies=_copies_option(lot_copies), method=method)
    finally:
        if client is not None:
            client.close()
    if as_json:
        echo_json(res.as_dict())
        return
    click.echo(f"cache            {res.cache}\n"
               f"pairs requested  {res.requested}\n"
               f"already cached   {res.already_cached}\n"
               f"computed now     {res.computed} in {res.seconds:.1f} s ({res.pairs_per_s:.0f} pairs/s, "
               f"{res.workers} worker(s), {res.executor})\n"
               f"pairs in cache   {res.total_in_cache}")
    if res.lot_requested:
        rate = f" ({res.lot_computed / res.lot_seconds:.0f} images/s)" if res.lot_computed and res.lot_seconds else ""
        click.echo(f"LOT targets      {res.lot_requested} images, {res.lot_computed} solved now in "
                   f"{res.lot_seconds:.1f} s{rate}\n"
                   f"exact solves     {res.computed + res.lot_computed} now (pairs + images)")


def _summary(data, source: str) -> str:
    """``digits: 1797 histograms of 64 bins`` or ``clouds.npz: 40 clouds of 20–60 points in 3 dimensions``."""
    return f"{Path(source).name}: {data.describe()}"


@click.group()
def cache() -> None:
    """Inspect, export and verify distance caches."""


@cache.command("info")
@click.argument("cache_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def cache_info(cache_dir, as_json) -> None:
    """Counts, fingerprint, settings and value statistics of CACHE_DIR; exit 1 if any part is damaged.

    Damaged parts (manifest, stored data, plans, shards, claims) are listed under "damaged" on stderr with
    what to do, and left out of the counts.
    """
    from ..exact import describe_cache

    info = describe_cache(cache_dir)
    if as_json:
        echo_json(info)
    else:
        click.echo("\n".join(_info_lines(info)))
        _echo_damaged(info["damaged"])
    if info["damaged"]:
        sys.exit(1)


def _info_lines(info: dict) -> list[str]:
    d, v = info["dataset"], info["values"]
    lines = [f"cache        {info['path']}"]
    if d is not None:
        from ..data import HISTOGRAMS, kind_class

        what = kind_class(d.get("kind", HISTOGRAMS)).describe_record(d)
        lines += [f"quantity     {info['quantity']} (p={info['p']}, ground cost {info['ground_cost']})",
                  f"dataset      {d['name']}: {what}", f"fingerprint  {d['fingerprint']}"]
    lines.append(f"pairs        {info['pairs']} in {info['shards']} shards, {info['images_used']} images used"
                 + (f" (indices {info['image_range'][0]}..{info['image_range'][1]})" if info["image_range"] else ""))
    if v:
        lines.append(f"values       mean {v['mean']:.4g}, std {v['std']:.4g}, min {v['min']:.4g}, "
                     f"median {v['median']:.4g}, max {v['max']:.4g}")
    if info.get("solver") and info.get("versions"):
        lines.append(f"solver       {info['solver'].get('name')} (POT {info['versions'].get('pot')})")
    if info["temp_files"]:
        lines.append(f"temp files   {len(info['temp_files'])} left by killed writers (removed on the next open)")
    return lines


def _echo_damaged(damaged: list[dict], title: str = "damaged") -> None:
    """The damaged parts, one line each (file, problem, fix), on stderr."""
    if damaged:
        click.echo(f"{title}      {len(damaged)} part{'s' * (len(damaged) > 1)} of the cache:"
                   + "".join(f"\n  {d['problem']}" for d in damaged), err=True)


@cache.command("export")
@click.argument("cache_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@handle_errors
def cache_export(cache_dir, out) -> None:
    """Write int64 arrays i, j and float64 value (W_p^p) of CACHE_DIR to OUT (.npz)."""
    from ..exact import DistanceCache

    n = DistanceCache.open(cache_dir).export(out)
    click.echo(f"wrote {n} pairs to {out}", err=True)


@cache.command("verify")
@click.argument("cache_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--repair", is_flag=True, help="Remove corrupt shards and recompute only their pairs.")
@click.option("--workers", default=None, type=int,
              help="Local worker processes that recompute lost pairs with --repair [default: all cores].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (no progress bar).")
@handle_errors
def cache_verify(cache_dir, repair, workers, as_json) -> None:
    """Check the manifest against the stored data (fingerprint, p, ground cost, kind, sizes), the plans, every shard's
    checksum and the claims; with --repair, recompute what was lost. Exit 1 if damage remains."""
    from ..exact import verify

    report = verify(cache_dir, repair=repair, workers=workers, progress=not as_json)
    if as_json:
        echo_json(report)
    else:
        missing = "unknown (no readable manifest)" if report["missing"] is None else report["missing"]
        click.echo(f"shards ok        {report['shards_ok']}\n"
                   f"corrupt shards   {len(report['corrupt'])}" + "".join(f"\n  {c}" for c in report["corrupt"])
                   + f"\ndamaged parts    {len(report['damaged'])}\n"
                   f"stray temp files {report['temp_files']}\n"
                   f"planned pairs missing {missing}"
                   + (f"\nrepaired: removed {report['removed']} files, recomputed {report['recomputed']} pairs"
                      if repair else ""))
        _echo_damaged(report["damaged_left"] if repair else report["damaged"],
                      "still damaged" if repair else "damaged")
    if not report["ok"]:
        sys.exit(1)


def _copies_option(value: str):
    """--lot-copies: "auto" or a nonnegative integer."""
    if value == "auto":
        return value
    try:
        k = int(value)
    except ValueError:
        k = -1
    if k < 0:
        raise click.BadParameter(f"{value!r} is neither 'auto' nor a nonnegative integer", param_hint="--lot-copies")
    return k
