"""Predictive draws of the loss of a planned run: the law's expected loss and a new run's loss.

Per posterior draw s, the law gives mean_loss_s = L_s(N, D) (parameter uncertainty only). A new
run adds the noise that no number of small runs removes: its seed deviation u ~ N(0, seed_noise_s)
and the row noise eps ~ StudentT(nu_s, 0, sigma_obs_s) (Normal for a Normal likelihood), both on
ln L: loss_s = mean_loss_s * exp(u + eps).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Draws = Mapping[str, np.ndarray]


def noise_draws(draws: Draws, n_targets: int, rng: np.random.Generator) -> np.ndarray:
    """ln-scale noise of a new run: one value per draw (rows) and target (columns)."""
    n_draws = np.asarray(draws["sigma_obs"]).size
    seed = np.asarray(draws["seed_noise"]).reshape(-1, 1)
    sigma = np.asarray(draws["sigma_obs"]).reshape(-1, 1)
    u = rng.standard_normal((n_draws, n_targets)) * seed
    if "nu" in draws:
        nu = np.asarray(draws["nu"]).reshape(-1, 1)
        eps = rng.standard_t(np.broadcast_to(nu, (n_draws, n_targets))) * sigma
    else:
        eps = rng.standard_normal((n_draws, n_targets)) * sigma
    return u + eps


def floor_share(mean_log: np.ndarray, new_log: np.ndarray, level: float) -> np.ndarray:
    """Share of a new run's predictive spread that is noise rather than parameter uncertainty.

    1 - (w_mean / w_new)^2 with w the width of the central ``level`` interval of ln L: the
    variance share for Gaussian spreads, and still defined for the heavy tails of a Student-t.
    """
    q = [(1 - level) / 2, (1 + level) / 2]
    w_mean = np.diff(np.quantile(mean_log, q, axis=0), axis=0)[0]
    w_new = np.diff(np.quantile(new_log, q, axis=0), axis=0)[0]
    return np.clip(1.0 - (w_mean / np.maximum(w_new, 1e-300)) ** 2, 0.0, 1.0)
