"""Wall time of `bayescale fit` on the Epoch AI Chinchilla runs, process start to file written.

What a user waits for on a real table of final losses: imports, model compilation, sampling
(4 chains x 1000 draws, the CLI defaults) and writing the posterior file. Targets (issues 2 and
28): at most 15 s; with the compiled-model cache warm at most 5 s on the 2-core machine, cold
no slower than without the cache, and the same draws cold or warm.

Three settings, each in fresh processes: `no cache` (``BAYESCALE_COMPILE_CACHE=off``: nutpie
compiles the model, as before the cache), `cold` (an empty cache: compile and fill it) and
`warm` (the cache filled by the cold run). Each run records its CPU time (user + system, all
threads) and the 1-minute load average, since a busy machine stretches the wall time.

    .venv/bin/python benchmarks/fit_speed.py [--repeats 3] [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results import Record, add_output_options

ROOT = Path(__file__).resolve().parents[1]
EPOCH = ROOT.parent / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
BAYESCALE = Path(sys.executable).with_name("bayescale")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_fit(out: Path, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Seconds from process start until the posterior file exists, the process's CPU seconds
    and the 1-minute load average at its start."""
    out.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(
        [str(BAYESCALE), "fit", str(EPOCH), "--params-col", "Model Size",
         "--flops-col", "Training FLOP", "--out", str(out), "--chains", "4", "--draws", "1000"],
        check=True, capture_output=True, env={**os.environ, **(env or {})},
    )
    seconds = time.perf_counter() - start
    assert out.exists()
    return seconds, _children_cpu() - cpu, load


def draws(path: Path) -> dict[str, np.ndarray]:
    """The posterior draws of a file, by variable."""
    import xarray as xr

    with xr.open_datatree(path) as tree:
        data = tree["posterior"].dataset
        return {name: data[name].values.copy() for name in data.data_vars}


def same_draws(a: Path, b: Path) -> bool:
    """Whether two posterior files hold bit-identical draws."""
    first, second = draws(a), draws(b)
    return first.keys() == second.keys() and all(np.array_equal(first[k], second[k])
                                                  for k in first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_output_options(parser, __file__)
    args = parser.parse_args()
    record = Record.start(__file__, __doc__)
    runs: dict[str, list[tuple[float, float, float]]] = {"no cache": [], "cold": [], "warm": []}
    identical = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        off = {"BAYESCALE_COMPILE_CACHE": "off"}
        for i in range(args.repeats):
            runs["no cache"].append(time_fit(base / "off.nc", off))
            cache = {"BAYESCALE_CACHE_DIR": str(base / f"cache{i}")}  # empty: cold
            runs["cold"].append(time_fit(base / "cold.nc", cache))
            runs["warm"].append(time_fit(base / "warm.nc", cache))
            identical.append(same_draws(base / "cold.nc", base / "warm.nc")
                             and same_draws(base / "off.nc", base / "warm.nc"))
    rows = len(pd.read_csv(EPOCH))
    print(f"bayescale fit, Epoch Chinchilla runs ({rows} rows), 4 chains x 1000 draws")
    table = []
    for name, timings in runs.items():
        walls = [t for t, _, _ in timings]
        cpus = [c for _, c, _ in timings]
        loads = [load for _, _, load in timings]
        median = statistics.median(walls)
        print(f"{name:>8}: median {median:.1f} s (runs " + ", ".join(f"{t:.1f}" for t in walls)
              + f"); CPU median {statistics.median(cpus):.1f} s; load "
              + ", ".join(f"{load:.1f}" for load in loads))
        table.append({"setting": name, "median (s)": f"{median:.1f}",
                      "runs (s)": ", ".join(f"{t:.1f}" for t in walls),
                      "CPU median (s)": f"{statistics.median(cpus):.1f}",
                      "load at start": ", ".join(f"{load:.1f}" for load in loads)})
    same = all(identical)
    print(f"same draws without cache, cold and warm: {same}")
    print("targets: warm <= 5 s, cold no slower than no cache, same draws")
    if not args.no_md:
        record.write(args.out_md, "fit: wall time on the Epoch AI Chinchilla runs",
                     {f"`bayescale fit`, {args.repeats} runs of each setting (targets: warm <= "
                      "5 s, cold no slower than no cache)": table},
                     [f"Data: `{EPOCH.relative_to(ROOT.parent)}` (outside the repository).",
                      "Settings: `no cache` sets BAYESCALE_COMPILE_CACHE=off; `cold` starts "
                      "from an empty BAYESCALE_CACHE_DIR; `warm` reuses it. PyTensor's own "
                      "cache (~/.pytensor) is warm in all three.",
                      f"Same draws (bit-identical) without cache, cold and warm: {same}.",
                      "CPU: user + system seconds of the process, all threads; on 2 cores the "
                      "wall time of a quiet machine is about the CPU time less the chains' "
                      "overlap."])


if __name__ == "__main__":
    main()
