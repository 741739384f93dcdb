import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from wassembed.errors import (
    CacheError,
    CacheMismatchError,
    CorruptShardError,
    SolverError,
)
from wassembed.exact import DistanceCache, precompute, verify

from .conftest import run_cli


def content(path):
    t = DistanceCache.open(path).read()
    return t.i, t.j, t.value


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_precompute_values_and_manifest(small_digits, tmp_path):
    r = precompute(small_digits, tmp_path / "c", pairs=100, workers=1, progress=False, chunk_size=30)
    assert r.computed == 100 and r.total_in_cache == 100
    c = DistanceCache.open(tmp_path / "c")
    m = c.manifest
    assert m["quantity"] == "w2sq" and m["p"] == 2 and m["ground_cost"] == "sqeuclidean"
    assert m["counts"]["pairs"] == 100 and m["counts"]["shards"] == 4
    assert m["versions"]["pot"] and m["dataset"]["fingerprint"] == small_digits.fingerprint(2)
    # the cache stores its data: training needs only the cache
    np.testing.assert_array_equal(c.data.weights, small_digits.weights)
    assert (c.data.labels == small_digits.labels).all()
    t = c.read()
    from wassembed.exact import ExactSolver

    ref = ExactSolver(small_digits.ground_cost(2)).solve_pairs(small_digits.weights, t.i, t.j)
    np.testing.assert_array_equal(t.value, ref)


def test_resume_computes_only_missing_pairs(small_digits, tmp_path):
    precompute(small_digits, tmp_path / "c", pairs=300, workers=1, progress=False, seed=5)
    r = precompute(small_digits, tmp_path / "c", pairs=300, workers=1, progress=False, seed=5)
    assert r.computed == 0 and r.already_cached == 300
    r = precompute(small_digits, tmp_path / "c", pairs=500, workers=1, progress=False, seed=5)  # grows the plan
    assert r.computed == 200 and r.total_in_cache == 500
    precompute(small_digits, tmp_path / "ref", pairs=500, workers=1, progress=False, seed=5)
    assert same(content(tmp_path / "c"), content(tmp_path / "ref"))


def test_other_data_or_settings_refused_and_nothing_written(small_digits, digits, tmp_path):
    precompute(small_digits, tmp_path / "c", pairs=20, workers=1, progress=False)
    before = sorted(os.listdir(tmp_path / "c" / "shards"))
    with pytest.raises(CacheMismatchError, match=r"built from other data.*fix: use another --out directory"):
        precompute(digits.subset(np.arange(1, 61)), tmp_path / "c", pairs=20, workers=1, progress=False)
    with pytest.raises(CacheMismatchError, match=r"other settings.*expected p=2"):
        precompute(small_digits, tmp_path / "c", pairs=20, workers=1, progress=False, p=1)
    assert sorted(os.listdir(tmp_path / "c" / "shards")) == before


def test_corrupt_shard_detected_and_repaired(small_digits, tmp_path):
    precompute(small_digits, tmp_path / "c", pairs=200, workers=1, progress=False, chunk_size=50)
    ref = content(tmp_path / "c")
    shard = sorted((tmp_path / "c" / "shards").glob("*.npz"))[1]
    raw = bytearray(shard.read_bytes())
    raw[-300] ^= 0xFF  # flip one byte inside the data
    shard.write_bytes(bytes(raw))
    with pytest.raises(CorruptShardError, match=shard.name):
        DistanceCache.open(tmp_path / "c").read()
    report = verify(tmp_path / "c")
    assert report["corrupt"] == [shard.name] and not report["ok"]
    report = verify(tmp_path / "c", repair=True, workers=1)
    assert report["recomputed"] == 50 and report["ok"]  # only the lost shard's pairs
    assert same(content(tmp_path / "c"), ref)


def test_solver_failure_is_never_cached(small_digits, tmp_path):
    with pytest.raises(SolverError, match="did not reach optimality"):
        precompute(small_digits, tmp_path / "c", pairs=20, workers=1, progress=False, num_iter_max=2)
    assert DistanceCache.open(tmp_path / "c").read().i.size == 0


def test_failed_write_is_clear_and_resumable(small_digits, tmp_path, monkeypatch):
    import wassembed.exact._cache as cache_mod

    calls = {"n": 0}
    real = cache_mod.atomic_write

    def flaky(path, fn, **kw):
        if "shards" in str(path):
            calls["n"] += 1
            if calls["n"] == 3:
                def boom(fh):
                    fn(fh)
                    raise OSError(28, "No space left on device")
                return real(path, boom, **kw)
        return real(path, fn, **kw)

    monkeypatch.setattr(cache_mod, "atomic_write", flaky)
    with pytest.raises(CacheError, match=r"cannot write a shard.*No space left on device.*rerun the same command"):
        precompute(small_digits, tmp_path / "c", pairs=200, workers=1, progress=False, chunk_size=50)
    monkeypatch.setattr(cache_mod, "atomic_write", real)
    assert not list((tmp_path / "c" / "shards").glob(".tmp-*"))  # no half-written file left
    assert len(DistanceCache.open(tmp_path / "c").read()) == 100
    r = precompute(small_digits, tmp_path / "c", pairs=200, workers=1, progress=False, chunk_size=50)
    assert r.computed == 100
    precompute(small_digits, tmp_path / "ref", pairs=200, workers=1, progress=False, chunk_size=50)
    assert same(content(tmp_path / "c"), content(tmp_path / "ref"))


def _cmd(out, pairs=3000, workers=2):
    return [sys.executable, "-m", "wassembed", "precompute", "digits", "--out", str(out), "--pairs", str(pairs),
            "--workers", str(workers), "--chunk-size", "40", "--quiet", "--seed", "7"]


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref), check=True, capture_output=True, timeout=300)
    rng = np.random.default_rng(0)
    out = tmp_path / "c"
    killed_with_shards = 0
    for _ in range(3):
        proc = subprocess.Popen(_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 60
        while not (out / "manifest.json").exists() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.1, 1.0))  # a random moment of the computation
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: main process and its workers
        proc.wait()
        t = DistanceCache.open(out).read()  # never corrupt: every shard verifies
        killed_with_shards += len(t) > 0
    assert killed_with_shards >= 1
    subprocess.run(_cmd(out), check=True, capture_output=True, timeout=300)
    assert same(content(out), content(ref))
    assert verify(out)["ok"]


def test_two_processes_fill_one_cache(tmp_path):
    out = tmp_path / "c"
    procs = [subprocess.Popen(_cmd(out, pairs=2000, workers=1), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    c = DistanceCache.open(out)
    sizes = sum(len(t) for t in c.read_shards())
    assert sizes == len(c.read()) == 2000  # no pair stored twice
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref, pairs=2000), check=True, capture_output=True, timeout=300)
    assert same(content(out), content(ref))


def test_cli_precompute_info_export(tmp_path):
    out = tmp_path / "c"
    run_cli("precompute", "digits", "--out", out, "--pairs", "50", "--workers", "1", "--quiet", "--json", check=True)
    info = json.loads(run_cli("cache", "info", out, "--json", check=True).stdout)
    assert info["pairs"] == 50 and info["quantity"] == "w2sq" and info["values"]["mean"] > 0
    run_cli("cache", "export", out, tmp_path / "e.npz", check=True)
    z = np.load(tmp_path / "e.npz")
    assert z["i"].dtype == np.int64 and z["value"].dtype == np.float64 and z["i"].size == 50


@pytest.mark.parametrize("args, match", [
    (["--pairs", "99999999"], "larger than the number of distinct pairs"),
    (["--pairs", "10", "--images", "5:2"], "out of bounds"),
    (["--pairs", "ten"], "bad --pairs: expected a positive number"),
    (["--pairs", "0"], "bad --pairs: expected a positive number"),
    (["--pairs", "10", "--p", "3"], "Invalid value"),
    ([], "give --pairs"),
])
def test_cli_bad_input_exit_2_and_no_cache(tmp_path, args, match):
    out = tmp_path / "c"
    proc = run_cli("precompute", "digits", "--out", out, *args)
    assert proc.returncode == 2, proc.stderr
    assert match in proc.stderr
    assert not out.exists()


def test_cli_bad_data_file_exit_2(tmp_path):
    (tmp_path / "x.txt").write_text("1 2 3")
    proc = run_cli("precompute", tmp_path / "x.txt", "--out", tmp_path / "c", "--pairs", "5")
    assert proc.returncode == 2 and "unknown data format" in proc.stderr and not (tmp_path / "c").exists()


def test_ctrl_c_stops_cleanly_keeping_finished_shards(tmp_path):
    out = tmp_path / "c"
    proc = subprocess.Popen(_cmd(out, pairs=20000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "shards").glob("*.npz")) if (out / "shards").exists() else []) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted: finished shards are kept; rerun the same command to resume." in err
    kept = len(DistanceCache.open(out).read())
    assert 0 < kept < 20000 and kept % 40 == 0  # whole chunks only
    assert not list((out / "locks").glob("*.lock"))  # claims released
