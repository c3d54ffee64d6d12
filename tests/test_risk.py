"""Risk review: arithmetic on posteriors with known draws, agreement with predict, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import BayescaleError, Posterior
from bayescale.cli import app
from bayescale.law.laws import get_law
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss
from bayescale.posterior.risk import Thresholds, decide, extrapolation, suggested_runs
from tests.builders import known_draws_posterior

LAW = get_law("chinchilla")
FITTED = pd.DataFrame({"params": [1e8, 1e9, 4e9], "tokens": [2e9, 2e10, 8e10],
                       "loss": [3.0, 2.6, 2.3]})


def fixed(size: int, seed_noise: float, sigma_obs: float, spread: float = 0.0,
          data: pd.DataFrame | None = None) -> Posterior:
    """Epoch's law with a relative parameter spread (0: every draw the same), Normal noise."""
    return known_draws_posterior(size, spread=spread, sigma_obs=sigma_obs,
                                 seed_noise=seed_noise, random_seed=7,
                                 data=FITTED if data is None else data)


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_probability_below_target_is_the_normal_cdf_without_parameter_spread():
    post = fixed(40_000, seed_noise=0.008, sigma_obs=0.006)
    truth = float(chinchilla_loss(EPOCH_LAW, 7e10, 1.4e12))
    noise = math.hypot(0.008, 0.006)  # ln L of a new run ~ N(ln L, seed^2 + sigma_obs^2)
    for z in (-1.0, 0.0, 0.5, 2.0):
        review = post.risk(7e10, 1.4e12, target_loss=truth * math.exp(z * noise))
        assert review.prob_below_target == pytest.approx(normal_cdf(z), abs=0.01)
    review = post.risk(7e10, 1.4e12, level=0.9)
    assert review.mean_loss["lower"] == pytest.approx(truth, rel=1e-12)
    assert review.loss["median"] == pytest.approx(truth, rel=1e-3)
    assert review.loss["upper"] == pytest.approx(truth * math.exp(1.6449 * noise), rel=1e-3)
    assert review.uncertainty["dominated_by"] == "noise"
    assert review.uncertainty["seed_floor_share"] == pytest.approx(1.0)


def test_regret_is_zero_when_the_plan_is_the_optimum():
    post = fixed(4000, seed_noise=0.01, sigma_obs=0.002)
    draws = post.draws()
    n_opt, d_opt = LAW.optimal(draws, 1e23)
    review = post.risk(float(n_opt[0]), float(d_opt[0]))
    assert review.regret["median"] == pytest.approx(0.0, abs=1e-12)
    assert review.regret["upper"] == pytest.approx(0.0, abs=1e-12)
    assert review.optimal["params"]["median"] == pytest.approx(n_opt[0], rel=1e-9)
    assert review.compute_share["median"] == pytest.approx(1.0, abs=1e-6)
    # two independent runs of the same configuration: each wins half the time
    assert review.prob_optimal_better == pytest.approx(0.5, abs=0.03)
    assert review.verdict == "GO"
    assert review.prob_below_target is None


def test_regret_of_an_undersized_plan_matches_the_closed_form():
    post = fixed(2000, seed_noise=0.01, sigma_obs=0.002)
    n_opt, d_opt = LAW.optimal(post.draws(), 1e23)
    n = float(n_opt[0]) / 4
    d = 1e23 / (6 * n)
    expected = float(chinchilla_loss(EPOCH_LAW, n, d) - chinchilla_loss(EPOCH_LAW, n_opt[0],
                                                                         d_opt[0]))
    review = post.risk(n, d)
    assert 0.01 < expected < 0.05  # between the CAUTION and NO-GO regret thresholds
    assert review.regret["median"] == pytest.approx(expected, rel=1e-6)
    assert review.regret["lower"] == pytest.approx(expected, rel=1e-6)
    assert 0.0 < review.compute_share["median"] < 1.0
    # the optimum reaches the plan's loss with compute_share of the budget
    c_eq = 1e23 * review.compute_share["median"]
    n_eq, d_eq = LAW.optimal(post.draws(), c_eq)
    assert float(chinchilla_loss(EPOCH_LAW, n_eq[0], d_eq[0])) == pytest.approx(
        float(chinchilla_loss(EPOCH_LAW, n, d)), rel=1e-6)
    # two independent new runs: ln L_opt - ln L_plan ~ N(ln(L*/L), 2 noise^2)
    gap = math.log(float(chinchilla_loss(EPOCH_LAW, n, d)) / (
        float(chinchilla_loss(EPOCH_LAW, n, d)) - expected))
    z = gap / (math.sqrt(2.0) * math.hypot(0.01, 0.002))
    assert review.prob_optimal_better == pytest.approx(normal_cdf(z), abs=0.03)
    assert review.verdict == "CAUTION"  # regret above 0.01 nats, below 0.05
    assert any("regret" in reason for reason in review.reasons)


@pytest.mark.parametrize(("level", "kind", "seed"), [(0.9, "eti", 0), (0.8, "hdi", 3)])
def test_loss_interval_equals_predict(known_posterior, level, kind, seed):
    review = known_posterior.risk(7e10, 1.4e12, level=level, interval_kind=kind,
                                  random_seed=seed)
    row = known_posterior.predict(7e10, 1.4e12, level=level, interval_kind=kind,
                                  random_seed=seed).iloc[0]
    for key in ("median", "lower", "upper"):
        assert review.loss[key] == row[f"loss_{key}"]
        assert review.mean_loss[key] == row[f"mean_loss_{key}"]
    assert review.uncertainty["seed_floor_share"] == row["seed_floor_share"]


def test_extrapolation_ratios_and_warning():
    ext = extrapolation(FITTED, 7e10, 1.4e12, Thresholds())
    assert ext["compute_ratio"] == pytest.approx(7e10 * 1.4e12 / (4e9 * 8e10))
    assert ext["params_ratio"] == pytest.approx(7e10 / 4e9)
    assert "law's functional form" in ext["warning"]
    assert extrapolation(FITTED, 5e9, 1e11, Thresholds())["warning"] is None
    relaxed = Thresholds(max_compute_ratio=1e4, max_params_ratio=100, max_tokens_ratio=100)
    assert extrapolation(FITTED, 7e10, 1.4e12, relaxed)["warning"] is None


def test_over_and_under_trained_plans_are_flagged_in_d():
    """A small model on far more (or fewer) tokens than any fitted run: N and compute look
    safe, D does not; the suggested runs keep the plan's N and move D toward it."""
    max_d, min_d = FITTED["tokens"].max(), FITTED["tokens"].min()
    over = extrapolation(FITTED, 1e9, 30 * max_d, Thresholds())
    assert over["params_ratio"] < 1 and over["compute_ratio"] < 100
    assert over["tokens_outside"] == pytest.approx(30) and "D 30x the largest" in over["warning"]
    under = extrapolation(FITTED, 1e9, min_d / 20, Thresholds())
    assert "D 1/20 of the smallest" in under["warning"]
    assert decide(None, None, 0.0, over, Thresholds())[0] == "CAUTION"
    runs = suggested_runs(1e9, 30 * max_d, over)
    assert [r["params"] for r in runs] == [1e9, 1e9]
    assert max_d < runs[0]["tokens"] < runs[1]["tokens"] < 30 * max_d
    assert suggested_runs(1e9, max_d, over) == []  # inside the fitted N and D ranges


def test_the_interval_is_said_to_be_dominated_by_its_largest_reducible_part():
    """Shares of noise 0.41, law error 0.47 and parameters 0.12 were labelled "parameters"
    (anything below 0.5 law error was); the larger of law error and parameters is named."""
    from bayescale.law.calibration import Calibration
    from bayescale.law.simulate import isoflop_sweep, known_draws
    from tests.builders import with_meta

    frame = isoflop_sweep([1e18, 1e19, 1e20], sizes_per_budget=6, random_seed=1)
    frame = frame[["params", "tokens", "loss"]].reset_index(drop=True).astype(float)
    n, d = np.log10(frame["params"]), np.log10(frame["tokens"])
    ranges = {"compute": [float((n + d).min() + np.log10(6)), float((n + d).max() + np.log10(6))],
              "params": [float(n.min()), float(n.max())],
              "tokens": [float(d.min()), float(d.max())]}
    cal = Calibration(drift=0.0, drift_sd=0.005, scale=0.01, ranges=ranges)
    post = with_meta(Posterior.from_draws(
        known_draws(4000, spread=0.005, sigma_obs=0.01, seed_noise=0.01), data=frame),
        calibration=cal.as_dict())
    plan = 1.2 * frame["params"].max()
    unc = post.risk(plan, 20 * plan).uncertainty
    law, noise = unc["law_error_share"], unc["seed_floor_share"]
    assert noise < 0.5 and law < 0.5 and law > 1 - noise - law  # no share reaches half
    assert unc["dominated_by"] == "law error" and "extrapolation error" in unc["advice"]


def test_parameter_dominated_interval_suggests_larger_runs():
    post = fixed(4000, seed_noise=1e-4, sigma_obs=1e-4, spread=0.05)
    review = post.risk(7e10, 1.4e12)
    unc = review.uncertainty
    assert unc["dominated_by"] == "parameters"
    runs = unc["suggested_runs"]
    assert len(runs) == 2
    max_c, max_n = 6 * 4e9 * 8e10, 4e9
    for run in runs:
        assert max_c < run["compute"] < review.compute
        assert run["params"] > max_n
    assert "closer to the target" in unc["advice"]
    assert review.verdict == "CAUTION"  # 2450x the largest fitted compute
    inside = post.risk(1e9, 2e10)
    assert inside.uncertainty["suggested_runs"] == []


def test_verdict_rules():
    near = {"compute_ratio": 3.0, "params_ratio": 2.0}
    far = {"compute_ratio": 500.0, "params_ratio": 2.0}
    t = Thresholds()
    assert decide(0.95, 2.0, 0.001, near, t)[0] == "GO"
    assert decide(0.5, 2.0, 0.001, near, t)[0] == "CAUTION"
    assert decide(0.1, 2.0, 0.001, near, t)[0] == "NO-GO"
    assert decide(None, None, 0.02, near, t)[0] == "CAUTION"
    assert decide(None, None, 0.08, near, t)[0] == "NO-GO"
    verdict, reasons = decide(0.95, 2.0, 0.001, far, t)
    assert verdict == "CAUTION" and "500x in compute" in reasons[0]
    assert decide(0.5, 2.0, 0.001, near, Thresholds(go_probability=0.4))[0] == "GO"
    with pytest.raises(BayescaleError):
        Thresholds(go_probability=0.1, nogo_probability=0.5)
    with pytest.raises(BayescaleError):
        fixed(10, 0.01, 0.01).risk(7e10, 1.4e12, target_loss=-1.0)


def test_a_regret_that_is_not_finite_is_no_ground_for_go():
    near = {"compute_ratio": 3.0, "params_ratio": 2.0}
    verdict, reasons = decide(None, None, float("nan"), near, Thresholds())
    assert verdict == "CAUTION" and "not finite" in reasons[0]


def test_risk_reviews_one_plan(known_posterior):
    with pytest.raises(BayescaleError, match="one planned run"):
        known_posterior.risk([7e9, 8e9], [1.4e11, 1e11])


def test_a_fit_held_by_its_priors_is_a_caution():
    near = {"compute_ratio": 3.0, "params_ratio": 2.0}
    verdict, reasons = decide(0.95, 2.0, 0.001, near, Thresholds(), ["the law misses ..."])
    assert verdict == "CAUTION" and "priors hold the law away" in reasons[-1]
    # rows from a flat law (exponents 0.04 and 0.1) under draws of Epoch's law
    rng = np.random.default_rng(3)
    flat = {"E": 0.36, "A": 0.93, "B": 1.0, "alpha": 0.04, "beta": 0.1}
    n = np.repeat(np.geomspace(2e7, 3e8, 3), 12)
    d = np.tile(np.geomspace(1e10, 3e11, 12), 3)
    rows = pd.DataFrame({"params": n, "tokens": d, "loss": chinchilla_loss(flat, n, d)
                         * np.exp(rng.normal(0, 0.001, n.size))})
    review = fixed(400, 0.01, 0.005, data=rows).risk(1e9, 2e11)
    [doubt] = review.fit_doubts
    assert doubt.startswith("the law misses the rows")
    assert review.verdict != "GO" and f"- **Fit:** {doubt}." in review.markdown()
    rows["loss"] = chinchilla_loss(EPOCH_LAW, n, d) * np.exp(rng.normal(0, 0.005, n.size))
    assert fixed(400, 0.01, 0.005, data=rows).risk(1e9, 2e11).fit_doubts == []


@pytest.mark.slow
def test_epoch_risk_agrees_with_predict(epoch_fit):
    post = epoch_fit.posterior
    review = post.risk(70e9, 1.4e12, target_loss=1.95)
    row = post.predict(70e9, 1.4e12).iloc[0]
    for key in ("median", "lower", "upper"):
        # same draws, same quantile: equal up to rounding (vectorised sums differ in the last bit)
        assert review.loss[key] == pytest.approx(row[f"loss_{key}"], rel=1e-12)
    assert 0.0 < review.prob_below_target < 1.0
    assert review.extrapolation["compute_ratio"] > 1.0


# ------------------------------------------------------------------- CLI
@pytest.fixture()
def fit_file(tmp_path):
    path = tmp_path / "known.posterior.nc"
    fixed(1000, seed_noise=0.01, sigma_obs=0.002, spread=0.02).save(path)
    return path


def test_cli_json(fit_file):
    result = CliRunner().invoke(app, ["risk", str(fit_file), "--params", "70B", "--tokens",
                                      "1.4T", "--target-loss", "1.95", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("params", "tokens", "compute", "loss", "prob_below_target", "optimal", "regret",
                "prob_optimal_better", "extrapolation", "verdict"):
        assert key in out
    assert out["compute"] == pytest.approx(6 * 70e9 * 1.4e12)
    assert set(out["loss"]) == {"median", "lower", "upper"}
    assert set(out["optimal"]) >= {"params", "tokens", "loss"}
    assert 0.0 <= out["prob_below_target"] <= 1.0
    assert out["verdict"] in ("GO", "CAUTION", "NO-GO")
    predicted = json.loads(CliRunner().invoke(app, ["predict", str(fit_file), "--params", "70B",
                                                    "--tokens", "1.4T", "--json"]).stdout)
    assert predicted["targets"][0]["loss"] == out["loss"]
    no_target = json.loads(CliRunner().invoke(app, ["risk", str(fit_file), "-N", "70B", "-D",
                                                    "1.4T", "--json"]).stdout)
    assert no_target["prob_below_target"] is None


def test_cli_markdown_and_text(fit_file):
    md = CliRunner().invoke(app, ["risk", str(fit_file), "-N", "70B", "-D", "1.4T",
                                  "--target-loss", "2.0", "--format", "markdown"])
    assert md.exit_code == 0, md.output
    assert md.stdout.startswith("### Risk review: N = 70B parameters, D = 1.4T tokens")
    assert "| P(loss < 2) |" in md.stdout and "**Verdict:" in md.stdout
    text = CliRunner().invoke(app, ["risk", str(fit_file), "-N", "70B", "-D", "1.4T",
                                    "--max-compute-ratio", "1e6", "--max-params-ratio", "1e3",
                                    "--max-tokens-ratio", "1e3"])
    assert text.exit_code == 0
    assert text.stdout == ""
    assert "regret" in text.stderr and "warning:" not in text.stderr


@pytest.mark.parametrize(("args", "code"), [
    (["-N", "big", "-D", "1.4T"], 2),
    (["-N", "70B", "-D", "1.4T", "--format", "html"], 2),
    (["-N", "70B", "-D", "1.4T", "--go-probability", "0.1"], 2),
    (["-N", "70B", "-D", "1.4T", "--target-loss", "0"], 2),
    (["-N", "70B"], 2),
])
def test_cli_usage_errors(fit_file, args, code):
    result = CliRunner().invoke(app, ["risk", str(fit_file), *args])
    assert result.exit_code == code
    assert "Traceback" not in result.output


def test_cli_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["risk", str(tmp_path / "none.nc"), "-N", "7B", "-D", "1T"])
    assert result.exit_code == 1
    assert "none.nc" in result.stderr and "Traceback" not in result.stderr


def test_risk_equals_predict_given_the_compute_instead_of_the_tokens(known_posterior):
    """predict -N 7B -C 1e21 and risk at the D that implies (6 N D is 1.0000000000000001e21 in
    floating point): the same target, so the same draws."""
    row = known_posterior.predict(params=7e9, compute=1e21, random_seed=1).iloc[0]
    review = known_posterior.risk(7e9, row["tokens"], random_seed=1)
    assert review.loss == {k: row[f"loss_{k}"] for k in ("median", "lower", "upper")}
    opt = known_posterior.optimal(compute=1e21, random_seed=1).iloc[0]
    assert review.optimal["loss"] == {k: opt[f"loss_{k}"] for k in ("median", "lower", "upper")}


def test_far_plan_warning_says_what_the_interval_assumes(known_example, known_posterior):
    # the verdict's far-plan line agrees with predict's far-target warning: with a stored
    # calibration the interval includes the learned law error, without one the law holds
    far = {"params": 7e11, "tokens": 1.4e13}
    calibrated = known_example.risk(**far).extrapolation["warning"]
    plain = known_posterior.risk(**far).extrapolation["warning"]
    assert "includes the law's error learned within the runs" in calibrated
    assert "assumes the law holds exactly" in plain


def test_the_verdict_names_only_the_axes_beyond_their_limits():
    """A plan 2450x the largest fitted compute and 17.5x its N: with the compute limit raised
    above 2450x, the reason names N alone, as the extrapolation warning does."""
    relaxed = Thresholds(max_compute_ratio=1e4)
    ext = extrapolation(FITTED, 7e10, 1.4e12, relaxed)
    verdict, reasons = decide(None, None, 0.0, ext, relaxed)
    assert verdict == "CAUTION"
    assert any(r.startswith("extrapolates beyond the data: 17.5x in N") for r in reasons)
    assert not any("in compute" in r for r in reasons)


@pytest.mark.parametrize("field", ["max_compute_ratio", "max_params_ratio",
                                   "max_tokens_ratio", "max_epochs_ratio"])
def test_a_nan_extrapolation_threshold_is_refused(field):
    with pytest.raises(BayescaleError, match="must be positive"):
        Thresholds(**{field: float("nan")})


def test_a_plan_on_the_edge_of_the_fitted_range_up_to_rounding_suggests_no_runs():
    """Sizes parsed from "8.7B" and computed as 8.7e9 differ in the last bits: the plan at the
    largest fitted N and D is inside, not a run to suggest to itself."""
    max_n, max_d = FITTED["params"].max(), FITTED["tokens"].max()
    ext = extrapolation(FITTED, max_n, max_d, Thresholds())
    assert suggested_runs(max_n * (1 + 1e-12), max_d * (1 - 1e-12), ext) == []


def test_a_plan_beyond_the_fitted_epochs_only_is_told_to_add_runs_at_more_epochs(tmp_path):
    """Inside the fitted N and D, 10x the fitted epochs: no N, D runs to suggest; the advice
    points at runs that repeat their data more often, not at more of the same."""
    from tests.test_limits import cli, muennighoff_file

    path = muennighoff_file(tmp_path)
    args = ["risk", path, "-N", "3B", "-D", "60B", "--json"]
    repeated = json.loads(cli([*args, "--unique-tokens", "3B"]).stdout)["uncertainty"]
    assert repeated["suggested_runs"] == [] and "at more epochs" in repeated["advice"]
    fresh = json.loads(cli(args).stdout)["uncertainty"]
    assert "at more epochs" not in fresh["advice"]


def test_markdown_has_the_epochs_ratio_under_a_data_limit(tmp_path):
    from tests.test_limits import cli, muennighoff_file

    path = muennighoff_file(tmp_path)
    args = ["risk", path, "-N", "3B", "-D", "60B", "--format", "markdown"]
    repeated = cli([*args, "--unique-tokens", "3B"]).stdout
    assert "| epochs (D / U) | 20 | |" in repeated
    assert "| epochs / most fitted epochs | 10x | |" in repeated
    assert "epochs / most fitted" not in cli(args).stdout


def test_markdown_carries_the_limits_tables_and_their_warnings(tmp_path):
    """risk --format markdown is one document on stdout: the data-limit and inference tables
    and their warnings are in it, not only on stderr."""
    from tests.test_limits import cli, muennighoff_file

    path = muennighoff_file(tmp_path)
    result = cli(["risk", path, "-N", "3B", "-D", "60B", "--unique-tokens", "3B",
                  "--inference-tokens", "1T", "--format", "markdown"])
    assert result.exit_code == 0 and result.stderr == ""
    out = result.stdout
    assert "#### Best allocation with 3B unique tokens" in out
    assert "#### Least training + inference FLOPs" in out
    assert "| loss the limit costs (nats) |" in out and "| share saved |" in out
    assert "- **Limits:** the best run under the data limit repeats its data" in out
    assert "- **Inference:** the inference-aware run saves" in out
    plain = cli(["risk", path, "-N", "3B", "-D", "60B", "--format", "markdown"]).stdout
    assert "####" not in plain and "**Limits:**" not in plain


def test_max_epochs_ratio_without_unique_tokens_is_a_usage_error(tmp_path):
    from tests.test_limits import cli, muennighoff_file

    path = muennighoff_file(tmp_path)
    result = cli(["risk", path, "-N", "3B", "-D", "60B", "--max-epochs-ratio", "5"])
    assert result.exit_code == 2 and "--unique-tokens" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target_loss": "2.2"}, "target loss must be a positive finite number, got '2.2'"),
    ({"thresholds": {"go_probability": 0.5}}, "Thresholds\\(\\*\\*your_values\\)")])
def test_risk_api_arguments_of_the_wrong_type_are_one_error(known_posterior, kwargs, message):
    with pytest.raises(BayescaleError, match=message):
        known_posterior.risk(7e9, 1.4e11, **kwargs)
