"""Convergence checks after sampling: R-hat, bulk and tail ESS, divergences, tree depth."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Thresholds (Vehtari et al. 2021, "Rank-normalization, folding, and localization").
MAX_R_HAT = 1.01
MIN_ESS_PER_CHAIN = 100
#: Fewest draws per chain with an R-hat and ESS (ArviZ gives NaN below); R-hat needs 2 chains.
MIN_DRAWS = 4


@dataclass
class Diagnostics:
    """What the checks found; ``problems`` is empty when every check passed.

    Examples
    --------
    >>> diag = Diagnostics(divergences=0, max_r_hat=1.002, min_ess_bulk=900.0,
    ...                    min_ess_tail=850.0, max_depth_hits=0)
    >>> diag.ok
    True
    """

    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    max_depth_hits: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed.

        Examples
        --------
        >>> Diagnostics(2, 1.0, 900.0, 850.0, 0, problems=["2 divergent transitions"]).ok
        False
        """
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON and the posterior file; an undefined statistic (NaN: R-hat of
        one chain) is None.

        Examples
        --------
        >>> Diagnostics(0, 1.002, 900.0, 850.0, 0).as_dict()["max_r_hat"]
        1.002
        >>> Diagnostics(0, float("nan"), 900.0, 850.0, 0).as_dict()["max_r_hat"] is None
        True
        """
        return {key: None if isinstance(value, float) and np.isnan(value) else value
                for key, value in asdict(self).items()}


def _stat(stats: Any, *names: str) -> np.ndarray | None:
    for name in names:
        if name in stats:
            return np.asarray(stats[name])
    return None


def chain_stats(posterior: Any, names: list[str]) -> dict[str, Any]:
    """R-hat, bulk ESS and tail ESS of ``names`` in a posterior ``xarray.Dataset``.

    Returns datasets keyed ``r_hat``, ``ess_bulk`` and ``ess_tail``. A variable constant over the
    draws (a fixed ``--seed-noise``, a stuck chain) has no R-hat or ESS, nor has any variable an
    R-hat with one chain: they get NaN, without the divide warnings ArviZ gives for them.

    Examples
    --------
    >>> import xarray as xr
    >>> draws = np.random.default_rng(0).normal(size=(2, 500))
    >>> posterior = xr.Dataset({"alpha": (("chain", "draw"), draws),
    ...                         "seed_noise": (("chain", "draw"), np.full((2, 500), 0.01))})
    >>> stats = chain_stats(posterior, ["alpha", "seed_noise"])
    >>> bool(stats["r_hat"]["alpha"] < 1.01), bool(np.isnan(stats["r_hat"]["seed_noise"]))
    (True, True)
    """
    import arviz as az
    import xarray as xr

    varying = posterior[[name for name in names if np.ptp(np.asarray(posterior[name])) > 0]]
    stats = {key: xr.Dataset() for key in ("r_hat", "ess_bulk", "ess_tail")}
    if varying.data_vars:  # ArviZ fails on a dataset without variables
        stats = {"r_hat": az.rhat(varying), "ess_bulk": az.ess(varying, method="bulk"),
                 "ess_tail": az.ess(varying, method="tail")}
    for name in names:
        if name not in varying.data_vars:
            undefined = xr.full_like(posterior[name].isel(chain=0, draw=0, drop=True), np.nan,
                                     dtype=float)
            for dataset in stats.values():
                dataset[name] = undefined
    return stats


def _extreme(stats: Any, names: list[str], pick: Callable[[np.ndarray], Any]) -> float:
    """``pick`` (``np.max``, ``np.min``) of the defined values of ``names``; NaN if none is.

    Examples
    --------
    >>> _extreme({"a": np.array([1.2, np.nan]), "b": np.array(1.0)}, ["a", "b"], np.max)
    1.2
    """
    values = np.concatenate([np.ravel(stats[name]) for name in names])
    values = values[~np.isnan(values)]
    return float(pick(values)) if values.size else float("nan")


def check(tree: Any, var_names: list[str]) -> Diagnostics:
    """Check the draws of ``var_names`` in ``tree`` (an ``xarray.DataTree`` from sampling).

    Thresholds: R-hat <= :data:`MAX_R_HAT`, bulk and tail ESS >= :data:`MIN_ESS_PER_CHAIN` per
    chain, no divergences, no draws at the maximum tree depth. R-hat compares chains: with one
    chain it is NaN and not checked.

    Examples
    --------
    >>> import xarray as xr
    >>> draws = np.random.default_rng(0).normal(size=(2, 500))
    >>> diverging = np.zeros((2, 500), dtype=bool)
    >>> diverging[0, :3] = True
    >>> tree = xr.DataTree.from_dict({
    ...     "posterior": xr.Dataset({"alpha": (("chain", "draw"), draws)}),
    ...     "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging)})})
    >>> check(tree, ["alpha"]).problems
    ['3 divergent transitions: the posterior has regions the sampler cannot follow; ...']
    """
    posterior = tree["posterior"].dataset
    chains = posterior.sizes["chain"]
    convergence = chain_stats(posterior, var_names)
    max_r_hat = _extreme(convergence["r_hat"], var_names, np.max)
    min_bulk = _extreme(convergence["ess_bulk"], var_names, np.min)
    min_tail = _extreme(convergence["ess_tail"], var_names, np.min)
    stats = tree["sample_stats"].dataset
    diverging = _stat(stats, "diverging")
    depth_hits = _stat(stats, "maxdepth_reached", "reached_max_treedepth")
    divergences = int(diverging.sum()) if diverging is not None else 0
    max_depth_hits = int(depth_hits.sum()) if depth_hits is not None else 0

    need = MIN_ESS_PER_CHAIN * chains
    problems = []
    if divergences:
        problems.append(
            f"{divergences} divergent transitions: the posterior has regions the sampler cannot "
            "follow; try more --tune, tighter --priors, or check the data for outliers"
        )
    if np.isnan(min_bulk):  # no variable has an ESS
        problems.append(
            f"no parameter varies over the draws (or there are fewer than {MIN_DRAWS} per "
            "chain): the sampler is stuck; try more --tune and --draws"
        )
    else:
        if chains > 1 and not max_r_hat <= MAX_R_HAT:
            problems.append(
                f"R-hat {max_r_hat:.3f} > {MAX_R_HAT}: chains disagree; try more --tune and "
                "--draws"
            )
        if not min(min_bulk, min_tail) >= need:
            problems.append(
                f"effective sample size {min(min_bulk, min_tail):.0f} < {need} "
                f"({MIN_ESS_PER_CHAIN} per chain); try more --draws"
            )
    if max_depth_hits:
        problems.append(
            f"{max_depth_hits} draws hit the maximum tree depth; try more --tune"
        )
    return Diagnostics(divergences, max_r_hat, min_bulk, min_tail, max_depth_hits, problems)
