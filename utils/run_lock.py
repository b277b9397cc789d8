"""One writer per folder (an experiment, or a folder of results): a lock file holding the
owner's PID and host.

The lock is an advisory ``flock`` on ``<folder>/.lock``, held for the life of the run. The
kernel releases it when the owner exits in any way (``kill -9`` included), so a lock whose
owner is gone is recognised as stale and taken over; the PID, host and start time written
in the file name the owner in the refusal message, and a file still holding them when its
lock is free tells that the owner died without releasing it. The file is emptied, not
removed, on release.
"""
import datetime
import fcntl
import os
import socket
from typing import Callable, Optional

LOCK_NAME = '.lock'


class LockedError(RuntimeError):
    """Another live process holds the folder."""


def training_refusal(folder: str, owner: str) -> str:
    return (f'experiment folder {folder} is in use by another training run ({owner}); two '
            'runs would overwrite each other\'s checkpoints. Wait for it to end or stop it, '
            f'or use another -o name=NEW_NAME (lock file: {os.path.join(folder, LOCK_NAME)})')


def lock_owner(folder: str) -> str:
    """What the lock file says about its owner ('' when there is none)."""
    try:
        with open(os.path.join(folder, LOCK_NAME), encoding='utf-8') as f:
            return f.read().strip()
    except OSError:
        return ''


class RunLock:
    """``acquire()`` the folder or raise ``LockedError``; ``release()`` when the run ends.
    ``refusal``: the message for a folder in use, given the folder and what the lock file
    says of its owner (by default a training run's)."""

    def __init__(self, folder: str, refusal: Optional[Callable[[str, str], str]] = None):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd: Optional[int] = None
        self._refusal = refusal or training_refusal
        self.stale_owner = ''  # the previous owner when it died holding the lock

    @staticmethod
    def refusal(folder: str) -> str:
        """The message that refuses a second training run on ``folder``."""
        return training_refusal(folder, lock_owner(folder) or 'an unknown process')

    def acquire(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(self._refusal(self.folder, lock_owner(self.folder) or 'an unknown process')) from None
        previous = os.read(fd, 4096).decode('utf-8', 'replace').strip()
        self.stale_owner = previous
        started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()} since {started}\n'.encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file and unlock. The file stays: removing it would let a process that
        opened it just before lock an unlinked file while a third locks a new one."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def is_locked(folder: str) -> bool:
    """True when a live process holds ``folder``'s lock."""
    path = os.path.join(folder, LOCK_NAME)
    if not os.path.isfile(path):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
