"""The training scripts' command line (``-c FILE -o key=value``, ``--resume``) over the one
trainer (training.trainer), with the earlier Paddle reproduction's training flags (its TIPC
entry ``train.py``) as aliases of configuration keys."""
import os
from typing import List, Optional, Sequence

from apps.cli import add_bool_arg, add_config_args, config_from_args, fail, make_parser, prepare_process


# The earlier reproduction's train.py flags: (flag, configuration keys it sets, type).
EARLIER_FLAGS = (('--data_dir', ('datasets.train.dataroot',), str),
                 ('--val_dir', ('datasets.val.dataroot',), str),
                 ('--iter', ('train.niter',), int),
                 ('--batchSize', ('datasets.train.batch_size',), int),
                 ('--lr', ('train.lr_G',), float),
                 ('--gt_size', ('datasets.train.GT_size',), int),
                 ('--print_freq', ('logger.print_freq',), int),
                 ('--scale', ('scale', 'network_G.scale'), int))


def add_earlier_flags(parser) -> None:
    """The earlier reproduction's training flags, each an alias of -o KEY=VALUE."""
    group = parser.add_argument_group("the earlier Paddle reproduction's train.py flags (aliases)")
    for flag, keys, kind in EARLIER_FLAGS:
        group.add_argument(flag, type=kind, default=None,
                           help=f'-o {"=... ".join(keys)}=... (default: the configuration\'s)')
    group.add_argument('--log_dir', default=None,
                       help='the experiment folder: -o path.experiments_root=PARENT name=BASENAME '
                            '(checkpoints in LOG_DIR/models) (default: the configuration\'s)')


def earlier_overrides(args) -> List[str]:
    """-o KEY=VALUE for each earlier-reproduction flag given."""
    overrides = [f'{key}={getattr(args, flag.lstrip("-"))}' for flag, keys, _ in EARLIER_FLAGS
                 for key in keys if getattr(args, flag.lstrip('-')) is not None]
    if args.log_dir is not None:
        log_dir = os.path.normpath(args.log_dir)
        overrides += [f'path.experiments_root={os.path.dirname(log_dir) or "."}',
                      f'name={os.path.basename(log_dir)}']
    return overrides


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
    add_earlier_flags(parser)
    args = parser.parse_args(argv)
    args.opt = [*earlier_overrides(args), *args.opt]
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
        if args.iter is not None and cfg.train.val_freq > cfg.train.niter:
            # As the earlier train.py: a short run validates at its end, so that it leaves
            # LOG_DIR/models/model_best.pdparams.
            args.opt.append(f'train.val_freq={cfg.train.niter}')
            cfg = config_from_args(args)
        world_size, _ = world_and_rank()
        if args.scale_to_world_size and world_size != cfg.train.world_size:
            cfg = scaled_to_world_size(cfg, world_size)
            print(f'rescaled for {world_size} process(es): lr_G {cfg.train.lr_G:g}, niter '
                  f'{cfg.train.niter}, lr_steps {list(cfg.train.lr_steps)}')
        train(cfg, resume=args.resume)
    except (ConfigError, FileNotFoundError, TrainingError, WeightsError) as err:
        fail(err)
