"""Command-line usage errors as one plain line on stderr (exit 2), instead of Rich's boxed panel."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click import exceptions as click_errors  # Typer ships its own copy of Click
from typer.core import TyperGroup


def usage_line(exc: Any) -> str:
    """One line for a Click error: ``error: bayescale fit: <what> (see 'bayescale fit --help')``.

    Examples
    --------
    >>> usage_line(click_errors.UsageError("Missing argument 'RUNS'."))
    "error: Missing argument 'RUNS'."
    """
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return f"error: {text}"
    return f"error: {ctx.command_path}: {text} (see '{ctx.command_path} --help')"


def _error(line: str, code: int, as_json: bool) -> None:
    """The line on stderr, with ``--json`` one JSON object on stdout too, and exit ``code``."""
    print(line, file=sys.stderr)
    if as_json:
        message = line.removeprefix("error: ")
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
        sys.stdout.flush()
    sys.exit(code)


def repeated_option(command: Any, args: Sequence[str]) -> tuple[str, int] | None:
    """The first option of ``command`` that takes one value (or is a flag) yet appears more
    than once in ``args``, and how often: Click would silently keep the last one.

    Examples
    --------
    >>> from types import SimpleNamespace as Param
    >>> one = Param(param_type_name="option", opts=["--params", "-N"], secondary_opts=[],
    ...             multiple=False, count=False)
    >>> many = Param(param_type_name="option", opts=["--compute"], secondary_opts=[],
    ...              multiple=True, count=False)
    >>> cmd = Param(params=[one, many])
    >>> repeated_option(cmd, ["-N", "7B", "--params=8B"])
    ('--params', 2)
    >>> repeated_option(cmd, ["--compute", "1", "--compute", "2"]) is None
    True
    """
    given = list(args[:args.index("--")] if "--" in args else args)
    for param in command.params:  # Typer's own Click: its classes, so by their attributes
        if (getattr(param, "param_type_name", "") != "option"
                or getattr(param, "multiple", False) or getattr(param, "count", False)):
            continue
        names = {*param.opts, *param.secondary_opts}
        times = sum(arg.split("=", 1)[0] in names for arg in given)
        if times > 1:
            return max(param.opts, key=len), times
    return None


class OneLineErrors(TyperGroup):
    """The app's command group: usage errors print one line and exit 2; help is unchanged."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """The subcommand, refused when it is given an option of one value more than once."""
        name, command, rest = super().resolve_command(ctx, args)
        repeated = None if command is None else repeated_option(command, rest)
        if repeated:
            path = f"{ctx.command_path} {name}"
            raise click_errors.UsageError(
                f"{path}: {repeated[0]} given {repeated[1]} times; give it once "
                f"(see '{path} --help')")
        return name, command, rest

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the app; in standalone mode, Click errors become one line and an exit code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        as_json = "--json" in (sys.argv[1:] if args is None else list(args))
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError:
            sys.exit(2)  # Rich already printed the help while raising
        except click_errors.ClickException as exc:
            _error(usage_line(exc), exc.exit_code, as_json)
        except typer.Abort:
            _error("error: aborted", 1, as_json)
        sys.exit(code if isinstance(code, int) else 0)
