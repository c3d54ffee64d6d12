"""``bayescale fit``: the posterior of a law from a table of runs."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from bayescale.cli.app import app
from bayescale.cli.common import (
    FlopsColOption,
    JsonOption,
    LevelOption,
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
    say_warnings,
    user_errors,
)
from bayescale.core.diagnostics import MIN_DRAWS
from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import check_writable
from bayescale.core.format import percent, statistic
from bayescale.inference.model import MAX_SEED_NOISE
from bayescale.inference.sampling import MAX_SEED, MIN_TUNE

EXIT_DIAGNOSTICS = 3
#: Rows from which fit says, before sampling, that it will take minutes.
LARGE_TABLE = 100_000


def default_out(path: Path) -> Path:
    """``runs.csv`` (or ``runs.csv.gz``) -> ``runs.posterior.nc`` beside it.

    Examples
    --------
    >>> default_out(Path("runs.csv")).name, default_out(Path("data/runs.csv.gz")).name
    ('runs.posterior.nc', 'runs.posterior.nc')
    """
    stem = Path(path.stem).stem if path.suffix.lower() == ".gz" else path.stem
    return path.with_name(f"{stem}.posterior.nc")


def _json_number(value: float) -> float | None:
    """A statistic for JSON: NaN (R-hat of one chain, of a fixed parameter) becomes null.

    Examples
    --------
    >>> _json_number(1.002), _json_number(float("nan"))
    (1.002, None)
    """
    return value if math.isfinite(value) else None


@app.command(short_help="Fit the law to RUNS and write the posterior file (NetCDF).")
@user_errors
def fit(
    runs_file: Path = RunsArgument,
    out: Path | None = typer.Option(None, "--out", "-o", help="Posterior file (NetCDF, .nc).",
                                    show_default="RUNS.posterior.nc beside RUNS"),
    params_col: str = ParamsColOption,
    tokens_col: str | None = TokensColOption,
    loss_col: str = LossColOption,
    flops_col: str | None = FlopsColOption,
    run_col: str | None = RunColOption,
    seed_col: str | None = SeedColOption,
    family_col: str | None = typer.Option(
        None, help="Model-family label: a hierarchical fit, each family its own law, partially "
        "pooled (predict/optimal --family NAME). Pool families of one recipe: unlike ones pull "
        "each other's exponents."),
    unique_tokens_col: str | None = typer.Option(
        None, help="Unique tokens the run had seen (at most its tokens): the data limit that "
        "--law muennighoff needs (docs/limits.md)."),
    separate_e: bool = typer.Option(
        False, "--separate-e", help="With --family-col: each family keeps its own E instead of "
        "pooling it (families trained on different data or tokenizers)."),
    min_tokens: str | None = typer.Option(
        None, "--min-tokens", help="Drop checkpoints below this many tokens (e.g. 10B: the "
        "Hitchhiker's Guide finds earlier ones noisy at LLM scale).", show_default="keep all"),
    max_token_frac: float | None = typer.Option(
        None, "--max-token-frac", min=0.0, max=1.0,
        help="Keep checkpoints up to this fraction of their run's tokens (needs --run-col)."),
    law: str = typer.Option("chinchilla", help="Law to fit."),
    likelihood: str = typer.Option(
        "studentt", help="On ln L: studentt (robust, learned tails), normal, or huber (one "
        "mode; gross outliers keep a bounded pull)."),
    priors: Path | None = typer.Option(None, "--priors", help="TOML file overriding priors."),
    seed_noise: float | None = typer.Option(
        None, min=0.0, max=MAX_SEED_NOISE,
        help="Fix the seed noise (relative sd of a run's loss, e.g. 0.01) instead of a prior."),
    sampler: str = typer.Option("nutpie", help="nutpie (fast) or pymc."),
    chains: int = typer.Option(4, min=1, max=64,
                               help="Number of chains (R-hat needs 2 or more)."),
    draws: int = typer.Option(1000, min=MIN_DRAWS, help="Kept draws per chain."),
    tune: int = typer.Option(1000, min=MIN_TUNE, help="Tuning steps per chain."),
    target_accept: float = typer.Option(0.95, min=0.5, max=0.999,
                                        help="NUTS target acceptance rate."),
    random_seed: int = typer.Option(0, min=0, max=MAX_SEED,
                                    help="Random seed (same seed, same draws)."),
    calibration: bool = typer.Option(
        True, "--calibration/--no-calibration",
        help="Learn the law's extrapolation error from the runs (a rolling-origin backtest "
        "inside them) so predictions beyond the runs include it."),
    level: float = LevelOption,
    as_json: bool = JsonOption,
) -> None:
    """Fit the law to RUNS and write the posterior (NetCDF) that every other command reads.

    Prints a summary with credible intervals and convergence diagnostics. Exit code 3 when a
    convergence check fails (the file is still written, for inspection).
    """
    from bayescale.data.runs import check_identifiable, load_runs
    from bayescale.data.selection import select_checkpoints
    from bayescale.inference.fit import fit as run_fit
    from bayescale.inference.model import ModelSpec
    from bayescale.inference.sampling import SAMPLERS, SamplerOptions
    from bayescale.law.laws import get_law
    from bayescale.law.likelihoods import LIKELIHOODS
    from bayescale.law.priors import NOISE_PRIORS, load_priors
    from bayescale.posterior.warnings import fit_warnings

    check_law_options(law, unique_tokens_col, family_col)
    if likelihood not in LIKELIHOODS:
        raise typer.BadParameter(f"use one of {', '.join(LIKELIHOODS)}",
                                 param_hint="--likelihood")
    if sampler not in SAMPLERS:
        raise typer.BadParameter(f"use one of {', '.join(SAMPLERS)}", param_hint="--sampler")
    if separate_e and family_col is None:
        raise typer.BadParameter("needs --family-col (a family model)", param_hint="--separate-e")
    # A folder gets check_writable's "is a folder: give a file name" below.
    if out is not None and out.suffix.lower() != ".nc" and not out.is_dir():
        raise typer.BadParameter(f"{out}: the posterior is a NetCDF file: give a name ending "
                                 "in .nc", param_hint="--out")
    law_obj = get_law(law)
    prior_table = {}
    if priors is not None:
        defaults = {**law_obj.default_priors(), **NOISE_PRIORS}
        if family_col is not None:
            from bayescale.law.families import FAMILY_SD

            defaults["family_sd"] = FAMILY_SD
        prior_table = load_priors(priors, defaults, law_obj.lognormal_parameters)
    runs = load_runs(
        runs_file, params_col=params_col, tokens_col=tokens_col, loss_col=loss_col,
        flops_col=flops_col, run_col=run_col, seed_col=seed_col, family_col=family_col,
        unique_tokens_col=unique_tokens_col,
    )
    runs = select_checkpoints(runs, min_tokens=parse_one_size(min_tokens, "--min-tokens"),
                              max_token_frac=max_token_frac)
    out = out or default_out(runs_file)
    if out.resolve() == runs_file.resolve():
        raise BayescaleError("--out would overwrite the input", path=str(out))
    check_identifiable(runs, len(law_obj.parameters))  # before any output: one error line
    check_writable(out)
    spec = ModelSpec(law=law, likelihood=likelihood, priors=prior_table, seed_noise=seed_noise,
                     separate_e=separate_e)
    if law_obj.covariates:
        from bayescale.inference.model import check_covariates

        check_covariates(runs, replace(spec, families=family_col is not None))
    options = SamplerOptions(sampler=sampler, chains=chains, draws=draws, tune=tune,
                             random_seed=random_seed, target_accept=target_accept)
    if not as_json:
        err.print(f"fitting {law_obj.formula} to {len(runs)} rows ({runs.n_runs} runs) "
                  f"from {runs_file} ...")
    if len(runs) >= LARGE_TABLE:
        err.print(f"note: {len(runs):,} rows: every step of the sampler visits each row, so "
                  "expect minutes to hours of sampling; --min-tokens or --max-token-frac keep "
                  "fewer checkpoints, smaller --draws and --tune shorten it", markup=False)
    result = run_fit(runs, spec, options, calibration=calibration)
    result.posterior.save(out)
    summary = result.posterior.summary(level=level)
    diag = result.diagnostics
    warnings = fit_warnings(result.posterior)
    if not diag.ok:  # last, and with --json in the list too (docs/cli.md, Warnings)
        warnings.append(f"convergence check failed: {diag.problems[0]}")
    if as_json:
        keys = ("median", "lower", "upper", "mean", "sd", "r_hat", "ess_bulk")
        entries = {p: {k: _json_number(float(summary.loc[p, k])) for k in keys}
                   for p in summary.index}
        emit_json({
            "law": law, "n_rows": len(runs), "n_runs": runs.n_runs, "level": level,
            "out": str(out),
            # A family fit's rows are per family: "E[gpt3]", ..., "family_sd[log_E]".
            "parameters": {p: e for p, e in entries.items()
                           if p.split("[")[0] in law_obj.parameters},
            "noise": {p: e for p, e in entries.items()
                      if p.split("[")[0] not in law_obj.parameters},
            "diagnostics": {k: v for k, v in diag.as_dict().items() if k != "max_depth_hits"},
            "seconds": result.seconds, "phases": result.phases, "warnings": warnings,
        })
    else:
        _print_summary(summary, level, law_obj.formula)
        err.print(f"diagnostics: {diag.divergences} divergences, max R-hat "
                  f"{statistic(diag.max_r_hat, '.3f')}, min ESS bulk "
                  f"{statistic(diag.min_ess_bulk, '.0f')} / tail "
                  f"{statistic(diag.min_ess_tail, '.0f')}"
                  f"; {result.seconds:.1f} s")
        err.print(f"posterior written to {out}")
        say_warnings(warnings)
    if chains == 1:
        err.print("note: R-hat compares chains, so one chain is not checked for it (ESS and "
                  "divergences are); use --chains 2 or more")
    if not diag.ok:
        raise typer.Exit(EXIT_DIAGNOSTICS)



def _print_summary(summary, level: float, formula: str) -> None:
    table = Table(title=f"{formula}: posterior ({percent(level)} equal-tailed intervals)")
    for column in ("parameter", "median", "lower", "upper", "sd", "R-hat", "ESS bulk"):
        table.add_column(column, justify="right")
    for name, row in summary.iterrows():
        # Text: "E[gpt3]" is a label, not Rich markup
        table.add_row(Text(name), f"{row['median']:.4g}", f"{row['lower']:.4g}",
                      f"{row['upper']:.4g}", f"{row['sd']:.3g}",
                      statistic(row["r_hat"], ".3f"), statistic(row["ess_bulk"], ".0f"))
    err.print(table)
