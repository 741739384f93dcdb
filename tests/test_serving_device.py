"""The device-resident serving path: inputs normalised and validated on the device, tensors in → tensors out.

Models are tiny and untrained (their speed and accuracy do not matter here, only that every path computes the
same thing): a random linear encoder on a 6×6 grid, and the ``fast`` convolutional preset on scikit-learn's
8×8 digits with a ``"pca"`` out-of-distribution reference fitted on them (no training needed). The CUDA code
paths (staging buffers, row staging of ``cdist``) run here on CPU tensors (``staged=True``); the
``gpu``-marked test runs the same checks on CUDA.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

from wassembed.data import as_weights
from wassembed.errors import InputError
from wassembed.nn import LatentDistance, ModelConfig, build_decoder, build_encoder
from wassembed.serve import OutOfDistributionWarning, WassersteinEmbedding
from wassembed.serve import _neighbors as neighbors
from wassembed.serve._device_inputs import normalise, prepare
from wassembed.serve._ood import pca_reference, pca_scores

from .conftest import random_images

GRID, K = (6, 6), 36
#: documented bound of precision="bf16": |Δ| ≤ 1 % of ‖a − c‖² + ‖b − c‖² (c the centre); analysis: 3 · 2⁻⁹
BF16_REL = 0.01


#: one torch thread (conftest): on a shared 2-core machine, oversubscribed threads are many times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lin():
    torch.manual_seed(0)
    return WassersteinEmbedding(torch.nn.Linear(K, 8), torch.nn.Linear(8, K), config=None, p=2, grid=GRID)


@pytest.fixture(scope="module")
def digits_model(digits):
    """An untrained ``fast`` model on 8×8 digits with a "pca" reference (fitted on images 0–799), and uint8
    digit images."""
    cfg = ModelConfig.preset("fast", grid=(8, 8))
    emb = WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2, grid=(8, 8))
    ref = pca_reference(digits.weights[:800])
    held = pca_scores(torch.from_numpy(digits.weights[800:1200]).float(),
                      *(torch.from_numpy(ref[a]).float() for a in ("pca_mean", "pca_basis"))).numpy()
    emb.calibration = {**ref, "pca_scores": held}
    img = digits.images()
    X = np.rint(255 * img / img.max(axis=(1, 2), keepdims=True)).astype(np.uint8)
    return emb, X


# -- tensors in, tensors out; numpy in, numpy out ---------------------------------------------------------
def test_torch_tensors_in_give_tensors_out_equal_to_the_numpy_path(digits_model):
    emb, X = digits_model
    A, B = X[:300], X[300:600]
    tA, tB = torch.from_numpy(A), torch.from_numpy(B)
    for name, np_args, t_args in [("embed", (A,), (tA,)), ("distance", (A, B), (tA, tB)),
                                  ("cdist", (A, B[:50]), (tA, tB[:50])), ("pdist", (A[:40],), (tA[:40],))]:
        a, b = getattr(emb, name)(*np_args, batch_size=64), getattr(emb, name)(*t_args, batch_size=64)
        assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor) and b.device.type == "cpu", name
        assert b.dtype == (torch.float32 if name == "embed" else torch.float64), name
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-6, atol=1e-7 * float(np.abs(a).max()), err_msg=name)
    (tv, ti), (nv, ni) = emb.kneighbors(tA[:20], tB, k=5), emb.kneighbors(A[:20], B, k=5)
    assert isinstance(ti, torch.Tensor) and tv.dtype == torch.float64 and isinstance(ni, np.ndarray)
    np.testing.assert_array_equal(ti.numpy(), ni)
    np.testing.assert_allclose(tv.numpy(), nv, rtol=1e-6)


def test_the_device_path_matches_float64_normalisation(digits_model):
    """float32 histograms from uint8 on the device vs the float64 weights of the cache, fed as float32."""
    emb, X = digits_model
    w = as_weights(X[:200])[0]
    with torch.inference_mode():
        want = emb.encoder(torch.from_numpy(w).float()).numpy()
    np.testing.assert_allclose(emb.embed(X[:200]), want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_uint8_and_float_inputs_give_the_same_results(digits_model):
    emb, X = digits_model
    X = X[:150]
    ref = emb.embed(X)
    scale = np.abs(ref).max()
    for other in (X.astype(np.float32), X.astype(np.float64) * 3.0, as_weights(X)[0], X.astype(np.int64),
                  torch.from_numpy(X).to(torch.float16), torch.from_numpy(X).to(torch.bfloat16),
                  X.astype(np.float32) * 1e30, X.astype(np.float64) * 1e-300):
        got = emb.embed(other)
        got = got.numpy() if isinstance(got, torch.Tensor) else got
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * scale, err_msg=str(getattr(other, "dtype", "")))


def test_read_only_and_reversed_arrays_and_single_inputs(lin):
    X = random_images(10, 3)
    ro = X.copy()
    ro.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable" warning from torch
        np.testing.assert_array_equal(lin.embed(ro), lin.embed(X))
        np.testing.assert_allclose(lin.embed(X[::-1]), lin.embed(X)[::-1], rtol=1e-6)
    np.testing.assert_array_equal(lin.embed(X[3]), lin.embed(X[3:4]))
    np.testing.assert_array_equal(lin.embed(X.reshape(10, K)[3]), lin.embed(X[3:4]))


# -- validation: the errors of the numpy path, word for word ------------------------------------------------
def _bad_inputs():
    X = np.ones((40, *GRID))
    nan, neg, zero = X.copy(), X.copy(), X.copy()
    nan[33, 2, 2] = np.nan
    neg[[5, 31], 0, 1] = -1.0
    zero[[3, 7, 11, 13, 17, 19, 23]] = 0.0  # "and 2 more"
    both = neg.copy()
    both[37, 1, 1] = np.inf  # non-finite is reported before negative, whatever the batch
    return {"nan": nan, "negative": neg, "zero rows": zero, "inf and negative": both}


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_validation_errors_are_those_of_the_numpy_path(lin, case):
    bad = _bad_inputs()[case]
    with pytest.raises(InputError) as want:
        as_weights(bad.reshape(40, K), what="X", grid=GRID)
    msg = "^" + re.escape(str(want.value)) + "$"
    variants = [bad, bad.astype(np.float32), torch.from_numpy(bad), torch.from_numpy(bad).float()]
    if case in ("negative", "zero rows"):
        variants += [bad.astype(np.int16), torch.from_numpy(bad.astype(np.int32))]
    if case == "zero rows":
        variants += [bad.astype(np.uint8), torch.from_numpy(bad.astype(np.uint8))]
    for X in variants:
        for batch in (None, 8):  # the bad rows in the first batch, or in later ones
            with pytest.raises(InputError, match=msg):
                lin.embed(X, batch_size=batch)
        src = prepare(X, "X", grid=GRID, k=K)
        with pytest.raises(InputError, match=msg):
            list(src.batches(torch.device("cpu"), 8, staged=True))
    with pytest.raises(InputError) as want_b:
        as_weights(bad.reshape(40, K), what="XB", grid=GRID)
    with pytest.raises(InputError, match="^" + re.escape(str(want_b.value)) + "$"):
        lin.cdist(random_images(3), torch.from_numpy(bad))


def test_shape_errors_are_those_of_the_numpy_path(lin):
    for bad in (np.ones((3, 5, 5)), np.ones((3, 35)), np.ones(35), np.ones((5, 5)), np.ones(()), np.zeros((0, 6, 6)),
                np.ones((2, 3, 6, 6)), np.ones((2, 36), dtype=np.complex64)):
        with pytest.raises(InputError) as want:
            lin.embed(bad)
        with pytest.raises(InputError, match="^" + re.escape(str(want.value)) + "$"):
            lin.embed(torch.from_numpy(bad))
    lin.embed(np.ones((2, 36), dtype=np.uint32))  # other integer widths: through as_weights


def test_normalise_flags_every_kind_of_bad_row():
    good = torch.tensor([[0.0, 1.0, 3.0]])
    w, bad = normalise(good)
    assert w.tolist() == [[0.0, 0.25, 0.75]] and not bad and good.tolist() == [[0.0, 1.0, 3.0]]  # x untouched
    for row in ([0.0, float("nan"), 1.0], [0.0, float("inf"), 1.0], [0.0, -float("inf"), 1.0], [-1.0, 2.0, 0.0],
                [0.0, 0.0, 0.0]):
        for dtype in (torch.float16, torch.float32, torch.float64):
            assert bool(normalise(torch.tensor([row], dtype=dtype))[1]), (row, dtype)
    assert bool(normalise(torch.zeros(1, 3, dtype=torch.uint8))[1])
    assert bool(normalise(torch.tensor([[-1, 2]], dtype=torch.int8))[1])
    assert torch.allclose(normalise(torch.tensor([[1e38, 3e38]]))[0], torch.tensor([[0.25, 0.75]]))  # no overflow


def test_staged_batches_equal_direct_batches(digits_model):
    emb, X = digits_model
    src = prepare(X[:100], "X", grid=(8, 8), k=64)
    cpu = torch.device("cpu")
    direct, staged = list(src.batches(cpu, 32)), list(src.batches(cpu, 32, staged=True))
    assert len(direct) == len(staged) == 4
    for a, b in zip(direct, staged):
        assert torch.equal(a, b)


# -- cdist: one GEMM per block -----------------------------------------------------------------------------
def test_cdist_gemm_equals_the_paired_distance_path(digits_model):
    emb, X = digits_model
    A, B = X[:70], X[70:130]
    D = emb.cdist(A, B, tile_size=16)
    loop = np.stack([emb.distance(A[i], B, warn_ood=False) for i in range(A.shape[0])])
    np.testing.assert_allclose(D, loop, rtol=1e-4, atol=1e-5 * loop.max())
    ZA, ZB = torch.from_numpy(emb.embed(A)), torch.from_numpy(emb.embed(B))
    direct = torch.empty(70, 60, dtype=torch.float64)
    neighbors.cdist_into(direct, ZA, ZB, distance=emb.distance_fn, tile_size=16)
    staged = torch.empty(70, 60, dtype=torch.float64)
    neighbors.cdist_into(staged, ZA, ZB, distance=emb.distance_fn, tile_size=16, staged=True)  # the CUDA path
    assert torch.equal(direct, staged) and np.array_equal(direct.numpy(), D)


def test_row_staging_in_small_blocks(monkeypatch):
    A, B = torch.randn(23, 5), torch.randn(17, 5)
    want = torch.empty(23, 17, dtype=torch.float64)
    neighbors.cdist_into(want, A, B, distance=LatentDistance(1), tile_size=4)
    for rows in (4, 3):  # row blocks of the tiles' height (the same sums), or not (other GEMM shapes)
        monkeypatch.setattr(neighbors, "STAGE_BYTES", rows * 17 * 8)  # 6 or 8 row blocks, two host buffers
        got = torch.full((23, 17), -1.0, dtype=torch.float64)
        neighbors.cdist_into(got, A, B, distance=LatentDistance(1), tile_size=4, staged=True)
        assert torch.equal(got, want) if rows == 4 else torch.allclose(got, want, rtol=1e-6, atol=0)


def test_bf16_cdist_within_the_stated_tolerance(digits_model):
    emb, X = digits_model
    A, B = X[:200], X[200:500]
    fp32, bf16 = emb.cdist(A, B), emb.cdist(A, B, precision="bf16")
    assert bf16.dtype == np.float64 and bf16.shape == fp32.shape
    ZA, ZB = emb.embed(A).astype(np.float64), emb.embed(B).astype(np.float64)
    c = ZB.mean(0)
    scale = ((ZA - c) ** 2).sum(1)[:, None] + ((ZB - c) ** 2).sum(1)[None, :]
    err = np.abs(bf16 - fp32)
    assert np.all(err <= BF16_REL * scale + 1e-7 * fp32.max()), float((err / scale).max())
    assert 0 < err.max() and np.median(err / fp32.mean()) < 1e-2
    tA = torch.from_numpy(A)
    t16 = emb.cdist(tA, torch.from_numpy(B), precision="bf16")
    assert isinstance(t16, torch.Tensor) and np.array_equal(t16.numpy(), bf16)
    with pytest.raises(InputError, match="unknown precision.*'fp32' or 'bf16'.*received 'fp16'"):
        emb.cdist(A, B, precision="fp16")


class _Rounded(torch.nn.Module):
    """Integer embeddings: with 32 references the centre is a multiple of 1/32, so every distance is exact
    (ties are exact ties, whatever the order of the sums)."""

    def forward(self, x):
        return (x * 60).round()[:, :8]


def test_kneighbors_sorts_ties_by_index_on_the_device():
    emb = WassersteinEmbedding(_Rounded(), None, config=None, p=2, grid=GRID)
    R = np.repeat(random_images(8, 40), 4, axis=0)  # every reference four times: ties everywhere
    Q = random_images(5, 41)
    D = emb.cdist(Q, R)
    for block in (3, 256):
        val, idx = emb.kneighbors(torch.from_numpy(Q), torch.from_numpy(R), k=9, tile_size=block)
        idx, val = idx.numpy(), val.numpy()
        np.testing.assert_array_equal(val, np.sort(D, axis=1)[:, :9])  # the 9 smallest (which of tied ones at
        np.testing.assert_array_equal(val, np.take_along_axis(D, idx, 1))  # the 9th is topk's choice)
        for q in range(5):  # ascending by value, ties by index
            assert [tuple(p) for p in zip(val[q], idx[q])] == sorted(zip(val[q], idx[q]))


# -- the OOD score in the same batches ---------------------------------------------------------------------
def test_pca_score_computed_in_the_encoder_batches(digits_model):
    emb, X = digits_model
    (Z, s), like, _ = emb._embed_input(torch.from_numpy(X[:100]), "X", None, 16, score="pca")
    assert like == torch.device("cpu") and s.dtype == np.float64
    np.testing.assert_allclose(s, emb.ood_score(X[:100]), rtol=1e-5, atol=1e-7)
    noise = np.random.default_rng(0).integers(0, 256, (5, 8, 8)).astype(np.uint8)
    with pytest.warns(OutOfDistributionWarning, match="principal subspace"):
        emb.distance(torch.from_numpy(noise), X[:5])


def test_bench_gpu_table_on_cpu(digits):
    from wassembed.bench._gpu import format_gpu_benchmark, run_gpu_benchmark

    r = run_gpu_benchmark(digits.subset(np.arange(200)), device="cpu", n_embed=64, n_pairs=64, matrix_size=32,
                          repeats=1, parity_pairs=32, threads=1, train_pairs=160, train_batch_images=(8, 64),
                          train_epochs=1)
    table = format_gpu_benchmark(r)
    assert len(r["rows"]) == 10 and all(row["rate"] > 0 for row in r["rows"])
    assert r["parity"]["device_vs_cpu_max_abs"] == 0 and r["parity"]["numpy_vs_tensor_max_abs"] == 0
    assert r["parity"]["bf16_vs_fp32_max_abs"] <= BF16_REL * 4 * r["parity"]["cdist_mean"] + 1e-6
    for what in ("encoder alone, fp32", "bf16 autocast", "embed", "distance", "cdist 32×32", "torch.cdist",
                 "Parity on 32 pairs", "cdist bf16 vs fp32", "Training: a fresh fast network", "| 8 | 4 |"):
        assert what in table, what
    # the training rows: every random pair (none with i == j) once per epoch, in batches of batch_images / 2
    tr = r["training"]
    assert [row["batch_images"] for row in tr["rows"]] == [8, 64] and tr["images"] == 200 and tr["epochs"] == 1
    assert all(row["pairs"] == tr["pairs"] and 150 <= tr["pairs"] <= 160 for row in tr["rows"])
    assert [row["steps"] for row in tr["rows"]] == [-(-tr["pairs"] // 4), -(-tr["pairs"] // 32)]
    assert all(row["rate"] > 0 and np.isfinite(row["loss"]) for row in tr["rows"])
    with pytest.raises(InputError, match="train_batch_images"):
        run_gpu_benchmark(digits.subset(np.arange(50)), device="cpu", train_batch_images=(2,))


# -- the same on CUDA ----------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run with -m gpu on a GPU machine)")
def test_cuda_tensors_stay_on_the_gpu_and_match_the_cpu(digits_model):
    emb, X = digits_model
    A, B = X[np.arange(3000) % X.shape[0]], X[1000:1600]
    gA, gB = torch.from_numpy(A).cuda(), torch.from_numpy(B).cuda()
    for name, args, gargs in [("embed", (A,), (gA,)), ("distance", (A[:600], B), (gA[:600], gB)),
                              ("cdist", (A, B), (gA, gB))]:
        cpu = getattr(emb, name)(*args, device="cpu")
        gpu = getattr(emb, name)(*gargs, device="cuda", batch_size=1024)
        host = getattr(emb, name)(*args, device="cuda", batch_size=1024)  # numpy in: pinned staging, numpy out
        assert isinstance(gpu, torch.Tensor) and gpu.device.type == "cuda" and isinstance(host, np.ndarray), name
        tol = dict(rtol=1e-3, atol=1e-4 * float(np.abs(cpu).max()))
        np.testing.assert_allclose(gpu.cpu().numpy(), cpu, **tol, err_msg=name)
        np.testing.assert_allclose(host, cpu, **tol, err_msg=name)
    val, idx = emb.kneighbors(gA[:100], gB, k=5, device="cuda")
    assert idx.device.type == "cuda" and val.dtype == torch.float64
    np.testing.assert_array_equal(idx.cpu().numpy(), emb.kneighbors(A[:100], B, k=5, device="cuda").indices)
    bad = torch.from_numpy(np.where(np.arange(64) == 5, np.nan, 1.0).reshape(1, 8, 8)).cuda()
    with pytest.raises(InputError, match="NaN or infinite values.*row 2000$"):
        emb.embed(torch.cat([torch.ones(2000, 8, 8, device="cuda", dtype=bad.dtype), bad]), device="cuda")
    fp32, bf16 = emb.cdist(gA, gB, device="cuda"), emb.cdist(gA, gB, device="cuda", precision="bf16")
    assert float((bf16 - fp32).abs().max()) <= BF16_REL * 4 * float(fp32.mean()) + 1e-6
