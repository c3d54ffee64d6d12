"""Property: any table written as CSV or JSONL loads into a valid run table or raises
BayescaleError; never another exception."""

from __future__ import annotations

import csv
import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayescale.core.errors import BayescaleError
from bayescale.data.runs import MAX_PLAUSIBLE_LOSS, MIN_PLAUSIBLE_SIZE, RunTable, load_runs

#: Column names: the expected ones, near misses, a clash with internal names, odd strings.
NAMES = st.one_of(
    st.sampled_from(["params", "tokens", "loss", "Params", " loss ", "los", "N", "line",
                     "__line__", "run", "", "a;b", "loss"]),
    st.text(max_size=6),
)
JUNK = st.one_of(
    st.text(alphabet="0123456789.,;eE+-_BMKTbmkt nainf\t\"'#", max_size=8),
    st.text(max_size=5),
    st.just(""),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "-0", "0", "7", "7B", "1,5", "None"]),
)
SIZE = st.one_of(
    st.floats(1e4, 1e13).map(repr),
    st.tuples(st.floats(0.1, 999), st.sampled_from("KMBT")).map(lambda t: f"{t[0]:.3g}{t[1]}"),
)
LOSS = st.floats(0.5, 12.0).map(lambda x: f"{x:.4f}")


@st.composite
def tables(draw) -> tuple[list[str], list[list[object]]]:
    """A header and rows: often the right columns with plausible values, sometimes junk."""
    names = draw(st.lists(NAMES, max_size=4))
    if draw(st.booleans()):
        names = ["params", "tokens", "loss", *names]
    n_rows = draw(st.integers(0, 8))
    clean = draw(st.booleans())  # half the tables: every cell plausible for its column
    rows = []
    for _ in range(n_rows):
        row = []
        for name in names:
            good = {"params": SIZE, "tokens": SIZE, "loss": LOSS}.get(name.strip().lower(), JUNK)
            cell = good if clean else st.one_of(good, good, JUNK, st.floats(), st.none(),
                                                st.booleans(), st.integers())
            row.append(draw(cell))
        rows.append(row)
    return names, rows


def _write(folder: Path, fmt: str, names: list[str], rows: list[list[object]]) -> Path:
    if fmt == "jsonl":
        path = folder / "runs.jsonl"
        lines = [json.dumps(dict(zip(names, row, strict=True))) for row in rows]
        path.write_text("\n".join(lines))
        return path
    path = folder / "runs.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter={"csv": ",", "semicolon": ";", "tsv": "\t"}[fmt])
        writer.writerow(names)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return path


def _valid(runs: RunTable) -> None:
    data = runs.data
    assert len(data) > 0
    for column in ("params", "tokens", "loss"):
        values = data[column].to_numpy(dtype=float)
        assert all(math.isfinite(v) and v > 0 for v in values), column
    assert (data["params"] >= MIN_PLAUSIBLE_SIZE).all()
    assert (data["tokens"] >= MIN_PLAUSIBLE_SIZE).all()
    assert (data["loss"] <= MAX_PLAUSIBLE_LOSS).all()
    assert not data.duplicated().any()
    assert data["line"].is_unique


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), fmt=st.sampled_from(["csv", "semicolon", "tsv", "jsonl"]))
def test_any_table_loads_or_fails_with_bayescale_error(table, fmt):
    names, rows = table
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), fmt, names, rows)
        try:
            runs = load_runs(path)
        except BayescaleError as exc:
            assert "\n" not in exc.one_line()
            assert str(path) in exc.one_line()
            return
        _valid(runs)


def test_the_strategy_reaches_loadable_tables():
    """Guard against a vacuous property: plausible tables from the strategy do load."""
    names = ["params", "tokens", "loss"]
    rows = [["125M", "2.5B", "3.3"], ["350M", "7B", "3.0"], ["1.3B", "26B", "2.7"]]
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("csv", "semicolon", "tsv", "jsonl"):
            _valid(load_runs(_write(Path(folder), fmt, names, rows)))
