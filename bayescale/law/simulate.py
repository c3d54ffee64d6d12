"""Simulated training runs from a known law with seed noise (examples, tests, benchmarks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayescale.data.compute import tokens_for
from bayescale.law.laws import get_law

#: Besiroglu et al. 2024 (Epoch AI's replication of Chinchilla), the default truth.
EPOCH_LAW = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}
_CHINCHILLA = get_law("chinchilla")


def chinchilla_loss(truth: dict[str, float], params: Any, tokens: Any) -> np.ndarray:
    """L = E + A/N^alpha + B/D^beta of one known law (:class:`bayescale.law.laws.Chinchilla`).

    Examples
    --------
    >>> round(float(chinchilla_loss(EPOCH_LAW, 7e9, 1.4e11)), 3)
    2.174
    """
    return _CHINCHILLA.loss(_as_draws(truth), np.ravel(params), np.ravel(tokens)).reshape(
        np.shape(np.broadcast_arrays(params, tokens)[0]))


def _as_draws(truth: dict[str, float]) -> dict[str, np.ndarray]:
    return {k: np.array([v], dtype=float) for k, v in truth.items()}


def isoflop_sweep(
    budgets: list[float],
    sizes_per_budget: int = 8,
    *,
    truth: dict[str, float] | None = None,
    seed_noise: float = 0.01,
    seeds: int = 1,
    span: float = 8.0,
    random_seed: int = 0,
) -> pd.DataFrame:
    """An isoFLOP sweep: at each budget C, model sizes spread log-evenly around the optimum.

    Parameters
    ----------
    budgets : list of float
        Compute budgets C (FLOP); D = C / (6 N).
    sizes_per_budget : int
        Model sizes per budget, from N*/sqrt(span) to N* sqrt(span).
    truth : dict, optional
        Law parameters; :data:`EPOCH_LAW` by default.
    seed_noise : float
        Relative sd of a run's loss across seeds: L_run = L(N, D) exp(u), u ~ N(0, seed_noise).
    seeds : int
        Runs (seeds) per configuration.
    random_seed : int
        Seed of the simulation.

    Returns
    -------
    pandas.DataFrame
        Columns ``run``, ``seed``, ``params``, ``tokens``, ``compute``, ``loss``,
        ``true_mean_loss``.

    Examples
    --------
    >>> runs = isoflop_sweep([1e19, 1e20], sizes_per_budget=5)
    >>> len(runs)
    10
    """
    truth = truth or EPOCH_LAW
    rng = np.random.default_rng(random_seed)
    rows = []
    for budget in budgets:
        n_opt = float(_CHINCHILLA.optimal(_as_draws(truth), budget)[0][0])
        for n in n_opt * np.geomspace(span**-0.5, span**0.5, sizes_per_budget):
            d = tokens_for(budget, n)
            mean = float(chinchilla_loss(truth, n, d))
            for seed in range(seeds):
                rows.append({
                    "run": f"C{budget:.0e}-N{n:.3g}-s{seed}", "seed": seed,
                    "params": round(float(n)), "tokens": round(float(d)), "compute": budget,
                    "loss": mean * float(np.exp(rng.normal(0.0, seed_noise))),
                    "true_mean_loss": mean,
                })
    return pd.DataFrame(rows)


def checkpoint_curves(
    sizes: list[float],
    *,
    checkpoints: int = 25,
    tokens_per_param: float = 20.0,
    first_frac: float = 0.05,
    truth: dict[str, float] | None = None,
    seed_noise: float = 0.01,
    row_noise: float = 0.002,
    seeds: int = 1,
    family: str | None = None,
    random_seed: int = 0,
) -> pd.DataFrame:
    """Loss curves: runs of the given sizes, each with checkpoints along its training.

    A run of N parameters trains to D = ``tokens_per_param`` x N; its checkpoints sit log-evenly
    from ``first_frac`` x D to D. Every checkpoint follows the law at its own token count (a
    simplification: real curves also carry the learning-rate schedule), shifted by the run's seed
    deviation u ~ N(0, ``seed_noise``) and row noise e ~ N(0, ``row_noise``), both on ln L.

    Returns
    -------
    pandas.DataFrame
        Columns ``run``, ``seed``, ``params``, ``tokens``, ``loss``, ``true_mean_loss`` (and
        ``family`` when given); one row per checkpoint.

    Examples
    --------
    >>> curves = checkpoint_curves([1e8, 4e8], checkpoints=10)
    >>> len(curves), curves["run"].nunique()
    (20, 2)
    """
    truth = truth or EPOCH_LAW
    rng = np.random.default_rng(random_seed)
    frames = []
    for n in sizes:
        tokens = np.round(np.geomspace(first_frac, 1.0, checkpoints) * tokens_per_param * n)
        mean = chinchilla_loss(truth, n, tokens)
        for seed in range(seeds):
            shift = rng.normal(0.0, seed_noise) + rng.normal(0.0, row_noise, checkpoints)
            frame = pd.DataFrame({
                "run": f"{family + '-' if family else ''}N{n:.3g}-s{seed}", "seed": seed,
                "params": round(float(n)), "tokens": tokens, "loss": mean * np.exp(shift),
                "true_mean_loss": mean,
            })
            if family is not None:
                frame["family"] = family
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def known_draws(size: int = 2000, *, spread: float = 0.02, sigma_obs: float = 0.002,
                seed_noise: float = 0.01, random_seed: int = 0) -> dict[str, np.ndarray]:
    """Posterior-like draws around Epoch's law (each parameter times exp(N(0, spread))) with
    fixed noise scales: what ``Posterior.from_draws`` needs for tests and examples without
    sampling.

    Examples
    --------
    >>> draws = known_draws(100)
    >>> sorted(draws), draws["E"].shape
    (['A', 'B', 'E', 'alpha', 'beta', 'seed_noise', 'sigma_obs'], (100,))
    """
    rng = np.random.default_rng(random_seed)
    draws = {k: v * np.exp(rng.normal(0, spread, size)) for k, v in EPOCH_LAW.items()}
    draws["sigma_obs"] = np.full(size, sigma_obs)
    draws["seed_noise"] = np.full(size, seed_noise)
    return draws
