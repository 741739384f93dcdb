"""The demo's work sizes and fixed settings."""

from __future__ import annotations

__all__ = ["demo_sizes", "split_ranges", "LEVELS", "DECILE_LEVELS", "OOD_LEVELS", "RECON_WEIGHT", "TRAINING", "EPOCHS",
           "PATIENCE", "ENTROPIC_REG",
           "INTERPOLATION_STEPS", "INTERPOLATION_CLASSES", "PCA_SCALES", "PCA_CLASSES"]

#: Coverage levels of the conformal intervals checked on the test pairs.
LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
#: Levels whose coverage is also measured in each decile of the exact values.
DECILE_LEVELS = (0.5, 0.9)
#: Levels of the out-of-distribution check whose false alarms are counted on the test images.
OOD_LEVELS = (0.9, 0.95, 0.99)
#: Weight of the reconstruction KL in the demo's training. Measured on the demo's caches (seed 0, 1 thread):
#: the paper's 10 stops early at Pearson r 0.947 on the unseen pairs (60 epochs allowed); 3 reaches 0.968 and
#: 1 reaches 0.983 (150 epochs), with decoded barycenters closer to the class images in exact W2² as well.
RECON_WEIGHT = 1.0
#: The other training options of the demo (``wassembed.train`` keywords), measured on the demo's caches (seeds
#: 0-2, 1 thread; docs/benchmarks-demo.md): ``relative_weight`` 1 (a squared relative-error term) halves the
#: underestimation of the closest tenth of the test pairs (mean relative error −0.31 → −0.18) at an equal or
#: lower MSE; ``val_fraction`` 0.2 holds out 280 images, 187 of which calibrate the error bars (with 93, one
#: writer's images, the coverage of a run moved by up to 6 points); the pair epochs after the distillation
#: phase are too few for the decoder, which ``decoder_epochs`` then fits alone (barycenters 0.73 → 0.50 pixel²).
TRAINING = {"recon_weight": RECON_WEIGHT, "relative_weight": 1.0, "val_fraction": 0.2}
#: Training length of the full demo: 1 CPU thread runs an epoch of the 8×8 digits in ~0.2 s.
EPOCHS, PATIENCE = 120, 15
#: Regularisation of POT's entropic (convolutional) barycenters drawn next to the model's.
ENTROPIC_REG = 0.004
#: Images along the interpolation, and the classes of its two ends when present (first two found).
INTERPOLATION_STEPS, INTERPOLATION_CLASSES = 9, (1, 7, 0, 3)
#: Where the principal directions are decoded (standard deviations), and the classes preferred.
PCA_SCALES, PCA_CLASSES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5), (2, 3, 7, 0)


def split_ranges(n: int) -> tuple[str, str]:
    """Train and test image ranges (``"A:B"``) for a dataset of ``n`` images.

    Digits (``n = 1797``) get ``0:1400`` and ``1400:1797``; other sizes the first 78 % and the rest.

    Examples
    --------
    >>> split_ranges(1797)
    ('0:1400', '1400:1797')
    >>> split_ranges(1000)
    ('0:780', '780:1000')
    """
    if n < 40:
        from ..errors import InputError, explain, param

        raise InputError(explain("too few images for the demo", expected="at least 40 images",
                                 received=str(n), fix=f"pass a larger dataset ({param('data')})"))
    cut = 1400 if n == 1797 else int(round(0.78 * n))
    return f"0:{cut}", f"{cut}:{n}"


def demo_sizes(k: int, tiny: bool = False) -> dict:
    """Work sizes of the demo for histograms of ``k`` bins (``tiny``: a few seconds, for tests).

    Returns
    -------
    dict
        ``train_pairs`` (exact pairs among training images, sampled in blocks of ``block_size`` images),
        ``test_pairs``, ``epochs``, ``decoder_epochs`` (the decoder phase of training), ``exact_timing_pairs``
        (pairs solved one by one with ``ot.emd2`` to measure its speed), ``knn_queries``, ``knn_k``,
        ``bary_images`` (images per class for the barycenters), ``pca_classes``.

    Examples
    --------
    >>> demo_sizes(64)["train_pairs"], demo_sizes(64, tiny=True)["epochs"]
    (100000, 2)
    """
    if tiny:
        return dict(train_pairs=2500, block_size=16, test_pairs=400, epochs=2, decoder_epochs=2,
                    exact_timing_pairs=60, knn_queries=2, knn_k=3, bary_images=6, pca_classes=1, bary_iter=200)
    big = k > 256  # e.g. MNIST 28×28: each exact solve costs ~100× more than on 8×8 digits
    return dict(train_pairs=20000 if big else 100000, block_size=64, test_pairs=2000 if big else 5000,
                epochs=40 if big else EPOCHS, decoder_epochs=50 if big else 200,
                exact_timing_pairs=200 if big else 1000, knn_queries=6, knn_k=5, bary_images=40, pca_classes=3,
                bary_iter=1000)
