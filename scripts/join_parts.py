"""Join a file that came back from the GPU machine in parts, checking every checksum.

    python -m scripts.join_parts DIR/demo_lite.json [--out saves/qdmn_lite_gpu.pth]

A file returned by the device tool is at most 16 MiB, and the demonstration model's float16
weights are 21.5 MiB, so ``scripts/gpu_check.py`` splits them (:func:`split_file`) into
``<name>.part0``, ``<name>.part1``... beside a manifest ``<stem>.json`` that holds the size and
SHA-256 of each part and of the whole. This joins the parts found beside the manifest, checks
each part and the whole against the manifest, and writes the file (default: the manifest's
file name beside it) through the write gate: under a temporary name, renamed once complete.
An existing file is never replaced (docs/GPU_CHECK.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Optional

if not __package__:  # `python scripts/NAME.py`: the packages are in the repository root, not in scripts/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from util.errors import UserError, exit_on_user_error
from util.write_gate import make_folder, write_bytes, write_json, writing

CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 1 << 20
MANIFEST_FORMAT = "qdmn-parts"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def split_file(source: Path, folder: Path, part_bytes: int, extra: Optional[dict[str, Any]] = None,
               flag: str = "--out") -> dict[str, Any]:
    """Write ``source`` as parts of at most ``part_bytes`` into ``folder`` and the manifest last; returns the manifest.

    Each part and the manifest go through the write gate (written under a temporary name and
    renamed; an existing file is replaced only when this project wrote it). The manifest,
    renamed last, names the parts of the file it describes, so a reader that checks the
    checksums never joins parts of two different files."""
    make_folder(folder, flag)
    name = source.name
    parts = []
    with open(source, "rb") as f:
        index = 0
        while block := f.read(part_bytes):
            part = write_bytes(folder / f"{name}.part{index}", block, flag, inputs=[source])
            parts.append({"name": part.name, "size": len(block), "sha256": hashlib.sha256(block).hexdigest()})
            index += 1
    manifest = {
        "format": MANIFEST_FORMAT,
        "file": name,
        "size": source.stat().st_size,
        "sha256": sha256_of(source),
        "parts": parts,
        **(extra or {}),
    }
    write_json(folder / f"{Path(name).stem}.json", manifest, flag, inputs=[source])
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: manifest not found; pass the .json file that came back beside the parts")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UserError(f"{path}: {path.stat().st_size} bytes is too large for a parts manifest; pass the .json written with the parts")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a JSON manifest ({e}); pass the .json written with the parts") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("parts"), list):
        raise UserError(f"{path}: not a parts manifest (format {MANIFEST_FORMAT!r}); pass the .json written with the parts")
    if (
        not isinstance(manifest.get("size"), int)
        or not isinstance(manifest.get("sha256"), str)
        or not isinstance(manifest.get("file"), str)
    ):
        raise UserError(f"{path}: the manifest has no file name, size and SHA-256; it is damaged, fetch it again")
    for part in manifest["parts"]:
        if not isinstance(part, dict) or Path(str(part.get("name", ""))).name != part.get("name") or not part.get("name"):
            raise UserError(f"{path}: a part entry is not a plain file name ({part!r}); the manifest is damaged")
        if not isinstance(part.get("size"), int) or not isinstance(part.get("sha256"), str):
            raise UserError(f"{path}: part {part['name']} has no size and SHA-256; the manifest is damaged, fetch it again")
    return manifest


def check_part(path: Path, part: dict[str, Any]) -> None:
    if not path.is_file():
        raise UserError(f"{path}: part missing; fetch every part listed in the manifest")
    if path.stat().st_size != part["size"]:
        raise UserError(f"{path}: {path.stat().st_size} bytes, the manifest says {part['size']}; the part is incomplete, fetch it again")
    if sha256_of(path) != part["sha256"]:
        raise UserError(f"{path}: SHA-256 differs from the manifest's; the part is damaged or from another run, fetch it again")


def join(manifest_path: Path, out: Optional[Path] = None) -> tuple[Path, bool]:
    """Check every part against the manifest and write the joined file; returns (its path, whether it was written now)."""
    manifest = read_manifest(manifest_path)
    folder = manifest_path.parent
    target = out if out is not None else folder / Path(str(manifest["file"])).name
    if target.exists():
        if target.is_file() and target.stat().st_size == manifest["size"] and sha256_of(target) == manifest["sha256"]:
            return target, False
        raise UserError(f"{target}: exists and is not this file; choose another --out")
    parts = [folder / part["name"] for part in manifest["parts"]]
    for path, part in zip(parts, manifest["parts"]):
        check_part(path, part)
    digest = hashlib.sha256()
    with writing(target, "--out", inputs=[manifest_path, *parts]) as tmp, open(tmp, "xb") as joined:
        for path in parts:
            with open(path, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    joined.write(block)
        if digest.hexdigest() != manifest["sha256"]:  # raised inside: the temporary file is removed
            raise UserError(f"{manifest_path}: the joined parts' SHA-256 differs from the manifest's; fetch the parts again")
    return target, True


@exit_on_user_error
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path, help="the .json manifest that came back beside the parts")
    parser.add_argument("--out", type=Path, default=None, help="joined file (default: the manifest's file name beside it)")
    args = parser.parse_args(argv)
    target, written = join(args.manifest, args.out)
    manifest = read_manifest(args.manifest)
    verb = "wrote" if written else "already joined:"
    print(f"{verb} {target} ({manifest['size']} bytes, {len(manifest['parts'])} parts, SHA-256 {manifest['sha256']} checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
