"""Commands of a trained model: ``wassembed evaluate``, ``embed``, ``distance`` and ``knn``.

Thin wrappers over :class:`~wassembed.serve.WassersteinEmbedding`. Arrays go to ``--out`` (or, for
``embed``/``distance`` without ``--out``, as ``.npy`` bytes to a non-terminal stdout); tables and JSON go to
stdout; logs to stderr. Bad input exits with code 2, other wassembed errors with 1. Torch is imported only
inside the command bodies (the command group checks that it is installed first).
"""

from __future__ import annotations

import json
import sys

import click

from ._common import echo_json
from ._common import handle_errors as _errors


def _log(msg: str) -> None:
    click.echo(msg, err=True)


def _load_model(path: str, device: str):
    from ..serve import load

    return load(path, device=device)


def _load_data(spec: str, limit: int | None, option: str):
    """Images ``(n, H, W)`` (so a grid mismatch is reported as such), histograms ``(n, k)``, or the
    :class:`~wassembed.data.PointCloudSet` of a ragged ``.npz``."""
    from .._validation import check_pos_int
    from ..data import load_dataset

    if limit is not None:
        limit = check_pos_int(option, limit, example=100)
    return load_dataset(spec, limit=limit).model_inputs()


def _write_array(arr, out: str | None, what: str) -> None:
    import numpy as np

    if out is None or out == "-":
        sys.stdout.flush()
        stream = getattr(sys.stdout, "buffer", sys.stdout)
        if stream.isatty():
            raise click.UsageError("refusing to write binary .npy data to a terminal: pass --out FILE.npy")
        np.save(stream, arr)
        stream.flush()
        _log(f"wrote {what} {arr.shape} {arr.dtype} to stdout (.npy)")
        return
    np.save(out, arr)
    _log(f"wrote {what} {arr.shape} {arr.dtype} to {out if out.endswith('.npy') else out + '.npy'}")


_device = click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
                       help="Where the network runs.")
_batch = click.option("--batch-size", default=None, type=click.IntRange(min=1),
                      help="Inputs per forward pass [default: 256 on CPU, 4096 on CUDA].")
_model = click.argument("model", type=click.Path(exists=True))

#: what these commands call the serving API's names (see handle_errors): its input arrays are the files the
#: user named, and its Python-only remedies are flags or commands
_SERVE_WORDS = {"wassembed.train": "`wassembed train`"}
_EMBED_WORDS = {**_SERVE_WORDS, "X": "{data}"}
_DISTANCE_WORDS = {**_SERVE_WORDS, "cdist(X, Y)": "--matrix", "X": "{a}", "Y": "{b}", "XA": "{a}", "XB": "{b}",
                   "warn_ood=False": "--no-ood-warning", "level": "--interval"}
_KNN_WORDS = {**_SERVE_WORDS, "Q": "{query}", "R": "{reference}"}


@click.command("embed")
@_model
@click.argument("data")
@click.option("--out", "-o", default=None, help="Output .npy (default: .npy bytes to stdout).")
@click.option("--limit", default=None, type=int, help="Only the first N inputs.")
@_device
@_batch
@_errors(words=_EMBED_WORDS)
def embed_cmd(model, data, out, limit, device, batch_size):
    """Embed the images or histograms of DATA (a data file or 'digits') with MODEL: (n, d) float32."""
    emb = _load_model(model, device)
    X = _load_data(data, limit, "--limit")
    _write_array(emb.embed(X, batch_size=batch_size), out, "embeddings")


@click.command("distance")
@_model
@click.argument("a")
@click.argument("b")
@click.option("--out", "-o", default=None, help="Output .npy (default: .npy bytes to stdout).")
@click.option("--matrix", is_flag=True, help="All pairs (nA, nB) instead of paired rows.")
@click.option("--root", is_flag=True, help="W_p instead of W_p^p (the cache's units).")
@click.option("--interval", default=None, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Paired only: also conformal bounds at this coverage level; output (n, 3) = "
                   "estimate, lower, upper.")
@click.option("--no-ood-warning", is_flag=True, help="Skip the out-of-distribution check.")
@click.option("--a-limit", default=None, type=int, help="Only the first N inputs of A.")
@click.option("--b-limit", default=None, type=int, help="Only the first N inputs of B.")
@click.option("--tile-size", default=2048, show_default=True, type=click.IntRange(min=1),
              help="With --matrix: the matrix is computed in tiles of N × N (memory beyond the output: one tile).")
@_device
@_batch
@_errors(words=_DISTANCE_WORDS)
def distance_cmd(model, a, b, out, matrix, root, interval, no_ood_warning, a_limit, b_limit, tile_size,
                 device, batch_size):
    """Estimated W_p^p between the rows of A and B (paired, or all pairs with --matrix).

    Warnings (inputs out of distribution, error bars on few pairs) go to stderr as ``warning: ...`` lines."""
    import numpy as np

    if matrix and interval is not None:
        raise click.UsageError("--interval applies to paired distances, not to --matrix")
    emb = _load_model(model, device)
    XA, XB = _load_data(a, a_limit, "--a-limit"), _load_data(b, b_limit, "--b-limit")
    if matrix:
        D = emb.cdist(XA, XB, root=root, tile_size=tile_size, batch_size=batch_size)
        _write_array(D, out, "distance matrix")
        return
    kw = dict(root=root, warn_ood=not no_ood_warning, batch_size=batch_size)
    if interval is None:
        _write_array(emb.distance(XA, XB, **kw), out, "distances")
        return
    res = emb.interval(XA, XB, interval, **kw)
    _write_array(np.stack([res.estimate, res.lower, res.upper], axis=1), out, "distances")


@click.command("knn")
@_model
@click.argument("query")
@click.argument("reference")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="Neighbours.")
@click.option("--exact-rerank", is_flag=True, help="Re-score candidates with the exact solver.")
@click.option("--level", default=0.99, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Coverage level of the conformal lower bounds (adaptive re-ranking).")
@click.option("--n-candidates", default=None, type=click.IntRange(min=1),
              help="Fixed number of candidates to re-rank (instead of the adaptive rule).")
@click.option("--query-limit", default=None, type=int, help="Only the first N queries.")
@click.option("--reference-limit", default=None, type=int, help="Only the first N references.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@click.option("--out", "-o", default=None, help="Also save distances/indices to this .npz.")
@_device
@_batch
@_errors(words=_KNN_WORDS)
def knn_cmd(model, query, reference, k, exact_rerank, level, n_candidates, query_limit, reference_limit,
            as_json, out, device, batch_size):
    """The k nearest REFERENCE inputs of each QUERY input (indices are 0-based rows of REFERENCE)."""
    import numpy as np

    emb = _load_model(model, device)
    Q, R = (_load_data(query, query_limit, "--query-limit"),
            _load_data(reference, reference_limit, "--reference-limit"))
    res = emb.kneighbors(Q, R, k=k, exact_rerank=exact_rerank, level=level, n_candidates=n_candidates,
                         batch_size=batch_size)
    if exact_rerank:
        _log(f"exact solves: {res.n_exact} for {len(res.indices)} queries "
             f"({res.n_exact / max(len(res.indices), 1):.1f} per query)")
    if out is not None:
        np.savez(out, distances=res.distances, indices=res.indices, n_exact_per_query=res.n_exact_per_query)
        _log(f"wrote {out}")
    if as_json:
        click.echo(json.dumps({"k": k, "exact": res.exact, "n_exact": res.n_exact,
                               "distances": np.asarray(res.distances, dtype=np.float64).tolist(),
                               "indices": np.asarray(res.indices).tolist()}))
        return
    lines = ["query\trank\tindex\tdistance"]
    for q, (row_d, row_i) in enumerate(zip(*res)):
        lines.extend(f"{q}\t{r}\t{int(i)}\t{float(v):.6g}" for r, (v, i) in enumerate(zip(row_d, row_i)))
    click.echo("\n".join(lines))


@click.command("evaluate")
@click.argument("model", type=click.Path(file_okay=False))
@click.argument("cache", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object to stdout.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu or cuda.")
@_errors
def evaluate_cmd(model, cache, as_json, device):
    """Accuracy of MODEL on the pairs of CACHE whose images were not used in training."""
    from ..serve import evaluate as _evaluate

    m = _evaluate(_load_model(model, device), cache)
    if m["n_dropped"]:
        click.echo(f"dropped {m['n_dropped']} pairs touching training images", err=True)
    if as_json:
        echo_json(m)
        return
    for k, v in m.items():
        click.echo(f"{k:<20} {v:.6g}" if isinstance(v, float) else f"{k:<20} {v}")

