"""Keep Paddle's import-time notices off the user's console unless asked for.

``import paddle`` warns that ccache is missing (a note for people compiling C++
extensions), and its C++ side logs notices through glog (e.g. PIR export remarks). None
of them concerns a user of this project. Call ``quiet_paddle()`` before Paddle is imported.
"""
import os
import warnings

# glog levels: 0 INFO, 1 WARNING, 2 ERROR. Errors still reach the console.
_GLOG_ERRORS_ONLY = '2'


def quiet_paddle(verbose: bool = False) -> None:
    """Hide Paddle's ccache warning and glog INFO/WARNING lines (unless ``verbose``).

    Variables the user exported are left alone.
    """
    if verbose:
        return
    os.environ.setdefault('GLOG_minloglevel', _GLOG_ERRORS_ONLY)
    warnings.filterwarnings('ignore', message='No ccache found', category=UserWarning)
