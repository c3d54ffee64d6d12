"""Turn the IBM ColPret run data into one bayescale run table (params, tokens, loss, run, family).

ColPret (Choshen, Zhang & Andreas 2024, "A Hitchhiker's Guide to Scaling Law Estimation") collects
public loss curves of many model families, each source in its own layout. This script maps them to
the canonical columns, one row per checkpoint:

=================  ===========================================================================
family             source and mapping
=================  ===========================================================================
gpt3               raw_data/gpt3/extracted.csv (curves digitised from Brown et al. 2020); N from
                   gpt3_metadata.xlsx; D = step x 1e9 (the step axis is billions of tokens);
                   loss = val_loss (``--gpt3-split val``, 6,506 rows), or also the train curves as
                   runs of their own (``both``, 12,097 rows; train sits ~0.04 nats below val).
opt                aggregated_eval/opt_trajectories.csv; D = steps x batch (0.5M tokens if N < 1B,
                   1M < 6B, 2M < 10B, 4M < 60B, else 2M, as ColPret's read_data.py);
                   loss = ln(ppl) in nats (ColPret uses log2).
olmo               aggregated_eval/olmo.csv; N = 1B / 7B as labelled; D = Step x 4e6; loss = mean
                   cross-entropy over the six validation sets every model reports (gab, 4chan,
                   manosphere, m2d2_wiki, mc4_en, wikitext_103; the 1B's v2-small-* subsets).
pile-t5            aggregated_eval/t5_pile.csv (encoder-decoder); N per size as ColPret;
                   D = steps x 1e6; loss = ln(val_perplexity). Caution: the source's values
                   (1.03-1.84) are not a plausible perplexity, so this family's "loss" is in
                   doubtful units; leave it out of pooled fits unless you know better.
datablations-c4,   aggregated_eval/datablations_losses.csv (Muennighoff et al. 2023); one run per
datablations-oscar (data, N, epochs); single-epoch runs only unless ``--all-epochs`` (repeated
                   data breaks the Chinchilla law; an ``epochs`` column is kept).
redpajama          raw_data/redPajama/{2.4B,6.7B}.csv: train loss against billions of tokens.
revisiting-lm      aggregated_eval/revisiting_lang.csv (Alabdulmohsin et al. 2022), the LM
                   val_loss curves of 5 sizes (16.8M-1.07B); D = ``Seen Examples`` (2.6e9-3.1e11,
                   read as tokens); loss as the source gives it (0.85-1.0; every curve starts at
                   0.999, a clipped value below 10B tokens). The source lists each curve 4 times.
=================  ===========================================================================

Steps at zero tokens are dropped (the law is undefined there), and rows that repeat another
exactly. The output is written atomically; never commit it (the data stay in ../shared).

Usage (one family at a time)::

    .venv/bin/python examples/colpret_to_table.py --families gpt3 --out /tmp/gpt3_runs.csv
    .venv/bin/bayescale fit /tmp/gpt3_runs.csv --run-col run --min-tokens 10B

A family fit of whole checkpoint tables (``--family-col family``) is slow and mixes badly;
pool families cut to their smallest models instead, as ``benchmarks/family_pooling.py`` does
(its results: docs/benchmarks/family_pooling.md; one checkpoint family's fit time:
docs/benchmarks/checkpoints_scale.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.core.fileio import atomic_path
from bayescale.data.runs import parse_size

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_COLPRET = ROOT.parent / "shared" / "data" / "colpret"
COLUMNS = ["params", "tokens", "loss", "run", "family", "split", "epochs", "source"]
#: Validation sets that every OLMo model in the source reports (base names).
OLMO_SETS = ("gab", "4chan", "manosphere", "m2d2_wiki", "mc4_en", "wikitext_103")
#: Pile-T5 sizes (ColPret util/read_data.py).
T5_PARAMS = {"base": 247_586_304, "large": 783_173_632, "xl": 2_849_804_288,
             "xxl": 11_135_426_560}


def _frame(**columns: object) -> pd.DataFrame:
    out = pd.DataFrame(columns)
    for name in COLUMNS:
        if name not in out:
            out[name] = "" if name in ("split", "source") else np.nan
    return out[COLUMNS]


def gpt3(root: Path, split: str = "val") -> pd.DataFrame:
    """GPT-3 curves; ``split`` is ``val``, ``train`` or ``both``."""
    sheet = pd.read_excel(root / "raw_data/gpt3/gpt3_metadata.xlsx", header=None)
    sizes = {str(name).split()[1].lower(): parse_size(str(n))
             for name, n in zip(sheet[0], sheet[1], strict=True)}
    raw = pd.read_csv(root / "raw_data/gpt3/extracted.csv")
    parts = []
    for column, name in (("val_loss", "val"), ("train_loss", "train")):
        if split not in (name, "both"):
            continue
        rows = raw.dropna(subset=[column])
        run = "gpt3-" + rows["model"] + ("" if split != "both" else f"-{name}")
        parts.append(_frame(
            params=rows["model"].map(sizes).to_numpy(), tokens=rows["step"].to_numpy() * 1e9,
            loss=rows[column].to_numpy(), run=run.to_numpy(), family="gpt3", split=name,
            source="raw_data/gpt3/extracted.csv"))
    return pd.concat(parts, ignore_index=True)


def opt(root: Path) -> pd.DataFrame:
    """OPT training trajectories (Xia et al. 2023)."""
    raw = pd.read_csv(root / "aggregated_eval/opt_trajectories.csv")
    params = raw["model_size"].map(lambda s: parse_size(str(s).upper()))
    batch = np.select([params < 1e9, params < 6e9, params < 10e9, params < 60e9],
                      [5e5, 1e6, 2e6, 4e6], 2e6)
    return _frame(params=params.to_numpy(), tokens=raw["steps"].to_numpy() * batch,
                  loss=np.log(raw["ppl"].to_numpy()), run=("opt-" + raw["model_size"]).to_numpy(),
                  family="opt", split="val", source="aggregated_eval/opt_trajectories.csv")


def olmo(root: Path) -> pd.DataFrame:
    """OLMo 1B, 7B and 7B-Twin-2T checkpoints."""
    raw = pd.read_csv(root / "aggregated_eval/olmo.csv")
    losses = []
    for _, row in raw.iterrows():
        values = []
        for name in OLMO_SETS:
            for column in (f"{name}-validation/CrossEntropyLoss",
                           f"v2-small-{name}-validation/CrossEntropyLoss"):
                if column in row and pd.notna(row[column]):
                    values.append(float(row[column]))
                    break
        losses.append(np.mean(values) if len(values) == len(OLMO_SETS) else np.nan)
    out = _frame(params=raw["num_params"].map(parse_size).to_numpy(),
                 tokens=raw["Step"].to_numpy() * 4e6, loss=np.asarray(losses),
                 run=raw["model_name"].to_numpy(), family="olmo", split="val",
                 source="aggregated_eval/olmo.csv")
    return out.dropna(subset=["loss"])


def pile_t5(root: Path) -> pd.DataFrame:
    """Pile-T5 checkpoints (see the module docstring for the doubtful loss units)."""
    raw = pd.read_csv(root / "aggregated_eval/t5_pile.csv").dropna(subset=["val_perplexity"])
    return _frame(params=raw["model_name"].map(T5_PARAMS).to_numpy(),
                  tokens=raw["steps"].to_numpy() * 1e6,
                  loss=np.log(raw["val_perplexity"].to_numpy()),
                  run=("pile-t5-" + raw["model_name"]).to_numpy(), family="pile-t5",
                  split="val", source="aggregated_eval/t5_pile.csv")


def datablations(root: Path, all_epochs: bool = False) -> pd.DataFrame:
    """Muennighoff et al. 2023 runs, one family per data set."""
    raw = pd.read_csv(root / "aggregated_eval/datablations_losses.csv")
    if not all_epochs:
        raw = raw[raw["epochs"] == 1]
    run = ("datablations-" + raw["data"] + "-" + raw["num_params"] + "-"
           + raw["epochs"].astype(str) + "ep")
    return _frame(params=raw["num_params"].map(parse_size).to_numpy(),
                  tokens=raw["token_num"].to_numpy(dtype=float), loss=raw["loss"].to_numpy(),
                  run=run.to_numpy(), family=("datablations-" + raw["data"]).to_numpy(),
                  split="val", epochs=raw["epochs"].to_numpy(dtype=float),
                  source="aggregated_eval/datablations_losses.csv")


def redpajama(root: Path) -> pd.DataFrame:
    """RedPajama-INCITE train-loss curves (no header: billions of tokens, loss)."""
    parts = []
    for size in ("2.4B", "6.7B"):
        raw = pd.read_csv(root / f"raw_data/redPajama/{size}.csv", header=None,
                          names=["tokens_b", "loss"])
        parts.append(_frame(params=parse_size(size), tokens=raw["tokens_b"].to_numpy() * 1e9,
                            loss=raw["loss"].to_numpy(), run=f"redpajama-{size}",
                            family="redpajama", split="train",
                            source=f"raw_data/redPajama/{size}.csv"))
    return pd.concat(parts, ignore_index=True)


def revisiting_lm(root: Path) -> pd.DataFrame:
    """The language-model curves of Alabdulmohsin et al. 2022 ("Revisiting neural scaling laws")."""
    raw = pd.read_csv(root / "aggregated_eval/revisiting_lang.csv")
    raw = raw[raw["Domain"] == "LM"]
    params = raw["Model"].astype(float).to_numpy()
    return _frame(params=params, tokens=raw["Seen Examples"].to_numpy(dtype=float),
                  loss=raw["Loss"].to_numpy(dtype=float),
                  run=[f"revisiting-lm-{n:.3g}" for n in params], family="revisiting-lm",
                  split="val", source="aggregated_eval/revisiting_lang.csv")


SOURCES = ("gpt3", "opt", "olmo", "pile-t5", "datablations", "redpajama", "revisiting-lm")


def colpret_table(
    root: Path = DEFAULT_COLPRET,
    families: tuple[str, ...] = SOURCES,
    *,
    gpt3_split: str = "val",
    all_epochs: bool = False,
) -> pd.DataFrame:
    """The canonical run table of the chosen ColPret sources.

    Examples
    --------
    >>> table = colpret_table(families=("opt",))  # doctest: +SKIP
    >>> sorted(table["run"].unique())[:2]  # doctest: +SKIP
    ['opt-1.3b', 'opt-125m']
    """
    readers = {
        "gpt3": lambda: gpt3(root, gpt3_split), "opt": lambda: opt(root),
        "olmo": lambda: olmo(root), "pile-t5": lambda: pile_t5(root),
        "datablations": lambda: datablations(root, all_epochs),
        "redpajama": lambda: redpajama(root), "revisiting-lm": lambda: revisiting_lm(root),
    }
    table = pd.concat([readers[name]() for name in families], ignore_index=True)
    table = table[(table["tokens"] > 0) & np.isfinite(table["loss"]) & (table["loss"] > 0)]
    table = table.drop_duplicates(subset=["params", "tokens", "loss", "run", "family"])
    return table.sort_values(["family", "run", "tokens"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--colpret", type=Path, default=DEFAULT_COLPRET,
                        help="ColPret data folder (default: ../shared/data/colpret)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/colpret_runs.csv"),
                        help="output table (.csv or .parquet); default /tmp/colpret_runs.csv")
    parser.add_argument("--families", default=",".join(SOURCES),
                        help=f"comma-separated sources among {', '.join(SOURCES)}")
    parser.add_argument("--gpt3-split", choices=("val", "train", "both"), default="val",
                        help="GPT-3 curves to keep (both: train curves as runs of their own)")
    parser.add_argument("--all-epochs", action="store_true",
                        help="keep datablations' multi-epoch runs (repeated data)")
    args = parser.parse_args(argv)
    chosen = tuple(name.strip() for name in args.families.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(SOURCES))
    if unknown:
        parser.error(f"unknown source(s) {', '.join(unknown)}: use {', '.join(SOURCES)}")
    if not args.colpret.is_dir():
        print(f"error: {args.colpret}: no such folder", file=sys.stderr)
        return 1
    if "gpt3" in chosen and importlib.util.find_spec("openpyxl") is None:
        print('error: GPT-3\'s sizes are in an .xlsx sheet: pip install -e ".[colpret]" '
              "(openpyxl), or leave gpt3 out of --families", file=sys.stderr)
        return 1
    table = colpret_table(args.colpret, chosen, gpt3_split=args.gpt3_split,
                          all_epochs=args.all_epochs)
    with atomic_path(args.out) as tmp:
        if args.out.suffix.lower() in (".parquet", ".pq"):
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    counts = table.groupby("family").agg(runs=("run", "nunique"), rows=("run", "size"))
    print(counts.to_string(), file=sys.stderr)
    print(f"{len(table)} rows, {table['run'].nunique()} runs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
