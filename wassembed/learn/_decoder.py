"""The decoder phase: the decoder fitted alone to the chosen encoder, after the pair epochs.

Early stopping picks the epoch whose *encoder* predicts the validation distances best, and the decoder of that
epoch comes with it. After a distillation phase the pair epochs are few and run at the fine-tuning rate, so that
decoder may have had a few hundred small steps: on the 8×8 digits it decoded every latent point to nearly the
same blur. With ``decoder_epochs > 0`` the decoder ψ is then trained alone, the encoder φ frozen:

.. math:: \\min_\\psi \\frac{1}{|B|} \\sum_{x \\in B} R\\big(x, \\psi(\\varphi(x))\\big)

over the training images (``R`` the run's reconstruction term: the KL for histograms, the Sinkhorn divergence
for point clouds), Adam with a cosine decay from ``lr`` to ``lr / 100``, seeded batch order. Distances are
unchanged (they are the encoder's); decoded barycenters, interpolations and principal directions, and the
reconstruction out-of-distribution score (calibrated afterwards on the held-out images) use the new decoder.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ._predict import embed_rows

__all__ = ["fit_decoder"]


def fit_decoder(encoder: nn.Module, decoder: nn.Module, X: torch.Tensor, rows: np.ndarray, *, epochs: int,
                lr: float, batch: int, seed: int, reconstruction) -> dict:
    """Train ``decoder`` alone on the inputs ``X[rows]`` through the frozen ``encoder``.

    Parameters
    ----------
    encoder : torch.nn.Module
        Not changed (its embeddings are computed once, without gradient).
    decoder : torch.nn.Module
        Trained in place (its own optimizer), left in eval mode.
    X : Tensor, shape (n, ...)
        Every input of the cache, on the networks' device.
    rows : ndarray, shape (m,), int
        The training inputs.
    epochs, batch : int
        Passes over the inputs and inputs per step.
    lr : float
        Peak learning rate.
    seed : int
    reconstruction : callable
        ``reconstruction(decoded, x)``: the mean reconstruction loss of a batch (the training objective's).

    Returns
    -------
    dict
        ``epochs``, ``first_loss`` and ``final_loss`` (mean reconstruction loss of the first and last epochs),
        ``seconds``.

    Examples
    --------
    >>> from wassembed.learn._losses import ReconstructionLoss
    >>> X = torch.eye(4)
    >>> dec = nn.Linear(4, 4)
    >>> out = fit_decoder(nn.Identity(), dec, X, np.arange(4), epochs=50, lr=0.1, batch=4, seed=0,
    ...                   reconstruction=ReconstructionLoss())
    >>> out["final_loss"] < out["first_loss"]
    True
    """
    t0 = time.time()
    dev = X.device
    rows = np.asarray(rows, dtype=np.int64)
    Z = embed_rows(encoder, X, rows)  # no gradient: the encoder is frozen
    R = torch.as_tensor(rows, device=dev)
    opt = torch.optim.Adam(decoder.parameters(), lr=lr)
    steps = epochs * -(-rows.size // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr / 100)
    rng = np.random.default_rng([int(seed), 0xDEC])  # its own stream
    decoder.train()
    losses = []
    for _ in range(epochs):
        perm = torch.as_tensor(rng.permutation(rows.size), device=dev)
        total = torch.zeros((), device=dev)
        for s in range(0, rows.size, batch):
            b = perm[s:s + batch]
            loss = reconstruction(decoder(Z[b]), X[R[b]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total = total + loss.detach() * b.numel()
        losses.append(float(total) / max(rows.size, 1))  # one host read per epoch
    decoder.eval()
    return {"epochs": int(epochs), "first_loss": losses[0] if losses else float("nan"),
            "final_loss": losses[-1] if losses else float("nan"), "seconds": time.time() - t0}
