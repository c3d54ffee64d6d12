"""Choose which checkpoints of a run table to fit on.

The Hitchhiker's Guide to Scaling Law Estimation (Choshen et al. 2024, section 5) found that
intermediate checkpoints improve predictions, but that checkpoints before about 10B tokens are
noisy (warm-up, fast early learning): at LLM scale pass ``min_tokens=10e9``. Small-scale sweeps,
whose runs never reach 10B tokens, need no cut, so there is no default. ``max_token_frac`` keeps
only the first part of each run, e.g. to predict a target from runs trained to 30%.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bayescale.core.errors import BayescaleError
from bayescale.data.runs import RUN, TOKENS, RunTable


def select_checkpoints(
    runs: RunTable,
    *,
    min_tokens: float | None = None,
    max_token_frac: float | None = None,
) -> RunTable:
    """Drop checkpoints below ``min_tokens`` or past ``max_token_frac`` of their run.

    Parameters
    ----------
    runs : RunTable
        From :func:`bayescale.data.runs.load_runs`.
    min_tokens : float, optional
        Keep rows with tokens >= this (recommended 10e9 at LLM scale; no default cut).
    max_token_frac : float, optional
        In (0, 1]: keep rows with tokens <= frac x the largest token count of the same run.
        Needs a run column (``--run-col``).

    Returns
    -------
    RunTable
        The kept rows, in their original order.

    Raises
    ------
    BayescaleError
        No run column for ``max_token_frac``, a fraction outside (0, 1], or nothing left.

    Examples
    --------
    >>> import pandas as pd
    >>> runs = RunTable(pd.DataFrame({"params": [1e8] * 4, "tokens": [5e9, 1e10, 2e10, 4e10],
    ...                               "loss": [3.4, 3.2, 3.1, 3.0], "run": ["a"] * 4}))
    >>> select_checkpoints(runs, min_tokens=10e9, max_token_frac=0.5).data["tokens"].tolist()
    [10000000000.0, 20000000000.0]
    """
    data = runs.data
    keep = np.ones(len(data), dtype=bool)
    what = []
    if min_tokens is not None:
        if not min_tokens > 0:
            raise BayescaleError(f"--min-tokens must be positive, got {min_tokens:g}")
        keep &= data[TOKENS].to_numpy() >= min_tokens
        what.append(f"--min-tokens {min_tokens:.3g}")
    if max_token_frac is not None:
        if not 0.0 < max_token_frac <= 1.0:
            raise BayescaleError(f"--max-token-frac must lie in (0, 1], got {max_token_frac:g}")
        if RUN not in data:
            raise BayescaleError(
                "--max-token-frac needs --run-col: the fraction is of each run's largest token "
                "count", path=runs.source)
        longest = data.groupby(RUN)[TOKENS].transform("max").to_numpy()
        keep &= data[TOKENS].to_numpy() <= max_token_frac * longest * (1 + 1e-12)
        what.append(f"--max-token-frac {max_token_frac:g}")
    if keep.all():
        return runs
    if not keep.any():
        raise BayescaleError(f"{' and '.join(what)} left no rows", path=runs.source)
    return replace(runs, data=data[keep].reset_index(drop=True))
