"""Train InvDN on SIDD on four cards, data-parallel (the loop of train_denoising_1card.py).

    python -m paddle.distributed.launch --gpus 0,1,2,3 train_denoising_4cards.py
        [-c training_4cards.yml] [-o key.sub=value ...] [--resume]

The batch size in the YAML is per card. On CPU (gloo backend, e.g. to test):
    python -m paddle.distributed.launch --nproc_per_node 2 train_denoising_4cards.py -o device=cpu
"""
from apps import train


def main(argv=None) -> None:
    train.main('training_4cards.yml', __doc__, argv)


if __name__ == '__main__':
    main()
