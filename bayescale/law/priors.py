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
            case "truncnormal":
                out = rng.normal(p["mu"], p["sigma"], 4 * size + 64)
                out = out[(out > p["lower"]) & (out < p["upper"])]
                while out.size < size:
                    more = rng.normal(p["mu"], p["sigma"], 4 * size + 64)
                    out = np.concatenate([out, more[(more > p["lower"]) & (more < p["upper"])]])
                return out[:size]
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
    return Prior(dist, params)


def load_priors(
    path: str | Path, defaults: dict[str, Prior], lognormal_only: tuple[str, ...] = ()
) -> dict[str, Prior]:
    """Override ``defaults`` with the tables of a TOML file.

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

    Parameters not in the file keep their default.

    Examples
    --------
    >>> import tempfile
    >>> from bayescale.law.laws import get_law
    >>> law = get_law("chinchilla")
    >>> path = Path(tempfile.mkdtemp()) / "priors.toml"
    >>> _ = path.write_text('[alpha]\\ndist = "lognormal"\\nmu = -1.2\\nsigma = 0.3\\n')
    >>> priors = load_priors(path, law.default_priors(), law.lognormal_parameters)
    >>> priors["alpha"].describe(), priors["beta"].describe()
    ('lognormal(mu=-1.2, sigma=0.3)', 'lognormal(mu=-1.05, sigma=0.5)')
    """
    where = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise BayescaleError("no such file", path=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise BayescaleError(f"not valid TOML ({exc})", path=where) from None
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise BayescaleError(
            f"unknown parameter [{unknown[0]}]: priors exist for {', '.join(defaults)}", path=where
        )
    merged = dict(defaults)
    for name, table in data.items():
        merged[name] = _check(name, table, where, name in lognormal_only)
    return merged
