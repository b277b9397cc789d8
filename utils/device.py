"""Device choice: the GPU when Paddle has one, else the CPU; or what the user forces."""
import paddle

DEVICE_CHOICES = ('auto', 'gpu', 'cpu')


def gpu_available() -> bool:
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def select_device(requested: str = 'auto') -> str:
    """Set and return Paddle's device: 'gpu' or 'cpu'.

    Under ``paddle.distributed.launch`` each process sees its own card through
    FLAGS_selected_gpus, so plain 'gpu' picks the right one.
    """
    if requested not in DEVICE_CHOICES:
        raise ValueError(f'device must be one of {DEVICE_CHOICES}, got {requested!r}')
    if requested == 'gpu' and not gpu_available():
        raise RuntimeError('device=gpu requested, but this Paddle build has no usable GPU '
                           '(install paddlepaddle-gpu and check CUDA), or use device=cpu')
    device = 'gpu' if requested == 'gpu' or (requested == 'auto' and gpu_available()) else 'cpu'
    paddle.set_device(device)
    return device


def on_gpu() -> bool:
    """Whether Paddle's current device is a GPU."""
    return paddle.get_device().startswith('gpu')
