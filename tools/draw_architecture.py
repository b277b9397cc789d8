"""Draw the InvDN architecture figure used in the README (docs/invdn_architecture.png).

The figure follows the paper's Fig. 2: the forward pass splits a noisy image into a
clean low-resolution image (LR) and a noisy high-frequency latent; the reverse pass
replaces that latent by a fresh z ~ N(0, I) and inverts the same blocks.

    python -m tools.draw_architecture [--output docs/invdn_architecture.png] [--dpi 150]
"""
from pathlib import Path
from typing import Tuple

import matplotlib

matplotlib.use('Agg')  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from apps import cli  # noqa: E402

Point = Tuple[float, float]

COLOURS = {
    'image': '#dbe9f6',
    'haar': '#fde2c4',
    'coupling': '#d5ecd4',
    'lr': '#c9e7f0',
    'latent': '#f3d4d4',
    'prior': '#e8dcf3',
}


def box(ax: plt.Axes, centre: Point, text: str, colour: str, width: float = 12.5,
        height: float = 7.0) -> None:
    x, y = centre
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle='round,pad=0.3,rounding_size=1.0',
                                facecolor=colour, edgecolor='#444444', linewidth=1.0))
    ax.text(x, y, text, ha='center', va='center', fontsize=8.5)


def arrow(ax: plt.Axes, start: Point, end: Point, style: str = '-|>', dashed: bool = False,
          colour: str = '#333333') -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11,
                                 linewidth=1.0, color=colour,
                                 linestyle='--' if dashed else '-'))


def draw(out: Path, dpi: int) -> None:
    fig, ax = plt.subplots(figsize=(12.5, 5.6))
    ax.set_xlim(0, 118)
    ax.set_ylim(-6, 53)
    ax.axis('off')

    top, bottom = 40.0, 14.0
    xs = [7, 24, 41, 58, 75]
    ax.text(1, 50.5, 'Forward pass (noisy image -> LR + latent)', fontsize=10, weight='bold')
    ax.text(1, 4.0, 'Reverse pass (same blocks inverted; the noisy latent is replaced by '
            'z ~ N(0, I))', fontsize=10, weight='bold')

    forward = [
        ('noisy image\n3 x H x W', 'image'),
        ('Haar down\n12 x H/2 x W/2', 'haar'),
        ('8 coupling\nblocks', 'coupling'),
        ('Haar down\n48 x H/4 x W/4', 'haar'),
        ('8 coupling\nblocks', 'coupling'),
    ]
    reverse = [
        ('denoised image\n3 x H x W', 'image'),
        ('Haar up\n(inverse)', 'haar'),
        ('8 coupling\nblocks (inverse)', 'coupling'),
        ('Haar up\n(inverse)', 'haar'),
        ('8 coupling\nblocks (inverse)', 'coupling'),
    ]
    for i, ((f_text, f_kind), (r_text, r_kind)) in enumerate(zip(forward, reverse)):
        box(ax, (xs[i], top), f_text, COLOURS[f_kind])
        box(ax, (xs[i], bottom), r_text, COLOURS[r_kind])
        if i:
            arrow(ax, (xs[i - 1] + 6.6, top), (xs[i] - 6.6, top))
            arrow(ax, (xs[i] - 6.6, bottom), (xs[i - 1] + 6.6, bottom))
        if i in (2, 4):
            arrow(ax, (xs[i], top - 4.2), (xs[i], bottom + 4.2), style='<->', dashed=True,
                  colour='#777777')
    for x in (xs[2], xs[4]):
        ax.text(x + 1, (top + bottom) / 2, 'shared\nweights', fontsize=7.5, color='#555555',
                va='center')

    lr, noisy_latent, prior = (93, 46.5), (93, 33.5), (93, 20.5)
    box(ax, lr, 'LR: channels 0-2\nclean 3 x H/4 x W/4', COLOURS['lr'], width=15, height=6)
    box(ax, noisy_latent, 'channels 3-47\nnoisy latent (45 ch)\ndiscarded', COLOURS['latent'],
        width=15, height=7)
    box(ax, prior, 'z ~ N(0, I)\n45 x H/4 x W/4', COLOURS['prior'], width=15, height=6)
    arrow(ax, (xs[4] + 6.6, top + 1.5), (lr[0] - 7.8, lr[1]))
    arrow(ax, (xs[4] + 6.6, top - 1.5), (noisy_latent[0] - 7.8, noisy_latent[1]))
    arrow(ax, (lr[0] + 7.8, lr[1]), (110, lr[1]), style='-')
    arrow(ax, (110, lr[1]), (110, bottom + 1.5), style='-')
    arrow(ax, (110, bottom + 1.5), (xs[4] + 6.6, bottom + 1.5))
    arrow(ax, (prior[0], prior[1] - 3.3), (prior[0], bottom - 1.5), style='-')
    arrow(ax, (prior[0], bottom - 1.5), (xs[4] + 6.6, bottom - 1.5))
    ax.text(111, (lr[1] + bottom) / 2, 'concat', rotation=90, fontsize=8, va='center')

    ax.text(lr[0] - 7, lr[1] + 4.3, 'loss: 16 x L2 to LQ = bicubic(GT, 1/4)', fontsize=7.5,
            color='#1f4e79')
    ax.text(xs[0] - 6, bottom + 4.5, 'loss: L1 to GT\n(+ gradient, SSIM terms)',
            fontsize=7.5, color='#1f4e79', va='bottom')
    ax.text(1, -2.5, 'coupling block: x = [x1 (3 ch), x2];  y1 = x1 + F(x2);  '
            'y2 = x2 * exp(s) + G(y1),  s = 2 sigmoid(H(y1)) - 1\n'
            'F, G, H: conv3x3 - LReLU - conv3x3 - LReLU - concat(input) - conv3x3',
            fontsize=7.5, ha='left', va='center', family='monospace', color='#2d5a2b')

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches='tight', facecolor='white')
    plt.close(fig)


def main(argv=None) -> None:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--output', type=Path, default=Path('docs/invdn_architecture.png'),
                        help='output PNG file')
    parser.add_argument('--dpi', type=int, default=150, help='resolution in dots per inch')
    args = parser.parse_args(argv)
    draw(args.output, args.dpi)
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
