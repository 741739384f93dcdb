"""Model configs (validation, presets, digest) and encoder/decoder shapes."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from wassembed.errors import InputError
from wassembed.nn import HistogramConfig, ModelConfig, SetConfig, build_decoder, build_encoder


@pytest.mark.parametrize("name", ["paper", "fast"])
@pytest.mark.parametrize("grid", [(28, 28), (12, 12), (7, 5), (13, 9), (1, 6)])
def test_conv_shapes(name, grid):
    cfg = ModelConfig.preset(name, grid=grid)
    enc, dec = build_encoder(cfg, seed=0), build_decoder(cfg, seed=0)
    x = torch.rand(3, cfg.k)
    z = enc(x)
    assert z.shape == (3, 50)
    assert dec(z).shape == (3, cfg.k)


def test_paper_preset_is_the_dwe_architecture():
    cfg = ModelConfig.preset("paper", grid=(28, 28))
    enc = build_encoder(cfg)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(20, (3, 3)), (10, (5, 5))]
    dense = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(10 * 784, 100), (100, 50)]


def _macs(cfg):
    enc, total = build_encoder(cfg), [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            total[0] += m.in_features * m.out_features

    for m in enc.modules():
        m.register_forward_hook(hook)
    enc(torch.rand(1, cfg.k))
    return total[0]


def test_fast_preset_is_cheaper():
    paper, fast = (ModelConfig.preset(n, grid=(28, 28)) for n in ("paper", "fast"))
    assert _macs(fast) < _macs(paper) / 5
    assert all(s == 2 for s in fast.strides)


def test_mlp_without_grid():
    cfg = ModelConfig.preset("paper", k=10)
    assert cfg.kind == "mlp" and cfg.grid is None
    z = build_encoder(cfg)(torch.rand(4, 10))
    assert build_decoder(cfg)(z).shape == (4, 10)


def test_seeded_init_is_reproducible_and_leaves_global_rng():
    cfg = ModelConfig.preset("fast", grid=(8, 8))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_encoder(cfg, seed=7)
    after = torch.rand(1)
    b = build_encoder(cfg, seed=7)
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_embeddings_not_normalised():
    cfg = ModelConfig.preset("fast", grid=(8, 8))
    z = build_encoder(cfg, seed=0)(torch.rand(5, 64))
    assert not torch.allclose(z.norm(dim=1), torch.ones(5))


def test_config_roundtrip_and_digest():
    cfg = ModelConfig.preset("fast", grid=(12, 12), embed_dim=20)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(d) == cfg
    assert ModelConfig.from_dict(d).digest() == cfg.digest()
    assert cfg.replace(embed_dim=21).digest() != cfg.digest()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'embed_dim'"):
        cfg.embed_dim = 3  # frozen


@pytest.mark.parametrize("kw, match", [
    (dict(kind="conv", k=64, grid=None), "grid"),
    (dict(kind="conv", k=64, grid=(8, 7)), "grid"),
    (dict(kind="rnn", k=64), "kind"),
    (dict(kind="mlp", k=0), "k"),
    (dict(kind="mlp", k=4, embed_dim=0), "embed_dim"),
    (dict(kind="conv", k=64, grid=(8, 8), kernels=(4, 5)), "odd"),
    (dict(kind="conv", k=64, grid=(8, 8), channels=(4,)), "one kernel and stride"),
    (dict(kind="mlp", k=4, hidden=(10, -1)), "hidden"),
    (dict(kind="conv", k=4, grid=(2, 2), channels=(2,) * 4, kernels=(3,) * 4, strides=(2,) * 4), None),
])
def test_config_validation(kw, match):
    if match is None:  # strides shrink to 1×1 but never below: valid
        ModelConfig(**kw)
        return
    with pytest.raises(InputError, match=match) as e:
        ModelConfig(**kw)
    assert "expected" in str(e.value) and "fix:" in str(e.value)


def test_from_dict_refuses_unknown_and_versions():
    d = ModelConfig.preset("fast", grid=(8, 8)).to_dict()
    with pytest.raises(InputError, match="unknown model config fields"):
        ModelConfig.from_dict(d | {"bogus": 1})
    with pytest.raises(InputError, match="version"):
        ModelConfig.from_dict(d | {"version": 99})
    with pytest.raises(InputError, match="unknown model preset"):
        ModelConfig.preset("huge", grid=(8, 8))
    with pytest.raises(InputError, match="support"):
        ModelConfig.preset("fast")


def test_strided_decoder_restores_odd_sizes():
    cfg = ModelConfig(kind="conv", k=11 * 13, grid=(11, 13), channels=(4, 6, 8), kernels=(3, 5, 3), strides=(2, 1, 2))
    out = build_decoder(cfg)(build_encoder(cfg)(torch.rand(2, cfg.k)))
    assert out.shape == (2, 143) and np.isfinite(out.detach().numpy()).all()


@pytest.mark.parametrize("name", ["paper", "fast"])
@pytest.mark.parametrize("grid", [(28, 28), (13, 9), (1, 6)])
def test_inference_layout_gives_the_training_values(name, grid):
    """Without gradient the CPU encoder keeps its activations in oneDNN's blocked layout: same values."""
    assert torch.backends.mkldnn.is_available()
    cfg = ModelConfig.preset(name, grid=grid)
    enc = build_encoder(cfg, seed=0)
    x = torch.rand(37, cfg.k, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        served = enc(x)
    trained = enc(x)
    assert trained.requires_grad and not served.requires_grad
    torch.testing.assert_close(served, trained.detach(), rtol=1e-5, atol=1e-6)


def test_one_config_class_per_kind_and_older_point_cloud_configs_load():
    grid, sets = ModelConfig.preset("fast", grid=(8, 8)), ModelConfig.preset("set", point_dim=3, max_points=30,
                                                                               embed_dim=8)
    assert type(grid) is HistogramConfig and type(sets) is SetConfig
    assert (grid.data_kind, sets.data_kind) == ("histograms", "point_clouds")
    assert not hasattr(sets, "channels") and not hasattr(grid, "point_dim")
    assert (grid.mean_dims, sets.mean_dims, sets.max_points) == (0, 3, 30)
    assert type(ModelConfig(kind="set", k=5, point_dim=2, embed_dim=4)) is SetConfig  # the class of the kind
    # histogram dicts (and digests) are those written before the split
    assert set(grid.to_dict()) == {"kind", "k", "grid", "embed_dim", "channels", "kernels", "strides", "hidden",
                                   "hidden_activation", "scale_input", "name", "version"}
    # a point-cloud config written before the split carried the histogram fields: they are dropped on reading
    legacy = sets.to_dict() | {"grid": None, "channels": [20, 10], "kernels": [3, 5], "strides": [1, 1],
                               "hidden_activation": True, "scale_input": True}
    assert ModelConfig.from_dict(legacy) == sets
    with pytest.raises(InputError, match="unknown model config fields.*point_dim"):
        ModelConfig.from_dict(grid.to_dict() | {"point_dim": 3})
