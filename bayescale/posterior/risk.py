"""Risk review of one planned run, computed draw by draw from the posterior.

For a plan (N, D) at compute C = 6 N D, per posterior draw s:

- the law's expected loss L_s(N, D) and a new run's loss L_s(N, D) exp(u + eps), with the same
  noise draws as :meth:`bayescale.posterior.posterior.Posterior.predict` (same
  ``random_seed``), so the two commands print the same interval;
- P(new run's loss < target): the share of draws whose new-run loss is below the target;
- the compute-optimal alternative (N*_s, D*_s) at the same C, its loss, and the regret
  L_s(N, D) - L_s(N*_s, D*_s) >= 0, the expected loss the plan gives up;
- P(the alternative's new run beats the plan's new run), with independent noise for each run;
- the compute share: the budget at which the optimum reaches the plan's expected loss, over C;
- with a limit of U unique tokens (a law with a data-limit term, docs/limits.md), the plan's
  loss at its D / U epochs and, as the alternative, the best run of C under the same limit
  (no compute share: the limited optimum at every budget would cost a search each);
- how far the plan extrapolates: C over the largest fitted 6 N D, N over the largest fitted N,
  D over the largest fitted D (and how far outside the fitted D range it lies, either side),
  and under a data limit its epochs over the fitted runs' most;
- whether the interval is dominated by parameter uncertainty or by the noise floor.

A verdict (GO, CAUTION, NO-GO) follows from :class:`Thresholds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.core.intervals import summarize
from bayescale.data.compute import compute
from bayescale.data.ranges import FAR_COMPUTE, FAR_EPOCHS, FAR_PARAMS, FAR_TOKENS, FittedRange
from bayescale.law.calibration import Calibration
from bayescale.law.laws import Law
from bayescale.posterior.limits import data_limited_draws, unique_covariates
from bayescale.posterior.optimal import optimal_draws
from bayescale.posterior.predictive import (
    discrepancy_share,
    floor_share,
    new_run_log,
    optimum_new_run_log,
)

Draws = Mapping[str, np.ndarray]
VERDICTS = ("GO", "CAUTION", "NO-GO")


@dataclass(frozen=True)
class Thresholds:
    """Rules of the verdict; the worst rule triggered decides.

    Attributes
    ----------
    go_probability : float
        With a target loss: CAUTION when P(loss < target) is below this.
    nogo_probability : float
        With a target loss: NO-GO when P(loss < target) is below this.
    caution_regret, nogo_regret : float
        CAUTION / NO-GO when the median regret (nats of expected loss given up against the
        compute-optimal allocation) exceeds this.
    max_compute_ratio, max_params_ratio : float
        CAUTION when the plan's compute (N) exceeds the largest fitted 6 N D (N) by more than
        this factor: beyond it the law's form, not the data, decides the answer.
    max_tokens_ratio : float
        CAUTION when the plan's D lies outside the fitted D range (above the largest or below
        the smallest) by more than this factor: heavily over- or under-trained plans.
    max_epochs_ratio : float
        Under a data limit (``unique_tokens``): CAUTION when the plan repeats its data more than
        this multiple of the most epochs among the fitted runs: there the value of repeated
        tokens is the law's form, not a measurement.
    noise_share : float
        The interval counts as dominated by the noise floor when the noise share of its width
        is at least this.

    Examples
    --------
    >>> Thresholds(go_probability=0.9).nogo_probability
    0.2
    """

    go_probability: float = 0.8
    nogo_probability: float = 0.2
    caution_regret: float = 0.01
    nogo_regret: float = 0.05
    max_compute_ratio: float = FAR_COMPUTE
    max_params_ratio: float = FAR_PARAMS
    max_tokens_ratio: float = FAR_TOKENS
    max_epochs_ratio: float = FAR_EPOCHS
    noise_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.nogo_probability <= self.go_probability <= 1.0:
            raise BayescaleError("thresholds need 0 <= nogo_probability <= go_probability <= 1")
        if not 0.0 <= self.caution_regret <= self.nogo_regret:
            raise BayescaleError("thresholds need 0 <= caution_regret <= nogo_regret")
        ratios = (self.max_compute_ratio, self.max_params_ratio, self.max_tokens_ratio,
                  self.max_epochs_ratio)
        if not all(ratio > 0 for ratio in ratios):  # NaN too: it would switch a rule off
            raise BayescaleError("extrapolation thresholds must be positive")
        if not 0.0 < self.noise_share <= 1.0:
            raise BayescaleError("noise_share must lie in (0, 1]")


def prob_below(new_log: np.ndarray, target_loss: float) -> float:
    """Share of draws whose new-run loss lies below ``target_loss``.

    Examples
    --------
    >>> prob_below(np.log(np.array([1.9, 2.0, 2.1, 2.2])), 2.05)
    0.5
    """
    return float(np.mean(new_log < np.log(target_loss)))


def compute_share(law: Law, draws: Draws, compute: float, mean_log: np.ndarray) -> np.ndarray:
    """Per draw, C_eq / C: the budget at which the optimum's expected loss equals the plan's.

    The loss at the optimum falls with C, so bisection on ln C_eq in [ln C - 40, ln C] finds
    it; a plan at the optimum gives 1.

    Examples
    --------
    >>> from bayescale.law.laws import get_law
    >>> d = {"E": np.array([1.8]), "A": np.array([480.0]), "B": np.array([2000.0]),
    ...      "alpha": np.array([0.35]), "beta": np.array([0.37])}
    >>> law = get_law("chinchilla")
    >>> n, t = law.optimal(d, 1e22)
    >>> mean = law.log_loss(d, n, t)[:, 0]
    >>> round(float(compute_share(law, d, 1e22, mean)[0]), 6)
    1.0
    """
    hi = np.full(mean_log.shape, np.log(compute))
    lo = hi - 40.0
    for _ in range(60):
        mid = (lo + hi) / 2
        n_opt, d_opt = law.optimal(draws, np.exp(mid))
        at_opt = law.log_loss(draws, n_opt.reshape(-1, 1), d_opt.reshape(-1, 1))[:, 0]
        above = at_opt > mean_log  # the optimum at this budget is still worse than the plan
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.exp((lo + hi) / 2 - np.log(compute))


@dataclass
class RiskReview:
    """Everything ``bayescale risk`` reports about one plan; intervals are dicts
    ``{"median", "lower", "upper"}``.

    Made by :func:`review` (or :meth:`bayescale.Posterior.risk`); ``verdict`` is one of
    :data:`VERDICTS` and ``reasons`` says which rules of :class:`Thresholds` triggered it.

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> from bayescale.posterior.posterior import Posterior
    >>> review = Posterior.from_draws(known_draws()).risk(7e9, 1.4e11, target_loss=2.2)
    >>> review.verdict, review.reasons
    ('CAUTION', ['P(loss < 2.2) = 0.658 < 0.8'])
    >>> print(review.markdown())  # doctest: +ELLIPSIS
    ### Risk review: N = 7B parameters, D = 140B tokens (5.88e+21 FLOP)
    <BLANKLINE>
    **Verdict: CAUTION**: P(loss < 2.2) = 0.658 < 0.8.
    ...
    """

    params: float
    tokens: float
    compute: float
    level: float
    interval: str
    target_loss: float | None
    loss: dict[str, float]
    mean_loss: dict[str, float]
    prob_below_target: float | None
    optimal: dict[str, dict[str, float]]
    regret: dict[str, float]
    compute_share: dict[str, float] | None
    prob_optimal_better: float
    extrapolation: dict[str, Any]
    uncertainty: dict[str, Any]
    verdict: str
    reasons: list[str] = field(default_factory=list)
    fit_doubts: list[str] = field(default_factory=list)
    unique_tokens: float | None = None

    @property
    def verdict_line(self) -> str:
        """One line: the verdict and why, e.g. ``CAUTION: P(loss < 2.2) = 0.658 < 0.8``."""
        return f"{self.verdict}: {'; '.join(self.reasons)}"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (with the :attr:`verdict_line`)."""
        out = asdict(self)
        out["verdict_line"] = self.verdict_line
        return out

    def markdown(self, source: str | None = None) -> str:
        """A block ready to paste into a review document (see :class:`RiskReview`)."""
        pct = f"{fmt.percent(self.level)} {self.interval.upper()}"

        def row(name: str, value: dict[str, float], formatter=fmt.number) -> str:
            return (f"| {name} | {formatter(value['median'])} | "
                    f"[{formatter(value['lower'])}, {formatter(value['upper'])}] |")

        opt, ext, unc = self.optimal, self.extrapolation, self.uncertainty
        lines = [
            f"### Risk review: N = {fmt.size(self.params)} parameters, "
            f"D = {fmt.size(self.tokens)} tokens ({fmt.flop(self.compute)})",
            "",
            f"**Verdict: {self.verdict}**: {'; '.join(self.reasons)}.",
            "",
            f"| quantity | median | {pct} |",
            "|---|---|---|",
            row("new run's loss (seed noise included)", self.loss),
            row("law's expected loss", self.mean_loss),
        ]
        if self.prob_below_target is not None and self.target_loss is not None:
            lines.append(f"| P(loss < {fmt.number(self.target_loss)}) | "
                         f"{self.prob_below_target:.3f} | |")
        limited = "" if self.unique_tokens is None else (
            f" with {fmt.size(self.unique_tokens)} unique tokens")
        if self.unique_tokens is not None:
            lines.append(f"| epochs (D / U) | {self.tokens / self.unique_tokens:.3g} | |")
        lines += [
            row(f"compute-optimal N* at the same compute{limited}", opt["params"], fmt.size),
            row("compute-optimal D*", opt["tokens"], fmt.size),
            row("optimum's new-run loss", opt["loss"]),
            row("regret: expected loss given up (nats)", self.regret),
        ]
        if self.compute_share is not None:
            lines.append(row("compute the optimum needs for the plan's loss",
                             self.compute_share, fmt.percent))
        lines += [
            f"| P(optimum's run beats the plan's run) | {self.prob_optimal_better:.3f} | |",
            f"| compute / largest fitted compute | {ext['compute_ratio']:.3g}x | |",
            f"| N / largest fitted N | {ext['params_ratio']:.3g}x | |",
            f"| D / largest fitted D | {ext['tokens_ratio']:.3g}x | |",
            *([] if ext.get("epochs_ratio") is None else
              [f"| epochs / most fitted epochs | {ext['epochs_ratio']:.3g}x | |"]),
            f"| noise-floor share of the interval | {unc['seed_floor_share']:.0%} | |",
            "",
        ]
        if ext["warning"]:
            lines.append(f"- **Extrapolation:** {ext['warning']}.")
        lines += [f"- **Fit:** {doubt}." for doubt in self.fit_doubts]
        lines.append(f"- **Uncertainty:** {unc['advice']}.")
        if source:
            lines.append(f"- Posterior: `{source}`.")
        return "\n".join(lines) + "\n"


def extrapolation(
    data: pd.DataFrame, params: float, tokens: float, thresholds: Thresholds,
    calibrated: bool = False, unique_tokens: float | None = None,
    fitted_epochs: float | None = None,
) -> dict[str, Any]:
    """How far (N, D) lies beyond the fitted runs, with a warning when too far; the warning
    says what the interval assumes there (with a ``calibrated`` discrepancy term, that the
    law's learned error keeps growing with the distance; without, that the law holds). With
    ``unique_tokens`` and ``fitted_epochs`` (the fitted runs' most epochs,
    :func:`bayescale.posterior.store.fitted_epochs`), ``epochs_ratio``: the plan's epochs over
    them (None otherwise).

    Examples
    --------
    >>> frame = pd.DataFrame({"params": [1e9], "tokens": [2e10]})
    >>> extrapolation(frame, 7e10, 1.4e12, Thresholds())["compute_ratio"]
    4900.0
    >>> extrapolation(frame, 1e9, 4e11, Thresholds(), unique_tokens=1e10,
    ...               fitted_epochs=2.0)["epochs_ratio"]
    20.0
    """
    fitted = FittedRange.of(data["params"], data["tokens"])
    min_n, max_n = fitted.min_params, fitted.max_params
    max_c, min_d, max_d = fitted.max_compute, fitted.min_tokens, fitted.max_tokens
    c_ratio, n_ratio, d_ratio, d_outside = (
        float(v) for v in fitted.ratios(params, tokens).values())
    far = []
    if c_ratio > thresholds.max_compute_ratio:
        far.append(f"compute {c_ratio:.3g}x the largest fitted run "
                   f"(limit {thresholds.max_compute_ratio:g}x)")
    if n_ratio > thresholds.max_params_ratio:
        far.append(f"N {n_ratio:.3g}x the largest fitted N "
                   f"(limit {thresholds.max_params_ratio:g}x)")
    if d_outside > thresholds.max_tokens_ratio:
        side = (f"{d_ratio:.3g}x the largest" if d_ratio > 1
                else f"1/{min_d / tokens:.3g} of the smallest")
        far.append(f"D {side} fitted D (limit {thresholds.max_tokens_ratio:g}x)")
    e_ratio = None
    if unique_tokens is not None and fitted_epochs is not None:
        e_ratio = float(tokens / unique_tokens / fitted_epochs)
        if e_ratio > thresholds.max_epochs_ratio:
            far.append(f"{tokens / unique_tokens:.3g} epochs, {e_ratio:.3g}x the most among the "
                       f"fitted runs (limit {thresholds.max_epochs_ratio:g}x)")
    warning = None
    if far:
        warning = (f"{' and '.join(far)}: this far out the law's functional form, not the data, "
                   "decides the answer; the interval " + (
                       "includes the law's error learned within the runs, assumed to keep "
                       "growing linearly with the distance that far out" if calibrated
                       else "assumes the law holds exactly that far out"))
    return {"compute_ratio": c_ratio, "params_ratio": n_ratio, "tokens_ratio": d_ratio,
            "tokens_outside": d_outside, "max_compute": max_c, "min_params": min_n,
            "max_params": max_n, "min_tokens": min_d, "max_tokens": max_d,
            "epochs_ratio": e_ratio, "warning": warning}


def suggested_runs(params: float, tokens: float, ext: dict[str, Any]) -> list[dict[str, float]]:
    """Runs that would narrow the interval of a plan beyond the fitted runs most for their cost.

    Runs a quarter and half of the way, in ln N and ln D, from the nearest point of the fitted
    range (each of N and D clipped into its fitted range) to the plan: a plan beyond the data
    in N and compute gets larger models, an over-trained one the same N on more tokens. None
    when the plan's N and D both lie inside the fitted ranges.

    Examples
    --------
    >>> ext = {"min_params": 1e8, "max_params": 1e9, "min_tokens": 2e9, "max_tokens": 2e10}
    >>> [f"{r['params']:.2g}/{r['tokens']:.2g}" for r in suggested_runs(1e10, 2e11, ext)]
    ['1.8e+09/3.6e+10', '3.2e+09/6.3e+10']
    >>> [f"{r['params']:.2g}/{r['tokens']:.2g}" for r in suggested_runs(3e8, 2e12, ext)]
    ['3e+08/6.3e+10', '3e+08/2e+11']
    """
    near_n = min(max(params, ext["min_params"]), ext["max_params"])
    near_d = min(max(tokens, ext["min_tokens"]), ext["max_tokens"])
    if np.isclose(near_n, params, rtol=1e-6) and np.isclose(near_d, tokens, rtol=1e-6):
        return []  # inside, or on the edge up to the rounding of sizes like 8.7B
    out = []
    for step in (0.25, 0.5):
        n = float(near_n * (params / near_n) ** step)
        d = float(near_d * (tokens / near_d) ** step)
        out.append({"compute": compute(n, d), "params": n, "tokens": d,
                    "cost_share": n * d / (params * tokens)})
    return out


def _uncertainty(
    mean_log: np.ndarray, new_log: np.ndarray, level: float, params: float, tokens: float,
    ext: dict[str, Any], thresholds: Thresholds, law_log: np.ndarray | None = None,
) -> dict[str, Any]:
    # law_log: the law plus its learned extrapolation error (bayescale.law.calibration), if any
    law_log = mean_log if law_log is None else law_log
    share = float(floor_share(law_log[:, None], new_log[:, None], level)[0])
    law_error = float(discrepancy_share(mean_log[:, None], law_log[:, None], new_log[:, None],
                                        level)[0])
    if share >= thresholds.noise_share:
        return {
            "seed_floor_share": share, "law_error_share": law_error, "dominated_by": "noise",
            "suggested_runs": [],
            "advice": (f"The seed-noise floor is {share:.0%} of the interval: more small runs "
                       "would barely narrow it; only repeated seeds of the run itself would"),
        }
    runs = suggested_runs(params, tokens, ext)
    where = " and ".join(
        f"N ~ {fmt.size(r['params'])}, D ~ {fmt.size(r['tokens'])} at {fmt.flop(r['compute'])}"
        for r in runs)
    more_epochs = (ext.get("epochs_ratio") or 0.0) > 1.0  # the plan repeats beyond the runs
    if law_error >= 1.0 - share - law_error:  # the larger of the parts more runs can shrink
        in_nd = f"N and D (e.g. runs at {where})" if runs else None
        in_epochs = "epochs (fewer unique tokens, repeated more often)" if more_epochs else None
        closer = " and in ".join(p for p in (in_nd, in_epochs) if p) or "N and D"
        return {
            "seed_floor_share": share, "law_error_share": law_error, "dominated_by": "law error",
            "suggested_runs": runs,
            "advice": (f"The law's own extrapolation error is {law_error:.0%} of the interval: "
                       "it grows with the distance beyond the fitted runs; runs closer to the "
                       f"plan in {closer} shrink it, more small runs do not; "
                       "`bayescale design` picks which runs, within a budget"),
        }
    if runs:
        tail = f"most on the way to the plan, closer to the target: e.g. runs at {where}"
    elif more_epochs:
        tail = ("the plan lies inside the fitted N and D but repeats its data more often than "
                "any fitted run: add runs near its N and D at more epochs")
    else:
        tail = "the plan lies inside the fitted range: add runs (or seeds) near its N and D"
    return {
        "seed_floor_share": share, "law_error_share": law_error, "dominated_by": "parameters",
        "suggested_runs": runs,
        "advice": (f"Parameter uncertainty is {1 - share - law_error:.0%} of the interval: more "
                   f"runs would narrow it, {tail}; `bayescale design` picks which runs, "
                   "within a budget"),
    }


def decide(
    prob: float | None,
    target_loss: float | None,
    regret_median: float,
    ext: dict[str, Any],
    thresholds: Thresholds,
    fit_doubts: Sequence[str] = (),
) -> tuple[str, list[str]]:
    """The verdict (GO, CAUTION, NO-GO) and the reasons for it; a doubt about the fit itself
    (priors that hold the law away from the runs, :mod:`bayescale.posterior.warnings`) is at least
    a CAUTION.

    Examples
    --------
    >>> ext = {"compute_ratio": 2.0, "params_ratio": 1.5, "warning": None}
    >>> decide(0.95, 2.0, 0.001, ext, Thresholds())[0]
    'GO'
    >>> decide(0.1, 2.0, 0.001, ext, Thresholds())[0]
    'NO-GO'
    """
    t = thresholds
    level, reasons = 0, []

    def flag(severity: int, text: str) -> None:
        nonlocal level
        level = max(level, severity)
        reasons.append(text)

    if prob is not None and target_loss is not None:
        text = f"P(loss < {fmt.number(target_loss)}) = {prob:.3f}"
        if prob < t.nogo_probability:
            flag(2, f"{text} < {t.nogo_probability:g}")
        elif prob < t.go_probability:
            flag(1, f"{text} < {t.go_probability:g}")
    if not np.isfinite(regret_median):  # a law that cannot be evaluated is no ground for GO
        flag(1, "the regret is not finite: some posterior draws give no finite law")
    elif regret_median > t.nogo_regret:
        flag(2, f"median regret {regret_median:.3g} nats > {t.nogo_regret:g}: "
                "re-split the compute")
    elif regret_median > t.caution_regret:
        flag(1, f"median regret {regret_median:.3g} nats > {t.caution_regret:g}")
    d_outside = ext.get("tokens_outside", 1.0)
    beyond = [text for over, text in (
        (ext["compute_ratio"] > t.max_compute_ratio, f"{ext['compute_ratio']:.3g}x in compute"),
        (ext["params_ratio"] > t.max_params_ratio, f"{ext['params_ratio']:.3g}x in N"),
        (d_outside > t.max_tokens_ratio, f"D {d_outside:.3g}x outside the fitted range"),
    ) if over]  # only the axes beyond their limits, as the extrapolation warning names them
    if beyond:
        flag(1, f"extrapolates beyond the data: {', '.join(beyond)}")
    e_ratio = ext.get("epochs_ratio")
    if e_ratio is not None and e_ratio > t.max_epochs_ratio:
        flag(1, f"repeats its data {e_ratio:.3g}x more often than any fitted run")
    if fit_doubts:
        flag(1, "the priors hold the law away from the fitted runs (see the fit's warning)")
    if level == 0:
        if prob is not None and target_loss is not None:
            reasons.append(f"P(loss < {fmt.number(target_loss)}) = {prob:.3f}")
        reasons.append(f"median regret {regret_median:.3g} nats")
        reasons.append(f"{ext['compute_ratio']:.3g}x the largest fitted compute")
    return VERDICTS[level], reasons


def review(
    law: Law,
    draws: Draws,
    data: pd.DataFrame,
    params: float,
    tokens: float,
    *,
    target_loss: float | None = None,
    level: float = 0.9,
    interval_kind: str = "eti",
    random_seed: int = 0,
    thresholds: Thresholds | None = None,
    calibration: Calibration | None = None,
    fit_doubts: Sequence[str] = (),
    unique_tokens: float | None = None,
    fitted_epochs: float | None = None,
) -> RiskReview:
    """Risk review of the plan (N, D) from posterior ``draws`` fitted on ``data``.

    Parameters
    ----------
    law : Law
        The fitted law.
    draws : mapping
        Posterior draws of the law's parameters and the noise (``sigma_obs``, ``seed_noise``,
        ``nu`` for a Student-t likelihood).
    data : pandas.DataFrame
        The fitted runs (``params``, ``tokens``), for the extrapolation ratios.
    params, tokens : float
        The plan's N and D.
    target_loss : float, optional
        The loss the run must reach.
    level, interval_kind : float, str
        Credible level and ``eti`` or ``hdi``.
    random_seed : int
        Seed of the noise draws; the new run's draws equal ``predict``'s with the same seed.
    thresholds : Thresholds, optional
        Rules of the verdict.
    calibration : Calibration, optional
        The law's learned extrapolation error (:mod:`bayescale.law.calibration`): added to the new
        run's loss (and the optimum's) as :meth:`Posterior.predict` adds it.
    fit_doubts : sequence of str
        Warnings that the fit follows its priors more than the runs: each is kept in the
        review, and any makes the verdict at least CAUTION.
    unique_tokens : float, optional
        A limit of U unique tokens (a law with a data-limit term): the plan is trained for
        D / U epochs, and the alternative is the best run of its compute under the same limit.
    fitted_epochs : float, optional
        The most epochs among the fitted runs, for the repetition rule of :class:`Thresholds`.

    Returns
    -------
    RiskReview
    """
    thresholds = Thresholds() if thresholds is None else thresholds
    if not isinstance(thresholds, Thresholds):
        raise BayescaleError("thresholds must be a bayescale.posterior.risk.Thresholds, got "
                             f"{type(thresholds).__name__}: Thresholds(**your_values)")
    if target_loss is not None and not (isinstance(target_loss, int | float | np.floating)
                                        and np.isfinite(target_loss) and target_loss > 0):
        raise BayescaleError(f"target loss must be a positive finite number, got "
                             f"{target_loss!r}")
    flop = compute(params, tokens)
    n, d = np.array([params]), np.array([tokens])
    covariates = unique_covariates(law, unique_tokens, (1,))
    mean_log = (law.log_loss(draws, n, d, covariates) if covariates
                else law.log_loss(draws, n, d))
    # predict's arithmetic; the discrepancy's slope per draw is shared by plan and optimum
    law_log, new_log = (x[:, 0] for x in new_run_log(mean_log, draws, n, d, calibration,
                                                      random_seed, covariates))
    mean_log = mean_log[:, 0]
    opt = (optimal_draws(law, draws, compute=flop) if unique_tokens is None
           else data_limited_draws(law, draws, flop, unique_tokens))
    opt_mean_log = np.log(opt["loss"])
    _, opt_new_log = optimum_new_run_log(opt, draws, calibration, random_seed, flop,
                                         unique_tokens)
    regret = np.exp(mean_log) - opt["loss"]

    def triple(values: np.ndarray, log: bool = False) -> dict[str, float]:
        # ln L draws are summarised as L, as predict does (an HDI is not kept by exp)
        out = summarize(np.exp(values) if log else values, level, interval_kind)
        return {k: float(v) for k, v in out.items()}

    prob = prob_below(new_log, target_loss) if target_loss is not None else None
    ext = extrapolation(data, params, tokens, thresholds, calibration is not None,
                        unique_tokens, fitted_epochs)
    unc = _uncertainty(mean_log, new_log, level, params, tokens, ext, thresholds, law_log)
    regret_summary = triple(regret)
    verdict, reasons = decide(prob, target_loss, regret_summary["median"], ext, thresholds,
                              fit_doubts)
    return RiskReview(
        params=float(params), tokens=float(tokens), compute=flop, level=level,
        interval=interval_kind, target_loss=target_loss,
        loss=triple(new_log, log=True), mean_loss=triple(mean_log, log=True),
        prob_below_target=prob,
        optimal={"params": triple(opt["params"]), "tokens": triple(opt["tokens"]),
                 "loss": triple(opt_new_log, log=True),
                 "mean_loss": triple(opt_mean_log, log=True)},
        regret={**regret_summary, "mean": float(regret.mean())},
        compute_share=(triple(compute_share(law, draws, flop, mean_log))
                       if unique_tokens is None else None),
        prob_optimal_better=float(np.mean(opt_new_log < new_log)),
        extrapolation=ext, uncertainty=unc, verdict=verdict, reasons=reasons,
        fit_doubts=list(fit_doubts), unique_tokens=unique_tokens,
    )
