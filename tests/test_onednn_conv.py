"""The oneDNN 3x3 convolution (ops/onednn_conv): forward and gradients against Paddle's
conv2d at the network's channel counts, its per-shape cache, its input checks, its build
failures, and the Conv3x3 switch (dygraph only)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from ops import onednn_conv
from networks.InvDN_model import Conv3x3, build_invnet

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-5  # float32 rounding, relative to the largest magnitude of the reference


@pytest.fixture(scope='module')
def op():
    if onednn_conv.load() is None:
        pytest.skip(f'oneDNN convolution unavailable: {onednn_conv.unavailable_reason()}')
    return onednn_conv.conv3x3


def _tensors(batch, cin, cout, height, width, seed):
    rng = np.random.default_rng(seed)
    x = paddle.to_tensor(rng.standard_normal((batch, cin, height, width), dtype=np.float32), stop_gradient=False)
    weight = paddle.to_tensor(rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) / (3 * cin ** 0.5),
                              stop_gradient=False)
    bias = paddle.to_tensor(rng.standard_normal(cout, dtype=np.float32), stop_gradient=False)
    grad_out = paddle.to_tensor(rng.standard_normal((batch, cout, height, width), dtype=np.float32))
    return x, weight, bias, grad_out


def _assert_close(ours, ref, what):
    ours, ref = ours.numpy(), ref.numpy()
    assert ours.shape == ref.shape, what
    scale = float(np.abs(ref).max())
    assert scale > 0, what
    err = float(np.abs(ours - ref).max()) / scale
    assert err <= RTOL, f'{what}: max error {err:.2e} of the largest magnitude'


def _check_against_paddle(op, batch, cin, cout, height, width, seed=0):
    x, weight, bias, grad_out = _tensors(batch, cin, cout, height, width, seed)
    out = op(x, weight, bias)
    grads = paddle.grad(out, [x, weight, bias], grad_out)
    ref = F.conv2d(x, weight, padding=1) + bias.reshape([-1, 1, 1])
    ref_grads = paddle.grad(ref, [x, weight, bias], grad_out)
    _assert_close(out, ref, 'output')
    for name, ours, theirs in zip(('x', 'weight', 'bias'), grads, ref_grads):
        _assert_close(ours, theirs, f'grad of {name}')


# The network's convolutions (12 channels in stage 1, 48 in stage 2; subnet width 64):
# F: 9 -> 64 -> 64, 64+9 -> 3; G/H: 3 -> 64 -> 64, 64+3 -> 9; stage 2: 45, 109, 67 -> 45; and
# a few others (12 -> 6, 131 -> 45) with odd sizes.
@pytest.mark.parametrize('batch, cin, cout, height, width', [
    (1, 3, 64, 9, 13), (4, 9, 64, 12, 12), (4, 64, 64, 16, 16), (1, 73, 3, 9, 13),
    (4, 67, 9, 8, 8), (1, 12, 6, 9, 13), (4, 48, 45, 7, 5), (1, 109, 3, 8, 8), (1, 131, 45, 9, 13),
])
def test_forward_and_gradients_equal_paddle_conv2d(op, batch, cin, cout, height, width):
    _check_against_paddle(op, batch, cin, cout, height, width)


def test_cached_shape_and_a_new_shape_stay_exact(op):
    shape = (2, 64, 64, 10, 11)
    _check_against_paddle(op, *shape, seed=1)
    _check_against_paddle(op, *shape, seed=2)  # the cached primitives, other values
    _check_against_paddle(op, 3, 5, 7, 6, 9, seed=3)  # a shape seen for the first time
    _check_against_paddle(op, *shape, seed=4)


def test_more_shapes_than_the_cache_holds(op):
    for width in range(1, 70):  # 69 shapes: past the 64 plans kept, the oldest are rebuilt
        _check_against_paddle(op, 1, 2, 3, 4, width, seed=width)
    _check_against_paddle(op, 1, 2, 3, 4, 1, seed=0)


def test_no_gradient_for_an_input_that_does_not_need_one(op):
    x, weight, bias, _ = _tensors(1, 3, 8, 6, 6, seed=5)
    x.stop_gradient = True
    op(x, weight, bias).sum().backward()
    ref_weight = weight.grad.numpy()
    weight.clear_gradient()
    (F.conv2d(x, weight, padding=1) + bias.reshape([-1, 1, 1])).sum().backward()
    np.testing.assert_allclose(ref_weight, weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    assert x.grad is None


@pytest.mark.parametrize('x_shape, x_dtype, w_shape, b_shape, expected', [
    ([1, 3, 8, 8], 'float64', [4, 3, 3, 3], [4], 'x must be float32, got float64'),
    ([3, 8, 8], 'float32', [4, 3, 3, 3], [4], 'x must be 4-D NCHW, got shape [3, 8, 8]'),
    ([1, 3, 8, 8], 'float32', [4, 3, 5, 5], [4], 'weight must be [out, 3, 3, 3] (OIHW, a 3x3 kernel), got [4, 3, 5, 5]'),
    ([1, 3, 8, 8], 'float32', [4, 2, 3, 3], [4], 'weight must be [out, 3, 3, 3]'),
    ([1, 3, 8, 8], 'float32', [4, 3, 3, 3], [5], 'bias must be [4], got [5]'),
])
def test_bad_input_is_one_clear_error(op, x_shape, x_dtype, w_shape, b_shape, expected):
    with pytest.raises(ValueError) as err:
        op(paddle.zeros(x_shape, dtype=x_dtype), paddle.zeros(w_shape), paddle.zeros(b_shape))
    message = str(err.value)
    assert expected in message and '\n' not in message


def test_thread_count_reaches_the_openmp_runtime_onednn_uses(op):
    """oneDNN reports the threads it runs on (ONEDNN_VERBOSE) at its first primitive; the
    (cached) load prints nothing of Paddle's build."""
    script = ('from utils.console import quiet_paddle\n'
              'quiet_paddle()\n'
              'import paddle\n'
              'from ops import onednn_conv\n'
              'onednn_conv.load()\n'
              'onednn_conv.set_num_threads(2)\n'
              'onednn_conv.conv3x3(paddle.ones([1, 4, 6, 6]), paddle.ones([4, 4, 3, 3]), paddle.ones([4]))\n'
              'print("threads", onednn_conv.num_threads())\n')
    env = dict(os.environ, ONEDNN_VERBOSE='1')
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'runtime:OpenMP,nthr:2' in done.stdout and 'threads 2' in done.stdout
    assert done.stderr == ''
    assert all(line.startswith('onednn_verbose') for line in done.stdout.splitlines()[:-1])


def test_network_built_with_the_operator_is_exact_in_dygraph_and_stock_when_exported(op):
    """build_invnet(conv3x3=op) computes the same loss and gradients as the stock network,
    and a static program of it keeps Paddle's conv2d."""
    x = paddle.rand([2, 3, 32, 32])

    def loss_and_grads(conv3x3):
        paddle.seed(3)
        net = build_invnet(3, 3, [1, 1], 4, conv3x3=conv3x3)
        latent = net(x)
        loss = (latent ** 2).mean() + (net(latent, rev=True) - x).abs().mean()
        return net, loss, paddle.grad(loss, net.parameters())
    _, ref_loss, ref_grads = loss_and_grads(None)
    net, loss, grads = loss_and_grads(op)
    _assert_close(loss, ref_loss, 'loss')
    for param, ours, theirs in zip(net.parameters(), grads, ref_grads):
        _assert_close(ours, theirs, f'grad of {param.name}')
    conv = Conv3x3(3, 8, op)
    static = paddle.jit.to_static(conv, full_graph=True,
                                  input_spec=[paddle.static.InputSpec([1, 3, 8, 8], 'float32')])
    program_ops = {o.name() for o in static.forward.concrete_program.main_program.global_block().ops}
    assert 'pd_op.conv2d' in program_ops and not any('onednn' in name for name in program_ops)


def test_headers_newer_than_the_library_are_not_used(tmp_path, monkeypatch):
    library = onednn_conv.library_version()
    for name, minor in (('newer', library[1] + 1), ('same', library[1])):
        folder = tmp_path / name / 'oneapi' / 'dnnl'
        folder.mkdir(parents=True)
        (folder / 'dnnl.hpp').write_text('')
        (folder / 'dnnl_version.h').write_text(f'#define DNNL_VERSION_MAJOR {library[0]}\n'
                                               f'#define DNNL_VERSION_MINOR {minor}\n')
    monkeypatch.setenv('INVDN_ONEDNN_INCLUDE', str(tmp_path / 'newer'))
    assert onednn_conv.find_headers(library) != str(tmp_path / 'newer')
    monkeypatch.setenv('INVDN_ONEDNN_INCLUDE', str(tmp_path / 'same'))
    assert onednn_conv.find_headers(library) == str(tmp_path / 'same')


def test_build_failures_give_a_one_line_reason(tmp_path, monkeypatch):
    monkeypatch.setenv('CXX', 'no-such-compiler-here')
    with pytest.raises(RuntimeError, match=r'no C\+\+ compiler \(no-such-compiler-here\) on PATH'):
        onednn_conv._build()
    monkeypatch.delenv('CXX')
    broken = tmp_path / 'broken.cc'
    broken.write_text('this is not C++\n')
    monkeypatch.setattr(onednn_conv, '_SOURCE', str(broken))
    monkeypatch.setattr(onednn_conv, '_MODULE_NAME', 'invdn_broken_op')
    monkeypatch.setenv('INVDN_EXTENSION_DIR', str(tmp_path / 'build'))
    if onednn_conv.find_headers(onednn_conv.library_version()) is None:
        pytest.skip('no oneDNN headers: the compile step is not reached')
    with pytest.raises(RuntimeError) as err:
        onednn_conv._build()
    log = tmp_path / 'build' / f'paddle-{paddle.__version__}' / 'build.log'
    assert str(err.value) == f'building the oneDNN convolution failed ({type(err.value.__cause__).__name__}; log: {log})'
    assert 'error' in log.read_text()
