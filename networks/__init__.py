"""InvDN networks: the invertible network, its single-forward export variant, and building
either from a weights file."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
from networks.InvDN_model import HaarDownsampling, InvBlockExp, InvNet, ResBlock, build_invnet
from networks.InvDN_model_oneForward import InvNetOneForward

__all__ = ['HaarDownsampling', 'InvBlockExp', 'InvNet', 'InvNetOneForward', 'ResBlock', 'build_invnet']
