"""Precompute on a Dask cluster: same cache as the local pool, data shipped once, dead workers survived."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from wassembed._deps import POT_EXACT_ONLY_ENV
from wassembed.errors import ClusterError, InputError, SolverError
from wassembed.exact import DaskExecutor, DistanceCache, connect, precompute, verify
from wassembed.exact._jobs import ExactJob

from .conftest import content, run_cli, same, shard_bytes, wait_until
from .test_reliability import record

distributed = pytest.importorskip("distributed")
Client, LocalCluster = distributed.Client, distributed.LocalCluster

pytestmark = [pytest.mark.timeout(600)] if importlib.util.find_spec("pytest_timeout") else []

# POT imported (without its torch backend) before a worker joins, also when its nanny restarts it after a kill.
# The preload (the text of a module) sets what a precompute pool worker sets before it imports POT
# (exact_stage_only): without it POT still imported torch through GeomLoss, seconds per worker start.
WORKER_PRELOAD = "from wassembed._deps import exact_stage_only; exact_stage_only(); import ot"
CLUSTER = dict(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
               env=POT_EXACT_ONLY_ENV, preload=[WORKER_PRELOAD])


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


@pytest.fixture()
def own_client():
    """A client of a cluster of this test's own, for tests that kill its workers: a test never leaves the shared
    cluster short of a worker (its nanny restarts a killed one in its own time) for the next test to wait on."""
    with LocalCluster(**CLUSTER) as cl, Client(cl, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=120)
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
    from wassembed.exact._precompute import plan_pairs

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
    ex.start(ExactJob.pairs(hs, 2, 10_000_000))
    try:
        assert len(calls["scatter"]) == 1 and not calls["scatter"][0].get("broadcast")
        futs = [ex.submit((np.arange(5), np.arange(5) + 1)) for _ in range(4)]
        for f in futs:
            assert ex.result(ex.wait_any([f])[0]).shape == (5,)
        assert len(calls["scatter"]) == 1  # the data stayed in the cluster: shipped once for every task
        assert all(len(v) >= 1 for v in client.who_has(ex._data).values())
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


class FakeClock:
    """``time`` for one module: ``monotonic()`` reads a clock that only ``sleep(s)`` moves (by ``s``, at once)."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def __getattr__(self, name):
        return getattr(time, name)


def test_no_workers_is_a_clear_error(capfd, monkeypatch):
    """The executor waits ``worker_timeout`` for a worker, polling, then fails; timed on the executor's own clock
    (a fake one: what the waits add up to is exact, whatever the machine's load)."""
    from wassembed.exact import _dask

    clock = FakeClock()
    monkeypatch.setattr(_dask, "time", clock)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cl, \
            Client(cl, set_as_default=False) as c:
        with pytest.raises(ClusterError, match=r"has no workers: expected a worker within 0.5 s.*received none for "
                                               r"1 s; fix: start workers"):
            DaskExecutor(c, worker_timeout=0.5, poll_s=0.125)  # binary fractions: exact sums
    assert clock.sleeps and set(clock.sleeps) == {0.125}  # polled every poll_s
    assert 0.5 < sum(clock.sleeps) <= 0.5 + 0.125  # gave up after worker_timeout: within one poll past it
    assert "no Dask worker is connected" in capfd.readouterr().err  # the wait was announced


def test_worker_versions_checked_at_start_and_by_the_tasks(digits, client, tmp_path, monkeypatch):
    from wassembed import __version__
    from wassembed.exact import _dask

    hs = digits.subset(np.arange(30))
    with monkeypatch.context() as mp:  # as if the client had another wassembed installed than the workers
        mp.setattr(_dask, "_installed_version", lambda: "0.0.0-other")
        with pytest.raises(ClusterError, match=r"a Dask worker has another wassembed installed: expected wassembed "
                                               r"0.0.0-other, received wassembed \S+; fix: install"):
            precompute(hs, tmp_path / "c", pairs=20, client=client, progress=False, lot=False)
    ex = DaskExecutor(client)
    ex.start(ExactJob.pairs(hs, 2, 10_000_000))
    try:
        ex._versions = dict(ex._versions, wassembed="0.0.0-other")  # as if the workers ran another version
        h = ex.submit((np.arange(3), np.arange(3) + 1))
        with pytest.raises(ClusterError, match=rf"Dask worker tcp://\S+ runs other versions: expected wassembed "
                                               rf"0.0.0-other, received wassembed {__version__}"):
            ex.result(ex.wait_any([h])[0])
    finally:
        ex.close()


def test_executor_accepts_address_and_validates(cluster, digits, tmp_path):
    hs = digits.subset(np.arange(60))
    ex = DaskExecutor(cluster.scheduler_address)
    r = precompute(hs, tmp_path / "c", pairs=40, executor=ex, progress=False)
    assert r.executor == "dask" and r.computed == 40
    with pytest.raises(InputError, match="bad retries"):
        DaskExecutor(cluster.scheduler_address, retries=-1)
    with pytest.raises(InputError, match="bad Dask client.*expected a distributed.Client"):
        DaskExecutor(object())


def _started_clients() -> list:
    """Dask clients alive in this process that are not closed (a half-built one is "connecting"); ``type(o)``, not
    ``isinstance``, which would read ``__class__`` through lazy proxies (torch's deprecated names warn)."""
    import gc

    return [o for o in gc.get_objects() if issubclass(type(o), Client) and o.status != "closed"]


def test_connect_unreachable_or_malformed():
    """Failed connections leave nothing behind: no client to be closed later by the garbage collector (whose
    finaliser, run in the middle of another test starting a client, once deadlocked the suite) and no
    event-loop thread."""
    import dask

    threads = set(threading.enumerate())
    # Dask itself says which timeout it applied: connect's, not the configured default (set far away here)
    with dask.config.set({"distributed.comm.timeouts.connect": "45s"}), \
            pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:1: expected a "
                                              r"scheduler answering within 1 s, received Timed out trying to connect "
                                              r"to tcp://127.0.0.1:1 after 1 s;.*dask scheduler"):
        connect("127.0.0.1:1", timeout=1)
    with pytest.raises(InputError, match="bad Dask scheduler address"):
        connect("nonsense://x")
    with pytest.raises(InputError, match="bad Dask scheduler address"):
        connect("")
    assert _started_clients() == []
    left = [th for th in set(threading.enumerate()) - threads if th.is_alive()]
    assert left == [], left


def test_missing_dask_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(ClusterError, match=r"Dask is not installed.*pip install 'wassembed\[dask\]'"):
        connect("tcp://127.0.0.1:8786")


def test_cli_scheduler_end_to_end(cluster, tmp_path):
    out = tmp_path / "c"
    proc = run_cli("precompute", "digits", "--out", out, "--pairs", "300", "--chunk-size", "50", "--quiet",
                   "--json", "--scheduler", cluster.scheduler_address, "--worker-timeout", "30", check=True)
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


def test_cli_worker_timeout_needs_a_scheduler(tmp_path):
    from click.testing import CliRunner

    from wassembed.cli import main

    base = ["precompute", "digits", "--out", str(tmp_path / "c"), "--pairs", "10"]
    r = CliRunner().invoke(main, [*base, "--worker-timeout", "5"])
    assert r.exit_code == 2 and "--worker-timeout applies to a Dask cluster: give --scheduler" in r.output
    r = CliRunner().invoke(main, [*base, "--worker-timeout", "0", "--scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2 and "--worker-timeout" in r.output
    assert not (tmp_path / "c").exists()


def test_benchmark_function_small(digits, client):
    from wassembed.bench import format_dask_benchmark, run_dask_benchmark

    r = run_dask_benchmark(digits.subset(np.arange(100)), n_pairs=300, workers=2, chunk_size=50, client=client)
    assert r["identical"] and r["shards"] == 6 and r["pool"]["pairs_per_s"] > 0 and r["dask"]["pairs_per_s"] > 0
    text = format_dask_benchmark(r)
    assert "caches identical: yes" in text and "Dask LocalCluster" in text


# -- workers killed (SIGKILL) at chosen moments of a run ---------------------------------------------
# A trial runs one plan (400 digits, 4000 pairs, 16 chunks of 250) on a cluster, kills one worker process or
# all of them at one moment, lets the run finish (the nanny of a LocalCluster restarts a killed worker; the
# slow sweep starts replacement worker processes itself), and compares the cache with the local pool's:
# same shard files byte for byte, same (i, j, value) table, every shard verified, no temporary file left.
PLAN = dict(pairs=4000, chunk_size=250, seed=3, progress=False)  # then one LOT solve per image (13 chunks)
CHUNKS = 16


def lot_content(path) -> tuple:
    """``(index, embedding, split, reference)`` of the cache's LOT targets."""
    from wassembed.exact._teacher import read_lot_targets

    t = read_lot_targets(DistanceCache.open(path))
    return t.index, t.embedding, t.split, t.reference


@pytest.fixture(scope="module")
def kill_ref(digits, tmp_path_factory):
    """The local pool's cache of the kill trials' plan (built once)."""
    out = tmp_path_factory.mktemp("kill") / "pool"
    precompute(digits.subset(np.arange(400)), out, workers=2, **PLAN)
    return out


def _kill(client, pids, victims, handle=None) -> list:
    """SIGKILL ``victims`` ("one": the worker holding ``handle``'s result, else the busiest; "all") of ``pids``."""
    targets = list(pids)
    if victims == "one":
        holders = [a for a in (client.who_has([handle]).get(handle.key, ()) if handle is not None else ()) if a in pids]
        busy = client.processing()
        targets = holders[:1] or [max(pids, key=lambda a: len(busy.get(a, ())))]
    for a in targets:
        try:
            os.kill(pids[a], signal.SIGKILL)
        except ProcessLookupError:  # already gone
            pass
    return targets


def _install_kill(ex, client, pids, when, victims, info, monkeypatch, on_kill):
    """Arm one kill at the moment ``when`` of the next run on ``ex``, each an event of the run, never a delay:
    ("start", 0): right before the executor's start (the install check, then the data shipped), -1: right before
    the LOT targets' job starts; ("fetch", 1): while the start's install-check task runs (right before its result
    is fetched); ("scatter", 1): right before the data is shipped; ("submit", k): right after the k-th chunk was
    submitted (its worker busy with it: a kill mid-task), above CHUNKS: a LOT chunk; ("result", k): right before
    the k-th result is fetched, -1 = the last pair chunk's, above CHUNKS: a LOT chunk's; ("write", k): right
    before the k-th shard is written, -1 = the last."""
    kind, at = when
    nth, seen = (CHUNKS if at == -1 else at), []

    def fire(handle=None):
        if "killed" not in info:
            info["killed"] = len(_kill(client, pids, victims, handle))
            on_kill(info["killed"])

    def counted(real, before: bool):
        def call(*args):
            seen.append(args)
            if before and len(seen) == nth:
                fire(args[0] if kind == "result" else None)
            out = real(*args)
            if not before and len(seen) == nth:
                fire()
            return out
        return call

    def start(*args):
        seen.append(args)
        if at == 0 and len(seen) == 1 or at == -1 and len(seen) == 2:
            fire()
        return real_start(*args)

    if kind == "start":
        real_start = ex.start
        ex.start = start
    elif kind in ("fetch", "scatter", "result"):
        name = {"fetch": "_fetch", "scatter": "_scatter", "result": "result"}[kind]
        setattr(ex, name, counted(getattr(ex, name), before=True))
    elif kind == "submit":
        ex.submit = counted(ex.submit, before=False)
    else:
        from wassembed.exact import _precompute

        monkeypatch.setattr(_precompute, "_write", counted(_precompute._write, before=True))


def _kill_trial(client, hs, out, ref, when, victims, monkeypatch, on_kill=lambda n: None):
    pids = client.run(os.getpid, on_error="ignore")  # before the run: no call to the workers while they die
    info = {"when": f"{when[0]} {when[1]:g}", "victims": victims}
    ex = DaskExecutor(client, poll_s=0.25)
    with monkeypatch.context() as mp:
        _install_kill(ex, client, pids, when, victims, info, mp, on_kill)
        t0 = time.monotonic()
        r = precompute(hs, out, executor=ex, **PLAN)
        info["seconds"] = round(time.monotonic() - t0, 2)  # reported, never asserted
    info["during_run"] = "killed" in info  # every kill is an event of the run: fired inside it
    info["ok"] = bool(r.computed == 4000 and shard_bytes(out) == shard_bytes(ref) and same(content(out), content(ref))
                      and verify(out)["ok"] and not list((out / "shards").glob(".tmp-*"))
                      and r.lot_computed == 400 and same(lot_content(out), lot_content(ref)))
    return info


def test_worker_killed_during_startup_completes_identically(digits, own_client, kill_ref, tmp_path, monkeypatch):
    """One of two workers killed right before the executor starts (ships the data): the other finishes."""
    info = _kill_trial(own_client, digits.subset(np.arange(400)), tmp_path / "c", kill_ref, ("start", 0), "one",
                       monkeypatch)
    record("Dask worker process killed at start-up (SIGKILL)", 1, int(info["ok"]), run_seconds=info["seconds"])
    assert info.get("killed") == 1 and info["during_run"] and info["ok"], info


def test_worker_holding_the_last_result_killed_completes_identically(digits, own_client, kill_ref, tmp_path,
                                                                     monkeypatch):
    """The end of a run: the worker holding the last chunk's values dies before the client fetched them (the
    other one computes that chunk again)."""
    info = _kill_trial(own_client, digits.subset(np.arange(400)), tmp_path / "c", kill_ref, ("result", -1), "one",
                       monkeypatch)
    record("Dask worker process holding the last result killed (SIGKILL)", 1, int(info["ok"]),
           run_seconds=info["seconds"])
    assert info.get("killed") == 1 and info["during_run"] and info["ok"], info


def test_worker_killed_during_the_lot_targets_completes_identically(digits, own_client, kill_ref, tmp_path,
                                                                   monkeypatch):
    """The second phase: a worker dies while the cluster solves the per-image LOT targets."""
    info = _kill_trial(own_client, digits.subset(np.arange(400)), tmp_path / "c", kill_ref, ("result", CHUNKS + 5),
                       "one", monkeypatch)
    record("Dask worker process killed during the LOT targets (SIGKILL)", 1, int(info["ok"]),
           run_seconds=info["seconds"])
    assert info.get("killed") == 1 and info["during_run"] and info["ok"], info


def test_lot_targets_run_on_the_cluster_and_equal_the_local_pools(digits, client, tmp_path, monkeypatch):
    """precompute(client=...) solves the LOT targets on the cluster too (no local pool), with the same result."""
    from wassembed.exact._executors import LocalPoolExecutor

    hs = digits.subset(np.arange(300))
    precompute(hs, tmp_path / "pool", pairs=600, workers=2, seed=4, progress=False)
    with monkeypatch.context() as mp:
        mp.setattr(LocalPoolExecutor, "start", lambda *a: pytest.fail("a local pool was started"))
        r = precompute(hs, tmp_path / "dask", pairs=600, client=client, seed=4, progress=False)
    assert r.executor == "dask" and r.lot_computed == r.lot_requested > 200
    assert same(lot_content(tmp_path / "dask"), lot_content(tmp_path / "pool"))
    assert same(content(tmp_path / "dask"), content(tmp_path / "pool"))


def test_no_worker_left_waits_then_fails_clearly_and_resumes(digits, tmp_path, monkeypatch, capfd):
    from wassembed.exact import _precompute

    hs, out = digits.subset(np.arange(200)), tmp_path / "c"
    plan = dict(pairs=2000, chunk_size=50, seed=5, progress=False, lot=False)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1, dashboard_address=":0") as cl, \
            Client(cl, set_as_default=False) as c:
        c.wait_for_workers(1, timeout=60)
        real_write, writes, worker = _precompute._write, [], next(iter(cl.workers.values()))

        def write(*a):  # after the first shard, the only worker goes away for good
            real_write(*a)
            writes.append(1)
            if len(writes) == 1:
                cl.scale(0)
                cl.sync(worker.close)

        monkeypatch.setattr(_precompute, "_write", write)
        with pytest.raises(ClusterError, match=r"the Dask cluster has no workers: expected a worker within 1 s "
                                               r"\(worker_timeout\), received none for [1-9]\d* s; fix: start "
                                               r"workers with `dask worker \S+`, then rerun the same command: "
                                               r"finished shards are kept"):  # waited at least worker_timeout
            precompute(hs, out, executor=DaskExecutor(c, worker_timeout=1, poll_s=0.1), **plan)
        assert "waiting up to 1 s" in capfd.readouterr().err
        monkeypatch.undo()
        rep = verify(out)
        assert not rep["corrupt"] and not rep["damaged"] and 0 < rep["missing"] < 2000  # partial and sound
        cl.scale(1)
        c.wait_for_workers(1, timeout=60)
        r = precompute(hs, out, client=c, **plan)
    assert r.already_cached == 2000 - rep["missing"] and r.computed == rep["missing"]
    precompute(hs, tmp_path / "pool", workers=2, **plan)
    ok = shard_bytes(out) == shard_bytes(tmp_path / "pool") and verify(out)["ok"]
    record("no Dask worker left: ClusterError after worker_timeout, then resumed", 1, int(ok),
           pairs_kept=2000 - rep["missing"])
    assert ok


class WorkerPool:
    """An in-process scheduler on loopback and ``dask worker --no-nanny`` processes that this test starts, kills
    and replaces (POT is imported before a worker joins: ``--preload ot``)."""

    def __init__(self, n: int):
        self.env = dict(os.environ, **POT_EXACT_ONLY_ENV)
        self.cluster = LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                    dashboard_address=":0")
        self.client, self.procs = None, []
        try:  # a failed start closes what it started: nothing is left to the garbage collector
            self.client = Client(self.cluster, set_as_default=False)
            self.ensure(n)
        except BaseException:
            self.close()
            raise

    def spawn(self, n: int) -> None:
        cmd = [sys.executable, "-m", "distributed.cli.dask_worker", self.cluster.scheduler_address, "--no-nanny",
               "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0", "--preload", "ot"]
        self.procs += [subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for _ in range(n)]

    def ensure(self, n: int) -> None:
        """``n`` live workers, joined (replacements are started for the dead)."""
        alive = [p for p in self.procs if p.poll() is None]
        self.spawn(n - len(alive))
        wait_until(lambda: len(self.client.nthreads()) == n, f"{n} workers joined and the dead ones gone")

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        if self.client is not None:
            self.client.close()
        self.cluster.close()


#: moments of the slow sweep: (phase, where) — all of start-up, compute and end — each with one or all workers
SWEEP = [(("start", 0), "one"), (("start", 0), "all"), (("fetch", 1), "one"), (("scatter", 1), "all"),
         (("result", 1), "one"), (("result", 1), "all"), (("result", 8), "one"), (("write", 8), "all"),
         (("result", -1), "one"), (("result", -1), "all"), (("write", -1), "one"), (("write", -1), "all"),
         # the second phase, the per-image LOT targets: at their job's start, on their first and last chunks
         (("start", -1), "one"), (("start", -1), "all"), (("result", CHUNKS + 1), "all"),
         (("result", CHUNKS + 13), "one")]
#: kills mid-task, spread over a run: right after these chunks were submitted (16 pair chunks, then 13 LOT chunks)
MID_TASK = [1, 2, 5, 8, 11, 14, CHUNKS + 3, CHUNKS + 9]


def long_timeout(fn):
    """Allow a slow test 30 minutes (replacement workers start slowly on a loaded machine)."""
    return pytest.mark.timeout(1800)(fn) if importlib.util.find_spec("pytest_timeout") else fn


@pytest.mark.slow
@long_timeout
def test_workers_killed_at_many_moments_sweep(digits, kill_ref, tmp_path, monkeypatch):
    """24 trials on one cluster: one worker or all of them killed at each phase of a run (the pairs, then the LOT
    targets) and in the middle of tasks spread over a whole run; replacement workers are started at once (the run
    waits for them when none is left)."""
    hs = digits.subset(np.arange(400))
    pool = WorkerPool(2)
    try:
        t = time.monotonic()
        precompute(hs, tmp_path / "undisturbed", client=pool.client, **PLAN)
        duration = time.monotonic() - t  # reported, never asserted
        assert shard_bytes(tmp_path / "undisturbed") == shard_bytes(kill_ref)
        moments = SWEEP + [(("submit", k), "all" if n % 3 == 2 else "one") for n, k in enumerate(MID_TASK)]
        results = []
        for k, (when, victims) in enumerate(moments):
            # mid-task kills: a task is failed (KilledWorker) at the first death of its worker, so that the client
            # resubmits it; otherwise Dask's default (3 deaths allowed) and the scheduler reschedules it
            pool.cluster.scheduler.allowed_failures = 0 if when[0] == "submit" else 3
            info = _kill_trial(pool.client, hs, tmp_path / f"t{k}", kill_ref, when, victims, monkeypatch,
                               on_kill=pool.spawn)
            print(f"trial {k}: {info}")
            results.append(info)
            pool.ensure(2)
    finally:
        pool.close()
    bad = [r for r in results if not r["ok"]]
    record("Dask worker(s) killed at every phase and at moments spread over a run (slow)", len(results),
           len(results) - len(bad), killed_during_run=sum(r["during_run"] for r in results),
           all_workers_killed=sum(r["victims"] == "all" for r in results), run_seconds=round(duration, 2))
    assert not bad, bad
    assert all(r.get("killed") for r in results)


@pytest.mark.slow
@long_timeout
def test_cli_waits_for_workers_and_survives_losing_them_all(digits, tmp_path):
    """The command line: no worker at all fails after --worker-timeout with the message; every worker killed as
    the run starts (its cache just created), replacements started: exit 0 and the local pool's cache."""
    pool = WorkerPool(0)
    try:
        addr = pool.cluster.scheduler_address
        args = ["precompute", "digits", "--images", "0:400", "--pairs", "4000", "--chunk-size", "250", "--seed", "3",
                "--no-lot", "--quiet", "--scheduler", addr]
        proc = run_cli(*args, "--out", tmp_path / "none", "--worker-timeout", "2")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "waiting up to 2 s" in proc.stderr and "the Dask cluster has no workers" in proc.stderr
        pool.ensure(2)
        out = tmp_path / "c"
        cli = subprocess.Popen([sys.executable, "-m", "wassembed", *args, "--out", str(out), "--worker-timeout", "300"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: (out / "manifest.json").exists(), "the run's cache created", proc=cli)
        for p in pool.procs:
            p.send_signal(signal.SIGKILL)
        pool.spawn(2)
        _, err = cli.communicate(timeout=600)
    finally:
        pool.close()
    assert cli.returncode == 0, err
    assert "no Dask worker is connected" in err and "resuming" in err
    precompute("digits", tmp_path / "pool", images="0:400", workers=2, **PLAN)
    ok = shard_bytes(out) == shard_bytes(tmp_path / "pool") and verify(out)["ok"]
    record("CLI: no worker (exit 1 after --worker-timeout); every worker killed at start-up (slow)", 1, int(ok))
    assert ok
