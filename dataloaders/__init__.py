"""SIDD data for InvDN: the LQGTRN dataset, GT/Noisy pairing by name, the SIDD .mat blocks."""
from dataloaders.LQGTRN_dataset import LQGTRNDataset, create_dataset
from dataloaders.pairs import PairList, folder_pairs, paired_names
from dataloaders.sidd_mat import load_blocks, sidd_mat_pairs

__all__ = ['LQGTRNDataset', 'PairList', 'create_dataset', 'folder_pairs', 'load_blocks',
           'paired_names', 'sidd_mat_pairs']
