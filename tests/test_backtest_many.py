"""``bayescale backtest --loss-cols``: one backtest per metric through fit-many's executors.

The fast tests swap the backtest's fit for known draws (``known_fits``, no sampling); the one
``slow`` test samples briefly and checks that local processes give the in-process summary.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.evaluate.backtest_many import BACKTEST_SUMMARY, COLUMNS
from tests.builders import one_line_error
from tests.test_backtest import known_fits, misspecified_runs

runner = CliRunner()
HOLDOUT = ["--holdout-compute-frac", "0.125", "--bootstrap", "10"]


def metrics_table(path, families: int = 2):
    """Misspecified runs with metrics m0, m1 (scaled losses) and ``sparse`` (three values)."""
    frame = misspecified_runs(families=families).data.drop(columns=["line"])
    frame["m0"] = frame.pop("loss")
    frame["m1"] = frame["m0"] * 1.1
    frame["sparse"] = np.where(np.arange(len(frame)) < 3, frame["m0"], np.nan)
    frame.to_csv(path, index=False)
    return path


def run(*args) -> object:
    return runner.invoke(app, ["backtest", *[str(a) for a in args]])


def test_summary_per_metric_with_a_failed_row(tmp_path, monkeypatch):
    known_fits(monkeypatch)
    runs = metrics_table(tmp_path / "runs.csv")
    result = run(runs, "--loss-cols", "m*,sparse", "--family-col", "family", "--out",
                 tmp_path / "out", *HOLDOUT)
    assert result.exit_code == 3, result.output  # one metric failed
    summary = pd.read_csv(tmp_path / "out" / BACKTEST_SUMMARY).fillna({"reason": ""})
    assert tuple(summary.columns) == COLUMNS
    assert list(summary["metric"]) == ["m0", "m1", "sparse"]
    ok = summary.iloc[:2]
    assert list(ok["status"]) == ["ok", "ok"] and list(ok["n_cases"]) == [2, 2]
    for key in ("are_median", "coverage_90", "halfwidth_90_median", "baseline_are_median"):
        assert np.isfinite(ok[key].astype(float)).all(), key
    failed = summary.iloc[2]
    assert failed["status"] == "failed" and failed["reason"]
    assert "failed: sparse:" in result.stderr
    assert not list((tmp_path / "out").glob("*.tmp*"))


def test_json_is_one_object_and_matches_the_single_backtest(tmp_path, monkeypatch):
    known_fits(monkeypatch)
    runs = metrics_table(tmp_path / "runs.csv", families=1)
    result = run(runs, "--loss-cols", "m0", "--out", tmp_path / "out", *HOLDOUT, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"out", "metrics", "ok", "unconverged", "failed", "summary"}
    assert (report["metrics"], report["ok"], report["failed"]) == (1, 1, 0)
    row = report["summary"][0]
    assert set(row) == set(COLUMNS) and row["metric"] == "m0" and row["reason"] == ""
    single = run(runs, "--loss-col", "m0", *HOLDOUT, "--json")
    assert single.exit_code == 0, single.output
    alone = json.loads(single.stdout)
    for key in ("n_cases", "are_median", "coverage_50", "coverage_90", "halfwidth_90_median"):
        assert row[key] == pytest.approx(alone[key]), key
    assert row["baseline_are_median"] == pytest.approx(alone["baseline"]["are_median"])


def test_bad_pattern_and_options_are_one_line(tmp_path):
    runs = metrics_table(tmp_path / "runs.csv", families=1)
    line = one_line_error(run(runs, "--loss-cols", "eval/*", "--out", tmp_path / "out"), 1)
    assert "--loss-cols 'eval/*' matches no column" in line
    one_line_error(run(runs, "--loss-cols", "m0"), 2)  # no --out
    one_line_error(run(runs, "--out", tmp_path / "out"), 2)  # --out without --loss-cols
    one_line_error(run(runs, "--loss-cols", "m0", "--out", tmp_path / "out", "--workers", "2",
                       "--dask", "tcp://127.0.0.1:1"), 2)
    assert not (tmp_path / "out" / BACKTEST_SUMMARY).exists()


@pytest.mark.slow
def test_local_processes_give_the_in_process_summary(tmp_path):
    runs = metrics_table(tmp_path / "runs.csv", families=1)
    short = ["--loss-cols", "m0,m1", "--holdout-compute-frac", "0.125", "--bootstrap", "0",
             "--no-calibration", "--draws", "100", "--tune", "100", "--json"]
    here = run(runs, *short, "--out", tmp_path / "here")
    there = run(runs, *short, "--out", tmp_path / "there", "--workers", "2")
    assert here.exit_code == 0 and there.exit_code == 0, (here.output, there.output)
    assert json.loads(here.stdout)["summary"] == json.loads(there.stdout)["summary"]


def test_a_backtest_that_fails_is_a_row_with_its_reason(tmp_path, monkeypatch):
    from bayescale.core.errors import BayescaleError
    from bayescale.evaluate import backtest_many

    def broken(runs, *args, **kwargs):
        raise BayescaleError("the sampler gave up")

    monkeypatch.setattr(backtest_many, "backtest", broken)
    runs = metrics_table(tmp_path / "runs.csv", families=1)
    result = run(runs, "--loss-cols", "m1", "--out", tmp_path / "out", *HOLDOUT, "--json")
    assert result.exit_code == 3
    (row,) = json.loads(result.stdout)["summary"]
    assert row["status"] == "failed" and "the sampler gave up" in row["reason"]
