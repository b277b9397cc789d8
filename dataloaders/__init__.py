"""SIDD data for InvDN: the LQGTRN (real noise) and LQGTSN (synthetic noise) datasets, GT/Noisy
pairing by name, the SIDD .mat blocks."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
from typing import Any, Mapping

from dataloaders.LQGTRN_dataset import LQGTRNDataset
from dataloaders.LQGTSN_dataset import LQGTSNDataset
from dataloaders.pairs import PairList, folder_pairs, paired_names
from dataloaders.sidd_mat import load_blocks, sidd_mat_pairs

__all__ = ['LQGTRNDataset', 'LQGTSNDataset', 'PairList', 'create_dataset', 'folder_pairs',
           'load_blocks', 'paired_names', 'sidd_mat_pairs']

DATASETS = {'LQGTRN': LQGTRNDataset, 'LQGTSN': LQGTSNDataset}


def create_dataset(dataset_cfg: Mapping[str, Any], phase: str, scale: int, seed: int = 0) -> LQGTRNDataset:
    """The dataset of one YAML ``datasets.train`` / ``datasets.val`` section (dict or Config):
    ``mode`` LQGTRN (GT/Noisy pairs, real noise) or LQGTSN (clean images, synthetic noise)."""
    mode = dataset_cfg['mode']
    noise = ({'noise_mode': dataset_cfg['noise_mode'], 'sigma': dataset_cfg['sigma']}
             if mode == 'LQGTSN' else {})
    if phase == 'val':
        return DATASETS[mode](dataset_cfg['dataroot'], phase='val', scale=scale, seed=seed, **noise)
    return DATASETS[mode](dataset_cfg['dataroot'], phase=phase, scale=scale,
                          GT_size=dataset_cfg['GT_size'], use_flip=dataset_cfg['use_flip'],
                          use_rot=dataset_cfg['use_rot'], seed=seed,
                          brightness_max=dataset_cfg['brightness_max'], **noise)
