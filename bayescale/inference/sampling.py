"""Sample a PyMC model with nutpie (default) or PyMC's own NUTS."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bayescale.core.diagnostics import MIN_DRAWS
from bayescale.core.errors import BayescaleError

SAMPLERS = ("nutpie", "pymc")
#: Largest random seed: the samplers take it as an unsigned 64-bit integer.
MAX_SEED = 2**64 - 1
#: Fewest tuning steps: nutpie's adaptation panics without one (``early_end < num_tune``).
MIN_TUNE = 1


@dataclass
class SamplerOptions:
    """How to sample.

    Attributes
    ----------
    sampler : str
        ``nutpie`` (low-rank mass-matrix adaptation, fast on the correlated law posterior) or
        ``pymc``.
    chains, draws, tune : int
        Chains, kept draws per chain (at least :data:`bayescale.core.diagnostics.MIN_DRAWS`), tuning
        steps per chain (at least :data:`MIN_TUNE`); others raise a ``BayescaleError``.
    random_seed : int
        Seed: the same seed, data and options give the same draws on one machine (models are
        compiled without numba's fastmath, see :func:`strict_math`).
    target_accept : float
        NUTS target acceptance; 0.95 (above the usual 0.8) takes smaller steps, against the
        divergences that heavy Student-t tails and the E-B trade-off of small sweeps cause.
    progress : bool, optional
        Show a progress bar on stderr; default: when stderr is a terminal.

    Examples
    --------
    >>> SamplerOptions(chains=2, draws=300, tune=300, random_seed=1, progress=False).chains
    2
    >>> SamplerOptions(sampler="stan")
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: sampler 'stan': use one of nutpie, pymc
    """

    sampler: str = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    random_seed: int = 0
    target_accept: float = 0.95
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise BayescaleError(f"sampler '{self.sampler}': use one of {', '.join(SAMPLERS)}")
        if self.chains < 1 or self.draws < MIN_DRAWS or self.tune < MIN_TUNE:
            raise BayescaleError(f"sampling needs chains >= 1, draws >= {MIN_DRAWS} and tune >= "
                                 f"{MIN_TUNE}; got {self.chains}, {self.draws}, {self.tune}")
        if not 0.0 < self.target_accept < 1.0:
            raise BayescaleError(f"target_accept must lie in (0, 1), got {self.target_accept}")
        if not 0 <= self.random_seed <= MAX_SEED:
            raise BayescaleError(f"random_seed must lie in [0, 2**64 - 1], got "
                                 f"{self.random_seed}")

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the posterior file.

        Examples
        --------
        >>> SamplerOptions(draws=500).as_dict()["draws"]
        500
        """
        out = asdict(self)
        out.pop("progress")
        return out


@contextlib.contextmanager
def interrupts_reraised() -> Iterator[None]:
    """Re-raise Ctrl-C or SIGTERM that a sampler swallowed.

    nutpie and PyMC catch KeyboardInterrupt and return the draws made so far, which would pass
    for a finished fit (and be written as a posterior file); after they return, the interrupt is
    raised again. Outside the main thread (no signal handlers there) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        caught.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)
    if caught:
        raise KeyboardInterrupt


def structure_key(model: Any) -> str:
    """sha256 of everything in a PyMC model except its ``pm.Data`` values.

    Covers the free variables and deterministics (names, types, static shapes) and every
    operation and constant in the graph of the log density and the deterministics, so two models
    with the same key differ only in their Data containers and one compiled model serves both.
    """
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    digest = hashlib.sha256()
    for var in [*model.free_RVs, *model.deterministics]:
        digest.update(f"{var.name}:{var.type}|".encode())
    for node in ancestors([model.logp(), *model.deterministics]):
        if node.owner is not None:
            digest.update(f"{node.owner.op}|".encode())
        if isinstance(node, Constant):
            digest.update(f"{node.type}|".encode())
            digest.update(np.ascontiguousarray(node.data).tobytes())
    return digest.hexdigest()


class CompiledCache:
    """nutpie models compiled once per structure; later models of that structure swap their data
    in with ``compiled.with_data(...)`` instead of compiling again.

    Use one cache for many fits of one design (backtest folds, rolling origins): pass it as
    ``fit(runs, cache=cache)``.
    """

    def __init__(self) -> None:
        self._compiled: dict[str, Any] = {}
        self.compiles = 0
        self.reuses = 0

    def compiled(self, model: Any) -> Any:
        """A compiled nutpie model holding ``model``'s data."""
        key = structure_key(model)
        if key not in self._compiled:
            self._compiled[key] = compile_nutpie(model)
            self.compiles += 1
            return self._compiled[key]
        self.reuses += 1
        compiled = self._compiled[key]
        # only the data its graphs read: a container they do not use (the group index where
        # every row shares one noise scale) is no input of the compiled code
        used = {var.name for var in compiled.shared_var_keys}
        return compiled.with_data(**{var.name: var.get_value() for var in model.data_vars
                                     if var.name in used})


def compile_nutpie(model: Any) -> Any:
    """``nutpie.compile_pymc_model(model)``, its compiled code reused across processes through
    the disk cache of :mod:`bayescale.inference.compile_cache` (same code, same draws)."""
    from bayescale.inference import compile_cache

    if compile_cache.supported():
        return compile_cache.compile_model(model).model
    import nutpie  # another nutpie than the cache was written for: compile as nutpie does

    return nutpie.compile_pymc_model(model)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run BLAS (OpenBLAS, MKL) on one thread inside the block.

    A fit's matrices are small (the point fits of the calibration, a few parameters), so BLAS
    threads gain nothing; they spin while waiting for work, taking the cores the sampler's
    chains run on (much worse on a busy machine).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def strict_math() -> Iterator[None]:
    """Compile PyTensor's numba code without fastmath, so that a seed gives the same draws.

    PyTensor caches numba code on disk. With fastmath, the code of a model's first fit on a
    machine (compiled afresh) and the cached code later fits load can round differently, so the
    same seed would draw other values on that first fit. Strict IEEE code rounds one way.

    Examples
    --------
    >>> import pytensor
    >>> with strict_math():
    ...     pytensor.config.numba__fastmath
    False
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield


def sample(model: Any, options: SamplerOptions, cache: CompiledCache | None = None) -> Any:
    """Draw from the posterior of ``model``; returns an ``xarray.DataTree``.

    With a ``cache`` (nutpie only), a model whose structure was compiled before is not compiled
    again. An interruption (Ctrl-C, SIGTERM) raises KeyboardInterrupt, never returns partial
    draws.
    """
    with interrupts_reraised(), strict_math():
        try:
            return _sample(model, options, cache)
        except (BayescaleError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # nutpie's Rust errors carry a long backtrace: one line
            raise sampling_failed(exc) from None


def sampling_failed(exc: BaseException) -> BayescaleError:
    """One line for a sampler that could not run, the first line of its own reason.

    Examples
    --------
    >>> str(sampling_failed(RuntimeError("All initialization points failed")))
    ... # doctest: +ELLIPSIS
    'the sampler found no valid starting point: ... (All initialization points failed)'
    """
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else type(exc).__name__
    first = first[:160]
    if "initiali" in text.lower() or "starting point" in text.lower():
        return BayescaleError("the sampler found no valid starting point: the priors (--priors) "
                              f"or the data leave the model no finite density ({first})")
    return BayescaleError(f"sampling failed: {first}")


def _sample(model: Any, options: SamplerOptions, cache: CompiledCache | None = None) -> Any:
    progress = sys.stderr.isatty() if options.progress is None else options.progress
    if options.sampler == "nutpie":
        import nutpie

        compiled = cache.compiled(model) if cache is not None else compile_nutpie(model)
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
