"""Wall time of `bayescale predict` and `bayescale optimal` on a saved posterior, from process
start (no model compilation). Target (issue 3): under 2 s each.

    .venv/bin/python benchmarks/predict_speed.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "isoflop_runs.csv"
BAYESCALE = str(Path(sys.executable).with_name("bayescale"))


def timed(args: list[str], repeats: int = 5) -> float:
    """Median seconds of a command over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        fit = Path(folder) / "example.posterior.nc"
        subprocess.run([BAYESCALE, "fit", str(EXAMPLE), "--out", str(fit)], check=True,
                       capture_output=True)
        commands = {
            "predict (1 target)": ["predict", str(fit), "--params", "7B", "--tokens", "140B"],
            "predict --json": ["predict", str(fit), "-N", "70B", "-D", "1.4T", "--json"],
            "optimal (2 budgets)": ["optimal", str(fit), "-C", "1e21", "-C", "5.88e23"],
            "optimal --params": ["optimal", str(fit), "--params", "7B"],
        }
        print("command                 median of 5 (s), target < 2 s")
        for name, args in commands.items():
            print(f"{name:<23} {timed([BAYESCALE, *args]):.2f}")


if __name__ == "__main__":
    main()
