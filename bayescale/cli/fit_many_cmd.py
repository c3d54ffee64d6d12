"""``bayescale fit-many``: one posterior per (group, metric) of a run table, and a summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from bayescale.cli.app import app
from bayescale.cli.common import (
    FlopsColOption,
    JsonOption,
    LevelOption,
    ParamsColOption,
    RunColOption,
    RunsArgument,
    SeedColOption,
    TokensColOption,
    emit_json,
    err,
    fail,
    parse_one_size,
    user_errors,
)
from bayescale.core.diagnostics import MIN_DRAWS
from bayescale.core.format import statistic
from bayescale.inference.model import MAX_SEED_NOISE
from bayescale.inference.sampling import MIN_TUNE

#: Some fits failed or did not converge (the others are written; see the summary).
EXIT_SOME_FAILED = 3
#: Rows of the summary printed on stderr; the files hold them all.
SHOWN = 25


def parse_targets(values: list[str] | None) -> list[tuple[str, float, float]]:
    """``N:D`` options (``70B:1.4T``) as ``(label, N, D)``; a bad one is a usage error.

    Examples
    --------
    >>> parse_targets(["70B:1.4T"])
    [('70B:1.4T', 70000000000.0, 1400000000000.0)]
    """
    out = []
    for raw in values or []:
        parts = raw.split(":")
        if len(parts) != 2:
            raise typer.BadParameter(f"{raw!r}: give N:D, e.g. 70B:1.4T", param_hint="--target")
        n = parse_one_size(parts[0].strip(), "--target")
        d = parse_one_size(parts[1].strip(), "--target")
        out.append((raw.strip(), n, d))
    return out


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and missing (None, pandas' NA) become null, numpy scalars plain numbers."""
    import pandas as pd  # loaded by then: the summary is a frame

    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Reporter:
    """Progress on stderr: a live bar on a terminal, else one line per finished fit."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.written = 0
        if not quiet and err.is_terminal and total:
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("fits"), BarColumn(), TextColumn("{task.description}"),
                                console=err, transient=False)
            self.task = self.bar.add_task(self._counts(0, 0, total, None), total=total)
            self.bar.start()

    @staticmethod
    def _counts(done: int, failed: int, left: int, eta: float | None) -> str:
        rest = "" if eta is None else f", ~{eta:.0f} s left"
        return f"{done} done, {failed} failed, {left} left{rest}"

    def __call__(self, row: dict[str, Any], progress: Any) -> None:
        if row.get("file") and not row.get("reused"):
            self.written += 1
        counts = self._counts(progress.done, progress.failed, progress.left, progress.eta())
        if self.bar is not None:
            self.bar.update(self.task, completed=progress.done + progress.failed,
                            description=counts)
        elif not self.quiet:
            label = row["metric"] if row["group"] is None else f"{row['group']} {row['metric']}"
            how = "reused" if row.get("reused") else row["status"]
            seconds = row.get("seconds")
            took = f" ({seconds:.1f} s)" if isinstance(seconds, float) and not row.get(
                "reused") and math.isfinite(seconds) else ""
            err.print(f"[{progress.done + progress.failed}/{progress.total}] {label}: {how}"
                      f"{took}; {counts}", markup=False, highlight=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(summary: Any, law_parameters: tuple[str, ...]) -> None:
    """Medians of E and the exponents per fit (all parameters are in the summary files)."""
    law_parameters = tuple(p for p in law_parameters if p == "E" or len(p) > 1)
    table = Table(title="fits (medians; the summary files hold every parameter's interval)")
    for column in ("group", "metric", "status", "rows", *law_parameters, "R-hat", "s"):
        table.add_column(column, justify="left" if column in ("group", "metric", "status")
                         else "right", overflow="fold")
    for _, row in summary.head(SHOWN).iterrows():
        medians = [f"{row[f'{p}_median']:.4g}" if f"{p}_median" in row
                   and isinstance(row[f"{p}_median"], float)
                   and math.isfinite(row[f"{p}_median"]) else "-" for p in law_parameters]
        rows = row.get("rows")
        seconds = row.get("seconds")
        table.add_row(Text(str(row["group"] if row["group"] is not None else "")),
                      Text(str(row["metric"])), row["status"],
                      "-" if _clean(rows) is None else f"{int(rows)}", *medians,
                      statistic(row.get("max_r_hat", float("nan")), ".3f"),
                      "-" if seconds is None or seconds != seconds else f"{seconds:.1f}")
    err.print(table)
    if len(summary) > SHOWN:
        err.print(f"... and {len(summary) - SHOWN} more fits in the summary files")


@app.command("fit-many", short_help="Fit one law per group and metric of RUNS, in a batch.")
@user_errors
def fit_many(
    runs_file: Path = RunsArgument,
    loss_cols: str = typer.Option(
        ..., "--loss-cols", help="Metric columns to fit, each its own law: a glob over column "
        "names ('eval/*') or a comma-separated list."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: fits/, inputs/, "
                             "summary.csv, summary.parquet."),
    group_col: str | None = typer.Option(
        None, help="Fit each value of this column apart (a recipe, a model family).",
        show_default="the whole table"),
    params_col: str = ParamsColOption,
    tokens_col: str | None = TokensColOption,
    flops_col: str | None = FlopsColOption,
    run_col: str | None = RunColOption,
    seed_col: str | None = SeedColOption,
    family_col: str | None = typer.Option(
        None, help="Model-family label: each fit is a hierarchical family fit."),
    min_tokens: str | None = typer.Option(
        None, "--min-tokens", help="Drop checkpoints below this many tokens (e.g. 10B).",
        show_default="keep all"),
    max_token_frac: float | None = typer.Option(
        None, "--max-token-frac", min=0.0, max=1.0,
        help="Keep checkpoints up to this fraction of their run's tokens (needs --run-col)."),
    targets: list[str] | None = typer.Option(
        None, "--target", help="N:D (e.g. 70B:1.4T), repeatable: each fit's predicted loss "
        "there goes in the summary."),
    law: str = typer.Option("chinchilla", help="Law to fit."),
    likelihood: str = typer.Option("studentt", help="On ln L: studentt, normal or huber."),
    seed_noise: float | None = typer.Option(
        None, min=0.0, max=MAX_SEED_NOISE,
        help="Fix the seed noise (relative sd of a run's loss) instead of a prior."),
    sampler: str = typer.Option("nutpie", help="nutpie (fast) or pymc."),
    chains: int = typer.Option(4, min=1, max=64, help="Chains per fit."),
    draws: int = typer.Option(1000, min=MIN_DRAWS, help="Kept draws per chain."),
    tune: int = typer.Option(1000, min=MIN_TUNE, help="Tuning steps per chain."),
    target_accept: float = typer.Option(0.95, min=0.5, max=0.999,
                                        help="NUTS target acceptance rate."),
    random_seed: int = typer.Option(0, min=0, help="Seed of every fit (same seed, same draws, "
                                    "whichever executor)."),
    calibration: bool = typer.Option(
        True, "--calibration/--no-calibration",
        help="Learn each law's extrapolation error from its runs."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Run the fits on this many local processes.",
        show_default="in this process"),
    dask: str | None = typer.Option(
        None, "--dask", metavar="ADDRESS", help="Run the fits on the Dask scheduler at "
        "ADDRESS (tcp://HOST:8786)."),
    level: float = LevelOption,
    as_json: bool = JsonOption,
) -> None:
    """Fit one law per (group, metric) of RUNS; write each posterior and a summary to --out.

    A fit that fails is a row of the summary with its reason and stops no other. A rerun skips
    the fits already written for the same rows and options, so an interrupted batch resumes.
    Exit code 3 when a fit failed or did not converge (the others are written).
    """
    from bayescale.core.fileio import check_writable
    from bayescale.evaluate.batch import (
        FAILED,
        OK,
        BatchOptions,
        Columns,
        connect_dask,
        plan,
        run_batch,
    )
    from bayescale.inference.model import ModelSpec
    from bayescale.inference.sampling import SAMPLERS, SamplerOptions
    from bayescale.law.laws import LAWS, get_law
    from bayescale.law.likelihoods import LIKELIHOODS

    of_n_and_d = [name for name, candidate in LAWS.items() if not candidate.covariates]
    if law not in of_n_and_d:  # fit-many reads no unique tokens: the laws of N and D only
        raise typer.BadParameter(f"use one of {', '.join(of_n_and_d)}", param_hint="--law")
    if likelihood not in LIKELIHOODS:
        raise typer.BadParameter(f"use one of {', '.join(LIKELIHOODS)}",
                                 param_hint="--likelihood")
    if sampler not in SAMPLERS:
        raise typer.BadParameter(f"use one of {', '.join(SAMPLERS)}", param_hint="--sampler")
    if workers is not None and dask is not None:
        raise typer.BadParameter("give --workers or --dask, not both", param_hint="--workers")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file: give a folder", param_hint="--out")
    options = BatchOptions(
        spec=ModelSpec(law=law, likelihood=likelihood, seed_noise=seed_noise),
        sampler=SamplerOptions(sampler=sampler, chains=chains, draws=draws, tune=tune,
                               random_seed=random_seed, target_accept=target_accept,
                               progress=False),
        calibration=calibration, min_tokens=parse_one_size(min_tokens, "--min-tokens"),
        max_token_frac=max_token_frac, level=level, targets=parse_targets(targets))
    columns = Columns(params=params_col, tokens=tokens_col, flops=flops_col, run=run_col,
                      seed=seed_col, family=family_col)
    if max_token_frac is not None and run_col is None:  # else each fit fails alike
        raise typer.BadParameter("needs --run-col: the fraction is of each run's tokens",
                                 param_hint="--max-token-frac")
    check_writable(out, folder=True)
    client = connect_dask(dask) if dask is not None else None  # an unreachable one fails now
    try:
        jobs = plan(runs_file, loss_cols, out, columns=columns, group_col=group_col,
                    options=options)
        metrics = len(dict.fromkeys(job.metric for job in jobs))
        if not as_json:
            where = (f"on the Dask scheduler at {dask}" if dask else
                     f"on {workers} local processes" if workers else "in this process")
            err.print(f"{len(jobs)} fits ({metrics} metrics) of {runs_file} into {out}, "
                      f"{where}", markup=False)
        reporter = _Reporter(len(jobs), as_json)
        try:
            summary = run_batch(jobs, out, options, workers=workers, client=client,
                                on_result=reporter)
        except KeyboardInterrupt:
            reporter.stop()
            done = len(list((out / "fits").glob("*.json"))) if (out / "fits").is_dir() else 0
            line = (f"interrupted: {reporter.written} fits written in this run, {done} in "
                    f"{out / 'fits'} in all; run the same command again to fit the rest")
            raise fail(line, 130, as_json) from None  # --json: the error object, as documented
        reporter.stop()
    finally:
        if client is not None:
            client.close()

    counts = summary["status"].value_counts()
    reused = int(summary["reused"].sum()) if "reused" in summary else 0
    if as_json:
        emit_json({
            "out": str(out), "fits": len(summary), "ok": int(counts.get(OK, 0)),
            "unconverged": int(counts.get("unconverged", 0)),
            "failed": int(counts.get(FAILED, 0)), "reused": reused, "level": level,
            "summary": [{k: _clean(v) for k, v in row.items()}
                        for row in summary.to_dict(orient="records")],
        })
    else:
        _print_summary(summary, get_law(law).parameters)
        for _, row in summary[summary["status"] == FAILED].head(SHOWN).iterrows():
            label = row["metric"] if row["group"] is None else f"{row['group']} {row['metric']}"
            err.print(f"failed: {label}: {row['reason']}", markup=False, highlight=False)
        err.print(f"{len(summary)} fits: {counts.get(OK, 0)} ok, "
                  f"{counts.get('unconverged', 0)} unconverged, {counts.get(FAILED, 0)} failed"
                  f" ({reused} reused from an earlier run); summary in "
                  f"{out / 'summary.csv'} and {out / 'summary.parquet'}", markup=False)
    if counts.get(OK, 0) < len(summary):
        raise typer.Exit(EXIT_SOME_FAILED)
