"""Compiled nutpie models kept on disk, so that a later process loads them instead of compiling.

nutpie turns a PyMC model into two numba C callbacks (the log density with its gradient, and
the expansion of a draw into every stored variable) and compiles them afresh in every process:
their closures hold fresh random names, so numba's own cache never finds them again. Here the
same callbacks are built with fixed names and compiled through numba's cache machinery into a
folder of this cache, one per key. The key covers the model's structure (PyTensor's structural
keys of the two compiled graphs: every op, type and constant, so law, likelihood, priors and
noise terms; the number of parameters; the layout of the data) and the versions of everything
that shapes the machine code (bayescale, nutpie, numba, llvmlite, PyTensor, PyMC, numpy, Python and
the fastmath flag); numba adds the CPU. A changed model or version therefore misses, never
loads stale code. The data are not part of the key: they are swapped in at run time, as
``CompiledPyMCModel.with_data`` does.

- A damaged entry (truncated, unreadable) is removed and compiled again, with a warning.
- Two processes filling one entry hold a file lock in turn (POSIX); every file is written to
  a temporary name and renamed, so a reader never sees half a file.
- The folder is :func:`cache_root` (``$BAYESCALE_CACHE_DIR``, else the user cache directory of
  platformdirs); ``bayescale cache info`` shows it, ``bayescale cache clear`` empties it, and
  ``BAYESCALE_COMPILE_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bayescale.core.errors import BayescaleError

#: Environment variable that moves the cache (default: platformdirs' user cache directory).
ENV_VAR = "BAYESCALE_CACHE_DIR"
#: Environment variable that turns the cache off (``0``, ``off``, ``no``): nutpie compiles.
SWITCH_VAR = "BAYESCALE_COMPILE_CACHE"
#: Bump when the layout or the way callbacks are built changes: older entries then miss.
FORMAT = 1
#: Packages whose versions are part of every key.
KEY_PACKAGES = ("bayescale", "nutpie", "numba", "llvmlite", "pytensor", "pymc", "numpy")
_MODELS = "models"
#: Serialises compilation within a process (numba's compiler is not re-entrant across threads).
_LOCK = threading.Lock()


def cache_root() -> Path:
    """The cache's folder: ``$BAYESCALE_CACHE_DIR`` if set, else the user cache directory.

    Examples
    --------
    >>> import os
    >>> os.environ[ENV_VAR] = "/tmp/bayescale-doctest-cache"
    >>> str(cache_root())
    '/tmp/bayescale-doctest-cache'
    >>> del os.environ[ENV_VAR]
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bayescale", appauthor=False))


def models_dir() -> Path:
    """The folder of compiled models inside :func:`cache_root` (one sub-folder per key)."""
    return cache_root() / _MODELS


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "none"


def model_key(graphs: dict[str, Any]) -> str:
    """The cache key of a compiled model: what its graphs are, plus the versions.

    ``graphs`` describes the code inside the callbacks: PyTensor's own structural keys of the
    compiled log density and expansion graphs (their ops, types and constants), the number of
    unconstrained and stored values, and the layout of the data the callbacks read.

    Examples
    --------
    >>> model_key({"logp": "a"}) == model_key({"logp": "a"}) != model_key({"logp": "b"})
    True
    """
    import pytensor

    parts = {
        "format": FORMAT,
        "graphs": graphs,
        "versions": {package: _version(package) for package in KEY_PACKAGES},
        "python": sys.version,
        "fastmath": bool(pytensor.config.numba__fastmath),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


def _graph_key(function: Any) -> str | None:
    """PyTensor's structural key of a function compiled in NUMBA mode (None: not cacheable)."""
    try:
        from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

        return CACHED_SRC_FUNCTIONS.get(function.vm.jit_fn.py_func)
    except (ImportError, AttributeError, TypeError):
        return None


@dataclass
class CacheInfo:
    """What the cache holds: its folder, the number of compiled models and their bytes."""

    path: Path
    models: int
    bytes: int


def info() -> CacheInfo:
    """The cache's folder, number of entries and size on disk; an error when the folder's
    path is a file (a fit then compiles without saving, so "0 models" would hide why)."""
    root = cache_root()
    if root.exists() and not root.is_dir():
        raise BayescaleError(f"the cache's folder is a file: set {ENV_VAR} to a folder",
                             path=str(root))
    folder = models_dir()
    entries = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    size = sum(f.stat().st_size for e in entries for f in e.rglob("*") if f.is_file())
    return CacheInfo(cache_root(), len(entries), size)


def clear() -> CacheInfo:
    """Remove every compiled model; returns what was removed. A folder that cannot be
    removed (permissions, a symbolic link in its place) is one :class:`BayescaleError`, not a
    count of models that are still there."""
    before = info()
    folder = models_dir()
    if folder.is_symlink():
        raise BayescaleError("is a symbolic link: remove the folder it points to, or the "
                             "link, yourself", path=str(folder))
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError as exc:
        left = info().models
        raise BayescaleError(f"could not remove it ({exc.strerror or exc}); {left} compiled "
                             "model(s) remain", path=str(folder)) from None
    return before


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (POSIX ``flock``; elsewhere none, the
    atomic renames still keep every file whole)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _numba_cache(py_func: Any, folder: Path, name: str, key: str) -> Any:
    """A numba function cache that stores ``py_func``'s callback as ``folder/name.*``, found
    by ``key`` (and numba's CPU tuple) alone, not by the function's source or closure."""
    from numba.core.caching import (
        CompileResultCacheImpl,
        FunctionCache,
        IndexDataCacheFile,
        _CacheLocator,
    )

    class Locator(_CacheLocator):
        def __init__(self) -> None:
            self._py_file = str(folder / f"{name}.py")  # numba names it in warnings

        def get_cache_path(self) -> str:
            return str(folder)

        def get_source_stamp(self) -> str:
            return key

        def get_disambiguator(self) -> str:
            return key

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> None:
            return None

    class Impl(CompileResultCacheImpl):
        def __init__(self) -> None:  # no locator search: the folder is given
            self._lineno = py_func.__code__.co_firstlineno
            self._locator = Locator()
            self._filename_base = name

    class ModelCache(FunctionCache):
        def __init__(self) -> None:
            self._name = name
            self._py_func = py_func
            self._impl = Impl()
            self._cache_path = str(folder)
            self._cache_file = IndexDataCacheFile(cache_path=str(folder), filename_base=name,
                                                  source_stamp=key)
            self.enable()

        def _index_key(self, sig: Any, codegen: Any) -> Any:
            return (sig, codegen.magic_tuple(), key)

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            try:
                return super().load_overload(sig, target_context)
            except Exception as exc:  # a damaged entry: drop it and compile again
                warnings.warn(f"compiled-model cache entry {folder} is damaged "
                              f"({type(exc).__name__}); compiling it again", RuntimeWarning,
                              stacklevel=2)
                for stale in folder.glob(f"{name}.*"):
                    stale.unlink(missing_ok=True)
                return None

        def save_overload(self, sig: Any, data: Any) -> None:
            try:
                super().save_overload(sig, data)
            except OSError as exc:  # read-only or full disk: the compiled code still works
                warnings.warn(f"could not write the compiled-model cache in {folder}: {exc}",
                              RuntimeWarning, stacklevel=2)

    return ModelCache()


def _cfunc(py_func: Any, sig: Any, folder: Path | None, name: str, key: str,
           load_only: bool = False) -> Any:
    """``numba.cfunc(sig)(py_func)``, loaded from or saved to ``folder`` when given; with
    ``load_only``, None instead of compiling when ``folder`` lacks it."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc
    from numba.core.compiler_lock import global_compiler_lock

    compiled = CFunc(py_func, sigutils.normalize_signature(sig), locals={}, options={})
    if folder is not None:
        compiled._cache = _numba_cache(py_func, folder, name, key)
    if not load_only:
        compiled.compile()
        return compiled
    with global_compiler_lock:  # CFunc.compile without its fallback to compiling
        cres = compiled._cache.load_overload(compiled._sig,
                                             compiled._targetdescr.target_context)
        if cres is None:
            return None
        compiled._cache_hits += 1
        compiled._library = cres.library
        compiled._wrapper_name = cres.fndesc.llvm_cfunc_wrapper_name
        compiled._wrapper_address = cres.library.get_pointer_to_function(compiled._wrapper_name)
    return compiled


def _signatures() -> tuple[Any, Any]:
    """The C signatures of nutpie's log density and expansion callbacks."""
    from numba import types

    double_p = types.CPointer(types.double)
    return (types.int64(types.uint64, double_p, double_p, double_p, types.voidptr),
            types.int64(types.uint64, types.uint64, double_p, double_p, types.voidptr))


def supported() -> bool:
    """Whether the cache is on (:data:`SWITCH_VAR`) and this nutpie has the internals the
    cached build uses (else nutpie compiles as it does by itself)."""
    if os.environ.get(SWITCH_VAR, "").strip().lower() in ("0", "off", "no", "false"):
        return False
    try:
        import nutpie.compile_pymc as cp
    except ImportError:
        return False
    needed = ("_make_functions", "_make_c_logp_func", "_make_c_expand_func", "make_user_data",
              "_prepare_dims_and_coords", "_wrap_with_lock", "CompiledPyMCModel")
    return all(hasattr(cp, attr) for attr in needed)


def _outputs(model: Any) -> list[Any]:
    """What nutpie compiles: the log density and the stored variables."""
    return [model.logp(), *model.unobserved_value_vars]


def _fingerprint(model: Any, outputs: list[Any] | None = None) -> str | None:
    """sha256 of the model's graphs as nutpie compiles them (log density and stored variables):
    every op with its parameters, every type, every constant's bytes, the shared variables by
    name and type, in topological order; None when a shape is left to the data (then the key
    is only known after compiling the graphs, see :func:`compile_model`)."""
    import numpy as np
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort
    from pytensor.tensor.sharedvar import SharedVariable

    outputs = _outputs(model) if outputs is None else outputs
    for var in [*model.free_RVs, *model.unobserved_value_vars]:
        shape = getattr(var.type, "shape", ())
        if any(dim is None for dim in shape):
            return None
    digest = hashlib.sha256()
    names: dict[Any, int] = {}

    def ref(var: Any) -> str:
        if var not in names:
            names[var] = len(names)
            if isinstance(var, Constant):
                data = np.asarray(var.data)
                raw = repr(var.data).encode() if data.dtype == object else data.tobytes()
                digest.update(f"c{names[var]}:{var.type}:{data.dtype}:{data.shape}|".encode())
                digest.update(hashlib.sha256(raw).digest())
            elif isinstance(var, SharedVariable):
                digest.update(f"s{names[var]}:{var.name}:{var.type}|".encode())
            elif var.owner is None:
                digest.update(f"i{names[var]}:{var.name}:{var.type}|".encode())
        return str(names[var])

    for node in toposort(outputs):
        props = getattr(node.op, "__props__", None)
        params = (tuple(getattr(node.op, prop) for prop in props) if props is not None
                  else str(node.op))
        ins = ",".join(ref(var) for var in node.inputs)
        digest.update(f"{type(node.op).__module__}.{type(node.op).__qualname__}{params!r}"
                      f"({ins})|".encode())
        for out in node.outputs:
            digest.update(f"o{ref(out)}:{out.type}|".encode())
    for var in outputs:
        digest.update(f"out{ref(var)}:{var.name}|".encode())
    digest.update(repr([var.name for var in model.free_RVs]).encode())
    transforms = [type(model.rvs_to_transforms.get(var)).__qualname__ for var in model.free_RVs]
    digest.update(repr(transforms).encode())  # their parameters are in the log density
    return digest.hexdigest()


def _shared_by_name(outputs: list[Any], names: list[str]) -> dict[str, Any] | None:
    """The model's shared variables (``pm.Data``) called ``names``; None if one is missing."""
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.sharedvar import SharedVariable

    found: dict[str, Any] = {}
    for var in ancestors(outputs):
        if isinstance(var, SharedVariable) and var.name in names:
            found[var.name] = var
    return found if len(found) == len(names) else None


def _load_fast(model: Any, outputs: list[Any], folder: Path, key: str) -> Any | None:
    """The compiled model from ``folder`` without building PyTensor functions: the callbacks
    from numba's cache, the rest from ``meta.json``; None if anything is missing."""
    import numpy as np
    import nutpie.compile_pymc as cp

    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        fast, pairs, layout = meta["fast"], meta["shared"], meta["layout"]
    except (OSError, ValueError, KeyError, TypeError):  # damaged: written again after compiling
        (folder / "meta.json").unlink(missing_ok=True)
        return None
    if not fast:
        return None
    shared = _shared_by_name(outputs, [name for _, name in pairs])
    if shared is None:
        return None
    shared_data: dict[str, Any] = {}
    shared_var_keys: dict[Any, str] = {}
    for slot, (key_name, var_name) in enumerate(pairs):
        value = np.array(shared[var_name].get_value(), order="C", copy=True)
        if [str(value.dtype), value.ndim] != layout[slot]:
            return None
        value.flags.writeable = False
        shared_data[key_name] = value
        shared_var_keys[shared[var_name]] = key_name
    callbacks = {}
    with _LOCK:
        for name, sig in zip(("logp", "expand"), _signatures(), strict=True):
            compiled = _cfunc(_placeholder, sig, folder, name, key, load_only=True)
            if compiled is None:
                return None
            callbacks[name] = compiled
    names, slices, shapes = meta["shape_info"]
    shape_info = (names, [slice(*pair) for pair in slices], [tuple(s) for s in shapes])
    initial_point_fn = cp._rv_dict_to_flat_array_wrapper(
        _initial_point_fn(model), names=names[:len(meta["free"])],
        shapes=shape_info[2][:len(meta["free"])])
    return _assemble(model, meta["n_dim"], meta["n_expanded"], shape_info,
                     meta["reparameterized_names"], callbacks["logp"], callbacks["expand"],
                     initial_point_fn, shared_data, shared_var_keys, None, None)


def _placeholder(*args: Any) -> int:  # pragma: no cover - never run: the code is loaded
    return -1


def _initial_point_fn(model: Any) -> Any:
    """PyMC's initial points as nutpie makes them (support point, jittered), compiled for
    PyTensor's Python linker: it runs once per chain, so compiling it to numba code would cost
    more than it saves (the points are the same)."""
    import nutpie.compile_pymc as cp
    import pytensor
    from pymc.initial_point import make_initial_point_fn

    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        return cp._wrap_with_lock(make_initial_point_fn(
            model=model, overrides=None, default_strategy="support_point",
            jitter_rvs=set(model.free_RVs), return_transformed=True))


def _assemble(model: Any, n_dim: int, n_expanded: int, shape_info: Any,
              reparameterized_names: list[str], logp: Any, expand: Any,
              initial_point_fn: Any, shared_data: dict[str, Any],
              shared_var_keys: dict[Any, str], logp_fn_pt: Any, expand_fn_pt: Any) -> Any:
    import nutpie.compile_pymc as cp

    user_data = cp.make_user_data(shared_var_keys, shared_data)
    dims, coords = cp._prepare_dims_and_coords(model, shape_info, reparameterized_names)
    return cp.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand,
        initial_point_func=initial_point_fn, shared_data=shared_data,
        shared_var_keys=shared_var_keys, user_data=user_data, n_expanded=n_expanded,
        shape_info=shape_info, logp_func=logp_fn_pt, expand_func=expand_fn_pt,
        reparameterized_names=reparameterized_names)


@dataclass
class Compiled:
    """A compiled nutpie model and whether its callbacks came from the disk cache."""

    model: Any
    loaded: bool


def compile_model(model: Any, *, use_disk: bool = True) -> Compiled:
    """A nutpie model of ``model`` (as ``nutpie.compile_pymc_model(model)`` builds it), its
    callbacks loaded from the disk cache when a model of this structure was compiled before.

    The shared variables get fixed names (``shared0``, ...) instead of nutpie's random ones, so
    that the compiled code of one process serves the next; everything else follows nutpie. A
    model whose shapes are all static is keyed by :func:`_fingerprint` before anything is
    compiled, and a hit loads without building PyTensor functions; otherwise the key is
    PyTensor's own key of the compiled graphs.
    """
    outputs = _outputs(model) if use_disk else []
    fingerprint = _fingerprint(model, outputs) if use_disk else None
    if fingerprint is not None:
        key = model_key({"fingerprint": fingerprint, "config": _config(model)})
        folder = models_dir() / key
        loaded = (_load_fast(model, outputs, folder, key) if (folder / "meta.json").exists()
                  else None)
        if loaded is not None:
            return Compiled(loaded, loaded=True)
    return _compile_full(model, use_disk, fingerprint)


def _config(model: Any) -> dict[str, str]:
    """The settings that change the rewritten graphs: PyTensor's and the model's bound checks."""
    import pytensor

    config = pytensor.config
    settings = {name: str(getattr(config, name, "")) for name in
                ("floatX", "optimizer_excluding", "optimizer_including", "optimizer_requiring")}
    return {**settings, "check_bounds": str(bool(model.check_bounds))}


def _compile_full(model: Any, use_disk: bool, fingerprint: str | None) -> Compiled:
    """Build the PyTensor functions and the callbacks (loaded or compiled and saved)."""
    import numpy as np
    import nutpie.compile_pymc as cp

    (n_dim, n_expanded, logp_fn_pt, expand_fn_pt, initial_point_fn, shape_info,
     reparameterized_names) = cp._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=_initial_point_fn(model), var_names=None)

    shared_data: dict[str, Any] = {}
    shared_var_keys: dict[Any, str] = {}
    for var in [*logp_fn_pt.get_shared(), *expand_fn_pt.get_shared()]:
        if var in shared_var_keys:
            continue
        name = f"shared{len(shared_var_keys)}"
        shared_data[name] = np.array(var.get_value(), order="C", copy=True)
        shared_data[name].flags.writeable = False
        shared_var_keys[var] = name
    user_data = cp.make_user_data(shared_var_keys, shared_data)

    logp_raw, logp_sig = cp._make_c_logp_func(
        n_dim, logp_fn_pt.vm.jit_fn, user_data,
        [shared_var_keys[v] for v in logp_fn_pt.get_shared()], shared_data)
    expand_raw, expand_sig = cp._make_c_expand_func(
        n_dim, n_expanded, expand_fn_pt.vm.jit_fn, user_data,
        [shared_var_keys[v] for v in expand_fn_pt.get_shared()], shared_data)

    layout = [[str(value.dtype), value.ndim] for value in shared_data.values()]
    graphs = {"logp": _graph_key(logp_fn_pt), "expand": _graph_key(expand_fn_pt),
              "n_dim": int(n_dim), "n_expanded": int(n_expanded),
              "check_bounds": bool(model.check_bounds), "shared": layout}
    if fingerprint is not None:
        key = model_key({"fingerprint": fingerprint, "config": _config(model)})
    else:
        key = model_key(graphs)
    cacheable = use_disk and graphs["logp"] is not None and graphs["expand"] is not None
    folder = models_dir() / key if cacheable else None
    with _LOCK, _locked(folder):
        logp = _cfunc(logp_raw, logp_sig, folder, "logp", key)
        expand = _cfunc(expand_raw, expand_sig, folder, "expand", key)
    names = [var.name for var in shared_var_keys]
    fast = (fingerprint is not None and (logp_sig, expand_sig) == _signatures()
            and len(set(names)) == len(names) and None not in names)
    if folder is not None and (folder / "logp.nbi").exists():
        _describe(folder, {
            "graphs": graphs, "n_dim": int(n_dim), "n_expanded": int(n_expanded),
            "free": [var.name for var in model.free_RVs],
            "shape_info": [shape_info[0],
                           [[int(sl.start), int(sl.stop)] for sl in shape_info[1]],
                           [list(map(int, shape)) for shape in shape_info[2]]],
            "reparameterized_names": reparameterized_names,
            "shared": [[shared_var_keys[var], var.name] for var in shared_var_keys],
            "layout": layout,
            "logp_sig": str(logp_sig), "expand_sig": str(expand_sig),
        }, fast)
    compiled = _assemble(model, n_dim, n_expanded, shape_info, reparameterized_names, logp,
                         expand, initial_point_fn, shared_data, shared_var_keys, logp_fn_pt,
                         expand_fn_pt)
    return Compiled(compiled, loaded=logp.cache_hits > 0 and expand.cache_hits > 0)


@contextlib.contextmanager
def _locked(folder: Path | None) -> Iterator[None]:
    """Hold ``folder``'s lock file (creating the folder); nothing without a folder."""
    if folder is None:
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable cache: numba then compiles without saving
        yield
        return
    with _file_lock(folder / "lock"):
        yield


def _describe(folder: Path, meta: dict[str, Any], fast: bool) -> None:
    """Write ``meta.json`` (what the entry is; with ``fast``, what a later process needs to
    load it without building PyTensor functions), atomically."""
    target = folder / "meta.json"
    if target.exists():
        return
    meta = {**meta, "format": FORMAT, "fast": fast,
            "versions": {p: _version(p) for p in KEY_PACKAGES}}
    tmp = folder / f"meta.json.tmp{os.getpid()}"
    try:
        text = json.dumps(meta, indent=1)
    except (TypeError, ValueError):  # without meta.json the entry still serves the full path
        return
    with contextlib.suppress(OSError):
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
