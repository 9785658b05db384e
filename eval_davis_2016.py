"""DAVIS 2016 evaluation (single object): 0/255 grayscale PNG masks per sequence."""

from __future__ import annotations

import argparse
import sys

from datasets.davis_test_dataset import davis2016_videos
from evaluation.arguments import add_eval_args, eval_config
from evaluation.masks import BINARY_PNG
from evaluation.runner import evaluate
from model.memory_policy import DAVIS_MEMORY
from util.errors import exit_on_user_error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--davis", default="data/DAVIS/2016", help="DAVIS 2016 root; the sequence list is read from ../2017/trainval")
    add_eval_args(parser, DAVIS_MEMORY)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    videos = davis2016_videos(args.davis, max_pixels=args.max_pixels)
    evaluate(eval_config(args), videos, mask_format=BINARY_PNG)


if __name__ == "__main__":
    main(sys.argv[1:])
