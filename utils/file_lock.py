"""A blocking, exclusive, advisory lock on a file: one writer at a time of a shared cache
(the export cache, the custom operator's build), released when the process ends whatever
happens. Where ``fcntl`` does not exist (Windows) it does not lock: the writers there rely on
their atomic rename alone."""
import contextlib
from typing import Iterator


@contextlib.contextmanager
def exclusive_lock(path: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, 'a') as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
