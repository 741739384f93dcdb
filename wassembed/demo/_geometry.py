"""Step 4b of the demo: class barycenters, an interpolation, principal directions, the saved model's check.

Each step returns the images its figure draws and the numbers of the report; the wording is in
:mod:`wassembed.demo._captions`. Only the public API is used (the model's methods and POT's entropic
barycenters for reference).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._captions import BARYCENTER_METHODS
from ._setup import DemoSetup
from ._sizes import ENTROPIC_REG, INTERPOLATION_CLASSES, INTERPOLATION_STEPS, PCA_CLASSES, PCA_SCALES

__all__ = ["Barycenters", "Interpolation", "PrincipalRows", "class_barycenters", "interpolation",
           "principal_directions", "model_file_check"]


def _pick_classes(labels, wanted, n):
    """Up to ``n`` classes, preferring ``wanted`` ones present in ``labels``."""
    present = [c for c in wanted if c in set(labels.tolist())]
    rest = [c for c in np.unique(labels).tolist() if c not in present]
    return (present + rest)[:n]


def _entropic_barycenter(images, n_iter: int, weights=None) -> np.ndarray:
    """POT's convolutional (entropic, regularised) W₂ barycenter of ``images`` ``(n, H, W)``."""
    import ot

    return ot.bregman.convolutional_barycenter2d(images, ENTROPIC_REG, weights=weights, numItermax=n_iter,
                                                 stopThr=1e-7, warn=False)


@dataclass(frozen=True)
class Barycenters:
    """Per method (:data:`BARYCENTER_METHODS`), the class barycenters ``(classes, H, W)``; and the numbers."""

    images: dict
    numbers: dict

    @property
    def classes(self) -> list:
        """The classes, in the order of the images."""
        return self.numbers["classes"]


def _three_barycenters(setup: DemoSetup, model, Xc) -> dict:
    """Pixel mean, the model's barycenter and POT's entropic one of ``Xc``, as histograms summing to 1."""
    pixel, embedding, entropic = BARYCENTER_METHODS
    bars = {pixel: Xc.mean(0),
            embedding: np.asarray(model.barycenter(Xc), dtype=np.float64).reshape(-1),
            entropic: _entropic_barycenter(Xc.reshape(-1, *setup.grid), setup.sizes["bary_iter"]).ravel()}
    out = {}
    for key, b in bars.items():
        b = np.maximum(np.asarray(b, dtype=np.float64), 0)
        out[key] = b / b.sum()
    return out


def class_barycenters(setup: DemoSetup, model) -> Barycenters:
    """Barycenters of the first ``bary_images`` training images of each class, three ways, scored exactly.

    A W₂ barycenter minimises the mean W₂² to the members; that mean is solved exactly for each.

    Returns
    -------
    Barycenters
        ``numbers``: ``classes``, ``images_per_class``, ``seconds``, ``mean_exact_w2_to_members`` (per
        method) and ``per_class`` (per method, one mean per class).
    """
    import wassembed

    cut, labels, W = setup.cut, setup.labels, setup.weights
    solver = wassembed.ExactSolver(np.array(setup.hs.ground_cost(2)), 2)
    classes = np.unique(labels[:cut]).tolist() if setup.has_labels else [0]
    nb = setup.sizes["bary_images"]
    rows = {key: [] for key in BARYCENTER_METHODS}
    objective = {key: [] for key in BARYCENTER_METHODS}
    t0 = time.perf_counter()
    for c in classes:
        members = np.flatnonzero(labels[:cut] == c)[:nb]
        Xc = W[members]
        for key, b in _three_barycenters(setup, model, Xc).items():
            rows[key].append(b.reshape(setup.grid))
            objective[key].append(float(np.mean(solver.solve_pairs(np.vstack([b[None], Xc]),
                                                                    np.zeros(len(members), np.int64),
                                                                    np.arange(1, len(members) + 1)))))
    numbers = {"classes": classes, "images_per_class": nb, "seconds": time.perf_counter() - t0,
               "mean_exact_w2_to_members": {key: float(np.mean(v)) for key, v in objective.items()},
               "per_class": {key: v for key, v in objective.items()}}
    return Barycenters(images={key: np.stack(v) for key, v in rows.items()}, numbers=numbers)


@dataclass(frozen=True)
class Interpolation:
    """Paths ``(steps, H, W)`` from test image ``a`` to test image ``b`` at times ``ts``, three ways."""

    a: int
    b: int
    label_a: int
    label_b: int
    ts: np.ndarray
    pixel: np.ndarray
    embedding: np.ndarray
    entropic: np.ndarray


def _interpolation_ends(setup: DemoSetup) -> tuple[int, int]:
    """Two test images, of two preferred classes when the data has labels."""
    labels, test_idx = setup.labels, setup.test_idx
    pair_classes = _pick_classes(labels[test_idx], INTERPOLATION_CLASSES, 2) if setup.has_labels else [0, 0]
    ia = int(test_idx[labels[test_idx] == pair_classes[0]][0])
    cand_b = test_idx[(labels[test_idx] == pair_classes[1]) & (test_idx != ia)]
    ib = int(cand_b[0]) if cand_b.size else int(test_idx[1])
    return ia, ib


def interpolation(setup: DemoSetup, model) -> Interpolation:
    """Pixel blend, ``model.interpolate`` and POT's entropic barycenters with weights ``(1 − t, t)``."""
    W = setup.weights
    ia, ib = _interpolation_ends(setup)
    ts = np.linspace(0, 1, INTERPOLATION_STEPS)
    path_emb = np.asarray(model.interpolate(W[ia], W[ib], steps=INTERPOLATION_STEPS), dtype=np.float64)
    pair = np.stack([W[ia].reshape(setup.grid), W[ib].reshape(setup.grid)])
    path_pot = np.stack([_entropic_barycenter(pair, setup.sizes["bary_iter"], weights=np.array([1 - t, t]))
                         for t in ts])
    path_lin = np.stack([(1 - t) * W[ia] + t * W[ib] for t in ts])
    return Interpolation(a=ia, b=ib, label_a=setup.labels[ia], label_b=setup.labels[ib], ts=ts,
                         pixel=setup.images(path_lin), embedding=path_emb, entropic=path_pot)


@dataclass(frozen=True)
class PrincipalRows:
    """Decoded principal directions: one row ``(scales, H, W)`` per (class, direction), and the numbers.

    ``rows[r]`` is direction ``directions[r] = (class, m, explained variance ratio)`` (``m`` from 1).
    """

    rows: list
    directions: list
    numbers: dict


def principal_directions(setup: DemoSetup, model, n_components: int = 2) -> PrincipalRows:
    """``model.principal_directions`` of the training images of a few classes.

    Returns
    -------
    PrincipalRows
        ``numbers``: ``classes``, ``scales`` and ``per_class`` (``images``, ``std``,
        ``explained_variance_ratio``).
    """
    cut, labels = setup.cut, setup.labels
    pcs = _pick_classes(labels[:cut], PCA_CLASSES, setup.sizes["pca_classes"]) if setup.has_labels else [0]
    rows, directions, info = [], [], {}
    for c in pcs:
        members = np.flatnonzero(labels[:cut] == c)
        pdir = model.principal_directions(setup.weights[members], n_components=n_components, scales=PCA_SCALES)
        hist = np.asarray(pdir.histograms, dtype=np.float64)
        for m in range(hist.shape[0]):
            rows.append(hist[m].reshape(len(PCA_SCALES), *setup.grid))
            directions.append((c, m + 1, float(pdir.explained_variance_ratio[m])))
        info[str(c)] = {"images": int(members.size), "std": pdir.std.tolist(),
                        "explained_variance_ratio": pdir.explained_variance_ratio.tolist()}
    numbers = {"classes": pcs, "scales": list(PCA_SCALES), "per_class": info}
    return PrincipalRows(rows=rows, directions=directions, numbers=numbers)


def model_file_check(setup: DemoSetup, model, model_dir, n: int = 50) -> float:
    """Largest difference between the embeddings of the model and of its saved files (0 expected)."""
    import wassembed

    again = wassembed.load(model_dir)
    X = setup.weights[setup.test_idx[:n]]
    return float(np.max(np.abs(np.asarray(again.embed(X)) - np.asarray(model.embed(X)))))
