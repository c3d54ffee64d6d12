"""Command-line usage errors as one plain line on stderr (exit 2), instead of Rich's boxed panel."""

from __future__ import annotations

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


class OneLineErrors(TyperGroup):
    """The app's command group: usage errors print one line and exit 2; help is unchanged."""

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
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError:
            sys.exit(2)  # Rich already printed the help while raising
        except click_errors.ClickException as exc:
            print(usage_line(exc), file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
