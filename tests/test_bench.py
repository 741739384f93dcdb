import re
from pathlib import Path

import numpy as np
import pytest

import wassembed.bench
from wassembed.bench import format_exact_benchmark, run_exact_benchmark
from wassembed.errors import InputError


def test_exact_benchmark_runs_and_agrees(small_digits):
    import ot

    from wassembed.exact._pairs import random_pairs

    r = run_exact_benchmark(small_digits, 120, workers=2, repeats=1, chunk_size=40)
    assert r["pairs"] == 120 and r["workers"] == 2 and r["k"] == 64 and r["max_abs_diff"] <= 1e-9
    # the mean value is that of ot.emd2 on the benchmark's pairs (its seeded plan)
    i, j = random_pairs(np.arange(small_digits.n), 120, seed=0)
    w, M = small_digits.weights, np.array(small_digits.ground_cost(2))
    assert r["mean_value"] == pytest.approx(np.mean([ot.emd2(w[a], w[b], M) for a, b in zip(i, j)]), rel=1e-12)
    assert 0.5 < r["mean_value"] < 3.0  # digits: mean W2² between random pairs ≈ 1.5 pixel²
    # the derived figures are the ratios of the measured rates
    assert r["speedup_one_worker"] == pytest.approx(r["one_worker_pairs_per_s"] / r["naive_pairs_per_s"])
    assert r["parallel_efficiency"] == pytest.approx(r["all_workers_pairs_per_s"] / (2 * r["one_worker_pairs_per_s"]))
    table = format_exact_benchmark(r)
    assert "precompute, 2 workers" in table and "max |difference|" in table
    rows = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"^\| (naive loop[^|]*|precompute, \d workers?) \| (\d+) \| ([0-9.]+)× \|", table, flags=re.M)}
    assert len(rows) == 3, table
    naive = r["naive_pairs_per_s"]
    for label, key in (("precompute, 1 worker", "one_worker_pairs_per_s"),
                       ("precompute, 2 workers", "all_workers_pairs_per_s")):
        rate, ratio = rows[label]
        assert rate == round(r[key]) and ratio == pytest.approx(r[key] / naive, abs=0.006), (label, table)


def test_no_machine_specific_path_in_the_benchmarks():
    """Data paths come from the caller (``wassembed bench ... --data``), never from a default in bench/."""
    pattern = re.compile(r"""["'](/(work|home|Users|tmp|data|mnt)/|\.\./|~/)""")
    found = [f"{p.name}:{n}" for p in Path(wassembed.bench.__file__).parent.glob("*.py")
             for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found


@pytest.mark.parametrize("kw, match", [({"n_pairs": 0}, "bad n_pairs"), ({"workers": 1.5}, "bad workers"),
                                       ({"repeats": True}, "bad repeats")])
def test_dask_benchmark_refuses_bad_counts_before_starting_a_cluster(small_digits, kw, match):
    pytest.importorskip("distributed")
    from wassembed.bench import run_dask_benchmark

    with pytest.raises(InputError, match=match):
        run_dask_benchmark(small_digits, **kw)


def test_serve_benchmark_draws_accuracy_pairs_among_allowed_images():
    from wassembed.bench._serve import _banned, _draw

    banned = _banned(50, [], np.arange(10))
    d = _draw(50, banned, matrix_size=15, n_pairs=40, rng=np.random.default_rng(0))
    assert d.mp == 15 and not banned[d.i].any() and not banned[d.j].any()
    assert set(d.i) <= set(d.Ap) and set(d.j) <= set(d.Bp) and not set(d.Ap) & set(d.Bp)
    assert d.m == 15 and d.A.size == d.B.size == 15 and not set(d.A) & set(d.B)


def test_serve_baselines_agree_with_the_exact_solver(small_digits):
    from wassembed.bench._baselines import exact_values, grid_coords, sinkhorn_values, sliced_values
    from wassembed.data import make_ground_cost
    from wassembed.exact import ExactSolver

    w, M = small_digits.weights, make_ground_cost(grid=(8, 8), p=2)
    i, j = np.arange(0, 10), np.arange(10, 20)
    import ot

    exact, t = exact_values(w, i, j, M, None)
    assert t > 0 and np.allclose(exact, ExactSolver(M, 2).solve_pairs(w, i, j), rtol=1e-12)
    assert np.allclose(exact, [ot.emd2(w[a], w[b], M) for a, b in zip(i, j)], rtol=1e-12)  # the definition
    sk, _, _ = sinkhorn_values(w, i, j, M, 0.05, 2000)
    assert np.allclose(sk, exact, rtol=0.1)  # small reg: close to the exact cost
    sk1, _, not_converged = sinkhorn_values(w, i, j, M, 1.0, 1000)
    assert not_converged == 0 and np.all(sk1 >= exact)  # a converged plan is feasible: its cost >= the optimum
    sw, _ = sliced_values(w, i, j, grid_coords((8, 8)), 20, 0)
    # each 1-D projection is 1-Lipschitz, so SW2² <= W2² (and > 0 between distinct images)
    assert sw.shape == (10,) and np.all(sw > 0) and np.all(sw <= exact * (1 + 1e-9))
    assert grid_coords((2, 3))[4].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("command", ["exact", "serve", "dask"])
def test_bench_commands_need_data_and_name_the_way_to_give_it(command, monkeypatch):
    from click.testing import CliRunner

    from wassembed.cli import main

    monkeypatch.delenv("WASSEMBED_BENCH_DATA", raising=False)
    r = CliRunner().invoke(main, ["bench", command])
    assert r.exit_code == 2 and "--data" in r.stderr and "WASSEMBED_BENCH_DATA" in r.output + r.stderr


def _digit_pairs(digits, n, lo, hi, seed):
    rng = np.random.default_rng(seed)
    i = rng.integers(lo, hi, n)
    return i, (i + rng.integers(1, hi - lo, n) - lo) % (hi - lo) + lo


def test_sliced_features_bound_the_exact_value(digits):
    from wassembed.bench._baselines import grid_coords
    from wassembed.bench._lot_sliced import directions, sliced_features
    from wassembed.data import make_ground_cost
    from wassembed.exact import ExactSolver

    w, coords = digits.weights, grid_coords((8, 8))
    i, j = _digit_pairs(digits, 12, 0, digits.n, seed=1)
    exact = ExactSolver(make_ground_cost(grid=(8, 8), p=2), 2).solve_pairs(w, i, j)
    F = sliced_features(w, i, j, coords, directions(50, 2, seed=0))
    sw, max_sw, lsw, min_swgg = F.T
    tol = 1e-9 * exact
    # projections are 1-Lipschitz (lower bounds); every lifted 1-D plan is a coupling (upper bounds)
    assert np.all(sw > 0) and np.all(sw <= max_sw + tol) and np.all(max_sw <= exact + tol)
    assert np.all(exact <= min_swgg + tol) and np.all(min_swgg <= lsw + tol)
    # two Diracs two pixels apart: every lifted plan is the only coupling (cost 4), the 1-D costs average 4/2
    a = np.zeros((2, 64))
    a[0, 0], a[1, 2] = 1.0, 1.0
    sw, max_sw, lsw, min_swgg = sliced_features(a, [0], [1], coords, directions(2000, 2, seed=0))[0]
    assert lsw == pytest.approx(4.0) and min_swgg == pytest.approx(4.0) and sw == pytest.approx(2.0, rel=0.05)
    assert max_sw == pytest.approx(4.0, rel=1e-3)


def test_sliced_regression_recovers_exact_values_better_than_the_lower_bound(digits):
    from wassembed.bench._baselines import grid_coords
    from wassembed.bench._lot_sliced import directions, fit_regression, predict_regression, sliced_features
    from wassembed.data import make_ground_cost
    from wassembed.exact import ExactSolver

    w, coords, thetas = digits.weights, grid_coords((8, 8)), directions(50, 2, seed=0)
    solver = ExactSolver(make_ground_cost(grid=(8, 8), p=2), 2)
    fi, fj = _digit_pairs(digits, 200, 0, 600, seed=2)  # fitted on these images' pairs only
    ti, tj = _digit_pairs(digits, 80, 1000, digits.n, seed=3)
    coef = fit_regression(sliced_features(w, fi, fj, coords, thetas), solver.solve_pairs(w, fi, fj))
    F, exact = sliced_features(w, ti, tj, coords, thetas), solver.solve_pairs(w, ti, tj)
    mse = np.mean((predict_regression(F, coef) - exact) ** 2)
    assert coef.shape == (5,) and mse < 0.05 * np.mean((F[:, 0] - exact) ** 2)
    assert mse < np.mean((F[:, 1] - exact) ** 2) and mse < np.mean((F[:, 3] - exact) ** 2)


def test_lot_and_sliced_regression_rows_on_unseen_digits(digits):
    from wassembed.bench._baselines import grid_coords
    from wassembed.bench._lot_sliced import lot_sliced_rows, training_pairs
    from wassembed.data import make_ground_cost
    from wassembed.exact import ExactSolver

    images, a, b = training_pairs(np.arange(100, 200), 50, 30, np.random.default_rng(0))
    assert images.size == 30 and set(images) <= set(range(100, 200)) and np.all(a != b)
    w, M = digits.weights, make_ground_cost(grid=(8, 8), p=2)
    i, j = _digit_pairs(digits, 60, 1000, digits.n, seed=4)
    exact = ExactSolver(M, 2).solve_pairs(w, i, j)
    lot, reg = lot_sliced_rows(w, grid_coords((8, 8)), M, np.arange(1000), i, j, exact, fit_pairs=300,
                               fit_images=60, n_projections=50)
    assert lot["method"].startswith("LOT") and lot["pearson"] > 0.9 and lot["mean_relative_error"] < 0.15
    assert lot["exact_solves"] == 60 + 300 and reg["exact_solves"] == 300  # images' LOT solves + pairs
    assert reg["method"].startswith("sliced regression") and reg["pearson"] > 0.9
    assert all(r["pairs"] == 60 and r["pairs_per_s"] > 0 and r["fit_seconds"] > 0 for r in (lot, reg))
    assert len(lot["correction"]) == 2 and set(reg["coefficients"]) == {"intercept", "SW2^2", "MaxSW2^2",
                                                                        "LSW2^2", "minSWGG2^2"}


def test_serve_benchmark_shows_the_fitted_baselines(digits):
    pytest.importorskip("torch")
    import json

    from wassembed.bench import format_serve_benchmark, run_serve_benchmark

    res = run_serve_benchmark(digits, [], n_pairs=20, n_speed_pairs=2, matrix_size=100, sinkhorn_iter=50,
                              scaling_sizes=(), exclude=np.arange(1000), baseline_fit_pairs=100,
                              baseline_fit_images=30, threads=None)
    rows = {r["method"].split(",")[0].split(" (")[0]: r for r in res["rows"]}
    assert rows["LOT"]["exact_solves"] == 130 and rows["sliced regression"]["exact_solves"] == 100
    assert rows["exact POT emd2"]["exact_solves"] == 20 and rows["POT sliced"]["exact_solves"] == 0
    table = format_serve_benchmark(res)
    assert "| exact solves |" in table
    for name in ("LOT, reference = mean of 1000 training images", "sliced regression (50 dir.)"):
        assert re.search(rf"^\| {re.escape(name)} \| independent \| [0-9,]+ \| [0-9,]+ \| ", table, flags=re.M), table
    assert "sliced regression" in json.dumps(res) and res["settings"]["baseline_fit_pairs"] == 100


def test_threads_benchmark_measures_each_setting_and_leaves_nothing_running(monkeypatch):
    """Tiny runs of ``bench threads`` (the point-cloud preset idle, a grid preset loaded): every setting
    measured with the thread count it names, torch's setting unchanged, the load processes it started ended."""
    torch = pytest.importorskip("torch")
    from wassembed.bench import _threads

    started = []
    real_popen = _threads.subprocess.Popen
    monkeypatch.setattr(_threads.subprocess, "Popen", lambda *a, **k: started.append(real_popen(*a, **k))
                        or started[-1])
    before = torch.get_num_threads()
    tiny = dict(images=60, pairs=150, epochs=1, distill_epochs=1)
    idle = _threads.run_threads_benchmark("digits", presets=("set",), conditions=("idle",), **tiny)
    assert not [p for p in started if "while True: pass" in p.args]  # no load started for "idle"
    loaded = _threads.run_threads_benchmark("digits", presets=("fast",), conditions=("loaded",), **tiny)
    assert torch.get_num_threads() == before
    cores = loaded["cores"]
    loads = [p for p in started if "while True: pass" in p.args]
    assert len(loads) == cores and all(p.poll() is not None for p in loads)  # one per core, all ended
    for r, condition, preset in ((idle, "idle", "set"), (loaded, "loaded", "fast")):
        assert [(x["condition"], x["preset"], x["setting"]) for x in r["rows"]] == [
            (condition, preset, s) for s in ("default", "1 thread", f"all cores ({cores})")]
        for x, want in zip(r["rows"], (_threads.DEFAULT_THREADS, 1, cores)):
            assert x["threads"] == want and x["pairs_per_s"] > 0 and x["wall_s"] > 0, x
        assert set(r["loads"]) == {condition}
    table = _threads.format_threads_benchmark(loaded)
    assert table.count("\n| ") == 4 and f"| loaded | fast | all cores ({cores}) |" in table
    with pytest.raises(InputError, match="bad presets or conditions"):
        _threads.run_threads_benchmark("digits", presets=("huge",))
