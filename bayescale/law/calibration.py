"""Calibrated extrapolation: the law's own error, learned from the runs at fit time.

A fitted law is exact only where it was fitted. Beyond the data its error grows: the form is an
approximation (exponents drift with scale, terms are missing), and a posterior that assumes the
form is true gives intervals that are too narrow there (Kennedy & O'Hagan 2001 on model
discrepancy). bayescale adds a **discrepancy** term to the predictive distribution of a new
run, on ln L:

    ln L_new = ln law_s(N, D) + b_s h(N, D) + seed noise + row noise,   b_s ~ N(m, v)

- ``h`` is the **extrapolation distance** in decades: the largest of how far log10 C, log10 N
  and log10 D lie outside the range of the fitted runs (C = 6 N D; both sides). Inside the data
  h = 0 and the term vanishes; it grows linearly with distance.
- ``b`` is the law's error per decade of extrapolation: one slope per posterior draw, shared by
  all targets of one prediction (the errors of nearby targets are alike). Its mean ``m`` is the
  **drift** (a systematic over- or under-prediction), its variance ``v = E[tau^2] + Var[mu]``.

How m and v are learned (a rolling-origin backtest inside the runs, as in forecasting practice,
Tashman 2000; the Hitchhiker's Guide, Choshen et al. 2024, scores scaling laws the same way):

1. For each cut q in ``QUANTILES`` of the log-compute range, fit the point law
   (:func:`bayescale.law.baseline.fit_point`, Huber on ln L) to the rows with compute below the cut
   and predict the rows above it: residuals r = ln L - ln L_hat and distances h (from the
   ranges of the rows below the cut). Cuts that leave fewer than ``MIN_TRAIN_SHARE`` of the rows,
   or fewer than three model sizes or token counts, are skipped.
2. Model r = mu h + e, e ~ N(0, tau^2 h^2 + s^2) (s: the inner fit's robust residual scale, i.e.
   noise, kept out of tau). Each origin's rows are weighted 1 / (rows of that origin), so one
   origin counts as one observation: the rows of one origin share one fitted law and are far
   from independent.
3. Priors mu ~ N(0, ``PRIOR_DRIFT_SD``) and tau ~ HalfNormal(``PRIOR_SCALE``) per decade; the
   posterior is computed on a grid. With no usable origin the prior alone is used. The prior
   scale (sqrt(0.02^2 + 0.03^2) = 3.6% sd per decade for the slope) is the size of the
   Hitchhiker's Guide's typical extrapolation errors, a few percent (Choshen et al. 2024); it
   is not tuned on benchmark data.

Assumptions: the error grows linearly in the distance (a drifting exponent gives exactly that to
first order in ln L); the errors seen when the lower part of the runs predicts the upper part
speak for the errors beyond the runs; the inner point fits stand in for the posterior (their
errors also contain parameter uncertainty, which the posterior adds again, so the intervals
lean to the wide side).

The law's expected loss (``mean_loss`` in predictions) is left as the fitted law's mean, with
no drift and no discrepancy: it answers "what does the law say". The new run's loss (``loss``)
carries the drift, so its median moves toward what the backtest inside the data found.

Switch it off with ``bayescale fit --no-calibration`` (nothing stored) or, for one prediction,
``bayescale predict --no-discrepancy`` / ``Posterior.predict(..., discrepancy=False)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bayescale.data.compute import log10_compute
from bayescale.data.ranges import AXES, distance, ranges_of
from bayescale.data.runs import FAMILY, LOSS, PARAMS, TOKENS, RunTable
from bayescale.law.baseline import fit_point

#: Prior sd of the drift mu (ln L per decade of extrapolation).
PRIOR_DRIFT_SD = 0.02
#: Prior scale of tau, HalfNormal (ln L per decade of extrapolation).
PRIOR_SCALE = 0.03
#: Cuts of the rolling-origin backtest, as fractions of the log-compute range.
QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9)
#: An origin needs at least this share of the rows below its cut.
MIN_TRAIN_SHARE = 0.3
#: Rows per origin used in the likelihood (evenly spread in distance when there are more).
MAX_ROWS_PER_ORIGIN = 200

_MU = np.linspace(-0.3, 0.3, 241)
_TAU = np.linspace(0.0, 0.3, 121)


@dataclass
class Calibration:
    """The learned discrepancy of the law: ln L error per decade of extrapolation.

    Attributes
    ----------
    drift : float
        Posterior mean of the error per decade (mu): negative when the law over-predicts the
        loss of larger runs.
    drift_sd : float
        Posterior sd of mu.
    scale : float
        sqrt(E[tau^2]): the spread of the error per decade beyond the drift.
    ranges : dict
        log10 [min, max] of compute, params and tokens of the fitted runs.
    origins : list of dict
        What each inner origin saw (cut, rows, mean distance, mean residual).
    prior : dict
        Prior sds of mu and tau.
    method : str
        How it was learned.
    families : dict
        Per-family calibrations (as dicts) when the runs hold several families.
    point_fit : dict
        The point fit on all rows (E, A, B, alpha, beta) and its ``median_abs_residual`` of
        ln L: what the rows say without priors (:func:`bayescale.posterior.warnings.prior_pull`).

    Examples
    --------
    >>> ranges = ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))
    >>> cal = Calibration(drift=0.0, drift_sd=0.01, scale=0.02, ranges=ranges)
    >>> cal.distance([1e10], [1e12]).round(2).tolist()
    [2.0]
    """

    drift: float
    drift_sd: float
    scale: float
    ranges: dict[str, list[float]]
    origins: list[dict[str, float]] = field(default_factory=list)
    prior: dict[str, float] = field(default_factory=dict)
    method: str = "rolling-origin"
    families: dict[str, dict[str, Any]] = field(default_factory=dict)
    point_fit: dict[str, float] = field(default_factory=dict)

    @property
    def slope_sd(self) -> float:
        """sd of a new extrapolation's error per decade: sqrt(scale^2 + drift_sd^2).

        Examples
        --------
        >>> round(Calibration(0.0, 0.03, 0.04, ranges={}).slope_sd, 3)
        0.05
        """
        return float(np.hypot(self.scale, self.drift_sd))

    def distance(self, params: Any, tokens: Any) -> np.ndarray:
        """Extrapolation distance of targets, in decades (see
        :func:`bayescale.data.ranges.distance`)."""
        return distance(self.ranges, params, tokens)

    def draws(self, params: Any, tokens: Any, n_draws: int,
              rng: np.random.Generator) -> np.ndarray:
        """ln-scale discrepancy per draw (rows) and target (columns): b_s h, b_s ~ N(m, v).

        Examples
        --------
        >>> ranges = ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))
        >>> cal = Calibration(drift=0.0, drift_sd=0.01, scale=0.02, ranges=ranges)
        >>> cal.draws([1e10], [1e12], 4000, np.random.default_rng(0)).shape
        (4000, 1)
        """
        h = self.distance(params, tokens).reshape(1, -1)
        return self.slopes(n_draws, rng).reshape(-1, 1) * h

    def slopes(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """One error per decade per draw, b_s ~ N(drift, slope_sd^2).

        Examples
        --------
        >>> cal = Calibration(-0.01, 0.0, 0.0, ranges={})
        >>> cal.slopes(3, np.random.default_rng(0)).tolist()
        [-0.01, -0.01, -0.01]
        """
        return self.drift + self.slope_sd * rng.standard_normal(n_draws)

    def for_family(self, family: str) -> Calibration:
        """The calibration of one family of a multi-family fit (this one if it has none).

        Examples
        --------
        >>> cal = Calibration(0.0, 0.01, 0.02, ranges={})
        >>> cal.for_family("opt") is cal
        True
        """
        stored = self.families.get(str(family))
        return Calibration.from_dict(stored) if stored else self

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the posterior file.

        Examples
        --------
        >>> Calibration(0.0, 0.01, 0.02, ranges={}).as_dict()["scale"]
        0.02
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`as_dict`.

        Examples
        --------
        >>> cal = Calibration(0.0, 0.01, 0.02, ranges={})
        >>> Calibration.from_dict(cal.as_dict()) == cal
        True
        """
        return cls(**data)


def _robust_scale(r: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(r - np.median(r))))  # MAD -> sd for a normal


def _posterior(
    residuals: list[tuple[np.ndarray, np.ndarray, float]], drift_sd: float, scale: float
) -> tuple[float, float, float]:
    """Grid posterior of (mu, tau); returns E[mu], sd[mu], sqrt(E[tau^2])."""
    log_p = -0.5 * (_MU[:, None] / drift_sd) ** 2 - 0.5 * (_TAU[None, :] / scale) ** 2
    for r, h, s in residuals:
        var = _TAU[None, :, None] ** 2 * h**2 + s**2
        ll = -0.5 * np.log(var) - 0.5 * (r - _MU[:, None, None] * h) ** 2 / var
        log_p = log_p + ll.mean(axis=-1)  # one origin = one observation
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    p_mu, p_tau = p.sum(axis=1), p.sum(axis=0)
    mean = float(p_mu @ _MU)
    return mean, float(np.sqrt(p_mu @ (_MU - mean) ** 2)), float(np.sqrt(p_tau @ _TAU**2))


def calibrate(
    params: Any,
    tokens: Any,
    loss: Any,
    *,
    prior_drift_sd: float = PRIOR_DRIFT_SD,
    prior_scale: float = PRIOR_SCALE,
    quantiles: tuple[float, ...] = QUANTILES,
) -> Calibration:
    """Learn the law's discrepancy from a rolling-origin backtest inside the runs.

    Parameters
    ----------
    params, tokens, loss : array
        N, D and L of the fitted rows.
    prior_drift_sd, prior_scale : float
        Prior sds of the drift mu and of tau (ln L per decade).
    quantiles : tuple of float
        Cuts of the log-compute range; each is one origin.

    Returns
    -------
    Calibration
    """
    n = np.asarray(params, dtype=float)
    d = np.asarray(tokens, dtype=float)
    y = np.asarray(loss, dtype=float)
    ranges = ranges_of(n, d)
    full = fit_point(n, d, y)
    log_c = log10_compute(np.log10(n), np.log10(d))
    lo, hi = ranges["compute"]
    residuals, origins, seen = [], [], set()
    for q in quantiles:
        cut = lo + q * (hi - lo)
        below = log_c <= cut
        key = below.tobytes()
        if key in seen or below.mean() < MIN_TRAIN_SHARE or below.all():
            continue
        seen.add(key)
        if np.unique(n[below]).size < 3 or np.unique(d[below]).size < 3:
            continue
        inner = fit_point(n[below], d[below], y[below], n_starts=4)
        warm = fit_point(n[below], d[below], y[below], start=np.asarray(full.theta))
        inner = warm if warm.objective < inner.objective else inner
        noise = _robust_scale(np.log(y[below]) - inner.log_loss(n[below], d[below]))
        above = ~below
        r = np.log(y[above]) - inner.log_loss(n[above], d[above])
        h = distance(ranges_of(n[below], d[below]), n[above], d[above])
        order = np.argsort(h, kind="stable")
        size = min(order.size, MAX_ROWS_PER_ORIGIN)
        keep = order[np.linspace(0, order.size - 1, size).astype(int)]
        residuals.append((r[keep], h[keep], max(noise, 1e-4)))
        origins.append({"cut_log10_compute": float(cut), "n_train": int(below.sum()),
                        "n_test": int(above.sum()), "mean_distance": float(h.mean()),
                        "mean_residual": float(r.mean())})
    mean, sd, tau = _posterior(residuals, prior_drift_sd, prior_scale)
    miss = float(np.median(np.abs(np.log(y) - full.log_loss(n, d))))
    return Calibration(
        drift=mean, drift_sd=sd, scale=tau, ranges=ranges, origins=origins,
        prior={"drift_sd": prior_drift_sd, "scale": prior_scale},
        point_fit={**full.params, "median_abs_residual": miss},
    )


def calibrate_runs(runs: RunTable, **kwargs: Any) -> Calibration:
    """:func:`calibrate` on a run table; with several families, one calibration per family.

    The families' calibrations are kept in ``families``; the top level combines them for a
    prediction that names no family: the union of their ranges, the mean drift, the largest
    scale, and the drifts' spread added to the drift's sd.
    """
    data = runs.data
    labels = data[FAMILY].unique() if FAMILY in data else []
    if len(labels) < 2:
        return calibrate(data[PARAMS], data[TOKENS], data[LOSS], **kwargs)
    parts = {}
    for label in labels:
        rows = data[data[FAMILY] == label]
        parts[str(label)] = calibrate(rows[PARAMS], rows[TOKENS], rows[LOSS], **kwargs)
    cals = list(parts.values())
    drifts = np.array([c.drift for c in cals])
    ranges = {k: [min(c.ranges[k][0] for c in cals), max(c.ranges[k][1] for c in cals)]
              for k in AXES}
    return Calibration(
        drift=float(drifts.mean()),
        drift_sd=float(np.sqrt(np.mean([c.drift_sd**2 for c in cals]) + drifts.var())),
        scale=max(c.scale for c in cals), ranges=ranges, prior=cals[0].prior,
        families={k: c.as_dict() for k, c in parts.items()},
    )
