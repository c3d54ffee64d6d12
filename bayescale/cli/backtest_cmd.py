"""``bayescale backtest``: hold out the largest runs, fit the rest, score the forecasts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from bayescale.cli.app import app
from bayescale.cli.common import (
    FlopsColOption,
    JsonOption,
    LossColOption,
    ParamsColOption,
    RunColOption,
    RunsArgument,
    SeedColOption,
    TokensColOption,
    check_law_options,
    emit_json,
    err,
    parse_one_size,
    user_errors,
)
from bayescale.core.diagnostics import MIN_DRAWS
from bayescale.core.format import convergence_line, paired_points, ridge_line
from bayescale.inference.model import MAX_SEED_NOISE
from bayescale.inference.sampling import MAX_SEED, MIN_TUNE


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@app.command(short_help="Score forecasts of held-out largest runs (ARE, coverage).")
@user_errors
def backtest(
    runs_file: Path = RunsArgument,
    params_col: str = ParamsColOption,
    tokens_col: str | None = TokensColOption,
    loss_col: str = LossColOption,
    flops_col: str | None = FlopsColOption,
    run_col: str | None = RunColOption,
    seed_col: str | None = SeedColOption,
    family_col: str | None = typer.Option(
        None, help="Model-family label: one case per family.", show_default="the whole table"),
    holdout_models: int | None = typer.Option(
        None, min=1, show_default="1",
        help="Hold out this many largest model sizes of each family."),
    holdout_compute_frac: float | None = typer.Option(
        None, min=0.0, max=1.0,
        help="Instead hold out the runs with this top share of compute (e.g. 0.1)."),
    k_smallest: int | None = typer.Option(
        None, min=2, help="Fit only on the k smallest model sizes left.", show_default="all"),
    max_token_frac: float | None = typer.Option(
        None, min=0.0, max=1.0,
        help="Fit only on rows up to this fraction of their run's tokens (needs --run-col)."),
    min_tokens: str | None = typer.Option(
        None, help="Fit only on rows with at least this many tokens (e.g. 10B)."),
    score_frac: float = typer.Option(
        0.3, min=0.0, max=1.0,
        help="Score the last share of each held-out run's tokens (runs with checkpoints)."),
    likelihood: str = typer.Option(
        "studentt", help="On ln L: studentt (robust, learned tails), normal, or huber (one "
        "mode; gross outliers keep a bounded pull)."),
    seed_noise: float | None = typer.Option(
        None, min=0.0, max=MAX_SEED_NOISE, help="Fix the seed noise instead of a prior."),
    calibration: bool = typer.Option(
        True, "--calibration/--no-calibration",
        help="Learn and apply the law's extrapolation error."),
    run_effects: bool = typer.Option(
        True, "--run-effects/--no-run-effects",
        help="Fit checkpoints of one run with a shared run offset (as fit --run-col); "
        "--no-run-effects fits rows as independent and uses --run-col only to hold out, "
        "window and score."),
    bootstrap: int = typer.Option(
        200, min=0, help="Bootstrap resamples of the baseline point fit (0: no baseline)."),
    chains: int = typer.Option(2, min=2, max=64, help="Chains per fit (R-hat compares them)."),
    draws: int = typer.Option(500, min=MIN_DRAWS, help="Kept draws per chain."),
    tune: int = typer.Option(500, min=MIN_TUNE, help="Tuning steps per chain."),
    random_seed: int = typer.Option(0, min=0, max=MAX_SEED,
                                    help="Random seed (same seed, same figures)."),
    law: str = typer.Option("chinchilla", help="Law to fit (muennighoff needs "
                            "--unique-tokens-col)."),
    unique_tokens_col: str | None = typer.Option(
        None, help="Unique tokens each run had seen (the data limit, docs/limits.md)."),
    loss_cols: str | None = typer.Option(
        None, "--loss-cols", metavar="PATTERN",
        help="Backtest each metric these columns name (a glob such as 'eval/*' or a "
        "comma-separated list), its column as the loss; needs --out.",
        show_default="one backtest of --loss-col"),
    out: Path | None = typer.Option(
        None, "--out", metavar="DIR", help="With --loss-cols: folder for backtest_summary.csv."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="With --loss-cols: run the backtests on this many local "
        "processes.", show_default="in this process"),
    dask: str | None = typer.Option(
        None, "--dask", metavar="ADDRESS", help="With --loss-cols: run the backtests on the "
        "Dask scheduler at ADDRESS (tcp://HOST:8786)."),
    as_json: bool = JsonOption,
) -> None:
    """Backtest the law the Hitchhiker's way: in each family hold out the largest model(s),
    fit the rest, and score the forecasts of the held-out runs: ARE of the median, coverage of
    the 50/80/90% intervals, 90% half-width; beside the classical point fit with bootstrap
    intervals on the same split."""
    from bayescale.data.runs import load_runs
    from bayescale.evaluate.backtest import BacktestOptions
    from bayescale.evaluate.backtest import backtest as run_backtest
    from bayescale.inference.model import ModelSpec
    from bayescale.inference.sampling import SamplerOptions
    from bayescale.law.likelihoods import LIKELIHOODS

    if likelihood not in LIKELIHOODS:
        raise typer.BadParameter(f"use one of {', '.join(LIKELIHOODS)}",
                                 param_hint="--likelihood")
    if loss_cols is None:  # --loss-cols refuses laws with covariates itself, below
        check_law_options(law, unique_tokens_col)
    if holdout_models is not None and holdout_compute_frac is not None:
        raise typer.BadParameter("give --holdout-models or --holdout-compute-frac, not both",
                                 param_hint="--holdout-compute-frac")
    holdout_models = 1 if holdout_models is None else holdout_models
    if holdout_compute_frac is not None and not 0 < holdout_compute_frac < 1:
        raise typer.BadParameter("must lie strictly between 0 and 1",
                                 param_hint="--holdout-compute-frac")
    if score_frac <= 0:
        raise typer.BadParameter("must be positive", param_hint="--score-frac")
    if max_token_frac is not None and max_token_frac <= 0:
        raise typer.BadParameter("must be positive", param_hint="--max-token-frac")
    if loss_cols is None:
        for value, name in ((out, "--out"), (workers, "--workers"), (dask, "--dask")):
            if value is not None:
                raise typer.BadParameter("needs --loss-cols", param_hint=name)
    else:
        _backtest_many(
            runs_file, loss_cols, out, workers, dask, as_json,
            columns=dict(params=params_col, tokens=tokens_col, flops=flops_col, run=run_col,
                         seed=seed_col, family=family_col),
            unique_tokens_col=unique_tokens_col,
            spec=dict(law=law, likelihood=likelihood, seed_noise=seed_noise),
            sampler=dict(chains=chains, draws=draws, tune=tune, random_seed=random_seed),
            backtest=dict(
                holdout_models=holdout_models, holdout_compute_frac=holdout_compute_frac,
                k_smallest=k_smallest, max_token_frac=max_token_frac,
                min_tokens=parse_one_size(min_tokens, "--min-tokens"), score_frac=score_frac,
                n_boot=bootstrap, calibration=calibration, run_effects=run_effects))
        return
    runs = load_runs(
        runs_file, params_col=params_col, tokens_col=tokens_col, loss_col=loss_col,
        flops_col=flops_col, run_col=run_col, seed_col=seed_col, family_col=family_col,
        unique_tokens_col=unique_tokens_col,
    )
    spec = ModelSpec(law=law, likelihood=likelihood, seed_noise=seed_noise)
    options = BacktestOptions(
        holdout_models=holdout_models, holdout_compute_frac=holdout_compute_frac,
        k_smallest=k_smallest, max_token_frac=max_token_frac,
        min_tokens=parse_one_size(min_tokens, "--min-tokens"), score_frac=score_frac,
        n_boot=bootstrap, calibration=calibration, run_effects=run_effects,
    )
    sampler = SamplerOptions(chains=chains, draws=draws, tune=tune, random_seed=random_seed,
                             progress=False)

    def progress(case: dict) -> None:
        if not as_json:
            err.print(f"  {case['family']}: held out {case['held_out']}, fitted on "
                      f"{case['train_sizes']} model sizes, {case['n_test']} rows scored, "
                      f"{case['seconds']:.1f} s")

    if not as_json:
        err.print(f"backtesting {len(runs)} rows from {runs_file} ...")
    report = run_backtest(runs, spec, sampler, options, progress=progress)
    if as_json:
        emit_json(report)
        return
    _print_report(report)


def _backtest_many(runs_file: Path, loss_cols: str, out: Path | None, workers: int | None,
                   dask: str | None, as_json: bool, *, columns: dict[str, Any],
                   unique_tokens_col: str | None, spec: dict[str, Any],
                   sampler: dict[str, Any], backtest: dict[str, Any]) -> None:
    """``backtest --loss-cols``: one backtest per metric, through fit-many's executors."""
    from bayescale.cli.fit_many_cmd import EXIT_SOME_FAILED, _clean
    from bayescale.core.fileio import check_writable
    from bayescale.evaluate.backtest import BacktestOptions
    from bayescale.evaluate.backtest_many import (
        BACKTEST_SUMMARY,
        BacktestManyOptions,
        run_backtests,
    )
    from bayescale.evaluate.batch import FAILED, OK, BatchOptions, Columns, connect_dask, plan
    from bayescale.inference.model import ModelSpec
    from bayescale.inference.sampling import SamplerOptions
    from bayescale.law.laws import LAWS

    if spec["law"] not in LAWS:
        raise typer.BadParameter(f"use one of {', '.join(LAWS)}", param_hint="--law")
    if LAWS[spec["law"]].covariates or unique_tokens_col is not None:
        raise typer.BadParameter("--loss-cols backtests laws of N and D only (no "
                                 "--unique-tokens-col)", param_hint="--loss-cols")
    if out is None:
        raise typer.BadParameter("give the folder for backtest_summary.csv", param_hint="--out")
    if workers is not None and dask is not None:
        raise typer.BadParameter("give --workers or --dask, not both", param_hint="--workers")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file: give a folder", param_hint="--out")
    options = BacktestManyOptions(
        spec=ModelSpec(**spec), sampler=SamplerOptions(**sampler, progress=False),
        backtest=BacktestOptions(**backtest))
    check_writable(out, folder=True)
    client = connect_dask(dask) if dask is not None else None  # an unreachable one fails now
    try:
        jobs = plan(runs_file, loss_cols, out, columns=Columns(**columns),
                    options=BatchOptions(spec=options.spec, sampler=options.sampler))
        if not as_json:
            where = (f"on the Dask scheduler at {dask}" if dask else
                     f"on {workers} local processes" if workers else "in this process")
            err.print(f"backtesting {len(jobs)} metrics of {runs_file} {where} ...",
                      markup=False)

        def progress(row: dict[str, Any], counts: Any) -> None:
            if not as_json:
                err.print(f"  {row['metric']}: {row['status']} ({counts.done} done, "
                          f"{counts.failed} failed, {counts.left} left)", markup=False)

        summary = run_backtests(jobs, out, options, workers=workers, client=client,
                                on_result=progress)
    finally:
        if client is not None:
            client.close()
    counts = summary["status"].value_counts()
    if as_json:
        emit_json({"out": str(out), "metrics": len(summary), "ok": int(counts.get(OK, 0)),
                   "unconverged": int(counts.get("unconverged", 0)),
                   "failed": int(counts.get(FAILED, 0)),
                   "summary": [{k: _clean(v) for k, v in row.items() if k != "seconds"}
                               for row in summary.to_dict(orient="records")]})
        if counts.get(FAILED, 0):
            raise typer.Exit(EXIT_SOME_FAILED)
        return
    table = Table(title="Backtest per metric (overall figures; base: the point fit)")
    for column in ("metric", "cases", "ARE", "cov50/80/90", "hw90", "base ARE", "status"):
        table.add_column(column, justify="left" if column in ("metric", "status") else "right")
    for row in summary.to_dict(orient="records"):
        cov = ("-" if _clean(row["coverage_50"]) is None else
               "/".join(f"{100 * row[f'coverage_{k}']:.0f}" for k in (50, 80, 90)) + "%")
        table.add_row(Text(str(row["metric"])), str(_clean(row["n_cases"]) or "-"),
                      _pct(_clean(row["are_median"])), cov,
                      _pct(_clean(row["halfwidth_90_median"])),
                      _pct(_clean(row["baseline_are_median"])), row["status"])
    err.print(table)
    for row in summary.to_dict(orient="records"):
        if row["reason"]:
            err.print(f"{row['status']}: {row['metric']}: {row['reason']}", markup=False,
                      highlight=False)
    err.print(f"{len(summary)} metrics: {counts.get(OK, 0)} ok, "
              f"{counts.get('unconverged', 0)} unconverged, {counts.get(FAILED, 0)} failed; "
              f"summary in {out / BACKTEST_SUMMARY}", markup=False)
    if counts.get(FAILED, 0):
        raise typer.Exit(EXIT_SOME_FAILED)


def _print_report(report: dict) -> None:
    table = Table(title="Backtest on held-out runs (coverage and half-width of the intervals)")
    rows = [*report["cases"], {"family": "overall", "n_test": "", **report}]
    names = min(max(len(case["family"]) for case in rows), 24)  # "overall" must not be cut
    for column in ("case", "rows", "dec", "ARE", "cov50/80/90", "hw90", "base ARE",
                   "base cov90", "base hw90"):
        table.add_column(column, justify="right", no_wrap=column == "cov50/80/90",
                         min_width=names if column == "case" else None)
    for case in rows:
        base = case.get("baseline") or {}
        distance = case.get("distance_decades")
        table.add_row(
            Text(case["family"]), str(case["n_test"]),
            "" if distance is None else f"{distance:.2f}",
            _pct(case["are_median"]),
            "/".join(f"{100 * case[f'coverage_{k}']:.0f}" for k in (50, 80, 90)) + "%",
            _pct(case["halfwidth_90_median"]), _pct(base.get("are_median")),
            _pct(base.get("coverage_90")), _pct(base.get("halfwidth_90_median")),
        )
    err.print(table)
    err.print("dec: distance beyond the fitted runs in decades; hw90: median half-width of the 90% "
              "interval over the median; base: the point fit with bootstrap intervals.")
    if versus := report.get("are_versus_baseline"):
        err.print(f"ARE minus the point fit's, paired by case: {paired_points(versus)}",
                  markup=False)
    if unconverged := convergence_line(report["cases"]):
        err.print(f"{unconverged}; more --draws and --tune may help.", markup=False)
    for case in report["cases"]:
        for message in case["warnings"]:
            err.print(f"{case['family']}: {message}", markup=False)
    for case in report["cases"]:
        if "alpha_profile" in (case.get("baseline") or {}):
            err.print(ridge_line(case["family"], case["baseline"]), markup=False)
    for skip in report["skipped"]:
        err.print(f"skipped {skip['family']}: {skip['reason']}", markup=False)
    err.print(f"{report['n_cases']} case(s) in {report['seconds']:.0f} s; overall figures "
              "weigh every case alike.")
