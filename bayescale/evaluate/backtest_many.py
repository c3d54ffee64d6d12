"""A backtest per metric of a run table (``bayescale backtest --loss-cols``), on the executors of
:mod:`bayescale.evaluate.batch`, and its summary ``DIR/backtest_summary.csv``.

Each metric's rows (those with a value of it) are planned as ``fit-many`` plans a fit
(:func:`bayescale.evaluate.batch.plan`, which writes them to ``DIR/inputs/<metric>.csv``), and
each is backtested with that column as the loss. A metric whose backtest cannot run is a
``failed`` row with its reason. Only the calling process writes files; every backtest is seeded
with the sampler's ``random_seed``, so the summary does not depend on the executor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import atomic_path
from bayescale.data.runs import RunTable
from bayescale.evaluate import batch
from bayescale.evaluate.backtest import BacktestOptions, backtest
from bayescale.inference.model import ModelSpec
from bayescale.inference.sampling import CompiledCache, SamplerOptions

BACKTEST_SUMMARY = "backtest_summary.csv"
#: The summary's columns, in order.
COLUMNS = ("metric", "n_cases", "are_median", "coverage_50", "coverage_80", "coverage_90",
           "halfwidth_90_median", "baseline_are_median", "baseline_coverage_90",
           "baseline_halfwidth_90_median", "unconverged", "status", "reason")
_CACHE: CompiledCache | None = None


@dataclass
class BacktestManyOptions:
    """How each metric is backtested (the same for every metric)."""

    spec: ModelSpec = field(default_factory=ModelSpec)
    sampler: SamplerOptions = field(default_factory=lambda: SamplerOptions(progress=False))
    backtest: BacktestOptions = field(default_factory=BacktestOptions)


def summary_row(report: dict[str, Any]) -> dict[str, Any]:
    """A backtest report's summary row (without the metric)."""
    base = report.get("baseline") or {}
    unconverged = report.get("unconverged") or []
    return {"n_cases": report["n_cases"],
            **{k: report.get(k) for k in ("are_median", "coverage_50", "coverage_80",
                                          "coverage_90", "halfwidth_90_median")},
            "baseline_are_median": base.get("are_median"),
            "baseline_coverage_90": base.get("coverage_90"),
            "baseline_halfwidth_90_median": base.get("halfwidth_90_median"),
            "unconverged": len(unconverged),
            "status": batch.UNCONVERGED if unconverged else batch.OK,
            "reason": (f"convergence checks failed in {', '.join(map(str, unconverged))}"
                       if unconverged else "")}


def backtest_job(runs: RunTable, options: BacktestManyOptions) -> batch.Outcome:
    """Backtest one metric wherever it runs; a failure is a row with its reason, never an
    exception. Compiled models are reused within the process."""
    global _CACHE
    if _CACHE is None:
        _CACHE = CompiledCache()
    start = time.perf_counter()
    try:
        report = backtest(runs, options.spec, options.sampler, options.backtest, cache=_CACHE)
        if report["n_cases"] == 0:
            skipped = "; ".join(f"{s['family']}: {s['reason']}" for s in report["skipped"][:3])
            raise BayescaleError(f"no case to score ({skipped or 'no family'})")
        row = summary_row(report)
    except BayescaleError as exc:
        row = {"status": batch.FAILED, "reason": exc.one_line()}
    except Exception as exc:  # the model or sampler failed on these rows: this metric only
        row = {"status": batch.FAILED,
               "reason": " ".join(f"{type(exc).__name__}: {exc}".split())[:300]}
    row["seconds"] = time.perf_counter() - start
    return batch.Outcome(None, row)


def run_backtests(
    jobs: list[batch.Job],
    out_dir: str | Path,
    options: BacktestManyOptions | None = None,
    *,
    workers: int | None = None,
    dask: str | None = None,
    client: Any = None,
    on_result: Callable[[dict[str, Any], batch.Progress], None] | None = None,
) -> pd.DataFrame:
    """Backtest each job of :func:`bayescale.evaluate.batch.plan` (one per metric) and write
    ``out_dir/backtest_summary.csv`` atomically; returns the summary in the order of ``jobs``."""
    options = options or BacktestManyOptions()
    out_dir = Path(out_dir)
    rows: dict[int, dict[str, Any]] = {}
    progress = batch.Progress(total=len(jobs))
    index = {id(job): i for i, job in enumerate(jobs)}

    def finish(job: batch.Job, row: dict[str, Any], fitted: bool) -> None:
        rows[index[id(job)]] = {"metric": job.metric, **row}
        progress.fitted += fitted
        if row["status"] == batch.FAILED:
            progress.failed += 1
        else:
            progress.done += 1
        if on_result is not None:
            on_result(rows[index[id(job)]], progress)

    pending = []
    for job in jobs:
        if job.reason is not None:
            finish(job, {"status": batch.FAILED, "reason": job.reason}, False)
        else:
            pending.append(job)
    if pending:
        results = batch.execute(pending, options, workers=workers, dask=dask, client=client,
                                task=backtest_job)
        try:
            for job, outcome in results:
                finish(job, outcome.row, True)
        finally:
            results.close()
    frame = pd.DataFrame([rows[i] for i in range(len(jobs))])
    frame = frame.reindex(columns=[*COLUMNS, "seconds"])
    frame["reason"] = frame["reason"].fillna("")
    for col in ("n_cases", "unconverged"):
        frame[col] = frame[col].astype("Int64")  # a failed row has none
    with atomic_path(out_dir / BACKTEST_SUMMARY) as tmp:
        frame.drop(columns=["seconds"]).to_csv(tmp, index=False)
    return frame
