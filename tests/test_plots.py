"""Figures: every figure function on a small fitted posterior; the plotted numbers are the law's."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayescale import BayescaleError
from bayescale.plots import FIGURES, WITH_TARGETS

TARGET = (7e9, 1.4e11)


def _has_data(ax) -> bool:
    lines = any(len(line.get_xdata()) > 1 for line in ax.lines)
    collections = any(len(c.get_paths()) or len(c.get_offsets()) for c in ax.collections)
    return lines or collections


@pytest.mark.parametrize("kind", list(FIGURES))
def test_each_figure_draws_data_and_saves(example_posterior, kind, tmp_path):
    kwargs = {"targets": [TARGET]} if kind in WITH_TARGETS else {}
    fig = example_posterior.plot(kind, **kwargs)
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if _has_data(ax)]
    assert len(drawn) >= 3 if kind in ("priors", "trace", "rank", "pair", "frontier", "ppc") \
        else len(drawn) >= 1
    assert fig.get_suptitle() or any(ax.get_title() for ax in fig.axes)
    path = tmp_path / f"{kind}.png"
    fig.savefig(path, dpi=40)
    assert path.stat().st_size > 5_000


def test_loss_compute_curve_is_the_posterior_median_law(example_posterior):
    fig = example_posterior.plot_loss_compute(targets=[TARGET])
    (line,) = [x for x in fig.axes[0].lines if x.get_label() == "N = 7B"]
    compute, loss = line.get_data()
    draws = example_posterior.draws()
    assert example_posterior.n_draws <= 1000  # all draws drawn, no subset
    expected = np.exp(np.median(example_posterior.law.log_loss(
        draws, np.full(compute.size, 7e9), compute / (6 * 7e9)), axis=0))
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    assert compute.max() > 6 * TARGET[0] * TARGET[1]  # extended to the target


def test_frontier_median_is_the_optimum_per_draw(example_posterior):
    fig = example_posterior.plot_frontier()
    n_ax, d_ax, ratio_ax = fig.axes[:3]
    compute, n_star = n_ax.lines[0].get_data()
    n_opt, d_opt = example_posterior.law.optimal(example_posterior.draws(), compute[5])
    assert n_star[5] == pytest.approx(np.median(n_opt), rel=1e-12)
    assert d_ax.lines[0].get_ydata()[5] == pytest.approx(np.median(d_opt), rel=1e-12)
    assert ratio_ax.lines[0].get_ydata()[5] == pytest.approx(np.median(d_opt / n_opt), rel=1e-12)
    assert n_ax.get_xscale() == "log" and n_ax.get_yscale() == "log"


def test_ppc_counts_every_fitted_row(example_posterior):
    fig = example_posterior.plot_ppc(level=0.9)
    rows = len(example_posterior.data)
    assert f"of {rows} fitted rows" in fig.get_suptitle()
    inside, outside = fig.axes[0].collections[1:3]
    assert len(inside.get_offsets()) + len(outside.get_offsets()) == rows


def test_unknown_kind_is_a_user_error(example_posterior):
    with pytest.raises(BayescaleError, match="unknown figure"):
        example_posterior.plot("histogram")


def test_new_run_band_is_predicts_interval(example_posterior):
    """The light band of the law figures is predict's new-run interval, the law's learned
    extrapolation error included (beyond the runs it is most of the width)."""
    from bayescale.plots import _bands

    n, d = np.array([7e9, 7e10]), np.array([1.4e11, 1.4e12])
    band = _bands(example_posterior, example_posterior.draws(), n, d, 0.9, 5)
    pred = example_posterior.predict(n, d, level=0.9, random_seed=5)
    np.testing.assert_allclose(band["new_lo"], pred["loss_lower"], rtol=1e-12)
    np.testing.assert_allclose(band["new_hi"], pred["loss_upper"], rtol=1e-12)
    assert pred["discrepancy_share"].iloc[1] > 0.5
