"""Write output files atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from bayescale.core.errors import BayescaleError

#: Files this process has completed (renamed into place), so that an interruption after the
#: rename can say truthfully that the file was written.
WRITTEN: list[Path] = []
#: Set by the command line's signal handler when the user asks the process to stop. The
#: handler also raises KeyboardInterrupt, but Python drops an exception raised while a
#: weakref callback or __del__ runs; no file is renamed into place once this is set.
STOP = threading.Event()


def _prefix(target: Path) -> str:
    """The temporary name's prefix: hidden, the target's name, this process's id."""
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(target: str | Path) -> list[Path]:
    """Remove temporary files of ``target`` left by processes that died mid-write (SIGKILL,
    power loss); those of running processes are kept. Returns the removed paths.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".out.nc.999999999.abc.tmp").write_text("partial")
    >>> [p.name for p in sweep_stale(folder / "out.nc")]
    ['.out.nc.999999999.abc.tmp']
    """
    target = Path(target)
    removed = []
    with contextlib.suppress(OSError):
        for stale in target.parent.glob(f".{glob_escape(target.name)}.*.tmp"):
            pid = stale.name[len(target.name) + 2:].split(".", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    stale.unlink()
                    removed.append(stale)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextlib.contextmanager
def no_file_size_signal() -> Iterator[None]:
    """Ignore SIGXFSZ while writing: past a file-size limit (``ulimit -f``) a write then fails
    with an error (EFBIG) that is reported in one line, instead of the signal killing the
    process. Outside the main thread (no signal handlers there) this does nothing."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal,
                                                                                 "SIGXFSZ"):
        yield
        return
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGXFSZ, previous)


def write_failed(exc: OSError, target: str | Path) -> BayescaleError:
    """One line for a failed write: the system's reason, and that the old file is kept."""
    reason = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file size limit was reached",
              errno.EDQUOT: "the disk quota is exceeded"}.get(exc.errno or 0,
                                                              exc.strerror or str(exc))
    kept = " (the existing file is unchanged)" if Path(target).exists() else ""
    return BayescaleError(f"could not write the file: {reason}{kept}", path=str(target))


def check_writable(target: str | Path, *, folder: bool = False) -> None:
    """Fail early, before any long computation, when ``target`` cannot be written.

    Raises :class:`BayescaleError` if ``target`` is a folder or its folder does not accept
    new files; with ``folder``, if ``target`` (a folder to fill, made if missing) does not.
    Creates nothing.

    Examples
    --------
    >>> import tempfile
    >>> check_writable(tempfile.mkdtemp())
    Traceback (most recent call last):
    bayescale.core.errors.BayescaleError: ...: is a folder: give a file name, e.g. runs.posterior.nc
    """
    target = Path(target)
    if not folder and target.is_dir():
        raise BayescaleError("is a folder: give a file name, e.g. runs.posterior.nc",
                             path=str(target))
    existing = target if folder else target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BayescaleError(f"cannot write here ({existing} is not a writable folder)",
                             path=str(target))
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise BayescaleError(f"cannot write here ({exc.strerror})", path=str(target)) from None
    if folder:
        return
    # The name written first is the temporary one, longer than the target's: check it.
    longest = f"{_prefix(target)}{'x' * 8}.tmp"
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(longest)) > limit:
        spare = limit - (len(os.fsencode(longest)) - len(os.fsencode(target.name)))
        raise BayescaleError(f"the file name is too long: this folder takes names of up to "
                             f"{limit} bytes and writing needs a temporary name "
                             f"{limit - spare} bytes longer; use a name of at most {spare} "
                             "bytes", path=str(target))


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target`` in one rename.

    On any error or interruption the temporary file is removed and ``target`` is untouched,
    so an existing good file is never replaced by a broken one. The temporary name holds the
    process id, so temporary files of processes killed mid-write are swept first; a full disk
    or a file-size limit is one :class:`BayescaleError`. A completed file is added to
    :data:`WRITTEN`.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    handle, name = tempfile.mkstemp(prefix=_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with no_file_size_signal():
            try:
                yield tmp
            except OSError as exc:
                raise write_failed(exc, target) from None
        if STOP.is_set():  # a stop whose KeyboardInterrupt was dropped on the way
            raise KeyboardInterrupt
        os.replace(tmp, target)
        WRITTEN.append(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
