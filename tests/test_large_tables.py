"""What keeps fits of large checkpoint tables fast, without changing what they compute: one
noise scale for rows that share it, starts screened on a subset of rows, warnings' medians
from evenly spaced draws, and a compiled-model key that tells such models apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale import ModelSpec, RunTable
from bayescale.inference.model import build_model
from bayescale.inference.sampling import structure_key
from bayescale.law import baseline
from bayescale.law.simulate import EPOCH_LAW, checkpoint_curves, chinchilla_loss
from bayescale.posterior import warnings
from tests.builders import known_draws_posterior


def _curves(alone: int = 0) -> RunTable:
    """Checkpoint curves of two seeds per size; ``alone`` extra rows of a one-row run each."""
    frame = checkpoint_curves([1e8, 3e8, 1e9], checkpoints=10, seeds=2, random_seed=1)
    extra = pd.DataFrame({"params": np.geomspace(2e8, 6e8, alone) if alone else [],
                          "tokens": np.geomspace(4e9, 1e10, alone) if alone else [],
                          "run": [f"single{i}" for i in range(alone)]})
    if alone:
        extra["loss"] = chinchilla_loss(EPOCH_LAW, extra["params"], extra["tokens"])
    return RunTable(pd.concat([frame, extra], ignore_index=True)[
        ["params", "tokens", "loss", "run"]])


def _one_scale(runs: RunTable) -> bool:
    """Whether the observed ln L of the model of ``runs`` gets one noise scale for all rows."""
    model = build_model(runs, ModelSpec(likelihood="normal")).model
    sigma = model["log_loss"].owner.inputs[-1]  # Normal(mu, sigma): sigma is the last input
    return all(dim == 1 for dim in sigma.type.shape)  # a scalar, broadcast to the rows


def test_rows_that_share_a_scale_get_one_scalar() -> None:
    assert _one_scale(_curves())  # every row in a run: the within-run scale
    assert not _one_scale(_curves(alone=3))  # runs of one row add the seed noise: per row


def test_models_that_differ_in_operations_get_different_keys() -> None:
    same = build_model(_curves(), ModelSpec(likelihood="normal")).model
    mixed = build_model(_curves(alone=3), ModelSpec(likelihood="normal")).model
    assert structure_key(same) == structure_key(
        build_model(_curves(), ModelSpec(likelihood="normal")).model)
    assert structure_key(same) != structure_key(mixed)


def test_screening_a_subset_of_rows_finds_the_same_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = checkpoint_curves(list(np.geomspace(1e8, 3e9, 6)), checkpoints=60, random_seed=2)
    n, d, loss = (frame[k].to_numpy() for k in ("params", "tokens", "loss"))
    full = baseline.fit_point(n, d, loss)
    monkeypatch.setattr(baseline, "SCREEN_ROWS", 40)
    assert n.size > 40
    screened = baseline.fit_point(n, d, loss)
    assert screened.objective == pytest.approx(full.objective, rel=1e-6)
    for name, value in full.params.items():
        assert screened.params[name] == pytest.approx(value, rel=1e-3)


def test_residual_medians_from_spaced_draws_match_all_draws(
        monkeypatch: pytest.MonkeyPatch) -> None:
    post = known_draws_posterior(4000, spread=0.05)
    every = post.row_log_law(every=4)
    assert every.shape == (1000, len(post.data))
    np.testing.assert_array_equal(every, post.row_log_law()[::4])
    exact = warnings.loss_residuals(post)
    monkeypatch.setattr(warnings, "RESIDUAL_CELLS", 1000 * len(post.data))
    assert warnings._every(post) == 4
    np.testing.assert_allclose(warnings.loss_residuals(post), exact, atol=0.01)
