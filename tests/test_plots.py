"""Figures: every figure function on a posterior of known draws; the plotted numbers are the
law's."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayescale import BayescaleError, Posterior
from bayescale.law.laws import CANDIDATE_LAWS, LAWS
from bayescale.report.plots import (
    FIGURES,
    WITH_TARGETS,
    _parameter_tree,
    plot,
    plot_frontier,
    plot_isoflop,
    plot_loss_compute,
    plot_pair,
    plot_ppc,
    plot_priors,
    plot_rank,
)
from tests.builders import TWO_FAMILY_TRUTHS, family_sweeps, known_family_posterior

TARGET = (7e9, 1.4e11)


@pytest.fixture(scope="module")
def family_posterior() -> Posterior:
    """A family fit of known draws (2 chains x 200): each family's runs lie on its own law,
    and its draws scatter 1% around it."""
    return known_family_posterior(family_sweeps(), TWO_FAMILY_TRUTHS)


def _has_data(ax) -> bool:
    lines = any(len(line.get_xdata()) > 1 for line in ax.lines)
    collections = any(len(c.get_paths()) or len(c.get_offsets()) for c in ax.collections)
    return lines or collections


@pytest.mark.parametrize("kind", list(FIGURES))
def test_each_figure_draws_data_and_saves(known_example, kind, tmp_path):
    kwargs = {"targets": [TARGET]} if kind in WITH_TARGETS else {}
    fig = plot(known_example, kind, **kwargs)
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if _has_data(ax)]
    assert len(drawn) >= 3 if kind in ("priors", "trace", "rank", "pair", "frontier", "ppc") \
        else len(drawn) >= 1
    assert fig.get_suptitle() or any(ax.get_title() for ax in fig.axes)
    path = tmp_path / f"{kind}.png"
    fig.savefig(path, dpi=40)
    assert path.stat().st_size > 5_000


def test_loss_compute_curve_is_the_posterior_median_law(known_example):
    fig = plot_loss_compute(known_example, targets=[TARGET])
    (line,) = [x for x in fig.axes[0].lines if x.get_label() == "N = 7B"]
    compute, loss = line.get_data()
    draws = known_example.draws()
    assert known_example.n_draws <= 1000  # all draws drawn, no subset
    expected = np.exp(np.median(known_example.law.log_loss(
        draws, np.full(compute.size, 7e9), compute / (6 * 7e9)), axis=0))
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    assert compute.max() > 6 * TARGET[0] * TARGET[1]  # extended to the target


def test_frontier_median_is_the_optimum_per_draw(known_example):
    fig = plot_frontier(known_example)
    n_ax, d_ax, ratio_ax = fig.axes[:3]
    compute, n_star = n_ax.lines[0].get_data()
    n_opt, d_opt = known_example.law.optimal(known_example.draws(), compute[5])
    assert n_star[5] == pytest.approx(np.median(n_opt), rel=1e-12)
    assert d_ax.lines[0].get_ydata()[5] == pytest.approx(np.median(d_opt), rel=1e-12)
    assert ratio_ax.lines[0].get_ydata()[5] == pytest.approx(np.median(d_opt / n_opt), rel=1e-12)
    assert n_ax.get_xscale() == "log" and n_ax.get_yscale() == "log"


def test_ppc_counts_every_fitted_row(known_example):
    fig = plot_ppc(known_example, level=0.9)
    rows = len(known_example.data)
    assert f"of {rows} fitted rows" in fig.get_suptitle()
    inside, outside = fig.axes[0].collections[1:3]
    assert len(inside.get_offsets()) + len(outside.get_offsets()) == rows


def test_unknown_kind_is_a_user_error(known_example):
    with pytest.raises(BayescaleError, match="unknown figure"):
        plot(known_example, "histogram")


def test_new_run_band_is_predicts_interval(known_example):
    """The light band of the law figures is predict's new-run interval, the law's learned
    extrapolation error included (beyond the runs it is most of the width)."""
    from bayescale.report.plots import _bands

    n, d = np.array([7e9, 7e10]), np.array([1.4e11, 1.4e12])
    band = _bands(known_example, known_example.draws(), n, d, 0.9, 5)
    pred = known_example.predict(n, d, level=0.9, random_seed=5)
    np.testing.assert_allclose(band["new_lo"], pred["loss_lower"], rtol=1e-12)
    np.testing.assert_allclose(band["new_hi"], pred["loss_upper"], rtol=1e-12)
    assert pred["discrepancy_share"].iloc[1] > 0.5


def test_prior_of_a_and_b_is_the_laws(known_example):
    """A and B's priors sit at a reference size (A / at^alpha): the figure's prior is the law's
    (it sampled the prior of A / at^alpha as if it were A: median log10 A -0.40, not 2.79)."""
    prior = _parameter_tree(known_example, with_prior=True)["prior"].dataset
    law = known_example.law
    draws = law.prior_draws(known_example.priors, np.random.default_rng(7), 20_000)
    for name in ("A", "B"):
        plotted = np.median(np.asarray(prior[f"log10 {name}"]))
        assert plotted == pytest.approx(np.log10(np.median(draws[name])), abs=0.1), name
    assert np.median(np.asarray(prior["alpha"])) == pytest.approx(0.35, rel=0.05)


@pytest.mark.parametrize("name", [*LAWS, *CANDIDATE_LAWS])
def test_parameter_figures_of_every_law(name, monkeypatch):
    """A pair plot of 7 or more parameters (Muennighoff's law, the overfit penalty) asked
    arviz-plots for more subplots than its limit allows and crashed ``plot pair`` and
    ``report``; the limit is lifted for the call only."""
    from arviz_base import rcParams

    law = {**LAWS, **CANDIDATE_LAWS}[name]
    monkeypatch.setitem(LAWS, name, law)  # a candidate registered, as its benchmark does
    draws = law.prior_draws(law.default_priors(), np.random.default_rng(0), 400)
    draws |= {"sigma_obs": np.full(400, 0.002), "seed_noise": np.full(400, 0.01)}
    post = Posterior.from_draws(draws, law=name, chains=2)
    limit = rcParams["plot.max_subplots"]
    drawn = {kind: plot(post, kind) for kind in ("priors", "trace", "rank", "pair")}
    count = len(law.parameters)
    assert len(drawn["pair"].axes) == count**2
    assert {len([ax for ax in fig.axes if _has_data(ax)]) for kind, fig in drawn.items()
            if kind != "pair"} == {count, 2 * count}  # priors and rank; trace and density
    assert rcParams["plot.max_subplots"] == limit


def test_rank_plot_of_many_families_draws_every_panel():
    """A rank plot draws one panel per parameter and family: 9 families of 5 parameters went
    over arviz-plots' limit of subplots too."""
    from bayescale.law.simulate import EPOCH_LAW

    truths = {f"f{i}": {**EPOCH_LAW, "E": 1.7 + 0.02 * i} for i in range(9)}
    post = known_family_posterior(family_sweeps(truths), truths, draws=50)
    fig = plot_rank(post)
    assert len([ax for ax in fig.axes if _has_data(ax)]) == 5 * len(truths)


def test_rank_plot_of_one_chain_is_a_user_error(known_posterior):
    with pytest.raises(BayescaleError, match="compare chains"):
        plot_rank(known_posterior)


@pytest.mark.parametrize("kind", ["isoflop", "loss-compute"])
def test_target_interval_and_label_fit_in_the_figure(known_example, kind):
    """The y-limits hold the target's whole interval, and its label clears the error bar."""
    fig = plot(known_example, kind, targets=[TARGET])
    (ax,) = [a for a in fig.axes if a.get_ylabel() == "loss (nats)"]
    pred = known_example.predict(*TARGET).iloc[0]
    low, high = ax.get_ylim()
    assert low < pred.loss_lower and pred.loss_upper < high
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (label,) = ax.texts
    box = label.get_bbox_patch().get_window_extent(renderer)
    caps = [line.get_window_extent(renderer) for line in ax.lines
            if line.get_marker() == "_" and line.get_color() == "crimson"]
    assert len(caps) == 2 and not any(box.overlaps(cap) for cap in caps)


def test_priors_and_pair_of_a_family_fit_show_the_population_law(family_posterior):
    """Each family's parameters have a dim family (this crashed); the figures show the
    population-mean law, whose prior the single-law prior is."""
    fig = plot_priors(family_posterior)
    assert len([ax for ax in fig.axes if _has_data(ax)]) == 5
    assert "population-mean law" in fig.get_suptitle()
    posterior = _parameter_tree(family_posterior, with_prior=True, population=True)["posterior"]
    pop_alpha = np.exp(np.asarray(family_posterior.tree["posterior"].dataset["pop_log_alpha"]))
    np.testing.assert_allclose(np.asarray(posterior["alpha"]), pop_alpha, rtol=1e-12)
    assert "population-mean law" in plot_pair(family_posterior).get_suptitle()


def test_law_figures_of_a_family_fit_say_whose_law(family_posterior):
    everyone = plot_isoflop(family_posterior)
    assert "a new family's law (population of the 2 families)" in everyone.axes[0].get_title()
    assert len(everyone.axes[0].collections[-1].get_offsets()) == 30
    one = plot_loss_compute(family_posterior, targets=[TARGET], family="q")
    assert "family q: its law and its runs" in one.axes[0].get_title()
    scatter = [c for c in one.axes[0].collections if c.get_label() == "fitted runs"]
    assert len(scatter[0].get_offsets()) == 15
    # the target's star is family q's prediction
    pred = family_posterior.predict(*TARGET, family="q").iloc[0]
    stars = [x for x in one.axes[0].lines if x.get_marker() == "*"]
    assert stars[0].get_ydata()[0] == pytest.approx(pred.loss_median, rel=1e-12)
    assert "family q" in plot_frontier(family_posterior, family="q").get_suptitle()


def test_ppc_of_a_family_fit_puts_each_row_under_its_familys_law(family_posterior):
    """The rows lie on their own family's law: residuals near 0 (under the population law they
    would be off by several percent)."""
    fig = plot_ppc(family_posterior)
    assert "under its family's law" in fig.get_suptitle()
    resid = np.concatenate([c.get_offsets()[:, 1] for c in fig.axes[0].collections[1:3]])
    assert resid.size == 30 and np.abs(resid).max() < 1.0


@pytest.mark.parametrize(("span", "labelled"), [
    ((1.7e7, 6e8), ["2e+07", "5e+07", "2e+08", "5e+08"]),  # one power of ten in view
    ((1e8, 3e10), []),  # two or more: the powers alone
])
def test_log_axis_labels_few_minor_ticks(span, labelled):
    # matplotlib's own choice with one power of ten in view (1, 2, 3, 4, 6 x 10^k) overlapped
    # in the third of a figure a ppc panel gets
    from bayescale.report.plots import _log_x

    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.plot(span, [1.0, 2.0])
    _log_x(ax)
    ax.set_xlim(*span)
    FigureCanvasAgg(fig).draw()
    shown = [f"{tick.get_loc():.0e}" for tick in ax.xaxis.get_minor_ticks()
             if tick.label1.get_visible() and tick.label1.get_text()
             and span[0] <= tick.get_loc() <= span[1]]
    assert shown == labelled
