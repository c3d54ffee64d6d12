"""The posterior file's schema: the one module that writes and reads it.

A posterior file is an ``xarray.DataTree`` in NetCDF (ArviZ 1 convention) with groups
``posterior``, ``sample_stats``, ``observed_data`` (the losses, ``loss`` by ``row``) and
``constant_data`` (N, D, run labels, source rows, by ``row``), and two root attributes:
``bayescale``, JSON metadata (law, likelihood, priors, centring, sampler options, diagnostics,
calibration, the input's path and sha256, versions; ``fitted_epochs``, the [min, max] epochs
D / U of fitted rows with unique tokens), ``bayescale_sha256``, the digest of the
arrays, and ``bayescale_sha256_meta``, the digest of the arrays and the metadata, so that a
damaged or edited file fails to load. Files written by earlier versions (the arrays' digest only)
load unchanged, their arrays checked; every file's metadata is checked against its schema
(:func:`validate_meta`) on load.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import atomic_path
from bayescale.data.ranges import epochs
from bayescale.law.likelihoods import LIKELIHOODS
from bayescale.law.priors import FAMILIES

#: Root attribute with the JSON metadata.
META_KEY = "bayescale"
#: Root attribute with the sha256 of the stored arrays (every version writes it).
DIGEST_KEY = "bayescale_sha256"
#: Root attribute with the sha256 of the arrays and the metadata (newer files).
FULL_DIGEST_KEY = "bayescale_sha256_meta"
#: Metadata entry with the [min, max] epochs (D / U) of the fitted rows with unique tokens.
EPOCHS_KEY = "fitted_epochs"
#: Suffixes of run tables, named when one is given where a posterior file is expected.
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".json", ".jsonl")


def content_digest(tree: Any) -> str:
    """sha256 over the name, shape and values of every data variable of every group.

    Numbers are hashed as float64, so the digest survives a NetCDF round trip.

    Examples
    --------
    >>> import xarray as xr
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"E": ("draw", [1.8, 1.9])})})
    >>> len(content_digest(tree))
    64
    """
    digest = hashlib.sha256()
    for node in sorted(tree.subtree, key=lambda n: n.path):
        dataset = node.dataset
        for name in sorted(map(str, dataset.data_vars)):
            values = np.asarray(dataset[name].values)
            digest.update(f"{node.path}/{name}{values.shape}".encode())
            if values.dtype.kind in "biuf":
                digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
            else:
                digest.update("\x00".join(map(str, values.ravel())).encode())
    return digest.hexdigest()


def full_digest(tree: Any, arrays: str | None = None) -> str:
    """sha256 of the arrays' digest and the metadata's JSON text: an edit of either shows.

    Examples
    --------
    >>> import xarray as xr
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"E": ("draw", [1.8])})})
    >>> tree.attrs = {META_KEY: '{"law": "chinchilla"}'}
    >>> len(full_digest(tree))
    64
    """
    arrays = content_digest(tree) if arrays is None else arrays  # given: hashed once
    text = f"{arrays}\n{tree.attrs.get(META_KEY, '')}"
    return hashlib.sha256(text.encode()).hexdigest()


class _Schema:
    """Checks of the metadata's entries; each failure names the entry."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    @staticmethod
    def fail(key: str, want: str, value: Any) -> BayescaleError:
        shown = json.dumps(value)[:60]
        return BayescaleError(f"the metadata entry '{key}' must be {want}, got {shown}: the "
                              "file was edited or damaged; fit again")

    def number(self, key: str, value: Any, *, none: bool = False) -> None:
        if value is None and none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise self.fail(key, "a finite number" + (" or null" if none else ""), value)

    def statistic(self, key: str, value: Any) -> None:
        """A number, null or NaN (statistics of one chain are NaN)."""
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self.fail(key, "a number or null", value)

    def kind(self, key: str, value: Any, kind: type | tuple[type, ...], want: str) -> None:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.fail(key, want, value)

    def numbers(self, key: str, value: Any) -> None:
        self.kind(key, value, dict, "a table of numbers")
        for name, item in value.items():
            self.number(f"{key}.{name}", item)

    def calibration(self, key: str, value: Any) -> None:
        self.kind(key, value, dict, "a table")
        for name in ("drift", "drift_sd", "scale"):
            if name not in value:
                raise self.fail(key, f"a table with '{name}'", value)
            self.number(f"{key}.{name}", value[name])
        self.kind(f"{key}.ranges", value.get("ranges", {}), dict, "a table")
        for name, item in value.get("ranges", {}).items():
            self.kind(f"{key}.ranges.{name}", item, list, "a list of numbers")
            for number in item:
                self.number(f"{key}.ranges.{name}", number)
        self.kind(f"{key}.origins", value.get("origins", []), list, "a list")
        for i, origin in enumerate(value.get("origins", [])):
            self.kind(f"{key}.origins[{i}]", origin, dict, "a table")
        for name in ("prior", "point_fit"):
            self.kind(f"{key}.{name}", value.get(name, {}), dict, "a table")
        self.kind(f"{key}.method", value.get("method", ""), str, "a string")
        self.kind(f"{key}.families", value.get("families", {}), dict, "a table")
        for name, item in value.get("families", {}).items():
            if item:
                self.calibration(f"{key}.families.{name}", item)
        known = {"drift", "drift_sd", "scale", "ranges", "origins", "prior", "method",
                 "families", "point_fit"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", "absent (not a calibration entry)",
                            value[unknown[0]])

    def priors(self, value: Any) -> None:
        self.kind("priors", value, dict, "a table")
        for name, prior in value.items():
            key = f"priors.{name}"
            self.kind(key, prior, dict, "a table with 'dist' and 'params'")
            if prior.get("dist") not in FAMILIES:
                raise self.fail(f"{key}.dist", f"one of {', '.join(FAMILIES)}",
                                prior.get("dist"))
            self.numbers(f"{key}.params", prior.get("params"))

    def check(self) -> None:
        meta = self.meta
        self.kind("law", meta.get("law"), str, "the name of a law")  # get_law names the laws
        if "likelihood" in meta and meta["likelihood"] not in LIKELIHOODS:
            raise self.fail("likelihood", f"one of {', '.join(LIKELIHOODS)}",
                            meta["likelihood"])
        if "priors" in meta:
            self.priors(meta["priors"])
        if "centring" in meta:
            self.kind("centring", meta["centring"], dict, "a table with n0 and d0")
            for name in ("n0", "d0"):
                self.number(f"centring.{name}", meta["centring"].get(name))
        if "seed_noise" in meta:
            self.number("seed_noise", meta["seed_noise"], none=True)
        for name in ("families", "separate_e", "seed_noise_identified"):
            if name in meta:
                self.kind(name, meta[name], bool, "true or false")
        if "unused_priors" in meta:
            self.kind("unused_priors", meta["unused_priors"], dict, "a table of reasons")
            for name, why in meta["unused_priors"].items():
                self.kind(f"unused_priors.{name}", why, str, "a reason")
        for name in ("seed_noise_prior_families",):
            if name in meta:
                self.kind(name, meta[name], list, "a list of names")
                for item in meta[name]:
                    self.kind(name, item, str, "a list of names")
        for name in ("sampler", "versions"):
            if name in meta:
                self.kind(name, meta[name], dict, "a table")
        if "diagnostics" in meta:
            self.kind("diagnostics", meta["diagnostics"], dict, "a table")
            for name, item in meta["diagnostics"].items():
                if name == "problems":
                    self.kind("diagnostics.problems", item, list, "a list of lines")
                elif not isinstance(item, (list, dict)):
                    self.statistic(f"diagnostics.{name}", item)
        if meta.get("calibration") is not None:
            self.calibration("calibration", meta["calibration"])
        if EPOCHS_KEY in meta:
            value = meta[EPOCHS_KEY]
            self.kind(EPOCHS_KEY, value, list, "a list [min, max] of epochs")
            for number in value:
                self.number(EPOCHS_KEY, number)
            if len(value) != 2 or not 1.0 <= value[0] <= value[1]:
                raise self.fail(EPOCHS_KEY, "[min, max] epochs with 1 <= min <= max", value)
        if "input" in meta:
            source = meta["input"]
            self.kind("input", source, dict, "a table")
            for name in ("path", "sha256"):
                if name in source:
                    self.kind(f"input.{name}", source[name], str, "a string")
            for name in ("n_rows", "n_runs"):
                if name in source:
                    self.kind(f"input.{name}", source[name], int, "a whole number")
            if "columns" in source:
                self.kind("input.columns", source["columns"], dict, "a table")
        for name in ("created", "bayescale_version"):
            if name in meta:
                self.kind(name, meta[name], str, "a string")


def validate_meta(meta: Any) -> dict[str, Any]:
    """``meta`` if its entries have the schema's types; else one error naming the entry.

    Examples
    --------
    >>> validate_meta({"law": "chinchilla", "calibration": None})["law"]
    'chinchilla'
    >>> validate_meta({"law": "chinchilla", "calibration": {"drift": "x"}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: the metadata entry 'calibration.drift' must be a ...
    """
    if not isinstance(meta, dict):
        raise _Schema.fail("(root)", "a table", meta)
    _Schema(meta).check()
    return meta


def assemble(draws: Any, data: pd.DataFrame, meta: dict[str, Any],
             sample_stats: Any = None) -> Any:
    """The file's tree from the posterior draws (an ``xarray.Dataset``), the fitted table
    (``params``, ``tokens``, ``loss`` and labels; ``run`` per row), the metadata and the
    sampler's statistics. Object-typed statistics, which NetCDF cannot hold, are dropped.

    Examples
    --------
    >>> import xarray as xr
    >>> frame = pd.DataFrame({"params": [1e9], "tokens": [2e10], "loss": [2.5]})
    >>> tree = assemble(xr.Dataset({"E": (("chain", "draw"), [[1.8]])}), frame, {"law": "x"})
    >>> sorted(tree.children), read_meta(tree)
    (['constant_data', 'observed_data', 'posterior'], {'law': 'x'})
    """
    import xarray as xr

    groups = {"posterior": draws}
    if sample_stats is not None:
        drop = [v for v in sample_stats.data_vars if sample_stats[v].dtype == object]
        groups["sample_stats"] = sample_stats.drop_vars(drop)
    groups |= {
        "constant_data": xr.Dataset({name: ("row", data[name].to_numpy())
                                     for name in data.columns if name != "loss"}),
        "observed_data": xr.Dataset({"loss": ("row", data["loss"].to_numpy())}),
    }
    tree = xr.DataTree.from_dict(groups)
    if "unique_tokens" in data and EPOCHS_KEY not in meta:
        meta = {**meta, EPOCHS_KEY: _epochs_range(data["tokens"], data["unique_tokens"])}
    tree.attrs = {META_KEY: json.dumps(meta)}
    return tree


def _epochs_range(tokens: Any, unique_tokens: Any) -> list[float]:
    values = epochs(np.asarray(tokens, dtype=float), np.asarray(unique_tokens, dtype=float))
    return [float(values.min()), float(values.max())]


def fitted_epochs(tree: Any) -> list[float] | None:
    """[min, max] epochs (D / U) of the fitted rows: the file's ``fitted_epochs`` entry
    (written by :func:`assemble` when the rows have unique tokens), else from its rows (files of
    earlier versions); None when the rows have no unique tokens.

    Examples
    --------
    >>> import xarray as xr
    >>> frame = pd.DataFrame({"params": [1e9, 1e9], "tokens": [2e10, 4e10], "loss": [2.5, 2.4],
    ...                       "unique_tokens": [2e10, 1e10]})
    >>> fitted_epochs(assemble(xr.Dataset(), frame, {"law": "muennighoff"}))
    [1.0, 4.0]
    >>> fitted_epochs(assemble(xr.Dataset(), frame.drop(columns="unique_tokens"), {})) is None
    True
    """
    stored = read_meta(tree).get(EPOCHS_KEY)
    if stored is not None:
        return [float(v) for v in stored]
    constant = tree["constant_data"].dataset
    if "unique_tokens" not in constant:
        return None
    return _epochs_range(constant["tokens"].values, constant["unique_tokens"].values)


def read_meta(tree: Any) -> dict[str, Any]:
    """The JSON metadata of a tree; a tree without it is not a bayescale posterior.

    Examples
    --------
    >>> import xarray as xr
    >>> read_meta(xr.DataTree())
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: not a bayescale posterior file (no metadata)
    """
    raw = tree.attrs.get(META_KEY)
    if raw is None:
        raise BayescaleError("not a bayescale posterior file (no metadata)")
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        raise BayescaleError("not a bayescale posterior file (its metadata is not JSON)") \
            from None


def fitted_data(tree: Any) -> pd.DataFrame:
    """The fitted rows: ``constant_data`` with the observed ``loss``.

    Examples
    --------
    >>> frame = pd.DataFrame({"params": [1e9], "tokens": [2e10], "loss": [2.5]})
    >>> import xarray as xr
    >>> fitted_data(assemble(xr.Dataset(), frame, {})).loss.tolist()
    [2.5]
    """
    constant = tree["constant_data"].dataset
    frame = pd.DataFrame({name: np.asarray(constant[name]) for name in constant.data_vars})
    frame["loss"] = np.asarray(tree["observed_data"].dataset["loss"])
    return frame


def write(tree: Any, path: str | Path) -> None:
    """Write the tree to NetCDF atomically (never a half-written file), with its digest.

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> frame = pd.DataFrame({"params": [1e9], "tokens": [2e10], "loss": [2.5]})
    >>> target = Path(tempfile.mkdtemp()) / "x.posterior.nc"
    >>> write(assemble(xr.Dataset({"E": ("draw", [1.8])}), frame, {"law": "x"}), target)
    >>> read_meta(read(target))
    {'law': 'x'}
    """
    tree.attrs.pop(FULL_DIGEST_KEY, None)
    tree.attrs[DIGEST_KEY] = content_digest(tree)
    tree.attrs[FULL_DIGEST_KEY] = full_digest(tree, tree.attrs[DIGEST_KEY])
    # Serialised in memory first: the disk then sees one plain write, whose failure (a full
    # disk, a file-size limit) is one OSError rather than errors deep inside HDF5.
    view = tree.to_netcdf(None, engine="h5netcdf")
    content = bytes(view)
    view.release()  # free the serialiser's buffer now, not at some later collection
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def read(path: str | Path) -> Any:
    """Read and verify a posterior file's tree; one clear error for a missing, damaged or
    foreign file.

    Examples
    --------
    >>> read("missing.posterior.nc")
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: missing.posterior.nc: no such file
    """
    import xarray as xr

    where = str(path)
    try:
        Path(path).stat()
    except FileNotFoundError:
        raise BayescaleError("no such file", path=where) from None
    except OSError as exc:  # a symlink loop, a name too long, no permission
        raise BayescaleError(f"cannot read it ({exc.strerror or exc})", path=where) from None
    if Path(path).is_dir():
        raise BayescaleError("is a folder, not a posterior file: give the .posterior.nc file "
                             "that `bayescale fit` wrote", path=where)
    if not Path(path).is_file():
        raise BayescaleError("not a regular file (a device or a pipe?): give the "
                             ".posterior.nc file that `bayescale fit` wrote", path=where)
    try:
        with xr.open_datatree(path, engine="h5netcdf") as opened:  # closed: can be replaced
            tree = opened.load()
    except Exception as exc:  # h5py/xarray raise many types for damaged files
        if Path(path).suffix.lower() in _TABLE_SUFFIXES:
            raise BayescaleError(
                "this is a table, not a posterior file: pass the .posterior.nc file that "
                "`bayescale fit` writes (fit-many writes one per fit in its fits/ folder)",
                path=where,
            ) from None
        reason = " ".join(str(exc).split())[:120]
        raise BayescaleError(
            f"not a readable posterior file (corrupt, truncated or not NetCDF): {reason}",
            path=where,
        ) from None
    full = tree.attrs.get(FULL_DIGEST_KEY)
    stored = tree.attrs.get(DIGEST_KEY)
    if full is not None:
        if full != full_digest(tree):
            raise BayescaleError("the file is corrupt or was edited: its arrays or metadata do "
                                 "not match the checksum written with them; fit again",
                                 path=where)
    elif stored is not None and stored != content_digest(tree):  # written before the meta digest
        raise BayescaleError("the file is corrupt: its arrays do not match the checksum "
                             "written with them; fit again", path=where)
    try:
        validate_meta(read_meta(tree))
    except BayescaleError as exc:
        raise BayescaleError(exc.message, path=where) from None
    return tree
