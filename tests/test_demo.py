"""`wassembed demo --tiny` end to end through the console entry point, and the report/plot helpers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import run_cli

FIGURES = ("training_curves.png", "scatter_unseen_pairs.png", "errors_and_coverage.png", "knn_gallery.png",
           "barycenters.png", "interpolation.png", "principal_directions.png")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    proc = run_cli("demo", "--tiny", "--out", out, "--device", "cpu", "--quiet", check=True, timeout=300)
    return out, proc


def test_demo_prints_the_results_table(demo):
    _, proc = demo
    text = proc.stdout
    for key in ("exact pairs (train / test images)", "training time", "Pearson r (unseen pairs)",
                "MSE (unseen pairs)", "relative MSE (unseen pairs)", "distance speed-up", "cdist speed-up",
                "total time"):
        assert key in text, key
    assert "train images 0:1400, test images 1400:1797" in text
    assert re.search(r"^exact pairs \(train / test images\)\s+2,500 / 400$", text, flags=re.M), text
    assert re.search(r"distance speed-up\s+[0-9,]+×", text)
    assert "report:" in text


def test_demo_writes_figures_report_and_numbers(demo):
    out, _ = demo
    from matplotlib.image import imread

    for name in FIGURES:
        img = imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, name
        assert float(np.std(img[..., :3])) > 0.01, f"{name} looks blank"
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for name in FIGURES:
        assert f'src="{name}"' in html and f"]({name})" in md
    assert "entropic" in html.lower()  # the POT barycenter is entropic and the caption says so
    assert (out / "model" / "model.json").exists() and (out / "checkpoints" / "train_log.jsonl").exists()


def test_demo_numbers_are_consistent(demo):
    out, _ = demo
    r = json.loads((out / "results.json").read_text())
    assert r["tiny"] is True
    assert r["dataset"] == {"name": "digits", "n": 1797, "grid": [8, 8], "k": 64, "train_images": "0:1400",
                            "test_images": "1400:1797"}
    pre = r["precompute"]
    assert (pre["train"]["requested"], pre["test"]["requested"]) == (2500, 400)
    assert pre["train"]["computed"] + pre["test"]["computed"] == pre["pairs_computed"] == 2900
    assert pre["pairs_reused"] == 0
    assert r["test"]["n_pairs"] == 400
    assert r["test"]["pairs_touching_training_images"] == 0
    assert r["test"]["n_dropped_by_evaluate"] == 0
    assert r["test"]["distance_vs_evaluate_mse_diff"] < 1e-6  # model.distance and evaluate agree
    assert r["training"]["epochs_run"] == 2
    assert r["training"]["train_pairs"] + r["training"]["val_pairs"] <= 2500  # pairs across the split dropped
    assert r["model_file_check_max_abs_diff"] == 0.0
    assert r["knn"]["reranked_values_match_brute_force"] is True
    assert r["knn"]["exact_solves_brute_force"] == len(r["knn"]["queries"]) * 1400
    assert 0 < r["knn"]["exact_solves_reranking"] <= r["knn"]["exact_solves_brute_force"]
    assert r["ood"]["test_images"] == 397 and r["ood"]["levels"] == [0.9, 0.95, 0.99]
    assert r["ood"]["fraction"] == pytest.approx(r["ood"]["test_images_flagged"] / 397)
    assert r["ood"]["flagged"] == sorted(r["ood"]["flagged"], reverse=True)  # a higher level flags fewer
    assert r["training"]["decoder_phase"]["epochs"] == 2  # the decoder fitted alone after the pair epochs
    assert r["training"]["split"]["calibration"] == r["conformal"]["calibration_pairs"]


def test_demo_speed_ups_are_the_ratios_of_the_rates_it_measured(demo):
    out, proc = demo
    sp = json.loads((out / "results.json").read_text())["speed"]
    assert sp["exact_check_max_abs_diff"] < 1e-9  # ot.emd2 agrees with the cache
    assert sp["distance_pairs"] == 400 and sp["cdist_shape"] == [397, 1400]
    assert sp["distance_pairs_per_s"] == pytest.approx(sp["distance_pairs"] / sp["distance_seconds"], rel=1e-9)
    assert sp["distance_speedup"] == pytest.approx(sp["distance_pairs_per_s"] / sp["exact_pot_pairs_per_s"],
                                                   rel=1e-9)
    assert sp["cdist_pairs_per_s"] == pytest.approx(397 * 1400 / sp["cdist_seconds"], rel=1e-9)
    assert sp["cdist_speedup"] == pytest.approx(sp["cdist_pairs_per_s"] / sp["exact_pot_cdist_pairs_per_s"],
                                                rel=1e-9)
    assert sp["cdist_exact_estimated_seconds"] == pytest.approx(397 * 1400 / sp["exact_pot_cdist_pairs_per_s"],
                                                                rel=1e-9)
    # the table prints the same numbers
    num = lambda text: float(text.replace(",", ""))
    m = re.search(r"^distance speed-up\s+([0-9,]+)× \(([0-9,]+) pairs/s\)$", proc.stdout, flags=re.M)
    assert m and num(m.group(1)) == round(sp["distance_speedup"]) and num(m.group(2)) == round(
        sp["distance_pairs_per_s"]), proc.stdout
    m = re.search(r"^cdist speed-up\s+([0-9,]+)× \(397×1400 in [0-9.]+ s; exact ≈ ([0-9,]+) s\)$", proc.stdout,
                  flags=re.M)
    assert m and num(m.group(1)) == round(sp["cdist_speedup"]) and num(m.group(2)) == round(
        sp["cdist_exact_estimated_seconds"]), proc.stdout


def test_demo_accuracy_figures_match_the_caches_and_the_saved_model(demo):
    """The reported MSE, relative MSE, mean W2² and interval coverage are what the saved model gives on the
    test cache; the digits' exact W2² between random pairs is about 1.5 pixel²."""
    out, _ = demo
    import wassembed

    r = json.loads((out / "results.json").read_text())
    table = wassembed.DistanceCache.open(out / "cache-test").read()
    v = table.value
    assert len(v) == 400 and r["test"]["target_mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert 1.0 < v.mean() < 2.0 and v.min() > 0  # known data: distinct digits, mean W2² ≈ 1.5 pixel²
    assert r["test"]["relative_mse"] == pytest.approx(r["test"]["mse"] / np.mean(v ** 2), rel=1e-9)
    model = wassembed.load(out / "model")
    W = wassembed.load_dataset("digits").weights
    pred = np.asarray(model.distance(W[table.i], W[table.j], warn_ood=False), dtype=np.float64)
    assert r["test"]["mse"] == pytest.approx(np.mean((pred - v) ** 2), rel=1e-5)
    conf = r["conformal"]
    cov = conf["coverage"]
    assert conf["levels"] == sorted(conf["levels"]) and cov == sorted(cov)  # wider intervals cover more
    i90 = conf["levels"].index(0.9)
    est = model.interval(W[table.i], W[table.j], 0.9, warn_ood=False)
    inside = (v >= np.asarray(est.lower)) & (v <= np.asarray(est.upper))
    assert cov[i90] == pytest.approx(inside.mean(), abs=1 / 400)
    # a 2-epoch model, calibrated on pairs of the last held-out images: loose (the full demo is measured in
    # docs/benchmarks-demo.md)
    assert all(abs(c - lv) <= 0.1 for c, lv in zip(cov, conf["levels"]))
    assert conf["calibration_source"].startswith("pairs of two held-out calibration images")
    # coverage by decile of the exact values: each decile holds a tenth of the pairs
    edges = np.asarray(conf["decile_edges"])
    assert edges[0] == v.min() and edges[-1] == v.max() and list(conf["coverage_by_decile"]) == ["0.5", "0.9"]
    est50 = model.interval(W[table.i], W[table.j], 0.5, warn_ood=False)
    first = v <= edges[1]
    inside = (v >= np.asarray(est50.lower)) & (v <= np.asarray(est50.upper))
    assert conf["coverage_by_decile"]["0.5"][0] == pytest.approx(inside[first].mean(), abs=1e-9)
    rel = (np.asarray(pred) - v) / v
    assert conf["closest_mean_relative_error"] == pytest.approx(rel[first].mean(), rel=1e-6)
    widths = [np.inf if w is None else w for w in conf["mean_width"]]
    assert widths == sorted(widths) and widths[0] > 0


def test_demo_barycenter_objectives_obey_the_bounds_of_w2(demo):
    """For each class's members x_1..x_n and P = mean of W2²(x_i, x_j) over all (i, j): the pixel mean scores at
    most P (W2² is jointly convex), and no histogram scores below P / 4 (triangle inequality of W2)."""
    out, _ = demo
    import wassembed

    b = json.loads((out / "results.json").read_text())["barycenters"]
    hs = wassembed.load_dataset("digits")
    solver = wassembed.ExactSolver(np.array(hs.ground_cost(2)), 2)
    per_class = b["per_class"]
    pixel = next(k for k in per_class if k.startswith("pixel mean"))
    for n, c in enumerate(b["classes"]):
        members = np.flatnonzero(hs.labels[:1400] == c)[:b["images_per_class"]]
        i, j = np.triu_indices(members.size, 1)
        P = 2 * solver.solve_pairs(hs.weights, members[i], members[j]).sum() / members.size ** 2
        assert per_class[pixel][n] <= P * (1 + 1e-9), (c, per_class[pixel][n], P)
        for method, values in per_class.items():
            assert values[n] >= P / 4 * (1 - 1e-9), (c, method, values[n], P)
    for method, values in per_class.items():
        assert b["mean_exact_w2_to_members"][method] == pytest.approx(np.mean(values), rel=1e-12)


def test_demo_split_keeps_test_images_unseen(demo):
    """Training pairs only touch images 0:1400; test pairs only 1400:1797 (separation by image index)."""
    out, _ = demo
    import wassembed

    tr = wassembed.DistanceCache.open(out / "cache-train").read()
    te = wassembed.DistanceCache.open(out / "cache-test").read()
    assert max(tr.i.max(), tr.j.max()) < 1400
    assert min(te.i.min(), te.j.min()) >= 1400 and max(te.i.max(), te.j.max()) < 1797
    model = wassembed.load(out / "model")
    assert np.asarray(model.calibration["train_images"]).max() < 1400


@pytest.mark.slow
def test_demo_rerun_reuses_caches(demo, tmp_path):
    """A second run into the same folder reuses the exact caches and replaces the rest."""
    out, _ = demo
    from wassembed.demo import run_demo

    r = run_demo(out=out, tiny=True, device="cpu", progress=False, echo=None, epochs=1)
    assert r["precompute"]["pairs_computed"] == 0 and r["precompute"]["pairs_reused"] == 2900
    assert r["training"]["epochs_run"] == 1


def test_demo_module_import_is_light():
    code = ("import sys, wassembed.demo, wassembed.cli.demo; "
            "heavy = [m for m in ('torch', 'ot', 'matplotlib', 'sklearn') if m in sys.modules]; "
            "print(heavy); assert not heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_rejects_bad_input(tmp_path):
    proc = run_cli("demo", "--data", tmp_path / "missing.npy", "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert "no such data file" in proc.stderr


def test_plots_without_matplotlib_give_install_hint(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from wassembed.demo import plots\n"
            "try:\n    plots.scatter_pred_vs_exact([1.0, 2.0], [1.0, 2.1], 'x.png')\n"
            "except ModuleNotFoundError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "pip install 'wassembed[plot]'" in proc.stdout, proc.stdout + proc.stderr


def test_report_escapes_text_and_marks_missing_figures(tmp_path):
    from wassembed.demo._report import Figure, write_report

    paths = write_report(tmp_path, title="<b>t</b>", rows=[("a|b", "<1>")],
                         figures=[Figure("nope.png", "T", "c & d")], numbers={"x": float("inf")})
    html = paths["html"].read_text()
    assert "<b>t</b>" not in html and "&lt;b&gt;t&lt;/b&gt;" in html
    assert "missing: nope.png" in html and "c &amp; d" in html
    assert "a\\|b" in paths["markdown"].read_text()
    assert json.loads(paths["json"].read_text()) == {"x": None}


def test_plots_accept_flat_histograms(tmp_path, small_digits):
    from wassembed.demo import plots

    w = small_digits.weights
    p = plots.image_rows([w[:5], w[5:8]], tmp_path / "rows.png", grid=(8, 8), row_labels=["five", "three"])
    p2 = plots.principal_directions_figure(w[:14].reshape(2, 7, 64), (-1.5, -1, -0.5, 0, 0.5, 1, 1.5),
                                           tmp_path / "pd.png", grid=(8, 8), explained=[0.3, 0.1])
    p3 = plots.knn_gallery(w[:2], w[2:8].reshape(2, 3, 64), np.ones((2, 3)), w[8:14].reshape(2, 3, 64),
                           np.ones((2, 3)), tmp_path / "knn.png", grid=(8, 8))
    for f in (p, p2, p3):
        assert f.exists() and f.stat().st_size > 1000


def test_distance_axes_carry_their_unit(tmp_path, monkeypatch):
    """Axes of W₂² say the unit, pixel² (and pixel⁴ for its squared error), not "[W₂²]"."""
    from wassembed.demo import _charts, plots

    figs = []
    monkeypatch.setattr(_charts, "_save", lambda fig, path: figs.append(fig) or path)
    rng = np.random.default_rng(0)
    exact = rng.uniform(0.5, 3, 200)
    pred = exact + 0.1 * rng.standard_normal(200)
    plots.scatter_pred_vs_exact(pred, exact, tmp_path / "s.png")
    plots.error_and_coverage(pred, exact, [0.5, 0.9], [0.5, 0.88], tmp_path / "e.png", mean_width=[0.1, 0.3],
                             by_decile={0.5: [0.5] * 10, 0.9: [0.9] * 10})
    plots.training_curves([1, 2], [1.0, 0.5], [0.1, 0.05], tmp_path / "t.png")
    labels = [lab for fig in figs for ax in fig.axes for lab in (ax.get_xlabel(), ax.get_ylabel())]
    w2 = [lab for lab in labels if "W₂²" in lab and "decile" not in lab]  # a decile is a rank: no unit
    assert len(w2) == 4 and all("[pixel²]" in lab or "[pixel⁴]" in lab for lab in w2), w2
    assert not any("[W₂²]" in lab for lab in labels)
