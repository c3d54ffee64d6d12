"""Allocation under limits (issue 26): the Muennighoff law of repeated data, the data-limited
optimum, the inference-aware optimum (Sardana et al. 2024) and their bad inputs.

Everything arithmetic runs on known draws; one slow test samples the law.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import ModelSpec, Posterior
from bayescale.cli import app
from bayescale.core.errors import BayescaleError
from bayescale.data.runs import load_runs
from bayescale.law.laws import get_law, muennighoff_effective
from bayescale.law.simulate import known_draws
from bayescale.posterior.limits import (
    FLAT,
    data_limited,
    data_limited_draws,
    inference_aware,
    inference_draws,
)
from tests.builders import one_line_error, quick, quick_fit

#: The paper's fit (Muennighoff et al. 2023, section 3.1), as draws around it.
PAPER = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.360, "R_D": 15.4,
         "R_N": 5.3}
CHINCHILLA = ("E", "A", "B", "alpha", "beta")


def paper_draws(size: int = 200, spread: float = 0.02, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    draws = {k: v * np.exp(rng.normal(0, spread, size)) for k, v in PAPER.items()}
    draws["sigma_obs"] = np.full(size, 0.002)
    draws["seed_noise"] = np.full(size, 0.01)
    return draws


def repeated_runs(seed: int = 0) -> pd.DataFrame:
    """Final losses of runs at 3 sizes, fresh and repeated data, from the paper's law."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (1e8, 3e8, 1e9):
        for d in (2e9, 6e9, 2e10):
            for epochs in (1, 2, 4, 8, 16, 32):
                rows.append({"params": n, "tokens": d, "unique_tokens": d / epochs})
    frame = pd.DataFrame(rows)
    law = get_law("muennighoff")
    truth = {k: np.array([v]) for k, v in PAPER.items()}
    loss = law.loss(truth, frame["params"], frame["tokens"],
                    {"unique_tokens": frame["unique_tokens"]})[0]
    frame["loss"] = loss * np.exp(rng.normal(0, 0.003, len(frame)))
    return frame


def muennighoff_file(tmp_path, data: pd.DataFrame | None = None, draws: int = 200):
    frame = data if data is not None else pd.DataFrame(
        {"params": [1e9, 3e9], "tokens": [2e10, 6e10], "loss": [2.6, 2.4],
         "unique_tokens": [1e10, 3e10]})
    post = Posterior.from_draws(paper_draws(draws), law="muennighoff", data=frame)
    path = tmp_path / "m.posterior.nc"
    post.save(path)
    return path


def cli(args: list) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


# ------------------------------------------------------------------------------ the law
def test_fresh_data_is_chinchilla_below_the_optimal_size():
    law, chin = get_law("muennighoff"), get_law("chinchilla")
    draws = {k: np.array([v]) for k, v in PAPER.items()}
    n, d = np.array([1e9, 7e10]), np.array([1e11, 1.4e12])  # N below N_opt(D)
    fresh = law.log_loss(draws, n, d)
    assert np.allclose(fresh, chin.log_loss(draws, n, d), rtol=1e-12)
    assert np.allclose(fresh, law.log_loss(draws, n, d, {"unique_tokens": d}), rtol=1e-12)


def test_repetition_costs_loss_and_grows_with_epochs():
    law = get_law("muennighoff")
    draws = {k: np.array([v]) for k, v in PAPER.items()}
    d = 1e11
    losses = [law.loss(draws, [1e9], [d], {"unique_tokens": [d / e]})[0, 0]
              for e in (1, 2, 4, 16, 64)]
    assert all(b > a for a, b in itertools.pairwise(losses))
    # about 4 epochs cost almost nothing (the paper's finding): under 1% of the loss
    assert losses[2] / losses[0] - 1 < 0.01


def test_effective_data_matches_the_paper_and_pytensor():
    import pytensor
    import pytensor.tensor as pt

    _, log_d = muennighoff_effective(np.log(1e9), np.log(4e10), np.log(1e10), np.log(521.0),
                                         np.log(1488.0), 0.353, 0.36, 15.4, 5.3)
    expected = 1e10 * (1 + 15.4 * (1 - np.exp(-3 / 15.4)))
    assert np.isclose(np.exp(log_d), expected, rtol=1e-12)
    x = pt.dvector("x")
    out = muennighoff_effective(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], xp=pt)
    f = pytensor.function([x], list(out))
    args = np.array([np.log(8.7e9), np.log(1.78e11), np.log(4e9), np.log(521.0),
                     np.log(1488.0), 0.353, 0.36, 15.4, 5.3])
    assert np.allclose(f(args), muennighoff_effective(*args), rtol=1e-10)


def test_existing_laws_ignore_covariates():
    draws = known_draws(50)
    law = get_law("chinchilla")
    plain = law.log_loss(draws, [7e10], [1.4e12])
    assert np.array_equal(plain, law.log_loss(draws, [7e10], [1.4e12],
                                              {"unique_tokens": [1e9]}))
    assert get_law("chinchilla").covariates == () and get_law("kaplan").covariates == ()


# ------------------------------------------------------------------------- data limit
def test_data_limit_ample_data_costs_nothing_and_scarce_data_costs_more():
    law, draws = get_law("muennighoff"), paper_draws(50)
    ample = data_limited_draws(law, draws, 1e22, 1e14)
    assert np.all(np.abs(ample["limit_cost"]) < 1e-4)
    costs = [np.median(data_limited_draws(law, draws, 1e22, u)["limit_cost"])
             for u in (1e11, 3e10, 1e10)]
    assert 0 < costs[0] < costs[1] < costs[2]
    scarce = data_limited_draws(law, draws, 1e22, 1e10)
    assert np.all(scarce["epochs"] > 1)
    assert np.allclose(scarce["params"] * scarce["tokens"] * 6, 1e22, rtol=1e-9)


def test_data_limit_matches_a_brute_force_grid():
    law, draws = get_law("muennighoff"), paper_draws(5)
    out = data_limited_draws(law, draws, 1e22, 1e10)
    grid = np.geomspace(1e8, 1e11, 4001)
    loss = law.log_loss(draws, grid, 1e22 / 6 / grid, {"unique_tokens": np.full(grid.size, 1e10)})
    brute = grid[np.argmin(loss, axis=1)]
    assert np.allclose(out["params"], brute, rtol=0.01)


def test_data_limit_needs_a_law_with_the_term():
    with pytest.raises(BayescaleError, match="data-limit term"):
        data_limited_draws(get_law("chinchilla"), known_draws(10), 1e22, 1e10)


# --------------------------------------------------------------------- inference cost
def brute_force(law, draws, target, served, unique=None):
    """Per draw, the (N, D) on a fine 2-d grid reaching the target at the least 6ND + 2NT."""
    n = np.geomspace(1e8, 1e12, 1200)
    d = np.geomspace(1e10, 1e14, 1200)
    nn, dd = np.meshgrid(n, d, indexing="ij")
    best = []
    for s in range(np.asarray(draws["E"]).size):
        one = {k: v[s:s + 1] for k, v in draws.items()}
        cov = None if unique is None else {"unique_tokens": np.full(nn.size, unique)}
        loss = law.loss(one, nn.ravel(), dd.ravel(), cov).reshape(nn.shape)
        cost = np.where(loss <= target[s], 6 * nn * dd + 2 * nn * served, np.inf)
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        best.append((n[i], d[j], cost[i, j]))
    return np.array(best)


@pytest.mark.parametrize("law_name", ["chinchilla", "muennighoff"])
def test_inference_optimum_matches_brute_force(law_name):
    law = get_law(law_name)
    draws = paper_draws(4) if law_name == "muennighoff" else known_draws(4)
    n_opt, d_opt = law.optimal(draws, 1e23)
    target = np.exp(law.log_loss(draws, n_opt[:, None], d_opt[:, None])[:, 0])
    out = inference_draws(law, draws, 2e12, target)
    brute = brute_force(law, draws, target, 2e12)
    # the same answer within the grid's resolution (0.8% per step in N and D; the cost is flat
    # near its minimum, so N and D move a few steps for a tiny change in cost)
    assert np.allclose(out["params"], brute[:, 0], rtol=0.05)
    assert np.allclose(out["tokens"], brute[:, 1], rtol=0.05)
    assert np.all(out["total_flops"] <= brute[:, 2] * (1 + 1e-3))
    assert np.all(out["total_flops"] >= brute[:, 2] * (1 - 0.02))


def test_inference_without_serving_is_the_compute_optimal_run():
    law, draws = get_law("chinchilla"), known_draws(20)
    n_opt, d_opt = law.optimal(draws, 1e22)
    target = np.exp(law.log_loss(draws, n_opt[:, None], d_opt[:, None])[:, 0])
    out = inference_draws(law, draws, 0.0, target)
    assert np.allclose(out["params"], n_opt, rtol=0.01)
    assert np.allclose(out["chinchilla_params"], n_opt, rtol=0.01)
    assert np.allclose(out["flops_saved"] / out["total_flops"], 0.0, atol=1e-4)


def test_more_inference_means_smaller_models_trained_longer():
    """Sardana et al. 2024: a larger T gives a smaller N and more tokens per parameter."""
    law, draws = get_law("chinchilla"), known_draws(20)
    out = [inference_draws(law, draws, t, 2.1) for t in (0.0, 1e11, 1e12, 1e13, 1e14)]
    for small, large in itertools.pairwise(out):
        assert np.all(large["params"] < small["params"])
        assert np.all(large["tokens_per_param"] > small["tokens_per_param"])
        assert np.all(large["flops_saved"] >= small["flops_saved"] - 1e-6 * small["total_flops"])
    assert np.all(out[-1]["flops_saved"] > 0)


def test_unreachable_target_is_nan_not_the_grid_edge():
    out = inference_draws(get_law("chinchilla"), known_draws(10), 1e12, 1.0)  # below E
    assert np.all(np.isnan(out["params"])) and np.all(np.isnan(out["total_flops"]))


# --------------------------------------------------------------------------------- CLI
def test_optimal_unique_tokens_json(tmp_path):
    path = muennighoff_file(tmp_path)
    result = cli(["optimal", path, "-C", "1e22", "--unique-tokens", "5B", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["data_limit"]
    assert out["epochs"]["median"] > 2 and out["limit_cost"]["median"] > 0
    assert out["fitted_max_epochs"] == pytest.approx(2.0)
    assert any("beyond the 2" in w for w in json.loads(result.stdout)["warnings"])


def test_optimal_inference_tokens_json(tmp_path):
    path = muennighoff_file(tmp_path)
    result = cli(["optimal", path, "-C", "1e22", "--inference-tokens", "2T", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)["inference"]
    assert out["params"]["median"] < out["chinchilla_params"]["median"]
    assert out["flops_saved"]["median"] > 0 and out["reached"] == 1.0
    result = cli(["optimal", path, "--target-loss", "2.3", "--inference-tokens", "2T", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inference"]["target_loss"]["median"] == pytest.approx(2.3)


def test_inference_under_a_data_limit_targets_the_limited_optimum(tmp_path):
    """With --unique-tokens the default target is the best run under the limit: the unlimited
    run's loss lies out of a scarce limit's reach, so no draw would reach it."""
    path = muennighoff_file(tmp_path)
    result = cli(["optimal", path, "-C", "1e22", "--unique-tokens", "2B",
                  "--inference-tokens", "1T", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    inference, limited = out["inference"], out["data_limit"]
    assert inference["reached"] == 1.0
    assert inference["target_loss"]["median"] == pytest.approx(limited["loss"]["median"])
    assert inference["target_loss"]["median"] > limited["unlimited_loss"]["median"]


def test_risk_with_limits(tmp_path):
    path = muennighoff_file(tmp_path)
    result = cli(["risk", path, "-N", "3B", "-D", "100B", "--unique-tokens", "10B",
                  "--inference-tokens", "1T", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["data_limit"]["plan"]["epochs"] == pytest.approx(10.0)
    assert out["inference"]["plan_flops_saved_share"]["median"] >= 0


@pytest.mark.parametrize("target", [None, "2.3"])
def test_risk_says_at_which_loss_the_inference_aware_run_saves(tmp_path, target):
    """The saving compares runs at the same loss only when the inference-aware run aims at
    the plan's own loss; with --target-loss it aims at the target, and the line says so (it
    once said "at the same loss" either way)."""
    path = muennighoff_file(tmp_path)
    args = ["risk", path, "-N", "3B", "-D", "100B", "--inference-tokens", "1T"]
    result = cli(args + ([] if target is None else ["--target-loss", target]))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stderr.splitlines() if "inference-aware run saves" in x)
    if target is None:
        assert line.endswith("at the same loss")
    else:
        assert "while reaching the target loss 2.3, not the plan's own expected loss" in line


def test_risk_verdict_is_of_the_plan_under_its_data_limit(tmp_path):
    """With --unique-tokens the review is of the plan as it will be trained (D / U epochs),
    and its alternative is the best run of its compute under the same limit."""
    path = muennighoff_file(tmp_path)
    args = ["risk", path, "-N", "3B", "-D", "100B", "--target-loss", "2.5", "--json"]
    fresh = json.loads(cli(args).stdout)
    limited = cli([*args, "--unique-tokens", "5B"])
    assert limited.exit_code == 0, limited.output
    out = json.loads(limited.stdout)
    assert out["unique_tokens"] == pytest.approx(5e9) and out["compute_share"] is None
    assert out["loss"] == pytest.approx(out["data_limit"]["plan"]["loss"])  # predict's draws
    assert out["loss"]["median"] > fresh["loss"]["median"]  # 20 epochs cost loss
    assert out["prob_below_target"] < fresh["prob_below_target"]
    assert out["optimal"]["params"]["median"] == pytest.approx(
        out["data_limit"]["params"]["median"], rel=0.05)
    assert fresh["unique_tokens"] is None and fresh["compute_share"] is not None


def test_risk_cautions_a_plan_repeating_far_beyond_the_fitted_epochs(tmp_path):
    """Fitted runs of 2 epochs; a plan of 50 epochs (25x) is a CAUTION, as a plan 10x beyond
    the fitted D would be, unless the limit is raised."""
    path = muennighoff_file(tmp_path)
    args = ["risk", path, "-N", "3B", "-D", "100B", "--unique-tokens", "2B", "--json"]
    out = json.loads(cli(args).stdout)
    assert out["extrapolation"]["epochs_ratio"] == pytest.approx(25.0)
    assert out["verdict"] == "CAUTION"
    assert any("25x more often than any fitted run" in r for r in out["reasons"])
    relaxed = json.loads(cli([*args, "--max-epochs-ratio", "100"]).stdout)
    assert not any("more often than any fitted run" in r for r in relaxed["reasons"])
    fresh = json.loads(cli(["risk", path, "-N", "3B", "-D", "100B", "--json"]).stdout)
    assert fresh["extrapolation"]["epochs_ratio"] is None


def test_risk_under_a_data_limit_needs_the_term():
    post = Posterior.from_draws(known_draws())
    with pytest.raises(BayescaleError, match="data-limit term"):
        post.risk(7e9, 1.4e11, unique_tokens=1e10)


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("value", "message"), [
    ("0", "is not positive"), ("-5e9", "is not positive"),
    ("3e10", r"more than the 2e\+10 tokens seen"),
    ("20", "20 is implausibly small for a count of unique tokens")])  # billions, no unit
def test_bad_unique_tokens_column(tmp_path, value, message):
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,loss,u\n1e8,1e9,3.5,1e9\n1e9,2e10,2.8," + value + "\n")
    with pytest.raises(BayescaleError, match=message) as info:
        load_runs(path, unique_tokens_col="u")
    assert "row 3" in str(info.value) and "column 'u'" in str(info.value)
    out = tmp_path / "out.posterior.nc"
    result = cli(["fit", path, "--law", "muennighoff", "--unique-tokens-col", "u", "-o", out])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and "row 3" in result.output
    assert not out.exists()


def test_tokens_in_the_wrong_unit_are_named_not_the_unique_tokens(tmp_path):
    """D written in billions without its unit: the error names the tokens column, not U
    (it once said the unique tokens were more than the 10 tokens seen)."""
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,loss,u\n1e8,1,3.5,1e9\n1e9,20,2.8,1e10\n")
    with pytest.raises(BayescaleError, match="column 'tokens': 1 is implausibly small"):
        load_runs(path, unique_tokens_col="u")


def test_muennighoff_without_the_column(tmp_path):
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": [1e8, 3e8, 1e9] * 3, "tokens": np.repeat([2e9, 6e9, 2e10], 3),
                  "loss": np.linspace(3.5, 2.7, 9)}).to_csv(path, index=False)
    out = tmp_path / "out.posterior.nc"
    # the law's option rules are usage errors (exit 2), before the file is read
    for command in (["fit", path, "--law", "muennighoff", "-o", out],
                    ["backtest", path, "--law", "muennighoff"]):
        result = cli(command)
        assert result.exit_code == 2, result.output
        assert "--unique-tokens-col" in result.stderr and "Traceback" not in result.output
    family = cli(["fit", path, "--law", "muennighoff", "--unique-tokens-col", "u",
                  "--family-col", "f", "-o", out])
    assert family.exit_code == 2 and "no family model" in family.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", [["optimal", "-C", "1e22"], ["risk", "-N", "1B", "-D", "20B"],
                                     ["predict", "-N", "1B", "-D", "20B"]])
def test_unique_tokens_with_a_law_without_the_term(tmp_path, command):
    path = tmp_path / "c.posterior.nc"
    Posterior.from_draws(known_draws(100)).save(path)
    result = cli([command[0], path, *command[1:], "--unique-tokens", "5B"])
    assert result.exit_code == 1
    assert "data-limit term" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["optimal", "-C", "1e22"], ["risk", "-N", "1B", "-D", "20B"]])
def test_negative_inference_tokens(tmp_path, command):
    path = tmp_path / "c.posterior.nc"
    Posterior.from_draws(known_draws(100)).save(path)
    result = cli([command[0], path, *command[1:], "--inference-tokens=-1e12"])
    assert result.exit_code == 2
    assert "--inference-tokens" in result.output


# ------------------------------------------------------------------------------ sampling
@pytest.mark.slow
def test_fit_recovers_a_repeated_data_law(tmp_path):
    frame = repeated_runs()
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runs = load_runs(path, unique_tokens_col="unique_tokens")
    result = quick_fit(runs, ModelSpec(law="muennighoff", likelihood="normal"),
                       quick(draws=300, tune=400), calibration=False)
    post = result.posterior
    summary = post.summary(level=0.98)
    for name in ("R_D", "R_N"):
        assert summary.loc[name, "lower"] < PAPER[name] < summary.loc[name, "upper"]
    fitted = post.predict(params=frame["params"], tokens=frame["tokens"],
                          unique_tokens=frame["unique_tokens"])
    inside = (fitted["loss_lower"] <= frame["loss"]) & (frame["loss"] <= fitted["loss_upper"])
    assert inside.mean() > 0.8
    saved = tmp_path / "m.posterior.nc"
    post.save(saved)
    assert Posterior.load(saved).law.name == "muennighoff"


# ------------------------------------------------------------------------------ figure
def test_frontier_shows_the_data_limited_optimum(tmp_path):
    from bayescale.report.plots import plot_frontier

    post = Posterior.load(muennighoff_file(tmp_path))
    fig = plot_frontier(post, unique_tokens=5e9)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert any("5B unique tokens" in label for label in labels)


def test_frontier_inference_curve_is_under_the_data_limit_too(tmp_path):
    """With both limits the dotted curve is `optimal --unique-tokens --inference-tokens` at
    each budget (it once ignored U), and the curves run to the last budget of the axis."""
    from bayescale.report.plots import plot_frontier

    post = Posterior.load(muennighoff_file(tmp_path, draws=40))
    fig = plot_frontier(post, unique_tokens=5e9, inference_tokens=1e12)
    line = next(line for line in fig.axes[0].get_lines() if "serving" in line.get_label())
    assert "5B unique tokens" in line.get_label()
    budgets, params = line.get_data()
    assert budgets[-1] == pytest.approx(fig.axes[0].get_xlim()[1])
    answer = inference_aware(post, 1e12, compute=float(budgets[8]), unique_tokens=5e9)
    assert params[8] == pytest.approx(answer["params"]["median"], rel=0.05)
    unlimited = inference_aware(post, 1e12, compute=float(budgets[8]))
    assert params[8] != pytest.approx(unlimited["params"]["median"], rel=0.05)


def test_plot_limits_only_on_the_frontier(tmp_path):
    path = muennighoff_file(tmp_path)
    out = tmp_path / "f.png"
    result = cli(["plot", path, "isoflop", "-o", out, "--unique-tokens", "5B"])
    assert result.exit_code == 2 and not out.exists()


def test_closed_form_tokens_to_reach_agree_with_the_bisection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Chinchilla's closed-form D for a target loss is what the generic bisection finds,
    NaN where the target is out of reach, and the lowest D where it is reached below it."""
    from bayescale.law.laws import Chinchilla, Law
    from bayescale.posterior.limits import tokens_to_reach

    draws = known_draws(200, random_seed=3)
    law = Chinchilla()
    log_n = np.log(np.geomspace(1e5, 1e13, 40))[None, :].repeat(200, axis=0)
    log_target = np.log(np.full(200, 2.2))
    closed = tokens_to_reach(law, draws, log_n, log_target)
    monkeypatch.setattr(Chinchilla, "log_tokens_to_reach", Law.log_tokens_to_reach)
    searched = tokens_to_reach(law, draws, log_n, log_target)
    np.testing.assert_array_equal(np.isnan(closed), np.isnan(searched))
    assert np.isnan(closed).any() and (~np.isnan(closed)).any()
    np.testing.assert_allclose(closed, searched, atol=1e-9)


# ------------------------------------------------------- bounds, reach and far warnings
def test_a_limit_that_does_not_bind_gives_the_unlimited_optimum_at_no_cost():
    """U at or above the unlimited optimum's D: the limited optimum is the unlimited one, at
    any budget (the search once pinned D at its 1e17 or 1e5 bound and charged a cost)."""
    law, draws = get_law("muennighoff"), paper_draws(50)
    for compute in (1e12, 1e30):
        out = data_limited_draws(law, draws, compute, 1e20)
        assert np.all(out["limit_cost"] == 0.0)
        np.testing.assert_array_equal(out["params"], out["unlimited_params"])
        np.testing.assert_array_equal(out["tokens"], out["unlimited_tokens"])


def test_a_binding_limit_is_solved_beyond_the_old_fixed_range():
    """The data-limited search spans the whole curve C = 6ND: few unique tokens at 1e30 FLOP
    make extra parameters worth little too, and the best D lies above the old 1e17 bound.
    There the loss is flat along the curve (N' and D' saturate) from about 1e10 parameters
    up: the answer is the smallest N of that flat stretch, as a brute force along the curve
    finds it, not the point float noise puts lowest."""
    law, draws = get_law("muennighoff"), paper_draws(5)
    out = data_limited_draws(law, draws, 1e30, 1e9)
    grid = np.geomspace(1e8, 1e14, 12001)
    loss = law.log_loss(draws, grid, 1e30 / 6 / grid, {"unique_tokens": np.full(grid.size, 1e9)})
    flat = loss <= loss.min(axis=1, keepdims=True) + FLAT
    assert flat[:, -1].all()  # flat up to N = 1e14: any N there gives the same loss
    np.testing.assert_allclose(out["params"], grid[np.argmax(flat, axis=1)], rtol=0.02)
    assert np.all(out["tokens"] > 1e17) and np.all(out["limit_cost"] > 0)


def test_an_answer_on_a_search_bound_is_named_in_a_warning(tmp_path):
    path = muennighoff_file(tmp_path)
    post = Posterior.load(path)
    out = inference_aware(post, 0.0, target_loss=20.0)  # reached below the least N, 1e5
    assert any("at the edge of the searched range (N from 100K to" in w
               for w in out["warnings"])
    assert not any("edge" in w for w in inference_aware(post, 0.0, target_loss=12.0)["warnings"])


def test_an_unreachable_target_is_refused_with_its_reason(tmp_path):
    path = muennighoff_file(tmp_path)
    result = cli(["optimal", path, "--target-loss", "0.5", "--inference-tokens", "2T"])
    assert result.exit_code == 1
    assert "lies below the loss the law reaches" in result.output
    assert "E's 90% interval" in result.output and "nan" not in result.output
    with pytest.raises(BayescaleError, match=r"fewer than a 0\.9 interval needs"):
        # a target E of 2 of the 200 draws lie below: too few to make an interval of
        inference_aware(Posterior.load(path), 1e12,
                        target_loss=float(np.sort(paper_draws()["E"])[2]) + 1e-3)


def test_the_reason_a_draw_misses_the_target_tells_e_from_the_searched_range(tmp_path):
    """Draws whose E lies below the target but which need more than the searched D are not
    told that the target lies at or below their irreducible loss."""
    post = Posterior.load(muennighoff_file(tmp_path))
    e = post.draws()["E"]
    # just above the median E: the draws of E close below it need D far above 1e17
    out = inference_aware(post, 1e12, target_loss=float(np.median(e)) + 2e-4)
    below, beyond = (next(w for w in out["warnings"] if key in w)
                     for key in ("irreducible loss E", "beyond the searched range"))
    assert int(below.split(" of ")[0]) == int(np.sum(e >= np.median(e) + 2e-4))
    assert int(beyond.split(" of ")[0]) > 0
    assert out["reached"] == pytest.approx(1 - (int(below.split(" of ")[0])
                                                + int(beyond.split(" of ")[0])) / e.size)


def test_limited_optima_far_outside_the_fitted_runs_are_warned_of(tmp_path):
    """As plain `optimal` at a budget far beyond the runs (the rule of far_targets)."""
    path = muennighoff_file(tmp_path)
    plain = json.loads(cli(["optimal", path, "-C", "1e26", "--json"]).stdout)["warnings"]
    assert any("far outside the fitted runs" in w for w in plain)
    for extra in (["--unique-tokens", "1e16"], ["--inference-tokens", "1e12"]):
        result = cli(["optimal", path, "-C", "1e26", *extra, "--json"])
        assert result.exit_code == 0, result.output
        assert any("far outside the fitted runs" in w
                   for w in json.loads(result.stdout)["warnings"])
    near = json.loads(cli(["optimal", path, "-C", "1e21", "--unique-tokens", "1e16",
                           "--json"]).stdout)["warnings"]
    assert not any("far outside" in w for w in near)


# ------------------------------------------------------------- a limit at its floor
def test_a_saturated_limit_is_named_and_its_run_is_the_smallest_of_the_flat_stretch(tmp_path):
    """With 100M unique tokens at 1e22 FLOP the loss is flat along C = 6ND over decades of N
    (N' and D' saturate): the answer is reproducible (the smallest N of the stretch, as a
    brute force along the curve finds it), a warning says so, and the inference search aimed
    at that loss by default reaches it in every draw (it once missed some by rounding)."""
    post = Posterior.load(muennighoff_file(tmp_path))
    law, draws = post.law, post.draws()
    out = data_limited(post, 1e22, 1e8)
    assert any("at the lowest loss 100M unique tokens allow" in w for w in out["warnings"])
    few = {k: v[:5] for k, v in draws.items()}
    grid = np.geomspace(1e7, 1e12, 10001)
    loss = law.log_loss(few, grid, 1e22 / 6 / grid, {"unique_tokens": np.full(grid.size, 1e8)})
    flat = loss <= loss.min(axis=1, keepdims=True) + FLAT
    assert np.all(flat.sum(axis=1) > 1000)  # a stretch of equal losses, not one point
    np.testing.assert_allclose(data_limited_draws(law, few, 1e22, 1e8)["params"],
                               grid[np.argmax(flat, axis=1)], rtol=0.02)
    served = inference_aware(post, 1e12, compute=1e22, unique_tokens=1e8)
    assert served["reached"] == 1.0
    assert not any("never reach" in w for w in served["warnings"])
    assert not any("lowest loss" in w for w in data_limited(post, 1e22, 1e11)["warnings"])
    # the command the warning suggests runs as printed, and most draws reach its target
    odd = 1.3141e8  # a U that three digits would round down, raising the floor
    line = next(w for w in data_limited(post, 1e23, odd)["warnings"] if "lowest loss" in w)
    suggested = line.split("`")[1].split()
    assert suggested[:3] == ["bayescale", "optimal", "FIT"]
    result = cli([*suggested[1:2], tmp_path / "m.posterior.nc", *suggested[3:], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inference"]["reached"] >= 0.9


def test_an_answer_cut_by_the_largest_tokens_is_named_in_a_warning():
    """T = 1e20 served tokens push the run to the most tokens the search allows (1e17): the
    answer is the bound's, and the warning says so (it once named only the other bounds)."""
    post = Posterior.from_draws(known_draws(200))
    out = inference_aware(post, 1e20, compute=1e22)
    assert any("edge of the searched range" in w and "to 1e+17 tokens" in w
               for w in out["warnings"])
    assert not any("edge" in w for w in inference_aware(post, 1e12, compute=1e22)["warnings"])


def test_a_refusal_under_a_data_limit_gives_that_limit_s_floor(tmp_path):
    path = muennighoff_file(tmp_path)
    line = one_line_error(cli(["optimal", path, "--target-loss", "2.5", "--unique-tokens",
                               "1e8", "--inference-tokens", "1T"]))
    assert "the lowest loss with 100M unique tokens has the 90% interval" in line
    assert "E's" not in line


def test_frontier_marks_the_budgets_beyond_the_fitted_epochs(tmp_path):
    """Fitted runs of at most 2 epochs: with 1B unique tokens the data-limited curve repeats
    the data more at large budgets, and those points are marked (once nothing said so)."""
    from bayescale.report.plots import plot_frontier

    post = Posterior.load(muennighoff_file(tmp_path, draws=40))
    labels = plot_frontier(post, unique_tokens=1e9).axes[0].get_legend_handles_labels()[1]
    assert any("beyond the 2 epochs fitted" in label for label in labels)
    ample = plot_frontier(post, unique_tokens=1e15).axes[0].get_legend_handles_labels()[1]
    assert not any("beyond" in label for label in ample)
