"""SIDD data for InvDN: the LQGTRN dataset (GT, Noisy and low-resolution LQ)."""
from dataloaders.LQGTRN_dataset import LQGTRNDataset, create_dataset

__all__ = ['LQGTRNDataset', 'create_dataset']
