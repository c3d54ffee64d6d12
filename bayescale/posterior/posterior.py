"""The fitted posterior and the questions asked of it, answered draw by draw.

A :class:`Posterior` wraps the tree of one posterior file (its schema:
:mod:`bayescale.posterior.store`), the file that every command after ``fit`` reads.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayescale.core.diagnostics import chain_stats
from bayescale.core.errors import BayescaleError
from bayescale.core.intervals import KINDS, check_held, interval, summarize
from bayescale.data.compute import compute as flop_of
from bayescale.data.compute import params_for, tokens_for
from bayescale.data.ranges import distance, ranges_of
from bayescale.data.runs import FAMILY, parse_size
from bayescale.law.calibration import Calibration
from bayescale.law.families import family_draws, family_names, family_noise_draws, family_summary
from bayescale.law.laws import Law, get_law
from bayescale.law.likelihoods import likelihood_of
from bayescale.law.priors import NOISE_PRIORS, Prior, from_dict
from bayescale.posterior import store
from bayescale.posterior.limits import fitted_epochs
from bayescale.posterior.optimal import exponent_draws, optimal_draws
from bayescale.posterior.predictive import (
    discrepancy_share,
    floor_share,
    new_run_log,
    optimum_new_run_log,
)
from bayescale.posterior.risk import RiskReview, Thresholds, review
from bayescale.posterior.warnings import prior_pull, runs_off_the_law

#: Draws x targets that :meth:`Posterior.predict` holds at once (one chunk of targets): about
#: 8 MB per float64 array, so memory does not grow with the number of targets.
PREDICT_CHUNK_VALUES = 1_000_000


def _check_draws(draws: dict[str, np.ndarray], positive: tuple[str, ...]) -> None:
    """Refuse draws no question can use: not finite, a law parameter or nu at or below 0, a
    noise scale below 0 (a fit under priors that allowed such values, by an earlier version)."""
    for name, values in draws.items():
        values = np.asarray(values, dtype=float)
        if name in positive or name == "nu":
            bad, want = ~(values > 0) | ~np.isfinite(values), "positive finite numbers"
        elif name in ("sigma_obs", "seed_noise", "huber_k"):
            bad, want = ~(values >= 0) | ~np.isfinite(values), "finite numbers >= 0"
        else:
            bad, want = ~np.isfinite(values), "finite numbers"
        if bad.any():
            raise BayescaleError(f"{int(bad.sum())} of {values.size} draws of {name} are not "
                                 f"{want} (e.g. {values[bad][0]:.3g}): fitted under a prior "
                                 "that allows impossible values; fit again")


def _check_level(level: float) -> None:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise BayescaleError(f"level must be a number strictly between 0 and 1, got {level!r}")


def _check_seed(random_seed: int) -> None:
    if isinstance(random_seed, bool) or not isinstance(random_seed, (int, np.integer)) \
            or random_seed < 0:
        raise BayescaleError(f"random_seed must be a non-negative integer, got {random_seed!r}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise BayescaleError(f"interval must be one of {', '.join(KINDS)}, got '{kind}'")


def _positive(name: str, values: Any) -> np.ndarray:
    """Sizes as a 1-d float array: numbers, or strings with a unit as the CLI takes ("7B")."""
    raw = np.atleast_1d(np.asarray(values, dtype=object))
    try:
        array = np.array([parse_size(v) if isinstance(v, str) else float(v) for v in raw.ravel()])
    except (TypeError, ValueError):
        raise BayescaleError(f"{name} must be numbers or sizes like 7B, got {values!r}") from None
    if raw.ndim > 1:
        raise BayescaleError(f"{name} must be a number or a 1-d sequence, got shape {raw.shape}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise BayescaleError(f"{name} must be positive and finite, got {values}")
    return array


def _flat(summary: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}_{key}": value for key, value in summary.items()}


class Posterior:
    """A fitted scaling-law posterior with predictions computed draw by draw.

    Parameters
    ----------
    tree : xarray.DataTree
        Posterior, sample stats, data and metadata as written by ``bayescale fit``.
    path : str, optional
        Where it was read from.

    Notes
    -----
    Made by :func:`bayescale.inference.fit.fit` (``result.posterior``), :meth:`load` or
    :meth:`from_draws`. Questions: :meth:`summary`, :meth:`predict`, :meth:`optimal`,
    :meth:`exponents`, :meth:`risk`, each a pandas DataFrame (``risk``: a
    :class:`~bayescale.posterior.risk.RiskReview`); :meth:`save` writes the file. Figures are
    functions of a posterior in :mod:`bayescale.report.plots`.

    Examples
    --------
    >>> from bayescale.law.simulate import known_draws
    >>> post = Posterior.from_draws(known_draws())
    >>> post.n_draws, post.law.name
    (2000, 'chinchilla')
    """

    def __init__(self, tree: Any, path: str | None = None) -> None:
        self.tree = tree
        self.path = path
        try:
            self.meta: dict[str, Any] = store.read_meta(tree)
        except BayescaleError as exc:
            raise BayescaleError(exc.message, path=path) from None
        self.law: Law = get_law(self.meta["law"])

    @property
    def calibration(self) -> Calibration | None:
        """The law's learned discrepancy (:mod:`bayescale.law.calibration`), if the fit stored
        one."""
        stored = self.meta.get("calibration")
        return Calibration.from_dict(stored) if stored else None

    def calibration_for(self, family: str | None) -> Calibration | None:
        """The stored calibration of ``family`` (of the whole fit when None)."""
        stored = self.calibration
        return stored.for_family(family) if stored is not None and family is not None else stored

    # ----------------------------------------------------------------- file
    @classmethod
    def from_draws(
        cls,
        draws: dict[str, Any],
        law: str = "chinchilla",
        data: pd.DataFrame | None = None,
        chains: int = 1,
    ) -> Posterior:
        """A posterior from known draws (tests, or draws made elsewhere).

        ``draws`` maps the law's parameters and ``sigma_obs``, ``seed_noise`` (and ``nu`` for a
        Student-t likelihood, ``huber_k`` for a Huber one, else Normal) to 1-d arrays of equal
        length, ``chains`` chains one after the other; ``data`` is the fitted table (``params``,
        ``tokens``, ``loss``). Without it a single stand-in run (N = 1e9, D = 2e10, loss 2.5)
        marks the fitted range, so that the extrapolation checks have something to measure
        against: give ``data`` for real answers.

        Examples
        --------
        >>> import numpy as np
        >>> d = {"E": np.full(8, 1.8), "A": np.full(8, 480.0), "B": np.full(8, 2000.0),
        ...      "alpha": np.full(8, 0.35), "beta": np.full(8, 0.37),
        ...      "sigma_obs": np.full(8, 0.001), "seed_noise": np.full(8, 0.01)}
        >>> Posterior.from_draws(d).n_draws
        8
        """
        import xarray as xr

        missing = [k for k in (*get_law(law).parameters, "sigma_obs", "seed_noise")
                   if k not in draws]
        if missing:
            raise BayescaleError(f"draws lack {', '.join(missing)}")
        if not (isinstance(chains, int) and chains >= 1):
            raise BayescaleError(f"chains must be a whole number of at least 1, got {chains!r}")
        if any(np.ndim(v) != 1 for v in draws.values()):
            raise BayescaleError("draws must be 1-d arrays, the chains one after the other")
        sizes = {np.asarray(v).size for v in draws.values()}
        if len(sizes) != 1 or sizes.pop() % chains:
            raise BayescaleError(f"draws need one length for every parameter, a multiple of "
                                 f"chains = {chains}")
        arrays = {k: np.asarray(v, dtype=float).reshape(chains, -1) for k, v in draws.items()}
        frame = data if data is not None else pd.DataFrame(
            {"params": [1e9], "tokens": [2e10], "loss": [2.5]})
        meta = {"law": law, "likelihood": likelihood_of(draws),
                "input": {"path": "<draws>", "n_rows": len(frame)}}
        posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in arrays.items()})
        tree = store.assemble(posterior, frame, meta)
        return cls(tree)

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        """Read a posterior file written by ``bayescale fit``.

        Raises :class:`~bayescale.core.errors.BayescaleError` for a missing, damaged or
        foreign file.

        Examples
        --------
        >>> Posterior.load("missing.posterior.nc")
        Traceback (most recent call last):
        bayescale.core.errors.BayescaleError: missing.posterior.nc: no such file
        """
        where = str(path)
        tree = store.read(path)
        try:
            post = cls(tree, where)
            _check_draws(post.draws(), post.law.parameters)
        except BayescaleError as exc:
            raise BayescaleError(exc.message, path=where) from None
        except Exception as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
            raise BayescaleError(
                f"not a bayescale posterior file ({reason})", path=where
            ) from None
        return post

    def save(self, path: str | Path) -> None:
        """Write the posterior to NetCDF atomically (never a half-written file).

        The sha256 of the arrays and of the arrays with the metadata go in the file
        (:func:`bayescale.posterior.store.full_digest`); :meth:`load` checks them.

        Examples
        --------
        >>> import tempfile
        >>> from bayescale.law.simulate import known_draws
        >>> post = Posterior.from_draws(known_draws())
        >>> path = Path(tempfile.mkdtemp()) / "runs.posterior.nc"
        >>> post.save(path)
        >>> Posterior.load(path).n_draws
        2000
        """
        store.write(self.tree, path)
        self.path = str(path)

    # ---------------------------------------------------------------- draws
    def draws(
        self, names: list[str] | None = None, family: str | None = None
    ) -> dict[str, np.ndarray]:
        """Posterior draws flattened over chains: name -> 1-d array.

        By default the law's parameters and the noise parameters. In a family fit, the law's
        parameters and the per-family noise (sigma_obs, seed_noise, nu) are ``family``'s, or a
        new family's (population predictive; noise of a random seen family per draw) when
        ``family`` is None or not among :attr:`families`.

        Examples
        --------
        >>> import numpy as np
        >>> d = {"E": np.full(8, 1.8), "A": np.full(8, 480.0), "B": np.full(8, 2000.0),
        ...      "alpha": np.full(8, 0.35), "beta": np.full(8, 0.37),
        ...      "sigma_obs": np.full(8, 0.001), "seed_noise": np.full(8, 0.01)}
        >>> list(Posterior.from_draws(d, chains=2).draws(["E", "alpha"])["E"].shape)
        [8]
        """
        dataset = self.tree["posterior"].dataset
        if names is None:
            names = [*self.law.parameters, "sigma_obs", "seed_noise"]
            names += [name for name in ("nu", "huber_k") if name in dataset]
        unknown = [name for name in names if name not in dataset and name not in
                   self.law.parameters]
        if unknown:
            raise BayescaleError(f"no draws of {', '.join(unknown)} in this fit; it has "
                                 f"{', '.join(map(str, dataset.data_vars))}")
        if family is not None and not self.families:
            raise BayescaleError(f"this fit has no model families (fitted without --family-col), "
                                 f"so none called '{family}'")
        picked = {}
        if self.families:  # the family's law and noise, or a new family's
            picked = {**family_draws(self.tree, self.law, family, self.meta["centring"],
                                     self.priors),
                      **family_noise_draws(self.tree, names, family)}
        return {name: picked[name] if name in picked else np.asarray(dataset[name]).reshape(-1)
                for name in names}

    def row_draws(self, names: list[str]) -> dict[str, np.ndarray]:
        """Draws of each fitted row's own noise parameters: name -> (draws, rows) array (in a
        family fit, a row's family's; otherwise the same for every row).
        """
        rows = len(self.data)
        if not self.families:
            return {name: np.broadcast_to(values[:, None], (values.size, rows))
                    for name, values in self.draws(names).items()}
        out = {name: np.empty((self.n_draws, rows)) for name in names}
        for family, mine in self._family_rows():
            for name, values in self.draws(names, family=family).items():
                out[name][:, mine] = values[:, None]
        return out

    def row_log_law(self, every: int = 1) -> np.ndarray:
        """ln L of the law at each fitted row, per draw: (draws, rows); in a family fit, each
        row's own family's law. ``every``: only every such draw (a summary of a large table
        needs no more).
        """
        data = self.data

        def thinned(draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {name: values[::every] for name, values in draws.items()}

        if not self.families:
            return self.law.log_loss(thinned(self.draws()), data["params"], data["tokens"],
                                     self.row_covariates())
        out = np.empty((len(range(0, self.n_draws, every)), len(data)))
        for family, mine in self._family_rows():
            out[:, mine] = self.law.log_loss(thinned(self.draws(family=family)),
                                             data["params"][mine], data["tokens"][mine])
        return out

    def row_covariates(self) -> dict[str, np.ndarray] | None:
        """The law's other inputs (unique tokens) at each fitted row; None for a law of N, D."""
        if not self.law.covariates:
            return None
        return {name: self.data[name].to_numpy() for name in self.law.covariates}

    def covariates_for(self, unique_tokens: Any, size: int) -> dict[str, np.ndarray] | None:
        """``unique_tokens`` of planned runs as the law's covariates (None: fresh data).

        Raises :class:`~bayescale.core.errors.BayescaleError` when the law has no data-limit
        term (a law of N and D cannot tell repeated tokens from fresh ones).
        """
        if unique_tokens is None:
            return None
        if "unique_tokens" not in self.law.covariates:
            raise BayescaleError(f"unique tokens need a law with a data-limit term (fit --law "
                                 f"muennighoff); this fit's law, {self.law.name}, has none")
        values = _positive("unique_tokens", unique_tokens)
        if values.size not in (1, size):
            raise BayescaleError("unique_tokens must be one value or one per target")
        return {"unique_tokens": np.broadcast_to(values, (size,)).astype(float)}

    def _family_rows(self) -> list[tuple[str, np.ndarray]]:
        """Each family of a family fit with the mask of its fitted rows."""
        family = self.data[FAMILY].to_numpy()
        return [(name, family == name) for name in self.families]

    @cached_property
    def priors(self) -> dict[str, Prior]:
        """The priors the posterior was fitted with (the law's defaults if the file has none)."""
        if "priors" in self.meta:
            return from_dict(self.meta["priors"])
        return {**self.law.default_priors(), **NOISE_PRIORS}

    @cached_property
    def families(self) -> list[str]:
        """Model families of a family fit (``--family-col``); empty for one law."""
        return family_names(self.tree)

    @property
    def n_draws(self) -> int:
        """Total number of posterior draws (chains x draws)."""
        sizes = self.tree["posterior"].dataset.sizes
        return int(sizes["chain"] * sizes["draw"])

    @cached_property
    def data(self) -> pd.DataFrame:
        """The runs the posterior was fitted on (``params``, ``tokens``, ``loss``, labels)."""
        return store.fitted_data(self.tree)

    def summary(self, level: float = 0.9, kind: str = "eti") -> pd.DataFrame:
        """Median, ``level`` credible interval, mean, sd, R-hat and ESS of each parameter.

        Returns
        -------
        pandas.DataFrame
            One row per parameter (the law's and the noise's); columns ``median``, ``lower``,
            ``upper``, ``mean``, ``sd``, ``r_hat``, ``ess_bulk``, ``ess_tail``.

        Examples
        --------
        >>> from bayescale.law.simulate import known_draws
        >>> post = Posterior.from_draws(known_draws())
        >>> post.summary(level=0.9).loc["alpha", ["median", "lower", "upper"]].round(3).tolist()
        [0.348, 0.337, 0.36]
        """
        _check_level(level)
        check_held(level, self.n_draws)  # as predict: an interval of too few draws is none
        _check_kind(kind)
        if self.families:
            return family_summary(self.tree, self.law, level, kind)
        names = list(self.draws())
        stats = chain_stats(self.tree["posterior"].dataset, names)
        rows = []
        for name, values in self.draws().items():
            lo, hi = interval(values, level, kind)
            rows.append({
                "parameter": name, "median": float(np.median(values)), "lower": float(lo),
                "upper": float(hi), "mean": float(values.mean()), "sd": float(values.std(ddof=1)),
                **{key: float(stats[key][name]) for key in ("r_hat", "ess_bulk", "ess_tail")},
            })
        return pd.DataFrame(rows).set_index("parameter")

    # ------------------------------------------------------------ questions
    def predict(
        self,
        params: Any = None,
        tokens: Any = None,
        compute: Any = None,
        *,
        level: float = 0.9,
        interval_kind: str = "eti",
        random_seed: int = 0,
        discrepancy: bool = True,
        family: str | None = None,
        unique_tokens: Any = None,
    ) -> pd.DataFrame:
        """Predicted loss of planned runs, with credible intervals.

        Give two of ``params`` (N), ``tokens`` (D) and ``compute`` (C = 6 N D); each a number
        or an array of targets. In a family fit, ``family`` names the family (a new family's
        population predictive when None or unseen). ``unique_tokens`` (a law with a data-limit
        term only, :mod:`bayescale.posterior.limits`): the unique tokens U of each run, which
        then repeats its data D / U times (fresh data when omitted).

        Returns
        -------
        pandas.DataFrame
            One row per target: ``params``, ``tokens``, ``compute``; ``loss_*`` for a new run
            (seed noise included) and ``mean_loss_*`` for the law's expected loss (``median``,
            ``lower``, ``upper``); ``seed_floor_share``, the share of the new run's spread that
            more small runs cannot remove; ``extrapolation_decades``, the distance beyond the
            fitted runs; ``discrepancy_share``, the share of the spread that is the law's own
            extrapolation error. With a stored calibration (and ``discrepancy``), ``loss_*``
            include that error and its drift (:mod:`bayescale.law.calibration`); ``mean_loss_*``
            never do: they are the fitted law's mean.

        Examples
        --------
        >>> from bayescale.law.simulate import known_draws
        >>> post = Posterior.from_draws(known_draws())
        >>> frame = post.predict(params=70e9, tokens=1.4e12, level=0.9)
        >>> frame[["loss_median", "loss_lower", "loss_upper"]].round(3)
           loss_median  loss_lower  loss_upper
        0        1.977         1.9       2.054
        """
        _check_level(level)
        check_held(level, self.n_draws)
        _check_kind(interval_kind)
        _check_seed(random_seed)
        n, d, c = resolve_targets(params, tokens, compute)
        draws = self.draws(family=family)
        covariates = self.covariates_for(unique_tokens, n.size)
        stored = self.calibration_for(family)
        # Targets in chunks: each holds (draws x chunk) arrays, so memory stays flat however
        # many targets; a target's draws depend only on it and the seed, not on its chunk.
        step = max(1, PREDICT_CHUNK_VALUES // max(1, self.n_draws))
        parts = [self._predict_chunk(
            draws, slice(i, i + step), n, d, c, covariates, stored, discrepancy, level,
            interval_kind, random_seed) for i in range(0, max(n.size, 1), step)]
        out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        shares = ["seed_floor_share", "discrepancy_share"]
        bad = ~np.isfinite(out[[k for k in out if k.startswith(("loss_", "mean_loss_"))]
                               + shares].to_numpy(float))
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise BayescaleError(
                f"no finite prediction at N = {n[row]:.4g}, D = {d[row]:.4g}: the posterior's "
                "draws give no positive finite loss there (priors that allow impossible "
                "values, such as E or sigma_obs below 0?); fit again with priors on positive "
                "values")
        return out

    def _predict_chunk(self, draws: dict[str, np.ndarray], rows: slice, n: np.ndarray,
                       d: np.ndarray, c: np.ndarray, covariates: dict[str, np.ndarray] | None,
                       stored: Calibration | None, discrepancy: bool, level: float,
                       interval_kind: str, random_seed: int) -> pd.DataFrame:
        """:meth:`predict`'s frame for the targets ``rows``."""
        n, d, c = n[rows], d[rows], c[rows]
        if covariates is not None:
            covariates = {k: v[rows] for k, v in covariates.items()}
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            mean_log = (self.law.log_loss(draws, n, d, covariates) if covariates is not None
                        else self.law.log_loss(draws, n, d))
            law_log, new_log = new_run_log(mean_log, draws, n, d,
                                           stored if discrepancy else None, random_seed,
                                           covariates)
            out = pd.DataFrame({"params": n, "tokens": d, "compute": c})
            if covariates is not None:
                out["unique_tokens"] = covariates["unique_tokens"]
            for prefix, values in (("loss", new_log), ("mean_loss", mean_log)):
                # on L itself: an HDI of ln L mapped back is not the HDI of L
                for key, col in _flat(summarize(np.exp(values), level, interval_kind),
                                      prefix).items():
                    out[key] = col
            out["seed_floor_share"] = floor_share(law_log, new_log, level)
            ranges = (stored.ranges if stored is not None
                      else ranges_of(self.data["params"], self.data["tokens"]))
            unique = None if covariates is None else covariates["unique_tokens"]
            out["extrapolation_decades"] = distance(ranges, n, d, unique)
            out["discrepancy_share"] = discrepancy_share(mean_log, law_log, new_log, level)
        return out

    def optimal(
        self,
        compute: Any = None,
        *,
        params: Any = None,
        tokens: Any = None,
        level: float = 0.9,
        interval_kind: str = "eti",
        random_seed: int = 0,
        discrepancy: bool = True,
        family: str | None = None,
    ) -> pd.DataFrame:
        """Compute-optimal allocation under C = 6 N D, with credible intervals.

        Give ``compute`` (one or more budgets) for N*, D*, D*/N* and the loss at the optimum;
        or a fixed ``params`` (or ``tokens``) to ask at which budget that size is optimal.
        ``random_seed``, ``discrepancy`` and ``family`` as in :meth:`predict`.

        Returns
        -------
        pandas.DataFrame
            One row per budget: ``compute_*`` (when solved for), ``params_*``, ``tokens_*``,
            ``tokens_per_param_*``; ``loss_*``, a new run's loss at the optimum (seed noise and
            the law's discrepancy included, as in :meth:`predict`), and ``mean_loss_*``, the
            law's expected loss there. Columns ``*_median``, ``*_lower``, ``*_upper``.

        Examples
        --------
        >>> from bayescale.law.simulate import known_draws
        >>> post = Posterior.from_draws(known_draws())
        >>> best = post.optimal(compute=5.88e23).iloc[0]
        >>> f"N* {best.params_median:.3g}, D*/N* {best.tokens_per_param_median:.3g}"
        'N* 7.43e+10, D*/N* 17.7'
        """
        _check_level(level)
        check_held(level, self.n_draws)
        _check_kind(interval_kind)
        _check_seed(random_seed)
        given = [x is not None for x in (compute, params, tokens)]
        if sum(given) != 1:
            raise BayescaleError("give exactly one of compute, params or tokens")
        draws = self.draws(family=family)
        calibration = self.calibration_for(family) if discrepancy else None
        rows = []
        key, values = next(
            (k, _positive(k, v))
            for k, v in (("compute", compute), ("params", params), ("tokens", tokens))
            if v is not None
        )
        for value in values:
            result = optimal_draws(self.law, draws, **{key: float(value)})
            _, new_log = optimum_new_run_log(result, draws, calibration, random_seed,
                                             float(value))
            result["mean_loss"] = result.pop("loss")
            row: dict[str, float] = {key: float(value)}
            for name, samples in result.items():
                if name == key:
                    continue
                for stat, number in summarize(samples, level, interval_kind).items():
                    row[f"{name}_{stat}"] = float(number)
            for stat, number in summarize(np.exp(new_log), level, interval_kind).items():
                row[f"loss_{stat}"] = float(number)  # on L, as predict and mean_loss
            rows.append(row)
        return pd.DataFrame(rows)

    def exponents(
        self, level: float = 0.9, interval_kind: str = "eti", family: str | None = None
    ) -> pd.DataFrame:
        """Allocation exponents a (N* ~ C^a) and b (D* ~ C^b) with intervals.

        Returns
        -------
        pandas.DataFrame
            Rows ``a`` and ``b``; columns ``median``, ``lower``, ``upper``.

        Examples
        --------
        >>> from bayescale.law.simulate import known_draws
        >>> post = Posterior.from_draws(known_draws())
        >>> post.exponents(level=0.9).round(3)
           median  lower  upper
        a   0.513  0.501  0.524
        b   0.487  0.476  0.499
        """
        _check_level(level)
        check_held(level, self.n_draws)
        _check_kind(interval_kind)
        a, b = exponent_draws(self.law, self.draws(family=family))
        rows = {name: {k: float(v) for k, v in summarize(x, level, interval_kind).items()}
                for name, x in (("a", a), ("b", b))}
        return pd.DataFrame(rows).T

    def risk(
        self,
        params: float,
        tokens: float,
        target_loss: float | None = None,
        *,
        level: float = 0.9,
        interval_kind: str = "eti",
        random_seed: int = 0,
        thresholds: Thresholds | None = None,
        family: str | None = None,
        unique_tokens: float | None = None,
    ) -> RiskReview:
        """Risk review of one planned run (see :func:`bayescale.posterior.risk.review`).

        The new run's loss interval equals :meth:`predict`'s with the same ``random_seed``. In a
        family fit, ``family`` names the family (its own runs set the extrapolation ratios); a
        new family's population predictive when None or unseen. ``unique_tokens``: the plan
        repeats U unique tokens (a law with a data-limit term), and the alternative is the best
        run of its compute under the same limit.

        Examples
        --------
        >>> from bayescale.law.simulate import known_draws
        >>> post = Posterior.from_draws(known_draws())
        >>> post.risk(7e9, 1.4e11, target_loss=2.2).verdict_line
        'CAUTION: P(loss < 2.2) = 0.658 < 0.8'
        """
        _check_level(level)
        check_held(level, self.n_draws)
        _check_kind(interval_kind)
        _check_seed(random_seed)
        n, d = (_positive(k, v) for k, v in (("params", params), ("tokens", tokens)))
        if n.size != 1 or d.size != 1:
            raise BayescaleError("a risk review is of one planned run: give one N and one D")
        data = self.data
        if family in self.families:
            data = data[data[FAMILY] == family]
        return review(self.law, self.draws(family=family), data, float(n[0]), float(d[0]),
                      target_loss=target_loss, level=level, interval_kind=interval_kind,
                      random_seed=random_seed, thresholds=thresholds,
                      calibration=self.calibration_for(family),
                      fit_doubts=prior_pull(self) + runs_off_the_law(self),
                      unique_tokens=unique_tokens,
                      fitted_epochs=fitted_epochs(self))


def resolve_targets(
    params: Any, tokens: Any, compute: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N, D, C arrays from any two of them (C = 6 N D, Kaplan et al. 2020).

    Examples
    --------
    >>> n, d, c = resolve_targets(7e9, None, 5.88e21)
    >>> float(d[0])
    140000000000.0
    """
    given = {k: v for k, v in (("params", params), ("tokens", tokens), ("compute", compute))
             if v is not None}
    if len(given) != 2:
        raise BayescaleError("give two of params, tokens and compute (C = 6 N D)")
    arrays = {k: _positive(k, v) for k, v in given.items()}
    try:
        shaped = dict(zip(arrays, np.broadcast_arrays(*arrays.values()), strict=True))
    except ValueError:
        raise BayescaleError("params, tokens and compute must have the same length") from None
    if "compute" not in shaped:
        n, d = shaped["params"], shaped["tokens"]
    elif "params" in shaped:
        n = shaped["params"]
        d = tokens_for(shaped["compute"], n)
    else:
        d = shaped["tokens"]
        n = params_for(shaped["compute"], d)
    return n.astype(float), d.astype(float), flop_of(n, d)
