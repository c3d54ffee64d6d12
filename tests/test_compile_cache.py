"""The compiled-model disk cache: keys, damaged entries, two processes at once, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import ModelSpec, load_runs
from bayescale.cli import app
from bayescale.inference import compile_cache
from bayescale.inference.model import build_model
from bayescale.inference.sampling import strict_math
from tests.builders import EXAMPLE, one_line_error


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache for the test, through the environment variable."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(compile_cache.ENV_VAR, str(folder))
    return folder


def _model(likelihood: str = "studentt", rows: slice = slice(None)) -> object:
    """The example's model, or the model of some of its rows (same structure, other data)."""
    if rows == slice(None):
        return build_model(load_runs(EXAMPLE), ModelSpec(likelihood=likelihood)).model
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.csv"
        pd.read_csv(EXAMPLE).iloc[rows].to_csv(path, index=False)
        return build_model(load_runs(path), ModelSpec(likelihood=likelihood)).model


def test_root_follows_the_environment_variable(cache_dir: Path) -> None:
    assert compile_cache.cache_root() == cache_dir
    assert compile_cache.models_dir() == cache_dir / "models"


def test_default_root_is_the_user_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
    assert compile_cache.cache_root() == Path(platformdirs.user_cache_dir("bayescale",
                                                                          appauthor=False))


def test_fingerprint_follows_structure_not_data() -> None:
    studentt = compile_cache._fingerprint(_model())
    assert studentt is not None
    assert compile_cache._fingerprint(_model()) == studentt  # reproducible
    assert compile_cache._fingerprint(_model(rows=slice(0, 20))) == studentt  # other data
    assert compile_cache._fingerprint(_model("normal")) != studentt  # other likelihood


def test_fingerprint_is_the_same_in_another_process() -> None:
    code = ("from tests.test_compile_cache import _model; "
            "from bayescale.inference.compile_cache import _fingerprint; "
            "print(_fingerprint(_model()))")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == compile_cache._fingerprint(_model())


def test_key_covers_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    key = compile_cache.model_key({"fingerprint": "f"})
    monkeypatch.setattr(compile_cache, "_version", lambda package: "0.0.other")
    assert compile_cache.model_key({"fingerprint": "f"}) != key


def test_cli_info_and_clear(cache_dir: Path) -> None:
    entry = cache_dir / "models" / "0123"
    entry.mkdir(parents=True)
    (entry / "logp.1.nbc").write_bytes(b"x" * 10)
    runner = CliRunner()
    info = runner.invoke(app, ["cache", "info", "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout) == {"path": str(cache_dir), "models": 1, "bytes": 10,
                                       "env_var": compile_cache.ENV_VAR}
    cleared = runner.invoke(app, ["cache", "clear", "--json"])
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(cleared.stdout)["removed_models"] == 1
    assert not (cache_dir / "models").exists()


def test_clear_that_removes_nothing_says_so(cache_dir: Path, tmp_path: Path) -> None:
    """A models folder that is a symbolic link: rmtree failed silently and clear reported the
    models as removed while info still counted them. Now one error line, exit 1."""
    store = tmp_path / "store" / "0123"
    store.mkdir(parents=True)
    (store / "logp.1.nbc").write_bytes(b"x" * 10)
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_dir / "models").symlink_to(store.parent)
    line = one_line_error(CliRunner().invoke(app, ["cache", "clear"]))
    assert "is a symbolic link" in line and (store / "logp.1.nbc").exists()


def test_cli_cache_in_a_file_is_an_error(cache_dir: Path) -> None:
    """A cache path that is a file: fits compile without saving; info and clear say why
    instead of reporting an empty cache."""
    cache_dir.write_text("not a folder")
    for command in ("info", "clear"):
        result = CliRunner().invoke(app, ["cache", command])
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [
            f"error: {cache_dir}: the cache's folder is a file: set "
            f"{compile_cache.ENV_VAR} to a folder"]
    assert cache_dir.read_text() == "not a folder"


def _compile(model: object) -> compile_cache.Compiled:
    with strict_math():
        return compile_cache.compile_model(model)


def _logp(compiled: compile_cache.Compiled) -> tuple[float, np.ndarray]:
    """Log density and gradient at a fixed point, through the compiled C callback."""
    import ctypes

    model = compiled.model
    x = np.linspace(-0.5, 0.5, model.n_dim)
    grad = np.zeros(model.n_dim)
    logp = np.zeros(1)
    double_p = ctypes.POINTER(ctypes.c_double)
    func = model.compiled_logp_func.ctypes
    code = func(model.n_dim, x.ctypes.data_as(double_p), grad.ctypes.data_as(double_p),
                logp.ctypes.data_as(double_p), ctypes.c_void_p(model.user_data.ctypes.data))
    assert code == 0
    return float(logp[0]), grad


@pytest.mark.slow
def test_changed_structure_misses_and_same_structure_hits(cache_dir: Path) -> None:
    first = _compile(_model())
    assert not first.loaded
    again = _compile(_model(rows=slice(0, 20)))  # same structure, other data: loaded
    assert again.loaded
    other = _compile(_model("normal"))  # another likelihood: compiled, never loaded
    assert not other.loaded
    assert len(list((cache_dir / "models").iterdir())) == 2
    # the loaded code computes what freshly compiled code does, on its own data
    with strict_math():
        fresh = compile_cache.compile_model(_model(rows=slice(0, 20)), use_disk=False)
    (loaded_logp, loaded_grad), (fresh_logp, fresh_grad) = _logp(again), _logp(fresh)
    assert loaded_logp == fresh_logp
    np.testing.assert_array_equal(loaded_grad, fresh_grad)


@pytest.mark.slow
def test_truncated_entry_is_rebuilt(cache_dir: Path) -> None:
    assert not _compile(_model()).loaded
    (entry,) = (cache_dir / "models").iterdir()
    data = entry / "logp.1.nbc"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="damaged"):
        rebuilt = _compile(_model())
    assert not rebuilt.loaded
    assert _compile(_model()).loaded  # the entry was written again


@pytest.mark.slow
def test_two_processes_fill_the_cache_at_once(cache_dir: Path, tmp_path: Path) -> None:
    bayescale = Path(sys.executable).with_name("bayescale")
    env = {**os.environ, compile_cache.ENV_VAR: str(cache_dir)}
    outs = [tmp_path / f"fit{i}.nc" for i in range(2)]
    procs = [subprocess.Popen([str(bayescale), "fit", str(EXAMPLE), "--out", str(out),
                               "--chains", "4", "--draws", "1000"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for out in outs]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr.decode()[-2000:]
    import xarray as xr

    draws = [xr.open_datatree(out)["posterior"].dataset for out in outs]
    for name in draws[0].data_vars:
        np.testing.assert_array_equal(draws[0][name].values, draws[1][name].values)
    assert len(list((cache_dir / "models").iterdir())) == 1


def test_initial_points_are_pymcs() -> None:
    """The cache's initial-point function (Python linker) gives the points nutpie's own
    (PyMC's default compile mode) gives, so the chains start where nutpie would start them."""
    from pymc.initial_point import make_initial_point_fn

    model = _model()
    ours = compile_cache._initial_point_fn(model)
    pymcs = make_initial_point_fn(model=model, overrides=None, default_strategy="support_point",
                                  jitter_rvs=set(model.free_RVs), return_transformed=True)
    for seed in (0, 1, 12345):
        expected = pymcs(seed)
        got = ours(seed)
        assert set(got) == set(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value, err_msg=name)
