"""Keep Paddle's import-time notices off the user's console unless asked for.

``import paddle`` warns that ccache is missing (a note for people compiling C++
extensions), and its C++ side logs notices through glog (e.g. PIR export remarks). None
of them concerns a user of this project. Importing this module hides the ccache note: every
package of the project imports it in its ``__init__``, before any of its modules imports
Paddle, so importing a project module prints nothing. Scripts call ``quiet_paddle()`` before
the first Paddle op; with ``verbose`` it shows both kinds of notice again.
"""
import os
import warnings

# glog levels: 0 INFO, 1 WARNING, 2 ERROR. Errors still reach the console.
_GLOG_ERRORS_ONLY = '2'
_CCACHE_NOTE = 'No ccache found'

warnings.filterwarnings('ignore', message=_CCACHE_NOTE, category=UserWarning)


def quiet_paddle(verbose: bool = False) -> None:
    """Hide Paddle's ccache warning and glog INFO/WARNING lines (unless ``verbose``).

    Variables the user exported are left alone.
    """
    if verbose:
        warnings.filterwarnings('default', message=_CCACHE_NOTE, category=UserWarning)
        return
    os.environ.setdefault('GLOG_minloglevel', _GLOG_ERRORS_ONLY)
