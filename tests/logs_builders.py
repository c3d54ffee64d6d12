"""Training logs written from a simulated law, as W&B exports them (one history CSV per run)
and as TensorBoard event folders: for the import and fit-many tests and the benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss

#: Tokens per optimizer step: a power of two, so token counts are exact in float32 (TensorBoard).
TOKENS_PER_STEP = 2**20
TOKENS = "throughput/total_tokens"
#: Each logged metric's law: two validation sets with different irreducible losses.
METRIC_TRUTHS = {
    "eval/c4/CrossEntropyLoss": {**EPOCH_LAW},
    "eval/pile/CrossEntropyLoss": {**EPOCH_LAW, "E": 1.65, "beta": 0.34},
}
SIZES = (2.5e7, 5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9)


def histories(sizes: tuple[float, ...] = SIZES, evals: int = 8, tokens_per_param: float = 20.0,
              seed_noise: float = 0.0, row_noise: float = 0.002,
              random_seed: int = 1) -> dict[str, pd.DataFrame]:
    """Per-run logs: a training row every step block and, at ``evals`` steps spread
    log-evenly, an eval row (W&B logs them on separate rows of one ``_step``). Each eval row
    is the law times exp(N(0, ``row_noise``)) (and a run's shift, ``seed_noise``); losses are
    float32, as TensorBoard stores them."""
    rng = np.random.default_rng(random_seed)
    out = {}
    for n in sizes:
        last = int(tokens_per_param * n / TOKENS_PER_STEP)
        steps = np.unique(np.geomspace(max(last // 20, 1), last, evals).astype(int))
        tokens = steps * TOKENS_PER_STEP
        run_shift = rng.normal(0.0, seed_noise)
        evals_frame = pd.DataFrame({"_step": steps, TOKENS: tokens.astype(float)})
        for metric, truth in METRIC_TRUTHS.items():
            loss = chinchilla_loss(truth, n, tokens.astype(float))
            noisy = loss * np.exp(run_shift + rng.normal(0.0, row_noise, len(steps)))
            evals_frame[metric] = noisy.astype(np.float32).astype(float)
        train = pd.DataFrame({"_step": steps, TOKENS: tokens.astype(float),
                              "train/CrossEntropyLoss": (evals_frame[next(iter(METRIC_TRUTHS))]
                                                         * 0.98).astype(np.float32)
                              .astype(float)})
        frame = pd.concat([train, evals_frame], ignore_index=True).sort_values(
            "_step", kind="stable").reset_index(drop=True)
        frame["_runtime"] = frame["_step"] * 0.5
        out[f"run-{n / 1e6:g}M"] = frame
    return out


def manifest(runs: dict[str, pd.DataFrame], path: Path) -> Path:
    """The manifest CSV of these runs: run, params (as 125M-style sizes), seed."""
    rows = [{"run": name, "params": name.split("-", 1)[1], "seed": 0} for name in runs]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_wandb(runs: dict[str, pd.DataFrame], folder: Path, duplicate: int = 0) -> Path:
    """One ``<run>.csv`` per run, as W&B's history export; ``duplicate`` rows of the first run
    repeated exactly (exporters do)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, frame) in enumerate(runs.items()):
        if i == 0 and duplicate:
            frame = pd.concat([frame, frame.head(duplicate)], ignore_index=True)
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def write_tensorboard(runs: dict[str, pd.DataFrame], folder: Path) -> Path:
    """One event folder per run (``<run>/events.out.tfevents.*``), every value a scalar
    summary at its ``_step``, written by tensorboard's own event writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for name, frame in runs.items():
        writer = EventFileWriter(str(folder / name))
        for row in frame.to_dict(orient="records"):
            values = [summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
                      for tag, value in row.items()
                      if tag not in ("_step", "_runtime") and value == value]
            writer.add_event(event_pb2.Event(step=int(row["_step"]), wall_time=1.0e9,
                                             summary=summary_pb2.Summary(value=values)))
        writer.close()
    return folder
