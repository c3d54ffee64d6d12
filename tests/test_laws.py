"""Laws: Kaplan in numpy and PyMC agree, generic optimum against closed forms, registration."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.law.laws import LAWS, Chinchilla, Kaplan, Law, get_law
from bayescale.law.simulate import EPOCH_LAW
from bayescale.posterior.optimal import exponent_draws

KAPLAN = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}


def _draws(values: dict[str, float], size: int = 1, spread: float = 0.0) -> dict:
    rng = np.random.default_rng(0)
    return {k: v * np.exp(rng.normal(0.0, spread, size)) for k, v in values.items()}


def _pymc_log_loss(law: Law, point: dict[str, float], params, tokens) -> np.ndarray:
    """Evaluate ``law.pymc_log_loss`` at given parameter values, through PyMC's own graph."""
    import pymc as pm

    log_n, log_d = np.log(params), np.log(tokens)
    n0, d0 = float(log_n.mean()), float(log_d.mean())
    with pm.Model() as model:
        out = law.pymc_log_loss(law.default_priors(), n0, d0, log_n - n0, log_d - d0)
    ratio = point["alpha_N"] / point["alpha_D"]
    values = {"alpha_N_log__": np.log(point["alpha_N"]), "alpha_D_log__": np.log(point["alpha_D"]),
              "k_N": ratio * (np.log(point["N_c"]) - n0), "k_D": np.log(point["D_c"]) - d0}
    outs = model.replace_rvs_by_values([out, model["N_c"], model["D_c"]])
    evaluate = model.compile_fn(outs, inputs=model.value_vars, point_fn=False,
                                on_unused_input="ignore")
    log_l, n_c, d_c = evaluate(*(values[v.name] for v in model.value_vars))
    assert n_c == pytest.approx(point["N_c"], rel=1e-9)
    assert d_c == pytest.approx(point["D_c"], rel=1e-9)
    return np.asarray(log_l)


def test_kaplan_is_registered_with_documented_priors():
    law = get_law("kaplan")
    assert isinstance(law, Kaplan) and "chinchilla" in LAWS
    priors = law.default_priors()
    for name, median in KAPLAN.items():
        assert np.exp(priors[name].params["mu"]) == pytest.approx(median)
    assert set(law.lognormal_parameters) == {"N_c", "D_c"}


@pytest.mark.parametrize("point", [KAPLAN, {"N_c": 3e12, "D_c": 2e11, "alpha_N": 0.2,
                                            "alpha_D": 0.15}])
def test_kaplan_numpy_and_pymc_agree(point):
    params = np.array([1e7, 1e8, 1e9, 7e10])
    tokens = np.array([2e8, 5e9, 2e10, 1.4e12])
    numpy_log = Kaplan().log_loss({k: np.array([v]) for k, v in point.items()}, params, tokens)
    np.testing.assert_allclose(_pymc_log_loss(Kaplan(), point, params, tokens), numpy_log[0],
                               rtol=1e-10)
    # and both are the formula (Kaplan et al. 2020, eq. 1.5)
    direct = ((point["N_c"] / params) ** (point["alpha_N"] / point["alpha_D"])
              + point["D_c"] / tokens) ** point["alpha_D"]
    np.testing.assert_allclose(np.exp(numpy_log[0]), direct, rtol=1e-12)


def test_generic_optimum_matches_chinchilla_closed_form():
    draws = _draws(EPOCH_LAW, size=200, spread=0.1)
    for compute in (1e19, 5.88e23, 1e26):
        n_closed, d_closed = Chinchilla().optimal(draws, compute)
        n_generic, d_generic = Law.optimal(Chinchilla(), draws, compute)
        np.testing.assert_allclose(n_generic, n_closed, rtol=1e-6)
        np.testing.assert_allclose(d_generic, d_closed, rtol=1e-6)


def test_kaplan_optimum_and_exponent_match_the_stationary_point():
    draws = _draws(KAPLAN, size=100, spread=0.2)
    ratio = draws["alpha_N"] / draws["alpha_D"]
    compute = 1e22
    n_opt, d_opt = Kaplan().optimal(draws, compute)
    # d ln L / d ln N = 0 on C = 6 N D: r (N_c/N)^r = 6 N D_c / C
    expected = np.exp((np.log(ratio) + ratio * np.log(draws["N_c"]) + np.log(compute / 6)
                       - np.log(draws["D_c"])) / (1 + ratio))
    np.testing.assert_allclose(n_opt, expected, rtol=1e-6)
    np.testing.assert_allclose(6 * n_opt * d_opt, compute, rtol=1e-9)
    a, b = exponent_draws(Kaplan(), draws)
    np.testing.assert_allclose(a, 1 / (1 + ratio), rtol=1e-4)
    np.testing.assert_allclose(a + b, 1.0)


def test_chinchilla_pooled_coordinates_round_trip():
    law = Chinchilla()
    n0, d0 = 20.0, 23.5
    draws = _draws(EPOCH_LAW, size=5, spread=0.1)
    theta = {"log_E": np.log(draws["E"]), "log_alpha": np.log(draws["alpha"]),
             "log_beta": np.log(draws["beta"]),
             "a_c": np.log(draws["A"]) - draws["alpha"] * n0,
             "b_c": np.log(draws["B"]) - draws["beta"] * d0}
    back = law.from_pooled(theta, n0, d0)
    for name in law.parameters:
        np.testing.assert_allclose(back[name], draws[name], rtol=1e-12)
    params, tokens = np.array([1e8, 7e10]), np.array([2e9, 1.4e12])
    centred = law.centred_log_loss({k: v[:, None] for k, v in theta.items()},
                                   np.log(params) - n0, np.log(tokens) - d0)
    np.testing.assert_allclose(centred, law.log_loss(draws, params, tokens), rtol=1e-12)


def test_unknown_law_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["fit", "examples/isoflop_runs.csv", "--law", "gpt",
                                      "--out", str(tmp_path / "x.nc")])
    assert result.exit_code == 2
    assert "kaplan" in result.output
    assert not (tmp_path / "x.nc").exists()
