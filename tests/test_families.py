"""Model families: partial pooling, per-family and new-family predictions, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from typer.testing import CliRunner

from bayescale import BayescaleError, ModelSpec, Posterior, fit, load_runs
from bayescale.cli import app
from bayescale.data.runs import RunTable
from bayescale.inference.model import group_structure
from bayescale.law.families import FAMILY_NU, family_draws, family_structure
from bayescale.law.simulate import checkpoint_curves, chinchilla_loss, isoflop_sweep
from bayescale.posterior.store import META_KEY
from bayescale.posterior.warnings import fit_warnings
from tests.builders import FAMILY_TRUTHS as TRUTHS
from tests.builders import (
    family_curves,
    known_draws_posterior,
    known_family_posterior,
    quick,
    quick_fit,
    runs_of,
)

TARGET = {"params": 1.6e9, "tokens": 3.2e10}  # the target family's "largest model"
OPTIONS = quick(draws=300, random_seed=4)
SPEC = ModelSpec(seed_noise=0.005)


@pytest.fixture(scope="module")
def family_fits(tmp_path_factory):
    """Family "t" cut to its two smallest models: fitted pooled with p, q, r, and alone."""
    folder = tmp_path_factory.mktemp("families")
    table = family_curves()
    pooled_runs = runs_of(table, folder, "pooled.csv", run_col="run", family_col="family")
    alone_runs = runs_of(table[table["family"] == "t"].drop(columns="family"), folder,
                         "alone.csv", run_col="run")
    pooled = quick_fit(pooled_runs, SPEC, OPTIONS, calibration=False)
    alone = quick_fit(alone_runs, SPEC, OPTIONS, calibration=False)
    pooled.posterior.save(folder / "pooled.nc")
    separate = quick_fit(pooled_runs, ModelSpec(seed_noise=0.005, separate_e=True), OPTIONS,
                         calibration=False)
    return pooled, alone, folder / "pooled.nc", separate


@pytest.mark.slow
def test_pooling_pins_a_small_familys_exponent_and_narrows_its_forecast(family_fits):
    """Two model sizes barely identify alpha alone; the other families pin it down, and the
    forecast of the family's larger model is narrower and still covers the truth.

    Not asserted: a smaller error of the median. Measured over sampler seeds 1-5 it is 2.3-2.5%
    pooled and 0.9-3.8% alone: alone, the median of a broad posterior moves with the seed.
    """
    pooled, alone, _, _ = family_fits
    truth = float(chinchilla_loss(TRUTHS["t"], TARGET["params"], TARGET["tokens"]))
    found = {}
    for name, post, family in (("pooled", pooled.posterior, "t"), ("alone", alone.posterior, None)):
        frame = post.predict(**TARGET, family=family, discrepancy=False)
        low, high = frame["mean_loss_lower"].iloc[0], frame["mean_loss_upper"].iloc[0]
        found[f"{name}_width"] = np.log(high / low)
        found[f"{name}_covers"] = bool(low < truth < high)
        low, high = np.quantile(post.draws(family=family)["alpha"], [0.05, 0.95])
        found[f"{name}_alpha_width"] = high - low
        found[f"{name}_alpha_covers"] = bool(low < TRUTHS["t"]["alpha"] < high)
    assert found["pooled_alpha_covers"] and found["pooled_covers"], found
    assert found["pooled_alpha_width"] < 0.7 * found["alone_alpha_width"], found
    # measured 0.57-0.72 of alone's width over seeds 1-5
    assert found["pooled_width"] < 0.8 * found["alone_width"], found
    # alone, the fit warns that two sizes leave the size term to the priors; pooled, it borrows
    assert any("two model sizes" in w for w in fit_warnings(alone.posterior))
    assert not any("two model sizes" in w for w in fit_warnings(pooled.posterior))


@pytest.mark.slow
def test_family_posterior_layout_and_summary(family_fits):
    post = family_fits[0].posterior
    assert post.families == ["p", "q", "r", "t"]
    dataset = post.tree["posterior"].dataset
    for name in ("E", "A", "B", "alpha", "beta"):
        assert dataset[name].dims == ("chain", "draw", "family")
    assert dataset["family_sd"].dims == ("chain", "draw", "pooled")
    summary = post.summary()
    assert {"E[p]", "alpha[t]", "family_sd[log_E]", "sigma_obs[p]", "nu[t]"} <= set(summary.index)
    one = post.draws(family="q")
    assert one["E"].shape == (post.n_draws,)
    np.testing.assert_array_equal(one["E"], np.asarray(dataset["E"].sel(family="q")).ravel())


@pytest.mark.slow
def test_each_family_has_its_own_row_noise(family_fits):
    """sigma_obs and nu per family; a new family's noise is, per draw, a seen family's."""
    post = family_fits[0].posterior
    dataset = post.tree["posterior"].dataset
    assert dataset["sigma_obs"].dims == ("chain", "draw", "family")
    assert dataset["nu"].dims == ("chain", "draw", "family")
    assert "family" not in dataset["seed_noise"].dims  # fixed by the spec: one value
    own = post.draws(["sigma_obs", "nu"], family="r")
    np.testing.assert_array_equal(
        own["sigma_obs"], np.asarray(dataset["sigma_obs"].sel(family="r")).ravel())
    new = post.draws(["sigma_obs"])["sigma_obs"]
    per_family = np.asarray(dataset["sigma_obs"].transpose("chain", "draw", "family"))
    per_family = per_family.reshape(post.n_draws, -1)
    assert np.all(np.any(new[:, None] == per_family, axis=1))  # one seen family's value per draw
    assert np.unique(np.argmax(new[:, None] == per_family, axis=1)).size == len(post.families)
    # residuals and outliers are measured against each row's own family's law: clean
    # simulated curves have none (against a new family's law they lay up to 29 scales off)
    from bayescale.posterior.warnings import outliers

    assert outliers(post) == []
    # the law of a new family stays the population predictive (not a seen family's draws)
    from bayescale.law.families import family_draws

    population = family_draws(post.tree, post.law, None, post.meta["centring"], post.priors)
    np.testing.assert_array_equal(post.draws()["alpha"], population["alpha"])
    rows = post.row_draws(["sigma_obs"])["sigma_obs"]
    in_q = (post.data["family"] == "q").to_numpy()
    np.testing.assert_array_equal(rows[:, in_q][:, 0], post.draws(["sigma_obs"], family="q")
                                  ["sigma_obs"])


@pytest.mark.slow
def test_unseen_family_gets_the_wider_population_predictive(family_fits):
    post = family_fits[0].posterior
    seen = post.predict(**TARGET, family="q", discrepancy=False)
    new = post.predict(**TARGET, family="never-fitted", discrepancy=False)
    width = {k: float(np.log(f["mean_loss_upper"] / f["mean_loss_lower"]).iloc[0])
             for k, f in (("seen", seen), ("new", new))}
    assert width["new"] > 1.5 * width["seen"]
    # repeated questions about a new family agree (fixed seed of the new-family draws)
    np.testing.assert_array_equal(post.draws()["alpha"], post.draws(family="other")["alpha"])


@pytest.mark.slow
def test_cli_family_options(family_fits):
    path = family_fits[2]
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(path), "-N", "1.6B", "-D", "32B", "--family", "t",
                                 "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["family"] == "t" and out["family_seen"] is True
    result = runner.invoke(app, ["optimal", str(path), "-C", "1e21", "--family", "x", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["family_seen"] is False
    # risk of a run the size of family t's largest: inside t's own runs, not a new family's
    result = runner.invoke(app, ["risk", str(path), "-N", "100M", "-D", "2B", "--family", "t",
                                 "--json"])
    assert result.exit_code == 0, result.output
    review = json.loads(result.stdout)
    assert review["family"] == "t" and review["family_seen"] is True
    assert review["extrapolation"]["params_ratio"] == pytest.approx(1.0)  # t's largest: 100M
    predicted = json.loads(runner.invoke(app, ["predict", str(path), "-N", "100M", "-D", "2B",
                                               "--family", "t", "--json"]).stdout)
    assert review["loss"] == predicted["targets"][0]["loss"]


@pytest.mark.slow
def test_fit_summary_prints_family_labels(family_fits, monkeypatch):
    """"alpha[t]" is a label, not Rich markup (which dropped "[t]": four rows all called E)."""
    import io

    from rich.console import Console

    from bayescale.cli import fit_cmd

    buffer = io.StringIO()
    monkeypatch.setattr(fit_cmd, "err", Console(file=buffer, width=200))
    post = family_fits[0].posterior
    fit_cmd._print_summary(post.summary(), 0.9, post.law.formula)
    labels = set(buffer.getvalue().split())
    assert {"alpha[t]", "E[p]", "sigma_obs[q]", "family_sd[log_E]"} <= labels


@pytest.mark.slow
def test_unconstrained_check_speaks_of_each_seen_family(family_fits):
    """In a family fit the prior-versus-posterior check is per family (a new family's
    population predictive says nothing of what the data pinned down)."""
    from bayescale.posterior.warnings import sd_ratios

    ratios = sd_ratios(family_fits[0].posterior)
    assert set(ratios) == {f"{name}[{family}]" for name in ("E", "A", "B", "alpha", "beta")
                           for family in "pqrt"}
    assert all(np.isfinite(v) and v > 0 for v in ratios.values()), ratios


def test_runs_off_their_familys_law_are_named():
    """Clean simulated curves: no run is far from its family's law. Lift one run of family p by
    0.1 in ln L (20 times the fixed seed noise, its offset's scale) and it is named. Known
    draws of the pooled fit (each family's law, the seed noise fixed at 0.005, run offsets)."""
    from bayescale.posterior.warnings import runs_off_the_law

    post = known_family_posterior(family_curves(seed_noise=0.0), TRUTHS, seed_noise=0.005,
                                  fixed_seed_noise=True, run_offsets=True)
    assert runs_off_the_law(post) == []
    tree = post.tree.copy()
    data = post.data
    lifted = ((data["family"] == "p") & (data["run"] == data["run"][data["family"] == "p"].iloc[0]))
    loss = tree["observed_data"].dataset["loss"].copy()
    loss[lifted.to_numpy()] *= np.exp(0.1)
    tree["observed_data"] = xr.DataTree(tree["observed_data"].dataset.assign(loss=loss))
    [message] = runs_off_the_law(Posterior(tree))
    run = data["run"][lifted].iloc[0]
    assert f"p {run} (+0.1" in message and "scales)" in message and message.count("scales)") == 1


def test_family_option_on_a_single_law_fit_is_an_error(known_posterior, tmp_path):
    path = tmp_path / "single.posterior.nc"
    known_posterior.save(path)
    result = CliRunner().invoke(app, ["predict", str(path), "-N", "7B", "-D", "140B",
                                      "--family", "gpt3"])
    assert result.exit_code == 2  # a usage error, as for the other options
    assert "no model families" in result.output and "Traceback" not in result.output
    assert "bayescale predict: Invalid value for --family: gpt3" in result.output


def test_one_family_is_refused(tmp_path):
    path = tmp_path / "one.csv"
    checkpoint_curves([1e8, 2e8], checkpoints=4, family="only").to_csv(path, index=False)
    with pytest.raises(BayescaleError, match="one family"):
        family_structure(load_runs(path, run_col="run", family_col="family"))
    two = pd.concat([checkpoint_curves([1e8, 2e8], checkpoints=4, family=f) for f in "ab"])
    two.to_csv(path, index=False)
    with pytest.raises(BayescaleError, match="no family model"):
        fit(load_runs(path, run_col="run", family_col="family"), ModelSpec(law="kaplan"))


def new_family_draws(tau: list[float], size: int = 4000) -> tuple[Posterior, dict]:
    """A new family's draws from a known population (no sampling): means fixed, spread tau."""
    pooled = ("log_E", "a_c", "b_c", "log_alpha", "log_beta")
    means = {"log_E": 0.6, "a_c": -1.0, "b_c": -0.8, "log_alpha": -1.05, "log_beta": -1.0}
    posterior = xr.Dataset(
        {f"pop_{k}": (("chain", "draw"), np.full((1, size), v)) for k, v in means.items()}
        | {"family_sd": (("chain", "draw", "pooled"),
                         np.broadcast_to(np.array(tau), (1, size, 5)))},
        coords={"pooled": list(pooled)})
    tree = xr.DataTree.from_dict({"posterior": posterior})
    tree.attrs = {META_KEY: json.dumps({"law": "chinchilla"})}
    post = Posterior(tree)
    return post, family_draws(tree, post.law, None, {"n0": 20.0, "d0": 23.0}, post.priors)


def test_new_family_draws_follow_the_population():
    """Known population (no sampling): a new family's coordinates are mu + tau z."""
    _, draws = new_family_draws([0.1, 0.2, 0.2, 0.05, 0.05])

    def iqr(x: np.ndarray) -> float:
        return float(np.subtract(*np.quantile(x, [0.75, 0.25])))

    t_iqr = 2 * stats.t.ppf(0.75, FAMILY_NU)  # z ~ StudentT(FAMILY_NU)
    assert iqr(np.log(draws["E"])) == pytest.approx(0.1 * t_iqr, rel=0.06)
    assert np.median(np.log(draws["alpha"])) == pytest.approx(-1.05, abs=0.01)
    assert iqr(np.log(draws["beta"])) == pytest.approx(0.05 * t_iqr, rel=0.06)


def test_new_family_draws_are_finite_laws():
    """A population spread so wide that t(3) tails overflow A or B: those draws are drawn
    again, so optimum, regret and exponents stay finite (ColPret: 1 of 800 had B = inf)."""
    # exponents up to e^(3 t(3)): A = exp(a_c + alpha n0) overflows in ~1 in 9 draws
    post, draws = new_family_draws([0.1, 0.2, 0.2, 3.0, 3.0])
    assert all(np.isfinite(v).all() for v in draws.values())
    assert np.isfinite(post.law.log_loss(draws, [1e9], [2e10])).all()


def test_runs_and_configurations_are_grouped_within_a_family():
    """Two families' runs with the same label, or the same (N, D), are different groups."""
    data = pd.DataFrame({"params": [1e8, 1e8, 1e8, 1e8], "tokens": [1e9, 2e9, 1e9, 2e9],
                         "loss": [3.0, 2.9, 3.1, 3.0], "run": ["1B", "1B", "1B", "1B"],
                         "family": ["a", "a", "b", "b"], "line": [2, 3, 4, 5]})
    index, count, by_config = group_structure(RunTable(data=data, source="x.csv"))
    assert (count, by_config) == (2, False)
    assert index.tolist() == [0, 0, 1, 1]
    repeated = data.drop(columns="run").assign(tokens=1e9)  # two seeds of one config per family
    index, count, by_config = group_structure(RunTable(data=repeated, source="x.csv"))
    assert (count, by_config) == (2, True)
    assert index.tolist() == [0, 0, 1, 1]


@pytest.mark.slow
def test_each_family_learns_its_own_seed_noise(tmp_path):
    """Final losses with repeated seeds and no run column (this crashed before seed noise was
    per family): each family's seed noise is its own seeds' scatter, and its new runs'
    intervals follow."""
    truth_seed = {"quiet": 0.004, "noisy": 0.03}
    frames = [isoflop_sweep([1e18, 1e19, 1e20], 5, seeds=3, seed_noise=noise,
                            random_seed=i).drop(columns="run").assign(family=name)
              for i, (name, noise) in enumerate(truth_seed.items())]
    path = tmp_path / "seeds.csv"
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    result = quick_fit(load_runs(path, family_col="family"), ModelSpec(), OPTIONS,
                       calibration=False)
    post = result.posterior
    seed = post.tree["posterior"].dataset["seed_noise"]
    assert seed.dims == ("chain", "draw", "family")
    for frame in frames:  # the seeds' scatter in these data (by chance ~20% under the truth)
        name = frame["family"].iloc[0]
        scatter = np.sqrt(np.log(frame["loss"]).groupby(
            [frame["params"], frame["tokens"]]).var(ddof=1).mean())
        median = float(np.median(np.asarray(seed.sel(family=name))))
        assert median == pytest.approx(scatter, rel=0.2), (name, median, scatter)
    width = {}
    for name in truth_seed:
        frame = post.predict(params=[1e9], tokens=[2e10], family=name, discrepancy=False)
        width[name] = float((frame["loss_upper"] - frame["loss_lower"]).iloc[0])
    assert width["noisy"] > 3 * width["quiet"]


@pytest.mark.slow
def test_separate_e_keeps_each_family_its_own_e(family_fits):
    """--separate-e: ln E per family under the prior of E, the rest pooled; a new family's E
    comes from that prior; the target family still borrows alpha from the others."""
    _, alone, _, separate = family_fits
    post = separate.posterior
    dataset = post.tree["posterior"].dataset
    assert post.meta["separate_e"] is True
    assert dataset["family_log_E"].dims == ("chain", "draw", "family")
    assert "pop_log_E" not in dataset
    assert list(dataset.coords["pooled"].values) == ["a_c", "b_c", "log_alpha", "log_beta"]
    assert "family_sd[log_E]" not in post.summary().index
    np.testing.assert_allclose(np.log(np.asarray(dataset["E"])),
                               np.asarray(dataset["family_log_E"]))
    prior = post.priors["E"].sample(np.random.default_rng(0), 20_000)
    new_e = post.draws(["E"])["E"]  # a new family
    # ln E of a new family ~ the prior's normal: its sample median within 4 standard errors
    # (1.2533 sigma / sqrt(n)) of the prior's
    sigma = post.priors["E"].params["sigma"]
    standard_error = 1.2533 * sigma / np.sqrt(new_e.size)
    assert abs(np.log(np.median(new_e)) - post.priors["E"].params["mu"]) < 4 * standard_error
    assert np.log(new_e).std() == pytest.approx(np.log(prior).std(), rel=0.1)
    low, high = np.quantile(post.draws(family="t")["alpha"], [0.05, 0.95])
    alone_low, alone_high = np.quantile(alone.posterior.draws()["alpha"], [0.05, 0.95])
    assert low < TRUTHS["t"]["alpha"] < high
    assert high - low < 0.7 * (alone_high - alone_low), (low, high, alone_low, alone_high)


def test_separate_e_needs_a_family_column(tmp_path):
    path = tmp_path / "runs.csv"
    checkpoint_curves([1e8, 2e8, 4e8], checkpoints=4).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["fit", str(path), "--separate-e"])
    assert result.exit_code == 2
    assert "--separate-e" in result.output and "--family-col" in result.output
    assert not (tmp_path / "runs.posterior.nc").exists()
    with pytest.raises(BayescaleError, match="family model"):
        fit(load_runs(path), ModelSpec(separate_e=True))


def test_families_without_a_repeated_size_keep_the_seed_prior(tmp_path):
    """Family "a" repeats its model sizes (two seeds each), "b" does not: only b's seed
    noise is the prior, and the fit's warning names b."""
    from bayescale.inference.model import build_model
    from bayescale.posterior.warnings import seed_prior_only

    frames = [checkpoint_curves([1e8, 4e8], checkpoints=5, seeds=2, family="a", random_seed=0),
              checkpoint_curves([1e8, 4e8], checkpoints=5, family="b", random_seed=1)]
    path = tmp_path / "runs.csv"
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    built = build_model(load_runs(path, run_col="run", family_col="family"),
                        ModelSpec(families=True))
    assert built.seed_identified
    assert built.seed_prior_families == ["b"]
    assert built.model.named_vars_to_dims["seed_noise"] == ("family",)
    post = known_draws_posterior(4, seed_noise_prior_families=["b"])
    [message] = seed_prior_only(post)
    assert message.startswith("family b: no model size has two runs")


def test_far_targets_are_judged_against_the_familys_own_runs(tmp_path):
    """Family p's runs stop at 1/30 of family q's largest N: a target at 30x p's largest N is
    far for p, as risk measures it, though inside the fit's runs as a whole."""
    from bayescale.posterior.warnings import far_targets
    from tests.builders import TWO_FAMILY_TRUTHS, family_sweeps

    data = family_sweeps()
    q = data["family"] == "q"
    data.loc[q, "params"] *= 30.0
    data.loc[q, "tokens"] *= 30.0
    post = known_family_posterior(data, TWO_FAMILY_TRUTHS)
    n = 30 * float(data.loc[~q, "params"].max())
    d = float(data.loc[~q, "tokens"].max())
    assert far_targets(post, [n], [d], [6 * n * d]) == []
    assert far_targets(post, [n], [d], [6 * n * d], family="q") == []
    assert any("30x the largest fitted" in w
               for w in far_targets(post, [n], [d], [6 * n * d], family="p"))
    path = tmp_path / "fam.posterior.nc"
    post.save(path)
    out = json.loads(CliRunner().invoke(app, ["predict", str(path), "-N", f"{n:g}", "-D",
                                              f"{d:g}", "--family", "p", "--json"]).stdout)
    assert any("30x the largest fitted" in w for w in out["warnings"])


def test_seed_noise_of_no_family_identified_names_the_families():
    from bayescale.posterior.warnings import seed_prior_only

    post = known_draws_posterior(4, seed_noise_identified=False,
                                 seed_noise_prior_families=["gpt3", "olmo"])
    [message] = seed_prior_only(post)
    assert message.startswith("in no family (gpt3, olmo) does a model size have two runs")
    [single] = seed_prior_only(known_draws_posterior(4, seed_noise_identified=False))
    assert single.startswith("no model size has two runs")


def test_info_names_the_families(tmp_path):
    from tests.builders import TWO_FAMILY_TRUTHS, family_sweeps

    path = tmp_path / "fam.posterior.nc"
    known_family_posterior(family_sweeps(), TWO_FAMILY_TRUTHS, families=True).save(path)
    out = json.loads(CliRunner().invoke(app, ["info", str(path), "--json"]).stdout)
    assert out["family_names"] == ["p", "q"]
    text = CliRunner().invoke(app, ["info", str(path)]).stderr
    assert any(line.split()[:2] == ["families", "p,"] for line in text.splitlines())


def test_info_of_one_chain_says_r_hat_does_not_apply(tmp_path):
    from tests.builders import with_meta

    path = tmp_path / "one.posterior.nc"
    with_meta(known_draws_posterior(40), diagnostics={"max_r_hat": None, "divergences": 0,
                                                      "problems": []}).save(path)
    text = CliRunner().invoke(app, ["info", str(path)]).stderr
    assert "max_r_hat=n/a (one chain)" in text and "None" not in text
