"""The seed-noise floor: estimated from repeated seeds, fixed by the user, kept in predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayescale import ModelSpec
from bayescale.law.simulate import isoflop_sweep
from tests.builders import quick, quick_fit, runs_of

OPTIONS = quick(random_seed=4)
BUDGETS = [1e18, 1e19, 1e20, 1e21]


@pytest.fixture(scope="module")
def replicate_fit(tmp_path_factory):
    """3 seeds per configuration, 2% seed noise: the within-configuration scatter."""
    sweep = isoflop_sweep(BUDGETS, 6, seed_noise=0.02, seeds=3, random_seed=8)
    return quick_fit(runs_of(sweep, tmp_path_factory.mktemp("seeds"), seed_col="seed"),
                     options=OPTIONS)


@pytest.mark.slow
def test_repeated_seeds_identify_the_seed_noise(replicate_fit):
    summary = replicate_fit.posterior.summary(level=0.9)
    lo, hi = summary.loc["seed_noise", ["lower", "upper"]]
    assert lo <= 0.02 <= hi
    # Identified: far narrower than the HalfNormal(0.02) prior's 90% interval [0.0013, 0.033].
    assert hi - lo < 0.01
    assert replicate_fit.diagnostics.divergences == 0


@pytest.mark.slow
def test_fixed_seed_noise_sets_the_floor(tmp_path):
    sweep = isoflop_sweep(BUDGETS, 6, seed_noise=0.005, random_seed=9)
    result = quick_fit(runs_of(sweep, tmp_path), ModelSpec(seed_noise=0.03), OPTIONS)
    draws = result.posterior.draws()
    np.testing.assert_allclose(draws["seed_noise"], 0.03)
    with warnings.catch_warnings():  # a constant has no R-hat: NaN, and no divide warning
        warnings.simplefilter("error")
        summary = result.posterior.summary()
    assert np.isnan(summary.loc["seed_noise", "r_hat"])
    assert summary.loc["alpha", "r_hat"] < 1.1
    pred = result.posterior.predict(params=1e9, tokens=2e10, level=0.9).iloc[0]
    width = np.log(pred["loss_upper"] / pred["loss_lower"])
    assert width >= 2 * 1.6449 * 0.03 * 0.95
