"""``bayescale fit-many``: batches of fits, their summary, resuming, executors and bad input.

Most tests swap the fit for a posterior of known draws (no sampling); the ``slow`` ones sample
(2 chains x 200 draws): an interrupted batch resumed through the command line in a subprocess,
the same posteriors on every executor, and parameters recovered from imported training logs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.evaluate import batch
from bayescale.law.simulate import EPOCH_LAW, chinchilla_loss, isoflop_sweep
from tests.builders import known_draws_posterior, one_line_error, with_meta
from tests.logs_builders import METRIC_TRUTHS, histories, manifest, write_tensorboard, write_wandb

runner = CliRunner()
BAYESCALE = Path(sys.executable).with_name("bayescale")
SHORT = ["--chains", "2", "--draws", "200", "--tune", "200"]


def run(args: list) -> object:
    return runner.invoke(app, [str(a) for a in args])


def study_table(groups: int = 2, metrics: int = 3, random_seed: int = 0) -> pd.DataFrame:
    """Simulated studies (isoFLOP sweeps, 15 runs each), each metric its own law: columns
    run, params, tokens, study, m0, m1, ..."""
    rng = np.random.default_rng(random_seed)
    frames = []
    for g in range(groups):
        base = isoflop_sweep([1e18, 1e19, 1e20], 5, seed_noise=0.0, random_seed=g)
        frame = base[["run", "params", "tokens"]].assign(study=f"s{g}")
        for m in range(metrics):
            truth = {**EPOCH_LAW, "E": 1.7 + 0.1 * m + 0.05 * g}
            frame[f"m{m}"] = chinchilla_loss(truth, frame["params"], frame["tokens"]) * np.exp(
                rng.normal(0.0, 0.005, len(frame)))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture()
def fake_fits(monkeypatch):
    """Replace the fit by known draws on the job's rows; records each job's rows."""
    calls: list[int] = []

    def fake(runs, options):
        calls.append(len(runs))
        post = known_draws_posterior(400, chains=2, data=runs.data[["params", "tokens", "loss"]])
        post = with_meta(post, input={"n_rows": len(runs), "n_runs": runs.n_runs},
                         diagnostics={"divergences": 0, "max_r_hat": 1.0, "min_ess_bulk": 400.0,
                                      "min_ess_tail": 400.0, "problems": []})
        return batch.Outcome(post, {**batch.describe(post, options), "seconds": 0.01})

    monkeypatch.setattr(batch, "fit_job", fake)
    return calls


def test_batch_summary_and_resume(tmp_path, fake_fits):
    runs = tmp_path / "runs.csv"
    study_table().to_csv(runs, index=False)
    out = tmp_path / "out"
    args = ["fit-many", runs, "--loss-cols", "m*", "--group-col", "study", "--out", out]
    first = run([*args, "--json"])
    assert first.exit_code == 0, first.stderr
    answer = json.loads(first.stdout)
    assert (answer["fits"], answer["ok"], answer["reused"]) == (6, 6, 0)
    assert len(fake_fits) == 6
    summary = pd.read_csv(out / "summary.csv")
    text = ["warnings", "reason", "file"]
    summary[text] = summary[text].astype(object).fillna("")  # blank CSV cells read as NaN
    pd.testing.assert_frame_equal(summary, pd.read_parquet(out / "summary.parquet"),
                                  check_dtype=False)
    assert list(summary[["group", "metric"]].itertuples(index=False, name=None)) == [
        (f"s{g}", f"m{m}") for g in range(2) for m in range(3)]
    for column in ("E_median", "E_lower", "E_upper", "alpha_median", "max_r_hat", "seconds",
                   "status", "warnings", "rows"):
        assert column in summary
    assert (summary["rows"] == 15).all()
    for path in summary["file"]:
        Posterior.load(out / path)
    assert (out / "inputs" / "s0__m0.csv").is_file()
    # A rerun refits nothing; new targets only recompute the summary.
    again = run([*args, "--target", "70B:1.4T", "--json"])
    assert again.exit_code == 0, again.stderr
    assert len(fake_fits) == 6
    rows = json.loads(again.stdout)["summary"]
    assert all(row["reused"] for row in rows)
    assert all(row["loss_70B:1.4T_lower"] < row["loss_70B:1.4T_median"]
               < row["loss_70B:1.4T_upper"] for row in rows)
    # Another level: the summary and each fit's record say it (the record was left at 0.9).
    assert run([*args, "--level", "0.5"]).exit_code == 0 and len(fake_fits) == 6
    records = [json.loads(p.read_text()) for p in (out / "fits").glob("*.json")]
    assert len(records) == 6 and all(r["level"] == 0.5 for r in records)
    # A posterior damaged since is fitted again (once, it was reused, or ended the batch).
    damaged = out / "fits" / "s0__m0.posterior.nc"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    assert run([*args, "--level", "0.8"]).exit_code == 0 and len(fake_fits) == 7
    Posterior.load(damaged)
    # Other sampler options are another fit: refitted.
    assert run([*args, "--draws", "500"]).exit_code == 0
    assert len(fake_fits) == 13


def test_bad_group_is_a_failed_row(tmp_path, fake_fits):
    table = study_table(groups=3, metrics=1)
    bad_line = int(np.flatnonzero(table["study"] == "s1")[2]) + 2  # the CSV header is line 1
    table["m0"] = table["m0"].astype(object)
    table.loc[bad_line - 2, "m0"] = "abc"
    few = table[table["study"] == "s2"].index[3:]
    table = table.drop(index=few)  # three rows cannot identify five parameters
    runs = tmp_path / "runs.csv"
    table.to_csv(runs, index=False)
    result = run(["fit-many", runs, "--loss-cols", "m0", "--group-col", "study", "--out",
                  tmp_path / "out"])
    assert result.exit_code == 3, result.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("group")
    assert summary.loc["s0", "status"] == "ok"
    assert summary.loc["s1", "status"] == "failed"
    assert f"{runs}, row {bad_line}, column 'm0': 'abc' is not a number" in \
        summary.loc["s1", "reason"]
    assert summary.loc["s2", "status"] == "failed"
    assert "cannot identify" in summary.loc["s2", "reason"]
    # the counts of the fit that ran stay whole numbers beside the failed rows' gaps
    lines = [line.split(",") for line in
             (tmp_path / "out" / "summary.csv").read_text().splitlines()]
    ok = next(cells for cells in lines if cells[0] == "s0")
    assert ok[lines[0].index("rows")].isdigit() and ok[lines[0].index("runs")].isdigit()
    assert "failed: s1 m0:" in result.stderr
    assert len(fake_fits) == 1


def test_blank_metric_cells_drop_rows_for_that_metric(tmp_path, fake_fits):
    table = study_table(groups=1, metrics=2)
    table.loc[[0, 4], "m1"] = np.nan
    table.to_csv(tmp_path / "runs.csv", index=False)
    result = run(["fit-many", tmp_path / "runs.csv", "--loss-cols", "m0,m1", "--out",
                  tmp_path / "out", "--json"])
    assert result.exit_code == 0, result.stderr
    assert [row["rows"] for row in json.loads(result.stdout)["summary"]] == [15, 13]


def test_bad_input_one_line(tmp_path):
    runs = tmp_path / "runs.csv"
    study_table(groups=1).to_csv(runs, index=False)
    line = one_line_error(run(["fit-many", runs, "--loss-cols", "eval/*", "--out",
                               tmp_path / "out"]))
    assert "--loss-cols 'eval/*' matches no column" in line
    study_table(groups=1).drop(columns=["tokens"]).to_csv(tmp_path / "no_tokens.csv",
                                                          index=False)
    line = one_line_error(run(["fit-many", tmp_path / "no_tokens.csv", "--loss-cols", "m*",
                               "--out", tmp_path / "out"]))
    assert "no column 'tokens'" in line and "--flops-col" in line
    one_line_error(run(["fit-many", runs, "--loss-cols", "m*", "--out", tmp_path / "out",
                        "--workers", "2", "--dask", "tcp://127.0.0.1:1"]), code=2)
    one_line_error(run(["fit-many", runs, "--loss-cols", "m*", "--out", tmp_path / "out",
                        "--target", "70B"]), code=2)
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_unreachable_dask_scheduler(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "DASK_CONNECT_TIMEOUT", 2)
    runs = tmp_path / "runs.csv"
    study_table(groups=1).to_csv(runs, index=False)
    line = one_line_error(run(["fit-many", runs, "--loss-cols", "m*", "--out", tmp_path / "out",
                               "--dask", "tcp://127.0.0.1:9"]))
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line


# ------------------------------------------------------------------------------ sampling
def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 300.0) -> list[str]:
    """Read stderr lines until one holds ``text``."""
    lines, start = [], time.monotonic()
    while time.monotonic() - start < timeout:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError("".join(lines))


@pytest.mark.slow
def test_interrupted_batch_resumes(tmp_path):
    """SIGINT after the first fit: exit 130, no partial file; the rerun fits only the rest."""
    runs = tmp_path / "runs.csv"
    study_table(groups=1, metrics=5).to_csv(runs, index=False)
    out = tmp_path / "out"
    # Long enough chains that the signal lands before the last fit ends (a fit after the first
    # reuses the compiled model and only samples).
    args = [str(BAYESCALE), "fit-many", str(runs), "--loss-cols", "m*", "--out", str(out),
            "--chains", "2", "--draws", "1000", "--tune", "200", "--no-calibration"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, "[1/5]")
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert "interrupted:" in rest and "Traceback" not in rest
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))
    assert not (out / "summary.csv").exists()
    done = sorted(p.name for p in (out / "fits").glob("*.posterior.nc"))
    assert 1 <= len(done) < 5
    assert sorted(p.name for p in (out / "fits").glob("*.json")) == [
        name.replace(".posterior.nc", ".json") for name in done]
    stamps = {name: (out / "fits" / name).stat().st_mtime_ns for name in done}

    again = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=600)
    assert again.returncode in (0, 3), again.stderr
    rows = json.loads(again.stdout)["summary"]
    assert [row["status"] != "failed" for row in rows] == [True] * 5
    assert sum(row["reused"] for row in rows) == len(done)
    assert {name: (out / "fits" / name).stat().st_mtime_ns for name in done} == stamps
    assert len(list((out / "fits").glob("*.posterior.nc"))) == 5


def _draws(folder: Path) -> dict[str, np.ndarray]:
    return {path.name: np.stack([Posterior.load(path).draws()[k]
                                 for k in ("E", "A", "B", "alpha", "beta")])
            for path in sorted((folder / "fits").glob("*.posterior.nc"))}


@pytest.mark.slow
def test_same_posteriors_on_every_executor(tmp_path):
    """In this process, on 2 local processes and on a 2-worker Dask LocalCluster."""
    from distributed import LocalCluster

    runs = tmp_path / "runs.csv"
    study_table(groups=1, metrics=2).to_csv(runs, index=False)
    base = ["fit-many", runs, "--loss-cols", "m*", *SHORT, "--no-calibration"]
    assert run([*base, "--out", tmp_path / "local"]).exit_code in (0, 3)
    assert run([*base, "--out", tmp_path / "procs", "--workers", "2"]).exit_code in (0, 3)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        result = run([*base, "--out", tmp_path / "dask", "--dask", cluster.scheduler_address])
    assert result.exit_code in (0, 3), result.stderr
    local = _draws(tmp_path / "local")
    assert len(local) == 2
    for other in ("procs", "dask"):
        draws = _draws(tmp_path / other)
        assert draws.keys() == local.keys()
        for name in local:
            np.testing.assert_array_equal(draws[name], local[name])


@pytest.mark.slow
def test_logs_to_fits_recover_the_law(tmp_path):
    """W&B and TensorBoard logs of a simulated law import to one table; fit-many on it puts
    each metric's true parameters inside their 95% intervals."""
    logs = histories()
    listed = manifest(logs, tmp_path / "manifest.csv")
    for kind, writer in (("wandb", write_wandb), ("tensorboard", write_tensorboard)):
        writer(logs, tmp_path / kind)
        result = run(["import", kind, tmp_path / kind, "--manifest", listed, "--out",
                      tmp_path / f"{kind}.csv", "--metrics", "eval/*"])
        assert result.exit_code == 0, result.stderr
    wandb, tb = (pd.read_csv(tmp_path / f"{k}.csv") for k in ("wandb", "tensorboard"))
    pd.testing.assert_frame_equal(wandb, tb, rtol=1e-6)
    # Rows scatter independently around the law (no run shift), as a fit without --run-col
    # assumes; eight sizes over two decades identify the law.
    result = run(["fit-many", tmp_path / "wandb.csv", "--loss-cols", "eval/*", "--out",
                  tmp_path / "fits", *SHORT, "--level", "0.95", "--json"])
    assert result.exit_code in (0, 3), result.stderr
    rows = {row["metric"]: row for row in json.loads(result.stdout)["summary"]}
    assert rows.keys() == METRIC_TRUTHS.keys()
    for metric, truth in METRIC_TRUTHS.items():
        for name, value in truth.items():
            assert rows[metric][f"{name}_lower"] <= value <= rows[metric][f"{name}_upper"], (
                metric, name, value, rows[metric])


def test_a_law_that_needs_unique_tokens_is_a_usage_error(tmp_path):
    """fit-many reads no unique tokens: a repeated-data law is refused up front (exit 2), not
    by every fit with a pointer to an option fit-many does not have."""
    table = tmp_path / "study.csv"
    study_table(groups=1, metrics=1).to_csv(table, index=False)
    out = tmp_path / "fits"
    line = one_line_error(run(["fit-many", table, "--loss-cols", "m0", "--law", "muennighoff",
                               "--out", out]), code=2)
    assert "--law" in line and "chinchilla" in line and "muennighoff" not in line
    assert not out.exists()


def test_an_interrupt_with_json_prints_the_error_object(tmp_path, monkeypatch):
    """fit-many caught the interrupt and exited 130 with nothing on stdout; with --json it
    prints the error object, as every command does (docs/cli.md)."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run_batch", interrupted)
    runs = tmp_path / "runs.csv"
    study_table(groups=1, metrics=2).to_csv(runs, index=False)
    result = run(["fit-many", runs, "--loss-cols", "m*", "--out", tmp_path / "out", "--json"])
    assert result.exit_code == 130
    answer = json.loads(result.stdout)
    assert answer["exit_code"] == 130 and answer["error"].startswith("interrupted: 0 fits")


def test_max_token_frac_without_runs_is_a_usage_error(tmp_path):
    """It failed every fit alike (exit 3, summary and inputs written); now exit 2, no files."""
    runs = tmp_path / "runs.csv"
    study_table(groups=1, metrics=2).to_csv(runs, index=False)
    out = tmp_path / "out"
    result = run(["fit-many", runs, "--loss-cols", "m*", "--out", out, "--max-token-frac", "0.5"])
    assert result.exit_code == 2 and "needs --run-col" in result.stderr
    assert not out.exists()


def test_a_fit_that_fails_on_rerun_leaves_no_earlier_files(tmp_path, fake_fits):
    """A rerun on a table whose metric lost its values marked the fit failed, but the earlier
    posterior, record and inputs stayed beside the summary, for predict to read."""
    runs = tmp_path / "runs.csv"
    table = study_table(groups=1, metrics=2)
    table.to_csv(runs, index=False)
    out = tmp_path / "out"
    args = ["fit-many", runs, "--loss-cols", "m*", "--out", out]
    assert run(args).exit_code == 0
    name = next(p.stem.replace(".posterior", "") for p in (out / "fits").glob("*m1*.nc"))
    table.assign(m1=np.nan).to_csv(runs, index=False)
    assert run(args).exit_code == 3
    assert not list((out / "fits").glob(f"{name}.*"))
    assert not (out / "inputs" / f"{name}.csv").exists()
    assert (out / "fits" / f"{name.replace('m1', 'm0')}.posterior.nc").exists()
