"""The Typer application every command registers on."""

from __future__ import annotations

import typer

from bayescale.cli.usage import OneLineErrors

app = typer.Typer(
    name="bayescale",
    cls=OneLineErrors,  # usage errors: one line on stderr, exit 2
    help=(
        "Bayesian scaling laws for LLM pre-training: fit L(N, D) to a table of runs, then get "
        "credible intervals for the loss of a planned run and for the compute-optimal "
        "allocation, seed noise included."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
