"""A second, independently written synthetic VOS generator, never used for training.

The project's held-out check of generalisation: a model trained on the
``datasets/synthetic`` generator (any preset) is evaluated here on clips of another
look, made by other code with other parameters. ``datasets.heldout`` and
``datasets.synthetic`` never import each other (an import-linter contract in
pyproject.toml). ``scripts/make_heldout.py`` is the command line; docs/SYNTHVOS.md
describes it.

Modules: ``clip`` (sampling and drawing one clip) and ``write`` (the DAVIS 2017 and
YouTube-VOS valid layouts, with ``datasets/layouts.py``'s folder names).
"""

from datasets.heldout.clip import Clip, Sprite, clip_rng, draw_frame, sample_clip
from datasets.heldout.write import MANIFEST, write_heldout

__all__ = ["MANIFEST", "Clip", "Sprite", "clip_rng", "draw_frame", "sample_clip", "write_heldout"]
