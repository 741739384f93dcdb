"""Set networks for point clouds: packing, invariances of the encoder, the decoder, the OT reconstruction loss,
and the ``kind="set"`` model configuration."""

import dataclasses

import numpy as np
import pytest
import torch

from wassembed.data import PointCloudSet, make_shapes
from wassembed.errors import InputError, MissingDependencyError
from wassembed.nn import (
    SET_ENCODERS,
    ModelConfig,
    SetDecoder,
    SetEncoder,
    build_decoder,
    build_encoder,
    cloud_reconstruction_loss,
    pack_clouds,
    suggest_coord_scale,
    unpack_cloud,
)

#: the fields of ModelConfig before kind="set" (their dicts and digests must not change)
HISTOGRAM_FIELDS = {"kind", "k", "grid", "embed_dim", "channels", "kernels", "strides", "hidden",
                    "hidden_activation", "scale_input", "name", "version"}


def _clouds(n=6, seed=0, weighted=True):
    rng = np.random.default_rng(seed)
    clouds = []
    for _ in range(n):
        k = int(rng.integers(3, 9))
        pts = rng.normal(size=(k, 2)) + rng.normal(size=2)
        clouds.append((pts, rng.uniform(0.2, 1.0, size=k)) if weighted else pts)
    return PointCloudSet.from_clouds(clouds)


def _cfg(encoder="attention", centre=True, **kw):
    base = dict(point_dim=2, max_points=8, embed_dim=8, set_encoder=encoder, set_width=16, set_heads=2,
                set_queries=3, hidden=(16,), decoder_points=5, centre=centre)
    return ModelConfig.preset("set", **{**base, **kw})


def _embed(cfg, X):
    enc = build_encoder(cfg, seed=0).eval()
    with torch.no_grad():
        return enc(torch.as_tensor(X))


def test_pack_round_trip():
    cs = make_shapes(4, seed=2, min_points=5, max_points=12)
    X = pack_clouds(cs)
    assert X.dtype == np.float32 and X.shape == (4, int(cs.sizes.max()), 4)
    assert np.allclose(X[..., -1].sum(1), 1.0, atol=1e-6)
    for i in range(len(cs)):
        p, w = unpack_cloud(X[i])
        assert np.allclose(p, cs.cloud(i)[0], atol=1e-5) and np.allclose(w, cs.cloud(i)[1], atol=1e-6)
    p, w = unpack_cloud(torch.from_numpy(X[0]))
    assert p.shape == (cs.sizes[0], 3)


def test_pack_refuses_bad_input():
    with pytest.raises(InputError):
        pack_clouds(np.zeros((2, 3, 2)))
    with pytest.raises(InputError):
        pack_clouds(_clouds(), max_points=2)
    with pytest.raises(InputError):
        unpack_cloud(np.zeros((3, 3)))
    with pytest.raises(InputError, match="set encoder"):
        build_encoder(_cfg())(torch.zeros(2, 4, 4))


@pytest.mark.parametrize("encoder", SET_ENCODERS)
@pytest.mark.parametrize("centre", [False, True])
def test_encoder_invariant_to_order_and_padding(encoder, centre):
    cs = _clouds()
    cfg = _cfg(encoder, centre)
    X = pack_clouds(cs)
    z = _embed(cfg, X)
    assert z.shape == (len(cs), 8)
    perm = np.random.default_rng(1).permutation(X.shape[1])
    assert torch.allclose(_embed(cfg, X[:, perm]), z, atol=1e-5)
    assert torch.allclose(_embed(cfg, pack_clouds(cs, max_points=20)), z, atol=1e-5)


@pytest.mark.parametrize("encoder", SET_ENCODERS)
def test_duplicated_points_at_half_weight_give_the_same_embedding(encoder):
    X = pack_clouds(_clouds())
    dup = np.concatenate([X, X], axis=1)
    dup[..., -1] /= 2
    dup = dup[:, np.random.default_rng(2).permutation(dup.shape[1])]
    cfg = _cfg(encoder)
    assert torch.allclose(_embed(cfg, dup), _embed(cfg, X), atol=1e-5)


def test_centre_appends_the_exact_mean():
    cs = _clouds(weighted=True)
    X = pack_clouds(cs)
    cfg = _cfg("deepsets", centre=True)
    z = _embed(cfg, X)
    means = np.stack([np.average(cs.cloud(i)[0], axis=0, weights=cs.cloud(i)[1]) for i in range(len(cs))])
    assert np.allclose(z[:, -2:].numpy(), means, atol=1e-5)
    shifted = X.copy()
    shifted[..., :2] += np.array([3.0, -1.0], dtype=np.float32)
    zs = _embed(cfg, shifted)
    assert torch.allclose(zs[:, :-2], z[:, :-2], atol=1e-4)
    assert torch.allclose(zs[:, -2:] - z[:, -2:], torch.tensor([3.0, -1.0]), atol=1e-5)


@pytest.mark.parametrize("centre", [False, True])
def test_decoder_outputs_packed_clouds(centre):
    cfg = _cfg(centre=centre)
    dec = build_decoder(cfg, seed=0)
    assert isinstance(dec, SetDecoder) and isinstance(build_encoder(cfg), SetEncoder)
    out = dec(torch.randn(4, cfg.embed_dim))
    assert out.shape == (4, 5, 3)
    assert torch.allclose(out[..., -1].sum(1), torch.ones(4), atol=1e-6) and (out[..., -1] > 0).all()
    if centre:
        z = torch.randn(1, cfg.embed_dim)
        moved = z.clone()
        moved[:, -2:] += torch.tensor([1.0, 2.0])
        assert torch.allclose(dec(moved)[..., :2] - dec(z)[..., :2], torch.tensor([1.0, 2.0]), atol=1e-5)


def test_reconstruction_loss():
    x = torch.from_numpy(pack_clouds(_clouds()))
    same = cloud_reconstruction_loss(x, x)
    assert same.shape == (x.shape[0],) and same.abs().max() < 1e-4
    shifted = x + torch.tensor([0.5, 0.0, 0.0])
    assert torch.allclose(cloud_reconstruction_loss(x, shifted), torch.full((x.shape[0],), 0.25), atol=1e-3)
    cfg = _cfg()
    enc, dec = build_encoder(cfg, seed=0), build_decoder(cfg, seed=0)
    loss = cloud_reconstruction_loss(x, dec(enc(x))).mean()
    assert loss > same.max()
    loss.backward()
    grads = [p.grad for p in dec.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    dec.zero_grad()
    z = enc(x).detach()
    cheap = cloud_reconstruction_loss(x, dec(z), input_term=False)
    cheap.mean().backward()
    fast = [p.grad.clone() for p in dec.parameters()]
    dec.zero_grad()
    full = cloud_reconstruction_loss(x, dec(z))
    full.mean().backward()
    assert all(torch.allclose(f, p.grad, rtol=1e-3, atol=1e-5) for f, p in zip(fast, dec.parameters()))
    self_term = cloud_reconstruction_loss(x, x, input_term=False)  # the omitted constant (per input)
    assert torch.allclose(cheap.detach() - self_term, full.detach(), atol=1e-3)


def test_reconstruction_loss_checks_and_hint(monkeypatch):
    x = torch.zeros(2, 3, 3)
    with pytest.raises(InputError):
        cloud_reconstruction_loss(x, torch.zeros(3, 3, 3))
    monkeypatch.setitem(__import__("sys").modules, "geomloss", None)
    with pytest.raises(MissingDependencyError, match="geomloss"):
        cloud_reconstruction_loss(x, x)


def test_set_config_round_trip_and_digest():
    cfg = _cfg(coord_scale=10)
    assert cfg.kind == "set" and cfg.k == 8 and cfg.point_dim == 2 and cfg.coord_scale == 10.0
    back = ModelConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.digest() == cfg.digest()
    assert cfg.replace(set_encoder="deepsets").digest() != cfg.digest()
    assert ModelConfig.preset("set", point_dim=np.int64(3), max_points=np.int64(50)).k == 50


def test_histogram_configs_keep_their_dicts():
    """Model files store the config's digest: the histogram kinds' dicts must not gain the set fields."""
    for cfg in (ModelConfig.preset("paper", grid=(28, 28)), ModelConfig.preset("mlp", k=5)):
        assert set(cfg.to_dict()) == HISTOGRAM_FIELDS
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_old_configs_without_the_new_fields_load():
    old = {"kind": "mlp", "k": 5, "grid": None, "embed_dim": 3, "channels": [], "kernels": [], "strides": [],
           "hidden": [8], "hidden_activation": True, "scale_input": True, "name": "mlp", "version": 1}
    cfg = ModelConfig.from_dict(old)
    assert not hasattr(cfg, "point_dim") and cfg.to_dict() == old


@pytest.mark.parametrize("bad", [dict(point_dim=0), dict(set_encoder="rnn"), dict(set_width=10, set_heads=4),
                                 dict(embed_dim=2), dict(coord_scale=0.0), dict(decoder_points=0),
                                 dict(centre=1)])
def test_bad_set_configs(bad):
    cfg = _cfg()
    with pytest.raises(InputError):
        ModelConfig(**{**dataclasses.asdict(cfg), **bad})


def test_a_set_config_has_no_grid():
    with pytest.raises(TypeError, match="grid"):
        ModelConfig(**{**dataclasses.asdict(_cfg()), "grid": (2, 4)})


def test_set_fields_need_kind_set():
    with pytest.raises(InputError, match="point_dim"):
        ModelConfig.preset("mlp", k=4, point_dim=2)
    with pytest.raises(InputError, match="point_dim"):
        ModelConfig.preset("set", max_points=10)


def test_seeded_set_networks_are_reproducible():
    cfg = _cfg("transformer")
    a, b = build_encoder(cfg, seed=3), build_encoder(cfg, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_suggest_coord_scale():
    cs = _clouds()
    s = suggest_coord_scale(cs)
    moved = PointCloudSet(cs.points * 3.0 + 5.0, cs.weights, cs.offsets)
    assert s > 0 and np.isclose(suggest_coord_scale(moved), 3.0 * s)
    assert suggest_coord_scale(PointCloudSet.from_clouds([np.ones((1, 2))])) == 1.0
    with pytest.raises(InputError):
        suggest_coord_scale(np.zeros((3, 2)))
