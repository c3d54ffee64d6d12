"""The ``bayescale`` command line: a thin layer that parses options, calls the package, prints."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="bayescale",
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

from bayescale.cli import fit_cmd, predict_cmd  # noqa: E402  (commands register on `app`)

__all__ = ["app", "fit_cmd", "main", "predict_cmd"]


def main() -> None:
    """Console-script entry point."""
    app()
