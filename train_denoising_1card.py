"""Train InvDN on SIDD on one card (the GPU when Paddle has one, else the CPU).

    python train_denoising_1card.py [-c training_1card.yml] [-o key.sub=value ...] [--resume]

Four cards: train_denoising_4cards.py (the same loop, another default configuration).
"""
from apps import train


def main(argv=None) -> None:
    train.main('training_1card.yml', __doc__, argv)


if __name__ == '__main__':
    main()
