"""Tiny inputs for the ``--tiny`` smoke runs of the scripts in this folder: caches and a model of the bundled 8×8
digits (scikit-learn's, no download), made in a work folder in a few seconds."""

from __future__ import annotations

import warnings
from pathlib import Path


def digits_caches(work, *, train_images: str = "0:150", train_pairs: int = 200, test_images: str = "1400:1460",
                  test_pairs: int = 120) -> tuple[Path, Path]:
    """A training cache (pairs and per-image LOT targets) and a test cache of unseen images (pairs only)."""
    import wassembed as we

    work = Path(work)
    train, test = work / "train.cache", work / "test.cache"
    we.precompute("digits", train, pairs=train_pairs, images=train_images, workers=1, progress=False)
    we.precompute("digits", test, pairs=test_pairs, images=test_images, seed=1, lot=False, workers=1,
                  progress=False)
    return train, test


def digits_model(work, train_cache) -> Path:
    """A model trained for a few epochs on ``train_cache``, saved in ``work``."""
    import wassembed as we

    out = Path(work) / "model"
    with warnings.catch_warnings():  # a tiny run: too few held-out pairs for the error bars, and it says so
        warnings.simplefilter("ignore")
        we.train(train_cache, epochs=2, distill_epochs=1, threads=1, progress=False, seed=0).save(out)
    return out
