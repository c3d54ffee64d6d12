"""``bayescale report`` and ``bayescale plot``: figures and a self-contained HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from bayescale.cli.app import app
from bayescale.cli.common import (
    FamilyOption,
    LevelOption,
    err,
    parse_sizes,
    user_errors,
    which_family,
)

FitArgument = typer.Argument(..., metavar="FIT", help="Posterior file written by `bayescale fit`.")
TargetOption = typer.Option(
    None, "--target", "-t", metavar="N:D",
    help="Planned run as N:D, e.g. 70B:1.4T (repeatable); drawn on the law figures.")
FORMATS = (".png", ".pdf", ".svg")


def parse_targets(values: list[str] | None) -> list[tuple[float, float]]:
    """``["70B:1.4T"]`` -> ``[(7e10, 1.4e12)]``; a malformed value is a usage error.

    Examples
    --------
    >>> parse_targets(["70B:1.4T", "7e9,1.4e11"])
    [(70000000000.0, 1400000000000.0), (7000000000.0, 140000000000.0)]
    """
    out = []
    for raw in values or []:
        parts = [p for p in re.split(r"[:,\s]+", raw.strip()) if p]
        if len(parts) != 2:
            raise typer.BadParameter(f"{raw!r} is not N:D (e.g. 70B:1.4T)", param_hint="--target")
        n, d = parse_sizes(parts, "--target") or []
        out.append((n, d))
    return out


def _headless() -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window


@app.command(short_help="Write an HTML report with every figure, and the figures as PNG.")
@user_errors
def report(
    fit_file: Path = FitArgument,
    out: Path = typer.Option(..., "--out", "-o", help="Directory for report.html and the PNGs."),
    target: list[str] | None = TargetOption,
    level: float = LevelOption,
    dpi: int = typer.Option(100, min=30, max=600, help="Resolution of the PNG files."),
    random_seed: int = typer.Option(0, min=0, help="Seed of the noise draws in the bands."),
    family: str | None = FamilyOption,
) -> None:
    """Write a self-contained HTML report (figures embedded) and every figure as a PNG file:
    posterior over prior, trace, rank and pair plots, diagnostics and summary tables, loss
    against compute, isoFLOP curves, the compute-optimal frontier and a posterior predictive
    check, with the planned runs (--target) marked."""
    from bayescale.core.fileio import check_writable
    from bayescale.posterior.posterior import Posterior

    targets = parse_targets(target)
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} exists and is not a directory", param_hint="--out")
    check_writable(out, folder=True)
    post = Posterior.load(fit_file)
    which_family(post, family, quiet=False)
    _headless()
    from bayescale.report.html import write_report

    written = write_report(post, out, targets, level=level, random_seed=random_seed, dpi=dpi,
                           family=family)
    err.print(f"report written to {written.html} ({len(written.figures)} figures beside it)")
    for kind, reason in written.left_out.items():
        err.print(f"note: {kind} figure left out: {reason}")


@app.command()
@user_errors
def plot(
    fit_file: Path = FitArgument,
    kind: str = typer.Argument(..., metavar="KIND",
                               help="priors, trace, rank, pair, loss-compute, isoflop, "
                               "frontier, ppc or design."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .png, .pdf or .svg."),
    target: list[str] | None = TargetOption,
    level: float = LevelOption,
    dpi: int = typer.Option(100, min=30, max=600, help="Resolution of a PNG file."),
    random_seed: int = typer.Option(0, min=0, help="Seed of the noise draws in the bands."),
    family: str | None = FamilyOption,
    unique_tokens: str | None = typer.Option(
        None, "--unique-tokens", help="frontier: also the best runs with this many unique "
        "tokens (a law with a data-limit term)."),
    inference_tokens: str | None = typer.Option(
        None, "--inference-tokens", help="frontier: also the runs reaching the same loss at "
        "the least 6ND + 2NT for this many tokens served."),
    budget: str | None = typer.Option(
        None, "--budget", "-b", metavar="C", help="design: compute for the new runs (FLOP), "
        "as design --budget; default a tenth of the target's."),
) -> None:
    """Draw one figure of a posterior to a file."""
    from bayescale.core.fileio import atomic_path, check_writable
    from bayescale.posterior.posterior import Posterior
    from bayescale.report.plots import FIGURES, WITH_TARGETS

    if kind not in FIGURES:
        raise typer.BadParameter(f"use one of {', '.join(FIGURES)}", param_hint="KIND")
    if out.suffix.lower() not in FORMATS:
        raise typer.BadParameter(f"use a file name ending in {', '.join(FORMATS)}",
                                 param_hint="--out")
    targets = parse_targets(target)
    if kind == "design" and not targets:  # the figure answers for one planned run: no default
        raise typer.BadParameter("the design figure needs the planned run: --target N:D",
                                 param_hint="--target")
    if targets and kind not in WITH_TARGETS:
        raise typer.BadParameter(f"only {', '.join(WITH_TARGETS)} draw targets",
                                 param_hint="--target")
    if family is not None and kind not in WITH_TARGETS:
        raise typer.BadParameter(f"only {', '.join(WITH_TARGETS)} draw one family's law",
                                 param_hint="--family")
    limits = {}
    if unique_tokens is not None or inference_tokens is not None:
        from bayescale.cli.common import parse_one_size
        from bayescale.cli.limits_view import parse_inference_tokens

        if kind != "frontier":
            raise typer.BadParameter("only the frontier draws constrained optima",
                                     param_hint="--unique-tokens/--inference-tokens")
        limits = {"unique_tokens": parse_one_size(unique_tokens, "--unique-tokens"),
                  "inference_tokens": parse_inference_tokens(inference_tokens)}
    if budget is not None:
        from bayescale.cli.common import parse_one_size

        if kind != "design":
            raise typer.BadParameter("only the design figure takes a budget",
                                     param_hint="--budget")
        limits = {"budget": parse_one_size(budget, "--budget")}
    check_writable(out)
    post = Posterior.load(fit_file)
    if limits.get("unique_tokens") is not None:
        post.covariates_for(limits["unique_tokens"], 1)  # one error line for a law without U
    _headless()
    kwargs: dict = {}
    if kind in WITH_TARGETS:
        which_family(post, family, quiet=False)
        kwargs = {"targets": targets, "level": level, "random_seed": random_seed,
                  "family": family, **limits}
    elif kind == "ppc":
        kwargs = {"level": level, "random_seed": random_seed}
    fig = FIGURES[kind](post, **kwargs)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lower().lstrip("."), dpi=dpi)
    err.print(f"{kind} figure written to {out}")
