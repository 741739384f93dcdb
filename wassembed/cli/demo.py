"""``wassembed demo``: the whole pipeline on the embedded default data."""

from __future__ import annotations

import click

from ..demo import run_demo

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--data", default="digits", show_default=True,
              help="'digits' (bundled, no download) or a data file: MNIST IDX (.gz), .npy images, .npz.")
@click.option("--out", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Report folder (figures, report.html, results.json, model, caches).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of pairs, training and picks.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="Where the network trains and serves.")
@click.option("--tiny", is_flag=True, help="A few-second run with tiny sizes (for tests; numbers mean little).")
@click.option("--pairs", "train_pairs", default=None, type=int, help="Exact training pairs [default: by size].")
@click.option("--epochs", default=None, type=int, help="Maximum training epochs [default: 120].")
@click.option("--workers", default=None, type=int, help="Processes for the exact stage [default: all cores].")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=0),
              help="torch CPU threads (0: torch's default). One is fastest for these small networks.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo_command(data, out, seed, device, tiny, train_pairs, epochs, workers, threads, quiet):
    """Precompute exact W2² → train → evaluate on unseen pairs → serve, with a report folder.

    Prints a results table (pairs, training time, Pearson r, MSE and relative MSE on pairs of unseen
    images, speed-up of distance and cdist over exact POT measured in the same run) and writes OUT/report.html,
    OUT/report.md, OUT/results.json and the figures.
    """
    from ._common import handle_errors

    handle_errors(run_demo)(data, out, seed=seed, device=device, tiny=tiny, train_pairs=train_pairs,
                            epochs=epochs, workers=workers, threads=threads or None, progress=not quiet,
                            echo=click.echo)


