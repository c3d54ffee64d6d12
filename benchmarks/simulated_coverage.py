"""Coverage on simulated data with known truth (issues 2 and 3).

For each of many simulated isoFLOP sweeps (Epoch AI's law, 1% seed noise, 6 budgets from 1e18 to
3e20 FLOP, 8 sizes each), fit the posterior and record
  - parameter recovery: does the 90% interval of E, A, B, alpha, beta hold the truth?
  - new-run prediction beyond the data: fresh simulated runs (new seeds) at 1e21, 1e22 and
    1e23 FLOP, at the true optimum and at 4x fewer / more parameters; does the 90% `loss`
    interval hold them? And the law's `mean_loss` interval, the true expected loss?
Both should print close to 90%: the data are drawn from the model's own law and noise, so a
miss here is the sampler's or the interval arithmetic's, not the law's.

    .venv/bin/python benchmarks/simulated_coverage.py [--datasets 30] [--draws 500]
        [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from results import Record, add_output_options

from bayescale import SamplerOptions, fit, load_runs
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, isoflop_sweep

BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20, 3e20]
TARGET_BUDGETS = [1e21, 1e22, 1e23]
SEED_NOISE = 0.01


def targets() -> tuple[np.ndarray, np.ndarray]:
    """N, D of the held-out runs: optimum and 4x off it at each target budget."""
    t = EPOCH_LAW
    a = t["beta"] / (t["alpha"] + t["beta"])
    g = (t["alpha"] * t["A"] / (t["beta"] * t["B"])) ** (1 / (t["alpha"] + t["beta"]))
    n = np.array([g * (c / 6) ** a * f for c in TARGET_BUDGETS for f in (0.25, 1.0, 4.0)])
    c = np.repeat(TARGET_BUDGETS, 3)
    return n, c / (6 * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=30)
    parser.add_argument("--draws", type=int, default=500)
    add_output_options(parser, __file__)
    args = parser.parse_args()
    record = Record.start(__file__, __doc__)
    n_t, d_t = targets()
    true_mean = chinchilla_loss(EPOCH_LAW, n_t, d_t)
    param_hits = {k: 0 for k in EPOCH_LAW}
    new_hits = mean_hits = total = 0
    widths = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.datasets):
            frame = isoflop_sweep(BUDGETS, 8, seed_noise=SEED_NOISE, random_seed=1000 + i)
            path = Path(folder) / f"sim{i}.csv"
            frame.to_csv(path, index=False)
            options = SamplerOptions(chains=2, draws=args.draws, tune=args.draws,
                                     random_seed=i, progress=False)
            post = fit(load_runs(path), options=options).posterior
            summary = post.summary(level=0.9)
            for name, true in EPOCH_LAW.items():
                param_hits[name] += summary.loc[name, "lower"] <= true <= summary.loc[name, "upper"]
            pred = post.predict(params=n_t, tokens=d_t, level=0.9, random_seed=i)
            rng = np.random.default_rng(5000 + i)
            fresh = true_mean * np.exp(rng.normal(0.0, SEED_NOISE, true_mean.size))
            new_hits += int(((pred["loss_lower"] <= fresh) & (fresh <= pred["loss_upper"])).sum())
            mean_hits += int(((pred["mean_loss_lower"] <= true_mean)
                              & (true_mean <= pred["mean_loss_upper"])).sum())
            widths.extend((pred["loss_upper"] - pred["loss_lower"]) / 2 / pred["loss_median"])
            total += true_mean.size
    k = args.datasets
    seconds = time.perf_counter() - start
    ratio = max(TARGET_BUDGETS) / max(BUDGETS)
    setting = (f"{k} simulated sweeps ({len(BUDGETS)} budgets x 8 sizes, {SEED_NOISE:.0%} seed "
               f"noise)")
    print(f"{setting}, {seconds:.0f} s")
    print("parameter recovery, coverage of 90% intervals (target ~90%):")
    for name, hits in param_hits.items():
        print(f"  {name:<6} {hits / k:.0%}")
    budgets = ", ".join(f"{c:.0e}" for c in TARGET_BUDGETS)
    prediction = {
        "90% `loss` interval holds the fresh run": f"{new_hits / total:.1%}",
        "90% `mean_loss` interval holds the true mean": f"{mean_hits / total:.1%}",
        "median relative half-width of `loss`": f"{np.median(widths):.2%}",
    }
    print(f"new runs at {budgets} FLOP (up to {ratio:.0f}x the largest fitted budget), "
          f"{total} runs:")
    for label, value in prediction.items():
        print(f"  {label + ':':<47}{value}")
    if not args.no_md:
        record.write(
            args.out_md, "Coverage on simulated sweeps with known truth",
            {"Parameter recovery: coverage of the 90% interval (target ~90%)":
                 [{"parameter": name, "coverage": f"{hits / k:.0%}"}
                  for name, hits in param_hits.items()],
             f"New runs at {budgets} FLOP (up to {ratio:.0f}x the largest fitted budget), "
             f"{total} runs":
                 [{"measure": label, "value": value} for label, value in prediction.items()]},
            [f"{setting}; 2 chains x {args.draws} draws (and as many tuning) per fit; "
             f"{seconds:.0f} s of fitting."])


if __name__ == "__main__":
    main()
