"""Integrity of a cache's description: ``manifest.json`` (its fields) and ``data.npz`` (the stored data).

A damaged part is described by a :class:`Damage` (the part, the file, a one-line message that names the file
and says what to do). The manifest is checked on its own when a cache is opened (readable JSON, the fields
and their types, ``p`` agreeing with the quantity and the ground cost); the stored data is checked against
the manifest when it is loaded: its fingerprint, ``p``, the ground cost, its kind and sizes (``n`` and ``k`` for
histograms; ``n``, ``d``, the number of points and the smallest and largest cloud for point clouds). When they
disagree, the manifest's record of ``data.npz``'s sha256 says which side changed: an intact ``data.npz``
means the manifest was edited, and the message names the field and the value to restore.

Format versions: 1 (histograms only, no ``dataset.kind``) and 2 (``dataset.kind``: ``histograms`` or
``point_clouds``) are read; new caches are written as version 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import file_sha256
from ..data import DAMAGED_FILE_ERRORS, HISTOGRAMS, DataSet, data_kinds, kind_class, quantity_name, read_stored
from ..errors import CacheError, explain
from ._datakind import manifest_kind

__all__ = ["Damage", "FORMAT", "FORMAT_VERSION", "READABLE_VERSIONS", "check_data", "load_data",
           "manifest_consistency", "parse_manifest", "quantity_name", "read_manifest"]

FORMAT = "wassembed-cache"
#: the version new caches are written with (2: the manifest records the kind of data)
FORMAT_VERSION = 2
#: the versions this wassembed reads (1: histograms only, written before point clouds)
READABLE_VERSIONS = (1, 2)

REBUILD = "rebuild the cache into a new directory (`wassembed precompute DATA --out NEW_CACHE`, same options)"
DATA_FIX = f"restore data.npz from a copy of the cache, or {REBUILD}"


@dataclass(frozen=True)
class Damage:
    """One damaged part of a cache.

    Attributes
    ----------
    part : str
        ``"manifest"``, ``"data"``, ``"plan"``, ``"shard"`` or ``"claim"``.
    file : str
        The damaged file (full path).
    problem : str
        One line (``explain`` format) naming the file, what is wrong and how to fix it.
    """

    part: str
    file: str
    problem: str

    def as_dict(self) -> dict:
        return {"part": self.part, "file": self.file, "problem": self.problem}

    def error(self) -> CacheError:
        """The error to raise for this damage."""
        return CacheError(self.problem)


# -- manifest.json on its own -----------------------------------------------------------------------
_MANIFEST_FIX = f"restore manifest.json from a copy of the cache, or {REBUILD}"
_TOP = {"p": int, "quantity": str, "ground_cost": str, "dataset": dict}
_TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object"}


def _field_problems(m: dict) -> list[tuple[str, str, str]]:
    """(field, expected, received) for every missing or mistyped field of a parsed manifest."""
    ds = m.get("dataset")
    kind = ds.get("kind", HISTOGRAMS) if isinstance(ds, dict) else HISTOGRAMS
    if kind not in data_kinds():
        return [("dataset.kind", " or ".join(data_kinds()), repr(kind)[:60])]
    cls, out = kind_class(kind), []
    for table, where, fields in ((m, "", _TOP), (ds, "dataset.", cls.manifest_fields)):
        if not isinstance(table, dict):
            continue
        for key, typ in fields.items():
            v = table.get(key)
            if not isinstance(v, typ) or isinstance(v, bool):
                out.append((where + key, _TYPE_NAMES[typ], "nothing" if key not in table else repr(v)[:60]))
    if not out:
        size = cls.size_field
        if m["p"] not in (1, 2):
            out.append(("p", "1 or 2", repr(m["p"])))
        if ds["n"] < 1 or ds[size] < 1:
            out.append((f"dataset.n/{size}", "positive counts", f"n={ds['n']}, {size}={ds[size]}"))
        out += cls.record_problems(ds)
    return out


def _self_consistency(m: dict) -> list[tuple[str, str, str]]:
    """(field, value for p, value found): quantity and ground cost that do not belong to the manifest's ``p``."""
    quantity, cost = kind_class(manifest_kind(m)).record_cost_names(m["dataset"], m["p"])
    return [(key, want, m[key]) for key, want in (("quantity", quantity), ("ground_cost", cost)) if m[key] != want]


def parse_manifest(root: Path) -> dict:
    """Read ``root/manifest.json`` and check its format and fields (not yet against the data).

    Raises
    ------
    CacheError
        Naming the file, and the field when one is missing or has the wrong type.
    """
    mpath = root / "manifest.json"
    if not mpath.exists():
        raise CacheError(explain(f"{root} is not a wassembed cache", expected="a directory with manifest.json",
                                 received="no manifest" if root.exists() else "no such directory",
                                 fix="create it with `wassembed precompute DATA --out CACHE`"))
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise CacheError(explain(f"unreadable manifest {mpath}", expected="valid JSON",
                                 received=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                                 fix=_MANIFEST_FIX)) from None
    if not isinstance(manifest, dict):
        raise CacheError(explain(f"unreadable manifest {mpath}", expected="a JSON object",
                                 received=type(manifest).__name__, fix=_MANIFEST_FIX))
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in READABLE_VERSIONS:
        raise CacheError(explain(f"unsupported cache format in {mpath}",
                                 expected=f"{FORMAT} version {' or '.join(map(str, READABLE_VERSIONS))}",
                                 received=f"{manifest.get('format')} version {manifest.get('format_version')}",
                                 fix="rebuild the cache with this version of wassembed"))
    bad = _field_problems(manifest)
    if bad:
        field, want, got = bad[0]
        raise CacheError(explain(f"damaged manifest {mpath}: field {field}", expected=want, received=got,
                                 fix=_MANIFEST_FIX))
    return manifest


def manifest_consistency(root: Path, manifest: dict) -> list[Damage]:
    """A quantity or ground cost that does not belong to the manifest's own ``p`` (no data needed)."""
    return [_edited(root / "manifest.json", field, want, got, f"the value for p={manifest['p']}")
            for field, want, got in _self_consistency(manifest)]


def read_manifest(root: Path) -> dict:
    """Read and check ``root/manifest.json``: :class:`CacheError` naming the file and the field if damaged.

    A manifest whose ``p`` disagrees with its quantity or ground cost is checked against the stored data, so
    that the message says which field was changed (``p``, or the quantity or ground cost).
    """
    manifest = parse_manifest(root)
    if _self_consistency(manifest):
        _, damage = check_data(root, manifest)  # data.npz tells which field changed
        raise (damage or manifest_consistency(root, manifest))[0].error()
    return manifest


# -- data.npz against the manifest ------------------------------------------------------------------
def _data_file(root: Path, manifest: dict) -> Path:
    name = manifest["dataset"].get("file", "data.npz")
    return root / (Path(name).name if isinstance(name, str) and name else "data.npz")


def _edited(mpath: Path, field: str, want, got, why: str) -> Damage:
    shown = json.dumps(want)
    return Damage("manifest", str(mpath), explain(
        f"damaged manifest {mpath}: field {field} was edited", expected=f"{shown} ({why})", received=json.dumps(got),
        fix=f'set "{field.split(".")[-1]}": {shown} in {mpath}, or {REBUILD}'))


def _altered(f: Path, manifest: dict, data: DataSet, sha: str) -> Damage:
    ds = manifest["dataset"]
    return Damage("data", str(f), explain(
        f"stored data {f} was altered: it does not match the manifest",
        expected=f"the data of fingerprint {ds['fingerprint'][:12]}… (sha256 {str(ds.get('sha256'))[:12]}…)",
        received=f"data of fingerprint {data.fingerprint(manifest['p'])[:12]}… (sha256 {sha[:12]}…)",
        fix=DATA_FIX))


def _fingerprint_damage(root: Path, f: Path, manifest: dict, data: DataSet) -> Damage:
    """The manifest's fingerprint is not the data's: which side changed."""
    ds, p, mpath = manifest["dataset"], manifest["p"], root / "manifest.json"
    sha = file_sha256(f)
    if ds.get("sha256") != sha:
        return _altered(f, manifest, data, sha)
    other = 3 - p
    if data.fingerprint(other) != data.fingerprint(p) and data.fingerprint(other) == ds["fingerprint"]:
        return _edited(mpath, "p", other, p, f"data.npz is intact and its fingerprint was made with p={other}")
    return _edited(mpath, "dataset.fingerprint", data.fingerprint(p), ds["fingerprint"],
                   "the fingerprint of data.npz, whose sha256 matches the manifest: the data is intact")


def _read_data_file(f: Path, name: str) -> tuple[DataSet, int | None]:
    """Read a cache's ``data.npz``: ``(data, p stored with it)``, the kind read from the file itself. Damage
    raises what numpy, zipfile and zlib raise, or :class:`~wassembed.errors.InputError` (a ``ValueError``)."""
    with np.load(f, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return read_stored(arrays, name, source=str(f))


def check_data(root: Path, manifest: dict) -> tuple[DataSet | None, list[Damage]]:
    """Load ``data.npz`` and compare it with the manifest (fingerprint, ``p``, ground cost, kind and sizes).

    Returns
    -------
    data : HistogramSet, PointCloudSet or None
        None when ``data.npz`` is missing or unreadable.
    damage : list of Damage
        Empty when the data and the manifest agree.
    """
    f = _data_file(root, manifest)
    if not f.is_file():
        return None, [Damage("data", str(f), explain(f"cache {root} has no stored data", expected=f.name,
                                                     received="missing file", fix=DATA_FIX))]
    try:
        data, stored_p = _read_data_file(f, manifest["dataset"]["name"])
    except DAMAGED_FILE_ERRORS as exc:  # zip, zlib, npy header errors; InputError is a ValueError
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        what = kind_class(manifest_kind(manifest)).noun
        return None, [Damage("data", str(f), explain(
            f"stored data {f} is unreadable", expected=f"the .npz of {what} written by precompute",
            received=f"{type(exc).__name__}: {first}", fix=DATA_FIX))]
    p, ds, mpath = manifest["p"], manifest["dataset"], root / "manifest.json"
    if data.fingerprint(p) != ds["fingerprint"]:
        return data, [_fingerprint_damage(root, f, manifest, data)]
    damage = []
    for field, want in data.stored_facts(p, stored_p):
        table = ds if field.startswith("dataset.") else manifest
        key = field.split(".")[-1]
        if key in table and table[key] != want:
            damage.append(_edited(mpath, field, want, table[key], "the value of data.npz, which matches the "
                                                                   "fingerprint"))
            if field == "p":  # the quantity and the ground cost follow p: restoring p comes first
                break
    if damage and ds.get("sha256") != (sha := file_sha256(f)):  # the data changed, not the manifest
        return data, [_altered(f, manifest, data, sha)]
    return data, damage


def load_data(root: Path, manifest: dict) -> DataSet:
    """The stored data, checked against the manifest; :class:`CacheError` names the wrong file."""
    data, damage = check_data(root, manifest)
    if damage:
        raise damage[0].error()
    assert data is not None
    return data
