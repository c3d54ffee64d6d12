"""Pooled family fit against a family fitted alone, on the ColPret families (../shared/data).

For each held-out family, cut it down to its k smallest models (``--keep-sizes``, 3 by default,
2 for a family of three), then predict its largest model four ways: a fit of the cut family
alone, a family fit (``--family-col``) of the cut family together with every other family in
full, the same with ``--separate-e`` (each family its own E: the ColPret families were
trained on different data, the case the option is for), and ``similar``: ``--separate-e`` with
only the family of the same recipe in full (:data:`SIMILAR`), the Guide's advice to borrow
from a similar model family. A fifth fit, ``full``, is a reference,
not a method: the family alone on all its sizes, target included. Its ARE is in-sample, how
closely the law's form can follow the target's checkpoints at all; a method that extrapolates
to a lower ARE than that owes it partly to luck. The protocol is the Hitchhiker's
Guide's (Choshen et al. 2024): checkpoints at or below 10B tokens dropped, the target scored on
its last 30% of checkpoints by ARE = mean |L - L_hat| / L (L_hat: the posterior median of the
law's expected loss), plus how many of those checkpoints the new run's 90% interval covers.
Runs are thinned to at most ``--per-run`` checkpoints, log-evenly, to keep fits short.

Usage::

    .venv/bin/python benchmarks/family_pooling.py [--per-run 60] [--keep-sizes 3]
                                                  [--seed-noise 0.01] [--chains 2] [--draws 500]
                                                  [--seeds 1]
                                                  [--methods alone,pooled,separate_e,similar,full]
                                                  [--out-md PATH | --no-md]

A quicker run leaves out the slowest fits, the pools of every family: ``--methods
alone,similar,full``; or fewer held-out families: ``--families gpt3,opt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from results import Record, add_output_options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from colpret_to_table import DEFAULT_COLPRET, colpret_table  # noqa: E402

from bayescale import ModelSpec, SamplerOptions, fit, load_runs  # noqa: E402

#: Families pooled (Pile-T5 is left out: its source "perplexity" is in doubtful units).
SOURCES = ("gpt3", "opt", "olmo", "datablations", "redpajama", "revisiting-lm")
#: Held-out families; revisiting-lm was added after the family model was fixed (unseen data).
HELD_OUT = ("gpt3", "opt", "datablations-c4", "datablations-oscar", "revisiting-lm")
#: The family of the same recipe, for the Guide's "borrow from a similar model family"; chosen
#: by recipe before any fit was scored. OPT set out to replicate GPT-3's sizes and training
#: (Zhang et al. 2022); datablations' C4 and OSCAR runs are one recipe on two data sets
#: (Muennighoff et al. 2023). Revisiting LM has no such family.
SIMILAR = {"gpt3": "opt", "opt": "gpt3", "datablations-c4": "datablations-oscar",
           "datablations-oscar": "datablations-c4"}
METHODS = ("alone", "pooled", "separate_e", "similar", "full")


def thin(table: pd.DataFrame, per_run: int) -> pd.DataFrame:
    """At most ``per_run`` checkpoints per run, log-evenly spaced in tokens, the last kept.

    The sort is stable: GPT-3's digitised curves repeat token counts with other losses, and an
    unstable sort would pick among them by the rest of the table, so adding a family would change
    which of GPT-3's rows are kept, and its score alone.
    """
    parts = []
    for _, run in table.sort_values("tokens", kind="stable").groupby("run"):
        if len(run) > per_run:
            logs = np.log(run["tokens"].to_numpy())
            wanted = np.linspace(logs[0], logs[-1], per_run)
            run = run.iloc[np.unique(np.searchsorted(logs, wanted).clip(0, len(run) - 1))]
        parts.append(run)
    return pd.concat(parts, ignore_index=True)


def score(post, target: pd.DataFrame, family: str | None) -> dict[str, float]:
    """ARE of the median expected loss and 90% coverage on the target's last 30%."""
    tail = target[target["tokens"] >= 0.7 * target["tokens"].max()]
    frame = post.predict(tail["params"].to_numpy(), tail["tokens"].to_numpy(), level=0.9,
                         family=family)
    loss = tail["loss"].to_numpy()
    are = float(np.mean(np.abs(loss - frame["mean_loss_median"].to_numpy()) / loss))
    inside = (loss >= frame["loss_lower"].to_numpy()) & (loss <= frame["loss_upper"].to_numpy())
    width = float(np.mean((frame["loss_upper"] - frame["loss_lower"]).to_numpy() / loss))
    return {"are": are, "coverage": float(inside.mean()), "rel_width": width}


def fit_table(table: pd.DataFrame, spec: ModelSpec, options: SamplerOptions
              ) -> tuple[object, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.csv"
        table.to_csv(path, index=False)
        runs = load_runs(path, run_col="run", family_col="family" if spec.families else None)
        start = time.perf_counter()
        result = fit(runs, spec, options=options)
        return result, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--colpret", type=Path, default=DEFAULT_COLPRET)
    parser.add_argument("--per-run", type=int, default=60)
    parser.add_argument("--families", default=",".join(HELD_OUT))
    parser.add_argument("--keep-sizes", type=int, default=3,
                        help="model sizes kept of the held-out family (fewer if it has fewer "
                             "than one more than this)")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500, help="draws per chain (and as many tune)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="fit each method with sampler seeds 0..S-1 and average: pooled "
                             "fits mix slowly, and one seed's ARE can be far from another's")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed-noise", type=float, default=None,
                        help="fix the seed noise (e.g. 0.01) instead of estimating it")
    add_output_options(parser, __file__)
    args = parser.parse_args()
    if not args.colpret.is_dir():
        print(f"ColPret data not found at {args.colpret}", file=sys.stderr)
        return 1
    methods = args.methods.split(",")
    if unknown := set(methods) - set(METHODS):
        print(f"unknown method(s) {sorted(unknown)}; choose from {METHODS}", file=sys.stderr)
        return 1
    record = Record.start(__file__, __doc__)
    base_options = SamplerOptions(chains=args.chains, draws=args.draws, tune=args.draws,
                                  progress=False)
    table = colpret_table(args.colpret, SOURCES)
    table = table[table["tokens"] > 10e9]  # Hitchhiker's Guide: drop checkpoints <= 10B tokens
    table = thin(table, args.per_run)[["params", "tokens", "loss", "run", "family"]]
    results = []
    for family in args.families.split(","):
        rows = table[table["family"] == family]
        sizes = np.sort(rows["params"].unique())
        k = min(args.keep_sizes, sizes.size - 1)
        target = rows[rows["params"] == sizes[-1]]
        cut = rows[rows["params"].isin(sizes[:k])]
        pooled_table = pd.concat([table[table["family"] != family], cut], ignore_index=True)
        similar = SIMILAR.get(family)
        similar_table = (pd.concat([table[table["family"] == similar], cut], ignore_index=True)
                         if similar else None)
        entry = {"family": family, "fit_sizes": [float(s) for s in sizes[:k]],
                 "target_size": float(sizes[-1]), "target_rows": len(target)}
        print(f"{family} fit on {k} smallest -> {sizes[-1]:.3g}:", flush=True)
        for name, fitted, spec in (
            ("alone", cut.drop(columns="family"), ModelSpec(seed_noise=args.seed_noise)),
            ("pooled", pooled_table, ModelSpec(seed_noise=args.seed_noise, families=True)),
            ("separate_e", pooled_table,
             ModelSpec(seed_noise=args.seed_noise, families=True, separate_e=True)),
            ("similar", similar_table,
             ModelSpec(seed_noise=args.seed_noise, families=True, separate_e=True)),
            ("full", rows.drop(columns="family"), ModelSpec(seed_noise=args.seed_noise)),
        ):
            if name not in methods or (name == "similar" and similar is None):
                continue
            runs = []
            for seed in range(args.seeds):
                options = replace(base_options, random_seed=seed)
                result, seconds = fit_table(fitted, spec, options)
                runs.append({**score(result.posterior, target,
                                     family if spec.families else None),
                             "seconds": seconds, "max_r_hat": result.diagnostics.max_r_hat,
                             "divergences": result.diagnostics.divergences})
                e = runs[-1]
                print(f"  {name:10s} seed {seed}: ARE {e['are']:.4f}  90% coverage "
                      f"{e['coverage']:.2f}  rel. width {e['rel_width']:.3f}  R-hat "
                      f"{e['max_r_hat']:.3f}  {e['divergences']} div  {seconds:.0f} s", flush=True)
            entry[name] = {key: float(np.mean([r[key] for r in runs]))
                           for key in ("are", "coverage", "rel_width", "seconds")}
            entry[name].update(are_by_seed=[r["are"] for r in runs],
                               max_r_hat=max(r["max_r_hat"] for r in runs),
                               divergences=sum(r["divergences"] for r in runs))
        results.append(entry)
    mean = {k: float(np.mean([e[k]["are"] for e in results if k in e])) for k in methods
            if any(k in e for e in results)}
    notes = []
    for name in mean:
        if name not in ("alone", "full") and "alone" in mean:
            both = [e for e in results if name in e]
            wins = sum(e[name]["are"] < e["alone"]["are"] for e in both)
            alone = np.mean([e["alone"]["are"] for e in both])
            notes.append(f"{name}: mean ARE over seeds lower than alone in {wins} of {len(both)} "
                         f"families (mean {mean[name]:.4f} against alone's {alone:.4f} on them)")
            print(notes[-1])
    notes.append("mean ARE over families (and seeds), each method over the families it applies "
                 "to: " + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()))
    print(notes[-1])
    if args.json:
        args.json.write_text(json.dumps({"results": results, "mean_are": mean}, indent=1))
    if not args.no_md:
        rows = [{"family": e["family"], "fit sizes": ", ".join(f"{s:.3g}" for s in e["fit_sizes"]),
                 "target": f"{e['target_size']:.3g}", "method": name,
                 "ARE": f"{e[name]['are']:.4f}", "90% coverage": f"{e[name]['coverage']:.2f}",
                 "rel. width": f"{e[name]['rel_width']:.3f}",
                 "max R-hat": f"{e[name]['max_r_hat']:.3f}",
                 "divergences": e[name]["divergences"], "seconds": f"{e[name]['seconds']:.0f}"}
                for e in results for name in METHODS if name in e]
        if methods != list(METHODS) or args.families != ",".join(HELD_OUT):
            left = [m for m in METHODS if m not in methods]
            notes.append(f"A quicker setting than the default: methods {', '.join(methods)}"
                         f"{' (left out: ' + ', '.join(left) + ')' if left else ''}; held-out "
                         f"families {args.families.replace(',', ', ')}.")
        notes.append(f"{args.chains} chains x {args.draws} draws (and as many tuning), "
                     f"{args.seeds} sampler seed(s) per method, at most {args.per_run} "
                     f"checkpoints per run, {args.keep_sizes} sizes kept of the held-out family.")
        record.write(args.out_md, "Pooled family fit against a family alone (ColPret)",
                     {"Held-out family's largest model, last 30% of its checkpoints": rows},
                     notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
