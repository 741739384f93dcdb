"""``wassembed train``: train an embedding on a distance cache.

Torch is imported only inside the command body (the command group checks that it is installed first). Data
(the model path, metrics) goes to stdout; logs and the progress bar go to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._common import handle_errors


@click.command()
@click.argument("cache", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Model directory (checkpoints go to OUT/checkpoints, the log to OUT/train_log.jsonl).")
@click.option("--model", "model", default="fast", show_default=True,
              type=click.Choice(["fast", "paper", "mlp"]),
              help="Architecture preset (a cache of point clouds always gets the set network).")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="Maximum pair epochs (passes over the exact pairs) [default: 40; 20 after a distillation "
                   "phase]. The distillation phase runs first and is not counted: --epochs does not shorten "
                   "it (see --distill-epochs).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed (split, init, batches).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in OUT/checkpoints.")
@click.option("--batch-images", default=None, type=click.IntRange(min=4), help="Images per batch [128].")
@click.option("--lr", default=None, type=float, help="Peak learning rate [1e-3].")
@click.option("--schedule", default=None, type=click.Choice(["cosine", "plateau", "constant"]),
              help="Learning rate over the pair epochs: cosine decay to lr/100, halved after 2 epochs without a "
                   "better validation MSE (plateau), or constant [cosine].")
@click.option("--patience", default=None, type=click.IntRange(min=0),
              help="Early stopping: stop after this many pair epochs without a better validation MSE; 0 never "
                   "stops early [6].")
@click.option("--val-fraction", default=None, type=float, help="Fraction of images held out [0.1].")
@click.option("--recon-weight", default=None, type=float,
              help="λ of the reconstruction term [1; the paper used 10]: the KL for images, the Sinkhorn "
                   "divergence over the target scale for point clouds.")
@click.option("--relative-weight", default=None, type=float, help="μ of the relative-error term [0].")
@click.option("--augment", default=None, help="Exact symmetries: comma-separated shift,flip,rot or '' "
                                              "(point clouds: a translation, reflection, rotation).")
@click.option("--distill-epochs", default=None, type=click.IntRange(min=0),
              help="Epochs of the distillation phase, which regresses the cache's per-image LOT targets before "
                   "the pair epochs, in addition to --epochs (a small --epochs does not cap it) [80; 40 for point "
                   "clouds]; 0 skips it. Only caches with targets have the phase (precompute without --no-lot).")
@click.option("--finetune-lr", default=None, type=float, help="Peak learning rate of the pair epochs after "
                                                              "distillation [3e-4].")
@click.option("--threads", default=None, type=click.IntRange(min=0),
              help="torch CPU threads during training [default: 1 on a CPU device (all cores trained every "
                   "preset 3-15x slower on a busy 2-core machine, at most 1.25x faster on a lightly loaded one: "
                   "`wassembed bench threads`); on CUDA torch's own]; 0 uses torch's own default (all cores).")
@click.option("--quiet", is_flag=True, help="No progress bar or per-epoch lines.")
@handle_errors(words={"precompute": "`wassembed precompute`", "pairs": "--pairs", "images": "--images",  # its
                      "checkpoint_dir": "--out"})  # options; the checkpoints are in --out
def train(cache, out, model, epochs, device, seed, resume, batch_images, lr, schedule, patience,
          val_fraction, recon_weight, relative_weight, augment, distill_epochs, finetune_lr, threads, quiet):
    """Train an embedding on the exact distances of CACHE and save it to OUT.

    \b
    Training has up to two phases:
    1. distillation, when CACHE holds per-image LOT targets (`wassembed precompute` caches them unless
       --no-lot): --distill-epochs epochs (80 for images, 40 for point clouds) regress them;
    2. pair epochs on the exact pairs: at most --epochs (20 after distillation, else 40), fewer with early
       stopping (--patience).
    --epochs counts the pair epochs only; for a quick run pass both, e.g. --epochs 2 --distill-epochs 5.
    A checkpoint is written after every pair epoch (none during distillation): after Ctrl-C, --resume
    continues from the last one.
    """
    from ..errors import InputError, explain
    from ..learn import train as _train

    out = Path(out)
    if not resume and ((out / "model.json").exists() or (out / "checkpoints" / "state.json").exists()):
        raise InputError(explain(f"{out} already holds a model or a checkpoint", expected="a new directory",
                                 received=str(out), fix="pass --resume to continue it, or another --out"))
    opts = dict(epochs=epochs, batch_images=batch_images, lr=lr, schedule=schedule, patience=patience,
                val_fraction=val_fraction, recon_weight=recon_weight, relative_weight=relative_weight,
                augment=augment, distill_epochs=distill_epochs, finetune_lr=finetune_lr)
    opts = {k: v for k, v in opts.items() if v is not None}
    try:
        emb = _train(cache, model=model, checkpoint_dir=out / "checkpoints", log=out / "train_log.jsonl",
                     resume=resume, device=device, seed=seed, progress=not quiet, threads=threads,
                     **opts)
        emb.save(out)
    except KeyboardInterrupt:
        click.echo(interrupted(out / "checkpoints"), err=True)
        sys.exit(130)
    v = emb.info["training"]["validation"]
    d = emb.info["training"]["distillation"]
    if d.get("used") and "images" in d:
        click.echo(f"distillation: {d['images']} images, {d['epochs']} epochs in {d['seconds']:.0f} s "
                   f"(target error {d['final_loss']:.4g})", err=True)
    click.echo(f"validation ({v['n_pairs']} pairs on held-out images): mse {v['mse']:.4g}, "
               f"pearson {v['pearson']:.5f}, best epoch {emb.info['training']['best_epoch']}", err=True)
    click.echo(str(out))


def interrupted(checkpoints: Path) -> str:
    """What Ctrl-C left of a training run: the checkpoint of its last finished pair epoch, or nothing (stopped
    before the first pair epoch ended: during the distillation phase, which writes no checkpoint, or the first
    pair epoch)."""
    import json

    try:
        epoch = json.loads((checkpoints / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return ("Interrupted before the first pair epoch ended (the distillation phase, if any, runs before it and "
                f"writes no checkpoint): nothing was saved in {checkpoints}. Rerun the same command, without "
                "--resume, to start again (--distill-epochs sets the length of the distillation phase).")
    return (f"Interrupted: the checkpoint of pair epoch {epoch} is in {checkpoints}; rerun the same command with "
            "--resume to continue from it.")
