"""Train InvDN on SIDD on one card (GPU when Paddle has one, else CPU).

    python train_denoising_1card.py [-c training_1card.yml] [-o key.sub=value ...] [--resume]

Four cards: see train_denoising_4cards.py (same loop, another default configuration).
"""
import argparse
import os
import sys

from config import ConfigError, add_config_args, config_from_args
from utils.cpu_speed import configure_cpu

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, 'training_1card.yml')


def parse_args(default_config: str, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, default_config)
    parser.add_argument('--resume', action='store_true',
                        help='continue the latest checkpoint of this experiment '
                             '(<path.experiments_root>/<name>/models/model_latest.pdparams); '
                             'another checkpoint: -o path.resume_state=PATH')
    return parser.parse_args()


def main(default_config: str = DEFAULT_CONFIG, description: str = __doc__) -> None:
    args = parse_args(default_config, description)
    configure_cpu()  # before Paddle's first GEMM
    from utils.checkpoint import WeightsError  # imports paddle: keep --help fast
    from utils.trainer import TrainingError, train
    try:
        train(config_from_args(args), resume=args.resume)
    except (ConfigError, FileNotFoundError, TrainingError, WeightsError) as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
