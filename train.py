"""The earlier Paddle reproduction's TIPC training entry, over the one trainer: its flags
(--data_dir --val_dir --log_dir --iter --batchSize --lr --gt_size --print_freq --scale) are
aliases of the configuration keys of training_1card.yml, and it writes
LOG_DIR/models/model_best.pdparams (a short run validates at its end).

    python train.py --data_dir SIDD_mini/train_mini --val_dir SIDD_mini/val_mini --log_dir LOG_DIR --iter 10 --batchSize 1

The same flags work with train_denoising_1card.py and train_denoising_4cards.py.
"""
from apps import train


def main(argv=None) -> None:
    train.main('training_1card.yml', __doc__, argv)


if __name__ == '__main__':
    main()
