"""Predictions and compute-optimal allocation, computed draw by draw; the seed-noise floor."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.core.errors import BayescaleError
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss
from tests.builders import known_draws_posterior


def test_closed_form_optimum_matches_numeric_minimisation(known_posterior):
    """Hoffmann et al.'s closed form against a 1-d minimisation of L(N, C/(6N)) per draw."""
    draws = known_posterior.draws()
    law = known_posterior.law
    for compute in (1e20, 5.88e23):
        n_opt, d_opt = law.optimal(draws, compute)
        np.testing.assert_allclose(6 * n_opt * d_opt, compute, rtol=1e-10)
        for i in range(0, 2000, 400):
            truth = {k: float(v[i]) for k, v in draws.items()}

            def along(log_n, truth=truth, compute=compute):
                return chinchilla_loss(truth, np.exp(log_n), compute / (6 * np.exp(log_n)))

            best = minimize_scalar(along, bounds=(np.log(1e6), np.log(1e14)), method="bounded",
                                   options={"xatol": 1e-10})
            assert n_opt[i] == pytest.approx(np.exp(best.x), rel=1e-4)


def test_generic_numeric_optimum_agrees_with_closed_form(known_posterior):
    from bayescale.law.laws import Law

    draws = known_posterior.draws()
    law = known_posterior.law
    n_closed, _ = law.optimal(draws, 1e22)
    n_numeric, _ = Law.optimal(law, draws, 1e22)
    np.testing.assert_allclose(n_numeric, n_closed, rtol=1e-5)


def test_mean_loss_is_the_law_and_new_run_interval_is_wider(known_posterior):
    frame = known_posterior.predict(params=[1e9, 70e9], tokens=[2e10, 1.4e12], level=0.9)
    draws = known_posterior.draws()
    law_loss = known_posterior.law.loss(draws, np.array([1e9, 70e9]), np.array([2e10, 1.4e12]))
    np.testing.assert_allclose(frame["mean_loss_median"], np.median(law_loss, axis=0))
    width = frame["loss_upper"] - frame["loss_lower"]
    mean_width = frame["mean_loss_upper"] - frame["mean_loss_lower"]
    assert (width > mean_width).all()
    assert ((frame["seed_floor_share"] > 0) & (frame["seed_floor_share"] < 1)).all()


def test_floor_never_shrinks_with_certain_parameters():
    """With the law known exactly, the new-run interval is the seed floor and nothing less."""
    post = known_draws_posterior(20000, spread=0.0, sigma_obs=1e-6, seed_noise=0.01)
    frame = post.predict(params=7e9, tokens=1.4e11, level=0.9)
    truth = float(chinchilla_loss(EPOCH_LAW, 7e9, 1.4e11))
    assert frame["mean_loss_lower"].iloc[0] == pytest.approx(truth)
    assert frame["mean_loss_upper"].iloc[0] == pytest.approx(truth)
    # 90% of exp(N(0, 0.01)): ln-width 2 x 1.645 x 0.01
    width = np.log(frame["loss_upper"].iloc[0] / frame["loss_lower"].iloc[0])
    assert width == pytest.approx(2 * 1.6449 * 0.01, rel=0.05)
    assert frame["seed_floor_share"].iloc[0] == pytest.approx(1.0)


def test_compute_replaces_params_or_tokens(known_posterior):
    a = known_posterior.predict(params=7e9, tokens=1.4e11)
    b = known_posterior.predict(params=7e9, compute=6 * 7e9 * 1.4e11)
    c = known_posterior.predict(tokens=1.4e11, compute=6 * 7e9 * 1.4e11)
    for other in (b, c):
        assert other["mean_loss_median"].iloc[0] == pytest.approx(a["mean_loss_median"].iloc[0])


def test_hdi_is_no_wider_than_eti(known_posterior):
    eti = known_posterior.predict(params=7e9, tokens=1.4e11, interval_kind="eti")
    hdi = known_posterior.predict(params=7e9, tokens=1.4e11, interval_kind="hdi")
    assert (hdi["loss_upper"] - hdi["loss_lower"]).iloc[0] <= (
        eti["loss_upper"] - eti["loss_lower"]).iloc[0] * 1.001


def test_fixed_params_gives_the_budget_where_it_is_optimal(known_posterior):
    frame = known_posterior.optimal(params=7e9)
    at_budget = known_posterior.optimal(compute=frame["compute_median"].iloc[0])
    assert at_budget["params_median"].iloc[0] == pytest.approx(7e9, rel=0.05)


def test_an_hdi_of_the_loss_is_taken_on_the_loss():
    """HDIs were taken on ln L and mapped back with exp, which is the HDI of ln L, not of L
    (0.03 nats apart at N = 1e8); the law's loss interval is now the HDI of its draws of L."""
    from bayescale.core.intervals import summarize
    from bayescale.law.simulate import known_draws

    post = Posterior.from_draws(known_draws(2000, spread=0.1))
    frame = post.predict(1e8, 2e9, interval_kind="hdi", level=0.9)
    loss = post.law.loss(post.draws(), [1e8], [2e9])[:, 0]
    hdi = summarize(loss, 0.9, "hdi")
    assert frame["mean_loss_lower"].iloc[0] == pytest.approx(float(hdi["lower"]), rel=1e-12)
    assert frame["mean_loss_upper"].iloc[0] == pytest.approx(float(hdi["upper"]), rel=1e-12)
    on_log = summarize(np.log(loss), 0.9, "hdi")
    assert abs(np.exp(on_log["lower"]) - hdi["lower"]) > 1e-3  # the two differ here


def test_the_budget_of_a_size_is_not_cut_at_a_search_bound():
    """With beta small beside alpha the budget at which N = 10B is optimal is 3.8e52 FLOP
    (Hoffmann et al. 2022, D.2: C = 6 (N / G)^((alpha + beta) / beta)); the search once
    stopped at 1e40 and gave that, where the optimum is 37M. A size optimal only at a budget
    below the range (N or D under 1,000) is refused, not given the bound."""
    from bayescale.law.simulate import known_draws

    size = 50
    draws = {"E": np.full(size, 1.8), "A": np.full(size, 482.0), "B": np.full(size, 2085.0),
             "alpha": np.full(size, 0.5), "beta": np.full(size, 0.12),
             "sigma_obs": np.full(size, 0.01), "seed_noise": np.full(size, 0.01)}
    a, b, alpha, beta = 482.0, 2085.0, 0.5, 0.12
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    exact = 6 * (1e10 / g) ** ((alpha + beta) / beta)
    budget = Posterior.from_draws(draws).optimal(params=1e10)["compute_median"].iloc[0]
    assert budget == pytest.approx(exact, rel=1e-4)
    with pytest.raises(BayescaleError, match="only below 6e\\+06 FLOP"):
        Posterior.from_draws(known_draws()).optimal(tokens=1000)


@pytest.mark.slow
def test_epoch_done_when(epoch_fit):
    """Issue 3: N* at Chinchilla's budget holds Epoch's 73B; 10-30 tokens per parameter; the
    law's expected loss at 70B x 1.4T holds 1.973 and the new-run interval is wider."""
    post = epoch_fit.posterior
    opt = post.optimal(compute=5.88e23, level=0.9).iloc[0]
    assert opt["params_lower"] <= 73e9 <= opt["params_upper"]
    assert 10 <= opt["tokens_per_param_median"] <= 30
    pred = post.predict(params=70e9, tokens=1.4e12, level=0.9).iloc[0]
    assert pred["mean_loss_lower"] <= 1.973 <= pred["mean_loss_upper"]
    width = pred["loss_upper"] - pred["loss_lower"]
    assert width > pred["mean_loss_upper"] - pred["mean_loss_lower"]


def test_predict_cli_json(known_example_file, tmp_path):
    targets = tmp_path / "targets.csv"
    targets.write_text("params,compute\n7B,5.88e21\n70B,5.88e23\n")
    result = CliRunner().invoke(app, ["predict", str(known_example_file), "--targets",
                                      str(targets), "--json", "--level", "0.8", "--interval",
                                      "hdi"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["level"] == 0.8 and payload["interval"] == "hdi"
    assert len(payload["targets"]) == 2
    first = payload["targets"][0]
    assert set(first) == {"params", "tokens", "compute", "loss", "mean_loss", "seed_floor_share",
                          "discrepancy_share", "extrapolation_decades"}
    assert first["tokens"] == pytest.approx(5.88e21 / (6 * 7e9))
    assert first["loss"]["lower"] < first["loss"]["median"] < first["loss"]["upper"]


def test_optimal_cli_json(known_example_file):
    result = CliRunner().invoke(app, ["optimal", str(known_example_file), "--compute", "1e21",
                                      "--compute", "5.88e23", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["exponents"]) == {"a", "b"}
    assert payload["exponents"]["a"]["median"] + payload["exponents"]["b"]["median"] == (
        pytest.approx(1.0))
    small, large = payload["budgets"]
    assert small["compute"] == 1e21 and large["params"]["median"] > small["params"]["median"]
    for key in ("params", "tokens", "tokens_per_param", "loss", "mean_loss"):
        assert set(large[key]) == {"median", "lower", "upper"}


def test_targets_table_with_disagreeing_compute_is_an_error(known_example_file, tmp_path):
    """params, tokens and compute all given must agree (C = 6 N D): one line naming the row."""
    targets = tmp_path / "targets.csv"
    targets.write_text("params,tokens,compute\n7B,140B,5.88e21\n70B,1.4T,1e20\n")
    result = CliRunner().invoke(app, ["predict", str(known_example_file), "--targets",
                                      str(targets)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{targets}, row 3, column 'compute'" in result.output
    assert "6 x params x tokens = 5.88e+23" in result.output


def test_predict_cli_human_table(known_example_file):
    result = CliRunner().invoke(app, ["predict", str(known_example_file), "-N", "7B", "-D",
                                      "140B"])
    assert result.exit_code == 0
    assert "7B" in result.stderr and "140B" in result.stderr and result.stdout == ""


def test_a_targets_interval_does_not_depend_on_the_other_targets(known_example):
    """Each target's noise has its own stream: asked alone or in a list, same interval."""
    alone = known_example.predict(70e9, 1.4e12, random_seed=3).iloc[0]
    listed = known_example.predict([7e9, 70e9, 1e9], [1.4e11, 1.4e12, 2e10],
                                   random_seed=3).iloc[1]
    for key in ("loss_median", "loss_lower", "loss_upper", "seed_floor_share"):
        assert listed[key] == alone[key]
    assert known_example.predict(70e9, 1.4e12, random_seed=4).iloc[0]["loss_lower"] != \
        alone["loss_lower"]


def test_optimal_gives_a_new_runs_loss_and_the_laws(known_example):
    """The loss at the optimum as a new run would reach it (noise and the law's discrepancy
    included, as predict) beside the law's expected loss; risk's optimum is the same run."""
    compute = 6.0 * 7e9 * 1.4e11
    opt = known_example.optimal(compute=compute, random_seed=2).iloc[0]
    assert opt["loss_lower"] < opt["mean_loss_lower"] < opt["mean_loss_median"]
    assert opt["mean_loss_median"] < opt["mean_loss_upper"] < opt["loss_upper"]
    review = known_example.risk(7e9, 1.4e11, random_seed=2)
    assert review.optimal["loss"] == {k: opt[f"loss_{k}"] for k in ("median", "lower", "upper")}
    plain = known_example.optimal(compute=compute, random_seed=2, discrepancy=False).iloc[0]
    assert plain["loss_upper"] - plain["loss_lower"] < opt["loss_upper"] - opt["loss_lower"]


def test_from_draws_checks_what_it_is_given():
    draws = {k: np.full(8, v) for k, v in EPOCH_LAW.items()} | {"sigma_obs": np.full(8, 0.01)}
    with pytest.raises(BayescaleError, match="draws lack seed_noise"):
        Posterior.from_draws(draws)
    draws["seed_noise"] = np.full(7, 0.01)
    with pytest.raises(BayescaleError, match="one length"):
        Posterior.from_draws(draws)
    draws["seed_noise"] = np.full(8, 0.01)
    with pytest.raises(BayescaleError, match="multiple of chains = 3"):
        Posterior.from_draws(draws, chains=3)
    assert Posterior.from_draws(draws, chains=2).n_draws == 8


def test_api_arguments_are_checked_as_the_cli_checks_them(known_posterior):
    """Sizes with units work as on the command line; bad levels, seeds and shapes are one
    BayescaleError each, not numpy's or pandas' own."""
    by_unit = known_posterior.predict(params="7B", tokens="140B").iloc[0]
    assert by_unit["params"] == 7e9 and by_unit["tokens"] == 1.4e11
    for call in (lambda: known_posterior.exponents(level=2.0),
                 lambda: known_posterior.exponents(level=0.0),
                 lambda: known_posterior.predict(7e9, 1.4e11, level="0.9"),
                 lambda: known_posterior.predict(7e9, 1.4e11, random_seed=-1),
                 lambda: known_posterior.predict([[7e9, 8e9]], [[1e11, 1e11]]),
                 lambda: known_posterior.predict("seven", 1.4e11)):
        with pytest.raises(BayescaleError):
            call()


def test_predict_with_unique_tokens_reports_them_and_warns_beyond_the_fitted_epochs(tmp_path):
    """Fitted runs of at most 2 epochs: a target of 4 epochs has its unique tokens and epochs
    in the JSON and the repetition warning, as optimal and risk give it."""
    from tests.test_limits import cli, muennighoff_file

    path = muennighoff_file(tmp_path)
    out = json.loads(cli(["predict", path, "-N", "3B", "-D", "80B", "--unique-tokens", "20B",
                          "--json"]).stdout)
    target = out["targets"][0]
    assert target["unique_tokens"] == 2e10 and target["epochs"] == pytest.approx(4.0)
    assert any("repeats its data 4 times (epochs), beyond the 2" in w for w in out["warnings"])
    fresh = json.loads(cli(["predict", path, "-N", "3B", "-D", "80B", "--json"]).stdout)
    assert "epochs" not in fresh["targets"][0]
    assert not any("repeats its data" in w for w in fresh["warnings"])
    # U above D: the U given and D / U, part of one epoch, as optimal and risk report them
    ample = json.loads(cli(["predict", path, "-N", "3B", "-D", "20B", "--unique-tokens",
                            "100B", "--json"]).stdout)["targets"][0]
    assert ample["unique_tokens"] == 1e11 and ample["epochs"] == pytest.approx(0.2)


def test_a_targets_table_takes_what_the_options_take(tmp_path, known_example_file):
    """A D derived from compute is not held to the counts check (as -N 1B -C 1e27 is not);
    a count written without its unit in a table is (a unit slip, as in a runs table)."""
    from tests.test_limits import cli

    far = tmp_path / "far.csv"
    far.write_text("params,compute\n1B,1e27\n")
    result = cli(["predict", known_example_file, "--targets", far, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["targets"][0]["tokens"] == pytest.approx(1e27 / 6e9)
    slip = tmp_path / "slip.csv"
    slip.write_text("params,tokens\n7B,140B\n7,140B\n")
    line = cli(["predict", known_example_file, "--targets", slip]).stderr
    assert "row 3, column 'params': 7 is implausibly small" in line


def test_a_targets_table_with_unique_tokens_counts_for_a_repeated_data_law(
        tmp_path, known_example_file):
    from tests.test_limits import cli, muennighoff_file

    path = muennighoff_file(tmp_path)
    targets = tmp_path / "targets.csv"
    targets.write_text("params,tokens,unique_tokens\n3B,80B,1B\n3B,80B,80B\n")
    out = json.loads(cli(["predict", path, "--targets", targets, "--json"]).stdout)
    repeated, fresh = out["targets"]
    assert repeated["epochs"] == pytest.approx(80.0) and fresh["epochs"] == pytest.approx(1.0)
    assert repeated["loss"]["median"] > fresh["loss"]["median"]
    both = cli(["predict", path, "--targets", targets, "--unique-tokens", "1B"])
    assert both.exit_code == 2 and "not both" in both.stderr
    # a law of N and D cannot use the column; as fit reads a runs table, it is left aside
    chinchilla = json.loads(cli(["predict", known_example_file, "--targets", targets,
                                 "--json"]).stdout)
    assert "epochs" not in chinchilla["targets"][0]


@pytest.mark.parametrize("option", ["--params", "--tokens"])
def test_a_count_with_its_unit_written_twice_is_a_usage_error(known_example_file, option):
    """7e9B is 7e18: refused as in a runs table, not predicted as a 7-million-trillion run."""
    args = {"--params": "7B", "--tokens": "140B", option: "7e9B"}
    result = CliRunner().invoke(app, ["predict", str(known_example_file),
                                      *[x for k, v in args.items() for x in (k, v)]])
    assert result.exit_code == 2 and "a unit written twice" in result.stderr


def test_an_option_of_one_value_given_twice_is_a_usage_error(known_example_file):
    """Click would keep the last --params silently: predict 8B where 7B was typed too."""
    result = CliRunner().invoke(app, ["predict", str(known_example_file), "--params", "7B",
                                      "-N", "8B", "--tokens", "140B"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: bayescale predict: --params given 2 times; give it "
                                     "once (see 'bayescale predict --help')")
    several = CliRunner().invoke(app, ["optimal", str(known_example_file), "-C", "1e21", "-C",
                                       "1e22", "--json"])
    assert several.exit_code == 0  # --compute takes several budgets


def test_interval_headers_name_the_level_unrounded(known_example_file):
    result = CliRunner().invoke(app, ["predict", str(known_example_file), "-N", "7B", "-D",
                                      "140B", "--level", "0.995"])
    assert result.exit_code == 0 and "Predicted loss (99.5% ETI)" in result.stderr
    assert "(100% ETI)" not in result.stderr
