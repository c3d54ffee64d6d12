"""Wall time of `bayescale predict` and `bayescale optimal` on a saved posterior.

Timed from process start, as a user waits for them: these commands read the posterior file and
compute from its draws, with no model compilation, so they should answer at once. The posterior
is a fit of the bundled example. Target (issue 3): under 2 s each.

    .venv/bin/python benchmarks/predict_speed.py [--repeats 5] [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Record, add_output_options

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "isoflop_runs.csv"
BAYESCALE = str(Path(sys.executable).with_name("bayescale"))


def timed(args: list[str], repeats: int = 5) -> list[float]:
    """Seconds of each of ``repeats`` runs of a command."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_output_options(parser, __file__)
    args = parser.parse_args()
    record = Record.start(__file__, __doc__)
    rows = []
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
        print(f"command                 median of {args.repeats} (s), target < 2 s")
        for name, command in commands.items():
            times = timed([BAYESCALE, *command], args.repeats)
            median = statistics.median(times)
            print(f"{name:<23} {median:.2f}")
            rows.append({"command": f"bayescale {' '.join(command[:1] + command[2:])}",
                         "median (s)": f"{median:.2f}",
                         "runs (s)": ", ".join(f"{t:.2f}" for t in times)})
    if not args.no_md:
        record.write(args.out_md, "predict and optimal: wall time from process start",
                     {f"Median of {args.repeats} runs (target < 2 s)": rows},
                     [f"Posterior: `bayescale fit {EXAMPLE.relative_to(ROOT)}` (CLI defaults); "
                      "the file argument is left out of the commands above."])


if __name__ == "__main__":
    main()
