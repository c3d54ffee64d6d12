"""Default priors: what they imply for familiar model sizes (prior predictive), TOML overrides."""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.core.errors import BayescaleError
from bayescale.inference.model import ModelSpec
from bayescale.law.laws import get_law
from bayescale.law.priors import NOISE_PRIORS, load_priors


def _prior_draws(size: int = 20000) -> dict[str, np.ndarray]:
    law = get_law("chinchilla")
    return law.prior_draws(law.default_priors(), np.random.default_rng(0), size)


@pytest.mark.parametrize(
    ("params", "tokens"),
    [(125e6, 2.5e9), (1.3e9, 26e9), (7e9, 140e9), (70e9, 1.4e12)],
)
def test_prior_predictive_loss_is_plausible_at_familiar_sizes(params, tokens):
    """Median loss between 2 and 5 nats; 90% of prior mass between 1 and 20 nats; the
    prior still spreads over more than a factor of 1.5 (weakly informative, not a point)."""
    draws = _prior_draws()
    loss = get_law("chinchilla").loss(draws, np.array([params]), np.array([tokens]))[:, 0]
    lo, med, hi = np.quantile(loss, [0.05, 0.5, 0.95])
    assert 2.0 < med < 5.0
    assert lo > 1.0 and hi < 20.0
    assert hi / lo > 1.5


def test_prior_predictive_loss_falls_with_scale():
    draws = _prior_draws()
    law = get_law("chinchilla")
    small = law.loss(draws, np.array([125e6]), np.array([2.5e9]))[:, 0]
    large = law.loss(draws, np.array([70e9]), np.array([1.4e12]))[:, 0]
    assert np.mean(large < small) > 0.99


def test_toml_overrides_one_prior(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text('[alpha]\ndist = "lognormal"\nmu = -1.0\nsigma = 0.2\n')
    defaults = {**get_law("chinchilla").default_priors(), **NOISE_PRIORS}
    given = load_priors(path, defaults, ("A", "B"))
    assert list(given) == ["alpha"] and given["alpha"].params == {"mu": -1.0, "sigma": 0.2}
    merged = ModelSpec(priors=given).full_priors()
    assert merged["alpha"] == given["alpha"] and merged["beta"] == defaults["beta"]


@pytest.mark.parametrize(
    ("text", "message"),
    [('[gamma]\ndist = "normal"\nmu = 0\nsigma = 1\n', "unknown parameter"),
     ('[A]\ndist = "normal"\nmu = 0\nsigma = 1\n', "must be lognormal"),
     ('[E]\ndist = "normal"\nmu = 0\n', "missing sigma"),
     ('[E]\ndist = "normal"\nmu = 0\nsigma = -1\n', "must be positive"),
     ("[E\n", "not valid TOML")],
)
def test_bad_prior_files_are_user_errors(tmp_path, text, message):
    path = tmp_path / "priors.toml"
    path.write_text(text)
    defaults = {**get_law("chinchilla").default_priors(), **NOISE_PRIORS}
    with pytest.raises(BayescaleError, match=message):
        load_priors(path, defaults, ("A", "B"))
