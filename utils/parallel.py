"""Run a function over many tasks, in worker processes when asked, with a progress bar."""
from multiprocessing import Pool
from typing import Callable, Iterator, Sequence, TypeVar

from tqdm import tqdm

Task = TypeVar('Task')
Result = TypeVar('Result')


def map_with_progress(function: Callable[[Task], Result], tasks: Sequence[Task], num_workers: int,
                      desc: str, unit: str = 'img') -> Iterator[Result]:
    """Yield ``function(task)`` for every task (in completion order when ``num_workers`` > 1).

    ``function`` must be a module-level function so worker processes can pickle it.
    """
    with tqdm(total=len(tasks), desc=desc, unit=unit) as progress:
        if num_workers <= 1:
            for result in map(function, tasks):
                progress.update()
                yield result
            return
        with Pool(num_workers) as pool:
            for result in pool.imap_unordered(function, tasks, chunksize=1):
                progress.update()
                yield result

