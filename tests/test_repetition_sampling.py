"""Sampling with repetition (issue 26): the centre-terms parameterisation keeps the documented
priors under NUTS, and a repeated-data fit stores its epochs and widens beyond them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale import ModelSpec
from bayescale.data.ranges import EPOCHS
from bayescale.data.runs import load_runs
from bayescale.law.laws import Chinchilla, get_law, pymc_centre_terms
from bayescale.posterior import store
from tests.builders import quick, quick_fit

PAPER = {"E": 1.87, "A": 521.0, "B": 1488.0, "alpha": 0.353, "beta": 0.360, "R_D": 15.4,
         "R_N": 5.3}


@pytest.mark.slow
def test_centre_terms_sample_the_documented_priors():
    """Without data, NUTS in (w, share logits) must return E, A, B from their priors: E
    log-normal(median 2, sd 0.5 of ln E), the N-term at 1B parameters log-normal(median 0.4,
    1), the D-term at 10B tokens log-normal(median 0.5, 1) (Chinchilla's defaults)."""
    import pymc as pm

    priors = Chinchilla().default_priors()
    with pm.Model():
        alpha, beta = priors["alpha"].pymc("alpha"), priors["beta"].pymc("beta")
        _, a_c, b_c = pymc_centre_terms(priors, alpha, beta, 20.0, 23.0)
        pm.Deterministic("n_term_1b", a_c + alpha * (20.0 - np.log(1e9)))
        pm.Deterministic("d_term_10b", b_c + beta * (23.0 - np.log(1e10)))
        tree = pm.sample(draws=2000, tune=1000, chains=2, random_seed=1, progressbar=False)
    post = tree["posterior"].dataset
    log_e = np.log(np.asarray(post["E"]).ravel())
    assert np.median(log_e) == pytest.approx(np.log(2.0), abs=0.06)
    assert log_e.std() == pytest.approx(0.5, rel=0.1)
    for name, median in (("n_term_1b", 0.4), ("d_term_10b", 0.5)):
        term = np.asarray(post[name]).ravel()
        assert np.median(term) == pytest.approx(np.log(median), abs=0.12)
        assert term.std() == pytest.approx(1.0, rel=0.1)


@pytest.mark.slow
def test_repeated_data_fit_records_its_epochs_and_widens_beyond_them(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"params": n, "tokens": d, "unique_tokens": d / e}
            for n in (1e8, 3e8, 1e9) for d in (2e9, 6e9, 2e10) for e in (1, 2, 4)]
    frame = pd.DataFrame(rows)
    truth = {k: np.array([v]) for k, v in PAPER.items()}
    loss = get_law("muennighoff").loss(truth, frame["params"], frame["tokens"],
                                       {"unique_tokens": frame["unique_tokens"]})[0]
    frame["loss"] = loss * np.exp(rng.normal(0, 0.003, len(frame)))
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    runs = load_runs(path, unique_tokens_col="unique_tokens")
    result = quick_fit(runs, ModelSpec(law="muennighoff", likelihood="normal"),
                       quick(draws=300, tune=400))
    post = result.posterior
    assert post.meta[store.EPOCHS_KEY] == pytest.approx([1.0, 4.0])
    assert post.calibration.ranges[EPOCHS] == pytest.approx([0.0, np.log10(4.0)])
    saved = tmp_path / "m.posterior.nc"
    post.save(saved)
    assert store.fitted_epochs(store.read(saved)) == pytest.approx([1.0, 4.0])
    e = np.array([4.0, 32.0])
    out = post.predict(params=[3e8, 3e8], tokens=[6e9, 6e9], unique_tokens=6e9 / e)
    np.testing.assert_allclose(out["extrapolation_decades"], [0.0, np.log10(8.0)])
    plain = post.predict(params=[3e8, 3e8], tokens=[6e9, 6e9], unique_tokens=6e9 / e,
                         discrepancy=False)
    width = np.log(out["loss_upper"] / out["loss_lower"]).to_numpy()
    plain_width = np.log(plain["loss_upper"] / plain["loss_lower"]).to_numpy()
    assert width[0] == pytest.approx(plain_width[0], rel=0.05)
    assert width[1] > plain_width[1]
