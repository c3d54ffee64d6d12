"""``bayescale risk``: review the risk of one planned run before spending its compute."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from bayescale.cli.app import app
from bayescale.cli.common import (
    FamilyOption,
    JsonOption,
    LevelOption,
    emit_json,
    err,
    parse_one_size,
    say_warnings,
    user_errors,
    which_family,
)
from bayescale.cli.limits_view import (
    limits_markdown,
    parse_inference_tokens,
    print_limits,
)
from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.data.ranges import FAR_COMPUTE, FAR_EPOCHS, FAR_PARAMS, FAR_TOKENS

if TYPE_CHECKING:
    from bayescale.posterior.risk import RiskReview

FORMATS = ("text", "markdown")
KEYS = ("median", "lower", "upper")


@app.command(short_help="Risk review of a planned run: GO / CAUTION / NO-GO, and why.")
@user_errors
def risk(
    fit_file: Path = typer.Argument(..., metavar="FIT",
                                    help="Posterior file written by `bayescale fit`."),
    params: str = typer.Option(..., "--params", "-N", help="Parameters N of the plan (70B)."),
    tokens: str = typer.Option(..., "--tokens", "-D", help="Training tokens D of the plan (1.4T)."),
    target_loss: float | None = typer.Option(
        None, "--target-loss", help="Loss the run must reach (nats); with --inference-tokens "
        "also the inference-aware run's target."),
    level: float = LevelOption,
    interval: str = typer.Option("eti", "--interval",
                                 help="eti (equal-tailed) or hdi (highest density)."),
    random_seed: int = typer.Option(0, min=0, help="Seed of the new-run noise draws "
                                    "(the same seed as predict gives the same interval)."),
    output_format: str = typer.Option("text", "--format",
                                      help="text (a table on stderr) or markdown (on stdout, "
                                      "ready to paste into a review document)."),
    go_probability: float = typer.Option(0.8, help="CAUTION below this P(loss < target)."),
    nogo_probability: float = typer.Option(0.2, help="NO-GO below this P(loss < target)."),
    caution_regret: float = typer.Option(0.01, help="CAUTION above this median regret (nats)."),
    nogo_regret: float = typer.Option(0.05, help="NO-GO above this median regret (nats)."),
    max_compute_ratio: float = typer.Option(
        FAR_COMPUTE,
        help="CAUTION when the plan's compute exceeds the largest fitted run's by more."),
    max_params_ratio: float = typer.Option(
        FAR_PARAMS, help="CAUTION when the plan's N exceeds the largest fitted N by more."),
    max_tokens_ratio: float = typer.Option(
        FAR_TOKENS, help="CAUTION when the plan's D lies outside the fitted D range (above the "
        "largest or below the smallest) by more."),
    max_epochs_ratio: float | None = typer.Option(
        None, show_default=f"{FAR_EPOCHS:g}", help="With --unique-tokens: CAUTION when the plan "
        "repeats its data more than this multiple of the fitted runs' most epochs."),
    family: str | None = FamilyOption,
    unique_tokens: str | None = typer.Option(
        None, "--unique-tokens", help="Unique tokens U of the plan's data (a law with a "
        "data-limit term): the plan is reviewed at its D/U epochs, against the best run of its "
        "compute under the same limit."),
    inference_tokens: str | None = typer.Option(
        None, "--inference-tokens", help="Tokens T the model will serve: the run reaching "
        "--target-loss (else the plan's own loss) at the least 6ND + 2NT, and the share of the "
        "plan's it saves (Sardana et al. 2024)."),
    as_json: bool = JsonOption,
) -> None:
    """Risk review of a planned run: its predicted loss (seed noise included), the chance it
    reaches --target-loss, the compute-optimal alternative at the same compute and the loss the
    plan gives up (regret), how far it extrapolates beyond the fitted runs, what dominates the
    uncertainty, and a GO / CAUTION / NO-GO verdict."""
    from bayescale.posterior.posterior import Posterior
    from bayescale.posterior.risk import Thresholds

    if interval not in ("eti", "hdi"):
        raise typer.BadParameter("use eti or hdi", param_hint="--interval")
    if output_format not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    n = parse_one_size(params, "--params")
    d = parse_one_size(tokens, "--tokens")
    if target_loss is not None and not 0 < target_loss < float("inf"):
        raise typer.BadParameter("must be positive and finite", param_hint="--target-loss")
    if max_epochs_ratio is not None and unique_tokens is None:
        raise typer.BadParameter("it applies to a plan with --unique-tokens",
                                 param_hint="--max-epochs-ratio")
    try:
        thresholds = Thresholds(
            go_probability=go_probability, nogo_probability=nogo_probability,
            caution_regret=caution_regret, nogo_regret=nogo_regret,
            max_compute_ratio=max_compute_ratio, max_params_ratio=max_params_ratio,
            max_tokens_ratio=max_tokens_ratio,
            max_epochs_ratio=FAR_EPOCHS if max_epochs_ratio is None else max_epochs_ratio)
    except BayescaleError as exc:
        raise typer.BadParameter(exc.message) from None
    post = Posterior.load(fit_file)
    which = which_family(post, family, as_json)
    unique = parse_one_size(unique_tokens, "--unique-tokens")
    review = post.risk(n, d, target_loss, level=level, interval_kind=interval,
                       random_seed=random_seed, thresholds=thresholds, family=family,
                       unique_tokens=unique)
    limits = _limits(post, review, unique, parse_inference_tokens(inference_tokens), level,
                     interval, family)
    saves = None if "inference" not in limits else (
        "the inference-aware run saves "
        f"{fmt.interval(**limits['inference']['plan_flops_saved_share'], fmt=fmt.percent)} of "
        "the plan's lifetime FLOPs (6ND + 2NT) "
        + ("at the same loss" if target_loss is None else
           f"while reaching the target loss {fmt.number(target_loss)}, not the plan's own "
           f"expected loss {fmt.interval(**{k: review.mean_loss[k] for k in KEYS})}"))
    if as_json:
        emit_json({**review.as_dict(), **which, **limits})
    elif output_format == "markdown":  # one document on stdout, the limits' tables included
        sys.stdout.write(review.markdown(source=str(fit_file))
                         + limits_markdown(limits, level, interval)
                         + ("" if saves is None else f"- **Inference:** {saves}.\n"))
    else:
        _print_table(review)
        if limits:
            print_limits(limits, level, interval)
            if saves is not None:
                err.print(saves, markup=False)
            say_warnings(limits.get("warnings", []))


def _limits(post, review: RiskReview, unique_tokens: float | None,
            inference_tokens: float | None, level: float, interval: str,
            family: str | None) -> dict:
    """The plan under a data limit (its epochs and loss, from the review, and the best
    allocation at its compute) and under an inference load (the run reaching --target-loss,
    else the plan's own expected loss, at the least lifetime FLOPs 6ND + 2NT, and the share of
    the plan's it saves): docs/limits.md."""
    import numpy as np

    from bayescale.posterior.limits import data_limited, inference_aware, repetition_warning

    n, d, target_loss = review.params, review.tokens, review.target_loss
    out: dict = {}
    warnings: list[str] = []
    budget = review.compute
    if unique_tokens is not None:
        block = data_limited(post, budget, unique_tokens, level=level, interval_kind=interval,
                             family=family)
        block["plan"] = {"epochs": d / unique_tokens,  # the review is at U: its losses
                         "loss": {k: review.loss[k] for k in KEYS},
                         "mean_loss": {k: review.mean_loss[k] for k in KEYS}}
        warnings += block.pop("warnings")
        plan_warning = repetition_warning(d / unique_tokens, block["fitted_max_epochs"])
        warnings += [plan_warning] if plan_warning else []
        out["data_limit"] = block
    if inference_tokens is not None:
        plan_total = float(budget + 2.0 * n * inference_tokens)
        if target_loss is None:  # by default the plan's own loss, per draw
            draws = post.draws(family=family)
            covariates = post.covariates_for(unique_tokens, 1)
            plan_log = (post.law.log_loss(draws, [n], [d], covariates) if covariates
                        else post.law.log_loss(draws, [n], [d]))
            target = np.exp(plan_log[:, 0])
        else:
            target = target_loss
        block = inference_aware(post, inference_tokens, compute=budget, target_loss=target,
                                unique_tokens=unique_tokens, level=level,
                                interval_kind=interval, family=family, plan_total=plan_total)
        warnings += block.pop("warnings")
        out["inference"] = block
    if out:
        out["warnings"] = warnings
    return out



def _print_table(review: RiskReview) -> None:

    pct = f"{fmt.percent(review.level)} {review.interval.upper()}"
    table = Table(title=f"Risk review: N = {fmt.size(review.params)}, D = "
                        f"{fmt.size(review.tokens)}, C = {fmt.flop(review.compute)}")
    for column in ("quantity", f"median [{pct}]"):
        table.add_column(column, justify="right")
    opt = review.optimal
    rows = [
        ("new run's loss", fmt.interval(**review.loss)),
        ("law's expected loss", fmt.interval(**review.mean_loss)),
    ]
    if review.prob_below_target is not None:
        rows.append((f"P(loss < {fmt.number(review.target_loss)})",
                     f"{review.prob_below_target:.3f}"))
    limited = "" if review.unique_tokens is None else ", U limit"
    if review.unique_tokens is not None:
        rows.append(("epochs (D / U)", f"{review.tokens / review.unique_tokens:.3g}"))
    rows += [
        (f"optimal N* at this compute{limited}", fmt.interval(**opt["params"], fmt=fmt.size)),
        (f"optimal D* at this compute{limited}", fmt.interval(**opt["tokens"], fmt=fmt.size)),
        ("optimum's new-run loss", fmt.interval(**opt["loss"])),
        ("regret (nats given up)", fmt.interval(*(review.regret[k] for k in KEYS))),
    ]
    if review.compute_share is not None:
        rows.append(("compute the optimum needs",
                     fmt.interval(**review.compute_share, fmt=fmt.percent)))
    rows += [
        ("P(optimum's run is better)", f"{review.prob_optimal_better:.3f}"),
        ("compute / largest fitted", f"{review.extrapolation['compute_ratio']:.3g}x"),
        ("N / largest fitted", f"{review.extrapolation['params_ratio']:.3g}x"),
        ("D / largest fitted", f"{review.extrapolation['tokens_ratio']:.3g}x"),
        ("noise-floor share", f"{review.uncertainty['seed_floor_share']:.0%}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    err.print(table)
    if review.extrapolation["warning"]:
        err.print(f"warning: {review.extrapolation['warning']}", markup=False)
    for doubt in review.fit_doubts:
        err.print(f"warning: {doubt}", markup=False)
    err.print(f"uncertainty: {review.uncertainty['advice']}", markup=False)
    color = {"GO": "green", "CAUTION": "yellow", "NO-GO": "red"}[review.verdict]
    err.print(Text(f"{review.verdict}: ", style=f"bold {color}"), end="")
    err.print("; ".join(review.reasons), markup=False)
