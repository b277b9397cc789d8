"""How close InvDN's generated noise is to real noise, and how new: the study of
docs/noise_generation.md.

    python -m benchmarks.noise_generation --sidd_mini ../shared/SIDD_mini [--weights W]
        [--json F] [--figure docs/noise_generation.png]

For every real SIDD pair of ``train_mini`` (the 512 x 512 images, centre-cropped to --crop)
and ``val_mini`` (the 256 x 256 validation blocks), each manipulation of generate_noise.py
(core.noise_generation) at each --epsilons value makes one noisy image from the noisy one
(seed 0, sample 0), scored against the pair's real noise after 8-bit quantisation:
- AKLD (DANet's; lower: the local noise variance is closer to the real one's);
- the correlation of the generated noise with the real noise (1: a copy; 0: a new draw);
- the standard deviation of the generated noise over the real noise's;
- the colour shift: the largest difference, over the channels, between the mean of the
  generated noise and of the real noise, in grey levels (AKLD and correlation do not see a
  sample turning the whole image another colour).
Beside them two baselines fitted to each pair, each a new draw: AWGN with each channel's
noise standard deviation, and a Poisson-Gaussian model, noise variance a * clean + b per
channel, fitted by least squares to the squared noise. Means over the images of each split.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from apps import cli
from benchmarks.report import write_json

EPSILONS = {'perturb': (0.01, 0.03, 0.1, 0.3, 1.0), 'resample': (0.1, 0.3, 0.6, 1.0),
            'residual': (0.1, 0.3, 0.6, 1.0)}
SPLITS = ('train_mini', 'val_mini')
# The --examples figure: a near copy, then a fully new draw of each resampling mode, on the
# first val_mini block, its centre 96 x 96.
EXAMPLES = (('perturb', 0.03), ('resample', 1.0), ('residual', 1.0))
EXAMPLE_BLOCK = 0
EXAMPLE_CROP = 96


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    parser.add_argument('--sidd_mini', required=True,
                        help='folder holding train_mini/ and val_mini/ (GT/ and Noisy/ each)')
    parser.add_argument('--crop', type=cli.positive_int, default=256,
                        help='centre crop of larger images, in pixels (time; 0 keeps them whole)')
    parser.add_argument('--json', default=None, help='also write the figures to this JSON file')
    parser.add_argument('--figure', default=None, help='also draw AKLD against correlation and epsilon here')
    parser.add_argument('--examples', default=None,
                        help='also draw one val_mini block\'s samples and their noise here')
    return parser.parse_args(argv)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    if not size or (height <= size and width <= size):
        return image
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[top:top + size, left:left + size]


def awgn_like(noisy: np.ndarray, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """clean + Gaussian noise of each channel's real noise standard deviation (0-255 floats)."""
    sigma = (noisy - clean).std(axis=(0, 1))
    return clean + rng.standard_normal(clean.shape) * sigma


def poisson_gaussian_like(noisy: np.ndarray, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """clean + noise of variance a * clean + b per channel, (a, b) >= 0 fitted by least squares
    to the squared real noise (its expectation under that model)."""
    out = np.empty_like(clean)
    for c in range(clean.shape[2]):
        x, y = clean[:, :, c].ravel(), ((noisy - clean)[:, :, c] ** 2).ravel()
        a, b = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)[0]
        if a < 0:  # no signal dependence in this channel: a constant variance
            a, b = 0.0, y.mean()
        elif b < 0:
            a, b = float(x @ y / (x @ x)), 0.0
        out[:, :, c] = clean[:, :, c] + rng.standard_normal(x.size).reshape(clean.shape[:2]) \
            * np.sqrt(a * clean[:, :, c] + b)
    return out


def scores(generated: np.ndarray, noisy: np.ndarray, clean: np.ndarray
           ) -> Tuple[float, float, float, float]:
    """(AKLD, correlation, noise std ratio, colour shift) of an 8-bit ``generated`` image
    (0-255 floats)."""
    from utils.metrics import calculate_akld, noise_correlation

    generated = np.clip(np.rint(generated), 0, 255)
    shift = np.abs((generated - noisy).mean(axis=(0, 1))).max()
    return (calculate_akld(generated, noisy, clean), noise_correlation(generated, noisy, clean),
            float((generated - clean).std() / (noisy - clean).std()), float(shift))


def pairs(root: str, split: str, crop: int) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """(name, noisy, clean) as 8-bit RGB values in float64."""
    from dataloaders import folder_pairs
    from utils.image_io import quantize

    found = folder_pairs(f'{root}/{split}')
    return [(name, centre_crop(quantize(noisy, 8), crop).astype(np.float64),
             centre_crop(quantize(clean, 8), crop).astype(np.float64)) for name, noisy, clean in found]


def main(argv=None) -> Dict[str, object]:
    args = parse_args(argv)
    cli.prepare_process(args.verbose)
    from apps.models import load_model
    from core.denoise import DygraphBackend
    from core.noise_generation import NoiseOptions, generate_array
    from networks import InvNet

    model = load_model(args, network_class=InvNet)
    backend = DygraphBackend(model)
    rows: List[Dict[str, object]] = []
    for split in SPLITS:
        data = pairs(args.sidd_mini, split, args.crop)
        table: Dict[Tuple[str, float], List[Tuple[float, float, float, float]]] = {}
        for index, (name, noisy, clean) in enumerate(data):
            rng = np.random.default_rng([0, index])
            table.setdefault(('AWGN fitted', 0.0), []).append(scores(awgn_like(noisy, clean, rng), noisy, clean))
            table.setdefault(('Poisson-Gaussian fitted', 0.0), []).append(
                scores(poisson_gaussian_like(noisy, clean, rng), noisy, clean))
            for mode, epsilons in EPSILONS.items():
                for epsilon in epsilons:
                    options = NoiseOptions(mode=mode, epsilon=epsilon, seed=0, tile=None)
                    generated = generate_array(backend, (noisy / 255).astype(np.float32), options) * 255
                    table.setdefault((mode, epsilon), []).append(scores(generated, noisy, clean))
            print(f'{split} {name} done', flush=True)
        for (mode, epsilon), values in table.items():
            akld, correlation, std_ratio, shift = np.mean(values, axis=0)
            rows.append({'split': split, 'mode': mode, 'epsilon': epsilon, 'images': len(values),
                         'akld': float(akld), 'correlation': float(correlation),
                         'noise_std_ratio': float(std_ratio), 'colour_shift': float(shift)})
    print_table(rows)
    figures = {'weights': args.weights, 'crop': args.crop, 'rows': rows}
    write_json(args.json, figures)
    if args.figure:
        draw(rows, args.figure)
    if args.examples:
        name, noisy, clean = pairs(args.sidd_mini, 'val_mini', args.crop)[EXAMPLE_BLOCK]
        panels = [('clean', clean), ('real noise', noisy),
                  ('Poisson-Gaussian fitted', poisson_gaussian_like(noisy, clean, np.random.default_rng(0)))]
        for mode, epsilon in EXAMPLES:
            options = NoiseOptions(mode=mode, epsilon=epsilon, seed=0, tile=None)
            panels.append((f'{mode} {epsilon:g}',
                           generate_array(backend, (noisy / 255).astype(np.float32), options) * 255))
        draw_examples(panels, clean, f'val_mini {name}', args.examples)
    return figures


def print_table(rows: Sequence[Dict[str, object]]) -> None:
    print('| split | manipulation | epsilon | AKLD | noise correlation | noise std / real | colour shift |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for row in rows:
        epsilon = '' if row['mode'].endswith('fitted') else f'{row["epsilon"]:g}'
        print(f'| {row["split"]} | {row["mode"]} | {epsilon} | {row["akld"]:.3f} | '
              f'{row["correlation"]:.3f} | {row["noise_std_ratio"]:.2f} | {row["colour_shift"]:.1f} |')


def draw(rows: Sequence[Dict[str, object]], path: str) -> None:
    """Left: AKLD against noise correlation, one line per manipulation and split over its
    epsilons, the fitted baselines as points; the corner of noise both new and realistic
    (correlation below 0.3, AKLD below the Poisson-Gaussian baseline) shaded. Right: AKLD
    against epsilon."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from utils.durable import atomic_path

    fig, (trade, by_epsilon) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = {'perturb': 'tab:blue', 'resample': 'tab:orange', 'residual': 'tab:green',
               'AWGN fitted': 'grey', 'Poisson-Gaussian fitted': 'black'}
    styles = {'train_mini': ('-', 'o'), 'val_mini': ('--', 's')}
    for split in SPLITS:
        line, marker = styles[split]
        for mode in list(EPSILONS) + ['AWGN fitted', 'Poisson-Gaussian fitted']:
            mine = sorted((r for r in rows if r['split'] == split and r['mode'] == mode),
                          key=lambda r: r['epsilon'])
            if not mine:
                continue
            label = f'{mode} ({split})'
            if mode in EPSILONS:
                trade.plot([r['correlation'] for r in mine], [r['akld'] for r in mine], line,
                           marker=marker, color=colours[mode], label=label)
                by_epsilon.plot([r['epsilon'] for r in mine], [r['akld'] for r in mine], line,
                                marker=marker, color=colours[mode], label=label)
                if split == 'train_mini':
                    for r in mine:
                        trade.annotate(f'{r["epsilon"]:g}', (r['correlation'], r['akld']), fontsize=7,
                                       xytext=(3, 3), textcoords='offset points', color=colours[mode])
            else:
                trade.plot([mine[0]['correlation']], [mine[0]['akld']], marker, color=colours[mode],
                           markersize=9, label=label)
                by_epsilon.axhline(mine[0]['akld'], linestyle=line, color=colours[mode], label=label)
    baseline = max(r['akld'] for r in rows if r['mode'] == 'Poisson-Gaussian fitted')
    floor = min(r['akld'] for r in rows) / 2
    trade.fill_between([-0.05, 0.3], floor, baseline, color='tab:green', alpha=0.08)
    trade.text(0.0, baseline * 0.5, 'new and realistic', fontsize=8, color='tab:green')
    trade.set_xlabel('correlation with the real noise (1: a copy, 0: new); labels: epsilon')
    trade.set_ylabel('AKLD (lower: local noise level closer to real)')
    by_epsilon.set_xlabel('epsilon')
    by_epsilon.set_xscale('log')
    for axis in (trade, by_epsilon):
        axis.set_yscale('log')
        axis.grid(alpha=0.3)
    by_epsilon.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format='png')
    plt.close(fig)
    print(f'wrote {path}')


def draw_examples(panels: Sequence[Tuple[str, np.ndarray]], clean: np.ndarray, title: str, path: str) -> None:
    """Each image's centre crop above its noise (image minus clean, x3 around mid-grey)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from utils.durable import atomic_path

    fig, axes = plt.subplots(2, len(panels), figsize=(2.2 * len(panels), 4.8))
    for column, (label, image) in enumerate(panels):
        image, reference = centre_crop(image, EXAMPLE_CROP), centre_crop(clean, EXAMPLE_CROP)
        noise = np.clip(128 + 3 * (np.clip(np.rint(image), 0, 255) - reference), 0, 255)
        for row, shown in enumerate((np.clip(image, 0, 255), noise)):
            axes[row, column].imshow(shown.astype(np.uint8), interpolation='nearest')
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[0, column].set_title(label, fontsize=8)
    axes[0, 0].set_ylabel('image', fontsize=8)
    axes[1, 0].set_ylabel('noise x 3', fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format='png')
    plt.close(fig)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
