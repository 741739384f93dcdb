"""Bad-input fuzzing of the public entry points.

Contract checked for every generated input: the call either succeeds with a valid result, or raises one of
the documented :mod:`wassembed.errors` types whose message says what was expected and how to fix it
(``explain`` format) — never another exception type, a hang (``pytest-timeout``), a crash, or a cache
directory left half-written. The default suite runs a few dozen examples per entry point; set
``WASSEMBED_FUZZ_FACTOR=10`` to run ten times more (examples are derandomised: a run is reproducible).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch  # installed wherever the suite runs: a missing torch must fail the suite, not skip its tests
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wassembed.data import HistogramSet, as_weights, load_dataset
from wassembed.errors import InputError, WassembedError
from wassembed.exact import DistanceCache, precompute

FAST = dict(deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                   HealthCheck.data_too_large, HealthCheck.filter_too_much])



FACTOR = max(1, int(os.environ.get("WASSEMBED_FUZZ_FACTOR", "1")))


def fuzz(examples: int):
    """Hypothesis settings: ``examples`` per property (times ``WASSEMBED_FUZZ_FACTOR``), derandomised."""
    return settings(max_examples=examples * FACTOR, **FAST)


def assert_explained(exc: BaseException, *types) -> None:
    """A documented error type with an ``explain``-style message (what was expected or received; a fix)."""
    types = types or (WassembedError,)
    assert isinstance(exc, types), f"{type(exc).__name__}: {exc}"
    msg = str(exc)
    assert msg, type(exc)
    assert "fix:" in msg or "expected" in msg or "received" in msg, msg


#: never a hang: every test here is stopped (and fails) after this long, when pytest-timeout is installed
pytestmark = [pytest.mark.timeout(300)] if importlib.util.find_spec("pytest_timeout") else []

# -- as_weights -------------------------------------------------------------------------------------
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_,
                          np.complex128])


@st.composite
def raw_arrays(draw):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    if dtype.kind == "f":
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    elif dtype.kind == "c":
        elements = st.complex_numbers(allow_nan=True)
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def weird_objects(draw):
    return draw(st.one_of(
        st.none(), st.text(max_size=5), st.integers(), st.floats(),
        st.lists(st.lists(st.floats(allow_nan=True), max_size=4), max_size=4),  # possibly ragged
        st.lists(st.lists(st.lists(st.integers(-3, 3), max_size=3), max_size=3), max_size=3),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    ))


def check_weights(X, grid=None, k=None):
    try:
        w, g = as_weights(X, what="X", grid=grid, k=k)
    except InputError as exc:
        assert_explained(exc, InputError)
        return None
    assert w.dtype == np.float64 and w.ndim == 2 and w.shape[0] >= 1 and w.shape[1] >= 1
    assert np.isfinite(w).all() and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-9)
    if g is not None:
        assert g[0] * g[1] == w.shape[1]
    return w


@fuzz(150)
@given(X=raw_arrays(), grid=st.none() | st.tuples(st.integers(1, 4), st.integers(1, 4)),
       k=st.none() | st.integers(0, 20))
def test_as_weights_arrays(X, grid, k):
    check_weights(X, grid=grid, k=k)


@fuzz(80)
@given(X=weird_objects())
def test_as_weights_python_objects(X):
    check_weights(X)


@fuzz(60)
@given(scale=st.floats(1e-300, 1e300), n=st.integers(1, 3), k=st.integers(1, 6), seed=st.integers(0, 99))
def test_as_weights_extreme_magnitudes(scale, n, k, seed):
    """Finite inputs of any magnitude whose row sums stay finite normalise to exact histograms."""
    X = np.random.default_rng(seed).random((n, k)) * scale
    assume((X.sum(axis=1) > 0).all())
    check_weights(X)


def test_as_weights_row_sum_overflow():
    """Finite values whose row sum overflows (> 1.8e308) must not become an all-zero "histogram"."""
    check_weights(np.full((1, 3), 1e308))


@fuzz(40)
@given(X=raw_arrays())
def test_histogram_set_constructors(X):
    try:
        hs = HistogramSet.from_images(X) if X.ndim == 3 else HistogramSet.from_histograms(X, grid=(1, X.shape[-1])
                                                                                         if X.ndim == 2 else None)
    except InputError as exc:
        assert_explained(exc, InputError)
        return
    assert np.isfinite(hs.weights).all()


# -- load_dataset -----------------------------------------------------------------------------------
SUFFIXES = [".npy", ".npz", "-images-idx3-ubyte.gz", "-images-idx3-ubyte", ".gz", ".txt", ""]


def _valid_files() -> dict:
    imgs = (np.arange(4 * 3 * 3) % 5).reshape(4, 3, 3).astype(np.uint8)
    out = {}
    b = io.BytesIO()
    np.save(b, imgs)
    out[".npy"] = b.getvalue()
    b = io.BytesIO()
    np.savez(b, images=imgs, labels=np.arange(4))
    out[".npz"] = b.getvalue()
    b = io.BytesIO()
    np.savez(b, histograms=imgs.reshape(4, 9).astype(float), grid=np.array([3, 3]))
    out["-hist.npz"] = b.getvalue()
    idx = b"\x00\x00\x08\x03" + struct.pack(">III", 4, 3, 3) + imgs.tobytes()
    out["-images-idx3-ubyte"] = idx
    out["-images-idx3-ubyte.gz"] = gzip.compress(idx)
    return out


VALID = _valid_files()


@st.composite
def data_files(draw, suffixes):
    """Random bytes under a data-file name, or a valid file truncated or with one byte changed."""
    kind = draw(st.sampled_from(["random", "mutated", "truncated", "header"]))
    suffix = draw(st.sampled_from(suffixes))
    if kind == "random":
        return suffix, draw(st.binary(max_size=300))
    raw = bytearray(VALID[suffix])
    if kind == "truncated":
        return suffix, bytes(raw[:draw(st.integers(0, len(raw) - 1))])
    if kind == "header":  # damage the first bytes, where formats declare shapes and sizes
        pos = draw(st.integers(0, min(len(raw), 140) - 1))
    else:
        pos = draw(st.integers(0, len(raw) - 1))
    raw[pos] = draw(st.integers(0, 255))
    return suffix, bytes(raw)


def check_load(tmp_path_factory, f):
    suffix, raw = f
    path = tmp_path_factory.mktemp("f") / f"data{suffix}"
    path.write_bytes(raw)
    try:
        hs = load_dataset(path)
    except InputError as exc:
        assert_explained(exc, InputError)
        return
    assert hs.n >= 1 and np.isfinite(hs.weights).all()
    np.testing.assert_allclose(hs.weights.sum(axis=1), 1.0, rtol=1e-9)


@fuzz(60)
@given(f=data_files(["-images-idx3-ubyte"]))
def test_load_dataset_damaged_idx(tmp_path_factory, f):
    check_load(tmp_path_factory, f)


@fuzz(60)
@given(suffix=st.sampled_from(SUFFIXES + sorted(VALID)), raw=st.binary(max_size=300))
def test_load_dataset_random_bytes(tmp_path_factory, suffix, raw):
    check_load(tmp_path_factory, (suffix, raw))


@fuzz(60)
@given(f=data_files([".npy"]).filter(lambda f: f[1][6:128] == VALID[".npy"][6:128][:max(0, len(f[1]) - 6)]))
def test_load_dataset_damaged_npy_data(tmp_path_factory, f):
    """Truncated .npy files and damaged array bytes (header length and text header intact)."""
    check_load(tmp_path_factory, f)


# Damaged archives and headers: each raised a raw exception (zipfile.BadZipFile, zlib.error,
# tokenize.TokenError, EOFError, NotImplementedError) instead of InputError when this file was written
# (fixed since; kept as regression tests).
@pytest.mark.parametrize("suffix, damage", [
    (".npz", "truncate"), ("-hist.npz", "truncate"), (".npz", "flip member name"),
    ("-images-idx3-ubyte.gz", "flip body"), (".npy", "flip header"),
])
def test_load_dataset_damaged_archives_regression(tmp_path, suffix, damage):
    raw = bytearray(VALID[suffix])
    if damage == "truncate":
        raw = raw[:len(raw) // 2]
    elif damage == "flip member name":
        raw[raw.index(b"images.npy") + 2] ^= 0x20
    elif damage == "flip body":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw[raw.index(b"'descr'")] = ord("(")
    check_load(_Factory(tmp_path), (suffix, bytes(raw)))


@fuzz(40)
@given(f=data_files([".npz", "-hist.npz", "-images-idx3-ubyte.gz", ".npy"]))
def test_load_dataset_damaged_archives(tmp_path_factory, f):
    check_load(tmp_path_factory, f)


class _Factory:
    def __init__(self, root):
        self.root, self.n = root, 0

    def mktemp(self, name):
        self.n += 1
        d = self.root / f"{name}{self.n}"
        d.mkdir()
        return d


@fuzz(30)
@given(name=st.text(max_size=12), limit=st.none() | st.integers(-3, 5))
def test_load_dataset_bad_names(tmp_path_factory, name, limit):
    assume(name != "digits" and "\x00" not in name)  # relative names resolve in the repository: read only
    try:
        load_dataset(name, limit=limit)
    except InputError as exc:
        assert_explained(exc, InputError)


# -- precompute -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(digits):
    return digits.subset(np.arange(12))  # 66 distinct pairs: any valid plan is solved in well under a second


index_specs = st.one_of(st.none(), st.text(alphabet="0123456789:-, ab", max_size=8),
                        st.lists(st.integers(-3, 15), max_size=5))
pair_specs = st.one_of(
    st.none(), st.integers(-5, 80), st.just("all"), st.text(max_size=4),
    st.tuples(st.lists(st.integers(-2, 14), max_size=5), st.lists(st.integers(-2, 14), max_size=5)).map(
        lambda t: (np.array(t[0], dtype=np.int64), np.array(t[1], dtype=np.int64))),
)


def _cache_state_ok(out: Path, error: BaseException | None) -> None:
    """No half-written cache: absent, or a cache whose every shard verifies and no temp file is left."""
    if not out.exists():
        return
    if error is not None and isinstance(error, InputError) and not (out / "manifest.json").exists():
        assert not any(out.iterdir()), f"bad input left files behind: {list(out.iterdir())}"
        return
    c = DistanceCache.open(out)
    c.read()
    assert not list((out / "shards").glob(".tmp-*"))


@fuzz(60)
@given(pairs=pair_specs, images=index_specs, against=index_specs,
       sampling=st.sampled_from(["random", "blocks", "grid", ""]), block_size=st.integers(-2, 20),
       chunk_size=st.integers(-2, 70), p=st.sampled_from([1, 2, 0, 3, -1, True]),
       seed=st.integers(-5, 2 ** 33))
def test_precompute_bad_arguments(tiny, tmp_path_factory, pairs, images, against, sampling, block_size, chunk_size,
                                  p, seed):
    out = tmp_path_factory.mktemp("pc") / "c"
    err = None
    try:
        r = precompute(tiny, out, pairs, images=images, against=against, sampling=sampling, block_size=block_size,
                       chunk_size=chunk_size, p=p, seed=seed, workers=1, progress=False)
    except WassembedError as exc:
        assert_explained(exc)
        err = exc
    else:
        assert r.total_in_cache >= r.computed >= 0 and r.requested >= 1
        t = DistanceCache.open(out).read()
        assert (t.i < t.j).all() and np.isfinite(t.value).all() and (t.value >= 0).all()
    _cache_state_ok(out, err)


@fuzz(30)
@given(data=st.one_of(st.text(max_size=6), st.integers(), st.none(),
                      hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))))
def test_precompute_bad_data(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("pd") / "c"
    assume(not (isinstance(data, str) and data == "digits"))
    err = None
    try:
        precompute(data, out, 5, workers=1, progress=False)
    except WassembedError as exc:
        assert_explained(exc)
        err = exc
    _cache_state_ok(out, err)


@fuzz(40)
@given(lines=st.lists(st.text(alphabet="0123456789 ,-\t.e#", max_size=8), max_size=6),
       fmt=st.sampled_from([".txt", ".csv", ""]))
def test_precompute_bad_pairs_file_text(tiny, tmp_path_factory, lines, fmt):
    d = tmp_path_factory.mktemp("pf")
    f = d / f"pairs{fmt}"
    f.write_text("\n".join(lines))
    check_pairs_file(tiny, f)


def check_pairs_file(tiny, f):
    out = f.parent / "c"
    err = None
    try:
        precompute(tiny, out, pairs_file=f, workers=1, progress=False)
    except WassembedError as exc:
        assert_explained(exc)
        err = exc
    _cache_state_ok(out, err)


@fuzz(40)
@given(arr=hnp.arrays(st.sampled_from([np.int64, np.int32, np.float64, np.int8]),
                      hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
                      elements=st.integers(-2, 14)),
       fmt=st.sampled_from([".npy", ".npz"]))
def test_precompute_bad_pairs_arrays(tiny, tmp_path_factory, arr, fmt):
    f = tmp_path_factory.mktemp("pa") / f"pairs{fmt}"
    if fmt == ".npy":
        np.save(f, arr)
    else:
        flat = arr.reshape(-1)
        np.savez(f, i=flat[: flat.size // 2], j=flat[flat.size // 2:])
    check_pairs_file(tiny, f)


@fuzz(30)
@given(raw=st.binary(max_size=64), fmt=st.sampled_from([".npy", ".npz"]))
def test_precompute_damaged_binary_pairs_file(tiny, tmp_path_factory, raw, fmt):
    """Empty or damaged .npy/.npz pair files: pairs.read_pairs_file let EOFError/BadZipFile through."""
    f = tmp_path_factory.mktemp("pb") / f"pairs{fmt}"
    f.write_bytes(raw)
    check_pairs_file(tiny, f)


@pytest.mark.parametrize("bad", [None, 123, 1.5])
def test_load_dataset_non_path(bad):
    """load_dataset(None) raised TypeError from pathlib instead of InputError."""
    with pytest.raises(InputError, match="fix:"):
        load_dataset(bad)


# -- train ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def train_cache(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("tc") / "cache"
    precompute(digits.subset(np.arange(300)), out, pairs=3000, sampling="blocks", block_size=24, workers=1,
               progress=False)
    return out


WEIRD = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.floats(allow_nan=True, allow_infinity=True))
train_kwargs = st.fixed_dictionaries({}, optional={
    "epochs": st.integers(-2, 2) | WEIRD,
    "batch_images": st.integers(-1, 70) | WEIRD,
    "lr": st.floats(-1, 2) | WEIRD,
    "schedule": st.sampled_from(["cosine", "plateau", "constant", "linear", ""]),
    "patience": st.integers(-2, 3),
    "val_fraction": st.floats(-0.5, 1.5) | st.just(float("nan")),
    "recon_weight": st.floats(-1, 20) | st.just(float("nan")),
    "relative_weight": st.floats(-1, 2) | st.just(float("inf")),
    "augment": st.sampled_from(["", "shift", "flip,rot", "shift,zoom", ",", "rot,rot"]),
    "target_scale": st.sampled_from(["mean", 1.0, 0.0, -1.0, "median"]),
    "batching": st.sampled_from(["groups", "pairs", "nope"]),
    "device": st.sampled_from(["cpu", "auto", "gpu", "cuda:7", ""]),
    "model": st.sampled_from(["fast", "mlp", "huge", ""]),
    "seed": st.integers(-3, 2 ** 40),
    "colour": st.just(1),  # an unknown option
})


@fuzz(30)
@given(kw=train_kwargs)
def test_train_bad_settings(train_cache, tmp_path_factory, kw):
    from wassembed.learn import train

    kw = dict(kw)
    if isinstance(kw.get("epochs"), int) and not isinstance(kw.get("epochs"), bool):
        kw["epochs"] = min(kw["epochs"], 2)
    kw.setdefault("epochs", 1)
    ckpt = tmp_path_factory.mktemp("ck")
    try:
        emb = train(train_cache, checkpoint_dir=ckpt, progress=False, threads=1, **kw)
    except WassembedError as exc:
        assert_explained(exc)
        event(f"refused: {type(exc).__name__}")
        return
    event("trained")
    z = emb.embed(np.random.default_rng(0).random((3, 8, 8)))
    assert np.isfinite(z).all()


@pytest.mark.parametrize("value", [None, "0.1"])
def test_train_val_fraction_wrong_type(train_cache, value):
    """TrainSettings(val_fraction=None) raised TypeError ('<' between int and NoneType) instead of InputError."""
    from wassembed.learn import TrainSettings

    with pytest.raises(InputError, match="val_fraction"):
        TrainSettings(val_fraction=value)


@fuzz(15)
@given(kind=st.sampled_from(["missing", "file", "empty dir", "empty cache", "not a cache"]))
def test_train_bad_cache(tmp_path_factory, small_digits, kind):
    from wassembed.learn import train

    d = tmp_path_factory.mktemp("bc")
    target = d / "c"
    if kind == "file":
        target.write_text("x")
    elif kind == "empty dir":
        target.mkdir()
    elif kind == "empty cache":
        from wassembed.exact import DistanceCache as DC

        DC.create(target, small_digits, 2)
    elif kind == "not a cache":
        target.mkdir()
        (target / "manifest.json").write_text("{not json")
    with pytest.raises(WassembedError) as ei:
        train(target, epochs=1, progress=False)
    assert_explained(ei.value)


# -- the served model -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model():
    from wassembed.serve import WassersteinEmbedding

    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(36, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
    dec = torch.nn.Linear(4, 36)
    return WassersteinEmbedding(enc, dec, config=None, p=2, grid=(6, 6))


@st.composite
def model_inputs(draw, n=None, kinds=("raw", "weird", "valid", "valid", "damaged", "wrong shape")):
    """Raw arrays and objects, or well-formed inputs (images or histograms) possibly damaged in one value."""
    kind = draw(st.sampled_from(kinds))
    if kind == "raw":
        return draw(raw_arrays())
    if kind == "weird":
        return draw(weird_objects())
    n = draw(st.integers(1, 5)) if n is None else n
    shape = draw(st.sampled_from([(n, 6, 6), (n, 36)] + ([(6, 6), (36,)] if n == 1 else [])))
    if kind == "wrong shape":
        shape = draw(st.sampled_from([(n, 5, 6), (n, 35), (n, 6, 6, 1), (0, 36)]))
    X = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1e6) | st.just(0.0)))
    if X.size and kind != "wrong shape":
        X.reshape(-1)[draw(st.integers(0, X.size - 1))] += 1.0  # at least one positive value
    if kind == "damaged" and X.size:
        X.reshape(-1)[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -1.0, 1e300]))
    return X


def _served_ok(fn, n_expected=None):
    try:
        out = fn()
    except InputError as exc:
        assert_explained(exc, InputError)
        event("refused")
        return None
    event("served")
    out = np.asarray(out)
    assert np.isfinite(out).all(), out
    return out


@fuzz(120)
@given(X=model_inputs())
def test_embed_bad_inputs(tiny_model, X):
    out = _served_ok(lambda: tiny_model.embed(X))
    if out is not None:
        assert out.ndim == 2 and out.shape[1] == 4 and out.shape[0] >= 1


@fuzz(120)
@given(X=model_inputs() | model_inputs(kinds=("valid", "damaged")), data=st.data(), root=st.booleans())
def test_distance_bad_inputs(tiny_model, X, data, root):
    n = np.shape(X)[0] if isinstance(X, np.ndarray) and X.ndim >= 2 and X.shape[0] >= 1 else None
    Y = data.draw(model_inputs(n=n, kinds=("valid", "damaged", "wrong shape")) | model_inputs(n=1)
                  | model_inputs())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _served_ok(lambda: tiny_model.distance(X, Y, root=root))
    if out is not None:
        assert out.ndim == 1 and (out >= 0).all()
