"""Networks for weighted point clouds: packing, a permutation-invariant encoder, a fixed-size decoder.

A set of clouds :math:`\\mu_i = \\sum_u w_{iu} \\delta_{x_{iu}}` (:math:`x_{iu} \\in \\mathbb{R}^d`) is packed
as one float32 tensor ``(n, kmax, d + 1)``: the coordinates in the first ``d`` channels, the weight in the
last one, and rows of weight 0 as padding. So ``encoder(X[idx])`` works as for histograms.

The encoder :math:`\\varphi` uses the weights only to pool, never as a point feature, so it is invariant to
the order of the points, to padding and to splitting a point into two copies of half its weight:

* ``"deepsets"``: :math:`\\rho\\big(\\sum_u w_u h(x_u)\\big)` with per-point and head MLPs :math:`h, \\rho`;
* ``"attention"``: learned queries :math:`q_t` attend over the points with logits
  :math:`q_t \\cdot k(x_u) / \\sqrt{c} + \\log w_u`, i.e. a softmax weighted by the masses;
* ``"transformer"``: self-attention blocks with the same :math:`\\log w` bias on the keys, then
  :math:`\\sum_u w_u h_u`.

With ``centre`` the encoder encodes the centred cloud and appends the exact weighted mean
:math:`m = \\sum_u w_u x_u`, so the latent distance holds :math:`\\|m_\\mu - m_\\nu\\|^2`, the exact
translation part of :math:`W_2^2(\\mu, \\nu) = \\|m_\\mu - m_\\nu\\|^2 + W_2^2(\\bar\\mu, \\bar\\nu)`.
Coordinates enter divided by ``coord_scale`` and the embedding leaves multiplied by it (W2 scales linearly).

The decoder :math:`\\psi` maps an embedding to ``decoder_points`` points and softmax weights, packed the same
way (with ``centre``, the appended mean is added back exactly).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import POINT_CLOUDS, PointCloudSet, as_dataset
from ..errors import InputError, explain

__all__ = ["SetDecoder", "SetEncoder", "pack_clouds", "suggest_coord_scale", "unpack_cloud"]


def pack_clouds(clouds: PointCloudSet, max_points: int | None = None) -> np.ndarray:
    """Pack every cloud of ``clouds`` into one float32 array: coordinates, then the weight (0 = padding).

    Parameters
    ----------
    clouds : PointCloudSet
        ``n`` clouds in dimension ``d``.
    max_points : int, optional
        Pad to this many points (default: the largest cloud); smaller than a cloud is an error.

    Returns
    -------
    ndarray, shape (n, kmax, d + 1), float32
        ``out[i, u, :d]`` the points, ``out[i, u, d]`` their weights (each row sums to 1).

    Examples
    --------
    >>> cs = PointCloudSet.from_clouds([np.zeros((2, 2)), (np.ones((1, 2)), [1.0])])
    >>> X = pack_clouds(cs)
    >>> X.shape, X[:, :, 2].tolist()
    ((2, 2, 3), [[0.5, 0.5], [1.0, 0.0]])
    """
    return as_dataset(clouds, "clouds to pack", kind=POINT_CLOUDS).packed(max_points=max_points)


def unpack_cloud(row) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`pack_clouds` for one row: ``(points (k, d), weights (k,))`` without padding.

    Parameters
    ----------
    row : ndarray or Tensor, shape (kmax, d + 1)
        One packed cloud (an input or a decoder output).

    Returns
    -------
    points : ndarray, shape (k, d), float64
        The points of positive weight, in their order.
    weights : ndarray, shape (k,), float64
        Their weights, divided by their sum.

    Examples
    --------
    >>> p, w = unpack_cloud(np.array([[0.0, 1.0, 0.25], [2.0, 3.0, 0.75], [0.0, 0.0, 0.0]]))
    >>> p.tolist(), w.tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [0.25, 0.75])
    """
    r = row.detach().cpu().numpy() if isinstance(row, torch.Tensor) else np.asarray(row)
    if r.ndim != 2 or r.shape[1] < 2 or not np.issubdtype(r.dtype, np.number):
        raise InputError(explain("bad packed cloud", expected="a numeric (kmax, d + 1) array",
                                 received=f"shape {r.shape}, dtype {r.dtype}", fix="pass one row of pack_clouds(...)"))
    r = r.astype(np.float64)
    keep = r[:, -1] > 0
    if not keep.any():
        raise InputError(explain("packed cloud has no mass", expected="a positive weight in the last channel",
                                 received="all weights <= 0", fix="pass a row of pack_clouds(...) or a decoder output"))
    return r[keep, :-1], r[keep, -1] / r[keep, -1].sum()


def suggest_coord_scale(clouds: PointCloudSet) -> float:
    """A ``coord_scale`` for ``clouds``: the root mean square radius of the clouds about their means.

    .. math:: s = \\Big(\\frac1n \\sum_i \\sum_u w_{iu} \\|x_{iu} - m_i\\|^2\\Big)^{1/2},
        \\qquad m_i = \\sum_u w_{iu} x_{iu},

    i.e. :math:`\\sqrt{\\mathrm{mean}_i\\, W_2^2(\\mu_i, \\delta_{m_i})}` (1.0 when every cloud is one point).

    Parameters
    ----------
    clouds : PointCloudSet
        ``n`` clouds.

    Returns
    -------
    float

    Examples
    --------
    >>> suggest_coord_scale(PointCloudSet.from_clouds([np.array([[0.0, 0.0], [4.0, 0.0]])]))
    2.0
    """
    clouds = as_dataset(clouds, "clouds", kind=POINT_CLOUDS)
    cloud_of = np.repeat(np.arange(clouds.n), clouds.sizes)
    w = clouds.weights[:, None]
    means = np.add.reduceat(w * clouds.points, clouds.offsets[:-1], axis=0)
    var = np.add.reduceat(w[:, 0] * ((clouds.points - means[cloud_of]) ** 2).sum(1), clouds.offsets[:-1])
    s = float(np.sqrt(var.mean()))
    return s if s > 0 else 1.0


def _mlp(sizes, activate_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(i, o))
        if a < len(sizes) - 2 or activate_last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _heads(t: torch.Tensor, parts: int, heads: int) -> list[torch.Tensor]:
    """``(n, k, parts * c)`` → ``parts`` tensors ``(n, heads, k, c / heads)``."""
    n, k, c = t.shape
    return list(t.reshape(n, k, parts, heads, c // (parts * heads)).permute(2, 0, 3, 1, 4).unbind(0))


class _Block(nn.Module):
    """Pre-norm self-attention block whose keys carry the bias ``log w`` (mass-weighted attention)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.ff = _mlp((width, 2 * width, width), activate_last=False)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = _heads(self.qkv(self.norm1(h)), 3, self.heads)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        h = h + self.proj(a.transpose(1, 2).reshape(h.shape))
        return h + self.ff(self.norm2(h))


class SetEncoder(nn.Module):
    """φ: packed clouds ``(n, kmax, d + 1)`` → embeddings ``(n, embed_dim)`` (see the module docstring).

    Parameters
    ----------
    cfg : ModelConfig
        A :class:`~wassembed.nn.SetConfig` (``point_dim``, ``set_encoder``, ``set_width``, ``set_layers``,
        ``set_heads``, ``set_queries``, ``hidden``, ``embed_dim``, ``centre``, ``coord_scale``).

    Examples
    --------
    >>> from wassembed.nn import ModelConfig
    >>> enc = SetEncoder(ModelConfig.preset("set", point_dim=2, max_points=5, embed_dim=8))
    >>> tuple(enc(torch.rand(3, 5, 3)).shape)
    (3, 8)
    """

    def __init__(self, cfg):
        super().__init__()
        self.d, self.mode, self.heads = cfg.point_dim, cfg.set_encoder, cfg.set_heads
        self.centre, self.scale = cfg.centre, float(cfg.coord_scale)
        width = cfg.set_width
        if self.mode == "transformer":
            self.points = nn.Linear(self.d, width)
            self.blocks = nn.ModuleList(_Block(width, cfg.set_heads) for _ in range(cfg.set_layers))
            self.norm = nn.LayerNorm(width)
        else:
            self.points = _mlp((self.d, *[width] * cfg.set_layers), activate_last=True)
        pooled = width
        if self.mode == "attention":
            self.queries = nn.Parameter(torch.randn(cfg.set_queries, width) / width ** 0.5)
            self.kv = nn.Linear(width, 2 * width)
            pooled = width * cfg.set_queries
        out = cfg.embed_dim - (self.d if self.centre else 0)
        self.head = _mlp((pooled, *cfg.hidden, out), activate_last=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[2] != self.d + 1:
            raise InputError(explain("bad packed clouds for the set encoder",
                                     expected=f"(n, kmax, {self.d + 1}): {self.d} coordinates, then the weight",
                                     received=f"shape {tuple(x.shape)}", fix="pack the clouds with pack_clouds"))
        pts, w = x[..., :self.d], x[..., self.d].float().clamp_min(0.0)
        real = (w > 0).any(0)  # columns that are padding in every row carry nothing: drop them
        if not bool(real.all()):
            pts, w = pts[:, real], w[:, real]
        w = w / w.sum(1, keepdim=True)
        mean = (w.unsqueeze(-1) * pts.float()).sum(1)
        if self.centre:
            pts = pts - mean.unsqueeze(1).to(pts.dtype)
        if self.mode == "deepsets":
            pooled = self._pool_points(pts, w)
        else:
            pooled = self._attend(pts, w)
        z = self.head(pooled) * self.scale
        return torch.cat([z.float(), mean], dim=1) if self.centre else z

    def _pool_points(self, pts: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """DeepSets pooling :math:`\\sum_u w_u h(x_u)` over the real points only (padding never enters the
        per-point MLP: on MNIST clouds half of a padded batch is padding)."""
        real = w > 0
        h = self.points(pts[real] / self.scale)
        rows = torch.arange(w.shape[0], device=w.device).repeat_interleave(real.sum(1))
        out = torch.zeros(w.shape[0], h.shape[1], dtype=h.dtype, device=h.device)
        return out.index_add_(0, rows, w[real].unsqueeze(-1).to(h.dtype) * h)

    def _attend(self, pts: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Attention pooling or transformer blocks over the padded points (padding masked by ``log w``)."""
        h = self.points(pts / self.scale)
        bias = torch.log(w.clamp_min(1e-30)).masked_fill(w <= 0, float("-inf"))[:, None, None, :]
        if self.mode == "transformer":
            for block in self.blocks:
                h = block(h, bias)
            h = self.norm(h)
        if self.mode == "attention":
            k, v = _heads(self.kv(h), 2, self.heads)
            q = _heads(self.queries.unsqueeze(0).to(k.dtype), 1, self.heads)[0].expand(h.shape[0], -1, -1, -1)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype)).transpose(1, 2).flatten(1)
        return (w.unsqueeze(-1).to(h.dtype) * h).sum(1)


class SetDecoder(nn.Module):
    """ψ: embeddings ``(n, embed_dim)`` → packed clouds ``(n, m, d + 1)`` of ``m = decoder_points`` points.

    The weights are a softmax over the ``m`` points (each row sums to 1); with ``centre`` the last ``d``
    entries of the embedding (the exact mean) are added to the decoded, centred points.

    Parameters
    ----------
    cfg : ModelConfig
        A :class:`~wassembed.nn.SetConfig`.

    Examples
    --------
    >>> from wassembed.nn import ModelConfig
    >>> dec = SetDecoder(ModelConfig.preset("set", point_dim=2, max_points=5, embed_dim=8, decoder_points=4))
    >>> out = dec(torch.zeros(3, 8))
    >>> tuple(out.shape), bool(torch.allclose(out[..., 2].sum(1), torch.ones(3)))
    ((3, 4, 3), True)
    """

    def __init__(self, cfg):
        super().__init__()
        self.d, self.m, self.centre, self.scale = cfg.point_dim, cfg.decoder_points, cfg.centre, float(cfg.coord_scale)
        self.latent = cfg.embed_dim - (self.d if self.centre else 0)
        self.dense = _mlp((self.latent, *reversed(cfg.hidden), self.m * (self.d + 1)), activate_last=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.dense(z[:, :self.latent]).float().reshape(z.shape[0], self.m, self.d + 1)
        pts = out[..., :self.d] * self.scale
        if self.centre:
            pts = pts + z[:, None, self.latent:].float()
        return torch.cat([pts, out[..., self.d:].softmax(1)], dim=-1)
