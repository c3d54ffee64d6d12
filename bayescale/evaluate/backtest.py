"""Backtests: hold out the largest runs, fit the rest, and score the forecasts.

The protocol of the Hitchhiker's Guide to Scaling Law Estimation (Choshen et al. 2024): within
each model family (or the whole table), hold out the largest model(s), or the runs with the top
share of compute, fit the law on the other runs, and predict the held-out ones. A held-out run
with several rows (checkpoints) is scored on the last ``score_frac`` of its tokens (the Guide
scores the last 30%); a run with one row is scored on that row.

Scores per case (one family's split) and overall (a case also says how many rows and model
sizes it was fitted on, ``n_train`` and ``train_sizes``: with two sizes the exponent alpha is
not identified and the forecast of a larger model follows its prior):

- ``are_median``: absolute relative error |L - L_hat| / L of the predictive median, averaged
  over the scored rows (the Guide's ARE);
- ``coverage_50``, ``coverage_80``, ``coverage_90``: share of scored rows inside the central
  interval of a new run's loss at that level;
- ``halfwidth_90_median``: median over scored rows of the 90% interval's half-width relative to
  the median, (upper - lower) / 2 / median;
- ``baseline``: the same for the classical point fit with bootstrap intervals
  (:mod:`bayescale.law.baseline`) on the same split; ``plain``: the same posterior with no
  discrepancy term (:mod:`bayescale.law.calibration`), when calibration is on; for a case fitted
  on two model sizes the baseline also has ``alpha_profile``: the point fit held at each of
  :data:`RIDGE_ALPHAS` (its objective over the free fit's, and its ARE): with E, A and alpha
  trading off exactly, every alpha fits the rows alike, so the free fit's ARE there is where
  L-BFGS-B stopped, not what the data say;
- ``are_versus_baseline``: the ARE difference to the baseline paired by case, with its
  standard error over cases and the count of cases won.

The overall figures weigh every case alike (rows of one held-out run are far from independent):
ARE and coverage are means over cases, the half-width is the median over cases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.data.compute import compute
from bayescale.data.runs import (
    FAMILY,
    LOSS,
    PARAMS,
    RUN,
    TOKENS,
    UNIQUE,
    RunTable,
    check_identifiable,
)
from bayescale.data.selection import select_checkpoints
from bayescale.inference.fit import fit
from bayescale.inference.model import ModelSpec
from bayescale.inference.sampling import CompiledCache, SamplerOptions
from bayescale.law.baseline import PointFit, fit_baseline, profile_alpha
from bayescale.law.laws import get_law
from bayescale.posterior.warnings import split_tails

LEVELS = (0.5, 0.8, 0.9)
#: Exponents at which the baseline is held on cases fitted on two model sizes.
RIDGE_ALPHAS = (0.1, 0.2, 0.35, 0.7, 1.5, 3.0, 6.0)
#: Backtests fit many times: fewer draws than ``bayescale fit`` (the 5% and 95% quantiles of
#: 1,000 draws are enough to score a 90% interval).
BACKTEST_SAMPLER = SamplerOptions(chains=2, draws=500, tune=500, progress=False)
_METRICS = ("are_median", "coverage_50", "coverage_80", "coverage_90", "halfwidth_90_median")


@dataclass
class BacktestOptions:
    """Which runs to hold out, which to fit on, and what to score.

    Attributes
    ----------
    holdout_models : int
        Hold out the rows of this many largest model sizes of each family.
    holdout_compute_frac : float, optional
        Instead, hold out the runs (``run`` column, else rows) with the top share of compute
        (a run's compute is 6 N D at its last row); at least one run.
    k_smallest : int, optional
        Fit only on the k smallest model sizes left after the hold-out.
    max_token_frac : float, optional
        Fit only on rows up to this fraction of their run's tokens (needs a run column).
    min_tokens : float, optional
        Fit only on rows with at least this many tokens.
    score_frac : float
        Score the last share of each held-out multi-row run's tokens (1 = every row).
    n_boot : int
        Bootstrap resamples of the baseline; 0 skips the baseline.
    calibration : bool
        Learn and apply the law's discrepancy (:mod:`bayescale.law.calibration`).
    run_effects : bool
        Give the fit the run labels, so checkpoints of one run share a latent offset (as
        ``bayescale fit --run-col``); False fits the rows as independent (the classical fit)
        and uses the run labels only to hold out, window and score.

    Examples
    --------
    >>> BacktestOptions(holdout_compute_frac=0.2, n_boot=100).score_frac
    0.3
    """

    holdout_models: int = 1
    holdout_compute_frac: float | None = None
    k_smallest: int | None = None
    max_token_frac: float | None = None
    min_tokens: float | None = None
    score_frac: float = 0.3
    n_boot: int = 200
    calibration: bool = True
    run_effects: bool = True


@dataclass
class Split:
    """One case: a family's training runs and the held-out rows to score."""

    family: str
    train: RunTable
    test: pd.DataFrame
    held_out: str


def _holdout(data: pd.DataFrame, run_ids: np.ndarray, opts: BacktestOptions) -> np.ndarray:
    """Boolean mask of the held-out rows of one family."""
    if opts.holdout_compute_frac is not None:
        flop = pd.Series(compute(data[PARAMS].to_numpy(), data[TOKENS].to_numpy()))
        last = flop.groupby(run_ids).max().sort_values(kind="stable")
        k = max(1, math.ceil(opts.holdout_compute_frac * len(last) - 1e-9))
        return np.isin(run_ids, last.index[-k:].to_numpy())
    sizes = np.sort(data[PARAMS].unique())
    return data[PARAMS].isin(sizes[-opts.holdout_models:]).to_numpy()


def _scored(test: pd.DataFrame, run_ids: np.ndarray, score_frac: float) -> np.ndarray:
    """Rows of held-out runs in the last ``score_frac`` of their run's tokens."""
    tokens = pd.Series(test[TOKENS].to_numpy())
    longest = tokens.groupby(run_ids).transform("max").to_numpy()
    rows = tokens.groupby(run_ids).transform("size").to_numpy()
    return (rows == 1) | (score_frac >= 1) | (tokens.to_numpy() >= (1 - score_frac) * longest)


def _describe(test: pd.DataFrame, run_ids: np.ndarray) -> str:
    """``N = 1.75e+11`` or ``12 runs, N 1.7e+09-1.6e+10``."""
    sizes = np.sort(test[PARAMS].unique())
    if sizes.size <= 2:
        return "N = " + ", ".join(f"{n:.3g}" for n in sizes)
    return f"{np.unique(run_ids).size} runs, N {sizes[0]:.2g}-{sizes[-1]:.2g}"


def make_splits(runs: RunTable, opts: BacktestOptions, n_parameters: int = 5
                ) -> tuple[list[Split], list[dict]]:
    """The cases of a backtest, and the families skipped (with the reason): a family whose
    training rows cannot identify a law of ``n_parameters`` (the fitted law's) is skipped.

    Examples
    --------
    >>> from bayescale.law.simulate import isoflop_sweep
    >>> runs = RunTable(isoflop_sweep([1e18, 1e19, 1e20], sizes_per_budget=4))
    >>> splits, skipped = make_splits(runs, BacktestOptions(holdout_models=1))
    >>> [(s.family, s.held_out, len(s.train), len(s.test)) for s in splits], skipped
    ([('all', 'N = 2.42e+09', 11, 1)], [])
    """
    if opts.holdout_compute_frac is not None and not 0 < opts.holdout_compute_frac < 1:
        raise BayescaleError("--holdout-compute-frac must lie strictly between 0 and 1")
    if opts.holdout_models < 1:
        raise BayescaleError("--holdout-models must be at least 1")
    if not 0 < opts.score_frac <= 1:
        raise BayescaleError("--score-frac must lie in (0, 1]")
    data = runs.data
    families = data[FAMILY].to_numpy(dtype=str) if FAMILY in data else np.full(len(data), "all")
    ids = runs.run_ids
    splits, skipped = [], []
    for family in dict.fromkeys(families):
        rows = families == family
        part, part_ids = data[rows].reset_index(drop=True), ids[rows]
        part = part.drop(columns=[FAMILY], errors="ignore")  # each case fits one family's law
        held = _holdout(part, part_ids, opts)
        train = replace(runs, data=part[~held].reset_index(drop=True))
        try:
            if opts.k_smallest is not None:
                sizes = np.sort(train.data[PARAMS].unique())[: opts.k_smallest]
                train = replace(train, data=train.data[train.data[PARAMS].isin(sizes)]
                                .reset_index(drop=True))
            train = select_checkpoints(train, min_tokens=opts.min_tokens,
                                       max_token_frac=opts.max_token_frac)
            check_identifiable(train, n_parameters)
        except BayescaleError as exc:
            skipped.append({"family": str(family), "reason": exc.message})
            continue
        test = part[held].reset_index(drop=True)
        test = test[_scored(test, part_ids[held], opts.score_frac)].reset_index(drop=True)
        splits.append(Split(str(family), train, test, _describe(test, part_ids[held])))
    if not splits:
        reasons = "; ".join(f"{s['family']}: {s['reason']}" for s in skipped)
        raise BayescaleError(f"no family leaves a fittable training set ({reasons})",
                             path=runs.source)
    return splits, skipped


def _are(y: np.ndarray, median: np.ndarray) -> float:
    """Absolute relative error |L - L_hat| / L, averaged over rows (the Guide's ARE)."""
    return float(np.mean(np.abs(y - median) / y))


def score(y: np.ndarray, median: np.ndarray, bounds: dict[float, tuple[Any, Any]]) -> dict:
    """ARE of ``median``, coverage of each level's (lower, upper), median 90% half-width.

    Examples
    --------
    >>> out = score(np.array([2.0]), np.array([2.1]), {0.9: (np.array([1.9]), np.array([2.3]))})
    >>> {k: round(v, 3) for k, v in out.items()}
    {'are_median': 0.05, 'coverage_90': 1.0, 'halfwidth_90_median': 0.095}
    """
    out = {"are_median": _are(y, median)}
    for level, (lo, hi) in bounds.items():
        out[f"coverage_{round(100 * level)}"] = float(np.mean((lo <= y) & (y <= hi)))
    lo, hi = bounds[0.9]
    out["halfwidth_90_median"] = float(np.median((hi - lo) / 2.0 / median))
    return out


def _posterior_scores(post: Any, test: pd.DataFrame, discrepancy: bool, seed: int) -> dict:
    n, d, y = (test[k].to_numpy() for k in (PARAMS, TOKENS, LOSS))
    # a law of repeated data predicts each held-out row at its own unique tokens
    unique = test[UNIQUE].to_numpy() if UNIQUE in post.law.covariates else None
    bounds, median = {}, None
    for level in LEVELS:
        frame = post.predict(params=n, tokens=d, level=level, random_seed=seed,
                             discrepancy=discrepancy, unique_tokens=unique)
        bounds[level] = (frame["loss_lower"].to_numpy(), frame["loss_upper"].to_numpy())
        median = frame["loss_median"].to_numpy()
        distance = frame["extrapolation_decades"].to_numpy()
    out = score(y, median, bounds)
    out["bias"] = float(np.mean(np.log(y / median)))
    out["distance_decades"] = float(np.mean(distance))
    return out


def _baseline_scores(train: RunTable, test: pd.DataFrame, n_boot: int, seed: int) -> dict:
    data = train.data
    base = fit_baseline(data[PARAMS].to_numpy(), data[TOKENS].to_numpy(), data[LOSS].to_numpy(),
                        n_boot=n_boot, random_seed=seed)
    n, d, y = (test[k].to_numpy() for k in (PARAMS, TOKENS, LOSS))
    bounds = {}
    for level in LEVELS:
        frame = base.predict(n, d, level)
        bounds[level] = (frame["loss_lower"].to_numpy(), frame["loss_upper"].to_numpy())
    out = score(y, frame["loss_median"].to_numpy(), bounds)
    out["bias"] = float(np.mean(np.log(y / frame["loss_median"].to_numpy())))
    out["parameters"] = {k: v for k, v in base.point.params.items() if math.isfinite(v)}
    if data[PARAMS].nunique() == 2:
        out["alpha_profile"] = _alpha_profile(data, test, base.point)
    return out


def _alpha_profile(data: pd.DataFrame, test: pd.DataFrame, free: PointFit) -> list[dict]:
    """Two model sizes: the point fit held at each of :data:`RIDGE_ALPHAS`, its objective over
    the free fit's and its ARE on the scored rows (the free fit's alpha is arbitrary there)."""
    n, d, y = (data[k].to_numpy() for k in (PARAMS, TOKENS, LOSS))
    n_test, d_test, y_test = (test[k].to_numpy() for k in (PARAMS, TOKENS, LOSS))
    return [{"alpha": fit.params["alpha"], "objective_ratio": fit.objective / free.objective,
             "are_median": _are(y_test, fit.loss(n_test, d_test))}
            for fit in profile_alpha(n, d, y, free, RIDGE_ALPHAS)]


def summarize_cases(cases: list[dict], key: str | None = None) -> dict[str, float]:
    """Overall figures: means over cases of ARE and coverage, median of half-widths.

    ``key`` picks a nested block (``baseline``, ``plain``) of each case.

    Examples
    --------
    >>> cases = [{"are_median": 0.01, "coverage_50": 0.5, "coverage_80": 0.75,
    ...           "coverage_90": 1.0, "halfwidth_90_median": 0.02},
    ...          {"are_median": 0.03, "coverage_50": 0.5, "coverage_80": 0.75,
    ...           "coverage_90": 0.5, "halfwidth_90_median": 0.04}]
    >>> {k: round(v, 3) for k, v in summarize_cases(cases).items()}["coverage_90"]
    0.75
    """
    blocks = [c[key] if key else c for c in cases if (c.get(key) if key else c)]
    if not blocks:
        return {}
    out = {m: float(np.mean([b[m] for b in blocks])) for m in _METRICS if m != _METRICS[-1]}
    out["halfwidth_90_median"] = float(np.median([b["halfwidth_90_median"] for b in blocks]))
    return out


def are_versus(cases: list[dict], key: str = "baseline") -> dict[str, Any]:
    """ARE of the posterior median minus that of ``key`` (``baseline``, ``plain``), paired by case.

    ``mean`` and ``se`` (its standard error over cases; None for one case) say whether an
    overall difference is more than the luck of the cases: ARE varies far more between data
    sets than between two methods on one split. ``better`` counts the cases where the posterior
    median is closer.

    Examples
    --------
    >>> cases = [{"are_median": 0.01, "baseline": {"are_median": 0.02}},
    ...          {"are_median": 0.03, "baseline": {"are_median": 0.01}}]
    >>> {k: round(v, 4) for k, v in are_versus(cases).items()}
    {'mean': 0.005, 'se': 0.015, 'better': 1, 'cases': 2}
    """
    diffs = np.array([c["are_median"] - c[key]["are_median"] for c in cases if c.get(key)])
    if diffs.size == 0:
        return {}
    se = float(diffs.std(ddof=1) / np.sqrt(diffs.size)) if diffs.size > 1 else None
    return {"mean": float(diffs.mean()), "se": se, "better": int((diffs < 0).sum()),
            "cases": int(diffs.size)}


def backtest(
    runs: RunTable,
    spec: ModelSpec | None = None,
    sampler: SamplerOptions | None = None,
    options: BacktestOptions | None = None,
    *,
    progress: Callable[[dict], None] | None = None,
    cache: CompiledCache | None = None,
) -> dict[str, Any]:
    """Run the backtest and return its report (the ``--json`` object).

    Parameters
    ----------
    runs : RunTable
        The runs, with a ``family`` column for one case per family.
    spec : ModelSpec, optional
        Law, likelihood, priors (defaults as ``bayescale fit``).
    sampler : SamplerOptions, optional
        Default :data:`BACKTEST_SAMPLER` (2 chains x 500 draws).
    options : BacktestOptions, optional
        Hold-out, training window, scoring.
    progress : callable, optional
        Called with each finished case.
    cache : CompiledCache, optional
        Compiled models to reuse (one is made for the call if omitted).

    Returns
    -------
    dict
        ``cases`` (one dict per family), the overall ``are_median``, ``coverage_50/80/90``,
        ``halfwidth_90_median``, ``baseline`` and ``plain`` (same keys), ``are_versus_baseline``
        (:func:`are_versus`), ``unconverged`` (families whose fit failed the convergence
        checks; each case has its ``diagnostics`` and ``warnings``, those of
        :func:`bayescale.posterior.warnings.split_tails`), ``skipped``, ``seconds``.

    """
    start = time.perf_counter()
    spec = spec or ModelSpec()
    sampler = sampler or BACKTEST_SAMPLER
    options = options or BacktestOptions()
    splits, skipped = make_splits(runs, options, len(get_law(spec.law).parameters))
    cache = cache if cache is not None else CompiledCache()
    cases = []
    for split in splits:
        began = time.perf_counter()
        train = split.train
        if not options.run_effects and RUN in train.data:
            train = replace(train, data=train.data.drop(columns=[RUN]))
        result = fit(train, spec, sampler, calibration=options.calibration, cache=cache)
        post = result.posterior
        case: dict[str, Any] = {
            "family": split.family, "held_out": split.held_out,
            "n_train": len(split.train), "n_test": len(split.test),
            "train_sizes": int(split.train.data[PARAMS].nunique()),
            **_posterior_scores(post, split.test, True, sampler.random_seed),
            "diagnostics_ok": result.diagnostics.ok,
            "diagnostics": result.diagnostics.as_dict(),
            "warnings": split_tails(post),
        }
        cal = post.calibration
        if cal is not None:
            case["calibration"] = {"drift": cal.drift, "slope_sd": cal.slope_sd,
                                   "origins": len(cal.origins)}
            case["plain"] = _posterior_scores(post, split.test, False, sampler.random_seed)
        if options.n_boot > 0:
            case["baseline"] = _baseline_scores(split.train, split.test, options.n_boot,
                                                sampler.random_seed)
        case["seconds"] = time.perf_counter() - began
        cases.append(case)
        if progress is not None:
            progress(case)
    report: dict[str, Any] = {"n_cases": len(cases), "levels": list(LEVELS), "cases": cases,
                              **summarize_cases(cases)}
    report["baseline"] = summarize_cases(cases, "baseline")
    report["plain"] = summarize_cases(cases, "plain")
    report["are_versus_baseline"] = are_versus(cases)
    report["unconverged"] = [case["family"] for case in cases if not case["diagnostics_ok"]]
    report["skipped"] = skipped
    report["compiles"] = cache.compiles
    report["seconds"] = time.perf_counter() - start
    return report

