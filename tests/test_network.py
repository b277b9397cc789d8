"""InvNet: invertibility, the official parameter layout, the Haar stage, the export variant,
initialisation and input checks."""
import math

import numpy as np
import paddle
import pytest

from networks import HaarDownsampling, InvNet, InvNetOneForward


@pytest.fixture(scope='module')
def small_net() -> InvNet:
    paddle.seed(1)
    return InvNet(block_num=[1, 1])


def test_round_trip_reconstructs_input_and_log_determinants_cancel(small_net):
    x = paddle.rand([2, 3, 32, 32])
    latent, log_det = small_net(x, cal_jacobian=True)
    assert latent.shape == [2, 48, 8, 8]
    restored, log_det_rev = small_net(latent, rev=True, cal_jacobian=True)
    np.testing.assert_allclose(restored.numpy(), x.numpy(), atol=2e-5)
    assert abs(float(log_det) + float(log_det_rev)) < 1e-3 * abs(float(log_det))


def test_paper_model_parameter_count_and_official_state_dict_layout(official_state_dict_shapes):
    net = InvNet()
    trainable = sum(int(np.prod(p.shape)) for p in net.parameters() if not p.stop_gradient)
    assert trainable == 2_640_960
    expected = official_state_dict_shapes((8, 8))
    state = net.state_dict()
    assert list(state.keys()) == list(expected.keys())
    assert {k: list(v.shape) for k, v in state.items()} == dict(expected)


def test_haar_stage_matches_hand_computation():
    # 2 channels, 2x4 pixels: two 2x2 blocks per channel.
    x = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4) ** 1.5
    out = HaarDownsampling(2)(paddle.to_tensor(x)).numpy()
    assert out.shape == (1, 8, 1, 2)
    for c in range(2):
        for j in range(2):
            a, b = x[0, c, 0, 2 * j], x[0, c, 0, 2 * j + 1]
            d, e = x[0, c, 1, 2 * j], x[0, c, 1, 2 * j + 1]
            bands = [(a + b + d + e) / 4, (a - b + d - e) / 4,
                     (a + b - d - e) / 4, (a - b - d + e) / 4]
            for k, value in enumerate(bands):  # band-major: band k of channel c at 2 * k + c
                assert out[0, 2 * k + c, 0, j] == pytest.approx(value, rel=1e-6, abs=1e-6)
    restored = HaarDownsampling(2)(paddle.to_tensor(out), rev=True).numpy()
    np.testing.assert_allclose(restored, x, rtol=1e-6, atol=1e-5)


def test_haar_filters_are_in_state_dict_but_not_trainable():
    haar = HaarDownsampling(3)
    assert list(haar.state_dict().keys()) == ['haar_weights']
    assert haar.parameters() == []


def test_one_forward_equals_forward_then_reverse_and_shares_state_dict(small_net):
    one = InvNetOneForward(block_num=[1, 1])
    one.set_state_dict(small_net.state_dict())
    noisy = paddle.rand([1, 3, 16, 24])
    z = paddle.randn([1, 45, 4, 6])
    lr_image = small_net(noisy)[:, :3]
    expected = small_net(paddle.concat([lr_image, z], axis=1), rev=True)[:, :3]
    np.testing.assert_allclose(one(noisy, z).numpy(), expected.numpy(), atol=1e-6)

    back = InvNet(block_num=[1, 1])
    back.set_state_dict(one.state_dict())
    np.testing.assert_array_equal(back(noisy).numpy(), small_net(noisy).numpy())


def test_initialisation_is_pytorch_default_and_seeded():
    paddle.seed(123)
    net = InvNet(block_num=[1, 1])
    for name, param in net.named_parameters():
        # Conv weight [out, in, 3, 3]: fan_in = in * 9; a bias uses its conv's fan_in.
        conv = name.rsplit('.', 1)[0]
        fan_in = int(np.prod(net.state_dict()[conv + '.weight'].shape[1:]))
        bound = 1 / math.sqrt(fan_in)
        values = param.numpy()
        assert np.abs(values).max() <= bound * (1 + 1e-6), name
        if values.size >= 10_000:  # U(-b, b): mean 0, std b / sqrt(3), reaches the bounds
            assert abs(values.mean()) < 0.02 * bound, name
            assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.02), name
            assert np.abs(values).max() > 0.99 * bound, name
    paddle.seed(123)
    again = InvNet(block_num=[1, 1])
    paddle.seed(124)
    other = InvNet(block_num=[1, 1])
    key = 'operations.1.F.conv2.weight'
    np.testing.assert_array_equal(again.state_dict()[key].numpy(), net.state_dict()[key].numpy())
    assert not np.array_equal(other.state_dict()[key].numpy(), net.state_dict()[key].numpy())


def test_size_not_multiple_of_four_is_a_clear_error(small_net):
    with pytest.raises(ValueError, match=r'multiples of 4.*30x30'):
        small_net(paddle.rand([1, 3, 30, 30]))


def test_schema_network_defaults_are_the_paper_model(official_state_dict_shapes):
    """config.SCHEMA's network_G (what scripts build) and InvNet()'s own defaults describe
    the same architecture: the paper's."""
    from config import paper_default
    from networks import build_invnet

    options = paper_default('network_G')
    built = build_invnet(options['in_nc'], options['out_nc'], options['block_num'], options['scale'])
    assert {k: list(v.shape) for k, v in built.state_dict().items()} == dict(official_state_dict_shapes((8, 8)))
    assert {k: list(v.shape) for k, v in InvNet().state_dict().items()} == dict(official_state_dict_shapes((8, 8)))
