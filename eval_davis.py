"""DAVIS 2017 evaluation (val or test-dev): palette PNG masks per sequence."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from datasets import layouts
from datasets.davis_test_dataset import davis2017_videos
from evaluation.arguments import add_eval_args, eval_config
from evaluation.publish import write_submission_zip
from evaluation.runner import evaluate
from model.memory_policy import DAVIS_MEMORY
from util.errors import exit_on_user_error
from util.metrics_folders import GLOBAL_CSV, PER_SEQUENCE_CSV, run_jf
from util.output_safety import check_files, claim_files

CSV_NAMES = (GLOBAL_CSV, PER_SEQUENCE_CSV)
SPLITS = ("val", "testdev")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--davis", default="data/DAVIS/2017", help="DAVIS 2017 root (holds trainval/ and test-dev/)")
    parser.add_argument("--split", default="val", choices=sorted(SPLITS), help="val/testdev")
    parser.add_argument("--zip", action="store_true", help="also write <output>.zip (test-dev server layout)")
    parser.add_argument("--evaluate", action="store_true", help="compute J&F right after inference when ground truth exists")
    parser.add_argument("--json", default=None, help="with --evaluate: also write the J&F results as JSON")
    add_eval_args(parser, DAVIS_MEMORY)
    return parser.parse_args(argv)


def evaluate_if_ground_truth(gt_dir: Path, output: Path, videos, json_path: str | None) -> None:
    """J&F against the annotations, when every frame of every video has one (val, not test-dev)."""
    missing = [v.name for v in videos if len(list((gt_dir / v.name).glob("*.png"))) < len(v)]
    if missing:
        print(f"--evaluate: no full ground truth for {len(missing)} video(s) (e.g. {missing[0]}); J&F skipped")
        return
    claim_files(output, CSV_NAMES)  # the CSVs go beside the masks; never over a file this project did not write
    run_jf(gt_dir, output, processes=min(4, os.cpu_count() or 1), sequences=[v.name for v in videos], json_path=json_path)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    videos = davis2017_videos(args.davis, args.split, max_pixels=args.max_pixels)
    if args.evaluate:
        check_files(Path(args.output), CSV_NAMES)  # before inference, not after
        if args.json:
            check_files(Path(args.json).parent, [Path(args.json).name], "--json")
    evaluate(eval_config(args, zip=args.zip), videos, finish=lambda output: finish(args, output, videos))


def finish(args: argparse.Namespace, output: Path, videos) -> None:
    """Once every video is complete (in one process): the submission zip, then J&F."""
    if args.zip:
        print(f"Submission archive: {write_submission_zip(output, videos)}")
    if args.evaluate:
        evaluate_if_ground_truth(layouts.davis_annotations(layouts.davis_folder(args.davis, args.split)), output, videos, args.json)


if __name__ == "__main__":
    main(sys.argv[1:])
