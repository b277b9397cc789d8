"""losses.py against numpy computations of the official formulas, and the InvDN objective."""
import numpy as np
import paddle
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from losses import Gradient_Loss, InvDNLoss, ReconstructionLoss, SSIM_Loss
from networks import InvNet


@pytest.fixture(scope='module')
def images():
    rng = np.random.default_rng(5)
    x = rng.random((2, 3, 6, 7)).astype(np.float32)
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    return x, y


def run(loss, x, y) -> np.ndarray:
    return loss(paddle.to_tensor(x), paddle.to_tensor(y)).numpy()


@pytest.mark.parametrize('losstype, per_pixel', [
    ('l2', lambda d: d ** 2),
    ('l1', lambda d: np.sqrt(d ** 2 + 1e-3)),
    ('l_log', lambda d: -np.log(1 - np.abs(d) + 1e-6)),
])
def test_reconstruction_loss_sums_per_image_and_averages_over_batch(images, losstype, per_pixel):
    x, y = images
    d = x.astype(np.float64) - y
    expected = np.mean([per_pixel(d[i]).sum() for i in range(len(d))])
    assert float(run(ReconstructionLoss(losstype), x, y)) == pytest.approx(expected, rel=1e-5)


def test_reconstruction_loss_rejects_unknown_type():
    with pytest.raises(ValueError, match="'l3'"):
        ReconstructionLoss('l3')


def sobel_numpy(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlation of every channel with a 3x3 kernel, zero padding 1."""
    padded = np.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, (3, 3), axis=(2, 3))
    return np.einsum('nchwij,ij->nchw', windows, kernel)


def test_gradient_loss_is_l1_of_sobel_responses(images):
    x, y = images
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    horizontal = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
    expected = sum(np.abs(sobel_numpy(x64, k) - sobel_numpy(y64, k)).mean()
                   for k in (horizontal, horizontal.T))
    assert float(run(Gradient_Loss(), x, y)) == pytest.approx(expected, rel=1e-5)


def test_ssim_loss_matches_numpy_definition(images):
    x, y = images
    x64, y64 = x.astype(np.float64), y.astype(np.float64)

    def mean3(a):
        return sliding_window_view(a, (3, 3), axis=(2, 3)).mean(axis=(-1, -2))

    def reflect(a):  # border excluded, as torch ReflectionPad2d
        return np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)), mode='reflect')

    xp, yp = reflect(x64), reflect(y64)
    mu_x, mu_y = mean3(xp), mean3(yp)
    sigma_x = mean3(xp ** 2) - mu_x ** 2
    sigma_y = mean3(yp ** 2) - mu_y ** 2
    sigma_xy = mean3(xp * yp) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
            / ((mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2)))
    expected = np.clip((1 - ssim) / 2, 0, 1)
    got = run(SSIM_Loss(), x, y)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_identical_images_give_the_minimum_of_every_loss(images):
    x, _ = images
    assert float(run(ReconstructionLoss('l2'), x, x)) == 0
    # Charbonnier floor: sqrt(eps) per element, 3 * 6 * 7 elements per image.
    assert float(run(ReconstructionLoss('l1'), x, x)) == pytest.approx(126 * np.sqrt(1e-3),
                                                                      rel=1e-5)
    assert float(run(Gradient_Loss(), x, x)) == 0
    assert np.abs(run(SSIM_Loss(), x, x)).max() < 1e-5


@pytest.fixture(scope='module')
def objective_inputs():
    paddle.seed(7)
    net = InvNet(block_num=[1, 1])
    rng = np.random.default_rng(7)
    gt = rng.random((2, 3, 16, 16)).astype(np.float32)
    noisy = np.clip(gt + 0.1 * rng.standard_normal(gt.shape), 0, 1).astype(np.float32)
    lq = gt.reshape(2, 3, 4, 4, 4, 4).mean(axis=(3, 5))
    z = rng.standard_normal((2, 45, 4, 4)).astype(np.float32)
    return net, [paddle.to_tensor(a) for a in (noisy, lq, gt, z)]


def test_objective_terms_follow_the_official_formula(objective_inputs):
    net, (noisy, lq, gt, z) = objective_inputs
    criterion = InvDNLoss(gaussian_scale=0.5)
    total, terms = criterion(net, noisy, lq, gt, z)

    lr_image = net(noisy)[:, :3]
    x_samples = net(paddle.concat([lr_image, 0.5 * z], axis=1), rev=True)[:, :3]
    lr_np, xs_np, lq_np, gt_np = (a.numpy().astype(np.float64)
                                  for a in (lr_image, x_samples, lq, gt))
    fit = 16 * np.mean(((lr_np - lq_np) ** 2).sum(axis=(1, 2, 3)))
    rec = np.mean(np.sqrt((gt_np - xs_np) ** 2 + 1e-3).sum(axis=(1, 2, 3)))
    assert float(terms['l_forw_fit']) == pytest.approx(fit, rel=1e-4)
    assert float(terms['l_back_rec']) == pytest.approx(rec, rel=1e-4)
    assert float(terms['l_grad_back']) == pytest.approx(
        0.1 * float(Gradient_Loss()(gt, x_samples)), rel=1e-5)
    assert float(terms['l_ssim_back']) == pytest.approx(
        float(SSIM_Loss()(gt, x_samples).mean()), rel=1e-5)
    assert float(total) == pytest.approx(sum(float(v) for v in terms.values()), rel=1e-6)

    total.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and float(paddle.abs(g).sum()) > 0 for g in grads)
    net.clear_gradients()


def test_extra_terms_can_be_switched_off_and_z_is_sampled(objective_inputs):
    net, (noisy, lq, gt, z) = objective_inputs
    criterion = InvDNLoss(lambda_grad_back=0, lambda_ssim_back=0)
    with paddle.no_grad():
        total, terms = criterion(net, noisy, lq, gt, z)
        assert float(terms['l_grad_back']) == 0 and float(terms['l_ssim_back']) == 0
        assert float(total) == pytest.approx(float(terms['l_forw_fit'] + terms['l_back_rec']),
                                             rel=1e-6)
        paddle.seed(3)
        first = float(criterion(net, noisy, lq, gt)[1]['l_back_rec'])
        paddle.seed(3)
        again = float(criterion(net, noisy, lq, gt)[1]['l_back_rec'])
        different = float(criterion(net, noisy, lq, gt)[1]['l_back_rec'])
    assert first == again != different


class _Section:
    """Stands in for a Config section: attribute access plus to_dict()."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def to_dict(self):
        return dict(self.__dict__)


def test_from_config_reads_train_section():
    criterion = InvDNLoss.from_config(_Section(lambda_fit_forw=8, lambda_rec_back=2,
                                               lambda_grad_back=0, gaussian_scale=None,
                                               pixel_criterion_back='l2', lr_G=2e-4))
    assert (criterion.lambda_fit_forw, criterion.lambda_rec_back,
            criterion.lambda_grad_back, criterion.lambda_ssim_back) == (8, 2, 0, 1)
    assert criterion.gaussian_scale == 1.0
    assert criterion.rec_back.losstype == 'l2' and criterion.rec_forw.losstype == 'l2'
    assert InvDNLoss.from_config({}).lambda_fit_forw == 16
    with pytest.raises(ValueError, match="'l3'"):
        InvDNLoss.from_config({'pixel_criterion_forw': 'l3'})
    with pytest.raises(ValueError, match='train.lambda_rec_back'):
        InvDNLoss.from_config({'lambda_rec_back': None})
