"""The ``bayescale`` command line: a thin layer that parses options, calls the package, prints."""

from __future__ import annotations

from bayescale.cli import (  # each command registers on `app`
    backtest_cmd,
    cache_cmd,
    compare_cmd,
    design_cmd,
    fit_cmd,
    fit_many_cmd,
    import_cmd,
    info_cmd,
    predict_cmd,
    report_cmd,
    risk_cmd,
)
from bayescale.cli.app import app

__all__ = ["app", "backtest_cmd", "cache_cmd", "compare_cmd", "design_cmd", "fit_cmd",
           "fit_many_cmd", "import_cmd", "info_cmd", "main", "predict_cmd", "report_cmd",
           "risk_cmd"]


def main() -> None:
    """Console-script entry point (``bayescale`` on the command line)."""
    app()
