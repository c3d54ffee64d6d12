"""bayescale: Bayesian scaling laws for LLM pre-training runs.

Fit the Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta to a table of training runs with PyMC
and ask the posterior what a planned run will reach and how a compute budget is best split,
each answer a credible interval. ``notebooks/walkthrough.ipynb`` shows the whole workflow.

Workflow
--------
1. ``runs = load_runs("runs.csv")``: a validated :class:`RunTable` (CSV, Parquet or JSONL with
   columns ``params``, ``tokens``, ``loss``; other names can be mapped).
2. ``result = fit(runs, spec=ModelSpec(), options=SamplerOptions())``: a :class:`FitResult`
   with ``.posterior``, ``.diagnostics`` (:class:`Diagnostics`: R-hat, ESS, divergences) and
   ``.seconds``.
3. ``post = result.posterior`` (or ``Posterior.load("runs.posterior.nc")``, or
   ``Posterior.from_draws(draws)``), then:

   - ``post.summary(level)``: parameters with intervals, R-hat and ESS (DataFrame);
   - ``post.predict(params=N, tokens=D)``: a new run's loss (seed noise and, beyond the runs,
     the law's calibrated extrapolation error included) and the law's expected loss, with
     intervals, and the shares of the seed-noise floor and the discrepancy (DataFrame);
   - ``post.optimal(compute=C)``: compute-optimal N*, D*, D*/N*, a new run's and the law's
     loss at the optimum (DataFrame);
   - ``post.exponents()``: allocation exponents a, b of N* ~ C^a, D* ~ C^b (DataFrame);
   - ``post.risk(N, D, target_loss=X)``: a :class:`RiskReview` with a GO / CAUTION / NO-GO
     verdict (rules in :class:`Thresholds`), ``.markdown()`` for a review document;
   - ``post.plot(kind)`` or ``post.plot_priors()``, ``plot_trace``, ``plot_rank``,
     ``plot_pair``, ``plot_loss_compute``, ``plot_isoflop``, ``plot_frontier``, ``plot_ppc``:
     matplotlib Figures;
   - ``post.save("runs.posterior.nc")``: the file the ``bayescale`` commands read.
4. ``bayescale.evaluate.backtest.backtest(runs)``: hold out the largest runs, fit the rest, and score
   the forecasts (ARE, interval coverage) beside the classical point fit with bootstrap.

Errors in the user's input raise :class:`BayescaleError` with one line naming the file, row and
column. Modules: ``runs``, ``selection``, ``laws``, ``priors``, ``model``, ``huber``, ``sampling``,
``diagnostics``, ``fit``, ``calibration``, ``posterior``, ``predictive``, ``optimal``,
``intervals``, ``risk``, ``plots``, ``report``, ``backtest``, ``baseline``, ``simulate``,
``warnings_check``; the command line (``bayescale --help``) is in ``bayescale.cli``.

Examples
--------
>>> from bayescale import load_runs, fit, Posterior, SamplerOptions
>>> runs = load_runs("examples/isoflop_runs.csv")  # doctest: +SKIP
>>> result = fit(runs, options=SamplerOptions(random_seed=0))  # doctest: +SKIP
>>> post = result.posterior  # doctest: +SKIP
>>> post.predict(params=7e9, tokens=1.4e11)  # doctest: +SKIP
>>> post.optimal(compute=[1e21, 5.88e23])  # doctest: +SKIP
>>> post.risk(7e9, 1.4e11, target_loss=2.2).verdict_line  # doctest: +SKIP
>>> post.plot_frontier(targets=[(7e9, 1.4e11)]).savefig("frontier.png")  # doctest: +SKIP
"""

__version__ = "0.1.0"

from bayescale.core.diagnostics import Diagnostics
from bayescale.core.errors import BayescaleError
from bayescale.data.runs import RunTable, load_runs
from bayescale.inference.fit import FitResult, fit
from bayescale.inference.model import ModelSpec
from bayescale.inference.sampling import SamplerOptions
from bayescale.posterior.posterior import Posterior
from bayescale.posterior.risk import RiskReview, Thresholds

__all__ = [
    "BayescaleError",
    "Diagnostics",
    "FitResult",
    "ModelSpec",
    "Posterior",
    "RiskReview",
    "RunTable",
    "SamplerOptions",
    "Thresholds",
    "__version__",
    "fit",
    "load_runs",
]
