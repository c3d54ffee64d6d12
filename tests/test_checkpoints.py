"""Checkpoints: selection options, and the run-level effect on simulated loss curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import BayescaleError, SamplerOptions, fit, load_runs
from bayescale.cli import app
from bayescale.runs import RunTable
from bayescale.selection import select_checkpoints
from bayescale.simulate import checkpoint_curves

SEED_NOISE, ROW_NOISE = 0.03, 0.003
OPTIONS = SamplerOptions(chains=2, draws=300, tune=400, random_seed=3, progress=False)


def _table(frame: pd.DataFrame, path, **columns) -> RunTable:
    frame.to_csv(path, index=False)
    return load_runs(path, **columns)


def test_min_tokens_and_max_token_frac(tmp_path):
    curves = checkpoint_curves([1e8, 4e8], checkpoints=20, first_frac=0.01)
    runs = _table(curves, tmp_path / "c.csv", run_col="run")
    kept = select_checkpoints(runs, min_tokens=1e9)
    assert (kept.data["tokens"] >= 1e9).all()
    assert len(kept) == int((curves["tokens"] >= 1e9).sum()) < len(runs)
    half = select_checkpoints(runs, max_token_frac=0.5)
    longest = curves.groupby("run")["tokens"].transform("max")
    assert len(half) == int((curves["tokens"] <= 0.5 * longest).sum())
    for run, rows in half.data.groupby("run"):
        assert rows["tokens"].max() <= 0.5 * curves.loc[curves["run"] == run, "tokens"].max()
    assert select_checkpoints(runs) is runs  # no option, no change


def test_selection_errors(tmp_path):
    curves = checkpoint_curves([1e8, 4e8], checkpoints=5)
    no_runs = _table(curves, tmp_path / "c.csv")
    with pytest.raises(BayescaleError, match="--run-col"):
        select_checkpoints(no_runs, max_token_frac=0.3)
    runs = _table(curves, tmp_path / "c.csv", run_col="run")
    with pytest.raises(BayescaleError, match="left no rows"):
        select_checkpoints(runs, min_tokens=1e15)
    with pytest.raises(BayescaleError, match=r"\(0, 1\]"):
        select_checkpoints(runs, max_token_frac=1.5)


def test_cli_max_token_frac_without_run_col_is_one_line_and_no_file(tmp_path):
    path = tmp_path / "c.csv"
    checkpoint_curves([1e8, 4e8], checkpoints=5).to_csv(path, index=False)
    out = tmp_path / "c.nc"
    result = CliRunner().invoke(app, ["fit", str(path), "--max-token-frac", "0.3",
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert "--run-col" in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.fixture(scope="module")
def curve_fits(tmp_path_factory):
    """8 runs x 25 checkpoints: fitted with the run effect, and as 200 independent rows."""
    curves = checkpoint_curves(list(np.geomspace(5e7, 2e9, 8)), checkpoints=25,
                               seed_noise=SEED_NOISE, row_noise=ROW_NOISE, random_seed=11)
    path = tmp_path_factory.mktemp("curves") / "curves.csv"
    curves.to_csv(path, index=False)
    with_runs = fit(load_runs(path, run_col="run"), options=OPTIONS, calibration=False)
    rows_alone = fit(load_runs(path), options=OPTIONS, calibration=False)
    return with_runs, rows_alone


@pytest.mark.slow
def test_seed_noise_is_the_between_run_scatter(curve_fits):
    with_runs, _ = curve_fits
    assert not with_runs.diagnostics.divergences
    summary = with_runs.posterior.summary(level=0.95)
    seed, sigma = summary.loc["seed_noise"], summary.loc["sigma_obs"]
    assert seed["lower"] < SEED_NOISE < seed["upper"]
    assert sigma["lower"] < ROW_NOISE < sigma["upper"]
    assert seed["lower"] > 3 * sigma["upper"]  # the two scales are told apart
    offsets = np.asarray(with_runs.posterior.tree["posterior"].dataset["run_offset"])
    assert offsets.shape[-1] == 8  # one shared deviation per run


@pytest.mark.slow
def test_checkpoints_of_a_run_do_not_count_as_independent_runs(curve_fits):
    with_runs, rows_alone = curve_fits
    inside = {"params": 3e8, "tokens": 3e9}  # within the runs' range
    widths = []
    for result in (with_runs, rows_alone):
        frame = result.posterior.predict(**inside, level=0.9, discrepancy=False)
        widths.append(float(np.log(frame["mean_loss_upper"] / frame["mean_loss_lower"]).iloc[0]))
    # 200 rows but 8 seed deviations: the law's level is known from 8 runs, not from 200
    # independent rows (a linear model would give sqrt(200 / 8) = 5 times the width)
    assert widths[0] > 2.5 * widths[1], widths
