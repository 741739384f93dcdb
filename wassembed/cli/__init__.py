"""The ``wassembed`` command line: a thin Click layer over the Python API, one module per stage.

Data goes to stdout, logs and progress to stderr; usage errors and bad input exit with code 2, other
failures with 1, Ctrl-C with 130. Each command's module is imported only when that command runs (or
when ``--help`` lists them), and only the commands of the learning stack import torch: when torch or
safetensors is missing they exit 1 with one line saying what to install (``pip install "wassembed[learn]"``).
The exact stage's commands (``precompute``, ``cache``) never import torch, even when it is installed.
"""

from __future__ import annotations

import importlib

import click

from .._version import __version__

__all__ = ["COMMANDS", "LEARNING_COMMANDS", "main"]

#: command name -> (module, attribute); modules are imported on first use
COMMANDS = {
    "precompute": ("wassembed.cli.exact", "precompute"),
    "cache": ("wassembed.cli.exact", "cache"),
    "train": ("wassembed.cli.learn", "train"),
    "evaluate": ("wassembed.cli.serve", "evaluate_cmd"),
    "embed": ("wassembed.cli.serve", "embed_cmd"),
    "distance": ("wassembed.cli.serve", "distance_cmd"),
    "knn": ("wassembed.cli.serve", "knn_cmd"),
    "bench": ("wassembed.cli.bench", "bench"),
    "demo": ("wassembed.cli.demo", "demo_command"),
}

#: commands that train or serve models (torch, safetensors); ``bench serve`` is marked in cli/bench.py
LEARNING_COMMANDS = frozenset({"train", "evaluate", "embed", "distance", "knn", "demo"})


class _LazyGroup(click.Group):
    """A group whose subcommands are imported from :data:`COMMANDS` when first needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr = COMMANDS[cmd_name]
        cmd = getattr(importlib.import_module(module), attr)
        if cmd_name in LEARNING_COMMANDS:
            from ._common import needs_learning_stack

            cmd = needs_learning_stack(cmd)
        return cmd


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="wassembed")
def main() -> None:
    """Learned Wasserstein embeddings: exact distances precomputed with POT, a Siamese encoder-decoder
    trained on them, fast approximate distances, kNN and barycenters.

    Typical use: `wassembed precompute digits --out C --pairs 20000`, then `wassembed train C --out M`.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
