"""Warnings said once and plainly: unconstrained parameters, outlying rows, far targets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.law.laws import get_law
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, known_draws
from bayescale.posterior.warnings import (
    far_targets,
    outliers,
    prior_pull,
    runs_off_the_law,
    sd_ratios,
    split_tails,
    two_sizes,
    unconstrained,
)
from tests.builders import known_draws_posterior

SIZE = 2000
#: Tight draws around Epoch's law, with 1% total noise.
NOISE = {"sigma_obs": 0.006, "seed_noise": 0.008}
runner = CliRunner()


def _draws(seed: int) -> dict[str, np.ndarray]:
    """The draws of :func:`_known`, to change before they make a posterior."""
    return known_draws(SIZE, **NOISE, random_seed=seed)


def _known(seed: int, data: pd.DataFrame, **extra: np.ndarray) -> Posterior:
    """Tight draws around Epoch's law, with 1% total noise; ``extra`` replaces draws."""
    return known_draws_posterior(SIZE, **NOISE, random_seed=seed, data=data, extra=extra)


def _runs(rng: np.random.Generator) -> pd.DataFrame:
    """A sweep that follows the law with 1% noise, rows numbered as in a CSV (2, 3, ...)."""
    n = np.geomspace(5e7, 2e9, 24)
    d = 1e19 / (6 * n)
    law = get_law("chinchilla").loss({k: np.array([v]) for k, v in EPOCH_LAW.items()}, n, d)[0]
    loss = law * np.exp(rng.normal(0, 0.01, n.size))
    return pd.DataFrame({"params": n, "tokens": d, "loss": loss, "line": np.arange(2, 26)})


def test_prior_as_wide_as_posterior_is_named():
    rng = np.random.default_rng(0)
    # beta left at its prior: the data said nothing about it.
    post = _known(0, _runs(rng),
                  beta=get_law("chinchilla").default_priors()["beta"].sample(rng, SIZE))
    ratios = sd_ratios(post)
    assert ratios["beta"] > 0.9
    assert max(v for k, v in ratios.items() if k != "beta") < 0.2
    [message] = unconstrained(post)
    assert "beta" in message and "alpha" not in message and "--priors" in message


def test_constrained_posterior_gives_no_warning():
    post = _known(1, _runs(np.random.default_rng(1)))
    assert unconstrained(post) == []
    assert outliers(post) == []
    assert prior_pull(post) == []
    assert two_sizes(post) == []


def test_runs_of_two_model_sizes_are_named():
    """Checkpoints of two sizes: E, A and alpha of the size term trade off exactly."""
    rng = np.random.default_rng(6)
    n = np.repeat([2.8e9, 4.2e9], 12)
    d = np.tile(np.geomspace(1e10, 1e11, 12), 2)
    loss = chinchilla_loss(EPOCH_LAW, n, d) * np.exp(rng.normal(0, 0.01, n.size))
    runs = pd.DataFrame({"params": n, "tokens": d, "loss": loss, "line": np.arange(2, 26)})
    [message] = two_sizes(_known(6, runs))
    assert "two model sizes (2.8e+09, 4.2e+09)" in message and "--family-col" in message
    three = runs.assign(params=np.repeat([2.8e9, 4.2e9, 8.7e9], 8))
    assert two_sizes(_known(6, three)) == []


def test_priors_that_hold_the_law_away_from_the_rows_are_named():
    """Rows from a flat law (exponents 0.04 and 0.1, as ColPret's Revisiting LM curves), a
    posterior near Epoch's law (where the default priors sit): the point fit follows the rows."""
    rng = np.random.default_rng(3)
    flat = {"E": 0.36, "A": 0.93, "B": 1.0, "alpha": 0.04, "beta": 0.1}
    n = np.repeat(np.geomspace(2e7, 3e8, 3), 12)
    d = np.tile(np.geomspace(1e10, 3e11, 12), 3)
    loss = chinchilla_loss(flat, n, d) * np.exp(rng.normal(0, 0.001, n.size))
    data = pd.DataFrame({"params": n, "tokens": d, "loss": loss, "line": np.arange(2, 38)})
    [message] = prior_pull(_known(3, data))
    assert message.startswith("the law misses the rows by a median ")
    assert "alpha 0.348 against 0.0" in message and "--priors" in message


def test_outlying_rows_are_listed_by_source_row():
    rng = np.random.default_rng(2)
    data = _runs(rng)
    data.loc[5, "loss"] *= 1.25   # line 7: 22 noise scales high
    data.loc[17, "loss"] *= 0.9   # line 19: 10 noise scales low
    post = _known(2, data)
    [message] = outliers(post)
    assert message.startswith("2 row(s)")
    assert "rows 7 (+" in message and ", 19 (-" in message
    assert message.index("rows 7") < message.index("19 (")  # the worst first


@pytest.mark.parametrize(("params", "compute", "far"), [
    (7e9, 5.0e20, False),      # 3.5x the largest N, 50x the largest compute: fine
    (7e10, 5.0e20, True),      # 35x the largest N
    (2e9, 5.0e21, True),       # 500x the largest compute
    (1e8, 1.0e20, False),      # D 1.7e11, 5x the largest fitted D
    (1e8, 9.0e20, True),       # D 1.5e12, 45x the largest fitted D: over-trained
    (2e9, 1.0e16, True),       # D 8.3e5, 1/1000 of the smallest fitted D
])
def test_far_targets(params, compute, far):
    post = _known(3, _runs(np.random.default_rng(3)))  # N <= 2e9, C = 1e19
    tokens = compute / (6 * params)  # fitted D 8.3e8 ... 3.3e10
    assert bool(far_targets(post, [params], [tokens], [compute])) is far


def test_far_target_warning_says_what_the_interval_assumes(known_example):
    # beyond the runs the interval carries the learned law error, unless it is switched off
    far = ([7e10], [1.4e12], [5.88e23])
    with_term = far_targets(known_example, *far)
    without = far_targets(known_example, *far, discrepancy=False)
    assert "error learned within the runs" in with_term[0]
    assert "holds exactly" in without[0] and "learned" not in without[0]
    uncalibrated = _known(3, _runs(np.random.default_rng(3)))
    assert "holds exactly" in far_targets(uncalibrated, *far)[0]


def test_cli_says_each_warning_once(tmp_path):
    path = tmp_path / "fit.nc"
    _known(4, _runs(np.random.default_rng(4))).save(path)
    # Far in both N and compute: one warning line that says both.
    result = runner.invoke(app, ["predict", str(path), "--params", "70B", "--tokens", "1.4T"])
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning:")]
    assert result.exit_code == 0 and len(warnings) == 1, result.stderr
    assert "35x the largest fitted" in warnings[0] and "5.88e+04x" in warnings[0]

    result = runner.invoke(app, ["optimal", str(path), "-C", "1e24", "-C", "1e25", "-C", "1e20",
                                 "--json"])
    assert result.exit_code == 0, result.stderr
    [message] = json.loads(result.stdout)["warnings"]
    assert message.startswith("2 of 3 targets lie far outside")

    result = runner.invoke(app, ["predict", str(path), "-N", "1B", "-D", "20B", "--json"])
    assert json.loads(result.stdout)["warnings"] == []


@pytest.mark.parametrize(("shift", "named"), [(0.12, True), (0.015, False)])
def test_runs_the_law_misses_by_far_more_than_their_offsets_are_named(shift, named):
    """Two runs at each of two sizes, one lifted off the law: 0.12 in ln L is 15 times their
    offsets' scale (the seed noise, 0.008); 0.015 is 1.9. A run alone at its size has no
    offset, so its miss (0.12 here) is not judged against one."""
    law = {k: np.array([v]) for k, v in EPOCH_LAW.items()}
    frames = []
    for size, run, lift in ((2e7, "alone", 0.12), (1.3e8, "a", shift), (1.3e8, "b", 0.0),
                            (2.6e8, "a", 0.0), (2.6e8, "b", 0.0)):
        d = np.geomspace(1e10, 3e11, 20)
        loss = get_law("chinchilla").loss(law, np.full(d.size, size), d)[0] * np.exp(lift)
        frames.append(pd.DataFrame({"params": size, "tokens": d, "loss": loss,
                                    "run": f"r{size:.2g}{run}"}))
    data = pd.concat(frames, ignore_index=True)
    data["line"] = np.arange(len(data)) + 2
    post = _known(5, data)
    assert runs_off_the_law(post) == []  # no run offsets in the fit: nothing to compare
    offsets = xr.DataArray(np.zeros((1, SIZE, 5)), dims=("chain", "draw", "run_offset_dim_0"))
    post.tree["posterior"] = xr.DataTree(post.tree["posterior"].dataset.assign(
        run_offset=offsets))
    messages = runs_off_the_law(post)
    assert bool(messages) is named
    if named:
        assert "r1.3e+08a (+0.1" in messages[0] and "--priors" in messages[0]
        assert "alone" not in messages[0] and "r1.3e+08b" not in messages[0]


def test_the_prior_check_reads_the_stored_point_fit(known_example):
    """The calibration a fit stores holds the point fit (tests/test_fit.py checks that a fit
    stores it); the prior check finds the example's law where the point fit is."""
    point = known_example.meta["calibration"]["point_fit"]
    assert set(point) == {"E", "A", "B", "alpha", "beta", "median_abs_residual"}
    assert point["alpha"] == pytest.approx(0.348, rel=0.2)  # the example's truth: Epoch's law
    assert prior_pull(known_example) == []


@pytest.mark.parametrize(("nu", "chains_apart", "warned"),
                         [(0.6, True, True), (5.0, True, False), (0.6, False, False)])
def test_split_chains_under_a_tiny_nu_suggest_the_huber_likelihood(nu, chains_apart, warned):
    rng = np.random.default_rng(2)
    draws = _draws(2)
    draws["nu"] = np.full(SIZE, nu) * np.exp(rng.normal(0, 0.05, SIZE))
    if chains_apart:  # two chains, each in its own mode of beta
        draws["beta"][: SIZE // 2] *= 1.3
    messages = split_tails(Posterior.from_draws(draws, data=_runs(rng), chains=2))
    assert bool(messages) == warned
    if warned:
        assert "--likelihood huber" in messages[0] and "R-hat" in messages[0]
    assert split_tails(Posterior.from_draws(draws, data=_runs(rng), chains=1)) == []
