"""Fit a law to a run table: build the model, sample, check convergence, assemble the posterior."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bayescale.core.diagnostics import Diagnostics, check
from bayescale.core.errors import BayescaleError
from bayescale.data.runs import FAMILY, RunTable, check_identifiable
from bayescale.inference.model import ModelSpec, build_model
from bayescale.inference.sampling import CompiledCache, SamplerOptions, one_blas_thread, sample
from bayescale.law.calibration import calibrate_runs
from bayescale.law.laws import get_law
from bayescale.posterior import store
from bayescale.posterior.posterior import Posterior


@dataclass
class FitResult:
    """A posterior with its convergence diagnostics and the wall time of the fit.

    Attributes
    ----------
    posterior : Posterior
        Draws and data; ask it :meth:`~Posterior.predict`, :meth:`~Posterior.optimal`,
        :meth:`~Posterior.risk`; :meth:`~Posterior.save` writes the ``.posterior.nc`` file.
    diagnostics : Diagnostics
        R-hat, ESS, divergences; ``diagnostics.problems`` is empty when every check passed.
    seconds : float
        Wall time of model building, compilation, sampling and calibration.
    phases : dict
        Wall seconds of each: ``model`` (building the PyMC model), ``sampling`` (compiling or
        loading the compiled model, then NUTS), ``calibration`` (its point fits); where a slow
        fit spends its time.
    """

    posterior: Posterior
    diagnostics: Diagnostics
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    names = ("pymc", "nutpie", "arviz-base", "arviz-stats", "numpy", "xarray")
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def _fitted_table(runs: RunTable) -> Any:
    """The fitted rows as stored, with each row's run label."""
    data = runs.data
    return data if "run" in data else data.assign(run=runs.run_ids)


def _absolute(source: str) -> str:
    """The runs file's absolute path (``info`` checks it from any directory); other sources
    (``<memory>``) as they are."""
    path = Path(source)
    return str(path.resolve()) if path.is_file() else source

def fit(
    runs: RunTable,
    spec: ModelSpec | None = None,
    options: SamplerOptions | None = None,
    *,
    calibration: bool = True,
    cache: CompiledCache | None = None,
) -> FitResult:
    """Sample the posterior of ``spec``'s law given ``runs``.

    Parameters
    ----------
    runs : RunTable
        From :func:`bayescale.data.runs.load_runs`.
    spec : ModelSpec, optional
        Law, likelihood, priors, seed noise; Chinchilla with default priors if omitted. Runs
        with a ``family`` column get the family model (:mod:`bayescale.law.families`).
    options : SamplerOptions, optional
        Sampler, chains, draws, tuning steps, random seed.
    calibration : bool
        Learn the law's extrapolation error from the runs and store it in the posterior
        (:mod:`bayescale.law.calibration`); predictions beyond the runs then include it.
    cache : CompiledCache, optional
        Reuse nutpie models compiled by earlier fits of the same structure.

    Returns
    -------
    FitResult
    """
    for value, kind, hint in ((runs, RunTable, "load the table with bayescale.load_runs(path)"),
                              (spec, ModelSpec, "e.g. ModelSpec(likelihood='normal')"),
                              (options, SamplerOptions, "e.g. SamplerOptions(chains=2)")):
        if value is not None and not isinstance(value, kind):
            raise BayescaleError(f"fit takes a {kind.__name__}, not a {type(value).__name__}: "
                                 f"{hint}")
    spec = spec or ModelSpec()
    if FAMILY in runs.data and not spec.families:
        spec = replace(spec, families=True)  # a family column means a family model
    if spec.separate_e and not spec.families:
        raise BayescaleError("separate_e needs a family model (a family column, --family-col)")
    options = options or SamplerOptions()
    law = get_law(spec.law)
    check_identifiable(runs, len(law.parameters))
    start = time.perf_counter()
    built = build_model(runs, spec)
    phases = {"model": time.perf_counter() - start}
    with one_blas_thread():
        began = time.perf_counter()
        tree = sample(built.model, options, cache)
        phases["sampling"] = time.perf_counter() - began
        began = time.perf_counter()
        calibrated = calibrate_runs(runs, law=spec.law).as_dict() if calibration else None
        phases["calibration"] = time.perf_counter() - began
    diagnostics = check(tree, built.checked)

    described = spec.as_dict()  # the priors really used, and the user's that were not
    described["priors"] = {k: v for k, v in described["priors"].items() if k not in built.unused}
    meta = {
        **described,
        "unused_priors": {k: why for k, why in built.unused.items() if k in spec.priors},
        "centring": {"n0": built.centring.n0, "d0": built.centring.d0},
        "seed_noise_identified": built.seed_identified,
        "seed_noise_prior_families": built.seed_prior_families,
        "sampler": options.as_dict(),
        "diagnostics": diagnostics.as_dict(),
        "calibration": calibrated,
        "input": {
            "path": _absolute(runs.source), "sha256": runs.sha256, "columns": runs.columns,
            "n_rows": len(runs), "n_runs": runs.n_runs,
        },
        "bayescale_version": version("bayescale"),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stored = store.assemble(tree["posterior"].dataset, _fitted_table(runs), meta,
                            tree["sample_stats"].dataset)
    seconds = time.perf_counter() - start
    return FitResult(Posterior(stored), diagnostics, seconds, phases)
