"""The console script as a process: exit codes, complete output and exit handlers, though it
ends without the interpreter's teardown (:func:`bayescale.cli.main`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).with_name("bayescale")


def _run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BAYESCALE_CACHE_DIR": str(cache)}
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                          check=False)


def test_success_writes_all_its_output_and_exits_0(tmp_path: Path) -> None:
    done = _run("cache", "info", "--json", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == str(tmp_path / "cache")


def test_user_mistakes_keep_their_exit_codes_and_one_line(tmp_path: Path) -> None:
    missing = _run("fit", str(tmp_path / "missing.csv"), cache=tmp_path / "cache")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.csv'}: no such file"]
    usage = _run("fit", cache=tmp_path / "cache")
    assert usage.returncode == 2
    assert len(usage.stderr.strip().splitlines()) == 1 and "Traceback" not in usage.stderr


def test_exit_handlers_still_run(tmp_path: Path) -> None:
    marker = tmp_path / "handler-ran"
    code = ("import atexit, pathlib, sys\n"
            f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
            "from bayescale.cli import main\n"
            "sys.argv = ['bayescale', 'cache', 'info']\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ,
                                            "BAYESCALE_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "yes"


def test_tables_written_to_a_log_keep_their_cells_whole(tmp_path: Path,
                                                        known_example_file: Path) -> None:
    """stderr to a pipe, no COLUMNS: the table is not squeezed into 80 columns (headers split
    over lines, names cut with "…"), so a log keeps every header on one line."""
    example = known_example_file
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["BAYESCALE_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run([str(CLI), "predict", str(example), "-N", "7B", "-D", "140B"],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stderr.splitlines() if "new run's loss" in line)
    assert "law's expected loss" in header and "law error share" in header
    assert "…" not in done.stderr
