"""Many fits at once: one posterior per (group, metric) of a run table, in this process, on local
worker processes or on a Dask cluster, resumable after a crash or Ctrl-C.

Layout of the output folder ``DIR``:

- ``DIR/inputs/<name>.csv``: each fit's rows (the group's rows with a value of the metric), the
  file the fit reads; its sha256 is the fit's input hash;
- ``DIR/fits/<name>.posterior.nc``: each fit's posterior, and ``<name>.json`` beside it: the fit's
  key (input hash and options) and its summary row;
- ``DIR/summary.csv`` and ``DIR/summary.parquet``: one row per fit.

Only the process that runs the batch writes files, each atomically: workers (processes, Dask)
return the posterior and its row. A rerun skips every fit whose posterior and ``.json`` exist with
the same key. Each fit is seeded with the sampler's ``random_seed``, so a fit's draws depend on its
rows and options only, whichever executor ran it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.errors import BayescaleError
from bayescale.core.fileio import atomic_path
from bayescale.data.logs import match_columns
from bayescale.data.runs import ROW, RunTable, check_identifiable, load_runs, read_table
from bayescale.data.selection import select_checkpoints
from bayescale.inference.fit import fit
from bayescale.inference.model import ModelSpec
from bayescale.inference.sampling import CompiledCache, SamplerOptions
from bayescale.law.laws import get_law
from bayescale.posterior.posterior import Posterior
from bayescale.posterior.warnings import fit_warnings

SUMMARY_CSV, SUMMARY_PARQUET = "summary.csv", "summary.parquet"
#: Status of a fit in the summary: written and converged, written but a convergence check
#: failed, or no posterior (``reason`` says why).
OK, UNCONVERGED, FAILED = "ok", "unconverged", "failed"
#: Seconds to wait for a Dask scheduler before giving up.
DASK_CONNECT_TIMEOUT = 10
_DIAGNOSTICS = ("divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail")


@dataclass(frozen=True)
class Columns:
    """Source names of the run table's columns (as ``fit``'s column options)."""

    params: str = "params"
    tokens: str | None = None
    flops: str | None = None
    run: str | None = None
    seed: str | None = None
    family: str | None = None

    def named(self) -> dict[str, str]:
        """Option -> source column, for the columns given (tokens by default)."""
        tokens = self.tokens if self.tokens or self.flops else "tokens"
        pairs = {"--params-col": self.params, "--tokens-col": tokens, "--flops-col": self.flops,
                 "--run-col": self.run, "--seed-col": self.seed, "--family-col": self.family}
        return {k: v for k, v in pairs.items() if v is not None}


@dataclass
class BatchOptions:
    """How each fit of a batch is made and summarised.

    ``targets`` are ``(label, N, D)``: each fit's predicted loss of a new run there goes in the
    summary (``loss_<label>_median`` ...). ``level`` and ``targets`` change only the summary,
    not the fits, so a rerun with others refits nothing.
    """

    spec: ModelSpec = field(default_factory=ModelSpec)
    sampler: SamplerOptions = field(default_factory=lambda: SamplerOptions(progress=False))
    calibration: bool = True
    min_tokens: float | None = None
    max_token_frac: float | None = None
    level: float = 0.9
    targets: list[tuple[str, float, float]] = field(default_factory=list)

    def fit_options(self) -> dict[str, Any]:
        """What a fit's draws depend on besides its rows."""
        return {"spec": self.spec.as_dict(), "sampler": self.sampler.as_dict(),
                "calibration": self.calibration, "min_tokens": self.min_tokens,
                "max_token_frac": self.max_token_frac}


@dataclass
class Job:
    """One fit: a group's rows of one metric; ``reason`` says why it cannot run."""

    group: str | None
    metric: str
    name: str
    runs: RunTable | None = None
    reason: str | None = None
    key: str = ""


def _slug(text: str) -> str:
    """A file-name-safe form of a label.

    Examples
    --------
    >>> _slug("eval/c4 en/CrossEntropyLoss")
    'eval_c4_en_CrossEntropyLoss'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "x"


def _find(columns: list[str], name: str) -> str | None:
    if name in columns:
        return name
    folded = [c for c in columns if c.strip().casefold() == name.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def _present(values: pd.Series) -> np.ndarray:
    """Cells that hold something (not blank, not NaN)."""
    text = values.astype(str).str.strip()
    return (values.notna() & ~text.isin(["", "nan", "NaN", "None"])).to_numpy()


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def plan(
    path: str | Path,
    loss_cols: str,
    out_dir: str | Path,
    *,
    columns: Columns | None = None,
    group_col: str | None = None,
    options: BatchOptions | None = None,
) -> list[Job]:
    """The batch's fits: one per (group, metric), each with its rows loaded and checked.

    A problem with the whole table (no such file, no tokens column, a pattern that matches no
    column) raises :class:`BayescaleError`; a problem with one fit's rows (a bad cell, too few
    rows) makes that job's ``reason``, naming the row of ``path``. Writes each fit's rows to
    ``out_dir/inputs/<name>.csv``.
    """
    columns = columns or Columns()
    options = options or BatchOptions()
    where = str(path)
    frame = read_table(path)
    names = [str(c) for c in frame.columns if c != ROW]
    frame.columns = [c if c == ROW else str(c) for c in frame.columns]
    source: dict[str, str] = {}
    for option, wanted in columns.named().items():
        found = _find(names, wanted)
        if found is None:
            fix = ("name it with --tokens-col, or give --flops-col" if option == "--tokens-col"
                   else f"name it with {option}")
            raise BayescaleError(f"no column '{wanted}' ({option}): {fix}; columns are: "
                                 f"{', '.join(repr(c) for c in names[:12])}", path=where)
        source[option] = found
    group = None
    if group_col is not None:
        group = _find(names, group_col)
        if group is None:
            raise BayescaleError(f"no column '{group_col}' (--group-col); columns are: "
                                 f"{', '.join(repr(c) for c in names[:12])}", path=where)
    taken = {*source.values(), *([group] if group else [])}
    metrics = match_columns([c for c in names if c not in taken], loss_cols, where=where)
    loaders = {"params_col": source["--params-col"], "tokens_col": source.get("--tokens-col"),
               "flops_col": source.get("--flops-col"), "run_col": source.get("--run-col"),
               "seed_col": source.get("--seed-col"), "family_col": source.get("--family-col")}
    fingerprint = options.fit_options()

    if group is None:
        parts: list[tuple[str | None, pd.DataFrame]] = [(None, frame)]
    else:
        labels = frame[group].astype(str).str.strip()
        blank = ~_present(frame[group])
        parts = [(label, frame[(labels == label).to_numpy() & ~blank])
                 for label in dict.fromkeys(labels[~blank])]
    jobs: list[Job] = []
    used: set[str] = set()
    if group is not None and blank.any():
        lines = ", ".join(str(int(v)) for v in frame[ROW][blank][:5])
        jobs.append(Job("", "*", "blank-group", reason=f"{where}, column '{group}': rows "
                        f"{lines} have no group label: label them, or they are not fitted"))
    keep = [*source.values()]
    n_params = len(get_law(options.spec.law).parameters)
    for label, rows in parts:
        for metric in metrics:
            name = _slug(metric) if label is None else f"{_slug(label)}__{_slug(metric)}"
            if name in used:
                name = f"{name}-{hashlib.sha1(f'{label}/{metric}'.encode()).hexdigest()[:6]}"
            used.add(name)
            job = Job(label, metric, name)
            jobs.append(job)
            sub = rows[_present(rows[metric])]
            if sub.empty:
                job.reason = f"no row has a value of '{metric}'"
                (Path(out_dir) / "inputs" / f"{name}.csv").unlink(missing_ok=True)  # stale
                continue
            subset = (Path(out_dir) / "inputs" / f"{name}.csv").resolve()  # stored in the file
            _write_if_changed(subset, sub[[*keep, metric]].to_csv(index=False).encode())
            try:
                runs = load_runs(subset, loss_col=metric, **loaders)
                runs = select_checkpoints(runs, min_tokens=options.min_tokens,
                                          max_token_frac=options.max_token_frac)
                check_identifiable(runs, n_params)
            except BayescaleError as exc:
                row = None
                if exc.row is not None and 2 <= exc.row < len(sub) + 2:
                    row = int(sub[ROW].iloc[exc.row - 2])  # the subset's header is line 1
                job.reason = BayescaleError(exc.message, path=where, row=row,
                                            column=exc.column).one_line()
                continue
            job.runs = runs
            job.key = hashlib.sha256(json.dumps({"input": runs.sha256, **fingerprint},
                                                sort_keys=True, default=str).encode()).hexdigest()
    return jobs


# ------------------------------------------------------------------------------ one fit
_CACHE: CompiledCache | None = None


@dataclass
class Outcome:
    """What a worker returns: the posterior (None when the fit failed) and its summary row."""

    posterior: Posterior | None
    row: dict[str, Any]


def describe(post: Posterior, options: BatchOptions) -> dict[str, Any]:
    """A fit's summary row: parameters' medians and intervals, diagnostics, status, warnings
    and, for each target, the predicted loss of a new run."""
    meta = post.meta
    row: dict[str, Any] = {"rows": meta["input"]["n_rows"], "runs": meta["input"].get("n_runs")}
    summary = post.summary(level=options.level)
    for name, stats in summary.iterrows():
        for key in ("median", "lower", "upper"):
            row[f"{name}_{key}"] = float(stats[key])
    diag = meta.get("diagnostics") or {}
    for key in _DIAGNOSTICS:
        value = diag.get(key)
        row[key] = float("nan") if value is None else value
    problems = diag.get("problems") or []
    row["status"] = UNCONVERGED if problems else OK
    row["reason"] = problems[0] if problems else ""
    row["warnings"] = " | ".join(dict.fromkeys(fit_warnings(post)))
    if options.targets:
        labels, n, d = zip(*options.targets, strict=True)
        pred = post.predict(params=list(n), tokens=list(d), level=options.level,
                            random_seed=options.sampler.random_seed)
        for i, label in enumerate(labels):
            for key in ("median", "lower", "upper"):
                row[f"loss_{label}_{key}"] = float(pred[f"loss_{key}"].iloc[i])
    return row


def fit_job(runs: RunTable, options: BatchOptions) -> Outcome:
    """Fit one job wherever it runs; a failure is a row with its reason, never an exception
    (an interruption still interrupts). Compiled models are reused within the process."""
    global _CACHE
    if _CACHE is None:
        _CACHE = CompiledCache()
    start = time.perf_counter()
    try:
        result = fit(runs, options.spec, options.sampler, calibration=options.calibration,
                     cache=_CACHE)
        row = describe(result.posterior, options)
    except BayescaleError as exc:
        return Outcome(None, {"status": FAILED, "reason": exc.one_line(),
                              "seconds": time.perf_counter() - start})
    except Exception as exc:  # the model or sampler failed on these rows: this fit only
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return Outcome(None, {"status": FAILED, "reason": reason,
                              "seconds": time.perf_counter() - start})
    row["seconds"] = result.seconds
    return Outcome(result.posterior, row)


# ---------------------------------------------------------------------------- executors
#: What an executor runs for each job: ``task(job.runs, options)``, a top-level function (so
#: that it pickles) returning an :class:`Outcome` and never raising for one job's failure.
Task = Callable[[RunTable, Any], Outcome]


def _in_process(jobs: list[Job], options: Any,
                task: Task | None = None) -> Iterator[tuple[Job, Outcome]]:
    task = task or fit_job
    for job in jobs:
        yield job, task(job.runs, options)


def _worker_init() -> None:
    """Worker processes leave Ctrl-C to the parent, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _processes(jobs: list[Job], options: Any, workers: int,
               task: Task | None = None) -> Iterator[tuple[Job, Outcome]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                               mp_context=multiprocessing.get_context("spawn"))
    futures = {pool.submit(task or fit_job, job.runs, options): job for job in jobs}
    finished = False
    try:
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # the worker process died (out of memory, killed)
                outcome = Outcome(None, {"status": FAILED, "reason": f"the worker process "
                                         f"failed: {type(exc).__name__}: {exc}"})
            yield futures[future], outcome
        finished = True
    finally:
        if not finished:  # interrupted: stop the workers now (they write no files)
            for future in futures:
                future.cancel()
            procs = list(getattr(pool, "_processes", {}).values())
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(timeout=5)
            for proc in procs:  # a worker whose sampler caught SIGTERM and went on to send
                if proc.is_alive():  # its result down a pipe nobody reads: shutdown waited
                    proc.kill()  # on it forever
                    proc.join(timeout=5)
        pool.shutdown(wait=finished, cancel_futures=True)


def connect_dask(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``; one clear error when
    dask.distributed is missing or the scheduler cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise BayescaleError("--dask needs dask.distributed: pip install "
                             "'bayescale[dask]'") from None
    try:
        return Client(address, timeout=f"{DASK_CONNECT_TIMEOUT}s", set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise BayescaleError(f"cannot reach the Dask scheduler at {address} ({reason}): is it "
                             "running, and is the address its tcp://HOST:PORT?") from None


def _dask(jobs: list[Job], options: Any, address: str, client: Any = None,
          task: Task | None = None) -> Iterator[tuple[Job, Outcome]]:
    from distributed import as_completed

    own = client is None
    client = client or connect_dask(address)
    futures = {client.submit(task or fit_job, job.runs, options, pure=False,
                             key=f"bayescale-fit-{job.name}-{job.key[:12]}"): job
               for job in jobs}
    finished = False
    try:
        with client.as_current():  # as_completed looks for a current client
            completed = as_completed(list(futures))
        for future in completed:
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died or the task could not run
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                outcome = Outcome(None, {"status": FAILED,
                                         "reason": f"the Dask task failed: {reason}"})
            yield futures[future], outcome
        finished = True
    finally:
        if not finished:
            client.cancel(list(futures))
        if own:
            client.close()


def execute(jobs: list[Job], options: Any, *, workers: int | None = None,
            dask: str | None = None, client: Any = None,
            task: Task | None = None) -> Iterator[tuple[Job, Outcome]]:
    """Run ``task`` (default :func:`fit_job`) on each job's rows: on the Dask scheduler at
    ``dask`` (or an open ``client``), on ``workers`` local processes, else in this process.
    Yields each job with its outcome as it finishes; close the iterator to stop the rest."""
    if client is not None or dask is not None:
        return _dask(jobs, options, dask or "", client, task)
    if workers:
        return _processes(jobs, options, workers, task)
    return _in_process(jobs, options, task)


# ------------------------------------------------------------------------------- the batch
@dataclass
class Progress:
    """Counts for a progress bar: fits done (written or reused), failed, left."""

    total: int
    done: int = 0
    failed: int = 0
    fitted: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def left(self) -> int:
        return self.total - self.done - self.failed

    def eta(self) -> float | None:
        """Seconds left at the rate of the fits run so far (None before the first)."""
        if not self.fitted:
            return None
        return (time.perf_counter() - self.started) / self.fitted * self.left


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a fit's two files are written, so they land together."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _paths(out_dir: Path, job: Job) -> tuple[Path, Path]:
    folder = out_dir / "fits"
    return folder / f"{job.name}.posterior.nc", folder / f"{job.name}.json"


def _reusable(out_dir: Path, job: Job, options: BatchOptions) -> dict[str, Any] | None:
    """The stored row of a fit made before with the same key whose posterior still loads,
    else None (the fit is made again)."""
    posterior, record = _paths(out_dir, job)
    if not (posterior.is_file() and record.is_file()):
        return None
    try:
        stored = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("key") != job.key:
        return None
    try:  # a posterior damaged since (truncated, overwritten) is fitted again, not reused
        loaded = Posterior.load(posterior)
    except BayescaleError:
        return None
    row = stored["row"]
    labels = [t[0] for t in options.targets]
    if stored.get("level") != options.level or stored.get("targets") != labels:
        row = {**describe(loaded, options), "seconds": row.get("seconds")}
        text = json.dumps({**stored, "level": options.level, "targets": labels, "row": row})
        with _signals_deferred(), atomic_path(record) as tmp:  # the record matches its row
            tmp.write_text(text)
    return row


def _record(out_dir: Path, job: Job, outcome: Outcome, options: BatchOptions) -> None:
    posterior, record = _paths(out_dir, job)
    text = json.dumps({"key": job.key, "group": job.group, "metric": job.metric,
                       "level": options.level, "targets": [t[0] for t in options.targets],
                       "row": outcome.row})
    with _signals_deferred():
        outcome.posterior.save(posterior)
        with atomic_path(record) as tmp:
            tmp.write_text(text)


def run_batch(
    jobs: list[Job],
    out_dir: str | Path,
    options: BatchOptions | None = None,
    *,
    workers: int | None = None,
    dask: str | None = None,
    client: Any = None,
    on_result: Callable[[dict[str, Any], Progress], None] | None = None,
) -> pd.DataFrame:
    """Run the jobs of :func:`plan` and write ``summary.csv`` and ``summary.parquet``.

    In this process by default (compiled models reused across fits of one structure), on
    ``workers`` local processes, or on the Dask scheduler at ``dask`` (or an open ``client``).
    Fits whose outputs exist with the same key are reused, not refitted. ``on_result`` is
    called after each fit with its row and the counts so far. Returns the summary, one row per
    job in the order of ``jobs``.
    """
    options = options or BatchOptions()
    out_dir = Path(out_dir)
    rows: dict[int, dict[str, Any]] = {}
    progress = Progress(total=len(jobs))
    pending = []
    index = {id(job): i for i, job in enumerate(jobs)}

    def base(job: Job) -> dict[str, Any]:
        return {"group": job.group, "metric": job.metric}

    def finish(job: Job, row: dict[str, Any]) -> None:
        rows[index[id(job)]] = row
        if row["status"] == FAILED:
            progress.failed += 1
            for stale in _paths(out_dir, job):  # an earlier run's fit of other rows: gone,
                stale.unlink(missing_ok=True)  # so no file contradicts the failed row
        else:
            progress.done += 1
        if on_result is not None:
            on_result(row, progress)

    for job in jobs:
        if job.reason is not None:
            finish(job, {**base(job), "status": FAILED, "reason": job.reason, "reused": False})
            continue
        stored = _reusable(out_dir, job, options)
        if stored is not None:
            finish(job, {**base(job), **stored, "reused": True,
                         "file": str(Path("fits") / f"{job.name}.posterior.nc")})
        else:
            pending.append(job)
    if pending:
        results = execute(pending, options, workers=workers, dask=dask, client=client)
        with contextlib.closing(results):
            for job, outcome in results:
                row = {**base(job), **outcome.row, "reused": False}
                if outcome.posterior is not None:
                    _record(out_dir, job, outcome, options)
                    row["file"] = str(Path("fits") / f"{job.name}.posterior.nc")
                progress.fitted += 1
                finish(job, row)
    summary = summary_frame([rows[i] for i in range(len(jobs))])
    write_summary(summary, out_dir)
    return summary


def summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a frame: labels and status first, then parameters, diagnostics, targets."""
    frame = pd.DataFrame(rows)
    first = [c for c in ("group", "metric", "status", "rows", "runs") if c in frame]
    last = [c for c in (*_DIAGNOSTICS, "seconds", "reused", "warnings", "reason", "file")
            if c in frame]
    targets = [c for c in frame.columns if c.startswith("loss_") and c not in first + last]
    middle = [c for c in frame.columns if c not in first + last + targets]
    frame = frame[first + middle + targets + last]
    for col in ("warnings", "reason", "file"):
        if col in frame:
            frame[col] = frame[col].fillna("")
    for col in ("rows", "runs", "divergences"):  # counts stay whole beside a failed fit's gap
        if col in frame:
            frame[col] = frame[col].astype("Int64")
    return frame


def write_summary(summary: pd.DataFrame, out_dir: Path) -> None:
    """``summary.csv`` and ``summary.parquet`` in ``out_dir``, each atomically."""
    with atomic_path(out_dir / SUMMARY_CSV) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out_dir / SUMMARY_PARQUET) as tmp:
        summary.to_parquet(tmp, index=False)
