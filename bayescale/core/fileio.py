"""Write output files atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bayescale.core.errors import BayescaleError


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


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target`` in one rename.

    On any error or interruption the temporary file is removed and ``target`` is untouched,
    so an existing good file is never replaced by a broken one.

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
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
