"""What the scripts run: the command-line dialect, loading the model and its back end, and the
user-facing loops (image files, SIDD and DND submissions, training)."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
