"""Where the fitted runs lie, and how far a target lies beyond them.

Two measures, each defined here once:

- the extrapolation distance in decades (:func:`distance`): the largest excursion of log10 C,
  log10 N or log10 D outside the fitted runs' ranges, 0 inside. The law's learned error
  (:mod:`bayescale.law.calibration`) grows with it;
- the ratios to the fitted runs (:func:`ratios`) and the limits beyond which a target counts as
  far (:data:`FAR_COMPUTE`, :data:`FAR_PARAMS`, :data:`FAR_TOKENS`): there the law's functional
  form, not the data, decides the answer. ``risk``'s verdict and the far-target warnings use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayescale.data.compute import compute, log10_compute

#: A target is far beyond the runs above this multiple of the largest fitted compute,
FAR_COMPUTE = 100.0
#: above this multiple of the largest fitted N,
FAR_PARAMS = 10.0
#: or with D outside the fitted D range by this factor (either side: over- or under-trained).
FAR_TOKENS = 10.0

AXES = ("compute", "params", "tokens")


def _log10_axes(params: Any, tokens: Any) -> dict[str, np.ndarray]:
    n = np.log10(np.asarray(params, dtype=float))
    d = np.log10(np.asarray(tokens, dtype=float))
    return {"compute": log10_compute(n, d), "params": n, "tokens": d}


def ranges_of(params: Any, tokens: Any) -> dict[str, list[float]]:
    """log10 [min, max] of compute, params and tokens of fitted rows.

    Examples
    --------
    >>> ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))["params"]
    [8.0, 9.0]
    """
    return {k: [float(v.min()), float(v.max())] for k, v in _log10_axes(params, tokens).items()}


def distance(ranges: dict[str, list[float]], params: Any, tokens: Any) -> np.ndarray:
    """Extrapolation distance in decades: the largest excursion of log10 C, N, D outside
    ``ranges`` (from :func:`ranges_of`); 0 inside.

    Examples
    --------
    >>> r = ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))
    >>> distance(r, [5e8, 1e10], [5e10, 1e11]).round(2).tolist()
    [0.0, 1.0]
    """
    axes = _log10_axes(np.atleast_1d(params), np.atleast_1d(tokens))
    out = np.zeros(np.broadcast(axes["params"], axes["tokens"]).shape)
    for key in AXES:
        lo, hi = ranges[key]
        out = np.maximum(out, np.maximum(axes[key] - hi, lo - axes[key]))
    return out


@dataclass(frozen=True)
class FittedRange:
    """The extent of the fitted runs in N, D and C.

    Examples
    --------
    >>> FittedRange.of([1e8, 1e9], [2e9, 2e10]).max_compute
    1.2e+20
    """

    min_params: float
    max_params: float
    min_tokens: float
    max_tokens: float
    max_compute: float

    @classmethod
    def of(cls, params: Any, tokens: Any) -> FittedRange:
        """The range of fitted rows with these N and D.

        Examples
        --------
        >>> FittedRange.of([1e8, 1e9], [2e9, 2e10]).min_tokens
        2000000000.0
        """
        n, d = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
        return cls(float(n.min()), float(n.max()), float(d.min()), float(d.max()),
                   float(np.max(compute(n, d))))

    def ratios(self, params: Any, tokens: Any) -> dict[str, Any]:
        """A target's compute and N over the largest fitted ones; its D over the largest
        fitted D (``tokens_ratio``) and how far outside the fitted D range it lies on either
        side (``tokens_outside``, above 1 outside).

        Examples
        --------
        >>> FittedRange.of([1e9], [2e10]).ratios(7e10, 1.4e12)["compute_ratio"]
        4900.0
        """
        return {"compute_ratio": compute(params, tokens) / self.max_compute,
                "params_ratio": params / self.max_params,
                "tokens_ratio": tokens / self.max_tokens,
                "tokens_outside": np.maximum(tokens / self.max_tokens,
                                             self.min_tokens / tokens)}
