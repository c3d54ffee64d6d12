"""Write a benchmark's results to ``docs/benchmarks/<script>.md``.

The docs quote benchmark figures only from these files, so each file says how its figures were
made: the date, the exact command, the commit, the machine (cores and load, a busy machine makes
timings slow) and the versions of the libraries that did the work. Scripts in this folder import
it as ``from results import ...``: Python puts the script's folder on ``sys.path``.

Usage in a script::

    parser = argparse.ArgumentParser(...)
    add_output_options(parser, __file__)
    args = parser.parse_args()
    record = Record.start(__file__, __doc__)   # before the work: command, commit, load
    ...
    if not args.no_md:
        record.write(args.out_md, "Title", tables={"caption": frame}, notes=["..."])
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks"
PACKAGES = ("bayescale", "pymc", "pytensor", "nutpie", "numpy", "pandas", "arviz-base",
            "arviz-stats")

#: A cell that reads as a number (pre-formatted figures right-align like numbers).
NUMBER = re.compile(r"^([-+]?[\d.]+(e[-+]?\d+)?%?|-|)$")
Table = pd.DataFrame | Sequence[Mapping[str, Any]]


def add_output_options(parser: argparse.ArgumentParser, script: str) -> None:
    """``--out-md`` (default ``docs/benchmarks/<script stem>.md``) and ``--no-md``."""
    default = DOCS / f"{Path(script).stem}.md"
    parser.add_argument("--out-md", type=Path, default=default,
                        help=f"results file to write (default {_rel(default)})")
    parser.add_argument("--no-md", action="store_true",
                        help="write no results file (quick trial runs)")


def _rel(path: Path | str) -> str:
    """``path`` relative to the repository root when it is inside it."""
    path = Path(os.path.abspath(path))  # normalise "..", keep the venv's python symlink
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def commit() -> str:
    """Short hash of HEAD, with a note when tracked files outside docs/benchmarks/ differ."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                 ":(exclude)docs/benchmarks")
    return f"{head} + uncommitted changes" if dirty else head


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A markdown table; numeric columns right-aligned, floats to 4 significant digits."""
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    numeric = [pd.api.types.is_numeric_dtype(frame[c])
               or all(NUMBER.match(_cell(v)) for v in frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(_cell(c) for c in frame.columns) + " |",
             "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _about(doc: str | None) -> str:
    """The docstring's first paragraph, its reST roles turned into markdown code."""
    first = (doc or "").strip().split("\n\n")[0]
    first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first).replace("``", "`")
    return " ".join(first.split())


@dataclass
class Record:
    """What is known at the start of a run: command, commit, date, load; written at the end."""

    script: str
    about: str
    command: str
    commit: str
    started: dt.datetime
    load_start: float
    clock: float

    @classmethod
    def start(cls, script: str, doc: str | None = None) -> Record:
        python = _rel(sys.executable)
        argv = [_rel(Path(sys.argv[0])), *sys.argv[1:]]
        return cls(script=Path(script).stem, about=_about(doc),
                   command=shlex.join([python, *argv]), commit=commit(),
                   started=dt.datetime.now(dt.UTC), load_start=os.getloadavg()[0],
                   clock=time.perf_counter())

    def write(self, path: Path, title: str, tables: Mapping[str, Table] | None = None,
              notes: Sequence[str] = ()) -> Path:
        """Write the results file atomically (temp file + rename) and return its path."""
        seconds = time.perf_counter() - self.clock
        versions = ", ".join(f"{package} {_version(package)}" for package in PACKAGES)
        lines = [
            f"# {title}", "",
            f"Written by `benchmarks/{self.script}.py`; do not edit by hand, rerun the command.",
            "", *([self.about, ""] if self.about else []),
            f"- Date: {self.started:%Y-%m-%d %H:%M} UTC (wall time {seconds:.0f} s)",
            f"- Command (from the repository root): `{self.command}`",
            f"- Commit: {self.commit}",
            f"- Machine: {os.cpu_count()} cores, {platform.platform()}; 1-minute load average "
            f"{self.load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end",
            f"- Versions: python {platform.python_version()}, {versions}",
        ]
        for caption, table in (tables or {}).items():
            lines += ["", f"## {caption}", "", markdown_table(table)]
        if notes:
            lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False,
                                         encoding="utf-8") as tmp:
            tmp.write("\n".join(lines) + "\n")
        try:
            os.replace(tmp.name, path)
        except OSError:
            os.unlink(tmp.name)
            raise
        print(f"results written to {_rel(path)}", file=sys.stderr)
        return path
