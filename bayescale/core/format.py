"""Human-readable numbers: sizes with units (125M, 70B, 1.4T), FLOP in scientific notation."""

from __future__ import annotations

import math

_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def size(value: float) -> str:
    """A count of parameters or tokens with a unit; from 1e15 up, scientific notation (not
    "1e+03T").

    Examples
    --------
    >>> size(70e9), size(1.4e12), size(1.25e8), size(1e17)
    ('70B', '1.4T', '125M', '1e+17')
    """
    if not math.isfinite(value) or abs(value) >= 999.5e12:
        return str(value) if not math.isfinite(value) else f"{value:.3g}"
    for scale, unit in _UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def flop(value: float) -> str:
    """Compute in FLOP, scientific notation.

    Examples
    --------
    >>> flop(5.88e23)
    '5.88e+23 FLOP'
    """
    return f"{value:.3g} FLOP"


def number(value: float) -> str:
    """A plain number with four significant digits.

    Examples
    --------
    >>> number(2.18528)
    '2.185'
    """
    return f"{value:.4g}"


def percent(value: float) -> str:
    """A share as a percentage.

    Examples
    --------
    >>> percent(0.9971)
    '99.7%'
    """
    return f"{100 * value:.3g}%"


def statistic(value: float | None, spec: str) -> str:
    """A diagnostic such as R-hat; ``-`` where it is undefined (None or NaN: one chain).

    Examples
    --------
    >>> statistic(1.0023, ".3f"), statistic(None, ".3f"), statistic(float("nan"), ".0f")
    ('1.002', '-', '-')
    """
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def interval(median: float, lower: float, upper: float, fmt=number) -> str:
    """``median [lower, upper]`` with one formatter.

    Examples
    --------
    >>> interval(2.1853, 2.1399, 2.2313)
    '2.185 [2.14, 2.231]'
    >>> interval(7.07e9, 5.3e9, 9.41e9, fmt=size)
    '7.07B [5.3B, 9.41B]'
    """
    return f"{fmt(median)} [{fmt(lower)}, {fmt(upper)}]"


def paired_points(versus: dict) -> str:
    """A paired ARE difference (:func:`bayescale.evaluate.backtest.are_versus`) in percentage
    points.

    Examples
    --------
    >>> paired_points({"mean": 0.0011, "se": 0.0032, "better": 4, "cases": 9})
    '+0.11 points (se 0.32), better in 4 of 9 cases'
    """
    se = "" if versus["se"] is None else f" (se {100 * versus['se']:.2f})"
    return (f"{100 * versus['mean']:+.2f} points{se}, better in {versus['better']} of "
            f"{versus['cases']} cases")


def ridge_line(family: str, baseline: dict) -> str:
    """The baseline's ``alpha_profile`` of a two-size backtest case
    (:mod:`bayescale.evaluate.backtest`).

    Examples
    --------
    >>> base = {"are_median": 0.015, "parameters": {"alpha": 1.71}, "alpha_profile": [
    ...     {"alpha": 0.1, "objective_ratio": 1.0002, "are_median": 0.037},
    ...     {"alpha": 6.0, "objective_ratio": 1.0, "are_median": 0.002}]}
    >>> print(ridge_line("c4", base))  # doctest: +NORMALIZE_WHITESPACE
    c4: fitted on 2 model sizes; the point fit held at alpha 0.1 / 6 fits the rows within
    0.020% of the free fit's objective, with ARE 3.7 / 0.2%; the free fit stopped at alpha
    1.71, ARE 1.5%
    """
    held = baseline["alpha_profile"]
    worst = max(abs(row["objective_ratio"] - 1.0) for row in held)
    alpha = baseline.get("parameters", {}).get("alpha")
    where = "" if alpha is None else f" at alpha {alpha:.2f},"
    alphas = " / ".join(f"{row['alpha']:g}" for row in held)
    ares = " / ".join(f"{100 * row['are_median']:.1f}" for row in held)
    return (f"{family}: fitted on 2 model sizes; the point fit held at alpha {alphas} fits the "
            f"rows within {100 * worst:.3f}% of the free fit's objective, with ARE {ares}%; the "
            f"free fit stopped{where} ARE {100 * baseline['are_median']:.1f}%")


def convergence_line(cases: list[dict]) -> str | None:
    """Which backtest fits failed the convergence checks (:mod:`bayescale.core.diagnostics`), with
    their worst R-hat, smallest ESS and divergences; None when every fit passed.

    Examples
    --------
    >>> ok = {"family": "a", "diagnostics_ok": True}
    >>> bad = {"family": "b", "diagnostics_ok": False, "diagnostics": {
    ...     "max_r_hat": 1.083, "min_ess_bulk": 41.0, "min_ess_tail": 97.0, "divergences": 2}}
    >>> print(convergence_line([ok, bad]))  # doctest: +NORMALIZE_WHITESPACE
    convergence checks failed in 1 of 2 fits, their figures are from unconverged chains:
    b (R-hat 1.083, ESS 41, 2 divergences)
    >>> convergence_line([ok]) is None
    True
    """
    failed = []
    for case in cases:
        if case["diagnostics_ok"]:
            continue
        diag = case["diagnostics"]
        ess = min((x for x in (diag["min_ess_bulk"], diag["min_ess_tail"]) if x is not None),
                  default=None)
        divergences = f", {diag['divergences']} divergences" if diag["divergences"] else ""
        failed.append(f"{case['family']} (R-hat {statistic(diag['max_r_hat'], '.3f')}, ESS "
                      f"{statistic(ess, '.0f')}{divergences})")
    if not failed:
        return None
    return (f"convergence checks failed in {len(failed)} of {len(cases)} fits, their figures "
            f"are from unconverged chains: {', '.join(failed)}")
