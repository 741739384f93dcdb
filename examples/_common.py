"""Shared set-up of the example scripts: load a saved model, or train a quick one on the digits.

Each example can reuse the model written by ``wassembed demo`` (``--model demo-output/model``); without it
the example trains its own small model first (exact pairs among images 0:1400 only, so that images
1400:1797 stay unseen), which takes ~30 s on 2 CPU cores (a few seconds with ``--tiny``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

TRAIN_IMAGES = "0:1400"   # images the model may be trained on
TEST_IMAGES = "1400:1797"  # images it never sees


def image_range(spec: str, n: int):
    """The indices ``A, A + 1, ..., B - 1`` of a range ``"A:B"`` of images (``B`` empty: up to ``n``)."""
    import numpy as np

    a, b = spec.split(":")
    return np.arange(int(a or 0), int(b) if b else n)


def base_parser(description: str) -> argparse.ArgumentParser:
    """Options common to every example: --tiny, --model, --work, --seed."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: runs in seconds (numbers mean little)")
    ap.add_argument("--model", default=None, help="a saved model directory (e.g. demo-output/model); "
                                                  "default: train a quick one")
    ap.add_argument("--work", default="examples-output", help="folder for caches, models and figures")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def get_model(hs, args, *, quiet: bool = False):
    """The model of ``--model``, or one trained now on exact pairs among ``TRAIN_IMAGES`` of ``hs``."""
    import torch

    import wassembed
    from wassembed.exact import precompute

    torch.set_num_threads(1)  # these small networks run fastest on one thread (and a shared CPU stays usable)
    if args.model:
        model = wassembed.load(args.model)
        if not quiet:
            print(f"model: {args.model}")
        return model
    work = Path(args.work)
    pairs, epochs = (2500, 2) if args.tiny else (60000, 60)
    t0 = time.perf_counter()
    cache = work / ("cache-train-tiny" if args.tiny else "cache-train")
    precompute(hs, cache, pairs=pairs, images=TRAIN_IMAGES, sampling="blocks", block_size=16 if args.tiny else 64,
               seed=args.seed, progress=False)
    tiny = {"distill_epochs": 5} if args.tiny else {}  # --tiny checks that the script runs, in seconds
    model = wassembed.train(cache, model="fast", epochs=epochs, patience=10, recon_weight=1.0, device="cpu",
                            seed=args.seed, progress=False, **tiny)
    if not quiet:
        print(f"trained a model on {pairs:,} exact pairs among images {TRAIN_IMAGES} in "
              f"{time.perf_counter() - t0:.1f} s (pass --model DIR to reuse one)", file=sys.stderr)
    return model
