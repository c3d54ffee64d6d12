"""Load a table of training runs (CSV, Parquet, JSONL) into a validated run table."""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import gzip
import hashlib
import json
import math
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.data.compute import tokens_for

#: Canonical column names of a run table.
PARAMS, TOKENS, LOSS, RUN, SEED, FAMILY = "params", "tokens", "loss", "run", "seed", "family"
#: Canonical column of the unique tokens a row's run had seen by then (the data limit, at most
#: ``tokens``; ``--unique-tokens-col``), for laws of repeated data.
UNIQUE = "unique_tokens"

#: A cross-entropy above this (in nats) is more than a uniform guess over a 3M-token vocabulary
#: (ln 3e6 = 14.9): the column is more likely a perplexity than a loss.
MAX_PLAUSIBLE_LOSS = 15.0
#: Smaller "sizes" are almost always a unit slip ("7" meant as "7B").
MIN_PLAUSIBLE_SIZE = 1000.0
#: Larger ones are too (a unit written twice: "7e9B" is 7e18): 1e16 is ~1000x the largest
#: models and ~100x the largest token counts trained as of 2026.
MAX_PLAUSIBLE_SIZE = 1e16
#: The row-number column that :func:`read_table` adds (a name no export uses).
ROW = "__line__"
#: Tokens and compute of a row may differ by this share from C = 6 N D (exports round C).
COMPUTE_TOLERANCE = 0.01
#: Unique tokens may exceed the tokens seen by this share (both rounded, "19.19B"); U is then D.
UNIQUE_TOLERANCE = 0.01

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

    Examples
    --------
    >>> runs = RunTable(pd.DataFrame({"params": [1e8, 1e8, 1e9], "tokens": [2e9, 4e9, 2e10],
    ...                               "loss": [3.1, 2.9, 2.6], "run": ["a", "a", "b"]}))
    >>> len(runs), runs.n_runs
    (3, 2)
    """

    data: pd.DataFrame
    source: str = "<memory>"
    sha256: str = ""
    columns: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def run_ids(self) -> np.ndarray:
        """A run label per row: the run column, else one run per row.

        Examples
        --------
        >>> RunTable(pd.DataFrame({"params": [1e8, 1e9], "tokens": [2e9, 2e10],
        ...                        "loss": [3.1, 2.6], "line": [2, 3]})).run_ids
        array(['row2', 'row3'], dtype='<U4')
        """
        if RUN in self.data:
            return self.data[RUN].to_numpy(dtype=str)
        lines = self.data["line"] if "line" in self.data else np.arange(len(self.data)) + 1
        return np.array([f"row{line}" for line in lines], dtype=str)

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


def _encoding(path: Path) -> str:
    """``utf-16`` for a file with a UTF-16 byte-order mark (Excel "Unicode text"), else UTF-8."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV/TSV as strings, sniffing the delimiter; leading ``#`` lines are comments."""
    encoding = _encoding(path)
    with open(path, newline="", encoding=encoding, errors="replace") as handle:
        sample = handle.read(64 * 1024)
    lines = sample.splitlines()
    comments = 0
    while comments < len(lines) and lines[comments].lstrip().startswith("#"):
        comments += 1
    body = "\n".join(lines[comments:])
    if not body.strip():
        raise BayescaleError("the file is empty", path=str(path))
    try:
        sep = csv.Sniffer().sniff(body, delimiters=",;\t|").delimiter
    except csv.Error:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    names = [name.strip() for name in next(csv.reader([lines[comments]], delimiter=sep))]
    repeated = [name for i, name in enumerate(names) if name and name in names[:i]]
    if repeated:  # pandas would rename the second "loss.1" and read the first without a word
        raise BayescaleError(f"the header names the column '{repeated[0]}' twice: rename or "
                             "remove one", path=str(path), row=comments + 1,
                             column=repeated[0])
    try:
        frame = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True,
            skiprows=comments, skip_blank_lines=False, encoding=encoding,
            encoding_errors="replace",
        )
    except pd.errors.ParserError as exc:
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if fields:  # pandas counts physical lines, comments included
            expected, line, saw = map(int, fields.groups())
            if expected == 1:
                raise BayescaleError(
                    f"line {comments + 1} has one field but line {line} has {saw}: is there "
                    "a title above the header? Remove the lines above it", path=str(path),
                ) from None
            raise BayescaleError(
                f"{saw} fields where the header has {expected}: a stray "
                f"{'tab' if sep == chr(9) else repr(sep)} in a value, or a missing quote?",
                path=str(path), row=line,
            ) from None
        raise BayescaleError(f"not a readable CSV table ({exc})", path=str(path)) from None
    except pd.errors.EmptyDataError:
        raise BayescaleError("the file is empty", path=str(path)) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas made the surplus fields an index
        raise BayescaleError(
            f"line {comments + 2} has more fields than the header (line {comments + 1}): is "
            "there a title above the header, or a column without a name?", path=str(path),
        )
    frame[ROW] = np.arange(len(frame)) + 2 + comments  # the header is line 1 + comments
    blank = (frame.drop(columns=ROW) == "").all(axis=1)
    return frame[~blank].reset_index(drop=True)


def _refuse_columns(text: str, path: Path) -> None:
    """Refuse one JSON object of columns (``{"params": [...], ...}``, pandas' ``to_json()``).

    Examples
    --------
    >>> _refuse_columns('{"params": [1e8, 2e8], "loss": [3.1, 2.9]}', Path("runs.json"))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: runs.json: one JSON object of columns ('params', ...
    """
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return  # JSON lines (or broken JSON, which the line reader names)
    if isinstance(whole, dict) and whole and all(
            isinstance(value, (list, dict)) for value in whole.values()):
        names = ", ".join(repr(name) for name in list(whole)[:4])
        more = ", ..." if len(whole) > 4 else ""
        raise BayescaleError(
            f"one JSON object of columns ({names}{more}); expected records: an array of "
            "objects, one per row, or JSON Lines, one object per line (pandas: "
            "to_json(orient='records'))", path=str(path),
        )


def _json_records(path: Path) -> list[dict]:
    """Records of a JSON array (``row`` = position in the array) or of JSON lines (line number)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if text.lstrip().startswith("{"):
        _refuse_columns(text, path)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BayescaleError(
                f"not valid JSON ({exc.msg}, line {exc.lineno})", path=str(path)
            ) from None
        numbered = list(enumerate(items, start=1)) if isinstance(items, list) else []
        what = "each element of the array"
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise BayescaleError(
                    f"not valid JSON ({exc.msg}); expected one JSON object per line",
                    path=str(path), row=number,
                ) from None
        what = "each line"
    records = []
    for number, record in numbered:
        if not isinstance(record, dict):
            raise BayescaleError(f"{what} must be a JSON object", path=str(path), row=number)
        if ROW in record:
            raise BayescaleError(f"the key '{ROW}' is reserved", path=str(path), row=number)
        records.append({**record, ROW: number})
    return records


def _read_json(path: Path) -> pd.DataFrame:
    records = _json_records(path)
    if not records:
        raise BayescaleError("the file is empty", path=str(path))
    return pd.DataFrame.from_records(records)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for damaged files
        reason = " ".join(str(exc).split())[:160]
        raise BayescaleError(
            f"not a readable Parquet file (truncated or damaged?): {reason}", path=str(path)
        ) from None
    frame = frame.reset_index(drop=True)
    frame[ROW] = np.arange(len(frame)) + 1
    return frame


_READERS = {
    ".csv": _read_csv, ".tsv": _read_csv, ".txt": _read_csv,
    ".parquet": _read_parquet, ".pq": _read_parquet,
    ".jsonl": _read_json, ".ndjson": _read_json, ".json": _read_json,
}
_SPREADSHEETS = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")
#: Binary formats by their first bytes, with what to do when one has a text name.
_MAGIC = {
    b"PAR1": "looks like Parquet (it starts with PAR1): give it a .parquet name",
    b"PK\x03\x04": "looks like a zip archive (an .xlsx workbook?): export the sheet as CSV",
}


def _check_text(path: Path) -> None:
    """Refuse a binary file under a text name (a Parquet file saved as ``runs.csv``)."""
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    for magic, advice in _MAGIC.items():
        if head.startswith(magic):
            raise BayescaleError(f"the file is binary, not text, and {advice}", path=str(path))
    if b"\x00" in head and _encoding(path) != "utf-16":
        raise BayescaleError(
            f"the file is binary (it holds NUL bytes), not a text table as '{path.suffix}' says",
            path=str(path),
        )
    if _encoding(path) != "utf-16":
        _check_utf8(path)


def _check_utf8(path: Path) -> None:
    """Refuse text that is not UTF-8 (a Latin-1 export), naming the line of the first bad byte:
    decoding it with replacement characters would merge labels such as "équipe" and "èquipe".
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, offset = 1, 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                start = max(0, exc.start)
                raise BayescaleError(
                    f"not UTF-8 text (byte 0x{block[start]:02x} at byte {offset + start + 1}; "
                    "a Latin-1 or Windows-1252 export?): save the file as UTF-8 (Excel: "
                    "\"CSV UTF-8\"), e.g. iconv -f latin1 -t utf-8",
                    path=str(path), row=lines + block[:start].count(b"\n")) from None
            lines += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise BayescaleError("not UTF-8 text (the file ends inside a character): save it "
                                 "as UTF-8", path=str(path), row=lines) from None


def _read_gzip(path: Path) -> pd.DataFrame:
    """A gzip-compressed table (``runs.csv.gz``): decompressed beside nothing the user sees (a
    temporary folder), read as its inner name says; errors name the compressed file."""
    inner = path.name[: -len(".gz")]
    with tempfile.TemporaryDirectory(prefix="bayescale-") as folder:
        plain = Path(folder) / inner
        try:
            with gzip.open(path, "rb") as source, open(plain, "wb") as target:
                shutil.copyfileobj(source, target)
        except (OSError, EOFError, zlib.error) as exc:
            raise BayescaleError(f"not a readable gzip file ({exc})", path=str(path)) from None
        try:
            return read_table(plain)
        except BayescaleError as exc:
            raise BayescaleError(exc.message, path=str(path), row=exc.row,
                                 column=exc.column) from None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, Parquet, JSON or JSONL file into a frame with a row-number column ``ROW``.

    Row numbers are what the user finds in the file: the line for CSV and JSON lines (the CSV
    header is line 1), the 1-based position for Parquet and JSON arrays.
    """
    path = Path(path)
    if not path.exists():
        raise BayescaleError("no such file", path=str(path))
    if path.is_dir():
        raise BayescaleError("is a folder, not a table of runs", path=str(path))
    suffix = path.suffix.lower()
    if suffix == ".gz" and Path(path.stem).suffix.lower() in _READERS:
        return _read_gzip(path)
    reader = _READERS.get(suffix)
    if reader is None:
        hint = " (export the sheet as CSV)" if suffix in _SPREADSHEETS else ""
        raise BayescaleError(
            f"unknown file type '{path.suffix}'{hint}: use .csv, .tsv, .parquet, .json or .jsonl",
            path=str(path),
        )
    if reader is not _read_parquet:
        _check_text(path)
    frame = reader(path)
    if len(frame) == 0:
        raise BayescaleError("the table has a header but no rows", path=str(path))
    return frame


def _find_column(frame: pd.DataFrame, name: str) -> str | None:
    """The source column for ``name``: exact, else the one equal up to case and spaces."""
    columns = [c for c in frame.columns if c != ROW]
    if name in columns:
        return name
    folded = [c for c in columns if str(c).strip().casefold() == name.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def _pick_column(frame: pd.DataFrame, name: str, option: str, path: str) -> str:
    """:func:`_find_column`, or an error naming the columns there are."""
    found = _find_column(frame, name)
    if found is not None:
        return found
    names = [str(c) for c in frame.columns if c != ROW]
    if len(names) == 1 and any(sep in names[0].strip() for sep in ";\t|: "):
        raise BayescaleError(
            f"no column '{name}': the header reads as one column ({names[0]!r}); is the "
            "delimiter right? bayescale reads comma, semicolon, tab and | separated files",
            path=path, column=name,
        )
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'? ({option} '{close[0]}')" if close else ""
    shown = ", ".join(repr(c) for c in names[:12])
    raise BayescaleError(
        f"no column '{name}'.{hint} Columns are: {shown}", path=path, column=name
    )


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")


def _not_a_number(shown: str, column: str, size: bool) -> str:
    """Why a cell is not a number, with the likely cause when it is a common export slip."""
    kind = "a number or a size like 70B" if size else "a number"
    if not shown:
        return f"empty value, expected {kind}"
    if shown.casefold() == column.strip().casefold():
        return f"'{shown}' repeats the header: are two exports concatenated? Remove the line"
    thousands, decimal = _THOUSANDS.fullmatch(shown), _DECIMAL_COMMA.fullmatch(shown)
    if thousands and decimal:
        return (f"'{shown}' has a comma: write {shown.replace(',', '')} if it separates "
                f"thousands, {shown.replace(',', '.')} if it is a decimal comma")
    if thousands:
        return f"'{shown}' has thousands separators: write {shown.replace(',', '')}"
    if decimal:
        return (f"'{shown}' has a decimal comma: write {shown.replace(',', '.')} (export with "
                "'.' as the decimal separator)")
    if len(shown) > 40:  # a nested list, a stray paragraph: its start is enough
        shown = f"{shown[:37]}..."
    return f"'{shown}' is not {kind}"


def _numbers(frame: pd.DataFrame, column: str, path: str, *, size: bool) -> np.ndarray:
    values = np.empty(len(frame))
    for i, (raw, line) in enumerate(zip(frame[column], frame[ROW], strict=True)):
        # a missing cell of Parquet or JSON arrives as None or a float NaN: empty, as in CSV
        missing = raw is None or (isinstance(raw, float) and math.isnan(raw))
        try:
            if missing or isinstance(raw, (bool, np.bool_)):
                raise TypeError(raw)
            value = parse_size(raw) if size else float(raw.strip() if isinstance(
                raw, str) else raw)
        except (ValueError, TypeError, OverflowError):
            shown = "" if missing else str(raw).strip()
            raise BayescaleError(
                _not_a_number(shown, str(column), size), path=path, row=int(line),
                column=str(column),
            ) from None
        if not math.isfinite(value):
            raise BayescaleError(
                f"{value} is not a finite number", path=path, row=int(line), column=str(column)
            )
        if value <= 0:
            raise BayescaleError(
                f"{raw!s} is not positive", path=path, row=int(line), column=str(column)
            )
        values[i] = value
    return values


def _optional_numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Sizes of a column nobody asked for: NaN where a cell is not a size (blank, text)."""
    values = np.full(len(frame), np.nan)
    for i, raw in enumerate(frame[column]):
        with contextlib.suppress(ValueError):
            values[i] = parse_size(raw)
    return values


def _check_compute(
    frame: pd.DataFrame, tokens: np.ndarray, implied: np.ndarray, path: str, tokens_col: str,
    flops_col: str,
) -> None:
    """Tokens D and those C / (6 N) implies must agree within :data:`COMPUTE_TOLERANCE`."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a 0 in a column nobody asked for
        apart = np.abs(implied / tokens - 1.0)
    bad = np.flatnonzero(apart > COMPUTE_TOLERANCE)  # NaN (a blank cell) is never bad
    if bad.size:
        i = bad[0]
        raise BayescaleError(
            f"{tokens[i]:.4g} tokens, but column '{flops_col}' gives C / (6 N) = "
            f"{implied[i]:.4g} ({apart[i]:.0%} apart, more than {COMPUTE_TOLERANCE:.0%}): fix "
            "the row, or leave out --flops-col to fit the tokens as they are",
            path=path, row=int(frame[ROW].iloc[i]), column=str(tokens_col),
        )


def _first_with_unit(frame: pd.DataFrame, column: str) -> tuple[int, str] | None:
    """The first row whose size is written with a unit (``7B``), if any."""
    for raw, line in zip(frame[column], frame[ROW], strict=True):
        match = _SIZE.match(str(raw).replace("_", "")) if isinstance(raw, str) else None
        if match and match.group(2):
            return int(line), raw.strip()
    return None


def _labels(frame: pd.DataFrame, column: str, path: str) -> np.ndarray:
    values = frame[column].astype(str).str.strip()
    missing = values.isin(["", "nan", "None"])
    if missing.any():
        line = int(frame[ROW][missing.to_numpy()].iloc[0])
        raise BayescaleError("empty label", path=path, row=line, column=str(column))
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
    unique_tokens_col: str | None = None,
) -> RunTable:
    """Read and validate a table of training runs.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.tsv``, ``.parquet``, ``.json`` (array of objects) or ``.jsonl`` file.
    params_col, tokens_col, loss_col : str
        Source names of N, D and the loss (default ``params``, ``tokens``, ``loss``).
    flops_col : str, optional
        Training compute C; tokens are derived as C / (6 N) (Kaplan et al. 2020) unless
        ``tokens_col`` is given. Tokens in the table (``tokens_col``, else a ``tokens`` column)
        must agree with C / (6 N) within :data:`COMPUTE_TOLERANCE`.
    run_col, seed_col, family_col : str, optional
        Run (rows of one run are its checkpoints), seed and model family labels.
    unique_tokens_col : str, optional
        Unique tokens U the row's run had seen (``unique_tokens``): positive and at most the
        row's tokens D (D / U is the number of epochs).

    Returns
    -------
    RunTable

    Raises
    ------
    BayescaleError
        With the file, row and column of the first problem found.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "runs.csv"
    >>> _ = path.write_text("N,D,loss\\n125M,2.5B,3.31\\n350M,7B,2.95\\n1.3B,26B,2.62\\n")
    >>> runs = load_runs(path, params_col="N", tokens_col="D")
    >>> runs.data[["params", "tokens", "loss"]]
             params        tokens  loss
    0  1.250000e+08  2.500000e+09  3.31
    1  3.500000e+08  7.000000e+09  2.95
    2  1.300000e+09  2.600000e+10  2.62
    >>> _ = path.write_text("params,tokens,loss\\n125M,2.5B,3.31\\n350M,7B,abc\\n")
    >>> load_runs(path)
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: .../runs.csv, row 3, column 'loss': 'abc' is not a number
    """
    path = Path(path)
    where = str(path)
    frame = read_table(path)
    if tokens_col is None and flops_col is None:
        tokens_col = TOKENS
    mapping = {PARAMS: params_col, LOSS: loss_col}
    if tokens_col is not None:
        mapping[TOKENS] = tokens_col
    for key, option in [(RUN, run_col), (SEED, seed_col), (FAMILY, family_col),
                        (UNIQUE, unique_tokens_col)]:
        if option is not None:
            mapping[key] = option
    options = {PARAMS: "--params-col", TOKENS: "--tokens-col", LOSS: "--loss-col",
               RUN: "--run-col", SEED: "--seed-col", FAMILY: "--family-col",
               UNIQUE: "--unique-tokens-col"}
    for key, name in mapping.items():
        mapping[key] = _pick_column(frame, name, options[key], where)
    if flops_col is not None:
        flops_col = _pick_column(frame, flops_col, "--flops-col", where)

    out = pd.DataFrame({"line": frame[ROW].astype(int).to_numpy()})
    out[PARAMS] = _numbers(frame, mapping[PARAMS], where, size=True)
    if TOKENS in mapping:
        out[TOKENS] = _numbers(frame, mapping[TOKENS], where, size=True)
    if flops_col is not None:
        flops = _numbers(frame, flops_col, where, size=True)
        implied = tokens_for(flops, out[PARAMS].to_numpy())
        if TOKENS in mapping:
            _check_compute(frame, out[TOKENS].to_numpy(), implied, where, mapping[TOKENS],
                           flops_col)
        else:
            table_tokens = _find_column(frame, TOKENS)
            if table_tokens is not None:
                _check_compute(frame, _optional_numbers(frame, table_tokens), implied, where,
                               table_tokens, flops_col)
            out[TOKENS] = implied
    for key in (PARAMS, TOKENS):  # before U is set against D: a slip names its own column
        check_counts(out[key].to_numpy(), out["line"].to_numpy(), key, where,
                     str(mapping.get(key, key)),
                     _first_with_unit(frame, mapping[key]) if key in mapping else None)
    out[LOSS] = _numbers(frame, mapping[LOSS], where, size=False)
    if UNIQUE in mapping:
        out[UNIQUE] = _unique_tokens(frame, mapping[UNIQUE], out[TOKENS].to_numpy(), where)
    for key in (RUN, SEED, FAMILY):
        if key in mapping:
            out[key] = _labels(frame, mapping[key], where)
    mapping = {key: str(name) for key, name in mapping.items()}
    _check_plausible(out, where, mapping)
    return RunTable(data=out, source=where, sha256=file_sha256(path), columns=mapping)


#: Headers a table of planned runs may also use (matched up to case and spaces).
PLAN_ALIASES = {PARAMS: ("N",), TOKENS: ("D",), "compute": ("C", "FLOPs"), UNIQUE: ()}


def read_plans(path: str | Path, what: str) -> pd.DataFrame:
    """Planned runs, as ``predict --targets`` and ``design --candidates`` read them: two of the
    columns ``params``, ``tokens``, ``compute`` (or N, D, C, FLOPs; all three only if they
    agree with C = 6 N D within :data:`COMPUTE_TOLERANCE`) and, when present, ``unique_tokens``.

    Any format :func:`read_table` reads. Returns ``params``, ``tokens``, ``compute`` (the third
    from the two given), ``unique_tokens`` if the table has it, and ``ROW``, each row's number
    in the file. A bad cell is one :class:`BayescaleError` naming the file, row and column, as
    in a runs table: not a size, blank, not positive and finite, or a given count implausible
    for a count (:func:`check_counts`; a count derived from compute is not checked, as on the
    command line). ``what`` names the table in the messages ("a targets table").

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "plans.csv"
    >>> _ = path.write_text("N,C\\n7B,4.2e21\\n")
    >>> read_plans(path, "a targets table")[["params", "tokens"]].to_numpy().tolist()
    [[7000000000.0, 100000000000.0]]
    """
    from bayescale.data.compute import compute, params_for

    where = str(path)
    frame = read_table(path)
    found = {}
    for key, aliases in PLAN_ALIASES.items():
        matches = (_find_column(frame, name) for name in (key, *aliases))
        column = next((c for c in matches if c is not None), None)
        if column is not None:
            found[key] = column
    given = [key for key in (PARAMS, TOKENS, "compute") if key in found]
    if len(given) < 2:
        names = ", ".join(repr(str(c)) for c in frame.columns if c != ROW) or "none"
        raise BayescaleError(f"{what} needs two of the columns params, tokens, compute (or N, "
                             f"D, C); its columns are {names}", path=where)
    lines = frame[ROW].to_numpy(int)
    values = {key: _numbers(frame, column, where, size=True) for key, column in found.items()}
    for key in (PARAMS, TOKENS, UNIQUE):
        if key in values:
            check_counts(values[key], lines, key.replace("_", " "), where, str(found[key]),
                         _first_with_unit(frame, found[key]))
    if len(given) == 3:
        c, six_nd = values["compute"], compute(values[PARAMS], values[TOKENS])
        off = np.flatnonzero(np.abs(c - six_nd) > COMPUTE_TOLERANCE * c)
        if off.size:
            i = int(off[0])
            raise BayescaleError(
                f"{c[i]:.3g} is not 6 x params x tokens = {six_nd[i]:.3g}; give two of params, "
                "tokens, compute, or three that agree", path=where, row=int(lines[i]),
                column=str(found["compute"]))
    n = values[PARAMS] if PARAMS in values else params_for(values["compute"], values[TOKENS])
    d = values[TOKENS] if TOKENS in values else tokens_for(values["compute"], n)
    out = pd.DataFrame({ROW: lines, PARAMS: n, TOKENS: d, "compute": compute(n, d)})
    if UNIQUE in values:
        out[UNIQUE] = values[UNIQUE]
    return out


def _unique_tokens(frame: pd.DataFrame, column: str, tokens: np.ndarray, path: str) -> np.ndarray:
    """Unique tokens U: positive sizes (zeros and negatives refused by :func:`_numbers`), and
    never more than the tokens D the row had seen (up to ``UNIQUE_TOLERANCE`` for rounded
    figures, then U = D)."""
    unique = _numbers(frame, column, path, size=True)
    check_counts(unique, frame[ROW].to_numpy(), "unique tokens", path, str(column),
                 _first_with_unit(frame, column))
    over = np.flatnonzero(unique > tokens * (1.0 + UNIQUE_TOLERANCE))
    if over.size:
        i = over[0]
        raise BayescaleError(
            f"{unique[i]:.6g} unique tokens is more than the {tokens[i]:.6g} tokens seen: give "
            "the unique tokens the run had seen by this row (at most its tokens)",
            path=path, row=int(frame[ROW].iloc[i]), column=str(column))
    return np.minimum(unique, tokens)


def check_counts(values: np.ndarray, lines: np.ndarray, what: str, path: str, column: str,
                 slip: tuple[int, str] | None = None) -> None:
    """Refuse a count of parameters or tokens outside [MIN_PLAUSIBLE_SIZE, MAX_PLAUSIBLE_SIZE]:
    a size written in billions without its unit, or a unit written twice (7e9B). ``slip``: a
    row of the same column that has a unit, named as a likely slip."""
    small = np.flatnonzero(values < MIN_PLAUSIBLE_SIZE)
    if small.size:
        i = small[0]
        also = f", while row {slip[0]} has a unit ('{slip[1]}'): a unit slip?" if slip else ":"
        raise BayescaleError(
            f"{values[i]:g} is implausibly small for a count of {what}{also} write sizes in "
            f"full or with a unit (7B, 1.4T)", path=path, row=int(lines[i]), column=column)
    large = np.flatnonzero(values > MAX_PLAUSIBLE_SIZE)
    if large.size:
        i = large[0]
        raise BayescaleError(
            f"{values[i]:g} is implausibly large for a count of {what} (above "
            f"{MAX_PLAUSIBLE_SIZE:g}): a unit written twice, as in 7e9B? Write 7e9 or 7B",
            path=path, row=int(lines[i]), column=column)


def _check_plausible(data: pd.DataFrame, path: str, mapping: dict[str, str]) -> None:
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
    """Refuse tables that cannot identify the law (too few rows, one size, one token count).

    Examples
    --------
    >>> runs = RunTable(pd.DataFrame({"params": [1e8] * 6, "tokens": np.geomspace(1e9, 1e11, 6),
    ...                               "loss": np.linspace(3.5, 3.0, 6)}))
    >>> check_identifiable(runs)
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: <memory>, column 'params': all runs have one model ...
    """
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
