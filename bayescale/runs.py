"""Load a table of training runs (CSV, Parquet, JSONL) into a validated run table."""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.errors import BayescaleError

#: Canonical column names of a run table.
PARAMS, TOKENS, LOSS, RUN, SEED, FAMILY = "params", "tokens", "loss", "run", "seed", "family"

#: A cross-entropy above this (in nats) is more than a uniform guess over a 3M-token vocabulary
#: (ln 3e6 = 14.9): the column is more likely a perplexity than a loss.
MAX_PLAUSIBLE_LOSS = 15.0
#: Smaller "sizes" are almost always a unit slip ("7" meant as "7B").
MIN_PLAUSIBLE_SIZE = 1000.0

_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_SIZE = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([KMBGT]?)\s*$", re.I)


@dataclass
class RunTable:
    """Validated runs: one row per run or per checkpoint.

    Attributes
    ----------
    data : pandas.DataFrame
        Columns ``params``, ``tokens``, ``loss`` (floats) and, when mapped, ``run``, ``seed``,
        ``family`` (strings); ``line`` holds each row's place in the source file.
    source : str
        The file the runs came from.
    sha256 : str
        Hash of the source file's bytes.
    """

    data: pd.DataFrame
    source: str = "<memory>"
    sha256: str = ""
    columns: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def run_ids(self) -> np.ndarray:
        """A run label per row: the run column, else one run per row."""
        if RUN in self.data:
            return self.data[RUN].to_numpy(dtype=str)
        return np.array([f"row{line}" for line in self.data["line"]], dtype=str)

    @property
    def n_runs(self) -> int:
        """Number of distinct runs."""
        return len(np.unique(self.run_ids))


def parse_size(value: object) -> float:
    """Parse a size such as ``70B``, ``1.4T``, ``125M``, ``6.7e9`` or a number.

    Examples
    --------
    >>> parse_size("1.4T"), parse_size("125M"), parse_size(6.7e9)
    (1400000000000.0, 125000000.0, 6700000000.0)
    """
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().replace("_", "")
    match = _SIZE.match(text)
    if match is None:
        lowered = text.lower()
        if lowered in {"nan", "inf", "+inf", "-inf", "infinity"}:
            return float(lowered.replace("infinity", "inf"))
        raise ValueError(f"not a number or size: {text!r}" if text else "empty value")
    return float(match.group(1)) * _SUFFIXES[match.group(2).upper()]


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_csv(path: Path) -> tuple[pd.DataFrame, int]:
    """Read a CSV/TSV as strings, sniffing the delimiter; returns the frame and header lines."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        sample = handle.read(64 * 1024)
    if not sample.strip():
        raise BayescaleError("the file is empty", path=str(path))
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True,
            encoding="utf-8-sig", encoding_errors="replace",
        )
    except pd.errors.ParserError as exc:
        raise BayescaleError(f"not a readable CSV table ({exc})", path=str(path)) from None
    except pd.errors.EmptyDataError:
        raise BayescaleError("the file is empty", path=str(path)) from None
    return frame, 1


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, int]:
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BayescaleError(
                    f"not valid JSON ({exc.msg})", path=str(path), row=number
                ) from None
            if not isinstance(record, dict):
                raise BayescaleError("each line must be a JSON object", path=str(path), row=number)
            record["__line__"] = number
            records.append(record)
    if not records:
        raise BayescaleError("the file is empty", path=str(path))
    return pd.DataFrame.from_records(records), 0


def _read_parquet(path: Path) -> tuple[pd.DataFrame, int]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for damaged files
        reason = " ".join(str(exc).split())[:160]
        raise BayescaleError(
            f"not a readable Parquet file (truncated or damaged?): {reason}", path=str(path)
        ) from None
    return frame.reset_index(drop=True), 0


_READERS = {
    ".csv": _read_csv, ".tsv": _read_csv, ".txt": _read_csv,
    ".parquet": _read_parquet, ".pq": _read_parquet,
    ".jsonl": _read_jsonl, ".ndjson": _read_jsonl,
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL file into a frame with a ``line`` column (row numbers)."""
    path = Path(path)
    if not path.exists():
        raise BayescaleError("no such file", path=str(path))
    if path.is_dir():
        raise BayescaleError("is a folder, not a table of runs", path=str(path))
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise BayescaleError(
            f"unknown file type '{path.suffix}': use .csv, .tsv, .parquet or .jsonl", path=str(path)
        )
    frame, header_lines = reader(path)
    if "__line__" in frame:
        frame = frame.rename(columns={"__line__": "line"})
    else:
        frame["line"] = np.arange(len(frame)) + 1 + header_lines
    if len(frame) == 0:
        raise BayescaleError("the table has a header but no rows", path=str(path))
    return frame


def _pick_column(frame: pd.DataFrame, name: str, option: str, path: str) -> str:
    if name in frame.columns:
        return name
    columns = [str(c) for c in frame.columns if c != "line"]
    close = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    if not close:
        lower = {c.lower(): c for c in columns}
        close = [lower[name.lower()]] if name.lower() in lower else []
    hint = f" Did you mean '{close[0]}'? ({option} '{close[0]}')" if close else ""
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t|"):
        hint += " The header looks like one column: is the delimiter right?"
    shown = ", ".join(repr(c) for c in columns[:12])
    raise BayescaleError(
        f"no column '{name}'.{hint} Columns are: {shown}", path=path, column=name
    )


def _numbers(frame: pd.DataFrame, column: str, path: str, *, size: bool) -> np.ndarray:
    values = np.empty(len(frame))
    for i, (raw, line) in enumerate(zip(frame[column], frame["line"], strict=True)):
        try:
            value = parse_size(raw) if size else float(str(raw).strip()) if isinstance(
                raw, str
            ) else float(raw)
        except (ValueError, TypeError):
            kind = "a number or a size like 70B" if size else "a number"
            shown = str(raw).strip()
            what = f"'{shown}' is not {kind}" if shown else f"empty value, expected {kind}"
            raise BayescaleError(what, path=path, row=int(line), column=column) from None
        if not math.isfinite(value):
            raise BayescaleError(
                f"{value} is not a finite number", path=path, row=int(line), column=column
            )
        if value <= 0:
            raise BayescaleError(
                f"{raw!s} is not positive", path=path, row=int(line), column=column
            )
        values[i] = value
    return values


def _labels(frame: pd.DataFrame, column: str, path: str) -> np.ndarray:
    values = frame[column].astype(str).str.strip()
    missing = values.isin(["", "nan", "None"])
    if missing.any():
        line = int(frame["line"][missing.to_numpy()].iloc[0])
        raise BayescaleError("empty label", path=path, row=line, column=column)
    return values.to_numpy(dtype=str)


def load_runs(
    path: str | Path,
    *,
    params_col: str = PARAMS,
    tokens_col: str | None = None,
    loss_col: str = LOSS,
    flops_col: str | None = None,
    run_col: str | None = None,
    seed_col: str | None = None,
    family_col: str | None = None,
) -> RunTable:
    """Read and validate a table of training runs.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.tsv``, ``.parquet`` or ``.jsonl`` file.
    params_col, tokens_col, loss_col : str
        Source names of N, D and the loss (default ``params``, ``tokens``, ``loss``).
    flops_col : str, optional
        Training compute C; tokens are derived as C / (6 N) (Kaplan et al. 2020) when the table
        has no tokens column.
    run_col, seed_col, family_col : str, optional
        Run (rows of one run are its checkpoints), seed and model family labels.

    Returns
    -------
    RunTable

    Raises
    ------
    BayescaleError
        With the file, row and column of the first problem found.

    Examples
    --------
    >>> runs = load_runs("examples/isoflop_runs.csv")  # doctest: +SKIP
    >>> runs.data[["params", "tokens", "loss"]].head()  # doctest: +SKIP
    """
    path = Path(path)
    where = str(path)
    frame = read_table(path)
    if tokens_col is None and flops_col is None:
        tokens_col = TOKENS
    mapping = {PARAMS: params_col, LOSS: loss_col}
    if tokens_col is not None:
        mapping[TOKENS] = tokens_col
    for key, option in [(RUN, run_col), (SEED, seed_col), (FAMILY, family_col)]:
        if option is not None:
            mapping[key] = option
    options = {PARAMS: "--params-col", TOKENS: "--tokens-col", LOSS: "--loss-col",
               RUN: "--run-col", SEED: "--seed-col", FAMILY: "--family-col"}
    for key, name in mapping.items():
        _pick_column(frame, name, options[key], where)
    if flops_col is not None and tokens_col is None:
        _pick_column(frame, flops_col, "--flops-col", where)

    out = pd.DataFrame({"line": frame["line"].astype(int).to_numpy()})
    out[PARAMS] = _numbers(frame, params_col, where, size=True)
    if tokens_col is not None:
        out[TOKENS] = _numbers(frame, tokens_col, where, size=True)
    else:
        assert flops_col is not None
        flops = _numbers(frame, flops_col, where, size=True)
        out[TOKENS] = flops / (6.0 * out[PARAMS].to_numpy())  # C = 6 N D (Kaplan et al. 2020)
    out[LOSS] = _numbers(frame, loss_col, where, size=False)
    for key in (RUN, SEED, FAMILY):
        if key in mapping:
            out[key] = _labels(frame, mapping[key], where)
    _check_plausible(out, where, mapping)
    return RunTable(data=out, source=where, sha256=file_sha256(path), columns=mapping)


def _check_plausible(data: pd.DataFrame, path: str, mapping: dict[str, str]) -> None:
    for key in (PARAMS, TOKENS):
        small = data[key] < MIN_PLAUSIBLE_SIZE
        if small.any():
            row = data[small].iloc[0]
            raise BayescaleError(
                f"{row[key]:g} is implausibly small for a count of {key}: write sizes in full "
                f"or with a unit (7B, 1.4T)",
                path=path, row=int(row["line"]), column=mapping.get(key, key),
            )
    high = data[LOSS] > MAX_PLAUSIBLE_LOSS
    if high.any():
        row = data[high].iloc[0]
        raise BayescaleError(
            f"loss {row[LOSS]:g} is above any plausible cross-entropy (> {MAX_PLAUSIBLE_LOSS:g} "
            "nats): is this a perplexity? Convert it with ln(perplexity)",
            path=path, row=int(row["line"]), column=mapping[LOSS],
        )
    keys = [c for c in data.columns if c != "line"]
    duplicated = data.duplicated(subset=keys, keep="first")
    if duplicated.any():
        dup = data[duplicated].iloc[0]
        same = data[(data[keys] == dup[keys]).all(axis=1)].iloc[0]
        raise BayescaleError(
            f"this row repeats row {int(same['line'])} exactly: remove the duplicate "
            "(repeated seeds need a --seed-col or --run-col that tells them apart)",
            path=path, row=int(dup["line"]),
        )


def check_identifiable(runs: RunTable, n_parameters: int = 5) -> None:
    """Refuse tables that cannot identify the law (too few rows, one size, one token count)."""
    data = runs.data
    if len(data) <= n_parameters:
        raise BayescaleError(
            f"{len(data)} row(s) cannot identify a law with {n_parameters} parameters: "
            "add runs (about five model sizes, several token counts each)",
            path=runs.source,
        )
    for key, what in ((PARAMS, "model size"), (TOKENS, "token count")):
        if data[key].nunique() < 2:
            raise BayescaleError(
                f"all runs have one {what} ({data[key].iloc[0]:.3g}): the law is not identified; "
                f"add runs of other {what}s",
                path=runs.source, column=runs.columns.get(key, key),
            )
