"""One writer per run directory: an advisory lock that a run holds for its whole life.

:func:`hold_run_dir` takes an exclusive lock on ``<run_dir>/genfair.lock`` (``fcntl.flock``; on
Windows, which has no flock, ``msvcrt.locking`` of one byte of the file) and writes who holds it
into the file: ``{"pid", "host", "since"}``. The lock belongs to the open file, so the kernel
releases it when the process ends in any way, SIGKILL included: a killed run leaves at most a
stale ``genfair.lock`` whose lock nobody holds, and the next run on the directory takes it and
resumes. A run that ends normally removes the file.

A second run on a directory in use is refused with :class:`RunDirInUse` before it reads or writes
anything there, naming the holder and what to do. The lock is taken without waiting and is
re-entrant within a process: the ``genfair`` command takes it before the config is checked (so
that a refused command writes nothing into a directory in use), and :func:`run_experiment
<genfair.experiment.run_experiment>` and :func:`run_study <genfair.studies.run_study>`, which take
it themselves for callers from Python, then find it held by their own process. Which process
holds a directory is read from its lock file (held, and naming this process's id and host), so
this module keeps no record of its own.

Readers (``genfair-aggregate``, ``genfair-plot``) call :func:`lock_holder`, which tests the lock
without holding it and says who is still writing a directory.

Example:
    >>> with hold_run_dir(tmp_path / "run"):  # doctest: +SKIP
    ...     lock_holder(tmp_path / "run").pid == os.getpid()
    True
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from genfair.checkpoint import check_writable_dir
from genfair.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

__all__ = ["LOCK_FILE", "LockHolder", "RunDirInUse", "hold_run_dir", "lock_holder"]

LOCK_FILE = "genfair.lock"
_WINDOWS_BYTE = 1 << 20  # msvcrt locks a byte range; one past the holder record, which stays readable
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}  # "held by another" (EACCES/EDEADLK: msvcrt)
_TRIES = 5  # a reader's probe holds the lock for microseconds: a writer tries again before refusing
_PAUSE = 0.05  # seconds between those tries



@dataclass(frozen=True)
class LockHolder:
    """Who holds a run directory: its process id, host and since when (UTC, ``2026-12-06
    21:04:05 UTC``); ``None`` for what the lock file does not say yet (a holder that has taken
    the lock but not yet written it)."""

    pid: int | None
    host: str | None
    since: str | None

    def describe(self) -> str:
        """``process 4242 on host node1 since 2026-12-06 21:04:05 UTC``."""
        if self.pid is None:
            return "another process (it has not recorded itself yet)"
        return f"process {self.pid} on host {self.host} since {self.since}"


class RunDirInUse(ConfigError):
    """The run directory is held by another run (see :func:`hold_run_dir`).

    Attributes:
        run_dir: the directory.
        holder: who holds it.
    """

    def __init__(self, run_dir: Path, holder: LockHolder, *, key: str) -> None:
        self.run_dir, self.holder = run_dir, holder
        super().__init__(
            f"run directory {run_dir} is in use by {holder.describe()}; wait for that run to finish, "
            f"or choose another {key}"
        )


@contextmanager
def hold_run_dir(run_dir: Path | str, *, key: str = "hydra.run.dir") -> Iterator[None]:
    """Hold the lock of ``run_dir`` for the ``with`` block (see the module docstring).

    The directory is made if missing; when the block ends the lock file is removed and so are
    the folders this call made, if they are still empty. ``key`` names the setting to change in
    the messages.

    Raises:
        RunDirInUse: another process holds the directory.
        ConfigError: the directory cannot be written or its file system cannot lock
            (a read-only or lock-less file system), in one line saying what to do.
    """
    run_dir = Path(run_dir)
    if _held_here(run_dir):  # this process holds it already (the command, then run_experiment inside it)
        yield
        return
    check_writable_dir(run_dir, key=key)
    absolute = run_dir.absolute()
    missing = [folder for folder in (absolute, *absolute.parents) if not folder.exists()]
    try:
        fd = _acquire(run_dir, key=key)
    except ConfigError:
        _remove_empty(missing)
        raise
    try:
        yield
    finally:
        _release(fd, run_dir / LOCK_FILE)
        _remove_empty(missing)


def lock_holder(run_dir: Path | str) -> LockHolder | None:
    """Who holds ``run_dir`` now, or ``None`` when no process does (no lock file, a stale one
    left by a killed run, or a file system where the lock cannot be tested). Takes no lock that
    outlives the call: the test is a shared lock, taken without waiting and released at once."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY if fcntl is not None else os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            free = _try_lock(fd, shared=True)
        except OSError:  # no lock support: nothing to tell
            return None
        if free:
            _unlock(fd)
            return None
        return _read_holder(fd)
    finally:
        os.close(fd)


def _held_here(run_dir: Path) -> bool:
    """Whether this process holds ``run_dir``: its lock is held (a lock this process took on
    another open file counts, see :func:`lock_holder`) and its file names this process and host."""
    holder = lock_holder(run_dir)
    return holder is not None and (holder.pid, holder.host) == (os.getpid(), socket.gethostname())


def _acquire(run_dir: Path, *, key: str) -> int:
    """The open, locked lock file of ``run_dir`` with this process recorded in it."""
    path = run_dir / LOCK_FILE
    for attempt in range(_TRIES):
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise _cannot_lock(run_dir, path, error, key=key) from None
        try:
            locked = _try_lock(fd, shared=False)
        except OSError as error:
            if os.fstat(fd).st_size == 0:  # the file this call made: nobody could lock it either
                path.unlink(missing_ok=True)
            os.close(fd)
            raise _cannot_lock(run_dir, path, error, key=key) from None
        if not locked:
            holder = _read_holder(fd)
            os.close(fd)
            if attempt == _TRIES - 1:
                raise RunDirInUse(run_dir, holder, key=key)
            time.sleep(_PAUSE)
            continue
        if _same_file(fd, path):
            _record(fd)
            return fd
        # The holder before us removed the file as it finished, after we had opened it: the lock
        # we hold is on a file nobody else will open. Start again on the path's current file.
        _unlock(fd)
        os.close(fd)
    raise RunDirInUse(run_dir, LockHolder(None, None, None), key=key)


def _release(fd: int, path: Path) -> None:
    """Remove the lock file while still holding it, then unlock: a process that opened the
    file just before finds, once it gets the lock, that it is no longer the path's (see
    :func:`_same_file`) and starts again."""
    try:
        path.unlink()
    except OSError:  # already removed (a refused command removes its folder), or Windows keeps it open
        pass
    _unlock(fd)
    os.close(fd)


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _record(fd: int) -> None:
    since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (text + "\n").encode())


def _read_holder(fd: int) -> LockHolder:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        record = json.loads(os.read(fd, 4096).decode())
        return LockHolder(int(record["pid"]), str(record["host"]), str(record["since"]))
    except (OSError, ValueError, KeyError, TypeError):  # not written yet, or being rewritten
        return LockHolder(None, None, None)


def _try_lock(fd: int, *, shared: bool) -> bool:
    """Take the lock without waiting: ``True`` if taken, ``False`` if another holds it; an
    ``OSError`` where the file system cannot lock."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        else:  # msvcrt has no shared lock: a reader's test takes the byte exclusively for a moment
            os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as error:
        if error.errno in _BUSY:
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _cannot_lock(run_dir: Path, path: Path, error: OSError, *, key: str) -> ConfigError:
    reason = error.strerror or str(error)
    return ConfigError(
        f"cannot lock run directory {run_dir} ({path.name}: {reason}); genfair locks a run directory so that one "
        f"run at a time writes it: choose a {key} on a writable file system that supports file locks (a local disk)"
    )
