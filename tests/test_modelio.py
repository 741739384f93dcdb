"""Model files: round trip, refusal of missing / truncated / tampered / incompatible files, no pickle."""

import json
import pickle

import numpy as np
import pytest

import wassembed
from wassembed.errors import ModelFileError
from wassembed.learn._checkpoints import load_checkpoint, save_checkpoint
from wassembed.nn import ModelConfig, build_decoder, build_encoder
from wassembed.serve import WassersteinEmbedding, load
from wassembed.serve._modelfile import save_model


def _emb(grid=(6, 6), **kw):
    cfg = ModelConfig.preset("fast", grid=grid, embed_dim=8)
    calib = {"val_pred": np.array([1.0, 2.0]), "val_target": np.array([1.1, 1.9]),
             "train_recon": np.array([0.1, 0.2, 0.3]), "train_images": np.array([0, 3, 5], dtype=np.int64)}
    info = {"dataset_fingerprint": "abc", "ground_cost": "sqeuclidean", "training": {"epochs_run": 1}}
    return WassersteinEmbedding(build_encoder(cfg, seed=1), build_decoder(cfg, seed=1), config=cfg, p=2,
                                grid=grid, info=info, calibration=calib, **kw)


@pytest.fixture()
def saved(tmp_path):
    emb = _emb()
    emb.save(tmp_path / "m")
    return emb, tmp_path / "m"


def test_round_trip_identical_outputs(saved):
    emb, path = saved
    x = np.random.default_rng(0).random((7, 36))
    back = wassembed.load(path)
    assert np.array_equal(emb.embed(x), back.embed(x))
    assert np.array_equal(emb.decode(emb.embed(x)), back.decode(back.embed(x)))
    assert back.config == emb.config and back.p == 2 and back.grid == (6, 6)
    assert back.info["dataset_fingerprint"] == "abc"
    for k, v in emb.calibration.items():
        assert np.array_equal(back.calibration[k], v) and back.calibration[k].dtype == v.dtype
    meta = json.loads((path / "model.json").read_text())
    assert meta["format"] == "wassembed-model" and len(meta["weights_sha256"]) == 64
    assert meta["config"]["channels"] == [16, 32, 64]


def test_mlp_with_coords_round_trip(tmp_path):
    cfg = ModelConfig.preset("mlp", k=5, embed_dim=3, hidden=(8,))
    coords = np.arange(10.0).reshape(5, 2)
    emb = WassersteinEmbedding(build_encoder(cfg), build_decoder(cfg), config=cfg, p=1, coords=coords)
    save_model(emb, tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.p == 1 and np.array_equal(back.coords, coords) and back.grid is None
    x = np.random.default_rng(1).random((3, 5))
    assert np.array_equal(emb.embed(x), back.embed(x))
    assert back.distance_fn.p == 1 and np.array_equal(emb.cdist(x, x), back.cdist(x, x))


def test_pickled_model_keeps_its_latent_distance(saved):
    emb, _ = saved
    back = pickle.loads(pickle.dumps(emb))
    x = np.random.default_rng(2).random((4, 36))
    assert back.distance_fn == emb.distance_fn and np.array_equal(back.pdist(x), emb.pdist(x))


def test_missing_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(ModelFileError, match="missing model file.*fix:"):
        load(tmp_path / "nowhere")
    (path / "weights.safetensors").unlink()
    with pytest.raises(ModelFileError, match="missing weights file"):
        load(path)


def test_truncated_weights(saved):
    _, path = saved
    w = path / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated.*expected .* bytes"):
        load(path)


def test_tampered_weights(saved):
    _, path = saved
    w = path / "weights.safetensors"
    b = bytearray(w.read_bytes())
    b[-5] ^= 0xFF
    w.write_bytes(bytes(b))
    with pytest.raises(ModelFileError, match="was modified.*sha256"):
        load(path)


def test_truncated_or_edited_json(saved):
    _, path = saved
    j = path / "model.json"
    text = j.read_text()
    j.write_text(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match="unreadable model file.*complete JSON"):
        load(path)
    meta = json.loads(text)
    meta["config"]["embed_dim"] = 9
    j.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="model (config|file) .* was modified"):
        load(path)


def test_incompatible_version(saved):
    _, path = saved
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="incompatible file format.*version 1.*version 99"):
        load(path)


def test_nothing_is_pickled(saved, monkeypatch):
    _, path = saved

    def boom(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    import torch

    monkeypatch.setattr(torch, "load", boom)
    load(path)
    assert b"\x80\x04" not in (path / "weights.safetensors").read_bytes()[:8]


def test_checkpoint_round_trip_and_tamper(tmp_path):
    import torch

    t = {"a": torch.arange(3.0), "b": torch.ones(2, 2, dtype=torch.float64)}
    save_checkpoint(tmp_path, 1, t, {"x": 1})
    save_checkpoint(tmp_path, 2, {"a": torch.arange(4.0)}, {"x": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002.safetensors", "state.json"]
    meta, back = load_checkpoint(tmp_path)
    assert meta["x"] == 2 and meta["epoch"] == 2 and torch.equal(back["a"], torch.arange(4.0))
    f = tmp_path / "epoch-0002.safetensors"
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(ModelFileError, match="checkpoint file .* truncated"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path / "empty") is None


def test_loaded_model_follows_the_serving_rules(saved):
    """After a file round trip: one image is one input, distances are float64, a grid model decodes images,
    and error bars from its 2 calibration pairs warn."""
    from wassembed.serve import CalibrationWarning

    emb, path = saved
    back = wassembed.load(path)
    X = np.random.default_rng(3).random((4, 6, 6))
    d = back.distance(X[0], X[1:])
    assert d.shape == (3,) and d.dtype == np.float64
    np.testing.assert_array_equal(d, emb.distance(X[:1], X[1:]))
    assert back.barycenter(X).shape == (6, 6) and back.decode(back.embed(X)).shape == (4, 6, 6)
    with pytest.warns(CalibrationWarning, match="2 pairs of the model's 2 calibration pairs"):
        back.interval(X, X[::-1], 0.5)
