"""Per-image LOT targets in a cache (the trainer's distillation targets): content, checksums, resume, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from wassembed.data import HistogramSet, load_dataset
from wassembed.errors import CacheMismatchError, CorruptShardError, InputError
from wassembed.exact import DistanceCache, LinearOT, precompute
from wassembed.exact._rational import dyadic_reference
from wassembed.exact._teacher import compute_lot_targets, read_lot_targets


@pytest.fixture(scope="module")
def hs():
    return load_dataset("digits", limit=40)


def test_targets_equal_a_direct_linear_ot_computation(tmp_path, hs):
    c = DistanceCache.create(tmp_path / "c", hs)
    r = compute_lot_targets(c, np.arange(30), progress=False, chunk_size=7)
    assert (r["requested"], r["computed"], r["already_cached"]) == (30, 30, 0)
    t = read_lot_targets(c)
    assert t.index.tolist() == list(range(30)) and t.embedding.dtype == np.float32
    ref = hs.weights[:30].mean(0)  # the reference: their mean, rounded to multiples of 2**-24 (exactly)
    np.testing.assert_array_equal(t.reference, dyadic_reference(ref))
    assert np.abs(t.reference - ref).max() <= 2.0 ** -24
    direct, split = LinearOT(hs, reference=t.reference).transform(hs.weights[:30], return_split=True)
    assert t.embedding.shape == direct.shape == (30, 2 * int((t.reference > 0).sum()))
    np.testing.assert_allclose(t.embedding, direct, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(t.split, split)


def test_a_rerun_solves_only_missing_images_against_the_first_reference(tmp_path, hs):
    c = DistanceCache.create(tmp_path / "c", hs)
    compute_lot_targets(c, np.arange(20), progress=False, chunk_size=8)
    first = read_lot_targets(c)
    again = compute_lot_targets(c, np.arange(20), progress=False, chunk_size=8)
    assert again["computed"] == 0 and again["already_cached"] == 20
    more = compute_lot_targets(c, np.arange(10, 35), progress=False, chunk_size=8, workers=2)
    assert (more["computed"], more["already_cached"]) == (15, 10)
    t = read_lot_targets(c)
    np.testing.assert_array_equal(t.reference, first.reference)  # fixed by the first run
    assert t.index.tolist() == list(range(35))
    np.testing.assert_array_equal(t.embedding[:20], first.embedding)
    direct = LinearOT(hs, reference=first.reference).transform(hs.weights[20:35])
    np.testing.assert_allclose(t.embedding[20:], direct, rtol=1e-6, atol=1e-5)


def test_an_altered_or_truncated_file_is_named(tmp_path, hs):
    c = DistanceCache.create(tmp_path / "c", hs)
    compute_lot_targets(c, np.arange(10), progress=False, chunk_size=5)
    f = sorted((tmp_path / "c" / "lot").glob("lot-*.npz"))[0]
    with np.load(f) as z:
        arrays = dict(z)
    arrays["embedding"] = arrays["embedding"] + 1.0
    np.savez(f, **arrays)
    with pytest.raises(CorruptShardError, match=r"damaged LOT file .*checksum mismatch"):
        read_lot_targets(c)
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(CorruptShardError, match="delete it and rerun"):
        read_lot_targets(c)
    f.unlink()  # the fix the message gives: only that chunk is solved again
    assert compute_lot_targets(c, np.arange(10), progress=False, chunk_size=5)["computed"] == 5


def test_precompute_caches_targets_by_default_and_not_with_lot_false(tmp_path, hs):
    r = precompute(hs, tmp_path / "a", pairs=30, images="0:20", workers=1, progress=False)
    assert (r.lot_requested, r.lot_computed) == (20, 20)
    assert read_lot_targets(DistanceCache.open(tmp_path / "a")).index.tolist() == list(range(20))
    r = precompute(hs, tmp_path / "b", pairs=30, images="0:20", workers=1, progress=False, lot=False)
    assert (r.lot_requested, r.lot_computed) == (0, 0)
    assert read_lot_targets(DistanceCache.open(tmp_path / "b")) is None
    r = precompute(hs, tmp_path / "c", pairs=30, images="0:20", workers=1, progress=False, lot_images="5:12")
    assert (r.lot_requested, r.lot_computed) == (7, 7)
    assert read_lot_targets(DistanceCache.open(tmp_path / "c")).index.tolist() == list(range(5, 12))


def test_other_data_is_refused_before_anything_is_written(tmp_path, hs):
    precompute(hs, tmp_path / "a", pairs=20, images="0:10", workers=1, progress=False)
    before = sorted(p.name for p in (tmp_path / "a" / "lot").iterdir())
    other = HistogramSet.from_images(np.asarray(hs.weights[:10] + 1e-3).reshape(-1, 8, 8))
    with pytest.raises(CacheMismatchError):
        precompute(other, tmp_path / "a", pairs=20, workers=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "a" / "lot").iterdir()) == before


def test_supports_without_lot_are_skipped_by_precompute_and_refused_when_asked(tmp_path, hs):
    r = precompute(hs, tmp_path / "w1", pairs=10, images="0:8", p=1, workers=1, progress=False)
    assert r.lot_requested == 0
    c = DistanceCache.open(tmp_path / "w1")
    with pytest.raises(InputError, match="LOT targets need p=2"):
        compute_lot_targets(c, np.arange(5), progress=False)
