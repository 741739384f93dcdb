"""Regression metrics against naive references."""

import numpy as np
import pytest
import scipy.stats

from wassembed.errors import InputError
from wassembed.metrics import rankdata, regression_metrics


def test_against_scipy():
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 5.0, 97)
    yhat = y + rng.normal(0, 1, 97)
    yhat[:5] = yhat[5]  # ties
    m = regression_metrics(yhat, y)
    assert m["n_pairs"] == 97
    assert m["mse"] == pytest.approx(np.mean((yhat - y) ** 2))
    assert m["relative_mse"] == pytest.approx(np.mean((yhat - y) ** 2) / np.mean(y ** 2))
    assert m["pearson"] == pytest.approx(scipy.stats.pearsonr(yhat, y)[0])
    assert m["spearman"] == pytest.approx(scipy.stats.spearmanr(yhat, y)[0])
    assert m["mean_relative_error"] == pytest.approx(np.mean(np.abs(yhat - y) / y))
    ae = np.abs(yhat - y)
    assert m["abs_err_q90"] == pytest.approx(np.quantile(ae, 0.9))
    assert m["abs_err_max"] == pytest.approx(ae.max())
    assert m["abs_err_q50"] <= m["abs_err_q90"] <= m["abs_err_q99"] <= m["abs_err_max"]


def test_rankdata_matches_scipy():
    x = np.array([3, 1, 2, 2, 5, 1, 1])
    assert np.array_equal(rankdata(x), scipy.stats.rankdata(x))
    assert rankdata([[3, 1], [2, 2]]).tolist() == [4.0, 1.0, 2.5, 2.5]  # flattened, like the pairs


def test_constant_side_gives_nan_correlations_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = regression_metrics([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert np.isnan(m["pearson"]) and np.isnan(m["spearman"]) and m["mse"] == pytest.approx(2 / 3)


def test_spearman_with_ties_matches_scipy():
    rng = np.random.default_rng(1)
    y = np.round(rng.gamma(2.0, 2.0, 200))
    yhat = np.round(y + rng.normal(0, 1, 200))
    m = regression_metrics(yhat, y)
    assert m["spearman"] == pytest.approx(scipy.stats.spearmanr(yhat, y)[0], rel=1e-12)
    assert m["pearson"] == pytest.approx(scipy.stats.pearsonr(yhat, y)[0], rel=1e-12)


def test_perfect_and_zero_targets():
    m = regression_metrics([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    assert m["mse"] == 0 and m["pearson"] == pytest.approx(1) and m["mean_relative_error"] == 0


@pytest.mark.parametrize("pred, target, match", [
    ([1.0], [1.0], "too few pairs"),
    ([1.0, 2.0], [1.0], "differ in length"),
    ([1.0, np.nan], [1.0, 2.0], "non-finite"),
])
def test_bad_input(pred, target, match):
    with pytest.raises(InputError, match=match):
        regression_metrics(pred, target)


def test_metrics_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, wassembed.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
