"""Killing a running ``bayescale fit`` never leaves a partial posterior file and never replaces a
good one: a real subprocess, killed while the sampler runs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import EXAMPLE

BAYESCALE = Path(sys.executable).with_name("bayescale")


def _sampling(pid: int) -> bool:
    """True once nutpie's worker threads run (Linux: thread names under /proc)."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return any("nutpie-worker" in (t / "comm").read_text() for t in tasks)
    except OSError:
        return False


def _wait_until_sampling(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    start = time.monotonic()
    if not Path("/proc").is_dir():  # no thread names to watch: compile takes ~10 s
        time.sleep(20.0)
        return
    while not _sampling(proc.pid):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < timeout, "sampling never started"
        time.sleep(0.1)
    time.sleep(0.5)


CASES = {"sigkill": (signal.SIGKILL, False), "sigterm": (signal.SIGTERM, True)}
PREVIOUS = b"an earlier good posterior, byte for byte\x00\xff"


def _start(folder: Path, existing: bool) -> subprocess.Popen:
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "runs.csv")
    if existing:
        (folder / "runs.posterior.nc").write_bytes(PREVIOUS)
    # Long enough that the kill lands while sampling (100k draws x 2 chains: ~30 s).
    return subprocess.Popen(
        [str(BAYESCALE), "fit", str(folder / "runs.csv"), "--chains", "2", "--draws", "100000",
         "--tune", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_killed_fit_leaves_no_output(tmp_path):
    """SIGKILL with no earlier file, SIGTERM over an earlier file; both fits run at once."""
    procs = {name: _start(tmp_path / name, existing) for name, (_, existing) in CASES.items()}
    stderr = {}
    try:
        for name, proc in procs.items():
            _wait_until_sampling(proc)
            proc.send_signal(CASES[name][0])
        for name, proc in procs.items():
            stderr[name] = proc.communicate(timeout=60)[1]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert procs["sigkill"].returncode == -signal.SIGKILL
    # nutpie swallows the interrupt and returns partial draws; bayescale re-raises it.
    assert procs["sigterm"].returncode == 130, stderr["sigterm"]
    last = stderr["sigterm"].strip().splitlines()[-1]
    assert last == "interrupted: no output file was written"
    assert "Traceback" not in stderr["sigterm"]
    # No partial posterior, no temporary file; the earlier file untouched byte for byte.
    assert [p.name for p in (tmp_path / "sigkill").iterdir()] == ["runs.csv"]
    assert sorted(p.name for p in (tmp_path / "sigterm").iterdir()) == [
        "runs.csv", "runs.posterior.nc"]
    assert (tmp_path / "sigterm" / "runs.posterior.nc").read_bytes() == PREVIOUS


def test_a_stop_whose_interrupt_was_dropped_still_stops(tmp_path):
    """Python drops a KeyboardInterrupt raised while a weakref callback runs: a SIGTERM then
    went unheard and the command wrote its files and exited 0. The handler's flag keeps every
    file out and ends the command with exit 130 all the same."""
    import typer

    from bayescale.cli.common import user_errors
    from bayescale.core.fileio import STOP, atomic_path

    target = tmp_path / "out.txt"

    @user_errors
    def command(as_json: bool = False) -> None:
        STOP.set()  # what the handler does before its exception is dropped
        with atomic_path(target) as tmp:
            tmp.write_text("done")

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == 130 and not target.exists()
    assert list(tmp_path.iterdir()) == []

    @user_errors
    def finishes(as_json: bool = False) -> str:
        STOP.set()  # the drop happened after the last file
        return "answer"

    with pytest.raises(typer.Exit) as late:
        finishes()
    assert late.value.exit_code == 130
    # the request ends with its command: a later write in this process is not refused
    assert not STOP.is_set()
    with atomic_path(target) as tmp:
        tmp.write_text("later")
    assert target.read_text() == "later"
