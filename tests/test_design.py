"""``bayescale design``: preposterior analysis on known draws (reweighting, ranking, the batch,
JSON, bad input, the figure); one short sampling test of the refit fallback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import BayescaleError
from bayescale.cli import app
from bayescale.data.compute import compute
from bayescale.evaluate.design import (
    REFIT_OUTCOMES,
    candidate_grid,
    design,
    kish_ess,
    read_candidates,
    weighted_quantiles,
)
from tests.builders import CACHE, example_frame, known_draws_posterior, quick

TARGET = (7e9, 1.4e11)
BUDGET = 3e21
runner = CliRunner()


@pytest.fixture(scope="module")
def example_design(known_example):
    return design(known_example, *TARGET, BUDGET, runs=2, outcomes=32)


def test_kish_ess_of_uniform_and_degenerate_weights():
    assert kish_ess(np.full((2, 50), 3.0)).tolist() == [50.0, 50.0]
    w = np.r_[np.ones(10), np.zeros(90)]
    assert float(kish_ess(w)) == pytest.approx(10.0)


def test_weighted_quantiles_follow_the_weights():
    rng = np.random.default_rng(0)
    values = rng.normal(size=20_000)
    weights = np.exp(-0.5 * (values - 1.0) ** 2)[None]  # N(0,1) x N(1,1) -> N(0.5, 1/2)
    lo, hi = weighted_quantiles(values, weights, [0.05, 0.95])[0]
    assert (lo + hi) / 2 == pytest.approx(0.5, abs=0.03)
    assert hi - lo == pytest.approx(2 * 1.6449 * np.sqrt(0.5), rel=0.03)


def test_an_uninformative_run_changes_nothing():
    """Huge noise: the outcome says nothing, the weights stay flat, the width stays."""
    post = known_draws_posterior(1000, sigma_obs=2.0, data=example_frame())
    plan = design(post, *TARGET, BUDGET, candidates=pd.DataFrame(
        {"params": [2e9], "tokens": [4e10]}), outcomes=16)
    (cand,) = plan.candidates
    assert cand.ess > 0.95 * plan.draws
    assert cand.parts["parameters"] == pytest.approx(plan.parts_now["parameters"], rel=0.05)
    assert plan.parts_now["law error"] == 0.0  # no calibration stored


@pytest.fixture(scope="module")
def uninformative():
    """Huge noise: every candidate's expected reduction is Monte-Carlo noise, here negative."""
    return known_draws_posterior(1000, sigma_obs=2.0, data=example_frame())


NOISE_RUN = pd.DataFrame({"params": [2e9], "tokens": [4e10]})


@pytest.mark.parametrize("runs", [1, 2])
def test_a_run_that_does_not_narrow_the_interval_is_never_chosen(uninformative, runs):
    plan = design(uninformative, *TARGET, BUDGET, runs=runs, candidates=NOISE_RUN, outcomes=16)
    (cand,) = plan.candidates
    assert cand.reduction <= 0 and not cand.chosen
    assert plan.batch == [] and plan.batch_effect is None
    assert plan.notes == [plan.no_batch()] and "nothing worth running" in plan.notes[0]
    out = plan.as_dict()
    assert out["batch"] == [] and out["batch_effect"] is None and out["batch_compute"] == 0.0


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_says_nothing_is_worth_running_in_one_line(uninformative, tmp_path, as_json):
    """As a budget too small for any run: one line, exit 1 (with --json, the error object)."""
    fit_file, cands = tmp_path / "noise.posterior.nc", tmp_path / "c.csv"
    uninformative.save(fit_file)
    NOISE_RUN.to_csv(cands, index=False)
    result = _design(fit_file, "--target", "7B:140B", "--budget", "3e21", "--candidates", cands,
                     "--outcomes", "16", *(["--json"] if as_json else []))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "nothing worth running" in result.stderr
    assert "chosen batch" not in result.output
    if as_json:
        out = json.loads(result.stdout)
        assert out["exit_code"] == 1 and out["error"].startswith("no candidate run within")


def test_a_run_at_the_target_removes_the_law_error_and_most_parameter_spread(known_example):
    plan = design(known_example, *TARGET, 2 * compute(*TARGET),
                  candidates=pd.DataFrame({"params": [TARGET[0]], "tokens": [TARGET[1]]}),
                  outcomes=32)
    (cand,) = plan.candidates
    assert plan.parts_now["law error"] > 0
    assert cand.distance_after == 0.0
    assert cand.parts["law error"] == pytest.approx(0.0, abs=1e-12)
    assert cand.parts["parameters"] < 0.7 * plan.parts_now["parameters"]
    assert cand.expected_width < plan.width_now
    assert cand.shrinks in ("parameters", "law error")


def test_the_seed_floor_never_shrinks(example_design):
    floor = example_design.parts_now["seed floor"]
    for cand in example_design.candidates:
        assert abs(cand.part_reductions["seed floor"]) < 0.3 * floor


def test_candidates_are_ranked_by_reduction_per_flop_within_budget(example_design):
    per_flop = [c.reduction_per_flop for c in example_design.candidates]
    assert per_flop == sorted(per_flop, reverse=True)
    assert all(c.compute <= BUDGET * (1 + 1e-9) for c in example_design.candidates)
    for c in example_design.candidates:
        assert c.reduction == pytest.approx(example_design.width_now - c.expected_width)
        assert c.reduction_per_flop == pytest.approx(c.reduction / c.compute)
        assert c.compute == pytest.approx(compute(c.params, c.tokens))


def test_the_batch_fits_the_budget_and_beats_its_first_run(example_design):
    batch, effect = example_design.batch, example_design.batch_effect
    assert 1 <= len(batch) <= 2 and effect is not None
    assert sum(c.compute for c in batch) <= BUDGET * (1 + 1e-9)
    assert effect.compute == pytest.approx(sum(c.compute for c in batch))
    assert effect.reduction >= batch[0].reduction - 1e-12
    assert {id(c) for c in example_design.candidates if c.chosen} == {id(c) for c in batch}


def test_same_seed_same_design(known_example):
    a = design(known_example, *TARGET, BUDGET, outcomes=16, random_seed=3)
    b = design(known_example, *TARGET, BUDGET, outcomes=16, random_seed=3)
    assert a.as_dict() == b.as_dict()


def test_default_grid_lies_between_the_runs_and_the_target(known_example):
    grid = candidate_grid(known_example, *TARGET, BUDGET)
    assert len(grid) > 10
    assert grid["params"].max() <= TARGET[0] * (1 + 1e-9)
    assert grid["compute"].max() <= BUDGET * (1 + 1e-9)


def test_read_candidates_takes_sizes_and_compute(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("N,compute\n7B,4.2e21\n1.5e9,1e21\n")
    frame = read_candidates(path)
    assert frame["params"].tolist() == [7e9, 1.5e9]
    assert frame["tokens"][0] == pytest.approx(1e11)


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("params,tokens\n", "no rows"),
    ("size,steps\n1,2\n", "needs two of the columns params, tokens, compute"),
    ("params,tokens\n1B,lots\n", "row 2, column 'tokens'"),
    ("params,tokens\n1B,-5\n", "row 2, column 'tokens': -5 is not positive"),
    ("params,tokens\n1B,\n", "row 2, column 'tokens': empty value"),
    # a field more than the header: once read as an index, N = 100B, D = 5
    ("params,tokens\n4.2B,100B,5\n", "more fields than the header"),
    # sizes in billions without their unit: once a reduction of -4.9e15 nats
    ("params,tokens\n7,100\n", "row 2, column 'params': 7 is implausibly small"),
    ("params,tokens,unique_tokens\n1B,20B,5B\n", "on fresh data"),
])
def test_bad_candidates_files(tmp_path, text, message):
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(BayescaleError, match=message):
        read_candidates(path)


def test_candidates_in_any_table_format(tmp_path):
    """TSV, gzip and Parquet as for a runs table (a .tsv.gz was once split on commas)."""
    import gzip

    tsv = tmp_path / "c.tsv.gz"
    with gzip.open(tsv, "wt") as handle:
        handle.write("params\ttokens\n1B\t20B\n")
    parquet = tmp_path / "c.parquet"
    pd.DataFrame({"N": [1e9], "D": [2e10]}).to_parquet(parquet)
    for path in (tsv, parquet):
        assert read_candidates(path)[["params", "tokens"]].to_numpy().tolist() == [[1e9, 2e10]]


def test_candidates_whose_compute_is_not_6nd_are_refused(tmp_path):
    """A compute column that disagrees with 6 N D (by more than COMPUTE_TOLERANCE, as for
    predict --targets) is refused with the file, row and column; within it, it is accepted."""
    path = tmp_path / "c.csv"
    path.write_text("params,tokens,FLOPs\n1B,20B,1.205e20\n1B,20B,5e30\n")
    with pytest.raises(BayescaleError) as caught:
        read_candidates(path)
    assert caught.value.one_line().startswith(f"{path}, row 3, column 'FLOPs': 5e+30 is not 6 x")
    path.write_text("params,tokens,compute\n1B,20B,1.205e20\n")
    assert read_candidates(path)["compute"].tolist() == [compute(1e9, 2e10)]


def test_target_inside_the_fitted_runs_says_so(known_example):
    with pytest.raises(BayescaleError, match="inside the fitted runs"):
        design(known_example, 1e9, 2e10, BUDGET)


def test_budget_below_the_cheapest_candidate(known_example):
    with pytest.raises(BayescaleError, match="below the cheapest candidate"):
        design(known_example, *TARGET, 1e15)


def test_a_family_fit_designs_for_one_family():
    from tests.builders import TWO_FAMILY_TRUTHS, family_sweeps, known_family_posterior

    post = known_family_posterior(family_sweeps(), TWO_FAMILY_TRUTHS)
    plan = design(post, *TARGET, BUDGET, outcomes=16, family="p", max_refits=5)
    assert plan.refits == 0 and plan.batch
    assert plan.distance_now > 0
    with pytest.raises(BayescaleError, match="no model families"):
        design(known_draws_posterior(200, data=example_frame()), *TARGET, BUDGET, family="p")


# ------------------------------------------------------------------------------ the CLI
def _design(path, *extra):
    return runner.invoke(app, ["design", str(path), *map(str, extra)])


def test_cli_json_is_one_object(known_example_file):
    result = _design(known_example_file, "--target", "7B:140B", "--budget", "3e21", "--runs",
                     "2", "--outcomes", "16", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["target"] == {"params": 7e9, "tokens": 1.4e11, "compute": compute(7e9, 1.4e11)}
    assert out["budget"] == 3e21 and out["interval"] == "eti"
    for key in ("params", "tokens", "compute", "expected_width", "reduction",
                "reduction_per_flop", "shrinks", "ess", "method", "chosen"):
        assert key in out["candidates"][0]
    assert 1 <= len(out["batch"]) <= 2
    assert out["batch_compute"] <= 3e21
    assert "expected_width" in out["batch_effect"] and "params" not in out["batch_effect"]


def test_cli_table(known_example_file):
    result = _design(known_example_file, "--target", "7B:140B", "--budget", "3e21",
                     "--outcomes", "16")
    assert result.exit_code == 0, result.output
    assert "ranked by expected reduction per FLOP" in result.output
    assert "chosen batch of 1" in result.output


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--target", "1B:20B", "--budget", "3e21"], 1, "inside the fitted runs"),
    (["--target", "7B:140B", "--budget", "1e12"], 1, "below the cheapest candidate"),
    (["--target", "7B", "--budget", "3e21"], 2, "is not N:D"),
    (["--target", "7B:140B", "--budget", "lots"], 2, "not a number"),
])
def test_cli_bad_input_is_one_line(known_example_file, args, code, message):
    result = _design(known_example_file, *args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_bad_candidates_file_is_one_line(known_example_file, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = _design(known_example_file, "--target", "7B:140B", "--budget", "3e21",
                     "--candidates", path)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "the file is empty" in result.output


# ---------------------------------------------------------------- the figure and risk
def test_design_figure(known_example, example_design):
    import matplotlib

    matplotlib.use("Agg")
    from bayescale.report.plots import FIGURES, WITH_TARGETS, plot

    assert "design" in FIGURES and "design" in WITH_TARGETS
    fig = plot(known_example, "design", result=example_design)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("parameters N", "tokens D")
    labels = ax.get_legend_handles_labels()[1]
    assert "fitted runs" in labels and any(lab.startswith("target") for lab in labels)
    fig = plot(known_example, "design")  # no target: the optimum at 10x the largest compute
    assert any(lab.startswith("target") for lab in fig.axes[0].get_legend_handles_labels()[1])


def test_plot_design_without_a_target_is_a_usage_error(known_example_file, tmp_path):
    """The CLI draws no made-up target: design needs --target (exit 2, one line, no file)."""
    out = tmp_path / "d.png"
    result = runner.invoke(app, ["plot", str(known_example_file), "design", "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "needs the planned run: --target" in result.stderr
    assert not out.exists()


def test_plot_design_takes_the_budget(known_example_file, tmp_path):
    """plot design's budget was always a tenth of the target's compute, so a target whose
    tenth lay below the cheapest candidate could not be drawn; --budget sets it, and only for
    the design figure."""
    out = tmp_path / "d.png"
    args = ["plot", str(known_example_file), "design", "--out", str(out), "--target", "7B:140B"]
    tight = runner.invoke(app, [*args, "--budget", "1e15"])
    assert tight.exit_code == 1 and "the budget 1e+15 FLOP is below the cheapest" in tight.stderr
    assert not out.exists()
    other = runner.invoke(app, ["plot", str(known_example_file), "frontier", "--out", str(out),
                                "--budget", "1e21"])
    assert other.exit_code == 2 and "only the design figure" in other.stderr


def test_risk_points_to_design_where_law_error_or_parameters_dominate(known_example):
    review = known_example.risk(*TARGET)
    assert review.uncertainty["dominated_by"] in ("law error", "parameters")
    assert "bayescale design" in review.uncertainty["advice"]


# ---------------------------------------------------------------- the refit fallback
@pytest.mark.slow
def test_low_ess_falls_back_to_a_refit(example_fit):
    post = example_fit.posterior
    plan = design(post, *TARGET, BUDGET, outcomes=8, min_ess_share=1.0, max_refits=1,
                  candidates=pd.DataFrame({"params": [3e9], "tokens": [6e10]}),
                  options=quick(draws=200, tune=200), cache=CACHE)
    (cand,) = plan.candidates
    assert cand.method == "refit" and plan.refits == REFIT_OUTCOMES
    assert 0 < cand.expected_width < 2 * plan.width_now
