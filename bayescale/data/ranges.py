"""Where the fitted runs lie, and how far a target lies beyond them.

Two measures, each defined here once:

- the extrapolation distance in decades (:func:`distance`): the largest excursion of log10 C,
  log10 N or log10 D outside the fitted runs' ranges, 0 inside; and, for runs and targets with
  unique tokens U (a law of repeated data), of log10 epochs (D / U, :func:`epochs`): a target
  that repeats its data more often than any fitted run did lies beyond the runs although its
  N, D and C may lie inside them. The law's learned error (:mod:`bayescale.law.calibration`)
  grows with the distance;
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
#: or with D outside the fitted D range by this factor (either side: over- or under-trained),
FAR_TOKENS = 10.0
#: or repeating its data (epochs D / U) more than this multiple of the fitted runs' most epochs:
#: the epochs axis's decade, as D's (a law with unique tokens).
FAR_EPOCHS = 10.0

AXES = ("compute", "params", "tokens")
#: The repetition axis: log10 epochs (D / U), for rows and targets with unique tokens U.
EPOCHS = "epochs"


def epochs(tokens: Any, unique_tokens: Any) -> np.ndarray:
    """Epochs of the data, D / U (Muennighoff et al. 2023: R_D = D / U - 1 repetitions); U is
    capped at D (a run sees at most D unique tokens), so fresh data give 1.

    Examples
    --------
    >>> epochs([4e10, 1e9], [1e10, 2e9]).tolist()
    [4.0, 1.0]
    """
    d = np.asarray(tokens, dtype=float)
    return d / np.minimum(np.asarray(unique_tokens, dtype=float), d)


def _log10_axes(params: Any, tokens: Any) -> dict[str, np.ndarray]:
    n = np.log10(np.asarray(params, dtype=float))
    d = np.log10(np.asarray(tokens, dtype=float))
    return {"compute": log10_compute(n, d), "params": n, "tokens": d}


def ranges_of(params: Any, tokens: Any, unique_tokens: Any = None) -> dict[str, list[float]]:
    """log10 [min, max] of compute, params and tokens of fitted rows; with their unique tokens,
    of their epochs (:data:`EPOCHS`) too.

    Examples
    --------
    >>> ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))["params"]
    [8.0, 9.0]
    >>> ranges_of([1e8, 1e9], [1e10, 1e11], unique_tokens=[1e10, 1e10])["epochs"]
    [0.0, 1.0]
    """
    axes = _log10_axes(params, tokens)
    if unique_tokens is not None:
        axes[EPOCHS] = np.log10(epochs(tokens, unique_tokens))
    return {k: [float(v.min()), float(v.max())] for k, v in axes.items()}


def distance(ranges: dict[str, list[float]], params: Any, tokens: Any,
             unique_tokens: Any = None) -> np.ndarray:
    """Extrapolation distance in decades: the largest excursion of log10 C, N, D outside
    ``ranges`` (from :func:`ranges_of`); 0 inside.

    With ``unique_tokens`` (the targets' U) and an epochs range in ``ranges`` (fitted rows with
    unique tokens), the excursion of log10 epochs (D / U) counts too: a target repeating its
    data more (or less) often than the fitted runs did is beyond them. Without either (a law of
    N and D; a target on fresh data), the distance is that of N, D and C alone.

    Examples
    --------
    >>> r = ranges_of(np.array([1e8, 1e9]), np.array([1e10, 1e11]))
    >>> distance(r, [5e8, 1e10], [5e10, 1e11]).round(2).tolist()
    [0.0, 1.0]
    >>> r = ranges_of([1e8, 1e9], [1e10, 1e11], unique_tokens=[1e10, 2.5e10])  # 1-4 epochs
    >>> distance(r, [5e8, 5e8], [5e10, 5e10], unique_tokens=[2.5e10, 1.25e9]).round(2).tolist()
    [0.0, 1.0]
    """
    axes = _log10_axes(np.atleast_1d(params), np.atleast_1d(tokens))
    keys: tuple[str, ...] = AXES
    if unique_tokens is not None and EPOCHS in ranges:
        axes[EPOCHS] = np.log10(epochs(np.atleast_1d(tokens), np.atleast_1d(unique_tokens)))
        keys = (*AXES, EPOCHS)
    out = np.zeros(np.broadcast(*(axes[k] for k in keys)).shape)
    for key in keys:
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
