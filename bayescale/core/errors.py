"""User-facing errors: one exception type, turned into one line at the CLI edge."""

from __future__ import annotations


class BayescaleError(Exception):
    """A mistake in the user's input or options, reported without a traceback.

    Parameters
    ----------
    message : str
        What is wrong and, where useful, what to do.
    path : str, optional
        The file the problem is in.
    row : int, optional
        The row as the user finds it: the line number for CSV and JSONL (a CSV header is
        line 1), the 1-based row for Parquet.
    column : str, optional
        The column the problem is in.

    Examples
    --------
    >>> str(BayescaleError("not a number: 'abc'", path="runs.csv", row=3, column="loss"))
    "runs.csv, row 3, column 'loss': not a number: 'abc'"
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.row = row
        self.column = column
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message prefixed by where the problem is.

        Examples
        --------
        >>> BayescaleError("no such file", path="runs.csv").one_line()
        'runs.csv: no such file'
        """
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = " ".join(self.message.split())  # always one line
        return f"{', '.join(where)}: {text}" if where else text


class DiagnosticsFailed(Exception):
    """Sampling finished but a convergence check failed (exit code 3)."""
