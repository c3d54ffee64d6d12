"""Prior distributions as plain data: defaults per law, overridable from a TOML file."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bayescale.core.errors import BayescaleError

#: Distribution name -> required parameters.
FAMILIES: dict[str, tuple[str, ...]] = {
    "lognormal": ("mu", "sigma"),
    "normal": ("mu", "sigma"),
    "halfnormal": ("sigma",),
    "truncnormal": ("mu", "sigma", "lower", "upper"),
    "gamma": ("alpha", "beta"),
    "uniform": ("lower", "upper"),
}


@dataclass(frozen=True)
class Prior:
    """One prior: a distribution family and its parameters.

    Examples
    --------
    >>> Prior("lognormal", {"mu": 0.0, "sigma": 0.5}).describe()
    'lognormal(mu=0, sigma=0.5)'
    """

    dist: str
    params: dict[str, float]

    def describe(self) -> str:
        """Short human-readable form.

        Examples
        --------
        >>> Prior("halfnormal", {"sigma": 0.05}).describe()
        'halfnormal(sigma=0.05)'
        """
        inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"{self.dist}({inner})"

    @property
    def at(self) -> float:
        """Reference size of a scale coefficient's prior (see :func:`lognormal`); 1 if none.

        Examples
        --------
        >>> lognormal(0.4, 1.0, at=1e9).at, lognormal(0.35, 0.5).at
        (1000000000.0, 1.0)
        """
        return float(self.params.get("at", 1.0))

    def pymc(self, name: str, **kwargs: Any) -> Any:
        """Create the PyMC random variable for this prior (inside a model context).

        Examples
        --------
        >>> import pymc as pm
        >>> with pm.Model():
        ...     alpha = lognormal(0.35, 0.5).pymc("alpha")
        >>> alpha.name
        'alpha'
        """
        import pymc as pm

        p = self.params
        match self.dist:
            case "lognormal":
                return pm.LogNormal(name, mu=p["mu"], sigma=p["sigma"], **kwargs)
            case "normal":
                return pm.Normal(name, mu=p["mu"], sigma=p["sigma"], **kwargs)
            case "halfnormal":
                return pm.HalfNormal(name, sigma=p["sigma"], **kwargs)
            case "truncnormal":
                return pm.TruncatedNormal(
                    name, mu=p["mu"], sigma=p["sigma"], lower=p["lower"], upper=p["upper"],
                    **kwargs,
                )
            case "gamma":
                return pm.Gamma(name, alpha=p["alpha"], beta=p["beta"], **kwargs)
            case "uniform":
                return pm.Uniform(name, lower=p["lower"], upper=p["upper"], **kwargs)
        raise AssertionError(self.dist)

    def rms(self) -> float:
        """Root-mean-square of the prior, sqrt(E[x^2]) (Monte Carlo, fixed seed).

        Examples
        --------
        >>> round(Prior("halfnormal", {"sigma": 0.02}).rms(), 3)
        0.02
        """
        draws = self.sample(np.random.default_rng(0), 200_000)
        return float(np.sqrt(np.mean(draws**2)))

    def _scipy(self) -> Any:
        """The prior as a frozen ``scipy.stats`` distribution."""
        from scipy import stats

        p = self.params
        match self.dist:
            case "lognormal":
                return stats.lognorm(s=p["sigma"], scale=math.exp(min(p["mu"], 709.0)))
            case "normal":
                return stats.norm(p["mu"], p["sigma"])
            case "halfnormal":
                return stats.halfnorm(scale=p["sigma"])
            case "truncnormal":
                return stats.truncnorm((p["lower"] - p["mu"]) / p["sigma"],
                                       (p["upper"] - p["mu"]) / p["sigma"], p["mu"], p["sigma"])
            case "gamma":
                return stats.gamma(p["alpha"], scale=1.0 / p["beta"])
            case "uniform":
                return stats.uniform(p["lower"], p["upper"] - p["lower"])
        raise AssertionError(self.dist)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw from the prior with numpy (prior predictive checks, no compilation).

        Examples
        --------
        >>> Prior("gamma", {"alpha": 2.0, "beta": 0.1}).sample(np.random.default_rng(0), 5).shape
        (5,)
        """
        p = self.params
        match self.dist:
            case "lognormal":
                return rng.lognormal(p["mu"], p["sigma"], size)
            case "normal":
                return rng.normal(p["mu"], p["sigma"], size)
            case "halfnormal":
                return np.abs(rng.normal(0.0, p["sigma"], size))
            case "truncnormal":  # by the inverse CDF: bounded time however far the bounds lie
                return self._scipy().rvs(size=size, random_state=rng)
            case "gamma":
                return rng.gamma(p["alpha"], 1.0 / p["beta"], size)
            case "uniform":
                return rng.uniform(p["lower"], p["upper"], size)
        raise AssertionError(self.dist)


def lognormal(median: float, sigma: float, at: float | None = None) -> Prior:
    """A log-normal prior given by its median and the sd of its logarithm.

    For a scale coefficient such as A in A / N^alpha, ``at`` puts the prior on the term's value
    at a reference size, A / at^alpha, rather than on A itself: the data (and the user) know the
    size of the term at familiar scales, while A alone swings over orders of magnitude with alpha.

    Examples
    --------
    >>> lognormal(0.35, 0.5).describe()
    'lognormal(mu=-1.05, sigma=0.5)'
    >>> lognormal(0.4, 1.0, at=1e9).describe()
    'lognormal(mu=-0.9163, sigma=1, at=1e+09)'
    """
    params = {"mu": math.log(median), "sigma": sigma}
    if at is not None:
        params["at"] = float(at)
    return Prior("lognormal", params)


#: Priors of the noise model, shared by every law.
NOISE_PRIORS: dict[str, Prior] = {
    # Residual sd of log-loss (about the relative error of one row): 5% scale.
    "sigma_obs": Prior("halfnormal", {"sigma": 0.05}),
    # Seed noise: relative sd of a run's loss across seeds. Median 1.3%, 95% below 3.9%: the
    # Hitchhiker's Guide's ~4% ARE between seeds (Choshen et al. 2024) as a worst case.
    "seed_noise": Prior("halfnormal", {"sigma": 0.02}),
    # Student-t degrees of freedom (Juarez & Steel 2010): mass on heavy and light tails.
    "nu": Prior("gamma", {"alpha": 2.0, "beta": 0.1}),
}


#: The range in which a positive parameter's prior must put its central 99%: outside it the
#: model's log density overflows or underflows and the sampler finds no starting point.
SANE_RANGE = (1e-100, 1e100)


def check_support(name: str, prior: Prior, path: str | None = None) -> None:
    """Refuse a prior the model cannot use: one whose support allows values at or below zero
    (every parameter bayescale samples, law coefficients, exponents, E, noise scales and nu,
    is positive), or whose bulk lies where the log density overflows (a log-normal median of
    e^1e308, a gamma squeezed onto 0). One line naming the parameter.

    Examples
    --------
    >>> check_support("E", Prior("normal", {"mu": -2.0, "sigma": 0.1}))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: [E] normal allows values at or below 0, but E must ...
    >>> check_support("E", lognormal(2.0, 0.5))
    """
    p = prior.params
    advice = "use lognormal, halfnormal, gamma, or truncnormal or uniform with lower >= 0"
    if prior.dist == "normal" or ("lower" in p and p["lower"] < 0):
        raise BayescaleError(f"[{name}] {prior.dist} allows values at or below 0, but {name} "
                             f"must be positive: {advice}", path=path)
    with np.errstate(all="ignore"):
        try:
            low, high = (float(q) for q in prior._scipy().ppf([0.005, 0.995]))
        except (ValueError, OverflowError, ArithmeticError):
            low = high = float("nan")
    where = f"[{low:.3g}, {high:.3g}]"
    if prior.dist == "lognormal" and abs(p["mu"]) > 230:  # e^230 ~ 1e100
        low = high = float("nan")
        where = f"around its median e^{p['mu']:.4g}"
    if not (math.isfinite(low) and math.isfinite(high) and SANE_RANGE[0] <= low
            and high <= SANE_RANGE[1]):
        raise BayescaleError(
            f"[{name}] {prior.describe()} puts its central 99% {where}, outside "
            f"[{SANE_RANGE[0]:g}, {SANE_RANGE[1]:g}] where the model's density is finite: give "
            f"{name} a prior on a realistic scale", path=path)


def to_dict(priors: dict[str, Prior]) -> dict[str, dict[str, Any]]:
    """Priors as plain data (stored in the posterior file).

    Examples
    --------
    >>> to_dict({"sigma_obs": Prior("halfnormal", {"sigma": 0.05})})
    {'sigma_obs': {'dist': 'halfnormal', 'params': {'sigma': 0.05}}}
    """
    return {name: asdict(prior) for name, prior in priors.items()}


def from_dict(data: dict[str, dict[str, Any]]) -> dict[str, Prior]:
    """Inverse of :func:`to_dict`.

    Examples
    --------
    >>> from_dict({"sigma_obs": {"dist": "halfnormal", "params": {"sigma": 0.05}}})
    {'sigma_obs': Prior(dist='halfnormal', params={'sigma': 0.05})}
    """
    return {name: Prior(d["dist"], dict(d["params"])) for name, d in data.items()}


def _check(name: str, table: Any, path: str, lognormal_only: bool) -> Prior:
    if not isinstance(table, dict) or "dist" not in table:
        raise BayescaleError(
            f"[{name}] needs a 'dist' key, e.g. dist = \"lognormal\", mu = 0.6, sigma = 0.5",
            path=path,
        )
    dist = str(table["dist"]).lower()
    if dist not in FAMILIES:
        raise BayescaleError(
            f"[{name}] unknown dist '{dist}': use one of {', '.join(FAMILIES)}", path=path
        )
    if lognormal_only and dist != "lognormal":
        raise BayescaleError(
            f"[{name}] must be lognormal (the data constrain its logarithm)", path=path
        )
    needed = FAMILIES[dist]
    optional = {"at"} if lognormal_only else set()
    extra = set(table) - set(needed) - optional - {"dist"}
    missing = [k for k in needed if k not in table]
    if missing or extra:
        raise BayescaleError(
            f"[{name}] {dist} takes {', '.join(needed)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(sorted(extra))}" if extra else ""),
            path=path,
        )
    params = {}
    for key in (*needed, *sorted(optional & set(table))):
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value
        ):
            raise BayescaleError(f"[{name}] {key} must be a finite number", path=path)
        params[key] = float(value)
    for key in ("sigma", "alpha", "beta", "at"):
        if key in params and params[key] <= 0:
            raise BayescaleError(f"[{name}] {key} must be positive", path=path)
    if "lower" in params and params["lower"] >= params["upper"]:
        raise BayescaleError(f"[{name}] lower must be below upper", path=path)
    prior = Prior(dist, params)
    check_support(name, prior, path)
    return prior


def load_priors(
    path: str | Path, defaults: dict[str, Prior], lognormal_only: tuple[str, ...] = ()
) -> dict[str, Prior]:
    """The priors a TOML file sets, one per table, checked against ``defaults`` (the names
    that have a prior) and ``lognormal_only``. Only the file's own tables are returned, so that
    a prior the fit cannot use is reported only when the user wrote it;
    :meth:`bayescale.inference.model.ModelSpec.full_priors` fills in the defaults.

    Each table is one parameter::

        [alpha]
        dist = "lognormal"
        mu = -1.05
        sigma = 0.5

        [A]              # scale coefficients: log-normal, optionally at a reference size
        dist = "lognormal"
        mu = -0.92       # ln of A / at^alpha, the N-term's value at N = at
        sigma = 1.0
        at = 1e9

    Parameters not in the file keep their default (they are not in the result).

    Examples
    --------
    >>> import tempfile
    >>> from bayescale.law.laws import get_law
    >>> law = get_law("chinchilla")
    >>> path = Path(tempfile.mkdtemp()) / "priors.toml"
    >>> _ = path.write_text('[alpha]\\ndist = "lognormal"\\nmu = -1.2\\nsigma = 0.3\\n')
    >>> priors = load_priors(path, law.default_priors(), law.lognormal_parameters)
    >>> priors["alpha"].describe(), sorted(priors)
    ('lognormal(mu=-1.2, sigma=0.3)', ['alpha'])
    """
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BayescaleError("no such file", path=where) from None
    except IsADirectoryError:
        raise BayescaleError("is a folder, not a TOML file of priors", path=where) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BayescaleError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): TOML files are "
                             "UTF-8; save it as UTF-8", path=where,
                             row=raw[:exc.start].count(b"\n") + 1) from None
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise BayescaleError(f"not valid TOML ({exc})", path=where) from None
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise BayescaleError(
            f"unknown parameter [{unknown[0]}]: priors exist for {', '.join(defaults)}", path=where
        )
    return {name: _check(name, table, where, name in lognormal_only)
            for name, table in data.items()}
