"""Split SIDD_mini's validation blocks into the blocks that guide the demo model's training and
the blocks its figure is reported on (docs/demo_model.md):

    python -m tools.split_val_mini        # SIDD_mini_select/ (0_0, 0_1) and SIDD_mini_report/ (0_2-0_4)

training_cpu_demo.yml validates on SIDD_mini_select; nothing about the run (schedule, length,
which checkpoint) looks at SIDD_mini_report, whose figure is therefore a figure on blocks
the model and its maker never saw. Files are copied, never overwritten when different.
"""
import argparse
import filecmp
import os
import shutil
import sys

from utils.durable import atomic_path

SUBFOLDERS = ('GT', 'Noisy')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--val_mini', default='../shared/SIDD_mini/val_mini',
                        help='folder with GT/ and Noisy/ validation blocks')
    parser.add_argument('--select', nargs='+', default=['0_0', '0_1'],
                        help='blocks (file stems) that guide training; the others are reported')
    parser.add_argument('--select_dir', default='SIDD_mini_select', help='where the guiding blocks go')
    parser.add_argument('--report_dir', default='SIDD_mini_report', help='where the reported blocks go')
    args = parser.parse_args(argv)
    names = sorted(os.listdir(os.path.join(args.val_mini, 'GT'))) \
        if os.path.isdir(os.path.join(args.val_mini, 'GT')) else []
    if not names:
        sys.exit(f'error: no blocks in {os.path.join(args.val_mini, "GT")}')
    unknown = set(args.select) - {os.path.splitext(name)[0] for name in names}
    if unknown:
        sys.exit(f'error: --select names blocks that {args.val_mini} does not have: {sorted(unknown)}')
    plan = [(name, args.select_dir if os.path.splitext(name)[0] in args.select else args.report_dir)
            for name in names]
    for name, folder in plan:
        for sub in SUBFOLDERS:
            source, target = os.path.join(args.val_mini, sub, name), os.path.join(folder, sub, name)
            if os.path.exists(target) and not filecmp.cmp(source, target, shallow=False):
                sys.exit(f'error: {target} exists and differs from {source}; nothing was changed')
    for name, folder in plan:
        for sub in SUBFOLDERS:
            source, target = os.path.join(args.val_mini, sub, name), os.path.join(folder, sub, name)
            if not os.path.exists(target):
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
    for folder in (args.select_dir, args.report_dir):
        print(f'{folder}: {", ".join(name for name, f in plan if f == folder)}')


if __name__ == '__main__':
    main()
