"""What the tests build from: paths, the sampler preset, posteriors from known draws, simulated
runs, and fits made once per test session.

Import it as a module (``from tests.builders import ...``); ``conftest.py`` holds only the
fixtures, built on these functions. Only tests about sampling itself sample (they are marked
``slow``); everything else asks a posterior of known draws (:func:`known_draws_posterior`),
which takes milliseconds.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bayescale import FitResult, ModelSpec, Posterior, RunTable, SamplerOptions, fit, load_runs
from bayescale.core.diagnostics import Diagnostics
from bayescale.inference.sampling import CompiledCache
from bayescale.law.calibration import Calibration, calibrate
from bayescale.law.laws import get_law
from bayescale.law.simulate import EPOCH_LAW, checkpoint_curves, isoflop_sweep, known_draws
from bayescale.posterior.store import META_KEY

# ------------------------------------------------------------------------------- paths
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "isoflop_runs.csv"
SHARED = Path(os.environ.get("BAYESCALE_SHARED", ROOT.parent / "shared"))
EPOCH_CSV = SHARED / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
COLPRET = SHARED / "data" / "colpret"


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip (with the reason) where the shared public data is not beside the repository."""
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found at {path}")


# ----------------------------------------------------------------------------- sampling
#: The one sampler preset of the tests that sample: few draws, enough for their checks, fast
#: on 2 cores. A test that needs longer chains or another seed says so with ``quick(...)``
#: (sampler options are not part of the compiled model).
QUICK = SamplerOptions(chains=2, draws=400, tune=400, random_seed=1, progress=False)
#: The command line's defaults (4 chains x 1000 draws), for the fits that check them.
DEFAULTS = SamplerOptions(random_seed=0, progress=False)
#: nutpie models compiled in this process, by structure, for fits of one design made one after
#: the other where the draws need not match a fresh fit's. A model reused through a cache
#: (nutpie's ``with_data``) draws other values for the same seed than a fresh compile (the
#: bundled example: E 1.787, 1.746, ... fresh; 1.856, 1.795, ... after the 7 x 9 recovery
#: sweep; the same posterior within Monte Carlo error), so :func:`quick_fit` does not share it:
#: a test's draws would depend on the tests its xdist worker ran before.
CACHE = CompiledCache()


def quick(**changes: Any) -> SamplerOptions:
    """:data:`QUICK` with some options changed."""
    return replace(QUICK, **changes)


def quick_fit(runs: RunTable, spec: ModelSpec | None = None,
              options: SamplerOptions = QUICK, **kwargs: Any) -> FitResult:
    """``fit`` with :data:`QUICK` by default (keywords as ``fit``'s: ``calibration``,
    ``cache``)."""
    return fit(runs, spec, options, **kwargs)


def fit_once(tmp_path_factory: pytest.TempPathFactory, name: str,
             make: Callable[[], FitResult]) -> FitResult:
    """A fit made once per test session, not once per xdist worker.

    The pytest-xdist recipe: the first worker to take the lock fits and saves the posterior
    file in the session's shared temporary folder, the others load it. Without xdist, fit.
    Diagnostics come back from the file's metadata (``seconds`` is NaN there).
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make()
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent
    path = root / f"{name}.posterior.nc"
    with FileLock(f"{path}.lock"):
        if path.is_file():
            post = Posterior.load(path)
            stored = {k: float("nan") if v is None else v
                      for k, v in post.meta["diagnostics"].items()}
            return FitResult(post, Diagnostics(**stored), float("nan"))
        result = make()
        result.posterior.save(path)
        return result


# ----------------------------------------------------------------- runs and simulations
def runs_of(frame: pd.DataFrame, folder: Path, name: str = "runs.csv",
            **columns: Any) -> RunTable:
    """A simulated table written to ``folder/name`` and loaded (the loader is file based)."""
    path = folder / name
    frame.to_csv(path, index=False)
    return load_runs(path, **columns)


def example_frame() -> pd.DataFrame:
    """The bundled example's 48 runs as ``fit`` stores them: ``params``, ``tokens``, ``loss``,
    the loader's ``line`` and a ``run`` label per row."""
    runs = load_runs(EXAMPLE)
    return runs.data.assign(run=runs.run_ids)


def bent_loss(params: Any, tokens: Any, bend: float = 0.03) -> np.ndarray:
    """Not the Chinchilla form: the "irreducible" term falls with compute as C^-bend."""
    n, d = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
    return (EPOCH_LAW["E"] * (6 * n * d / 1e17) ** -bend + EPOCH_LAW["A"] * n ** -EPOCH_LAW["alpha"]
            + EPOCH_LAW["B"] * d ** -EPOCH_LAW["beta"])


#: Families whose laws differ a little (as recipes of one kind do); "t" is the small target.
FAMILY_TRUTHS = {
    "p": {**EPOCH_LAW, "E": 1.75, "alpha": 0.33},
    "q": {**EPOCH_LAW, "E": 1.90, "alpha": 0.36, "beta": 0.35},
    "r": {**EPOCH_LAW, "E": 1.80, "A": 520.0, "beta": 0.38},
    "t": {**EPOCH_LAW, "E": 1.85, "alpha": 0.34},
}


def family_curves(truths: dict[str, dict[str, float]] = FAMILY_TRUTHS,
                  seed_noise: float = 0.005) -> pd.DataFrame:
    """Checkpoint curves of each family (8 checkpoints per run): four sizes from 50M to 1.6B,
    the target family "t" cut to its two smallest (50M, 100M)."""
    return pd.concat([checkpoint_curves(list(np.geomspace(5e7, 1.6e9, 4)) if name != "t"
                                        else [5e7, 1e8], checkpoints=8, truth=truth,
                                        family=name, seed_noise=seed_noise, random_seed=i)
                      for i, (name, truth) in enumerate(truths.items())], ignore_index=True)


#: Two families whose laws differ (E by 0.2 nats), for figures and reports of a family fit.
TWO_FAMILY_TRUTHS = {"p": {**EPOCH_LAW, "E": 1.75}, "q": {**EPOCH_LAW, "E": 1.95, "alpha": 0.36}}


def family_sweeps(truths: dict[str, dict[str, float]] = TWO_FAMILY_TRUTHS) -> pd.DataFrame:
    """Noiseless isoflop sweeps of each family (3 budgets x 5 sizes), with a family column."""
    return pd.concat([isoflop_sweep([1e18, 1e19, 1e20], 5, truth=truth, seed_noise=0.0)
                      .assign(family=name) for name, truth in truths.items()],
                     ignore_index=True)


# ----------------------------------------------------------------- known-draws posteriors
@functools.cache
def _calibration(params: tuple[float, ...], tokens: tuple[float, ...],
                 loss: tuple[float, ...]) -> dict[str, Any]:
    return calibrate(np.array(params), np.array(tokens), np.array(loss)).as_dict()


def calibration_of(data: pd.DataFrame) -> dict[str, Any]:
    """What ``fit`` stores as the calibration of these rows (computed once per table)."""
    return _calibration(*(tuple(map(float, data[k])) for k in ("params", "tokens", "loss")))


def with_meta(post: Posterior, **meta: Any) -> Posterior:
    """The posterior with entries of its metadata set (as a fit would have stored them)."""
    tree = post.tree.copy()
    tree.attrs = {**tree.attrs, META_KEY: json.dumps({**post.meta, **meta})}
    return Posterior(tree)


def known_draws_posterior(
    size: int = 2000,
    *,
    spread: float = 0.02,
    sigma_obs: float = 0.002,
    seed_noise: float = 0.01,
    noise_spread: float = 0.0,
    random_seed: int = 0,
    chains: int = 1,
    data: pd.DataFrame | None = None,
    calibration: bool | Calibration = False,
    extra: dict[str, Any] | None = None,
    **meta: Any,
) -> Posterior:
    """A posterior of known draws around Epoch's law, no sampling.

    ``size`` draws (``chains`` chains one after the other) of each law parameter times
    exp(N(0, ``spread``)) and fixed noise scales (:func:`bayescale.law.simulate.known_draws`);
    ``noise_spread`` makes the noise scales vary too (lognormal, a second stream), as figures
    of their densities need. ``data`` is the fitted table (a stand-in run without it);
    ``calibration`` True stores what ``fit`` would learn from ``data``, or give a
    :class:`Calibration`. ``extra`` adds or replaces draws (``nu``, a parameter at its prior);
    other keywords are set in the metadata (``seed_noise=0.005`` as a fixed seed noise, ...).
    """
    draws = known_draws(size, spread=spread, sigma_obs=sigma_obs, seed_noise=seed_noise,
                        random_seed=random_seed)
    if noise_spread:
        rng = np.random.default_rng(random_seed + 1)
        for name in ("sigma_obs", "seed_noise"):
            draws[name] = draws[name] * np.exp(rng.normal(0.0, noise_spread, size))
    draws |= extra or {}
    post = Posterior.from_draws(draws, data=data, chains=chains)
    if isinstance(calibration, Calibration):
        meta["calibration"] = calibration.as_dict()
    elif calibration:
        meta["calibration"] = calibration_of(post.data)
    return with_meta(post, **meta) if meta else post


def known_file(path: Path, **options: Any) -> Path:
    """A posterior file of known draws (:func:`known_draws_posterior`) at ``path``."""
    known_draws_posterior(**options).save(path)
    return path


def known_tree(chains: int, draws: int, stuck: bool = False) -> Any:
    """Known draws around Epoch's law as a sampler returns them (chains x draws, with
    ``sample_stats``); ``stuck``: no parameter ever moves."""
    import xarray as xr

    values = known_draws(chains * draws, spread=0.0 if stuck else 0.02)
    posterior = xr.Dataset({k: (("chain", "draw"), v.reshape(chains, draws))
                            for k, v in values.items()})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))})
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


def known_family_posterior(
    data: pd.DataFrame,
    truths: dict[str, dict[str, float]],
    *,
    chains: int = 2,
    draws: int = 200,
    spread: float = 0.01,
    sigma_obs: float = 0.002,
    seed_noise: float = 0.005,
    fixed_seed_noise: bool = False,
    run_offsets: bool = False,
    **meta: Any,
) -> Posterior:
    """A family fit of known draws, no sampling: each family's draws scatter ``spread`` around
    its law in the law's centred coordinates (``truths``: family -> law), the population mean
    is their mean, fixed noise. ``data`` is the fitted table with a ``family`` column (its
    runs ideally on their families' laws); ``fixed_seed_noise``: the seed noise was given, not
    sampled (``fit --seed-noise``); ``run_offsets`` adds zero run offsets (one per run), as such
    a fit of runs with checkpoints stores. Other keywords go in the metadata."""
    import xarray as xr

    law = get_law("chinchilla")
    n0, d0 = float(np.log(data["params"]).mean()), float(np.log(data["tokens"]).mean())
    rng = np.random.default_rng(0)
    size, shape, names = chains * draws, (chains, draws), list(truths)
    theta = {name: {"log_E": np.log(t["E"]), "a_c": np.log(t["A"]) - t["alpha"] * n0,
                    "b_c": np.log(t["B"]) - t["beta"] * d0, "log_alpha": np.log(t["alpha"]),
                    "log_beta": np.log(t["beta"])} for name, t in truths.items()}
    theta = {name: {k: v + rng.normal(0, spread, size) for k, v in coords.items()}
             for name, coords in theta.items()}
    laws = {name: law.from_pooled(coords, n0, d0) for name, coords in theta.items()}
    variables = (
        {p: (("chain", "draw", "family"),
             np.stack([laws[f][p] for f in names], -1).reshape(*shape, len(names)))
         for p in law.parameters}
        | {f"pop_{k}": (("chain", "draw"), np.mean([theta[f][k] for f in names], 0)
                        .reshape(shape)) for k in law.pooled}
        | {"family_sd": (("chain", "draw", "pooled"), np.full((*shape, len(law.pooled)), 0.05)),
           "sigma_obs": (("chain", "draw"), np.full(shape, sigma_obs)),
           "seed_noise": (("chain", "draw"), np.full(shape, seed_noise))})
    if run_offsets:
        runs = (data["family"].astype(str) + "\x1f" + data["run"].astype(str)).nunique()
        variables["run_offset"] = (("chain", "draw", "run_offset_dim_0"),
                                   np.zeros((*shape, runs)))
    posterior = xr.Dataset(variables, coords={"family": names, "pooled": list(law.pooled)})
    labels = [k for k in ("params", "tokens", "family", "run") if k in data]
    tree = xr.DataTree.from_dict({
        "posterior": posterior,
        "constant_data": xr.Dataset({k: ("row", data[k].to_numpy()) for k in labels}),
        "observed_data": xr.Dataset({"loss": ("row", data["loss"].to_numpy())}),
    })
    tree.attrs = {META_KEY: json.dumps({"law": "chinchilla", "likelihood": "normal",
                                        "centring": {"n0": n0, "d0": d0},
                                        "input": {"path": "<draws>", "n_rows": len(data)},
                                        "seed_noise": seed_noise if fixed_seed_noise else None,
                                        **meta})}
    return Posterior(tree)


def one_line_error(result: Any, code: int = 1) -> str:
    """Assert the CLI's error contract on a CliRunner result (exit ``code``, one ``error:``
    line on stderr, no traceback) and return the line."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
