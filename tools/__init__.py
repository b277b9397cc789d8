"""Command-line tools: official-weight conversion and alignment with the official PyTorch code."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
