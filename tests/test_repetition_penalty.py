"""The candidate law of repeated data with an additive overfitting penalty (Lovelace et al.
2026, as rendered by Weng 2026), and the centre-terms parameterisation the repeated-data laws
are sampled in. No sampling here (tests/test_repetition_sampling.py samples).
"""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.core.errors import BayescaleError
from bayescale.law.laws import (
    CANDIDATE_LAWS,
    LAWS,
    Chinchilla,
    OverfitPenalty,
    get_law,
    overfit_penalty_log,
    pymc_centre_terms,
)

TRUTH = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366, "P": 0.05,
         "delta": 0.8, "kappa": 0.6}


def evaluate(model, outputs, point: dict) -> list:
    """``outputs`` of a PyMC model at a point of its value variables (by name)."""
    import pytensor

    outs = model.replace_rvs_by_values(list(outputs))
    inputs = [v for v in model.value_vars if v.name in point]
    fn = pytensor.function(inputs, outs, on_unused_input="ignore")
    return fn(*(point[v.name] for v in inputs))


def draws(**changes: float) -> dict[str, np.ndarray]:
    return {k: np.array([v]) for k, v in {**TRUTH, **changes}.items()}


def test_the_candidate_is_not_offered_by_fit():
    assert "overfit-penalty" not in LAWS
    assert isinstance(CANDIDATE_LAWS["overfit-penalty"], OverfitPenalty)
    with pytest.raises(BayescaleError, match="unknown law"):
        get_law("overfit-penalty")


def test_fresh_data_is_chinchilla():
    n, d = np.array([1e8, 1e9, 7e10]), np.array([2e9, 2e10, 1.4e12])
    law = OverfitPenalty()
    chin = Chinchilla().log_loss(draws(), n, d)
    np.testing.assert_allclose(law.log_loss(draws(), n, d), chin)
    np.testing.assert_allclose(law.log_loss(draws(), n, d, {"unique_tokens": d}), chin)


def test_the_penalty_is_the_formula_and_grows_with_repetition_and_capacity():
    n, d = 1e9, 4e10
    law = OverfitPenalty()
    fresh = law.loss(draws(), [n], [d])[0, 0]
    for u in (2e10, 1e10, 4e9):
        repeated = law.loss(draws(), [n], [d], {"unique_tokens": [u]})[0, 0]
        expected = TRUTH["P"] * (d / u - 1) ** TRUTH["delta"] * (n / u) ** TRUTH["kappa"]
        assert repeated - fresh == pytest.approx(expected, rel=1e-9)
    # more epochs of the same data cost more; so does a larger model on the same data
    d3 = [4e10, 8e10, 1.6e11]
    penalty = (law.loss(draws(), [n] * 3, d3, {"unique_tokens": [1e10] * 3})
               - Chinchilla().loss(draws(), [n] * 3, d3))[0]
    assert np.all(np.diff(penalty) > 0)
    small, large = law.loss(draws(), [1e8, 1e10], [4e10, 4e10], {"unique_tokens": [1e10] * 2})[0]
    pen_small = small - Chinchilla().loss(draws(), [1e8], [4e10])[0, 0]
    pen_large = large - Chinchilla().loss(draws(), [1e10], [4e10])[0, 0]
    assert pen_large > pen_small > 0


def test_numpy_and_pytensor_agree():
    import pytensor.tensor as pt

    log_n, log_d = np.log([1e9, 1e9, 3e9]), np.log([4e10, 4e10, 6e10])
    log_u = np.log([4e10, 1e10, 2e9])
    args = (np.log(0.05), 0.8, 0.6)
    expected = overfit_penalty_log(log_n, log_d, log_u, *args)
    got = overfit_penalty_log(pt.as_tensor(log_n), pt.as_tensor(log_d), pt.as_tensor(log_u),
                              *args, xp=pt).eval()
    assert np.isneginf(expected[0]) and np.isneginf(got[0])  # fresh data: no penalty
    np.testing.assert_allclose(got[1:], expected[1:])


def test_pymc_model_equals_the_numpy_law_at_a_point():
    import pymc as pm

    law = OverfitPenalty()
    n = np.log([1e8, 1e9, 3e9])
    d = np.log([2e9, 4e10, 6e10])
    u = np.log([2e9, 1e10, 2e9])
    n0, d0 = float(n.mean()), float(d.mean())
    with pm.Model() as model:
        log_l = law.pymc_log_loss(law.default_priors(), n0, d0, n - n0, d - d0,
                                  {"unique_tokens": u})
        pm.Deterministic("log_l", log_l)
    point = model.initial_point()
    out = evaluate(model, [model["log_l"], *(model[k] for k in law.parameters)], point)
    theta = {k: np.array([float(v)]) for k, v in zip(law.parameters, out[1:], strict=True)}
    expected = law.log_loss(theta, np.exp(n), np.exp(d), {"unique_tokens": np.exp(u)})[0]
    np.testing.assert_allclose(out[0], expected, rtol=1e-9)


def test_centre_terms_map_has_unit_jacobian_and_keeps_the_priors():
    """(w, v_N, v_D) -> (ln E, a_c, b_c) must have Jacobian determinant 1, else the documented
    priors on E, A, B would be silently reweighted."""
    import pymc as pm
    import pytensor.tensor as pt

    priors = Chinchilla().default_priors()
    with pm.Model() as model:
        alpha, beta = priors["alpha"].pymc("alpha"), priors["beta"].pymc("beta")
        e, a_c, b_c = pymc_centre_terms(priors, alpha, beta, 20.0, 23.0)
    w, v = model["centre_log_loss"], model["centre_share_logits"]
    outputs = pt.stack([pt.log(e), a_c, b_c])
    jac = pt.stack([pt.concatenate([pt.atleast_1d(pt.grad(outputs[i], w)),
                                    pt.grad(outputs[i], v)]) for i in range(3)])
    point = {"centre_log_loss": 0.9, "centre_share_logits": np.array([-0.4, 0.7])}
    value = jac.eval({w: point["centre_log_loss"], v: point["centre_share_logits"]})
    assert np.linalg.det(value) == pytest.approx(1.0, abs=1e-10)
    # the three terms add up to the loss at the centre
    total = (e + pt.exp(a_c) + pt.exp(b_c)).eval({w: 0.9, v: point["centre_share_logits"]})
    assert total == pytest.approx(np.exp(0.9))
    # the potential is the documented priors' log density at (ln E, a_c, b_c)
    from scipy import stats

    at = {**point, "alpha_log__": np.log(0.35), "beta_log__": np.log(0.3)}
    log_e, a, b = evaluate(model, [outputs], at)[0]
    pa, pb, pe = priors["A"].params, priors["B"].params, priors["E"].params
    expected = (stats.norm.logpdf(log_e, pe["mu"], pe["sigma"])
                + stats.norm.logpdf(a, pa["mu"] + 0.35 * (np.log(1e9) - 20.0), pa["sigma"])
                + stats.norm.logpdf(b, pb["mu"] + 0.3 * (np.log(1e10) - 23.0), pb["sigma"]))
    potential = evaluate(model, [model["centre_terms_prior"]], at)[0]
    assert potential == pytest.approx(expected, rel=1e-9)
