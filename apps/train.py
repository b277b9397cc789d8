"""The training scripts' command line (``-c FILE -o key=value``, ``--resume``) over the one
trainer (training.trainer)."""
from typing import Optional, Sequence

from apps.cli import add_bool_arg, add_config_args, config_from_args, fail, make_parser, prepare_process


def main(default_config: str, description: str, argv: Optional[Sequence[str]] = None) -> None:
    """Parse ``-c/-o/--resume``, train (training.trainer), exit with one line on an error."""
    parser = make_parser(description)
    add_config_args(parser, default_config)
    add_bool_arg(parser, '--resume', default=False,
                 help='continue the latest checkpoint of this experiment '
                      '(<path.experiments_root>/<name>/models/model_latest.pdparams); '
                      'another checkpoint: -o path.resume_state=PATH')
    add_bool_arg(parser, '--scale_to_world_size', default=False,
                 help='when the number of processes differs from train.world_size, rescale lr_G, '
                      'niter, lr_steps and the frequencies by the rule of docs/training.md (scaling rule) '
                      'instead of only warning')
    parser.add_argument('--weights', default=None,
                        help='initial weights (.pdparams), the same as -o path.pretrain_model_G=W '
                             "(TIPC's pretrained-model key); None: the configuration's")
    args = parser.parse_args(argv)
    if args.weights is not None:
        args.opt = [*args.opt, f'path.pretrain_model_G={args.weights}']
    prepare_process(args.verbose)
    from config import ConfigError, scaled_to_world_size
    from training.distributed import world_and_rank
    from training.errors import TrainingError
    from training.trainer import train
    from utils.checkpoint import WeightsError

    try:
        cfg = config_from_args(args)
        world_size, _ = world_and_rank()
        if args.scale_to_world_size and world_size != cfg.train.world_size:
            cfg = scaled_to_world_size(cfg, world_size)
            print(f'rescaled for {world_size} process(es): lr_G {cfg.train.lr_G:g}, niter '
                  f'{cfg.train.niter}, lr_steps {list(cfg.train.lr_steps)}')
        train(cfg, resume=args.resume)
    except (ConfigError, FileNotFoundError, TrainingError, WeightsError) as err:
        fail(err)
