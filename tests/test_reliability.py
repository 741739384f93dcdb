"""Fault suite: kills, concurrent writers, failed writes, flipped bytes (and, in test_dask, dead workers).

Each test reports what it tried with :func:`record`: a line ``RELIABILITY {json}`` on stdout (see it with
``pytest -s`` or ``-rP``) and, when the environment variable ``WASSEMBED_RELIABILITY_LOG`` names a file, the
same JSON appended to it. ``python -m tests.test_reliability LOG`` prints the table of docs/reliability.md
from such a file. Complements tests/test_cache.py (3 kills, 2 writers, one ENOSPC, one flipped byte).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wassembed.errors import CacheError, CorruptShardError, WassembedError
from wassembed.exact import DistanceCache, precompute, verify
from wassembed.exact._precompute import plan_pairs

from .conftest import PROGRESS_LINES, content, progress_count, read_until, run_cli, same, shard_bytes

LOG_ENV = "WASSEMBED_RELIABILITY_LOG"


#: never a hang: every test here is stopped (and fails) after this long, when pytest-timeout is installed
pytestmark = [pytest.mark.timeout(900)] if importlib.util.find_spec("pytest_timeout") else []

# -- reporting --------------------------------------------------------------------------------------
def record(fault: str, trials: int, survived: int, **detail) -> dict:
    """Report one fault experiment: ``trials`` injected, ``survived`` with nothing lost or corrupted."""
    row = {"fault": fault, "trials": int(trials), "survived": int(survived), **detail}
    line = json.dumps(row, default=str)
    print(f"RELIABILITY {line}")
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line + "\n")
    return row


def table(rows: list[dict]) -> str:
    """Markdown table of recorded experiments: the last record of each fault wins; records sharing a
    ``group`` are summed into one row (their faults listed under details)."""
    last: dict = {}
    for r in rows:
        last[r["fault"]] = r
    merged: dict = {}
    for r in last.values():
        key = r.get("group") or r["fault"]
        m = merged.setdefault(key, {"fault": key, "trials": 0, "survived": 0, "details": []})
        m["trials"] += r["trials"]
        m["survived"] += r["survived"]
        extra = ", ".join(f"{k}={v}" for k, v in r.items()
                          if k not in ("fault", "trials", "survived", "group", "failures") and v not in ([], ""))
        if r.get("group"):
            failed = r["trials"] - r["survived"]
            extra = r["fault"] + (f" ({failed} FAILED)" if failed else "") + (f": {extra}" if extra else "")
        if extra:
            m["details"].append(extra)
    out = ["| fault | trials | survived, nothing lost | details |", "|---|---:|---:|---|"]
    for m in merged.values():
        out.append(f"| {m['fault']} | {m['trials']} | {m['survived']} | {'; '.join(m['details'])} |")
    return "\n".join(out)


# -- helpers ----------------------------------------------------------------------------------------
def intact(path) -> bool:
    """Every shard verifies and no temporary file is left under a final name."""
    rep = verify(path)
    return not rep["corrupt"] and not list((Path(path) / "shards").glob(".tmp-*"))


def _cmd(out, *extra, pairs=3000, workers=2, chunk=40, seed=7):
    return [sys.executable, "-m", "wassembed", "precompute", "digits", "--out", str(out),
            *(["--pairs", str(pairs)] if pairs is not None else []), "--workers", str(workers),
            "--chunk-size", str(chunk), "--quiet", "--seed", str(seed), *map(str, extra)]


def _start(cmd, *, follow: bool = False):
    """Start ``cmd`` in a process group of its own; ``follow``: with one progress line per shard or epoch on
    its stderr (``--quiet`` dropped), for :func:`_kill_when`."""
    if follow:
        cmd = [c for c in cmd if c != "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **PROGRESS_LINES} if follow else None)


def _kill_when(proc, found, what: str) -> int:
    """SIGKILL the run (its whole process group: main process and pool workers) as soon as it reports the event
    ``found(line)`` on stderr (:func:`read_until`); its exit status (``-SIGKILL``: killed while it ran)."""
    read_until(proc.stderr, found, what)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return proc.returncode


# -- SIGKILL at random moments ----------------------------------------------------------------------
def _after_kill(out: Path) -> dict:
    """State a kill left: corrupt shards (never allowed) and stray temporary files (allowed: never under a
    final name, removed when their chunk is claimed again)."""
    if not (out / "manifest.json").exists():
        return {"shards": 0, "corrupt": [], "temp_files": 0}
    rep = verify(out)
    return {"shards": rep["shards_ok"] + len(rep["corrupt"]), "corrupt": rep["corrupt"],
            "temp_files": rep["temp_files"]}


def _n_shards(out: Path) -> int:
    return len(list((out / "shards").glob("*.npz"))) if (out / "shards").is_dir() else 0


def _kill_after_shards(out: Path, k: int) -> int:
    """Run precompute on ``out`` and SIGKILL it right after it reported its ``k``-th new shard (40 pairs each);
    its exit status."""
    proc = _start(_cmd(out), follow=True)
    return _kill_when(proc, lambda line: (progress_count(line) or 0) >= 40 * k, f"its shard number {k}")


@pytest.mark.slow
def test_sigkill_at_many_random_moments_then_resume(tmp_path):
    """12 trials; in each a fresh run is killed, its resume is killed too, then a final resume completes.

    24 kills in all; each trial's final cache must equal an uninterrupted run's, shard for shard, byte for byte.
    Each run is killed right after it reported its ``k``-th new shard, ``k`` drawn uniformly (seeded) among the
    first 80 % of the shards it still has to write (with 2 workers, up to 4 chunks are in flight: the last ones
    could be written before the kill arrives), so that every kill lands inside the computation whatever the
    machine's load: the run was killed (exit status -SIGKILL), the cache holds at least the shards it reported
    and not all of them. The final resume computes exactly the missing pairs.
    """
    ref = tmp_path / "ref"
    subprocess.run(_cmd(ref), check=True, capture_output=True, timeout=600)
    want = shard_bytes(ref)
    rng = np.random.default_rng(2024)
    trials, survived, kills, mid, partial, corrupt, temps = 12, 0, 0, 0, 0, 0, 0
    failures = []
    for t in range(trials):
        out = tmp_path / f"c{t}"
        ok = True
        for _ in range(2):  # the first run, then its resume, each killed at a random moment of its computation
            have = _n_shards(out)
            k = int(rng.integers(1, int(0.8 * (len(want) - have)) + 1))  # in the first 80 % of what is left
            status = _kill_after_shards(out, k)
            kills += 1
            mid += status == -signal.SIGKILL
            state = _after_kill(out)
            partial += have + k <= state["shards"] < len(want)
            temps += state["temp_files"] > 0
            corrupt += bool(state["corrupt"])
            if state["corrupt"]:
                ok = False
                failures.append(f"trial {t}: corrupt shards after a kill: {state['corrupt']}")
        kept = _n_shards(out) * 40
        done = subprocess.run([*_cmd(out), "--json"], capture_output=True, text=True, timeout=600)
        counts = json.loads(done.stdout) if done.returncode == 0 else {}
        final = {"exit": done.returncode, "same_bytes": shard_bytes(out) == want, "verify_ok": verify(out)["ok"],
                 "temp_files_left": len(list((out / "shards").glob(".tmp-*"))),
                 "resumed": (counts.get("already_cached"), counts.get("computed"))}
        if final != {"exit": 0, "same_bytes": True, "verify_ok": True, "temp_files_left": 0,
                     "resumed": (kept, 40 * len(want) - kept)}:
            ok = False
            failures.append(f"trial {t}: after the final resume {final} {done.stderr[-300:]}")
        survived += ok
    record("precompute SIGKILL at random moments, then resume (slow)", trials, survived, kills=kills,
           kills_mid_run=mid, kills_leaving_partial_cache=partial, kills_leaving_temp_files=temps,
           kills_leaving_corrupt_shard=corrupt, failures=failures)
    assert survived == trials, failures
    assert mid == partial == kills  # every kill landed inside the computation and kept what it had reported


# -- concurrent writers -----------------------------------------------------------------------------
#: ``python -m wassembed``, gated: imports the command line and the exact stage, says "ready" on stderr, waits for
#: a line on stdin, then runs the command of its arguments
GATED = ("import sys; import ot, wassembed.exact; from wassembed.cli import main; "
         "print('ready', file=sys.stderr, flush=True); sys.stdin.readline(); sys.argv[0] = 'wassembed'; main()")


def _writers_trial(tmp_path, name, n_writers: int, rng, want, plan_files) -> tuple[bool, int]:
    """``n_writers`` precompute commands on one cache (overlapping plans, 1 or 2 workers): all are started and
    their imports done (each says "ready") before all are let go at once, in a random order (seeded), so that
    they overlap however slow the machine (imports take seconds, a plan under one)."""
    out = tmp_path / name
    procs = []
    for w in range(n_writers):
        cmd = _cmd(out, "--pairs-file", plan_files[w % len(plan_files)], "--json", pairs=None, workers=1 + (w % 2))
        procs.append(subprocess.Popen([sys.executable, "-c", GATED, *cmd[3:]], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for w, p in enumerate(procs):
        read_until(p.stderr, lambda line: line == "ready", f"writer {w} is ready")
    for w in rng.permutation(n_writers):
        procs[w].stdin.write("go\n")
        procs[w].stdin.flush()
    outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    elsewhere = sum(json.loads(o[0]).get("done_elsewhere", 0) for o, c in zip(outs, codes) if c == 0)
    c = DistanceCache.open(out)
    stored = sum(len(t) for t in c.read_shards())
    ok = (codes == [0] * n_writers and stored == len(c.read()) == 2400 and shard_bytes(out) == want
          and verify(out)["ok"])
    return ok, elsewhere


@pytest.fixture(scope="module")
def writer_plans(tmp_path_factory, digits):
    """A plan of 2,400 pairs and overlapping parts of it (chunk-aligned), plus the single-writer reference."""
    d = tmp_path_factory.mktemp("plans")
    i, j = plan_pairs(digits, 2400, seed=7)
    files = []
    for name, sl in (("all", slice(None)), ("head", slice(0, 1600)), ("tail", slice(800, None))):
        f = d / f"{name}.npy"
        np.save(f, np.stack([i[sl], j[sl]], axis=1))
        files.append(f)
    ref = d / "ref"
    # pair shards only: the writers' per-image LOT targets (the CLI's default) live outside shards/, and the
    # reference's shards are the same bytes without them (1,651 LOT solves saved)
    precompute(digits, ref, (i, j), workers=1, chunk_size=40, progress=False, lot=False)
    return files, shard_bytes(ref)


def test_three_concurrent_writers_overlapping_plans(tmp_path, writer_plans):
    files, want = writer_plans
    ok, elsewhere = _writers_trial(tmp_path, "w3", 3, np.random.default_rng(0), want, files)
    record("3 concurrent writers, overlapping plans", 1, int(ok),
           pairs_found_done_by_another=elsewhere)
    assert ok


@pytest.mark.slow
@pytest.mark.parametrize("n_writers", [2, 3])
def test_concurrent_writers_many_trials(tmp_path, writer_plans, n_writers):
    files, want = writer_plans
    rng = np.random.default_rng(n_writers)
    trials, survived, elsewhere = 5, 0, 0
    for t in range(trials):
        ok, e = _writers_trial(tmp_path, f"w{t}", n_writers, rng, want, files)
        survived += ok
        elsewhere += e
    record(f"{n_writers} concurrent writers on one cache (slow)", trials, survived,
           pairs_found_done_by_another=elsewhere)
    assert survived == trials


# -- failed writes ----------------------------------------------------------------------------------
STAGES = ("write", "fsync", "rename")
ERRNOS = {"ENOSPC": errno.ENOSPC, "EACCES": errno.EACCES, "EDQUOT": errno.EDQUOT}


def _fail_nth_shard(monkeypatch, stage: str, code: int, nth: int = 3):
    """Make the ``nth`` shard write fail with ``code`` while writing, at fsync, or at the final rename."""
    import wassembed.exact._cache as cache_mod

    state = {"shard": 0, "armed": False}
    real_write, real_fsync, real_replace = cache_mod.atomic_write, os.fsync, os.replace
    err = OSError(code, os.strerror(code))

    def atomic_write(path, fn, **kw):
        if "shards" in Path(path).parts:
            state["shard"] += 1
            if state["shard"] == nth:
                state["armed"] = True
                try:
                    if stage == "write":
                        def half(fh):
                            fh.write(b"PK\x03\x04 partial")
                            raise OSError(code, os.strerror(code))
                        return real_write(path, half, **kw)
                    return real_write(path, fn, **kw)
                finally:
                    state["armed"] = False
        return real_write(path, fn, **kw)

    def fsync(fd):
        if state["armed"] and stage == "fsync":
            raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    def replace(src, dst, *a, **kw):
        if state["armed"] and stage == "rename":
            raise OSError(code, os.strerror(code))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(cache_mod, "atomic_write", atomic_write)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return err


@pytest.fixture(scope="module")
def write_ref(tmp_path_factory, small_digits):
    ref = tmp_path_factory.mktemp("wref") / "ref"
    precompute(small_digits, ref, pairs=300, workers=1, progress=False, chunk_size=50, seed=3)
    return shard_bytes(ref)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("code", list(ERRNOS))
def test_failed_write_clear_error_no_corruption_resume(small_digits, tmp_path, monkeypatch, write_ref, stage, code):
    out = tmp_path / "c"
    _fail_nth_shard(monkeypatch, stage, ERRNOS[code])
    with pytest.raises(CacheError, match=rf"cannot write a shard into .*{os.strerror(ERRNOS[code])} "
                                         rf"\(errno {ERRNOS[code]}\).*rerun the same command"):
        precompute(small_digits, out, pairs=300, workers=1, progress=False, chunk_size=50, seed=3)
    monkeypatch.undo()
    left = shard_bytes(out)
    ok = (len(left) == 2 and intact(out)  # the two shards before the failure, whole; nothing half-written
          and all(left[k] == write_ref[k] for k in left))
    r = precompute(small_digits, out, pairs=300, workers=1, progress=False, chunk_size=50, seed=3)
    ok &= r.computed == 200 and shard_bytes(out) == write_ref
    record(f"{code} at {stage}", 1, int(ok), group="shard write fails (injected ENOSPC / EACCES / EDQUOT at "
                                                 "write, fsync or rename), then resume")
    assert ok


# Real kernel errors (not monkeypatched): a full tmpfs (ENOSPC), an immutable shards directory (EPERM),
# a read-only remount (EROFS). Needs root with mount rights, as in the project's CI container; skipped otherwise.
@pytest.fixture()
def tmpfs(tmp_path):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["chattr", "-R", "-i", str(mnt)], capture_output=True)
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _remount(mnt, opts):
    subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], check=True, capture_output=True)


def test_real_enospc_eperm_erofs(small_digits, tmp_path, tmpfs):
    """A disk that fills, a directory that refuses writes, a filesystem turned read-only: clear errors, resumes."""
    i, j = plan_pairs(small_digits, 1500, seed=0)
    ref = tmp_path / "ref"
    precompute(small_digits, ref, (i, j), workers=1, chunk_size=50, progress=False)
    want = shard_bytes(ref)
    out = tmpfs / "c"
    results = {}

    def attempt(name, pattern, plan):
        try:
            precompute(small_digits, out, plan, workers=1, chunk_size=50, progress=False)
        except WassembedError as exc:
            results[name] = bool(__import__("re").search(pattern, str(exc))) and intact_ro(out)
            return str(exc)
        results[name] = False
        return None

    def intact_ro(path):  # verify without writing (the filesystem may be read-only)
        c = DistanceCache.open(path)
        try:
            c.read()
        except CorruptShardError:
            return False
        return not list((Path(path) / "shards").glob(".tmp-*"))

    msg = attempt("ENOSPC", r"No space left on device \(errno 28\).*rerun the same command", (i, j))
    assert msg, "the 96 kB filesystem should have filled up"
    n_full = len(shard_bytes(out))
    _remount(tmpfs, "ro")
    attempt("EROFS", r"cannot write into the cache .*Read-only file system \(errno 30\)", (i, j))
    _remount(tmpfs, "rw,size=8m")
    subprocess.run(["chattr", "+i", str(out / "shards")], check=True)
    attempt("EPERM", r"Operation not permitted \(errno 1\)", (i, j))
    subprocess.run(["chattr", "-i", str(out / "shards")], check=True)
    r = precompute(small_digits, out, (i, j), workers=1, chunk_size=50, progress=False)  # resume
    resumed = shard_bytes(out) == want and verify(out)["ok"] and r.computed == 1500 - 50 * n_full
    how = {"ENOSPC": "a 96 kB tmpfs fills up", "EROFS": "the filesystem is remounted read-only",
           "EPERM": "chattr +i on shards/"}
    for name, ok in results.items():
        record(f"{name}: {how[name]}", 1, int(ok and resumed),
               group="real kernel write errors (tmpfs full, read-only remount, chattr +i), then resume")
    assert results == {"ENOSPC": True, "EROFS": True, "EPERM": True} and resumed, results


# -- flipped bytes ----------------------------------------------------------------------------------
def _flip(path: Path, pos: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[pos] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_flipped_byte_cli_verify_and_repair(tmp_path):
    out = tmp_path / "c"
    run_cli("precompute", "digits", "--out", out, "--pairs", "200", "--chunk-size", "50", "--workers", "1",
            "--quiet", check=True)
    before = shard_bytes(out)
    shard = sorted((out / "shards").glob("*.npz"))[2]
    _flip(shard, len(shard.read_bytes()) // 2)
    proc = run_cli("cache", "verify", out)
    assert proc.returncode == 1 and shard.name in proc.stdout + proc.stderr
    proc = run_cli("cache", "info", out)
    assert proc.returncode == 1 and f"corrupt shard {shard}" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("cache", "verify", out, "--repair", "--workers", "1", "--json")
    rep = json.loads(proc.stdout)
    assert proc.returncode == 0 and rep["corrupt"] == [shard.name] and rep["recomputed"] == 50, proc.stderr
    assert run_cli("cache", "verify", out).returncode == 0
    assert shard_bytes(out) == before
    record("flipped byte in a shard → `cache verify` exit 1, `--repair` exit 0 (CLI)", 1, 1)


def test_truncated_shard_and_stray_temp_file(small_digits, tmp_path):
    out = tmp_path / "c"
    precompute(small_digits, out, pairs=200, workers=1, progress=False, chunk_size=50)
    before = shard_bytes(out)
    shard = sorted((out / "shards").glob("*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    (out / "shards" / f".tmp-{shard.stem}-x.part").write_bytes(b"PK half")
    with pytest.raises(CorruptShardError, match=rf"corrupt shard .*{shard.name}.*verify CACHE --repair"):
        DistanceCache.open(out).read()
    rep = verify(out, repair=True, workers=1)
    assert rep["corrupt"] == [shard.name] and rep["recomputed"] == 50 and rep["temp_files_left"] == 0
    assert shard_bytes(out) == before and verify(out)["ok"]


@pytest.mark.slow
def test_flipped_bytes_many_positions(small_digits, tmp_path):
    """30 trials: one byte flipped at a random position of a random shard (headers included)."""
    out = tmp_path / "c"
    precompute(small_digits, out, pairs=400, workers=1, progress=False, chunk_size=50)
    want = content(out)
    rng = np.random.default_rng(5)
    trials, survived, detected, harmless = 30, 0, 0, 0
    for _ in range(trials):
        shards = sorted((out / "shards").glob("*.npz"))
        shard = shards[rng.integers(len(shards))]
        _flip(shard, int(rng.integers(len(shard.read_bytes()))))
        rep = verify(out)
        if rep["corrupt"]:
            detected += rep["corrupt"] == [shard.name]
            rep = verify(out, repair=True, workers=1)
            ok = rep["ok"] and rep["recomputed"] == 50
        else:  # a byte the reader never uses (zip metadata): the values read back are still exact
            harmless += 1
            ok = True
        ok &= same(content(out), want)
        survived += ok
    record("one flipped byte at a random position of a shard (slow)", trials, survived, detected_and_named=detected,
           undetected_but_values_intact=harmless)
    assert survived == trials


# -- training: SIGKILL then --resume; damaged model files ----------------------------------------------
TRAIN_EPOCHS = 24


def _train_cmd(cache, out, *extra, epochs=TRAIN_EPOCHS):
    return [sys.executable, "-m", "wassembed", "train", str(cache), "--out", str(out), "--epochs", str(epochs),
            "--threads", "1", "--batch-images", "64", "--quiet", "--seed", "3", "--patience", "0",  # every epoch runs
            *map(str, extra)]


def _ckpt_epoch(out) -> int:
    try:
        return int(json.loads((Path(out) / "checkpoints" / "state.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def _hash(f) -> str:
    import hashlib

    return hashlib.sha256(Path(f).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def train_setup(tmp_path_factory):
    """A small "blocks" cache and an uninterrupted training run on it (the reference)."""
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("train")
    cache = d / "cache"
    precompute("digits", cache, pairs=8000, sampling="blocks", block_size=32, workers=2, progress=False,
               lot=False)  # the pair epochs are what is killed and resumed: no distillation phase first
    ref = d / "ref"
    proc = subprocess.run(_train_cmd(cache, ref), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return cache, ref


def _epoch_done(line: str) -> int | None:
    """The epoch a training run reports finished (``epoch 7/24: loss ...``: 7), else None. The run prints it
    before it writes that epoch's checkpoint, so the checkpoint of the epoch before is on disk."""
    m = re.match(rf"epoch (\d+)/{TRAIN_EPOCHS}: loss ", line)
    return int(m.group(1)) if m else None


def _train_kill_trial(train_setup, out, k: int) -> tuple[bool, dict]:
    """Kill a training run right after it reported epoch ``k`` (>= 2) done; resume; compare with the reference."""
    from wassembed.learn._checkpoints import load_checkpoint

    cache, ref = train_setup
    status = _kill_when(_start(_train_cmd(cache, out), follow=True), lambda line: (_epoch_done(line) or 0) >= k,
                        f"epoch {k} done")
    info = {"reported_epoch": k, "epoch_at_kill": _ckpt_epoch(out), "killed_mid_training": status == -signal.SIGKILL}
    meta, _ = load_checkpoint(out / "checkpoints")  # the checkpoint left behind is whole (checked, sha256)
    res = subprocess.run(_train_cmd(cache, out, "--resume"), capture_output=True, text=True, timeout=900)
    epochs = [json.loads(x)["epoch"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    resumed_from = info["epoch_at_kill"]
    ok = (res.returncode == 0 and meta["epoch"] == resumed_from
          and _hash(out / "weights.safetensors") == _hash(ref / "weights.safetensors")  # same model, bit for bit
          and epochs[-(TRAIN_EPOCHS - resumed_from) or len(epochs):] == list(range(resumed_from + 1, TRAIN_EPOCHS + 1))
          if resumed_from < TRAIN_EPOCHS else res.returncode == 0)
    import wassembed

    wassembed.load(out)  # loads: nothing corrupt
    return ok, info


def test_training_sigkill_then_resume_identical(train_setup, tmp_path):
    ok, info = _train_kill_trial(train_setup, tmp_path / "m", k=10)
    # killed while it trained, with the checkpoint of epoch 9 (written before epoch 10 was reported) or 10
    assert info["killed_mid_training"] and 9 <= info["epoch_at_kill"] < TRAIN_EPOCHS, info
    record("training SIGKILL, then --resume", 1, int(ok), **info)
    assert ok, info


@pytest.mark.slow
def test_training_sigkill_many_random_moments(train_setup, tmp_path):
    """10 runs, each killed right after it reported a random epoch done (2 to 19 of 24, seeded)."""
    rng = np.random.default_rng(99)
    trials, survived, mid = 10, 0, 0
    for t in range(trials):
        k = int(rng.integers(2, int(0.8 * TRAIN_EPOCHS)))
        ok, info = _train_kill_trial(train_setup, tmp_path / f"m{t}", k=k)
        survived += ok and k - 1 <= info["epoch_at_kill"]
        mid += info["killed_mid_training"]
    record("training SIGKILL at random moments, then --resume (slow)", trials, survived, killed_mid_training=mid)
    assert survived == trials and mid == trials


def _damage(model: Path, what: str) -> str:
    w, j = model / "weights.safetensors", model / "model.json"
    if what == "weights truncated":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
        return r"weights file .* is truncated"
    if what == "weights byte flipped":
        _flip(w, w.stat().st_size // 2)
        return r"weights file .* was modified"
    if what == "weights missing":
        w.unlink()
        return r"missing weights file"
    if what == "model.json truncated":
        j.write_bytes(j.read_bytes()[: j.stat().st_size // 2])
        return r"unreadable model file"
    if what == "model.json architecture edited":
        meta = json.loads(j.read_text())
        key = sorted(k for k, v in meta["config"].items() if isinstance(v, int) and not isinstance(v, bool))[0]
        meta["config"][key] += 1
        j.write_text(json.dumps(meta))
        return r"model (config|file) .* was modified|invalid model description"
    if what == "model.json p edited":
        meta = json.loads(j.read_text())
        meta["p"] = 3 - int(meta["p"])
        j.write_text(json.dumps(meta))
        return r"model file .*modified"
    if what == "model.json grid edited":
        meta = json.loads(j.read_text())
        g = meta["support"]["grid"]
        meta["support"]["grid"] = [g[0] // 2, g[1] * 2]
        j.write_text(json.dumps(meta))
        return r"model file .*modified"
    raise AssertionError(what)


DAMAGES = ["weights truncated", "weights byte flipped", "weights missing", "model.json truncated",
           "model.json architecture edited", "model.json p edited", "model.json grid edited"]


@pytest.mark.parametrize("what", DAMAGES)
def test_damaged_model_refused(train_setup, tmp_path, what):
    import wassembed
    from wassembed.errors import ModelFileError

    _, ref = train_setup
    model = tmp_path / "model"
    shutil.copytree(ref, model)
    pattern = _damage(model, what)
    refused = False
    try:
        with pytest.raises(ModelFileError, match=pattern):
            wassembed.load(model)
        refused = True
        if what in ("weights byte flipped", "model.json truncated"):  # and the CLI: one line, exit 1
            proc = run_cli("evaluate", model, train_setup[0], "--json")
            refused = proc.returncode == 1 and "Traceback" not in proc.stderr and "Error:" in proc.stderr
            assert refused, proc.stderr
    finally:
        record(what, 1, int(refused), group="model file damaged → refused (ModelFileError; CLI exit 1)")


def test_damaged_checkpoint_refused_on_resume(train_setup, tmp_path):

    cache, ref = train_setup
    out = tmp_path / "m"
    shutil.copytree(ref, out)
    ck = next((out / "checkpoints").glob("epoch-*.safetensors"))
    _flip(ck, ck.stat().st_size // 3)
    proc = subprocess.run(_train_cmd(cache, out, "--resume", epochs=TRAIN_EPOCHS + 1), capture_output=True,
                          text=True, timeout=600)
    ok = proc.returncode == 1 and "checkpoint file" in proc.stderr and "was modified" in proc.stderr
    record("checkpoint byte flipped, then --resume → refused", 1, int(ok))
    assert ok, proc.stderr


# -- the served model under concurrency --------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::wassembed.serve.RerankWarning")  # an untrained model: brute force is expected
def test_served_model_thread_safe_8_threads():
    """8 threads calling one WassersteinEmbedding give exactly the serial results (lazy caches included)."""
    torch = pytest.importorskip("torch")
    from concurrent.futures import ThreadPoolExecutor

    from wassembed.serve import WassersteinEmbedding

    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(36, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))
    dec = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 36))
    rng = np.random.default_rng(0)
    calib = {"val_pred": rng.random(200), "val_target": rng.random(200), "train_recon": rng.random(300),
             "train_images": np.arange(300)}

    def make():
        return WassersteinEmbedding(enc, dec, config=None, p=2, grid=(6, 6), calibration=calib)

    sizes = rng.integers(4, 40, 16)
    inputs = [(rng.random((int(n), 6, 6)), rng.random((int(n), 6, 6))) for n in sizes]

    def calls(emb, t):
        X, Y = inputs[t]
        est = emb.interval(X, Y, 0.9, warn_ood=False)
        nn = emb.kneighbors(X[:3], Y, k=2, exact_rerank=True)
        return [emb.embed(X), emb.decode(emb.embed(X)), emb.cdist(X, Y), emb.pdist(X), emb.ood_score(X),
                emb.is_ood(X), *[np.asarray(a) for a in est], *[np.asarray(a) for a in nn]]

    serial_emb = make()
    serial = [calls(serial_emb, t) for t in range(len(inputs))]
    trials, survived = 3, 0
    for _ in range(trials):
        emb = make()  # fresh: lazy state (calibrator, exact solver) is first built under contention
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda t, emb=emb: calls(emb, t), list(range(len(inputs))) * 2))
        survived += all(all(np.array_equal(a, b) for a, b in zip(g, serial[t % len(inputs)]))
                        for t, g in enumerate(got))
    record("served model: 8 threads vs serial (embed, decode, distance+interval, cdist, pdist, kneighbors "
           "with exact rerank, OOD)", trials, survived, calls_per_trial=2 * len(inputs))
    assert survived == trials


if __name__ == "__main__":  # python -m tests.test_reliability LOG
    rows = [json.loads(x) for x in Path(sys.argv[1]).read_text().splitlines() if x.strip()]
    print(table(rows))
