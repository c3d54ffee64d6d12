"""Training compute C = 6 N D FLOP (Kaplan et al. 2020, sec. 2.1): the one place it is written.

About 6 FLOP per parameter and token: 2 for the forward pass, 4 for the backward pass.
"""

from __future__ import annotations

import math
from typing import Any

#: FLOP per parameter and training token.
FLOP_PER_PARAM_TOKEN = 6.0


def compute(params: Any, tokens: Any) -> Any:
    """C = 6 N D of N parameters trained on D tokens (numbers or arrays).

    Examples
    --------
    >>> compute(70e9, 1.4e12)
    5.88e+23
    """
    return FLOP_PER_PARAM_TOKEN * params * tokens


def tokens_for(flop: Any, params: Any) -> Any:
    """D = C / (6 N): the tokens a budget of ``flop`` buys for N parameters.

    Examples
    --------
    >>> tokens_for(5.88e23, 70e9)
    1400000000000.0
    """
    return flop / (FLOP_PER_PARAM_TOKEN * params)


def params_for(flop: Any, tokens: Any) -> Any:
    """N = C / (6 D): the parameters a budget of ``flop`` buys for D tokens.

    Examples
    --------
    >>> params_for(5.88e23, 1.4e12)
    70000000000.0
    """
    return flop / (FLOP_PER_PARAM_TOKEN * tokens)


def param_tokens(flop: Any) -> Any:
    """N x D = C / 6, the product every split of a budget keeps.

    Examples
    --------
    >>> param_tokens(6e21)
    1e+21
    """
    return flop / FLOP_PER_PARAM_TOKEN


def log10_compute(log10_params: Any, log10_tokens: Any) -> Any:
    """log10 C from log10 N and log10 D.

    Examples
    --------
    >>> round(log10_compute(9.0, 10.0), 4)
    19.7782
    """
    return math.log10(FLOP_PER_PARAM_TOKEN) + log10_params + log10_tokens
