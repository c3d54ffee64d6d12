"""The likelihoods of ln L, each defined here once: PyMC term, log density, new-run noise.

- ``studentt`` (the default): Student-t on ln L (robust regression, Lange, Little & Taylor
  1989), robust like the Huber loss on log-loss that Hoffmann et al. 2022 and Besiroglu et al.
  2024 minimise, and it ignores gross outliers;
- ``normal``: Gaussian on ln L;
- ``huber``: the Huber density, proportional to exp(-rho_k(r / s)), rho_k(z) = z^2 / 2 for
  |z| <= k and k |z| - k^2 / 2 beyond (Huber 1964): a Gaussian core and Laplace tails. Its log
  is concave in the law's mean, so it has one mode where a Student-t with small nu has several;
  a gross outlier keeps a bounded pull.

Every noise scale s is normal-equivalent (the sd under ``normal``): the Student-t scale is
s sqrt(nu / (nu + 2)) (:func:`t_scale`; its sd is then s nu / sqrt(nu^2 - 4), above s for heavy
tails) and the Huber core scale s / :func:`unit_sd`. ``k`` is in units of the core
scale; :data:`K` = 1.345 gives the Huber estimator 95% efficiency under normal noise (Huber &
Ronchetti 2009). docs/model.md compares the three on public data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

#: The likelihoods ``fit --likelihood`` takes.
LIKELIHOODS = ("studentt", "normal", "huber")
#: Threshold of the Huber density, in units of its core scale.
K = 1.345


def _unit_norm(k: float) -> float:
    """Integral of exp(-rho_k(z)) over the line: sqrt(2 pi) (2 Phi(k) - 1) + 2 exp(-k^2/2) / k."""
    return math.sqrt(2 * math.pi) * math.erf(k / math.sqrt(2)) + 2 * math.exp(-k * k / 2) / k


def unit_sd(k: float = K) -> float:
    """sd of the Huber density with core scale 1.

    E[z^2] Z = sqrt(2 pi) (2 Phi(k) - 1 - 2 k phi(k)) + 2 exp(-k^2/2) (k + 2/k + 2/k^3).

    Examples
    --------
    >>> round(unit_sd(), 3)
    1.215
    >>> round(unit_sd(50.0), 4)  # no tails left: the normal
    1.0
    """
    phi = math.exp(-k * k / 2) / math.sqrt(2 * math.pi)
    core = math.sqrt(2 * math.pi) * (math.erf(k / math.sqrt(2)) - 2 * k * phi)
    tails = 2 * math.exp(-k * k / 2) * (k + 2 / k + 2 / k**3)
    return math.sqrt((core + tails) / _unit_norm(k))


def logpdf(x: Any, mu: Any, sd: Any, k: float = K) -> np.ndarray:
    """Log density of the Huber distribution with location ``mu`` and sd ``sd`` (numpy).

    Examples
    --------
    >>> from scipy import integrate
    >>> round(integrate.quad(lambda x: np.exp(logpdf(x, 0.3, 2.0)), -60, 60)[0], 6)
    1.0
    """
    scale = np.asarray(sd, dtype=float) / unit_sd(k)
    z = np.abs((np.asarray(x, dtype=float) - mu) / scale)
    rho = np.where(z <= k, 0.5 * z**2, k * z - 0.5 * k**2)
    return -rho - np.log(scale * _unit_norm(k))


def pytensor_logp(value: Any, mu: Any, sd: Any, k: float = K) -> Any:
    """:func:`logpdf` in PyTensor (the ``logp`` of a ``pm.CustomDist``).

    Examples
    --------
    >>> round(float(pytensor_logp(0.01, 0.0, 0.01).eval()), 4) == round(
    ...     float(logpdf(0.01, 0.0, 0.01)), 4)
    True
    """
    import pytensor.tensor as pt

    scale = sd / unit_sd(k)
    z = pt.abs((value - mu) / scale)
    rho = pt.switch(pt.le(z, k), 0.5 * z**2, k * z - 0.5 * k**2)
    return -rho - pt.log(scale) - math.log(_unit_norm(k))


def standard_draws(rng: np.random.Generator, size: Any, k: float = K) -> np.ndarray:
    """Draws of the Huber distribution with sd 1: the Gaussian core with its probability, else
    a tail, k + Exponential(rate k) with a random sign.

    Examples
    --------
    >>> round(float(standard_draws(np.random.default_rng(0), 400_000).std()), 2)
    1.0
    """
    core_mass = math.sqrt(2 * math.pi) * math.erf(k / math.sqrt(2)) / _unit_norm(k)
    lo = special.ndtr(-k)
    core = special.ndtri(lo + (1 - 2 * lo) * rng.random(size))
    tail = (k + rng.exponential(1.0 / k, size)) * np.where(rng.random(size) < 0.5, -1.0, 1.0)
    return np.where(rng.random(size) < core_mass, core, tail) / unit_sd(k)


def pymc_random(mu: Any, sd: Any, rng: np.random.Generator | None = None,
                size: Any = None) -> np.ndarray:
    """Draws for a ``pm.CustomDist`` (prior and posterior predictive sampling).

    Examples
    --------
    >>> pymc_random(np.zeros(3), 0.01, np.random.default_rng(0)).shape
    (3,)
    """
    rng = rng if rng is not None else np.random.default_rng()
    shape = size if size is not None else np.broadcast(mu, sd).shape
    return mu + sd * standard_draws(rng, shape)


def t_scale(nu: Any) -> Any:
    """Student-t scale per unit of normal-equivalent noise scale: sqrt(nu / (nu + 2)).

    With the plain t scale, nearly normal data leave a curved ridge ln s ~ const - 1/nu that
    NUTS needs many steps to follow. Works on numpy arrays and PyTensor variables.

    Examples
    --------
    >>> round(float(t_scale(2.0)), 4)
    0.7071
    """
    return (nu / (nu + 2.0)) ** 0.5


def likelihood_of(names: Any) -> str:
    """The likelihood a set of posterior variables implies: ``nu`` (Student-t), ``huber_k``
    (Huber), else normal.

    Examples
    --------
    >>> likelihood_of({"sigma_obs": 0, "nu": 0}), likelihood_of(["sigma_obs"])
    ('studentt', 'normal')
    """
    return "studentt" if "nu" in names else "huber" if "huber_k" in names else "normal"


def pymc_observe(likelihood: str, mu: Any, scale: Any, observed: Any, nu: Any = None) -> Any:
    """Inside a PyMC model: the observed ``log_loss`` with location ``mu`` and sd ``scale``.

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model() as model:
    ...     _ = pymc_observe("huber", 0.0, 0.01, np.array([0.0, 0.02]))
    >>> sorted(model.named_vars)
    ['huber_k', 'log_loss']
    """
    import pymc as pm
    import pytensor.tensor as pt

    if likelihood == "huber":
        # the threshold is stored beside the draws, as a fixed seed noise is
        pm.Deterministic("huber_k", pt.as_tensor(K))
        return pm.CustomDist("log_loss", mu, scale, logp=pytensor_logp, random=pymc_random,
                             observed=observed)
    if likelihood == "studentt":
        return pm.StudentT("log_loss", nu=nu, mu=mu, sigma=scale * t_scale(nu),
                           observed=observed)
    return pm.Normal("log_loss", mu=mu, sigma=scale, observed=observed)


def log_density(y: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                noise: dict[str, Any]) -> np.ndarray:
    """ln p(y | mean, scale) under the likelihood ``noise`` implies (``nu`` draws for a
    Student-t, ``huber_k`` for a Huber one, neither for the normal).

    Examples
    --------
    >>> round(float(log_density(0.0, 0.0, 1.0, {})), 4)
    -0.9189
    """
    from scipy import stats

    if "nu" in noise:
        nu = noise["nu"]
        return stats.t.logpdf(y, df=nu, loc=mean, scale=scale * t_scale(nu))
    if "huber_k" in noise:
        return logpdf(y, mean, scale, float(np.asarray(noise["huber_k"]).flat[0]))
    return stats.norm.logpdf(y, loc=mean, scale=scale)


def row_noise(draws: Any, sigma: np.ndarray, shape: tuple[int, int],
              rng: np.random.Generator) -> np.ndarray:
    """Draws of a new row's noise of sd ``sigma`` (draws x 1) under the likelihood of
    ``draws``: shape (draws, targets).

    Examples
    --------
    >>> eps = row_noise({}, np.full((4000, 1), 0.01), (4000, 2), np.random.default_rng(0))
    >>> eps.shape, round(float(eps.std()), 3)
    ((4000, 2), 0.01)
    """
    if "nu" in draws:
        nu = np.asarray(draws["nu"]).reshape(-1, 1)
        return rng.standard_t(np.broadcast_to(nu, shape)) * sigma * t_scale(nu)
    if "huber_k" in draws:
        k = float(np.asarray(draws["huber_k"]).reshape(-1)[0])  # a constant of the fit
        return standard_draws(rng, shape, k) * sigma
    return rng.standard_normal(shape) * sigma
