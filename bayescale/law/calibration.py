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

**Repeated data.** When the rows carry their unique tokens U (a law of repeated data,
:class:`bayescale.law.laws.Muennighoff`), the distance has a fourth axis, log10 epochs (D / U,
:func:`bayescale.data.ranges.distance`): a target that repeats its data more often than any
fitted run lies beyond the runs even inside their N, D and C ranges. The backtest then has a
second set of origins, cut along the log-epochs range at the same ``QUANTILES``: the rows of at
most that many epochs are fitted and the rows of more are predicted, so the slope also learns
how wrong the law was when it extrapolated in repetition inside the runs. The inner fits are
point fits of the repeated-data law itself (:func:`fit_law_point`: Huber on ln L, as the
baseline, of every parameter on the log scale), since that law, not Chinchilla's, makes the
forecasts; an epoch cut needs at least three distinct epoch counts below it.

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
from scipy.optimize import minimize

from bayescale.data.compute import log10_compute
from bayescale.data.ranges import EPOCHS, distance, epochs, ranges_of
from bayescale.data.runs import FAMILY, LOSS, PARAMS, TOKENS, UNIQUE, RunTable
from bayescale.law.baseline import HUBER_DELTA, fit_point
from bayescale.law.laws import Law, get_law

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
        The point fit on all rows (Chinchilla's E, A, B, alpha, beta; with unique tokens, the
        repeated-data law's parameters) and its ``median_abs_residual`` of ln L: what the rows
        say without priors (:func:`bayescale.posterior.warnings.prior_pull`).

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

    def distance(self, params: Any, tokens: Any, unique_tokens: Any = None) -> np.ndarray:
        """Extrapolation distance of targets, in decades (see
        :func:`bayescale.data.ranges.distance`); with the targets' ``unique_tokens``, their
        epochs beyond the fitted ones count too.

        Examples
        --------
        >>> ranges = ranges_of([1e8, 1e9], [1e10, 1e11], unique_tokens=[1e10, 2.5e10])
        >>> cal = Calibration(drift=0.0, drift_sd=0.01, scale=0.02, ranges=ranges)
        >>> cal.distance([5e8], [5e10], [1.25e9]).round(2).tolist()  # 40 epochs, 4 fitted
        [1.0]
        """
        return distance(self.ranges, params, tokens, unique_tokens)

    def draws(self, params: Any, tokens: Any, n_draws: int,
              rng: np.random.Generator, unique_tokens: Any = None) -> np.ndarray:
        """ln-scale discrepancy per draw (rows) and target (columns): b_s h, b_s ~ N(m, v).

        Examples
        --------
        >>> ranges = ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))
        >>> cal = Calibration(drift=0.0, drift_sd=0.01, scale=0.02, ranges=ranges)
        >>> cal.draws([1e10], [1e12], 4000, np.random.default_rng(0)).shape
        (4000, 1)
        """
        h = self.distance(params, tokens, unique_tokens).reshape(1, -1)
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


def _median(prior: Any) -> float:
    """A prior's median (log-normal: exp(mu)); 1 for other families (a start, not a claim)."""
    return float(np.exp(prior.params["mu"])) if prior.dist == "lognormal" else 1.0


def _finite(point: dict[str, float], law: Law) -> dict[str, float]:
    """The values of ``law``'s parameters in a Chinchilla point fit that can start its fit:
    with few model sizes that fit can run off to an overflowing A (alpha in the tens); a start
    from it would be skipped, so those parameters start from elsewhere."""
    return {k: v for k, v in point.items() if k in law.parameters and 0 < v < np.inf}


def fit_law_point(
    law: Law, params: Any, tokens: Any, loss: Any, covariates: dict[str, Any] | None,
    starts: list[dict[str, float]], delta: float = HUBER_DELTA,
) -> tuple[dict[str, float], float]:
    """Point fit of any registered law: the Huber loss (Huber 1964) of ln L residuals, summed
    over rows, minimised by L-BFGS-B over the log of every parameter (all positive), from each
    of ``starts``; the best fit and its objective.

    The classical fit of Hoffmann et al. 2022 (Approach 3, as :func:`fit_point` for
    Chinchilla's law) applied to a law with more terms; the calibration's inner fits of a
    repeated-data law use it.

    Examples
    --------
    >>> law = get_law("muennighoff")
    >>> truth = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.36,
    ...          "R_D": 15.4, "R_N": 5.3}
    >>> n, d = np.meshgrid([1e8, 3e8, 1e9, 3e9], [1e9, 4e9, 1.6e10, 6.4e10])
    >>> n, d = n.ravel(), d.ravel()
    >>> u = np.minimum(d, 4e9)
    >>> y = law.loss({k: np.array([v]) for k, v in truth.items()}, n, d, {"unique_tokens": u})[0]
    >>> start = {**truth, "R_D": 5.0}
    >>> fitted, _ = fit_law_point(law, n, d, y, {"unique_tokens": u}, [start])
    >>> abs(fitted["R_D"] - 15.4) < 0.5
    True
    """
    names = law.parameters
    n, d = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
    z = np.log(np.asarray(loss, dtype=float))

    def objective(theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            draws = {k: np.exp(theta[i : i + 1]) for i, k in enumerate(names)}
            r = law.log_loss(draws, n, d, covariates)[0] - z
        if not np.all(np.isfinite(r)):
            return 1e30
        absr = np.abs(r)  # Huber / delta: the same minimum, a scale L-BFGS-B handles
        return float(np.where(absr <= delta, 0.5 * r**2 / delta, absr - 0.5 * delta).sum())

    best: tuple[np.ndarray, float] | None = None
    for start in starts:
        with np.errstate(divide="ignore", invalid="ignore"):
            theta0 = np.log([float(start[k]) for k in names])
        if not np.all(np.isfinite(theta0)):
            continue
        result = minimize(objective, theta0, method="L-BFGS-B",
                          options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8})
        if np.all(np.isfinite(result.x)) and (best is None or result.fun < best[1]):
            best = (np.asarray(result.x), float(result.fun))
    if best is None:
        raise ValueError("no finite start for the point fit")
    return {k: float(np.exp(best[0][i])) for i, k in enumerate(names)}, best[1]


def _law_log_loss(law: Law, theta: dict[str, float], n: np.ndarray, d: np.ndarray,
                  covariates: dict[str, Any] | None) -> np.ndarray:
    return law.log_loss({k: np.array([v]) for k, v in theta.items()}, n, d, covariates)[0]


def calibrate(
    params: Any,
    tokens: Any,
    loss: Any,
    *,
    unique_tokens: Any = None,
    law: str | Law | None = None,
    prior_drift_sd: float = PRIOR_DRIFT_SD,
    prior_scale: float = PRIOR_SCALE,
    quantiles: tuple[float, ...] = QUANTILES,
) -> Calibration:
    """Learn the law's discrepancy from a rolling-origin backtest inside the runs.

    Parameters
    ----------
    params, tokens, loss : array
        N, D and L of the fitted rows.
    unique_tokens : array, optional
        U of the fitted rows (repeated data): the ranges and distances then include log10
        epochs, the backtest adds origins cut along the epochs, and the inner fits are of
        ``law`` (the registry's ``muennighoff`` when None). Without it Chinchilla's point fit
        (:func:`bayescale.law.baseline.fit_point`) is the inner fit, as for every law of N, D.
    law : str or Law, optional
        The repeated-data law whose inner fits measure the error (only with
        ``unique_tokens``; it must take ``unique_tokens`` as a covariate).
    prior_drift_sd, prior_scale : float
        Prior sds of the drift mu and of tau (ln L per decade).
    quantiles : tuple of float
        Cuts of the log-compute range (and of the log-epochs range); each is one origin.

    Returns
    -------
    Calibration
    """
    n = np.asarray(params, dtype=float)
    d = np.asarray(tokens, dtype=float)
    y = np.asarray(loss, dtype=float)
    u = None if unique_tokens is None else np.minimum(np.asarray(unique_tokens, float), d)
    ranges = ranges_of(n, d, u)
    full = fit_point(n, d, y)
    repeated: Law | None = None
    if u is not None:
        repeated = get_law(law) if isinstance(law, str) else (law or get_law("muennighoff"))
        if UNIQUE not in repeated.covariates:
            raise ValueError(f"the {repeated.name} law takes no unique tokens")
        priors = repeated.default_priors()
        medians = {k: _median(priors[k]) for k in repeated.parameters}
        full_theta, _ = fit_law_point(repeated, n, d, y, {UNIQUE: u},
                                      [{**medians, **_finite(full.params, repeated)}, medians])

    def inner_fit(rows: np.ndarray) -> Any:
        """ln L_hat of the law fitted to ``rows``, as a function of a row mask."""
        chin = fit_point(n[rows], d[rows], y[rows], n_starts=4)
        warm = fit_point(n[rows], d[rows], y[rows], start=np.asarray(full.theta))
        chin = warm if warm.objective < chin.objective else chin
        if repeated is None:
            return lambda mask: chin.log_loss(n[mask], d[mask])
        starts = [{**full_theta, **_finite(chin.params, repeated)}, full_theta]
        theta, _ = fit_law_point(repeated, n[rows], d[rows], y[rows], {UNIQUE: u[rows]}, starts)
        return lambda mask: _law_log_loss(repeated, theta, n[mask], d[mask], {UNIQUE: u[mask]})

    log_c = log10_compute(np.log10(n), np.log10(d))
    axes = [("compute", log_c)]
    if u is not None and ranges[EPOCHS][1] > ranges[EPOCHS][0]:
        axes.append((EPOCHS, np.log10(epochs(d, u))))
    residuals, origins, seen = [], [], set()
    for axis, values in axes:
        lo, hi = float(values.min()), float(values.max())
        for q in quantiles:
            cut = lo + q * (hi - lo)
            below = values <= cut
            key = below.tobytes()
            if key in seen or below.mean() < MIN_TRAIN_SHARE or below.all():
                continue
            seen.add(key)
            if np.unique(n[below]).size < 3 or np.unique(d[below]).size < 3:
                continue
            if axis == EPOCHS and np.unique(values[below]).size < 3:
                continue
            predict = inner_fit(below)
            above = ~below
            noise = _robust_scale(np.log(y[below]) - predict(below))
            r = np.log(y[above]) - predict(above)
            if u is None:
                h = distance(ranges_of(n[below], d[below]), n[above], d[above])
            else:
                h = distance(ranges_of(n[below], d[below], u[below]), n[above], d[above],
                             u[above])
            order = np.argsort(h, kind="stable")
            size = min(order.size, MAX_ROWS_PER_ORIGIN)
            keep = order[np.linspace(0, order.size - 1, size).astype(int)]
            residuals.append((r[keep], h[keep], max(noise, 1e-4)))
            origins.append({f"cut_log10_{axis}": float(cut), "n_train": int(below.sum()),
                            "n_test": int(above.sum()), "mean_distance": float(h.mean()),
                            "mean_residual": float(r.mean())})
    mean, sd, tau = _posterior(residuals, prior_drift_sd, prior_scale)
    # the point fit of the law that makes the forecasts: Chinchilla's ignores unique tokens
    point, fitted_log = ((full.params, full.log_loss(n, d)) if repeated is None else
                         (full_theta, _law_log_loss(repeated, full_theta, n, d, {UNIQUE: u})))
    miss = float(np.median(np.abs(np.log(y) - fitted_log)))
    return Calibration(
        drift=mean, drift_sd=sd, scale=tau, ranges=ranges, origins=origins,
        prior={"drift_sd": prior_drift_sd, "scale": prior_scale},
        method="rolling-origin" if u is None else "rolling-origin, compute and epochs",
        point_fit={**point, "median_abs_residual": miss},
    )


def calibrate_runs(runs: RunTable, law: str | None = None, **kwargs: Any) -> Calibration:
    """:func:`calibrate` on a run table; with several families, one calibration per family.

    Rows with unique tokens (``unique_tokens``) are calibrated as repeated data (epochs axis,
    inner fits of ``law``, by default the registry's repeated-data law ``muennighoff``), unless
    ``law`` names a law without unique tokens, whose calibration ignores them.

    The families' calibrations are kept in ``families``; the top level combines them for a
    prediction that names no family: the union of their ranges, the mean drift, the largest
    scale, and the drifts' spread added to the drift's sd.
    """
    data = runs.data
    repeated = UNIQUE in data and (law is None or UNIQUE in get_law(law).covariates)
    if repeated:
        kwargs = {"law": law, **kwargs}

    def one(rows: Any) -> Calibration:
        unique = rows[UNIQUE].to_numpy() if repeated else None
        return calibrate(rows[PARAMS], rows[TOKENS], rows[LOSS], unique_tokens=unique,
                         **kwargs)

    labels = data[FAMILY].unique() if FAMILY in data else []
    if len(labels) < 2:
        return one(data)
    parts = {str(label): one(data[data[FAMILY] == label]) for label in labels}
    cals = list(parts.values())
    drifts = np.array([c.drift for c in cals])
    keys = [k for k in cals[0].ranges if all(k in c.ranges for c in cals)]
    ranges = {k: [min(c.ranges[k][0] for c in cals), max(c.ranges[k][1] for c in cals)]
              for k in keys}
    return Calibration(
        drift=float(drifts.mean()),
        drift_sd=float(np.sqrt(np.mean([c.drift_sd**2 for c in cals]) + drifts.var())),
        scale=max(c.scale for c in cals), ranges=ranges, prior=cals[0].prior,
        families={k: c.as_dict() for k, c in parts.items()},
    )
