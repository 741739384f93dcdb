"""The demo's figure words: headings, captions, plot titles and row labels, from the measured numbers.

Nothing here computes: each function formats numbers a step of the demo measured (the dicts of
``results.json``). :data:`BARYCENTER_METHODS` names double as the keys of ``results.json``'s barycenters.
"""

from __future__ import annotations

from ._sizes import ENTROPIC_REG, RECON_WEIGHT

__all__ = ["BARYCENTER_METHODS", "HEADINGS", "INTERPOLATION_ROWS"]

#: The three barycenters compared (figure rows, and keys of ``results.json``).
BARYCENTER_METHODS = ("pixel mean (Euclidean)", "embedding: ψ(mean φ(x))", f"POT entropic W₂ (reg {ENTROPIC_REG:g})")
#: The three interpolations compared (figure rows): pixel blend, the model's, POT's entropic barycenters.
INTERPOLATION_ROWS = ("pixel blend (1−t)a + tb", "embedding: ψ((1−t)φ(a) + tφ(b))", "POT entropic W₂ barycenter")
#: Heading of each figure of the report, by file name.
HEADINGS = {"training_curves.png": "Training curves",
            "scatter_unseen_pairs.png": "Estimated vs exact W₂² on unseen pairs",
            "errors_and_coverage.png": "Errors and conformal interval coverage",
            "knn_gallery.png": "Nearest-neighbour gallery",
            "barycenters.png": "Class barycenters",
            "interpolation.png": "Interpolation between two unseen digits",
            "principal_directions.png": "Principal directions"}
#: The unit of W₂² on a pixel grid (squared-Euclidean ground cost between pixel coordinates).
UNIT = "pixel²"


def training_loss_label() -> str:
    """Legend of the training objective."""
    return f"training loss (distance + {RECON_WEIGHT:g}·KL)"


def training_caption(tr: dict) -> str:
    """Caption of the training curves (``tr``: the training numbers)."""
    return (f"Per-epoch values from the trainer's JSON-lines log (checkpoints/train_log.jsonl). Left: "
            f"the training objective (squared error of the distance + {RECON_WEIGHT:g} × KL "
            f"reconstruction per input, as optimised, log scale) and the MSE of the distance on "
            f"validation pairs (pairs of training-range images that the trainer held out). Right: validation "
            f"Pearson r. "
            f"The weights of the best validation epoch ({tr['best_epoch']}) are kept; "
            f"training stopped after {tr['epochs_run']} epochs ({tr['stopped']}).")


def scatter_title(n_pairs: int, test_range: str) -> str:
    """Title of the scatter plot of estimated against exact values."""
    return f"{n_pairs:,} pairs of test images {test_range} (never trained on)"


def scatter_caption(test_range: str) -> str:
    """Caption of the scatter plot of estimated against exact values."""
    return (f"Each point is a pair of test images (indices {test_range}); no test image was used "
            f"in training. x: exact W₂² from POT's network simplex (squared-Euclidean ground "
            f"cost in pixel² units); y: ‖φ(x) − φ(y)‖² from the model. Red: y = x.")


def coverage_sentence(levels, cover) -> str:
    """Whether the conformal levels hold on the test pairs, within two points."""
    off = [(lv, c) for lv, c in zip(levels, cover) if abs(c - lv) > 0.02]
    if not off:
        return "here every level is met within two points on the test pairs."
    worst = max(off, key=lambda t: abs(t[1] - t[0]))
    return (f"here {len(off)} of {len(levels)} levels are more than two points off (worst: {100 * worst[1]:.1f} % at "
            f"{100 * worst[0]:.0f} %). The guarantee holds on average over pairs drawn like the calibration pairs; "
            f"the coverage of one model varies around it with its calibration images (their pairs share images).")


def errors_caption(conformal: dict, validation: dict | None, test: dict) -> str:
    """Caption of the error histogram, the coverage of the conformal intervals and the coverage by decile."""
    return ("Left: histogram of estimate − exact on the unseen test pairs (clipped at the 99.5 % "
            "quantile of |error|). Middle: for split-conformal intervals (model.interval(X, Y, level)) "
            f"calibrated on {conformal['calibration_pairs']:,} pairs of two held-out calibration images, the "
            "fraction of test pairs whose exact value lies inside, against the nominal level; labels give the "
            "mean half-width. Points on the red line mean the stated coverage holds; "
            + coverage_sentence(conformal["levels"], conformal["coverage"])
            + " Right: the same fraction in each decile of the exact values (the coverage level is an average "
              "over pairs, not a promise for each range of distances).")


def knn_title(n_references: int) -> str:
    """Title of the nearest-neighbour gallery."""
    return f"Test images queried against the first {n_references:,} training images"


def knn_caption(kn: dict, approx_mean: float, exact_mean: float) -> str:
    """Caption of the gallery (``kn``: the kNN numbers; the means of the estimated and exact values shown)."""
    k = kn["k"]
    return (f"Each row: a test image (red), its {k} nearest training images by embedding distance "
            f"(titles: [class] estimated W₂²), then the {k} nearest after exact re-ranking "
            f"(model.kneighbors(..., exact_rerank=True); titles: [class] exact W₂²). Re-ranking "
            f"spent {kn['exact_solves_reranking']:,} exact solves instead of "
            f"{kn['exact_solves_brute_force']:,} for brute force; its values "
            f"{'match' if kn['reranked_values_match_brute_force'] else 'DO NOT match'} the brute-force "
            f"k nearest. Recall@{k} of the embedding alone: {kn['approx_recall_at_k']:.2f}. Compare "
            f"the values of the two halves: the estimates of near neighbours are "
            f"{'lower' if approx_mean < exact_mean else 'higher'} than the exact values on "
            f"average here (mean {approx_mean:.3g} vs {exact_mean:.3g}), the bias of the model at "
            f"small distances also visible in the scatter plot.")


def barycenters_title() -> str:
    """Title of the barycenter figure."""
    return "Class barycenters of training images"


def class_label(c) -> str:
    """Label of a class in the figures."""
    return f"class {c}"


def barycenters_caption(bary: dict) -> str:
    """Caption of the barycenters (``bary``: their numbers, with the mean exact W₂² to the members)."""
    pixel, embedding, entropic = (bary["mean_exact_w2_to_members"][key] for key in BARYCENTER_METHODS)
    return (f"For each class, the first {bary['images_per_class']} training images of that class averaged three "
            f"ways: pixel-wise mean; the model's barycenter ψ(mean of φ(xᵢ)) (model.barycenter); and "
            f"POT's convolutional barycenter (ot.bregman.convolutional_barycenter2d) — an ENTROPIC "
            f"(regularised, hence slightly blurred) approximation of the W₂ barycenter, not an exact "
            f"one. A W₂ barycenter minimises the mean W₂² to the members; measured exactly, that "
            f"mean is {pixel:.3f} for the pixel mean, {embedding:.3f} for the embedding and "
            f"{entropic:.3f} for POT entropic (lower is better)"
            + (": by this measure the embedding's barycenter is not better than the pixel mean here."
               if embedding >= pixel else "."))


def interpolation_title(a: int, label_a, b: int, label_b) -> str:
    """Title of the interpolation figure (the two test images and their classes)."""
    return f"From test image {a} (class {label_a}) to test image {b} (class {label_b})"


def interpolation_caption() -> str:
    """Caption of the interpolation figure."""
    return ("Top: pixel-wise blend (mass fades in and out). Middle: the model's interpolation "
            "model.interpolate(a, b) = ψ((1−t)φ(a) + tφ(b)). Bottom, for reference: POT's entropic "
            "barycenter with weights (1−t, t) (ot.bregman.convolutional_barycenter2d, regularised), "
            "a displacement interpolation where mass moves. Both images are test images the model "
            "never saw. The ends of the middle row are the model's reconstructions ψ(φ(a)) and "
            "ψ(φ(b)), not the images themselves.")


def principal_row_label(c, direction: int, ratio: float) -> str:
    """Label of one decoded principal direction (class, direction from 1, explained variance ratio)."""
    return f"class {c}, direction {direction}\n({100 * ratio:.0f} % of variance)"


def principal_column_titles(scales) -> list[str]:
    """Column titles of the principal directions: the decoded mean and the multiples of σ."""
    return ["mean" if s == 0 else f"{s:+g}σ" for s in scales]


def principal_title() -> str:
    """Title of the principal-directions figure."""
    return "Principal directions of the embedding, decoded (principal geodesic analysis)"


def _signed(s: float) -> str:
    return f"{s:+g}".replace("-", "−")


def principal_caption(scales) -> str:
    """Caption of the principal-directions figure (``scales``: where the directions are decoded)."""
    return ("For each class, PCA of the embeddings φ(x) of its training images "
            "(model.principal_directions); each row decodes ψ(mean + s·σ·v) along one direction v "
            f"for s from {_signed(min(scales))} to {_signed(max(scales))} standard deviations σ. Columns 'mean' "
            "show the decoded mean embedding (the model's barycenter of all the class's training images).")
