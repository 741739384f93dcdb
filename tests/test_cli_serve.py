"""`wassembed embed / distance / knn`: outputs, streams and exit codes (model loading is stubbed)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from wassembed.cli import main
from wassembed.serve import WassersteinEmbedding

GRID = (6, 6)


def _model():
    torch.manual_seed(0)
    return WassersteinEmbedding(torch.nn.Linear(36, 4), torch.nn.Linear(4, 36), config=None, p=2, grid=GRID)


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setattr("wassembed.serve.load", lambda path, device="cpu": _model().to(device))
    group = main
    (tmp_path / "model").mkdir()
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.random((7, *GRID)))
    np.save(tmp_path / "b.npy", rng.random((7, *GRID)))
    np.save(tmp_path / "small.npy", rng.random((3, 5, 5)))
    np.save(tmp_path / "neg.npy", -rng.random((3, *GRID)))
    runner = CliRunner()

    def run(*args):
        return runner.invoke(group, [str(a) for a in args], catch_exceptions=False)

    return run, tmp_path


def test_embed_writes_npy(cli):
    run, d = cli
    r = run("embed", d / "model", d / "a.npy", "--out", d / "z.npy", "--device", "cpu")
    assert r.exit_code == 0, r.output
    Z = np.load(d / "z.npy")
    np.testing.assert_allclose(Z, _model().embed(np.load(d / "a.npy")), rtol=1e-6)
    assert r.stdout == "" and "wrote embeddings (7, 4)" in r.stderr


def test_embed_to_stdout_as_npy_bytes(cli):
    run, d = cli
    r = run("embed", d / "model", d / "a.npy", "--limit", 3)
    assert r.exit_code == 0, r.stderr
    assert np.load(io.BytesIO(r.stdout_bytes)).shape == (3, 4)


def test_distance_paired_matrix_and_interval(cli):
    run, d = cli
    A, B = np.load(d / "a.npy"), np.load(d / "b.npy")
    m = _model()
    assert run("distance", d / "model", d / "a.npy", d / "b.npy", "-o", d / "p.npy").exit_code == 0
    np.testing.assert_allclose(np.load(d / "p.npy"), m.distance(A, B), rtol=1e-6)
    r = run("distance", d / "model", d / "a.npy", d / "b.npy", "--matrix", "--b-limit", 5, "-o", d / "m.npy")
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(np.load(d / "m.npy"), m.cdist(A, B[:5]), rtol=1e-5)
    r = run("distance", d / "model", d / "a.npy", d / "b.npy", "--interval", 0.9, "-o", d / "i.npy")
    assert r.exit_code == 2 and "needs calibration pairs" in r.stderr
    r = run("distance", d / "model", d / "a.npy", d / "b.npy", "--matrix", "--interval", 0.9)
    assert r.exit_code == 2 and "--interval applies to paired" in r.output


def test_knn_table_and_json(cli):
    run, d = cli
    r = run("knn", d / "model", d / "a.npy", d / "b.npy", "-k", 2, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    dist, ind = _model().kneighbors(np.load(d / "a.npy"), np.load(d / "b.npy"), k=2)  # scikit-learn's order
    assert list(out) == ["k", "exact", "n_exact", "distances", "indices"]
    assert out["indices"] == ind.tolist() and out["exact"] is False and out["n_exact"] == 0
    np.testing.assert_allclose(out["distances"], dist, rtol=1e-6)
    r = run("knn", d / "model", d / "a.npy", d / "b.npy", "-k", 2, "--query-limit", 2)
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "query\trank\tindex\tdistance" and len(lines) == 1 + 2 * 2
    r = run("knn", d / "model", d / "a.npy", d / "b.npy", "-k", 2, "--exact-rerank", "--n-candidates", 4,
            "--json", "--out", d / "nn.npz")
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["exact"] is True and out["n_exact"] == 7 * 4
    assert "exact solves: 28" in r.stderr and np.load(d / "nn.npz")["indices"].shape == (7, 2)
    np.testing.assert_array_equal(np.load(d / "nn.npz")["distances"], out["distances"])


@pytest.mark.parametrize("args, match", [
    (("embed", "{m}", "{d}/small.npy"), "wrong image size.*6×6.*5×5"),
    (("embed", "{m}", "{d}/neg.npy", "-o", "{d}/x.npy"), "negative weights"),
    (("embed", "{m}", "{d}/missing.npy"), "no such data file"),
    (("embed", "{m}", "digits", "-o", "{d}/x.npy"), "wrong image size.*8×8"),
    (("knn", "{m}", "{d}/a.npy", "{d}/b.npy", "-k", "8"), "k is larger than the reference set.*k <= 7"),
    (("knn", "{m}", "{d}/a.npy", "{d}/b.npy", "-k", "0"), "Invalid value for '-k'"),
    (("knn", "{m}", "{d}/a.npy", "{d}/b.npy", "-k", "2", "--exact-rerank"), "needs calibration pairs"),
    (("distance", "{m}", "{d}/a.npy", "{d}/b.npy", "--b-limit", "3"), "different numbers of inputs"),
    (("embed", "{d}/nomodel", "{d}/a.npy"), "does not exist"),
    (("embed", "{m}", "{d}/a.npy", "--limit", "0"), "positive number"),
])
def test_usage_errors_exit_2(cli, args, match):
    run, d = cli
    r = run(*(a.format(m=d / "model", d=d) for a in args))
    assert r.exit_code == 2, r.output
    assert re.search(match, r.output), r.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_exits_2(cli):
    run, d = cli
    r = run("embed", d / "model", d / "a.npy", "--device", "cuda", "-o", d / "z.npy")
    assert r.exit_code == 2 and "CUDA was requested" in r.stderr


def test_real_console_script_with_a_saved_model(tmp_path):
    """End to end through `python -m wassembed.cli` and a model saved by modelio (skipped if absent)."""
    import wassembed.serve  # noqa: F401  (an import error must fail, not skip)
    from tests.conftest import run_cli
    from wassembed.nn import ModelConfig, build_decoder, build_encoder

    cfg = ModelConfig.preset("mlp", grid=GRID, hidden=(8,), embed_dim=3)
    emb = WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2, grid=GRID)
    emb.save(tmp_path / "m")
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((5, *GRID)))
    r = run_cli("knn", tmp_path / "m", tmp_path / "a.npy", tmp_path / "a.npy", "-k", 1, "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["indices"] == [[0], [1], [2], [3], [4]]
    r = run_cli("knn", tmp_path / "m", tmp_path / "a.npy", tmp_path / "a.npy", "-k", 9)
    assert r.returncode == 2 and "k is larger" in r.stderr
