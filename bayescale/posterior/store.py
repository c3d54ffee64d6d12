"""The posterior file's schema: the one module that writes and reads it.

A posterior file is an ``xarray.DataTree`` in NetCDF (ArviZ 1 convention) with groups
``posterior``, ``sample_stats``, ``observed_data`` (the losses, ``loss`` by ``row``) and
``constant_data`` (N, D, run labels, source rows, by ``row``), and two root attributes:
``bayescale``, JSON metadata (law, likelihood, priors, centring, sampler options, diagnostics,
calibration, the input's path and sha256, versions), and ``bayescale_sha256``, the digest of the
arrays, so that a damaged file fails to load. Files written by earlier versions load unchanged.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import atomic_path

#: Root attribute with the JSON metadata.
META_KEY = "bayescale"
#: Root attribute with the sha256 of the stored arrays.
DIGEST_KEY = "bayescale_sha256"
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
    tree.attrs = {META_KEY: json.dumps(meta)}
    return tree


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
    return json.loads(raw)


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
    tree.attrs[DIGEST_KEY] = content_digest(tree)
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")


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
    if not Path(path).is_file():
        raise BayescaleError("no such file", path=where)
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as exc:  # h5py/xarray raise many types for damaged files
        if Path(path).suffix.lower() in _TABLE_SUFFIXES:
            raise BayescaleError(
                "this is a table of runs, not a posterior file: run `bayescale fit` on it "
                "and pass the .posterior.nc file it writes", path=where,
            ) from None
        reason = " ".join(str(exc).split())[:120]
        raise BayescaleError(
            f"not a readable posterior file (corrupt, truncated or not NetCDF): {reason}",
            path=where,
        ) from None
    stored = tree.attrs.get(DIGEST_KEY)
    if stored is not None and stored != content_digest(tree):
        raise BayescaleError("the file is corrupt: its arrays do not match the checksum "
                             "written with them; fit again", path=where)
    return tree
