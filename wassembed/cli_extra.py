"""CLI commands that tie stages together: ``bench`` (exact, serve, dask) and ``demo``."""

from __future__ import annotations

import click

from .cli import echo_json, handle_errors

DEFAULT_MNIST = "../shared/data/mnist/mnist-8k-images-idx3-ubyte.gz"


def register(main: click.Group) -> None:
    main.add_command(bench)
    try:
        from .demo import demo_command
    except ModuleNotFoundError as exc:  # pragma: no cover - during development only
        if exc.name != "wassembed.demo":
            raise
    else:
        main.add_command(demo_command)


@click.group()
def bench():
    """Benchmarks (speed and accuracy figures, measured in one run)."""


@bench.command("exact")
@click.option("--data", default=DEFAULT_MNIST, show_default=True, help="Images to pair (file or 'digits').")
@click.option("--pairs", default=2000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="[default: all cores]")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_exact(data, pairs, workers, seed, as_json):
    """Naive ot.emd2 loop vs precompute with 1 and all workers, on the same pairs."""
    from .bench import format_exact_benchmark, run_exact_benchmark
    from .data import load_dataset

    r = run_exact_benchmark(load_dataset(data), pairs, workers=workers, seed=seed)
    echo_json(r) if as_json else click.echo(format_exact_benchmark(r))
