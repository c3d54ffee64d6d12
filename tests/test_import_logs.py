"""``bayescale import wandb|tensorboard``: training logs written from a simulated law load into
one run table; duplicates, final rows and bad input. No sampling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale.cli import app
from bayescale.core.errors import BayescaleError
from bayescale.data.logs import import_tensorboard, import_wandb, match_columns
from bayescale.data.runs import load_runs
from tests.builders import one_line_error
from tests.logs_builders import (
    METRIC_TRUTHS,
    TOKENS,
    histories,
    manifest,
    write_tensorboard,
    write_wandb,
)

runner = CliRunner()


def run(args: list) -> object:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """The same simulated runs as a W&B export folder (3 exact duplicate rows) and as
    TensorBoard event folders, with their manifest."""
    root = tmp_path_factory.mktemp("logs")
    runs = histories()
    return {"runs": runs, "manifest": manifest(runs, root / "manifest.csv"),
            "wandb": write_wandb(runs, root / "wandb", duplicate=3),
            "tb": write_tensorboard(runs, root / "tb"), "root": root}


def test_wandb_and_tensorboard_give_one_table(logs):
    wandb = import_wandb(logs["wandb"], logs["manifest"])
    tb = import_tensorboard(logs["tb"], logs["manifest"])
    assert wandb.duplicates == 3 and tb.duplicates == 0
    assert list(wandb.table.columns[:4]) == ["run", "params", "tokens", "seed"]
    assert set(METRIC_TRUTHS) <= set(wandb.metrics)
    # train and eval rows of one step are merged: one row per logged step
    assert len(wandb.table) == sum(f["_step"].nunique() for f in logs["runs"].values())
    pd.testing.assert_frame_equal(wandb.table, tb.table, check_dtype=False, rtol=1e-6)


def test_cli_writes_a_table_fit_reads(logs, tmp_path):
    out = tmp_path / "runs.csv"
    result = run(["import", "wandb", logs["wandb"], "--manifest", logs["manifest"], "--out", out,
                  "--metrics", "eval/*", "--json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["duplicates_dropped"] == 3 and answer["metrics"] == list(METRIC_TRUTHS)
    runs = load_runs(out, loss_col="eval/c4/CrossEntropyLoss", run_col="run")
    assert runs.n_runs == len(logs["runs"])
    human = run(["import", "tensorboard", logs["tb"], "--manifest", logs["manifest"],
                 "--out", tmp_path / "tb.parquet"])
    assert human.exit_code == 0, human.stderr
    assert "written to" in human.stderr
    assert len(pd.read_parquet(tmp_path / "tb.parquet")) == len(pd.read_csv(out))


def test_final_only_keeps_each_runs_last_row(logs):
    table = import_wandb(logs["wandb"], logs["manifest"], final_only=True).table
    assert len(table) == len(logs["runs"])
    for name, frame in logs["runs"].items():
        assert table.set_index("run").loc[name, "tokens"] == frame[TOKENS].max()


def test_unlisted_runs_are_named(logs, tmp_path):
    short = tmp_path / "manifest.csv"
    pd.read_csv(logs["manifest"]).head(2).to_csv(short, index=False)
    result = import_wandb(logs["wandb"], short)
    assert result.table["run"].nunique() == 2
    assert len(result.unlisted) == len(logs["runs"]) - 2


def test_manifest_naming_a_missing_log(logs, tmp_path):
    bad = tmp_path / "manifest.csv"
    frame = pd.read_csv(logs["manifest"])
    frame.loc[len(frame)] = ["run-missing", "7B", 0]
    frame.to_csv(bad, index=False)
    for kind in ("wandb", "tb"):
        line = one_line_error(run(["import", "wandb" if kind == "wandb" else "tensorboard",
                                   logs[kind], "--manifest", bad, "--out", tmp_path / "x.csv"]))
        assert "run 'run-missing' has no" in line and f"row {len(frame) + 1}" in line
    assert not (tmp_path / "x.csv").exists()


def test_log_without_tokens_column(logs, tmp_path):
    folder = tmp_path / "wandb"
    folder.mkdir()
    name, frame = next(iter(logs["runs"].items()))
    frame.drop(columns=[TOKENS]).to_csv(folder / f"{name}.csv", index=False)
    pd.read_csv(logs["manifest"]).head(1).to_csv(tmp_path / "m.csv", index=False)
    line = one_line_error(run(["import", "wandb", folder, "--manifest", tmp_path / "m.csv",
                               "--out", tmp_path / "x.csv"]))
    assert f"no tokens column '{TOKENS}'" in line and "--tokens-col" in line


@pytest.mark.parametrize("content, expected", [
    ("name,params\na,7B\n", "needs a 'run' column"),
    ("run,params\na,seven\n", "'seven' is not a model size"),
    ("run,params\na,7B\na,8B\n", "listed twice"),
])
def test_bad_manifest(logs, tmp_path, content, expected):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(BayescaleError, match=expected):
        import_wandb(logs["wandb"], tmp_path / "m.csv")


def test_missing_folder_and_bad_out(logs, tmp_path):
    line = one_line_error(run(["import", "wandb", tmp_path / "nope", "--manifest",
                               logs["manifest"], "--out", tmp_path / "x.csv"]))
    assert "no such folder" in line
    one_line_error(run(["import", "wandb", logs["wandb"], "--manifest", logs["manifest"],
                        "--out", tmp_path / "x.txt"]), code=2)


def test_match_columns():
    cols = ["a/x", "a/y", "b"]
    assert match_columns(cols, "a/*") == ["a/x", "a/y"]
    assert match_columns(cols, "b, a/y") == ["a/y", "b"]
    assert match_columns(cols, "B") == ["b"]  # names match up to case, as the loader's
    with pytest.raises(BayescaleError, match="'c' matches no column"):
        match_columns(cols, "a/*,c")
    assert np.all([c in cols for c in match_columns(cols, "*")])


def _eval_metric() -> str:
    return next(iter(METRIC_TRUTHS))


def test_eval_rows_logged_without_tokens_take_them_from_their_step(logs, tmp_path):
    """W&B puts each log call on its own row: eval rows without the tokens column still count,
    with the tokens of their step."""
    runs = {name: frame.assign(**{TOKENS: frame[TOKENS].where(frame[_eval_metric()].isna())})
            for name, frame in logs["runs"].items()}
    blanked = import_wandb(write_wandb(runs, tmp_path / "wb"), logs["manifest"]).table
    full = import_wandb(logs["wandb"], logs["manifest"]).table
    pd.testing.assert_frame_equal(blanked, full)


def test_final_only_takes_the_last_row_with_the_chosen_metric(logs, tmp_path):
    """A run whose last logged row is a training row: its last eval row is the final one."""
    runs = {}
    for name, frame in logs["runs"].items():
        last_step = frame["_step"].max()
        extra = frame[frame["_step"] == last_step].head(1).assign(
            _step=last_step + 10, **{TOKENS: frame[TOKENS].max() * 1.01})
        extra[_eval_metric()] = np.nan
        runs[name] = pd.concat([frame, extra], ignore_index=True)
    table = import_wandb(write_wandb(runs, tmp_path / "wb"), logs["manifest"],
                         metrics="eval/*", final_only=True).table
    assert len(table) == len(runs)
    for name, frame in logs["runs"].items():
        assert table.set_index("run").loc[name, "tokens"] == frame[TOKENS].max()
    # every metric (the default): each keeps its own last value, the evaluation included (it
    # was blank, hidden by the training row logged after it)
    every = import_wandb(write_wandb(runs, tmp_path / "wb2"), logs["manifest"],
                         final_only=True).table
    for name in runs:
        rows = every[every["run"] == name]
        assert rows[_eval_metric()].notna().sum() == 1
        assert rows.loc[rows[_eval_metric()].notna(), "tokens"].item() == \
            logs["runs"][name][TOKENS].max()
        for metric in [c for c in every.columns if c.startswith(("train", "eval"))]:
            assert rows[metric].notna().sum() <= 1  # one final value per run and metric


def test_a_cell_of_text_in_a_log_is_an_error_naming_it(logs, tmp_path):
    runs = {name: frame.astype({_eval_metric(): object}) for name, frame in logs["runs"].items()}
    first = next(iter(runs))
    row = int(runs[first][_eval_metric()].first_valid_index())
    runs[first].loc[row, _eval_metric()] = "abc"
    folder = write_wandb(runs, tmp_path / "wb")
    line = one_line_error(run(["import", "wandb", folder, "--manifest", logs["manifest"],
                               "--out", tmp_path / "t.csv"]))
    assert f"{first}.csv, row {row + 2}, column '{_eval_metric()}'" in line
    assert "'abc' is not a number" in line and not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("name", ["seed", "params", "tokens", "run"])
def test_a_metric_named_as_a_table_column_is_an_error(logs, tmp_path, name):
    """A logged metric named like a column the table already has (the manifest's seed, or
    run, params, tokens) gave a pandas traceback, or two 'run' columns with the metric's
    values replaced by the run names; now one line naming the log and the metric."""
    runs = {key: frame.assign(**{name: 5.0}) for key, frame in logs["runs"].items()}
    folder = write_wandb(runs, tmp_path / "wb")
    out = tmp_path / "t.csv"
    line = one_line_error(run(["import", "wandb", folder, "--manifest", logs["manifest"],
                               "--out", out]))
    assert f"a logged metric is named '{name}'" in line and not out.exists()
    kept = run(["import", "wandb", folder, "--manifest", logs["manifest"], "--out", out,
                "--metrics", "eval/*"])
    assert kept.exit_code == 0, kept.output  # left out with --metrics, it is no trouble


def test_a_run_whose_tokens_are_blank_is_an_error_not_dropped(logs, tmp_path):
    runs = dict(logs["runs"])
    last = list(runs)[-1]
    runs[last] = runs[last].assign(**{next(c for c in runs[last] if "token" in c): np.nan})
    folder = write_wandb(runs, tmp_path / "wb")
    line = one_line_error(run(["import", "wandb", folder, "--manifest", logs["manifest"],
                               "--out", tmp_path / "t.csv"]))
    assert f"{last}.csv" in line and "no row has a positive number of tokens" in line


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_event_file_is_an_error_naming_it(logs, tmp_path, damage):
    """TensorBoard's loader stops quietly at a damaged record: a run cut to half its file
    kept 4 of 10 rows (exit 0), and a file of garbage was blamed on the tokens column."""
    import os
    import shutil

    folder = tmp_path / "tb"
    shutil.copytree(logs["tb"], folder)
    event = next(sorted(folder.iterdir())[0].rglob("events.out.tfevents*"))
    data = event.read_bytes()
    event.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(50))
    line = one_line_error(run(["import", "tensorboard", folder, "--manifest",
                               logs["manifest"], "--out", tmp_path / "t.csv"]))
    assert f"{event.name} is truncated or damaged" in line
    assert not (tmp_path / "t.csv").exists()
