"""The one data interface (``wassembed.data.DataSet``), checked the same way on both kinds of data.

Every test runs on a HistogramSet (digits on their 8×8 grid) and a PointCloudSet (3-D shapes of varying sizes),
through the protocol only: fingerprint, subset, the cache's file, the exact pair solver and LOT teacher looked up
by ``data.kind``, the networks' packed input, validation. Only the reference values (POT called directly) are
computed per kind.
"""

from __future__ import annotations

import numpy as np
import ot
import pytest

from wassembed.data import (
    HISTOGRAMS,
    POINT_CLOUDS,
    DataSet,
    HistogramSet,
    PointCloudSet,
    as_dataset,
    data_kinds,
    kind_class,
    load_dataset,
    make_shapes,
    read_stored,
)
from wassembed.errors import InputError
from wassembed.exact import DistanceCache
from wassembed.exact._datakind import exact_kind
from wassembed.exact._jobs import ExactJob


def _digits():
    return load_dataset("digits", limit=12)


def _shapes():
    return make_shapes(12, seed=0, min_points=5, max_points=12)


@pytest.fixture(params=[HISTOGRAMS, POINT_CLOUDS])
def data(request) -> DataSet:
    return _digits() if request.param == HISTOGRAMS else _shapes()


def _measures(data: DataSet, i: int) -> tuple[np.ndarray, np.ndarray]:
    """``(support points, weights)`` of measure ``i``, for POT called directly (the reference, per kind)."""
    if data.kind == HISTOGRAMS:
        return data.support_coords(), data.weights[i]
    return data.cloud(i)


def _pot(data: DataSet, i: int, j: int, p: int) -> float:
    (xa, a), (xb, b) = _measures(data, i), _measures(data, j)
    return float(ot.emd2(a, b, ot.dist(xa, xb, metric="sqeuclidean" if p == 2 else "euclidean")))


def _changed(data: DataSet) -> DataSet:
    """The same data with one weight moved (renormalised): other exact values, so another fingerprint."""
    if data.kind == HISTOGRAMS:
        w = data.weights.copy()
        w[0] = np.roll(w[0], 1)
        return HistogramSet(w, grid=data.grid)
    w = data.weights.copy()
    w[0] *= 2.0
    return PointCloudSet(data.points, w, data.offsets)


def test_both_kinds_answer_the_protocol(data):
    assert isinstance(data, DataSet) and data.kind in data_kinds() and kind_class(data.kind) is type(data)
    assert len(data) == data.n == 12 and data.describe().startswith("12 ")
    assert data.lot_defined(2) and not data.lot_defined(1)
    assert data.cost_names(2) == ("w2sq", "sqeuclidean") and data.cost_names(1) == ("w1", "euclidean")


def test_fingerprint_is_stable_and_sensitive(data):
    again = _digits() if data.kind == HISTOGRAMS else _shapes()
    assert data.fingerprint(2) == again.fingerprint(2) and len(data.fingerprint()) == 64
    assert _changed(data).fingerprint(2) != data.fingerprint(2)
    assert data.subset(np.arange(data.n)).fingerprint(2) == data.fingerprint(2)  # labels and names ignored
    with pytest.raises(InputError, match="exponent p"):
        data.fingerprint(3)


def test_subset_keeps_the_kind_and_the_order(data):
    sub = data.subset([4, 1, 4])
    assert type(sub) is type(data) and sub.n == 3
    np.testing.assert_array_equal(sub.packed(), data.packed([4, 1, 4]))
    assert sub.subset([1]).fingerprint() == data.subset([1]).fingerprint()


def test_the_cache_file_round_trips(data, tmp_path):
    back, stored_p = read_stored(data.stored_arrays(1), "x")
    assert type(back) is type(data) and back.fingerprint(1) == data.fingerprint(1)
    assert stored_p in (None, 1)  # histograms: the fingerprint covers p; clouds store it
    record = data.record(2)
    assert record["kind"] == data.kind and record["fingerprint"] == data.fingerprint(2)
    assert all(isinstance(record[k], t) for k, t in data.manifest_fields.items())
    assert record[data.size_field] >= 1 and data.describe_record(record).startswith("12 ")
    facts = dict(data.stored_facts(2, stored_p and 2))
    assert all(record[k.split(".")[1]] == v for k, v in facts.items() if k.startswith("dataset."))
    cache = DistanceCache.create(tmp_path / "c", data, p=2)
    reopened = DistanceCache.open(cache.path)
    assert type(reopened.data) is type(data) and reopened.fingerprint == data.fingerprint(2)
    assert reopened.manifest["quantity"] == "w2sq" and reopened.manifest["ground_cost"] == "sqeuclidean"


@pytest.mark.parametrize("p", [1, 2])
def test_pair_solver_of_the_kind_agrees_with_pot(data, p):
    i, j = np.array([0, 2, 5, 7]), np.array([1, 3, 9, 11])
    values = ExactJob.pairs(data, p, 100_000).runner()((i, j))
    np.testing.assert_allclose(values, [_pot(data, a, b, p) for a, b in zip(i, j)], rtol=1e-9, atol=1e-12)


def test_lot_teacher_of_the_kind_splits_w2_exactly(data):
    """``‖e_i − e_σ‖² + split_i = W2²(σ, μ_i)``: the LOT embedding and split term of each measure, from the
    reference the cache would make, against POT's exact value from the reference."""
    images = np.arange(data.n)
    reference = exact_kind(data.kind).reference(data, images)
    emb, split = ExactJob.lot(data, reference, 100_000).runner()(images[:5])
    assert emb.shape[0] == 5 and split.shape == (5,) and (split >= -1e-12).all()
    if data.kind == HISTOGRAMS:
        bins = np.flatnonzero(reference > 0)
        r, y = reference[bins], data.support_coords()[bins]
    else:
        r, y = np.full(reference.shape[0], 1.0 / reference.shape[0]), reference
    e_ref = (np.sqrt(r)[:, None] * y).ravel()
    for t in range(5):
        x, w = _measures(data, t)
        exact = ot.emd2(r, w, ot.dist(y, x))
        assert ((emb[t] - e_ref) ** 2).sum() + split[t] == pytest.approx(exact, rel=1e-7, abs=1e-9)


def test_packing_for_the_networks(data):
    X = data.packed()
    assert X.dtype == np.float32 and X.shape[0] == data.n
    if data.kind == HISTOGRAMS:
        assert X.shape == (data.n, data.k)
        np.testing.assert_allclose(X.sum(1), 1.0, rtol=1e-6)
    else:
        assert X.shape == (data.n, int(data.sizes.max()), data.d + 1)
        np.testing.assert_allclose(X[..., -1].sum(1), 1.0, rtol=1e-6)  # weights, zero in the padding
        assert ((X[..., -1] > 0).sum(1) == data.sizes).all()


def test_validation_names_the_kinds(data):
    assert as_dataset(data) is data and as_dataset(data, kind=data.kind) is data
    other = POINT_CLOUDS if data.kind == HISTOGRAMS else HISTOGRAMS
    with pytest.raises(InputError, match=f"expected a {kind_class(other).__name__}"):
        as_dataset(data, "clouds", kind=other)
    with pytest.raises(InputError, match="expected a HistogramSet or a PointCloudSet.*fix: wrap images"):
        as_dataset(np.zeros((3, 4)))
    with pytest.raises(InputError, match="bad data"):
        ExactJob.pairs([[0.5, 0.5]], 2, 100)


def test_a_served_model_of_the_kind_reads_the_data(data):
    """The sibling of each kind reads the data set itself and its ``model_inputs()`` alike (tiny untrained
    networks)."""
    import torch

    from wassembed.nn import ModelConfig, build_decoder, build_encoder
    from wassembed.serve import BaseEmbedding, CloudEmbedding, WassersteinEmbedding

    if data.kind == HISTOGRAMS:
        cfg = ModelConfig.preset("mlp", k=data.k, hidden=(8,), embed_dim=4)
        model = WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2,
                                     **WassersteinEmbedding.support_of(data))
    else:
        cfg = ModelConfig.preset("set", point_dim=data.d, max_points=12, set_width=8, hidden=(8,), embed_dim=5)
        model = CloudEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2,
                               **CloudEmbedding.support_of(data))
    assert BaseEmbedding.model_class(cfg) is type(model) and model.data_kind == data.kind
    with torch.no_grad():
        np.testing.assert_array_equal(model.embed(data), model.embed(data.model_inputs()))
    model._check_data(data)  # its own kind and support: no error
