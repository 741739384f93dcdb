import re
from pathlib import Path

import numpy as np
import pytest

import wassembed.bench
from wassembed.bench import format_exact_benchmark, run_exact_benchmark
from wassembed.errors import InputError


def test_exact_benchmark_runs_and_agrees(small_digits):
    import ot

    from wassembed.exact import random_pairs

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
