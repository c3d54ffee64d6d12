"""Allocation under the limits labs have: finite unique data and inference cost, per draw.

- **Data limit** (:func:`data_limited_draws`): with U unique tokens, the (N, D) minimising the
  law's loss under C = 6 N D when D > U repeats the data D / U times; the law must have a
  data-limit term (Muennighoff et al. 2023, :class:`bayescale.law.laws.Muennighoff`). The
  unlimited optimum (fresh data, U = D) beside it gives the loss the limit costs.
- **Inference cost** (:func:`inference_draws`): the (N, D) reaching a target loss at the least
  lifetime FLOPs 6 N D + 2 N T for T tokens served (Sardana et al. 2024, "Beyond
  Chinchilla-Optimal", eq. 2), beside the compute-optimal run reaching the same loss (T
  ignored in the choice, counted in its cost). Any law; with ``unique_tokens`` under the data
  limit too.

Both are solved draw by draw on a grid of ln N refined twice around each draw's best point
(resolution better than 0.1% in N); for the inference cost, the D reaching the target at each N
is found by bisection on ln D (the loss falls with D). The data-limited search spans the whole
curve C = 6 N D, so no budget puts its answer out of reach; the inference search has fixed
ranges (no budget defines it), and a draw whose answer sits at an edge of a range, or that
would need more than it, is named in a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.core.intervals import MIN_HELD, summarize
from bayescale.data.compute import compute as flop_of
from bayescale.data.compute import tokens_for
from bayescale.law.laws import Law
from bayescale.posterior import store
from bayescale.posterior.optimal import optimal_draws
from bayescale.posterior.warnings import far_targets

if TYPE_CHECKING:
    from bayescale.posterior.posterior import Posterior

Draws = Mapping[str, np.ndarray]

#: Search range of ln N (parameters) and ln D (tokens) for the inference cost.
LOG_N_RANGE = (np.log(1e5), np.log(1e15))
LOG_D_RANGE = (np.log(1e5), np.log(1e17))
#: Points of the coarse grid of ln N, and of each refinement between a draw's neighbours.
GRID, REFINE = 256, 64
#: Refinements of the grid: the step shrinks by REFINE / 2 each time.
PASSES = 2
#: ln of a size standing for "without bound" (N = D = 1e100): a power term A / N^alpha is then
#: below 1e-10 A for any exponent above 0.1, so the law's loss there is its floor.
LOG_UNBOUNDED = np.log(1e100)
#: An answer within this many nats of a search bound sits on it (the grid holds the bounds).
AT_EDGE = 1e-9
#: Bisection steps on ln D (interval 27 nats / 2^50).
BISECT = 50
#: Objective values (ln L, ln FLOPs) within this of a draw's minimum count as equal: where the
#: loss is flat along the curve (few unique tokens saturate both N' and D'), the smallest N of
#: the flat stretch is the answer, not whichever point float noise puts lowest.
FLAT = 1e-9
#: A law's ln L within this of the target's counts as reaching it (float noise in ln L is
#: ~1e-15; a default target at the data limit's floor is reached only to rounding).
REACH = 1e-9
#: A best run whose loss is within this share of the lowest loss U allows is at the limit's
#: floor: more compute there buys less than a millionth of the loss.
SATURATED = 1e-6
#: Step in ln N left of an inference answer that tells whether D's upper bound cut the search.
EDGE_STEP = 1e-3


def _size(law: Law, draws: Draws) -> int:
    return int(np.asarray(draws[law.parameters[0]]).size)


def _minimise(objective: Callable[[np.ndarray], np.ndarray], lo: np.ndarray,
              hi: np.ndarray) -> np.ndarray:
    """Per draw (rows), the ln N in [lo, hi] minimising ``objective`` (draws x points):
    a grid, then ``PASSES`` times a finer grid between the best point's neighbours (the
    bounds stay on every grid, so an answer at a bound is exactly the bound). The best point
    is the smallest ln N within :data:`FLAT` of the grid's minimum."""
    rows = np.arange(lo.size)
    left, right, points = lo, hi, GRID
    for _ in range(PASSES + 1):
        grid = left[:, None] + np.linspace(0.0, 1.0, points) * (right - left)[:, None]
        values = objective(grid)
        values = np.where(np.isfinite(values), values, np.inf)
        best = np.argmax(values <= values.min(axis=1, keepdims=True) + FLAT, axis=1)
        left = grid[rows, np.clip(best - 1, 0, points - 1)]
        right = grid[rows, np.clip(best + 1, 0, points - 1)]
        answer, points = grid[rows, best], REFINE
    return answer


def _at(values: np.ndarray, bound: float) -> np.ndarray:
    """Where positive ``values`` sit on ``bound`` (within :data:`AT_EDGE` nats)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.log(values) - np.log(bound)) <= AT_EDGE


def edge_warning(at_edge: np.ndarray, what: str, bounds: list[str]) -> str | None:
    """A warning line when draws (``at_edge``, one flag per draw) put their answer on a search
    bound: there the numbers are the bound's, not the optimum's, which may lie beyond it.

    Examples
    --------
    >>> edge_warning(np.array([True, False]), "the run", ["N = 1"]).split(":")[0]
    '1 of 2 posterior draws put the run at the edge of the searched range (N = 1)'
    """
    if not at_edge.any():
        return None
    return (f"{int(at_edge.sum())} of {at_edge.size} posterior draws put {what} at the edge "
            "of the searched range "
            f"({', '.join(bounds)}): the optimum may lie beyond it, so those draws' numbers "
            "are the bound's, not the optimum's")


def unique_covariates(law: Law, unique_tokens: float | None, shape: tuple[int, ...]
                      ) -> dict[str, np.ndarray] | None:
    """The law's covariates for ``unique_tokens`` at every point of ``shape`` (None without
    them); refused for a law without a data-limit term, or U not positive and finite."""
    if unique_tokens is None:
        return None
    if "unique_tokens" not in law.covariates:
        raise BayescaleError(f"--unique-tokens needs a law with a data-limit term (fit --law "
                             f"muennighoff); this fit's law, {law.name}, has none")
    if not np.isfinite(unique_tokens) or unique_tokens <= 0:
        raise BayescaleError(f"unique tokens must be positive and finite, got {unique_tokens}")
    return {"unique_tokens": np.full(shape, float(unique_tokens))}


def data_limited_draws(law: Law, draws: Draws, compute: float,
                       unique_tokens: float) -> dict[str, np.ndarray]:
    """Per draw, the best N, D under C = 6 N D with U unique tokens, and what the limit costs.

    Returns ``params``, ``tokens``, ``epochs`` (D / U), ``tokens_per_param``, ``loss`` (the
    law's mean loss there), and at the unlimited optimum (fresh data) ``unlimited_params``,
    ``unlimited_tokens``, ``unlimited_loss``; ``limit_cost`` = loss - unlimited_loss (nats).

    Examples
    --------
    >>> from bayescale.law.laws import get_law
    >>> draws = {"E": np.array([1.87]), "A": np.array([521.0]), "B": np.array([1488.0]),
    ...          "alpha": np.array([0.353]), "beta": np.array([0.36]),
    ...          "R_D": np.array([15.4]), "R_N": np.array([5.3])}
    >>> out = data_limited_draws(get_law("muennighoff"), draws, 1e22, 1e10)
    >>> bool(out["epochs"][0] > 1), bool(out["limit_cost"][0] > 0)
    (True, True)
    >>> data_limited_draws(get_law("muennighoff"), draws, 1e22, 1e14)["limit_cost"]
    array([0.])

    A draw whose unlimited optimum needs no more than U tokens is not limited: the law with
    U >= D is the law on fresh data (U is capped at D), and no (N, D) is better on repeated
    data than on fresh, so its answer is the unlimited optimum at no cost. The others are
    searched along the whole curve, from N = 1 to D = 1 (the limited D can lie far above the
    unlimited one: with few unique tokens extra parameters are worth little too).
    """
    size = _size(law, draws)

    def loss_at(log_n: np.ndarray) -> np.ndarray:
        d = tokens_for(compute, np.exp(log_n))
        return law.log_loss(draws, np.exp(log_n), d,
                            unique_covariates(law, unique_tokens, log_n.shape))

    unlimited = optimal_draws(law, draws, compute=compute)  # the optimum on fresh data
    free_n, free_d, free_loss = (unlimited[k] for k in ("params", "tokens", "loss"))
    log_n = _minimise(loss_at, np.zeros(size), np.full(size, np.log(compute / 6.0)))
    loss = np.exp(loss_at(log_n[:, None])[:, 0])
    free = unique_tokens >= free_d
    n = np.where(free, free_n, np.exp(log_n))
    d = np.where(free, free_d, tokens_for(compute, np.exp(log_n)))
    loss = np.where(free, free_loss, loss)
    return {"params": n, "tokens": d, "epochs": d / unique_tokens, "tokens_per_param": d / n,
            "loss": loss, "unlimited_params": free_n, "unlimited_tokens": free_d,
            "unlimited_loss": free_loss, "limit_cost": np.where(free, 0.0, loss - free_loss)}


def lowest_loss(law: Law, draws: Draws, unique_tokens: float | None = None) -> np.ndarray:
    """Per draw, the loss the law approaches as N and D grow without bound: no target below it
    is reachable at any size. E for Chinchilla's form (Hoffmann et al. 2022, eq. 2); with U
    unique tokens under Muennighoff's law, E + A / (U_N (1 + R*_N))^alpha +
    B / (U (1 + R*_D))^beta, the saturated N' and D' (Muennighoff et al. 2023, eq. 5-7).
    Evaluated at N = D = 1e100 (:data:`LOG_UNBOUNDED`), so each law answers by its own formula.

    Examples
    --------
    >>> from bayescale.law.laws import get_law
    >>> draws = {"E": np.array([1.87]), "A": np.array([521.0]), "B": np.array([1488.0]),
    ...          "alpha": np.array([0.353]), "beta": np.array([0.36]),
    ...          "R_D": np.array([15.4]), "R_N": np.array([5.3])}
    >>> law = get_law("muennighoff")
    >>> round(float(lowest_loss(law, draws)[0]), 6), bool(lowest_loss(law, draws, 1e10)[0] > 2)
    (1.87, True)
    """
    at = np.full((_size(law, draws), 1), np.exp(LOG_UNBOUNDED))
    covariates = unique_covariates(law, unique_tokens, at.shape)
    return np.exp(law.log_loss(draws, at, at, covariates)[:, 0])


def tokens_to_reach(law: Law, draws: Draws, log_n: np.ndarray, log_target: np.ndarray,
                    unique_tokens: float | None = None) -> np.ndarray:
    """Per draw and ln N (draws x points), ln D at which the law's loss falls to the target
    (``log_target`` per draw); NaN where even D = 1e17 tokens does not reach it. The law's
    closed form where it has one (:meth:`Law.log_tokens_to_reach`), else a bisection on ln D."""
    lo = np.full(log_n.shape, LOG_D_RANGE[0])
    hi = np.full(log_n.shape, LOG_D_RANGE[1])
    covariates = unique_covariates(law, unique_tokens, log_n.shape)
    solved = law.log_tokens_to_reach(draws, log_n, log_target, covariates)
    if solved is not None:  # as the bisection: D below its range is its lowest D
        return np.where(solved <= hi, np.maximum(solved, lo), np.nan)
    goal = log_target[:, None]
    reachable = law.log_loss(draws, np.exp(log_n), np.exp(hi), covariates) <= goal
    for _ in range(BISECT):
        mid = (lo + hi) / 2
        above = law.log_loss(draws, np.exp(log_n), np.exp(mid), covariates) > goal
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(reachable, hi, np.nan)


def best_loss(law: Law, draws: Draws, compute: float, unique_tokens: float | None = None
              ) -> np.ndarray:
    """Per draw, the law's loss at the best run of ``compute``: the compute-optimal run, or
    with ``unique_tokens`` the best run under that data limit (the unlimited run's loss may
    lie below any the limit allows). The inference search's default target."""
    if unique_tokens is not None:
        return data_limited_draws(law, draws, compute, float(unique_tokens))["loss"]
    return optimal_draws(law, draws, compute=compute)["loss"]


def _log_goal(target_loss: Any, size: int) -> np.ndarray:
    """ln of the target loss per draw, raised by :data:`REACH` (a loss that equal counts)."""
    return np.log(np.broadcast_to(np.asarray(target_loss, dtype=float), (size,))) + REACH


def inference_draws(law: Law, draws: Draws, inference_tokens: float, target_loss: Any,
                    unique_tokens: float | None = None) -> dict[str, np.ndarray]:
    """Per draw, the N, D reaching ``target_loss`` (one or one per draw) at the least lifetime
    FLOPs 6 N D + 2 N T (Sardana et al. 2024), and the compute-optimal run (least 6 N D)
    reaching the same loss.

    Returns ``params``, ``tokens``, ``tokens_per_param``, ``training_flops``,
    ``inference_flops``, ``total_flops``; the compute-optimal run's ``chinchilla_params``,
    ``chinchilla_tokens``, ``chinchilla_total_flops`` (its training plus serving T tokens);
    ``flops_saved`` (the difference) and ``flops_saved_share`` (of the compute-optimal run's
    total). NaN for draws whose law never reaches the target.

    Examples
    --------
    >>> from bayescale.law.laws import get_law
    >>> draws = {"E": np.array([1.82]), "A": np.array([482.0]), "B": np.array([2085.0]),
    ...          "alpha": np.array([0.348]), "beta": np.array([0.366])}
    >>> out = inference_draws(get_law("chinchilla"), draws, 1e13, 2.0)
    >>> bool(out["params"][0] < out["chinchilla_params"][0]), bool(out["flops_saved"][0] > 0)
    (True, True)
    """
    if not np.isfinite(inference_tokens) or inference_tokens < 0:
        raise BayescaleError(f"inference tokens must be zero or more, got {inference_tokens}")
    size = _size(law, draws)
    log_target = _log_goal(target_loss, size)
    lo, hi = np.full(size, LOG_N_RANGE[0]), np.full(size, LOG_N_RANGE[1])

    def solve(served: float) -> tuple[np.ndarray, np.ndarray]:
        def cost(log_n: np.ndarray) -> np.ndarray:
            log_d = tokens_to_reach(law, draws, log_n, log_target, unique_tokens)
            n = np.exp(log_n)
            return np.log(flop_of(n, np.exp(log_d)) + 2.0 * n * served)

        log_n = _minimise(cost, lo, hi)
        log_d = tokens_to_reach(law, draws, log_n[:, None], log_target, unique_tokens)[:, 0]
        return np.where(np.isfinite(log_d), np.exp(log_n), np.nan), np.exp(log_d)

    n, d = solve(float(inference_tokens))
    n0, d0 = solve(0.0)
    training, serving = flop_of(n, d), 2.0 * n * inference_tokens
    total = training + serving
    chinchilla_total = flop_of(n0, d0) + 2.0 * n0 * inference_tokens
    return {"params": n, "tokens": d, "tokens_per_param": d / n, "training_flops": training,
            "inference_flops": serving, "total_flops": total, "chinchilla_params": n0,
            "chinchilla_tokens": d0, "chinchilla_total_flops": chinchilla_total,
            "flops_saved": chinchilla_total - total,
            "flops_saved_share": (chinchilla_total - total) / chinchilla_total}


def fitted_epochs(post: Posterior) -> float | None:
    """The most epochs (tokens / unique tokens) among the fitted rows, as the posterior file
    records them (:func:`bayescale.posterior.store.fitted_epochs`); None without them."""
    recorded = store.fitted_epochs(post.tree)
    return None if recorded is None else recorded[1]


def beyond_fitted(epochs: Any, fitted: float | None) -> np.ndarray:
    """Where ``epochs`` repeat the data more often than any fitted run did (by over 5%, so a
    plan at the fitted epochs, rounded, is not beyond them); all False without a record.

    Examples
    --------
    >>> beyond_fitted([4.1, 40.0], 4.0).tolist(), beyond_fitted([40.0], None).tolist()
    ([False, True], [False])
    """
    epochs = np.asarray(epochs, dtype=float)
    return epochs > fitted * 1.05 if fitted is not None else np.zeros(epochs.shape, bool)


def repetition_warning(epochs: float, fitted: float | None,
                       what: str = "the plan") -> str | None:
    """A warning line when a plan repeats its data more often than any fitted run did.

    Examples
    --------
    >>> repetition_warning(40.0, 4.0).split(":")[0]
    'the plan repeats its data 40 times (epochs), beyond the 4 the law was fitted on'
    """
    if not beyond_fitted(epochs, fitted):
        return None
    return (f"{what} repeats its data {epochs:.3g} times (epochs), beyond the {fitted:.3g} "
            "the law was fitted on: the value of repeated tokens there is the prior's and the "
            "form's extrapolation (R_D), not measured")


def summarise(values: Mapping[str, np.ndarray], level: float, kind: str) -> dict[str, dict]:
    """Median and ``level`` interval of each quantity's draws (NaN draws, those missing an
    inference target, left out: :func:`inference_aware` refuses too few others)."""
    out = {}
    for name, samples in values.items():
        finite = np.asarray(samples, dtype=float)
        finite = finite[np.isfinite(finite)]
        out[name] = {k: float(v) for k, v in summarize(finite, level, kind).items()}
    return out


def saturation_warning(at_floor: np.ndarray, loss: float, unique_tokens: float) -> str | None:
    """A warning when draws put the data-limited best run at the lowest loss U allows (within
    :data:`SATURATED`): a smaller budget reaches it, and along C = 6 N D the loss is flat, so
    N and D are the smallest model of the flat stretch (:data:`FLAT`), not a sharp optimum.
    ``loss`` is the upper end of the limited run's interval: the suggested command's target,
    which most draws reach.

    Examples
    --------
    >>> line = saturation_warning(np.array([True, False]), 4.06811, 1.3141e8)
    >>> line.split(" at the lowest")[0]
    '1 of 2 posterior draws put the best run under the data limit'
    >>> line.split("`")[1]
    'bayescale optimal FIT --target-loss 4.069 --unique-tokens 1.3141e+08 --inference-tokens 0'
    """
    if not at_floor.any():
        return None
    scale = 10.0 ** (3 - np.floor(np.log10(loss)))  # four digits, rounded up: not below it
    return (f"{int(at_floor.sum())} of {at_floor.size} posterior draws put the best run under "
            f"the data limit at the lowest loss {fmt.size(unique_tokens)} unique tokens allow "
            "at any size: more compute does not lower it, so N and D are the smallest model "
            "of a stretch of equal losses; `bayescale optimal FIT --target-loss "
            f"{fmt.number(np.ceil(loss * scale) / scale)} --unique-tokens {unique_tokens:.6g} "
            "--inference-tokens 0` gives the least compute reaching the upper end of its "
            "interval")


def data_limited(post: Posterior, compute: float, unique_tokens: float, *, level: float = 0.9,
                 interval_kind: str = "eti", family: str | None = None) -> dict[str, Any]:
    """The data-limited optimum of a posterior at ``compute``: each quantity of
    :func:`data_limited_draws` as median and interval, and the warnings (plans that repeat
    data beyond the fitted epochs; a best run far outside the fitted runs, by the rule of
    :func:`bayescale.posterior.warnings.far_targets`; answers on the search's bounds).

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> from bayescale.posterior.posterior import Posterior
    >>> data_limited(Posterior.from_draws(known_draws()), 1e22, 1e10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: --unique-tokens needs a law with a data-limit term ...
    """
    unique_covariates(post.law, unique_tokens, (1,))
    draws = post.draws(family=family)
    values = data_limited_draws(post.law, draws, float(compute), float(unique_tokens))
    summary = summarise(values, level, interval_kind)
    warnings = [repetition_warning(summary["epochs"]["median"], fitted_epochs(post),
                                   "the best run under the data limit"),
                edge_warning(_at(values["params"], 1.0) | _at(values["tokens"], 1.0),
                             "the best run under the data limit",
                             ["N = 1 parameter", "D = 1 token"])]
    warnings.append(saturation_warning(
        values["loss"] <= lowest_loss(post.law, draws, unique_tokens) * (1 + SATURATED),
        summary["loss"]["upper"], unique_tokens))
    warnings += far_targets(post, summary["params"]["median"], summary["tokens"]["median"],
                            float(compute), discrepancy=False, family=family)
    return {"compute": float(compute), "unique_tokens": float(unique_tokens),
            "fitted_max_epochs": fitted_epochs(post), **summary,
            "warnings": [w for w in warnings if w]}


def _unreached(missed: np.ndarray, below: np.ndarray, unique_tokens: float | None
               ) -> list[str]:
    """Why draws miss the target, one phrase per reason with its count of all draws: the
    target at or below the loss their law reaches at any size (``below``, from
    :func:`lowest_loss`), or a target their law reaches only beyond the searched N and D."""
    lowest = ("the lowest loss their law reaches with these unique tokens"
              if unique_tokens is not None else "their irreducible loss E")
    reasons = [(below, f"it lies at or below {lowest}"),
               (missed & ~below, "their law reaches it only beyond the searched range, N up "
                f"to {fmt.size(np.exp(LOG_N_RANGE[1]))} and D up to "
                f"{fmt.size(np.exp(LOG_D_RANGE[1]))} tokens")]
    return [f"{int(mask.sum())} of {mask.size} posterior draws never reach the target loss "
            f"({why})"
            for mask, why in reasons if mask.any()]


def _cut_by_tokens(law: Law, draws: Draws, values: Mapping[str, np.ndarray], target: Any,
                   unique_tokens: float | None) -> np.ndarray:
    """Per draw, whether D's upper bound cut the inference search at its answer: a slightly
    smaller N would need more than the largest D searched (the cost there is not a minimum of
    the law's but the bound's)."""
    found = np.isfinite(values["params"])
    log_n = np.log(np.where(found, values["params"], np.exp(LOG_N_RANGE[1]))) - EDGE_STEP
    left = tokens_to_reach(law, draws, log_n[:, None], _log_goal(target, found.size),
                           unique_tokens)[:, 0]
    return found & ~np.isfinite(left) & (log_n > LOG_N_RANGE[0])


def inference_aware(post: Posterior, inference_tokens: float, *, compute: float | None = None,
                    target_loss: float | None = None, unique_tokens: float | None = None,
                    level: float = 0.9, interval_kind: str = "eti",
                    family: str | None = None,
                    plan_total: float | None = None) -> dict[str, Any]:
    """The lifetime-optimal N, D of a posterior for T = ``inference_tokens`` served.

    The target loss is ``target_loss``, else per draw the law's loss at the compute-optimal
    run of ``compute`` (with ``unique_tokens``, the best run under that data limit: the
    unlimited run's loss may lie below any the limit allows). Each quantity of
    :func:`inference_draws` as median and interval, and ``reached``, the share of draws whose
    law reaches the target. With ``plan_total`` (a planned run's 6ND + 2NT, ``risk``):
    ``plan_flops_saved_share``, the share of it saved.

    Refused (:class:`BayescaleError`) when fewer draws reach the target than a ``level``
    interval needs (:data:`bayescale.core.intervals.MIN_HELD` inside it, the rule of
    :func:`bayescale.core.intervals.check_held`), saying why the others do not. Warnings: the
    draws that miss the target and why, the inference-aware run far outside the fitted runs
    (:func:`bayescale.posterior.warnings.far_targets`), answers on the search's bounds.
    """
    if target_loss is None and compute is None:
        raise BayescaleError("give --compute (the target is then the loss of its compute-"
                             "optimal run) or --target-loss")
    if target_loss is not None and not np.all(np.isfinite(target_loss) & (
            np.asarray(target_loss) > 0)):
        raise BayescaleError(f"target loss must be positive and finite, got {target_loss}")
    draws = post.draws(family=family)
    if target_loss is None:
        target = best_loss(post.law, draws, float(compute), unique_tokens)
    else:  # one loss, or one per draw (risk: the plan's own loss)
        target = np.broadcast_to(np.asarray(target_loss, dtype=float), (post.n_draws,))
    values = inference_draws(post.law, draws, float(inference_tokens), target, unique_tokens)
    missed = ~np.isfinite(values["params"])
    floor = lowest_loss(post.law, draws, unique_tokens)
    below = missed & (_log_goal(target, target.size) <= np.log(floor))
    reasons = _unreached(missed, below, unique_tokens)
    held = int((~missed).sum())
    if level * held < MIN_HELD:  # check_held's rule, on the draws that reach the target
        why = ("lies below the loss the law reaches" if below.sum() == missed.sum()
               else "is out of the law's reach within the searched range")
        if below.any():
            lowest = summarise({"floor": floor}, level, interval_kind)["floor"]
            reasons.append(
                f"E's {fmt.percent(level)} interval is {fmt.interval(**lowest)}"
                if unique_tokens is None else
                f"the lowest loss with {fmt.size(unique_tokens)} unique tokens has the "
                f"{fmt.percent(level)} interval {fmt.interval(**lowest)}")
        raise BayescaleError(
            f"the target loss {fmt.number(float(np.median(target)))} {why}: {held} of "
            f"{target.size} posterior draws reach it, fewer than a {level:g} interval needs "
            f"({MIN_HELD}); {'; '.join(reasons)}")
    if plan_total is not None:
        values["plan_flops_saved_share"] = (plan_total - values["total_flops"]) / plan_total
    summary = summarise({"target_loss": target, **values}, level, interval_kind)
    warnings = []
    if unique_tokens is not None:
        epochs = summary["tokens"]["median"] / unique_tokens
        warnings.append(repetition_warning(epochs, fitted_epochs(post),
                                           "the inference-aware run"))
    warnings += [f"{reason}: the intervals are of the others" for reason in reasons]
    n_edges = [np.exp(bound) for bound in LOG_N_RANGE]
    d_edges = [np.exp(bound) for bound in LOG_D_RANGE]
    warnings.append(edge_warning(
        _at(values["params"], n_edges[0]) | _at(values["params"], n_edges[1])
        | _at(values["tokens"], d_edges[0]) | _cut_by_tokens(post.law, draws, values, target,
                                                            unique_tokens),
        "the inference-aware run", [f"N from {fmt.size(n_edges[0])} to {fmt.size(n_edges[1])}",
                                    f"D from {fmt.size(d_edges[0])} to {fmt.size(d_edges[1])} "
                                    "tokens"]))
    warnings += far_targets(post, summary["params"]["median"], summary["tokens"]["median"],
                            summary["training_flops"]["median"], discrepancy=False,
                            family=family)
    if plan_total is not None:
        summary["plan_total_flops"] = float(plan_total)
    return {"inference_tokens": float(inference_tokens), "compute": compute,
            "unique_tokens": unique_tokens, "reached": held / target.size, **summary,
            "warnings": [w for w in warnings if w]}
