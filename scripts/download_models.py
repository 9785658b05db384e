"""Download the released QDMN checkpoint (S012) into saves/QDMN.pth.

    python -m scripts.download_models [--out saves/QDMN.pth] [--md5 HEX]
    python -m scripts.download_models --url https://mirror/QDMN.pth --md5 HEX

The file comes from the authors' Google Drive (through gdown), or from ``--url``. It is
written to ``OUT.part`` and renamed only once verified: by md5 when one is known
(``--md5`` or ``QDMN_MD5`` below), and in every case by loading it with
``torch.load(weights_only=True)`` and checking that it holds the QDMN key
``mask_rgb_encoder.conv1.weight``; a downloaded file that fails is deleted (a file that was
already at ``--out`` is only reported, never deleted). Exit status 2 on error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util import write_gate
from util.download import download, gdrive_download, md5sum
from util.errors import UserError, exit_on_user_error

QDMN_GDRIVE_ID = "1fdiGFGol1ecVowPe6gfRHsRs9zCThFXB"
# md5 of the released QDMN.pth. Not known yet: fill it in once measured on a verified download
# (the script prints it); until then the file is only checked by loading it.
QDMN_MD5: str | None = None
REQUIRED_KEY = "mask_rgb_encoder.conv1.weight"


def _reject(path: Path, problem: str, delete: bool) -> UserError:
    """The error for a bad checkpoint; a file downloaded by this run is deleted, a user's own file is kept."""
    if delete:
        write_gate.remove(path, "--out")  # only the file this run wrote
        return UserError(f"{path}: {problem}; it was deleted: check --url / the Google Drive id and download it again")
    return UserError(f"{path}: {problem}; this file was already there: delete it (or choose another --out) and run again")


def check_checkpoint(path: Path, delete: bool = True) -> None:
    """Load ``path`` safely and require the QDMN key; a failing file is deleted when ``delete``."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused, truncated zip, not a torch file, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _reject(path, f"not a loadable PyTorch weights file ({first})", delete) from None
    if not isinstance(state, Mapping) or REQUIRED_KEY not in state:
        raise _reject(path, f"not a QDMN checkpoint (no key {REQUIRED_KEY!r})", delete)


def fetch(out: Path, url: str | None, md5: str | None, progress: bool = True) -> Path:
    """Download the checkpoint to ``out`` (verified by md5 when given) and check its content."""
    if out.is_dir():
        raise UserError(f"{out}: is a folder; --out takes a file name such as saves/QDMN.pth")
    before = out.stat() if out.is_file() else None
    if url:
        download(url, out, md5=md5, progress=progress)
    else:
        gdrive_download(QDMN_GDRIVE_ID, out, md5=md5, progress=progress)
    # an existing file kept by download() (right md5, or no md5 to compare) is the user's: never delete it
    after = out.stat()
    kept = before is not None and (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    check_checkpoint(out, delete=not kept)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("saves/QDMN.pth"), help="where to write the checkpoint")
    parser.add_argument("--md5", default=None, help="expected md5 of the file (default: QDMN_MD5 in this script, if set)")
    parser.add_argument("--url", default=None, help="download from this http(s) URL instead of Google Drive")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    md5 = args.md5 or QDMN_MD5
    out = fetch(args.out, args.url, md5, progress=not args.quiet)
    if md5:
        print(f"{out}: md5 verified ({md5}); checkpoint OK")
    else:
        print(f"{out}: md5 {md5sum(out)}")
        print(
            f"warning: {out} could not be verified against a known md5 (only its content was checked); "
            "compare the md5 above with a trusted source, then record it in QDMN_MD5 or pass --md5",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
