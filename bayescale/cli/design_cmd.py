"""``bayescale design``: which runs, within a budget, narrow a planned run's interval most."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from bayescale.cli.app import app
from bayescale.cli.common import (
    FamilyOption,
    JsonOption,
    LevelOption,
    emit_json,
    err,
    parse_one_size,
    user_errors,
    which_family,
)
from bayescale.cli.report_cmd import parse_targets
from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError

if TYPE_CHECKING:
    from bayescale.evaluate.design import Design

#: Candidates shown in the table (all of them are in --json).
SHOWN = 15
#: The table's unit of compute for the reduction per FLOP.
PER = 1e18


@app.command(short_help="Which runs, within a budget, narrow a plan's interval most.")
@user_errors
def design(
    fit_file: Path = typer.Argument(..., metavar="FIT",
                                    help="Posterior file written by `bayescale fit`."),
    target: str = typer.Option(..., "--target", "-t", metavar="N:D",
                               help="The planned run as N:D, e.g. 7B:140B."),
    budget: str = typer.Option(..., "--budget", "-b", metavar="C",
                               help="FLOP available for the added runs (e.g. 3e21): each run "
                               "and the batch in total cost at most this."),
    runs: int = typer.Option(1, "--runs", "-k", min=1, max=20,
                             help="How many runs to choose (greedily)."),
    candidates: Path | None = typer.Option(
        None, "--candidates", metavar="FILE",
        help="Table of feasible runs (.csv, .tsv, .parquet, .json; two of params, tokens, "
        "compute; fresh data, no unique_tokens); default: a grid in log N x log D from the "
        "fitted runs toward the target."),
    level: float = LevelOption,
    outcomes: int = typer.Option(64, min=2, max=4096,
                                 help="Simulated outcomes per candidate."),
    max_refits: int = typer.Option(
        0, "--max-refits", min=0,
        help="Refits allowed where reweighting keeps too few effective draws (Kish ESS); "
        "each refits a few outcomes with the fit's compiled model reused."),
    random_seed: int = typer.Option(0, min=0, help="Seed of the simulated outcomes."),
    family: str | None = FamilyOption,
    as_json: bool = JsonOption,
) -> None:
    """Preposterior analysis: for each candidate run, the expected width of the planned run's
    interval after running it (outcomes drawn from the posterior predictive, the posterior
    reweighted, the law's extrapolation error shrinking as the fitted range grows), ranked by
    reduction per FLOP, and the batch of --runs runs that shrinks it most within --budget.
    See docs/design.md."""
    from bayescale.evaluate.design import design as run_design
    from bayescale.evaluate.design import read_candidates
    from bayescale.posterior.posterior import Posterior

    parsed = parse_targets([target])
    n, d = parsed[0]
    flop = parse_one_size(budget, "--budget")
    pool = read_candidates(candidates) if candidates is not None else None
    post = Posterior.load(fit_file)
    which = which_family(post, family, as_json)
    cache = None
    if max_refits:
        from bayescale.inference.sampling import CompiledCache

        cache = CompiledCache()
    result = run_design(post, n, d, flop, runs=runs, candidates=pool, level=level,
                        outcomes=outcomes, random_seed=random_seed, max_refits=max_refits,
                        cache=cache, family=family)
    if not result.batch:  # nothing worth running: an error, as a budget too small for any run
        raise BayescaleError(result.no_batch())
    if as_json:
        emit_json({**result.as_dict(), "source": str(fit_file), **which})
        return
    _print(result)


def _print(result: Design) -> None:
    pct = f"{fmt.percent(result.level)} ETI"
    t = result.target
    err.print(f"target: N = {fmt.size(t['params'])}, D = {fmt.size(t['tokens'])} "
              f"({fmt.flop(t['compute'])}), {result.distance_now:.2f} decades beyond the fitted "
              f"runs; budget {fmt.flop(result.budget)}")
    parts = ", ".join(f"{k} {v:.3g}" for k, v in result.parts_now.items())
    err.print(f"{pct} width of a new run's loss now: {result.width_now:.4g} nats (ln-scale "
              f"parts: {parts})")
    table = Table(title=f"Candidates ranked by expected reduction per FLOP "
                        f"({len(result.candidates)}, top {min(SHOWN, len(result.candidates))})")
    for column in ("#", "N", "D", "C", "expected width", "reduction",
                   f"per {PER:.0e} FLOP", "shrinks", "ESS", "batch"):
        table.add_column(column, justify="right")
    for rank, c in enumerate(result.candidates[:SHOWN], start=1):
        table.add_row(str(rank), fmt.size(c.params), fmt.size(c.tokens), fmt.flop(c.compute),
                      f"{c.expected_width:.4g}", f"{c.reduction:.3g}",
                      f"{c.reduction_per_flop * PER:.3g}", c.shrinks, f"{c.ess:.0f}",
                      "*" if c.chosen else "")
    err.print(table)
    if result.batch and result.batch_effect is not None:
        e = result.batch_effect
        runs = "; ".join(f"N = {fmt.size(c.params)}, D = {fmt.size(c.tokens)} "
                         f"({fmt.flop(c.compute)})" for c in result.batch)
        err.print(f"chosen batch of {len(result.batch)}: {runs}")
        err.print(f"batch: {fmt.flop(e.compute)}, expected width {e.expected_width:.4g} nats "
                  f"(reduction {e.reduction:.3g}, {e.reduction / result.width_now:.0%}; "
                  f"mostly {e.shrinks}; the seed floor never shrinks)")
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
