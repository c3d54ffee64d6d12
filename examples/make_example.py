"""Make the bundled example: a Chinchilla-style isoFLOP sweep simulated from a published law.

Truth: Epoch AI's replication of Chinchilla (Besiroglu et al. 2024), with 1% seed noise.
Writes ``isoflop_runs.csv`` (the runs) and ``isoflop_truth.json`` (the law, the noise, and the
true expected loss of a held-out large run) beside this script.

    python examples/make_example.py
"""

from __future__ import annotations

import json
from pathlib import Path

from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, isoflop_sweep

HERE = Path(__file__).parent
BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20, 3e20]
SEED_NOISE = 0.01
RANDOM_SEED = 2026


def main() -> None:
    runs = isoflop_sweep(BUDGETS, sizes_per_budget=8, seed_noise=SEED_NOISE,
                         random_seed=RANDOM_SEED)
    runs.drop(columns=["true_mean_loss"]).to_csv(HERE / "isoflop_runs.csv", index=False)
    target = {"params": 7e9, "tokens": 1.4e11}
    truth = {
        "law": "chinchilla", "parameters": EPOCH_LAW, "seed_noise": SEED_NOISE,
        "source": "Besiroglu et al. 2024 (Epoch AI), arXiv:2404.10102",
        "budgets": BUDGETS, "random_seed": RANDOM_SEED,
        "held_out_target": {**target, "true_mean_loss": float(
            chinchilla_loss(EPOCH_LAW, target["params"], target["tokens"]))},
    }
    (HERE / "isoflop_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {len(runs)} runs to {HERE / 'isoflop_runs.csv'}")


if __name__ == "__main__":
    main()
