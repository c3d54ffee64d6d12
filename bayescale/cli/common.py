"""Shared pieces of the command line: one output sink, one error path, option parsing."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import STOP, WRITTEN
from bayescale.data.runs import MAX_PLAUSIBLE_SIZE, parse_size

#: Width of the tables when stderr is a file or a pipe (a log) and COLUMNS is not set: no
#: terminal limits it there, and Rich's default of 80 columns cut names and numbers with "…".
LOG_WIDTH = 200

#: Messages, tables and warnings go to stderr; stdout carries only machine output (JSON).
err = Console(stderr=True, soft_wrap=True, markup=False,  # paths and names may hold "[...]"
              width=None if sys.stderr.isatty() or "COLUMNS" in os.environ else LOG_WIDTH)

def _terminate(signum: int, frame: Any) -> None:
    """Ctrl-C or SIGTERM: remember the request (:data:`bayescale.core.fileio.STOP`), then
    interrupt. Python drops the exception when the signal lands in a weakref callback; the
    flag still keeps every output file out and ends the command with exit 130."""
    STOP.set()
    raise KeyboardInterrupt


def fail(line: str, code: int, as_json: bool) -> typer.Exit:
    """Print an error's human line on stderr and, with ``--json``, one JSON object on stdout
    (``{"error": ..., "exit_code": ...}``); returns the exit to raise.

    Examples
    --------
    >>> fail("error: runs.csv: no such file", 1, True).exit_code
    {"error": "runs.csv: no such file", "exit_code": 1}
    1
    """
    print(line, file=sys.stderr)
    if as_json:
        message = line.removeprefix("error: ")
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
        sys.stdout.flush()
    return typer.Exit(code)


def interrupted_line(written: list[Any]) -> str:
    """What an interruption leaves: no file, or the files completed before it.

    Examples
    --------
    >>> interrupted_line([])
    'interrupted: no output file was written'
    >>> interrupted_line(["runs.posterior.nc"])
    'interrupted: runs.posterior.nc was written completely before the interruption'
    """
    if not written:
        return "interrupted: no output file was written"
    files = [str(path) for path in dict.fromkeys(written)]
    if len(files) == 1:
        return f"interrupted: {files[0]} was written completely before the interruption"
    shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
    return (f"interrupted: {len(files)} files ({shown}) were written completely before the "
            "interruption")


def user_errors[F: Callable[..., Any]](func: F) -> F:
    """Turn user mistakes into one line on stderr and exit 1; Ctrl-C or SIGTERM exits 130.

    Output files are written atomically, so an interruption leaves nothing half-written; one
    that comes after a file was renamed into place says so. With ``--json``, every error also
    prints one JSON object on stdout (:func:`fail`). Applied under ``@app.command()`` to every
    command.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        STOP.clear()
        previous = {signum: signal.signal(signum, _terminate)
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        as_json = bool(kwargs.get("as_json", False))
        before = len(WRITTEN)
        try:
            result = func(*args, **kwargs)
            if STOP.is_set():  # the interrupt was dropped; the request stands
                raise KeyboardInterrupt
            return result
        except BayescaleError as exc:
            raise fail(f"error: {exc.one_line()}", 1, as_json) from None
        except KeyboardInterrupt:
            raise fail(interrupted_line(WRITTEN[before:]), 130, as_json) from None
        except OSError as exc:  # disk full, permissions: the system's reason, in one line
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"error: {where}{exc.strerror or exc}", 1, as_json) from None
        finally:  # the flag and the handlers live as long as the command, no longer
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            STOP.clear()

    return wrapper  # type: ignore[return-value]


def say_warnings(messages: list[str]) -> None:
    """Each distinct warning once, one line on stderr (``warning: ...``)."""
    for message in dict.fromkeys(messages):
        err.print(f"warning: {message}", markup=False, highlight=False)


def emit_json(obj: Any) -> None:
    """Exactly one JSON object on stdout; its ``warnings`` also on stderr, one line each, as
    without ``--json`` (docs/cli.md, Warnings): a log read by a person shows them too.

    Examples
    --------
    >>> emit_json({"verdict": "GO", "loss": 2.18})
    {"verdict": "GO", "loss": 2.18}
    """
    sys.stdout.write(json.dumps(_finite(obj), allow_nan=False) + "\n")
    sys.stdout.flush()
    if isinstance(obj, dict) and isinstance(obj.get("warnings"), list):
        say_warnings([str(w) for w in obj["warnings"]])


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as null (JSON has no NaN), containers walked.

    Examples
    --------
    >>> _finite({"r_hat": float("nan"), "x": [1.0, float("inf")]})
    {'r_hat': None, 'x': [1.0, None]}
    """
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


#: Options that count parameters or tokens: above MAX_PLAUSIBLE_SIZE they are a unit slip.
COUNTS = ("--params", "--tokens", "--unique-tokens")


def parse_sizes(values: list[str] | None, name: str) -> list[float] | None:
    """Parse ``70B``-style sizes from options; bad values are usage errors (exit 2).

    Examples
    --------
    >>> parse_sizes(["70B", "1.4T"], "--params")
    [70000000000.0, 1400000000000.0]
    """
    if values is None:
        return None
    out = []
    for raw in values:
        try:
            value = parse_size(raw)
        except ValueError:
            raise typer.BadParameter(f"{raw!r} is not a number or a size like 70B",
                                     param_hint=name) from None
        if not (value > 0 and value < float("inf")):
            raise typer.BadParameter(f"{raw!r} must be positive and finite", param_hint=name)
        if name in COUNTS and value > MAX_PLAUSIBLE_SIZE:  # as in a runs table
            raise typer.BadParameter(
                f"{raw!r} is {value:g}, implausibly large for a count (above "
                f"{MAX_PLAUSIBLE_SIZE:g}): a unit written twice, as in 7e9B? Write 7e9 or 7B",
                param_hint=name)
        out.append(value)
    return out


def parse_one_size(value: str | None, name: str) -> float | None:
    """One size from an option (see :func:`parse_sizes`).

    Examples
    --------
    >>> parse_one_size("125M", "--params")
    125000000.0
    """
    parsed = parse_sizes([value] if value is not None else None, name)
    return None if parsed is None else parsed[0]


def check_level(value: float) -> float:
    """Typer callback: a credible level strictly between 0 and 1.

    Examples
    --------
    >>> check_level(0.9)
    0.9
    """
    if not 0.0 < value < 1.0:
        raise typer.BadParameter(f"must lie strictly between 0 and 1, got {value}")
    return value


def triple(frame: Any, row: int, prefix: str) -> dict[str, float]:
    """``{"median", "lower", "upper"}`` of columns ``prefix_*`` in one row of a frame.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"loss_median": [2.18], "loss_lower": [2.14], "loss_upper": [2.23]})
    >>> triple(frame, 0, "loss")
    {'median': 2.18, 'lower': 2.14, 'upper': 2.23}
    """
    return {k: float(frame[f"{prefix}_{k}"].iloc[row]) for k in ("median", "lower", "upper")}


LevelOption = typer.Option(0.9, "--level", callback=check_level,
                           help="Probability mass of the credible intervals, in (0, 1).")
JsonOption = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")


# Options naming the columns of a table of runs (fit, backtest).
RunsArgument = typer.Argument(..., metavar="RUNS",
                              help="Table of runs: .csv, .tsv, .parquet, .json or .jsonl.")
ParamsColOption = typer.Option("params", help="Column with parameters N (70B, 6.7e9 ...).")
TokensColOption = typer.Option(None, help="Column with training tokens D.",
                               show_default="tokens, unless --flops-col is given")
LossColOption = typer.Option("loss", help="Column with the loss (nats).")
FlopsColOption = typer.Option(None, help="Column with compute C: D = C / (6 N).")
RunColOption = typer.Option(None, help="Run label: rows of one run are checkpoints.")
SeedColOption = typer.Option(None, help="Seed label (repeated seeds).")


def check_law_options(law: str, unique_tokens_col: str | None,
                      family_col: str | None = None) -> None:
    """The law's own option rules, as usage errors (exit 2) before any file is read: a known
    law, the column of each covariate it needs (``--unique-tokens-col`` for a law of repeated
    data) and, where a family model is asked for (``family_col``, fit), a law that has one."""
    from bayescale.law.laws import LAWS

    if law not in LAWS:
        raise typer.BadParameter(f"use one of {', '.join(LAWS)}", param_hint="--law")
    covariates = LAWS[law].covariates
    if "unique_tokens" in covariates and unique_tokens_col is None:
        raise typer.BadParameter(f"the {law} law needs each run's unique tokens: name their "
                                 "column", param_hint="--unique-tokens-col")
    if covariates and family_col is not None:
        raise typer.BadParameter(f"the {law} law has no family model yet: fit each family "
                                 "alone", param_hint="--family-col")


FamilyOption = typer.Option(
    None, "--family", help="Model family of a family fit (--family-col); a family the fit has "
    "not seen, or none, gets a new family's population predictive.")


def which_family(post: Any, family: str | None, quiet: bool) -> dict[str, Any]:
    """JSON fields naming the family answered for (``{"family": ..., "family_seen": ...}``,
    empty for a fit without families); says so on stderr for a new family."""
    if not post.families:
        if family is not None:
            raise typer.BadParameter(f"{family}: this fit has no model families (fitted "
                                     "without --family-col)", param_hint="--family")
        return {}
    seen = family in post.families
    if not seen and not quiet:
        err.print(f"family {family or '(none given)'} is not in the fit "
                  f"({', '.join(post.families)}): answering for a new family drawn from the "
                  "population of families", markup=False)
    return {"family": family, "family_seen": seen}
