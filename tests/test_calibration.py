"""Calibrated extrapolation: the discrepancy term, its learning, and its use in predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale.data.ranges import distance, ranges_of
from bayescale.law.baseline import fit_point
from bayescale.law.calibration import Calibration, calibrate
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, isoflop_sweep
from tests import builders
from tests.builders import bent_loss, with_meta

RANGES = ranges_of(np.array([1e8, 1e9]), np.array([2e9, 2e10]))


def test_distance_is_zero_inside_and_grows_linearly_outside():
    inside = distance(RANGES, [1e8, 3e8, 1e9], [2e10, 5e9, 2e9])
    assert np.all(inside == 0)
    # One more decade of N at the largest D: C and N both step out by one decade.
    steps = distance(RANGES, [1e10, 1e11, 1e12], [2e10, 2e10, 2e10])
    assert steps == pytest.approx([1.0, 2.0, 3.0])
    # Below the data counts too, and D alone.
    assert distance(RANGES, [1e7], [2e9])[0] == pytest.approx(1.0)
    assert distance(RANGES, [1e8], [2e12])[0] == pytest.approx(2.0)


def test_corner_beyond_the_largest_compute_is_extrapolation():
    # N and D each inside their range, but their product beyond every fitted run's compute.
    h = distance(RANGES, [1e9], [2e10])[0]
    assert h == 0.0
    isoflop = ranges_of(np.array([1e8, 1e9]), np.array([2e10, 2e9]))  # one budget, C = 1.2e19
    assert distance(isoflop, [1e9], [2e10])[0] == pytest.approx(1.0)


def test_discrepancy_draws_vanish_inside_and_spread_with_distance():
    cal = Calibration(drift=-0.01, drift_sd=0.01, scale=0.02, ranges=RANGES)
    draws = cal.draws([3e8, 1e10, 1e11], [5e9, 2e10, 2e10], 20000, np.random.default_rng(0))
    assert np.all(draws[:, 0] == 0)
    sd = draws.std(axis=0)
    assert sd[1] == pytest.approx(cal.slope_sd * 1.0, rel=0.05)
    assert sd[2] == pytest.approx(cal.slope_sd * 2.0, rel=0.05)
    assert draws[:, 2].mean() == pytest.approx(2 * cal.drift, abs=0.002)


def test_calibration_round_trips_through_a_dict():
    cal = Calibration(drift=0.01, drift_sd=0.02, scale=0.03, ranges=RANGES,
                      origins=[{"n_train": 10.0}], prior={"scale": 0.03})
    again = Calibration.from_dict(cal.as_dict())
    assert again == cal
    assert again.slope_sd == pytest.approx(np.hypot(0.03, 0.02))


def test_too_few_sizes_falls_back_to_the_prior():
    n = np.array([1e8, 1e8, 1e9, 1e9, 1e8, 1e9])
    d = np.array([1e9, 1e10, 1e9, 1e10, 3e9, 3e9])
    cal = calibrate(n, d, chinchilla_loss(EPOCH_LAW, n, d), prior_drift_sd=0.02, prior_scale=0.03)
    assert cal.origins == []
    assert cal.drift == pytest.approx(0.0, abs=1e-3)
    assert cal.drift_sd == pytest.approx(0.02, rel=0.05)
    assert cal.scale == pytest.approx(0.03, rel=0.05)


def test_inner_backtest_learns_the_drift_of_a_bent_law_and_none_of_the_true_form():
    sweep = isoflop_sweep([1e17, 3e17, 1e18, 3e18, 1e19, 3e19, 1e20], 8, seed_noise=0.0)
    n, d = sweep["params"].to_numpy(float), sweep["tokens"].to_numpy(float)
    bent = calibrate(n, d, bent_loss(n, d))
    # Larger budgets reach lower losses than a fit to the smaller ones predicts.
    assert len(bent.origins) >= 3
    assert all(o["mean_residual"] < 0 for o in bent.origins)
    assert bent.drift < 0
    # Noiseless data of the law's own form: every origin predicts exactly, nothing is learned.
    exact = calibrate(n, d, chinchilla_loss(EPOCH_LAW, n, d))
    assert all(abs(o["mean_residual"]) < 1e-4 for o in exact.origins)
    assert exact.slope_sd < 0.1 * bent.slope_sd
    assert abs(exact.drift) < 0.1 * abs(bent.drift)


def test_predict_adds_the_discrepancy_only_beyond_the_data(known_posterior):
    data = known_posterior.data
    cal = Calibration(drift=-0.02, drift_sd=0.01, scale=0.02,
                      ranges=ranges_of(np.array([1e8, 3e9]), np.array([2e9, 6e10])))
    post = with_meta(known_posterior, calibration=cal.as_dict())
    assert len(data) == 1
    n, d = np.array([1e9, 3e10]), np.array([2e10, 6e10])  # inside; one decade beyond
    on = post.predict(params=n, tokens=d, random_seed=4)
    off = post.predict(params=n, tokens=d, random_seed=4, discrepancy=False)
    plain = known_posterior.predict(params=n, tokens=d, random_seed=4)
    # Inside the data: identical to the posterior without a calibration.
    for column in ("loss_median", "loss_lower", "loss_upper", "seed_floor_share"):
        assert on[column].iloc[0] == pytest.approx(plain[column].iloc[0], rel=1e-12)
    assert on["discrepancy_share"].iloc[0] == 0.0
    assert on["extrapolation_decades"].tolist() == pytest.approx([0.0, 1.0])
    # Beyond: wider, shifted by the drift, the law's mean untouched.
    width = (on["loss_upper"] - on["loss_lower"]) / on["loss_median"]
    width_off = (off["loss_upper"] - off["loss_lower"]) / off["loss_median"]
    # Spreads add in quadrature: the 90% width grows by the discrepancy's 2 x 1.645 sd.
    assert width.iloc[1] ** 2 - width_off.iloc[1] ** 2 == pytest.approx(
        (2 * 1.645 * cal.slope_sd) ** 2, rel=0.25)
    assert on["loss_median"].iloc[1] / off["loss_median"].iloc[1] == pytest.approx(
        np.exp(-0.02), rel=0.01)
    assert on["mean_loss_median"].iloc[1] == off["mean_loss_median"].iloc[1]
    assert 0.25 < on["discrepancy_share"].iloc[1] < 0.75  # beside 2% parameter spread
    assert (on["discrepancy_share"] + on["seed_floor_share"]).max() <= 1.0 + 1e-9



def _datablations_c4() -> pd.DataFrame:
    """Muennighoff et al.'s c4 runs (2.8B, 4.2B, 8.7B; 1-44 epochs): 15 checkpoints a run."""
    path = builders.COLPRET / "aggregated_eval" / "datablations_losses.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    raw = pd.read_csv(path)
    raw = raw[(raw["data"] == "c4") & (raw["token_num"] >= 1e10)].sort_values("token_num")
    keep = [i for _, run in raw.groupby(["num_params", "epochs"])
            for i in run.index[np.unique(np.linspace(0, len(run) - 1, 15).astype(int))]]
    raw = raw.loc[keep]
    return pd.DataFrame({
        "params": raw["num_params"].map({"2.8B": 2.8e9, "4.2B": 4.2e9, "8.7B": 8.7e9}),
        "tokens": raw["token_num"].astype(float), "loss": raw["loss"],
        "unique": np.minimum(raw["tokens_per_epoch"], raw["token_num"]).astype(float)})


def test_repeated_data_calibration_starts_past_a_degenerate_point_fit():
    # Three model sizes within half a decade: Chinchilla's point fit runs off (alpha negative
    # or in the tens, A overflowing), which used to leave the repeated-data fit no start.
    runs = _datablations_c4()
    point = fit_point(runs["params"].to_numpy(), runs["tokens"].to_numpy(),
                      runs["loss"].to_numpy()).params
    assert not all(0 < point[k] < np.inf for k in ("A", "alpha")), "premise: a degenerate fit"
    cal = calibrate(runs["params"], runs["tokens"], runs["loss"], unique_tokens=runs["unique"],
                    law="muennighoff")
    assert any("cut_log10_epochs" in origin for origin in cal.origins)
    assert np.isfinite(cal.drift) and 0 < cal.scale < 0.3
