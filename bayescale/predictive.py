"""Predictive draws of the loss of a planned run: the law's expected loss and a new run's loss.

Per posterior draw s, the law gives mean_loss_s = L_s(N, D) (parameter uncertainty only). A new
run adds the noise that no number of small runs removes: its seed deviation u ~ N(0, seed_noise_s)
and the row noise eps ~ StudentT(nu_s, 0, sigma_obs_s sqrt(nu_s/(nu_s+2))) (sigma_obs is a
normal-equivalent scale, see ``bayescale.model.t_scale``; Normal for a Normal likelihood), both on
ln L: loss_s = mean_loss_s * exp(u + eps).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayescale.model import t_scale

Draws = Mapping[str, np.ndarray]


def noise_draws(draws: Draws, n_targets: int, rng: np.random.Generator) -> np.ndarray:
    """ln-scale noise of a new run: one value per draw (rows) and target (columns).

    Examples
    --------
    >>> draws = {"sigma_obs": np.full(4000, 0.005), "seed_noise": np.full(4000, 0.01)}
    >>> noise = noise_draws(draws, 2, np.random.default_rng(0))
    >>> noise.shape, round(float(noise.std()), 3)
    ((4000, 2), 0.011)
    """
    n_draws = np.asarray(draws["sigma_obs"]).size
    seed = np.asarray(draws["seed_noise"]).reshape(-1, 1)
    sigma = np.asarray(draws["sigma_obs"]).reshape(-1, 1)
    u = rng.standard_normal((n_draws, n_targets)) * seed
    if "nu" in draws:
        nu = np.asarray(draws["nu"]).reshape(-1, 1)
        eps = rng.standard_t(np.broadcast_to(nu, (n_draws, n_targets))) * sigma * t_scale(nu)
    else:
        eps = rng.standard_normal((n_draws, n_targets)) * sigma
    return u + eps


def floor_share(mean_log: np.ndarray, new_log: np.ndarray, level: float) -> np.ndarray:
    """Share of a new run's predictive spread that is noise rather than parameter uncertainty.

    1 - (w_mean / w_new)^2 with w the width of the central ``level`` interval of ln L: the
    variance share for Gaussian spreads, and still defined for the heavy tails of a Student-t.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mean_log = rng.normal(0.0, 0.01, (4000, 1))
    >>> new_log = mean_log + rng.normal(0.0, 0.01, (4000, 1))
    >>> round(float(floor_share(mean_log, new_log, 0.9)[0]), 1)
    0.5
    """
    q = [(1 - level) / 2, (1 + level) / 2]
    w_mean = np.diff(np.quantile(mean_log, q, axis=0), axis=0)[0]
    w_new = np.diff(np.quantile(new_log, q, axis=0), axis=0)[0]
    return np.clip(1.0 - (w_mean / np.maximum(w_new, 1e-300)) ** 2, 0.0, 1.0)


def discrepancy_share(
    mean_log: np.ndarray, law_log: np.ndarray, new_log: np.ndarray, level: float
) -> np.ndarray:
    """Share of a new run's predictive spread that is the law's own extrapolation error.

    (w_law^2 - w_mean^2) / w_new^2 with w the width of the central ``level`` interval of ln L for
    the law's mean (parameter uncertainty), the law plus its discrepancy
    (:mod:`bayescale.calibration`) and the new run (noise too). 0 inside the data.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mean_log = rng.normal(0.0, 0.01, (4000, 1))
    >>> law_log = mean_log + rng.normal(0.0, 0.02, (4000, 1))
    >>> new_log = law_log + rng.normal(0.0, 0.01, (4000, 1))
    >>> round(float(discrepancy_share(mean_log, law_log, new_log, 0.9)[0]), 1)
    0.7
    """
    q = [(1 - level) / 2, (1 + level) / 2]
    w_mean, w_law, w_new = (np.diff(np.quantile(x, q, axis=0), axis=0)[0]
                            for x in (mean_log, law_log, new_log))
    share = (w_law**2 - w_mean**2) / np.maximum(w_new, 1e-300) ** 2
    return np.clip(share, 0.0, 1.0)
