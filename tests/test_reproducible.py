"""Same data, options and --random-seed: identical posterior; ``bayescale info`` tells what a
posterior file was made from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.data.runs import file_sha256
from tests.builders import EXAMPLE, QUICK, example_frame, known_draws_posterior

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_fit(tmp_path_factory):
    """The example fitted through the CLI with the options and seed of ``example_fit``."""
    folder = tmp_path_factory.mktemp("repro")
    runs = folder / "runs.csv"
    shutil.copy(EXAMPLE, runs)
    out = folder / "runs.posterior.nc"
    options = ["--sampler", QUICK.sampler, "--chains", QUICK.chains, "--draws", QUICK.draws,
               "--tune", QUICK.tune, "--target-accept", QUICK.target_accept,
               "--random-seed", QUICK.random_seed, "--json"]
    here = Path.cwd()
    os.chdir(folder)  # the runs file given relative to the fit's directory
    try:
        result = runner.invoke(app, ["fit", runs.name, "--out", str(out), *map(str, options)])
    finally:
        os.chdir(here)
    assert result.exit_code in (0, 3), result.stderr  # 3: short chains may fail a check
    return runs, out, json.loads(result.stdout)


@pytest.mark.slow
def test_same_seed_same_posterior(cli_fit, example_fit):
    """Same data, options and seed: the CLI's file and the API's fit hold the same draws."""
    _, out, _ = cli_fit
    mine, theirs = Posterior.load(out), example_fit.posterior
    for name, values in theirs.draws().items():
        np.testing.assert_array_equal(mine.draws()[name], values, err_msg=name)
    pd.testing.assert_frame_equal(mine.summary(), theirs.summary(), check_exact=True)


@pytest.mark.slow
def test_example_fit_raises_no_warning(cli_fit):
    """The example is well constrained and has no outliers: nothing to warn about."""
    assert cli_fit[2]["warnings"] == []


@pytest.mark.slow
def test_info_shows_what_the_file_was_made_from(cli_fit):
    """Also from another directory than the fit's, which was given the runs file relatively."""
    runs, path, _ = cli_fit
    assert Path.cwd() != runs.parent
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["input"]["path"] == str(runs.resolve())
    assert info["input"]["sha256"] == file_sha256(runs)
    assert info["input_status"] == "matches"
    assert (info["law"], info["likelihood"]) == ("chinchilla", "studentt")
    assert set(info["priors"]) >= {"E", "A", "B", "alpha", "beta", "sigma_obs"}
    expected = {k: getattr(QUICK, k) for k in ("sampler", "chains", "draws", "tune",
                                               "random_seed")}
    assert {k: info["sampler"][k] for k in expected} == expected
    assert (info["chains"], info["draws"]) == (QUICK.chains, QUICK.draws)
    assert set(info["diagnostics"]) >= {"divergences", "max_r_hat", "min_ess_bulk"}
    assert {"pymc", "nutpie", "numpy"} <= set(info["versions"])
    assert datetime.strptime(info["created"], "%Y-%m-%dT%H:%M:%SZ")

    human = runner.invoke(app, ["info", str(path)])
    assert human.exit_code == 0 and human.stdout == ""
    text = " ".join(human.stderr.split())
    assert file_sha256(runs)[:40] in text.replace(" ", "")
    assert f"random_seed={QUICK.random_seed}" in text and "chinchilla" in text


def test_info_shows_a_files_metadata(tmp_path):
    """``info`` on a file of known draws with a fit's metadata (the fit itself is checked
    above): the input's status, the law, priors, sampler options and diagnostics, as JSON and
    as a table."""
    from bayescale import ModelSpec

    runs = tmp_path / "runs.csv"
    shutil.copy(EXAMPLE, runs)
    path = tmp_path / "runs.posterior.nc"
    known_draws_posterior(
        400, chains=2, data=example_frame(),
        input={"path": str(runs), "sha256": file_sha256(runs), "n_rows": 48, "n_runs": 48,
               "columns": {"params": "params", "tokens": "tokens", "loss": "loss"}},
        priors=ModelSpec(likelihood="normal").as_dict()["priors"], sampler=QUICK.as_dict(),
        diagnostics={"divergences": 0, "max_r_hat": 1.001, "min_ess_bulk": 512.0,
                     "problems": []},
        versions={"numpy": "2.0"}, created="2026-01-02T03:04:05Z", bayescale_version="0.1.0",
    ).save(path)
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["file"] == str(path) and info["input_status"] == "matches"
    assert (info["chains"], info["draws"]) == (2, 200)
    assert (info["law"], info["likelihood"]) == ("chinchilla", "normal")
    assert info["sampler"] == QUICK.as_dict() and info["diagnostics"]["max_r_hat"] == 1.001

    human = runner.invoke(app, ["info", str(path)])
    assert human.exit_code == 0 and human.stdout == ""
    text = " ".join(human.stderr.split())
    assert file_sha256(runs)[:40] in text.replace(" ", "")
    assert "the file there now has the same bytes" in text and "2 chains x 200" in text
    assert f"random_seed={QUICK.random_seed}" in text and "prior alpha" in text
    assert "created 2026-01-02T03:04:05Z by bayescale 0.1.0" in text and "problems none" in text
    runs.unlink()
    assert "no file there now" in " ".join(runner.invoke(app, ["info", str(path)]).stderr.split())


def test_info_notices_a_changed_input(tmp_path):
    from bayescale.cli.info_cmd import input_status

    runs = tmp_path / "runs.csv"
    shutil.copy(EXAMPLE, runs)
    meta = {"input": {"path": str(runs), "sha256": file_sha256(runs)}}
    assert input_status(meta) == "matches"
    runs.write_text(runs.read_text().replace("3.5", "3.6", 1))
    assert input_status(meta) == "changed"
    runs.unlink()
    assert input_status(meta) == "missing"


@pytest.mark.slow
def test_same_seed_same_draws_with_a_cold_compile_cache(tmp_path):
    """A model's first fit on a machine (nothing in PyTensor's compile cache, nor in
    bayescale's own, BAYESCALE_CACHE_DIR) draws what later fits draw: with numba's fastmath,
    fresh and cached code rounded differently."""
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'pytensor'}",
           "BAYESCALE_CACHE_DIR": str(tmp_path / "bayescale")}
    cli = Path(sys.executable).with_name("bayescale")
    draws = []
    for attempt in ("cold", "warm"):
        out = tmp_path / f"{attempt}.nc"
        done = subprocess.run(
            [str(cli), "fit", str(EXAMPLE), "--out", str(out), "--chains", "1", "--draws", "50",
             "--tune", "50", "--random-seed", "7"],
            env=env, capture_output=True, text=True, check=False)
        assert done.returncode in (0, 3), done.stderr  # 3: short chains may fail a check
        draws.append(Posterior.load(out).draws())
    for name, values in draws[0].items():
        np.testing.assert_array_equal(draws[1][name], values, err_msg=name)
