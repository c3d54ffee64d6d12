"""PSIS-LOO comparison of fitted posteriors (Vehtari, Gelman & Gabry 2017) with ArviZ.

LOO needs each row's log-likelihood under each posterior draw. bayescale computes it from the
posterior file (the draws and the fitted rows it stores) with numpy, when it is asked for,
rather than storing it at fit time (``pm.compute_log_likelihood``): stored, it would be a
chains x draws x rows array in every file (12k checkpoint rows x 4,000 draws = 390 MB) and a
second compilation in every fit, for a question few fits are asked. The computation follows the
model in :mod:`bayescale.inference.model` term by term (``tests/test_compare.py`` checks it
against PyMC's own log-likelihood of a fitted model).

Every log-likelihood is that of ln L (the model's observed variable), so fits of the same rows
are comparable whatever their law; fits of different rows are not.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.data.runs import RunTable
from bayescale.inference.model import group_structure
from bayescale.law.likelihoods import log_density
from bayescale.posterior.posterior import Posterior

#: Pareto k above this: the PSIS estimate of that row's LOO density is unreliable
#: (Vehtari et al. 2024, "Pareto smoothed importance sampling", for S >= 2,200 draws).
PARETO_K_LIMIT = 0.7
#: arviz-stats' own warning of high Pareto k (a paragraph, with its own threshold): bayescale
#: says the same in one line per fit, with the count and the worst row.
_ARVIZ_PARETO_WARNING = "Estimated shape parameter of Pareto distribution"


def pointwise_log_likelihood(post: Posterior) -> np.ndarray:
    """ln p(ln L_i | draw s) of every fitted row i: an array of shape (chains, draws, rows).

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> rows = pd.DataFrame({"params": [1e8, 1e9], "tokens": [2e9, 2e10], "loss": [3.1, 2.6],
    ...                      "run": ["a", "b"]})
    >>> post = Posterior.from_draws(known_draws(), data=rows, chains=2)
    >>> pointwise_log_likelihood(post).shape
    (2, 1000, 2)
    """
    data = post.data
    posterior = post.tree["posterior"].dataset
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    y = np.log(data["loss"].to_numpy())
    mean = post.row_log_law()  # a fresh array: the run offsets are added in place
    noise = post.row_draws(["sigma_obs", "seed_noise"])
    sigma, seed = noise["sigma_obs"], noise["seed_noise"]
    index, count, by_config = group_structure(RunTable(data))
    grouped = index < count
    flat = {name: np.asarray(posterior[name]).reshape(chains * draws, -1)
            for name in ("run_offset", "run_z", "config_z") if name in posterior}
    if "run_offset" in flat:
        mean[:, grouped] += flat["run_offset"][:, index[grouped]]
    elif "run_z" in flat:
        mean[:, grouped] += seed[:, grouped] * flat["run_z"][:, index[grouped]]
    elif "config_z" in flat:
        mean[:, grouped] += sigma[:, grouped] * flat["config_z"][:, index[grouped]]
    row_scale = seed if by_config else sigma
    scale = np.where(grouped[None, :], row_scale, np.sqrt(sigma**2 + seed**2))
    noise = {}
    if "nu" in posterior:
        noise["nu"] = post.row_draws(["nu"])["nu"]
    elif "huber_k" in posterior:
        noise["huber_k"] = np.asarray(posterior["huber_k"])
    out = log_density(y, mean, scale, noise)
    return out.reshape(chains, draws, len(data))


def _row_order(data: pd.DataFrame) -> np.ndarray:
    """The rows sorted by N, D, loss, then unique tokens and the run, seed and family labels
    where the fit has them: fits of the same rows in another order (a shuffled file) are
    paired row by row, as LOO's paired differences need, ties included."""
    extra = [data[c].astype(str).to_numpy() for c in ("family", "seed", "run")
             if c in data] + ([data["unique_tokens"].to_numpy()] if "unique_tokens" in data
                              else [])
    return np.lexsort((*extra, data["loss"].to_numpy(), data["tokens"].to_numpy(),
                       data["params"].to_numpy()))


def _loo_tree(post: Posterior, order: np.ndarray) -> Any:
    import xarray as xr

    log_lik = pointwise_log_likelihood(post)[..., order]
    dims = ("chain", "draw", "row")
    posterior = post.tree["posterior"].dataset[[post.law.parameters[0]]]
    return xr.DataTree.from_dict({
        "posterior": posterior,
        "log_likelihood": xr.Dataset({"log_loss": (dims, log_lik)}),
    })


def compare(posts: Sequence[Posterior], names: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Rank fits of the same rows by PSIS-LOO expected log predictive density.

    Returns
    -------
    (pandas.DataFrame, list of str)
        One row per fit, best first: ``rank`` (1 = best), ``elpd_loo``, ``se``, ``elpd_diff``
        (to the best), ``dse`` (standard error of the difference), ``p_loo``, ``weight`` (stacking),
        ``n_bad_k`` (rows with Pareto k > 0.7), ``law``; and warnings, one line each.

    Raises
    ------
    BayescaleError
        Fewer than two fits, or fits of different rows.

    """
    import arviz as az

    if len(posts) < 2:
        raise BayescaleError("compare needs two or more posterior files")
    if len(set(names)) != len(names):
        raise BayescaleError("the fits to compare need distinct names")
    orders = [_row_order(post.data) for post in posts]
    reference = posts[0].data.iloc[orders[0]]
    for post, order, name in zip(posts[1:], orders[1:], names[1:], strict=True):
        other = post.data.iloc[order]
        same = len(other) == len(reference) and all(
            np.allclose(other[k].to_numpy(), reference[k].to_numpy(), rtol=1e-12)
            for k in ("params", "tokens", "loss"))
        if not same:
            sizes = (f"{len(other)} rows vs {len(reference)}" if len(other) != len(reference)
                     else f"{len(other)} rows each, not the same ones")
            raise BayescaleError(
                f"{name} was fitted on other rows than {names[0]} ({sizes}): LOO compares fits "
                "of the same data only")  # names it
    trees = {name: _loo_tree(post, order)
             for post, order, name in zip(posts, orders, names, strict=True)}
    lines = []
    bad = {}
    for name, tree in trees.items():
        with _quiet_pareto_k():
            loo = az.loo(tree, pointwise=True)
        k = np.asarray(loo.pareto_k).reshape(-1)
        bad[name] = int(np.sum(k > PARETO_K_LIMIT))
        if bad[name]:
            worst = int(np.argmax(k))
            row = reference.iloc[worst]
            lines.append(
                f"{name}: {bad[name]} of {k.size} rows have Pareto k > {PARETO_K_LIMIT} (worst "
                f"{k[worst]:.2f} at N={row['params']:.3g}, D={row['tokens']:.3g}): their LOO "
                "estimate is unreliable (influential rows or a misspecified law)")
    with _quiet_pareto_k():
        table = az.compare(trees, method="stacking", round_to="none")
    table = table.rename(columns={"elpd": "elpd_loo"})
    out = pd.DataFrame({
        "rank": table["rank"].astype(int) + 1, "elpd_loo": table["elpd_loo"].astype(float),
        "se": table["se"].astype(float), "elpd_diff": table["elpd_diff"].astype(float),
        "dse": table["dse"].astype(float), "p_loo": table["p"].astype(float),
        "weight": table["weight"].astype(float),
    }, index=table.index)
    out["n_bad_k"] = [bad[name] for name in out.index]
    out["law"] = [posts[list(names).index(name)].law.name for name in out.index]
    return out, lines


@contextlib.contextmanager
def _quiet_pareto_k() -> Iterator[None]:
    """Ignore arviz-stats' high-Pareto-k warning within one call: :func:`compare` reports it
    as one line per fit instead (its count and worst row), and the library's paragraph, with
    its source line, would repeat it on stderr. Other warnings still show."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ARVIZ_PARETO_WARNING, category=UserWarning)
        yield
