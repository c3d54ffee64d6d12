"""Shared fixtures, built on :mod:`tests.builders` (import helpers from there, never from here).

``example_fit`` and ``epoch_fit`` sample, for tests marked ``slow``, once per test session
whatever the number of xdist workers; the others are posteriors of known draws.
"""

from __future__ import annotations

import pytest

from bayescale import Posterior, load_runs
from tests import builders


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """One OpenBLAS thread per test process: xdist runs one process per core already, and on
    a busy machine OpenBLAS's threads made each L-BFGS-B step of the point fit (calibration,
    baseline) 5-20 times slower (``fit_point`` on the example: 0.5 s alone, 5-10 s with
    two threads)."""
    import scipy.optimize  # noqa: F401  (loads scipy's OpenBLAS, so that the limit reaches it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def example_fit(tmp_path_factory):
    """The bundled example fitted with the QUICK preset (2 chains x 400 draws)."""
    return builders.fit_once(tmp_path_factory, "example",
                             lambda: builders.quick_fit(load_runs(builders.EXAMPLE)))


@pytest.fixture(scope="session")
def epoch_fit(tmp_path_factory):
    """The Epoch AI Chinchilla runs fitted with the CLI defaults (4 chains x 1000 draws)."""
    if not builders.EPOCH_CSV.exists():
        pytest.skip(f"shared data not found at {builders.EPOCH_CSV}")
    runs = load_runs(builders.EPOCH_CSV, params_col="Model Size", flops_col="Training FLOP")
    return builders.fit_once(tmp_path_factory, "epoch",
                             lambda: builders.quick_fit(runs, options=builders.DEFAULTS))


@pytest.fixture()
def known_posterior() -> Posterior:
    """2000 known draws around Epoch's law on a stand-in run (no sampling): for arithmetic."""
    return builders.known_draws_posterior()


@pytest.fixture(scope="session")
def known_example() -> Posterior:
    """Known draws (2 chains x 400) on the bundled example's runs, with the calibration a fit
    stores: the fitted example's answers without sampling. Shared: do not change it."""
    return builders.known_draws_posterior(800, chains=2, data=builders.example_frame(),
                                          calibration=True, noise_spread=0.2)


@pytest.fixture(scope="session")
def known_example_file(known_example, tmp_path_factory):
    """:func:`known_example` as a posterior file, for the commands."""
    path = tmp_path_factory.mktemp("known") / "example.posterior.nc"
    known_example.save(path)
    return path
