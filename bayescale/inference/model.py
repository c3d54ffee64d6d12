"""Build the PyMC model of a run table: the law on centred predictors plus the noise model.

ln L_i = ln law(N_i, D_i) + u_run(i) + eps_i
  u_r   ~ Normal(0, seed_noise)        the run's seed deviation, shared by its checkpoints
  eps_i ~ StudentT(nu, 0, sigma_obs)   row noise (robust: the Bayesian counterpart of the
                                       Huber loss on ln L of Hoffmann et al. 2022), Huber or
                                       Normal (:mod:`bayescale.law.likelihoods`)
Which noise the data identify depends on their structure, and the model follows it:
- runs with several rows (checkpoints, ``--run-col``): each such run gets a latent u (its shift
  shared by all its checkpoints), so seed noise is the between-run scatter and sigma_obs the
  within-run scatter. That scatter is seed noise only where runs repeat a model size (of one
  family): a run alone at its size would have an offset that absorbs the law's size dependence,
  leaving the law to the priors and spoiling forecasts of other sizes. So such a run gets no
  offset (unless the seed noise is given) and only runs that repeat a size inform
  ``seed_noise``; with none, it keeps its prior (a "cut", Plummer 2015: the data cannot tell it
  from the law's misfit across sizes) and the floor in predictions is the prior's;
- repeated seeds, one row per run (several rows with the same N and D): each repeated
  configuration gets a latent offset of scale sigma_obs (the law's misfit there, shared by the
  seeds) and the row noise is the seed noise, so seed noise is the within-configuration scatter;
- rows outside such groups get both terms in quadrature, scale sqrt(sigma_obs^2 + seed_noise^2).
When there is no group at all (final losses, one seed each) the data identify only the total
noise: the model samples ``noise_total`` (prior of ``sigma_obs``) and ``seed_share`` ~ Beta(1, 1),
the unidentified share of its variance that is seed noise, so the sampler never walks the ridge
sigma_obs^2 + seed_noise^2 = const. A fixed ``seed_noise`` (the user's own knowledge) replaces
the seed-noise prior in every case. In a family model (``--family-col``) each family has its own
``sigma_obs``, ``seed_noise`` and ``nu`` (where they are sampled), and runs and configurations
are grouped within a family (two families' runs labelled "1B" are two runs).

Two reparameterisations keep NUTS fast on large checkpoint tables (same model, other
coordinates): runs with several rows are sampled as levels centred on the law at each run's own
centre (``run_level``; ``run_offset`` holds u), and ``sigma_obs`` and ``seed_noise`` are
normal-equivalent scales (the Student-t scale is s sqrt(nu/(nu+2)), see
:func:`bayescale.law.likelihoods.t_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.data.runs import FAMILY, LOSS, PARAMS, TOKENS, RunTable
from bayescale.law.families import FAMILY_SD, family_structure, pymc_family_log_loss
from bayescale.law.laws import get_law
from bayescale.law.likelihoods import LIKELIHOODS, pymc_observe
from bayescale.law.priors import NOISE_PRIORS, Prior, check_support, to_dict

#: Largest fixed seed noise (relative sd of a run's loss) accepted, as ``fit --seed-noise``.
MAX_SEED_NOISE = 0.5


@dataclass
class ModelSpec:
    """Everything that defines the model apart from the data.

    Attributes
    ----------
    law : str
        Name of a law in :data:`bayescale.law.laws.LAWS`.
    likelihood : str
        On ln L: ``studentt`` (default; robust, its tails learned through ``nu``), ``normal``,
        or ``huber`` (the Huber density, :mod:`bayescale.law.likelihoods`: robust with one mode, but
        gross outliers keep a bounded pull).
    priors : dict
        Priors of the law's parameters and of ``sigma_obs``, ``seed_noise``, ``nu``; missing
        entries take the defaults.
    seed_noise : float, optional
        Fix the seed noise (relative sd of a run's loss) instead of giving it a prior.
    families : bool
        A hierarchical law over the table's ``family`` column (:mod:`bayescale.law.families`);
        :func:`bayescale.inference.fit.fit` sets it when the runs have one.
    separate_e : bool
        In a family model, each family keeps its own E under the single-family prior instead
        of pooling it: for families trained on different data or tokenizers, whose irreducible
        losses are unrelated.

    Examples
    --------
    >>> from bayescale.law.priors import lognormal
    >>> spec = ModelSpec(likelihood="normal", priors={"alpha": lognormal(0.3, 0.3)},
    ...                  seed_noise=0.01)
    >>> spec.full_priors()["alpha"].describe(), spec.full_priors()["beta"].describe()
    ('lognormal(mu=-1.204, sigma=0.3)', 'lognormal(mu=-1.05, sigma=0.5)')
    """

    law: str = "chinchilla"
    likelihood: str = "studentt"
    priors: dict[str, Prior] = field(default_factory=dict)
    seed_noise: float | None = None
    families: bool = False
    separate_e: bool = False

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise BayescaleError(f"likelihood '{self.likelihood}': use one of "
                                 f"{', '.join(LIKELIHOODS)}")
        if self.seed_noise is not None and not 0.0 <= self.seed_noise <= MAX_SEED_NOISE:
            raise BayescaleError(f"seed_noise {self.seed_noise:g}: give a relative sd in "
                                 f"[0, {MAX_SEED_NOISE:g}] (0.01 is 1%)")
        bad = [name for name, prior in self.priors.items() if not isinstance(prior, Prior)]
        if bad:
            raise BayescaleError(f"priors[{bad[0]!r}] must be a Prior, e.g. "
                                 "bayescale.law.priors.lognormal(0.35, 0.5)")
        for name, prior in self.priors.items():
            check_support(name, prior)

    def full_priors(self) -> dict[str, Prior]:
        """Defaults of the law and noise, overridden by ``priors``.

        Examples
        --------
        >>> sorted(ModelSpec(likelihood="normal").full_priors())
        ['A', 'B', 'E', 'alpha', 'beta', 'seed_noise', 'sigma_obs']
        """
        merged = {**get_law(self.law).default_priors(), **NOISE_PRIORS}
        if self.families:
            merged["family_sd"] = FAMILY_SD
        merged.update(self.priors)
        if self.likelihood != "studentt":
            merged.pop("nu", None)
        return merged

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the posterior file.

        Examples
        --------
        >>> ModelSpec(seed_noise=0.01).as_dict()["seed_noise"]
        0.01
        """
        return {
            "law": self.law,
            "likelihood": self.likelihood,
            "priors": to_dict(self.full_priors()),
            "seed_noise": self.seed_noise,
            "families": self.families,
            "separate_e": self.separate_e,
        }


@dataclass(frozen=True)
class Centring:
    """Centres of ln N and ln D used inside the model (geometric means of the data).

    Examples
    --------
    >>> Centring(n0=20.0, d0=23.0).n0
    20.0
    """

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
    configurations (repeated seeds) rather than runs (checkpoints); see the module docstring.

    Examples
    --------
    >>> checkpoints = RunTable(pd.DataFrame({
    ...     "params": [1e8, 1e8, 4e8, 4e8, 1e9], "tokens": [1e9, 2e9, 4e9, 8e9, 2e10],
    ...     "loss": [3.4, 3.2, 3.0, 2.9, 2.7], "run": ["a", "a", "b", "b", "c"]}))
    >>> index, count, by_config = group_structure(checkpoints)
    >>> index.tolist(), count, by_config
    ([0, 0, 1, 1, 2], 2, False)
    >>> seeds = RunTable(pd.DataFrame({"params": [1e8, 1e8, 4e8], "tokens": [2e9, 2e9, 8e9],
    ...                                "loss": [3.21, 3.19, 2.9], "line": [2, 3, 4]}))
    >>> index, count, by_config = group_structure(seeds)
    >>> index.tolist(), count, by_config
    ([0, 0, 1], 1, True)
    """
    data = runs.data
    # a label or configuration belongs to one family: "1B" of two families are two runs
    family = (data[FAMILY].astype(str).to_numpy() if FAMILY in data
              else np.full(len(data), "", dtype=object))
    index, count = _grouped(np.array([f"{f}\x1f{r}" for f, r in zip(family, runs.run_ids,
                                                                      strict=True)]))
    if count:
        return index, count, False
    configs = np.array([f"{f}\x1f{n:.6g}|{d:.6g}" for f, n, d in zip(
        family, data[PARAMS], data[TOKENS], strict=True)])
    index, count = _grouped(configs)
    return index, count, True


def group_means(values: np.ndarray, index: np.ndarray, count: int) -> np.ndarray:
    """Mean of ``values`` (rows x columns) over the rows of each group 0..count-1.

    Examples
    --------
    >>> group_means(np.array([[1.0], [3.0], [5.0]]), np.array([0, 0, 1]), 2).ravel().tolist()
    [2.0, 5.0]
    """
    inside = index < count
    sums = np.zeros((count, values.shape[1]))
    np.add.at(sums, index[inside], values[inside])
    return sums / np.bincount(index[inside], minlength=count)[:, None]


def repeated_sizes(runs: RunTable, index: np.ndarray, count: int) -> np.ndarray:
    """For each multi-row run (groups 0..count-1): whether another run of its family has the
    same model size, so that their scatter measures seed noise apart from the law's size
    dependence.

    Examples
    --------
    >>> runs = RunTable(pd.DataFrame({
    ...     "params": [1e8, 1e8, 4e8, 4e8, 4e8, 4e8], "tokens": [1e9, 2e9] * 3,
    ...     "loss": [3.4, 3.2, 3.0, 2.9, 3.01, 2.91], "run": ["a", "a", "b", "b", "c", "c"]}))
    >>> repeated_sizes(runs, *group_structure(runs)[:2])
    array([False,  True,  True])
    """
    inside = index < count
    data = runs.data[inside]
    family = data[FAMILY].astype(str) if FAMILY in data else pd.Series("", index=data.index)
    size = family + "|" + data[PARAMS].map(lambda n: f"{n:.6g}")
    runs_of_size = pd.Series(index[inside], index=data.index).groupby(size.to_numpy()).nunique()
    first = pd.Series(size.to_numpy()).groupby(index[inside]).first()
    return (runs_of_size.loc[first.to_numpy()].to_numpy() >= 2)


@dataclass
class BuiltModel:
    """A PyMC model, the centring it used and the sampled parameters to check for convergence.

    ``seed_identified`` is False when the data cannot estimate seed noise apart from the law
    (checkpoint runs, one per model size): its posterior is then its prior.
    ``seed_prior_families``: in a family model, the families whose seed noise is so.
    ``unused``: priors of the spec the model does not use, with the reason.
    """

    model: Any
    centring: Centring
    checked: list[str]
    seed_identified: bool = True
    seed_prior_families: list[str] = field(default_factory=list)
    unused: dict[str, str] = field(default_factory=dict)


def check_covariates(runs: RunTable, spec: ModelSpec) -> None:
    """Refuse a law whose other inputs (unique tokens) the runs lack, or a family model of one.

    Examples
    --------
    >>> runs = RunTable(pd.DataFrame({"params": [1e8], "tokens": [2e9], "loss": [3.1]}))
    >>> check_covariates(runs, ModelSpec(law="muennighoff"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: <memory>: the muennighoff law needs ...
    """
    law = get_law(spec.law)
    for name in law.covariates:
        if name not in runs.data:
            raise BayescaleError(f"the {law.name} law needs each run's {name}: map the column "
                                 f"with --{name.replace('_', '-')}-col", path=runs.source)
    if law.covariates and spec.families:
        raise BayescaleError(f"the {law.name} law has no family model (--family-col) yet: fit "
                             "each family alone", path=runs.source)


def build_model(runs: RunTable, spec: ModelSpec) -> BuiltModel:
    """The PyMC model of ``runs`` under ``spec``.

    Examples
    --------
    >>> from bayescale.law.simulate import isoflop_sweep
    >>> runs = RunTable(isoflop_sweep([1e19, 1e20], sizes_per_budget=5))
    >>> build_model(runs, ModelSpec()).checked  # one row per run: only the total noise
    ['E', 'A', 'B', 'alpha', 'beta', 'noise_total', 'seed_share', 'nu']
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = get_law(spec.law)
    priors = spec.full_priors()
    centre = Centring.of(runs)
    data = runs.data
    check_covariates(runs, spec)
    group_index, n_groups, by_config = group_structure(runs)
    group_firsts = np.unique(group_index, return_index=True)[1][:n_groups]  # a row of each group

    coords: dict[str, Any] = {}
    if spec.families:
        family_index, coords["family"] = family_structure(runs)
        group_family = family_index[group_firsts]
        coords["pooled"] = [k for k in law.pooled
                            if not (spec.separate_e and k == law.own_e_coordinate)]

    def log_law(n: Any, d: Any, rows: Any, covariates: dict[str, Any] | None = None) -> Any:
        """ln L at centred n, d; ``rows`` picks each point's family in a family model;
        ``covariates``: the logs of the law's other inputs (a law of N, D gets none)."""
        if not spec.families:
            if covariates:
                return law.pymc_log_loss(priors, n0, d0, n, d, covariates)
            return law.pymc_log_loss(priors, n0, d0, n, d)
        return pymc_family_log_loss(law, priors, n0, d0, n, d, family_index[rows],
                                    coords["pooled"])

    with pm.Model(coords=coords) as model:
        # Everything that changes between data sets of one design is a Data container, so a
        # compiled model can be reused with nutpie's `compiled.with_data(...)` (no recompile).
        n0 = pm.Data("n0", centre.n0)
        d0 = pm.Data("d0", centre.d0)
        n = pm.Data("n_centred", np.log(data[PARAMS].to_numpy()) - centre.n0)
        d = pm.Data("d_centred", np.log(data[TOKENS].to_numpy()) - centre.d0)
        y = pm.Data("y_obs", np.log(data[LOSS].to_numpy()))
        group = pm.Data("group_index", group_index)
        # the law's other inputs (unique tokens): their logs; none for a law of N and D alone
        covariates = {name: pm.Data(f"log_{name}", np.log(data[name].to_numpy()))
                      for name in law.covariates}
        # Checkpoint runs are centred on the law at the run's own centre (mean ln N, ln D of its
        # rows): level_r ~ Normal(ln L(N_r, D_r), seed_noise), u_r = level_r - ln L(N_r, D_r).
        # The data pin each run's level whatever the law, so NUTS need not follow the thin curved
        # ridge u_r = data_r - law_r(theta) of the non-centred form (Betancourt & Girolami 2015).
        centred_runs = bool(n_groups) and not by_config and spec.seed_noise != 0
        repeated = repeated_sizes(runs, group_index, n_groups) if centred_runs else None
        seed_identified = (spec.seed_noise is not None or not centred_runs
                           or bool(repeated.any()))
        seed_prior_families = [
            name for f, name in enumerate(coords["family"])
            if (group_family == f).any() and not repeated[group_family == f].any()
        ] if spec.families and centred_runs and spec.seed_noise is None else []
        # runs with an offset: all if the seed noise is given, else those sharing a model size
        # (a run alone at its size gets none: see the module docstring)
        shifted = ((np.arange(n_groups) if spec.seed_noise is not None
                    else np.flatnonzero(repeated)) if centred_runs else np.arange(0))
        if shifted.size:
            at = group_means(np.log(data[[PARAMS, TOKENS]].to_numpy()), group_index, n_groups)
            n_run = pm.Data("n_run_centred", at[:, 0] - centre.n0)
            d_run = pm.Data("d_run_centred", at[:, 1] - centre.d0)
            run_covariates = {name: pt.concatenate([value, pm.Data(
                f"log_{name}_run", group_means(np.log(data[[name]].to_numpy()), group_index,
                                               n_groups)[:, 0])])
                for name, value in covariates.items()}
            both = log_law(pt.concatenate([n, n_run]), pt.concatenate([d, d_run]),
                           np.concatenate([np.arange(len(data)), group_firsts]),
                           run_covariates)
            mu, at_run = both[: n.shape[0]], both[n.shape[0]:]
        else:
            mu = log_law(n, d, np.arange(len(data)), covariates)

        checked = list(law.parameters)
        if spec.families:
            checked += [f"pop_{name}" for name in coords["pooled"]] + ["family_sd"]
        def per_family(name: str) -> tuple[Any, Any]:
            """A noise parameter at each row and at each latent group: one per family in a
            family model (sources differ in how precisely they measured the loss, recipes in
            how much seeds matter), else one."""
            if not spec.families:
                value = priors[name].pymc(name)
                return value, value
            value = priors[name].pymc(name, dims="family")
            return value[family_index], value[group_family]

        if spec.seed_noise is not None:
            sigma_obs, sigma_groups = per_family("sigma_obs")
            seed = seed_groups = pm.Deterministic("seed_noise",
                                                  pt.as_tensor(float(spec.seed_noise)))
            checked.append("sigma_obs")
        elif n_groups:
            sigma_obs, sigma_groups = per_family("sigma_obs")
            seed, seed_groups = per_family("seed_noise")
            checked += ["sigma_obs", "seed_noise"]
        else:
            total = priors["sigma_obs"].pymc("noise_total")
            share = pm.Beta("seed_share", 1.0, 1.0)
            sigma_obs = sigma_groups = pm.Deterministic("sigma_obs", total * pt.sqrt(1.0 - share))
            seed = seed_groups = pm.Deterministic("seed_noise", total * pt.sqrt(share))
            checked += ["noise_total", "seed_share"]
        group_scale, row_scale = (sigma_groups, seed) if by_config else (seed_groups, sigma_obs)
        if shifted.size:
            level = pm.Normal("run_level", mu=at_run[shifted], sigma=(
                seed_groups[shifted] if pt.as_tensor(seed_groups).ndim else seed_groups))
            offsets = pm.Deterministic("run_offset", pt.set_subtensor(
                pt.zeros(n_groups)[shifted], level - at_run[shifted]))  # 0 for runs alone
            mu = mu + pt.concatenate([offsets, pt.zeros(1)])[group]
        elif n_groups and not centred_runs:
            z = pm.Normal("config_z" if by_config else "run_z", 0.0, 1.0, shape=n_groups)
            offsets = pt.concatenate([group_scale * z, pt.zeros(1)])
            mu = mu + offsets[group]
        # rows outside any group have both noise terms in quadrature. A scale all rows share
        # stays one scalar: a per-row scale costs a log and a check per row in every gradient
        alone = group_index == n_groups
        total_noise = pt.sqrt(sigma_obs**2 + seed**2)
        if alone.all():
            scale = total_noise
        elif not alone.any():
            scale = row_scale
        else:
            scale = pt.where(pt.eq(group, n_groups), total_noise, row_scale)
        nu = None
        if spec.likelihood == "studentt":
            nu = per_family("nu")[0]
            checked.append("nu")
        pymc_observe(spec.likelihood, mu, scale, y, nu)
    return BuiltModel(model, centre, checked, seed_identified, seed_prior_families,
                      unused_priors(spec, n_groups))


def unused_priors(spec: ModelSpec, n_groups: int) -> dict[str, str]:
    """The priors of ``spec`` the model does not use for data with ``n_groups`` latent groups,
    each with the reason (the seed noise of one row per run is a share of the total noise).

    Examples
    --------
    >>> unused_priors(ModelSpec(), 0)  # doctest: +ELLIPSIS
    {'seed_noise': 'one row per run: the data identify only the total noise ...'}
    """
    unused = {}
    if spec.seed_noise is not None:
        unused["seed_noise"] = f"--seed-noise fixes the seed noise at {spec.seed_noise:g}"
    elif not n_groups:
        unused["seed_noise"] = ("one row per run: the data identify only the total noise (its "
                                "prior is [sigma_obs]), split into seed noise by a Beta(1, 1) "
                                "share")
    if spec.likelihood != "studentt":
        unused["nu"] = f"the {spec.likelihood} likelihood has no nu (only studentt has)"
    return unused
