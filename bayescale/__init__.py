"""bayescale: Bayesian scaling laws for LLM pre-training runs.

Fit the Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2) to a
table of training runs with PyMC and ask the posterior what a planned run will reach and how a
compute budget is best split, each answer a credible interval. ``notebooks/walkthrough.ipynb``
shows the whole workflow.

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
   - ``post.save("runs.posterior.nc")``: the file the ``bayescale`` commands read.
4. Figures are functions of a posterior returning matplotlib Figures:
   ``from bayescale.report.plots import plot_frontier``, then
   ``plot_frontier(post, targets=[(N, D)])``; likewise ``plot_loss_compute``,
   ``plot_isoflop``, ``plot_ppc``, ``plot_priors``, ``plot_trace``, ``plot_rank``,
   ``plot_pair``. ``bayescale.report.html.write_report(post, "report")`` writes them all
   into one HTML page.
5. ``from bayescale.evaluate.backtest import backtest``, then ``backtest(runs)``: hold out
   the largest runs, fit the rest, and score the forecasts (ARE, interval coverage) beside the
   classical point fit with bootstrap.

Errors in the user's input raise :class:`BayescaleError` with one line naming the file, row and
column.

Layers, each importing only those below it: ``bayescale.core`` (errors, file output,
formatting, intervals, diagnostics), ``bayescale.data`` (run tables, checkpoint selection,
C = 6 N D, fitted ranges), ``bayescale.law`` (laws, priors, likelihoods, families, point fit,
calibration, simulation), ``bayescale.posterior`` (the posterior file, :class:`Posterior`,
predictive, optimal, risk, warnings), ``bayescale.inference`` (model, sampling, fit),
``bayescale.evaluate`` (backtest, compare), ``bayescale.report`` (plots, HTML); the command
line (``bayescale --help``) is ``bayescale.cli``.
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
