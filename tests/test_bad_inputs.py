"""Bad input through the command line: one line on stderr, exit 1 (2 for usage), no file left.

The corpus is in ``tests/bad_inputs/`` (see its README); posterior files that need a real
posterior (truncated, corrupt) are made here from known draws, without sampling.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayescale import Posterior
from bayescale.cli import app
from bayescale.data.runs import load_runs
from tests.builders import EXAMPLE, known_file

CORPUS = Path(__file__).parent / "bad_inputs"
runner = CliRunner()


def run(args: list[str]):
    """Invoke the app in-process; stdout and stderr apart."""
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, code: int = 1) -> str:
    """Assert the one-line error contract and return the line."""
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # no crash
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


def only(folder: Path, *names: str) -> None:
    """The folder holds exactly ``names``: no output file, no stray temporary file."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# ------------------------------------------------------------------- tables of runs
VALUE_CASES = [
    ("nonnumeric", "'abc' is not a number"),
    ("zero", "0 is not positive"),
    ("negative", "-5 is not positive"),
    ("nan", "nan is not a finite number"),
    ("inf", "inf is not a finite number"),
]
RUN_CASES = [
    # file, words the line must contain, row, column
    ("empty.csv", "the file is empty", None, None),
    ("header_only.csv", "header but no rows", None, None),
    ("misspelt_column.csv", "Did you mean 'los'? (--loss-col 'los')", None, "loss"),
    ("missing_column.csv", "no column 'loss'", None, "loss"),
    *[(f"{kind}_{col}.csv", words, 3, col)
      for kind, words in VALUE_CASES for col in ("params", "tokens", "loss")],
    ("perplexity_as_loss.csv", "above any plausible cross-entropy", 3, "loss"),
    ("duplicated_rows.csv", "repeats row 2", 4, None),
    ("single_run.csv", "cannot identify a law", None, None),
    ("one_model_size.csv", "the law is not identified", None, "params"),
    ("units_mixed.csv", "while row 2 has a unit ('125M'): a unit slip?", 4, "params"),
    ("unit_twice.csv", "7e+18 is implausibly large for a count of params", 4, "params"),
    ("wrong_delimiter.csv", "is the delimiter right?", None, "params"),
    ("truncated.parquet", "not a readable Parquet file", None, None),
    ("parquet_named.csv", "binary, not text, and looks like Parquet (it starts with PAR1): give "
     "it a .parquet name", None, None),
    ("columns.json", "one JSON object of columns ('params', 'tokens', 'loss'); expected "
     "records: an array of objects, one per row, or JSON Lines", None, None),
]


@pytest.mark.parametrize(("name", "words", "row", "column"), RUN_CASES,
                         ids=[c[0] for c in RUN_CASES])
def test_bad_table_of_runs(tmp_path, name, words, row, column):
    source = tmp_path / name
    shutil.copy(CORPUS / name, source)
    line = one_line_error(run(["fit", source, "--draws", 10, "--tune", 10]))
    assert line.startswith(f"error: {source}"), line
    assert words in line
    assert len(line.replace(str(source), "")) < 300, line  # never a whole column
    if row is not None:
        assert f"row {row}," in line or f"row {row}:" in line
    if column is not None:
        assert f"column '{column}'" in line
    only(tmp_path, name)


def test_corpus_has_a_file_per_case():
    used = {c[0] for c in RUN_CASES} | {"not_a_posterior.nc", "README.md"}
    assert used == {p.name for p in CORPUS.iterdir()}


# ----------------------------------------------------------------- posterior files
def _posterior_file(folder: Path) -> Path:
    """A genuine posterior file from known draws (no sampling)."""
    return known_file(folder / "good.posterior.nc", size=400)


def _truncated(folder: Path) -> Path:
    good = _posterior_file(folder)
    data = good.read_bytes()
    good.unlink()
    path = folder / "truncated.posterior.nc"
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt(folder: Path) -> Path:
    """Zero the bytes of the stored draws of E (silent corruption HDF5 itself misses)."""
    good = _posterior_file(folder)
    data = bytearray(good.read_bytes())
    e = np.asarray(Posterior.load(good).tree["posterior"].dataset["E"]).tobytes()
    start = bytes(data).find(e[:256])
    assert start > 0
    data[start:start + 256] = bytes(256)
    good.unlink()
    path = folder / "corrupt.posterior.nc"
    path.write_bytes(bytes(data))
    return path


def _foreign(folder: Path) -> Path:
    import xarray as xr

    path = folder / "foreign.nc"
    xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    return path


def _text(folder: Path) -> Path:
    path = folder / "not_a_posterior.nc"
    shutil.copy(CORPUS / path.name, path)
    return path


def _runs_table(folder: Path) -> Path:
    path = folder / "runs.csv"
    shutil.copy(EXAMPLE, path)
    return path


def _fit_record(folder: Path) -> Path:
    """A fit-many record (fits/<name>.json), easily passed for the posterior beside it."""
    path = folder / "fit.json"
    path.write_text('{"status": "ok", "rows": 12}')
    return path


POSTERIOR_CASES = [
    (_truncated, "not a readable posterior file"),
    (_corrupt, "the file is corrupt"),
    (_foreign, "not a bayescale posterior file"),
    (_text, "not a readable posterior file"),
    (_runs_table, "this is a table, not a posterior file"),
    (_fit_record, "this is a table, not a posterior file"),
]


@pytest.mark.parametrize("command", [["predict", "-N", "7B", "-D", "140B"],
                                     ["optimal", "-C", "1e21"], ["info"]])
@pytest.mark.parametrize(("make", "words"), POSTERIOR_CASES,
                         ids=[c[0].__name__.strip("_") for c in POSTERIOR_CASES])
def test_bad_posterior_file(tmp_path, command, make, words):
    path = make(tmp_path)
    before = path.read_bytes()
    line = one_line_error(run([command[0], path, *command[1:]]))
    assert line.startswith(f"error: {path}: ") and words in line, line
    only(tmp_path, path.name)
    assert path.read_bytes() == before


def test_missing_posterior_file(tmp_path):
    line = one_line_error(run(["predict", tmp_path / "nope.nc", "-N", "7B", "-D", "1T"]))
    assert line == f"error: {tmp_path / 'nope.nc'}: no such file"


def test_good_posterior_file_still_loads(tmp_path):
    """Control for the cases above: the same file, undamaged, answers."""
    path = _posterior_file(tmp_path)
    result = run(["predict", path, "-N", "7B", "-D", "140B", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["targets"][0]["loss"]["median"] > 1.0


# ------------------------------------------------------------------ usage errors
USAGE_CASES = [
    (["predict", "{fit}", "-N", "7B", "-D", "140B", "--level", "1.5"], "'--level'"),
    (["predict", "{fit}", "-N", "7B", "--compute", "-1"], "--compute"),
    (["optimal", "{fit}", "--compute", "-1"], "--compute"),
    (["fit", "{runs}", "--draws", "0"], "'--draws'"),
    (["fit", "{runs}", "--draws", "3"], "'--draws': Input should be greater than or equal to 4"),
    (["fit", "{runs}", "--tune", "0"], "'--tune': Input should be greater than or equal to 1"),
    (["backtest", "{runs}", "--tune", "0"], "'--tune': Input should be greater than or equal to 1"),
    (["backtest", "{runs}", "--chains", "1"], "'--chains': Input should be greater than or "
     "equal to 2"),
    (["fit", "{runs}", "--level", "0"], "'--level'"),
    (["fit"], "Missing argument 'RUNS'"),
    (["fit", "{runs}", "--bogus"], "No such option: --bogus"),
    (["fitt", "{runs}"], "No such command 'fitt'"),
]


@pytest.mark.parametrize(("args", "words"), USAGE_CASES,
                         ids=["-".join(c[0][:1] + c[0][-2:]) for c in USAGE_CASES])
def test_usage_error_is_one_line(tmp_path, args, words):
    fit = _posterior_file(tmp_path)
    runs = _runs_table(tmp_path)
    filled = [a.format(fit=fit, runs=runs) for a in args]
    line = one_line_error(run(filled), code=2)
    assert line.startswith("error: bayescale") and words in line, line
    assert "--help" in line  # where to look next
    only(tmp_path, fit.name, runs.name)


# ------------------------------------------- exports a new user makes (beyond the corpus)
CLEAN = pd.read_csv(EXAMPLE)[["params", "tokens", "loss"]]


def _write(kind: str, path: Path) -> Path:
    frame = CLEAN
    if kind == "json_array":
        path = path.with_suffix(".json")
        path.write_text(json.dumps(frame.to_dict("records"), indent=1))
    elif kind == "json_array_named_jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text(json.dumps(frame.to_dict("records")))
    elif kind == "tsv_named_csv":
        frame.to_csv(path, sep="\t", index=False)
    elif kind == "header_spaces":
        frame.rename(columns=lambda c: f" {c}  ").to_csv(path, index=False)
    elif kind == "bom":
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    elif kind == "mixed_case":
        frame.rename(columns=str.title).to_csv(path, index=False)
    elif kind == "utf16_excel_text":
        frame.to_csv(path, sep="\t", index=False, encoding="utf-16")
    elif kind == "comment_lines":
        path.write_text("# exported 2024-05-01\n# tracker v2\n" + frame.to_csv(index=False))
    elif kind == "crlf_blank_lines":
        path.write_bytes(frame.to_csv(index=False).replace("\n", "\r\n\r\n").encode())
    return path


@pytest.mark.parametrize("kind", ["json_array", "json_array_named_jsonl", "tsv_named_csv",
                                  "header_spaces", "bom", "mixed_case", "utf16_excel_text",
                                  "comment_lines", "crlf_blank_lines"])
def test_messy_export_loads_like_the_clean_table(tmp_path, kind):
    runs = load_runs(_write(kind, tmp_path / "runs.csv"))
    for column in ("params", "tokens", "loss"):
        np.testing.assert_allclose(runs.data[column], CLEAN[column])


def _european(path: Path) -> None:
    rows = [f"{int(r.params)};{int(r.tokens)};{r.loss:.4f}".replace(".", ",")
            for r in CLEAN.itertuples()]
    path.write_text("params;tokens;loss\n" + "\n".join(rows) + "\n")


def _thousands(path: Path) -> None:
    rows = [f'"{int(r.params):,}","{int(r.tokens):,}",{r.loss}' for r in CLEAN.itertuples()]
    path.write_text("params,tokens,loss\n" + "\n".join(rows) + "\n")


def _concatenated(path: Path) -> None:
    path.write_text(CLEAN.iloc[:5].to_csv(index=False) + CLEAN.iloc[5:].to_csv(index=False))


def _title_row(path: Path) -> None:
    path.write_text("Scaling sweep, May 2024\n" + CLEAN.to_csv(index=False))


def _spreadsheet(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 not really a workbook")


@pytest.mark.parametrize(("make", "name", "words"), [
    (_european, "runs.csv", "row 2, column 'loss': '3,5734' has a decimal comma: write 3.5734"),
    (_thousands, "runs.csv", "row 2, column 'params': '28,506,749' has thousands separators"),
    (_concatenated, "runs.csv", "row 7, column 'params': 'params' repeats the header"),
    (_title_row, "runs.csv", "line 2 has more fields than the header (line 1): is there a title"),
    (_spreadsheet, "runs.xlsx", "unknown file type '.xlsx' (export the sheet as CSV)"),
], ids=["decimal-comma", "thousands", "concatenated", "title-row", "xlsx"])
def test_messy_export_gets_a_precise_line(tmp_path, make, name, words):
    path = tmp_path / name
    make(path)
    line = one_line_error(run(["fit", path]))
    assert words in line, line
    only(tmp_path, name)


def test_row_with_extra_field(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("# note\nparams,tokens,loss\n1e8,2e9,3.1\n2e8,3e9,2.9,7\n")
    line = one_line_error(run(["fit", path]))
    assert line == (f"error: {path}, row 4: 4 fields where the header has 3: a stray ',' in a "
                    "value, or a missing quote?")


def test_a_column_named_line_is_the_users(tmp_path):
    """The loader's row numbers never clash with a user's column called ``line``."""
    path = tmp_path / "runs.jsonl"
    rows = [{"line": f"L{i % 3}", **r} for i, r in enumerate(CLEAN.to_dict("records"))]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    runs = load_runs(path, run_col="line")
    assert runs.data["run"].tolist() == [r["line"] for r in rows]
    assert runs.data["line"].tolist() == list(range(1, len(rows) + 1))


@pytest.mark.parametrize(("out", "words"), [
    ("{tmp}", "is a folder: give a file name"),
    ("{tmp}/runs.csv/x.nc", "is not a writable folder"),
])
def test_unwritable_out_fails_before_sampling(tmp_path, out, words):
    runs = _runs_table(tmp_path)
    target = out.format(tmp=tmp_path)
    line = one_line_error(run(["fit", runs, "--out", target]))
    assert line.startswith(f"error: {target}: ") and words in line, line
    only(tmp_path, runs.name)


def test_posterior_out_must_be_nc(tmp_path):
    """A typo'd --out never writes NetCDF over a data file."""
    runs = _runs_table(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("params,tokens,loss\n")
    line = one_line_error(run(["fit", runs, "--out", other]), code=2)
    assert f"{other}: the posterior is a NetCDF file: give a name ending in .nc" in line, line
    assert other.read_text() == "params,tokens,loss\n"
    only(tmp_path, runs.name, other.name)


@pytest.mark.parametrize("command", [["plot", "{fit}", "trace", "--out", "{tmp}/{fit}/x.png"],
                                     ["report", "{fit}", "--out", "{tmp}/{fit}/report"]],
                         ids=["plot", "report"])
def test_unwritable_figure_out_fails_before_drawing(tmp_path, command):
    """The user's path is named (not a temporary file), before any figure is drawn."""
    fit = _posterior_file(tmp_path)
    args = [a.format(fit=fit.name, tmp=tmp_path) if "{tmp}" in a else a.format(fit=fit)
            for a in command]
    line = one_line_error(run(args))
    assert line == f"error: {args[-1]}: cannot write here ({fit} is not a writable folder)", line
    only(tmp_path, fit.name)


def _compute_column(path: Path, scale_row: int | None) -> None:
    """The clean table with a compute column C = 6 N D; ``scale_row`` (0-based) gets 2 C."""
    frame = CLEAN.assign(compute=6.0 * CLEAN["params"] * CLEAN["tokens"])
    if scale_row is not None:
        frame.loc[scale_row, "compute"] *= 2
    frame.to_csv(path, index=False)


@pytest.mark.parametrize("args", [["--flops-col", "compute"],
                                  ["--flops-col", "compute", "--tokens-col", "tokens"]],
                         ids=["flops-col", "both"])
def test_tokens_that_contradict_compute(tmp_path, args):
    path = tmp_path / "runs.csv"
    _compute_column(path, scale_row=3)
    line = one_line_error(run(["fit", path, *args]))
    assert line.startswith(f"error: {path}, row 5, column 'tokens': "), line
    assert "column 'compute' gives C / (6 N)" in line and "100% apart" in line, line
    only(tmp_path, path.name)


def test_tokens_that_agree_with_compute(tmp_path):
    path = tmp_path / "runs.csv"
    _compute_column(path, scale_row=None)
    runs = load_runs(path, flops_col="compute")
    np.testing.assert_allclose(runs.data["tokens"], CLEAN["tokens"])


def test_help_names_every_format_and_defaults():
    """Help strings in brackets were eaten as Rich markup ("Posterior file .")."""
    for command in ("fit", "backtest"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"})
        assert ".csv, .tsv, .parquet, .json or .jsonl" in result.stdout
        assert "Column with training tokens D. [default: (tokens, unless --flops-col" in (
            result.stdout)
    result = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "300"})
    assert "[default: (RUNS.posterior.nc beside RUNS)]" in result.stdout
    assert not re.search(r"\w \.\s", result.stdout)  # no "Posterior file ."


def test_bracketed_file_name_is_printed_as_is(tmp_path):
    """File names are text, not Rich markup: '[v2]' survives in the error line."""
    source = tmp_path / "runs[v2].csv"
    shutil.copy(CORPUS / "nonnumeric_loss.csv", source)
    line = one_line_error(run(["fit", source, "--draws", 10, "--tune", 10]))
    assert line.startswith(f"error: {source}"), line
