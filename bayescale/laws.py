"""Scaling laws: each one defined once, as numpy (for predictions) and PyMC (for fitting).

A law is fitted on centred predictors n = ln N - n0, d = ln D - d0: with raw ln N the
coefficient and the exponent of each term are almost collinear (ln A - alpha ln N), which
makes NUTS take hundreds of leapfrog steps per draw. Each law reparameterises its scale
coefficients at the centre and reports them in the user's units as Deterministics.
Adding a law is one subclass registered in ``LAWS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from bayescale.priors import Prior, lognormal

Draws = Mapping[str, np.ndarray]


def _col(x: np.ndarray) -> np.ndarray:
    """Draws as a column, so draws x targets broadcast."""
    return np.asarray(x, dtype=float).reshape(-1, 1)


def _log_row(x: np.ndarray) -> np.ndarray:
    """ln of targets as a row (1-d input), or as given (2-d input, e.g. one target per draw)."""
    x = np.log(np.asarray(x, dtype=float))
    return x.reshape(1, -1) if x.ndim <= 1 else x


class Law(ABC):
    """A parametric loss law L(N, D)."""

    name: str
    parameters: tuple[str, ...]
    formula: str
    #: Scale coefficients whose priors must be log-normal (the centring is exact for them).
    lognormal_parameters: tuple[str, ...] = ()

    @abstractmethod
    def default_priors(self) -> dict[str, Prior]:
        """Weakly informative default priors, one per parameter."""

    def prior_draws(
        self, priors: Mapping[str, Prior], rng: np.random.Generator, size: int
    ) -> dict[str, np.ndarray]:
        """Draws of the law's parameters from their priors (prior predictive checks, plots).

        A scale coefficient whose prior sits at a reference size (``at``) is converted back to
        the user's units with the draw of the exponent it multiplies (``exponent_of``).
        """
        draws = {name: priors[name].sample(rng, size) for name in self.parameters}
        for name, exponent in self.exponent_of.items():
            draws[name] = draws[name] * priors[name].at ** draws[exponent]
        return draws

    #: Scale coefficient -> the exponent of its term (for priors at a reference size).
    exponent_of: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    def log_loss(self, draws: Draws, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """ln L for every draw (rows) and target (columns).

        ``params`` and ``tokens`` are 1-d (targets shared by all draws) or 2-d (draws x targets).
        """

    @abstractmethod
    def pymc_log_loss(
        self, priors: Mapping[str, Prior], n0: Any, d0: Any, n: Any, d: Any
    ) -> Any:
        """Inside a PyMC model: create the parameters and return ln L at centred n, d."""

    def loss(self, draws: Draws, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """L for every draw (rows) and target (columns)."""
        return np.exp(self.log_loss(draws, params, tokens))

    def optimal(self, draws: Draws, compute: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per draw, the (N*, D*) minimising L under C = 6 N D, by a bracketed search.

        ``compute`` is one budget or one per draw.
        """
        size = np.asarray(draws[self.parameters[0]]).size
        half = np.broadcast_to(np.log(np.asarray(compute, dtype=float) / 6.0), (size,))
        lowest = np.log(1e3)
        grid = lowest + np.linspace(0.0, 1.0, 512) * (half[:, None] - 2 * lowest)
        values = self.log_loss(draws, np.exp(grid), np.exp(half[:, None] - grid))
        best = np.argmin(values, axis=1)
        rows = np.arange(size)
        lo = grid[rows, np.clip(best - 1, 0, grid.shape[1] - 1)]
        hi = grid[rows, np.clip(best + 1, 0, grid.shape[1] - 1)]
        ratio = (np.sqrt(5.0) - 1.0) / 2.0  # golden-section search on ln N
        for _ in range(60):
            a = hi - ratio * (hi - lo)
            b = lo + ratio * (hi - lo)
            fa = self._along(draws, a, half)
            fb = self._along(draws, b, half)
            hi = np.where(fa < fb, b, hi)
            lo = np.where(fa < fb, lo, a)
        log_n = (lo + hi) / 2.0
        return np.exp(log_n), np.exp(half - log_n)

    def _along(self, draws: Draws, log_n: np.ndarray, half: np.ndarray) -> np.ndarray:
        """ln L at one ln N per draw on the curve C = 6 N D."""
        log_n, half = log_n.reshape(-1, 1), half.reshape(-1, 1)
        return self.log_loss(draws, np.exp(log_n), np.exp(half - log_n))[:, 0]


class Chinchilla(Law):
    """L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2)."""

    name = "chinchilla"
    parameters = ("E", "A", "B", "alpha", "beta")
    formula = "L = E + A/N^alpha + B/D^beta"
    lognormal_parameters = ("A", "B")
    exponent_of: ClassVar[Mapping[str, str]] = {"A": "alpha", "B": "beta"}

    def default_priors(self) -> dict[str, Prior]:
        # Medians near published fits (Hoffmann et al. 2022: A/N^alpha = 0.35 at N = 1e9 and
        # B/D^beta = 0.65 at D = 1e10; Besiroglu et al. 2024: 0.36 and 0.46), wide in log space.
        # 90% prior intervals: E in [0.9, 4.5]; the N-term at 1B parameters and the D-term at
        # 10B tokens each in [0.08, 2.6]; exponents in [0.15, 0.8].
        return {
            "E": lognormal(2.0, 0.5),
            "A": lognormal(0.4, 1.0, at=1e9),
            "B": lognormal(0.5, 1.0, at=1e10),
            "alpha": lognormal(0.35, 0.5),
            "beta": lognormal(0.35, 0.5),
        }

    def log_loss(self, draws: Draws, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        log_n, log_d = _log_row(params), _log_row(tokens)
        terms = np.broadcast_arrays(
            np.log(_col(draws["E"])),
            np.log(_col(draws["A"])) - _col(draws["alpha"]) * log_n,
            np.log(_col(draws["B"])) - _col(draws["beta"]) * log_d,
        )
        return np.logaddexp.reduce(np.stack(terms), axis=0)

    def pymc_log_loss(
        self, priors: Mapping[str, Prior], n0: Any, d0: Any, n: Any, d: Any
    ) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        e = priors["E"].pymc("E")
        alpha = priors["alpha"].pymc("alpha")
        beta = priors["beta"].pymc("beta")
        # ln A = a_c + alpha n0 and the prior is on ln A - alpha ln(at): given alpha, a_c is
        # Normal(mu + alpha (ln(at) - n0), sigma), the user's prior shifted (same for B).
        pa, pb = priors["A"], priors["B"]
        a_c = pm.Normal("a_c", mu=pa.params["mu"] + alpha * (np.log(pa.at) - n0),
                        sigma=pa.params["sigma"])
        b_c = pm.Normal("b_c", mu=pb.params["mu"] + beta * (np.log(pb.at) - d0),
                        sigma=pb.params["sigma"])
        pm.Deterministic("A", pt.exp(a_c + alpha * n0))
        pm.Deterministic("B", pt.exp(b_c + beta * d0))
        terms = pt.stack(pt.broadcast_arrays(pt.log(e), a_c - alpha * n, b_c - beta * d))
        return pt.logsumexp(terms, axis=0)

    def optimal(self, draws: Draws, compute: Any) -> tuple[np.ndarray, np.ndarray]:
        """Closed form (Hoffmann et al. 2022, appendix D.2).

        G = (alpha A / (beta B))^(1/(alpha+beta)), N* = G (C/6)^(beta/(alpha+beta)),
        D* = G^-1 (C/6)^(alpha/(alpha+beta)).
        """
        alpha, beta = np.asarray(draws["alpha"]), np.asarray(draws["beta"])
        log_g = (
            np.log(alpha) + np.log(draws["A"]) - np.log(beta) - np.log(draws["B"])
        ) / (alpha + beta)
        half = np.log(compute / 6.0)
        log_n = log_g + beta / (alpha + beta) * half
        return np.exp(log_n), np.exp(half - log_n)


LAWS: dict[str, Law] = {law.name: law for law in (Chinchilla(),)}


def get_law(name: str) -> Law:
    """The law registered under ``name``."""
    from bayescale.errors import BayescaleError

    try:
        return LAWS[name]
    except KeyError:
        raise BayescaleError(f"unknown law '{name}': use one of {', '.join(LAWS)}") from None
