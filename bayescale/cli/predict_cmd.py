"""``bayescale predict`` and ``bayescale optimal``: questions asked of a saved posterior."""

from __future__ import annotations

from pathlib import Path

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
    parse_sizes,
    say_warnings,
    triple,
    user_errors,
    which_family,
)
from bayescale.cli.limits_view import (
    InferenceTokensOption,
    UniqueTokensOption,
    limited_optimal,
    parse_inference_tokens,
)
from bayescale.core import format as fmt

FitArgument = typer.Argument(..., metavar="FIT", help="Posterior file written by `bayescale fit`.")
IntervalOption = typer.Option("eti", "--interval",
                              help="eti (equal-tailed) or hdi (highest density).")


def _check_interval(kind: str) -> None:
    if kind not in ("eti", "hdi"):
        raise typer.BadParameter("use eti or hdi", param_hint="--interval")


def _targets_from_file(path: Path) -> tuple[list, list, list | None]:
    """N and D of each row of a targets table (:func:`bayescale.data.runs.read_plans`), and its
    unique tokens when it has that column (None otherwise)."""
    from bayescale.data.runs import UNIQUE, read_plans

    frame = read_plans(path, "a targets table")
    unique = frame[UNIQUE].tolist() if UNIQUE in frame else None
    return frame["params"].tolist(), frame["tokens"].tolist(), unique


SeedOption = typer.Option(0, min=0, help="Seed of the new-run noise draws.")
DiscrepancyOption = typer.Option(
    True, "--discrepancy/--no-discrepancy",
    help="Include the law's learned extrapolation error (stored by fit) in the new run's "
    "loss.")


@app.command(short_help="Predict the loss of planned runs, with credible intervals.")
@user_errors
def predict(
    fit_file: Path = FitArgument,
    params: str | None = typer.Option(None, "--params", "-N", help="Parameters N (70B, 7e10)."),
    tokens: str | None = typer.Option(None, "--tokens", "-D", help="Training tokens D (1.4T)."),
    compute: str | None = typer.Option(None, "--compute", "-C",
                                       help="Compute C = 6 N D in FLOP; replaces N or D."),
    targets: Path | None = typer.Option(None, "--targets",
                                        help="Table of targets (params, tokens or compute)."),
    level: float = LevelOption,
    interval: str = IntervalOption,
    random_seed: int = SeedOption,
    discrepancy: bool = DiscrepancyOption,
    family: str | None = FamilyOption,
    unique_tokens: str | None = typer.Option(
        None, "--unique-tokens", help="Unique tokens U of the runs (a law with a data-limit "
        "term, fit --law muennighoff): D / U epochs."),
    as_json: bool = JsonOption,
) -> None:
    """Predict the loss of planned runs: a new run's loss (seed noise included) and the law's
    expected loss, each with a credible interval computed draw by draw."""

    from bayescale.posterior.limits import fitted_epochs, repetition_warning
    from bayescale.posterior.posterior import Posterior
    from bayescale.posterior.warnings import far_targets

    _check_interval(interval)
    n = parse_one_size(params, "--params")
    d = parse_one_size(tokens, "--tokens")
    c = parse_one_size(compute, "--compute")
    u = parse_one_size(unique_tokens, "--unique-tokens")
    column_u = None
    if targets is not None:
        if any(x is not None for x in (n, d, c)):
            raise typer.BadParameter("give --targets or --params/--tokens/--compute, not both")
        n, d, column_u = _targets_from_file(targets)
        c = None
    elif sum(x is not None for x in (n, d, c)) != 2:
        raise typer.BadParameter("give two of --params, --tokens, --compute (or --targets)")
    post = Posterior.load(fit_file)
    if column_u is not None and post.law.covariates:
        # as fit reads a runs table: the column counts for a law with a data-limit term only
        if u is not None:
            raise typer.BadParameter("the targets table has a unique_tokens column: give it or "
                                     "--unique-tokens, not both", param_hint="--unique-tokens")
        u = column_u
    which = which_family(post, family, as_json)
    frame = post.predict(n, d, c, level=level, interval_kind=interval, random_seed=random_seed,
                         discrepancy=discrepancy, family=family, unique_tokens=u)
    warnings = far_targets(post, frame["params"], frame["tokens"], frame["compute"],
                           discrepancy=discrepancy, family=family)
    epochs = unique = None
    if "unique_tokens" in frame:  # U as given; D / U below 1 is part of one epoch
        unique = frame["unique_tokens"].to_numpy()
        epochs = frame["tokens"].to_numpy() / unique
        repeated = repetition_warning(float(epochs.max()), fitted_epochs(post),
                                      "the most repeated target")
        warnings += [repeated] if repeated else []
    if as_json:
        emit_json({
            "level": level, "interval": interval, "warnings": warnings, **which,
            "targets": [
                {"params": float(row.params), "tokens": float(row.tokens),
                 "compute": float(row.compute), "loss": triple(frame, i, "loss"),
                 "mean_loss": triple(frame, i, "mean_loss"),
                 "seed_floor_share": float(row.seed_floor_share),
                 "discrepancy_share": float(row.discrepancy_share),
                 "extrapolation_decades": float(row.extrapolation_decades),
                 **({} if epochs is None else {"unique_tokens": float(unique[i]),
                                               "epochs": float(epochs[i])})}
                for i, row in enumerate(frame.itertuples())
            ],
        })
        return
    table = Table(title=f"Predicted loss ({fmt.percent(level)} {interval.upper()}), "
                        f"{post.law.formula}")
    for column in ("N", "D", "C", *(() if epochs is None else ("epochs",)), "new run's loss",
                   "law's expected loss", "noise share", "law error share"):
        table.add_column(column, justify="right")
    for i, row in enumerate(frame.itertuples()):
        table.add_row(fmt.size(row.params), fmt.size(row.tokens), fmt.flop(row.compute),
                      *(() if epochs is None else (f"{epochs[i]:.3g}",)),
                      fmt.interval(**triple(frame, i, "loss")),
                      fmt.interval(**triple(frame, i, "mean_loss")),
                      f"{row.seed_floor_share:.0%}", f"{row.discrepancy_share:.0%}")
    err.print(table)
    err.print("noise share: the part of the new run's spread that seed and run-to-run noise "
              "cause; more small runs only shrink the rest.")
    if post.calibration is not None and discrepancy:
        err.print("law error share: the law's own extrapolation error, learned from the runs "
                  "and growing with the distance beyond them (0 inside); --no-discrepancy "
                  "leaves it out.")
    say_warnings(warnings)


@app.command(short_help="Compute-optimal N*, D*, tokens per parameter and loss.")
@user_errors
def optimal(
    fit_file: Path = FitArgument,
    compute: list[str] | None = typer.Option(None, "--compute", "-C",
                                             help="Compute budget in FLOP (repeatable)."),
    params: str | None = typer.Option(None, "--params", "-N",
                                      help="Fixed N: the budget at which N is optimal."),
    tokens: str | None = typer.Option(None, "--tokens", "-D",
                                      help="Fixed D: the budget at which D is optimal."),
    level: float = LevelOption,
    interval: str = IntervalOption,
    random_seed: int = SeedOption,
    discrepancy: bool = DiscrepancyOption,
    family: str | None = FamilyOption,
    unique_tokens: str | None = UniqueTokensOption,
    inference_tokens: str | None = InferenceTokensOption,
    target_loss: float | None = typer.Option(
        None, "--target-loss", help="With --inference-tokens: the loss to reach (default: "
        "the loss of the compute-optimal run at --compute, or with --unique-tokens of the best "
        "run under that limit)."),
    as_json: bool = JsonOption,
) -> None:
    """Compute-optimal N*, D*, tokens per parameter and loss for budgets C = 6 N D (a new
    run's loss at the optimum, seed noise included, and the law's expected loss there), with
    the allocation exponents a (N* ~ C^a) and b (D* ~ C^b). Under limits (docs/limits.md):
    --unique-tokens U, the best N, D and epochs with U unique tokens and the loss the limit
    costs; --inference-tokens T, the N, D reaching the target loss at the least training plus
    inference FLOPs 6ND + 2NT."""
    from bayescale.posterior.posterior import Posterior
    from bayescale.posterior.warnings import far_targets

    _check_interval(interval)
    budgets = parse_sizes(compute, "--compute")
    n = parse_one_size(params, "--params")
    d = parse_one_size(tokens, "--tokens")
    u = parse_one_size(unique_tokens, "--unique-tokens")
    t = parse_inference_tokens(inference_tokens)
    if target_loss is not None and t is None:
        raise typer.BadParameter("needs --inference-tokens", param_hint="--target-loss")
    if target_loss is not None and not 0 < target_loss < float("inf"):
        raise typer.BadParameter("must be positive and finite", param_hint="--target-loss")
    if t is not None or u is not None:
        if budgets is None and target_loss is None:
            raise typer.BadParameter("give --compute (the budget, or the target's budget)",
                                     param_hint="--compute")
        if budgets is not None and len(budgets) != 1:
            raise typer.BadParameter("one budget with --unique-tokens or --inference-tokens",
                                     param_hint="--compute")
        post = Posterior.load(fit_file)
        which = which_family(post, family, as_json)
        limited_optimal(post, budgets[0] if budgets else None, u, t, target_loss, level,
                        interval, family, which, as_json)
        return
    if sum(x is not None for x in (budgets, n, d)) != 1:
        raise typer.BadParameter("give --compute (one or more), or --params, or --tokens")
    post = Posterior.load(fit_file)
    which = which_family(post, family, as_json)
    frame = post.optimal(budgets, params=n, tokens=d, level=level, interval_kind=interval,
                         random_seed=random_seed, discrepancy=discrepancy, family=family)
    exponents = post.exponents(level, interval, family=family)
    warnings = far_targets(post, *(frame[k] if k in frame else frame[f"{k}_median"]
                                   for k in ("params", "tokens", "compute")),
                           discrepancy=discrepancy, family=family)
    budgets_out = []
    for i in range(len(frame)):
        entry = {}
        if "compute" in frame and "compute_median" not in frame:
            entry["compute"] = float(frame["compute"].iloc[i])
        else:
            entry["compute"] = triple(frame, i, "compute")
        for key in ("params", "tokens"):
            entry[key] = (float(frame[key].iloc[i]) if key in frame
                          else triple(frame, i, key))
        entry["tokens_per_param"] = triple(frame, i, "tokens_per_param")
        entry["loss"] = triple(frame, i, "loss")
        entry["mean_loss"] = triple(frame, i, "mean_loss")
        budgets_out.append(entry)
    if as_json:
        emit_json({
            "level": level, "interval": interval, "warnings": warnings, **which,
            "exponents": {k: {s: float(exponents.loc[k, s]) for s in ("median", "lower", "upper")}
                          for k in ("a", "b")},
            "budgets": budgets_out,
        })
        return

    def show(value, formatter) -> str:
        if isinstance(value, float):
            return formatter(value)
        return fmt.interval(**value, fmt=formatter)

    table = Table(title=f"Compute-optimal allocation ({fmt.percent(level)} {interval.upper()})")
    for column in ("C", "N*", "D*", "D*/N*", "new run's loss", "law's expected loss"):
        table.add_column(column, justify="right")
    for entry in budgets_out:
        table.add_row(show(entry["compute"], fmt.flop), show(entry["params"], fmt.size),
                      show(entry["tokens"], fmt.size), show(entry["tokens_per_param"], fmt.number),
                      show(entry["loss"], fmt.number), show(entry["mean_loss"], fmt.number))
    err.print(table)
    a, b = exponents.loc["a"], exponents.loc["b"]
    err.print(f"N* ~ C^a with a = {fmt.interval(a['median'], a['lower'], a['upper'])}; "
              f"D* ~ C^b with b = {fmt.interval(b['median'], b['lower'], b['upper'])}")
    say_warnings(warnings)

