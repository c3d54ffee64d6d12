"""Build the PyMC model of a run table: the law on centred predictors plus the noise model.

ln L_i = ln law(N_i, D_i) + u_run(i) + eps_i
  u_r   ~ Normal(0, seed_noise)        the run's seed deviation, shared by its checkpoints
  eps_i ~ StudentT(nu, 0, sigma_obs)   row noise (robust: the Bayesian counterpart of the
                                       Huber loss on ln L of Hoffmann et al. 2022), or Normal
Which noise the data identify depends on their structure, and the model follows it:
- runs with several rows (checkpoints, ``--run-col``): each such run gets a latent u (its shift
  shared by all its checkpoints), so seed noise is the between-run scatter and sigma_obs the
  within-run scatter;
- repeated seeds, one row per run (several rows with the same N and D): each repeated
  configuration gets a latent offset of scale sigma_obs (the law's misfit there, shared by the
  seeds) and the row noise is the seed noise, so seed noise is the within-configuration scatter;
- rows outside such groups get both terms in quadrature, scale sqrt(sigma_obs^2 + seed_noise^2).
When there is no group at all (final losses, one seed each) the data identify only the total
noise: the model samples ``noise_total`` (prior of ``sigma_obs``) and ``seed_share`` ~ Beta(1, 1),
the unidentified share of its variance that is seed noise, so the sampler never walks the ridge
sigma_obs^2 + seed_noise^2 = const. A fixed ``seed_noise`` (the user's own knowledge) replaces
the seed-noise prior in every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayescale.laws import get_law
from bayescale.priors import NOISE_PRIORS, Prior, to_dict
from bayescale.runs import LOSS, PARAMS, TOKENS, RunTable

LIKELIHOODS = ("studentt", "normal")


@dataclass
class ModelSpec:
    """Everything that defines the model apart from the data.

    Attributes
    ----------
    law : str
        Name of a law in :data:`bayescale.laws.LAWS`.
    likelihood : str
        ``studentt`` (robust, default) or ``normal``, on ln L.
    priors : dict
        Priors of the law's parameters and of ``sigma_obs``, ``seed_noise``, ``nu``; missing
        entries take the defaults.
    seed_noise : float, optional
        Fix the seed noise (relative sd of a run's loss) instead of giving it a prior.
    """

    law: str = "chinchilla"
    likelihood: str = "studentt"
    priors: dict[str, Prior] = field(default_factory=dict)
    seed_noise: float | None = None

    def full_priors(self) -> dict[str, Prior]:
        """Defaults of the law and noise, overridden by ``priors``."""
        merged = {**get_law(self.law).default_priors(), **NOISE_PRIORS}
        merged.update(self.priors)
        if self.likelihood == "normal":
            merged.pop("nu", None)
        return merged

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the posterior file."""
        return {
            "law": self.law,
            "likelihood": self.likelihood,
            "priors": to_dict(self.full_priors()),
            "seed_noise": self.seed_noise,
        }


@dataclass(frozen=True)
class Centring:
    """Centres of ln N and ln D used inside the model (geometric means of the data)."""

    n0: float
    d0: float

    @classmethod
    def of(cls, runs: RunTable) -> Centring:
        """The centres of a run table."""
        data = runs.data
        return cls(float(np.log(data[PARAMS]).mean()), float(np.log(data[TOKENS]).mean()))


def _grouped(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Index 0..G-1 of each row in a label with >= 2 rows, G for rows alone; and G."""
    unique, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    multi = counts >= 2
    index_of = np.full(unique.size, int(multi.sum()))
    index_of[multi] = np.arange(int(multi.sum()))
    return index_of[codes], int(multi.sum())


def group_structure(runs: RunTable) -> tuple[np.ndarray, int, bool]:
    """The latent offset group of each row, the number of groups, and whether they are
    configurations (repeated seeds) rather than runs (checkpoints); see the module docstring."""
    index, count = _grouped(runs.run_ids)
    if count:
        return index, count, False
    data = runs.data
    configs = np.array([f"{n:.6g}|{d:.6g}" for n, d in zip(data[PARAMS], data[TOKENS],
                                                           strict=True)])
    index, count = _grouped(configs)
    return index, count, True


@dataclass
class BuiltModel:
    """A PyMC model, the centring it used and the sampled parameters to check for convergence."""

    model: Any
    centring: Centring
    checked: list[str]


def build_model(runs: RunTable, spec: ModelSpec) -> BuiltModel:
    """The PyMC model of ``runs`` under ``spec``."""
    import pymc as pm
    import pytensor.tensor as pt

    law = get_law(spec.law)
    priors = spec.full_priors()
    centre = Centring.of(runs)
    data = runs.data
    group_index, n_groups, by_config = group_structure(runs)
    single = group_index == n_groups

    with pm.Model() as model:
        # Everything that changes between data sets of one design is a Data container, so a
        # compiled model can be reused with nutpie's `compiled.with_data(...)` (no recompile).
        n0 = pm.Data("n0", centre.n0)
        d0 = pm.Data("d0", centre.d0)
        n = pm.Data("n_centred", np.log(data[PARAMS].to_numpy()) - centre.n0)
        d = pm.Data("d_centred", np.log(data[TOKENS].to_numpy()) - centre.d0)
        y = pm.Data("y_obs", np.log(data[LOSS].to_numpy()))
        mu = law.pymc_log_loss(priors, n0, d0, n, d)

        checked = list(law.parameters)
        if spec.seed_noise is not None:
            sigma_obs = priors["sigma_obs"].pymc("sigma_obs")
            seed = pm.Deterministic("seed_noise", pt.as_tensor(float(spec.seed_noise)))
            checked.append("sigma_obs")
        elif n_groups:
            sigma_obs = priors["sigma_obs"].pymc("sigma_obs")
            seed = priors["seed_noise"].pymc("seed_noise")
            checked += ["sigma_obs", "seed_noise"]
        else:
            total = priors["sigma_obs"].pymc("noise_total")
            share = pm.Beta("seed_share", 1.0, 1.0)
            sigma_obs = pm.Deterministic("sigma_obs", total * pt.sqrt(1.0 - share))
            seed = pm.Deterministic("seed_noise", total * pt.sqrt(share))
            checked += ["noise_total", "seed_share"]
        group_scale, row_scale = (sigma_obs, seed) if by_config else (seed, sigma_obs)
        if n_groups:
            z = pm.Normal("config_z" if by_config else "run_z", 0.0, 1.0, shape=n_groups)
            offsets = pt.concatenate([group_scale * z, pt.zeros(1)])
            mu = mu + offsets[group_index]
        scale = pt.where(single, pt.sqrt(sigma_obs**2 + seed**2), row_scale)
        if spec.likelihood == "studentt":
            nu = priors["nu"].pymc("nu")
            checked.append("nu")
            pm.StudentT("log_loss", nu=nu, mu=mu, sigma=scale, observed=y)
        else:
            pm.Normal("log_loss", mu=mu, sigma=scale, observed=y)
    return BuiltModel(model, centre, checked)
