"""Credible intervals of posterior draws: equal-tailed (ETI) or highest density (HDI)."""

from __future__ import annotations

import math

import numpy as np

from bayescale.core.errors import BayescaleError

KINDS = ("eti", "hdi")
#: Fewest draws an interval must hold: below it an "interval" is a pair of neighbouring draws
#: (for HDI, the two closest, which may lie anywhere), not a measure of the posterior.
MIN_HELD = 3


def check_held(level: float, n_draws: int) -> None:
    """Refuse a level whose interval of ``n_draws`` draws would hold fewer than
    :data:`MIN_HELD` of them (the questions asked of a posterior call it with the user's level).

    Examples
    --------
    >>> check_held(0.9, 4000)
    >>> check_held(1e-9, 4000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: a 1e-09 interval of 4000 draws holds fewer than 3 ...
    """
    if n_draws and level * n_draws < MIN_HELD:
        least = math.ceil(MIN_HELD / n_draws * 1e5) / 1e5
        raise BayescaleError(f"a {level:g} interval of {n_draws} draws holds fewer than "
                             f"{MIN_HELD} draws: give a level of at least {least:g}")


def interval(samples: np.ndarray, level: float, kind: str = "eti") -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds over axis 0 (draws) of ``samples``.

    Parameters
    ----------
    samples : ndarray
        Draws along axis 0; any trailing shape.
    level : float
        Probability mass inside the interval, in (0, 1).
    kind : {"eti", "hdi"}
        Equal-tailed (quantiles (1-level)/2 and (1+level)/2) or the narrowest interval holding
        ``level`` of the draws.

    Examples
    --------
    >>> lo, hi = interval(np.arange(101.0), 0.9)
    >>> round(float(lo), 6), round(float(hi), 6)
    (5.0, 95.0)
    """
    samples = np.asarray(samples, dtype=float)
    if kind == "eti":
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return lo, hi
    if kind != "hdi":
        raise ValueError(f"unknown interval kind {kind!r}")
    ordered = np.sort(samples, axis=0)
    n = ordered.shape[0]
    width = max(1, min(n - 1, int(np.floor(level * n))))
    spans = ordered[width:] - ordered[: n - width]
    start = np.argmin(spans, axis=0)
    lo = np.take_along_axis(ordered, start[np.newaxis], axis=0)[0]
    hi = np.take_along_axis(ordered, (start + width)[np.newaxis], axis=0)[0]
    return lo, hi


def summarize(samples: np.ndarray, level: float, kind: str = "eti") -> dict[str, np.ndarray]:
    """Median and interval bounds over axis 0: ``{"median", "lower", "upper"}``.

    Examples
    --------
    >>> {k: round(float(v), 6) for k, v in summarize(np.arange(101.0), 0.9).items()}
    {'median': 50.0, 'lower': 5.0, 'upper': 95.0}
    """
    lo, hi = interval(samples, level, kind)
    return {"median": np.median(samples, axis=0), "lower": lo, "upper": hi}
