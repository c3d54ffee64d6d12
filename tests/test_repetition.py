"""Repetition as an extrapolation axis (issue 26): the epochs (D / U) beyond the fitted ones
count in the extrapolation distance, the calibrated discrepancy learns from cuts along them,
the posterior file records the fitted epochs, and intervals widen with the epochs of a target.

Everything runs on known draws or point fits; no sampling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale import Posterior
from bayescale.core.errors import BayescaleError
from bayescale.data.ranges import EPOCHS, distance, epochs, ranges_of
from bayescale.data.runs import RunTable
from bayescale.law.calibration import Calibration, calibrate, calibrate_runs
from bayescale.law.laws import get_law
from bayescale.posterior import store
from bayescale.posterior.limits import fitted_epochs
from tests.builders import with_meta

PAPER = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.360, "R_D": 15.4,
         "R_N": 5.3}


def paper_draws(size: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    draws = {k: v * np.exp(rng.normal(0, 0.01, size)) for k, v in PAPER.items()}
    draws["sigma_obs"] = np.full(size, 0.002)
    draws["seed_noise"] = np.full(size, 0.005)
    return draws


def repeated_frame(max_epochs: float = 4.0) -> pd.DataFrame:
    """Final losses of 4 sizes x 3 token counts, each at 1 ... ``max_epochs`` epochs."""
    rows = []
    for n in (1e8, 2e8, 5e8, 1e9):
        for d in (2e9, 6e9, 2e10):
            for e in np.geomspace(1.0, max_epochs, 4):
                rows.append({"params": n, "tokens": d, "unique_tokens": d / e})
    frame = pd.DataFrame(rows)
    truth = {k: np.array([v]) for k, v in PAPER.items()}
    frame["loss"] = get_law("muennighoff").loss(
        truth, frame["params"], frame["tokens"], {"unique_tokens": frame["unique_tokens"]})[0]
    return frame


# ----------------------------------------------------------------------- the distance
def test_epochs_beyond_the_fitted_ones_are_a_distance():
    ranges = ranges_of([1e8, 1e9], [1e10, 1e11], unique_tokens=[1e10, 2.5e10])  # 1 to 4 epochs
    assert ranges[EPOCHS] == pytest.approx([0.0, np.log10(4.0)])
    inside = distance(ranges, [5e8], [5e10], unique_tokens=[2.5e10])  # N, D, C and 2 epochs
    assert inside.tolist() == [0.0]
    beyond = distance(ranges, [5e8], [5e10], unique_tokens=[5e10 / 40])  # 40 epochs
    assert beyond[0] == pytest.approx(1.0)
    # the largest excursion wins: 10x N beyond and 40 epochs -> 1 decade either way
    both = distance(ranges, [1e10], [5e10], unique_tokens=[5e10 / 400])
    assert both[0] == pytest.approx(2.0)


def test_fresh_targets_and_laws_without_unique_tokens_are_unaffected():
    plain = ranges_of([1e8, 1e9], [1e10, 1e11])
    assert EPOCHS not in plain
    with_u = ranges_of([1e8, 1e9], [1e10, 1e11], unique_tokens=[1e10, 2.5e10])
    targets = ([5e8, 1e10, 3e9], [5e10, 1e12, 1e9])
    before = distance(plain, *targets)
    # no unique tokens asked (a law of N, D, or fresh data): the N, D, C distance alone
    np.testing.assert_array_equal(distance(with_u, *targets), before)
    # unique tokens asked of ranges without an epochs axis: ignored as well
    np.testing.assert_array_equal(distance(plain, *targets, unique_tokens=[1e8] * 3), before)


def test_epochs_are_capped_at_fresh_data():
    assert epochs([1e10, 1e10], [1e11, 2.5e9]).tolist() == [1.0, 4.0]


# -------------------------------------------------------------------- the calibration
def test_calibration_with_unique_tokens_cuts_along_the_epochs():
    frame = repeated_frame(max_epochs=16.0)
    cal = calibrate(frame["params"], frame["tokens"], frame["loss"],
                    unique_tokens=frame["unique_tokens"])
    assert cal.ranges[EPOCHS] == pytest.approx([0.0, np.log10(16.0)])
    cuts = [o for o in cal.origins if "cut_log10_epochs" in o]
    assert cuts, cal.origins
    assert all(o["mean_distance"] > 0 for o in cuts)
    # the rows follow the law exactly: the repeated-data inner fits forecast them well
    assert all(abs(o["mean_residual"]) < 0.01 for o in cuts)


def test_calibration_without_unique_tokens_is_unchanged():
    frame = repeated_frame()
    plain = calibrate(frame["params"], frame["tokens"], frame["loss"])
    assert EPOCHS not in plain.ranges
    assert all("cut_log10_epochs" not in o for o in plain.origins)
    runs = RunTable(frame[["params", "tokens", "loss", "unique_tokens"]].copy())
    chinchilla = calibrate_runs(runs, law="chinchilla")  # a law of N, D ignores U
    assert chinchilla.as_dict() == plain.as_dict()
    repeated = calibrate_runs(runs)  # rows with U: the repeated-data calibration
    assert EPOCHS in repeated.ranges


def test_a_law_that_ignores_repetition_learns_a_larger_error_along_the_epochs():
    """The inner fits are of the repeated-data law: the error it learns along the epochs is
    that law's. Rows whose loss grows with the epochs faster than the law can say (a penalty
    the law lacks) give larger residuals than rows the law describes exactly."""
    frame = repeated_frame(max_epochs=16.0)
    exact = calibrate(frame["params"], frame["tokens"], frame["loss"],
                      unique_tokens=frame["unique_tokens"])
    worse = frame.copy()
    e = frame["tokens"] / frame["unique_tokens"]
    worse["loss"] = frame["loss"] * (1.0 + 0.03 * (e - 1.0))  # overfitting the law misses
    missed = calibrate(worse["params"], worse["tokens"], worse["loss"],
                       unique_tokens=worse["unique_tokens"])
    assert missed.slope_sd > exact.slope_sd
    assert missed.drift > exact.drift  # the law under-predicts many-epoch runs


# --------------------------------------------------------------------- the posterior file
def test_posterior_file_round_trips_the_fitted_epochs(tmp_path):
    frame = repeated_frame(max_epochs=8.0)
    post = Posterior.from_draws(paper_draws(), law="muennighoff", data=frame)
    assert post.meta[store.EPOCHS_KEY] == pytest.approx([1.0, 8.0])
    path = tmp_path / "m.posterior.nc"
    post.save(path)
    loaded = Posterior.load(path)
    assert store.fitted_epochs(loaded.tree) == pytest.approx([1.0, 8.0])
    assert fitted_epochs(loaded) == pytest.approx(8.0)


def test_files_without_unique_tokens_record_no_epochs(tmp_path):
    frame = repeated_frame().drop(columns="unique_tokens")
    draws = {k: v for k, v in paper_draws().items() if k not in ("R_D", "R_N")}
    post = Posterior.from_draws(draws, data=frame)
    assert store.EPOCHS_KEY not in post.meta
    assert store.fitted_epochs(post.tree) is None


@pytest.mark.parametrize("value", [[4.0, 1.0], [0.5, 2.0], [1.0], "4"])
def test_a_damaged_epochs_entry_is_refused(value):
    with pytest.raises(BayescaleError, match="fitted_epochs"):
        store.validate_meta({"law": "muennighoff", store.EPOCHS_KEY: value})


# ----------------------------------------------------------------------- the intervals
def calibrated_posterior(scale: float = 0.05) -> Posterior:
    frame = repeated_frame(max_epochs=4.0)
    post = Posterior.from_draws(paper_draws(), law="muennighoff", data=frame)
    ranges = ranges_of(frame["params"], frame["tokens"], frame["unique_tokens"])
    cal = Calibration(drift=0.0, drift_sd=0.0, scale=scale, ranges=ranges)
    return with_meta(post, calibration=cal.as_dict())


def test_intervals_widen_with_the_epochs_beyond_the_fitted_ones():
    post = calibrated_posterior()
    n, d = 5e8, 6e9  # inside the fitted N, D and C
    e = np.array([2.0, 4.0, 16.0, 64.0, 256.0])
    out = post.predict(params=np.full(e.size, n), tokens=np.full(e.size, d),
                       unique_tokens=d / e, level=0.9)
    width = np.log(out["loss_upper"] / out["loss_lower"]).to_numpy()
    expected = np.maximum(0.0, np.log10(e / 4.0))
    np.testing.assert_allclose(out["extrapolation_decades"], expected, atol=1e-12)
    assert np.all(np.diff(width[1:]) > 0), width  # wider with every step beyond 4 epochs
    assert width[0] == pytest.approx(width[1], rel=0.2)  # inside: noise and parameters only
    assert width[-1] > 3 * width[1]
    assert out["discrepancy_share"].iloc[0] == 0.0
    assert out["discrepancy_share"].iloc[-1] > 0.5


def test_the_widening_beyond_the_fitted_epochs_is_the_discrepancy():
    post = calibrated_posterior()
    e = np.array([4.0, 256.0])
    ask = {"params": [5e8, 5e8], "tokens": [6e9, 6e9], "unique_tokens": 6e9 / e}
    with_law_error = post.predict(**ask)
    law_only = post.predict(**ask, discrepancy=False)
    width = {name: np.log(out["loss_upper"] / out["loss_lower"]).to_numpy()
             for name, out in (("with", with_law_error), ("without", law_only))}
    # at the fitted epochs nothing is added; beyond them the discrepancy is most of the width
    assert width["with"][0] == pytest.approx(width["without"][0], rel=0.05)
    assert width["with"][1] > 2 * width["without"][1]


def test_fresh_data_predictions_ignore_the_epochs_axis():
    post = calibrated_posterior()
    fresh = post.predict(params=[5e8, 1e10], tokens=[6e9, 2e11])
    plain = ranges_of(post.data["params"], post.data["tokens"])
    np.testing.assert_allclose(fresh["extrapolation_decades"],
                               distance(plain, [5e8, 1e10], [6e9, 2e11]))


def test_a_repeated_data_calibration_records_that_law_s_point_fit():
    """The record's point fit is of the law that forecasts: with unique tokens, the repeated-
    data law's (with R_D, R_N), not Chinchilla's, which ignores them (alpha -14, A 2e-144 on
    the datablations runs)."""
    frame = repeated_frame(16.0)
    cal = calibrate(frame["params"], frame["tokens"], frame["loss"],
                    unique_tokens=frame["unique_tokens"], law="muennighoff")
    assert {"R_D", "R_N", "alpha", "median_abs_residual"} <= set(cal.point_fit)
    assert cal.point_fit["alpha"] > 0 and cal.point_fit["median_abs_residual"] < 0.05
