"""Convergence checks after sampling: R-hat, bulk and tail ESS, divergences, tree depth."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Thresholds (Vehtari et al. 2021, "Rank-normalization, folding, and localization").
MAX_R_HAT = 1.01
MIN_ESS_PER_CHAIN = 100


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
        """Plain data for JSON and the posterior file.

        Examples
        --------
        >>> Diagnostics(0, 1.002, 900.0, 850.0, 0).as_dict()["max_r_hat"]
        1.002
        """
        return asdict(self)


def _stat(stats: Any, *names: str) -> np.ndarray | None:
    for name in names:
        if name in stats:
            return np.asarray(stats[name])
    return None


def chain_stats(posterior: Any, names: list[str]) -> dict[str, Any]:
    """R-hat, bulk ESS and tail ESS of ``names`` in a posterior ``xarray.Dataset``.

    Returns datasets keyed ``r_hat``, ``ess_bulk`` and ``ess_tail``. A variable constant over the
    draws (a fixed ``--seed-noise``) has no R-hat or ESS: it gets NaN, without the divide
    warnings ArviZ gives for it.

    Examples
    --------
    >>> chain_stats(tree["posterior"].dataset, ["alpha"])["r_hat"]["alpha"]  # doctest: +SKIP
    """
    import arviz as az
    import xarray as xr

    varying = [name for name in names if np.ptp(np.asarray(posterior[name])) > 0]
    stats = {"r_hat": az.rhat(posterior[varying]),
             "ess_bulk": az.ess(posterior[varying], method="bulk"),
             "ess_tail": az.ess(posterior[varying], method="tail")}
    for name in names:
        if name not in varying:
            undefined = xr.full_like(posterior[name].isel(chain=0, draw=0, drop=True), np.nan,
                                     dtype=float)
            for dataset in stats.values():
                dataset[name] = undefined
    return stats


def check(tree: Any, var_names: list[str]) -> Diagnostics:
    """Check the draws of ``var_names`` in ``tree`` (an ``xarray.DataTree`` from sampling).

    Thresholds: R-hat <= :data:`MAX_R_HAT`, bulk and tail ESS >= :data:`MIN_ESS_PER_CHAIN` per
    chain, no divergences, no draws at the maximum tree depth.

    Examples
    --------
    >>> diag = check(tree, ["E", "A", "B", "alpha", "beta"])  # doctest: +SKIP
    >>> diag.problems  # doctest: +SKIP
    []
    """
    posterior = tree["posterior"].dataset
    chains = posterior.sizes["chain"]
    convergence = chain_stats(posterior, var_names)
    rhat, ess_bulk, ess_tail = (convergence[k] for k in ("r_hat", "ess_bulk", "ess_tail"))
    max_r_hat = float(max(float(np.nanmax(rhat[v])) for v in var_names))
    min_bulk = float(min(float(np.nanmin(ess_bulk[v])) for v in var_names))
    min_tail = float(min(float(np.nanmin(ess_tail[v])) for v in var_names))
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
    if not max_r_hat <= MAX_R_HAT:
        problems.append(
            f"R-hat {max_r_hat:.3f} > {MAX_R_HAT}: chains disagree; try more --tune and --draws"
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
