"""Geometry in the embedding: barycenters, geodesic interpolation and principal directions, decoded.

The embedding is (approximately) isometric to the Wasserstein space, so Euclidean operations on embeddings
followed by the decoder :math:`\\psi` give approximate Wasserstein barycenters
:math:`\\psi(\\sum_i \\alpha_i \\varphi(x_i))`, displacement interpolations and principal geodesics (Courty,
Flamary & Ducoffe, ICLR 2018). These functions take the served model as their first argument; the methods
of :class:`~wassembed.serve.WassersteinEmbedding` of the same names call them. Decoded histograms have the
shape of the model's inputs (the model's ``decode``): images ``(…, H, W)`` for a grid model, ``(…, k)``
otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .._validation import check_pos_int
from ..errors import InputError, explain
from ._inputs import rewrap, unwrap

__all__ = ["PrincipalDirections", "barycenter", "interpolate", "principal_directions"]

DEFAULT_SCALES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


class PrincipalDirections(NamedTuple):
    """PCA in the embedding, decoded along each direction (principal geodesic analysis)."""
    histograms: object          # (n_components, len(scales), H, W) or (…, k): ψ(mean + s σ_c v_c)
    mean: np.ndarray            # (d,)
    components: np.ndarray      # (n_components, d), unit vectors
    std: np.ndarray             # (n_components,), σ_c
    explained_variance_ratio: np.ndarray
    scales: tuple


def _barycenter_weights(weights, n: int) -> np.ndarray:
    """Weights α ``(n,)`` normalised to sum 1 (uniform when None)."""
    if weights is None:
        return np.full(n, 1.0 / n)
    a = np.asarray(unwrap(weights)[0], dtype=np.float64).ravel()
    if a.shape[0] != n or not np.isfinite(a).all() or (a < 0).any() or a.sum() <= 0:
        raise InputError(explain("bad barycenter weights", expected=f"{n} finite nonnegative "
                                 "weights with a positive sum", received=f"{a.shape[0]} weights "
                                 f"(min {a.min() if a.size else 'n/a'})", fix="one weight per input"))
    return a / a.sum()


def barycenter(model, X, weights=None, *, device=None):
    """Approximate Wasserstein barycenter ``ψ(Σ αᵢ φ(xᵢ))`` of ``X`` under ``model``: ``(H, W)`` or ``(k,)``."""
    Z, like, dev = model._embed_input(X, "X", device, None)
    a = _barycenter_weights(weights, Z.shape[0])
    zbar = (torch.from_numpy(a).to(dev, torch.float32)[:, None] * Z).sum(0, keepdim=True)
    return model.decode(rewrap(zbar, like), device=dev)[0]


def interpolate(model, a, b, steps: int = 5, *, device=None):
    """Decoded path ``ψ((1 − t) φ(a) + t φ(b))`` for ``t = 0 … 1``: ``(steps, H, W)`` or ``(steps, k)``."""
    steps = check_pos_int("steps", steps)
    za, like, dev = model._embed_input(a, "a", device, None)
    zb = model._embed_input(b, "b", dev, None)[0]
    for zx, name in ((za, "a"), (zb, "b")):
        if zx.shape[0] != 1:
            raise InputError(explain(f"{name} must be one input", expected="one input (an image (H, W), a histogram "
                                     "(k,) or one cloud)", received=f"{zx.shape[0]} inputs", fix=f"pass {name}[i]"))
    z = torch.cat([za, zb])
    t = torch.linspace(0, 1, steps, device=dev)[:, None]
    return model.decode(rewrap((1 - t) * z[0] + t * z[1], like), device=dev)


def principal_directions(model, X, n_components: int = 3, scales=DEFAULT_SCALES, *,
                         device=None) -> PrincipalDirections:
    """PCA of the embeddings of ``X``, each direction decoded at ``mean + s σ v`` (the paper's PGA)."""
    Z, like, dev = model._embed_input(X, "X", device, None)
    Z = Z.double().cpu().numpy()
    n_components = check_pos_int("n_components", n_components)
    if n_components > min(Z.shape[0] - 1, Z.shape[1]) or Z.shape[0] < 2:
        raise InputError(explain("too many principal directions", expected=f"n_components <= "
                                 f"{max(min(Z.shape[0] - 1, Z.shape[1]), 0)} (inputs − 1, embedding size)",
                                 received=str(n_components), fix="lower n_components or pass more inputs"))
    scales = tuple(float(s) for s in scales)
    mean = Z.mean(0)
    _, sv, vt = np.linalg.svd(Z - mean, full_matrices=False)
    var = sv ** 2 / (Z.shape[0] - 1)
    comps, std = vt[:n_components], np.sqrt(var[:n_components])
    pts = mean + np.asarray(scales)[None, :, None] * (std[:, None, None] * comps[:, None, :])
    H = model.decode(pts.reshape(-1, Z.shape[1]).astype(np.float32), device=dev)
    H = torch.from_numpy(H).reshape(n_components, len(scales), *H.shape[1:])
    return PrincipalDirections(rewrap(H, like), mean, comps, std, var[:n_components] / var.sum(), scales)
