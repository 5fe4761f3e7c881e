"""OutputLock: a dead run's lock is taken over by exactly one of many concurrent contenders, even when each stalls
while logging the takeover (as on a blocked stdout pipe)."""

import errno
import fcntl
import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from compress.artifacts import OutputLock
from compress.errors import LockError, UserInputError

CONTENDERS, TRIALS, STALL_S = 4, 100, 0.03


def _contend(directory, ready, done, after, owners):
    """For each trial: wait for the parent's stale lock, try to take it (stalling while logging the takeover) and hold
    it until every contender has tried."""
    for trial in range(TRIALS):
        ready.wait(timeout=30)
        try:
            with OutputLock(directory, log=lambda message: time.sleep(STALL_S)):
                with owners.get_lock():
                    owners[trial] += 1
                done.wait(timeout=30)
        except LockError:
            done.wait(timeout=30)
        after.wait(timeout=30)
    os._exit(0)


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_a_dead_owners_lock_goes_to_exactly_one_contender(tmp_path):
    fork = multiprocessing.get_context("fork")
    ready, done, after = fork.Barrier(CONTENDERS + 1), fork.Barrier(CONTENDERS), fork.Barrier(CONTENDERS + 1)
    owners, stale = fork.Array("i", TRIALS), json.dumps({"pid": _dead_pid(), "host": os.uname().nodename})
    procs = [fork.Process(target=_contend, args=(tmp_path, ready, done, after, owners)) for _ in range(CONTENDERS)]
    for p in procs:
        p.start()
    try:
        for _ in range(TRIALS):
            (tmp_path / ".lock").write_text(stale)
            ready.wait(timeout=30)
            after.wait(timeout=30)
            assert not (tmp_path / ".lock").exists()
    except BaseException:
        for barrier in (ready, done, after):
            barrier.abort()  # a failed trial releases the waiting contenders
        raise
    finally:
        for p in procs:
            p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0] * CONTENDERS
    assert list(owners) == [1] * TRIALS, f"owners per trial: {list(owners)}"


def test_a_live_owner_is_named_and_the_lock_released_on_exit(tmp_path):
    with OutputLock(tmp_path):
        with pytest.raises(LockError, match=rf"in use by another run \(pid {os.getpid()} on "):
            OutputLock(tmp_path).__enter__()
    assert not (tmp_path / ".lock").exists()
    with OutputLock(tmp_path):  # free again
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_a_lock_file_that_is_a_symlink_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("user data\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".lock").symlink_to(target)
    with pytest.raises(UserInputError, match="must be a plain file"):
        with OutputLock(tmp_path / "out"):
            pass
    assert target.read_text() == "user data\n"


def test_a_file_system_without_locks_is_a_named_error(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(LockError, match="cannot lock the output .No locks available.; use an output folder on a local"):
        with OutputLock(tmp_path):
            pass
