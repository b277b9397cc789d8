"""Durable, atomic file writes: every file the project writes goes through here.

A file is written under a hidden temporary name beside its final name, flushed to disk
(``fsync``), and renamed over the final name; the directory is flushed before and after
the rename. A crash or ``kill -9`` at any moment leaves either the old file or the new one
under the final name, never a partial one; the flushes make the same hold after a power
cut (a rename alone can reach the disk before the file's data does). Temporary names start
with '.' and end with ``.tmp``: no reader of images or checkpoints lists them, and
``remove_stale_temps`` clears the ones a killed run left behind.

Files get the mode any program's new file gets, 0666 less the umask (``tempfile.mkstemp``
alone would leave every result private to its owner, mode 0600).

A full disk (ENOSPC, EDQUOT, or EFBIG from a file-size limit) becomes ``DiskFullError``
naming the final path; the temporary file is removed and the previous file is untouched.
"""
import contextlib
import errno
import json
import os
import re
import tempfile
from typing import Any, Dict, Iterator, List, Optional

TEMP_PATTERN = re.compile(r'^\..+\.[A-Za-z0-9_]{6,}\.tmp$')
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(OSError):
    """The file system holding a file the project writes is full."""


def fsync_dir(folder: str) -> None:
    """Flush a directory's entries (a new or renamed file's name) to disk; a no-op where
    directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems (e.g. some FUSE mounts) refuse fsync on a directory
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """A temporary name made by ``atomic_path`` (never a final file)."""
    return bool(TEMP_PATTERN.match(name))


def current_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def umask_mode(directory: bool = False) -> int:
    """The mode a new file (0666 & ~umask) or folder (0777 & ~umask) gets under the umask."""
    return (0o777 if directory else 0o666) & ~current_umask()


def disk_full_error(path: str, err: OSError) -> OSError:
    """``err`` as a one-line ``DiskFullError`` naming ``path`` when it means a full disk."""
    if isinstance(err, DiskFullError) or err.errno not in DISK_FULL_ERRNOS:
        return err
    return DiskFullError(err.errno, f'disk full: cannot write {path} ({os.strerror(err.errno)}); '
                                    'free space on that file system and rerun (the previous '
                                    'file of that name, if any, is intact)')


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write; on success it becomes ``path`` durably, on any error
    (or a full disk, raised as ``DiskFullError``) it is removed and ``path`` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        os.fchmod(fd, umask_mode())
    finally:
        os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        fsync_dir(folder)
        os.replace(tmp, path)
        fsync_dir(folder)
    except OSError as err:
        raise disk_full_error(path, err) from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (``atomic_path``)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)


def atomic_link(source: str, path: str) -> None:
    """Make ``path`` name the same file as ``source`` (a hard link, no copy), atomically;
    copies where the file system has no hard links."""
    with atomic_path(path) as tmp:
        os.remove(tmp)
        try:
            os.link(source, tmp)
        except OSError:
            with open(source, 'rb') as src, open(tmp, 'wb') as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    dst.write(chunk)


def remove_stale_temps(folder: str) -> List[str]:
    """Remove the temporary files a killed writer left in ``folder``; returns their names.
    Call it only when no other process writes there (the experiment lock is held)."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if is_temp_name(name) and os.path.isfile(os.path.join(folder, name)):
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def resume_mismatch(folder: str, tool: str, settings: Dict[str, Any], resuming: bool
                    ) -> Optional[str]:
    """Record the settings a data-preparation run writes ``folder`` with
    (``folder/.<tool>.json``); when ``resuming``, first compare them with the recorded ones and
    return what differs (a resumed run must write exactly the files of the interrupted one)."""
    record = os.path.join(folder, f'.{tool}.json')
    if resuming and os.path.isfile(record):
        with open(record, encoding='utf-8') as f:
            before = json.load(f)
        changed = [f'{key}: {before.get(key)!r} -> {value!r}' for key, value in settings.items()
                   if before.get(key) != value]
        if changed:
            return (f'--resume: {folder} was written with other settings ({"; ".join(changed)}); '
                    'rerun with the same ones, or use another --result_dir')
    atomic_write_bytes(record, json.dumps(settings, indent=1, sort_keys=True).encode())
    return None
