"""Warnings a user should hear once, each in one plain line.

- a law parameter the data do not constrain (its posterior as wide as its prior);
- rows the likelihood treats as outliers (far from the law in units of the noise scale);
- priors that hold the law away from the rows (the point fit without priors follows them far
  closer), or, with run offsets, runs the law misses by far more than their offsets' scale;
- predictions far outside the fitted runs (extrapolation in compute, model size or tokens);
- runs of only two model sizes, which cannot identify a law's size term E + A / N^alpha;
- chains that disagree under a Student-t likelihood with nu below 1 (several modes).

Each function returns a list of messages (empty when all is well); the CLI prints them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayescale.core import format as fmt
from bayescale.core.diagnostics import MAX_R_HAT
from bayescale.data.ranges import FAR_COMPUTE, FAR_PARAMS, FAR_TOKENS, FittedRange
from bayescale.data.runs import FAMILY
from bayescale.law.baseline import fit_point

if TYPE_CHECKING:
    from bayescale.posterior.posterior import Posterior

#: Posterior sd above this share of the prior sd: the data barely moved the prior.
UNCONSTRAINED_RATIO = 0.7
#: Residual beyond this many noise scales: an outlier (a normal row lies there once in 16,000).
OUTLIER_SCALES = 4.0
#: A run the law misses by more than this many of its offset's scales: offsets are normal, so
#: one run in 370 lies there by chance.
RUN_SCALES = 3.0
#: The posterior's law misses the rows by more than this multiple of the point fit's miss
#: (median |residual| of ln L): the priors hold the law away from the data. A well-specified
#: fit sits near 1.
PRIOR_PULL = 3.0
#: Rows per law parameter the point fit needs before its miss says anything (with 5 rows it
#: fits Chinchilla's 5 parameters exactly).
PRIOR_PULL_ROWS_PER_PARAMETER = 4
#: Draws x rows the residuals' posterior median is computed from at most.
RESIDUAL_CELLS = 16_000_000
#: A Student-t nu below this: heavier tails than Cauchy's, a likelihood with several modes.
SPLIT_NU = 1.0


def loss_residuals(post: Posterior) -> np.ndarray:
    """Posterior-median residual ln L_observed - ln L_law of each fitted row (its family's law
    in a family fit). On a large table the median comes from evenly spaced draws, at most
    ``RESIDUAL_CELLS`` draws x rows (a warning needs no finer median).

    Examples
    --------
    >>> from bayescale import Posterior
    >>> from bayescale.law.simulate import known_draws
    >>> bool(abs(loss_residuals(Posterior.from_draws(known_draws()))[0]) < 1)
    True
    """
    observed = np.log(post.data["loss"].to_numpy())
    return observed - np.median(post.row_log_law(_every(post)), axis=0)


def _every(post: Posterior) -> int:
    """Every how many draws a per-row posterior median takes (see :data:`RESIDUAL_CELLS`)."""
    return max(1, math.ceil(post.n_draws * len(post.data) / RESIDUAL_CELLS))


def _row_draws(post: Posterior, names: list[str]) -> dict[str, np.ndarray]:
    """Evenly spaced draws of each row's noise parameters ``names``: name -> (draws, rows)."""
    return {name: values[:: _every(post)] for name, values in post.row_draws(names).items()}


def sd_ratios(post: Posterior, size: int = 20_000, random_seed: int = 0) -> dict[str, float]:
    """Posterior sd / prior sd of each law parameter (of each family's, ``alpha[opt]``, in a
    family fit: a new family's population predictive says nothing of what the data pinned).

    On the log scale for log-normal priors (their sd on the raw scale is set by the far tail),
    else on the raw scale; prior draws come from :meth:`Law.prior_draws`.

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> from bayescale.posterior.posterior import Posterior
    >>> post = Posterior.from_draws(known_draws())
    >>> round(sd_ratios(post)["alpha"], 2)  # far below 1: the data, not the prior, decide
    0.04
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
    (:func:`loss_residuals`); the scale is the posterior median of a row's total
    noise sqrt(sigma_obs^2 + seed_noise^2) (the model's sd of ln L around the law).
    """
    noise = _row_draws(post, ["sigma_obs", "seed_noise"])
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
    treat = {"studentt": "the Student-t likelihood down-weights them",
             "huber": "each keeps a bounded pull on the Huber likelihood's fit (--likelihood "
                      "studentt ignores them)"}.get(post.meta.get("likelihood", ""),
                                                    "they pull the normal likelihood's fit")
    return [f"{order.size} row(s) of {source} lie more than {scales:g} noise scales from the "
            f"law: rows {listed}{more} (residual in noise scales); {treat}: check them"]


def prior_pull(post: Posterior, ratio: float = PRIOR_PULL) -> list[str]:
    """A warning when the priors hold the law away from what the rows say.

    Compares the median |residual| of ln L under the posterior-median law
    (:func:`loss_residuals`) with that of the classical point fit without priors
    (:func:`bayescale.law.baseline.fit_point`). Far apart, the prediction follows the priors more
    than the runs. Chinchilla single-family fits without run offsets only (the point fit is
    Chinchilla's, and has no run offsets), of 20 rows or more.
    """
    if post.families or post.law.name != "chinchilla" or "run_offset" in post.tree["posterior"]:
        return []  # with run offsets the law need not follow each run: see runs_off_the_law
    if len(post.data) < PRIOR_PULL_ROWS_PER_PARAMETER * len(post.law.parameters):
        return []
    point = (post.meta.get("calibration") or {}).get("point_fit")  # made at fit time
    if not point:
        data = post.data
        n, d = data["params"].to_numpy(), data["tokens"].to_numpy()
        fitted = fit_point(n, d, data["loss"].to_numpy())
        point = {**fitted.params, "median_abs_residual": float(np.median(np.abs(
            np.log(data["loss"].to_numpy()) - fitted.log_loss(n, d))))}
    point_miss = point["median_abs_residual"]
    law_miss = float(np.median(np.abs(loss_residuals(post))))
    if not law_miss > ratio * point_miss:
        return []
    draws = post.draws()
    apart = ", ".join(f"{name} {np.median(draws[name]):.3g} against {point[name]:.3g}"
                      for name in post.law.parameters)
    return [f"the law misses the rows by a median {100 * law_miss:.3g}% of ln L, a point fit "
            f"without priors by {100 * point_miss:.3g}%: the priors hold the law away from these "
            f"data ({apart}), and predictions follow the priors more than the runs; if the runs "
            "are unlike the LLM runs the priors describe (loss units, exponents), widen them "
            "with --priors"]


def runs_off_the_law(post: Posterior, scales: float = RUN_SCALES) -> list[str]:
    """A warning when the law misses whole runs by far more than their offsets' scale.

    Runs with an offset only (:mod:`bayescale.inference.model`: a fixed ``--seed-noise``, or
    another run at the same model size). A run's miss is the median residual of its rows
    (:func:`loss_residuals`: the law without the run's offset); its scale is the seed noise
    (posterior median, or the fixed value). Far beyond it, the offsets carry the size dependence
    the law should (the priors holding the law elsewhere), and a new size gets the law without
    them. In a family fit, runs are named "family run" and judged against their family's law
    and seed noise.
    """
    data = post.data
    if "run" not in data or "run_offset" not in post.tree["posterior"]:
        return []
    family = data["family"].astype(str) if "family" in data else pd.Series("", index=data.index)
    run = (family + "\x1f" + data["run"].astype(str)).to_numpy()  # runs are within a family
    size = (family + "\x1f" + data["params"].map(lambda n: f"{n:.6g}")).to_numpy()
    rows = pd.DataFrame({"run": run, "size": size, "miss": loss_residuals(post),
                         "seed": np.median(_row_draws(post, ["seed_noise"])["seed_noise"],
                                           axis=0)})
    runs_per_size = rows.groupby("size")["run"].nunique()
    per_run = rows.groupby("run").agg(miss=("miss", "median"), size=("size", "first"),
                                      seed=("seed", "first"))
    shared = per_run["size"].map(runs_per_size).to_numpy() >= 2
    if post.meta.get("seed_noise") is None:
        per_run = per_run[shared]  # runs alone at their size have no offset
    miss = per_run["miss"].rename(index=lambda key: key.replace("\x1f", " ").strip())
    z = miss.to_numpy() / per_run["seed"].to_numpy()
    far = np.argsort(-np.abs(z))[: int((np.abs(z) > scales).sum())]
    if far.size == 0:
        return []
    listed = ", ".join(f"{miss.index[i]} ({miss.iloc[i]:+.3f}, {z[i]:+.1f} scales)"
                       for i in far[:5])
    more = f" and {far.size - 5} more" if far.size > 5 else ""
    return [f"the law misses whole runs by far more than their offsets allow: {listed}{more} "
            "(median residual of ln L, and in units of the offset's scale); the offsets carry "
            "the size dependence the law should, and predictions for new sizes follow the "
            "priors (in a family fit, also the other families) more than the runs; if the runs "
            "are unlike the LLM runs the priors describe (loss units, exponents), widen them "
            "with --priors"]


def far_targets(post: Posterior, params: Any, tokens: Any, compute: Any, *,
                discrepancy: bool = True, family: str | None = None) -> list[str]:
    """A warning when targets lie far outside the fitted runs (of ``family`` in a family fit
    that has it, as :meth:`Posterior.risk` measures its plan; else all of them).

    Far means compute above ``FAR_COMPUTE`` x the largest fitted run's C = 6 N D, N above
    ``FAR_PARAMS`` x the largest fitted N, or D outside the fitted D range by more than
    ``FAR_TOKENS`` (an over- or under-trained target). The warning says what the interval
    assumes there: with the discrepancy term (``discrepancy`` and a calibrated posterior), that
    the law's error keeps growing linearly with the distance; without it, that the law holds.

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> from bayescale.posterior.posterior import Posterior
    >>> post = Posterior.from_draws(known_draws())
    >>> print(*far_targets(post, params=[70e9], tokens=[1.4e12], compute=[5.88e23]))
    the target lies far outside the fitted runs (compute up to 5.88e+23 FLOP, 4.9e+03x the
    largest fitted run's 1.2e+20 FLOP; ...): the interval assumes the law holds exactly that
    far out (no discrepancy term)
    """
    data = post.data
    if family is not None and family in post.families:
        data = data[data[FAMILY] == family]
    fitted = FittedRange.of(data["params"], data["tokens"])
    max_c, max_n = fitted.max_compute, fitted.max_params
    min_d, max_d = fitted.min_tokens, fitted.max_tokens
    n, d, c = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (params, tokens, compute))
    checks = [
        (c > FAR_COMPUTE * max_c, f"compute up to {fmt.flop(c.max())}, "
         f"{c.max() / max_c:.3g}x the largest fitted run's {fmt.flop(max_c)}"),
        (n > FAR_PARAMS * max_n, f"N up to {fmt.size(n.max())}, "
         f"{n.max() / max_n:.3g}x the largest fitted {fmt.size(max_n)}"),
        (d > FAR_TOKENS * max_d, f"D up to {fmt.size(d.max())}, "
         f"{d.max() / max_d:.3g}x the largest fitted {fmt.size(max_d)}"),
        (d < min_d / FAR_TOKENS, f"D down to {fmt.size(d.min())}, "
         f"1/{min_d / d.min():.3g} of the smallest fitted {fmt.size(min_d)}"),
    ]
    far = np.logical_or.reduce([mask for mask, _ in checks])
    if not far.any():
        return []
    parts = [text for mask, text in checks if mask.any()]
    assumes = ("includes the law's error learned within the runs, assumed to keep growing "
               "linearly with the distance that far out"
               if discrepancy and post.calibration is not None
               else "assumes the law holds exactly that far out (no discrepancy term)")
    which = ("the target lies" if far.size == 1
             else f"{int(far.sum())} of {far.size} targets lie")
    return [f"{which} far outside the fitted runs ({'; '.join(parts)}): the interval {assumes}"]


def seed_prior_only(post: Posterior) -> list[str]:
    """A warning when the seed noise could not be estimated (one checkpoint run per model size),
    in the whole fit or in some families of a family fit.
    """
    prior = post.priors["seed_noise"].describe() if "seed_noise" in post.priors else "?"
    families = post.meta.get("seed_noise_prior_families", [])
    if not post.meta.get("seed_noise_identified", True):
        where = (f"in no family ({', '.join(families)}) does a model size have two runs"
                 if families else "no model size has two runs")
        return [f"{where}, so seed noise cannot be told from the law's size dependence: the "
                f"seed-noise floor is the prior {prior}; give --seed-noise if you know it "
                "(e.g. from runs that differ only in seed)"]
    if families:
        label = "family" if len(families) == 1 else "families"
        return [f"{label} {', '.join(families)}: no model size has two runs, so the seed-noise "
                f"floor there is the prior {prior}"]
    return []


def two_sizes(post: Posterior) -> list[str]:
    """A warning when a single-family fit has runs of only two model sizes and its law has an
    irreducible term beside A / N^alpha (Chinchilla's E).

    Two sizes give the law's size term at two N: E, A and alpha trade off exactly, so a
    forecast at a third size follows the priors (point fits held at very different alphas fit
    the rows equally well, :func:`bayescale.law.baseline.profile_alpha`), and NUTS mixes slowly
    along that ridge. A family fit lets such a family borrow alpha from the others: no warning
    there.
    """
    if post.families or not {"E", "A", "alpha"} <= set(post.law.parameters):
        return []
    sizes = np.unique(post.data["params"].to_numpy())
    if sizes.size != 2:
        return []
    return [f"the runs have two model sizes ({sizes[0]:.3g}, {sizes[1]:.3g}): E, A and alpha "
            "trade off exactly between them, so a forecast at another size follows their "
            "priors (and the chains mix slowly along that ridge); add a third size, or pool "
            "with a family of the same recipe (--family-col)"]


def split_tails(post: Posterior, nu_below: float = SPLIT_NU) -> list[str]:
    """A warning when a Student-t fit's chains disagree and its nu lies below ``nu_below``.

    With nu below 1 the Student-t's likelihood has a mode for each subset of rows the law can
    fit while treating the rest as outliers, and chains may settle in different ones; more
    draws do not join them. The Huber likelihood has one mode (:mod:`bayescale.law.likelihoods`).
    """
    dataset = post.tree["posterior"].dataset
    if "nu" not in dataset or dataset.sizes["chain"] < 2:
        return []
    nu = float(np.median(np.asarray(dataset["nu"])))
    r_hat = float(np.nanmax(post.summary()["r_hat"].to_numpy()))
    if nu >= nu_below or not r_hat > MAX_R_HAT:
        return []
    return [f"the Student-t's nu is {nu:.2g} (below {nu_below:g}) and the chains disagree "
            f"(R-hat {r_hat:.3f}): such a likelihood has several modes and more draws may not "
            "join them; --likelihood huber has one (a gross outlier then keeps a bounded pull)"]


def unused_priors(post: Posterior) -> list[str]:
    """A warning for each prior the user gave that the model did not use (the fit stores which
    and why: a seed-noise prior on one row per run, a nu prior without a Student-t).
    """
    return [f"the prior [{name}] given in --priors was not used: {why}"
            for name, why in post.meta.get("unused_priors", {}).items()]


def fit_warnings(post: Posterior) -> list[str]:
    """Everything worth a warning after a fit: two model sizes only, unconstrained parameters,
    outlying rows, priors that hold the law away from the rows or runs, a seed-noise floor that
    is only the prior, Student-t chains split between modes, priors given but not used.
    """
    return (two_sizes(post) + unconstrained(post) + outliers(post) + prior_pull(post)
            + runs_off_the_law(post) + seed_prior_only(post) + split_tails(post)
            + unused_priors(post))
