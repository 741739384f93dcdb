"""Out-of-distribution check: inputs unlike the training data.

Three scores, each with reference scores of inputs of the training data that the score's reference never saw
(like new inputs): the images held out at training and, for ``"pca"`` and ``"latent"``, the training images
cross-fitted (each block of them scored against a reference fitted on the others:
:func:`wassembed.learn._calibration.cross_fitted`). An input is flagged when its score exceeds their conformal
``level`` quantile (:func:`ood_threshold`, 99 % by default): a new input drawn like the training data is then
flagged with probability at most ``1 − level`` (its false-alarm rate, measured in ``docs/calibration.md``).

* ``"pca"`` (the default of models that store its reference): the distance of :math:`\\sqrt{x}` (the
  Hellinger map of the histogram) to the principal subspace of the training images,
  :math:`\\|c\\|^2 - \\|V^\\top c\\|^2` with :math:`c = \\sqrt{x} - m`, where :math:`m` is the mean of the
  training images' :math:`\\sqrt{x}` and :math:`V` ``(k, q)`` their first :math:`q` principal directions
  (:func:`pca_reference`). It needs no network: one ``(n, k) × (k, q)`` product, about a tenth of the cost of
  the ``fast`` encoder on 28×28 images. Stored as ``calibration["pca_mean"]``, ``["pca_basis"]`` and
  ``["pca_scores"]`` (the held-out images').
* ``"reconstruction"``: the reconstruction error :math:`KL(x \\| \\mathrm{softmax}(\\psi(\\varphi(x))))`
  (:func:`wassembed.nn.reconstruction_kl`, the function training minimises): one decoder pass per input,
  several times the cost of the encoder's. Stored as ``calibration["train_recon"]``; the default of models
  without the arrays above (files written before them).

* ``"latent"`` (the default of point-cloud models, which have neither pixels nor a cheap reconstruction): the
  Mahalanobis distance of the embedding :math:`z = \\varphi(x)` to the training embeddings,
  :math:`\\|(z - \\bar z) A\\|^2` with :math:`A = (\\Sigma + \\epsilon I)^{-1/2}` (:func:`latent_reference`),
  free once the encoder has run. Stored as ``calibration["latent_mean"]``, ``["latent_whiten"]`` and
  ``["latent_scores"]``.

On images, latent scores (this Mahalanobis distance, the distance to the nearest training embedding) flag far
fewer foreign images than ``"pca"``; see "Out-of-distribution check" in ``docs/benchmarks-serving.md``
(``wassembed bench ood``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..errors import InputError, explain, param
from . import _forward
from ._conformal import check_level, conformal_quantile
from ._warnings import ServingWarning

__all__ = ["MAX_COMPONENTS", "MAX_FIT_IMAGES", "SCORES", "OutOfDistributionWarning", "batch_score", "default_score",
           "encode", "has_reference", "latent_reference", "latent_scores", "n_components", "ood_threshold",
           "pca_reference", "pca_scores", "resolve_score", "scores", "warn_if_ood", "warn_score"]

#: the scores a model can compute, and the calibration array of each that holds the held-out images' scores
SCORES = {"pca": "pca_scores", "latent": "latent_scores", "reconstruction": "train_recon"}
#: the reference arrays each score needs besides the held-out scores
_REFERENCE = {"pca": ("pca_mean", "pca_basis"), "latent": ("latent_mean", "latent_whiten"), "reconstruction": ()}
#: most principal directions kept (``q = min(k // 8, MAX_COMPONENTS)``: 98 for 28×28 images)
MAX_COMPONENTS = 128
#: most training images the principal directions are fitted on (evenly spaced among them)
MAX_FIT_IMAGES = 10_000
_WHAT = {"pca": "lie farther from the principal subspace of the training images than",
         "latent": "embed farther from the training embeddings (Mahalanobis) than",
         "reconstruction": "reconstruct worse than"}


class OutOfDistributionWarning(ServingWarning):
    """Some inputs score above 99 % of the training data's unseen inputs: estimates may be unreliable."""


def n_components(k: int, n_images: int) -> int:
    """Principal directions kept for ``k`` bins fitted on ``n_images``: ``k // 8``, at most
    :data:`MAX_COMPONENTS` and fewer than the images, at least 1.

    Examples
    --------
    >>> n_components(784, 5000), n_components(64, 1500), n_components(784, 20)
    (98, 8, 19)
    """
    return max(1, min(k // 8, MAX_COMPONENTS, n_images - 1))


def pca_reference(X, q: int | None = None) -> dict:
    """The reference of the ``"pca"`` score from training histograms ``X (n, k)`` (rows summing to 1).

    Parameters
    ----------
    X : Tensor or ndarray, shape (n, k)
        Histograms of training images (any device; at most :data:`MAX_FIT_IMAGES`, evenly spaced, are used).
    q : int, optional
        Principal directions kept (default :func:`n_components`; at most ``min(n, k)``).

    Returns
    -------
    dict
        ``pca_mean (k,)`` and ``pca_basis (k, q)`` float64 numpy arrays (orthonormal columns, the first
        ``q`` principal directions of :math:`\\sqrt{x}`).

    Examples
    --------
    >>> ref = pca_reference(np.eye(4)[[0, 1, 0, 1, 0, 1, 2, 3, 2, 3]] * 0.5 + 0.125)
    >>> ref["pca_mean"].shape, ref["pca_basis"].shape
    ((4,), (4, 1))
    """
    X = torch.as_tensor(X)
    if X.shape[0] > MAX_FIT_IMAGES:
        X = X[torch.linspace(0, X.shape[0] - 1, MAX_FIT_IMAGES, device=X.device).round().long()]
    S = X.double().clamp_min(0).sqrt()
    mean = S.mean(0)
    C = S - mean
    q = min(q or n_components(S.shape[1], S.shape[0]), *S.shape)
    if C.shape[0] >= C.shape[1]:   # eigenvectors of the (k, k) scatter
        vals, vecs = torch.linalg.eigh(C.T @ C)
        basis = vecs[:, -q:].flip(1)
    else:                          # through the (n, n) Gram matrix: C^T u / ||C^T u||
        vals, vecs = torch.linalg.eigh(C @ C.T)
        basis = C.T @ vecs[:, -q:].flip(1)
        basis = basis / basis.norm(dim=0).clamp_min(1e-300)
    return {"pca_mean": mean.cpu().numpy(), "pca_basis": np.ascontiguousarray(basis.cpu().numpy())}


def pca_scores(x: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``"pca"`` scores ``(n,)`` float64 of histograms ``x (n, k)`` (rows summing to 1): the squared distance
    of :math:`\\sqrt{x}` to the affine subspace ``mean + span(basis)`` (tensors on ``x``'s device and dtype).

    Examples
    --------
    >>> mean, basis = torch.full((2,), 0.5 ** 0.5), torch.tensor([[0.5 ** 0.5], [-(0.5 ** 0.5)]])
    >>> pca_scores(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), mean, basis).round(decimals=4).tolist()
    [0.0, 0.0858]
    """
    c = _sqrt(x) - mean
    return ((c * c).sum(1) - (c @ basis).square().sum(1)).clamp_min(0).double()


def latent_reference(Z, ridge: float = 1e-3) -> dict:
    """The reference of the ``"latent"`` score from training embeddings ``Z (n, d)``.

    .. math:: A = (\\Sigma + \\epsilon I)^{-1/2}, \\qquad \\epsilon = \\mathrm{ridge} \\cdot \\mathrm{tr}(\\Sigma) / d,

    with :math:`\\Sigma` the covariance of the embeddings (at most :data:`MAX_FIT_IMAGES`, evenly spaced).

    Parameters
    ----------
    Z : Tensor or ndarray, shape (n, d)
        Embeddings of training inputs (n >= 2).
    ridge : float
        Relative regularisation of the covariance (flat directions do not blow the score up).

    Returns
    -------
    dict
        ``latent_mean (d,)`` and ``latent_whiten (d, d)`` float64 numpy arrays.

    Examples
    --------
    >>> ref = latent_reference(np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]]))
    >>> ref["latent_mean"].tolist(), ref["latent_whiten"].shape
    ([1.0, 1.0], (2, 2))
    """
    Z = torch.as_tensor(Z).double()
    if Z.shape[0] > MAX_FIT_IMAGES:
        Z = Z[torch.linspace(0, Z.shape[0] - 1, MAX_FIT_IMAGES, device=Z.device).round().long()]
    mean = Z.mean(0)
    C = Z - mean
    cov = C.T @ C / max(Z.shape[0] - 1, 1)
    eps = ridge * float(torch.trace(cov)) / cov.shape[0] or 1e-12
    vals, vecs = torch.linalg.eigh(cov + eps * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device))
    whiten = vecs @ torch.diag(vals.clamp_min(1e-300).rsqrt()) @ vecs.T
    return {"latent_mean": mean.cpu().numpy(), "latent_whiten": whiten.cpu().numpy()}


def latent_scores(z: torch.Tensor, mean: torch.Tensor, whiten: torch.Tensor) -> torch.Tensor:
    """``"latent"`` scores ``(n,)`` float64 of embeddings ``z (n, d)``: :math:`\\|(z - \\bar z) A\\|^2`.

    Examples
    --------
    >>> latent_scores(torch.tensor([[3.0, 1.0]]), torch.tensor([1.0, 1.0]), torch.eye(2)).tolist()
    [4.0]
    """
    return ((z.float() - mean) @ whiten).square().sum(1).double()


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """``x.sqrt()``; on the CPU through numpy (the same correctly rounded values): torch's float32 square root
    of zeros, most of a digit image's bins, takes several times longer (measured: 1.9 vs 0.3 µs per 28×28 image)."""
    if x.device.type == "cpu" and not x.requires_grad:
        return torch.from_numpy(np.sqrt(x.numpy()))
    return x.sqrt()


def _tensors(calibration: dict, score: str, dev: torch.device, cache: dict):
    """The reference arrays of ``score`` as float32 tensors on ``dev``, converted once per device and score and
    stored in ``cache``."""
    names = _REFERENCE[score]
    key = (dev, *(id(calibration[a]) for a in names))
    got = cache.get((dev, score))
    if got is None or got[0] != key:
        got = (key, *(torch.as_tensor(np.ascontiguousarray(calibration[a]), dtype=torch.float32, device=dev)
                      for a in names))  # one memory layout: the same sums, file or not
        cache[(dev, score)] = got
    return got[1:]


def batch_score(score: str | None, calibration: dict, dev: torch.device, cache: dict):
    """For ``"pca"`` and ``"latent"``: a function ``(x, z) -> (b,)`` float64 of a float32 input batch ``x`` and
    its embeddings ``z`` (on ``dev``); None for the other scores (``"reconstruction"`` needs the decoder)."""
    if score == "pca":
        mean, basis = _tensors(calibration, "pca", dev, cache)
        return lambda x, z: pca_scores(x, mean, basis)
    if score == "latent":
        mean, whiten = _tensors(calibration, "latent", dev, cache)
        return lambda x, z: latent_scores(z, mean, whiten)
    return None


def _has(calibration: dict, score: str) -> bool:
    return all(calibration.get(a) is not None for a in (*_REFERENCE[score], SCORES[score]))


def default_score(calibration: dict) -> str:
    """``"pca"`` when ``calibration`` holds its reference (``pca_mean``, ``pca_basis``, ``pca_scores``), else
    ``"latent"`` when it holds that one (point-cloud models), else ``"reconstruction"`` (models saved before the
    ``"pca"`` score)."""
    return next((s for s in ("pca", "latent") if _has(calibration, s)), "reconstruction")


def resolve_score(calibration: dict, score: str | None) -> str:
    """``score``, checked, or the model's default (:func:`default_score`) when None."""
    if score is None:
        return default_score(calibration)
    if score not in SCORES:
        raise InputError(explain("unknown out-of-distribution score", expected=" or ".join(map(repr, SCORES)),
                                 received=repr(score), fix="pass one of them, or None for the model's default"))
    missing = [a for a in _REFERENCE[score] if calibration.get(a) is None]
    if missing:
        raise InputError(explain(f"this model has no {score!r} out-of-distribution reference",
                                 expected=f"calibration{missing} stored at training time",
                                 received="a model without them (another kind of model, or saved before the score)",
                                 fix=f"use score={default_score(calibration)!r} (the model's default), or train the "
                                     "model again"))
    return score


def has_reference(calibration: dict, score: str | None = None) -> bool:
    """Whether ``calibration`` holds the held-out images' scores of ``score`` (default: the model's)."""
    ref = calibration.get(SCORES.get(score or default_score(calibration), ""))
    return ref is not None and np.size(ref) > 0


def warn_score(calibration: dict, warn_ood) -> str | None:
    """The score a call with ``warn_ood`` checks: None for False (or a model without any reference), the
    model's default for True, ``warn_ood`` itself for a score's name (checked)."""
    if not isinstance(warn_ood, str):
        score = default_score(calibration)
        return score if warn_ood and has_reference(calibration, score) else None
    score = resolve_score(calibration, warn_ood)
    ood_threshold(calibration, score=score)  # refuses a model without the held-out scores
    return score


def ood_threshold(calibration: dict, level: float = 0.99, *, score: str | None = None) -> float:
    """The conformal ``level`` quantile of the reference scores of ``score`` (default: the model's).

    With ``n`` reference scores (inputs the score's reference never saw: the held-out images, and for
    ``"pca"`` and ``"latent"`` the cross-fitted training images), the threshold is the
    :math:`\\lceil (n+1)\\,\\text{level} \\rceil`-th smallest. If a new input is exchangeable with the
    reference inputs (drawn the same way), it exceeds the threshold with probability at most ``1 - level``
    (averaged over the draws of the reference inputs; for one model the rate varies around it by about
    :math:`\\sqrt{\\text{level}(1 - \\text{level}) / n}`). With fewer than :math:`1/(1 - \\text{level}) - 1`
    scores no rank serves the level: the threshold is then the largest score (false alarms about
    :math:`1/(n+1)`, more than ``1 - level``).

    Examples
    --------
    >>> ood_threshold({"train_recon": np.arange(1.0, 201.0)}, 0.99)  # ceil(201 * 0.99) = 199th of 200
    199.0
    >>> ood_threshold({"train_recon": np.arange(1.0, 11.0)}, 0.99)  # too few: the largest
    10.0
    """
    score = resolve_score(calibration, score)
    ref = calibration.get(SCORES[score])
    if ref is None or np.size(ref) == 0:
        raise InputError(explain("no out-of-distribution reference", expected=f"calibration['{SCORES[score]}'] "
                                 "stored at training time", received="a model without it",
                                 fix="use a model from wassembed.train"))
    ref = np.asarray(ref, dtype=np.float64)
    q = conformal_quantile(ref, check_level(level, "OOD"))
    return q if math.isfinite(q) else float(ref.max())


def encode(enc, dec, w: np.ndarray, dev: torch.device, batch_size: int, *, score: str | None, calibration: dict,
           cache: dict):
    """Embeddings ``(n, d)`` float32 on ``dev`` of histograms ``w (n, k)`` and, for a ``score``, the inputs'
    scores ``(n,)`` float64 numpy, computed in the same batches as the encoder (:func:`batch_score`).
    ``cache`` keeps the references' tensors per device."""
    batches = (torch.from_numpy(w[s:s + batch_size]).to(dev, torch.float32) for s in range(0, w.shape[0], batch_size))
    Z, s = _forward.encode_batches(enc, dec, batches, recon=score == "reconstruction",
                                   score=batch_score(score, calibration, dev, cache))
    return Z if score is None else (Z, s.cpu().numpy())


def warn_if_ood(scores, threshold: float, *, score: str = "reconstruction", stacklevel: int = 3) -> int:
    """Warn (:class:`OutOfDistributionWarning`) when some of the ``scores`` (arrays of the score ``score``)
    exceed ``threshold``; returns how many do. ``stacklevel`` 3 points at the caller of the method that calls
    this."""
    flagged = int(sum((np.asarray(s) > threshold).sum() for s in scores))
    if flagged:
        total = sum(np.size(s) for s in scores)
        warnings.warn(f"{flagged} of {total} inputs {_WHAT[score]} 99 % of the training data's inputs unseen by "
                      f"the score's reference (out of distribution? score '{score}'; about 1 % of inputs like the "
                      f"training data are flagged): estimates may be unreliable; pass "
                      f"{param('warn_ood', False)} to silence", OutOfDistributionWarning, stacklevel=stacklevel)
    return flagged


def scores(w: np.ndarray, dev: torch.device, batch_size: int, *, calibration: dict, cache: dict) -> np.ndarray:
    """``"pca"`` scores ``(n,)`` float64 of histograms ``w (n, k)``, without a network pass (the other scores
    come with the embeddings: :func:`encode`)."""
    mean, basis = _tensors(calibration, "pca", dev, cache)
    with torch.inference_mode():
        out = [pca_scores(torch.from_numpy(w[s:s + batch_size]).to(dev, torch.float32), mean, basis)
               for s in range(0, w.shape[0], batch_size)]
    return torch.cat(out).cpu().numpy()
