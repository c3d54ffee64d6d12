"""Fit time against the number of checkpoint rows, with the CLI's default sampler settings.

Checkpoint tables are large (every logged step of every run), so this measures how the fit's
time grows with the rows, to tell users when to thin their curves. The table is the ColPret
GPT-3 curves (train and validation curves of the eight models, all rows,
``examples/colpret_to_table.py --gpt3-split both``), or with ``--simulated`` loss curves from a
known law (:func:`bayescale.law.simulate.checkpoint_curves`, 40 runs). Each size is a random
subset of the rows (all runs kept); the time covers model building, compilation and sampling
(4 chains x 1,000 + 1,000 draws), as ``bayescale fit`` spends it. Leapfrog steps per draw show
whether a slower fit is the data's size or the posterior's shape. Last, ``bayescale fit`` runs
on all rows as a user runs it, timed from process start to exit (issue 28: at most 60 s).

Usage::

    .venv/bin/python benchmarks/checkpoints_scale.py [--sizes 1000,2500,5000,0] [--simulated]
                                                     [--seed 0] [--cli-repeats 2]
                                                     [--out-md PATH | --no-md]

(size 0 = all rows).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results import Record, add_output_options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from colpret_to_table import DEFAULT_COLPRET, colpret_table  # noqa: E402

from bayescale import ModelSpec, RunTable, SamplerOptions, fit, load_runs  # noqa: E402
from bayescale.inference import compile_cache  # noqa: E402
from bayescale.inference.model import build_model  # noqa: E402
from bayescale.inference.sampling import strict_math  # noqa: E402
from bayescale.law.simulate import checkpoint_curves  # noqa: E402


def table(simulated: bool, colpret: Path) -> pd.DataFrame:
    """The full checkpoint table (params, tokens, loss, run)."""
    if simulated:
        frame = checkpoint_curves(list(np.geomspace(5e7, 2e9, 40)), checkpoints=300,
                                  random_seed=0)
    else:
        frame = colpret_table(colpret, ("gpt3",), gpt3_split="both")
    return frame[["params", "tokens", "loss", "run"]]


def gradient_seconds(runs: RunTable, calls: int = 200) -> float:
    """Seconds of one log density and gradient evaluation (the compiled C callback that NUTS
    calls once per leapfrog step), loaded from the compiled-model cache."""
    double_p = ctypes.POINTER(ctypes.c_double)
    with strict_math():
        model = compile_cache.compile_model(build_model(runs, ModelSpec()).model).model
    x = np.zeros(model.n_dim)
    grad, logp = np.zeros(model.n_dim), np.zeros(1)
    call = model.compiled_logp_func.ctypes
    args = (model.n_dim, x.ctypes.data_as(double_p), grad.ctypes.data_as(double_p),
            logp.ctypes.data_as(double_p), ctypes.c_void_p(model.user_data.ctypes.data))
    call(*args)
    start = time.perf_counter()
    for _ in range(calls):
        call(*args)
    return (time.perf_counter() - start) / calls


def cli_times(frame: pd.DataFrame, seed: int, repeats: int) -> list[dict[str, str]]:
    """Wall and CPU seconds of ``bayescale fit`` on ``frame``, process start to exit, after one
    untimed run that fills the compiled-model cache."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "runs.csv", Path(tmp) / "runs.posterior.nc"
        frame.to_csv(path, index=False)
        command = [str(Path(sys.executable).with_name("bayescale")), "fit", str(path),
                   "--run-col", "run", "--out", str(out), "--random-seed", str(seed)]
        subprocess.run(command, check=True, capture_output=True)  # the cache filled
        for _ in range(repeats):
            load = os.getloadavg()[0]
            cpu = _children_cpu()
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            rows.append({"wall (s)": f"{time.perf_counter() - start:.1f}",
                         "CPU (s)": f"{_children_cpu() - cpu:.1f}",
                         "load at start": f"{load:.1f}"})
            print(f"bayescale fit, all rows: {rows[-1]}", flush=True)
    return rows


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2500,5000,0")
    parser.add_argument("--simulated", action="store_true")
    parser.add_argument("--colpret", type=Path, default=DEFAULT_COLPRET)
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampler")
    parser.add_argument("--cli-repeats", type=int, default=2,
                        help="timed `bayescale fit` runs on all rows (0: none)")
    add_output_options(parser, __file__)
    args = parser.parse_args()
    if not args.simulated and not args.colpret.is_dir():
        print(f"ColPret data not found at {args.colpret}; try --simulated", file=sys.stderr)
        return 1
    record = Record.start(__file__, __doc__)
    full = table(args.simulated, args.colpret)
    rng = np.random.default_rng(0)
    print(f"{'rows':>6} {'runs':>5} {'seconds':>8} {'s/1k rows':>9} {'steps/draw':>10} "
          f"{'diverg.':>7} {'max R-hat':>9}")
    lines = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows = full if size <= 0 or size >= len(full) else full.iloc[
            np.sort(rng.choice(len(full), size, replace=False))]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "runs.csv"
            rows.to_csv(path, index=False)
            result = fit(load_runs(path, run_col="run"),
                         options=SamplerOptions(random_seed=args.seed, progress=False))
            grad = gradient_seconds(load_runs(path, run_col="run"))
        stats = result.posterior.tree["sample_stats"].dataset
        steps = float(np.asarray(stats["n_steps"]).mean())
        diag = result.diagnostics
        line = {"rows": len(rows), "runs": rows["run"].nunique(),
                "seconds": f"{result.seconds:.1f}",
                **{f"{name} (s)": f"{value:.1f}" for name, value in result.phases.items()},
                "s/1k rows": f"{1000 * result.seconds / len(rows):.2f}",
                "steps/draw": f"{steps:.1f}",
                "tree depth": f"{float(np.asarray(stats['depth']).mean()):.2f}",
                "gradient (us)": f"{1e6 * grad:.0f}",
                "ns/row": f"{1e9 * grad / len(rows):.0f}",
                "draws' gradients (s)": f"{grad * float(np.asarray(stats['n_steps']).sum()):.1f}",
                "divergences": diag.divergences,
                "max R-hat": f"{diag.max_r_hat:.3f}",
                "min ESS bulk": f"{diag.min_ess_bulk:.0f}",
                "checks": "pass" if not diag.problems else "; ".join(diag.problems)}
        lines.append(line)
        print(f"{line['rows']:>6} {line['runs']:>5} {line['seconds']:>8} {line['s/1k rows']:>9} "
              f"{line['steps/draw']:>10} {line['divergences']:>7} {line['max R-hat']:>9}",
              flush=True)
        print("        " + ", ".join(f"{key} {line[key]}" for key in
                                     ("tree depth", "gradient (us)", "ns/row",
                                      "draws' gradients (s)", "min ESS bulk", "checks")),
              flush=True)
    cli = cli_times(full, args.seed, args.cli_repeats) if args.cli_repeats else []
    if not args.no_md:
        data = ("simulated curves (40 runs, `checkpoint_curves`)" if args.simulated else
                f"ColPret GPT-3 curves, train and validation ({len(full)} rows)")
        tables = {"`fit` with the CLI's sampler defaults (4 chains x 1000 + 1000 draws)": lines}
        if cli:
            tables[f"`bayescale fit` on all {len(full)} rows, process start to exit "
                   "(target: at most 60 s)"] = cli
        record.write(args.out_md, "Fit time against checkpoint rows", tables,
                     [f"Data: {data}; each size a random subset of the rows, all runs kept.",
                      "gradient: one log density and gradient evaluation of the compiled model "
                      "(one leapfrog step), on one core; draws' gradients: that times the "
                      "leapfrog steps of the kept draws (all chains, CPU seconds); tuning "
                      "takes about as many again (its steps are not kept). seconds: model "
                      "building, compilation (or loading it from the cache), sampling and "
                      "the calibration's point fits; model, sampling, calibration: the "
                      "phases of `FitResult.phases` (sampling includes loading the compiled "
                      "model from the cache).",
                      "`bayescale fit`: the command as a user runs it (`--run-col run`, "
                      "default sampler settings), its compiled model already in the cache "
                      "(warm); wall: process start to exit (imports, fit, posterior file "
                      "written, warnings printed); CPU: user + system seconds, all threads. "
                      "On 2 cores the chains share the cores, so a busy machine (see the load "
                      "average) slows it."])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
