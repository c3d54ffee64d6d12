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


def _observed() -> bool:
    """Whether a profiler, tracer or debugger watches this process (``sys.setprofile``,
    ``sys.settrace``, or a ``sys.monitoring`` tool such as cProfile's since Python 3.12)."""
    tools = (sys.monitoring.get_tool(i) for i in range(6))  # ids 0-5: debugger ... optimizer
    return (sys.getprofile() is not None or sys.gettrace() is not None
            or any(tool is not None for tool in tools))


def main() -> None:
    """Console-script entry point (``bayescale`` on the command line).

    Once the command is done, its exit handlers run and its output is flushed, the process
    ends without the interpreter's teardown of every module PyMC, PyTensor and numba loaded,
    which adds a noticeable share to a short command's wall time and does nothing a finished
    command needs (``benchmarks/fit_speed.py`` times the whole process). Under a profiler,
    tracer or debugger (``python -m cProfile``, coverage) the interpreter exits as usual, so
    that they can write their results.
    """
    if _observed():
        app()
        return
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
