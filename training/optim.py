"""The optimiser of the official ``InvDN_Model``: Adam with L2 weight decay, a multi-step
learning-rate schedule and clipping by the global gradient norm."""
from typing import List, Optional, Tuple

import paddle

from config import Config


def build_grad_clip(train_cfg: Config) -> Optional[paddle.nn.ClipGradByGlobalNorm]:
    """Clipping by the global norm of all gradients, as torch's ``clip_grad_norm_`` in the
    official code (not per tensor: ``ClipGradByNorm`` is a different algorithm)."""
    return (paddle.nn.ClipGradByGlobalNorm(train_cfg.gradient_clipping)
            if train_cfg.gradient_clipping else None)


def build_optimizer(train_cfg: Config, parameters: List[paddle.Tensor], multi_tensor: bool = True
                    ) -> Tuple[paddle.optimizer.Adam, paddle.optimizer.lr.MultiStepDecay]:
    """Adam + MultiStepDecay + global-norm clipping, as the official ``InvDN_Model``.

    Paddle clips first and then adds the float ``weight_decay`` as L2 to the gradient, the
    order of torch's ``clip_grad_norm_`` followed by ``Adam(weight_decay=...)``.
    ``multi_tensor`` updates all parameters in a few fused ops instead of several per
    parameter (288 here): the same updates to float32 rounding, fewer launches on a GPU.
    The two kinds keep their state differently, so a run resumes with the kind it began with.
    """
    scheduler = paddle.optimizer.lr.MultiStepDecay(
        learning_rate=train_cfg.lr_G, milestones=list(train_cfg.lr_steps), gamma=train_cfg.lr_gamma)
    optimizer = paddle.optimizer.Adam(
        learning_rate=scheduler, beta1=train_cfg.beta1, beta2=train_cfg.beta2,
        parameters=parameters, weight_decay=train_cfg.weight_decay_G or None,
        grad_clip=build_grad_clip(train_cfg), use_multi_tensor=multi_tensor)
    return optimizer, scheduler
