"""Mixed-precision training (``train.amp``), with the ops InvDN keeps in float32."""
import contextlib
from typing import Any

import paddle

from training.errors import TrainingError
from utils.device import on_gpu

# Ops InvDN keeps in float32 under mixed precision (train.amp), whatever Paddle's default
# lists say: the coupling's scale exp(clamp * (2 * sigmoid(H) - 1)) multiplies the state and
# divides it in the reverse pass, so its rounding compounds over the 16 blocks; the losses'
# per-image sums add ~60,000 terms (GT 144), beyond float16's 11-bit mantissa. (A design
# choice for GPUs, where it could not be measured here: see test_tipc/docs.)
AMP_FP32_OPS = ('exp', 'sigmoid', 'sum', 'reduce_sum', 'mean', 'reduce_mean', 'sqrt', 'abs',
                'log', 'square', 'elementwise_pow', 'pow')


class MixedPrecision:
    """``train.amp``: off, O1 (autocast: convolutions in float16, AMP_FP32_OPS and Paddle's
    black list in float32) or O2 (float16 weights with float32 master copies), with dynamic
    loss scaling. GPU only: Paddle 3.3.1's dynamic graph has no bfloat16 training on the CPU
    (``auto_cast`` makes no effect on CPUPlace, and conv2d has no CPU bfloat16 kernel, even on
    AVX512-BF16 CPUs), so a CPU run with amp on stops with that reason instead of silently
    training in float32."""

    def __init__(self, level: str):
        self.level = level
        self.scaler = None
        if level == 'off':
            return
        if not on_gpu():
            raise TrainingError(
                f'train.amp={level} needs a GPU: Paddle {paddle.__version__} has no mixed-precision '
                'training on the CPU (auto_cast makes no effect on CPUPlace and conv2d has no CPU '
                'bfloat16 kernel); set train.amp=off. (bf16 inference on AVX512-BF16 CPUs: '
                'infer.py --precision bf16)')
        # float16 gradients underflow without scaling.
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15)

    def decorate(self, model: paddle.nn.Layer, optimizer: Any) -> tuple[paddle.nn.Layer, Any]:
        """O2: the weights in float16, the optimiser on float32 master weights, and
        checkpoints saved in float32 (every script loads them unchanged)."""
        if self.level != 'O2':
            return model, optimizer
        return paddle.amp.decorate(models=model, optimizers=optimizer, level='O2', dtype='float16',
                                   master_weight=True, save_dtype='float32')

    def autocast(self) -> Any:
        if self.level == 'off':
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(level=self.level, dtype='float16',
                                    custom_black_list=set(AMP_FP32_OPS))

    def backward_and_step(self, loss: paddle.Tensor, optimizer: Any) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)  # unscales before the optimiser clips and steps
        self.scaler.update()
