"""Training logs into a run table: Weights & Biases history exports and TensorBoard event
directories, joined to a manifest that gives each run its model size.

A training log knows steps, tokens and losses but not the model's size; the manifest (a CSV
with ``run``, ``params`` and optionally ``family``, ``seed`` and other labels) supplies it. The
result is the table that ``bayescale fit`` and ``fit-many`` read: ``run``, ``params``,
``tokens``, the manifest's other columns, then one column per logged metric.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import atomic_path
from bayescale.data.runs import PARAMS, ROW, RUN, TOKENS, parse_size, read_table

#: The tokens column of a W&B export (Composer / OLMo / LLM Foundry log it under this name).
DEFAULT_TOKENS = "throughput/total_tokens"
#: Columns of a W&B history export that are bookkeeping, not metrics.
_BOOKKEEPING = ("_step", "_runtime", "_timestamp", "_wandb*", "Step", "step")
_GLOB = set("*?[")


def match_columns(columns: Iterable[str], pattern: str, *, option: str = "--loss-cols",
                  where: str | None = None) -> list[str]:
    """The columns named by ``pattern``: a glob over names (``'eval/*'``), or a
    comma-separated list of names and globs. In the order of ``columns``.

    Examples
    --------
    >>> cols = ["params", "tokens", "eval/c4/CrossEntropyLoss", "eval/pile/CrossEntropyLoss"]
    >>> match_columns(cols, "eval/*")
    ['eval/c4/CrossEntropyLoss', 'eval/pile/CrossEntropyLoss']
    >>> match_columns(cols, "eval/pile/CrossEntropyLoss, eval/c4/CrossEntropyLoss")
    ['eval/c4/CrossEntropyLoss', 'eval/pile/CrossEntropyLoss']
    >>> match_columns(cols, "train/*")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: --loss-cols 'train/*' matches no column; columns ...
    """
    names = [str(c) for c in columns]
    items = [item.strip() for item in pattern.split(",") if item.strip()]
    shown = ", ".join(repr(c) for c in names[:12]) + (", ..." if len(names) > 12 else "")
    if not items:
        raise BayescaleError(f"{option} is empty: give a glob ('eval/*') or names, comma "
                             "separated", path=where)
    chosen: set[str] = set()
    for item in items:
        if _GLOB & set(item):
            hits = [c for c in names if fnmatch.fnmatchcase(c, item)]
        else:
            hits = [c for c in names if c == item] or [
                c for c in names if c.strip().casefold() == item.casefold()]
        if not hits:
            raise BayescaleError(f"{option} '{item}' matches no column; columns are: {shown}",
                                 path=where)
        chosen.update(hits)
    return [c for c in names if c in chosen]


@dataclass
class ImportResult:
    """What ``import`` made: the run table and what it dropped on the way.

    Attributes
    ----------
    table : pandas.DataFrame
        ``run``, ``params``, ``tokens``, the manifest's other columns, one column per metric.
    duplicates : int
        Exact duplicate log rows dropped (exporters repeat rows).
    unlisted : list of str
        Runs in the log folder that the manifest does not name (not imported).
    metrics : list of str
        The metric columns.
    """

    table: pd.DataFrame
    duplicates: int
    unlisted: list[str]
    metrics: list[str]


def read_manifest(path: str | Path) -> pd.DataFrame:
    """The manifest: ``run`` and ``params`` (sizes such as ``125M``) required, other columns
    (``family``, ``seed``, ...) kept as labels; one row per run."""
    frame = read_table(path)
    where = str(path)
    folded = {str(c).strip().casefold(): c for c in frame.columns if c != ROW}
    for need in (RUN, PARAMS):
        if need not in folded:
            raise BayescaleError(f"the manifest needs a '{need}' column (run: the log's file "
                                 "or folder name without extension; params: the model size)",
                                 path=where, column=need)
    frame = frame.rename(columns={folded[k]: k for k in folded if k in (RUN, PARAMS)})
    frame[RUN] = frame[RUN].astype(str).str.strip()
    for value, line in zip(frame[PARAMS], frame[ROW], strict=True):
        try:
            size = parse_size(value)
        except ValueError:
            size = float("nan")
        if not (size > 0 and np.isfinite(size)):
            raise BayescaleError(f"'{value}' is not a model size (a number or 125M, 7B)",
                                 path=where, row=int(line), column=PARAMS)
    repeated = frame[RUN].duplicated()
    if repeated.any():
        line = int(frame[ROW][repeated].iloc[0])
        raise BayescaleError(f"run '{frame[RUN][repeated].iloc[0]}' is listed twice",
                             path=where, row=line, column=RUN)
    if TOKENS in folded:
        raise BayescaleError("the manifest has a 'tokens' column: tokens come from the logs "
                             "(--tokens-col), one value per logged step; drop the column",
                             path=where, column=folded[TOKENS])
    return frame


def _metric_names(columns: Iterable[str], tokens_col: str, pattern: str | None) -> list[str]:
    names = [c for c in map(str, columns)
             if c != tokens_col and not any(fnmatch.fnmatchcase(c, b) for b in _BOOKKEEPING)]
    return match_columns(names, pattern, option="--metrics") if pattern else names


#: Cells that mean "no value" in an export (compared in lower case, stripped).
_MISSING = ("", "nan", "none", "null")


def _to_numbers(frame: pd.DataFrame, where: str, lines: pd.Series | None) -> pd.DataFrame:
    """Every column as floats, blank cells NaN; a cell of other text is an error naming the
    file, its row (``lines``: the file's line of each row, when it has lines) and column."""
    numbers = frame.apply(lambda col: pd.to_numeric(col, errors="coerce"))
    text = frame.astype(str).apply(lambda col: col.str.strip().str.lower())
    bad = (numbers.isna() & frame.notna() & ~text.isin(_MISSING)).to_numpy()
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise BayescaleError(f"'{frame.iat[i, j]}' is not a number", path=where,
                             row=None if lines is None else int(lines.iloc[i]),
                             column=str(frame.columns[j]))
    return numbers


def _steps_to_tokens(history: pd.DataFrame, tokens_col: str) -> pd.DataFrame:
    """Tokens for the rows logged without them, from their step: W&B exports put each log
    call on its own row, so an evaluation's row often lacks the tokens its step's training row
    has. Tokens grow with the step; they are interpolated linearly in the step between rows
    that have both, never beyond them (those rows stay without tokens)."""
    step = next((c for c in ("_step", "step", "Step") if c in history.columns), None)
    if step is None or history[tokens_col].notna().all():
        return history
    known = history[[step, tokens_col]].dropna().sort_values(step)
    if known.empty:
        return history
    at = history[step].to_numpy(float)
    inside = (at >= known[step].iloc[0]) & (at <= known[step].iloc[-1])
    filled = np.interp(at, known[step].to_numpy(float), known[tokens_col].to_numpy(float))
    history = history.copy()
    history[tokens_col] = history[tokens_col].where(history[tokens_col].notna() | ~inside,
                                                    filled)
    return history


def _finals(table: pd.DataFrame, chosen: list[str]) -> pd.DataFrame:
    """Each run's last value of each metric, on the row where it was logged, and nothing
    else: a training loss logged after the last evaluation neither hides that evaluation nor
    leaves an earlier training loss beside it (one final value per run and metric)."""
    parts = []
    for _, rows in table.groupby(RUN, sort=False):
        last = {m: rows[m].last_valid_index() for m in chosen}
        keep = rows.loc[sorted({i for i in last.values() if i is not None})].copy()
        for m in chosen:
            keep.loc[keep.index != last[m], m] = np.nan
        parts.append(keep)
    return pd.concat(parts).reset_index(drop=True)


def join_logs(
    histories: dict[str, tuple[pd.DataFrame, str]],
    manifest: pd.DataFrame,
    *,
    tokens_col: str = DEFAULT_TOKENS,
    metrics: str | None = None,
    final_only: bool = False,
) -> ImportResult:
    """Join per-run histories (run -> (frame, where it came from)) to the manifest.

    Per run: exact duplicate rows dropped (counted), a cell of text that is no number refused,
    tokens of rows logged without them taken from their step (:func:`_steps_to_tokens`), rows
    still without tokens dropped, rows of one token count merged (each metric's last value
    logged there: W&B logs evaluations and training losses of one step on separate rows),
    sorted by tokens; ``final_only`` keeps each run's last value of each chosen metric
    (:func:`_finals`). Metric columns absent from a run are blank there. A history's
    ``ROW`` column, when it has one, gives the file's line of each row for the errors.
    """
    frames, duplicates, names = [], 0, []
    seen: dict[str, str] = {}  # each metric's first log, for the errors
    for run, (history, where) in histories.items():
        lines = history.pop(ROW) if ROW in history.columns else None
        if tokens_col not in history.columns:
            raise BayescaleError(
                f"no tokens column '{tokens_col}' (columns: "
                f"{', '.join(repr(str(c)) for c in list(history.columns)[:8])}"
                f"{', ...' if len(history.columns) > 8 else ''}): name it with --tokens-col",
                path=where)
        dup = history.duplicated()
        duplicates += int(dup.sum())
        history = _to_numbers(history[~dup], where, None if lines is None else lines[~dup])
        history = _steps_to_tokens(history, tokens_col)
        run_metrics = [m for m in _metric_names(history.columns, tokens_col, None)
                       if history[m].notna().any()]
        history = history[history[tokens_col] > 0]
        if history.empty:  # else the run would vanish from the table without a word
            raise BayescaleError(f"no row has a positive number of tokens in '{tokens_col}' "
                                 "(blank throughout?): the run cannot be placed", path=where,
                                 column=tokens_col)
        merged = (history[[tokens_col, *run_metrics]].groupby(tokens_col, sort=True).last()
                  .reset_index())
        merged = merged.dropna(how="all", subset=run_metrics) if run_metrics else merged
        frames.append((run, merged))  # named run and tokens once the metrics are checked
        seen.update({m: where for m in run_metrics if m not in seen})
        names += [m for m in run_metrics if m not in names]
    chosen = match_columns(names, metrics, option="--metrics") if metrics else names
    if not chosen:
        raise BayescaleError("the logs hold no metric column besides the tokens")
    labels = manifest.drop(columns=[ROW]).set_index(RUN)
    clash = [m for m in chosen if m in {RUN, PARAMS, TOKENS, *map(str, labels.columns)}]
    if clash:
        raise BayescaleError(
            f"a logged metric is named '{clash[0]}', as a column the table already has (the "
            "run, its params and tokens, the manifest's labels): rename it in the logs or "
            "leave it out with --metrics", path=seen[clash[0]], column=clash[0])
    table = pd.concat([merged.reindex(columns=[tokens_col, *chosen])
                       .rename(columns={tokens_col: TOKENS}).assign(**{RUN: run})
                       for run, merged in frames], ignore_index=True)
    table = table.join(labels, on=RUN)
    front = [RUN, PARAMS, TOKENS, *[c for c in labels.columns if c != PARAMS]]
    table = table.reindex(columns=[*front, *chosen])
    table = table.dropna(how="all", subset=chosen).reset_index(drop=True)
    if final_only:
        table = _finals(table, chosen)
    table[TOKENS] = table[TOKENS].round().astype("int64")
    return ImportResult(table=table, duplicates=duplicates, unlisted=[], metrics=chosen)


def _find_logs(folder: Path, manifest: pd.DataFrame, manifest_path: str,
               locate: Callable[[Path, str], Path | None], what: str,
               present: list[str]) -> tuple[dict[str, Path], list[str]]:
    """Each manifest run's log; one error naming the first run without one."""
    found = {}
    for run, line in zip(manifest[RUN], manifest[ROW], strict=True):
        place = locate(folder, run)
        if place is None:
            close = ", ".join(repr(p) for p in present[:8]) or "none"
            raise BayescaleError(f"run '{run}' has no {what} in {folder} (there: {close})",
                                 path=manifest_path, row=int(line), column=RUN)
        found[run] = place
    unlisted = sorted(set(present) - set(found))
    return found, unlisted


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise BayescaleError("no such folder", path=str(folder))
    if not folder.is_dir():
        raise BayescaleError("is a file: give the folder of the logs", path=str(folder))


def _import_folder(folder: str | Path, manifest_path: str | Path, *,
                   present: Callable[[Path], list[str]],
                   locate: Callable[[Path, str], Path | None], what: str,
                   read: Callable[[Path], pd.DataFrame], tokens_col: str,
                   metrics: str | None, final_only: bool) -> ImportResult:
    """The importers' common path: the folder checked, the manifest read, each run's log
    found (``locate``; ``present`` names the logs there, ``what`` says what a log is), read
    (``read``) and joined (:func:`join_logs`), the logs the manifest does not name listed."""
    folder = Path(folder)
    _check_folder(folder)
    manifest = read_manifest(manifest_path)
    found, unlisted = _find_logs(folder, manifest, str(manifest_path), locate, what,
                                 present(folder))
    histories = {run: (read(path), str(path)) for run, path in found.items()}
    result = join_logs(histories, manifest, tokens_col=tokens_col, metrics=metrics,
                       final_only=final_only)
    result.unlisted = unlisted
    return result


def import_wandb(folder: str | Path, manifest_path: str | Path, *,
                 tokens_col: str = DEFAULT_TOKENS, metrics: str | None = None,
                 final_only: bool = False) -> ImportResult:
    """A folder of W&B history exports (one ``<run>.csv`` per run: ``_step``, the tokens
    column, ``eval/<set>/CrossEntropyLoss`` ...) as a run table."""
    def locate(root: Path, run: str) -> Path | None:
        path = root / f"{run}.csv"
        return path if path.is_file() else None

    return _import_folder(
        folder, manifest_path, locate=locate, what="history file (<run>.csv)", read=read_table,
        present=lambda root: sorted(p.stem for p in root.glob("*.csv")),
        tokens_col=tokens_col, metrics=metrics, final_only=final_only)


def _event_dirs(root: Path) -> list[Path]:
    """``root`` and each folder under it that holds an event file."""
    dirs = []
    for here, _, files in os.walk(root):
        if any(name.startswith("events.out.tfevents") for name in files):
            dirs.append(Path(here))
    return sorted(dirs)


@contextlib.contextmanager
def _data_loss() -> Iterator[list[str]]:
    """The event files TensorBoard's loader stopped reading at a damaged or truncated record
    while in the block: it says so only in a debug message and carries on."""
    import logging

    lost: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if str(record.msg).startswith("Truncated record"):
                lost.append(str(record.args[0]) if record.args else "")

    logger = logging.getLogger("tensorboard")
    handler, level, propagate = Catch(logging.DEBUG), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the debug lines are for this check, not for stderr
    try:
        yield lost
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def read_events(run_dir: Path) -> pd.DataFrame:
    """The scalars of one TensorBoard run folder as a frame: one row per step, one column per
    tag (tags of a sub-folder prefixed with its path: ``eval/...``). Scalars logged as
    summaries (PyTorch, tensorboardX) and as scalar tensors (TF 2) are both read."""
    try:
        from tensorboard.backend.event_processing import event_accumulator
        from tensorboard.util import tensor_util
    except ImportError:
        raise BayescaleError("reading TensorBoard logs needs the tensorboard package: pip "
                             "install 'bayescale[logs]'") from None
    columns: dict[str, dict[int, float]] = {}
    for sub in _event_dirs(run_dir):
        prefix = "" if sub == run_dir else f"{sub.relative_to(run_dir).as_posix()}/"
        acc = event_accumulator.EventAccumulator(
            str(sub), size_guidance={event_accumulator.SCALARS: 0,
                                     event_accumulator.TENSORS: 0})
        try:
            with _data_loss() as lost:
                acc.Reload()
        except Exception as exc:  # a damaged event file: protobuf and IO errors of many types
            raise BayescaleError(f"not a readable TensorBoard event file ({exc})",
                                 path=str(sub)) from None
        tags = acc.Tags()
        if lost:  # the loader stops quietly at a damaged record: the rest would be lost
            raise BayescaleError(
                f"{Path(lost[0]).name} is truncated or damaged (a record could not be read, "
                "and the events after it would be lost): copy it again once the run has "
                "flushed it", path=str(sub))
        for tag in tags.get("scalars", []):
            values = columns.setdefault(prefix + tag, {})
            for event in acc.Scalars(tag):
                values[int(event.step)] = float(event.value)
        for tag in tags.get("tensors", []):
            values = columns.setdefault(prefix + tag, {})
            for event in acc.Tensors(tag):
                array = tensor_util.make_ndarray(event.tensor_proto)
                if array.size == 1 and array.dtype.kind in "fiu":
                    values[int(event.step)] = float(array.ravel()[0])
    frame = pd.DataFrame({tag: pd.Series(v, dtype=float) for tag, v in columns.items() if v})
    return frame.sort_index().rename_axis("_step").reset_index()


def import_tensorboard(folder: str | Path, manifest_path: str | Path, *,
                       tokens_col: str = DEFAULT_TOKENS, metrics: str | None = None,
                       final_only: bool = False) -> ImportResult:
    """A folder of TensorBoard runs (``<run>/events.out.tfevents.*``, sub-folders too) as a
    run table; the tokens are a logged scalar (``tokens_col``), aligned with the metrics by
    step."""
    def locate(root: Path, run: str) -> Path | None:
        path = root / run
        return path if path.is_dir() and _event_dirs(path) else None

    return _import_folder(
        folder, manifest_path, locate=locate, read=read_events,
        what="event files (<run>/events.out.tfevents.*)",
        present=lambda root: sorted(p.name for p in root.iterdir()
                                    if p.is_dir() and _event_dirs(p)),
        tokens_col=tokens_col, metrics=metrics, final_only=final_only)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a run table atomically: Parquet for ``.parquet``/``.pq``, else CSV."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
