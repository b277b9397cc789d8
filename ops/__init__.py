"""Custom operators: kernels compiled for this project on first use."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
