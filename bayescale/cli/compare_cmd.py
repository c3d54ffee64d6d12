"""``bayescale compare``: rank fits of the same runs by PSIS-LOO."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from bayescale.cli.app import app
from bayescale.cli.common import JsonOption, emit_json, err, user_errors


@app.command(short_help="Rank fits of the same runs by PSIS-LOO.")
@user_errors
def compare(
    fit_files: list[Path] = typer.Argument(..., metavar="FIT1 FIT2 ...",
                                           help="Posterior files of fits of the same runs."),
    as_json: bool = JsonOption,
) -> None:
    """Compare fits (e.g. --law chinchilla vs --law kaplan) by PSIS-LOO: the expected log
    predictive density of each fitted row left out (ELPD), differences to the best fit with
    standard errors, and a warning for rows whose Pareto k makes the estimate unreliable."""
    from bayescale.evaluate.compare import PARETO_K_LIMIT
    from bayescale.evaluate.compare import compare as run_compare
    from bayescale.posterior.posterior import Posterior

    if len(fit_files) < 2:
        raise typer.BadParameter("give two or more posterior files", param_hint="FIT1 FIT2 ...")
    names = [str(path) for path in fit_files]
    if len({path.resolve() for path in fit_files}) != len(names):  # ./a.nc and /abs/a.nc
        raise typer.BadParameter("the same file is given twice", param_hint="FIT1 FIT2 ...")
    posts = [Posterior.load(path) for path in fit_files]
    table, warnings = run_compare(posts, names)
    if as_json:
        emit_json({
            "method": "psis-loo", "scale": "log", "pareto_k_limit": PARETO_K_LIMIT,
            "fits": [{"file": name, **{k: (v.item() if hasattr(v, "item") else v)
                                       for k, v in row.items()}}
                     for name, row in table.to_dict(orient="index").items()],
            "warnings": warnings,
        })
        return
    header = ("rank", "fit", "law", "ELPD", "SE", "ELPD diff", "SE diff", "p_loo", "weight",
              "k > 0.7")
    rows = [(str(row["rank"]), name, str(row["law"]), f"{row['elpd_loo']:.1f}",
             f"{row['se']:.1f}", f"{row['elpd_diff']:.1f}", f"{row['dse']:.1f}",
             f"{row['p_loo']:.1f}", f"{row['weight']:.2f}", str(row["n_bad_k"]))
            for name, row in table.iterrows()]
    out = Table(title="PSIS-LOO comparison (higher ELPD predicts left-out rows better)")
    for k, column in enumerate(header):
        # every cell whole (headers may wrap at spaces): wider than the terminal, if need be
        widest = max([*(len(cells[k]) for cells in rows), *map(len, column.split())])
        out.add_column(column, justify="left" if column in ("fit", "law") else "right",
                       min_width=widest)
    for cells in rows:
        out.add_row(*map(Text, cells))
    err.print(out)
    err.print("A difference smaller than about twice its SE does not separate the fits.")
    for line in warnings:
        err.print(f"warning: {line}", markup=False)
