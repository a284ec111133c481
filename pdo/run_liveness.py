"""Whether the process running a pipeline run is still alive, told by a lock it holds.

The process that starts a run holds an exclusive flock on ``PDO_HOME/runs/<run id>.lock`` until
the run leaves ``running``. The kernel lets go of the lock when that process ends, however it
ends (SIGKILL, out of memory, a crash), so anyone who can take the lock knows the owner is gone.
No lock file means nobody can tell (a run started before these locks, or under another home):
such a run is left alone.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_held: dict[str, int] = {}  # run id → the descriptor whose lock claims it for this process


def lock_path(home: Path, run_id: str) -> Path:
    return home / "runs" / f"{run_id}.lock"


def claim(home: Path, run_id: str) -> None:
    """Hold the run's lock for this process, before the run is recorded as running."""
    path = lock_path(home, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a filesystem without flock: leave no file, so no one judges this run
        os.close(fd)
        path.unlink(missing_ok=True)
        return
    os.write(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode())
    _held[run_id] = fd


def release(home: Path, run_id: str, *, finished: bool) -> None:
    """Let go of the run. A finished run's file goes; an unfinished one's stays, so the next
    run finds its owner gone."""
    fd = _held.pop(run_id, None)
    if finished:
        lock_path(home, run_id).unlink(missing_ok=True)
    if fd is not None:
        os.close(fd)


@contextmanager
def owner_gone(home: Path, run_id: str) -> Iterator[bool]:
    """True when the run's lock file exists and its owner has ended. While the block runs the
    lock is held here, so no one else settles the run meanwhile; the file goes after it."""
    path = lock_path(home, run_id)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: the owner lives (here or in another process)
            yield False
            return
        yield True
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
