"""Warnings a user should hear once, each in one plain line.

- a law parameter the data do not constrain (its posterior as wide as its prior);
- rows the likelihood treats as outliers (far from the law in units of the noise scale);
- predictions far outside the fitted runs (extrapolation in compute or model size).

Each function returns a list of messages (empty when all is well); the CLI prints them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayescale import format as fmt
from bayescale.fit import loss_residuals
from bayescale.posterior import Posterior

#: Posterior sd above this share of the prior sd: the data barely moved the prior.
UNCONSTRAINED_RATIO = 0.7
#: Residual beyond this many noise scales: an outlier (a normal row lies there once in 16,000).
OUTLIER_SCALES = 4.0
#: Targets beyond these multiples of the largest fitted run are far extrapolations.
FAR_COMPUTE = 100.0
FAR_PARAMS = 10.0


def sd_ratios(post: Posterior, size: int = 20_000, random_seed: int = 0) -> dict[str, float]:
    """Posterior sd / prior sd of each law parameter (of each family's, ``alpha[opt]``, in a
    family fit: a new family's population predictive says nothing of what the data pinned).

    On the log scale for log-normal priors (their sd on the raw scale is set by the far tail),
    else on the raw scale; prior draws come from :meth:`Law.prior_draws`.

    Examples
    --------
    >>> sd_ratios(post)  # doctest: +SKIP
    {'E': 0.08, 'A': 0.12, 'B': 0.2, 'alpha': 0.15, 'beta': 0.17}
    """
    priors = post.priors
    prior = post.law.prior_draws(priors, np.random.default_rng(random_seed), size)
    ratios = {}
    for family in post.families or [None]:
        draws = post.draws(list(post.law.parameters), family=family)
        for name in post.law.parameters:
            scale = np.log if priors[name].dist == "lognormal" else np.asarray
            label = name if family is None else f"{name}[{family}]"
            ratios[label] = float(np.std(scale(draws[name])) / np.std(scale(prior[name])))
    return ratios


def unconstrained(post: Posterior, ratio: float = UNCONSTRAINED_RATIO) -> list[str]:
    """A warning naming the law parameters whose posterior is nearly as wide as the prior.

    Examples
    --------
    >>> unconstrained(post)  # doctest: +SKIP
    ['the data barely constrain beta (posterior sd 0.95 of the prior's): ...']
    """
    wide = {k: v for k, v in sd_ratios(post).items() if v > ratio}
    if not wide:
        return []
    names = ", ".join(f"{k} (posterior sd {v:.2f} of the prior's)" for k, v in wide.items())
    its = "its interval mostly restates" if len(wide) == 1 else "their intervals mostly restate"
    return [f"the data barely constrain {names}: {its} the prior; add runs that vary the "
            "term concerned, or set an informed prior with --priors"]


def outliers(post: Posterior, scales: float = OUTLIER_SCALES) -> list[str]:
    """A warning listing rows more than ``scales`` noise scales from the law.

    The residual is ln L_observed minus the posterior-median ln L of the law
    (:func:`bayescale.fit.loss_residuals`); the scale is the posterior median of a row's total
    noise sqrt(sigma_obs^2 + seed_noise^2) (the model's sd of ln L around the law).

    Examples
    --------
    >>> outliers(post)  # doctest: +SKIP
    ['rows 12, 31 lie 9.1, 5.3 noise scales from the law: ...']
    """
    noise = post.row_draws(["sigma_obs", "seed_noise"])
    scale = np.median(np.hypot(noise["sigma_obs"], noise["seed_noise"]), axis=0)
    z = loss_residuals(post) / scale
    far = np.flatnonzero(np.abs(z) > scales)
    if far.size == 0:
        return []
    data = post.data
    rows = data["line"].to_numpy() if "line" in data else np.arange(len(data)) + 1
    source = post.meta.get("input", {}).get("path", "the runs")
    order = far[np.argsort(-np.abs(z[far]))]
    listed = ", ".join(f"{int(rows[i])} ({z[i]:+.1f})" for i in order[:10])
    more = f" and {order.size - 10} more" if order.size > 10 else ""
    treat = ("the Student-t likelihood down-weights them" if post.meta.get("likelihood")
             == "studentt" else "they pull the normal likelihood's fit")
    return [f"{order.size} row(s) of {source} lie more than {scales:g} noise scales from the "
            f"law: rows {listed}{more} (residual in noise scales); {treat}: check them"]


def far_targets(post: Posterior, params: Any, compute: Any) -> list[str]:
    """A warning when targets lie far beyond the fitted runs.

    Far means compute above ``FAR_COMPUTE`` x the largest fitted run's C = 6 N D, or N above
    ``FAR_PARAMS`` x the largest fitted N.

    Examples
    --------
    >>> far_targets(post, params=[70e9], compute=[5.88e23])  # doctest: +SKIP
    ['1 of 1 target(s) lie far beyond the fitted runs: ...']
    """
    data = post.data
    max_c = float(np.max(6.0 * data["params"] * data["tokens"]))  # C = 6 N D (Kaplan 2020)
    max_n = float(np.max(data["params"]))
    n = np.atleast_1d(np.asarray(params, dtype=float))
    c = np.atleast_1d(np.asarray(compute, dtype=float))
    far = (c > FAR_COMPUTE * max_c) | (n > FAR_PARAMS * max_n)
    if not far.any():
        return []
    parts = []
    if (c > FAR_COMPUTE * max_c).any():
        parts.append(f"compute up to {fmt.flop(c.max())}, {c.max() / max_c:.0f}x the largest "
                     f"fitted run's {fmt.flop(max_c)}")
    if (n > FAR_PARAMS * max_n).any():
        parts.append(f"N up to {fmt.size(n.max())}, {n.max() / max_n:.0f}x the largest fitted "
                     f"{fmt.size(max_n)}")
    return [f"{int(far.sum())} of {far.size} target(s) lie far beyond the fitted runs "
            f"({'; '.join(parts)}): the interval assumes the law holds that far out"]


def seed_prior_only(post: Posterior) -> list[str]:
    """A warning when the seed noise could not be estimated (one checkpoint run per model size),
    in the whole fit or in some families of a family fit.

    Examples
    --------
    >>> seed_prior_only(post)  # doctest: +SKIP
    ['no model size has two runs, so seed noise cannot be told from the law: ...']
    """
    prior = post.priors["seed_noise"].describe()
    if not post.meta.get("seed_noise_identified", True):
        return ["no model size has two runs, so seed noise cannot be told from the law's size "
                f"dependence: the seed-noise floor is the prior {prior}; give --seed-noise if you "
                "know it (e.g. from runs that differ only in seed)"]
    families = post.meta.get("seed_noise_prior_families", [])
    if families:
        label = "family" if len(families) == 1 else "families"
        return [f"{label} {', '.join(families)}: no model size has two runs, so the seed-noise "
                f"floor there is the prior {prior}"]
    return []


def fit_warnings(post: Posterior) -> list[str]:
    """Everything worth a warning after a fit: unconstrained parameters, outlying rows, a
    seed-noise floor that is only the prior.

    Examples
    --------
    >>> for message in fit_warnings(result.posterior):  # doctest: +SKIP
    ...     print("warning:", message)
    """
    return unconstrained(post) + outliers(post) + seed_prior_only(post)
