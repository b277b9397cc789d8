"""TIPC result alignment: the images of two folders (e.g. predict.py's dynamic-graph output
and infer.py's Paddle Inference output for the same weights and seed) must agree within
--max_diff grey levels.

    python -m test_tipc.compare_results --expected DIR_A --actual DIR_B [--max_diff 1]
"""
import os
import sys

import numpy as np

from apps import cli
from utils.image_io import list_images, read_image_raw


def compare(expected_dir: str, actual_dir: str, max_diff: float) -> bool:
    expected = {os.path.basename(p): p for p in list_images(expected_dir)}
    actual = {os.path.basename(p): p for p in list_images(actual_dir)}
    if not expected:
        print(f'no images in {expected_dir}')
        return False
    if expected.keys() != actual.keys():
        print(f'file names differ: only in {expected_dir}: {sorted(expected.keys() - actual.keys())}; '
              f'only in {actual_dir}: {sorted(actual.keys() - expected.keys())}')
        return False
    ok = True
    for name in sorted(expected):
        a = read_image_raw(expected[name]).astype(np.int64)
        b = read_image_raw(actual[name]).astype(np.int64)
        if a.shape != b.shape:
            print(f'{name}: shapes differ, {a.shape} and {b.shape}')
            ok = False
            continue
        diff = np.abs(a - b)
        within = diff.max() <= max_diff
        ok &= bool(within)
        print(f'{name}: max difference {diff.max()} grey level(s), {np.mean(diff > 0):.4%} of '
              f'values differ {"(ok)" if within else f"(more than {max_diff})"}')
    return ok


def main(argv=None) -> None:
    parser = cli.make_parser(__doc__)
    parser.add_argument('--expected', required=True, help='folder of reference images')
    parser.add_argument('--actual', required=True, help='folder of images to check (same names)')
    parser.add_argument('--max_diff', type=float, default=1,
                        help='largest allowed difference per value, in grey levels')
    args = parser.parse_args(argv)
    if not compare(args.expected, args.actual, args.max_diff):
        sys.exit(1)
    print(f'all images agree within {args.max_diff} grey level(s)')


if __name__ == '__main__':
    main()
