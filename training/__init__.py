"""Training InvDN: the loop, checkpoints and resume, mixed precision, loaders, validation,
data parallel, and the settings of each device."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
