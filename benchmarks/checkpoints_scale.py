"""Fit time against the number of checkpoint rows, with the CLI's default sampler settings.

The table is the ColPret GPT-3 curves (train and validation curves of the eight models, 12,097
rows, ``examples/colpret_to_table.py --gpt3-split both``), or with ``--simulated`` loss curves
from a known law (:func:`bayescale.simulate.checkpoint_curves`, 40 runs). Each size is a random
subset of the rows (all runs kept); the time covers model building, compilation and sampling
(4 chains x 1,000 + 1,000 draws), as ``bayescale fit`` spends it. Leapfrog steps per draw show
whether a slower fit is the data's size or the posterior's shape.

Usage::

    .venv/bin/python benchmarks/checkpoints_scale.py [--sizes 1000,2500,5000,0] [--simulated]
                                                     [--seed 0]

(size 0 = all rows).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from colpret_to_table import DEFAULT_COLPRET, colpret_table  # noqa: E402

from bayescale import SamplerOptions, fit, load_runs  # noqa: E402
from bayescale.simulate import checkpoint_curves  # noqa: E402


def table(simulated: bool, colpret: Path) -> pd.DataFrame:
    """The full checkpoint table (params, tokens, loss, run)."""
    if simulated:
        frame = checkpoint_curves(list(np.geomspace(5e7, 2e9, 40)), checkpoints=300,
                                  random_seed=0)
    else:
        frame = colpret_table(colpret, ("gpt3",), gpt3_split="both")
    return frame[["params", "tokens", "loss", "run"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,2500,5000,0")
    parser.add_argument("--simulated", action="store_true")
    parser.add_argument("--colpret", type=Path, default=DEFAULT_COLPRET)
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampler")
    args = parser.parse_args()
    if not args.simulated and not args.colpret.is_dir():
        print(f"ColPret data not found at {args.colpret}; try --simulated", file=sys.stderr)
        return 1
    full = table(args.simulated, args.colpret)
    rng = np.random.default_rng(0)
    print(f"{'rows':>6} {'runs':>5} {'seconds':>8} {'s/1k rows':>9} {'steps/draw':>10} "
          f"{'diverg.':>7} {'max R-hat':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        rows = full if size <= 0 or size >= len(full) else full.iloc[
            np.sort(rng.choice(len(full), size, replace=False))]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "runs.csv"
            rows.to_csv(path, index=False)
            result = fit(load_runs(path, run_col="run"),
                         options=SamplerOptions(random_seed=args.seed, progress=False))
        steps = float(np.asarray(result.posterior.tree["sample_stats"].dataset["n_steps"]).mean())
        diag = result.diagnostics
        print(f"{len(rows):>6} {rows['run'].nunique():>5} {result.seconds:>8.1f} "
              f"{1000 * result.seconds / len(rows):>9.2f} {steps:>10.1f} {diag.divergences:>7} "
              f"{diag.max_r_hat:>9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
