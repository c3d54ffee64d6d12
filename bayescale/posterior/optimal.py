"""Compute-optimal allocation per posterior draw under C = 6 N D."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.law.laws import Law

Draws = Mapping[str, np.ndarray]


def _at_budget(law: Law, draws: Draws, compute: np.ndarray | float) -> dict[str, np.ndarray]:
    n_opt, d_opt = law.optimal(draws, compute)
    loss = np.exp(law.log_loss(draws, n_opt.reshape(-1, 1), d_opt.reshape(-1, 1))[:, 0])
    return {"params": n_opt, "tokens": d_opt, "tokens_per_param": d_opt / n_opt, "loss": loss}


#: ln C searched for the budget at which a size is optimal: from N = D = 1,000 (the smallest
#: count a table accepts) to 1e300 FLOP, so no physical answer lies outside.
LOG_BUDGET_RANGE = (np.log(6e6), np.log(1e300))


def _budget_for(law: Law, draws: Draws, key: str, target: float) -> np.ndarray:
    """Per draw, the budget C at which the optimal N (key='params') or D equals ``target``.

    N*(C) and D*(C) increase with C, so bisection on ln C finds it. A draw whose answer lies
    outside :data:`LOG_BUDGET_RANGE` is refused (:class:`BayescaleError`) rather than given
    the range's bound, at which the optimum is another size.
    """
    size = np.asarray(draws[law.parameters[0]]).size
    lo, hi = np.full(size, LOG_BUDGET_RANGE[0]), np.full(size, LOG_BUDGET_RANGE[1])
    for _ in range(100):
        mid = (lo + hi) / 2
        n_opt, d_opt = law.optimal(draws, np.exp(mid))
        below = (n_opt if key == "params" else d_opt) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    found = (lo + hi) / 2
    n_opt, d_opt = law.optimal(draws, np.exp(found))
    off = np.abs(np.log((n_opt if key == "params" else d_opt) / target)) > 1e-6
    if off.any():
        what = "N" if key == "params" else "D"
        low = off & (found < np.mean(LOG_BUDGET_RANGE))
        where = (f"below {np.exp(LOG_BUDGET_RANGE[0]):.3g} FLOP, where the optimum's N or D "
                 "falls under 1,000" if low.any() else
                 f"above {np.exp(LOG_BUDGET_RANGE[1]):.3g} FLOP")
        raise BayescaleError(
            f"{int(off.sum())} of {size} posterior draws make {what} = {fmt.size(target)} "
            f"compute-optimal only {where}: no budget searched has it as its optimum")
    return np.exp(found)


def optimal_draws(
    law: Law,
    draws: Draws,
    *,
    compute: float | None = None,
    params: float | None = None,
    tokens: float | None = None,
) -> dict[str, np.ndarray]:
    """Draws of N*, D*, D*/N*, the loss at the optimum and (for a fixed N or D) the budget C.

    With ``compute``: the optimum at that budget. With ``params`` (or ``tokens``): the budget at
    which that N (or D) is compute-optimal, and the optimum there.

    Examples
    --------
    >>> from bayescale.law.laws import get_law
    >>> draws = {"E": np.array([1.82]), "A": np.array([482.0]), "B": np.array([2085.0]),
    ...          "alpha": np.array([0.348]), "beta": np.array([0.366])}
    >>> at = optimal_draws(get_law("chinchilla"), draws, compute=5.88e23)
    >>> sorted(at), round(float(at["tokens_per_param"][0]), 1)
    (['loss', 'params', 'tokens', 'tokens_per_param'], 18.3)
    >>> f"{optimal_draws(get_law('chinchilla'), draws, params=70e9)['compute'][0]:.2g}"
    '5.4e+23'
    """
    if compute is not None:
        return _at_budget(law, draws, compute)
    key, target = ("params", params) if params is not None else ("tokens", tokens)
    assert target is not None
    budget = _budget_for(law, draws, key, target)
    return {"compute": budget, **_at_budget(law, draws, budget)}


def exponent_draws(law: Law, draws: Draws) -> tuple[np.ndarray, np.ndarray]:
    """Per draw, a = d ln N*/d ln C and b = d ln D*/d ln C (a + b = 1).

    For the Chinchilla law a = beta/(alpha+beta), b = alpha/(alpha+beta) (Hoffmann et al. 2022);
    the slope of ln N* is taken between 3e20 and 3e22 FLOP, exact for a power law and a
    numerical derivative for other laws.

    Examples
    --------
    >>> from bayescale.law.laws import get_law
    >>> draws = {"E": np.array([1.82]), "A": np.array([482.0]), "B": np.array([2085.0]),
    ...          "alpha": np.array([0.348]), "beta": np.array([0.366])}
    >>> a, b = exponent_draws(get_law("chinchilla"), draws)
    >>> round(float(a[0]), 3), round(float(b[0]), 3)
    (0.513, 0.487)
    """
    lo, hi = 1e21 / np.sqrt(10), 1e21 * np.sqrt(10) * 10
    n_lo, _ = law.optimal(draws, lo)
    n_hi, _ = law.optimal(draws, hi)
    a = np.log(n_hi / n_lo) / np.log(hi / lo)
    return a, 1.0 - a
