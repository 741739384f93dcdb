from wassembed.bench import format_exact_benchmark, run_exact_benchmark


def test_exact_benchmark_runs_and_agrees(small_digits):
    r = run_exact_benchmark(small_digits, 120, workers=2, repeats=1, chunk_size=40)
    assert r["pairs"] == 120 and r["max_abs_diff"] <= 1e-9
    assert r["naive_pairs_per_s"] > 0 and r["one_worker_pairs_per_s"] > 0 and r["all_workers_pairs_per_s"] > 0
    table = format_exact_benchmark(r)
    assert "precompute, 2 workers" in table and "max |difference|" in table
