"""The public API is small and says one thing one way: what each ``__all__`` lists, one result type for
neighbours, one default for exact re-ranking, one meaning per parameter name, one return type for
``distance``, one loader."""

from __future__ import annotations

import importlib
import inspect
import warnings

import numpy as np
import pytest

SUBPACKAGES = ("wassembed", "wassembed.data", "wassembed.exact", "wassembed.nn", "wassembed.learn",
               "wassembed.serve", "wassembed.index", "wassembed.bench", "wassembed.demo", "wassembed.cli")

#: internals the review found exported (and the like): each stays importable from its private module only
INTERNALS = ("chunk_key", "canonical", "plan_units", "safe_sqrt", "save_checkpoint", "load_checkpoint",
             "plan_pairs", "random_pairs", "parse_range", "default_workers", "DWELoss", "pack_batches",
             "conformal_quantile", "ConformalCalibrator", "save_model", "FORMAT_VERSION", "KNNResult", "load_model",
             "resolve_device", "as_dataset", "kind_class", "write_report")


def _public(name: str) -> list[str]:
    pytest.importorskip("torch")
    return list(importlib.import_module(name).__all__)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_name_exists_and_no_internal_is_public(name):
    mod = importlib.import_module(name)
    public = _public(name)
    assert len(public) == len(set(public))
    for attr in public:
        assert getattr(mod, attr) is not None, (name, attr)
    assert not set(public) & set(INTERNALS), (name, sorted(set(public) & set(INTERNALS)))


def test_the_public_api_is_small():
    counts = {name: len(_public(name)) for name in SUBPACKAGES}
    assert sum(counts.values()) <= 90, counts  # 131 before the review's clean-up


def _serving_methods():
    pytest.importorskip("torch")
    from wassembed.exact import LinearOT
    from wassembed.index import ReferenceIndex, build_index
    from wassembed.serve import CloudEmbedding, WassersteinEmbedding

    for cls in (WassersteinEmbedding, CloudEmbedding):
        for meth in ("distance", "interval", "cdist", "pdist", "kneighbors", "embed", "decode", "ood_score"):
            yield f"{cls.__name__}.{meth}", getattr(cls, meth)
    yield "ReferenceIndex.kneighbors", ReferenceIndex.kneighbors
    yield "build_index", build_index
    yield "LinearOT.kneighbors", LinearOT.kneighbors


def test_one_meaning_per_parameter_name():
    """``block_size`` is the group size of the "blocks" sampling (precompute) only; serving tiles are
    ``tile_size``, index blocks ``references_per_block``, encoder passes ``batch_size``."""
    from wassembed.exact import precompute

    for where, fn in _serving_methods():
        params = set(inspect.signature(fn).parameters)
        assert not params & {"block_size", "block", "query_block", "search_block"}, (where, params)
    assert "block_size" in inspect.signature(precompute).parameters


def test_one_default_for_exact_reranking_and_one_return_type_for_distance():
    for where, fn in _serving_methods():
        sig = inspect.signature(fn)
        if "exact_rerank" in sig.parameters:
            assert sig.parameters["exact_rerank"].default is False, where
        if where.endswith(".distance"):
            assert "interval" not in sig.parameters, where


def test_linear_ot_neighbours_are_the_one_result_type():
    from wassembed._results import Neighbors
    from wassembed.exact import LinearOT

    lot = LinearOT(np.array([[0.0], [1.0], [2.0]])).fit(np.eye(3))
    E = lot.transform(np.eye(3))
    res = lot.kneighbors(E, E, k=2)
    dist, ind = res  # scikit-learn's order
    assert isinstance(res, Neighbors) and dist is res.distances and ind is res.indices and not res.exact
    assert ind[:, 0].tolist() == [0, 1, 2] and np.all(dist[:, 0] <= dist[:, 1])


def test_one_loader_and_the_deprecated_names(tmp_path):
    pytest.importorskip("torch")
    import wassembed
    import wassembed.learn
    from wassembed.nn import ModelConfig, build_decoder, build_encoder
    from wassembed.serve import WassersteinEmbedding, load

    assert wassembed.load is load
    cfg = ModelConfig.preset("mlp", grid=(3, 3), hidden=(4,), embed_dim=2)
    WassersteinEmbedding(build_encoder(cfg, seed=0), build_decoder(cfg, seed=0), config=cfg, p=2,
                         grid=(3, 3)).save(tmp_path / "m")
    assert isinstance(load(tmp_path / "m"), WassersteinEmbedding)
    with pytest.warns(DeprecationWarning, match=r"use wassembed\.load"):
        WassersteinEmbedding.load(tmp_path / "m")
    with pytest.warns(DeprecationWarning, match="WassersteinTransformer"):
        old = wassembed.learn.WassersteinEmbedder
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wassembed.learn.WassersteinTransformer is old
