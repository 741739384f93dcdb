"""Precompute on a Dask cluster: same cache as the local pool, data shipped once, dead workers survived."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from wassembed.errors import ClusterError, InputError, SolverError
from wassembed.exact import DaskExecutor, DistanceCache, connect, precompute, verify

from .conftest import run_cli
from .test_reliability import record

distributed = pytest.importorskip("distributed")
Client, LocalCluster = distributed.Client, distributed.LocalCluster

pytestmark = [pytest.mark.timeout(600)] if importlib.util.find_spec("pytest_timeout") else []

CLUSTER = dict(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0")


def content(path):
    t = DistanceCache.open(path).read()
    return t.i, t.j, t.value


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def shard_bytes(path):
    d = path / "shards"
    return {f.name: f.read_bytes() for f in sorted(d.glob("*.npz"))}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(**CLUSTER) as cl:
        yield cl


@pytest.fixture()
def client(cluster):
    with Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=120)
        c.run(lambda: __import__("ot"))  # warm: POT imported on the workers
        yield c


def test_same_cache_bit_for_bit_as_local_pool(digits, client, tmp_path):
    hs = digits.subset(np.arange(300))
    r = precompute(hs, tmp_path / "dask", pairs=1500, client=client, chunk_size=100, seed=1, progress=False)
    assert r.executor == "dask" and r.computed == 1500 and r.workers == 2
    precompute(hs, tmp_path / "pool", pairs=1500, workers=2, chunk_size=100, seed=1, progress=False)
    a, b = shard_bytes(tmp_path / "dask"), shard_bytes(tmp_path / "pool")
    assert len(a) == 15 and a == b  # same shard names (content keys), same bytes
    assert same(content(tmp_path / "dask"), content(tmp_path / "pool"))
    ma = DistanceCache.open(tmp_path / "dask").manifest
    mb = DistanceCache.open(tmp_path / "pool").manifest
    assert ma["counts"]["pairs"] == mb["counts"]["pairs"] and ma["dataset"] == mb["dataset"]


def test_executors_mix_in_one_cache(digits, client, tmp_path):
    from wassembed.exact import plan_pairs

    hs = digits.subset(np.arange(200))
    i, j = plan_pairs(hs, 1000, seed=2)
    precompute(hs, tmp_path / "c", (i[:600], j[:600]), client=client, chunk_size=50, progress=False)
    r = precompute(hs, tmp_path / "c", (i, j), workers=2, chunk_size=50, progress=False)
    assert r.already_cached == 600 and r.computed == 400
    r = precompute(hs, tmp_path / "c", (i, j), client=client, chunk_size=50, progress=False)
    assert r.computed == 0 and r.already_cached == 1000
    precompute(hs, tmp_path / "ref", (i, j), workers=1, chunk_size=50, progress=False)
    assert shard_bytes(tmp_path / "c") == shard_bytes(tmp_path / "ref")


def test_dataset_shipped_once(digits, client, tmp_path, monkeypatch):
    hs = digits.subset(np.arange(200))
    calls = {"scatter": [], "submit": []}
    real_scatter, real_submit = client.scatter, client.submit

    def scatter(data, **kw):
        calls["scatter"].append(kw)
        return real_scatter(data, **kw)

    def submit(fn, *args, **kw):
        calls["submit"].append(args)
        return real_submit(fn, *args, **kw)

    monkeypatch.setattr(client, "scatter", scatter)
    monkeypatch.setattr(client, "submit", submit)
    ex = DaskExecutor(client)
    ex.start(hs.weights, hs.ground_cost(2), 2, 10_000_000)
    try:
        assert len(calls["scatter"]) == 1 and calls["scatter"][0]["broadcast"] is True
        holders = client.who_has(ex._data)
        assert all(len(v) == 2 for v in holders.values())  # every worker holds the data
        futs = [ex.submit(np.arange(5), np.arange(5) + 1) for _ in range(4)]
        for f in futs:
            assert ex.result(ex.wait_any([f])[0]).shape == (5,)
        for args in calls["submit"]:  # tasks carry references and their chunk only, never the data
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            assert sum(a.nbytes for a in arrays) <= 2 * 5 * 8
    finally:
        ex.close()


def test_solver_error_raised_not_cached(digits, client, tmp_path):
    hs = digits.subset(np.arange(60))
    with pytest.raises(SolverError, match=r"did not reach optimality.*raise num_iter_max"):
        precompute(hs, tmp_path / "c", pairs=20, client=client, num_iter_max=2, progress=False)
    assert DistanceCache.open(tmp_path / "c").read().i.size == 0
    assert not list((tmp_path / "c" / "shards").glob(".tmp-*"))


def _kill_during(client, out, *, all_workers=False, delay=0.0, info=None):
    """Kill (SIGKILL) the busiest worker process, or all of them, once the run has written a shard."""
    info = info if info is not None else {}

    def run():
        deadline = time.time() + 120
        while time.time() < deadline:
            d = out / "shards"
            if d.exists() and any(f.suffix == ".npz" for f in d.iterdir()):
                break
            time.sleep(0.01)
        time.sleep(delay)
        pids = client.run(os.getpid)
        busy = client.processing()
        info["busy_at_kill"] = {a: len(busy.get(a, ())) for a in pids}
        targets = list(pids) if all_workers else [max(pids, key=lambda a: len(busy.get(a, ())))]
        for a in targets:
            os.kill(pids[a], signal.SIGKILL)
        info["killed"] = len(targets)
        info["mid_task"] = all(info["busy_at_kill"][a] > 0 for a in targets)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, info


def _kill_trial(digits, client, tmp_path, name, *, all_workers=False, delay=0.0, seed=3, wait_workers=True):
    hs = digits.subset(np.arange(400))
    out = tmp_path / name
    th, info = _kill_during(client, out, all_workers=all_workers, delay=delay)
    r = precompute(hs, out, pairs=4000, client=client, chunk_size=250, seed=seed, progress=False)
    th.join(timeout=60)
    if wait_workers:
        client.wait_for_workers(2, timeout=300)  # the nanny restarts killed workers (next tests need both)
    ref = tmp_path / (name + "-ref")
    precompute(hs, ref, pairs=4000, workers=1, chunk_size=250, seed=seed, progress=False)
    ok = (r.computed == 4000 and same(content(out), content(ref)) and verify(out)["ok"]
          and not list((out / "shards").glob(".tmp-*")))
    return ok, info


def test_worker_killed_mid_run_completes_identically(digits, client, tmp_path):
    ok, info = _kill_trial(digits, client, tmp_path, "one")
    assert info.get("killed") == 1 and info["mid_task"], info  # it really died while computing
    record("Dask worker process killed mid-run (SIGKILL)", 1, int(ok))
    assert ok


@pytest.mark.slow
def test_all_workers_killed_data_rescattered(digits, client, tmp_path):
    ok, info = _kill_trial(digits, client, tmp_path, "all", all_workers=True, seed=4)
    assert info.get("killed") == 2, info
    record("every Dask worker killed at once, scattered data lost (slow)", 1, int(ok))
    assert ok


@pytest.mark.slow
def test_worker_kills_many_trials(digits, tmp_path):
    """8 trials, each on a fresh cluster: one worker (or, every 4th trial, all of them) killed at a random moment."""
    rng = np.random.default_rng(11)
    trials, survived, mid = 8, 0, 0
    for t in range(trials):
        with LocalCluster(**CLUSTER) as cl, Client(cl, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=300)
            c.run(lambda: __import__("ot"))
            ok, info = _kill_trial(digits, c, tmp_path, f"t{t}", all_workers=(t % 4 == 3),
                                   delay=float(rng.uniform(0, 0.6)), seed=20 + t, wait_workers=False)
        survived += ok
        mid += bool(info.get("mid_task"))
    record("Dask worker(s) killed mid-run, random moments, fresh cluster each (slow)", trials, survived,
           killed_while_computing=mid)
    assert survived == trials


def test_no_workers_is_a_clear_error():
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cl, \
            Client(cl, set_as_default=False) as c:
        with pytest.raises(ClusterError, match=r"has no workers.*fix: start workers"):
            DaskExecutor(c, worker_timeout=0.5)


def test_executor_accepts_address_and_validates(cluster, digits, tmp_path):
    hs = digits.subset(np.arange(60))
    ex = DaskExecutor(cluster.scheduler_address)
    r = precompute(hs, tmp_path / "c", pairs=40, executor=ex, progress=False)
    assert r.executor == "dask" and r.computed == 40
    with pytest.raises(InputError, match="bad retries"):
        DaskExecutor(cluster.scheduler_address, retries=-1)
    with pytest.raises(InputError, match="bad Dask client.*expected a distributed.Client"):
        DaskExecutor(object())


def test_connect_unreachable_or_malformed():
    t = time.time()
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:1.*dask scheduler"):
        connect("127.0.0.1:1", timeout=1)
    assert time.time() - t < 30
    with pytest.raises(InputError, match="bad Dask scheduler address"):
        connect("nonsense://x")
    with pytest.raises(InputError, match="bad Dask scheduler address"):
        connect("")


def test_missing_dask_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(ClusterError, match=r"Dask is not installed.*pip install 'wassembed\[dask\]'"):
        connect("tcp://127.0.0.1:8786")


def test_cli_scheduler_end_to_end(cluster, tmp_path):
    out = tmp_path / "c"
    proc = run_cli("precompute", "digits", "--out", out, "--pairs", "300", "--chunk-size", "50", "--quiet",
                   "--json", "--scheduler", cluster.scheduler_address, check=True)
    res = json.loads(proc.stdout)
    assert res["executor"] == "dask" and res["computed"] == 300
    ref = tmp_path / "ref"
    run_cli("precompute", "digits", "--out", ref, "--pairs", "300", "--chunk-size", "50", "--quiet",
            "--workers", "1", check=True)
    assert shard_bytes(out) == shard_bytes(ref)


def test_cli_unreachable_scheduler_exit_1_nothing_written(tmp_path):
    out = tmp_path / "c"
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    proc = run_cli("precompute", "digits", "--out", out, "--pairs", "10", "--scheduler", "tcp://127.0.0.1:1", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "cannot reach the Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_benchmark_function_small(digits, client):
    from wassembed.bench import format_dask_benchmark, run_dask_benchmark

    r = run_dask_benchmark(digits.subset(np.arange(100)), n_pairs=300, workers=2, chunk_size=50, client=client)
    assert r["identical"] and r["shards"] == 6 and r["pool"]["pairs_per_s"] > 0 and r["dask"]["pairs_per_s"] > 0
    text = format_dask_benchmark(r)
    assert "caches identical: yes" in text and "Dask LocalCluster" in text
