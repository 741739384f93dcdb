"""WassersteinEmbedder through scikit-learn's own estimator checks (``parametrize_with_checks``).

The estimator learns from the ``X`` given to ``fit`` (exact pairs among its rows, then training), so the checks
run it as they run any transformer, on the small random data they generate. Its budgets are tiny (200 pairs,
2 epochs of each training phase, no process pool): the checks test conventions, not accuracy, and fit it some
sixty times. The only check that cannot pass is listed in :data:`EXPECTED_FAILED` with its reason; a test below
checks that it fails for that reason and no other.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimators_dtypes, parametrize_with_checks

from wassembed.errors import InputError
from wassembed.learn import WassersteinEmbedder

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::wassembed.learn.SmallDataWarning")]


def _estimator():
    return WassersteinEmbedder(n_pairs=200, workers=1, epochs=2, train_options={"distill_epochs": 2}, device="cpu")


#: Checks that cannot pass, and why.
EXPECTED_FAILED = {
    "check_estimators_dtypes": "its integer data (random values in [0, 3) truncated) has a row of zeros, and a "
                               "row without mass is no distribution: no transport distance is defined for it, so "
                               "fit refuses it (InputError naming the row)",
}


@parametrize_with_checks([_estimator()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_expected_failure_is_the_row_without_mass():
    """The listed check fails for the documented reason and no other: its float data passes, and the same data
    with the empty row filled passes as integers too."""
    with warnings.catch_warnings(), pytest.raises(InputError, match=r"all-zero rows.*zero mass in row 15;"):
        warnings.simplefilter("ignore")
        check_estimators_dtypes("WassersteinEmbedder", _estimator())
    # the check's data, rebuilt: 3 * uniform (20, 5) float32, shifted to be nonnegative, truncated
    X = 3 * np.random.RandomState(0).uniform(size=(20, 5)).astype(np.float32)
    X = (X - X.min()).astype(np.int64)
    assert np.flatnonzero(X.sum(1) == 0).tolist() == [15]
    X[15, 0] = 1
    est = _estimator().fit(X)
    assert est.transform(X).shape == (20, est.embed_dim_)
