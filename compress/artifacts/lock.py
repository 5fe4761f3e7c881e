"""One run per output directory: a lock file held with `fcntl.flock`, which knows its owner.

The kernel releases a flock when its holder dies, so a dead run's lock is taken by exactly one contender; the file's
content (pid, host, start time) only names the owner in messages.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from compress.errors import LockError, UserInputError


class OutputLock:
    """`with OutputLock(dir):` holds `dir/.lock`; a lock left by a dead process is reported and taken over."""

    def __init__(self, directory: Path, log=print):
        self.path = Path(directory) / ".lock"
        self.log = log
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        while self.fd is None:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
            except OSError as err:
                raise UserInputError(f"{self.path}: cannot open the output's lock file ({err.strerror}); it must "
                                     f"be a plain file (a symlink is never followed)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                raise self._refusal(err) from None
            if _same_file(fd, self.path):
                self.fd = fd
            else:  # the previous owner removed the file after we opened it: lock the one now at the path
                os.close(fd)
        self._take_over()
        return self

    def _refusal(self, err: OSError) -> LockError:
        if not isinstance(err, BlockingIOError):  # e.g. a file system without locks
            return LockError(f"{self.path}: cannot lock the output ({err.strerror}); use an output folder on a local "
                             f"file system")
        held = _owner(self.path, wait_s=1.0)
        return LockError(f"{self.path.parent} is in use by another run (pid {held.get('pid')} on {held.get('host')}, "
                         f"started {held.get('started')}); wait for it to finish")

    def _take_over(self) -> None:
        held = _owner(self.path)
        if held:
            self.log(f"taking over a stale lock {self.path}: its run (pid {held.get('pid')}, started "
                     f"{held.get('started')}) is gone")
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(owner).encode(), 0)

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)  # while still holding it: a waiting contender then sees a new file
        os.close(self.fd)
        self.fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _owner(path: Path, wait_s: float = 0.0) -> dict:
    """The owner a lock file names ({} if none); waits up to `wait_s` for an owner that has not yet written it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            held = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            held = {}
        if held or time.monotonic() >= deadline:
            return held if isinstance(held, dict) else {}
        time.sleep(0.05)
