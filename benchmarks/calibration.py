"""Backtest calibration on public run data (issue 5): do 90% intervals hold held-out large runs?

Runs the Hitchhiker's protocol (:mod:`bayescale.evaluate.backtest`) on the data in
``../shared/data``: the Epoch AI extraction of the Chinchilla runs and the ColPret families
(read with ``examples/colpret_to_table.py``), and prints per case and overall: the ARE of the
median, the coverage of the 90% interval and its median half-width, for bayescale (with the
learned discrepancy), the plain posterior (no discrepancy, same fit) and the baseline point fit
with bootstrap intervals (Huber on ln L, L-BFGS-B from Hoffmann's grid).

Cases (one per family; the hold-out follows the data's shape):

========================  =================================================================
epoch-chinchilla          245 final losses; hold out the top 10% of runs by compute
datablations-contour      Muennighoff et al.'s single-epoch C4 runs (33 final losses);
                          hold out the top 10% by compute
opt, gpt3, pile-t5        checkpoints; hold out the largest model; fit on checkpoints
                          >= 10B tokens (the Guide's cut); score its last 30% of tokens
olmo                      OLMo-1B and 7B-Twin-2T predict OLMo-7B (top run by compute)
datablations-c4 / -oscar  2.8B and 4.2B single-epoch runs predict the 8.7B
revisiting-lm (unseen)    Alabdulmohsin et al. 2022's LM curves, 16.8M-453M predict 1.07B;
                          added after the method was fixed, to judge it on data it was not
                          developed on (the issue asks for that); reported apart
========================  =================================================================

Data choices: GPT-3's digitised curves keep every 5th point and OLMo's every 3rd (the points are
dense; this bounds the run time); Pile-T5 is scored on ColPret's own target, the source's
``val_perplexity`` as given (its units are doubtful, see colpret_to_table.py; ln of it is not a
plausible loss). Checkpoint families are fitted as ``fit --run-col`` fits them: every family
here has one run per model size, and a run alone at its size gets no offset of its own
(:mod:`bayescale.inference.model`), so its checkpoints pin the law as in the classical fit while
the seed-noise prior gives the floor of a new run. (Free offsets per run absorbed the size
dependence, and offsets of a fixed scale, the rule before that, still worsened the ARE of the
checkpoint cases; the commit history has those figures.) For each case fitted on two model sizes
a line follows the table: the point fit held at alpha = 0.1 ... 6 (the baseline's
``alpha_profile``, :mod:`bayescale.evaluate.backtest`), how well each fits the training rows
against the free fit, and its ARE on the held-out rows. With two sizes E, A and alpha trade off
exactly, so the free fit's ARE there is where L-BFGS-B stopped, not what the data say.
Goal (issue 5): 90% coverage >= 80%, median half-width <= 8%, ARE of the
posterior median no worse than the point fit's.

    .venv/bin/python benchmarks/calibration.py [--draws 500] [--cases opt,gpt3] [--json out.json]
        [--likelihood normal|huber] [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results import Record, add_output_options

from bayescale.core.format import convergence_line, paired_points, ridge_line
from bayescale.data.runs import RunTable
from bayescale.evaluate.backtest import BacktestOptions, are_versus, backtest, summarize_cases
from bayescale.inference.model import LIKELIHOODS, ModelSpec
from bayescale.inference.sampling import CompiledCache, SamplerOptions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EPOCH = SHARED / "chinchilla_epoch" / "svg_extracted_data.csv"
COLPRET = SHARED / "colpret"


def _colpret_module():
    spec = importlib.util.spec_from_file_location("colpret_to_table",
                                                  ROOT / "examples" / "colpret_to_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(frame: pd.DataFrame, source: str) -> RunTable:
    data = frame[["params", "tokens", "loss", "run", "family"]].reset_index(drop=True)
    data["line"] = np.arange(len(data)) + 2
    return RunTable(data=data, source=source)


def epoch_runs() -> RunTable:
    """The Epoch AI extraction of Chinchilla's runs: D = C / (6 N)."""
    raw = pd.read_csv(EPOCH)
    n = raw["Model Size"].to_numpy()
    frame = pd.DataFrame({"params": n, "tokens": raw["Training FLOP"].to_numpy() / (6 * n),
                          "loss": raw["loss"].to_numpy(), "family": "epoch-chinchilla"})
    frame["run"] = [f"epoch-{i}" for i in range(len(frame))]
    return _table(frame, str(EPOCH))


def contour_runs() -> RunTable:
    """Muennighoff et al.'s single-epoch C4 runs from the datablations contour table."""
    path = COLPRET / "aggregated_eval" / "datablations_contour_losses.csv"
    raw = pd.read_csv(path)
    raw = raw[raw["epochs"] == 1]
    frame = pd.DataFrame({"params": raw["num_params"].to_numpy(),
                          "tokens": raw["token_num"].to_numpy(),
                          "loss": raw["openLM_loss"].to_numpy(),
                          "family": "datablations-contour"})
    frame["run"] = [f"contour-{i}" for i in range(len(frame))]
    return _table(frame, str(path))


def colpret_runs(family: str, thin: int = 1) -> RunTable:
    """One ColPret family as a run table (checkpoints; ``thin``: keep every k-th per run)."""
    module = _colpret_module()
    source = family.split("-")[0] if family.startswith("datablations") else family
    table = module.colpret_table(COLPRET, (source,))
    table = table[table["family"] == family]
    if family == "pile-t5":
        table = table.assign(loss=np.exp(table["loss"]))  # back to the source's val_perplexity
    if thin > 1:
        table = table[table.groupby("run").cumcount() % thin == 0]
    return _table(table, f"{COLPRET} ({family})")


CHECKPOINTS = BacktestOptions(holdout_models=1, min_tokens=10e9, score_frac=0.3)
CASES = {
    "epoch-chinchilla": (epoch_runs, BacktestOptions(holdout_compute_frac=0.1)),
    "datablations-contour": (contour_runs, BacktestOptions(holdout_compute_frac=0.1)),
    "opt": (lambda: colpret_runs("opt"), CHECKPOINTS),
    "gpt3": (lambda: colpret_runs("gpt3", thin=5), CHECKPOINTS),
    "pile-t5": (lambda: colpret_runs("pile-t5"), CHECKPOINTS),
    "olmo": (lambda: colpret_runs("olmo", thin=3),
             BacktestOptions(holdout_compute_frac=0.3, min_tokens=10e9, score_frac=0.3)),
    "datablations-c4": (lambda: colpret_runs("datablations-c4"), CHECKPOINTS),
    "datablations-oscar": (lambda: colpret_runs("datablations-oscar"), CHECKPOINTS),
    "revisiting-lm": (lambda: colpret_runs("revisiting-lm"), CHECKPOINTS),
}
#: Cases the method was not developed on (see the module docstring).
UNSEEN = ("revisiting-lm",)


def _pct(x: float | None) -> str:
    return "    -" if x is None else f"{100 * x:5.1f}"


#: Column blocks of the table: label and the case's key (None: the case itself).
BLOCKS = (("bayescale", None), ("plain posterior", "plain"), ("baseline", "baseline"))
FIELDS = (("ARE", "are_median"), ("cov90", "coverage_90"), ("hw90", "halfwidth_90_median"))


def table_rows(cases: list[dict]) -> tuple[list[dict[str, str]], list[str]]:
    """Per case and overall: ARE, 90% coverage, median 90% half-width (all in %); and the lines
    comparing the posterior median's ARE with the point fit's, paired by case."""
    seen = [case for case in cases if case["family"] not in UNSEEN]
    groups = [("overall (mean/median)", cases)]
    if 0 < len(seen) < len(cases):
        groups.append(("  of the seen cases", seen))
    # with 2 sizes the point fit's alpha is wherever L-BFGS-B stops on a flat ridge
    identified = [case for case in cases if case["train_sizes"] >= 3]
    if 0 < len(identified) < len(cases):
        groups.append(("  fitted on 3+ sizes", identified))
    blocks = [*cases, *({"family": label, "train_sizes": "", "n_test": "", "distance_decades": None,
                         **summarize_cases(group), "plain": summarize_cases(group, "plain"),
                         "baseline": summarize_cases(group, "baseline")}
                        for label, group in groups)]
    rows = []
    for case in blocks:
        dist = case.get("distance_decades")
        row = {"case": case["family"], "sizes": str(case["train_sizes"]),
               "rows": str(case["n_test"]), "dec": "" if dist is None else f"{dist:.2f}"}
        for label, key in BLOCKS:
            block = case if key is None else case.get(key) or {}
            row.update({f"{label} {name}": _pct(block.get(field)).strip()
                        for name, field in FIELDS})
        rows.append(row)
    paired = [f"ARE minus the point fit's, paired by case, {label.split(' (')[0].strip()}: "
              f"{paired_points(are_versus(group))}" for label, group in groups]
    return rows, paired


def print_table(rows: list[dict[str, str]], paired: list[str]) -> None:
    """The rows of :func:`table_rows` in fixed-width columns, then the paired lines."""
    head = (f"{'case':22s} {'sizes':>5s} {'rows':>5s} {'dec':>5s} | {'bayescale':^19s} | "
            f"{'plain posterior':^19s} | {'baseline':^19s}")
    sub = f"{'':22s} {'':5s} {'':5s} {'':5s} |" + " | ".join(["  ARE  cov90 hw90 "] * 3)
    print(head)
    print(sub)
    print("-" * len(head))
    for row in rows:
        values = list(row.values())
        parts = [" ".join(f"{v:>5s}" for v in values[4 + 3 * i:7 + 3 * i]) for i in range(3)]
        print(f"{values[0]:22s} {values[1]:>5s} {values[2]:>5s} {values[3]:>5s} | "
              + " | ".join(parts))
    for line in paired:
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=500, help="draws (and tuning) per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="random seed of sampling and bootstrap")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--no-calibration", action="store_true")
    parser.add_argument("--likelihood", default="studentt", choices=LIKELIHOODS,
                        help="row noise of the fits (the baseline is unchanged)")
    parser.add_argument("--json", type=Path, help="also write the cases as JSON here")
    add_output_options(parser, __file__)
    args = parser.parse_args()
    if not EPOCH.exists() or not COLPRET.exists():
        print(f"shared data not found under {SHARED}", file=sys.stderr)
        return 1
    record = Record.start(__file__, __doc__)
    start = time.perf_counter()
    sampler = SamplerOptions(chains=args.chains, draws=args.draws, tune=args.draws,
                             random_seed=args.seed, progress=False)
    spec = ModelSpec(likelihood=args.likelihood)
    cache = CompiledCache()
    cases, fits = [], []
    for name in args.cases.split(","):
        load, options = CASES[name]
        options = BacktestOptions(**{**options.__dict__, "n_boot": args.bootstrap,
                                     "calibration": not args.no_calibration})
        runs = load()
        report = backtest(runs, spec=spec, sampler=sampler, options=options, cache=cache)
        for case in report["cases"]:
            cal = case.get("calibration", {})
            fits.append({"case": name, "training rows": case["n_train"],
                         "scored rows": case["n_test"], "held out": case["held_out"],
                         "drift /decade": f"{cal.get('drift', 0):+.3f}",
                         "slope sd": f"{cal.get('slope_sd', 0):.3f}",
                         "origins": cal.get("origins", 0), "seconds": f"{case['seconds']:.0f}"})
            print(f"{name}: {case['n_train']} training rows, {case['n_test']} scored rows "
                  f"({case['held_out']}), drift {fits[-1]['drift /decade']}/decade, slope sd "
                  f"{fits[-1]['slope sd']}, {fits[-1]['origins']} origins, "
                  f"{fits[-1]['seconds']} s", file=sys.stderr)
        cases += report["cases"]
    rows, paired = table_rows(cases)
    print_table(rows, paired)
    lines = [line for line in [convergence_line(cases)] if line]
    lines += [f"{case['family']}: {message}" for case in cases for message in case["warnings"]]
    lines += [ridge_line(case["family"], case["baseline"]) for case in cases
              if "alpha_profile" in (case.get("baseline") or {})]
    for line in lines:
        print(line)
    seconds = time.perf_counter() - start
    legend = ("90% interval coverage and ARE in %; sizes = model sizes fitted (with 2, alpha "
              "follows its prior); dec = mean extrapolation distance in decades")
    print(f"\n{legend}; {len(cases)} cases, {cache.compiles} compiles; runtime {seconds:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(cases, indent=1))
    if not args.no_md:
        settings = (f"{args.chains} chains x {args.draws} draws (and as many tuning), "
                    f"{args.bootstrap} bootstrap fits of the baseline, seed {args.seed}, "
                    f"likelihood {args.likelihood}, calibration "
                    f"{'off' if args.no_calibration else 'on'}; {len(cases)} cases, "
                    f"{cache.compiles} compiles, {seconds:.0f} s")
        record.write(args.out_md, "Backtest calibration on public run data",
                     {"Held-out large runs: ARE of the median, 90% coverage, median 90% "
                      "half-width (all in %)": rows,
                      "The fits: rows, the learned discrepancy (calibration), time": fits},
                     [legend + ". The plain posterior is the same fit without the discrepancy; "
                      "the baseline is the point fit with bootstrap intervals.", settings,
                      *paired, *lines])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
