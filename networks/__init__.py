"""InvDN networks: the invertible network and its single-forward export variant."""
from networks.InvDN_model import (HaarDownsampling, InvBlockExp, InvNet, ResBlock, build_invnet,
                                  use_dygraph_conv3x3)
from networks.InvDN_model_oneForward import InvNetOneForward

__all__ = ['HaarDownsampling', 'InvBlockExp', 'InvNet', 'InvNetOneForward', 'ResBlock',
           'build_invnet', 'use_dygraph_conv3x3']
