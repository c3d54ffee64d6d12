"""bayescale: Bayesian scaling laws for LLM pre-training runs.

Load a table of runs, fit a law with PyMC, and ask the posterior what a planned run will reach
and how a compute budget is best split, each answer a credible interval.

Examples
--------
>>> from bayescale import load_runs, fit, Posterior
>>> result = fit(load_runs("examples/isoflop_runs.csv"))  # doctest: +SKIP
>>> result.posterior.predict(params=7e9, tokens=1.4e11)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from bayescale.errors import BayescaleError
from bayescale.fit import FitResult, fit
from bayescale.model import ModelSpec
from bayescale.posterior import Posterior
from bayescale.runs import RunTable, load_runs
from bayescale.sampling import SamplerOptions

__all__ = [
    "BayescaleError",
    "FitResult",
    "ModelSpec",
    "Posterior",
    "RunTable",
    "SamplerOptions",
    "__version__",
    "fit",
    "load_runs",
]
