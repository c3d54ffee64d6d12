"""The ``bayescale`` command line: a thin layer that parses options, calls the package, prints."""

from __future__ import annotations

import atexit
import os
import sys

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
    """Console-script entry point (``bayescale`` on the command line).

    Once the command is done, its exit handlers run and its output is flushed, the process
    ends without the interpreter's teardown of every module PyMC, PyTensor and numba loaded,
    which adds a noticeable share to a short command's wall time and does nothing a finished
    command needs (``benchmarks/fit_speed.py`` times the whole process).
    """
    try:
        app()
        code = 0
    except SystemExit as done:
        if isinstance(done.code, str):  # sys.exit("message"): the message, then exit 1
            print(done.code, file=sys.stderr)
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    atexit._run_exitfuncs()  # what the interpreter would run on exit (temporary files, logs)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
