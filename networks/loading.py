"""An InvDN network built from a weights file: the architecture the file's saved config names
(checkpoints of this project's trainer), else the paper's, with explicit overrides."""
from typing import Any, Dict, Optional, Sequence

from config import paper_default
from networks.InvDN_model import InvNet, build_invnet
from networks.InvDN_model_oneForward import InvNetOneForward
from utils.checkpoint import load_weights, load_weights_file, saved_network_options


def load_network(weights: str, block_num: Optional[Sequence[int]] = None, scale: Optional[int] = None,
                 network_class: type = InvNetOneForward) -> InvNet:
    """``network_class`` (by default the single-forward variant, which every back end runs) with
    the weights of ``weights``, in eval mode. Architecture: ``block_num``/``scale`` when given,
    else the checkpoint's saved ``network_G``, else the paper's. Raises WeightsError (another
    architecture's weights), OSError or ValueError with the file named."""
    content = load_weights_file(weights)
    options: Dict[str, Any] = dict(paper_default('network_G'), **saved_network_options(content))
    if block_num is not None:
        options['block_num'] = list(block_num)
    if scale is not None:
        options['scale'] = scale
    model = build_invnet(options['in_nc'], options['out_nc'], options['block_num'], options['scale'],
                         network_class=network_class)
    load_weights(model, weights, content)
    model.eval()
    return model
