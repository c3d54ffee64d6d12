"""Predictive draws of the loss of a planned run: the law's expected loss and a new run's loss.

Per posterior draw s, the law gives mean_loss_s = L_s(N, D) (parameter uncertainty only). A
new run adds the noise that no number of small runs removes: its seed deviation
u ~ N(0, seed_noise_s) and the row noise eps of the fit's likelihood with sd sigma_obs_s
(:mod:`bayescale.law.likelihoods`: Student-t, Huber or Normal; sigma_obs is a normal-equivalent
scale), both on ln L: loss_s = mean_loss_s * exp(u + eps). Beyond the fitted runs the law's
learned discrepancy (:mod:`bayescale.law.calibration`) is added to ln L first.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayescale.law.calibration import Calibration
from bayescale.law.likelihoods import row_noise

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
    eps = row_noise(draws, sigma, (n_draws, n_targets), rng)
    return u + eps


def target_rng(random_seed: int, *key: float) -> np.random.Generator:
    """The random stream of one target, seeded by ``random_seed`` and the target itself (its N
    and D; a budget C for the optimum at C): a target's draws, hence its interval, do not
    depend on which other targets are asked with it.

    The key is rounded to 12 significant digits first, so a value that went through float
    arithmetic names the same target (at N = 7e9, D = 1e21 / (6 N) gives 6 N D =
    1.0000000000000001e21).

    Examples
    --------
    >>> a = target_rng(0, 1e21).standard_normal()
    >>> bool(a == target_rng(0, 6 * 7e9 * (1e21 / (6 * 7e9))).standard_normal()
    ...      != target_rng(1, 1e21).standard_normal())
    True
    """
    rounded = [float(f"{value:.12g}") for value in key]
    bits = np.asarray(rounded, dtype=np.float64).view(np.uint64)
    return np.random.default_rng([random_seed, *(int(b) for b in bits)])


def target_noise(draws: Draws, params: np.ndarray, tokens: np.ndarray,
                 random_seed: int) -> np.ndarray:
    """:func:`noise_draws` per target (columns), each on its :func:`target_rng` stream.

    Examples
    --------
    >>> draws = {"sigma_obs": np.full(100, 0.005), "seed_noise": np.full(100, 0.01)}
    >>> both = target_noise(draws, np.array([1e9, 7e9]), np.array([2e10, 1.4e11]), 0)
    >>> alone = target_noise(draws, np.array([7e9]), np.array([1.4e11]), 0)
    >>> both.shape, bool((both[:, 1] == alone[:, 0]).all())
    ((100, 2), True)
    """
    n_draws = np.asarray(draws["sigma_obs"]).size
    columns = [noise_draws(draws, 1, target_rng(random_seed, n, d))
               for n, d in zip(np.ravel(params), np.ravel(tokens), strict=True)]
    return np.hstack(columns) if columns else np.zeros((n_draws, 0))


def new_run_log(
    mean_log: np.ndarray, draws: Draws, params: np.ndarray, tokens: np.ndarray,
    calibration: Calibration | None, random_seed: int,
    covariates: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ln L of the law with its learned discrepancy, and of a new run, per draw and target.

    ``mean_log`` is the law's ln L (draws x targets); ``covariates`` the targets' other inputs
    of the law (``unique_tokens``): their epochs beyond the fitted ones add to the distance
    (:func:`bayescale.data.ranges.distance`). The discrepancy's slopes come from
    ``default_rng(random_seed)`` (one per draw, shared by all targets, as in
    :meth:`bayescale.law.calibration.Calibration.draws`), the noise from :func:`target_noise`: the
    same seed gives the same draws in ``predict``, ``risk``, ``optimal`` and the plots' bands.

    Examples
    --------
    >>> draws = {"sigma_obs": np.full(100, 0.005), "seed_noise": np.full(100, 0.01)}
    >>> law, new = new_run_log(np.zeros((100, 1)), draws, np.array([7e9]), np.array([1.4e11]),
    ...                        None, 0)
    >>> bool((law == 0).all()), round(float(new.std()), 2)
    (True, 0.01)
    """
    law_log = mean_log
    if calibration is not None:
        unique = None if covariates is None else covariates.get("unique_tokens")
        law_log = mean_log + calibration.draws(params, tokens, mean_log.shape[0],
                                               np.random.default_rng(random_seed), unique)
    return law_log, law_log + target_noise(draws, params, tokens, random_seed)


def optimum_new_run_log(
    opt: Mapping[str, np.ndarray], draws: Draws, calibration: Calibration | None,
    random_seed: int, key: float, unique_tokens: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`new_run_log` at each draw's optimum (``opt`` from
    :func:`bayescale.posterior.optimal.optimal_draws`, or under a limit of ``unique_tokens``
    from :func:`bayescale.posterior.limits.data_limited_draws`): the target moves with the
    draw, its discrepancy is taken at that draw's (N*, D*) (and epochs D*/U), its noise drawn
    on ``target_rng(random_seed, key)`` (``key``: the budget, or the fixed N or D).

    Examples
    --------
    >>> draws = {"sigma_obs": np.full(100, 0.005), "seed_noise": np.full(100, 0.01)}
    >>> opt = {"loss": np.full(100, 2.0), "params": np.full(100, 7e9),
    ...        "tokens": np.full(100, 1.4e11)}
    >>> law, new = optimum_new_run_log(opt, draws, None, 0, 5.88e21)
    >>> bool((law == np.log(2.0)).all()), round(float(new.std()), 2)
    (True, 0.01)
    """
    law_log = np.log(opt["loss"])
    if calibration is not None:
        slopes = calibration.slopes(law_log.size, np.random.default_rng(random_seed))
        unique = None if unique_tokens is None else np.full(law_log.size, unique_tokens)
        law_log = law_log + slopes * calibration.distance(opt["params"], opt["tokens"], unique)
    noise = noise_draws(draws, 1, target_rng(random_seed, key))[:, 0]
    return law_log, law_log + noise


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
    (:mod:`bayescale.law.calibration`) and the new run (noise too). 0 inside the data.

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
