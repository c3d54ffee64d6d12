"""Fitting: the Epoch AI Chinchilla runs, parameter recovery, the fit command and its file."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bayescale import Posterior, SamplerOptions, fit, load_runs
from bayescale.cli import app
from bayescale.core.errors import BayescaleError
from bayescale.law.simulate import EPOCH_LAW, isoflop_sweep
from tests.builders import EXAMPLE, known_tree, quick, quick_fit, runs_of

#: Epoch AI's 95% bootstrap intervals (Besiroglu et al. 2024; ../shared/data/chinchilla_epoch).
EPOCH_INTERVALS = {
    "E": (1.769, 1.871), "A": (285, 744), "B": (1042, 5810),
    "alpha": (0.317, 0.373), "beta": (0.331, 0.415),
}


@pytest.mark.slow
def test_epoch_medians_inside_epoch_bootstrap_intervals(epoch_fit):
    summary = epoch_fit.posterior.summary(level=0.9)
    for name, (lo, hi) in EPOCH_INTERVALS.items():
        assert lo <= summary.loc[name, "median"] <= hi, name


@pytest.mark.slow
def test_epoch_fit_converges(epoch_fit):
    diag = epoch_fit.diagnostics
    assert diag.max_r_hat <= 1.01
    assert diag.min_ess_bulk >= 400
    assert diag.divergences == 0
    assert diag.ok, diag.problems


@pytest.fixture(scope="module")
def recovery_fit(tmp_path_factory):
    """A larger simulated sweep (7 budgets x 9 sizes) with known truth and 1% seed noise."""
    data = isoflop_sweep([1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21], sizes_per_budget=9,
                         seed_noise=0.01, random_seed=11)
    return quick_fit(runs_of(data, tmp_path_factory.mktemp("recovery")))


@pytest.mark.slow
def test_parameter_recovery_on_simulated_sweep(recovery_fit):
    """The 95% intervals hold the true law (a benchmark repeats this over many data sets)."""
    summary = recovery_fit.posterior.summary(level=0.95)
    for name, true in EPOCH_LAW.items():
        assert summary.loc[name, "lower"] <= true <= summary.loc[name, "upper"], name
    assert recovery_fit.diagnostics.divergences == 0


@pytest.mark.slow
def test_posterior_file_holds_everything_later_commands_need(example_fit, tmp_path):
    path = tmp_path / "fit.nc"
    example_fit.posterior.save(path)
    post = Posterior.load(path)
    meta = post.meta
    assert meta["law"] == "chinchilla" and meta["likelihood"] == "studentt"
    # the priors its model used: with no repeated runs, seed_noise is a share of noise_total
    # and its own prior may go unstored
    assert set(meta["priors"]) >= {"E", "A", "B", "alpha", "beta", "sigma_obs"}
    assert {"n0", "d0"} <= set(meta["centring"])
    assert len(meta["input"]["sha256"]) == 64 and meta["bayescale_version"]
    # the point fit the prior check reads (tests/test_warnings_check.py)
    assert set(meta["calibration"]["point_fit"]) == {"E", "A", "B", "alpha", "beta",
                                                     "median_abs_residual"}
    assert len(post.data) == 48 and {"params", "tokens", "loss", "run"} <= set(post.data)
    np.testing.assert_allclose(post.draws()["E"], example_fit.posterior.draws()["E"])


@pytest.mark.slow
def test_fit_cli_json_and_default_output(tmp_path):
    src = tmp_path / "runs.csv"
    src.write_bytes(EXAMPLE.read_bytes())
    result = CliRunner().invoke(app, ["fit", str(src), "--json", "--chains", "2", "--draws",
                                      "300", "--tune", "300", "--random-seed", "3"])
    assert result.exit_code in (0, 3), result.output
    payload = json.loads(result.stdout)
    assert payload["law"] == "chinchilla" and payload["n_rows"] == 48
    assert payload["out"] == str(tmp_path / "runs.posterior.nc")
    assert (tmp_path / "runs.posterior.nc").exists()
    for name in ("E", "A", "B", "alpha", "beta"):
        entry = payload["parameters"][name]
        assert entry["lower"] < entry["median"] < entry["upper"]
        assert set(entry) == {"median", "lower", "upper", "mean", "sd", "r_hat", "ess_bulk"}
    assert set(payload["diagnostics"]) >= {"divergences", "max_r_hat", "min_ess_bulk"}
    phases = payload["phases"]
    assert set(phases) == {"model", "sampling", "calibration"}
    assert all(value > 0 for value in phases.values())
    assert sum(phases.values()) <= payload["seconds"]


@pytest.mark.slow
def test_failed_convergence_exits_3_and_keeps_the_file(tmp_path):
    out = tmp_path / "short.nc"
    result = CliRunner().invoke(app, ["fit", str(EXAMPLE), "--out", str(out), "--chains", "2",
                                      "--draws", "20", "--tune", "20"])
    assert result.exit_code == 3
    assert "effective sample size" in result.stderr or "R-hat" in result.stderr
    assert out.exists()


@pytest.mark.slow
def test_pymc_sampler_fallback_agrees_with_nutpie(example_fit):
    options = quick(sampler="pymc", draws=300, tune=300, random_seed=2)
    other = fit(load_runs(EXAMPLE), options=options).posterior.summary()
    mine = example_fit.posterior.summary()
    for name in ("E", "alpha", "beta"):
        assert other.loc[name, "median"] == pytest.approx(mine.loc[name, "median"],
                                                          abs=3 * mine.loc[name, "sd"])


def test_one_chain_is_checked_without_r_hat(recwarn):
    from bayescale.core.diagnostics import check

    diag = check(known_tree(1, 1000), list(EPOCH_LAW))
    assert np.isnan(diag.max_r_hat) and diag.min_ess_bulk > 500
    assert diag.ok, diag.problems
    assert not recwarn.list  # no "All-NaN axis encountered"


def test_stuck_sampler_is_named(recwarn):
    from bayescale.core.diagnostics import chain_stats, check

    tree = known_tree(2, 5, stuck=True)
    assert np.isnan(chain_stats(tree["posterior"].dataset, ["E"])["r_hat"]["E"])
    diag = check(tree, list(EPOCH_LAW))
    assert diag.problems == ["no parameter varies over the draws (or there are fewer than 4 per "
                             "chain): the sampler is stuck; try more --tune and --draws"]
    assert not recwarn.list


def test_fit_cli_with_one_chain(tmp_path, monkeypatch):
    """One chain: no R-hat (null in JSON, '-' on the terminal) and a note; no sampling here."""
    from bayescale.core.diagnostics import check
    from bayescale.inference.fit import FitResult

    def fake_fit(runs, spec, options, calibration):
        tree = known_tree(options.chains, options.draws)
        post = Posterior.from_draws({k: np.ravel(v) for k, v in tree["posterior"].items()},
                                    chains=options.chains)
        return FitResult(post, check(tree, list(EPOCH_LAW)), 0.1)

    monkeypatch.setattr(importlib.import_module("bayescale.inference.fit"), "fit", fake_fit)
    monkeypatch.setattr("bayescale.posterior.warnings.fit_warnings", lambda post: [])
    out = tmp_path / "one.nc"
    args = ["fit", str(EXAMPLE), "--out", str(out), "--chains", "1", "--draws", "1000"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (result.stderr, result.exception)
    payload = json.loads(result.stdout)
    assert payload["diagnostics"]["max_r_hat"] is None
    assert payload["parameters"]["E"]["r_hat"] is None and payload["parameters"]["E"]["sd"] > 0
    assert payload["noise"]["seed_noise"]["ess_bulk"] is None  # constant: no ESS either
    assert result.stderr.startswith("note: R-hat compares chains")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "max R-hat -," in result.stderr and "nan" not in result.stderr


@pytest.mark.parametrize("options", [{"tune": 0}, {"draws": 3}, {"chains": 0},
                                     {"sampler": "hmc"}, {"target_accept": 1.0}])
def test_sampler_options_refuse_what_the_samplers_cannot_run(options):
    """From Python as from the CLI: nutpie panics on tune=0 (``early_end < num_tune``)."""
    with pytest.raises(BayescaleError):
        SamplerOptions(**options)


@pytest.mark.parametrize("spec", [{"likelihood": "cauchy"}, {"seed_noise": -0.01},
                                  {"seed_noise": 5.0}, {"priors": {"alpha": "lognormal"}}])
def test_model_spec_refuses_what_it_cannot_fit(spec):
    """ModelSpec(likelihood="foo") fitted a Normal likelihood and stored "foo"."""
    from bayescale import ModelSpec

    with pytest.raises(BayescaleError):
        ModelSpec(**spec)


def test_fit_names_a_wrong_argument_type():
    with pytest.raises(BayescaleError, match="load_runs"):
        fit(str(EXAMPLE))
    with pytest.raises(BayescaleError, match="not a dict"):
        fit(load_runs(EXAMPLE), options={"chains": 2})


@pytest.mark.slow
def test_a_priors_file_reports_only_its_own_unused_tables(tmp_path):
    """A file with [E] only: the defaults it leaves (seed_noise on a table of one row per run,
    nu under a normal likelihood) are not the user's, so no "not used" warning; a [nu] the
    user wrote under a normal likelihood is."""
    out = tmp_path / "p.nc"
    args = ["fit", str(EXAMPLE), "--out", str(out), "--chains", "2", "--draws", "100",
            "--tune", "100", "--likelihood", "normal", "--json", "--priors"]
    path = tmp_path / "e.toml"
    path.write_text('[E]\ndist = "lognormal"\nmu = 0.6\nsigma = 0.5\n')
    payload = json.loads(CliRunner().invoke(app, [*args, str(path)]).stdout)
    assert not any("was not used" in w for w in payload["warnings"])
    assert Posterior.load(out).meta["unused_priors"] == {}
    path.write_text('[nu]\ndist = "gamma"\nalpha = 2\nbeta = 0.1\n')
    payload = json.loads(CliRunner().invoke(app, [*args, str(path)]).stdout)
    assert [w for w in payload["warnings"] if "was not used" in w] == [
        w for w in payload["warnings"] if w.startswith("the prior [nu] given in --priors")]
    assert list(Posterior.load(out).meta["unused_priors"]) == ["nu"]


@pytest.mark.slow
def test_fit_json_lists_every_warning_and_prints_them_too(tmp_path):
    """docs/cli.md, Warnings: with --json the warning lines (the failed convergence check
    included) are in `warnings`, and each is still one line on stderr."""
    out = tmp_path / "short.nc"
    result = CliRunner().invoke(app, ["fit", str(EXAMPLE), "--out", str(out), "--chains", "2",
                                      "--draws", "20", "--tune", "20", "--json"])
    assert result.exit_code == 3
    warnings = json.loads(result.stdout)["warnings"]
    assert warnings[-1].startswith("convergence check failed: ")
    printed = [line.removeprefix("warning: ") for line in result.stderr.splitlines()
               if line.startswith("warning: ")]
    assert printed == warnings
