"""Model families: a hierarchical law in which each family has its own parameters.

With ``--family-col``, family f has its own law, partially pooled toward the population, on
the law's centred coordinates (ln E, a_c, b_c, ln alpha, ln beta for Chinchilla)::

    theta_f,k ~ StudentT(3, mu_k, tau_k),   tau_k ~ Gamma(2, 4)

mu_k (``pop_*``) has the prior a single-family fit gives that coordinate, and tau_k
(``family_sd``) is how far families stray from it. With ``--separate-e`` (families trained on
different data or tokenizers) ln E is not pooled: each family has it under the single-family
prior (``family_log_E``), and a new family draws it from that prior. A family with two or three
small runs thus borrows the shape of the law from the others (the Hitchhiker's Guide's advice to
"borrow parameters from a similar model family", Choshen et al. 2024, with a posterior instead of
a copy). Which families are pooled matters as much as how: pool families of one recipe, since
unlike families pull each other's exponents (the family-pooling benchmark compares the choices).

Each family has its own row noise, tails and seed noise (sigma_obs, nu, seed_noise), since
sources differ in how they were measured and recipes in how much seeds matter: a shared noise
would let the noisiest source set it for every family and widen all their intervals. A family
whose runs never repeat a model size keeps its seed-noise prior.

A family the fit has not seen gets the population predictive: per posterior draw, new
coordinates mu + tau z with a fresh z ~ StudentT(3), and the noise of a seen family picked at
random.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.diagnostics import chain_stats
from bayescale.core.errors import BayescaleError
from bayescale.core.intervals import interval
from bayescale.data.runs import FAMILY, RunTable
from bayescale.law.laws import Law
from bayescale.law.priors import Prior

#: Prior of the between-family sd of every pooled coordinate: Gamma(2, 4), mean 0.5, 90% in
#: [0.09, 1.19]: wide enough for public families (other data, tokenizers), which differ more
#: than recipes of one kind, so that a held-out family is not pulled toward the others. It
#: keeps away from 0 (Chung et al. 2013): families do differ, and a sd near 0 would open a
#: funnel in the centred coordinates.
FAMILY_SD = Prior("gamma", {"alpha": 2.0, "beta": 4.0})
#: Degrees of freedom of the families' spread around the population: Student-t, so that a
#: family unlike the others keeps its own coordinates instead of dragging the population mean
#: and every other family with it (robust hierarchical model; Gelman et al., BDA3 s. 17.4).
FAMILY_NU = 3.0
#: Noise parameters a family model gives each family.
NOISE_PER_FAMILY = ("sigma_obs", "seed_noise", "nu")
#: Seed of the new-family draws (the population predictive), so repeated questions agree.
POPULATION_SEED = 20240601
#: Redraws of a new family's draws whose law is not finite (rare: the t(3) tails).
MAX_REDRAWS = 50


def family_structure(runs: RunTable) -> tuple[np.ndarray, list[str]]:
    """Index of each row's family and the sorted family names.

    Raises
    ------
    BayescaleError
        Fewer than two families.

    Examples
    --------
    >>> import pandas as pd
    >>> runs = RunTable(pd.DataFrame({"params": [1e8, 1e9, 1e8], "tokens": [2e9, 2e10, 2e9],
    ...                               "loss": [3.1, 2.6, 3.0], "family": ["opt", "opt", "gpt3"]}))
    >>> index, names = family_structure(runs)
    >>> index.tolist(), names
    ([1, 1, 0], ['gpt3', 'opt'])
    """
    if FAMILY not in runs.data:
        raise BayescaleError("a family model needs a family column (--family-col)")
    names, index = np.unique(runs.data[FAMILY].to_numpy(dtype=str), return_inverse=True)
    if names.size < 2:
        raise BayescaleError(
            f"--family-col has one family ('{names[0]}'): a family model needs two or more; "
            "drop --family-col to fit one law", path=runs.source,
            column=runs.columns.get(FAMILY, FAMILY))
    return index, [str(name) for name in names]


def pymc_family_log_loss(
    law: Law, priors: Mapping[str, Prior], n0: Any, d0: Any, n: Any, d: Any, family: Any,
    pooled: Sequence[str],
) -> Any:
    """Inside a PyMC model with coords ``family`` and ``pooled``: ln L of each row.

    ``family`` is each row's family index; ``pooled`` the coordinates pooled (all of the law's
    :attr:`~bayescale.law.laws.Law.pooled`, or all but E with ``--separate-e``). Creates ``pop_*``
    (population means), ``family_sd``, ``family_theta``, ``family_log_E`` if E is kept apart,
    and the per-family parameters (dim ``family``) as Deterministics.
    """
    import pymc as pm
    import pytensor.tensor as pt

    population = law.pymc_population_means(priors, n0, d0, pooled)
    means = pt.stack([population[name] for name in pooled])
    sd = priors["family_sd"].pymc("family_sd", dims="pooled")
    # Centred: checkpoint curves pin each family's coordinates, and the non-centred form
    # (mu + tau z) then makes NUTS trace z = (theta - mu) / tau across tau's whole range, at
    # many more leapfrog steps per draw (Betancourt & Girolami 2015).
    coords = pm.StudentT("family_theta", nu=FAMILY_NU, mu=means[None, :], sigma=sd[None, :],
                         dims=("family", "pooled"))
    theta = {name: coords[:, k] for k, name in enumerate(pooled)}
    if law.own_e_coordinate not in pooled:
        theta[law.own_e_coordinate] = law.pymc_family_e(priors)
    for name, value in law.from_pooled(theta, n0, d0, xp=pt).items():
        pm.Deterministic(name, value, dims="family")
    rows = {name: value[family] for name, value in theta.items()}
    return law.centred_log_loss(rows, n, d, xp=pt)


def family_names(tree: Any) -> list[str]:
    """Families of a fitted posterior (empty for a single-family fit)."""
    posterior = tree["posterior"].dataset
    if "family" not in posterior.coords:
        return []
    return [str(name) for name in np.asarray(posterior.coords["family"])]


def pooled_names(tree: Any) -> list[str]:
    """The coordinates a family fit pooled (its ``pooled`` dimension)."""
    return [str(name) for name in np.asarray(tree["posterior"].dataset.coords["pooled"])]


def family_draws(
    tree: Any, law: Law, family: str | None, centring: Mapping[str, float],
    priors: Mapping[str, Prior],
) -> dict[str, np.ndarray]:
    """The law's parameter draws for one family, or for a new family (``None`` or unseen).

    A new family's draws are the population predictive: per draw s, coordinates
    mu_s + tau_s z with z ~ StudentT(3), and an E kept apart (``--separate-e``) from its prior
    (fixed seed, so repeated calls agree). The t(3) tails can put a draw's A or B beyond the
    float range (B = inf makes the optimum and the regret NaN); such a draw is drawn again, i.e.
    the predictive is taken among the laws a computer can evaluate.
    """
    posterior = tree["posterior"].dataset
    if family is not None and family in family_names(tree):
        return {name: np.asarray(posterior[name].sel(family=family)).reshape(-1)
                for name in law.parameters}
    pooled = pooled_names(tree)
    means = np.stack([np.asarray(posterior[f"pop_{k}"]).reshape(-1) for k in pooled], 1)
    sd = np.asarray(posterior["family_sd"].transpose("chain", "draw", "pooled"))
    sd = sd.reshape(-1, len(pooled))
    rng = np.random.default_rng(POPULATION_SEED)
    coords = means + sd * rng.standard_t(FAMILY_NU, means.shape)
    theta = {name: coords[:, k] for k, name in enumerate(pooled)}
    if law.own_e_coordinate not in pooled:
        theta[law.own_e_coordinate] = law.sample_family_e(priors, rng, means.shape[0])
    with np.errstate(over="ignore"):
        params = law.from_pooled(theta, centring["n0"], centring["d0"])
        for _ in range(MAX_REDRAWS):
            bad = ~np.logical_and.reduce([np.isfinite(v) for v in params.values()])
            if not bad.any():
                break
            for k, name in enumerate(pooled):
                theta[name][bad] = means[bad, k] + sd[bad, k] * rng.standard_t(FAMILY_NU,
                                                                                int(bad.sum()))
            params = law.from_pooled(theta, centring["n0"], centring["d0"])
    return params


def family_noise_draws(tree: Any, names: list[str], family: str | None) -> dict[str, np.ndarray]:
    """Draws of the per-family noise parameters among ``names`` (those with a ``family`` dim).

    A seen family gets its own draws; a new family (``None`` or unseen) gets, per draw, the value
    of a family picked at random (fixed seed): the seen families' spread of noise.
    """
    posterior = tree["posterior"].dataset
    names = [name for name in names if name in NOISE_PER_FAMILY and name in posterior
             and "family" in posterior[name].dims]
    if not names:
        return {}
    if family is not None and family in family_names(tree):
        return {name: np.asarray(posterior[name].sel(family=family)).reshape(-1)
                for name in names}
    stacked = {name: np.asarray(posterior[name].transpose("chain", "draw", "family"))
               for name in names}
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    pick = np.random.default_rng(POPULATION_SEED).integers(len(family_names(tree)), size=n_draws)
    return {name: values.reshape(n_draws, -1)[np.arange(n_draws), pick]
            for name, values in stacked.items()}


def family_summary(tree: Any, law: Law, level: float, kind: str) -> Any:
    """Posterior summary of a family fit: each family's parameters (``E[gpt3]`` ...), the
    between-family sds (``family_sd[log_alpha]`` ...) and the noise parameters
    (``sigma_obs[gpt3]``, ``seed_noise[gpt3]`` and ``nu[gpt3]`` per family).
    """
    posterior = tree["posterior"].dataset
    noise = [name for name in ("sigma_obs", "seed_noise", "nu") if name in posterior]
    names = [*law.parameters, "family_sd", *noise]
    stats = chain_stats(posterior, names)
    cells = [(f"{name}[{f}]", name, {"family": f})
             for name in law.parameters for f in family_names(tree)]
    cells += [(f"family_sd[{k}]", "family_sd", {"pooled": k}) for k in pooled_names(tree)]
    for name in noise:  # per family where sampled (a fixed seed noise has no family dim)
        if "family" in posterior[name].dims:
            cells += [(f"{name}[{f}]", name, {"family": f}) for f in family_names(tree)]
        else:
            cells.append((name, name, {}))
    rows = []
    for label, name, where in cells:
        values = np.asarray(posterior[name].sel(where)).reshape(-1)
        lo, hi = interval(values, level, kind)
        rows.append({
            "parameter": label, "median": float(np.median(values)), "lower": float(lo),
            "upper": float(hi), "mean": float(values.mean()), "sd": float(values.std(ddof=1)),
            **{key: float(stats[key][name].sel(where))
               for key in ("r_hat", "ess_bulk", "ess_tail")},
        })
    return pd.DataFrame(rows).set_index("parameter")
