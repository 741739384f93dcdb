"""Reference indexes: the same answers as the in-memory model, streamed by blocks, checked files, Dask build.

The model is a small saveable MLP on 6×6 images (untrained: the index must reproduce the model's answers,
whatever their accuracy) with calibration pairs of exact values, so the adaptive re-ranking runs.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import wassembed
from wassembed.data import as_weights, make_ground_cost
from wassembed.errors import InputError, ModelFileError
from wassembed.exact import ExactSolver
from wassembed.index import ReferenceIndex, _search, build_index, open_index
from wassembed.nn import ModelConfig, build_decoder, build_encoder
from wassembed.serve import Neighbors, WassersteinEmbedding

from .conftest import random_images

GRID = (6, 6)


@pytest.fixture(scope="module")
def model():
    cfg = ModelConfig.preset("mlp", k=36).replace(hidden=(16,), embed_dim=4)
    emb = WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2, grid=GRID)
    X = random_images(200, 1)
    solver = ExactSolver(make_ground_cost(grid=GRID, p=2), 2)
    i, j = np.arange(0, 200, 2), np.arange(1, 200, 2)
    emb.calibration = {"val_pred": emb.distance(X[i], X[j]).astype(np.float64),
                       "val_target": solver.solve_pairs(as_weights(X)[0], i, j)}
    return emb


@pytest.fixture(scope="module")
def data():
    return random_images(160, 2), random_images(6, 3)  # references, queries


@pytest.fixture(scope="module")
def index(model, data, tmp_path_factory):
    return build_index(model, data[0], tmp_path_factory.mktemp("ix") / "refs", references_per_block=64)


@pytest.mark.filterwarnings("ignore::wassembed.serve.RerankWarning")  # untrained: loose bounds are expected
def test_index_answers_like_the_in_memory_model(model, data, index):
    R, Q = data
    want = model.kneighbors(Q, R, k=5)
    got = index.kneighbors(Q, k=5, references_per_block=50, tile_size=4)  # the model's default: no re-ranking
    assert isinstance(got, Neighbors) and not got.exact and got.distances.dtype == np.float64
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.distances, want.distances, rtol=1e-6, atol=1e-6)  # centre: float64 vs float32
    for kw in ({}, {"n_candidates": 20}):
        want = model.kneighbors(Q, R, k=5, exact_rerank=True, **kw)
        got = index.kneighbors(Q, k=5, exact_rerank=True, references_per_block=50, **kw)
        assert got.exact
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.distances, want.distances)  # exact values: the same solves
        np.testing.assert_array_equal(got.n_exact_per_query, want.n_exact_per_query)
    # few candidates per pass: the adaptive rule asks for more, solved values are reused
    want = model.kneighbors(Q, R, k=5, exact_rerank=True)
    small = index.kneighbors(Q, k=5, exact_rerank=True, references_per_block=50, max_candidates=6)
    np.testing.assert_array_equal(small.indices, want.indices)
    np.testing.assert_array_equal(small.distances, want.distances)
    np.testing.assert_array_equal(small.n_exact_per_query, want.n_exact_per_query)
    one = index.kneighbors(Q[0], k=3)  # one image: a batch of one
    assert one.indices.shape == (1, 3)
    t = index.kneighbors(torch.from_numpy(Q), k=3, exact_rerank=True, n_candidates=5)
    assert isinstance(t.indices, torch.Tensor) and t.distances.dtype == torch.float64
    for search in (index.kneighbors, lambda Q, **kw: model.kneighbors(Q, R, **kw)):  # a budget without re-ranking
        with pytest.raises(InputError, match="n_candidates applies to exact re-ranking.*exact_rerank=True"):
            search(Q, k=3, n_candidates=5)


def test_streaming_never_builds_the_full_matrix(monkeypatch, data, index):
    shapes = []
    real = _search._tile

    def spy(A, sqA, B, sqB, distance):
        shapes.append((A.shape[0], B.shape[0]))
        return real(A, sqA, B, sqB, distance)

    monkeypatch.setattr(_search, "_tile", spy)
    index.kneighbors(data[1], k=4, exact_rerank=True, n_candidates=8, references_per_block=32, tile_size=4)
    assert shapes and all(q <= 4 and r <= 32 for q, r in shapes)
    assert len(shapes) == -(-160 // 32) * -(-6 // 4)  # one GEMM per (reference block, query block)


def test_round_trip_and_layout(model, data, index):
    R, Q = data
    assert {p.name for p in index.path.iterdir()} == {"manifest.json", "references.npy", "embeddings.npy", "model"}
    back = open_index(index.path)
    assert isinstance(back, ReferenceIndex) and len(back) == len(index) == 160
    assert isinstance(back.embeddings, np.memmap) and isinstance(back.references, np.memmap)
    assert back.references.dtype == np.uint8 and back.references.shape == R.shape  # uint8 stays uint8
    np.testing.assert_array_equal(back.references, R)
    np.testing.assert_allclose(back.embeddings, model.embed(R), rtol=1e-5, atol=1e-6)  # batches differ
    m = json.loads((index.path / "manifest.json").read_text())
    assert m["n"] == 160 and m["references"]["dtype"] == "uint8" and m["embeddings"]["shape"] == [160, 4]
    assert back.fingerprint == m["references"]["sha256"] and len(m["model"]["sha256"]) == 64
    np.testing.assert_allclose(m["centre"], model.embed(R).mean(0), rtol=1e-5, atol=1e-6)
    a, b = (ix.kneighbors(Q, k=4, exact_rerank=True, n_candidates=10) for ix in (index, back))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.distances, b.distances)
    assert wassembed.build_index is build_index and wassembed.open_index is open_index


def test_float_references_are_stored_as_float32_histograms(model, data, tmp_path):
    R = data[0][:50].astype(np.float64) * 3.0
    ix = build_index(model, R, tmp_path / "f", references_per_block=16)
    assert ix.references.dtype == np.float32 and ix.references.shape == R.shape
    np.testing.assert_allclose(ix.references.reshape(50, -1).sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ix.embeddings, model.embed(np.asarray(ix.references)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("damage, message", [
    ("flip a byte of the references", r"references\.npy was altered"),
    ("truncate the embeddings", r"embeddings\.npy"),
    ("delete the embeddings", r"missing index file .*embeddings\.npy"),
    ("edit the manifest", r"manifest .* was modified"),
    ("delete the manifest", r"is not a reference index"),
    ("replace the model", r"the model in .* is not the index's"),
])
def test_an_altered_index_is_refused(model, data, tmp_path, damage, message):
    path = tmp_path / "ix"
    build_index(model, data[0][:40], path, references_per_block=16)
    if damage.startswith("flip"):
        raw = bytearray((path / "references.npy").read_bytes())
        raw[-7] ^= 0xFF
        (path / "references.npy").write_bytes(bytes(raw))
    elif damage.startswith("truncate"):
        raw = (path / "embeddings.npy").read_bytes()
        (path / "embeddings.npy").write_bytes(raw[:-16])
    elif damage.startswith("delete the emb"):
        (path / "embeddings.npy").unlink()
    elif damage.startswith("edit"):
        m = json.loads((path / "manifest.json").read_text())
        m["n"] = 41
        (path / "manifest.json").write_text(json.dumps(m))
    elif damage.startswith("delete the man"):
        (path / "manifest.json").unlink()
    else:
        other = WassersteinEmbedding(model.encoder, model.decoder, config=model.config, p=2, grid=GRID,
                                     info={"note": "another model"})
        other.save(path / "model")
    with pytest.raises(ModelFileError, match=message) as ei:
        open_index(path)
    assert "fix:" in str(ei.value) and "expected" in str(ei.value)


def test_bad_builds_are_refused(model, data, tmp_path):
    with pytest.raises(InputError, match="wrong shape"):
        build_index(model, np.ones((5, 7, 7), np.uint8), tmp_path / "a")
    build_index(model, data[0][:20], tmp_path / "b")
    with pytest.raises(InputError, match="already holds an index.*overwrite=True"):
        build_index(model, data[0][:20], tmp_path / "b")
    ix = build_index(model, data[0][20:50], tmp_path / "b", overwrite=True)
    assert len(open_index(tmp_path / "b")) == 30 == len(ix)
    with pytest.raises(InputError, match="k is larger"):
        ix.kneighbors(data[1], k=31)


def test_dask_build_equals_the_local_build(model, data, index, tmp_path):
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
            ix = build_index(model, data[0], tmp_path / "d", references_per_block=64, client=client)
    assert ix.manifest["build"]["dask"]
    for key in ("n", "references", "embeddings", "centre"):  # the same bytes (sha256), the same centre
        assert ix.manifest[key] == index.manifest[key]
    np.testing.assert_array_equal(ix.embeddings, index.embeddings)


def test_the_benchmark_extends_images_by_exact_symmetries():
    """``wassembed bench index`` generates its references on demand: each row is a flip, transpose or shift
    of a base image that moves no pixel across the border (the same pixel values, the same mass)."""
    from wassembed.bench._index import N_VARIANTS, SymmetryExtended

    base = np.zeros((4, 8, 8), np.uint8)
    base[:, 2:6, 2:6] = np.arange(4 * 16, dtype=np.uint8).reshape(4, 4, 4) + 1
    base[3, :, 0] = 9  # touches the left border: shifts to the right only
    src = SymmetryExtended(base, 4 * N_VARIANTS)
    X = src[0:len(src)]
    assert X.shape == (4 * N_VARIANTS, 8, 8) and X.dtype == np.uint8 and src.unshiftable == 0
    for r in range(len(src)):
        np.testing.assert_array_equal(np.sort(X[r], axis=None), np.sort(base[r % 4], axis=None))
    np.testing.assert_array_equal(src[5:9], X[5:9])
    assert len({X[r].tobytes() for r in range(len(src))}) > 0.9 * len(src)


def test_bench_index_command(model, tmp_path):
    """``wassembed bench index`` end to end on tiny IDX files: build, timings, brute-force check."""
    import gzip
    import struct

    from click.testing import CliRunner

    from wassembed.cli import main

    X = random_images(40, 5)
    X[:, [0, -1], :] = 0  # room for shifts
    X[:, :, [0, -1]] = 0
    X[:, 2, 2] = 7
    with gzip.open(tmp_path / "base.gz", "wb") as fh:
        fh.write(struct.pack(">BBBBIII", 0, 0, 8, 3, *X.shape) + X.tobytes())
    model.save(tmp_path / "model")
    r = CliRunner().invoke(main, ["bench", "index", "--data", str(tmp_path / "base.gz"), "--model",
                                  str(tmp_path / "model"), "--out", str(tmp_path / "ix"), "--n", "300", "--queries",
                                  "6", "--rerank-queries", "3", "--n-candidates", "5", "--check-refs", "30",
                                  "--check-queries", "2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "| estimates | 6 |" in r.stdout and "exact, n_candidates=5" in r.stdout
    assert "the same answer as the in-memory model.kneighbors: yes" in r.stdout
    assert len(open_index(tmp_path / "ix")) == 300
