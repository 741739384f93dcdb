"""Every cache guarantee for point clouds, as for histograms: the same tests over both kinds of data."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import ot
import pytest

from wassembed.data import HistogramSet, PointCloudSet, load_dataset, make_shapes, mnist_clouds
from wassembed.errors import CacheError, CacheMismatchError, CorruptShardError, InputError
from wassembed.exact import CloudLOT, CloudSolver, DistanceCache, precompute, verify
from wassembed.exact._teacher import has_lot_support, read_lot_targets

from .conftest import content, run_cli, same, shard_bytes


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(40, seed=0, min_points=20, max_points=60)


@pytest.fixture(scope="module")
def digit_clouds(digits):
    few = digits.subset(np.arange(24))
    return mnist_clouds(few.images(), seed=0, labels=few.labels)


@pytest.fixture(params=["histograms", "point_clouds"])
def kind(request):
    return request.param


@pytest.fixture()
def data(kind, small_digits, shapes):
    return small_digits if kind == "histograms" else shapes


def _other(kind, digits):
    """Other data of the same kind (for the refusals)."""
    return digits.subset(np.arange(1, 61)) if kind == "histograms" else make_shapes(40, seed=1, min_points=20,
                                                                                      max_points=60)


def _fingerprint(data, p=2):
    return data.fingerprint(p)


# -- create, reopen, refuse ---------------------------------------------------------------------------
def test_create_reopen_and_refuse_other_data(kind, data, digits, shapes, tmp_path):
    out = tmp_path / "c"
    precompute(data, out, pairs=40, workers=1, progress=False, chunk_size=20)
    c = DistanceCache.create(out, data, p=2)  # reopened: same data, same p
    ds = c.manifest["dataset"]
    assert ds["kind"] == kind and ds["n"] == data.n and ds["fingerprint"] == _fingerprint(data) == c.fingerprint
    assert c.manifest["ground_cost"] == "sqeuclidean" and c.manifest["quantity"] == "w2sq"
    back = DistanceCache.open(out).data
    assert type(back) is type(data) and _fingerprint(back) == _fingerprint(data)
    np.testing.assert_array_equal(back.weights, data.weights)
    np.testing.assert_array_equal(back.labels, data.labels)
    before = shard_bytes(out)
    other_kind = shapes if kind == "histograms" else digits.subset(np.arange(40))
    for wrong in (_other(kind, digits), other_kind):
        with pytest.raises(CacheMismatchError, match=r"built from other data.*fix: use another out directory"):
            precompute(wrong, out, pairs=20, workers=1, progress=False)
    with pytest.raises(CacheMismatchError, match=r"other settings.*expected p=2"):
        precompute(data, out, pairs=20, workers=1, progress=False, p=1)
    with pytest.raises(InputError, match=r"bad data: expected a HistogramSet or a PointCloudSet"):
        DistanceCache.create(tmp_path / "x", np.ones((3, 4)), p=2)
    assert shard_bytes(out) == before and not (tmp_path / "x").exists()


@pytest.mark.parametrize("p, quantity, cost", [(1, "w1", "euclidean"), (2, "w2sq", "sqeuclidean")])
def test_cloud_manifest_and_stored_data(shapes, tmp_path, p, quantity, cost):
    c = DistanceCache.create(tmp_path / "c", shapes, p=p)
    m = c.manifest
    assert (m["p"], m["quantity"], m["ground_cost"]) == (p, quantity, cost)
    sizes = shapes.sizes
    assert {k: m["dataset"][k] for k in ("kind", "n", "d", "points", "k_min", "k_max")} == {
        "kind": "point_clouds", "n": 40, "d": 3, "points": int(sizes.sum()), "k_min": int(sizes.min()),
        "k_max": int(sizes.max())}
    stored = PointCloudSet.load(tmp_path / "c" / "data.npz")  # the interchange format, readable as such
    assert stored.fingerprint() == shapes.fingerprint() and (stored.labels == shapes.labels).all()
    assert isinstance(load_dataset(tmp_path / "c" / "data.npz"), PointCloudSet)


def test_old_manifest_without_kind_opens_as_histograms(small_digits, tmp_path):
    out = tmp_path / "c"
    precompute(small_digits, out, pairs=30, workers=1, progress=False)
    m = json.loads((out / "manifest.json").read_text())
    del m["dataset"]["kind"]
    m["format_version"] = 1  # written before point clouds existed
    (out / "manifest.json").write_text(json.dumps(m))
    c = DistanceCache.open(out)
    assert isinstance(c.data, HistogramSet) and len(c.read()) == 30 and verify(out)["ok"]
    assert precompute(small_digits, out, pairs=40, workers=1, progress=False).computed == 10
    m["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CacheError, match=r"unsupported cache format.*expected wassembed-cache version 1 or 2"):
        DistanceCache.open(out)


# -- resume, temporary files, corruption --------------------------------------------------------------
def test_resume_computes_only_missing_pairs(data, tmp_path):
    kw = dict(workers=1, progress=False, seed=5, chunk_size=40)
    precompute(data, tmp_path / "c", pairs=120, **kw)
    r = precompute(data, tmp_path / "c", pairs=120, **kw)
    assert r.computed == 0 and r.already_cached == 120
    r = precompute(data, tmp_path / "c", pairs=200, **kw)  # grows the plan
    assert r.computed == 80 and r.total_in_cache == 200
    precompute(data, tmp_path / "ref", pairs=200, **kw)
    assert same(content(tmp_path / "c"), content(tmp_path / "ref"))


def test_killed_writer_temp_files_cleaned(data, tmp_path):
    out = tmp_path / "c"
    precompute(data, out, pairs=80, workers=1, progress=False, chunk_size=40)
    shard = sorted((out / "shards").glob("*.npz"))[0]
    key = shard.stem
    shard.unlink()  # killed while writing this chunk: its shard never got its final name
    stray = [out / ".tmp-manifest-k1ll3d.part", out / "plans" / ".tmp-abc-x.part",
             out / "shards" / f".tmp-{key}-y.part"]
    for f in stray:
        f.write_bytes(b"half written")
    assert verify(out)["temp_files"] == 3 and verify(out)["missing"] == 40
    r = precompute(data, out, pairs=80, workers=1, progress=False, chunk_size=40)  # the resume
    assert r.computed == 40 and not any(f.exists() for f in stray)
    rep = verify(out)
    assert rep["ok"] and rep["temp_files"] == 0 and shard.exists()


def test_corrupt_shard_detected_and_repaired(data, tmp_path):
    out = tmp_path / "c"
    precompute(data, out, pairs=120, workers=1, progress=False, chunk_size=40)
    ref = content(out)
    shard = sorted((out / "shards").glob("*.npz"))[1]
    raw = bytearray(shard.read_bytes())
    raw[-300] ^= 0xFF  # one byte inside the data
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptShardError, match=shard.name):
        DistanceCache.open(out).read()
    rep = verify(out)
    assert rep["corrupt"] == [shard.name] and not rep["ok"]
    assert not DistanceCache.open(out).info()["ok"]
    rep = verify(out, repair=True, workers=1)
    assert rep["ok"] and rep["recomputed"] == 40
    assert same(content(out), ref)


# -- manifest and stored data of a cloud cache, checked against each other ----------------------------
@pytest.fixture(scope="module")
def built_clouds(tmp_path_factory, shapes):
    out = tmp_path_factory.mktemp("clouds") / "c"
    precompute(shapes, out, pairs=60, workers=1, progress=False, chunk_size=30)
    return out


def _edit(cache, **changes):
    m = json.loads((cache / "manifest.json").read_text())
    for key, value in changes.items():
        (m["dataset"] if key in ("n", "d", "k_max", "fingerprint") else m)[key] = value
    (cache / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("changes, match", [
    ({"p": 1}, r"field p was edited: expected 2 .*received 1; fix: set \"p\": 2"),
    ({"p": 1, "quantity": "w1", "ground_cost": "euclidean"}, r"field p was edited: expected 2"),
    ({"fingerprint": "0" * 64}, r"field dataset\.fingerprint was edited.*sha256 matches"),
    ({"d": 2}, r"field dataset\.d was edited: expected 3"),
    ({"k_max": 7}, r"field dataset\.k_max was edited"),
])
def test_edited_cloud_manifest_named(built_clouds, tmp_path, changes, match):
    c = Path(shutil.copytree(built_clouds, tmp_path / "c"))
    _edit(c, **changes)
    with pytest.raises(CacheError, match=match):
        _ = DistanceCache.open(c).data
    rep = verify(c)
    assert not rep["ok"] and [d["part"] for d in rep["damaged"]] == ["manifest"]


def test_replaced_cloud_data_is_blamed_on_the_data(built_clouds, shapes, tmp_path):
    c = Path(shutil.copytree(built_clouds, tmp_path / "c"))
    other = make_shapes(40, seed=1, min_points=20, max_points=60)
    np.savez(c / "data.npz", points=other.points, weights=other.weights, offsets=other.offsets, p=np.int64(2))
    with pytest.raises(CacheError, match=r"stored data .*data\.npz was altered.*fix: restore data\.npz"):
        _ = DistanceCache.open(c).data
    np.savez(c / "data.npz", points=shapes.points, weights=shapes.weights, offsets=shapes.offsets, p=np.int64(1))
    with pytest.raises(CacheError, match=r"data\.npz was altered"):  # same clouds, other p: the data changed
        _ = DistanceCache.open(c).data
    assert [d["part"] for d in verify(c)["damaged"]] == ["data"]


# -- executors: identical values whichever runs the solves --------------------------------------------
@pytest.mark.parametrize("which", ["shapes", "digit_clouds"])
def test_pool_in_process_and_solver_bit_identical(which, request, tmp_path):
    cs = request.getfixturevalue(which)
    a = precompute(cs, tmp_path / "a", pairs=80, workers=2, progress=False, chunk_size=20)
    b = precompute(cs, tmp_path / "b", pairs=80, workers=1, progress=False, chunk_size=20)
    assert (a.executor, b.executor) == ("process-pool", "in-process")
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b")
    i, j, value = content(tmp_path / "a")
    np.testing.assert_array_equal(value, CloudSolver(p=2).solve_pairs(cs, i, j))
    for t in range(0, i.size, 7):
        (pa, wa), (pb, wb) = cs.cloud(int(i[t])), cs.cloud(int(j[t]))
        assert abs(value[t] - ot.emd2(wa, wb, ot.dist(pa, pb))) <= 1e-9


def test_lot_targets_of_clouds_equal_a_direct_cloudlot(shapes, tmp_path):
    """precompute caches one CloudLOT solve per cloud of the plan (p = 2), against one fixed reference; a pool
    gives the same files; p = 1 has none."""
    assert has_lot_support(shapes, 2) and not has_lot_support(shapes, 1)
    r = precompute(shapes, tmp_path / "c", pairs=30, workers=1, progress=False)  # lot=True by default
    lot = read_lot_targets(DistanceCache.open(tmp_path / "c"))
    i, j, _ = content(tmp_path / "c")
    assert r.lot_requested == r.lot_computed == np.unique(np.concatenate([i, j])).size == len(lot)
    assert lot.reference.shape == (64, 3)
    direct, split = CloudLOT(lot.reference).transform(shapes.subset(lot.index), return_split=True)
    np.testing.assert_allclose(lot.embedding, direct, rtol=1e-6, atol=1e-5)  # stored as float32
    np.testing.assert_array_equal(lot.split, split)
    assert (split >= -1e-9).all()
    precompute(shapes, tmp_path / "pool", pairs=30, workers=2, progress=False)
    files = lambda d: {f.name: f.read_bytes() for f in sorted((d / "lot").glob("*.npz"))}
    assert files(tmp_path / "pool") == files(tmp_path / "c")
    assert precompute(shapes, tmp_path / "c", pairs=30, workers=1, progress=False).lot_computed == 0  # resumed
    assert precompute(shapes, tmp_path / "w1", pairs=10, workers=1, progress=False, p=1).lot_requested == 0


# -- the command line on a ragged .npz ----------------------------------------------------------------
def test_cli_round_trip_on_a_ragged_npz(shapes, tmp_path):
    shapes.save(tmp_path / "clouds.npz")
    out = tmp_path / "c"
    proc = run_cli("precompute", tmp_path / "clouds.npz", "--out", out, "--pairs", "30", "--workers", "1",
                   "--quiet", check=True)
    sizes = shapes.sizes
    assert f"clouds.npz: 40 clouds of {sizes.min()}–{sizes.max()} points in 3 dimensions" in proc.stderr
    assert "pairs in cache   30" in proc.stdout
    proc = run_cli("cache", "info", out, check=True)
    assert f"40 clouds of {sizes.min()}–{sizes.max()} points in 3 dimensions" in proc.stdout
    assert "ground cost sqeuclidean" in proc.stdout
    run_cli("cache", "export", out, tmp_path / "e.npz", check=True)
    with np.load(tmp_path / "e.npz") as z:
        i, j, value = z["i"], z["j"], z["value"]
    assert i.size == 30 and value.dtype == np.float64
    np.testing.assert_array_equal(value, CloudSolver().solve_pairs(shapes, i, j))


# -- Dask ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed not installed")
def test_dask_gives_the_local_pools_cache(shapes, tmp_path):
    from distributed import Client, LocalCluster

    precompute(shapes, tmp_path / "pool", pairs=100, workers=2, progress=False, chunk_size=25)
    with LocalCluster(n_workers=2, processes=False, threads_per_worker=1, dashboard_address=":0") as cl, \
            Client(cl, set_as_default=False) as client:
        r = precompute(shapes, tmp_path / "dask", pairs=100, client=client, progress=False, chunk_size=25)
    assert r.executor == "dask" and r.computed == 100
    assert shard_bytes(tmp_path / "dask") == shard_bytes(tmp_path / "pool")
    assert verify(tmp_path / "dask")["ok"]


def test_precompute_refuses_other_objects(tmp_path):
    with pytest.raises(InputError, match=r"bad data: expected a HistogramSet, a PointCloudSet"):
        precompute([np.zeros((2, 3))], tmp_path / "c", pairs=1)
