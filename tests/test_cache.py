import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wassembed.data import HistogramSet
from wassembed.errors import (
    CacheError,
    CacheMismatchError,
    CorruptShardError,
    SolverError,
)
from wassembed.exact import DistanceCache, precompute, verify

from .conftest import PROGRESS_LINES, content, progress_count, read_until, run_cli, same, wait_until


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

    auto = ExactSolver(coords=small_digits.support_coords())  # what precompute runs (8×8 digits: POT's problems)
    np.testing.assert_array_equal(t.value, auto.solve_pairs(small_digits.weights, t.i, t.j))
    grid = ExactSolver(coords=small_digits.support_coords(), method="grid")  # integer images: the grid path too
    np.testing.assert_allclose(t.value, grid.solve_pairs(small_digits.weights, t.i, t.j), rtol=1e-12, atol=0)
    pot = ExactSolver(small_digits.ground_cost(2), method="pot").solve_pairs(small_digits.weights, t.i, t.j)
    np.testing.assert_allclose(t.value, pot, rtol=1e-12, atol=0)


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
    with pytest.raises(CacheMismatchError, match=r"built from other data.*fix: use another out directory"):
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


@pytest.mark.filterwarnings("ignore:numItermax reached:UserWarning")  # the non-optimal solve is the point
def test_solver_failure_is_never_cached(small_digits, tmp_path, monkeypatch):
    # POT's path (float weights that are not rationals of integer counts): its iteration limit reached
    noisy = HistogramSet.from_histograms(small_digits.weights + 1e-3 * np.sqrt(2), grid=small_digits.grid)
    with pytest.raises(SolverError, match="did not reach optimality"):
        precompute(noisy, tmp_path / "c", pairs=20, workers=1, progress=False, num_iter_max=2)
    assert DistanceCache.open(tmp_path / "c").read().i.size == 0
    # the grid path (integer images): LEMON reporting anything but an optimum
    import pylmcf

    from wassembed.exact._grid import lemon

    assert lemon() is pylmcf  # loaded (its self-test passed) before the breakage below

    def infeasible(self):
        raise RuntimeError("Solver failed: problem is INFEASIBLE")

    monkeypatch.setattr(pylmcf.Graph, "solve", infeasible)
    with pytest.raises(SolverError, match=r"did not reach optimality.*INFEASIBLE"):
        precompute(small_digits, tmp_path / "g", pairs=20, workers=1, progress=False, method="grid")
    assert DistanceCache.open(tmp_path / "g").read().i.size == 0


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


def _default_sigint():
    """Start a child with Ctrl-C's default action, whatever a library did to this test process's SIGINT
    (an ignored signal is inherited through exec, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cmd(out, pairs=3000, workers=2, quiet=True):
    return [sys.executable, "-m", "wassembed", "precompute", "digits", "--out", str(out), "--pairs", str(pairs),
            "--workers", str(workers), "--chunk-size", "40", *(["--quiet"] if quiet else []), "--seed", "7"]


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    """Three runs killed (SIGKILL, the whole process group: main process and pool workers) each right after it
    reported a random number of new shards (seeded; within the first fifth of what is left, so the kill lands in
    the computation), then a resume that computes exactly the missing pairs."""
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref), check=True, capture_output=True, timeout=300)
    rng = np.random.default_rng(0)
    out = tmp_path / "c"
    kept = 0
    for _ in range(3):
        left = (3000 - kept) // 40
        k = int(rng.integers(1, max(left // 5, 1) + 1))  # shards this run writes before it is killed
        proc = subprocess.Popen(_cmd(out, quiet=False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env={**os.environ, **PROGRESS_LINES})
        read_until(proc.stderr, lambda line, k=k: (progress_count(line) or 0) >= 40 * k, f"its shard number {k}")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL  # killed while it ran, not ended by itself
        t = DistanceCache.open(out).read()  # never corrupt: every shard verifies
        assert kept + 40 * k <= len(t) < 3000 and len(t) % 40 == 0  # what it reported is kept, whole chunks only
        kept = len(t)
    done = json.loads(subprocess.run([*_cmd(out), "--json"], check=True, capture_output=True, text=True,
                                     timeout=300).stdout)
    assert (done["already_cached"], done["computed"]) == (kept, 3000 - kept)  # exactly the missing pairs
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
    proc = subprocess.Popen(_cmd(out, pairs=20000, quiet=False), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint, env={**os.environ, **PROGRESS_LINES})
    read_until(proc.stderr, lambda line: (progress_count(line) or 0) >= 80, "its second shard")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted: finished shards are kept; rerun the same command to resume." in err
    kept = len(DistanceCache.open(out).read())
    assert 80 <= kept < 20000 and kept % 40 == 0  # the two shards it reported, whole chunks only
    assert not list((out / "locks").glob("*.lock"))  # claims released


# -- damaged parts of a cache: every one named, with what to do (CLI and Python) --------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory, small_digits):
    """A cache of 200 pairs in 4 shards, copied by each test that damages it."""
    out = tmp_path_factory.mktemp("built") / "c"
    precompute(small_digits, out, pairs=200, workers=1, progress=False, chunk_size=50)
    return out


def _copy(built, tmp_path):
    import shutil

    return Path(shutil.copytree(built, tmp_path / "c"))


def _edit_manifest(cache, **changes):
    m = json.loads((cache / "manifest.json").read_text())
    for key, value in changes.items():
        table = m["dataset"] if key in ("n", "k", "fingerprint") else m
        table[key] = value
    (cache / "manifest.json").write_text(json.dumps(m))


def _corrupt_data(cache):
    raw = bytearray((cache / "data.npz").read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 200] = bytes(200)  # inside weights.npy: the zip's CRC no longer matches
    (cache / "data.npz").write_bytes(bytes(raw))


def _cli_damage(cache, *names):
    """`cache info` and `cache verify` (text and JSON) exit 1, name every damaged file, and never trace back."""
    for args in (("info",), ("verify",)):
        proc = run_cli("cache", *args, cache)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and "damaged" in proc.stderr and "fix:" in proc.stderr
        for name in names:
            assert name in proc.stderr, proc.stderr
        rep = json.loads(run_cli("cache", *args, cache, "--json").stdout)
        assert not rep["ok"] and all(any(name in d["file"] for d in rep["damaged"]) for name in names)
    return rep


def test_corrupt_data_npz_named_by_python_cli_and_train(built, tmp_path):
    c = _copy(built, tmp_path)
    _corrupt_data(c)
    with pytest.raises(CacheError, match=r"stored data .*data\.npz is unreadable.*BadZipFile.*fix: restore data\.npz"):
        _ = DistanceCache.open(c).data  # what training reads
    info = DistanceCache.open(c).info()
    assert not info["ok"] and [d["part"] for d in info["damaged"]] == ["data"] and info["pairs"] == 200
    rep = verify(c)
    assert not rep["ok"] and rep["damaged"][0]["file"] == str(c / "data.npz") and rep["corrupt"] == []
    rep = _cli_damage(c, "data.npz")
    assert rep["missing"] == 0  # the shards themselves are fine
    before = sorted(p.name for p in (c / "shards").iterdir())
    proc = run_cli("cache", "verify", c, "--repair", "--workers", "1")  # nothing to recompute from: untouched
    assert proc.returncode == 1 and "data.npz" in proc.stderr
    assert sorted(p.name for p in (c / "shards").iterdir()) == before


def test_train_on_corrupt_data_npz_is_one_line(built, tmp_path):
    pytest.importorskip("torch")
    c = _copy(built, tmp_path)
    _corrupt_data(c)
    proc = run_cli("train", c, "--out", tmp_path / "m", "--quiet")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"stored data {c / 'data.npz'} is unreadable" in proc.stderr and "fix:" in proc.stderr


def test_edited_p_is_blamed_on_the_manifest_not_the_data(built, tmp_path):
    c = _copy(built, tmp_path)
    _edit_manifest(c, p=1)
    expected = r"manifest\.json: field p was edited: expected 2 .*received 1; fix: set \"p\": 2"
    with pytest.raises(CacheError, match=expected):
        DistanceCache.open(c)
    rep = _cli_damage(c, "manifest.json")
    assert [d["part"] for d in rep["damaged"]] == ["manifest"]
    proc = run_cli("cache", "verify", c)
    assert "field p was edited" in proc.stderr and "data.npz is unreadable" not in proc.stderr
    assert "was altered" not in proc.stderr  # the data is intact: not blamed
    # p, quantity and ground cost edited together: the manifest is consistent, the data still says p=2
    c2 = tmp_path / "c2"
    import shutil

    shutil.copytree(built, c2)
    _edit_manifest(c2, p=1, quantity="w1", ground_cost="euclidean")
    with pytest.raises(CacheError, match=expected):
        _ = DistanceCache.open(c2).data
    assert "field p was edited" in verify(c2)["damaged"][0]["problem"]


@pytest.mark.parametrize("changes, match", [
    ({"fingerprint": "0" * 64}, r"field dataset\.fingerprint was edited.*sha256 matches"),
    ({"n": 61}, r"field dataset\.n was edited: expected 60"),
    ({"k": 63}, r"field dataset\.k was edited: expected 64"),
    ({"ground_cost": "euclidean"}, r"field ground_cost was edited: expected \"sqeuclidean\""),
    ({"p": "two"}, r"field p: expected an integer, received 'two'"),
])
def test_edited_manifest_fields_named(built, tmp_path, changes, match):
    c = _copy(built, tmp_path)
    _edit_manifest(c, **changes)
    with pytest.raises(CacheError, match=match):
        _ = DistanceCache.open(c).data
    rep = verify(c)
    assert not rep["ok"] and [d["part"] for d in rep["damaged"]] == ["manifest"]
    assert "manifest.json" in rep["damaged"][0]["problem"]


def test_replaced_data_is_blamed_on_the_data(built, digits, tmp_path):
    c = _copy(built, tmp_path)
    np.savez(c / "data.npz", **digits.subset(np.arange(1, 61)).to_arrays())  # readable, but other data
    with pytest.raises(CacheError, match=r"stored data .*data\.npz was altered.*fix: restore data\.npz"):
        _ = DistanceCache.open(c).data
    assert [d["part"] for d in verify(c)["damaged"]] == ["data"]


def test_unreadable_manifest_reported_not_aborted(built, tmp_path):
    c = _copy(built, tmp_path)
    (c / "manifest.json").write_text((c / "manifest.json").read_text()[:100])
    with pytest.raises(CacheError, match=r"unreadable manifest .*manifest\.json.*fix: restore manifest\.json"):
        DistanceCache.open(c)
    rep = _cli_damage(c, "manifest.json")
    assert rep["missing"] is None
    info = json.loads(run_cli("cache", "info", c, "--json").stdout)
    assert info["pairs"] == 200 and info["damaged"][0]["part"] == "manifest"  # the shards are still counted


def test_damaged_plan_named_and_repaired(built, tmp_path):
    c = _copy(built, tmp_path)
    plan = next((c / "plans").glob("*.npz"))
    plan.write_bytes(plan.read_bytes()[:300])
    with pytest.raises(CacheError, match=rf"damaged plan .*{plan.name}.*fix: remove it"):
        DistanceCache.open(c).planned()
    _cli_damage(c, plan.name)
    proc = run_cli("cache", "verify", c, "--repair", "--workers", "1")
    assert proc.returncode == 0 and not plan.exists(), proc.stderr
    assert verify(c)["ok"] and len(DistanceCache.open(c).read()) == 200


def test_damaged_shard_listed_by_info(built, tmp_path):
    c = _copy(built, tmp_path)
    shard = sorted((c / "shards").glob("*.npz"))[1]
    shard.write_bytes(shard.read_bytes()[:100])
    info = DistanceCache.open(c).info()  # no longer aborts: the other shards are summarised
    assert info["pairs"] == 150 and info["shards"] == 3 and info["damaged"][0]["file"] == str(shard)
    _cli_damage(c, shard.name)


def test_damaged_claims_named(built, small_digits, tmp_path):
    import shutil

    c = _copy(built, tmp_path)
    shutil.rmtree(c / "locks")
    (c / "locks").write_text("not a folder")
    with pytest.raises(CacheError, match=r"damaged claims folder .*locks: expected a directory.*fix: remove it"):
        precompute(small_digits, c, pairs=300, workers=1, progress=False, chunk_size=50)
    _cli_damage(c, "locks")
    proc = run_cli("cache", "verify", c, "--repair", "--workers", "1", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["recomputed"] == 100  # the refused run's plan
    (c / "locks" / "x.lock").mkdir()  # a claim that is not a file
    _cli_damage(c, "x.lock")
    assert verify(c, repair=True)["ok"] and not (c / "locks" / "x.lock").exists()
    r = precompute(small_digits, c, pairs=400, workers=1, progress=False, chunk_size=50)
    assert r.computed == 100 and r.total_in_cache == 400 and verify(c)["ok"]


# -- stale temporary files ----------------------------------------------------------------------------
def test_stale_temp_files_removed_on_next_open_unless_a_writer_holds_them(built, tmp_path):
    import fcntl

    c = _copy(built, tmp_path)
    stray = [c / ".tmp-manifest-k1ll3d.part", c / "plans" / ".tmp-abc-x.part", c / "shards" / ".tmp-abc-abc-y.part"]
    for f in stray:
        f.write_bytes(b"half written")
    assert verify(c)["temp_files"] == 3  # found (verify alone does not remove them)
    fd = os.open(c / ".lock", os.O_RDWR)  # a live writer holding the cache lock (rewriting the manifest)
    claim = os.open(c / "locks" / "abc.lock", os.O_CREAT | os.O_RDWR)  # and the claim of chunk abc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(claim, fcntl.LOCK_EX)
        assert DistanceCache.open(c).removed_temp_files == [] and all(f.exists() for f in stray)
    finally:
        os.close(fd)
        os.close(claim)
    cache = DistanceCache.open(c)  # the writers are gone: their files are stale
    assert sorted(cache.removed_temp_files) == sorted(f.name for f in stray)
    assert not any(f.exists() for f in stray) and verify(c)["ok"] and verify(c)["temp_files"] == 0


def test_temp_file_of_a_killed_manifest_rewrite_removed_by_the_resume(tmp_path, small_digits):
    out = tmp_path / "c"
    precompute(small_digits, out, pairs=100, workers=1, progress=False, chunk_size=50)
    (out / ".tmp-manifest-abcd1234.part").write_text('{"format": "wassem')  # killed mid-rewrite
    r = precompute(small_digits, out, pairs=150, workers=1, progress=False, chunk_size=50)
    assert r.computed == 50 and not list(out.glob(".tmp-*"))
    assert "temp files" not in run_cli("cache", "info", out, check=True).stdout


# -- progress on stderr ---------------------------------------------------------------------------------
def _progress_env(interval="0.5"):
    return {**os.environ, "WASSEMBED_PROGRESS_INTERVAL": interval}


def test_progress_redirected_to_a_file_is_plain_lines(tmp_path):
    out, log = tmp_path / "c", tmp_path / "err.log"
    cmd = [sys.executable, "-m", "wassembed", "precompute", "digits", "--out", str(out), "--pairs", "6000",
           "--workers", "1", "--chunk-size", "100"]
    t0 = time.time()
    with open(log, "wb") as err:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, check=True, timeout=300, env=_progress_env())
    elapsed = time.time() - t0
    raw = log.read_bytes()
    assert b"\r" not in raw
    lines = raw.decode().splitlines()
    assert len(lines) <= 3 + elapsed / 0.5, lines  # the header, one line per interval at most, the last one
    progress = [x for x in lines if x.startswith("precompute: ")]
    assert progress and progress[-1].startswith("precompute: 6,000/6,000 pairs (100.0 %)")
    assert "pairs/s" in progress[-1] and "done in" in progress[-1]
    assert all("ETA" in x for x in progress[:-1])


def test_ctrl_c_message_on_its_own_line_in_a_log(tmp_path):
    out, log = tmp_path / "c", tmp_path / "err.log"
    cmd = [sys.executable, "-m", "wassembed", "precompute", "digits", "--out", str(out), "--pairs", "20000",
           "--workers", "2", "--chunk-size", "40", "--seed", "7"]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=_progress_env("0.2"),
                                preexec_fn=_default_sigint)
        # a few progress lines in the log before the Ctrl-C, so that its message must start a line of its own
        wait_until(lambda: sum(x.startswith(b"precompute: ") for x in log.read_bytes().splitlines()) >= 3,
                   "3 progress lines in the log", proc=proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    raw = log.read_bytes()
    assert b"\r" not in raw
    lines = raw.decode().splitlines()
    assert "Interrupted: finished shards are kept; rerun the same command to resume." in lines
    assert any(x.startswith("precompute: ") and "stopped in" in x for x in lines), lines


def test_progress_on_a_terminal_is_a_bar_with_rate_and_eta():
    import io

    from wassembed._progress import progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    with progress(100, desc="precompute", unit="pair", file=tty) as bar:
        for _ in range(4):
            bar.update(25)
    text = tty.getvalue()
    assert "pair/s" in text and "<" in text and text.endswith("\n")  # rate, [elapsed<remaining], line ended
    log = io.StringIO()
    with progress(100, desc="epoch 1/3", unit="batch", file=log, interval=0) as bar:
        bar.set_postfix(loss="0.5")
        bar.update(50)
        bar.write("a message")
    assert log.getvalue().splitlines()[0].startswith("epoch 1/3: 50/100 batches (50.0 %), ")
    assert log.getvalue().splitlines()[0].endswith(", loss 0.5") and "ETA" in log.getvalue()
    assert log.getvalue().splitlines()[1] == "a message" and "\r" not in log.getvalue()
    silent = io.StringIO()
    with progress(10, desc="x", enabled=False, file=silent) as bar:
        bar.update(10)
    assert silent.getvalue() == ""


def test_a_ctrl_c_while_a_claim_is_taken_leaves_no_claim_file(small_digits, tmp_path, monkeypatch):
    """A Ctrl-C lands anywhere: here right after open() created a chunk's claim file, before the claim holds it
    (a run of the command line hit this moment); the interrupted run removes that file."""
    real, opened = os.open, []

    def open_then_interrupted(path, flags, *args):
        fd = real(path, flags, *args)
        if Path(path).parent.name == "locks":
            opened.append(path)
            if len(opened) == 3:
                os.close(fd)
                raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        precompute(small_digits, tmp_path / "c", pairs=400, workers=1, chunk_size=40, progress=False, lot=False)
    monkeypatch.undo()
    assert len(opened) >= 3 and not list((tmp_path / "c" / "locks").glob("*.lock"))
    assert len(DistanceCache.open(tmp_path / "c").read()) == 80  # the two chunks done before are kept
