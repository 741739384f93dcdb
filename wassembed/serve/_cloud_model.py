"""The served model of weighted point clouds: the same methods as for histograms, on clouds.

A :class:`CloudEmbedding` holds a set encoder :math:`\\varphi` (:class:`~wassembed.nn.SetEncoder`) and decoder
:math:`\\psi` (:class:`~wassembed.nn.SetDecoder`) trained so that
:math:`\\|\\varphi(\\mu) - \\varphi(\\nu)\\|^2 \\approx W_2^2(\\mu, \\nu)` with the squared Euclidean cost between
points (``p = 1``: :math:`\\|\\cdot\\| \\approx W_1`). It is the sibling of
:class:`~wassembed.serve.WassersteinEmbedding` (histograms): both serve every method of their base,
:class:`~wassembed.serve._embedding.BaseEmbedding`; what differs is the data:

* inputs are clouds in any form of :mod:`._cloud_inputs` (a list of ``(points, weights)``, a
  :class:`~wassembed.data.PointCloudSet`, one cloud, uniform or packed 3-D arrays), of the model's dimension
  ``point_dim``; clouds of any size, padded per batch;
* exact re-ranking solves with :class:`~wassembed.exact.CloudSolver` (``ot.emd2`` on the point costs);
* decoded outputs (:meth:`decode`, :meth:`barycenter`, :meth:`interpolate`, :meth:`principal_directions`) are
  packed clouds of ``decoder_points`` points: ``(…, m, d + 1)`` float32, the coordinates then the weight
  (each cloud's weights sum to 1); :func:`wassembed.nn.unpack_cloud` gives ``(points, weights)``;
* the out-of-distribution score is ``"latent"`` (Mahalanobis distance of the embedding to the training
  embeddings, no extra pass; :mod:`._ood`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import POINT_CLOUDS, PointCloudSet
from ..errors import InputError, explain
from ..nn import SetConfig
from . import _inputs
from ._cloud_inputs import as_clouds, prepare_clouds
from ._embedding import BaseEmbedding
from ._forward import need_decoder
from ._inputs import Device, Inputs, Outputs
from ._inputs import rewrap as _out

__all__ = ["CloudEmbedding"]


class CloudEmbedding(BaseEmbedding):
    """A trained set encoder/decoder pair serving approximate :math:`W_p^p` between point clouds.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Packed clouds ``(n, kmax, d + 1)`` → ``(n, embed_dim)``; ``(n, embed_dim)`` → packed ``(n, m, d + 1)``.
    config : SetConfig
        The set networks' configuration (``point_dim`` is the clouds' dimension ``d``).
    p : {1, 2}
    info, calibration, device : as for :class:`~wassembed.serve.WassersteinEmbedding`.

    Examples
    --------
    >>> from wassembed.nn import ModelConfig, build_decoder, build_encoder
    >>> cfg = ModelConfig.preset("set", point_dim=2, max_points=8, embed_dim=6, decoder_points=4)
    >>> emb = CloudEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2)
    >>> a, b = np.zeros((3, 2)), (np.ones((2, 2)), [0.25, 0.75])
    >>> emb.distance(a, [a, b]).shape, emb.cdist([a, b, a], [b]).shape, emb.barycenter([a, b]).shape
    ((2,), (3, 1), (4, 3))
    """

    config_type = SetConfig
    data_kind = POINT_CLOUDS

    def __init__(self, encoder, decoder, *, config, p, info=None, calibration=None, device="cpu"):
        if not isinstance(config, SetConfig):
            raise InputError(explain("bad point-cloud model", expected="a SetConfig (ModelConfig.preset('set', ...))",
                                     received=f"{type(config).__name__} kind {getattr(config, 'kind', None)!r}",
                                     fix="use WassersteinEmbedding for histogram models"))
        super().__init__(encoder, decoder, config=config, p=p, info=info, calibration=calibration, device=device)

    @classmethod
    def support_of(cls, data) -> dict:
        """No support arguments: each cloud brings its points."""
        return {}

    def _describe(self) -> str:
        return f"point_dim={self.point_dim}"

    def _support_mismatch(self, data) -> tuple[str, str] | None:
        if data.d != self.point_dim:
            return f"point clouds in {self.point_dim} dimensions", f"point clouds in {data.d} dimensions"
        return None

    @property
    def point_dim(self) -> int:
        """Dimension ``d`` of the points."""
        return int(self.config.point_dim)

    def clouds(self, X: Inputs, what: str = "input"):
        """Validate ``X`` (any accepted form) and return it as a :class:`~wassembed.data.PointCloudSet`."""
        return as_clouds(X, what, self.point_dim)[0]

    # -- hooks of the base class ----------------------------------------------------------------------
    def _prepare(self, X, what: str):
        return prepare_clouds(X, what, self.point_dim)

    def _exact_data(self, Q, R):
        cq, cr = Q.clouds, R.clouds  # prepared (validated) by _prepare
        both = PointCloudSet(np.concatenate([cq.points, cr.points]), np.concatenate([cq.weights, cr.weights]),
                             np.concatenate([cq.offsets, cr.offsets[1:] + cq.offsets[-1]]))
        return both, cq.n

    def _exact_solver(self):
        if self._solver is None:
            from ..exact import CloudSolver
            self._solver = CloudSolver(self.p)
        return self._solver

    def _encode(self, w, dev, batch_size: int, *, score: str | None = None):
        Z, _, _ = self._embed_input(w, "input", dev, batch_size, score=score)
        return Z

    # -- decoded clouds ---------------------------------------------------------------------------------
    def decode(self, Z: Inputs, *, batch_size: int | None = None, device: Device = None) -> Outputs:
        """Packed clouds ``ψ(z)`` ``(n, m, d + 1)`` float32 of embeddings ``(n, embed_dim)`` (one ``(embed_dim,)``:
        ``n = 1``): ``m = decoder_points`` points, then their weights (summing to 1 per cloud)."""
        arr, like = _inputs.embeddings(Z)
        dev = self._device(device)
        dec, bs = need_decoder(self._nets(dev)[1]), _inputs.batch_size(batch_size, dev)
        outs = []
        with torch.inference_mode():
            for s in range(0, arr.shape[0], bs):
                z = torch.as_tensor(arr[s:s + bs]).to(dev, torch.float32)
                if z.shape[1] != self.config.embed_dim:
                    raise InputError(explain("Z does not fit the decoder", expected=f"embeddings (n, "
                                             f"{self.config.embed_dim})", received=f"shape {arr.shape}",
                                             fix="pass embed(X)'s output"))
                outs.append(dec(z).float())
        return _out(torch.cat(outs), like)

