"""Shared fixtures: fits that run once per session, and paths to the shared public data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bayescale import Posterior, SamplerOptions, fit, load_runs
from bayescale.law.simulate import EPOCH_LAW

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "isoflop_runs.csv"
SHARED = Path(os.environ.get("BAYESCALE_SHARED", ROOT.parent / "shared"))
EPOCH_CSV = SHARED / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
COLPRET = SHARED / "data" / "colpret"

#: Few draws: enough for the checks below, fast on 2 cores.
QUICK = SamplerOptions(chains=2, draws=400, tune=400, random_seed=1, progress=False)


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip (with the reason) where the shared public data is not beside the repository."""
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found at {path}")


@pytest.fixture(scope="session")
def example_fit():
    """The bundled example fitted once (2 chains x 400 draws)."""
    return fit(load_runs(EXAMPLE), options=QUICK)


@pytest.fixture(scope="session")
def example_posterior(example_fit) -> Posterior:
    """Posterior of the bundled example."""
    return example_fit.posterior


@pytest.fixture(scope="session")
def epoch_fit():
    """The Epoch AI Chinchilla runs fitted once with the CLI defaults (4 chains x 1000 draws)."""
    if not EPOCH_CSV.exists():
        pytest.skip(f"shared data not found at {EPOCH_CSV}")
    runs = load_runs(EPOCH_CSV, params_col="Model Size", flops_col="Training FLOP")
    return fit(runs, options=SamplerOptions(random_seed=0, progress=False))


@pytest.fixture()
def known_posterior() -> Posterior:
    """A posterior with known draws around Epoch's law (no sampling): for arithmetic tests."""
    rng = np.random.default_rng(0)
    size = 2000
    draws = {k: v * np.exp(rng.normal(0, 0.02, size)) for k, v in EPOCH_LAW.items()}
    draws["sigma_obs"] = np.full(size, 0.002)
    draws["seed_noise"] = np.full(size, 0.01)
    return Posterior.from_draws(draws)
