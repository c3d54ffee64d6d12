"""Sample a PyMC model with nutpie (default) or PyMC's own NUTS."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

SAMPLERS = ("nutpie", "pymc")


@dataclass
class SamplerOptions:
    """How to sample.

    Attributes
    ----------
    sampler : str
        ``nutpie`` (low-rank mass-matrix adaptation, fast on the correlated law posterior) or
        ``pymc``.
    chains, draws, tune : int
        Chains, kept draws per chain, tuning steps per chain.
    random_seed : int
        Seed: the same seed, data and options give the same draws on one machine.
    target_accept : float
        NUTS target acceptance; 0.95 (above the usual 0.8) removes the rare divergences that
        heavy Student-t tails and the E-B trade-off of small sweeps cause (measured: 0 of 10
        seeded fits diverged at 0.95, 4 of 10 at 0.9; sampling stays under 2.5 s).
    progress : bool, optional
        Show a progress bar on stderr; default: when stderr is a terminal.
    """

    sampler: str = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    random_seed: int = 0
    target_accept: float = 0.95
    progress: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the posterior file."""
        out = asdict(self)
        out.pop("progress")
        return out


def sample(model: Any, options: SamplerOptions) -> Any:
    """Draw from the posterior of ``model``; returns an ``xarray.DataTree``."""
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    if options.sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        return nutpie.sample(
            compiled,
            draws=options.draws,
            tune=options.tune,
            chains=options.chains,
            seed=options.random_seed,
            adaptation="low_rank",
            target_accept=options.target_accept,
            save_warmup=False,
            progress_bar=progress,
        )
    import pymc as pm

    with model:
        return pm.sample(
            draws=options.draws,
            tune=options.tune,
            chains=options.chains,
            random_seed=options.random_seed,
            nuts_sampler="pymc",
            nuts={"target_accept": options.target_accept},
            progressbar=progress,
            compute_convergence_checks=False,
        )
