"""Which runs to add before the big one: preposterior analysis of candidate runs.

For a planned run (the target) and a compute budget, each candidate run (N, D) is scored by the
expected width of the target's ``level`` equal-tailed interval (ETI) of a new run's loss *after*
the candidate is run and the posterior updated, averaged over what the candidate may show
(preposterior analysis, Raiffa & Schlaifer 1961; expected information of an experiment,
Lindley 1956; Chaloner & Verdinelli 1995 review Bayesian experimental design):

1. Outcomes: ``outcomes`` posterior draws s_m are picked; the candidate's ln L is drawn as
   ln law_{s_m}(N, D) + b h(N, D) + seed and row noise, with the fit's noise model
   (:func:`bayescale.posterior.predictive.noise_draws`) and the law's learned error b h
   (:mod:`bayescale.law.calibration`, h the candidate's extrapolation distance).
2. Update: each posterior draw s is reweighted by the likelihood of the outcome under the fit's
   likelihood (:func:`bayescale.law.likelihoods.log_density`, a single run's scale
   sqrt(sigma_obs^2 + seed_noise^2)): importance sampling with the posterior as proposal
   (Gelfand & Smith 1990; for refits avoided the same way, Vehtari et al. 2017). While Kish's
   effective sample size (ESS = (sum w)^2 / sum w^2, Kish 1965) stays above
   ``min_ess_share`` of the draws, the reweighted draws stand for the refitted posterior; below
   it, up to ``max_refits`` refits (a few outcomes each, the compiled model reused through
   :class:`bayescale.inference.sampling.CompiledCache`) replace the estimate.
3. Law error: the added run widens the fitted ranges (:func:`bayescale.data.ranges.ranges_of`),
   so the target's extrapolation distance (:func:`bayescale.data.ranges.distance`) shrinks and
   the learned discrepancy b h with it. The slope's distribution (drift, scale) is kept.
4. The target's new-run draws (:func:`bayescale.posterior.predictive.new_run_log`, seed noise
   included) are summarised with the weights: the expected width, and its parts: parameters
   (the law's mean), law error (the discrepancy) and the seed floor, which no run shrinks.

A batch of k runs is chosen greedily: each step adds the affordable candidate (the batch's total
within the budget) whose joint outcome with the runs already chosen shrinks the expected width
most. Posterior.design would import the sampler (a layer above the posterior), so the entry
point is :func:`design` here, ``design(post, ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.data.compute import compute
from bayescale.data.ranges import AXES, distance, ranges_of
from bayescale.data.runs import (
    FAMILY,
    LOSS,
    PARAMS,
    TOKENS,
    UNIQUE,
    RunTable,
    read_plans,
)
from bayescale.inference.sampling import CompiledCache, SamplerOptions
from bayescale.law.calibration import Calibration
from bayescale.law.likelihoods import log_density
from bayescale.posterior.posterior import Posterior
from bayescale.posterior.predictive import new_run_log, noise_draws, target_noise, target_rng

#: Simulated outcomes per candidate (the preposterior average).
OUTCOMES = 64
#: Reweighting stands for a refit while Kish's ESS is at least this share of the draws.
MIN_ESS_SHARE = 0.05
#: ... and at least this many draws.
MIN_ESS = 50
#: Points per axis of the default candidate grid in log N x log D.
GRID = 8
#: Budget the ``design`` figure assumes when none is given: this share of the target's compute.
DEFAULT_BUDGET_SHARE = 0.1
#: The figure's target when none is given: the compute-optimal run at this multiple of the
#: largest fitted compute.
DEFAULT_SCALE_UP = 10.0
#: Outcomes refitted per candidate whose reweighting ran out of effective draws.
REFIT_OUTCOMES = 3
#: Sampler of the refits: short chains, enough for a 90% interval's width.
REFIT_SAMPLER = SamplerOptions(chains=2, draws=500, tune=500, random_seed=0, progress=False)
#: Names of the parts of the interval.
PARTS = ("parameters", "law error", "seed floor")


@dataclass
class Candidate:
    """One candidate run (or the chosen batch) and its expected effect on the target's interval.

    Widths are of the target's new-run loss (nats), ``level`` ETI; ``parts`` are the log-scale
    widths of the interval's parts (``parameters``, ``law error``, ``seed floor``), about
    additive in quadrature; ``ess`` the mean Kish ESS of the reweighted draws; ``method``
    ``reweight`` or ``refit`` (``reweight, low ESS`` when refits were due but none were left).
    """

    params: float
    tokens: float
    compute: float
    expected_width: float
    reduction: float
    reduction_per_flop: float
    shrinks: str
    parts: dict[str, float]
    part_reductions: dict[str, float]
    distance_after: float
    ess: float
    method: str
    chosen: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


@dataclass
class Design:
    """What ``bayescale design`` reports: the target now, every candidate, the chosen batch.

    ``candidates`` are ranked by expected reduction per FLOP; ``batch`` lists the chosen runs in
    the order the greedy search added them, ``batch_effect`` their joint expected effect.
    """

    target: dict[str, float]
    budget: float
    level: float
    interval: str
    width_now: float
    parts_now: dict[str, float]
    distance_now: float
    candidates: list[Candidate]
    batch: list[Candidate]
    batch_effect: Candidate | None
    runs: int
    outcomes: int
    draws: int
    refits: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """One JSON object: target, budget, candidates, the chosen batch and its effect."""
        out = asdict(self)
        out["candidates"] = [c.as_dict() for c in self.candidates]
        out["batch"] = [c.as_dict() for c in self.batch]
        out["batch_compute"] = float(sum(c.compute for c in self.batch))
        if self.batch_effect is not None:  # the batch's joint effect: no single N and D
            out["batch_effect"] = {k: v for k, v in self.batch_effect.as_dict().items()
                                   if k not in ("params", "tokens", "chosen")}
        return out

    def no_batch(self) -> str:
        """Why the batch is empty, one line: no affordable candidate is expected to narrow the
        target's interval (a reduction at or below zero is Monte-Carlo noise, not a gain)."""
        t, best = self.target, max(self.candidates, key=lambda c: c.reduction)
        return (f"no candidate run within the budget {fmt.flop(self.budget)} is expected to "
                f"narrow the {fmt.percent(self.level)} interval of the target N = "
                f"{fmt.size(t['params'])}"
                f", D = {fmt.size(t['tokens'])} (best expected reduction {best.reduction:.3g} "
                f"nats, N = {fmt.size(best.params)}, D = {fmt.size(best.tokens)}): nothing "
                "worth running; give other candidates or a larger budget")

    def table(self) -> pd.DataFrame:
        """The ranked candidates as a DataFrame (one row each)."""
        rows = [{k: v for k, v in c.as_dict().items() if k not in ("parts", "part_reductions")}
                for c in self.candidates]
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- candidates
def candidate_grid(post: Posterior, params: float, tokens: float, budget: float | None,
                   size: int = GRID) -> pd.DataFrame:
    """Default candidates: a ``size`` x ``size`` grid in log N x log D from the fitted runs' median
    N and D up to the target's, each run within ``budget`` (all of them when None).

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> post = Posterior.from_draws(known_draws())
    >>> grid = candidate_grid(post, 7e9, 1.4e11, 1e21)
    >>> bool((grid["compute"] <= 1e21).all()), len(grid) > 0
    (True, True)
    """
    data = post.data
    lo_n = min(float(np.median(data[PARAMS])), params)
    lo_d = min(float(np.median(data[TOKENS])), tokens)
    hi_n = max(params, float(data[PARAMS].max()))
    hi_d = max(tokens, float(data[TOKENS].max()))
    n, d = np.meshgrid(np.geomspace(lo_n, hi_n, size), np.geomspace(lo_d, hi_d, size))
    frame = pd.DataFrame({"params": n.ravel(), "tokens": d.ravel()})
    frame["compute"] = compute(frame["params"], frame["tokens"])
    if budget is None:
        return frame
    return frame[frame["compute"] <= budget * (1 + 1e-9)].reset_index(drop=True)


def read_candidates(path: Any) -> pd.DataFrame:
    """A table of feasible runs as ``params``, ``tokens``, ``compute``: any table
    :func:`bayescale.data.runs.read_plans` reads, with its checks and one-line errors.

    Refused with a ``unique_tokens`` column: the design's runs are on fresh data.
    """
    frame = read_plans(path, "a candidates table")
    if UNIQUE in frame:
        raise BayescaleError("design plans runs on fresh data, so a unique_tokens column "
                             "cannot be used; drop it", path=str(path), column=UNIQUE)
    return frame[["params", "tokens", "compute"]].reset_index(drop=True)


# -------------------------------------------------------------------------- the update
def kish_ess(weights: np.ndarray) -> np.ndarray:
    """Kish's effective sample size (sum w)^2 / sum w^2 along the last axis (Kish 1965).

    Examples
    --------
    >>> float(kish_ess(np.ones(100)))
    100.0
    >>> float(kish_ess(np.array([1.0, 0.0, 0.0, 0.0])))
    1.0
    """
    w = np.asarray(weights, dtype=float)
    return w.sum(axis=-1) ** 2 / np.maximum((w**2).sum(axis=-1), 1e-300)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray,
                       q: Sequence[float]) -> np.ndarray:
    """Quantiles ``q`` of ``values`` (draws) under each row of ``weights`` (outcomes x draws):
    (outcomes, len(q)). Uniform weights give the empirical quantiles.

    Examples
    --------
    >>> v = np.arange(100.0)
    >>> weighted_quantiles(v, np.ones((1, 100)), [0.05, 0.95]).tolist()
    [[4.0, 94.0]]
    >>> w = np.r_[np.zeros(50), np.ones(50)][None]
    >>> weighted_quantiles(v, w, [0.5]).tolist()
    [[74.0]]
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    cum = np.cumsum(weights[:, order], axis=1)
    cum /= cum[:, -1:]
    idx = np.stack([(cum < p).sum(axis=1) for p in q], axis=1)
    return ordered[np.minimum(idx, ordered.size - 1)]


def _parts(mean_log: np.ndarray, law_log: np.ndarray, new_log: np.ndarray, weights: np.ndarray,
           level: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per outcome: the width of the new run's loss interval (nats) and the log-scale widths of
    its parts, each the width of its own draws: parameters (the law's mean), law error (the
    discrepancy, ``law_log - mean_log``) and seed floor (the noise, ``new_log - law_log``);
    about additive in quadrature."""
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = weighted_quantiles(new_log, weights, q).T
    parts = {name: np.diff(weighted_quantiles(x, weights, q), axis=1)[:, 0]
             for name, x in (("parameters", mean_log), ("law error", law_log - mean_log),
                             ("seed floor", new_log - law_log))}
    return np.exp(hi) - np.exp(lo), parts


def _extend(ranges: dict[str, list[float]], params: np.ndarray,
            tokens: np.ndarray) -> dict[str, list[float]]:
    """``ranges`` widened to hold the added runs."""
    if params.size == 0:
        return ranges
    added = ranges_of(params, tokens)
    return {k: [min(ranges[k][0], added[k][0]), max(ranges[k][1], added[k][1])] for k in AXES}


@dataclass
class _Context:
    """What every candidate's evaluation shares: the draws, the target's draws, the outcomes."""

    post: Posterior
    draws: dict[str, np.ndarray]
    params: float
    tokens: float
    level: float
    random_seed: int
    ranges: dict[str, list[float]]
    calibration: Calibration | None
    mean_log: np.ndarray  # target: the law's ln L per draw
    slopes: np.ndarray  # target: the discrepancy's slope per draw (0 without a calibration)
    noise: np.ndarray  # target: a new run's ln-scale noise per draw
    picks: np.ndarray  # the draws the outcomes are simulated from
    outcome_slopes: np.ndarray  # the law error of the outcomes, per draw
    scale: np.ndarray  # a single new run's noise sd per draw
    noise_params: dict[str, np.ndarray]
    min_ess: float
    options: SamplerOptions
    cache: CompiledCache | None
    refits_left: int
    refits: int = 0
    loglik: dict[tuple[float, float], np.ndarray] = field(default_factory=dict)

    def target_draws(self, ranges: dict[str, list[float]]) -> tuple[np.ndarray, ...]:
        h = float(distance(ranges, self.params, self.tokens)[0])
        law_log = self.mean_log + self.slopes * h
        return self.mean_log, law_log, law_log + self.noise, h


def _context(post: Posterior, params: float, tokens: float, level: float, outcomes: int,
             random_seed: int, min_ess_share: float, options: SamplerOptions,
             cache: CompiledCache | None, max_refits: int, family: str | None) -> _Context:
    draws = post.draws(family=family)
    n_draws = draws["sigma_obs"].size
    cal = post.calibration_for(family)
    data = post.data
    if family in post.families:
        data = data[data[FAMILY] == family]
    ranges = cal.ranges if cal is not None else ranges_of(data[PARAMS], data[TOKENS])
    n, d = np.array([params]), np.array([tokens])
    mean_log = post.law.log_loss(draws, n, d)[:, 0]
    # the target's slopes and noise as predict draws them (same seed, same interval now)
    slopes = (cal.slopes(n_draws, np.random.default_rng(random_seed)) if cal is not None
              else np.zeros(n_draws))
    noise = target_noise(draws, n, d, random_seed)[:, 0]
    rng = np.random.default_rng([random_seed, 25])
    picks = rng.choice(n_draws, size=outcomes, replace=outcomes > n_draws)
    outcome_slopes = (cal.slopes(n_draws, rng) if cal is not None else np.zeros(n_draws))
    scale = np.hypot(draws["sigma_obs"], draws["seed_noise"])
    noise_params = {k: draws[k] for k in ("nu", "huber_k") if k in draws}
    return _Context(post, draws, params, tokens, level, random_seed, ranges, cal, mean_log,
                    slopes, noise, picks, outcome_slopes, scale, noise_params,
                    max(MIN_ESS, min_ess_share * n_draws), options, cache, max_refits)


def _outcomes(ctx: _Context, n_add: np.ndarray, d_add: np.ndarray) -> np.ndarray:
    """Simulated ln L of the added runs: (outcomes, runs).

    Outcome m is drawn from posterior draw ``picks[m]``: its law, the law error of its slope at
    the run's distance, and a new run's noise. Each run's noise comes from its own stream
    (:func:`target_rng` of its N and D), so a run's outcomes are the same in every batch."""
    picked = {k: v[ctx.picks] for k, v in ctx.draws.items()}
    law_add = ctx.post.law.log_loss(picked, n_add, d_add)
    h_add = distance(ctx.ranges, n_add, d_add)
    noise = np.hstack([noise_draws(picked, 1, target_rng(ctx.random_seed, n, d, 25.0))
                       for n, d in zip(n_add, d_add, strict=True)])
    return law_add + ctx.outcome_slopes[ctx.picks, None] * h_add[None, :] + noise


def _log_weights(ctx: _Context, n_add: np.ndarray, d_add: np.ndarray) -> np.ndarray:
    """ln p(outcomes | draw s) of the added runs under the fit's likelihood, summed over the
    runs (independent given the draw): (outcomes, draws). Each run's term is kept for reuse."""
    total = np.zeros((ctx.picks.size, ctx.mean_log.size))
    noise = {k: v[None, :] for k, v in ctx.noise_params.items()}
    for n, d in zip(n_add, d_add, strict=True):
        key = (float(n), float(d))
        if key not in ctx.loglik:
            y = _outcomes(ctx, np.array([n]), np.array([d]))
            law = ctx.post.law.log_loss(ctx.draws, np.array([n]), np.array([d]))[:, 0]
            ctx.loglik[key] = log_density(y, law[None, :], ctx.scale[None, :], noise)
        total += ctx.loglik[key]
    return total


def _evaluate(ctx: _Context, n_add: np.ndarray, d_add: np.ndarray,
              now: dict[str, Any]) -> Candidate:
    """The expected effect on the target of adding the runs (n_add, d_add)."""
    log_w = _log_weights(ctx, n_add, d_add)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    ess = kish_ess(w)
    ranges = _extend(ctx.ranges, n_add, d_add)
    mean_log, law_log, new_log, h = ctx.target_draws(ranges)
    width, parts = _parts(mean_log, law_log, new_log, w, ctx.level)
    method = "reweight"
    widths, part_means = width, {k: v for k, v in parts.items()}
    if float(np.median(ess)) < ctx.min_ess:
        if ctx.refits_left > 0:
            ctx.refits_left -= 1
            widths, part_means = _refit(ctx, n_add, d_add, _outcomes(ctx, n_add, d_add),
                                        ranges)
            method = "refit"
        else:
            method = "reweight, low ESS"
    expected = float(np.mean(widths))
    mean_parts = {k: float(np.mean(v)) for k, v in part_means.items()}
    part_reductions = {k: now["parts"][k] - mean_parts[k] for k in PARTS}
    flop = float(np.sum(compute(n_add, d_add)))
    reduction = now["width"] - expected
    shrinks = max(("parameters", "law error"), key=lambda k: part_reductions[k])
    if part_reductions[shrinks] <= 0:
        shrinks = "neither"
    return Candidate(
        params=float(n_add[-1]), tokens=float(d_add[-1]), compute=flop,
        expected_width=expected, reduction=reduction, reduction_per_flop=reduction / flop,
        shrinks=shrinks, parts=mean_parts, part_reductions=part_reductions, distance_after=h,
        ess=float(np.mean(ess)), method=method)


def _refit(ctx: _Context, n_add: np.ndarray, d_add: np.ndarray, y: np.ndarray,
           ranges: dict[str, list[float]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Widths after refitting with the first :data:`REFIT_OUTCOMES` outcomes added (the compiled
    model reused): where reweighting has too few effective draws left."""
    from bayescale.inference.fit import fit
    from bayescale.inference.model import ModelSpec
    from bayescale.law.priors import from_dict

    meta = ctx.post.meta
    spec = ModelSpec(law=meta["law"], likelihood=meta.get("likelihood", "studentt"),
                     priors=from_dict(meta["priors"]) if "priors" in meta else {},
                     seed_noise=meta.get("seed_noise"))
    base = ctx.post.data[[PARAMS, TOKENS, LOSS]].copy()
    base["run"] = (ctx.post.data["run"].astype(str).to_numpy() if "run" in ctx.post.data
                   else [f"fit{i}" for i in range(len(base))])
    cal = replace(ctx.calibration, ranges=ranges) if ctx.calibration is not None else None
    n_t, d_t = np.array([ctx.params]), np.array([ctx.tokens])
    widths, parts = [], {k: [] for k in PARTS}
    for m in range(min(REFIT_OUTCOMES, y.shape[0])):
        added = pd.DataFrame({PARAMS: n_add, TOKENS: d_add, LOSS: np.exp(y[m]),
                              "run": [f"design{j}" for j in range(n_add.size)]})
        frame = pd.concat([base, added], ignore_index=True)
        frame["line"] = np.arange(len(frame)) + 2
        options = replace(ctx.options, random_seed=ctx.options.random_seed + m)
        result = fit(RunTable(frame), spec, options, calibration=False, cache=ctx.cache)
        draws = result.posterior.draws()
        mean_log = ctx.post.law.log_loss(draws, n_t, d_t)
        law_log, new_log = new_run_log(mean_log, draws, n_t, d_t, cal, ctx.random_seed)
        uniform = np.ones((1, mean_log.shape[0]))
        width, part = _parts(mean_log[:, 0], law_log[:, 0], new_log[:, 0], uniform, ctx.level)
        widths.append(width[0])
        for k in PARTS:
            parts[k].append(part[k][0])
    ctx.refits += min(REFIT_OUTCOMES, y.shape[0])
    return np.array(widths), {k: np.array(v) for k, v in parts.items()}


# ------------------------------------------------------------------------------ design
def design(
    post: Posterior,
    params: float,
    tokens: float,
    budget: float,
    *,
    runs: int = 1,
    candidates: pd.DataFrame | None = None,
    level: float = 0.9,
    outcomes: int = OUTCOMES,
    random_seed: int = 0,
    min_ess_share: float = MIN_ESS_SHARE,
    max_refits: int = 0,
    options: SamplerOptions | None = None,
    cache: CompiledCache | None = None,
    family: str | None = None,
) -> Design:
    """Rank candidate runs by how much they are expected to narrow the target's interval, and
    choose a batch of ``runs`` within ``budget`` FLOP (preposterior analysis, see the module).

    Parameters
    ----------
    post : Posterior
        The fit.
    params, tokens : float
        The target's N and D; it must lie beyond the fitted runs.
    budget : float
        FLOP available for the added runs: each run, and the batch in total, costs at most this.
    runs : int
        Size k of the batch, chosen greedily.
    candidates : DataFrame, optional
        Feasible runs (``params``, ``tokens``; :func:`read_candidates`); by default
        :func:`candidate_grid`.
    level : float
        Credible level of the target's equal-tailed interval.
    outcomes : int
        Simulated outcomes per candidate.
    random_seed : int
        Seed of the outcomes (and of the target's draws, as ``predict``'s).
    min_ess_share : float
        Reweighting stands for a refit while Kish's ESS is at least this share of the draws.
    max_refits : int
        Refits allowed where it is not (each refits :data:`REFIT_OUTCOMES` outcomes); 0 keeps the
        reweighted estimate and marks it ``reweight, low ESS``.
    options, cache : SamplerOptions, CompiledCache, optional
        Sampler of the refits (:data:`REFIT_SAMPLER` by default) and compiled models to reuse.
    family : str, optional
        In a family fit, the family the target and the added runs belong to (a new family's
        population predictive when None or unseen): its draws are reweighted, its runs set the
        ranges; no refits there.

    Returns
    -------
    Design
        When no affordable candidate is expected to narrow the interval, its batch is empty,
        ``batch_effect`` None and the first note says so (:meth:`Design.no_batch`); the
        candidates are still ranked.

    Raises
    ------
    BayescaleError
        For a target inside the fitted runs or a budget below the cheapest candidate.

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"params": [1e8, 3e8, 1e9], "tokens": [2e9, 6e9, 2e10],
    ...                      "loss": [3.0, 2.7, 2.5]})
    >>> post = Posterior.from_draws(known_draws(), data=runs)
    >>> plan = design(post, 7e9, 1.4e11, 1e21, runs=2)
    >>> len(plan.batch) <= 2, plan.batch_effect.expected_width <= plan.width_now
    (True, True)
    """
    if family is not None and not post.families:
        raise BayescaleError(f"this fit has no model families, so none called '{family}'")
    for name, value in (("params", params), ("tokens", tokens), ("budget", budget)):
        if not (np.isfinite(value) and value > 0):
            raise BayescaleError(f"{name} must be positive and finite, got {value}")
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise BayescaleError(f"runs must be a positive integer, got {runs!r}")
    if not 0.0 < level < 1.0:
        raise BayescaleError(f"level must lie strictly between 0 and 1, got {level}")
    if outcomes < 2:
        raise BayescaleError(f"outcomes must be at least 2, got {outcomes}")
    ctx = _context(post, params, tokens, level, outcomes, random_seed, min_ess_share,
                   options or REFIT_SAMPLER, cache, 0 if post.families else max_refits, family)
    h_now = float(distance(ctx.ranges, params, tokens)[0])
    target = f"N = {fmt.size(params)}, D = {fmt.size(tokens)}"
    if h_now <= 0:
        raise BayescaleError(f"the target {target} lies inside the fitted runs (extrapolation "
                             "distance 0): no run can narrow it by extending the range; nothing "
                             "to design (use risk or predict)")
    pool = (candidates if candidates is not None
            else candidate_grid(post, params, tokens, budget=None))
    if len(pool) == 0:
        raise BayescaleError("no candidate runs given")
    pool = pool.reset_index(drop=True)
    cost = compute(pool["params"].to_numpy(float), pool["tokens"].to_numpy(float))
    if cost.min() > budget * (1 + 1e-9):
        cheap = int(np.argmin(cost))
        raise BayescaleError(
            f"the budget {fmt.flop(budget)} is below the cheapest candidate (N = "
            f"{fmt.size(pool['params'][cheap])}, D = {fmt.size(pool['tokens'][cheap])}, "
            f"{fmt.flop(cost[cheap])})")
    pool = pool[cost <= budget * (1 + 1e-9)].reset_index(drop=True)
    notes = []
    if len(pool) < len(cost) and candidates is not None:
        notes.append(f"{len(cost) - len(pool)} candidates cost more than the budget: left out")

    uniform = np.ones((1, ctx.mean_log.size))
    width_now, parts_now = _parts(*ctx.target_draws(ctx.ranges)[:3], uniform, level)
    now = {"width": float(width_now[0]), "parts": {k: float(v[0]) for k, v in parts_now.items()}}
    n_all, d_all = pool["params"].to_numpy(float), pool["tokens"].to_numpy(float)
    singles = [_evaluate(ctx, n_all[i:i + 1], d_all[i:i + 1], now) for i in range(len(pool))]

    chosen, effect = _greedy(ctx, pool, singles, runs, budget, now)
    if 0 < len(chosen) < runs:
        notes.append(f"chose {len(chosen)} of the {runs} runs asked for: no other run within "
                     "the budget narrows the interval further")
    for i in chosen:
        singles[i].chosen = True
    ranked = sorted(singles, key=lambda c: -c.reduction_per_flop)
    if any(c.method == "reweight, low ESS" for c in singles):
        fix = ("refits are not available for a family fit" if post.families
               else "allow refits (--max-refits) to refit them")
        notes.append("some candidates left few effective draws after reweighting (Kish ESS "
                     f"below the threshold): their expected widths are rough; {fix}")
    plan = Design(
        target={"params": float(params), "tokens": float(tokens),
                "compute": float(compute(params, tokens))},
        budget=float(budget), level=level, interval="eti", width_now=now["width"],
        parts_now=now["parts"], distance_now=h_now, candidates=ranked,
        batch=[singles[i] for i in chosen], batch_effect=effect, runs=runs, outcomes=outcomes,
        draws=int(ctx.mean_log.size), refits=ctx.refits, notes=notes)
    if not plan.batch:
        plan.notes.insert(0, plan.no_batch())
    return plan


def _greedy(ctx: _Context, pool: pd.DataFrame, singles: list[Candidate], runs: int,
            budget: float, now: dict[str, Any]) -> tuple[list[int], Candidate | None]:
    """The batch: two greedy searches, one adding the run with the largest marginal reduction,
    one the largest marginal reduction per FLOP, each within the budget; the better of the two
    (the budgeted greedy rule of Khuller, Moss & Naor 1999; Krause & Guestrin 2005). A run is
    added only if it is expected to narrow the interval, so the batch is empty (and its effect
    None) when no candidate does: a negative expected reduction is Monte-Carlo noise, not a
    gain."""
    n_all, d_all = pool["params"].to_numpy(float), pool["tokens"].to_numpy(float)
    best: tuple[list[int], Candidate | None] = ([], None)
    for per_flop in (False, True):
        chosen: list[int] = []
        effect: Candidate | None = None
        spent = 0.0
        for step in range(runs):
            free = [i for i in range(len(pool)) if i not in chosen
                    and spent + singles[i].compute <= budget * (1 + 1e-9)]
            if not free:
                break
            scored = ({i: singles[i] for i in free} if step == 0 else
                      {i: _evaluate(ctx, n_all[[*chosen, i]], d_all[[*chosen, i]], now)
                       for i in free})
            gain = {i: scored[i].reduction - (effect.reduction if effect else 0.0)
                    for i in free}
            pick = max(free, key=lambda i: gain[i] / (singles[i].compute if per_flop else 1))
            if gain[pick] <= 0:
                break  # nothing affordable narrows it (further): no run is worth its FLOP
            chosen.append(pick)
            effect = scored[pick]
            spent += singles[pick].compute
        if best[1] is None or (effect is not None and effect.reduction > best[1].reduction):
            best = (chosen, effect)
    return best
