"""Peak memory and wall time of `bayescale predict --targets` with many targets.

`predict` answers targets in chunks (``PREDICT_CHUNK_VALUES`` draws x targets at a time), so its
memory should stay flat in the number of targets; issue 29 asks for 100,000 targets under 1 GB.
The posterior holds known draws (4 chains x 1000, as `fit`'s defaults) around Epoch's law on the
bundled example's runs, with the calibration a fit stores; the targets are sizes from 10M to
1T at 20 tokens per parameter. Each run is one `bayescale predict FIT --targets T --json` process,
timed from its start; its peak resident memory comes from the kernel (``wait4``).

    .venv/bin/python benchmarks/predict_targets_memory.py [--targets 1000 10000 100000]
        [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results import Record, add_output_options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BAYESCALE = str(Path(sys.executable).with_name("bayescale"))


def posterior_file(folder: Path) -> Path:
    """A posterior of known draws on the example's runs (no sampling), as a fit writes it."""
    from tests.builders import example_frame, known_draws_posterior

    path = folder / "example.posterior.nc"
    known_draws_posterior(4000, chains=4, data=example_frame(), calibration=True,
                          noise_spread=0.2).save(path)
    return path


def targets_file(folder: Path, count: int) -> Path:
    """``count`` targets: N from 10M to 1T, D = 20 N."""
    params = np.geomspace(1e7, 1e12, count)
    path = folder / f"targets_{count}.csv"
    pd.DataFrame({"params": params, "tokens": 20 * params}).to_csv(path, index=False)
    return path


def measure(fit: Path, targets: Path) -> tuple[float, float, int]:
    """Seconds, peak resident memory (MB) and the number of answers of one predict process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([BAYESCALE, "predict", str(fit), "--targets", str(targets),
                                 "--json"], stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"predict failed with exit code {proc.returncode}")
        out.seek(0)
        import json

        answers = len(json.load(out)["targets"])
    return seconds, usage.ru_maxrss / 1024, answers  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10_000, 100_000])
    add_output_options(parser, __file__)
    args = parser.parse_args()
    record = Record.start(__file__, __doc__)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fit = posterior_file(folder)
        for count in args.targets:
            seconds, peak, answers = measure(fit, targets_file(folder, count))
            assert answers == count, (answers, count)
            print(f"{count:>8,} targets: {seconds:7.1f} s, peak memory {peak:7.0f} MB",
                  flush=True)
            rows.append({"targets": f"{count:,}", "seconds": f"{seconds:.1f}",
                         "peak memory (MB)": f"{peak:.0f}",
                         "ms per target": f"{1000 * seconds / count:.2f}"})
    if not args.no_md:
        record.write(
            args.out_md, "predict --targets: peak memory and time",
            tables={"One `bayescale predict FIT --targets T --json` process per row, 4,000 "
                    "draws": rows},
            notes=["Peak memory is the process's maximum resident set size (the kernel's "
                   "ru_maxrss), interpreter and libraries included.",
                   "Issue 29's target: 100,000 targets under 1 GB."])


if __name__ == "__main__":
    main()
