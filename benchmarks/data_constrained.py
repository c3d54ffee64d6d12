"""Repeated data (issue 26): do the repeated-data laws forecast many-epoch runs from few-epoch ones?

On Muennighoff et al.'s (2023) public runs (``../shared/data/colpret/aggregated_eval``,
datablations; MIT licence, see the README there), each of ``--law muennighoff`` (effective N'
and D' of repeated data), the candidate ``overfit-penalty`` law (Chinchilla plus an additive
overfitting penalty, Lovelace et al. 2026; ``bayescale.law.laws.CANDIDATE_LAWS``, not offered
by ``fit --law``) and ``--law chinchilla`` (which cannot tell a repeated token
from a fresh one) is fitted on the same rows and scored on the same held-out rows:

- **c4, oscar** (``datablations_losses.csv``; each family alone): 2.8B, 4.2B and 8.7B models
  trained to the same tokens with 1-44 epochs of fewer unique tokens. Fit on the runs of at most
  4 epochs, predict those of 7, 14 and 44 epochs. Checkpoints of at least 10B tokens (the
  Hitchhiker's Guide's cut), at most 20 per fitted run (evenly spaced), a run label per run
  (``--run-col``); held-out rows: the last 30% of each run's tokens, at most 10 per run. The
  unique tokens of a checkpoint are min(tokens per epoch, tokens seen).
- **contour** (``datablations_contour_losses.csv``): final losses of 7M-8.7B models on C4, up
  to 9000 epochs. Fit on the runs of at most 16 epochs, predict those of more. Unique tokens
  are ``token_num / epochs``: the file's ``tokens_per_epoch`` column says 1.5B for every row,
  but its run names (``146m91b100m``: 146M parameters, 91B tokens, 100M unique) and
  token_num / epochs agree with each other and not with it.

Scores: ARE of the posterior median of a new run's loss (the mean and the median over rows of
|L - L_hat| / L) and coverage of its 90% interval (calibrated discrepancy included, as
``predict``: for the repeated-data laws its distance includes the epochs beyond the fitted
ones), per family, model size and epochs (the contour also below and above 0.4B parameters:
the issue describes it as small models, 7M-200M+, but it holds models up to 8.7B);
PSIS-LOO of the fits on the training rows (``compare``); the posteriors of R*_D and R*_N
beside the paper's 15.4 and 5.3, and of the penalty's P, delta, kappa; a regime check, the
same parameters fitted again on the fitted and held-out rows together (where their intervals
do not overlap, the held-out runs follow another relation); and on the contour, a 5-fold
cross-validation over all runs, scored on the held-out runs of more than 16 epochs (the fits
then see many-epoch runs: a check of each law's form there, not of forecasts beyond the
fitted epochs). Priors are the laws'
defaults (docs/limits.md), not tuned on these runs. Each law is fitted through ``fit`` as
the command line does; Chinchilla's runs are read without their unique tokens (a law of N and
D ignores them, and its calibration is then the N, D, C one).

    .venv/bin/python benchmarks/data_constrained.py [--chains 2 --draws 500 --tune 500]
        [--cases c4,oscar,contour] [--out-md PATH | --no-md]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results import Record, add_output_options

from bayescale import ModelSpec, SamplerOptions, fit, load_runs
from bayescale.evaluate.compare import compare
from bayescale.law.laws import CANDIDATE_LAWS, get_law
from bayescale.law.laws import LAWS as REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "colpret" / "aggregated_eval"
SIZES = {"2.8B": 2.8e9, "4.2B": 4.2e9, "8.7B": 8.7e9}
PAPER = {"R_D": 15.4, "R_N": 5.3}
#: Parameters of the repeated-data laws printed with their posteriors (paper values where known).
REPORTED = {"muennighoff": ("R_D", "R_N"), "overfit-penalty": ("P", "delta", "kappa")}
MIN_TOKENS, TRAIN_ROWS, TEST_ROWS, SCORE_FRAC = 1e10, 20, 10, 0.3
#: The contour's scores are also split at this size: the issue describes the contour as small
#: models (7M-200M+), but the file holds models up to 8.7B (the next size above 0.28B is 0.42B).
SMALL = 4e8
LAWS = ("muennighoff", "overfit-penalty", "chinchilla")


def _even(frame: pd.DataFrame, most: int) -> pd.DataFrame:
    """At most ``most`` rows of each run, evenly spaced by position (tokens sorted)."""
    parts = []
    for _, rows in frame.sort_values("tokens").groupby("run", sort=False):
        keep = np.unique(np.linspace(0, len(rows) - 1, min(most, len(rows))).astype(int))
        parts.append(rows.iloc[keep])
    return pd.concat(parts, ignore_index=True)


def family_case(family: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and held-out rows of one datablations family."""
    raw = pd.read_csv(DATA / "datablations_losses.csv")
    raw = raw[(raw["data"] == family) & (raw["token_num"] >= MIN_TOKENS)]
    frame = pd.DataFrame({
        "params": raw["num_params"].map(SIZES), "tokens": raw["token_num"].astype(float),
        "loss": raw["loss"], "epochs": raw["epochs"].astype(int),
        "unique_tokens": np.minimum(raw["tokens_per_epoch"], raw["token_num"]),
        "size": raw["num_params"], "run": raw["num_params"] + "-" + raw["epochs"].astype(str)})
    train = _even(frame[frame["epochs"] <= 4], TRAIN_ROWS)
    test = frame[(frame["epochs"] >= 7) & (frame["epochs"] <= 44)]
    last = test.groupby("run")["tokens"].transform("max")
    test = _even(test[test["tokens"] >= (1 - SCORE_FRAC) * last], TEST_ROWS)
    return train, test


def contour_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training (<= 16 epochs) and held-out (> 16) final losses of the contour runs."""
    raw = pd.read_csv(DATA / "datablations_contour_losses.csv")
    frame = pd.DataFrame({
        "params": raw["num_params"].astype(float), "tokens": raw["token_num"].astype(float),
        "loss": raw["openLM_loss"], "epochs": raw["epochs"].astype(float),
        "unique_tokens": raw["token_num"] / raw["epochs"],
        "size": raw["num_params"].map(lambda n: f"{n / 1e6:.0f}M"),
        "run": [f"row{i}" for i in range(len(raw))]})
    return (frame[frame["epochs"] <= 16].reset_index(drop=True),
            frame[frame["epochs"] > 16].reset_index(drop=True))


def _scores(post, test: pd.DataFrame, seed: int) -> pd.DataFrame:
    unique = test["unique_tokens"].to_numpy() if post.law.covariates else None
    frame = post.predict(params=test["params"].to_numpy(), tokens=test["tokens"].to_numpy(),
                         level=0.9, random_seed=seed, unique_tokens=unique)
    y = test["loss"].to_numpy()
    return pd.DataFrame({
        "size": test["size"].to_numpy(), "params": test["params"].to_numpy(),
        "epochs": test["epochs"].to_numpy(),
        "are": np.abs(y - frame["loss_median"].to_numpy()) / y,
        "covered": (frame["loss_lower"].to_numpy() <= y) & (y <= frame["loss_upper"].to_numpy()),
        "halfwidth": (frame["loss_upper"] - frame["loss_lower"]).to_numpy() / 2
        / frame["loss_median"].to_numpy()})


def _figures(scored: pd.DataFrame) -> dict[str, object]:
    """Rows, mean and median ARE, 90% coverage and median half-width of scored rows."""
    return {"rows": len(scored), "ARE": f"{scored['are'].mean():.2%}",
            "median ARE": f"{scored['are'].median():.2%}",
            "90% coverage": f"{scored['covered'].mean():.0%}",
            "90% half-width (median)": f"{scored['halfwidth'].median():.2%}"}


def _fit(label: str, law: str, runs, options: SamplerOptions,
         likelihood: str = "studentt") -> tuple:
    """``fit`` as the command line runs it, one line on its time and convergence checks, and
    whether it passed them."""
    start = time.perf_counter()
    result = fit(runs, ModelSpec(law=law, likelihood=likelihood), options)
    diag = result.diagnostics
    note = (f"{label}, {law}: {len(runs.data)} rows, {time.perf_counter() - start:.0f} s, "
            f"{diag.divergences} divergences, max R-hat {diag.max_r_hat:.3f}, "
            f"min ESS bulk {diag.min_ess_bulk:.0f}"
            + ("" if diag.ok else f" (convergence check failed: {diag.problems[0]})"))
    print(note, file=sys.stderr)
    return result.posterior, note, diag.ok


def _load(frame: pd.DataFrame, path: Path, unique: bool):
    """``frame`` written as a CSV and read back by the loader, as ``fit`` reads a file."""
    frame.drop(columns=["size", "epochs"]).to_csv(path, index=False)
    return load_runs(path, run_col="run", unique_tokens_col="unique_tokens" if unique else None)


def _interval(summary: pd.DataFrame, name: str) -> str:
    return (f"{summary.loc[name, 'median']:.3g} [{summary.loc[name, 'lower']:.3g}, "
            f"{summary.loc[name, 'upper']:.3g}]")


def regime_check(name: str, train: pd.DataFrame, test: pd.DataFrame, options: SamplerOptions,
                 folder: Path, fitted: dict) -> tuple[list[dict], list[str]]:
    """Each repeated-data law fitted again on the fitted and held-out rows together: do the
    held-out runs obey the relation the fitted runs imply? Where the 90% intervals of a
    repeated-data parameter do not overlap, the runs beyond the fitted epochs follow another
    relation than those within, which no fit on the fitted rows alone can foresee. A
    diagnostic of the forecasts above, not a forecast."""
    runs = _load(pd.concat([train, test]), folder / f"{name}-all.csv", unique=True)
    rows, notes = [], []
    for law, names in REPORTED.items():
        post, note, _ = _fit(f"{name} (all rows, regime check)", law, runs, options)
        notes.append(note)
        every, some = post.summary(level=0.9), fitted[law].summary(level=0.9)
        rows += [{"case": name, "law": law, "parameter": p,
                  "fitted rows: median [90%]": _interval(some, p),
                  "all rows: median [90%]": _interval(every, p),
                  "intervals overlap": "yes" if max(some.loc[p, "lower"], every.loc[p, "lower"])
                  <= min(some.loc[p, "upper"], every.loc[p, "upper"]) else "no"}
                 for p in names]
    return rows, notes


def cross_validate(name: str, frame: pd.DataFrame, options: SamplerOptions, folder: Path,
                   folds: int = 5) -> tuple[list[dict], list[str]]:
    """The runs split at random (seeded) into ``folds`` folds; each fold predicted from a fit
    on the others, so the fits see runs of every epoch count: can each law's form and noise
    describe the many-epoch runs when it has seen such runs? Scored on the held-out runs of
    more than 16 epochs. The forecasts above answer the stricter question, runs beyond the
    fitted epochs. With the default Student-t likelihood and the runs whose loss blew up in
    the fit, chains can settle in separate modes (``fit`` then warns and proposes
    ``--likelihood huber``), so each law is cross-validated with both likelihoods."""
    fold = np.random.default_rng(options.random_seed).permutation(len(frame)) % folds
    rows, notes = [], []
    for likelihood, law in itertools.product(("studentt", "huber"), LAWS):
        parts, passed = [], 0
        for k in range(folds):
            runs = _load(frame[fold != k], folder / f"{name}-fold{k}.csv",
                         unique=bool(get_law(law).covariates))
            post, note, ok = _fit(f"{name} (fold {k + 1} of {folds}, {likelihood})", law, runs,
                                  options, likelihood)
            notes.append(note)
            passed += ok
            parts.append(_scores(post, frame[fold == k], options.random_seed))
        scored = pd.concat(parts)
        many = scored[scored["epochs"] > 16]
        figures = _figures(many)
        rows.append({"case": name, "law": law, "likelihood": likelihood,
                     "held-out runs": len(scored), "runs > 16 epochs": figures.pop("rows"),
                     **figures, "fits passing the checks": f"{passed} of {folds}"})
    return rows, notes


def run_case(name: str, train: pd.DataFrame, test: pd.DataFrame, options: SamplerOptions,
             folder: Path, keep: Path | None = None) -> dict:
    """Fit each law on ``train`` (through the loader, as ``fit`` reads a file) and score."""
    repeated = _load(train, folder / f"{name}.csv", unique=True)
    fresh = _load(train, folder / f"{name}-fresh.csv", unique=False)
    posts, rows, notes = {}, [], []
    for law in LAWS:
        posts[law], note, _ = _fit(name, law, repeated if get_law(law).covariates else fresh,
                                   options)
        notes.append(note)
        if keep is not None:
            posts[law].save(keep / f"{name}-{law}.posterior.nc")
        scored = _scores(posts[law], test, options.random_seed)
        groups = [("all", scored), *scored.groupby("size", sort=False)]
        if name == "contour":  # the issue calls the contour "small models (7M-200M+)"
            small = scored["params"] < SMALL
            groups += [(f"below {SMALL / 1e9:g}B", scored[small]),
                       (f"{SMALL / 1e9:g}B and more", scored[~small])]
        bands = (((16, 100), (100, 1000), (1000, np.inf)) if name == "contour"
                 else ((4, 7), (7, 14), (14, 44)))
        groups += [(f"epochs ({lo:g}, {hi:g}]",
                    scored[(scored["epochs"] > lo) & (scored["epochs"] <= hi)])
                   for lo, hi in bands]
        rows += [{"case": name, "law": law, "size": group, **_figures(part)}
                 for group, part in groups]
    table, _ = compare([posts[law] for law in LAWS], list(LAWS))
    loo = [{"case": name, "law": law, **{k: (f"{v:.1f}" if isinstance(v, float) else v)
                                          for k, v in row.items()}}
           for law, row in table.iterrows()]
    limits = []
    for law, names in REPORTED.items():
        summary = posts[law].summary(level=0.9)
        limits += [{"case": name, "law": law, "parameter": p,
                    "posterior median": f"{summary.loc[p, 'median']:.3g}",
                    "90% interval": f"[{summary.loc[p, 'lower']:.3g}, "
                                    f"{summary.loc[p, 'upper']:.3g}]",
                    "paper": PAPER.get(p, "n/a")} for p in names]
    regime, regime_notes = regime_check(name, train, test, options, folder, posts)
    crossed, crossed_notes = (cross_validate(name, pd.concat([train, test], ignore_index=True),
                                             options, folder)
                              if name == "contour" else ([], []))
    return {"scores": rows, "loo": loo, "limits": limits, "regime": regime, "cv": crossed,
            "notes": notes + regime_notes + crossed_notes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--cases", default="c4,oscar,contour")
    parser.add_argument("--keep", type=Path, default=None,
                        help="save the posterior files in this folder (outside the repository)")
    add_output_options(parser, __file__)
    args = parser.parse_args()
    # The additive-penalty law is a candidate, not offered by `fit --law`: registered in this
    # process only, so that it is fitted, predicted and compared as the registered laws are.
    REGISTRY.update(CANDIDATE_LAWS)
    record = Record.start(__file__, __doc__)
    options = SamplerOptions(chains=args.chains, draws=args.draws, tune=args.tune,
                             random_seed=args.random_seed, progress=False)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            train, test = contour_case() if name == "contour" else family_case(name)
            results.append(run_case(name, train, test, options, Path(tmp), args.keep))
    scores = pd.DataFrame([r for res in results for r in res["scores"]])
    print(scores.to_string(index=False), file=sys.stderr)
    if args.no_md:
        return
    notes = [n for res in results for n in res["notes"]]
    notes += [
        "ARE: mean |L - L_hat| / L of the posterior median of a new run's loss (median ARE: "
        "the median over rows); coverage: share "
        "of held-out rows inside the 90% interval (seed noise and the calibrated discrepancy "
        "included, as `bayescale predict`).",
        "Fitted: c4 and oscar on runs of at most 4 epochs, held out 7-44; contour on runs of "
        "at most 16 epochs, held out more. LOO: PSIS-LOO on the fitted rows (elpd, higher is "
        "better); all laws fitted on the same rows.",
        "overfit-penalty: the candidate law of docs/limits.md (Lovelace et al. 2026, as "
        "rendered by Weng 2026), not offered by `fit --law`; fitted here to judge whether it "
        "earns its place.",
        "Priors: the laws' defaults (docs/limits.md); R*_D ~ lognormal(15.4, 0.75) and R*_N ~ "
        "lognormal(5.3, 0.75) around the paper's values; P ~ lognormal(0.05, 2), delta, kappa "
        "~ lognormal(1, 0.5); none tuned on these runs.",
        "Calibration: for the repeated-data laws the extrapolation distance includes log10 "
        "epochs beyond the fitted epochs, and the rolling-origin backtest also cuts along the "
        "epochs (docs/extrapolation.md); Chinchilla's runs carry no unique tokens.",
    ]
    record.write(args.out_md, "Repeated data: Muennighoff's law (and a candidate) against "
                 "Chinchilla's", tables={
        "Held-out runs: ARE and 90% coverage": scores,
        "PSIS-LOO on the fitted rows (bayescale compare)":
            pd.DataFrame([r for res in results for r in res["loo"]]),
        "Repeated-data parameters: posterior beside the papers' values (Muennighoff et al. "
        "2023; the penalty's are not known here)":
            pd.DataFrame([r for res in results for r in res["limits"]]),
        "Regime check: the repeated-data parameters fitted on the fitted rows and on all rows "
        "(fitted and held out); a diagnostic, not a forecast":
            pd.DataFrame([r for res in results for r in res["regime"]]),
        "Contour, cross-validated: 5 random folds of all runs, each predicted from a fit on "
        "the other four, with the default Student-t likelihood and with Huber's; scored on "
        "the held-out runs of more than 16 epochs":
            pd.DataFrame([r for res in results for r in res["cv"]]),
    }, notes=notes)


if __name__ == "__main__":
    main()
