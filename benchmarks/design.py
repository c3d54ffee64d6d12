"""Does `bayescale design` pick runs that narrow a planned run's interval (issue 25)?

Three checks:

1. Simulated (known truth): isoFLOP sweeps from Epoch AI's law (1% seed noise, budgets 1e18 to
   1e20 FLOP, 6 sizes each) are fitted; the target is the true compute-optimal run at 3e22 FLOP.
   The compute of one more isoFLOP budget (6 runs at 3e20 FLOP) is the budget. Three ways to
   spend it, each simulated from the truth and refitted: the batch `design` picks (3 runs among
   its default grid), that next isoFLOP budget, and random feasible runs from the same grid up
   to the design batch's compute. Per method: the realised 90% ETI width of a new run's loss at
   the target, the error of its median against the true expected loss, and the coverage of a
   fresh simulated target run and of the true expected loss.
2. Retrospective on the Epoch Chinchilla runs: fit the runs below 1e20 FLOP; `design` chooses 3
   among the actual runs between 1e20 and 1e21 FLOP (given as candidates, the budget the cost
   of the 3 largest); the runs above 1e21 FLOP are the future. Error and interval width on
   them after refitting with the design's 3, with 3 random choices (averaged) and with the 3
   largest.
3. Time of `bayescale design` (the command, one target, 3 runs) on the bundled example.

    .venv/bin/python benchmarks/design.py [--sweeps 20] [--random-epoch 8]
        [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from results import ROOT, Record, add_output_options

from bayescale import SamplerOptions, fit, load_runs
from bayescale.data.compute import compute
from bayescale.data.runs import RunTable
from bayescale.evaluate.design import candidate_grid, design
from bayescale.inference.sampling import CompiledCache
from bayescale.law.laws import get_law
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, isoflop_sweep

BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20]
NEXT_BUDGET = 3e20
SIZES = 6
SEED_NOISE = 0.01
TARGET_COMPUTE = 3e22
RUNS = 3
LEVEL = 0.9
OPTIONS = SamplerOptions(chains=2, draws=500, tune=500, random_seed=0, progress=False)
EPOCH = Path("/work/shared/data/chinchilla_epoch/svg_extracted_data.csv")


def truth_target() -> tuple[float, float]:
    """The true compute-optimal (N, D) at :data:`TARGET_COMPUTE`."""
    law = get_law("chinchilla")
    n, d = law.optimal({k: np.array([v]) for k, v in EPOCH_LAW.items()}, TARGET_COMPUTE)
    return float(n[0]), float(d[0])


def simulate(params: np.ndarray, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Losses of new runs at (N, D) from the truth, with seed noise."""
    mean = chinchilla_loss(EPOCH_LAW, params, tokens)
    return mean * np.exp(rng.normal(0.0, SEED_NOISE, np.size(mean)))


def table(frame: pd.DataFrame) -> RunTable:
    frame = frame[["params", "tokens", "loss"]].reset_index(drop=True)
    return RunTable(frame.assign(run=[f"r{i}" for i in range(len(frame))],
                                 line=np.arange(len(frame)) + 2))


def added(base: pd.DataFrame, n: np.ndarray, d: np.ndarray, loss: np.ndarray) -> RunTable:
    return table(pd.concat([base, pd.DataFrame({"params": n, "tokens": d, "loss": loss})],
                           ignore_index=True))


def interval_at(post, n: float, d: float, seed: int) -> tuple[float, float, float]:
    row = post.predict(params=n, tokens=d, level=LEVEL, random_seed=seed).iloc[0]
    return float(row.loss_lower), float(row.loss_median), float(row.loss_upper)


def simulated(sweeps: int, cache: CompiledCache) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_t, d_t = truth_target()
    true_loss = float(chinchilla_loss(EPOCH_LAW, n_t, d_t))
    rows = []
    for i in range(sweeps):
        rng = np.random.default_rng(2500 + i)
        sweep = isoflop_sweep(BUDGETS, SIZES, seed_noise=SEED_NOISE, random_seed=2500 + i)
        base = sweep[["params", "tokens", "loss"]]
        options = replace(OPTIONS, random_seed=i)
        post = fit(table(base), options=options, cache=cache).posterior
        extra = isoflop_sweep([NEXT_BUDGET], SIZES, seed_noise=0.0)
        budget = float(extra["compute"].sum())
        start = time.perf_counter()
        plan = design(post, n_t, d_t, budget, runs=RUNS, random_seed=i)
        design_seconds = time.perf_counter() - start
        n_des = np.array([c.params for c in plan.batch])
        d_des = np.array([c.tokens for c in plan.batch])
        spent = float(compute(n_des, d_des).sum())
        grid = candidate_grid(post, n_t, d_t, budget)
        order = rng.permutation(len(grid))
        pick, used = [], 0.0
        for j in order:
            if used + grid["compute"][j] <= spent * (1 + 1e-9):
                pick.append(j)
                used += grid["compute"][j]
        n_rnd, d_rnd = grid["params"].to_numpy()[pick], grid["tokens"].to_numpy()[pick]
        n_iso, d_iso = extra["params"].to_numpy(float), extra["tokens"].to_numpy(float)
        target_run = float(simulate(np.array([n_t]), np.array([d_t]), rng)[0])
        arms = {"design": (n_des, d_des), "isoFLOP next budget": (n_iso, d_iso),
                "random feasible": (n_rnd, d_rnd)}
        lo, med, hi = interval_at(post, n_t, d_t, i)
        rows.append({"sweep": i, "method": "no added runs", "runs": 0, "compute": 0.0,
                     "width": hi - lo, "error": abs(med - true_loss),
                     "covers_run": lo <= target_run <= hi, "covers_mean": lo <= true_loss <= hi,
                     "expected_width": plan.width_now, "seconds": design_seconds})
        for name, (n_add, d_add) in arms.items():
            loss = simulate(n_add, d_add, rng)
            refit = fit(added(base, n_add, d_add, loss), options=options, cache=cache).posterior
            lo, med, hi = interval_at(refit, n_t, d_t, i)
            rows.append({
                "sweep": i, "method": name, "runs": len(n_add),
                "compute": float(compute(n_add, d_add).sum()), "width": hi - lo,
                "error": abs(med - true_loss), "covers_run": lo <= target_run <= hi,
                "covers_mean": lo <= true_loss <= hi,
                # an empty batch (no run expected to help) leaves the width as it is
                "expected_width": ((plan.batch_effect.expected_width if plan.batch_effect
                                    else plan.width_now) if name == "design"
                                   else float("nan")),
                "seconds": float("nan")})
        done = pd.DataFrame(rows)
        print(f"sweep {i + 1}/{sweeps}: "
              + ", ".join(f"{m} {w:.4f}" for m, w in
                          done[done.sweep == i].set_index("method")["width"].items()),
              file=sys.stderr, flush=True)
    per = pd.DataFrame(rows)
    summary = per.groupby("method", sort=False).agg(
        sweeps=("sweep", "count"), runs=("runs", "mean"), compute=("compute", "mean"),
        mean_width=("width", "mean"), mean_error=("error", "mean"),
        coverage_run=("covers_run", "mean"), coverage_mean=("covers_mean", "mean"),
        expected_width=("expected_width", "mean")).reset_index()
    wide = per.pivot(index="sweep", columns="method", values="width")
    wins = pd.DataFrame([{
        "comparison": f"design narrower than {other}",
        "sweeps": int((wide["design"] < wide[other]).sum()), "of": len(wide),
        "mean width ratio design / other": float((wide["design"] / wide[other]).mean())}
        for other in ("isoFLOP next budget", "random feasible", "no added runs")])
    return summary, wins


def heldout_scores(post, future: pd.DataFrame, seed: int) -> dict[str, float]:
    pred = post.predict(params=future["params"].to_numpy(), tokens=future["tokens"].to_numpy(),
                        level=LEVEL, random_seed=seed)
    y = future["loss"].to_numpy()
    return {"mean_abs_error": float(np.mean(np.abs(pred["loss_median"] - y))),
            "mean_width": float(np.mean(pred["loss_upper"] - pred["loss_lower"])),
            "coverage": float(np.mean((pred["loss_lower"] <= y) & (y <= pred["loss_upper"])))}


def epoch(random_choices: int, cache: CompiledCache) -> tuple[pd.DataFrame, list[str]]:
    runs = load_runs(EPOCH, params_col="Model Size", flops_col="Training FLOP")
    data = runs.data[["params", "tokens", "loss"]].copy()
    c = compute(data["params"], data["tokens"])
    base, pool, future = data[c < 1e20], data[(c >= 1e20) & (c <= 1e21)], data[c > 1e21]
    pool = pool.reset_index(drop=True)
    post = fit(table(base), options=OPTIONS, cache=cache).posterior
    pool_c = compute(pool["params"], pool["tokens"]).to_numpy()
    largest = np.argsort(pool_c)[-RUNS:]
    budget = float(pool_c[largest].sum())
    n_t = float(np.exp(np.log(future["params"]).mean()))
    d_t = float(np.exp(np.log(future["tokens"]).mean()))
    start = time.perf_counter()
    plan = design(post, n_t, d_t, budget, runs=RUNS,
                  candidates=pool.assign(compute=pool_c)[["params", "tokens", "compute"]])
    seconds = time.perf_counter() - start
    key = {(round(p), round(t)): i for i, (p, t) in enumerate(zip(pool["params"],
                                                                  pool["tokens"], strict=True))}
    chosen = [key[(round(b.params), round(b.tokens))] for b in plan.batch]

    def refit_with(idx: list[int], seed: int) -> dict[str, float]:
        frame = pd.concat([base, pool.iloc[idx]], ignore_index=True)
        post_k = fit(table(frame), options=replace(OPTIONS, random_seed=seed), cache=cache)
        return heldout_scores(post_k.posterior, future, 0)

    rows = [{"choice": "none (runs below 1e20 only)", "repeats": 1,
             "compute": 0.0, **heldout_scores(post, future, 0)},
            {"choice": "design's 3", "repeats": 1, "compute": float(pool_c[chosen].sum()),
             **refit_with(chosen, 0)},
            {"choice": "3 largest", "repeats": 1, "compute": float(pool_c[largest].sum()),
             **refit_with(list(largest), 0)}]
    rng = np.random.default_rng(25)
    randoms = []
    for r in range(random_choices):
        idx = list(rng.choice(len(pool), RUNS, replace=False))
        randoms.append({"compute": float(pool_c[idx].sum()), **refit_with(idx, r + 1)})
    mean = pd.DataFrame(randoms).mean()
    rows.append({"choice": "3 random (mean)", "repeats": random_choices, **mean.to_dict()})
    picked = "; ".join(f"N = {pool['params'][i]:.3g}, D = {pool['tokens'][i]:.3g}"
                       for i in chosen)
    notes = [f"Epoch: {len(base)} runs below 1e20 FLOP fitted, {len(pool)} candidates in "
             f"[1e20, 1e21], {len(future)} held-out runs above 1e21; design target: the "
             f"geometric mean N = {n_t:.3g}, D = {d_t:.3g} of the held-out runs; budget "
             f"{budget:.3g} FLOP (the 3 largest candidates' cost); design's picks: {picked}; "
             f"design took {seconds:.1f} s"]
    return pd.DataFrame(rows), notes


def timing() -> pd.DataFrame:
    cmd = [str(ROOT / ".venv" / "bin" / "bayescale"), "design",
           str(ROOT / "examples" / "isoflop_runs.posterior.nc"), "--target", "7B:140B",
           "--budget", "3e21", "--runs", str(RUNS), "--json"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return pd.DataFrame([{"command": "bayescale design examples/isoflop_runs.posterior.nc "
                                     f"--target 7B:140B --budget 3e21 --runs {RUNS} --json",
                          "seconds": seconds, "limit": 30.0}])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--random-epoch", type=int, default=8,
                        help="random triples of Epoch runs to average over")
    parser.add_argument("--skip-simulated", action="store_true")
    add_output_options(parser, __file__)
    args = parser.parse_args()
    record = Record.start(__file__, __doc__)
    cache = CompiledCache()
    tables, notes = {}, []
    tables["Timing: one target on the bundled example"] = timing()
    print(tables["Timing: one target on the bundled example"].to_string(), file=sys.stderr)
    if EPOCH.exists():
        frame, epoch_notes = epoch(args.random_epoch, cache)
        tables["Retrospective: Epoch Chinchilla runs, held-out runs above 1e21 FLOP"] = frame
        notes += epoch_notes
        print(frame.to_string(), file=sys.stderr)
    if not args.skip_simulated:
        summary, wins = simulated(args.sweeps, cache)
        tables[f"Simulated: {args.sweeps} sweeps, target at {TARGET_COMPUTE:.0e} FLOP"] = summary
        tables["Simulated: design against the others, sweep by sweep"] = wins
        print(summary.to_string(), file=sys.stderr)
        print(wins.to_string(), file=sys.stderr)
    notes += [
        f"Sampler: nutpie, {OPTIONS.chains} chains x {OPTIONS.draws} draws ({OPTIONS.tune} "
        "tuning), one compiled model reused for every fit (CompiledCache); each fit learns its "
        "calibration as `bayescale fit` does.",
        "design: 64 outcomes per candidate, reweighting only (no refits, max_refits = 0), "
        f"{RUNS} runs, default settings otherwise.",
        "Widths are of the 90% ETI of a new run's loss (nats); error: |median - true expected "
        "loss| (simulated) or |median - observed loss| (Epoch); coverage_run: a fresh "
        "simulated run at the target inside the interval, coverage_mean: the true expected "
        "loss inside it.",
        "expected_width (simulated, design row): what design predicted for its batch; "
        "no-added-runs row: the width before.",
        f"compute: FLOP of the added runs (simulated: one more isoFLOP budget is {SIZES} runs "
        f"at {NEXT_BUDGET:.0e}); random feasible runs are drawn from design's default grid "
        "up to the design batch's compute.",
    ]
    if not args.no_md:
        record.write(args.out_md, "Design: which runs to add before the big one", tables, notes)


if __name__ == "__main__":
    main()
