"""The one denoise routine and what every back end and loop shares: the back-end protocol,
the model contract (geometry), the image loop and the metrics loop."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
