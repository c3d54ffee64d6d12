"""The run loader: formats, column mapping, sizes with units, derived tokens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayescale.core.errors import BayescaleError
from bayescale.data.runs import check_identifiable, load_runs, parse_size
from tests.builders import EPOCH_CSV, EXAMPLE, needs_shared


@pytest.mark.parametrize(
    ("text", "value"),
    [("70B", 70e9), ("1.4T", 1.4e12), ("125M", 125e6), ("6.7e9", 6.7e9), (" 7b ", 7e9),
     ("350k", 3.5e5), ("1_000_000", 1e6), (12, 12.0)],
)
def test_parse_size_accepts_units(text, value):
    assert parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "7X", "", "1.2.3B", "B7"])
def test_parse_size_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_size(text)


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "N": ["125M", "350M", "1.3B", "125M"],
        "D": ["2.5B", "7B", "26B", "10B"],
        "L": [3.3, 3.0, 2.7, 3.1],
        "name": ["a", "b", "c", "d"],
    })


def _write(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as a CSV, Parquet or JSON-lines file by ``path``'s suffix (NaN as null)."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text("\n".join(json.dumps({k: (None if v != v else v) for k, v in r.items()})
                                  for r in frame.to_dict("records")))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_formats_load_the_same_runs(tmp_path, suffix):
    path = _write(_frame(), tmp_path / f"runs{suffix}")
    runs = load_runs(path, params_col="N", tokens_col="D", loss_col="L", run_col="name")
    assert runs.data["params"].tolist() == [125e6, 350e6, 1.3e9, 125e6]
    assert runs.data["tokens"].tolist() == [2.5e9, 7e9, 26e9, 10e9]
    assert runs.data["run"].tolist() == ["a", "b", "c", "d"]
    assert runs.n_runs == 4 and len(runs.sha256) == 64


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_missing_cell_is_an_empty_value_in_every_format(tmp_path, suffix):
    """A Parquet or JSON null arrived as NaN and was reported as "nan is not a finite number";
    every format now says what CSV says of a blank cell."""
    frame = pd.DataFrame({"params": [1e9, 2e9], "tokens": [2e10, None], "loss": [2.5, 2.4]})
    path = _write(frame, tmp_path / f"runs{suffix}")
    with pytest.raises(BayescaleError, match=r"row \d, column 'tokens': empty value"):
        load_runs(path)


def test_flops_column_derives_tokens(tmp_path):
    path = tmp_path / "runs.csv"
    pd.DataFrame({"params": [1e9, 2e9], "flops": [6e19, 1.2e20], "loss": [2.5, 2.4]}).to_csv(
        path, index=False)
    runs = load_runs(path, flops_col="flops")
    np.testing.assert_allclose(runs.data["tokens"], [1e10, 1e10])


def test_error_names_file_row_and_column(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,loss\n1e9,2e10,2.5\n2e9,abc,2.4\n")
    with pytest.raises(BayescaleError) as info:
        load_runs(path)
    message = info.value.one_line()
    assert str(path) in message and "row 3" in message and "'tokens'" in message


def test_missing_column_suggests_closest(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,los\n1e9,2e10,2.5\n")
    with pytest.raises(BayescaleError, match="Did you mean 'los'"):
        load_runs(path)


def test_one_model_size_is_not_identified(tmp_path):
    path = tmp_path / "runs.csv"
    rows = "\n".join(f"1e9,{d},{2.5 + i / 10}" for i, d in enumerate([1e10, 2e10, 4e10, 8e10,
                                                                       1.6e11, 3.2e11]))
    path.write_text("params,tokens,loss\n" + rows + "\n")
    with pytest.raises(BayescaleError, match="one model size"):
        check_identifiable(load_runs(path))


def test_bundled_example_loads():
    runs = load_runs(EXAMPLE, run_col="run", seed_col="seed")
    assert len(runs) == 48 and runs.data["params"].nunique() > 20


@needs_shared(EPOCH_CSV)
def test_epoch_table_maps_columns():
    runs = load_runs(EPOCH_CSV, params_col="Model Size", flops_col="Training FLOP")
    assert len(runs) == 245
    assert runs.data["tokens"].min() == pytest.approx(2.45e8, rel=0.01)


def test_unique_tokens_rounded_above_the_tokens_seen_are_the_tokens_seen(tmp_path):
    """Exports round sizes ("19.19B" unique of 19,188,940,800 tokens): within 1% U is D."""
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,loss,u\n1e8,1e9,3.5,1e9\n1e9,19188940800,2.8,19.19B\n")
    runs = load_runs(path, unique_tokens_col="u")
    assert runs.data["unique_tokens"].tolist() == [1e9, 19188940800.0]
    path.write_text("params,tokens,loss,u\n1e8,1e9,3.5,1e9\n1e9,19188940800,2.8,19.5B\n")
    with pytest.raises(BayescaleError, match=r"1\.95e\+10 unique tokens is more than the "
                                             r"1\.91889e\+10 tokens seen"):
        load_runs(path, unique_tokens_col="u")


def test_a_column_named_twice_is_refused(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("# exported\nparams,tokens,loss, loss\n1e8,2e9,3.1,9\n1e9,2e10,2.6,9\n")
    with pytest.raises(BayescaleError, match="names the column 'loss' twice") as info:
        load_runs(path)
    assert "row 2" in str(info.value)
