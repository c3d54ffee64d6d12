"""The classical point fit of the Chinchilla law, with bootstrap intervals: the baseline.

This is the method of Hoffmann et al. 2022 (Approach 3) as replicated by Besiroglu et al. 2024
(Epoch AI, arXiv:2404.10102): with a = ln A, b = ln B, e = ln E,

    ln L_hat(N, D) = LSE(a - alpha ln N, b - beta ln D, e)

minimising the Huber loss (Huber 1964; delta = 1e-3) of ln L_hat - ln L, **summed** over the
rows, with L-BFGS-B from a grid of starts (Hoffmann's grid: alpha, beta in {0, 0.5, ..., 2}; e
in {-1, -0.5, ..., 1}; a, b in {0, 5, ..., 25}; 4,500 starts). Rather than run L-BFGS-B from
every start, the grid is screened: the objective is evaluated at every grid point (vectorised)
and L-BFGS-B runs from the best point of each (alpha, beta) pair, the ``n_starts`` best pairs
of the 25 (16 by default, all 25 in the backtest). Uncertainty is a nonparametric bootstrap of
the rows, as Epoch's, each replicate refitted from the point estimate; its intervals are
percentiles of the replicates' predictions of the law (parameter uncertainty only, as Epoch
reports them).

``bayescale backtest`` scores this fit beside the posterior on the same splits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bayescale.core.intervals import summarize
from bayescale.data.runs import LOSS, PARAMS, TOKENS, RunTable
from bayescale.law.laws import chinchilla_power_terms

#: Huber threshold on ln L residuals (Hoffmann et al. 2022; Besiroglu et al. 2024).
HUBER_DELTA = 1e-3

#: Rows the grid of starts is screened on at most (see :func:`_screen`).
SCREEN_ROWS = 1000

#: Hoffmann et al.'s grid of starts, in the order (a, b, e, alpha, beta).
HOFFMANN_GRID: tuple[np.ndarray, ...] = (
    np.arange(0.0, 25.1, 5.0),
    np.arange(0.0, 25.1, 5.0),
    np.arange(-1.0, 1.01, 0.5),
    np.arange(0.0, 2.01, 0.5),
    np.arange(0.0, 2.01, 0.5),
)


def _grid() -> np.ndarray:
    return np.array(list(itertools.product(*HOFFMANN_GRID)))


def _terms(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The three log-terms (a - alpha x, b - beta y, e) of each row; theta may be a batch."""
    theta = np.atleast_2d(theta)
    a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
    return np.stack(np.broadcast_arrays(*chinchilla_power_terms(a, b, alpha, beta, x, y),
                                        e + 0.0 * x))


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss (Huber 1964): r^2 / 2 inside |r| <= delta, linear outside."""
    absr = np.abs(r)
    return np.where(absr <= delta, 0.5 * r**2, delta * (absr - 0.5 * delta))


def _objective(
    theta: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, w: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Weighted summed Huber loss of ln L residuals and its gradient in (a, b, e, alpha, beta)."""
    t = _terms(theta, x, y)[:, 0, :]
    top = t.max(axis=0)
    ex = np.exp(t - top)
    total = ex.sum(axis=0)
    r = top + np.log(total) - z
    soft = ex / total
    psi = w * np.clip(r, -delta, delta)  # d Huber / d r
    grad = np.array([
        psi @ soft[0], psi @ soft[1], psi @ soft[2], -(psi * x) @ soft[0], -(psi * y) @ soft[1],
    ])
    return float(w @ _huber(r, delta)), grad


def _screen(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, w: np.ndarray, delta: float, n_starts: int
) -> np.ndarray:
    """The ``n_starts`` best grid points, each of its own (alpha, beta) pair.

    The best points of the whole grid tend to share their exponents, and from exponents that
    make a term vanish (alpha = 2 at N = 1e8: A / N^alpha ~ 0) L-BFGS-B cannot move: its
    gradient is zero there, and every start would end in the same flat law. One start per
    (alpha, beta) pair keeps the starts apart. A large table (checkpoints) is screened on
    ``SCREEN_ROWS`` evenly spaced rows: the starts only need to land in the right basin, and
    the minimisation from them uses every row.
    """
    if x.size > SCREEN_ROWS:
        keep = np.linspace(0, x.size - 1, SCREEN_ROWS).round().astype(int)
        x, y, z, w = x[keep], y[keep], z[keep], w[keep]
    grid = _grid()
    values = np.empty(len(grid))
    chunk = max(1, 2_000_000 // max(1, x.size))
    for i in range(0, len(grid), chunk):
        t = _terms(grid[i : i + chunk], x, y)
        pred = np.logaddexp.reduce(t, axis=0)
        values[i : i + chunk] = _huber(pred - z, delta) @ w
    order = np.argsort(values, kind="stable")
    _, first = np.unique(grid[order][:, 3:], axis=0, return_index=True)  # best per pair
    return grid[order[np.sort(first)][:n_starts]]


def _minimise(start, x, y, z, w, delta, alpha=None) -> tuple[np.ndarray, float]:
    bounds = None if alpha is None else [(None, None)] * 3 + [(alpha, alpha), (None, None)]
    result = minimize(
        _objective, start, args=(x, y, z, w, delta), jac=True, method="L-BFGS-B",
        bounds=bounds, options={"maxiter": 1000, "ftol": 1e-10, "gtol": 1e-8},
    )
    return np.asarray(result.x), float(result.fun)


@dataclass
class PointFit:
    """Point estimate of the Chinchilla law: ``theta`` = (ln A, ln B, ln E, alpha, beta).

    Examples
    --------
    >>> fit = PointFit(np.log([482.0, 2085.0, 1.82]).tolist() + [0.348, 0.366])
    >>> round(float(fit.loss(7e10, 1.4e12)[0]), 3)
    1.976
    """

    theta: list[float]
    objective: float = float("nan")

    @property
    def params(self) -> dict[str, float]:
        """E, A, B, alpha, beta in the user's units.

        Examples
        --------
        >>> fit = PointFit(np.log([482.0, 2085.0, 1.82]).tolist() + [0.348, 0.366])
        >>> round(fit.params["E"], 2), round(fit.params["A"], 1)
        (1.82, 482.0)
        """
        a, b, e, alpha, beta = self.theta
        # a degenerate fit (two model sizes: alpha and ln A in the hundreds or thousands) has
        # A beyond the float range: inf, without numpy's overflow warning on the user's stderr
        with np.errstate(over="ignore"):
            return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)),
                    "alpha": float(alpha), "beta": float(beta)}

    def log_loss(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """ln L_hat at each (N, D).

        Examples
        --------
        >>> fit = PointFit(np.log([482.0, 2085.0, 1.82]).tolist() + [0.348, 0.366])
        >>> fit.log_loss([7e10], [1.4e12]).round(3)
        array([0.681])
        """
        x, y = np.log(np.atleast_1d(params)), np.log(np.atleast_1d(tokens))
        return np.logaddexp.reduce(_terms(np.asarray(self.theta), x, y), axis=0)[0]

    def loss(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """L_hat at each (N, D).

        Examples
        --------
        >>> fit = PointFit(np.log([482.0, 2085.0, 1.82]).tolist() + [0.348, 0.366])
        >>> fit.loss([7e10], [1.4e12]).round(3)
        array([1.976])
        """
        return np.exp(self.log_loss(params, tokens))


def fit_point(
    params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    *,
    delta: float = HUBER_DELTA,
    n_starts: int = 16,
    weights: np.ndarray | None = None,
    start: np.ndarray | None = None,
    alpha: float | None = None,
) -> PointFit:
    """Huber fit of ln L = LSE(a - alpha ln N, b - beta ln D, e) by L-BFGS-B.

    Parameters
    ----------
    params, tokens, loss : array
        N, D and L of each row.
    delta : float
        Huber threshold on ln L residuals.
    n_starts : int
        L-BFGS-B runs from this many points of Hoffmann's grid: the best of each (alpha, beta)
        pair, best pairs first (25 pairs in all).
    weights : array, optional
        Row weights (bootstrap counts); 1 by default.
    start : array, optional
        One start (a, b, e, alpha, beta) instead of the grid.
    alpha : float, optional
        Hold alpha at this value and fit the rest (see :func:`profile_alpha`).

    Returns
    -------
    PointFit

    Examples
    --------
    >>> from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss
    >>> n, d = np.meshgrid(np.geomspace(1e8, 1e10, 6), np.geomspace(1e9, 1e11, 6))
    >>> fit = fit_point(n.ravel(), d.ravel(), chinchilla_loss(EPOCH_LAW, n.ravel(), d.ravel()))
    >>> round(fit.params["alpha"], 3)
    0.348
    """
    x = np.log(np.asarray(params, dtype=float))
    y = np.log(np.asarray(tokens, dtype=float))
    z = np.log(np.asarray(loss, dtype=float))
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=float)
    starts = [np.asarray(start, dtype=float)] if start is not None else _screen(
        x, y, z, w, delta, n_starts)
    if alpha is not None:  # move each start onto alpha, its N-term unchanged at the mean ln N
        starts = [np.array([s[0] + (alpha - s[3]) * x.mean(), s[1], s[2], alpha, s[4]])
                  for s in starts]
    best: tuple[np.ndarray, float] | None = None
    for s in starts:
        theta, value = _minimise(s, x, y, z, w, delta, alpha)
        if np.all(np.isfinite(theta)) and np.isfinite(value) and (best is None or value < best[1]):
            best = (theta, value)
    if best is None:
        best = (np.asarray(starts[0]), float("nan"))
    return PointFit([float(v) for v in best[0]], best[1])


def profile_alpha(
    params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, free: PointFit,
    alphas: tuple[float, ...],
) -> list[PointFit]:
    """The point fit held at each of ``alphas``, from grid starts and from the ``free`` fit moved
    onto alpha (the better kept): how the objective and a forecast change along alpha.

    With two model sizes E, A and alpha trade off exactly: every alpha fits the rows alike and
    only the forecast of another size moves (the backtest reports it for such cases).

    Examples
    --------
    >>> from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss
    >>> n, d = np.meshgrid(np.geomspace(1e8, 1e10, 6), np.geomspace(1e9, 1e11, 6))
    >>> n, d = n.ravel(), d.ravel()
    >>> y = chinchilla_loss(EPOCH_LAW, n, d)
    >>> free = fit_point(n, d, y)
    >>> held = profile_alpha(n, d, y, free, (0.3, 0.5))
    >>> [fit.params["alpha"] for fit in held], all(h.objective > free.objective for h in held)
    ([0.3, 0.5], True)
    """
    held = []
    for alpha in alphas:
        fits = (fit_point(params, tokens, loss, n_starts=25, alpha=alpha),
                fit_point(params, tokens, loss, start=np.asarray(free.theta), alpha=alpha))
        held.append(min(fits, key=lambda fit: fit.objective))
    return held


@dataclass
class BaselineFit:
    """A point fit with bootstrap replicates.

    Attributes
    ----------
    point : PointFit
        The fit on all rows.
    replicates : list of PointFit
        One refit per bootstrap resample of the rows.

    Examples
    --------
    >>> point = PointFit(np.log([482.0, 2085.0, 1.82]).tolist() + [0.348, 0.366])
    >>> BaselineFit(point).predict(np.array([7e10]), np.array([1.4e12])).columns.tolist()
    ['params', 'tokens', 'loss_median', 'loss_lower', 'loss_upper']
    """

    point: PointFit
    replicates: list[PointFit] = field(default_factory=list)

    def predict(self, params: np.ndarray, tokens: np.ndarray, level: float = 0.9) -> pd.DataFrame:
        """``loss_median`` (the point fit), ``loss_lower``, ``loss_upper`` (bootstrap
        percentiles)."""
        n, d = np.broadcast_arrays(np.atleast_1d(params), np.atleast_1d(tokens))
        point = self.point.loss(n, d)
        out = pd.DataFrame({"params": n, "tokens": d, "loss_median": point})
        if self.replicates:
            log = np.stack([r.log_loss(n, d) for r in self.replicates])
            stats = summarize(log, level)
            out["loss_lower"] = np.minimum(np.exp(stats["lower"]), point)
            out["loss_upper"] = np.maximum(np.exp(stats["upper"]), point)
        else:
            out["loss_lower"] = out["loss_upper"] = point
        return out


def fit_baseline(
    params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    *,
    n_boot: int = 200,
    n_starts: int = 25,
    random_seed: int = 0,
) -> BaselineFit:
    """Point fit plus ``n_boot`` bootstrap refits (rows resampled with replacement)."""
    point = fit_point(params, tokens, loss, n_starts=n_starts)
    rng = np.random.default_rng(random_seed)
    size = len(np.atleast_1d(loss))
    replicates = []
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, size, size), minlength=size)
        replicates.append(fit_point(params, tokens, loss, weights=counts,
                                    start=np.asarray(point.theta)))
    return BaselineFit(point, replicates)


def fit_runs(runs: RunTable, **kwargs: int) -> BaselineFit:
    """:func:`fit_baseline` on a run table."""
    data = runs.data
    return fit_baseline(data[PARAMS].to_numpy(), data[TOKENS].to_numpy(),
                        data[LOSS].to_numpy(), **kwargs)
