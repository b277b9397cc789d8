"""Weight averaging (``train.ema_decay``, not in the paper): an exponential moving average of
the weights, as BasicSR's ``model_ema``, kept in a second copy of the network.

After every optimiser step each trainable parameter's average moves towards it:
``avg = d * avg + (1 - d) * w`` with ``d = min(ema_decay, (1 + step) / (10 + step))``. The
warm-up of ``d`` (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) keeps the
random initial weights from weighing on a short run: with a constant 0.999 they would still
be 13 % of the average after 2,000 steps. Fixed tensors (the Haar filters) are copied. The
update depends only on the weights and the step, so a resumed run continues it exactly.
"""
from typing import Any, Dict, Mapping

import paddle

from networks import InvNet


class WeightAverage:
    """The averaged copy ``net`` of the trained network ``source``."""

    def __init__(self, source: InvNet, averaged: InvNet, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f'ema_decay must be in (0, 1), got {decay}')
        self.source, self.net, self.decay = source, averaged, decay
        own = self.net.state_dict()
        self.net.set_state_dict({key: value.astype(own[key].dtype)  # float32 under AMP O2 too
                                 for key, value in source.state_dict().items()})
        self.net.eval()
        for param in self.net.parameters():
            param.stop_gradient = True
        trainable = {id(p) for p in source.parameters() if not p.stop_gradient}
        pairs = zip(source.state_dict().values(), self.net.state_dict().values())
        self.pairs = [(w, avg, id(w) in trainable) for w, avg in pairs]

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @paddle.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the weights after optimiser step ``step`` (counted from 1)."""
        decay = self.decay_at(step)
        for weight, average, trainable in self.pairs:
            weight = weight.astype(average.dtype)  # float16 weights under AMP O2
            average.set_value(average * decay + weight * (1 - decay) if trainable else weight)

    def state_dict(self) -> Dict[str, Any]:
        return self.net.state_dict()

    def set_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.set_state_dict(state)
