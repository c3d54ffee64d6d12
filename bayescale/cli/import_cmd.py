"""``bayescale import wandb|tensorboard``: training logs into the run table ``fit`` reads."""

from __future__ import annotations

from pathlib import Path

import typer

from bayescale.cli.app import app
from bayescale.cli.common import JsonOption, emit_json, err, user_errors
from bayescale.data.logs import DEFAULT_TOKENS

import_app = typer.Typer(
    name="import", no_args_is_help=True,
    help="Read training logs (W&B history exports, TensorBoard event files) and a manifest of "
    "model sizes into a table of runs for fit and fit-many.")
app.add_typer(import_app, name="import",
              short_help="Training logs (W&B, TensorBoard) into a table of runs.")

ManifestOption = typer.Option(
    ..., "--manifest", help="CSV with run (log file or folder name, no extension), params "
    "(125M, 7B), and optional family, seed and other labels.")
OutOption = typer.Option(..., "--out", "-o", help="Run table to write: .csv or .parquet.")
TokensOption = typer.Option(DEFAULT_TOKENS, "--tokens-col",
                            help="The logged metric that counts training tokens.")
MetricsOption = typer.Option(None, "--metrics", help="Metrics to keep: a glob ('eval/*') or "
                             "comma-separated names.", show_default="every logged metric")
FinalOnlyOption = typer.Option(
    False, "--final-only", help="Keep each run's last row only (final losses; see "
    "docs/batch.md on learning-rate schedules).")


def _finish(result, out: Path, source: Path, as_json: bool) -> None:
    from bayescale.data.logs import write_table

    write_table(result.table, out)
    table = result.table
    if as_json:
        emit_json({"out": str(out), "runs": int(table["run"].nunique()), "rows": len(table),
                   "metrics": result.metrics, "duplicates_dropped": result.duplicates,
                   "unlisted_runs": result.unlisted})
        return
    err.print(f"{table['run'].nunique()} runs, {len(table)} rows, {len(result.metrics)} "
              f"metrics from {source} written to {out}", markup=False)
    if result.duplicates:
        err.print(f"dropped {result.duplicates} exact duplicate rows", markup=False)
    if result.unlisted:
        shown = ", ".join(result.unlisted[:8]) + (", ..." if len(result.unlisted) > 8 else "")
        err.print(f"note: {len(result.unlisted)} runs in {source} are not in the manifest and "
                  f"were not imported: {shown}", markup=False)
    names = ", ".join(result.metrics[:6]) + (", ..." if len(result.metrics) > 6 else "")
    err.print(f"metrics: {names}", markup=False)


def _check_out(out: Path) -> None:
    from bayescale.core.fileio import check_writable

    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise typer.BadParameter(f"{out}: give a .csv or .parquet name", param_hint="--out")
    check_writable(out)


@import_app.command("wandb", short_help="A folder of W&B history CSVs (one per run).")
@user_errors
def import_wandb(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder of <run>.csv history "
                                  "exports."),
    manifest: Path = ManifestOption,
    out: Path = OutOption,
    tokens_col: str = TokensOption,
    metrics: str | None = MetricsOption,
    final_only: bool = FinalOnlyOption,
    as_json: bool = JsonOption,
) -> None:
    """Read W&B run histories (one CSV per run, as exported: _step, the tokens column,
    eval/<set>/CrossEntropyLoss ...) into a table of runs."""
    from bayescale.data.logs import import_wandb as read

    _check_out(out)
    result = read(folder, manifest, tokens_col=tokens_col, metrics=metrics,
                  final_only=final_only)
    _finish(result, out, folder, as_json)


@import_app.command("tensorboard", short_help="TensorBoard event folders (one per run).")
@user_errors
def import_tensorboard(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder of <run>/ event folders."),
    manifest: Path = ManifestOption,
    out: Path = OutOption,
    tokens_col: str = TokensOption,
    metrics: str | None = MetricsOption,
    final_only: bool = FinalOnlyOption,
    as_json: bool = JsonOption,
) -> None:
    """Read TensorBoard scalars (one folder of event files per run; the tokens a logged
    scalar, matched to the metrics by step) into a table of runs."""
    from bayescale.data.logs import import_tensorboard as read

    _check_out(out)
    result = read(folder, manifest, tokens_col=tokens_col, metrics=metrics,
                  final_only=final_only)
    _finish(result, out, folder, as_json)
