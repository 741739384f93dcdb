import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from wassembed.data import HistogramSet, as_weights, load_dataset, make_ground_cost
from wassembed.data._loaders import read_idx
from wassembed.errors import InputError


def _write_idx(path, arr, compress=True):
    head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def test_digits_default_is_normalised(digits):
    assert digits.n == 1797 and digits.grid == (8, 8) and digits.weights.dtype == np.float64
    np.testing.assert_allclose(digits.weights.sum(1), 1.0, atol=1e-12)
    assert digits.labels is not None and digits.labels.shape == (1797,)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_roundtrip_with_labels(tmp_path, compress):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, size=(5, 4, 3))
    imgs[:, 0, 0] = 1
    name = "x-images-idx3-ubyte" + (".gz" if compress else "")
    _write_idx(tmp_path / name, imgs, compress)
    _write_idx(tmp_path / name.replace("images-idx3", "labels-idx1"), np.arange(5), compress)
    hs = load_dataset(tmp_path / name)
    assert hs.grid == (4, 3)
    np.testing.assert_allclose(hs.images(), imgs / imgs.sum((1, 2), keepdims=True))
    assert hs.labels.tolist() == [0, 1, 2, 3, 4]


def test_truncated_idx_is_refused(tmp_path):
    imgs = np.ones((3, 4, 4))
    _write_idx(tmp_path / "t-images-idx3-ubyte.gz", imgs)
    raw = gzip.open(tmp_path / "t-images-idx3-ubyte.gz").read()
    gzip.open(tmp_path / "cut-images-idx3-ubyte.gz", "wb").write(raw[:-5])
    with pytest.raises(InputError, match=r"cut-images-idx3-ubyte.gz is truncated.*expected 48 data bytes"):
        read_idx(tmp_path / "cut-images-idx3-ubyte.gz")
    (tmp_path / "short-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    with pytest.raises(InputError, match="truncated"):
        read_idx(tmp_path / "short-idx3-ubyte")


def test_npy_and_npz_loaders(tmp_path):
    imgs = np.random.default_rng(1).random((4, 5, 6))
    np.save(tmp_path / "a.npy", imgs)
    assert load_dataset(tmp_path / "a.npy").grid == (5, 6)
    np.savez(tmp_path / "b.npz", histograms=np.ones((3, 4)), coords=np.arange(8.0).reshape(4, 2), labels=[1, 2, 3])
    hs = load_dataset(tmp_path / "b.npz")
    assert hs.support_kind == "coords" and hs.labels.tolist() == [1, 2, 3]
    np.testing.assert_allclose(hs.weights, 0.25)
    M = np.abs(np.subtract.outer(np.arange(4.0), np.arange(4.0)))
    np.savez(tmp_path / "c.npz", histograms=np.ones((2, 4)), cost=M)
    assert load_dataset(tmp_path / "c.npz").ground_cost(1) is not None


@pytest.mark.parametrize("bad, match", [
    (np.array([[[np.nan, 1.0], [1, 1]]]),
     r"NaN or infinite values: expected finite weights, received non-finite values in row 0"),
    (np.array([[[1.0, 1.0], [1, 1]], [[np.inf, 1.0], [1, 1]]]), r"non-finite values in row 1"),
    (np.array([[[1.0, -1.0], [1, 1]]]), r"negative weights.*row 0.*fix: clip"),
    (np.array([[[1.0, 1.0], [1, 1]], [[0.0, 0.0], [0, 0]]]), r"all-zero rows.*row 1.*fix: drop empty images"),
    (np.ones(5), r"wrong rank.*received an array of shape \(5,\)"),
    (np.ones((2, 2, 2, 2)), r"wrong rank"),
    (np.ones((0, 3, 3)), r"is empty"),
    ([[1, 2], [3]], r"ragged|not a numeric"),
    (np.array([["a", "b"]]), r"not a numeric array"),
])
def test_bad_arrays_are_explained(bad, match):
    with pytest.raises(InputError, match=match):
        as_weights(bad, what="input")


def test_bad_files_are_explained(tmp_path):
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(InputError, match=r"unknown data format.*expected 'digits', .npy, .npz or an IDX file"):
        load_dataset(tmp_path / "x.csv")
    with pytest.raises(InputError, match="no such data file"):
        load_dataset(tmp_path / "missing.npy")
    np.save(tmp_path / "h.npy", np.ones((3, 4)))
    with pytest.raises(InputError, match=r"wrong rank.*save histograms \(n, k\) in an .npz"):
        load_dataset(tmp_path / "h.npy")
    np.savez(tmp_path / "nosupport.npz", histograms=np.ones((3, 4)))
    with pytest.raises(InputError, match="histograms need a support"):
        load_dataset(tmp_path / "nosupport.npz")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="cannot read"):
        load_dataset(tmp_path / "junk.npy")


def test_ground_costs_on_pixel_grid():
    M2 = make_ground_cost(grid=(3, 4), p=2)
    M1 = make_ground_cost(grid=(3, 4), p=1)
    # bin r * W + c sits at (r, c): bin 0 = (0, 0), bin 11 = (2, 3)
    assert M2[0, 11] == 2 ** 2 + 3 ** 2 and M1[0, 11] == pytest.approx(np.sqrt(13))
    assert not M2.flags.writeable


def test_fingerprint_depends_on_weights_support_and_p(digits):
    a = digits.subset(np.arange(10))
    b = digits.subset(np.arange(1, 11))
    assert a.fingerprint(2) == digits.subset(np.arange(10)).fingerprint(2)
    assert a.fingerprint(2) != b.fingerprint(2)
    assert a.fingerprint(2) != a.fingerprint(1)
    c = HistogramSet(a.weights, coords=a.support_coords())
    assert c.fingerprint(2) != a.fingerprint(2)  # same coordinates, other support kind


def test_repr_is_short(digits):
    r = repr(digits)
    assert r == (f"HistogramSet(n=1797, k=64, support=grid 8×8, name='digits', labels=yes, "
                 f"fingerprint={digits.fingerprint(2)[:12]}…)")
    assert "array" not in r and len(r) < 120
    pts = HistogramSet.from_histograms(np.ones((3, 4)), coords=np.arange(8.0).reshape(4, 2), name="pts")
    assert repr(pts).startswith("HistogramSet(n=3, k=4, support=coords 4×2, name='pts', labels=no, fingerprint=")
    M = np.abs(np.subtract.outer(np.arange(4.0), np.arange(4.0)))
    assert "support=cost 4×4" in repr(HistogramSet.from_histograms(np.ones((2, 4)), cost=M))


DATA = Path(__file__).resolve().parents[1] / "data"


def test_shipped_point_histograms_load_and_are_reproducible():
    hs = load_dataset(DATA / "point-histograms.npz")
    assert (hs.n, hs.k, hs.support_kind) == (600, 48, "coords") and hs.coords.shape == (48, 2)
    assert np.bincount(hs.labels).tolist() == [150] * 4
    np.testing.assert_allclose(hs.weights.sum(1), 1.0, atol=1e-12)
    assert (DATA / "point-histograms.npz").stat().st_size < 300_000
    spec = importlib.util.spec_from_file_location("make_point_histograms", DATA / "make_point_histograms.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    made = script.make()  # the documented, seeded script gives the shipped arrays
    with np.load(DATA / "point-histograms.npz") as z:
        assert sorted(z.files) == sorted(made)
        for key in made:
            np.testing.assert_array_equal(z[key], made[key])
