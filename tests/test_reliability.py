"""Issue 29, cases 5-13 and the friction items: the moments around the write, resources,
encodings, edited posterior files, degenerate levels, JSON errors. Posteriors of known draws;
``fit`` runs with its sampling patched out (a known posterior comes back at once) except in the
one slow test."""

from __future__ import annotations

import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

import bayescale.inference.fit as fit_module
from bayescale import FitResult, Posterior
from bayescale.cli import app
from bayescale.core.diagnostics import Diagnostics
from bayescale.core.errors import BayescaleError
from bayescale.posterior import posterior as posterior_module
from bayescale.posterior import store
from tests.builders import EXAMPLE, example_frame, known_draws_posterior, known_file

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line(result, code: int = 1) -> str:
    """The one-line error contract; returns the line."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert lines and "Traceback" not in result.stderr, result.stderr
    return lines[-1]


@pytest.fixture()
def fake_fit(monkeypatch):
    """``fit`` with sampling patched out: a known posterior of the runs comes back at once;
    the list records each call."""
    calls = []

    def instant(runs, spec=None, options=None, **kwargs):
        calls.append(runs)
        post = known_draws_posterior(200, data=runs.data[["params", "tokens", "loss"]])
        return FitResult(post, Diagnostics(0, 1.0, 900.0, 900.0, 0), 0.0)

    monkeypatch.setattr(fit_module, "fit", instant)
    return calls


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------- 5: priors not used
def test_unused_seed_noise_prior_is_reported(tmp_path):
    """Case 5: one row per run, a [seed_noise] prior: the model does not use it, says so, and
    the file records what it used."""
    from bayescale import load_runs
    from bayescale.inference.model import ModelSpec, build_model
    from bayescale.law.priors import lognormal

    runs = load_runs(EXAMPLE)
    spec = ModelSpec(priors={"seed_noise": lognormal(0.01, 0.3)})
    built = build_model(runs, spec)
    assert "seed_noise" in built.unused and "Beta(1, 1)" in built.unused["seed_noise"]
    assert "nu" not in built.unused
    assert set(build_model(runs, ModelSpec(likelihood="normal")).unused) == {"seed_noise", "nu"}


def test_unused_prior_warning_and_info(tmp_path):
    """What fit stores (``unused_priors``) is a warning after the fit and a line of ``info``."""
    from bayescale.law.laws import get_law
    from bayescale.law.priors import NOISE_PRIORS, to_dict
    from bayescale.posterior.warnings import fit_warnings

    why = "one row per run: the data identify only the total noise"
    used = {**get_law("chinchilla").default_priors(), **NOISE_PRIORS}
    used.pop("seed_noise")
    post = known_draws_posterior(200, unused_priors={"seed_noise": why}, priors=to_dict(used))
    assert f"the prior [seed_noise] given in --priors was not used: {why}" in fit_warnings(post)
    path = tmp_path / "x.posterior.nc"
    post.save(path)
    result = run("info", path)
    assert result.exit_code == 0, result.output
    assert "given but not used" in result.stderr and "prior seed_noise" in result.stderr


@pytest.mark.slow
def test_unused_seed_noise_prior_through_fit(tmp_path):
    """Case 5 end to end (a short fit): the warning, and ``info`` lists the prior as unused."""
    priors = tmp_path / "priors.toml"
    priors.write_text('[seed_noise]\ndist = "halfnormal"\nsigma = 0.001\n')
    out = tmp_path / "runs.posterior.nc"
    result = run("fit", EXAMPLE, "--priors", priors, "-o", out, "--draws", 200, "--tune", 200,
                 "--chains", 2, "--no-calibration")
    assert result.exit_code in (0, 3), result.output
    assert "the prior [seed_noise] given in --priors was not used" in result.stderr
    meta = Posterior.load(out).meta
    assert "seed_noise" not in meta["priors"] and "seed_noise" in meta["unused_priors"]
    info = run("info", out, "--json")
    assert "seed_noise" in json.loads(info.stdout)["unused_priors"]


# ------------------------------------------------------- 6: Ctrl-C after the rename
def test_interrupt_after_the_rename_says_the_file_was_written(tmp_path, fake_fit, monkeypatch):
    """Case 6: SIGTERM between the rename and the summary: exit 130, and the line says the
    file was written (it was), not that none was."""
    out = tmp_path / "runs.posterior.nc"
    out.write_bytes(b"old")

    def killed(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler user_errors installs raises here
        raise AssertionError("not interrupted")

    monkeypatch.setattr(Posterior, "summary", killed)
    result = run("fit", EXAMPLE, "-o", out)
    line = one_line(result, 130)
    assert line == f"interrupted: {out} was written completely before the interruption"
    assert Posterior.load(out).n_draws == 200


def test_interrupt_before_any_write_says_none(tmp_path, monkeypatch):
    """The other side: an interruption before the write still says no file was written."""
    out = tmp_path / "runs.posterior.nc"

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("not interrupted")

    monkeypatch.setattr(fit_module, "fit", killed)
    line = one_line(run("fit", EXAMPLE, "-o", out, "--json"), 130)
    assert line == "interrupted: no output file was written"
    assert not out.exists()


# ------------------------------------------- 7: SIGKILL mid-write, full disk
def test_sigkill_during_write_leaves_a_temporary_file_that_the_next_write_sweeps(tmp_path):
    """Case 7: a process killed while writing leaves its temporary file; the next write of
    that output removes it (its process is dead) and keeps those of live processes."""
    target = tmp_path / "runs.posterior.nc"
    script = textwrap.dedent(f"""
        import os, signal
        from bayescale.core.fileio import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half a file")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert len(temporaries(tmp_path)) == 1 and not target.exists()
    live = tmp_path / f".{target.name}.{os.getppid()}.abcdefgh.tmp"  # a running process's
    live.write_bytes(b"busy")
    known_file(target, size=100)
    assert temporaries(tmp_path) == [live.name]
    assert Posterior.load(target).n_draws == 100


def test_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, fake_fit, monkeypatch):
    """Case 7 (patched writer): a full disk during the write is one line, exit 1, the
    temporary file removed, the old file kept byte for byte."""
    out = tmp_path / "runs.posterior.nc"
    known_file(out, size=50)
    before = out.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    line = one_line(run("fit", EXAMPLE, "-o", out, "--json"))
    assert line == (f"error: {out}: could not write the file: the disk is full (the existing "
                    "file is unchanged)")
    assert out.read_bytes() == before and temporaries(tmp_path) == []


def test_file_size_limit_is_one_line_and_keeps_the_old_file(tmp_path):
    """Case 7 (a real limit, ``ulimit -f``): the write fails with EFBIG instead of SIGXFSZ
    killing the process or HDF5 errors; one line, no temporary file, old file kept."""
    out = tmp_path / "runs.posterior.nc"
    known_file(out, size=50)
    before = out.read_bytes()
    script = textwrap.dedent(f"""
        import resource, sys
        from bayescale.core.errors import BayescaleError
        from tests.builders import known_draws_posterior
        post = known_draws_posterior(20000)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, 100 * 1024))
        try:
            post.save({str(out)!r})
        except BayescaleError as exc:
            print(exc, file=sys.stderr)
            sys.exit(1)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parents[1])
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"{out}: could not write the file: the file size limit was reached (the existing file "
        "is unchanged)"]
    assert out.read_bytes() == before and temporaries(tmp_path) == []


# ---------------------------------------------------------- 8: long output names
def test_output_name_too_long_for_the_temporary_is_refused_before_fitting(tmp_path, fake_fit):
    """Case 8: a 253-character name fits the folder but its temporary name does not: refused
    before any work."""
    out = tmp_path / ("r" * 250 + ".nc")
    line = one_line(run("fit", EXAMPLE, "-o", out))
    assert "the file name is too long" in line and "use a name of at most" in line
    assert fake_fit == [] and temporaries(tmp_path) == []


# --------------------------------------------------------------- 9: huge seeds
@pytest.mark.parametrize("command", ["fit", "backtest"])
def test_seed_beyond_64_bits_is_a_usage_error(tmp_path, fake_fit, monkeypatch, command):
    """Case 9: a seed >= 2**64 is refused by the option (exit 2), before any compile."""
    import bayescale.evaluate.backtest as backtest_module

    monkeypatch.setattr(backtest_module, "backtest", lambda *a, **k: pytest.fail("ran"))
    result = run(command, EXAMPLE, "--random-seed", 2**64, "--json")
    line = one_line(result, 2)
    assert "'--random-seed'" in line and "18446744073709551615" in line
    assert json.loads(result.stdout)["exit_code"] == 2
    assert fake_fit == []


def test_largest_seed_is_accepted_by_the_options():
    from bayescale.inference.sampling import SamplerOptions

    assert SamplerOptions(random_seed=2**64 - 1).random_seed == 2**64 - 1
    with pytest.raises(BayescaleError, match="random_seed"):
        SamplerOptions(random_seed=2**64)


# ------------------------------------------------------ 10: many targets, flat memory
def test_predict_in_chunks_gives_the_same_answers(known_posterior, monkeypatch):
    """Chunking changes nothing: each target's draws depend on it and the seed only."""
    n = np.geomspace(1e8, 7e10, 37)
    d = 20 * n
    whole = known_posterior.predict(n, d)
    monkeypatch.setattr(posterior_module, "PREDICT_CHUNK_VALUES", 5 * known_posterior.n_draws)
    chunked = known_posterior.predict(n, d)
    pd.testing.assert_frame_equal(whole, chunked)


def test_predict_memory_is_flat_in_the_number_of_targets():
    """Case 10: 2,000 draws x 2,500 targets held whole are 40 MB per array, several of them;
    in chunks the peak is that of one chunk."""
    post = known_draws_posterior(2000)
    n = np.geomspace(1e8, 7e10, 2500)
    tracemalloc.start()
    try:
        post.predict(n, 20 * n)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80e6, f"peak {peak / 1e6:.0f} MB"


# ----------------------------------------------------------------- 11: encodings
def test_latin1_runs_are_refused_with_the_row(tmp_path, fake_fit):
    """Case 11: "équipe" and "èquipe" in Latin-1 would both decode to "?quipe": refused,
    naming the line, never merged silently."""
    frame = example_frame().assign(family=["équipe"] * 24 + ["èquipe"] * 24)
    path = tmp_path / "runs.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    line = one_line(run("fit", path, "--family-col", "family"))
    assert line.startswith(f"error: {path}, row 2: not UTF-8 text (byte 0xe9")
    assert fake_fit == []


def test_utf8_runs_keep_their_labels(tmp_path):
    from bayescale import load_runs

    frame = example_frame().assign(family=["équipe"] * 24 + ["èquipe"] * 24)
    path = tmp_path / "runs.csv"
    path.write_text(frame.to_csv(index=False), encoding="utf-8")
    assert set(load_runs(path, family_col="family").data["family"]) == {"équipe", "èquipe"}


# ----------------------------------------------------- 12: edited metadata
def _read(path: Path):
    """A posterior file's tree in memory, the file closed (so that it can be rewritten)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load().copy(deep=True)


def _edit(path: Path, change, *, legacy: bool = False) -> None:
    """Rewrite a posterior file with its metadata changed, its digests as they were (an
    edit by hand); ``legacy``: as an earlier version wrote it, the arrays' digest only."""
    tree = _read(path)
    meta = json.loads(tree.attrs[store.META_KEY])
    change(meta)
    tree.attrs[store.META_KEY] = json.dumps(meta)
    if legacy:
        tree.attrs.pop(store.FULL_DIGEST_KEY, None)
    tree.to_netcdf(path, engine="h5netcdf")


EDITS = {
    "calibration": lambda m: m.update(calibration={"drift": "x"}),
    "input": lambda m: m.update(input="x"),
    "likelihood": lambda m: m.update(likelihood="cauchy"),
    "prior": lambda m: m.update(priors={"E": {"dist": "cauchy", "params": {"mu": 1.0}}}),
}


@pytest.mark.parametrize("what", list(EDITS))
@pytest.mark.parametrize("command", [["predict", "-N", "7B", "-D", "140B"], ["info"]])
def test_edited_metadata_fails_the_checksum(tmp_path, what, command):
    """Case 12: the checksum covers the metadata: an edit is one line, exit 1."""
    path = known_file(tmp_path / "x.posterior.nc", size=100, calibration=True,
                      data=example_frame())
    _edit(path, EDITS[what])
    line = one_line(run(command[0], path, *command[1:], "--json"))
    assert "do not match the checksum" in line


@pytest.mark.parametrize("what", list(EDITS))
def test_edited_metadata_of_an_earlier_version_fails_the_schema(tmp_path, what):
    """Case 12, a file of an earlier version (the arrays' digest only): its metadata is
    checked against the schema on load, one line naming the entry."""
    path = known_file(tmp_path / "x.posterior.nc", size=100, calibration=True,
                      data=example_frame())
    _edit(path, EDITS[what], legacy=True)
    for command in (["predict", "-N", "7B", "-D", "140B"], ["info"]):
        line = one_line(run(command[0], path, *command[1:]))
        assert "metadata entry" in line and what[:5] in line, line


def test_files_of_earlier_versions_still_load(tmp_path):
    """A file with only the arrays' digest (earlier versions) loads; its arrays are still
    verified."""
    path = known_file(tmp_path / "x.posterior.nc", size=100)
    _edit(path, lambda m: None, legacy=True)
    assert Posterior.load(path).n_draws == 100
    tree = _read(path)
    tree["posterior"].dataset["E"].values[0, 0] = 9.0
    tree.to_netcdf(path, engine="h5netcdf")  # damaged arrays, old digest
    with pytest.raises(BayescaleError, match="arrays do not match the checksum"):
        Posterior.load(path)


def test_new_files_carry_both_digests(tmp_path):
    path = known_file(tmp_path / "x.posterior.nc", size=100)
    attrs = _read(path).attrs
    assert store.DIGEST_KEY in attrs and store.FULL_DIGEST_KEY in attrs


# ------------------------------------------------------------ 13: tiny levels
@pytest.mark.parametrize("kind", ["hdi", "eti"])
def test_level_holding_too_few_draws_is_refused(known_example_file, kind):
    """Case 13: --level 1e-9 --interval hdi was the closest pair of draws, anywhere."""
    result = run("predict", known_example_file, "-N", "7B", "-D", "140B", "--level", "1e-9",
                 "--interval", kind, "--json")
    line = one_line(result)
    assert "holds fewer than 3 draws: give a level of at least" in line
    assert json.loads(result.stdout)["exit_code"] == 1


# ------------------------------------------------------------------ friction
def _commands_with_json() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(name for name, command in group.commands.items()
                  if any("--json" in p.opts for p in command.params))


def test_every_command_with_json_prints_a_json_error(tmp_path):
    """Friction: with --json every error prints one JSON object (message, exit code) on
    stdout and the human line on stderr: a missing file (exit 1) and a bad option (exit 2)."""
    commands = _commands_with_json()
    assert {"fit", "predict", "optimal", "risk", "info", "compare", "backtest"} <= set(commands)
    missing = tmp_path / "missing.csv"
    for name in commands:
        for args, code in (([name, str(missing), "--json"], None),
                           ([name, str(missing), "--json", "--no-such-option"], 2)):
            result = runner.invoke(app, args)
            assert result.exit_code in ((1, 2) if code is None else (code,)), (name, result.output)
            lines = result.stdout.splitlines()
            assert len(lines) == 1, (name, result.stdout)
            error = json.loads(lines[0])
            assert error["exit_code"] == result.exit_code
            assert result.stderr.splitlines()[-1] == f"error: {error['error']}", name


def test_targets_headers_match_case_insensitively(tmp_path, known_example_file):
    """Friction: ``Params,Tokens`` headers are read as a runs table's are."""
    targets = tmp_path / "targets.csv"
    targets.write_text("Params, TOKENS\n7B,140B\n1e9,2e10\n")
    result = run("predict", known_example_file, "--targets", targets, "--json")
    assert result.exit_code == 0, result.output
    assert [t["params"] for t in json.loads(result.stdout)["targets"]] == [7e9, 1e9]


def test_gzipped_runs_are_read(tmp_path):
    """Friction: ``runs.csv.gz`` is read (pandas reads it); its errors name the .gz file."""
    from bayescale import load_runs

    path = tmp_path / "runs.csv.gz"
    path.write_bytes(gzip.compress(EXAMPLE.read_bytes()))
    assert len(load_runs(path)) == len(load_runs(EXAMPLE))
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"params,tokens,loss\n1e9,2e10,abc\n"))
    with pytest.raises(BayescaleError, match=r"bad\.csv\.gz, row 2, column 'loss'"):
        load_runs(bad)


def test_folder_or_symlink_loop_as_posterior(tmp_path):
    """Friction: a folder or a symlink loop given as a posterior is named as such."""
    folder = tmp_path / "fits"
    folder.mkdir()
    assert "is a folder" in one_line(run("predict", folder, "-N", "7B", "-D", "140B"))
    loop = tmp_path / "loop.nc"
    loop.symlink_to(loop)
    line = one_line(run("info", loop))
    assert "no such file" not in line and "cannot read it" in line


def test_large_table_says_what_it_will_take(tmp_path, fake_fit, monkeypatch):
    """Friction: a large table (100,000 rows; here the threshold is lowered to the example's
    48) says, before fitting for minutes, how many rows and what to expect."""
    import bayescale.cli.fit_cmd as fit_cmd

    monkeypatch.setattr(fit_cmd, "LARGE_TABLE", 40)
    result = run("fit", EXAMPLE, "-o", tmp_path / "runs.posterior.nc")
    assert result.exit_code == 0, result.output
    assert "note: 48 rows: every step of the sampler visits each row" in result.stderr
    quiet = run("fit", EXAMPLE, "-o", tmp_path / "again.posterior.nc", "--json")
    assert quiet.exit_code == 0 and "note: 48 rows" in quiet.stderr  # stdout stays JSON
    assert json.loads(quiet.stdout)["n_rows"] == 48
