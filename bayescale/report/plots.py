"""Figures of a fitted posterior; each function takes a Posterior and returns a matplotlib Figure.

Parameter plots (priors, trace, rank, pair) use arviz-plots with the matplotlib backend on
E, log10 A, log10 B, alpha and beta (A and B span orders of magnitude); the law plots (loss
against compute, isoFLOP curves, compute-optimal frontier, posterior predictive check) are plain
matplotlib. Bands are computed draw by draw: the law's expected loss (parameter uncertainty) and
a new run's loss (seed noise included, as in :meth:`Posterior.predict`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bayescale.core import format as fmt
from bayescale.core.errors import BayescaleError
from bayescale.core.intervals import interval
from bayescale.data.compute import compute, tokens_for
from bayescale.data.runs import FAMILY
from bayescale.law.families import pooled_names
from bayescale.posterior.predictive import new_run_log, noise_draws

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayescale.posterior.posterior import Posterior

Target = tuple[float, float]
#: Draws used for bands (a random subset when the posterior holds more): enough for a 90% band.
BAND_DRAWS = 1000
#: Draws behind each point of the frontier's constrained curves (medians only).
CURVE_DRAWS = 200
LOG_SCALED = ("A", "B")
LOSS_LABEL = "loss (nats)"
COMPUTE_LABEL = "compute C = 6ND (FLOP)"


# ------------------------------------------------------------------ helpers
def _colormap(name: str) -> Any:
    """A matplotlib colormap without its palest end (yellow lines vanish on white)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    return ListedColormap(colormaps[name](np.linspace(0.0, 0.85, 256)))


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _log_x(ax: Any) -> None:
    """Log x axis whose labels stay apart in a narrow panel.

    With fewer than two powers of ten in view matplotlib labels minor ticks at 1, 2, 3, 4, 6 x
    10^k, which overlap in a third of a report's width; here only 2 and 5 x 10^k are labelled,
    and with two or more powers of ten only the powers.
    """
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    axis = ax.xaxis

    def minor_label(value: float, _: int) -> str:
        lo, hi = np.log10(sorted(axis.get_view_interval()))
        power = np.floor(np.log10(value) + 1e-9)
        coef = value / 10**power
        if np.floor(hi) - np.floor(np.nextafter(lo, -np.inf)) >= 2 or not (
                np.isclose(coef, 2.0) or np.isclose(coef, 5.0)):
            return ""
        return f"$\\mathdefault{{{coef:.0f}\\times10^{{{power:.0f}}}}}$"

    axis.set_minor_formatter(FuncFormatter(minor_label))


def _symlog_ticks(low: float, high: float) -> list[float]:
    """Ticks of a symmetric-log axis in %: 0, +-1, 2, 5, 10, 20, 50 ... within [low, high].

    Examples
    --------
    >>> _symlog_ticks(-3.0, 12.0)
    [-2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0]
    """
    steps = [m * 10.0**k for k in range(6) for m in (1.0, 2.0, 5.0)]
    ticks = sorted({0.0, *steps, *(-v for v in steps)})
    return [t for t in ticks if low <= t <= high]


def _band_draws(post: Posterior, random_seed: int, family: str | None) -> dict[str, np.ndarray]:
    draws = post.draws(family=family)
    size = next(iter(draws.values())).size
    if size <= BAND_DRAWS:
        return draws
    keep = np.random.default_rng(random_seed).choice(size, BAND_DRAWS, replace=False)
    return {k: v[keep] for k, v in draws.items()}


def _fitted(
    post: Posterior, family: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """N, D, C = 6ND and the loss of each fitted row (of ``family``'s rows, if it is fitted)."""
    data = post.data
    if family in post.families:
        data = data[data[FAMILY] == family]
    n = data["params"].to_numpy(float)
    d = data["tokens"].to_numpy(float)
    return n, d, compute(n, d), data["loss"].to_numpy(float)


def _bands(
    post: Posterior, draws: dict[str, np.ndarray], n: np.ndarray, d: np.ndarray, level: float,
    random_seed: int, family: str | None = None,
) -> dict[str, np.ndarray]:
    """Median law, law band and new-run band of the loss along the points (n, d); the new-run
    band is :meth:`Posterior.predict`'s interval (seed noise and the law's learned
    extrapolation error included) for ``draws`` of ``family``."""
    mean_log = post.law.log_loss(draws, n, d)
    _, new_log = new_run_log(mean_log, draws, n, d, post.calibration_for(family), random_seed)
    law_lo, law_hi = interval(np.exp(mean_log), level)  # on L, as predict summarises
    new_lo, new_hi = interval(np.exp(new_log), level)
    return {"median": np.exp(np.median(mean_log, axis=0)), "law_lo": law_lo,
            "law_hi": law_hi, "new_lo": new_lo, "new_hi": new_hi}


def _shade_beyond(ax: Any, max_compute: float, upper: float) -> None:
    if upper > max_compute:
        ax.axvspan(max_compute, upper, color="0.5", alpha=0.08, lw=0,
                   label="beyond the largest fitted run")


def _clusters(compute: np.ndarray) -> list[float]:
    """Budgets of an isoFLOP design: compute values (to 0.1 decade) shared by >= 3 rows, when
    such groups hold at least 80% of the rows and number 2 to 10; otherwise none."""
    key = np.round(np.log10(compute) * 10)
    values, counts = np.unique(key, return_counts=True)
    big = values[counts >= 3]
    held = np.isin(key, big).mean()
    if 2 <= big.size <= 10 and held >= 0.8:
        return [float(np.exp(np.log(compute[key == k]).mean())) for k in big]
    return []


def _whose_law(post: Posterior, family: str | None) -> str:
    """Which law a family fit's law figure draws, for its title (empty for one law)."""
    if not post.families:
        return ""
    if family in post.families:
        return f"; family {family}: its law and its runs"
    return (f"; a new family's law (population of the {len(post.families)} families) over "
            "every family's runs")


def _annotate_target(ax: Any, x: float, pred: Any, n: float, d: float) -> None:
    """Label a target's error bar with its size and predicted interval, above its upper end
    and clear of its cap (half width ``capsize`` = 4 points); over the other markers."""
    text = (f"{fmt.size(n)} params, {fmt.size(d)} tokens\n"
            f"{fmt.interval(pred.loss_median, pred.loss_lower, pred.loss_upper)}")
    ax.annotate(text, (x, pred.loss_upper), textcoords="offset points", xytext=(-9, 3),
                ha="right", va="bottom", fontsize=8, color="crimson", zorder=6,
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8, "lw": 0})


# ---------------------------------------------------------- arviz-plots part
def _population_law(post: Posterior) -> dict[str, Any]:
    """A family fit's population-mean law (its ``pop_*`` coordinates) in the law's parameters,
    over chain and draw; with ``--separate-e`` (no population E), each family's own E."""
    posterior = post.tree["posterior"].dataset
    theta = {k: posterior[f"pop_{k}"] for k in pooled_names(post.tree)}
    own_e = post.law.own_e_coordinate
    if own_e not in theta:  # named by families.pymc_family_log_loss
        theta[own_e] = posterior[f"family_{own_e}"]
    centring = post.meta["centring"]
    return post.law.from_pooled(theta, centring["n0"], centring["d0"])


def _parameter_tree(post: Posterior, with_prior: bool, population: bool = False) -> Any:
    """DataTree of E, log10 A, log10 B, alpha, beta (posterior, optionally prior draws).

    A family fit gives each family's parameters (dim ``family``), or with ``population`` its
    population-mean law's. The prior draws are the law's own (:meth:`Law.prior_draws`: a prior
    at a reference size converted to A and B): the prior of the population-mean law; a family's
    own law has a wider one (the families' spread added).
    """
    import xarray as xr

    def name(p: str) -> str:
        return f"log10 {p}" if p in LOG_SCALED else p

    def value(p: str, x: Any) -> Any:
        return np.log10(x) if p in LOG_SCALED else x

    values = (_population_law(post) if population and post.families
              else post.tree["posterior"].dataset)
    # keep the chain and draw coordinates: arviz-plots colours chains by them
    groups = {"posterior": xr.Dataset({name(p): value(p, values[p])
                                       for p in post.law.parameters})}
    if "sample_stats" in post.tree.children and "diverging" in post.tree["sample_stats"].dataset:
        groups["sample_stats"] = xr.Dataset(
            {"diverging": post.tree["sample_stats"].dataset["diverging"]})
    if with_prior:
        draws = post.law.prior_draws(post.priors, np.random.default_rng(0), 4000)
        groups["prior"] = xr.Dataset({
            name(p): (("chain", "draw"), value(p, draws[p]).reshape(1, -1))
            for p in post.law.parameters
        })
    return xr.DataTree.from_dict(groups)


def _any_grid() -> Any:
    """Lift arviz-plots' cap on the subplots of one figure (``plot.max_subplots``) for a call.

    The cap guards interactive use against huge grids drawn by mistake; these figures size
    their grids on purpose, from the law's parameters (a pair plot of 7 is 49 panels) and a
    family fit's families. ``rc_context`` restores the setting on exit, so it is never changed
    for the rest of the process.
    """
    from arviz_base import rc_context

    return rc_context(rc={"plot.max_subplots": None})


def _collection_figure(pc: Any, title: str) -> Figure:
    import matplotlib.pyplot as plt

    fig = pc.viz["figure"].item()
    plt.close(fig)  # arviz-plots opens it through pyplot; the caller owns it now
    fig.suptitle(title)
    fig.set_layout_engine("constrained")  # room for the title above the panels' titles
    return fig


def _panels(pc: Any) -> list[tuple[str, dict[str, Any], Any]]:
    """(variable, coordinates, axes) of every panel of a PlotCollection (a variable with a
    ``family`` dimension has one panel per family)."""
    out = []
    for name, axes in pc.viz["plot"].data_vars.items():
        for point in itertools.product(*(axes[dim].values for dim in axes.dims)):
            where = dict(zip(axes.dims, point, strict=True))
            out.append((str(name), where, axes.sel(where).item()))
    return out


def plot_priors(post: Posterior) -> Figure:
    """Posterior densities of the law's parameters over their priors.

    A posterior much narrower than its prior: the data decide. One that follows its prior: the
    data say little about that parameter.
    """
    import arviz_plots as azp

    tree = _parameter_tree(post, with_prior=True, population=True)
    posterior = tree["posterior"].dataset
    columns = len(post.law.parameters)
    panels = sum(v.size // (v.sizes["chain"] * v.sizes["draw"]) for v in posterior.values())
    with _any_grid():
        pc = azp.plot_prior_posterior(
            tree, backend="matplotlib", col_wrap=columns,
            figure_kwargs={"figsize": (15, 3.4 * -(-panels // columns))},
        )
    for name, where, ax in _panels(pc):
        prior = np.asarray(tree["prior"].dataset[name]).ravel()
        drawn = np.asarray(posterior[name].sel(where)).ravel()
        lo, hi = np.quantile(prior, [0.005, 0.995])
        ax.set_xlim(min(lo, drawn.min()), max(hi, drawn.max()))
    whose = "the families' population-mean law" if post.families else "the law"
    return _collection_figure(pc, f"Posterior (data) over prior: densities of the parameters "
                                  f"of {whose}")


def plot_trace(post: Posterior) -> Figure:
    """Trace and density of each chain: chains that disagree show as separate curves."""
    import arviz_plots as azp

    with _any_grid():
        pc = azp.plot_trace_dist(_parameter_tree(post, with_prior=False), backend="matplotlib",
                                 figure_kwargs={"figsize": (12, 9)})
    return _collection_figure(pc, f"Trace and density per chain; {_diagnostics_line(post)}")


def plot_rank(post: Posterior) -> Figure:
    """Fractional-rank ECDFs per chain: curves outside the envelope flag poor mixing."""
    import arviz_plots as azp

    if post.tree["posterior"].dataset.sizes["chain"] < 2:
        raise BayescaleError("rank plots compare chains, and this fit has one: fit with "
                             "--chains 2 or more")
    with _any_grid():
        pc = azp.plot_rank(_parameter_tree(post, with_prior=False), backend="matplotlib",
                           col_wrap=len(post.law.parameters),
                           figure_kwargs={"figsize": (15, 3.4)})
    return _collection_figure(pc, f"Rank plots per chain; {_diagnostics_line(post)}")


def plot_pair(post: Posterior) -> Figure:
    """Pairwise scatter of the parameters: ridges are the correlations (ln A with alpha, ln B
    with beta, E with both) that leave single parameters poorly identified.
    """
    import arviz_plots as azp

    tree = _parameter_tree(post, with_prior=False, population=True)
    posterior = tree["posterior"].dataset
    # a family fit's population-mean law; with --separate-e each family's E (left out) is not
    names = [str(n) for n in posterior.data_vars if "family" not in posterior[n].dims]
    with _any_grid():
        pc = azp.plot_pair(tree, var_names=names, backend="matplotlib",
                           figure_kwargs={"figsize": (11, 11)},
                           visuals={"scatter": {"alpha": 0.15, "s": 4}})
    corr = np.corrcoef([np.asarray(posterior[n]).ravel() for n in names])
    upper = np.abs(np.triu(corr, 1))
    pairs = [np.unravel_index(k, corr.shape) for k in np.argsort(upper, axis=None)[::-1][:3]]
    strongest = ", ".join(f"{names[i]} ~ {names[j]} r = {corr[i, j]:.3f}" for i, j in pairs)
    whose = " of the families' population-mean law" if post.families else ""
    return _collection_figure(pc, f"Pair plot of the posterior{whose}; strongest correlations: "
                                  f"{strongest}")


def _diagnostics_line(post: Posterior) -> str:
    diag = post.meta.get("diagnostics")
    if not diag:
        return "no sampler diagnostics stored"
    return (f"max R-hat {fmt.statistic(diag['max_r_hat'], '.3f')}, min ESS bulk "
            f"{fmt.statistic(diag['min_ess_bulk'], '.0f')}, "
            f"{diag['divergences']} divergences")


# ------------------------------------------------------------ matplotlib part
def plot_loss_compute(
    post: Posterior,
    targets: Sequence[Target] = (),
    *,
    level: float = 0.9,
    max_sizes: int = 5,
    random_seed: int = 0,
    family: str | None = None,
) -> Figure:
    """Loss against compute: the fitted runs, and for several model sizes the posterior-median
    law with its band and a new run's predictive band, extended to the targets.

    Parameters
    ----------
    post : Posterior
    targets : sequence of (N, D)
        Planned runs: their model size gets a curve and their predicted loss an error bar.
    level : float
        Credible level of the bands.
    max_sizes : int
        At most this many model sizes from the data (spread evenly in ln N).
    random_seed : int
        Seed of the draw subset and the noise draws.
    family : str, optional
        In a family fit, the family whose law and runs are drawn; a new family's law (the
        population predictive) over every family's runs when None or unseen.
    """
    from matplotlib.colors import LogNorm

    draws = _band_draws(post, random_seed, family)
    n, _, c, loss = _fitted(post, family)
    sizes = np.unique(n)
    if sizes.size > max_sizes:
        wanted = np.quantile(np.log(sizes), np.linspace(0, 1, max_sizes))
        sizes = np.unique([sizes[np.argmin(np.abs(np.log(sizes) - w))] for w in wanted])
    t_n = np.array([t[0] for t in targets], float)
    t_c = np.array([compute(t[0], t[1]) for t in targets], float)
    all_n = np.concatenate([sizes, t_n])
    norm = LogNorm(min(n.min(), all_n.min()), max(n.max(), all_n.max()) * 1.0001)
    cmap = _colormap("viridis")
    upper = max(c.max(), t_c.max() if t_c.size else 0.0) * 3
    grid = np.geomspace(c.min() / 2, upper, 160)

    fig, (ax,) = _figure(11, 6.5)
    lows, highs = [loss.min()], [np.quantile(loss, 0.98)]
    for size in np.unique(all_n):
        band = _bands(post, draws, np.full(grid.size, size), tokens_for(grid, size), level,
                      random_seed, family)
        color = cmap(norm(size))
        ax.fill_between(grid, band["new_lo"], band["new_hi"], color=color, alpha=0.12, lw=0)
        ax.fill_between(grid, band["law_lo"], band["law_hi"], color=color, alpha=0.3, lw=0)
        ax.plot(grid, band["median"], color=color, lw=1.6, label=f"N = {fmt.size(size)}")
        lows.append(band["new_lo"].min())
    points = ax.scatter(c, loss, c=n, cmap=cmap, norm=norm, s=14, edgecolor="k",
                        linewidth=0.3, zorder=3, label="fitted runs")
    for (tn, td), tc in zip(targets, t_c, strict=True):
        pred = post.predict(tn, td, level=level, random_seed=random_seed,
                            family=family).iloc[0]
        err = [[pred.loss_median - pred.loss_lower], [pred.loss_upper - pred.loss_median]]
        ax.errorbar(tc, pred.loss_median, yerr=err, fmt="*", color="crimson", ms=13,
                    capsize=4, zorder=4)
        _annotate_target(ax, tc, pred, tn, td)
        lows.append(pred.loss_lower)
        highs.append(pred.loss_upper)
    _shade_beyond(ax, c.max(), upper)
    _log_x(ax)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(min(lows) * 0.98, max(highs) * 1.04)
    ax.set_xlabel(COMPUTE_LABEL)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(f"Loss against compute per model size: median law, {fmt.percent(level)} law band "
                 f"(dark) and new-run band (light){_whose_law(post, family)}", wrap=True)
    fig.colorbar(points, ax=ax, label="parameters N")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def plot_isoflop(
    post: Posterior,
    targets: Sequence[Target] = (),
    *,
    budgets: Sequence[float] | None = None,
    level: float = 0.9,
    random_seed: int = 0,
    family: str | None = None,
) -> Figure:
    """IsoFLOP curves: loss against N at fixed compute, with bands and the optimum N* of each.

    Parameters
    ----------
    post : Posterior
    targets : sequence of (N, D)
        Planned runs: their budget gets a curve and the plan a marker on it.
    budgets : sequence of float, optional
        Compute budgets (FLOP); default: the budgets of an isoFLOP design in the data, else
        whole decades across the fitted range.
    level : float
        Credible level of the bands and of N*'s interval.
    random_seed : int
        Seed of the draw subset and the noise draws.
    family : str, optional
        In a family fit, the family whose law and runs are drawn; a new family's law (the
        population predictive) over every family's runs when None or unseen.
    """
    from matplotlib.colors import LogNorm

    draws = _band_draws(post, random_seed, family)
    n, _, c, loss = _fitted(post, family)
    if budgets is None:
        budgets = _clusters(c) or list(
            10.0 ** np.arange(np.ceil(np.log10(c.min())), np.floor(np.log10(c.max())) + 1))
    t_c = [compute(tn, td) for tn, td in targets]
    every = np.unique(np.concatenate([np.asarray(budgets, float), np.asarray(t_c, float)]))
    norm = LogNorm(min(c.min(), every.min()), max(c.max(), every.max()) * 1.0001)
    cmap = _colormap("plasma")

    fig, (ax,) = _figure(11, 6.5)
    lows, highs = [loss.min()], [np.quantile(loss, 0.98)]
    for budget in every:
        n_opt, d_opt = post.law.optimal(draws, budget)
        centre = float(np.median(n_opt))
        near = np.abs(np.log(c / budget)) < np.log(1.5)
        span = np.exp(np.abs(np.log(n[near] / centre)).max()) * 1.5 if near.any() else 20.0
        span = max(span, 8.0)
        grid = np.geomspace(centre / span, centre * span, 120)
        band = _bands(post, draws, grid, tokens_for(budget, grid), level, random_seed, family)
        color = cmap(norm(budget))
        ax.fill_between(grid, band["new_lo"], band["new_hi"], color=color, alpha=0.12, lw=0)
        ax.fill_between(grid, band["law_lo"], band["law_hi"], color=color, alpha=0.3, lw=0)
        ax.plot(grid, band["median"], color=color, lw=1.6, label=fmt.flop(budget))
        lo, hi = interval(n_opt, level)
        at_opt = np.exp(np.median(post.law.log_loss(draws, n_opt[:, None], d_opt[:, None])))
        ax.errorbar(centre, at_opt, xerr=[[centre - lo], [hi - centre]], fmt="o", color=color,
                    mec="k", capsize=3, zorder=4)
        lows.append(band["law_lo"].min())
        highs.append(float(band["median"][[0, -1]].min()))
    points = ax.scatter(n, loss, c=c, cmap=cmap, norm=norm, s=14, edgecolor="k",
                        linewidth=0.3, zorder=3, label="fitted runs")
    for tn, td in targets:
        pred = post.predict(tn, td, level=level, random_seed=random_seed,
                            family=family).iloc[0]
        err = [[pred.loss_median - pred.loss_lower], [pred.loss_upper - pred.loss_median]]
        ax.errorbar(tn, pred.loss_median, yerr=err, fmt="*", color="crimson", ms=13,
                    capsize=4, zorder=5)
        _annotate_target(ax, tn, pred, tn, td)
        lows.append(pred.loss_lower)
        highs.append(pred.loss_upper)
    _log_x(ax)
    ax.set_ylim(min(lows) * 0.98, max(highs) * 1.06)
    ax.set_xlabel("parameters N (D = C / 6N)")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(f"IsoFLOP curves: median law, {fmt.percent(level)} law band (dark), new-run band "
                 f"(light); dots: N* with its interval{_whose_law(post, family)}", wrap=True)
    fig.colorbar(points, ax=ax, label=COMPUTE_LABEL)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    ax.grid(alpha=0.3)
    return fig


def plot_frontier(
    post: Posterior,
    targets: Sequence[Target] = (),
    *,
    level: float = 0.9,
    random_seed: int = 0,
    family: str | None = None,
    unique_tokens: float | None = None,
    inference_tokens: float | None = None,
) -> Figure:
    """The compute-optimal frontier N*(C), D*(C) and D*/N* with bands, over the fitted range
    and beyond to the targets; ``family`` as in :func:`plot_loss_compute`. With
    ``unique_tokens`` and/or ``inference_tokens`` the constrained optima's medians beside it
    (:mod:`bayescale.posterior.limits`): the best run with that many unique tokens, and the run
    reaching the compute-optimal loss at C with the least 6ND + 2NT.

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> from bayescale.posterior.posterior import Posterior
    >>> fig = plot_frontier(Posterior.from_draws(known_draws()), targets=[(70e9, 1.4e12)])
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['optimal parameters N*', 'optimal tokens D*', 'optimal tokens per parameter D*/N*']
    """
    draws = _band_draws(post, random_seed, family)
    n, d, c, loss = _fitted(post, family)
    t_c = [compute(tn, td) for tn, td in targets]
    upper = max([c.max(), *t_c]) * 10
    grid = np.geomspace(c.min() / 10, upper, 80)
    curves = {"N*": [], "D*": [], "D*/N*": []}
    for budget in grid:
        n_opt, d_opt = post.law.optimal(draws, budget)
        for key, values in (("N*", n_opt), ("D*", d_opt), ("D*/N*", d_opt / n_opt)):
            lo, hi = interval(values, level)
            curves[key].append((np.median(values), lo, hi))
    constrained = _constrained_curves(post, draws, grid, unique_tokens, inference_tokens)
    best = []
    for budget in _clusters(c):
        rows = np.flatnonzero(np.abs(np.log(c / budget)) < np.log(1.3))
        best.append(rows[np.argmin(loss[rows])])

    fig, axes = _figure(15, 5.2, ncols=3)
    labels = {"N*": "optimal parameters N*", "D*": "optimal tokens D*",
              "D*/N*": "optimal tokens per parameter D*/N*"}
    for ax, (key, rows) in zip(axes, curves.items(), strict=True):
        med, lo, hi = (np.array(x) for x in zip(*rows, strict=True))
        ax.fill_between(grid, lo, hi, color="tab:blue", alpha=0.25, lw=0,
                        label=f"{fmt.percent(level)} interval")
        ax.plot(grid, med, color="tab:blue", lw=1.8, label="posterior median")
        ax.axvspan(c.min(), c.max(), color="tab:green", alpha=0.08, lw=0,
                   label="fitted compute range")
        if best:
            fitted = {"N*": n[best], "D*": d[best], "D*/N*": d[best] / n[best]}[key]
            ax.scatter(c[best], fitted, color="k", s=18, zorder=3,
                       label="lowest-loss run per budget")
        for label, (at, values), style in constrained:
            line = ax.plot(at, values[key], style, lw=1.6, label=label)[0]
            beyond = np.asarray(values["beyond"], dtype=bool)
            if beyond.any():
                ax.scatter(at[beyond], np.asarray(values[key])[beyond], marker="x", s=28,
                           color=line.get_color(), zorder=3,
                           label=f"beyond the {values['fitted']:.3g} epochs fitted "
                                 "(the law's form, not measured)")
        for (tn, td), tc in zip(targets, t_c, strict=True):
            value = {"N*": tn, "D*": td, "D*/N*": td / tn}[key]
            ax.scatter([tc], [value], marker="*", s=160, color="crimson", zorder=4,
                       label=f"plan: {fmt.size(tn)} params, {fmt.size(td)} tokens")
        _log_x(ax)
        # D*/N* is nearly flat without limits; the constrained runs' can span decades
        ax.set_yscale("linear" if key == "D*/N*" and not constrained else "log")
        ax.set_xlim(grid[0], grid[-1])
        ax.set_xlabel(COMPUTE_LABEL)
        ax.set_ylabel(labels[key])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Compute-optimal allocation under C = 6ND, {fmt.percent(level)} credible bands"
                 f"{_whose_law(post, family)}")
    return fig


def _constrained_curves(post: Posterior, draws: dict[str, np.ndarray], grid: np.ndarray,
                        unique_tokens: float | None, inference_tokens: float | None) -> list:
    """Medians of the data-limited and inference-aware optima at 16 budgets spanning the grid,
    each over :data:`CURVE_DRAWS` of the draws (a median needs fewer than a band, and the
    inference search costs a bisection per point). With both limits, the inference-aware
    run is under the data limit too and aims at the best loss under it, as ``optimal``."""
    from bayescale.posterior.limits import (
        best_loss,
        beyond_fitted,
        data_limited_draws,
        fitted_epochs,
        inference_draws,
    )

    at = grid[np.linspace(0, grid.size - 1, 16).round().astype(int)]
    size = next(iter(draws.values())).size
    if size > CURVE_DRAWS:  # spread over every chain
        keep = np.linspace(0, size - 1, CURVE_DRAWS).round().astype(int)
        draws = {k: v[keep] for k, v in draws.items()}
    fitted = fitted_epochs(post)

    def medians(rows: list[dict[str, np.ndarray]]) -> dict[str, Any]:
        """The curve's medians, and where its epochs (D / U) pass the fitted runs' most."""
        out = {key: [float(np.nanmedian(r[name])) for r in rows]
               for key, name in (("N*", "params"), ("D*", "tokens"),
                                 ("D*/N*", "tokens_per_param"))}
        epochs = np.array(out["D*"]) / (unique_tokens or np.inf)
        return {**out, "fitted": fitted, "beyond": beyond_fitted(epochs, fitted)}

    out = []
    if unique_tokens is not None:
        rows = [data_limited_draws(post.law, draws, float(b), unique_tokens) for b in at]
        out.append((f"with {fmt.size(unique_tokens)} unique tokens (median)",
                    (at, medians(rows)), "--"))
    if inference_tokens is not None:
        rows = [inference_draws(post.law, draws, inference_tokens,
                                best_loss(post.law, draws, float(budget), unique_tokens),
                                unique_tokens) for budget in at]
        limit = "" if unique_tokens is None else f", {fmt.size(unique_tokens)} unique tokens"
        out.append((f"serving {fmt.size(inference_tokens)} tokens, same loss{limit} (median)",
                    (at, medians(rows)), ":"))
    return out


def plot_ppc(post: Posterior, *, level: float = 0.9, random_seed: int = 0) -> Figure:
    """Posterior predictive check: each fitted run's residual against N, D and compute, with
    its new-run predictive interval; runs outside it are marked.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter

    n, d, c, loss = _fitted(post)
    mean_log = post.row_log_law()
    centre = np.median(mean_log, axis=0)
    new_log = mean_log + _row_noise(post, np.random.default_rng(random_seed))
    lo, hi = interval(new_log, level)
    observed = np.log(loss)
    resid = 100 * (np.exp(observed - centre) - 1)
    lo_pct, hi_pct = 100 * (np.exp(lo - centre) - 1), 100 * (np.exp(hi - centre) - 1)
    outside = (observed < lo) | (observed > hi)

    fig, axes = _figure(15, 4.8, ncols=3)
    for ax, x, label in zip(axes, (n, d, c), ("parameters N", "tokens D", COMPUTE_LABEL),
                            strict=True):
        ax.vlines(x, lo_pct, hi_pct, color="0.6", lw=0.8, alpha=0.6,
                  label=f"{fmt.percent(level)} new-run interval")
        ax.scatter(x[~outside], resid[~outside], s=12, color="tab:blue", zorder=3,
                   label="inside")
        ax.scatter(x[outside], resid[outside], s=22, color="crimson", marker="D", zorder=4,
                   label="outside")
        ax.axhline(0.0, color="k", lw=0.8)
        # symmetric log: the bulk within a few % stays readable beside large outliers
        ax.set_yscale("symlog", linthresh=2.0)
        low, high = (1.5 * min(resid.min(), lo_pct.min()), 1.5 * max(resid.max(), hi_pct.max()))
        ax.set_ylim(low, high)
        ax.yaxis.set_major_locator(FixedLocator(_symlog_ticks(low, high)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        _log_x(ax)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("observed / median law - 1 (%, symmetric log scale)")
    axes[0].legend(fontsize=8)
    inside = int((~outside).sum())
    whose = "; each row under its family's law" if post.families else ""
    fig.suptitle(f"Posterior predictive check: {inside} of {n.size} fitted rows "
                 f"({inside / n.size:.0%}) inside their {fmt.percent(level)} new-run "
                 f"interval{whose}")
    return fig


def _row_noise(post: Posterior, rng: np.random.Generator) -> np.ndarray:
    """A new run's ln-scale noise at each fitted row, per draw (draws x rows); in a family fit,
    with the noise of the row's family."""
    if not post.families:
        return noise_draws(post.draws(), len(post.data), rng)
    out = np.empty((post.n_draws, len(post.data)))
    family = post.data[FAMILY].to_numpy()
    for name in post.families:
        mine = family == name
        out[:, mine] = noise_draws(post.draws(family=name), int(mine.sum()), rng)
    return out


def plot_design(
    post: Posterior,
    targets: Sequence[Target] = (),
    *,
    level: float = 0.9,
    random_seed: int = 0,
    family: str | None = None,
    budget: float | None = None,
    runs: int = 1,
    result: Any = None,
) -> Figure:
    """Candidate runs on the N-D plane coloured by expected reduction per FLOP of the first
    target's interval (:func:`bayescale.evaluate.design.design`), with the fitted runs, the target
    and the chosen batch marked. Without targets, the target is the median compute-optimal run
    at :data:`~bayescale.evaluate.design.DEFAULT_SCALE_UP` times the largest fitted compute;
    ``budget`` defaults to :data:`~bayescale.evaluate.design.DEFAULT_BUDGET_SHARE` of the
    target's compute; give a ``result`` (a ``Design``) to draw it without recomputing.
    """
    from matplotlib.colors import LogNorm

    from bayescale.evaluate.design import DEFAULT_BUDGET_SHARE, DEFAULT_SCALE_UP, design

    if result is None:
        if targets:
            tn, td = targets[0]
        else:
            _, _, c, _ = _fitted(post, family)
            best = post.optimal(compute=DEFAULT_SCALE_UP * c.max(), family=family).iloc[0]
            tn, td = float(best["params_median"]), float(best["tokens_median"])
        budget = budget if budget is not None else DEFAULT_BUDGET_SHARE * compute(tn, td)
        result = design(post, tn, td, budget, runs=runs, level=level, random_seed=random_seed,
                        family=family)
    tn, td = result.target["params"], result.target["tokens"]
    n, d, _, _ = _fitted(post, family)
    cand_n = np.array([c.params for c in result.candidates])
    cand_d = np.array([c.tokens for c in result.candidates])
    value = np.array([c.reduction_per_flop for c in result.candidates]) * 1e18
    fig, axes = _figure(7.5, 5.5)
    ax = axes[0]
    positive = value > 0
    floor = value[positive].min() if positive.any() else 1e-12
    points = ax.scatter(cand_n, cand_d, c=np.where(positive, value, floor), s=70,
                        cmap=_colormap("viridis"), norm=LogNorm(), marker="s", zorder=2,
                        label="candidate runs")
    fig.colorbar(points, ax=ax, label=f"expected reduction of the "
                                      f"{fmt.percent(result.level)} width per 1e18 FLOP (nats)")
    ax.scatter(n, d, color="k", s=14, zorder=3, label="fitted runs")
    batch = result.batch
    if batch:
        ax.scatter([c.params for c in batch], [c.tokens for c in batch], s=220,
                   facecolors="none", edgecolors="crimson", linewidths=1.8, zorder=4,
                   label=f"chosen batch ({len(batch)})")
    ax.scatter([tn], [td], marker="*", s=260, color="crimson", zorder=5,
               label=f"target: {fmt.size(tn)} params, {fmt.size(td)} tokens")
    line_n = np.geomspace(min(n.min(), cand_n.min()) / 2, max(tn, cand_n.max()) * 2, 50)
    ax.plot(line_n, tokens_for(result.budget, line_n), ls="--", color="0.5", lw=1,
            label=f"budget {fmt.flop(result.budget)} (C = 6ND)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(min(d.min(), cand_d.min()) / 2, max(td, cand_d.max()) * 2)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("tokens D")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Which runs to add: expected {fmt.percent(result.level)} width now "
                 f"{result.width_now:.3g} nats"
                 + (f", after the batch {result.batch_effect.expected_width:.3g}"
                    if result.batch_effect is not None else ""))
    return fig


#: Figure kind (as in ``bayescale plot FIT KIND``) -> function.
FIGURES: dict[str, Callable[..., Figure]] = {
    "priors": plot_priors,
    "trace": plot_trace,
    "rank": plot_rank,
    "pair": plot_pair,
    "loss-compute": plot_loss_compute,
    "isoflop": plot_isoflop,
    "frontier": plot_frontier,
    "ppc": plot_ppc,
    "design": plot_design,
}
#: Kinds that draw planned runs (``targets``).
WITH_TARGETS = ("loss-compute", "isoflop", "frontier", "design")


def plot(post: Posterior, kind: str, **kwargs: Any) -> Figure:
    """One figure of :data:`FIGURES` (``bayescale plot FIT KIND``) as a matplotlib Figure.

    Examples
    --------
    >>> from bayescale import Posterior
    >>> from bayescale.law.simulate import known_draws
    >>> plot(Posterior.from_draws(known_draws()), "histogram")
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: unknown figure 'histogram': use one of priors, ...
    """
    if kind not in FIGURES:
        raise BayescaleError(f"unknown figure '{kind}': use one of {', '.join(FIGURES)}")
    return FIGURES[kind](post, **kwargs)
