"""One run per output directory: an exclusive lock file that knows its owner and detects stale owners."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from compress.errors import LockError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """`with OutputLock(dir):` holds `dir/.lock`; a lock left by a dead process is reported and taken over."""

    def __init__(self, directory: Path, log=print):
        self.path = Path(directory) / ".lock"
        self.log = log

    def __enter__(self) -> "OutputLock":
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(owner, f)
            return self
        raise LockError(f"could not take the lock {self.path}")

    def _handle_existing(self) -> None:
        try:
            held = json.loads(self.path.read_text())
        except (OSError, ValueError):
            held = {}
        pid, host = held.get("pid"), held.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            self.log(f"removing a stale lock {self.path}: its run (pid {pid}, started {held.get('started')}) is dead")
            self.path.unlink(missing_ok=True)
            return
        raise LockError(
            f"{self.path.parent} is in use by another run (pid {pid} on {host}, started {held.get('started')}); "
            f"wait for it to finish, or delete {self.path} if that run is gone"
        )

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)
