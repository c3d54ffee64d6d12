"""The Huber likelihood: a proper density with the sd it is given, drawn as it is evaluated."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, stats
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.law import likelihoods as huber
from bayescale.posterior.predictive import noise_draws
from tests.builders import EXAMPLE


@pytest.mark.parametrize("k", [0.5, huber.K, 3.0])
def test_density_integrates_to_one_with_the_given_sd(k):
    density = lambda x: np.exp(huber.logpdf(x, 0.2, 0.03, k))  # noqa: E731
    mass = integrate.quad(density, -2, 2, points=[0.2], limit=200)[0]
    var = integrate.quad(lambda x: (x - 0.2) ** 2 * density(x), -2, 2, points=[0.2],
                         limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-8)
    assert np.sqrt(var) == pytest.approx(0.03, rel=1e-6)


def test_core_is_gaussian_and_tails_laplace():
    sd, scale = 0.02, 0.02 / huber.unit_sd()
    x = np.array([0.0, 0.5, 1.0, 3.0, 6.0]) * scale
    logp = huber.logpdf(x, 0.0, sd)
    core = logp[1] - logp[0]
    assert core == pytest.approx(-0.5 * 0.5**2)
    # beyond k the log density falls linearly, k per unit of the core scale
    assert logp[4] - logp[3] == pytest.approx(-huber.K * 3.0)


def test_pytensor_logp_equals_numpy():
    x = np.linspace(-0.1, 0.1, 41)
    expected = huber.logpdf(x, 0.01, 0.015)
    got = huber.pytensor_logp(x, 0.01, 0.015).eval()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_draws_follow_the_density():
    draws = huber.standard_draws(np.random.default_rng(3), 20_000)

    # the CDF by the trapezoid rule on a grid of step 1e-4 (error ~1e-9; a quad per draw took
    # seconds)
    grid = np.linspace(-30.0, 30.0, 600_001)
    cumulative = integrate.cumulative_trapezoid(np.exp(huber.logpdf(grid, 0.0, 1.0)), grid,
                                                initial=0.0)
    assert cumulative[-1] == pytest.approx(1.0, abs=1e-8)

    def cdf(values):
        return np.interp(values, grid, cumulative)

    result = stats.kstest(draws[:2000], cdf)
    assert result.pvalue > 0.01
    assert draws.std() == pytest.approx(1.0, rel=0.03)
    # tails heavier than the normal's of the same sd
    assert np.mean(np.abs(draws) > 3.0) > 2 * 2 * stats.norm.sf(3.0)


def test_new_run_noise_of_a_huber_fit_has_the_fitted_sd():
    n = 200_000
    draws = {"sigma_obs": np.full(n, 0.02), "seed_noise": np.full(n, 0.0),
             "huber_k": np.full(n, huber.K)}
    noise = noise_draws(draws, 1, np.random.default_rng(0))[:, 0]
    assert noise.std() == pytest.approx(0.02, rel=0.02)
    normal = noise_draws({k: v for k, v in draws.items() if k != "huber_k"}, 1,
                         np.random.default_rng(0))[:, 0]
    assert stats.kurtosis(noise) > stats.kurtosis(normal) + 0.5


@pytest.mark.slow
def test_cli_fits_the_example_with_the_huber_likelihood(tmp_path):
    """fit --likelihood huber recovers the simulated law; predict covers the held-out truth."""
    truth = json.loads(EXAMPLE.with_name("isoflop_truth.json").read_text())
    out = tmp_path / "huber.nc"
    result = CliRunner().invoke(app, ["fit", str(EXAMPLE), "--likelihood", "huber", "--out",
                                      str(out), "--json", "--random-seed", "1"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    for name in ("E", "alpha", "beta"):
        entry = payload["parameters"][name]
        assert entry["lower"] <= truth["parameters"][name] <= entry["upper"], name
    post = Posterior.load(out)
    assert post.meta["likelihood"] == "huber" and "nu" not in post.draws()
    target = truth["held_out_target"]
    row = post.predict(params=target["params"], tokens=target["tokens"]).iloc[0]
    assert row["loss_lower"] <= target["true_mean_loss"] <= row["loss_upper"]
