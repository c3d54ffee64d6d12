"""Wall time of `bayescale fit` on the Epoch AI Chinchilla runs, process start to file written.

4 chains x 1000 draws (the CLI defaults). Target (issue 2): at most 15 s on the 2-core machine.

    .venv/bin/python benchmarks/fit_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCH = ROOT.parent / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
BAYESCALE = Path(sys.executable).with_name("bayescale")


def time_fit(out: Path) -> float:
    """Seconds from process start until the posterior file exists."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    subprocess.run(
        [str(BAYESCALE), "fit", str(EPOCH), "--params-col", "Model Size",
         "--flops-col", "Training FLOP", "--out", str(out), "--chains", "4", "--draws", "1000"],
        check=True, capture_output=True,
    )
    seconds = time.perf_counter() - start
    assert out.exists()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = [time_fit(Path(folder) / "epoch.nc") for _ in range(args.repeats)]
    print("bayescale fit, Epoch Chinchilla runs (245 rows), 4 chains x 1000 draws")
    print("runs (s): " + ", ".join(f"{t:.1f}" for t in times))
    print(f"median: {statistics.median(times):.1f} s (target <= 15 s)")


if __name__ == "__main__":
    main()
